package storage

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Log is a log kept in Badger: entry seq under kv.EntryKey(prefix, seq), its dedupe
// marks beside it, both written by the log lane's group commit. The spool and a
// cluster member's copy of its cluster's log are such logs; a local sidecar's log is
// a FileLog.
// Sequence numbers are handed out on the log lane; a failed commit leaves a gap, which
// readers step over.
type Log struct {
	s      *Store
	prefix []byte
	next   uint64 // the sequence number of the next entry; only the log lane touches it
	tx     logTx  // reused: requests run one after another on the log lane
	key    []byte
}

// OpenCopy returns the copy of a cluster's log kept in s (cluster mode), positioned
// after its last entry. Entries are kept for good: they are the message records, and a
// refresh rebuilds the views from them.
func OpenCopy(s *Store) (*Log, error) { return openLog(s, kv.LogPrefix()) }

// OpenSpool returns the spool kept in s: a log of its own (kv.SpoolPrefix) whose entries
// are dropped once they are published to the cluster's log.
func OpenSpool(s *Store) (*Log, error) { return openLog(s, kv.SpoolPrefix()) }

func openLog(s *Store, prefix []byte) (*Log, error) {
	var last uint64
	err := s.Scan(prefix, true, func(k, _ []byte) (bool, error) {
		last = max(last, kv.LogSeq(k))
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the log: %w", err)
	}
	l := &Log{s: s, prefix: prefix, next: last + 1}
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
	start, end := kv.EntryKey(nil, l.prefix, after+1), kv.PrefixEnd(l.prefix)
	return l.s.ScanRange(start, end, func(k, v []byte) (bool, error) { return fn(kv.LogSeq(k), v) })
}

// Entry returns entry seq; ok is false when it was never committed.
func (l *Log) Entry(seq uint64) (entry []byte, ok bool, err error) {
	return l.s.Get(kv.EntryKey(nil, l.prefix, seq))
}

// Drop removes the entries up to seq (the spool's, once published); the sequence
// numbers go on from where they were.
func (l *Log) Drop(ctx context.Context, seq uint64) error {
	start, end := kv.EntryKey(nil, l.prefix, 0), kv.EntryKey(nil, l.prefix, seq+1)
	var keys [][]byte
	err := l.s.ScanKeys(start, end, func(k []byte) bool {
		keys = append(keys, bytes.Clone(k))
		return true
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	return l.s.Apply(ctx, func(b kv.Batch) error {
		for _, k := range keys {
			b.Delete(k)
		}
		return nil
	})
}

// Put writes entry seq as it is, for a log whose sequence numbers are given elsewhere:
// the local copy of a cluster's log. Only the copy's one writer calls it, after the
// entries before; it does not wait for the disk, as the cluster holds the entries.
func (l *Log) Put(ctx context.Context, seqs []uint64, entries [][]byte) error {
	err := l.s.Derive(ctx, func(b kv.Batch) error {
		for i, seq := range seqs {
			l.key = kv.EntryKey(l.key[:0], l.prefix, seq) // Set copies it
			b.Set(l.key, entries[i])
		}
		return nil
	})
	if err == nil && len(seqs) > 0 {
		l.next = seqs[len(seqs)-1] + 1
	}
	return err
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

func (t *logTx) Add(entry []byte, seq *uint64) {
	*seq = t.l.next
	t.l.next++
	t.l.key = kv.EntryKey(t.l.key[:0], t.l.prefix, *seq)
	t.b.Set(t.l.key, entry)
}

func (t *logTx) Last() uint64 { return t.l.next - 1 }

// Last is the sequence number of the last entry appended (0: none). Call it before the
// log takes appends.
func (l *Log) Last() uint64 { return l.next - 1 }
