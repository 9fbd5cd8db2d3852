package engine

import (
	"strconv"
	"strings"
	"testing"
)

// A webhook within the limit of maxItems items is recorded whole, even when its writes
// do not fit one transaction; a retry of it records nothing twice.
func TestBigWebhookIsRecordedWhole(t *testing.T) {
	e := newTestEnv(t)
	// Long texts make each message's records big: 1000 of them cannot fit one transaction.
	text := strings.Repeat("tell me more about the shoes ", 100)
	msgs := make([]cloudMsg, maxItems)
	for i := range msgs {
		msgs[i] = cloudMsg{App: scApp, ID: "wamid.big." + strconv.Itoa(i), From: strconv.Itoa(491700100000 + i),
			Time: t0 + int64(i), Text: text}
	}
	body := cloudWebhook(msgs...)
	recorded := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="recorded"}`)
	storeErrors := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="store_error"}`)
	e.record(body)
	if n := len(ofType(e.events(scApp), TypeConversation)); n != maxItems {
		t.Fatalf("%d conversations, want %d", n, maxItems)
	}
	if recorded() != 1 || storeErrors() != 0 {
		t.Fatalf("recorded +%d, store errors +%d; want +1, +0", recorded(), storeErrors())
	}
	duplicates := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="duplicate"}`)
	e.record(body)
	if n := len(e.events(scApp)); n != maxItems || duplicates() != 1 {
		t.Fatalf("after a retry: %d events, duplicates +%d; want %d, +1", n, duplicates(), maxItems)
	}
}
