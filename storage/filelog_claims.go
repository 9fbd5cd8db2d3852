package storage

import (
	"hash/maphash"
	"os"
	"path/filepath"
	"time"
)

// claims holds the file log's dedupe marks in memory: every claim of the last
// DedupeTTL (and those kept for good), keyed by a 128-bit hash of the claim's key,
// rebuilt from the log's records (and the last claims snapshot) when the log opens.
// A miss is a map lookup instead of a read through Badger's levels. The map and the
// arena that holds the keys and values have no pointers, so the garbage collector does
// not walk them: with a string per claim it spent a fifth of the sidecar's CPU there.
// Only the log's writer goroutine uses it.
type claims struct {
	seeds [2]maphash.Seed
	m     map[claimKey]claim
	arena [][]byte // chunks of claimChunk bytes: each claim's key, then its value
	used  int      // bytes in use in the last chunk
	dead  int      // bytes of removed claims, reclaimed by prune
}

const claimChunk = 1 << 20

type claimKey [2]uint64

type claim struct {
	chunk, off uint32
	klen, vlen uint32
	expires    int64 // unix seconds; 0: kept for good
}

func newClaims() *claims {
	return &claims{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		m:     make(map[claimKey]claim),
	}
}

func (c *claims) hash(key []byte) claimKey {
	return claimKey{maphash.Bytes(c.seeds[0], key), maphash.Bytes(c.seeds[1], key)}
}

// get returns the value of the live claim of k (a copy: later claims may move the arena).
func (c *claims) get(k claimKey, now int64) ([]byte, bool) {
	cl, ok := c.m[k]
	if !ok || (cl.expires != 0 && cl.expires <= now) {
		return nil, false
	}
	return append([]byte(nil), c.bytes(cl)[cl.klen:]...), true
}

// bytes is the claim's key and value.
func (c *claims) bytes(cl claim) []byte {
	return c.arena[cl.chunk][cl.off : cl.off+cl.klen+cl.vlen]
}

func (c *claims) put(k claimKey, key, value []byte, expires int64) {
	if old, ok := c.m[k]; ok {
		c.dead += int(old.klen + old.vlen)
	}
	n := len(key) + len(value)
	if len(c.arena) == 0 || c.used+n > len(c.arena[len(c.arena)-1]) {
		c.arena = append(c.arena, make([]byte, max(claimChunk, n)))
		c.used = 0
	}
	chunk := c.arena[len(c.arena)-1]
	copy(chunk[c.used:], key)
	copy(chunk[c.used+len(key):], value)
	c.m[k] = claim{chunk: uint32(len(c.arena) - 1), off: uint32(c.used), klen: uint32(len(key)), vlen: uint32(len(value)), expires: expires}
	c.used += n
}

func (c *claims) remove(k claimKey) {
	if old, ok := c.m[k]; ok {
		c.dead += int(old.klen + old.vlen)
		delete(c.m, k)
	}
}

// prune forgets the claims that expired and, when most of the arena is dead, copies
// the live claims into a new one.
func (c *claims) prune(now int64) {
	for k, cl := range c.m {
		if cl.expires != 0 && cl.expires <= now {
			c.remove(k)
		}
	}
	if c.dead < len(c.arena)*claimChunk/2 {
		return
	}
	old := c.arena
	c.arena, c.used, c.dead = nil, 0, 0
	for k, cl := range c.m {
		b := old[cl.chunk][cl.off : cl.off+cl.klen+cl.vlen]
		c.put(k, b[:cl.klen], b[cl.klen:], cl.expires)
	}
}

// each calls fn with every live claim; key and value are valid only during the call.
func (c *claims) each(now int64, fn func(key, value []byte, expires int64)) {
	for _, cl := range c.m {
		if cl.expires == 0 || cl.expires > now {
			b := c.bytes(cl)
			fn(b[:cl.klen], b[cl.klen:], cl.expires)
		}
	}
}

func expiry(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).Unix()
}

// writeSnapshot writes every live claim to dir/<next>.claims (through a temporary
// file, fsynced, then renamed), as one or more frames of claim records: the log then
// reads its claims from the snapshot and the segments from next on, not from every
// segment. It removes older snapshots.
func (c *claims) writeSnapshot(dir string, next uint64, now int64) error {
	var buf []byte
	start := -1
	c.each(now, func(key, value []byte, expires int64) {
		if start < 0 {
			start = len(buf)
			buf = append(buf, make([]byte, frameHeader)...)
		}
		buf = appendClaimRecord(buf, key, value, expires)
		if len(buf)-start >= maxFrame {
			sealFrame(buf, start)
			start = -1
		}
	})
	if start >= 0 {
		sealFrame(buf, start)
	}
	name := filepath.Join(dir, seqName(next, claimsExt))
	tmp := name + ".tmp"
	if err := writeFileSync(tmp, buf); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
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
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := &segment{path: path, f: f}
	_, err = s.scan(0, true, func(_ int64, payload []byte) (bool, error) {
		return true, walkRecords(payload, nil, c.loadRecord(now))
	})
	return err
}

// loadRecord returns a walkRecords claim function that keeps the live claims.
func (c *claims) loadRecord(now int64) func(key, value []byte, expires int64) error {
	return func(key, value []byte, expires int64) error {
		if expires == 0 || expires > now {
			c.put(c.hash(key), key, value, expires)
		}
		return nil
	}
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
