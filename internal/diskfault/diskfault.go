// Package diskfault makes a file system run out of space or inodes, for the tests of
// what the sidecar does then: a small tmpfs of the test's own, filled by another file.
package diskfault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Fill writes a file in dir until the file system is full, its last partial pages
// included, and returns the file's path.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	for n := len(chunk); n > 0; n /= 2 {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return path
}

// UseAllInodes creates empty files in dir until the file system has no inode left and
// returns the directory holding them.
func UseAllInodes(t testing.TB, dir string) string {
	t.Helper()
	hog := filepath.Join(dir, "inodes")
	if err := os.Mkdir(hog, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		f, err := os.Create(filepath.Join(hog, fmt.Sprint(i)))
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return hog
		}
		f.Close()
	}
}
