package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// dump returns every live key=value of s, in key order.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	err := s.Scan(nil, false, func(key, value []byte) (bool, error) {
		fmt.Fprintf(&b, "%s=%s\n", key, value)
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	src := openTest(t, t.TempDir())
	for i := range 100 {
		err := src.Apply(context.Background(), func(b *Batch) error {
			b.Set(fmt.Appendf(nil, "e/%03d", i), bytes.Repeat([]byte{'a' + byte(i%26)}, 10*i))
			b.SetWithTTL(fmt.Appendf(nil, "dedupe/%03d", i), nil, 8*24*time.Hour)
			if i%10 == 0 {
				b.Delete(fmt.Appendf(nil, "e/%03d", i-1))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var backup bytes.Buffer
	if err := src.Backup(&backup); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(dir, &backup); err != nil {
		t.Fatal(err)
	}
	dst := openTest(t, dir)
	want, got := dump(t, src), dump(t, dst)
	if got != want {
		t.Fatalf("restored store differs:\ngot  %.200q\nwant %.200q", got, want)
	}
	if !strings.Contains(want, "\ne/099=") || strings.Contains(want, "\ne/089=") {
		t.Fatalf("source dump does not hold the expected keys: %.200q", want)
	}
	var expires uint64
	err := dst.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("dedupe/042"))
		if err == nil {
			expires = item.ExpiresAt()
		}
		return err
	})
	if err != nil || expires == 0 {
		t.Fatalf("restored dedupe key: expires at %d, err %v; want its TTL kept", expires, err)
	}
}

func TestRestoreRefusesNonEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Restore(dir, strings.NewReader(""))
	if want := fmt.Sprintf("restore target %q is not empty", dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Restore into a non-empty dir = %v, want %q", err, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Restore touched the refused directory: %d entries", len(entries))
	}
}

func TestRestoreIntoEmptyExistingDirectory(t *testing.T) {
	src := openTest(t, t.TempDir())
	if err := src.Apply(context.Background(), set("k", "v")); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if err := src.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Restore(dir, &backup); err != nil {
		t.Fatal(err)
	}
	mustHave(t, openTest(t, dir), "k", "v")
}
