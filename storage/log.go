package storage

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Log is the log of a local sidecar, in the store: entry seq under kv.LogKey(seq), its
// dedupe marks beside it, both written by the log lane's group commit (Store.Append).
// Sequence numbers are handed out on the log lane; a failed commit leaves a gap, which
// readers step over.
type Log struct {
	s    *Store
	next uint64 // the sequence number of the next entry; only the log lane touches it
	tx   logTx  // reused: requests run one after another on the log lane
	key  []byte
}

// OpenLog returns the log kept in s, positioned after its last entry. Entries are kept
// for good: they are the message records, and a refresh rebuilds the views from them.
func OpenLog(s *Store) (*Log, error) {
	var last uint64
	err := s.Scan(kv.LogPrefix(), true, func(k, _ []byte) (bool, error) {
		last = max(last, kv.LogSeq(k))
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the log: %w", err)
	}
	l := &Log{s: s, next: last + 1}
	l.tx.l = l
	return l, nil
}

// Append runs fn in the log lane's next group commit and returns once it is durable.
func (l *Log) Append(ctx context.Context, fn func(tx kv.LogTx) error) error {
	r := requestPool.Get().(*request)
	r.fn, r.logFn, r.log = r.runLog, fn, l
	return l.s.submit(ctx, l.s.log, true, r)
}

// Entries calls fn with every entry after sequence number after, in log order, until fn
// returns more=false or an error. entry is valid only during the call.
func (l *Log) Entries(after uint64, fn func(seq uint64, entry []byte) (more bool, err error)) error {
	if after == math.MaxUint64 {
		return nil
	}
	start, end := kv.LogKey(nil, after+1), kv.PrefixEnd(kv.LogPrefix())
	return l.s.ScanRange(start, end, func(k, v []byte) (bool, error) { return fn(kv.LogSeq(k), v) })
}

// Entry returns entry seq; ok is false when it was never committed.
func (l *Log) Entry(seq uint64) (entry []byte, ok bool, err error) {
	return l.s.Get(kv.LogKey(nil, seq))
}

type logTx struct {
	l *Log
	b kv.Batch
}

func (t *logTx) Claim(key, value []byte, ttl time.Duration) ([]byte, bool, error) {
	held, taken, err := t.b.Get(key)
	if err != nil || taken {
		return held, false, err
	}
	if ttl > 0 {
		t.b.SetWithTTL(key, value, ttl)
	} else {
		t.b.Set(key, value)
	}
	return nil, true, nil
}

func (t *logTx) Held(key []byte) ([]byte, bool, error) { return t.b.Get(key) }

func (t *logTx) Add(entry []byte) uint64 {
	seq := t.l.next
	t.l.next++
	t.l.key = kv.LogKey(t.l.key[:0], seq)
	t.b.Set(t.l.key, entry)
	return seq
}

func (t *logTx) Last() uint64 { return t.l.next - 1 }

// Last is the sequence number of the last entry appended (0: none). Call it before the
// log takes appends.
func (l *Log) Last() uint64 { return l.next - 1 }
