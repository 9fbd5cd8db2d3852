//go:build !race

package storage

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// TestFileLogAppendDoesNotAllocate guards the webhook path: an append of a fresh claim
// and its entry, through the writer goroutine and back, allocates nothing once warm
// (AllocsPerRun counts the writer's allocations too: they are the process's).
func TestFileLogAppendDoesNotAllocate(t *testing.T) {
	s := openOpts(t, t.TempDir(), Options{SyncInterval: time.Second})
	l := openFileLog(t, s)
	defer s.Close()
	key := kv.DedupeMessageKey(nil, "wamid.0000000000")
	entry := make([]byte, 400)
	var n, seq uint64 // seq outlives fn, as a recording's does
	fn := func(tx kv.LogTx) error {
		n++
		binary.BigEndian.PutUint64(key[len(key)-8:], n)
		if _, fresh, err := tx.Claim(key, entry[:8], time.Hour); err != nil || !fresh {
			return err
		}
		tx.Add(entry, &seq)
		return nil
	}
	ctx := context.Background()
	for range 1000 { // warm: pools, buffers, the claims map's first growths
		if err := l.Append(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := l.Append(ctx, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.1 { // the claims map grows now and then
		t.Errorf("FileLog.Append allocates %.2f times per call, want 0", allocs)
	}
}
