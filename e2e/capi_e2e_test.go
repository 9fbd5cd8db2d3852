package e2e

// Conversions to Meta through the real binary, against the Graph API stub: a pending
// outbox survives kill -9 and is delivered once after the restart, and a webhook flood
// while Meta does not answer is forwarded and recorded whole.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/graphstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

const (
	e2eMetaToken = "EAAG-e2e-token"
	e2eWABA      = "102290129340398"
	e2eDataset   = "998877665544332"
)

func startGraph(t *testing.T) *graphstub.Server {
	return graphstub.Start(t, graphstub.Options{Version: metaapi.DefaultVersion, Token: e2eMetaToken,
		WABA: e2eWABA, Dataset: e2eDataset})
}

func capiArgs(graph *graphstub.Server) []string {
	return []string{"-meta-token", e2eMetaToken, "-waba-id", e2eWABA, "-capi-dataset", e2eDataset,
		"-graph-url", graph.URL}
}

// clickWebhook is lead i's first message, an hour ago, from a click with its own click id.
func clickWebhook(i int) []byte {
	at := time.Now().Add(-time.Hour + time.Duration(i)*time.Second)
	msg := waItem{"from": fmt.Sprintf("4917600%05d", i), "id": fmt.Sprintf("wamid.capi.%05d", i),
		"timestamp": unixString(at), "type": "text", "text": map[string]string{"body": "Hi"}}.fromAd(killAd(i))
	msg["referral"].(map[string]string)["ctwa_clid"] = fmt.Sprintf("ARAkLe2e%05d", i)
	return messagesWebhook(msg)
}

// conversionCount returns how many conversions of the kill test's app have status.
func conversionCount(t *testing.T, sc *binSidecar, status string) int {
	t.Helper()
	code, _, body, err := do("GET", sc.api+"/v1/clients/default/apps/"+killApp+"/conversions?status="+status+"&limit=1", "", nil)
	var page struct {
		Total int `json:"total_count"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &page) != nil {
		t.Fatalf("GET conversions: %d %s %v\n%s", code, body, err, logTail(sc))
	}
	return page.Total
}

// TestConversionsSurviveKill9: 20 leads' conversions wait while Meta answers 500; the
// sidecar is killed (-9) and started against a Meta that works: each of the 20 reaches
// it once, with the ids it had, and the activity log and /metrics say sent.
func TestConversionsSurviveKill9(t *testing.T) {
	bin := sidecarBinary(t)
	data := t.TempDir()
	upstream := "http://" + acceptingUpstream(t).addr
	down := startGraph(t)
	faults := make([]graphstub.Fault, 100)
	for i := range faults {
		faults[i] = graphstub.ServerError()
	}
	down.Script(faults...)
	sc := startBinary(t, bin, upstream, data, capiArgs(down)...)
	const leads = 20
	for i := range leads {
		forwarded(t, sc, clickWebhook(i))
	}
	waitFor(t, "20 pending conversions and a refused send", func() bool {
		return conversionCount(t, sc, "pending") == leads && len(down.EventRequests()) > 0
	})
	sc.kill9(t)

	up := startGraph(t)
	sc2 := startBinary(t, bin, upstream, data, capiArgs(up)...)
	waitFor(t, "20 sent conversions", func() bool { return conversionCount(t, sc2, "sent") == leads })
	time.Sleep(1500 * time.Millisecond) // a poll more: nothing is sent again
	seen := map[string]int{}
	for _, ev := range up.Events() {
		seen[ev.EventID]++
		if ev.EventName != "LeadSubmitted" || ev.UserData["whatsapp_business_account_id"] != e2eWABA {
			t.Errorf("event %+v, want LeadSubmitted of WABA %s", ev, e2eWABA)
		}
	}
	if len(seen) != leads || len(up.Events()) != leads {
		t.Errorf("Meta got %d events of %d ids after the restart, want %d once each", len(up.Events()), len(seen), leads)
	}
	if got := scrape(t, sc2.api, `ctwa_sidecar_capi_events_total{result="sent"}`); got != leads {
		t.Errorf("capi_events_total sent = %.0f, want %d", got, leads)
	}
	if got := scrape(t, sc2.api, "ctwa_sidecar_capi_pending_events"); got != 0 {
		t.Errorf("capi_pending_events = %.0f, want 0", got)
	}
	code, _, body, err := do("GET", sc2.api+"/v1/clients/default/apps/"+killApp+"/conversions?status=done", "", nil)
	if err != nil || code != http.StatusBadRequest || !strings.Contains(string(body), `"status"`) {
		t.Errorf("conversions?status=done: %d %s %v, want 400 naming status", code, body, err)
	}
}

// TestWebhookFloodWhileMetaHangs: Meta takes 2 s to answer (the sender gives up after
// 1.5 s) and then fails, for every send; 300 webhooks are forwarded with the upstream's answer and recorded meanwhile,
// and their conversions wait in the outbox.
func TestWebhookFloodWhileMetaHangs(t *testing.T) {
	bin := sidecarBinary(t)
	upstream := "http://" + acceptingUpstream(t).addr
	graph := startGraph(t)
	faults := make([]graphstub.Fault, 100)
	for i := range faults {
		faults[i] = graphstub.ServerError()
		faults[i].Delay = 2 * time.Second // past the sender's 1.5 s timeout
	}
	graph.Script(faults...)
	sc := startBinary(t, bin, upstream, t.TempDir(), capiArgs(graph)...)
	const n = 300
	for i := range n {
		forwarded(t, sc, clickWebhook(i))
	}
	waitFor(t, "300 pending conversions", func() bool { return conversionCount(t, sc, "pending") == n })
	if got := len(graph.Events()); got != 0 {
		t.Errorf("Meta has %d events although it timed out every send", got)
	}
}
