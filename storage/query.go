package storage

import (
	"bytes"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// ScanRange calls fn for every key k with start <= k < end, in ascending order, until fn
// returns more=false or an error. key and value are valid only during the call.
func (s *Store) ScanRange(start, end []byte, fn func(key, value []byte) (more bool, err error)) error {
	return s.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: commonPrefix(start, end)})
		defer it.Close()
		for it.Seek(start); it.Valid() && bytes.Compare(it.Item().Key(), end) < 0; it.Next() {
			if more, err := visit(it.Item(), fn); err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// commonPrefix lets Badger skip tables that cannot hold keys of the range.
func commonPrefix(a, b []byte) []byte {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// Get returns a copy of the committed value of key; ok is false when it is absent.
func (s *Store) Get(key []byte) (value []byte, ok bool, err error) {
	err = s.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err == badger.ErrKeyNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		value, err = item.ValueCopy(nil)
		ok = err == nil
		return err
	})
	return value, ok, err
}

// ScanRangeReverse calls fn for every key k with start <= k < end, in descending order,
// until fn returns more=false or an error.
func (s *Store) ScanRangeReverse(start, end []byte, fn func(key, value []byte) (more bool, err error)) error {
	return s.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true})
		defer it.Close()
		// A reverse Seek lands on the greatest key <= its argument; end itself is excluded.
		it.Seek(end)
		for ; it.Valid() && bytes.Compare(it.Item().Key(), end) >= 0; it.Next() {
		}
		for ; it.Valid() && bytes.Compare(it.Item().Key(), start) >= 0; it.Next() {
			if more, err := visit(it.Item(), fn); err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// ScanKeys calls fn for every key k with start <= k < end, in ascending order, until fn
// returns false, without reading values: for index keys whose value is empty.
func (s *Store) ScanKeys(start, end []byte, fn func(key []byte) bool) error {
	return s.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: commonPrefix(start, end)})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			k := it.Item().Key()
			if bytes.Compare(k, end) >= 0 || !fn(k) {
				return nil
			}
		}
		return nil
	})
}

// reader is the store's kv.Reader: one Badger read transaction.
type reader struct{ txn *badger.Txn }

// Read runs fn on one snapshot of everything committed before it started, for reads that
// must agree with each other (an export joining several tables). Like View, it holds
// Close until fn returns.
func (s *Store) Read(fn func(r kv.Reader) error) error {
	return s.View(func(txn *badger.Txn) error { return fn(&reader{txn: txn}) })
}

// Get calls fn with the value of key when it is present, and reports whether it was.
func (r *reader) Get(key []byte, fn func(value []byte) error) (found bool, err error) {
	item, err := r.txn.Get(key)
	if err == badger.ErrKeyNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(fn)
}

// ScanRange calls fn for every key k with start <= k < end, in ascending order, until fn
// returns more=false or an error.
func (r *reader) ScanRange(start, end []byte, fn func(key, value []byte) (more bool, err error)) error {
	return r.scanKeys(start, end, func(item *badger.Item) (bool, error) { return visit(item, fn) })
}

// ScanKeys calls fn for every key k with start <= k < end, in ascending order, until fn
// returns more=false or an error, without reading values.
func (r *reader) ScanKeys(start, end []byte, fn func(key []byte) (more bool, err error)) error {
	return r.scanKeys(start, end, func(item *badger.Item) (bool, error) { return fn(item.Key()) })
}

func (r *reader) scanKeys(start, end []byte, fn func(item *badger.Item) (bool, error)) error {
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: commonPrefix(start, end)})
	defer it.Close()
	for it.Seek(start); it.Valid() && bytes.Compare(it.Item().Key(), end) < 0; it.Next() {
		if more, err := fn(it.Item()); err != nil || !more {
			return err
		}
	}
	return nil
}
