package storage

import (
	"fmt"
	"os"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// maxRequestBytes caps what one request writes to the file log; above it the request
// fails with kv.ErrTooBig and the engine splits it, as for Badger's transactions.
const maxRequestBytes = 16 << 20

// run is the file log's only writer: it takes whatever is queued (up to
// maxGroupRequests) as one group, runs each request's function, writes the group's
// frames with one write, fsyncs it when commits are fsynced one by one, and only then
// answers the requests.
func (l *FileLog) run() {
	defer close(l.done)
	var group []*logRequest
	for r := range l.reqs {
		group = append(group[:0], r)
	gather:
		for len(group) < maxGroupRequests {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break gather
				}
				group = append(group, r)
			default:
				break gather
			}
		}
		l.commit(group)
		clear(group)
	}
}

// commit writes one group. A request whose function fails is answered with its error
// and leaves nothing behind; a failed write fails every request of the group and
// leaves the file and the claims as they were.
func (l *FileLog) commit(group []*logRequest) {
	start := time.Now()
	seg := l.active()
	base := seg.size.Load()
	next0 := l.next
	l.buf, l.staged = l.buf[:0], l.staged[:0]
	frame := -1
	points := l.points[:0]
	ok := group[:0]
	for _, r := range group {
		if !r.state.CompareAndSwap(queued, taken) {
			continue // abandoned by its caller
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		if frame < 0 {
			frame = len(l.buf)
			points = append(points, point{l.next, base + int64(frame)})
			l.buf = append(l.buf, make([]byte, frameHeader)...)
		}
		if err := l.runRequest(r, frame); err != nil {
			r.done <- err
			continue
		}
		ok = append(ok, r)
		if len(l.buf)-frame >= maxFrame {
			frame = l.closeFrame(frame)
		}
	}
	l.closeFrame(frame)
	l.points = points
	var err error
	if len(ok) > 0 {
		err = l.write(seg, base, points)
		if err != nil {
			for _, k := range l.staged {
				l.claims.remove(k)
			}
			l.next = next0
		}
	}
	l.record(len(ok), start, err)
	for _, r := range ok {
		r.done <- err
	}
	if err == nil && seg.size.Load() >= l.segmentSize {
		l.rotate()
	}
}

// runRequest runs a request's function on the group's buffer; when it fails (or
// panics) it takes back what the function wrote and claimed.
func (l *FileLog) runRequest(r *logRequest, frame int) (err error) {
	mark, claimMark, next := len(l.buf), len(l.staged), l.next
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("log append panicked: %v", p)
		}
		if err == nil && len(l.buf)-mark > maxRequestBytes {
			err = fmt.Errorf("%w: %d bytes for the log; the limit is %d", kv.ErrTooBig, len(l.buf)-mark, maxRequestBytes)
		}
		if err != nil {
			l.buf, l.next = l.buf[:mark], next
			for _, k := range l.staged[claimMark:] {
				l.claims.remove(k)
			}
			l.staged = l.staged[:claimMark]
		}
	}()
	l.tx.now = time.Now()
	return r.fn(&l.tx)
}

// closeFrame seals the frame at buf[frame:] (dropping it when empty) and returns -1:
// the next request opens a new one.
func (l *FileLog) closeFrame(frame int) int {
	switch {
	case frame < 0:
	case len(l.buf)-frame == frameHeader:
		l.buf = l.buf[:frame]
	default:
		sealFrame(l.buf, frame)
	}
	return -1
}

// write appends the group's frames at base; on a failure it cuts the segment back.
func (l *FileLog) write(seg *segment, base int64, points []point) error {
	if len(l.buf) == 0 {
		return nil
	}
	if _, err := seg.f.WriteAt(l.buf, base); err != nil {
		seg.f.Truncate(base)
		return fmt.Errorf("cannot write the log at %q: %w", seg.path, err)
	}
	if l.s.syncWrites {
		if err := seg.f.Sync(); err != nil {
			seg.f.Truncate(base)
			return fmt.Errorf("cannot fsync the log at %q: %w", seg.path, err)
		}
	}
	for _, p := range points {
		if p.off < base+int64(len(l.buf)) {
			seg.addPoint(p.seq, p.off)
		}
	}
	seg.size.Store(base + int64(len(l.buf)))
	return nil
}

// record counts the group as the store counts its log lane's commits.
func (l *FileLog) record(acked int, start time.Time, err error) {
	lane := l.s.log
	lane.commitDuration.UpdateDuration(start)
	lane.batchRequests.Update(float64(acked))
	if err != nil {
		commitErrors.Inc()
		failed := err // only a failure's error goes to the heap
		l.s.commitErr.Store(&failed)
		l.s.logger.Error("log write failed: its webhooks were not acknowledged", "err", err)
		return
	}
	if acked > 0 {
		l.s.commitErr.Store(nil)
		l.s.stats.add(acked)
	}
}

func (l *FileLog) active() *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[len(l.segs)-1]
}

// rotate seals the last segment and starts the next, sealing the claims taken since
// the last rotation into a run (claims.seal) so that opening the log reads only the
// segments after it. A failure leaves the
// log appending to the last segment; the next commit tries again.
func (l *FileLog) rotate() {
	old := l.active()
	err := old.f.Sync()
	var seg *segment
	if err == nil {
		seg, err = openSegment(l.dir, l.next)
	}
	if err == nil {
		seg.indexed = true
		if err = syncPath(l.dir); err == nil {
			err = l.claims.seal(l.dir, l.next, time.Now().Unix())
		}
		if err != nil {
			seg.f.Close()
			os.Remove(seg.path)
		}
	}
	if err != nil {
		l.s.logger.Warn("cannot start the next log segment; appending to the last one", "err", err)
		return
	}
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
}

// sync fsyncs the last segment (the store's sync loop calls it when commits are not
// fsynced one by one).
func (l *FileLog) sync() error {
	return l.active().f.Sync()
}

// fileTx is a request's view of the log: claims are decided at once against the
// claims in memory (those of earlier requests of the group included), records go to
// the group's buffer.
type fileTx struct {
	l   *FileLog
	now time.Time
}

func (t *fileTx) Claim(key, value []byte, ttl time.Duration) ([]byte, bool, error) {
	l := t.l
	k := claimHash(key)
	if held, ok, err := l.claims.get(k, t.now.Unix()); ok || err != nil {
		return held, false, err
	}
	expires := expiry(t.now, ttl)
	l.claims.put(k, value, expires)
	l.staged = append(l.staged, k)
	l.buf = appendClaimRecord(l.buf, key, value, expires)
	return nil, true, nil
}

func (t *fileTx) Held(key []byte) ([]byte, bool, error) {
	return t.l.claims.get(claimHash(key), t.now.Unix())
}

func (t *fileTx) Add(entry []byte, seq *uint64) {
	*seq = t.l.next
	t.l.next++
	t.l.buf = appendEntryRecord(t.l.buf, *seq, entry)
}

func (t *fileTx) Last() uint64 { return t.l.next - 1 }
