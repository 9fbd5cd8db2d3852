//go:build !race

package webhook

import (
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
)

// The race detector makes sync.Pool drop items at random, and the JSON decoder pools its
// contexts: allocations are only counted without it.

// TestDecodeCloudCTWAAllocs guards the hot path: a warmed-up Decoder decodes a Cloud API
// CTWA text webhook without allocating.
func TestDecodeCloudCTWAAllocs(t *testing.T) {
	body := fixtures.Body(t, "cloud/text_ctwa_referral")
	var d Decoder
	allocs := testing.AllocsPerRun(1000, func() {
		if _, items, err := d.Decode(body, testAppID); err != nil || len(items) != 1 {
			t.Fatalf("Decode: %d items, %v", len(items), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocates %v times per call, want 0", allocs)
	}
}

func TestItemCloneAllocs(t *testing.T) {
	body := fixtures.Body(t, "cloud/text_ctwa_referral")
	var d Decoder
	_, items, err := d.Decode(body, testAppID)
	if err != nil {
		t.Fatal(err)
	}
	var c Item
	allocs := testing.AllocsPerRun(100, func() { c = items[0].Clone() })
	if allocs != 1 {
		t.Fatalf("Clone allocates %v times, want 1", allocs)
	}
	_ = c
}
