// Package kv is the contract between the engine and the store it runs on: the Batch and
// Reader a store hands out, and the key layout and record encodings of the views
// (keys.go, records.go, rollup.go). It imports no store, so the engine can be built,
// read and tested as the domain alone; storage implements the contract on Badger.
package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"
)

// Errors of a store that callers act on.
var (
	// ErrTooBig is a request whose writes do not fit one transaction (for Badger about
	// 2.4 MiB or 26 000 writes): split such work into several requests.
	ErrTooBig = errors.New("request writes too much for one commit")
	// ErrClosed is returned by every operation on a closed store.
	ErrClosed = errors.New("store is closed")
	// ErrUnavailable: a log kept elsewhere (cluster mode) cannot be reached now.
	ErrUnavailable = errors.New("the log cannot be reached")
)

// Batch is one transaction of writes. Get sees the batch's own writes first, then what
// the store holds. Keys and values are copied when set; a value returned by Get is valid
// until the batch's function returns.
type Batch interface {
	Set(key, value []byte)
	// SetWithTTL writes a key that the store drops after ttl (dedupe marks).
	SetWithTTL(key, value []byte, ttl time.Duration)
	Delete(key []byte)
	Get(key []byte) (value []byte, ok bool, err error)
	// Full reports that the batch holds as much as one transaction should: callers that
	// write in a loop end the batch there and go on in the next.
	Full() bool
	// Losses counts the requests whose writes the store dropped after their function had
	// run (rolled back, or in a failed commit): a caller that caches what it wrote drops
	// its cache when the count moved.
	Losses() uint64
}

// Reader reads one consistent snapshot. Keys and values handed to its callbacks are
// valid only during the call.
type Reader interface {
	// Get calls fn with the value of key when it is present, and reports whether it was.
	Get(key []byte, fn func(value []byte) error) (found bool, err error)
	// ScanRange calls fn for every key k with start <= k < end, in ascending order, until
	// fn returns more=false or an error.
	ScanRange(start, end []byte, fn func(key, value []byte) (more bool, err error)) error
	// ScanKeys is ScanRange without reading values: for index keys whose value is empty.
	ScanKeys(start, end []byte, fn func(key []byte) (more bool, err error)) error
}

// PrefixEnd returns the smallest key greater than every key with the prefix, or nil when
// there is none (a prefix of 0xff bytes only).
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Apps returns the app ids that have rollups (sessions or off-thread events), in order.
// It hops from app to app, reading one key per app.
func Apps(r Reader) ([]string, error) {
	var apps []string
	from, end := []byte(tRoll), PrefixEnd([]byte(tRoll))
	for {
		var app []byte
		err := r.ScanKeys(from, end, func(k []byte) (bool, error) {
			rest := k[len(tRoll):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return false, errCorrupt
			}
			app = rest[:i:i]
			return false, nil
		})
		if err != nil || app == nil {
			return apps, err
		}
		apps = append(apps, string(app))
		// The smallest key after every key of this app: its prefix with the NUL raised.
		from = append(append([]byte(tRoll), app...), 1)
	}
}

// LeadSessions calls fn for every entry of the lead→sessions index, across apps, in key
// order: by lead (in byte order), then by start, app and session id; until fn returns
// more=false or an error. All of a lead's entries come together. The slices are valid
// only during the call.
func LeadSessions(r Reader, fn func(lead []byte, start int64, app, id []byte) (more bool, err error)) error {
	prefix := []byte(tLses)
	return r.ScanKeys(prefix, PrefixEnd(prefix), func(key []byte) (bool, error) {
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

// LogTx is one request on a log's append lane. What it claims and adds is durable
// together once the append returns nil, and on an error none of it is: a dedupe mark is
// never kept without the entry it let in, nor an entry without its mark. A log shared by
// several processes (cluster mode) may run the request's function again when another
// process claimed one of its keys meanwhile: only the last run counts, so the function
// must start from scratch each time.
type LogTx interface {
	// Claim takes key with value for ttl (0: for good) unless it is taken: then it
	// returns the value the key holds and fresh=false. The value is valid until the
	// request's function returns.
	Claim(key, value []byte, ttl time.Duration) (held []byte, fresh bool, err error)
	// Held returns the value key was claimed with, if it is.
	Held(key []byte) (value []byte, ok bool, err error)
	// Add appends entry as one of the log's next entries; *seq is its sequence number
	// once the append returned nil (a shared log learns it only from the commit).
	Add(entry []byte, seq *uint64)
	// Last is a sequence number at or after the entries of the keys this request found
	// claimed (by any request, or any process sharing the log).
	Last() uint64
}
