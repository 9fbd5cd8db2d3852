package storage

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Badger rejects these keys at commit time, which would fail a whole group;
// Batch rejects them up front so only the offending request fails.
const maxKeySize = 65000

var badgerPrefix = []byte("!badger!")

// arenaKeep is the arena capacity kept between groups; a rare huge group
// must not pin its memory forever.
const arenaKeep = 4 << 20

// Batch collects the writes of one group commit. It is only valid inside the
// fn passed to Store.Apply, which runs on the writer goroutine.
//
// Set, SetWithTTL and Delete copy key and value into the batch's arena, so the
// caller may reuse its buffers as soon as the call returns. A key Badger would
// refuse (empty, longer than 65000 bytes, or starting with "!badger!") fails
// the whole request: Apply returns the error and none of its writes is kept.
type Batch struct {
	db    *badger.DB
	snap  *badger.Txn // read snapshot for Get, opened on first use
	arena []byte      // keys and values of ops, and values Get read from the DB
	ops   []op
	// index maps a key hash to its newest op; op.prev chains older ops with the same hash.
	index map[uint64]int
	seed  maphash.Seed
	// err is the first invalid write of the running request; it fails the request.
	err error
	// losses counts the requests whose writes were dropped after their fn returned
	// (rollbacks, failed commits); see Losses.
	losses *atomic.Uint64
	limits txnLimits
	req    mark  // where the running request's ops begin
	total  int64 // size of all ops, as size counts it
}

// Losses counts, since Open, the requests whose writes were dropped although their fn
// had run: rolled back or in a failed commit. A caller that caches what its fn wrote
// compares it between calls and drops its cache when it moved.
func (b *Batch) Losses() uint64 { return b.losses.Load() }

// op is one pending write; key is arena[start:mid], value arena[mid:end].
type op struct {
	start, mid, end int
	hash            uint64
	prev            int // older op with the same hash, or -1
	expiresAt       uint64
	del             bool
}

func newBatch(db *badger.DB, losses *atomic.Uint64, limits txnLimits) *Batch {
	return &Batch{db: db, index: make(map[uint64]int), seed: maphash.MakeSeed(), losses: losses, limits: limits}
}

// Full reports whether the running request has written half of what one transaction
// holds: a caller that batches work of its own (the materializer) stops there, well
// before kv.ErrTooBig.
func (b *Batch) Full() bool {
	count, bytes := b.requestSize()
	return !b.limits.fits(2*count, 2*bytes)
}

// Set writes value under key.
func (b *Batch) Set(key, value []byte) {
	b.add(key, value, 0, false)
}

// SetWithTTL writes value under key; Badger drops it once ttl has passed
// (second granularity). Dedupe keys use this.
func (b *Batch) SetWithTTL(key, value []byte, ttl time.Duration) {
	b.add(key, value, uint64(time.Now().Add(ttl).Unix()), false)
}

// Delete removes key.
func (b *Batch) Delete(key []byte) {
	b.add(key, nil, 0, true)
}

func (b *Batch) add(key, value []byte, expiresAt uint64, del bool) {
	if err := checkKey(key); err != nil {
		if b.err == nil {
			b.err = err
		}
		return
	}
	o := op{start: len(b.arena), expiresAt: expiresAt, del: del}
	b.arena = append(b.arena, key...)
	o.mid = len(b.arena)
	b.arena = append(b.arena, value...)
	o.end = len(b.arena)
	o.hash = maphash.Bytes(b.seed, key)
	o.prev = -1
	if i, ok := b.index[o.hash]; ok {
		o.prev = i
	}
	b.index[o.hash] = len(b.ops)
	b.ops = append(b.ops, o)
	b.total += opSize(o)
}

// opSize is what Badger charges a transaction for o: key, value, two meta bytes and
// ten bytes of version.
func opSize(o op) int64 { return int64(o.end-o.start) + 12 }

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return errors.New("key is empty")
	case len(key) > maxKeySize:
		return fmt.Errorf("key of %d bytes is longer than %d bytes", len(key), maxKeySize)
	case bytes.HasPrefix(key, badgerPrefix):
		return fmt.Errorf("key %q uses the reserved prefix %q", key, badgerPrefix)
	}
	return nil
}

// Get returns the value of key as this batch would leave it: pending writes of
// this request and of earlier requests in the same group first, then the
// database. The value is valid only until fn returns; copy it to keep it.
func (b *Batch) Get(key []byte) (value []byte, ok bool, err error) {
	if o, found := b.pending(key); found {
		if o.del {
			return nil, false, nil
		}
		return b.arena[o.mid:o.end:o.end], true, nil
	}
	return b.getDB(key)
}

func (b *Batch) pending(key []byte) (op, bool) {
	i, ok := b.index[maphash.Bytes(b.seed, key)]
	for ok && i >= 0 {
		o := b.ops[i]
		if bytes.Equal(b.arena[o.start:o.mid], key) {
			return o, true
		}
		i = o.prev
	}
	return op{}, false
}

func (b *Batch) getDB(key []byte) ([]byte, bool, error) {
	if b.snap == nil {
		b.snap = b.db.NewTransaction(false)
	}
	item, err := b.snap.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cannot read key %q: %w", key, err)
	}
	// Copy into the arena: Badger's slice is only valid inside its callback.
	start := len(b.arena)
	err = item.Value(func(v []byte) error {
		b.arena = append(b.arena, v...)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("cannot read value of key %q: %w", key, err)
	}
	return b.arena[start:len(b.arena):len(b.arena)], true, nil
}

// mark is where a request's ops begin, so they can be rolled back.
type mark struct {
	ops, arena int
	total      int64
}

// begin starts a request: it forgets the previous request's invalid write and
// marks where this one's ops begin.
func (b *Batch) begin() mark {
	b.err = nil
	b.req = mark{ops: len(b.ops), arena: len(b.arena), total: b.total}
	return b.req
}

// rollback drops every op since m, newest first so the index chains unwind
// to exactly what earlier requests left.
func (b *Batch) rollback(m mark) {
	for i := len(b.ops) - 1; i >= m.ops; i-- {
		o := b.ops[i]
		if o.prev < 0 {
			delete(b.index, o.hash)
		} else {
			b.index[o.hash] = o.prev
		}
	}
	b.ops = b.ops[:m.ops]
	b.arena = b.arena[:m.arena]
	b.total = m.total
}

// requestSize is what the running request's ops cost, as Badger charges a transaction.
func (b *Batch) requestSize() (count int, bytes int64) {
	return len(b.ops) - b.req.ops, b.total - b.req.total
}

// superseded reports whether an op after op i and before op to writes the same key:
// staging only the last write of a key keeps repeated updates (rollups, sessions) of
// one transaction from costing Badger one entry each.
func (b *Batch) superseded(i, to int) bool {
	o := b.ops[i]
	key := b.arena[o.start:o.mid]
	for j := b.index[o.hash]; j > i; j = b.ops[j].prev {
		n := b.ops[j]
		if j < to && bytes.Equal(b.arena[n.start:n.mid], key) {
			return true
		}
	}
	return false
}

// stage adds op i to txn; e must stay untouched until txn is committed.
func (b *Batch) stage(txn *badger.Txn, i int, e *badger.Entry) error {
	o := b.ops[i]
	key := b.arena[o.start:o.mid:o.mid]
	if o.del {
		return txn.Delete(key)
	}
	e.Key = key
	e.Value = b.arena[o.mid:o.end:o.end]
	e.ExpiresAt = o.expiresAt
	return txn.SetEntry(e)
}

// reset empties the batch for the next group, keeping its memory unless it grew too large.
func (b *Batch) reset() {
	if b.snap != nil {
		b.snap.Discard()
		b.snap = nil
	}
	clear(b.index)
	b.ops = b.ops[:0]
	b.arena = b.arena[:0]
	b.total = 0
	if cap(b.arena) > arenaKeep {
		b.arena, b.ops, b.index = nil, nil, make(map[uint64]int)
	}
}
