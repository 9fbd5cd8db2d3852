package storage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"time"

	"github.com/cespare/xxhash/v2"
)

// claims holds the file log's dedupe marks: every claim of the last DedupeTTL (and
// those kept for good), rebuilt when the log opens from the claims snapshot, the
// sealed runs (filelog_runs.go) and the records of the segments after the snapshot. A
// miss is a map lookup and an index probe instead of a read through Badger's levels.
// The map holds the claims taken since the last rotation and those kept for good, each
// as a 64-bit hash of its key and 16 bytes (its expiry and a value of up to 8 bytes, or
// where a longer one is in the arena): no pointer for the garbage collector to walk
// (with a string per claim it spent a fifth of the sidecar's CPU there). A false
// duplicate needs two keys with the same 64-bit hash: at ten million claims about one
// new message in 10¹² would be taken for a retry. Only the log's writer goroutine uses it.
type claims struct {
	m     map[uint64]claim
	arena []byte // values longer than 8 bytes
	dead  int    // bytes of the arena no claim uses, reclaimed by prune

	runs  []*claimRun // sealed, oldest first
	index claimIndex
	rbuf  []byte // a run's frame, read
}

type claim struct {
	expires uint32 // unix seconds; 0: kept for good
	n       uint32 // the value's length; with inArena set, it is at arena[v:]
	v       uint64 // the value's bytes, or its offset in the arena
}

const inArena = 1 << 31

func newClaims() *claims { return &claims{m: make(map[uint64]claim)} }

// claimHash is the hash a claim is kept under (xxHash64: fixed, so snapshots hold it).
func claimHash(key []byte) uint64 { return xxhash.Sum64(key) }

// get returns the value of the live claim h (a copy). The map holds the newest claims:
// one there, expired or not, is the last of its key.
func (c *claims) get(h uint64, now int64) ([]byte, bool, error) {
	cl, ok := c.m[h]
	if !ok {
		return c.runsHolding(h, now)
	}
	if cl.expires != 0 && int64(cl.expires) <= now {
		return nil, false, nil
	}
	return c.value(cl), true, nil
}

func (c *claims) value(cl claim) []byte {
	if cl.n&inArena != 0 {
		n := uint64(cl.n &^ inArena)
		return append([]byte(nil), c.arena[cl.v:cl.v+n]...)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], cl.v)
	return append([]byte(nil), b[:cl.n]...)
}

func (c *claims) put(h uint64, value []byte, expires int64) {
	c.remove(h)
	cl := claim{expires: uint32(expires), n: uint32(len(value))}
	if len(value) > 8 {
		cl.n |= inArena
		cl.v = uint64(len(c.arena))
		c.arena = append(c.arena, value...)
	} else {
		var b [8]byte
		copy(b[:], value)
		cl.v = binary.LittleEndian.Uint64(b[:])
	}
	c.m[h] = cl
}

func (c *claims) remove(h uint64) {
	if old, ok := c.m[h]; ok {
		if old.n&inArena != 0 {
			c.dead += int(old.n &^ inArena)
		}
		delete(c.m, h)
	}
}

// prune forgets the claims that expired and, when most of the arena is unused, copies
// the values still used into a new one.
func (c *claims) prune(now int64) {
	for h, cl := range c.m {
		if cl.expires != 0 && int64(cl.expires) <= now {
			c.remove(h)
		}
	}
	if c.dead < len(c.arena)/2 {
		return
	}
	old := c.arena
	c.arena, c.dead = nil, 0
	for h, cl := range c.m {
		if cl.n&inArena != 0 {
			n := uint64(cl.n &^ inArena)
			at := uint64(len(c.arena))
			c.arena = append(c.arena, old[cl.v:cl.v+n]...)
			cl.v = at
			c.m[h] = cl
		}
	}
}

// each calls fn with every live claim of the map.
func (c *claims) each(now int64, fn func(h uint64, value []byte, expires int64)) {
	for h, cl := range c.m {
		if cl.expires == 0 || int64(cl.expires) > now {
			fn(h, c.value(cl), int64(cl.expires))
		}
	}
}

// expiry is when a claim taken now for ttl (0: for good) expires, in unix seconds.
func expiry(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).Unix()
}

// writeSnapshot writes every live claim of the map to dir/<next>.claims (through a
// temporary file, fsynced, then renamed), as one or more frames of claim records: the
// log then reads its claims from the snapshot, the runs and the segments from next on,
// not from every segment. It removes older snapshots. Written by seal, it holds the
// claims kept for good; one written before runs may hold every claim.
func (c *claims) writeSnapshot(dir string, next uint64, now int64) error {
	frames := newHashFrames()
	c.each(now, func(h uint64, value []byte, expires int64) { frames.add(h, value, expires) })
	if err := writeFileAs(filepath.Join(dir, seqName(next, claimsExt)), frames.bytes()); err != nil {
		return err
	}
	if err := syncPath(dir); err != nil {
		return err
	}
	old, err := listSegments(dir, claimsExt)
	for _, seq := range old {
		if seq < next {
			os.Remove(filepath.Join(dir, seqName(seq, claimsExt)))
		}
	}
	return err
}

// loadSnapshot reads the claims of a snapshot file into c.
func (c *claims) loadSnapshot(path string, now int64) error {
	load := c.loadRecord(now)
	_, err := scanHashFile(path, func(_ int64, h uint64, value []byte, expires int64) error {
		return load(h, value, expires)
	})
	return err
}

// loadRecord returns a walkRecords claim function that keeps the live claims.
func (c *claims) loadRecord(now int64) func(h uint64, value []byte, expires int64) error {
	return func(h uint64, value []byte, expires int64) error {
		if expires == 0 || expires > now {
			c.put(h, value, expires)
		}
		return nil
	}
}

// writeFileAs writes data to path through a temporary file, fsynced, then renamed (the
// directory's fsync is the caller's).
func writeFileAs(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, data); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncPath(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
