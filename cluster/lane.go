package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// The append lane: one goroutine runs the requests' functions one after another (the
// engine's appenders rely on that), gathers what they claim and add into one atomic
// batch, publishes it and answers every request of it. Group commit as in the local
// log: under load one batch carries many webhooks, and JetStream allows few batches in
// flight per stream (50).

const (
	laneQueue = 1024
	// maxMessages is JetStream's limit of messages in one atomic batch.
	maxMessages = 1000
	// maxAttempts bounds how often a batch is run again after claim conflicts.
	maxAttempts = 5
)

type request struct {
	fn   func(kv.LogTx) error
	done chan error
	tx   logTx
}

// Append runs fn in the lane's next batch and returns once the stream acknowledged the
// batch and the entries are mirrored (readable through Entries). kv.ErrUnavailable
// says the stream could not be reached: the batch may still be stored later, which is
// why every webhook item it carries is deduplicated by a claim.
func (l *Log) Append(ctx context.Context, fn func(tx kv.LogTx) error) error {
	if !l.Connected() {
		return unavailable(errors.New("not connected to NATS"))
	}
	if l.stream.Load() == nil { // not found yet, or unfit (the mirror logs why)
		return unavailable(fmt.Errorf("stream %s is not ready", l.cfg.Stream))
	}
	r := &request{fn: fn, done: make(chan error, 1)}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.stop:
		return kv.ErrClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-l.stop:
		return kv.ErrClosed
	}
}

func (l *Log) lane() {
	defer l.wg.Done()
	b := batch{l: l}
	var reqs []*request
	for {
		if len(reqs) == 0 {
			select {
			case r := <-l.reqs:
				reqs = append(reqs, r)
			case <-l.stop:
				return
			}
		}
	gather:
		for len(reqs) < maxMessages {
			select {
			case r := <-l.reqs:
				reqs = append(reqs, r)
			default:
				break gather
			}
		}
		left := l.commit(&b, reqs)
		reqs = append(reqs[:0], left...)
	}
}

// commit publishes the requests in one batch, as many as fit, and answers them; it
// returns those left for the next batch.
func (l *Log) commit(b *batch, reqs []*request) (left []*request) {
	clear(b.held)
	for attempt := 1; ; attempt++ {
		in, rest := b.build(reqs)
		if len(rest) > 0 { // before those left by an earlier attempt: they came after
			left = append(append([]*request(nil), rest...), left...)
		}
		if b.size() == 0 {
			answer(in, nil)
			return left
		}
		start := time.Now()
		last, err := l.publish(b)
		publishDuration.UpdateDuration(start)
		if retry := errors.Is(err, errClaimTaken) || errors.Is(err, errBusy); retry && attempt < maxAttempts {
			if errors.Is(err, errClaimTaken) {
				claimConflicts.Inc()
				err = l.lookup(b)
			}
			if err == nil {
				time.Sleep(time.Duration(attempt) * time.Millisecond) // let the other batch land
				reqs = in
				continue
			}
		} else if retry {
			err = unavailable(err) // spooled, and published again later
		}
		if err == nil {
			batchRequests.Update(float64(len(in)))
			l.settle(b, last)
		} else {
			countError(err)
		}
		answer(in, err)
		return left
	}
}

func answer(reqs []*request, err error) {
	for _, r := range reqs {
		r.done <- err
	}
}

// settle gives each entry its sequence number (the batch's messages are stored at
// consecutive ones, the last at last) and waits until the mirror holds them. If the
// mirror is slow, the entries get no number: nothing waits for them then, and the
// views take them when the mirror does.
func (l *Log) settle(b *batch, last uint64) {
	if len(b.entries) == 0 {
		return
	}
	ok := l.mirror.wait(last, l.cfg.Timeout)
	for i, e := range b.entries {
		*e.seq = 0
		if ok {
			*e.seq = last - uint64(len(b.entries)-1-i)
		}
	}
}

// batch is what the requests of one commit claim and add.
type batch struct {
	l       *Log
	claims  []claim
	entries []entry
	pending map[string][]byte    // keys claimed in this batch
	held    map[string]heldClaim // keys found claimed in the stream, for this commit
}

type claim struct {
	key   string
	value []byte
	ttl   time.Duration
	entry int // index in entries of the entry it lets in; -1: none
}

type entry struct {
	data []byte
	seq  *uint64
}

type heldClaim struct {
	value []byte
	entry uint64 // sequence number of the entry its batch let in; 0: none
}

// build runs the requests' functions into b, as many as fit one batch; a request whose
// function fails is answered at once. It returns the requests in b and those left.
func (b *batch) build(reqs []*request) (in, left []*request) {
	b.claims, b.entries = b.claims[:0], b.entries[:0]
	if b.pending == nil {
		b.pending, b.held = map[string][]byte{}, map[string]heldClaim{}
	}
	clear(b.pending)
	for i, r := range reqs {
		nc, ne := len(b.claims), len(b.entries)
		r.tx = logTx{b: b, firstClaim: nc}
		err := r.fn(&r.tx)
		if err == nil && b.size() > maxMessages {
			if len(in) > 0 {
				b.undo(nc, ne)
				return in, reqs[i:]
			}
			err = fmt.Errorf("%w: more than %d claims and entries", kv.ErrTooBig, maxMessages)
		}
		if err != nil {
			b.undo(nc, ne)
			r.done <- err
			continue
		}
		in = append(in, r)
	}
	return in, nil
}

func (b *batch) size() int { return len(b.claims) + len(b.entries) }

// undo drops what a request put into b after nc claims and ne entries.
func (b *batch) undo(nc, ne int) {
	for _, c := range b.claims[nc:] {
		delete(b.pending, c.key)
	}
	b.claims, b.entries = b.claims[:nc], b.entries[:ne]
}

// lookup reads the claims of b that are taken in the stream into b.held.
func (l *Log) lookup(b *batch) error {
	for _, c := range b.claims {
		if _, ok := b.held[c.key]; ok {
			continue
		}
		h, ok, err := l.getClaim(c.key)
		if err != nil {
			return err
		}
		if ok {
			b.held[c.key] = h
		}
	}
	return nil
}

// claimSubject is the subject of key's claim: a hash, as keys hold any bytes.
func (l *Log) claimSubject(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.claim + hex.EncodeToString(sum[:16])
}

// logTx is one request's view of the batch (kv.LogTx).
type logTx struct {
	b          *batch
	firstClaim int    // the request's claims start there
	last       uint64 // the highest entry of a held claim it met
}

func (t *logTx) Claim(key, value []byte, ttl time.Duration) ([]byte, bool, error) {
	k := string(key)
	if v, ok := t.b.pending[k]; ok {
		return v, false, nil
	}
	if h, ok := t.b.held[k]; ok {
		t.last = max(t.last, h.entry)
		return h.value, false, nil
	}
	v := append([]byte(nil), value...)
	t.b.pending[k] = v
	t.b.claims = append(t.b.claims, claim{key: k, value: v, ttl: ttl, entry: -1})
	return nil, true, nil
}

func (t *logTx) Held(key []byte) ([]byte, bool, error) {
	k := string(key)
	if v, ok := t.b.pending[k]; ok {
		return v, true, nil
	}
	if h, ok := t.b.held[k]; ok {
		return h.value, true, nil
	}
	h, ok, err := t.b.l.getClaim(k)
	if ok {
		t.b.held[k] = h
	}
	return h.value, ok, err
}

func (t *logTx) Add(data []byte, seq *uint64) {
	for i := t.firstClaim; i < len(t.b.claims); i++ {
		if t.b.claims[i].entry < 0 {
			t.b.claims[i].entry = len(t.b.entries)
		}
	}
	*seq = 0
	t.b.entries = append(t.b.entries, entry{data: append([]byte(nil), data...), seq: seq})
}

func (t *logTx) Last() uint64 { return max(t.last, t.b.l.mirror.last()) }
