package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

func openFileLog(t *testing.T, s *Store) *FileLog {
	t.Helper()
	l, err := OpenLog(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendClaimed claims the dedupe key of message id mark and, when it is fresh, adds
// entry; fail is the function's result.
func appendClaimed(l interface {
	Append(context.Context, func(kv.LogTx) error) error
}, mark, entry string, fail error) (fresh bool, seq uint64, err error) {
	err = l.Append(context.Background(), func(tx kv.LogTx) error {
		var cerr error
		if _, fresh, cerr = tx.Claim(kv.DedupeMessageKey(nil, mark), []byte(entry), time.Hour); cerr != nil || !fresh {
			return cerr
		}
		tx.Add([]byte(entry), &seq)
		return fail
	})
	return fresh, seq, err
}

// A claim and the entry it lets in are kept or lost together; a failed append leaves
// nothing (its sequence number is used by the next); claims and entries survive a
// reopen, and the reopened log goes on after its last entry.
func TestFileLogClaimsAndEntriesCommitTogether(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	l := openFileLog(t, s)
	if fresh, seq, err := appendClaimed(l, "m1", "first", nil); err != nil || !fresh || seq != 1 {
		t.Fatalf("first append: fresh %v seq %d err %v, want fresh entry 1", fresh, seq, err)
	}
	boom := errors.New("boom")
	if _, _, err := appendClaimed(l, "m2", "lost", boom); !errors.Is(err, boom) {
		t.Fatalf("failing append: %v, want boom", err)
	}
	if fresh, _, err := appendClaimed(l, "m1", "again", nil); err != nil || fresh {
		t.Fatalf("second claim of m1: fresh %v err %v, want taken", fresh, err)
	}
	if fresh, seq, err := appendClaimed(l, "m2", "second", nil); err != nil || !fresh || seq != 2 {
		t.Fatalf("m2 after its failed append: fresh %v seq %d err %v, want fresh entry 2", fresh, seq, err)
	}
	if got := entries(t, l, 0); len(got) != 2 || got[1] != "first" || got[2] != "second" {
		t.Fatalf("entries %v, want 1 first and 2 second", got)
	}
	if e, ok, err := l.Entry(2); err != nil || !ok || string(e) != "second" {
		t.Fatalf("Entry(2) = %q %v %v", e, ok, err)
	}
	if _, ok, err := l.Entry(3); err != nil || ok {
		t.Fatalf("Entry(3), never written: ok %v err %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	l = openFileLog(t, s)
	if l.Last() != 2 {
		t.Fatalf("reopened Last %d, want 2", l.Last())
	}
	if fresh, _, err := appendClaimed(l, "m2", "retry", nil); err != nil || fresh {
		t.Fatalf("m2 after reopen: fresh %v err %v, want taken", fresh, err)
	}
	if _, seq, err := appendClaimed(l, "m3", "third", nil); err != nil || seq != 3 {
		t.Fatalf("append after reopen: seq %d err %v, want 3", seq, err)
	}
}

// The tail of a write that a crash cut short is cut off when the log opens: the
// entries before it are kept, and appends go on after them.
func TestFileLogCutsATornTail(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	l := openFileLog(t, s)
	for i := range 3 {
		if _, _, err := appendClaimed(l, fmt.Sprint("m", i), fmt.Sprint("e", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	seg := l.active().path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Half of a fourth frame, as a kill in the middle of its write leaves it.
	torn := appendEntryRecord(make([]byte, frameHeader), 4, []byte("never acknowledged"))
	sealFrame(torn, 0)
	if err := os.WriteFile(seg, append(whole, torn[:len(torn)/2]...), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	l = openFileLog(t, s)
	if l.Last() != 3 {
		t.Fatalf("Last %d after a torn write, want 3", l.Last())
	}
	if _, seq, err := appendClaimed(l, "m9", "after", nil); err != nil || seq != 4 {
		t.Fatalf("append after the cut: seq %d err %v, want 4", seq, err)
	}
	if got := entries(t, l, 0); len(got) != 4 || got[3] != "e2" || got[4] != "after" {
		t.Fatalf("entries %v", got)
	}
}

// Sealed segments and the claims snapshot written with each: after a reopen the claims
// of every segment still deduplicate and every entry is read back, in order.
func TestFileLogSegmentsAndClaimsSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	l := openFileLog(t, s)
	const n = 300
	appendMany(t, l, n, 4<<10)
	if len(l.segments()) < 5 {
		t.Fatalf("%d segments, want several", len(l.segments()))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := listSegments(filepath.Join(dir, "log"), claimsExt)
	if len(snaps) != 1 {
		t.Fatalf("claims snapshots %v, want only the newest", snaps)
	}
	// The claims of sealed segments are in runs, not in the map.
	runs, _ := listSegments(filepath.Join(dir, "log"), runExt)
	if sealed := len(l.claims.index.fp); len(runs) < 4 || sealed+len(l.claims.m) != n || len(l.claims.m) > n/4 {
		t.Fatalf("%d runs, %d claims indexed and %d in the map; want several runs holding most of the %d",
			len(runs), sealed, len(l.claims.m), n)
	}
	s = openTest(t, dir)
	defer s.Close()
	l = openFileLog(t, s)
	allTaken(t, l, n, "after reopen")
	got := entries(t, l, 0)
	if len(got) != n {
		t.Fatalf("%d entries, want %d", len(got), n)
	}
	for _, seq := range []uint64{1, 150, 299, 300} {
		e, ok, err := l.Entry(seq)
		if want := fmt.Sprintf("entry %03d", seq-1); err != nil || !ok || !bytes.HasPrefix(e, []byte(want)) {
			t.Fatalf("Entry(%d) = %.9q %v %v, want %q…", seq, e, ok, err, want)
		}
	}
	if got := entries(t, l, 290); len(got) != 10 {
		t.Fatalf("entries after 290: %d, want 10", len(got))
	}
}

// A store whose log was kept in Badger (written before the file log, or restored from
// a backup) has it moved into the file log: entries, sequence numbers and claims.
func TestFileLogMovesTheBadgerLogIntoFiles(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	old := openTestLog(t, s)
	for i := range 3 {
		if _, _, err := appendClaimed(old, fmt.Sprint("m", i), fmt.Sprint("e", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	l := openFileLog(t, s)
	if got := entries(t, l, 0); len(got) != 3 || got[1] != "e0" || got[3] != "e2" {
		t.Fatalf("moved entries %v", got)
	}
	if fresh, _, err := appendClaimed(l, "m1", "retry", nil); err != nil || fresh {
		t.Fatalf("m1 after the move: fresh %v err %v, want taken", fresh, err)
	}
	if _, seq, err := appendClaimed(l, "m7", "e7", nil); err != nil || seq != 4 {
		t.Fatalf("next append seq %d err %v, want 4", seq, err)
	}
	if got := entries(t, old, 0); len(got) != 0 {
		t.Fatalf("Badger still holds log entries %v", got)
	}
	s.Close()
}

// A backup holds the file log (as Badger keys); the restored store's log has its
// entries and claims.
func TestFileLogBackupAndRestore(t *testing.T) {
	s := openTest(t, t.TempDir())
	l := openFileLog(t, s)
	const n = 100
	appendMany(t, l, n, 1<<10) // claims in sealed runs and in the map
	rl := backUpAndRestore(t, s)
	if got := entries(t, rl, 0); len(got) != n || !strings.HasPrefix(got[2], "entry 001") {
		t.Fatalf("restored %d entries, second %.9q", len(got), got[2])
	}
	allTaken(t, rl, n, "after restore")
}

// appendMany claims messages m0… to m<n-1> and appends an entry of 110 bytes for each,
// to a log sealing segments at segmentSize bytes.
func appendMany(t *testing.T, l *FileLog, n int, segmentSize int64) {
	t.Helper()
	l.segmentSize = segmentSize
	for i := range n {
		if _, _, err := appendClaimed(l, fmt.Sprint("m", i), fmt.Sprintf("entry %03d %s", i, strings.Repeat("x", 100)), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// allTaken checks that the claims of messages m0… to m<n-1> are held.
func allTaken(t *testing.T, l *FileLog, n int, when string) {
	t.Helper()
	for i := range n {
		if fresh, _, err := appendClaimed(l, fmt.Sprint("m", i), "again", nil); err != nil || fresh {
			t.Fatalf("m%d %s: fresh %v err %v, want taken", i, when, fresh, err)
		}
	}
}

// backUpAndRestore backs s up, closes it, restores the backup into a new directory and
// returns the restored store's log (the store closes with the test).
func backUpAndRestore(t *testing.T, s *Store) *FileLog {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	s.Close()
	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(dir, &buf, -1); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, dir)
	t.Cleanup(func() { r.Close() })
	return openFileLog(t, r)
}

// An offline backup (the store of a stopped sidecar, opened without its log) holds the
// log too.
func TestFileLogInAnOfflineBackup(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	l := openFileLog(t, s)
	if _, _, err := appendClaimed(l, "m1", "e1", nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rl := backUpAndRestore(t, openTest(t, dir))
	if got := entries(t, rl, 0); len(got) != 1 || got[1] != "e1" {
		t.Fatalf("restored entries %v, want 1: e1", got)
	}
	if fresh, _, err := appendClaimed(rl, "m1", "retry", nil); err != nil || fresh {
		t.Fatalf("m1 after an offline backup's restore: fresh %v err %v, want taken", fresh, err)
	}
}

// A log that lost its unsynced tail in a power cut while the views' checkpoint
// survived goes on after the checkpoint: new entries are not taken for applied ones.
func TestFileLogStartsAfterTheViewsCheckpoint(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	if err := s.Apply(context.Background(), func(b kv.Batch) error {
		b.Set(kv.ViewPosKey(), kv.AppendViewPos(nil, 41, 0))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l := openFileLog(t, s)
	if _, seq, err := appendClaimed(l, "m", "e", nil); err != nil || seq != 42 {
		t.Fatalf("first append seq %d err %v, want 42", seq, err)
	}
}

// Expired claims are gone at once and forgotten by prune; values longer than 8 bytes
// live in the arena, which prune compacts once most of it is unused, and every live
// value reads back unchanged.
func TestClaimsExpireAndPrune(t *testing.T) {
	c := newClaims()
	const now = 1_000_000
	key := func(i int) []byte { return []byte(fmt.Sprintf("xobj\x00object-%06d", i)) }
	value := func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf("event-id-%06d", i) // in the arena
		}
		return fmt.Sprint(i % 1000) // inline
	}
	for i := range 10000 {
		expires := int64(now - 1) // expired
		if i%10 == 0 {
			expires = 0 // kept for good
		}
		c.put(claimHash(key(i)), []byte(value(i)), expires)
	}
	if _, ok, _ := c.get(claimHash(key(1)), now); ok {
		t.Fatal("an expired claim is held")
	}
	arena := len(c.arena)
	c.prune(now)
	if len(c.m) != 1000 || len(c.arena) != 1000*len("event-id-000000") {
		t.Fatalf("after prune: %d claims, arena %d bytes (from %d); want 1000 claims, their 15-byte values only", len(c.m), len(c.arena), arena)
	}
	for i := 0; i < 10000; i += 10 {
		v, ok, err := c.get(claimHash(key(i)), now)
		if err != nil || !ok || string(v) != value(i) {
			t.Fatalf("claim %d after prune: %q %v, want %q", i, v, ok, value(i))
		}
	}
}

// BenchmarkFileLogEntry reads entries of 400 bytes in random order, as a refresh of
// messages delivered out of order does, and in sequence.
func BenchmarkFileLogEntry(b *testing.B) {
	s, err := Open(b.TempDir(), Options{SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	l, err := OpenLog(s)
	if err != nil {
		b.Fatal(err)
	}
	const n = 100000
	entry := bytes.Repeat([]byte("e"), 400)
	for i := 0; i < n; i += 20 { // groups of 20, as under load
		if err := l.Append(context.Background(), func(tx kv.LogTx) error {
			var seq uint64
			for range 20 {
				tx.Add(entry, &seq)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	for _, order := range []string{"random", "sequence"} {
		b.Run(order, func(b *testing.B) {
			i := uint64(0)
			for b.Loop() {
				i++
				seq := i%n + 1
				if order == "random" {
					seq = (i*7919)%n + 1
				}
				if e, ok, err := l.Entry(seq); err != nil || !ok || len(e) != 400 {
					b.Fatalf("Entry(%d): %d bytes %v %v", seq, len(e), ok, err)
				}
			}
		})
	}
}

// Entry reads any entry back, in any order: frames shorter than one read and frames
// longer (a big webhook), entries past the nearest index point, in several segments.
func TestFileLogEntryReadsFramesOfAnySize(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	l := openFileLog(t, s)
	l.segmentSize = 3 * frameReadAhead
	sizes := []int{10, 3 << 10, frameReadAhead + 1, 200, 5 * frameReadAhead, 1, maxFrame - 20, 700}
	var want []string
	for round := range 3 {
		for i, n := range sizes {
			e := bytes.Repeat([]byte{byte('a' + (round*len(sizes)+i)%26)}, n)
			if _, _, err := appendClaimed(l, fmt.Sprint(round, "-", i), string(e), nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, string(e))
		}
	}
	if len(l.segments()) < 3 {
		t.Fatalf("%d segments, want several", len(l.segments()))
	}
	for _, i := range []int{len(want) - 1, 0, 4, 3, 12, 2, 20, 1, 9, 8, 16, 17, 5} {
		e, ok, err := l.Entry(uint64(i + 1))
		if err != nil || !ok || string(e) != want[i] {
			t.Fatalf("Entry(%d) = %d bytes, %v, %v; want %d bytes", i+1, len(e), ok, err, len(want[i]))
		}
	}
}
