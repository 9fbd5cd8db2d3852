package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Sealed claims. At each rotation the claims taken since the last one that expire (the
// marks of messages and statuses) are written, sorted by hash, to a run file
// <next>.run and leave the map: memory keeps 4 bytes of each (claimIndex) and the
// first hash of each of the run's frames. A lookup the index cannot rule out reads one
// frame (about 4 KiB) of one run. A run is deleted once all of its claims expired.
// Before runs every claim of the last 9 days stayed in the map (about 56 bytes each:
// 560 MiB at ten million) and every rotation wrote all of them to a new snapshot
// (about 200 MB per 64 MiB segment at ten million). Claims kept for good (off-thread
// object ids, few) stay in the map and in the claims snapshot.

const runExt = ".run"

// maxRuns bounds the runs alive at once: the index names a run in 16 bits. At one run
// per 64 MiB segment it allows 4 TiB of log within the dedupe window.
const maxRuns = 1<<16 - 1

// claimRun is one sealed run file, read by frame.
type claimRun struct {
	path    string
	f       *os.File
	size    int64
	expires int64    // the latest expiry of its claims: it is dropped once that passed
	firsts  []uint64 // the first hash of each frame, ascending
	offs    []int64  // each frame's offset
}

// writeRun writes the claims hashes (sorted) of c's map to dir/<next>.run through a
// temporary file, fsynced, and opens it.
func (c *claims) writeRun(dir string, next uint64, hashes []uint64) (*claimRun, error) {
	r := &claimRun{path: filepath.Join(dir, seqName(next, runExt))}
	frames := newHashFrames()
	for _, h := range hashes {
		cl := c.m[h]
		r.expires = max(r.expires, int64(cl.expires))
		if opened, off := frames.add(h, c.value(cl), int64(cl.expires)); opened {
			r.firsts, r.offs = append(r.firsts, h), append(r.offs, int64(off))
		}
	}
	buf := frames.bytes()
	r.size = int64(len(buf))
	if err := writeFileAs(r.path, buf); err != nil {
		return nil, err
	}
	f, err := os.Open(r.path)
	if err != nil {
		os.Remove(r.path)
		return nil, err
	}
	r.f = f
	return r, nil
}

// openRun reads a run file at open: its frames' first hashes, its latest expiry, and
// (into tops) the top 32 bits of each of its claims that is live at now.
func openRun(path string, now int64, tops []uint32) (*claimRun, []uint32, error) {
	r := &claimRun{path: path}
	size, err := scanHashFile(path, func(off int64, h uint64, _ []byte, expires int64) error {
		if n := len(r.offs); n == 0 || r.offs[n-1] != off { // the first record of a frame
			r.firsts, r.offs = append(r.firsts, h), append(r.offs, off)
		}
		r.expires = max(r.expires, expires)
		if expires > now {
			tops = append(tops, uint32(h>>32))
		}
		return nil
	})
	if err == nil {
		r.size = size
		r.f, err = os.Open(path)
	}
	if err != nil {
		return nil, tops, fmt.Errorf("claims run %s: %w", path, err)
	}
	return r, tops, nil
}

// lookup returns the value of the live claim h if the run holds it (a copy); buf is
// reused for the frame read.
func (r *claimRun) lookup(h uint64, now int64, buf *[]byte) ([]byte, bool, error) {
	i := sort.Search(len(r.firsts), func(i int) bool { return r.firsts[i] > h }) - 1
	if i < 0 {
		return nil, false, nil
	}
	end := r.size
	if i+1 < len(r.offs) {
		end = r.offs[i+1]
	}
	n := int(end - r.offs[i])
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := r.f.ReadAt(b, r.offs[i]); err != nil {
		return nil, false, fmt.Errorf("claims run %s: %w", r.path, err)
	}
	payload, err := framePayload(b)
	if err != nil {
		return nil, false, fmt.Errorf("claims run %s: %w at offset %d", r.path, err, r.offs[i])
	}
	var value []byte
	found := false
	err = walkRecords(payload, nil, func(hh uint64, v []byte, expires int64) error {
		if hh == h && expires > now {
			value, found = append([]byte(nil), v...), true
		}
		return nil
	})
	return value, found, err
}

func (r *claimRun) remove() {
	r.f.Close()
	os.Remove(r.path)
}

// claimIndex says which runs may hold a hash: for each of 2¹⁶ buckets (the top 16 bits
// of a hash) the next 16 bits of each of its claims and the run that holds it. Four
// bytes a claim. A hash not held matches one of its bucket's entries in 2¹⁶ by chance
// and costs a frame read for nothing: at 10 M claims (150 a bucket) one new message in
// about 440.
type claimIndex struct {
	start []uint32 // indexBuckets+1 offsets into fp and run; nil while empty
	fp    []uint16
	run   []uint16
}

const indexBuckets = 1 << 16

func bucketOf(top uint32) uint32 { return top >> 16 }

// candidates calls fn with each run that may hold the claim h, until fn returns false.
func (x *claimIndex) candidates(h uint64, fn func(run uint16) (bool, error)) error {
	if x.start == nil {
		return nil
	}
	top := uint32(h >> 32)
	b, fp := bucketOf(top), uint16(top)
	for i := x.start[b]; i < x.start[b+1]; i++ {
		if x.fp[i] == fp {
			if more, err := fn(x.run[i]); err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// merged returns the index without the runs renumber drops (it returns false) and with
// the others renumbered, plus tops (the top 32 bits of a run's hashes, ascending) under
// run id add.
func (x *claimIndex) merged(renumber func(run uint16) (uint16, bool), tops []uint32, add uint16) claimIndex {
	out := claimIndex{start: make([]uint32, indexBuckets+1)}
	out.fp = make([]uint16, 0, len(x.fp)+len(tops))
	out.run = make([]uint16, 0, len(x.fp)+len(tops))
	for b := range uint32(indexBuckets) {
		out.start[b] = uint32(len(out.fp))
		if x.start != nil {
			for i := x.start[b]; i < x.start[b+1]; i++ {
				if id, ok := renumber(x.run[i]); ok {
					out.fp, out.run = append(out.fp, x.fp[i]), append(out.run, id)
				}
			}
		}
		for len(tops) > 0 && bucketOf(tops[0]) == b {
			out.fp, out.run = append(out.fp, uint16(tops[0])), append(out.run, add)
			tops = tops[1:]
		}
	}
	out.start[indexBuckets] = uint32(len(out.fp))
	return out
}

// built returns the index of runs whose live claims' top 32 bits are tops[i] (any
// order), counting each bucket first so that it is built in one pass.
func built(tops [][]uint32) claimIndex {
	out := claimIndex{start: make([]uint32, indexBuckets+1)}
	n := 0
	for _, t := range tops {
		for _, top := range t {
			out.start[bucketOf(top)+1]++
		}
		n += len(t)
	}
	for b := 1; b <= indexBuckets; b++ {
		out.start[b] += out.start[b-1]
	}
	out.fp, out.run = make([]uint16, n), make([]uint16, n)
	fill := slices.Clone(out.start[:indexBuckets])
	for id, t := range tops {
		for _, top := range t {
			b := bucketOf(top)
			out.fp[fill[b]], out.run[fill[b]] = uint16(top), uint16(id)
			fill[b]++
		}
	}
	return out
}

// seal moves the expiring claims of the map into a new run named next, drops the runs
// whose claims all expired, and writes the claims snapshot of what stays in the map
// (claims kept for good). Once the run is written its claims are in it and the index,
// whatever happens after; a failure to write it changes nothing.
func (c *claims) seal(dir string, next uint64, now int64) error {
	c.prune(now)
	live, renumber := c.liveRuns(now)
	var added *claimRun
	var tops []uint32
	if hashes := c.expiring(); len(hashes) > 0 {
		if len(live) >= maxRuns {
			return errors.New("too many claims runs alive")
		}
		var err error
		if added, err = c.writeRun(dir, next, hashes); err != nil {
			return err
		}
		tops = make([]uint32, len(hashes))
		for i, h := range hashes {
			tops[i] = uint32(h >> 32)
			c.remove(h)
		}
		c.shrink()
	}
	if added != nil || len(live) < len(c.runs) {
		c.index = c.index.merged(renumber, tops, uint16(len(live)))
	}
	for i, r := range c.runs {
		if _, kept := renumber(uint16(i)); !kept {
			r.remove()
		}
	}
	c.runs = live
	if added != nil {
		c.runs = append(c.runs, added)
	}
	return c.writeSnapshot(dir, next, now)
}

// shrink moves the map's claims to a new map: a Go map keeps its size after deletes
// (maps.Clone too), and most of its claims just left.
func (c *claims) shrink() {
	m := make(map[uint64]claim, len(c.m))
	for h, cl := range c.m {
		m[h] = cl
	}
	c.m = m
}

// expiring returns the hashes of the map's claims that expire, in order.
func (c *claims) expiring() []uint64 {
	var hashes []uint64
	for h, cl := range c.m {
		if cl.expires != 0 {
			hashes = append(hashes, h)
		}
	}
	slices.Sort(hashes)
	return hashes
}

// liveRuns returns the runs that still hold a live claim, in order, and what maps the
// ids of c.runs to their place there.
func (c *claims) liveRuns(now int64) ([]*claimRun, func(uint16) (uint16, bool)) {
	var live []*claimRun
	ids := make([]int32, len(c.runs))
	for i, r := range c.runs {
		ids[i] = -1
		if r.expires > now {
			ids[i] = int32(len(live))
			live = append(live, r)
		}
	}
	return live, func(run uint16) (uint16, bool) { return uint16(ids[run]), ids[run] >= 0 }
}

// loadRuns opens dir's run files at open, removing those whose claims all expired, and
// indexes the live claims of the others.
func (c *claims) loadRuns(dir string, now int64) error {
	seqs, err := listSegments(dir, runExt)
	if err != nil {
		return err
	}
	var tops [][]uint32
	for _, seq := range seqs {
		r, t, err := openRun(filepath.Join(dir, seqName(seq, runExt)), now, nil)
		if err != nil {
			return err
		}
		if r.expires <= now {
			r.remove()
			continue
		}
		if len(c.runs) >= maxRuns {
			r.f.Close()
			return errors.New("too many claims runs alive")
		}
		c.runs, tops = append(c.runs, r), append(tops, t)
	}
	c.index = built(tops)
	return nil
}

// runsHolding returns the value of the live claim h in a run.
func (c *claims) runsHolding(h uint64, now int64) (value []byte, found bool, err error) {
	err = c.index.candidates(h, func(id uint16) (bool, error) {
		value, found, err = c.runs[id].lookup(h, now, &c.rbuf)
		return !found, err
	})
	return value, found, err
}

// runPaths lists the run files, for a backup (which reads them off the writer).
func (c *claims) runPaths() []string {
	paths := make([]string, len(c.runs))
	for i, r := range c.runs {
		paths[i] = r.path
	}
	return paths
}

func (c *claims) closeRuns() {
	for _, r := range c.runs {
		r.f.Close()
	}
}
