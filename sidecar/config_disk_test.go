package sidecar

import (
	"io"
	"strings"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// TestMinFreeDiskFlag: the reserve defaults to the store's, takes sizes from the command
// line and the environment, and refuses what is no size.
func TestMinFreeDiskFlag(t *testing.T) {
	up := []string{"-upstream", "http://127.0.0.1:3000"}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := parseServe(up, env(nil), io.Discard)
	if err != nil || int(c.minFreeDisk) != storage.DefaultMinFreeDisk {
		t.Fatalf("default -min-free-disk = %v (%v), want %d", c.minFreeDisk, err, storage.DefaultMinFreeDisk)
	}
	c, err = parseServe(append(up, "-min-free-disk", "1GiB"), env(nil), io.Discard)
	if err != nil || c.minFreeDisk != 1<<30 {
		t.Fatalf("-min-free-disk 1GiB = %v (%v)", c.minFreeDisk, err)
	}
	c, err = parseServe(up, env(map[string]string{"CTWA_MIN_FREE_DISK": "64MiB"}), io.Discard)
	if err != nil || c.minFreeDisk != 64<<20 {
		t.Fatalf("CTWA_MIN_FREE_DISK=64MiB = %v (%v)", c.minFreeDisk, err)
	}
	if _, err := parseServe(append(up, "-min-free-disk", "lots"), env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "min-free-disk") {
		t.Fatalf("-min-free-disk lots = %v, want an error naming the flag", err)
	}
}
