package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// App ids of the fixtures under testdata/webhooks.
const (
	appCloud      = "106540352242922"
	appCloud2     = "106540352242977" // second phone number in cloud/batch
	appSinch      = "01HXYZ8KQ4W3V2C1B0N9M8L7K6"
	appYCloud     = "4930609859535"
	adSpringShoes = "120214567890123456" // the ad of cloud/text_ctwa_referral and sinch/ctwa_media_card
)

// goldenDefinitions creates, through the recorder API and in a fixed order (ids are
// counters), the definitions every golden fixture is recorded with: keywords on every app
// the fixtures use, keywords scoped to an ad, and custom source phrases, some of which
// match fixture texts.

var update = flag.Bool("update", false, "rewrite the .events golden files under testdata/webhooks")

func goldenDefinitions(e *testEnv) {
	e.t.Helper()
	ctx := context.Background()
	for _, app := range []string{appCloud, appCloud2, testAppID, appSinch, appYCloud} {
		for _, kw := range []string{"price", "sale", "open", "yes"} {
			e.addKeyword(app, kw)
		}
	}
	e.addKeyword(appCloud, "Größe 42") // two words, Unicode lower-casing
	for _, g := range []Group{
		{AppID: appCloud, Type: TypeKeyword, TypeValue: "still on", AdID: adSpringShoes}, // in scope
		{AppID: appCloud, Type: TypeKeyword, TypeValue: "saw your ad", AdID: "999"},      // out of scope
		{AppID: appCloud, Type: TypeButtonReply, TypeID: "size_42"},                      // tracked reply: no extra event
	} {
		if _, err := e.rec.AddGroup(ctx, g); err != nil {
			e.t.Fatalf("AddGroup(%+v): %v", g, err)
		}
	}
	e.addSource(appCloud, "Spring poster", "spring sale") // the CTWA referral wins over it
	e.addSource(appCloud, "Return QR", "return my order") // cloud/batch, second lead
	e.addSource(testAppID, "Austria flyer", "ship to austria")
	e.addSource(appSinch, "Shop window", "opening hours")
	e.addSource(appYCloud, "Hamburg poster", "store in hamburg")
}

// goldenEvent shows a kv.Event in the .events files.
type goldenEvent struct {
	ID             string `json:"id"`
	AppID          string `json:"app_id"`
	Type           string `json:"type"`
	TypeID         string `json:"type_id"`
	TypeValue      string `json:"type_value"`
	Time           int64  `json:"time"`
	Lead           string `json:"lead"`
	LeadIsBSUID    bool   `json:"lead_is_bsuid,omitempty"`
	ConversationID string `json:"conversation_id"`
	SourceType     string `json:"source_type"`
	SourceID       string `json:"source_id"`
	MessageID      string `json:"message_id"`
}

func goldenEventOf(ev *kv.Event) goldenEvent {
	return goldenEvent{ID: ev.ID, AppID: ev.AppID, Type: ev.Type, TypeID: ev.TypeID, TypeValue: ev.TypeValue,
		Time: ev.Time, Lead: ev.Lead, LeadIsBSUID: ev.LeadIsBSUID, ConversationID: ev.ConversationID,
		SourceType: ev.SourceType, SourceID: ev.SourceID, MessageID: ev.MessageID}
}

// fixtureApps returns the app ids the items of body belong to, sorted.
func fixtureApps(t *testing.T, body []byte) []string {
	t.Helper()
	var d webhook.Decoder
	_, items, err := d.Decode(body, testAppID)
	if err != nil {
		t.Fatalf("fixture does not decode: %v", err)
	}
	var apps []string
	for _, it := range items {
		apps = append(apps, it.AppID)
	}
	slices.Sort(apps)
	return slices.Compact(apps)
}

// TestGoldenEvents records every fixture into a fresh store and compares the events with
// testdata/webhooks/<format>/<case>.events. Run
// `go test ./engine -run GoldenEvents -update` to rewrite them, then check the diff by eye
// against SPEC §4.
func TestGoldenEvents(t *testing.T) {
	for _, fx := range fixtures.Webhooks(t) {
		t.Run(fx.Name, func(t *testing.T) {
			e := newTestEnv(t)
			goldenDefinitions(e)
			e.record(fx.Body)
			// A retried delivery adds nothing.
			e.record(fx.Body)
			evs := []goldenEvent{}
			for _, app := range fixtureApps(t, fx.Body) {
				for _, ev := range e.events(app) {
					evs = append(evs, goldenEventOf(&ev))
				}
			}
			var got bytes.Buffer
			enc := json.NewEncoder(&got)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(evs); err != nil {
				t.Fatal(err)
			}
			path := strings.TrimSuffix(fx.Path, ".json") + ".events"
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("events differ from %s\n--- got\n%s\n--- want\n%s", path, got.Bytes(), want)
			}
		})
	}
}
