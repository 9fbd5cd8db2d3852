package storage

import (
	"bytes"
	"encoding/binary"

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

// Reader reads one consistent snapshot of the store (see Read). Keys and values handed to
// its callbacks are valid only during the call.
type Reader struct{ txn *badger.Txn }

// Read runs fn on one snapshot of everything committed before it started, for reads that
// must agree with each other (an export joining several tables). Like View, it holds
// Close until fn returns.
func (s *Store) Read(fn func(r *Reader) error) error {
	return s.View(func(txn *badger.Txn) error { return fn(&Reader{txn: txn}) })
}

// Get calls fn with the value of key when it is present, and reports whether it was.
func (r *Reader) Get(key []byte, fn func(value []byte) error) (found bool, err error) {
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
func (r *Reader) ScanRange(start, end []byte, fn func(key, value []byte) (more bool, err error)) error {
	return r.scanKeys(start, end, func(item *badger.Item) (bool, error) { return visit(item, fn) })
}

// ScanKeys calls fn for every key k with start <= k < end, in ascending order, until fn
// returns more=false or an error, without reading values.
func (r *Reader) ScanKeys(start, end []byte, fn func(key []byte) (more bool, err error)) error {
	return r.scanKeys(start, end, func(item *badger.Item) (bool, error) { return fn(item.Key()) })
}

func (r *Reader) scanKeys(start, end []byte, fn func(item *badger.Item) (bool, error)) error {
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: commonPrefix(start, end)})
	defer it.Close()
	for it.Seek(start); it.Valid() && bytes.Compare(it.Item().Key(), end) < 0; it.Next() {
		if more, err := fn(it.Item()); err != nil || !more {
			return err
		}
	}
	return nil
}

// LeadSessions calls fn for every entry of the lead→sessions index, across apps, in key
// order: by lead (in byte order), then by start, app and session id; until fn returns
// more=false or an error. All of a lead's entries come together. The slices are valid
// only during the call.
func (r *Reader) LeadSessions(fn func(lead []byte, start int64, app, id []byte) (more bool, err error)) error {
	prefix := []byte(tLses)
	return r.ScanKeys(prefix, prefixEnd(prefix), func(key []byte) (bool, error) {
		rest := key[len(tLses):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) < i+1+8 {
			return false, errCorrupt
		}
		lead, start, tail := rest[:i], int64(binary.BigEndian.Uint64(rest[i+1:])), rest[i+1+8:]
		j := bytes.IndexByte(tail, 0)
		if j < 0 {
			return false, errCorrupt
		}
		return fn(lead, start, tail[:j], tail[j+1:])
	})
}
