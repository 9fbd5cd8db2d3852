//go:build !race

package engine

import (
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// TestDecodeClassifyAllocs guards the hot path of SPEC §8: a warm Decoder decodes a Cloud
// API CTWA text webhook and classifies it against 20 tracked keywords and two custom
// sources without allocating.
func TestDecodeClassifyAllocs(t *testing.T) {
	body := compactFixture(t, "cloud/text_ctwa_referral")
	defs := benchDefinitions(t, appCloud, benchKeywords...)
	var d webhook.Decoder
	var c Classification
	allocs := testing.AllocsPerRun(1000, func() {
		if n, err := decodeClassify(&d, &c, body, defs); err != nil || n != 0 {
			t.Fatalf("decodeClassify = %d events, %v; want 0", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decode + classify allocates %v times per webhook, want 0", allocs)
	}
	// A link event needs no allocation either.
	body = []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":` +
		`{"phone_number_id":"106540352242922"},"messages":[{"from":"491701234567","id":"wamid.1",` +
		`"timestamp":"1773652507","type":"text","text":{"body":"see https://shop.example.com/x"}}]}}]}]}`)
	allocs = testing.AllocsPerRun(1000, func() {
		if n, err := decodeClassify(&d, &c, body, defs); err != nil || n != 1 {
			t.Fatalf("decodeClassify = %d events, %v; want 1 link", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decode + classify of a link allocates %v times per webhook, want 0", allocs)
	}
}
