package storage

import (
	"bytes"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// View runs fn in a read-only Badger transaction: a consistent snapshot of
// everything committed before it started. Close waits for View to return, so
// fn must not call Apply (it would wait for a Close that waits for fn).
func (s *Store) View(fn func(txn *badger.Txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return kv.ErrClosed
	}
	return s.db.View(fn)
}

// Scan calls fn for every key with the given prefix, in ascending key order or
// descending when reverse is set, until fn returns more=false or an error.
// key and value are valid only during the call; copy them to keep them.
func (s *Store) Scan(prefix []byte, reverse bool, fn func(key, value []byte) (more bool, err error)) error {
	return s.View(func(txn *badger.Txn) error {
		return scan(txn, prefix, reverse, fn)
	})
}

func scan(txn *badger.Txn, prefix []byte, reverse bool, fn func(key, value []byte) (bool, error)) error {
	// Values are read in the callback, so prefetching would only copy them.
	opts := badger.IteratorOptions{Reverse: reverse}
	if !reverse {
		// Lets Badger skip tables without the prefix. Not for reverse: with a
		// prefix set, Badger's Seek and Valid cannot start past the prefix.
		opts.Prefix = prefix
	}
	it := txn.NewIterator(opts)
	defer it.Close()
	for seekPrefix(it, prefix, reverse); it.ValidForPrefix(prefix); it.Next() {
		if more, err := visit(it.Item(), fn); err != nil || !more {
			return err
		}
	}
	return nil
}

// visit calls fn with the item's key and value, which are valid only during the call.
func visit(item *badger.Item, fn func(key, value []byte) (bool, error)) (more bool, err error) {
	err = item.Value(func(v []byte) error {
		more, err = fn(item.Key(), v)
		return err
	})
	return more, err
}

// seekPrefix positions it on the first key of the prefix in iteration order.
// Reverse iteration seeks to the smallest key above the prefix and steps back
// from it, since Badger's reverse Seek lands on keys equal to its argument.
func seekPrefix(it *badger.Iterator, prefix []byte, reverse bool) {
	if !reverse {
		it.Seek(prefix)
		return
	}
	end := kv.PrefixEnd(prefix)
	if end == nil {
		it.Rewind()
		return
	}
	it.Seek(end)
	for it.Valid() && bytes.Compare(it.Item().Key(), end) >= 0 {
		it.Next()
	}
}
