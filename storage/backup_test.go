package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
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
		err := src.Apply(context.Background(), func(b kv.Batch) error {
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
	if err := Restore(dir, &backup, -1); err != nil {
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
	err := Restore(dir, strings.NewReader(""), -1)
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
	if err := Restore(dir, &backup, -1); err != nil {
		t.Fatal(err)
	}
	mustHave(t, openTest(t, dir), "k", "v")
}

// smallBackup returns a backup of a store holding a few hundred keys.
func smallBackup(t *testing.T) []byte {
	t.Helper()
	src := openTest(t, t.TempDir())
	err := src.Apply(context.Background(), func(b kv.Batch) error {
		for i := range 300 {
			b.Set(fmt.Appendf(nil, "e/%03d", i), bytes.Repeat([]byte{'v'}, 20))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if err := src.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	return backup.Bytes()
}

// writeFile writes data to a new file and returns it opened for reading.
func writeFile(t *testing.T, name string, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// panicReader hands out its bytes, then panics as a broken reader would.
type panicReader struct{ data []byte }

func (r *panicReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		panic("reader broke")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// A file that is no backup, or a backup cut short, is refused with an error that names
// it, never a panic of Badger's Load; the target directory is left as it was (absent,
// or empty), so that the next restore into it needs no cleanup.
func TestRestoreRefusesMalformedBackups(t *testing.T) {
	backup := smallBackup(t)
	garbage := []byte("this is no backup, only text that a wrong -in could point at\n")
	frame := func(size uint64, body []byte) []byte { // one frame as Badger's stream writes it
		return append(binary.LittleEndian.AppendUint64(nil, size), body...)
	}
	cases := []struct {
		name string
		r    func(t *testing.T) io.Reader
		want string // in the error, after `cannot restore from "<name>": `
	}{
		{"garbage file", func(t *testing.T) io.Reader { return writeFile(t, "garbage.bak", garbage) },
			"not a ctwa-sidecar backup"},
		{"garbage stream", func(*testing.T) io.Reader { return bytes.NewReader(garbage) },
			"not a ctwa-sidecar backup (the frame at byte 0 claims"},
		{"frame larger than the file", func(t *testing.T) io.Reader { return writeFile(t, "big.bak", frame(1<<40, []byte("x"))) },
			"not a ctwa-sidecar backup, or one cut short (the frame at byte 0 claims 1099511627776 bytes, more than the 1 left"},
		{"frame of a wild size in a stream", func(*testing.T) io.Reader { return bytes.NewReader(frame(1<<40, []byte("x"))) },
			"not a ctwa-sidecar backup (the frame at byte 0 claims 1099511627776 bytes"},
		{"frame of no protobuf", func(t *testing.T) io.Reader {
			return writeFile(t, "proto.bak", frame(4, []byte{0xff, 0xff, 0xff, 0xff}))
		},
			"not a ctwa-sidecar backup (proto:"},
		{"backup cut in its first header", func(t *testing.T) io.Reader { return writeFile(t, "cut3.bak", backup[:3]) },
			"the backup is cut short"},
		{"backup file cut in half", func(t *testing.T) io.Reader { return writeFile(t, "half.bak", backup[:len(backup)/2]) },
			"not a ctwa-sidecar backup, or one cut short (the frame at byte "},
		{"backup file without its last byte", func(t *testing.T) io.Reader { return writeFile(t, "cut.bak", backup[:len(backup)-1]) },
			"not a ctwa-sidecar backup, or one cut short (the frame at byte "},
		{"backup stream cut in half", func(*testing.T) io.Reader { return bytes.NewReader(backup[:len(backup)/2]) },
			"the backup is cut short (unexpected EOF)"},
		{"reader that panics", func(*testing.T) io.Reader { return &panicReader{data: backup[:len(backup)/2]} },
			"not a ctwa-sidecar backup (badger: reader broke)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, existed := range []bool{false, true} {
				dir := filepath.Join(t.TempDir(), "restored")
				if existed {
					if err := os.Mkdir(dir, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				r := tc.r(t)
				name := "backup stream"
				if f, ok := r.(*os.File); ok {
					name = f.Name()
				}
				err := Restore(dir, r, -1)
				if want := fmt.Sprintf("cannot restore from %q: %s", name, tc.want); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Restore = %v, want an error containing %q", err, want)
				}
				if want := fmt.Sprintf("%q is left as it was", dir); !strings.Contains(err.Error(), want) {
					t.Errorf("Restore = %v, want it to say %s", err, want)
				}
				entries, statErr := os.ReadDir(dir)
				switch {
				case !existed && !errors.Is(statErr, fs.ErrNotExist):
					t.Errorf("the failed restore left %q (%d entries, %v); it did not exist before", dir, len(entries), statErr)
				case existed && (statErr != nil || len(entries) != 0):
					t.Errorf("the failed restore left %d entries in %q (%v); it was empty before", len(entries), dir, statErr)
				}
				// The same directory takes the whole backup at once.
				if err := Restore(dir, bytes.NewReader(backup), -1); err != nil {
					t.Fatalf("Restore of the whole backup after the failed one: %v", err)
				}
				mustHave(t, openTest(t, dir), "e/299", strings.Repeat("v", 20))
			}
		})
	}
}
