package storage

import (
	"bytes"

	"github.com/dgraph-io/badger/v4"
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

// Apps returns the app ids that have sessions or off-thread events (their rollups), in
// order. It hops from app to app with seeks, so it reads one key per app.
func (s *Store) Apps() ([]string, error) {
	var apps []string
	err := s.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(tRoll)})
		defer it.Close()
		for it.Seek([]byte(tRoll)); it.ValidForPrefix([]byte(tRoll)); {
			rest := it.Item().Key()[len(tRoll):]
			end := bytes.IndexByte(rest, 0)
			if end < 0 {
				return errCorrupt
			}
			apps = append(apps, string(rest[:end]))
			// The smallest key after every key of this app: its prefix with the NUL raised.
			it.Seek(append([]byte(tRoll), append(rest[:end:end], 1)...))
		}
		return nil
	})
	return apps, err
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
