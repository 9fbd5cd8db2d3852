package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// FileLog is the log of a local sidecar: append-only segment files in the store's
// log/ directory (filelog_segment.go), its dedupe marks in memory and in sealed runs
// (filelog_claims.go, filelog_runs.go).
// A webhook's append is one write of its group's frames, fsynced as the store's
// commits are (Options.SyncInterval), and never waits on Badger: a view commit, a
// memtable flush or a compaction stall cannot delay an acknowledgement. The store's
// disk checks still apply: while the store refuses writes, so does the log.
type FileLog struct {
	s   *Store
	dir string

	mu   sync.RWMutex // guards segs; the writer appends to it
	segs []*segment

	reqs        chan *logRequest
	done        chan struct{}
	segmentSize int64 // tests make it small

	// Only the writer goroutine touches these.
	next   uint64
	claims *claims
	tx     fileTx
	buf    []byte
	points []point  // index points of the group being committed
	staged []uint64 // claims of the group being committed, undone if its write fails

	cache entryCache
}

type logRequest struct {
	ctx   context.Context
	fn    func(kv.LogTx) error
	state atomic.Int32
	done  chan error
}

var logRequestPool = sync.Pool{New: func() any { return &logRequest{done: make(chan error, 1)} }}

// OpenLog opens the store's log (creating it, and moving into it a log the store kept
// in Badger before), positioned after its last entry and after the views' checkpoint.
// The store closes it.
func OpenLog(s *Store) (*FileLog, error) {
	l := &FileLog{s: s, dir: filepath.Join(s.dir, "log"), reqs: make(chan *logRequest, 2*maxGroupRequests),
		done: make(chan struct{}), claims: newClaims(), segmentSize: segmentSize}
	l.tx.l = l
	if err := l.open(); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("cannot open the log in %q: %w", l.dir, err)
	}
	if !s.attachLog(l) {
		l.closeFiles()
		return nil, kv.ErrClosed
	}
	go l.run()
	return l, nil
}

func (l *FileLog) open() error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	firsts, err := listSegments(l.dir, segmentExt)
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	if err := l.claims.loadRuns(l.dir, now); err != nil {
		return err
	}
	from, err := l.loadClaims(firsts, now)
	if err != nil {
		return err
	}
	for i, first := range firsts {
		seg, err := openSegment(l.dir, first)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, seg)
		if err := l.recover(seg, first >= from, i == len(firsts)-1, now); err != nil {
			return err
		}
	}
	pos, err := l.s.viewsPosition()
	if err != nil {
		return err
	}
	l.next = max(l.next, pos+1, 1)
	if len(l.segs) == 0 {
		return l.migrate(now)
	}
	return nil
}

// loadClaims reads the newest claims snapshot and returns the first segment whose
// claims it does not hold (0: none; every segment's records are read).
func (l *FileLog) loadClaims(firsts []uint64, now int64) (uint64, error) {
	snaps, err := listSegments(l.dir, claimsExt)
	if err != nil || len(snaps) == 0 {
		return 0, err
	}
	seq := snaps[len(snaps)-1]
	if i := sort.Search(len(firsts), func(i int) bool { return firsts[i] >= seq }); i == len(firsts) || firsts[i] != seq {
		return 0, nil // no segment starts there (removed by hand?): read every segment
	}
	return seq, l.claims.loadSnapshot(filepath.Join(l.dir, seqName(seq, claimsExt)), now)
}

// recover reads a segment at open: its claims when the snapshot does not hold them,
// and, for the last one, its end (a frame cut short by a crash is cut off) and index.
func (l *FileLog) recover(seg *segment, withClaims, last bool, now int64) error {
	if !withClaims && !last {
		st, err := seg.f.Stat()
		if err != nil {
			return err
		}
		seg.size.Store(st.Size())
		return nil
	}
	seg.indexed = true
	next := seg.first
	claim := l.claims.loadRecord(now)
	end, err := seg.scan(0, true, func(off int64, payload []byte) (bool, error) {
		seg.addPoint(next, off)
		return true, walkRecords(payload, func(seq uint64, _ []byte) error {
			next = seq + 1
			return nil
		}, claim)
	})
	switch {
	case errors.Is(err, errCorruptFrame) && last:
		// The tail of a write a crash cut short: it was never acknowledged.
		l.s.logger.Warn("cutting off the end of the log: a write cut short by a crash", "segment", seg.path, "offset", end)
		if err := seg.f.Truncate(end); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("segment %s: %w at offset %d", seg.path, err, end)
	}
	seg.size.Store(end)
	l.next = max(l.next, next)
	return nil
}

// Append runs fn in the log's next group commit and returns once what it claimed and
// added is written (and fsynced, unless Options.SyncInterval).
func (l *FileLog) Append(ctx context.Context, fn func(tx kv.LogTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if re := l.s.refused(); re != nil { // disk full, or the store not open (disk.go)
		return countRefused(re)
	}
	return l.submit(ctx, fn)
}

// submit queues fn for the writer and waits for its answer.
func (l *FileLog) submit(ctx context.Context, fn func(tx kv.LogTx) error) error {
	r := logRequestPool.Get().(*logRequest)
	r.ctx, r.fn = ctx, fn
	r.state.Store(queued)
	if err := enqueueOn(l.s, l.reqs, ctx, r); err != nil {
		logRequestPool.Put(r)
		return err
	}
	select {
	case err := <-r.done:
		r.ctx, r.fn = nil, nil
		logRequestPool.Put(r)
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err() // the writer skips it; never reused
		}
		err := <-r.done
		r.ctx, r.fn = nil, nil
		logRequestPool.Put(r)
		return err
	}
}

// errStopWalk ends a walk over a segment's records early; it is never returned.
var errStopWalk = errors.New("stop")

// Last is the sequence number of the last entry appended (0: none). Call it before the
// log takes appends.
func (l *FileLog) Last() uint64 { return l.next - 1 }

// Entries calls fn with every entry after sequence number after, in log order, until fn
// returns more=false or an error. entry is valid only during the call.
func (l *FileLog) Entries(after uint64, fn func(seq uint64, entry []byte) (more bool, err error)) error {
	if after == math.MaxUint64 {
		return nil
	}
	segs := l.segments()
	i := max(sort.Search(len(segs), func(i int) bool { return segs[i].first > after+1 })-1, 0)
	for ; i < len(segs); i++ {
		seg := segs[i]
		if err := seg.index(seg.first); err != nil {
			return err
		}
		_, err := seg.scan(seg.seek(after+1), false, func(_ int64, payload []byte) (bool, error) {
			return true, walkRecords(payload, func(seq uint64, e []byte) error {
				if seq <= after {
					return nil
				}
				more, err := fn(seq, e)
				if err == nil && !more {
					return errStopWalk
				}
				return err
			}, nil)
		})
		if err == errStopWalk {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Entry returns entry seq; ok is false when it was never committed. It reads the frames
// from the nearest index point one by one (at most indexStride bytes and the frame that
// holds seq) and keeps the last frame it read: a refresh reads the entries of one frame
// one after another.
func (l *FileLog) Entry(seq uint64) ([]byte, bool, error) {
	l.cache.mu.Lock()
	defer l.cache.mu.Unlock()
	if e, ok := l.cache.find(seq); ok {
		return e, true, nil
	}
	segs := l.segments()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].first > seq }) - 1
	if i < 0 {
		return nil, false, nil
	}
	seg := segs[i]
	if err := seg.index(seg.first); err != nil {
		return nil, false, err
	}
	for off, limit := seg.seek(seq), seg.size.Load(); off < limit; {
		payload, next, err := l.cache.read(seg, off, limit)
		if err != nil {
			return nil, false, fmt.Errorf("cannot read log segment %s: %w", seg.path, err)
		}
		e, found, past := entryIn(payload, seq)
		if found {
			return append([]byte(nil), e...), true, nil
		}
		if past {
			break
		}
		off = next
	}
	return nil, false, nil
}

// entryIn finds entry seq in a frame's payload; past reports that the frame holds
// later entries only (seq is not in the log).
func entryIn(payload []byte, seq uint64) (e []byte, found, past bool) {
	walkRecords(payload, func(s uint64, v []byte) error {
		switch {
		case s == seq:
			e, found = v, true
			return errStopWalk
		case s > seq:
			past = true
			return errStopWalk
		}
		return nil
	}, nil)
	return e, found, past
}

func (l *FileLog) segments() []*segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs
}

// entryCache holds the bytes Entry read last, a frame and usually the ones after it,
// and which frame it returned; its mutex serializes Entry.
type entryCache struct {
	mu      sync.Mutex
	payload []byte   // the frame Entry returned last; aliases buf
	seg     *segment // buf holds seg's bytes from off on
	off     int64
	buf     []byte
}

// frameReadAhead is what one read of the log takes: a frame closes past maxFrame,
// and small ones (a group of one request) follow each other within an index stride,
// so that finding an entry usually costs one pread, not one for each frame walked.
const frameReadAhead = 2 * maxFrame

// find looks for seq in the cached frame.
func (c *entryCache) find(seq uint64) ([]byte, bool) {
	if c.payload == nil {
		return nil, false
	}
	e, found, _ := entryIn(c.payload, seq)
	if !found {
		return nil, false
	}
	return append([]byte(nil), e...), true
}

// read returns the payload of seg's frame at off and the offset after it, from the
// bytes read before when they hold it. Bytes below limit (the segment's size) never
// change: the log only appends, and cuts off only what it never made visible.
func (c *entryCache) read(seg *segment, off, limit int64) ([]byte, int64, error) {
	c.payload = nil
	hdr, err := c.bytes(seg, off, frameHeader, limit)
	if err != nil {
		return nil, 0, err
	}
	n := int64(binary.LittleEndian.Uint32(hdr))
	if n > maxFrameRead || off+frameHeader+n > limit {
		return nil, 0, errCorruptFrame
	}
	frame, err := c.bytes(seg, off, frameHeader+n, limit)
	if err != nil {
		return nil, 0, err
	}
	payload, err := framePayload(frame)
	if err != nil {
		return nil, 0, err
	}
	c.payload = payload
	return payload, off + frameHeader + n, nil
}

// bytes returns n bytes of seg at off, reading them (and up to frameReadAhead, within
// limit) unless the buffer holds them.
func (c *entryCache) bytes(seg *segment, off, n, limit int64) ([]byte, error) {
	if c.seg == seg && off >= c.off && off+n <= c.off+int64(len(c.buf)) {
		return c.buf[off-c.off : off-c.off+n], nil
	}
	c.seg = nil
	size := min(max(n, frameReadAhead), limit-off)
	if size < n {
		return nil, errCorruptFrame
	}
	if int64(cap(c.buf)) < size {
		c.buf = make([]byte, size)
	}
	c.buf = c.buf[:size]
	if _, err := seg.f.ReadAt(c.buf, off); err != nil {
		return nil, err
	}
	c.seg, c.off = seg, off
	return c.buf[:n], nil
}

// close stops the writer after it committed every queued request, fsyncs and closes
// the files. The store calls it, once its lanes have stopped taking requests.
func (l *FileLog) close() error {
	close(l.reqs)
	<-l.done
	err := l.sync()
	if cerr := l.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (l *FileLog) closeFiles() error {
	l.claims.closeRuns()
	var err error
	for _, seg := range l.segs {
		if cerr := seg.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
