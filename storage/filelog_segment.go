package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The file log (FileLog) is a directory of segment files, each named by the sequence
// number its entries start at. A segment is a run of frames:
//
//	frame:  payload length uint32 LE | CRC-32C of the payload uint32 LE | payload
//	record: 'e' seq uint64 BE, uvarint length, entry
//	        'c' uvarint length, key, uvarint length, value, expiry int64 BE (unix s, 0: never)
//	        'h' key hash uint64 BE, uvarint length, value, expiry int64 BE (claims snapshots)
//
// A frame holds whole requests of one group commit (their claims, then their
// entries), so a frame cut short by a crash takes only requests that were never
// answered; opening the log cuts it off.
const (
	frameHeader = 8
	// A frame closes at the first request boundary past maxFrame; Entry reads a whole
	// frame (its checksum covers it) from the nearest index point, so both stay small:
	// a refresh reads every message's entry in time order, not log order (`go run ./bench
	// -store-scale 1000000`: its refresh took 107 s with 32 KiB frames and 16 KiB strides,
	// 61 s with these). The index costs 16 bytes per 4 KiB of log in memory, 256 KiB per
	// segment read.
	maxFrame     = 4 << 10
	indexStride  = 4 << 10  // bytes between index points of a segment
	segmentSize  = 64 << 20 // a segment is sealed once it holds this much (FileLog.segmentSize)
	segmentExt   = ".seg"
	claimsExt    = ".claims"
	recEntry     = 'e'
	recClaim     = 'c'
	recHash      = 'h'
	maxFrameRead = 256 << 20 // a frame longer than this is corruption, not data
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errCorruptFrame = errors.New("corrupt frame")

// segment is one file of the log. The writer appends to the last one; readers read
// each up to its committed size.
type segment struct {
	first uint64 // the sequence number of its first entry, if it has one
	path  string
	f     *os.File
	size  atomic.Int64 // bytes committed: readers never read past them

	mu      sync.Mutex
	idx     []point // frame offsets, about one per indexStride; nil until indexed
	indexed bool
}

// point is a frame's offset and the next sequence number when it was written: every
// entry in it and after it has a sequence number at or above seq.
type point struct {
	seq uint64
	off int64
}

// seqName is the name of a segment (ext segmentExt) or snapshot (claimsExt) that starts at seq.
func seqName(seq uint64, ext string) string { return fmt.Sprintf("%020d%s", seq, ext) }

// listSegments returns the sequence numbers in the names of dir's files with ext,
// in order.
func listSegments(dir, ext string) ([]uint64, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range names {
		base, ok := strings.CutSuffix(e.Name(), ext)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

func openSegment(dir string, first uint64) (*segment, error) {
	path := filepath.Join(dir, seqName(first, segmentExt))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &segment{first: first, path: path, f: f}, nil
}

// scanBuf is a scan's reader and payload buffer, pooled: the materializer scans the
// log at every step.
type scanBuf struct {
	r       *bufio.Reader
	payload []byte
}

var scanBufs = sync.Pool{New: func() any { return &scanBuf{r: bufio.NewReaderSize(nil, 64<<10)} }}

// scan reads the segment's frames from off up to its committed size (or, with
// toEnd, to the end of the file) and calls fn with each payload, which is valid only
// during the call. It returns the offset after the last whole frame; a frame cut short
// or failing its checksum ends the scan with errCorruptFrame.
func (s *segment) scan(off int64, toEnd bool, fn func(off int64, payload []byte) (bool, error)) (int64, error) {
	limit := s.size.Load()
	if toEnd {
		st, err := s.f.Stat()
		if err != nil {
			return off, err
		}
		limit = st.Size()
	}
	sb := scanBufs.Get().(*scanBuf)
	defer scanBufs.Put(sb)
	r := sb.r
	r.Reset(io.NewSectionReader(s.f, off, limit-off))
	var hdr [frameHeader]byte
	buf := sb.payload
	defer func() { sb.payload = buf[:0] }()
	for off < limit {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, errCorruptFrame
		}
		n := int64(binary.LittleEndian.Uint32(hdr[:]))
		if n > maxFrameRead || off+frameHeader+n > limit {
			return off, errCorruptFrame
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return off, errCorruptFrame
		}
		if crc32.Checksum(buf, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return off, errCorruptFrame
		}
		more, err := fn(off, buf)
		off += frameHeader + n
		if err != nil || !more {
			return off, err
		}
	}
	return off, nil
}

// index builds the segment's index once (the writer keeps the last segment's index
// as it appends).
func (s *segment) index(nextAtStart uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexed {
		return nil
	}
	var idx []point
	last := int64(-indexStride)
	next := nextAtStart
	_, err := s.scan(0, false, func(off int64, payload []byte) (bool, error) {
		if off-last >= indexStride {
			idx = append(idx, point{next, off})
			last = off
		}
		return true, walkRecords(payload, func(seq uint64, _ []byte) error {
			next = seq + 1
			return nil
		}, nil)
	})
	if err != nil {
		return fmt.Errorf("cannot read log segment %s: %w", s.path, err)
	}
	s.idx, s.indexed = idx, true
	return nil
}

// seek returns the offset of the last indexed frame whose entries all come at or
// before seq.
func (s *segment) seek(seq uint64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.idx), func(i int) bool { return s.idx[i].seq > seq })
	if i == 0 {
		return 0
	}
	return s.idx[i-1].off
}

// addPoint indexes a frame the writer appended at off.
func (s *segment) addPoint(seq uint64, off int64) {
	s.mu.Lock()
	if n := len(s.idx); n == 0 || off-s.idx[n-1].off >= indexStride {
		s.idx = append(s.idx, point{seq, off})
	}
	s.mu.Unlock()
}

// walkRecords calls entry and claim (either may be nil) with each record of a payload;
// claim gets the hash of the claim's key (claimHash).
func walkRecords(p []byte, entry func(seq uint64, e []byte) error, claim func(h uint64, value []byte, expires int64) error) error {
	for len(p) > 0 {
		typ := p[0]
		p = p[1:]
		switch typ {
		case recEntry:
			if len(p) < 8 {
				return errCorruptFrame
			}
			seq := binary.BigEndian.Uint64(p)
			e, rest, ok := cutBytes(p[8:])
			if !ok {
				return errCorruptFrame
			}
			p = rest
			if entry != nil {
				if err := entry(seq, e); err != nil {
					return err
				}
			}
		case recClaim, recHash:
			var h uint64
			rest := p
			if typ == recHash {
				if len(p) < 8 {
					return errCorruptFrame
				}
				h, rest = binary.BigEndian.Uint64(p), p[8:]
			} else {
				key, r, ok := cutBytes(p)
				if !ok {
					return errCorruptFrame
				}
				h, rest = claimHash(key), r
			}
			value, rest, ok := cutBytes(rest)
			if !ok || len(rest) < 8 {
				return errCorruptFrame
			}
			expires := int64(binary.BigEndian.Uint64(rest))
			p = rest[8:]
			if claim != nil {
				if err := claim(h, value, expires); err != nil {
					return err
				}
			}
		default:
			return errCorruptFrame
		}
	}
	return nil
}

// cutBytes splits a uvarint-prefixed byte string off p.
func cutBytes(p []byte) (b, rest []byte, ok bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, false
	}
	return p[k : k+int(n)], p[k+int(n):], true
}

func appendEntryRecord(dst []byte, seq uint64, entry []byte) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst, recEntry), seq)
	return append(binary.AppendUvarint(dst, uint64(len(entry))), entry...)
}

func appendClaimRecord(dst, key, value []byte, expires int64) []byte {
	dst = append(binary.AppendUvarint(append(dst, recClaim), uint64(len(key))), key...)
	dst = append(binary.AppendUvarint(dst, uint64(len(value))), value...)
	return binary.BigEndian.AppendUint64(dst, uint64(expires))
}

func appendHashRecord(dst []byte, h uint64, value []byte, expires int64) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst, recHash), h)
	dst = append(binary.AppendUvarint(dst, uint64(len(value))), value...)
	return binary.BigEndian.AppendUint64(dst, uint64(expires))
}

// framePayload returns the payload of the whole frame b, checked against its header.
func framePayload(b []byte) ([]byte, error) {
	if len(b) < frameHeader || int(binary.LittleEndian.Uint32(b)) != len(b)-frameHeader ||
		crc32.Checksum(b[frameHeader:], crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, errCorruptFrame
	}
	return b[frameHeader:], nil
}

// hashFrames builds frames of claim hash records ('h'), closing each past maxFrame:
// the files of claims snapshots and runs.
type hashFrames struct {
	buf   []byte
	start int // offset of the open frame; -1 when none is
}

func newHashFrames() *hashFrames { return &hashFrames{start: -1} }

// add appends a record and reports whether it opened a frame, at offset off.
func (f *hashFrames) add(h uint64, value []byte, expires int64) (opened bool, off int) {
	if opened = f.start < 0; opened {
		f.start = len(f.buf)
		f.buf = append(f.buf, make([]byte, frameHeader)...)
	}
	off = f.start
	f.buf = appendHashRecord(f.buf, h, value, expires)
	if len(f.buf)-f.start >= maxFrame {
		sealFrame(f.buf, f.start)
		f.start = -1
	}
	return opened, off
}

// bytes seals the open frame and returns every frame.
func (f *hashFrames) bytes() []byte {
	if f.start >= 0 {
		sealFrame(f.buf, f.start)
		f.start = -1
	}
	return f.buf
}

// scanHashFile calls fn with each claim hash record of the file at path (a claims
// snapshot or run) and the offset of its frame, and returns the file's size.
func scanHashFile(path string, fn func(off int64, h uint64, value []byte, expires int64) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := &segment{path: path, f: f}
	return s.scan(0, true, func(off int64, payload []byte) (bool, error) {
		return true, walkRecords(payload, nil, func(h uint64, value []byte, expires int64) error {
			return fn(off, h, value, expires)
		})
	})
}

// sealFrame fills in the header of the frame that starts at buf[start:].
func sealFrame(buf []byte, start int) {
	payload := buf[start+frameHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
}
