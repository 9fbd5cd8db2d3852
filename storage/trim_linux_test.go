package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

func TestDataFileMapping(t *testing.T) {
	dir := []byte("/var/lib/ctwa/")
	for _, tc := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"7f3a1c000000-7f3a1c100000 rw-s 00000000 fd:01 1234 /var/lib/ctwa/000012.sst", 0x7f3a1c000000, 0x7f3a1c100000, true},
		{"7f3a1c000000-7f3a24000000 rw-s 00000000 fd:01 1235 /var/lib/ctwa/000001.vlog", 0x7f3a1c000000, 0x7f3a24000000, true},
		{"7f3a1c000000-7f3a1c100000 rw-s 00000000 fd:01 1236 /var/lib/ctwa/00003.mem", 0, 0, false},
		{"7f3a1c000000-7f3a1c100000 rw-s 00000000 fd:01 1237 /var/lib/ctwa/000012.sst (deleted)", 0, 0, false},
		{"7f3a1c000000-7f3a1c100000 rw-s 00000000 fd:01 1238 /var/lib/ctwa2/000012.sst", 0, 0, false},
		{"7f3a1c000000-7f3a1c100000 rw-p 00000000 00:00 0 ", 0, 0, false},
		{"garbage /var/lib/ctwa/000012.sst", 0, 0, false},
	} {
		start, end, ok := dataFileMapping([]byte(tc.line), dir)
		if start != tc.start || end != tc.end || ok != tc.ok {
			t.Errorf("dataFileMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", tc.line, start, end, ok, tc.start, tc.end, tc.ok)
		}
	}
}

func TestPageOutLiveStore(t *testing.T) {
	s := openTest(t, t.TempDir())
	for i := range 20 {
		err := s.Apply(context.Background(), func(b kv.Batch) error {
			for k := range 500 {
				b.Set(fmt.Appendf(nil, "po/%02d/%04d", i, k), make([]byte, 200))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	dir, err := mapsPath(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	// The active value-log file is always mapped, so at least one mapping must match.
	if n, err := pageOut(dir); err != nil || n == 0 {
		t.Fatalf("pageOut = %d mappings, %v; want ≥ 1 and no error", n, err)
	}
	// The data is still there: MADV_PAGEOUT only drops clean pages from memory.
	mustHave(t, s, "po/19/0499", string(make([]byte, 200)))
}
