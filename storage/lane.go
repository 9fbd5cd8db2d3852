package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/dgraph-io/badger/v4"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/buckets"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// maxGroupRequests caps one group so a commit's latency stays bounded under a flood.
const maxGroupRequests = 512

var commitErrors = metrics.NewCounter("ctwa_sidecar_store_commit_errors_total")

// lane is one writer goroutine with its queue. The store has two: the log lane takes
// the appends a webhook waits for, the view lane everything derived or edited through
// the API, so an acknowledgement never queues behind a materializer batch or a refresh.
type lane struct {
	name           string
	reqs           chan *request
	done           chan struct{}
	batchRequests  *metrics.PrometheusHistogram
	commitDuration *metrics.PrometheusHistogram
}

func newLane(name string) *lane {
	return &lane{
		name: name,
		reqs: make(chan *request, 2*maxGroupRequests),
		done: make(chan struct{}),
		batchRequests: metrics.GetOrCreatePrometheusHistogramExt(
			fmt.Sprintf(`ctwa_sidecar_store_batch_requests{lane=%q}`, name), buckets.Count),
		commitDuration: metrics.GetOrCreatePrometheusHistogramExt(
			fmt.Sprintf(`ctwa_sidecar_store_commit_duration_seconds{lane=%q}`, name), buckets.Latency),
	}
}

// Request states: the writer takes a queued request, or its caller abandons it
// when ctx ends first. Whoever wins the swap decides whether fn runs.
const (
	queued int32 = iota
	taken
	abandoned
)

type request struct {
	ctx context.Context
	fn  func(kv.Batch) error
	// A log append (Log.Append) runs logFn on log's tx: fn is then runLog, bound once
	// when the request was made, so that an append allocates no closure.
	logFn  func(kv.LogTx) error
	log    *Log
	runLog func(kv.Batch) error
	state  atomic.Int32
	done   chan error // buffered: the writer never blocks on a caller
	// durable requests are fsynced before they are answered (unless SyncInterval).
	durable bool

	// Set by the writer once fn succeeded: the request's ops are batch.ops[from:to].
	from, to int
	bytes    int64
	err      error // result of the request's transaction
}

var requestPool = sync.Pool{New: func() any {
	r := &request{done: make(chan error, 1)}
	r.runLog = r.appendLog
	return r
}}

// appendLog runs the request's log append on the batch of its group.
func (r *request) appendLog(b kv.Batch) error {
	tx := &r.log.tx
	tx.b = b
	err := r.logFn(tx)
	tx.b = nil
	return err
}

// Apply runs fn on the view lane's writer goroutine against the Batch of the current group
// and returns after the group has been durably committed: nil means every write
// fn made survives a crash.
//
// Requests run one after another in arrival order, so fn sees, through
// Batch.Get, the writes of requests queued before it. fn must be quick (it
// holds up every other writer), must not call Apply, View or Scan, and must not
// keep the Batch or values from Batch.Get after it returns.
//
// If fn returns an error (or panics), its writes are dropped, later requests do
// not see them, and only this caller gets the error. A request's writes are
// always committed atomically, in one Badger transaction; a request bigger than
// a transaction fails with kv.ErrTooBig. A group bigger than one transaction is
// cut into several between requests, committed in order, and answered after
// the last: if one fails, its requests and all later ones get the error and
// none of their writes is visible (earlier transactions stay committed).
//
// If ctx ends before the writer picks the request up, Apply returns ctx.Err()
// and fn never runs; once fn has run, Apply waits for the commit.
func (s *Store) Apply(ctx context.Context, fn func(b kv.Batch) error) error {
	return s.apply(ctx, s.views, true, fn)
}

// Derive is Apply for writes that can be derived again from the log: their commit
// is not fsynced of its own. A crash may lose them; it never tears a transaction, and
// any later durable commit makes them durable too (Badger's write-ahead log is one file).
func (s *Store) Derive(ctx context.Context, fn func(b kv.Batch) error) error {
	return s.apply(ctx, s.views, false, fn)
}

// Append is Apply on the log lane: its own writer goroutine and group commits, for
// the log appends an acknowledgement waits for. Its requests see each other's writes
// through Batch.Get, not those of pending view-lane requests; keys written on one lane
// must not be written on the other.
func (s *Store) Append(ctx context.Context, fn func(b kv.Batch) error) error {
	return s.apply(ctx, s.log, true, fn)
}

func (s *Store) apply(ctx context.Context, l *lane, durable bool, fn func(b kv.Batch) error) error {
	r := requestPool.Get().(*request)
	r.fn = fn
	return s.submit(ctx, l, durable, r)
}

// submit queues r on lane l and waits for its commit.
func (s *Store) submit(ctx context.Context, l *lane, durable bool, r *request) error {
	if err := ctx.Err(); err != nil {
		r.release()
		return err
	}
	if re := s.refused(); re != nil { // disk full, or Badger not open (disk.go)
		r.release()
		return countRefused(re)
	}
	r.ctx, r.durable = ctx, durable
	if err := s.enqueue(l, r); err != nil {
		r.release()
		return err
	}
	return countRefused(r.wait())
}

func (s *Store) enqueue(l *lane, r *request) error { return enqueueOn(s, l.reqs, r.ctx, r) }

// enqueueOn queues r on a writer's queue (a lane's or the file log's) unless the store
// is closed or ctx ends first. It holds s.mu while it waits, so Close closes a queue
// only once nothing can send on it.
func enqueueOn[R any](s *Store, queue chan R, ctx context.Context, r R) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return kv.ErrClosed
	}
	select {
	case queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *request) wait() error {
	select {
	case err := <-r.done:
		r.release()
		return err
	case <-r.ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			// The queue still points at r and the writer will skip it: never reuse it.
			return r.ctx.Err()
		}
		err := <-r.done
		r.release()
		return err
	}
}

func (r *request) release() {
	r.ctx, r.fn, r.logFn, r.log, r.err = nil, nil, nil, nil, nil
	r.state.Store(queued)
	requestPool.Put(r)
}

// group is the writer's state for one round: the shared batch and the requests whose fn succeeded.
type group struct {
	batch   *Batch
	reqs    []*request
	seen    int   // requests taken from the queue, failed ones included
	bytes   int64 // estimated size of the ops of reqs
	durable bool  // a request of reqs is durable: fsync before answering
}

func (g *group) reset() {
	g.batch.reset()
	clear(g.reqs) // let the pool have them back
	g.reqs = g.reqs[:0]
	g.seen, g.bytes, g.durable = 0, 0, false
}

// writeLoop is the only goroutine that writes to Badger on lane l. It blocks while
// idle and then takes whatever is queued, so a lone request is committed at once.
func (s *Store) writeLoop(l *lane) {
	defer close(l.done)
	g := &group{batch: newBatch(nil, &s.losses, s.limits)}
	for r := range l.reqs {
		s.dbMu.RLock() // Badger is not swapped during a group (disk.go)
		g.batch.db = s.db
		s.gather(l, g, r)
		if len(g.reqs) > 0 {
			s.commitGroup(l, g)
		}
		g.reset()
		s.dbMu.RUnlock()
	}
}

// gather runs r and then every queued request, until the queue is empty or the group is full.
func (s *Store) gather(l *lane, g *group, r *request) {
	for {
		s.run(g, r)
		if g.seen >= maxGroupRequests || g.bytes >= s.limits.bytes {
			return
		}
		var ok bool
		select {
		case r, ok = <-l.reqs:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// run applies one request to the group's batch, or answers it at once if it
// was abandoned or its fn failed.
func (s *Store) run(g *group, r *request) {
	g.seen++
	if !r.state.CompareAndSwap(queued, taken) {
		return
	}
	if err := r.ctx.Err(); err != nil {
		r.done <- err
		return
	}
	if re := s.refused(); re != nil {
		r.done <- re
		return
	}
	m := g.batch.begin()
	err := call(r.fn, g.batch)
	if err == nil {
		err = g.batch.err
	}
	if err == nil {
		err = s.checkSize(g.batch)
	}
	if err != nil {
		g.batch.rollback(m)
		s.losses.Add(1)
		r.done <- err
		return
	}
	r.from, r.to = m.ops, len(g.batch.ops)
	_, r.bytes = g.batch.requestSize()
	g.bytes += r.bytes
	g.durable = g.durable || r.durable
	g.reqs = append(g.reqs, r)
}

// call turns a panic in fn into that request's error, so one bad payload
// cannot take the writer, and every webhook waiting on it, down.
func call(fn func(kv.Batch) error, b *Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store write panicked: %v", p)
		}
	}()
	return fn(b)
}

func (s *Store) checkSize(b *Batch) error {
	count, bytes := b.requestSize()
	if s.limits.fits(count, bytes) {
		return nil
	}
	return fmt.Errorf("%w: %d writes of %d bytes; the limit is %d writes and %d bytes",
		kv.ErrTooBig, count, bytes, s.limits.count-1, s.limits.bytes-1)
}

// commitGroup commits the group in as few transactions as fit, records the
// outcome, and only then answers each request with the result of its
// transaction. After a failed transaction the later ones are not attempted:
// their requests may have read its writes.
func (s *Store) commitGroup(l *lane, g *group) {
	start := time.Now()
	var err error
	acked := 0
	for i := 0; i < len(g.reqs); {
		j := s.chunkEnd(g.reqs, i)
		if err == nil {
			err = s.commitOps(g.batch, g.reqs[i].from, g.reqs[j-1].to)
		}
		if err == nil {
			acked += j - i
		}
		for _, r := range g.reqs[i:j] {
			r.err = err
		}
		i = j
	}
	if err == nil && g.durable && s.syncWrites {
		if err = s.syncCommits(); err != nil {
			acked = 0
			for _, r := range g.reqs {
				r.err = err
			}
		}
	}
	s.record(l, len(g.reqs), acked, start, err)
	if lost := len(g.reqs) - acked; lost > 0 {
		s.losses.Add(uint64(lost))
	}
	for _, r := range g.reqs {
		r.done <- r.err
	}
}

// chunkEnd returns the end of the run of requests starting at i that fits one
// transaction; run has checked that each request fits alone.
func (s *Store) chunkEnd(reqs []*request, i int) int {
	count, bytes := 0, int64(0)
	j := i
	for ; j < len(reqs); j++ {
		c, b := count+reqs[j].to-reqs[j].from, bytes+reqs[j].bytes
		if j > i && !s.limits.fits(c, b) {
			break
		}
		count, bytes = c, b
	}
	return j
}

// syncCommits makes every commit so far durable: Badger's write-ahead log and value log.
func (s *Store) syncCommits() error {
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("cannot fsync store at %q: %w", s.dir, err)
	}
	return nil
}

func (s *Store) commitOps(b *Batch, from, to int) error {
	if err := s.checkBeforeCommit(); err != nil {
		return err
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	entries := make([]badger.Entry, to-from)
	for i := from; i < to; i++ {
		if b.superseded(i, to) {
			continue // a later write of the same transaction replaces it
		}
		if err := b.stage(txn, i, &entries[i-from]); err != nil {
			return fmt.Errorf("cannot stage write to store at %q: %w", s.dir, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("cannot commit %d writes to store at %q: %w", to-from, s.dir, err)
	}
	return nil
}

func (s *Store) record(l *lane, requests, acked int, start time.Time, err error) {
	l.commitDuration.UpdateDuration(start)
	l.batchRequests.Update(float64(requests))
	if err != nil {
		var re *refusedError
		if errors.As(err, &re) {
			return // refused before Badger saw it; counted by reason in Apply
		}
		commitErrors.Inc()
		s.commitErr.Store(&err)
		s.fail(err)
		return
	}
	s.commitErr.Store(nil)
	s.stats.add(acked)
}
