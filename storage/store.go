// Package storage keeps the sidecar's data: the log of a local sidecar in plain
// append-only files (FileLog), everything else in an embedded Badger database.
//
// All writes go through a group commit: many concurrent requests share one write
// (the file log's) or one durable Badger transaction (Store.Apply), so a caller that
// got nil back knows its writes survive kill -9.
package storage

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/skl"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Sizes that keep Badger's heap near 80 MiB with 1 M events; see README.md.
const (
	// DefaultMemTableSize is Options.MemTableSize's default. `go run ./bench`, the open
	// loop's p99: 10–647 ms over six runs at 4 MiB, four of them above 200 ms; 14–29 ms
	// over five at 8 MiB (half as many flushes and L0 compactions of the views, which
	// took both cores in bursts). 16 MiB did no better (13–18 ms) but doubled
	// BenchmarkStoreMemory's peak live heap.
	DefaultMemTableSize = 8 << 20
	numMemtables        = 2
	baseTableSize       = 1 << 20
	valueThreshold      = 64
	vlogFileSize        = 64 << 20

	defaultGCInterval = 5 * time.Minute
)

var (
	// ErrLocked means another process (or another Open in this process) holds the data directory.
	ErrLocked = errors.New("locked by another process")
)

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Logger receives Badger's warnings and errors and value-log GC failures.
	// Nil means slog.Default().
	Logger *slog.Logger
	// GCInterval is the pause between value-log GC passes; 0 means 5 minutes.
	GCInterval time.Duration
	// SyncInterval chooses when commits reach the disk. 0: fsync every group commit,
	// so an acknowledged write survives even a power loss (at the cost of one fsync,
	// about 0.5–2 ms here, per commit). Positive: a commit is written to the OS
	// (surviving kill -9 and any crash of this process at once) and fsynced within
	// this interval, bounding what a power loss or kernel crash can take.
	SyncInterval time.Duration
	// MinFreeDisk is the free space the data directory's file system must keep: below
	// it Apply refuses writes with ErrDiskFull until space returns (see disk.go).
	// 0 means DefaultMinFreeDisk; negative turns the reserve off (Badger's files are
	// still allocated ahead).
	MinFreeDisk int64
	// MinFreeInodes is the same for inodes; 0 means 256, negative turns it off.
	MinFreeInodes int64
	// MemTableSize is the size of each of Badger's two memtables; 0 means
	// DefaultMemTableSize. Both count against the Go heap's limit as soon as they exist,
	// so a process with many stores (a fleet view) gives each a smaller one.
	MemTableSize int64
	// WaitForSpace lets Open succeed below the reserve: Badger is then not opened
	// (Apply refuses with ErrUnavailable, reads fail with kv.ErrClosed, Ready says why)
	// until space returns, when the store opens it by itself and closes Opened().
	// Without it Open fails with ErrDiskFull.
	WaitForSpace bool
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Store is an open Badger database with its group-commit writer, value-log GC
// loop, resident-memory trim loop and disk loop.
type Store struct {
	dir    string
	db     *badger.DB // replaced when Badger is reopened; see dbMu
	logger *slog.Logger
	// memTable is the size of Badger's memtables (Options.MemTableSize); limits are
	// the transaction limits that follow from it.
	memTable int64
	limits   txnLimits

	// mu orders Close against Apply's enqueue and against readers: Close takes
	// it exclusively, so it waits for running View/Scan/Backup calls and no
	// request can be queued once the queue is closed. closed is also set while
	// Badger is not open (see disk.go), so readers get kv.ErrClosed instead of a
	// Badger that is closing; shut is set by Close alone.
	mu         sync.RWMutex
	closed     bool
	shut       bool
	readersOff atomic.Bool // closed was set after a failed write; cleared on reopen

	// Badger is swapped (closed after a failed write, opened again) under gcMu,
	// mu and dbMu, in that order. Each lane's writer holds dbMu for reading through
	// each group; the GC loop holds gcMu through each pass.
	dbMu       sync.RWMutex
	gcMu       sync.Mutex
	dbOpen     bool // db is open; written under all three locks
	syncWrites bool

	// Disk checks (disk.go). down is set while Badger is not open or out of use, low
	// while the file system is below the reserve; either refuses writes.
	dirFd              *os.File // the data directory; its nearest existing parent while noDir
	noDir              bool     // there was no room to create the data directory; disk loop only
	minFree, minInodes uint64
	down, low          atomic.Pointer[refusedError]
	alloc              allocation
	kick               chan struct{} // wakes the disk loop after a failed write
	broken             *badger.DB    // taken out of use after a failed write, not closed yet; disk loop only
	closing            chan struct{} // closed once broken has closed; disk loop only
	closeErr           error         // of Badger's Close in Store.Close
	lastOpenLog        time.Time     // disk loop only
	opened             chan struct{}
	openOnce           sync.Once
	diskDone           chan struct{}

	log, views *lane         // writer goroutines (lane.go)
	flog       *FileLog      // the log of a local sidecar, once OpenLog opened it
	stop       chan struct{} // closed by Close to stop the GC and trim loops
	gcDone     chan struct{}
	trimDone   chan struct{}
	syncDone   chan struct{}

	// losses counts requests dropped after their fn ran (Batch.Losses).
	losses atomic.Uint64
	// commitErr holds the error of the last group commit, nil after a success.
	commitErr atomic.Pointer[error]
	stats     statCounters
}

// Open opens (creating if needed) the store in dir and starts its writer, GC,
// trim and disk loops. Below the free-space reserve it does not open Badger: it
// fails with ErrDiskFull, or with Options.WaitForSpace returns a store that opens
// Badger once space returns.
func Open(dir string, opts Options) (*Store, error) {
	d, noDir, err := openDir(dir, opts.WaitForSpace)
	if err != nil {
		return nil, fmt.Errorf("cannot open store at %q: %w", dir, err)
	}
	memTable := cmp.Or(opts.MemTableSize, DefaultMemTableSize)
	s := &Store{
		dir:        dir,
		logger:     opts.logger(),
		memTable:   memTable,
		limits:     newTxnLimits(memTable),
		syncWrites: opts.SyncInterval == 0,
		dirFd:      d,
		noDir:      noDir,
		minFree:    reserve(opts.MinFreeDisk, DefaultMinFreeDisk),
		minInodes:  reserve(opts.MinFreeInodes, defaultMinFreeInodes),
		kick:       make(chan struct{}, 1),
		opened:     make(chan struct{}),
		log:        newLane("log"),
		views:      newLane("views"),
		stop:       make(chan struct{}),
		gcDone:     make(chan struct{}),
		trimDone:   make(chan struct{}),
		syncDone:   make(chan struct{}),
		diskDone:   make(chan struct{}),
	}
	if r := s.openRefusal(); r != nil {
		if !opts.WaitForSpace {
			d.Close()
			return nil, fmt.Errorf("cannot open store at %q: %w", dir, r)
		}
		s.closed = true
		s.low.Store(r) // logged below, once
		s.down.Store(&refusedError{base: ErrUnavailable, counter: refusedUnavailable,
			msg: fmt.Sprintf("store at %q is not open: %s", dir, r.msg)})
		s.logger.Error("store not opened, the disk is full: webhooks are forwarded but not recorded until space returns",
			"dir", dir, "err", r.msg)
	} else {
		db, err := openDB(dir, s.logger, s.memTable)
		if err != nil {
			d.Close()
			return nil, err
		}
		s.install(db)
		s.space() // allocate Badger's files before the first write
	}
	interval := opts.GCInterval
	if interval <= 0 {
		interval = defaultGCInterval
	}
	go s.writeLoop(s.log)
	go s.writeLoop(s.views)
	go s.guardedGCLoop(interval)
	go s.trimLoop()
	go s.syncLoop(opts.SyncInterval)
	go s.diskLoop()
	sizedStore.Store(s)
	openStores.Store(s, struct{}{})
	return s, nil
}

// reserve is an Options reserve in bytes or inodes: 0 is the default, negative none.
func reserve(v, def int64) uint64 {
	switch {
	case v == 0:
		return uint64(def)
	case v < 0:
		return 0
	}
	return uint64(v)
}

func openDB(dir string, logger *slog.Logger, memTable int64) (*badger.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot open store at %q: %w", dir, err)
	}
	removeAhead(dir, logger)
	db, err := badger.Open(badgerOptions(dir, logger, memTable))
	if err != nil {
		// Badger flattens the flock error into text, so match its message.
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("data directory %q is %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("cannot open store at %q: %w", dir, err)
	}
	return db, nil
}

// badgerOptions sizes Badger for a sidecar: tens of MiB of heap instead of
// Badger's default of several hundred. See README.md for the measurements.
func badgerOptions(dir string, logger *slog.Logger, memTable int64) badger.Options {
	o := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{logger}).
		// Not every commit: the writer syncs the groups that hold a durable request
		// (lane.go), not the materializer's derived ones, or the syncLoop does.
		WithSyncWrites(false).
		// One writer goroutine owns all writes, so there is nothing to conflict with.
		WithDetectConflicts(false).
		WithMemTableSize(memTable).
		WithNumMemtables(numMemtables).
		// A table builder holds its whole table in memory and compaction runs
		// up to a dozen at once: keep every table small (see TableSizeMultiplier).
		WithBaseTableSize(baseTableSize).
		// Without compression a builder holds its table once rather than
		// ratio×capacity plus compressed copies, and reads need no block cache:
		// Badger serves them from the mmapped tables. Indexes and bloom filters
		// are read from the mmaps as well (the index cache only matters with
		// encryption).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		// Everything but keys and tiny values (rollups, index keys) goes to the value
		// log: compaction then rewrites only keys and pointers. Measured with
		// `go run ./bench`: 1 KiB → 64 B raised throughput by about a fifth, halved
		// the closed-loop p99 and cut RSS from ~260 to ~100 MiB; reads (queries) pay
		// one more mmap lookup. Value-log GC reclaims rewritten sessions.
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(vlogFileSize).
		// Two cores: two compactors (the minimum besides none) and few stream goroutines.
		WithNumCompactors(2).
		WithNumGoroutines(2).
		// Badger's expvar counters cost on every write; the size gauge reads the directory.
		WithMetricsEnabled(false)
	// Also in the deeper levels: the default doubles the table size per level.
	o.TableSizeMultiplier = 1
	return o
}

// txnLimits mirror Badger's per-transaction limits (15% of a memtable), so the
// writer can cut a group into transactions at request boundaries and keep
// every request atomic.
type txnLimits struct {
	bytes int64
	count int
}

func newTxnLimits(memTable int64) txnLimits {
	bytes := memTable * 15 / 100
	return txnLimits{bytes: bytes, count: int(bytes / int64(skl.MaxNodeSize))}
}

// fits reports whether count writes of the given estimated size fit one transaction.
func (l txnLimits) fits(count int, bytes int64) bool {
	return count < l.count && bytes < l.bytes
}

// Close stops the writer (after it has committed every queued request), stops
// the GC, trim and disk loops and closes Badger. It waits for running View, Scan and
// Backup calls. Closing twice is harmless: the second call returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return nil
	}
	s.shut, s.closed = true, true
	s.mu.Unlock()

	close(s.log.reqs)
	close(s.views.reqs)
	<-s.log.done
	<-s.views.done
	var logErr error
	if s.flog != nil {
		logErr = s.flog.close()
	}
	close(s.stop)
	<-s.gcDone
	<-s.trimDone
	<-s.syncDone
	<-s.diskDone
	sizedStore.CompareAndSwap(s, nil)
	openStores.Delete(s)
	defer s.dirFd.Close()
	return errors.Join(logErr, s.closeBadger())
}

// attachLog makes l the store's file log, which Close closes and Backup includes;
// false when the store is closing.
func (s *Store) attachLog(l *FileLog) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut || s.flog != nil {
		return false
	}
	s.flog = l
	return true
}

// viewsPosition is the log position of the views' checkpoint (kv.ViewPosKey): a log
// that lost its unsynced tail in a power cut goes on after it, not under it.
func (s *Store) viewsPosition() (uint64, error) {
	v, _, err := s.Get(kv.ViewPosKey())
	applied, _, _ := kv.DecodeViewPos(v)
	return applied, err
}

// Closing is closed once Close has committed the last queued request: background
// users of the store stop then.
func (s *Store) Closing() <-chan struct{} { return s.stop }

// Ready returns nil when the store is open, takes writes and its last commit
// succeeded; /readyz answers 503 with the error otherwise: the disk below the
// reserve (ErrDiskFull), Badger not open or being reopened (ErrUnavailable), or a
// failed commit, reported until a later commit succeeds or Badger is reopened.
func (s *Store) Ready() error {
	s.mu.RLock()
	shut := s.shut
	s.mu.RUnlock()
	if shut {
		return kv.ErrClosed
	}
	if r := s.refused(); r != nil {
		return r
	}
	if p := s.commitErr.Load(); p != nil {
		return fmt.Errorf("last commit to store at %q failed: %w", s.dir, *p)
	}
	return nil
}

// Stats counts group commits since Open.
type Stats struct {
	Commits      uint64 // successful group commits
	Requests     uint64 // requests acknowledged by those commits
	LargestGroup int64  // most requests acknowledged by a single group commit
}

type statCounters struct {
	commits, requests atomic.Uint64
	largest           atomic.Int64
}

func (c *statCounters) add(requests int) {
	c.commits.Add(1)
	c.requests.Add(uint64(requests))
	n := int64(requests)
	for {
		old := c.largest.Load()
		if n <= old || c.largest.CompareAndSwap(old, n) {
			return
		}
	}
}

// Stats returns the commit counters; Requests/Commits is the mean group size.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:      s.stats.commits.Load(),
		Requests:     s.stats.requests.Load(),
		LargestGroup: s.stats.largest.Load(),
	}
}

// badgerLogger keeps Badger quiet: its info and debug lines (replays,
// compactions) would drown the sidecar's own logs.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
