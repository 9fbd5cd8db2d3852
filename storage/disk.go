package storage

// Disk space and inodes. Badger writes its value log, memtables and tables through
// shared mmaps; on a full file system a store into a page that has no block yet is a
// SIGBUS, which kills the process, not an error. The patched ristretto in third_party
// gives every mapped file its blocks when it is created or grows (an ENOSPC error
// instead); on top of that, so that a full disk costs no failed commits, the store
//   - keeps a reserve: with less than Options.MinFreeDisk bytes (or MinFreeInodes
//     inodes) free, it refuses writes with ErrDiskFull — checked before every commit
//     and every 250 ms — and takes them again by itself once space is back;
//   - allocates (fallocate) the value-log file and the memtable file Badger writes
//     into as soon as they appear, and creates the next memtable file ahead of Badger,
//     allocated, so Badger's writes through those maps never need a free block;
//   - does not open Badger on a file system below the reserve, since opening writes a
//     new memtable and value-log file (Options.WaitForSpace opens it later);
//   - stops using Badger after a failed commit (Badger may be left without a memtable:
//     every read then panics and the next write ends the process) and reopens it as
//     soon as the file system lets Badger close and open.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/dgraph-io/badger/v4"
)

// DefaultMinFreeDisk is the free space the data directory's file system keeps by
// default. Badger maps a new value-log file at twice ValueLogFileSize (128 MiB) and
// the store allocates it whole; the next memtable file takes 2×MemTableSize (8 MiB);
// flushes and compactions write new tables (1–4 MiB each, a few dozen at worst)
// before they delete the old ones. 256 MiB holds all of that with room to spare.
const DefaultMinFreeDisk = 256 << 20

const (
	// defaultMinFreeInodes: a compaction creates its new tables before it deletes
	// the old ones — a few dozen files — and a new value-log file needs one more.
	defaultMinFreeInodes = 256
	diskCheckInterval    = 250 * time.Millisecond
	// reopenEvery is the least time between two attempts to open Badger again.
	reopenEvery = time.Second
	// closeWait bounds how long Close waits for a Badger that is still closing
	// after a failed commit (it may wait for inodes to flush its memtable).
	closeWait = 10 * time.Second
)

var (
	// ErrDiskFull is returned by Apply while the data directory's file system has
	// less free space or fewer free inodes than the reserve; nothing was written.
	ErrDiskFull = errors.New("disk full")
	// ErrUnavailable is returned by Apply while Badger is not open: at start-up on
	// a full file system (Options.WaitForSpace), or after a failed commit until the
	// store has reopened it; nothing was written.
	ErrUnavailable = errors.New("store unavailable")
)

// Refused writes by reason, one per Apply call.
var (
	refusedDiskFull    = metrics.NewCounter(`ctwa_sidecar_store_refused_total{reason="disk_full"}`)
	refusedNoInodes    = metrics.NewCounter(`ctwa_sidecar_store_refused_total{reason="no_inodes"}`)
	refusedUnavailable = metrics.NewCounter(`ctwa_sidecar_store_refused_total{reason="unavailable"}`)
)

var (
	_ = metrics.NewGauge(`ctwa_sidecar_store_disk_free_bytes`, func() float64 {
		st, _ := statOf(sizedStore.Load())
		return float64(st.free)
	})
	_ = metrics.NewGauge(`ctwa_sidecar_store_disk_free_inodes`, func() float64 {
		st, ok := statOf(sizedStore.Load())
		if !ok || st.files == 0 {
			return 0
		}
		return float64(st.inodes)
	})
)

func statOf(s *Store) (diskStat, bool) {
	if s == nil {
		return diskStat{}, false
	}
	return statPath(s.dir)
}

// diskStat is what statfs says about a file system: bytes and inodes an
// unprivileged process may still take, and the inode count (0 where the file
// system has no inode limit).
type diskStat struct{ free, inodes, files uint64 }

// refusedError is why the store refuses a write without trying it.
type refusedError struct {
	msg     string
	base    error // ErrDiskFull or ErrUnavailable
	counter *metrics.Counter
}

func (e *refusedError) Error() string { return e.msg }
func (e *refusedError) Unwrap() error { return e.base }

// countRefused counts err by its reason if it is a refusal, and returns it.
func countRefused(err error) error {
	if err != nil {
		var re *refusedError
		if errors.As(err, &re) {
			re.counter.Inc()
		}
	}
	return err
}

// refused returns why writes are refused now, or nil.
func (s *Store) refused() *refusedError {
	if r := s.down.Load(); r != nil {
		return r
	}
	return s.low.Load()
}

// space checks the file system against the reserve and, while Badger is open,
// that the files it writes into are allocated. It records and returns the refusal
// (nil: writes may go ahead).
func (s *Store) space() *refusedError {
	r := s.reserveRefusal()
	if r == nil && s.down.Load() == nil {
		if err := s.allocate(); err != nil {
			r = s.allocRefusal(err)
		}
	}
	s.setLow(r)
	return r
}

// allocRefusal is the refusal for a file Badger would write into that could not be
// allocated: writing into it could fault.
func (s *Store) allocRefusal(err error) *refusedError {
	if st, ok := statFd(s.dirFd); ok && st.files > 0 && st.inodes == 0 {
		return &refusedError{base: ErrDiskFull, counter: refusedNoInodes, msg: fmt.Sprintf(
			"no free inodes on the file system of %q: %v; recording is paused until files are removed", s.dir, err)}
	}
	return &refusedError{base: ErrDiskFull, counter: refusedDiskFull, msg: fmt.Sprintf(
		"disk full: %v; recording is paused until space returns", err)}
}

// reserveRefusal compares the free space and inodes of the file system with the
// reserve. Resuming takes 1/16 more than the reserve, so the store does not flap at
// the threshold.
func (s *Store) reserveRefusal() *refusedError {
	st, ok := statFd(s.dirFd)
	paused := s.low.Load() != nil
	switch {
	case !ok:
		return nil // statfs itself failed: allocation still guards Badger's maps
	case s.minFree > 0 && st.free < withSlack(s.minFree, paused):
		return &refusedError{base: ErrDiskFull, counter: refusedDiskFull, msg: fmt.Sprintf(
			"disk full: %s free on the file system of %q, below the reserve of %s; recording is paused until space returns",
			inMiB(st.free), s.dir, inMiB(s.minFree))}
	case s.minInodes > 0 && st.files > 0 && st.inodes < withSlack(s.minInodes, paused):
		return &refusedError{base: ErrDiskFull, counter: refusedNoInodes, msg: fmt.Sprintf(
			"no free inodes: %d of %d free on the file system of %q, below the reserve of %d; recording is paused until files are removed",
			st.inodes, st.files, s.dir, s.minInodes)}
	}
	return nil
}

func withSlack(n uint64, paused bool) uint64 {
	if paused {
		return n + n/16
	}
	return n
}

func inMiB(n uint64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// setLow records r as the refusal of the disk checks, logging each change.
func (s *Store) setLow(r *refusedError) {
	old := s.low.Swap(r)
	switch {
	case r != nil && (old == nil || old.counter != r.counter):
		s.logger.Error("store refuses writes: webhooks are still forwarded but not recorded", "dir", s.dir, "err", r.msg)
	case r == nil && old != nil:
		s.logger.Info("store takes writes again: space is back above the reserve", "dir", s.dir)
	}
}

// checkBeforeCommit is the writer's last check before a transaction goes to Badger.
func (s *Store) checkBeforeCommit() error {
	if r := s.down.Load(); r != nil {
		return r
	}
	return s.spaceErr()
}

// spaceErr is space as an error (a nil *refusedError is no nil error).
func (s *Store) spaceErr() error {
	if r := s.space(); r != nil {
		return r
	}
	return nil
}

// fail takes Badger out of use after a failed write (a commit, or value-log GC
// that broke it): writes are refused and reads answer kv.ErrClosed until the disk
// loop has closed it and opened it again.
func (s *Store) fail(err error) {
	r := &refusedError{base: ErrUnavailable, counter: refusedUnavailable, msg: fmt.Sprintf(
		"store at %q is being reopened after a failed write: %v", s.dir, err)}
	if s.down.CompareAndSwap(nil, r) {
		s.logger.Error("store failed a write: reopening it; webhooks are still forwarded but not recorded meanwhile",
			"dir", s.dir, "err", err)
	}
	s.keepReadersOff()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// keepReadersOff makes readers answer kv.ErrClosed from now on, before anybody reads
// again: a Badger left without a memtable panics on every read. It runs on the writer
// (holding dbMu) or the GC loop, so it must not wait for mu: an Apply holding mu for
// reading may be waiting for room in the queue. Meanwhile it answers queued requests
// itself (they are refused anyway).
func (s *Store) keepReadersOff() {
	for !s.readersOff.Load() {
		if s.mu.TryLock() {
			s.closed = true
			s.readersOff.Store(true)
			s.mu.Unlock()
			return
		}
		select {
		case q, ok := <-s.log.reqs:
			s.refuseQueued(q, ok)
		case q, ok := <-s.views.reqs:
			s.refuseQueued(q, ok)
		default:
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// refuseQueued answers a request taken from a queue (ok false: the queue is closed).
func (s *Store) refuseQueued(q *request, ok bool) {
	if !ok {
		time.Sleep(50 * time.Microsecond)
		return
	}
	if q.state.CompareAndSwap(queued, taken) {
		var err error = ErrUnavailable
		if r := s.refused(); r != nil {
			err = r
		}
		q.done <- err
	}
}

// diskLoop checks the reserve and the allocation of Badger's files every
// diskCheckInterval, and closes and reopens Badger while it is down.
func (s *Store) diskLoop() {
	defer close(s.diskDone)
	t := time.NewTicker(diskCheckInterval)
	defer t.Stop()
	var last time.Time // last open attempt
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		r := s.space()
		if s.down.Load() == nil {
			continue
		}
		s.takeOutOfUse()
		if !s.closeBroken() || r != nil || time.Since(last) < reopenEvery {
			continue
		}
		last = time.Now()
		s.reopen()
	}
}

// takeOutOfUse keeps readers and the writer off a Badger that failed a write: it is
// closed later, and Badger must not be used while it closes.
func (s *Store) takeOutOfUse() {
	if !s.dbOpen {
		return
	}
	s.gcMu.Lock()
	s.mu.Lock()
	s.closed = true
	s.readersOff.Store(true)
	s.dbMu.Lock()
	s.broken = s.db
	s.dbOpen = false
	s.dbMu.Unlock()
	s.mu.Unlock()
	s.gcMu.Unlock()
}

// closeBroken closes the Badger taken out of use, in the background and once there
// is room for its memtable flush, and reports whether it has closed.
func (s *Store) closeBroken() bool {
	switch {
	case s.broken == nil:
		return true
	case s.closing == nil:
		if !s.roomToClose() {
			return false
		}
		done, old := make(chan struct{}), s.broken
		s.closing = done
		go func() {
			defer close(done)
			// Badger flushes its memtables on Close: it waits for inodes if it must.
			if err := old.Close(); err != nil {
				s.logger.Warn("closing the store after a failed write", "dir", s.dir, "err", err)
			}
		}()
		return false
	}
	select {
	case <-s.closing:
		s.broken, s.closing = nil, nil
		return true
	default:
		return false
	}
}

// roomToClose reports whether the file system has room for Badger's Close: space
// for its memtable flush, and a few inodes for the new tables. Close writes its
// memtables (up to three) into new tables through maps that cannot be allocated
// ahead. With less, Badger is left to the process exit: its logs hold every
// acknowledged write and the next Open replays them, as after kill -9.
func (s *Store) roomToClose() bool {
	st, ok := statFd(s.dirFd)
	return !ok || st.free >= uint64(4*s.memTable) && (st.files == 0 || st.inodes >= 8)
}

// reopen opens Badger again and puts it in use; a failure is logged and retried.
func (s *Store) reopen() {
	err := s.makeDir()
	var db *badger.DB
	if err == nil {
		db, err = openDB(s.dir, s.logger, s.memTable)
	}
	if err != nil {
		if time.Since(s.lastOpenLog) >= 30*time.Second {
			s.logger.Error("cannot open the store yet; retrying", "dir", s.dir, "err", err)
			s.lastOpenLog = time.Now()
		}
		return
	}
	s.install(db)
	s.commitErr.Store(nil)
	s.down.Store(nil)
	if r := s.space(); r != nil { // allocates Badger's new files (as does every commit)
		s.logger.Warn("store open, but it refuses writes", "dir", s.dir, "err", r.msg)
		return
	}
	s.logger.Info("store open: recording resumes", "dir", s.dir)
}

// openDir creates and opens the data directory dir. On a file system without room
// for a new directory (a start-up on a full disk), and if the caller waits for space,
// it opens dir's nearest existing parent instead, which is on the same file system,
// so the reserve can be watched until the disk loop creates dir (makeDir).
func openDir(dir string, waitForSpace bool) (d *os.File, noDir bool, err error) {
	err = os.MkdirAll(dir, 0o700)
	if err != nil && waitForSpace && isNoSpace(err) {
		for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
			if p, perr := os.Open(parent); perr == nil {
				return p, true, nil
			}
			if parent == filepath.Dir(parent) {
				break
			}
		}
	}
	if err != nil {
		return nil, false, err
	}
	d, err = os.Open(dir)
	return d, false, err
}

// makeDir creates the data directory Open had no room for and watches it from now on.
func (s *Store) makeDir() error {
	if !s.noDir {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	// The writer reads dirFd only once down is cleared (reopen), after this.
	s.dirFd.Close()
	s.dirFd, s.noDir = d, false
	return nil
}

// openRefusal is why Open cannot open Badger now: the reserve, or no room to create
// the data directory.
func (s *Store) openRefusal() *refusedError {
	if r := s.reserveRefusal(); r != nil || !s.noDir {
		return r
	}
	return &refusedError{base: ErrDiskFull, counter: refusedDiskFull, msg: fmt.Sprintf(
		"disk full: no room to create the data directory %q; recording is paused until space returns", s.dir)}
}

// install puts an open Badger in use and prepares its files.
func (s *Store) install(db *badger.DB) {
	s.gcMu.Lock()
	s.mu.Lock()
	s.dbMu.Lock()
	s.db, s.dbOpen = db, true
	s.closed = s.shut // a Close that came meanwhile keeps the store closed
	s.readersOff.Store(false)
	s.dbMu.Unlock()
	s.mu.Unlock()
	s.gcMu.Unlock()
	s.alloc.reset(s.dir)
	s.openOnce.Do(func() { close(s.opened) })
}

// Opened is closed once Badger is open: at once for a store opened on a file system
// with space, later for one opened with Options.WaitForSpace below the reserve.
func (s *Store) Opened() <-chan struct{} { return s.opened }

// guardedGCLoop runs value-log GC every interval while writes are accepted (GC
// rewrites values, so it needs space), and takes Badger out of use if GC left it
// unusable.
func (s *Store) guardedGCLoop(interval time.Duration) {
	defer close(s.gcDone)
	s.every(interval, func() bool {
		s.gcMu.Lock()
		defer s.gcMu.Unlock()
		if s.refused() != nil || !s.dbOpen {
			return true
		}
		s.collectGarbage()
		if !usable(s.db) {
			s.fail(errors.New("value-log GC left Badger without a memtable"))
		}
		return true
	})
}

// probeKey is read to tell whether Badger still has its memtables.
var probeKey = []byte("probe\x00")

// usable reports whether db can still serve reads: after failing to create a
// memtable file Badger has none, and every read panics on it.
func usable(db *badger.DB) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	err := db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(probeKey)
		return err
	})
	return err == nil || errors.Is(err, badger.ErrKeyNotFound)
}

// closeBadger closes Badger for Store.Close: the one in use, or one taken out of use
// after a failed write, waiting up to closeWait. Without room for Badger's memtable
// flush it leaves Badger to the process exit instead, after a sync: the flush would
// fail (or, on a file system without fallocate, write into blocks it cannot give: a
// SIGBUS), and the next start replays the memtable anyway.
func (s *Store) closeBadger() error {
	if !s.dbOpen && s.broken != nil && s.closing == nil {
		s.closeBroken() // starts closing it if there is room
	}
	db, done := s.db, s.closing
	switch {
	case done != nil:
		db = nil // closing already
	case !s.dbOpen && s.broken != nil:
		s.logger.Warn("disk full: the store is left for the next start to replay instead of closed", "dir", s.dir)
		return nil
	case !s.dbOpen:
		return nil
	case !s.roomToClose():
		err := s.syncDir()
		s.logger.Warn("disk full: the store is left for the next start to replay instead of closed (closing writes its memtable into new files)",
			"dir", s.dir, "sync_err", err)
		return nil
	default:
		ch := make(chan struct{})
		done = ch
		go func() {
			defer close(ch)
			s.closeErr = db.Close()
		}()
	}
	select {
	case <-done:
	case <-time.After(closeWait):
		return fmt.Errorf("store at %q is still closing after %s (Badger waits for space or inodes to flush its memtable); every acknowledged write is in its logs", s.dir, closeWait)
	}
	if db == nil {
		return nil
	}
	if s.closeErr != nil {
		return fmt.Errorf("cannot close store at %q: %w", s.dir, s.closeErr)
	}
	removeAhead(s.dir, s.logger)
	return nil
}

// ---- allocation of the files Badger writes through mmaps ----

// allocation tracks the value-log file and memtable file Badger writes into.
type allocation struct {
	mu   sync.Mutex
	dir  string
	vlog int // newest value-log file, allocated
	mem  int // newest memtable file in use, allocated
	// ahead is set once memtable file mem+1 exists with its blocks allocated.
	ahead bool
	// discard is set once Badger's DISCARD file (1 MiB, mapped) is allocated.
	discard bool
	// off is set where the file system cannot fallocate: the reserve is then the only
	// guard (the next memtable file is still created ahead, which holds its inode).
	off bool
}

// Badger's file names: value-log files, memtable files, and the discard statistics
// it keeps in a mapped file.
const discardName = "DISCARD"

func vlogName(fid int) string { return fmt.Sprintf("%06d.vlog", fid) }
func memName(fid int) string  { return fmt.Sprintf("%05d.mem", fid) }

// reset finds the files of a Badger just opened in dir.
func (a *allocation) reset(dir string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dir, a.vlog, a.mem, a.ahead, a.discard = dir, 0, 0, false, false
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if fid, ok := fileID(name, ".vlog"); ok {
			a.vlog = max(a.vlog, fid)
		}
		if fid, ok := fileID(name, ".mem"); ok {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				a.mem = max(a.mem, fid)
			}
		}
	}
	// The next allocate starts at the newest files (Badger numbers both from 1).
	a.vlog = max(a.vlog-1, 0)
	a.mem = max(a.mem-1, 0)
}

func fileID(name, ext string) (int, bool) {
	base, ok := strings.CutSuffix(name, ext)
	if !ok {
		return 0, false
	}
	fid, err := strconv.Atoi(base)
	return fid, err == nil
}

// allocate allocates every value-log and memtable file Badger started since the
// last call and creates the next memtable file ahead. It costs two stat calls when
// nothing is new.
func (s *Store) allocate() error {
	a := &s.alloc
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.discard {
		if size, exists := fileSize(s.dirFd, discardName); exists {
			if err := s.allocateFile(discardName, size); err != nil {
				return err
			}
		}
		a.discard = true
	}
	for {
		name := vlogName(a.vlog + 1)
		size, exists := fileSize(s.dirFd, name)
		if !exists {
			break
		}
		if err := s.allocateFile(name, size); err != nil {
			return err
		}
		a.vlog++
	}
	for {
		name := memName(a.mem + 1)
		size, exists := fileSize(s.dirFd, name)
		if !exists || size == 0 {
			break // created ahead and not in use yet, or not there at all
		}
		if err := s.allocateFile(name, size); err != nil {
			return err
		}
		a.mem++
		a.ahead = false
	}
	if !a.ahead {
		if err := s.createAhead(memName(a.mem + 1)); err != nil {
			return err
		}
		a.ahead = true
	}
	return nil
}

// allocateFile allocates the blocks of the first size bytes of name, keeping its size
// (Badger may have truncated it meanwhile).
func (s *Store) allocateFile(name string, size int64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // Badger removed it meanwhile
	}
	if err != nil {
		return fmt.Errorf("cannot allocate %s: %w", name, err)
	}
	defer f.Close()
	if s.alloc.off || allocatedBytes(f) >= size {
		return nil
	}
	return s.checkAllocErr(name, size, fallocate(f, size))
}

// createAhead creates Badger's next memtable file with its blocks allocated and
// length 0: Badger then takes it as new (it extends an empty file to the length it
// maps, which keeps the blocks).
func (s *Store) createAhead(name string) error {
	path := filepath.Join(s.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create the next memtable file %s: %w", name, err)
	}
	defer f.Close()
	size := 2 * s.memTable // the length Badger maps
	if s.alloc.off || allocatedBytes(f) >= size {
		return nil
	}
	return s.checkAllocErr(name, size, fallocate(f, size))
}

func (s *Store) checkAllocErr(name string, size int64, err error) error {
	if errors.Is(err, errNoFallocate) {
		s.alloc.off = true
		s.logger.Warn("the data directory's file system cannot preallocate files: only the free-space reserve keeps Badger's maps from a full disk",
			"dir", s.dir, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot allocate %s of %s: %w", inMiB(uint64(size)), name, err)
	}
	return nil
}

// removeAhead deletes memtable files of length 0 — made ahead by a previous run,
// or cut short by a crash — which Badger's Open would refuse.
func removeAhead(dir string, logger *slog.Logger) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, ok := fileID(e.Name(), ".mem"); !ok {
			continue
		}
		if info, err := e.Info(); err == nil && info.Size() == 0 {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				logger.Warn("cannot remove an empty memtable file", "dir", dir, "file", e.Name(), "err", err)
			}
		}
	}
}
