package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

func openTestLog(t *testing.T, s *Store) *Log {
	t.Helper()
	l, err := OpenCopy(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// entries returns the log's entries after seq as seq → entry.
func entries(t *testing.T, l interface {
	Entries(uint64, func(uint64, []byte) (bool, error)) error
}, after uint64) map[uint64]string {
	t.Helper()
	got := map[uint64]string{}
	if err := l.Entries(after, func(seq uint64, e []byte) (bool, error) {
		got[seq] = string(e)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// A claim and the entry it lets in are kept or lost together; a failed append leaves a
// gap that readers step over, and a reopened log goes on after its last entry.
func TestLogClaimsAndEntriesCommitTogether(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	l := openTestLog(t, s)
	ctx := context.Background()
	appendClaimed := func(mark, entry string, fail error) (fresh bool, seq uint64, err error) {
		err = l.Append(ctx, func(tx kv.LogTx) error {
			var cerr error
			if _, fresh, cerr = tx.Claim([]byte(mark), []byte(entry), time.Hour); cerr != nil || !fresh {
				return cerr
			}
			tx.Add([]byte(entry), &seq)
			return fail
		})
		return fresh, seq, err
	}
	if fresh, seq, err := appendClaimed("m1", "first", nil); err != nil || !fresh || seq != 1 {
		t.Fatalf("first append: fresh %v seq %d err %v, want fresh entry 1", fresh, seq, err)
	}
	boom := errors.New("boom")
	if _, _, err := appendClaimed("m2", "lost", boom); !errors.Is(err, boom) {
		t.Fatalf("failing append: %v, want boom", err)
	}
	mustMiss(t, s, "m2") // the claim went with its entry
	if fresh, seq, err := appendClaimed("m1", "again", nil); err != nil || fresh || seq != 0 {
		t.Fatalf("second claim of m1: fresh %v seq %d err %v, want taken", fresh, seq, err)
	}
	if fresh, seq, err := appendClaimed("m2", "second", nil); err != nil || !fresh || seq != 3 {
		t.Fatalf("m2 after its failed append: fresh %v seq %d err %v, want fresh entry 3 (2 is the gap)", fresh, seq, err)
	}
	if got := entries(t, l, 0); len(got) != 2 || got[1] != "first" || got[3] != "second" {
		t.Fatalf("entries %v, want 1 first and 3 second", got)
	}
	if got := entries(t, l, 1); len(got) != 1 || got[3] != "second" {
		t.Fatalf("entries after 1: %v, want only 3", got)
	}
	if e, ok, err := l.Entry(3); err != nil || !ok || string(e) != "second" {
		t.Fatalf("Entry(3) = %q %v %v", e, ok, err)
	}
	if _, ok, err := l.Entry(2); err != nil || ok {
		t.Fatalf("Entry(2) of the failed append: ok %v err %v, want absent", ok, err)
	}
	var held []byte
	err := l.Append(ctx, func(tx kv.LogTx) error {
		v, fresh, err := tx.Claim([]byte("m1"), []byte("x"), 0)
		if fresh {
			t.Error("m1 claimed twice")
		}
		held = append(held, v...)
		if tx.Last() != 3 {
			t.Errorf("Last %d inside an append, want 3", tx.Last())
		}
		return err
	})
	if err != nil || string(held) != "first" {
		t.Fatalf("held value %q err %v, want the first claim's value", held, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	l = openTestLog(t, s)
	if l.Last() != 3 {
		t.Fatalf("reopened Last %d, want 3", l.Last())
	}
	if _, seq, err := appendClaimed("m3", "third", nil); err != nil || seq != 4 {
		t.Fatalf("append after reopen: seq %d err %v, want 4", seq, err)
	}
}
