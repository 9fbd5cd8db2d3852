package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/lograte"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// The mirror copies the stream's entries, in order, into the local store under their
// stream sequence numbers: every member's materializer reads its own copy, refresh
// replays it, and message records point into it. An ordered consumer delivers them and
// recreates itself after a node or connection loss; a restart resumes after the last
// entry copied. The copy is written without waiting for the disk: the stream holds the
// entries, and what a crash loses of the copy is copied again.

// mirrorStep bounds the entries written in one local commit.
const mirrorStep = 256

type mirror struct {
	l     *Log
	local *storage.Log
	start uint64 // the last entry copied before this process
	msgs  chan jetstream.Msg

	mu     sync.Mutex
	copied uint64
	caught chan struct{} // closed when copied grows
	notify func(last uint64)
	errLog lograte.Limiter
}

func newMirror(l *Log, local *storage.Log) *mirror {
	m := &mirror{l: l, local: local, start: local.Last(), msgs: make(chan jetstream.Msg, mirrorStep), caught: make(chan struct{})}
	m.copied = m.start
	return m
}

func (m *mirror) last() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copied
}

func (m *mirror) follow(fn func(uint64)) {
	m.mu.Lock()
	m.notify = fn
	last := m.copied
	m.mu.Unlock()
	fn(last)
}

// wait reports whether entry seq was copied within timeout.
func (m *mirror) wait(seq uint64, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		m.mu.Lock()
		copied, ch := m.copied, m.caught
		m.mu.Unlock()
		if copied >= seq {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-m.l.stop:
			return false
		}
	}
}

// run finds or creates the stream, consumes it and copies what arrives, until the log
// stops.
func (m *mirror) run() {
	defer m.l.wg.Done()
	cc := m.consume()
	if cc == nil {
		return
	}
	defer cc.Stop()
	seqs, data := make([]uint64, 0, mirrorStep), make([][]byte, 0, mirrorStep)
	for {
		var msg jetstream.Msg
		select {
		case msg = <-m.msgs:
		case <-m.l.stop:
			return
		}
		seqs, data = seqs[:0], data[:0]
		for {
			if meta, err := msg.Metadata(); err == nil && meta.Sequence.Stream > m.copied {
				seqs, data = append(seqs, meta.Sequence.Stream), append(data, msg.Data())
			}
			if len(seqs) == mirrorStep {
				break
			}
			select {
			case msg = <-m.msgs:
				continue
			default:
			}
			break
		}
		m.write(seqs, data)
	}
}

// consume starts the ordered consumer after the last entry copied, retrying each
// second while the stream cannot be reached; nil: the log stopped first.
func (m *mirror) consume() jetstream.ConsumeContext {
	for {
		cc, err := m.tryConsume()
		if err == nil {
			return cc
		}
		m.logError("cannot follow the NATS stream yet; retrying", err)
		select {
		case <-time.After(time.Second):
		case <-m.l.stop:
			return nil
		}
	}
}

func (m *mirror) tryConsume() (jetstream.ConsumeContext, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.l.cfg.Timeout)
	defer cancel()
	if err := m.l.ensureStream(ctx); err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{m.l.entry}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if m.copied > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, m.copied+1
	}
	cons, err := m.l.js.OrderedConsumer(ctx, m.l.cfg.Stream, cfg)
	if err != nil {
		return nil, err
	}
	// Short heartbeats: after a node loss the consumer is recreated within about a
	// second instead of the default ten.
	return cons.Consume(func(msg jetstream.Msg) {
		select {
		case m.msgs <- msg:
		case <-m.l.stop:
		}
	}, jetstream.PullExpiry(2*time.Second), jetstream.PullHeartbeat(500*time.Millisecond))
}

// write copies entries into the local store and tells the waiters and the follower.
// A store error is logged and the entries are dropped from this run: the copy resumes
// from the last one written at the next start (the views wait for them until then).
func (m *mirror) write(seqs []uint64, data [][]byte) {
	if len(seqs) == 0 {
		return
	}
	if err := m.local.Put(context.Background(), seqs, data); err != nil {
		m.logError("cannot copy NATS entries into the local store", err)
		return
	}
	m.mu.Lock()
	m.copied = seqs[len(seqs)-1]
	close(m.caught)
	m.caught = make(chan struct{})
	fn, last := m.notify, m.copied
	m.mu.Unlock()
	m.l.gauges.mirrored.Store(last)
	if fn != nil {
		fn(last)
	}
}

func (m *mirror) logError(msg string, err error) {
	if n, ok := m.errLog.Allow(time.Now()); ok {
		m.l.cfg.Log.Error(msg, "stream", m.l.cfg.Stream, "err", err, "failures_since_last_line", n)
	}
}
