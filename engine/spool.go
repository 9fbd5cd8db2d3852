package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Cluster mode (SPEC §11) keeps the log on a stream shared by a group of sidecars. When
// the stream cannot be reached, forwarding goes on: webhooks are logged in a local spool
// and acknowledged, and published in order once the stream is back. A spooled entry is
// deduplicated again when it is published, as another member may have recorded the same
// message meanwhile: its items are logged anew, not copied. Commands (off-thread events,
// definitions, spend rows, refreshes) are refused while spooling: they are not on the
// webhook path, and their callers can retry.

// Spool is the local log that holds webhooks while the shared log cannot be reached.
type Spool interface {
	Log
	// Drop removes the entries up to seq once they are published.
	Drop(ctx context.Context, seq uint64) error
}

// Follower is a log that other processes append to as well: it calls fn with the
// sequence number of the last entry readable through Entries whenever that grows, as a
// recorder's own appends tell its materializer.
type Follower interface {
	Follow(fn func(last uint64))
}

// spoolRetry is how often a spooling member tries the shared log again.
const spoolRetry = time.Second

// spoolStep is how many spooled entries are published before they are dropped from the
// spool in one commit (a crash in between publishes them again: deduplicated, harmless).
const spoolStep = 64

var (
	spoolSize   atomic.Int64 // of the process's recorder: one per process outside tests
	_           = metrics.NewGauge("ctwa_sidecar_spool_entries", func() float64 { return float64(spoolSize.Load()) })
	spoolErrors = metrics.NewCounter("ctwa_sidecar_spool_publish_errors_total")
)

// errSpooling refuses a command while webhooks wait in the spool: logged now, it would
// come before them.
var errSpooling = fmt.Errorf("webhooks are waiting in the local spool for the cluster: %w", kv.ErrUnavailable)

type spooler struct {
	log  Spool
	mu   sync.RWMutex // shared by appends, exclusive to stop spooling
	on   atomic.Bool
	done chan struct{} // closed when runSpool returns
}

// openSpool starts spooling at once when the spool holds entries (a stop while
// spooling).
func openSpool(log Spool) (*spooler, error) {
	s := &spooler{log: log, done: make(chan struct{})}
	n := 0
	err := log.Entries(0, func(uint64, []byte) (bool, error) { n++; return true, nil })
	if err != nil {
		return nil, fmt.Errorf("cannot read the spool: %w", err)
	}
	spoolSize.Store(int64(n))
	s.on.Store(n > 0)
	return s, nil
}

// Spooling reports whether webhooks are being kept in the local spool.
func (r *Recorder) Spooling() bool { return r.spool != nil && r.spool.on.Load() }

// logItems appends rec's items to the log, or to the spool while the log cannot be
// reached or the spool still holds entries (their order is kept).
func (r *Recorder) logItems(ctx context.Context, rec *recording) error {
	if r.spool == nil {
		return r.appendToLog(ctx, rec)
	}
	s := r.spool
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.on.Load() {
		err := r.appendToLog(ctx, rec)
		if !errors.Is(err, kv.ErrUnavailable) {
			return err
		}
		if !s.on.Swap(true) {
			r.cfg.Log.Warn("the cluster's log cannot be reached: webhooks are kept in the local spool", "err", err)
		}
	}
	err := s.log.Append(ctx, rec.apply)
	if err == nil && rec.seq > 0 {
		spoolSize.Add(1)
		rec.seq = 0 // a position in the spool, not in the log: no view waits for it
	}
	return err
}

// runSpool publishes the spool whenever it holds entries, until stop.
func (r *Recorder) runSpool(stop <-chan struct{}) {
	defer close(r.spool.done)
	tick := time.NewTicker(spoolRetry)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if r.spool.on.Load() {
			r.flushSpool()
		}
	}
}

// flushSpool publishes the spooled entries in order and drops them from the spool; it
// stops at the first that cannot be published, and stops spooling once none is left.
func (r *Recorder) flushSpool() {
	s := r.spool
	for {
		seqs, entries, err := s.next()
		if err != nil {
			r.cfg.Log.Error("cannot read the spool", "err", err)
			return
		}
		if len(seqs) == 0 {
			s.mu.Lock() // no append is under way: the spool stays empty
			if n, _, err := s.next(); err == nil && len(n) == 0 {
				s.on.Store(false)
				r.cfg.Log.Info("the cluster's log is back: the spool is published")
			}
			s.mu.Unlock()
			if !s.on.Load() {
				return
			}
			continue
		}
		done := 0
		for _, e := range entries {
			if err := r.publishSpooled(e); err != nil {
				spoolErrors.Inc()
				if !errors.Is(err, kv.ErrUnavailable) {
					r.cfg.Log.Error("cannot publish a spooled webhook; trying again", "err", err)
				}
				break
			}
			done++
		}
		if done > 0 {
			if err := s.log.Drop(context.Background(), seqs[done-1]); err != nil {
				r.cfg.Log.Error("cannot drop published entries from the spool", "err", err)
				return
			}
			spoolSize.Add(int64(-done))
		}
		if done < len(entries) {
			return
		}
	}
}

// next copies up to spoolStep entries from the start of the spool.
func (s *spooler) next() (seqs []uint64, entries [][]byte, err error) {
	err = s.log.Entries(0, func(seq uint64, v []byte) (bool, error) {
		seqs, entries = append(seqs, seq), append(entries, append([]byte(nil), v...))
		return len(seqs) < spoolStep, nil
	})
	return seqs, entries, err
}

// publishSpooled logs the items of a spooled entry, deduplicated against the log.
func (r *Recorder) publishSpooled(entry []byte) error {
	rec := r.pool.Get().(*recording)
	defer r.pool.Put(rec)
	items, err := decodeEntry(rec.items[:0], entry)
	if err != nil {
		viewItemsSkipped.Inc()
		r.cfg.Log.Error("spooled entry skipped: it cannot be decoded", "err", err)
		return nil
	}
	rec.items = items
	_, err = rec.commit(context.Background(), 0, len(items), r.appendToLog)
	return err
}

// appendToLog appends rec's items to the log itself.
func (r *Recorder) appendToLog(ctx context.Context, rec *recording) error {
	return r.log.Append(ctx, rec.apply)
}

// refuseWhileSpooling is the error of a command logged while webhooks are spooled.
func (r *Recorder) refuseWhileSpooling() error {
	if r.Spooling() {
		return errSpooling
	}
	return nil
}
