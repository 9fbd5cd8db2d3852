package kv

import (
	"encoding/binary"
	"errors"
)

// Records are encoded as a version byte followed by fields in a fixed order: strings as
// uvarint length + bytes, integers as varints, flags as one byte. Append-style so a
// writer can reuse one buffer; decoding aliases nothing (strings are copied).

const recordVersion = 1

var errCorrupt = errors.New("corrupt record")

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendInt(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// reader decodes fields in order; the first failure sticks in err.
type reader struct {
	b   []byte
	err error
}

func newReader(b []byte) *reader {
	r := &reader{b: b}
	if len(b) == 0 || b[0] != recordVersion {
		r.err = errCorrupt
		return r
	}
	r.b = b[1:]
	return r
}

// more reports whether fields follow: records may end before fields added later.
func (r *reader) more() bool { return r.err == nil && len(r.b) > 0 }

func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || uint64(len(r.b)-k) < n {
		r.err = errCorrupt
		return ""
	}
	s := string(r.b[k : k+int(n)])
	r.b = r.b[k+int(n):]
	return s
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 {
		r.err = errCorrupt
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// count reads a collection length, refusing one longer than the bytes left.
func (r *reader) count() int {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[k:]
	return int(n)
}

func (r *reader) uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}
