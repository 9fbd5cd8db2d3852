package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Sealing moves the expiring claims into runs and keeps the claims kept for good in the
// map and the snapshot; every claim reads back with its value, from the runs too, after
// a reopen as well; a run goes once all its claims expired; a sealed claim costs 4
// bytes of memory.
func TestClaimsSealIntoRuns(t *testing.T) {
	dir := t.TempDir()
	const now, n = 1_000_000, 20_000
	key := func(i int) uint64 { return claimHash(fmt.Appendf(nil, "wamid.%06d", i)) }
	value := func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(1_700_000_000+i)) }
	kept := func(i int) uint64 { return claimHash(fmt.Appendf(nil, "xobj\x00object-%d", i)) }
	c := newClaims()
	fill := func(from, to int, expires int64) {
		for i := from; i < to; i++ {
			c.put(key(i), value(i), expires)
		}
	}
	for i := range 10 {
		c.put(kept(i), fmt.Appendf(nil, "event-id-%020d", i), 0)
	}
	fill(0, n/2, now+100)
	if err := c.seal(dir, 100, now); err != nil {
		t.Fatal(err)
	}
	fill(n/2, n, now+200)
	if err := c.seal(dir, 200, now+10); err != nil {
		t.Fatal(err)
	}
	check := func(c *claims, at int64, from, to int, held bool) {
		t.Helper()
		for i := from; i < to; i++ {
			v, ok, err := c.get(key(i), at)
			if err != nil || ok != held || (held && string(v) != string(value(i))) {
				t.Fatalf("claim %d at %d: %x %v %v, want held %v", i, at, v, ok, err, held)
			}
		}
		for i := range 10 {
			if v, ok, err := c.get(kept(i), at); err != nil || !ok || string(v) != fmt.Sprintf("event-id-%020d", i) {
				t.Fatalf("kept claim %d: %q %v %v", i, v, ok, err)
			}
		}
	}
	if len(c.m) != 10 || len(c.runs) != 2 || len(c.index.fp) != n {
		t.Fatalf("map %d, runs %d, indexed %d; want the 10 kept for good, 2 runs, %d indexed", len(c.m), len(c.runs), len(c.index.fp), n)
	}
	check(c, now+20, 0, n, true)
	check(c, now+20, n, n+5000, false) // never claimed: the index rules almost all out

	// Memory: 4 bytes a sealed claim, and the buckets.
	if b := 2*cap(c.index.fp) + 2*cap(c.index.run); b > 4*n {
		t.Fatalf("index of %d claims holds %d bytes, want ≤ 4 each", n, b)
	}

	// A reopen reads the runs and the snapshot.
	c.closeRuns()
	r := newClaims()
	if err := r.loadRuns(dir, now+20); err != nil {
		t.Fatal(err)
	}
	if err := r.loadSnapshot(filepath.Join(dir, seqName(200, claimsExt)), now+20); err != nil {
		t.Fatal(err)
	}
	check(r, now+20, 0, n, true)

	// The first run's claims expire at now+100: the next seal drops it, file and all.
	if err := r.seal(dir, 300, now+150); err != nil {
		t.Fatal(err)
	}
	check(r, now+150, 0, n/2, false)
	check(r, now+150, n/2, n, true)
	if runs, _ := listSegments(dir, runExt); len(r.runs) != 1 || len(runs) != 1 || runs[0] != 200 || len(r.index.fp) != n/2 {
		t.Fatalf("after the first run expired: %d runs, files %v, %d indexed", len(r.runs), runs, len(r.index.fp))
	}
	if err := r.seal(dir, 400, now+250); err != nil {
		t.Fatal(err)
	}
	if runs, _ := listSegments(dir, runExt); len(r.runs) != 0 || len(runs) != 0 || len(r.index.fp) != 0 {
		t.Fatalf("after every run expired: %d runs, files %v, %d indexed", len(r.runs), runs, len(r.index.fp))
	}
	check(r, now+250, 0, n, false)
	r.closeRuns()
}

// A run's frame that fails its checksum is an error of the lookup, not a miss: the
// message would otherwise be counted twice.
func TestClaimsRunCorruptionIsAnError(t *testing.T) {
	dir := t.TempDir()
	c := newClaims()
	h := claimHash([]byte("wamid.1"))
	c.put(h, []byte{1}, 2000)
	if err := c.seal(dir, 1, 1000); err != nil {
		t.Fatal(err)
	}
	defer c.closeRuns()
	if _, err := c.runs[0].f.WriteAt([]byte{0xff}, frameHeader+2); err == nil {
		t.Fatal("the run file opened for writing")
	}
	// Opened read-only: damage the file through another handle.
	if err := corruptByte(c.runs[0].path, frameHeader+2); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.get(h, 1500); err == nil || ok {
		t.Fatalf("lookup in a corrupt run: ok %v err %v, want an error", ok, err)
	}
}

// corruptByte flips the byte at off of the file at path.
func corruptByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	return err
}

// A crash after a run was written but before its claims snapshot: the log reads the
// segments after the older snapshot again, and the claims they hold twice (in the
// run and the map) still deduplicate.
func TestFileLogRunWithoutItsSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	l := openFileLog(t, s)
	const n = 60
	appendMany(t, l, n, 1<<10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	snaps, _ := listSegments(logDir, claimsExt)
	if runs, _ := listSegments(logDir, runExt); len(snaps) != 1 || len(runs) < 3 || runs[len(runs)-1] != snaps[0] {
		t.Fatalf("snapshots %v, runs %v; want runs up to the snapshot's", snaps, runs)
	}
	if err := os.Remove(filepath.Join(logDir, seqName(snaps[0], claimsExt))); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	l = openFileLog(t, s)
	allTaken(t, l, n, "after reopen")
	if fresh, _, err := appendClaimed(l, "new", "new", nil); err != nil || !fresh {
		t.Fatalf("a new message: fresh %v err %v", fresh, err)
	}
}

// BenchmarkClaimsMemory reports the heap a claim holds in the map and once sealed into
// a run (`go test -run '^$' -bench ClaimsMemory ./storage`).
func BenchmarkClaimsMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		c := newClaims()
		before := heapInUse()
		v := make([]byte, 8)
		for i := range n {
			binary.BigEndian.PutUint64(v, uint64(i))
			c.put(claimHash(v), v, 2_000_000_000)
		}
		inMap := heapInUse() - before
		if err := c.seal(b.TempDir(), 1, 1_000_000_000); err != nil {
			b.Fatal(err)
		}
		sealed := heapInUse() - before
		c.closeRuns()
		b.ReportMetric(float64(inMap)/n, "B/claim-in-map")
		b.ReportMetric(float64(sealed)/n, "B/claim-sealed")
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
