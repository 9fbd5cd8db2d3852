package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/lograte"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// The materializer is the one goroutine that turns log entries into views, in log
// order. Each view-lane commit writes what a run of entries changed and moves the
// checkpoint (kv.ViewPosKey) in the same transaction, so after kill -9 it resumes
// exactly where the views end: nothing applied twice, nothing left out. An entry too
// big for one transaction is applied in parts; the checkpoint then also says how many
// of its items are in. Entries stay: they are the message records (message keys point
// into them), and a refresh rebuilds the views from them.

// Per step: the items applied in one commit, and the entries and bytes read for them.
// Badger writes every commit on one goroutine, so a big view commit holds up the
// webhooks' log commits queued behind it (64 items, about 600 writes, took 20–30 ms
// under load): steps stay small.
const (
	stepItems   = 32
	stepEntries = stepItems // an entry holds at least one item
	stepBytes   = 1 << 20
)

// linger is how long the materializer lets entries gather after a wake-up, unless a
// reader waits or half a step's worth is there: full steps cost less per item than
// many small ones (fewer transactions, repeated rollup writes coalesced).
const linger = 10 * time.Millisecond

// settleWait bounds how long a read waits for the views to reach earlier writes: a
// stuck view lane must not hang the API (the lag metrics then say why answers are old).
const settleWait = 5 * time.Second

var (
	viewItemsSkipped = metrics.NewCounter("ctwa_sidecar_view_items_skipped_total")
	viewReadTimeouts = metrics.NewCounter("ctwa_sidecar_view_read_timeouts_total")
)

type materializer struct {
	r        *Recorder
	wake     chan struct{}
	hurry    chan struct{} // a reader waits: stop lingering
	waiters  atomic.Int32
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	appended atomic.Uint64 // highest committed log sequence number
	applied  atomic.Uint64 // highest sequence number the views hold in full
	partial  uint32        // items of the next entry already applied (materializer only)
	oldest   atomic.Int64  // append time (unix ns) of the first entry not yet applied
	caught   atomic.Pointer[chan struct{}]

	// Step state, reused: the entries read ahead, their items, a classification.
	seqs    []uint64
	lens    []int
	entries [][]byte // into buf
	buf     []byte
	items   []webhook.Item
	class   Classification
	events  []string // the types of the events a step wrote, for metrics
	reload  byte     // reload flags of the puts a step wrote
	limit   int      // items per step; shrinks to 1 to find an item that cannot be applied
	errLog  lograte.Limiter

	refreshing atomic.Bool // a refresh is being applied
	refreshMu  sync.Mutex
	claimed    map[string]bool           // apps with a refresh logged and not yet applied
	refreshed  map[uint64]refreshOutcome // outcomes of applied refreshes, by entry, until taken
}

// refreshOutcome is what a refresh of the log returned.
type refreshOutcome struct {
	res RefreshResult
	err error
}

func newMaterializer(r *Recorder) *materializer {
	m := &materializer{r: r, wake: make(chan struct{}, 1), hurry: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), limit: stepItems, claimed: map[string]bool{}, refreshed: map[uint64]refreshOutcome{}}
	ch := make(chan struct{})
	m.caught.Store(&ch)
	return m
}

// load reads the checkpoint and the last log entry: where the views are and where the
// log ends.
func (m *materializer) load() error {
	v, ok, err := m.r.views.Get(kv.ViewPosKey())
	if err != nil {
		return fmt.Errorf("cannot read the views' log position: %w", err)
	}
	if applied, partial, valid := kv.DecodeViewPos(v); ok && valid {
		m.applied.Store(applied)
		m.partial = partial
	}
	m.appended.Store(max(m.applied.Load(), m.r.log.Last()))
	return nil
}

// published tells the materializer that entries up to seq are committed and visible
// through the log: a step that finds nothing to read up to a published position takes
// the numbers between for failed appends and moves past them. So only an append's own
// entries are published, and a cluster member's copy of the stream publishes what it
// received; never another member's position known from a claim.
func (m *materializer) published(seq uint64) {
	for {
		old := m.appended.Load()
		if seq <= old || m.appended.CompareAndSwap(old, seq) {
			break
		}
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// settle waits until the views hold every entry committed before the call, for at
// most settleWait or until ctx ends: a read then sees the writes acknowledged before it.
// During a refresh it does not wait: the views are being rebuilt, and reads see them as
// they are, as the webhooks logged meanwhile are placed after the refresh. Nor while the
// store refuses writes (a full disk): the views cannot move then, and an API answer made
// of several reads would wait settleWait for each.
func (m *materializer) settle(ctx context.Context) {
	if m.applied.Load() >= m.appended.Load() || m.refreshing.Load() || m.r.views.Ready() != nil {
		return
	}
	timer := time.NewTimer(settleWait)
	defer timer.Stop()
	if m.wait(ctx, m.appended.Load(), timer.C) != nil {
		viewReadTimeouts.Inc()
	}
}

// sync waits until the views hold every entry committed before the call, until ctx
// ends or the materializer stopped.
func (m *materializer) sync(ctx context.Context) error { return m.wait(ctx, m.appended.Load(), nil) }

// wait waits until the views hold entry target, timeout fires (nil: never), ctx ends or
// the materializer stops. It selects on ctx.Done in the caller's goroutine
// and derives no context from ctx: fasthttp's RequestCtx.Done must not be read by a
// goroutine of its own while the server shuts down (a data race in fasthttp).
func (m *materializer) wait(ctx context.Context, target uint64, timeout <-chan time.Time) error {
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	select {
	case m.hurry <- struct{}{}:
	default:
	}
	for {
		ch := m.caught.Load()
		if m.applied.Load() >= target {
			return nil
		}
		select {
		case <-*ch:
		case <-timeout:
			return fmt.Errorf("views are %d log entries behind", target-min(target, m.applied.Load()))
		case <-ctx.Done():
			return fmt.Errorf("views are %d log entries behind: %w", target-min(target, m.applied.Load()), ctx.Err())
		case <-m.done:
			return errors.New("views are behind: the materializer has stopped")
		}
	}
}

// run applies entries as they are published until Close, then what is left.
func (m *materializer) run() {
	defer close(m.done)
	tick := time.NewTicker(time.Second) // a missed wake-up costs at most this
	defer tick.Stop()
	if m.catchUp() == errStopped { // entries a crash left behind
		return
	}
	for {
		select {
		case <-m.stop:
			m.catchUp()
			return
		case <-m.r.views.Closing(): // a store closed without Recorder.Close (tests)
			return
		case <-m.wake:
			m.gather()
		case <-m.hurry:
		case <-tick.C:
		}
		if m.catchUp() == errStopped {
			return
		}
	}
}

var errStopped = errors.New("store closed")

// gather waits up to linger for more entries, unless a step's worth is there or a
// reader waits.
func (m *materializer) gather() {
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for m.waiters.Load() == 0 && m.appended.Load()-min(m.applied.Load(), m.appended.Load()) < stepEntries/2 {
		select {
		case <-m.wake:
		case <-m.hurry:
		case <-timer.C:
			return
		case <-m.stop:
			return
		}
	}
}

// catchUp applies entries until none is left. On a store error it returns and is
// called again on the next wake-up or tick.
func (m *materializer) catchUp() error {
	for m.applied.Load() < m.appended.Load() {
		err := m.step()
		switch {
		case err == nil:
		case errors.Is(err, kv.ErrClosed):
			return errStopped
		default:
			if err = m.skipPoison(err); err != nil {
				return err
			}
		}
	}
	m.oldest.Store(0)
	return nil
}

// skipPoison handles a failed step. With several items it retries one by one; a single
// item that fails while the store is healthy (a corrupt entry, a bug) is skipped and
// counted, so that one bad item cannot stop the views for good.
func (m *materializer) skipPoison(err error) error {
	if m.limit > 1 {
		m.limit = 1
		return nil
	}
	if m.r.views.Ready() != nil {
		m.logError("views are behind: the store refuses writes", err)
		return err
	}
	m.logError("log item skipped: it cannot be applied to the views", err)
	viewItemsSkipped.Inc()
	return m.commitPosition(1)
}

func (m *materializer) logError(msg string, err error) {
	if n, ok := m.errLog.Allow(time.Now()); ok {
		m.r.cfg.Log.Error(msg, "err", err, "failures_since_last_line", n)
	}
}

// read copies up to stepEntries entries after the checkpoint into m.
func (m *materializer) read() error {
	m.seqs, m.lens, m.buf = m.seqs[:0], m.lens[:0], m.buf[:0]
	err := m.r.log.Entries(m.applied.Load(), func(seq uint64, v []byte) (bool, error) {
		m.seqs = append(m.seqs, seq)
		m.lens = append(m.lens, len(v))
		m.buf = append(m.buf, v...)
		return len(m.seqs) < stepEntries && len(m.buf) < stepBytes, nil
	})
	m.entries = m.entries[:0]
	off := 0
	for _, n := range m.lens {
		m.entries = append(m.entries, m.buf[off:off+n:off+n])
		off += n
	}
	return err
}

// step applies the next run of entries in one view-lane commit.
func (m *materializer) step() error {
	target := m.appended.Load() // before reading: every entry up to it is visible then
	if err := m.read(); err != nil {
		return err
	}
	if len(m.seqs) == 0 {
		// The sequence numbers between were never committed (failed appends).
		m.applied.Store(max(m.applied.Load(), target))
		m.broadcast()
		return nil
	}
	if t, err := entryTime(m.entries[0]); err == nil {
		m.oldest.Store(t.UnixNano())
	}
	if kind, payload, ok := command(m.entries[0]); ok && kind == cmdRefresh {
		return m.refresh(m.seqs[0], string(payload))
	}
	var done int       // entries applied in full
	var partial uint32 // items of the entry after them applied
	err := m.r.views.Derive(context.Background(), func(b kv.Batch) error {
		var err error
		done, partial, err = m.apply(b)
		return err
	})
	if err != nil {
		return err
	}
	m.limit = stepItems
	m.finish(done, partial)
	return nil
}

// apply places the items after the checkpoint, at most m.limit and until the batch is
// full, and writes the new checkpoint; a command ends the step (or is its only entry).
func (m *materializer) apply(b kv.Batch) (done int, partial uint32, err error) {
	m.events, m.reload = m.events[:0], 0
	p := &m.r.placer
	p.cache.check(b)
	defs := m.r.defs.Load()
	applied, skip := 0, int(m.partial)
	for i, v := range m.entries {
		if kind, payload, ok := command(v); ok {
			// A command reads committed views (attribution): it gets a step of its own.
			if i > 0 {
				m.setPosition(b, m.seqs[i]-1, 0)
				return i, 0, nil
			}
			if err := m.applyCommand(b, kind, payload); err != nil {
				return 0, 0, fmt.Errorf("log entry %d: %w", m.seqs[i], err)
			}
			m.setPosition(b, m.seqs[0], 0)
			return 1, 0, nil
		}
		if m.items, err = decodeEntry(m.items[:0], v); err != nil {
			return 0, 0, fmt.Errorf("log entry %d: %w", m.seqs[i], err)
		}
		k := skip
		for ; k < len(m.items) && applied < m.limit && !b.Full(); k++ {
			p.pos = logPos{seq: m.seqs[i], item: k}
			if err := m.place(b, &m.items[k], defs); err != nil {
				p.cache.reset() // the step's writes are dropped: so is what it cached
				return 0, 0, fmt.Errorf("log entry %d, item %d: %w", m.seqs[i], k, err)
			}
			applied++
		}
		if k < len(m.items) {
			m.setPosition(b, m.seqs[i]-1, uint32(k))
			return i, uint32(k), nil
		}
		skip = 0
	}
	m.setPosition(b, m.seqs[len(m.seqs)-1], 0)
	return len(m.entries), 0, nil
}

// maxOutcomes bounds the outcomes kept for refresh callers that gave up waiting.
const maxOutcomes = 64

// claimRefresh reports whether app has no refresh logged and not applied yet, and
// marks it as having one.
func (m *materializer) claimRefresh(app string) bool {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	if m.claimed[app] {
		return false
	}
	m.claimed[app] = true
	return true
}

func (m *materializer) releaseRefresh(app string) {
	m.refreshMu.Lock()
	delete(m.claimed, app)
	m.refreshMu.Unlock()
}

// takeOutcome takes the outcome of the refresh of entry seq.
func (m *materializer) takeOutcome(seq uint64) refreshOutcome {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	out, ok := m.refreshed[seq]
	if !ok {
		return refreshOutcome{err: errors.New("the refresh was applied, but its outcome is not known: it ran in an earlier process or was skipped")}
	}
	delete(m.refreshed, seq)
	return out
}

// refresh applies the logged refresh of app, entry seq: it rebuilds the app's views in
// commits of its own, then moves the checkpoint past the entry. A crash in between
// runs it again from the start at the next start-up: the rebuild clears first.
func (m *materializer) refresh(seq uint64, app string) error {
	m.refreshing.Store(true)
	res, err := m.r.applyRefresh(app)
	m.refreshing.Store(false)
	if err != nil && m.r.views.Ready() != nil {
		return err // the store refuses writes: try again once it takes them
	}
	err = errors.Join(err, m.r.views.Derive(context.Background(), func(b kv.Batch) error {
		m.setPosition(b, seq, 0)
		return nil
	}))
	if errors.Is(err, kv.ErrClosed) {
		return err
	}
	m.refreshMu.Lock()
	if len(m.refreshed) >= maxOutcomes {
		clear(m.refreshed)
	}
	m.refreshed[seq] = refreshOutcome{res: res, err: err}
	delete(m.claimed, app)
	m.refreshMu.Unlock()
	m.applied.Store(seq)
	m.partial = 0
	m.broadcast()
	return nil
}

// applyCommand applies a logged command to the views (a refresh runs on its own).
func (m *materializer) applyCommand(b kv.Batch, kind byte, payload []byte) error {
	switch kind {
	case cmdOffThread:
		return m.r.applyOffThread(b, payload)
	case cmdPut:
		flags, err := decodePut(payload, b.Set)
		m.reload |= flags
		return err
	}
	return fmt.Errorf("unknown log command %d", kind)
}

// reloadState reloads what the puts of a committed step changed: the catalogue, then
// the definitions built on it.
func (m *materializer) reloadState() {
	var err error
	if m.reload&reloadCatalog != 0 {
		err = m.r.loadCatalog()
	}
	if err == nil && m.reload != 0 {
		err = m.r.reloadDefinitions()
	}
	if err != nil {
		m.logError("cannot reload definitions after a change: the old ones stay in use", err)
	}
	m.reload = 0
}

// place applies one logged item to the views, and notes the types of the events its
// placement wrote.
func (m *materializer) place(b kv.Batch, it *webhook.Item, defs *Definitions) error {
	p := &m.r.placer
	var placed placement
	var err error
	switch it.Kind {
	case webhook.KindStatus:
		return p.applyStatus(b, it)
	case webhook.KindMessage:
		Classify(&m.class, it, defs)
		placed, err = p.applyMessage(b, it, &m.class, defs)
	case webhook.KindEdit:
		return p.applyEdit(b, it)
	case webhook.KindNumberChange:
		return p.applyNumberChange(b, it)
	case webhook.KindAutoEvent:
		placed, err = p.applyAutoEvent(b, it, defs)
	}
	m.events = append(m.events, placed.events...)
	return err
}

func (m *materializer) setPosition(b kv.Batch, applied uint64, partial uint32) {
	var v [12]byte
	b.Set(kv.ViewPosKey(), kv.AppendViewPos(v[:0], applied, partial))
}

// finish publishes what a committed step applied: done entries in full, then partial
// items of the next one.
func (m *materializer) finish(done int, partial uint32) {
	for _, typ := range m.events {
		eventsByType[typ].Inc()
	}
	m.reloadState()
	if done > 0 {
		m.applied.Store(m.seqs[done-1])
	}
	m.partial = partial
	m.broadcast()
}

// commitPosition moves the checkpoint past n items of the next entry without applying
// them (skipPoison).
func (m *materializer) commitPosition(n uint32) error {
	if err := m.read(); err != nil || len(m.seqs) == 0 {
		return err
	}
	items, err := decodeEntry(m.items[:0], m.entries[0])
	seq, next := m.seqs[0], m.partial+n
	whole := err != nil || int(next) >= len(items)
	err = m.r.views.Apply(context.Background(), func(b kv.Batch) error {
		if whole {
			m.setPosition(b, seq, 0)
			return nil
		}
		m.setPosition(b, seq-1, next)
		return nil
	})
	if err != nil {
		return err
	}
	if whole {
		m.applied.Store(seq)
		m.partial = 0
	} else {
		m.partial = next
	}
	m.broadcast()
	return nil
}

// broadcast wakes the reads waiting in settle.
func (m *materializer) broadcast() {
	ch := make(chan struct{})
	old := m.caught.Swap(&ch)
	close(*old)
}

// close applies what is left and stops the materializer.
func (m *materializer) close() {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
}

// unsafeString returns b as a string without copying: log items alias the step's buffer,
// as decoded items alias the request body, and whatever outlives the step is cloned.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// registerLagMetrics exposes how far the views trail the log: one pair of gauges per
// stream (labelled with it; unlabelled for a local log). Several recorders of one
// stream in one process (tests, a restart) share the gauges; the last one wins.
func registerLagMetrics(m *materializer, stream string) {
	p := new(atomic.Pointer[materializer])
	p.Store(m)
	if old, loaded := lagged.LoadOrStore(stream, p); loaded {
		old.(*atomic.Pointer[materializer]).Store(m)
		return
	}
	labels := ""
	if stream != "" {
		labels = fmt.Sprintf(`{stream=%q}`, stream)
	}
	metrics.NewGauge("ctwa_sidecar_view_lag_entries"+labels, func() float64 {
		m := p.Load()
		return float64(m.appended.Load() - min(m.applied.Load(), m.appended.Load()))
	})
	metrics.NewGauge("ctwa_sidecar_view_lag_seconds"+labels, func() float64 {
		m := p.Load()
		if m.applied.Load() >= m.appended.Load() {
			return 0
		}
		t := m.oldest.Load()
		if t == 0 {
			return 0
		}
		return time.Since(time.Unix(0, t)).Seconds()
	})
}

// lagged maps a stream ("" for a local log) to the materializer its gauges read.
var lagged sync.Map
