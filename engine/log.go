package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Log-first recording. A webhook is acknowledged once its new items are deduplicated
// and appended, as one log entry, on the store's log lane; sessions, events, rollups
// and the message index are views the materializer (materialize.go) derives from the
// entries in log order, off the webhook's path. The entries are kept: they are the
// compact message records of SPEC §4.4.

// The first byte of a log entry says what it holds: a webhook's items, or a command
// (another state change, such as an off-thread event) of a kind.
const (
	logEntryVersion   = 1
	logCommandVersion = 2
)

// Kinds of commands.
const (
	cmdOffThread byte = 1 // an off-thread event (JSON of its OffThreadRecord, unattributed)
	cmdRefresh   byte = 2 // a refresh of an app (its id)
	cmdPut       byte = 3 // writes of the API: definitions, spend rows, the catalogue
)

// Reload flags of a put: the in-memory state that reads the keys it writes, reloaded
// by the materializer once the put is committed.
const (
	reloadDefs byte = 1 << iota
	reloadCatalog
)

// appendPut encodes a put: the reload flags, then each key and value with its length.
func appendPut(dst []byte, flags byte, writes [][2][]byte) []byte {
	dst = append(dst, flags)
	for _, kv := range writes {
		dst = appendField(appendField(dst, kv[0]), kv[1])
	}
	return dst
}

// decodePut calls set for each key and value of the put p and returns its flags.
func decodePut(p []byte, set func(key, value []byte)) (flags byte, err error) {
	if len(p) == 0 {
		return 0, errBadEntry
	}
	flags, p = p[0], p[1:]
	for len(p) > 0 {
		var key, value []byte
		if key, p, err = cutField(p); err == nil {
			value, p, err = cutField(p)
		}
		if err != nil {
			return 0, err
		}
		set(key, value)
	}
	return flags, nil
}

// appendField appends v with its length (uvarint) before it: the fields of entries.
func appendField[T string | []byte](dst []byte, v T) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(v))), v...)
}

// cutField splits off the field appendField wrote at the start of b.
func cutField(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errBadEntry
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

var errBadEntry = errors.New("corrupt log entry")

// appender builds log entries and their dedupe claims inside Log.Append functions; each
// recording has its own.
type appender struct {
	key   []byte
	tbuf  [8]byte
	wabas bool // log the items' WABA: only conversions use it, so without them it costs bytes for nothing
}

// appendItems deduplicates items lo to hi of rec and appends the new ones that change
// a view as one log entry. It runs on the log lane.
func (a *appender) appendItems(tx kv.LogTx, rec *recording) error {
	rec.fresh, rec.seq = 0, 0
	rec.entry = appendEntryHeader(rec.entry[:0], logEntryVersion, time.Now())
	n := 0
	for i := rec.lo; i < rec.hi; i++ {
		it := &rec.items[i]
		fresh, logged, err := a.dedupe(tx, it)
		if err != nil {
			return err
		}
		if fresh {
			rec.fresh++
		}
		if logged {
			if !a.wabas {
				it.WABA = ""
			}
			rec.entry = appendItem(rec.entry, it)
			n++
		}
	}
	if n > 0 {
		tx.Add(rec.entry, &rec.seq)
	}
	return nil
}

// dedupe marks a message, status or automatic event as seen and reports whether it is
// new, and whether the item goes into the log: a status without a campaign tag changes
// no view, edits and number changes are not deduplicated (applying one twice is harmless).
func (a *appender) dedupe(tx kv.LogTx, it *webhook.Item) (fresh, logged bool, err error) {
	var val []byte
	switch it.Kind {
	case webhook.KindMessage:
		a.key = kv.DedupeMessageKey(a.key[:0], it.ID)
		// The dedupe mark holds the message's time: an edit finds the message's record by it.
		binary.BigEndian.PutUint64(a.tbuf[:], uint64(it.Time))
		val = a.tbuf[:]
	case webhook.KindStatus:
		a.key = kv.DedupeStatusKey(a.key[:0], it.ID, it.Status)
		val = seenMark[:]
	case webhook.KindAutoEvent:
		a.key = kv.DedupeStatusKey(a.key[:0], it.ID, it.EventName)
		val = seenMark[:]
	case webhook.KindEdit:
		return false, true, a.editTime(tx, it)
	default:
		return false, true, nil
	}
	_, fresh, err = tx.Claim(a.key, val, DedupeTTL)
	if err != nil {
		return false, false, err
	}
	if !fresh {
		switch it.Kind {
		case webhook.KindMessage:
			dedupeMessages.Inc()
		case webhook.KindStatus:
			dedupeStatuses.Inc()
		}
		return false, false, nil
	}
	if it.Kind == webhook.KindStatus && (it.BizOpaque == "" || it.Lead == "" || it.Status == "failed") {
		return true, false, nil
	}
	return true, true, nil
}

// editTime sets the time of the message an edit changes, from the message's dedupe claim.
func (a *appender) editTime(tx kv.LogTx, it *webhook.Item) error {
	v, ok, err := tx.Held(kv.DedupeMessageKey(a.key[:0], it.EditOf))
	if err == nil && ok && len(v) == 8 {
		it.EditTime = int64(binary.BigEndian.Uint64(v))
	}
	return err
}

// appendCommand appends a command of kind with payload as the next log entry; *seq is
// its sequence number once the append returned. It runs on the log lane.
func appendCommand(tx kv.LogTx, kind byte, payload []byte, seq *uint64) {
	v := append(appendEntryHeader(nil, logCommandVersion, time.Now()), kind)
	tx.Add(append(v, payload...), seq)
}

// logCommand appends a command as its own log entry and tells the materializer.
func (r *Recorder) logCommand(ctx context.Context, kind byte, payload []byte) (seq uint64, err error) {
	if err := r.refuseWhileSpooling(); err != nil {
		return 0, err
	}
	err = r.log.Append(ctx, func(tx kv.LogTx) error {
		appendCommand(tx, kind, payload, &seq)
		return nil
	})
	if err == nil {
		r.mat.published(seq)
	}
	return seq, err
}

// command returns the kind and payload of a command entry; ok is false for items.
func command(v []byte) (kind byte, payload []byte, ok bool) {
	if len(v) < 10 || v[0] != logCommandVersion {
		return 0, nil, false
	}
	return v[9], v[10:], true
}

// seenMark is the dedupe value of a status: only its presence matters.
var seenMark = [1]byte{1}

// A log entry is the version byte, the append time (unix nanoseconds, for the view lag)
// and the items: kind, format, flags, time, amount, then every string field of Item in
// stringFields order, each as uvarint length and bytes, and the WABA when flags say so.
func appendEntryHeader(dst []byte, version byte, now time.Time) []byte {
	return binary.BigEndian.AppendUint64(append(dst, version), uint64(now.UnixNano()))
}

func appendItem(dst []byte, it *webhook.Item) []byte {
	var flags byte
	if it.LeadIsBSUID {
		flags |= flagBSUID
	}
	if it.WABA != "" {
		flags |= flagWABA
	}
	if it.EditTime != 0 {
		flags |= flagEditTime
	}
	dst = append(dst, byte(it.Kind), byte(it.Format), flags)
	dst = binary.AppendVarint(dst, it.Time)
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(it.Amount))
	text := it.Text
	it.Text = truncateUTF8(text, kv.MaxText) // what is kept of a message (SPEC §4.4)
	fields := it.StringFields()
	for _, s := range fields[:webhook.LoggedFields] {
		dst = appendField(dst, *s)
	}
	if it.WABA != "" {
		dst = appendField(dst, it.WABA)
	}
	if it.EditTime != 0 {
		dst = binary.AppendVarint(dst, it.EditTime)
	}
	it.Text = text
	return dst
}

// Flags of a logged item. flagWABA and flagEditTime were added later: entries before
// them have neither field.
const (
	flagBSUID    = 1 << iota // Lead is a BSUID
	flagWABA                 // a WABA field follows the string fields
	flagEditTime             // the edited message's time follows (varint)
)

// entryTime is the append time of a log entry.
func entryTime(v []byte) (time.Time, error) {
	if len(v) < 9 || (v[0] != logEntryVersion && v[0] != logCommandVersion) {
		return time.Time{}, errBadEntry
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))), nil
}

// decodeEntry appends the items of log entry v to dst. Their strings alias v.
func decodeEntry(dst []webhook.Item, v []byte) ([]webhook.Item, error) {
	if len(v) < 9 || v[0] != logEntryVersion {
		return dst, errBadEntry
	}
	for b := v[9:]; len(b) > 0; {
		var it webhook.Item
		var err error
		if b, err = decodeItem(&it, b); err != nil {
			return dst, err
		}
		dst = append(dst, it)
	}
	return dst, nil
}

func decodeItem(it *webhook.Item, b []byte) ([]byte, error) {
	if len(b) < 3 {
		return nil, errBadEntry
	}
	flags := b[2]
	it.Kind, it.Format, it.LeadIsBSUID = webhook.ItemKind(b[0]), webhook.Format(b[1]), flags&flagBSUID != 0
	t, k := binary.Varint(b[3:])
	if k <= 0 || len(b) < 3+k+8 {
		return nil, errBadEntry
	}
	it.Time = t
	b = b[3+k:]
	it.Amount = math.Float64frombits(binary.BigEndian.Uint64(b))
	b = b[8:]
	fields := it.StringFields()
	for _, s := range fields[:webhook.LoggedFields] {
		var field []byte
		var err error
		if field, b, err = cutField(b); err != nil {
			return nil, err
		}
		*s = unsafeString(field)
	}
	if flags&flagWABA != 0 {
		field, rest, err := cutField(b)
		if err != nil {
			return nil, err
		}
		it.WABA, b = unsafeString(field), rest
	}
	if flags&flagEditTime != 0 {
		t, k := binary.Varint(b)
		if k <= 0 {
			return nil, errBadEntry
		}
		it.EditTime, b = t, b[k:]
	}
	return b, nil
}

// logPuts logs writes as put commands, in chunks that fit one commit, and waits until
// the views hold them (and the in-memory state flags names is reloaded). The writes of
// one chunk are applied atomically; a failure part way leaves the earlier chunks.
func (r *Recorder) logPuts(ctx context.Context, flags byte, writes [][2][]byte) error {
	var last uint64
	for len(writes) > 0 {
		n, size := 0, 0
		for n < len(writes) && n < putChunkWrites && size < putChunkBytes {
			size += len(writes[n][0]) + len(writes[n][1])
			n++
		}
		var err error
		if last, err = r.logCommand(ctx, cmdPut, appendPut(nil, flags, writes[:n])); err != nil {
			return err
		}
		writes = writes[n:]
	}
	return r.mat.wait(ctx, last, nil)
}

// Chunks of a put: each is one log entry and one view commit, well inside a transaction.
const (
	putChunkWrites = 1000
	putChunkBytes  = 256 << 10
)
