package engine

import (
	"context"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// The engine runs on two stores whose insides it does not know (package kv is the
// contract): the Log, the source of truth, and the Views derived from it. storage
// implements both on one Badger database; cluster mode (SPEC §11) puts the log on a
// NATS JetStream stream, so nothing here may assume that the log is local: the views
// read log entries only through Log.

// Log holds every state change in sequence: webhook items, off-thread events,
// definition changes, spend rows, refreshes (log.go encodes them).
type Log interface {
	// Append runs fn in the log's next group commit and returns once what fn claimed
	// and added is durable; on an error none of it is.
	Append(ctx context.Context, fn func(tx kv.LogTx) error) error
	// Entries calls fn with every entry after sequence number after, in log order, until
	// fn returns more=false or an error. entry is valid only during the call.
	Entries(after uint64, fn func(seq uint64, entry []byte) (more bool, err error)) error
	// Entry returns entry seq; ok is false when it was never committed.
	Entry(seq uint64) (entry []byte, ok bool, err error)
	// Last is the sequence number of the last entry appended before the recorder started.
	Last() uint64
}

// Views is the store of what the materializer derives from the log (sessions, events,
// rollups, indexes, the catalogue, the conversions outbox) and of the checkpoint that
// says how far into the log they reach.
type Views interface {
	// Apply runs fn in the view lane's next group commit and returns once it is durable.
	Apply(ctx context.Context, fn func(b kv.Batch) error) error
	// Derive is Apply without waiting for the disk: for writes the log can rebuild.
	Derive(ctx context.Context, fn func(b kv.Batch) error) error
	Get(key []byte) (value []byte, ok bool, err error)
	Scan(prefix []byte, reverse bool, fn func(key, value []byte) (more bool, err error)) error
	ScanRange(start, end []byte, fn func(key, value []byte) (more bool, err error)) error
	ScanRangeReverse(start, end []byte, fn func(key, value []byte) (more bool, err error)) error
	ScanKeys(start, end []byte, fn func(key []byte) bool) error
	// Read runs fn on one consistent snapshot.
	Read(fn func(r kv.Reader) error) error
	// Closing is closed when the store begins to close.
	Closing() <-chan struct{}
	// Ready is nil when the store takes writes; otherwise it says why not.
	Ready() error
}
