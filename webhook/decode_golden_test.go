package webhook

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/webhooks")

// testAppID is the -app-id given for payloads without an app id (On-Premises).
const testAppID = "onprem"

// golden is the content of a .golden file: what a fixture decodes to.
type golden struct {
	Format string       `json:"format"`
	Error  string       `json:"error,omitempty"`
	Items  []goldenItem `json:"items"`
}

// goldenItem shows an Item with names for its enums, its time in UTC and no empty fields,
// so that a golden file can be checked by eye against its fixture.
type goldenItem struct {
	Kind          string
	Format        string
	AppID         string
	WABA          string `json:",omitempty"`
	ID            string
	Time          int64
	TimeUTC       string
	Lead          string
	LeadIsBSUID   bool      `json:",omitempty"`
	Type          string    `json:",omitempty"`
	Text          string    `json:",omitempty"`
	ButtonPayload string    `json:",omitempty"`
	ReplyKind     string    `json:",omitempty"`
	ReplyID       string    `json:",omitempty"`
	ReplyTitle    string    `json:",omitempty"`
	ContextID     string    `json:",omitempty"`
	Referral      *Referral `json:",omitempty"`
	Status        string    `json:",omitempty"`
	BizOpaque     string    `json:",omitempty"`
	Reason        string    `json:",omitempty"`
	EditOf        string    `json:",omitempty"`
	NewLead       string    `json:",omitempty"`
	EventName     string    `json:",omitempty"`
	Amount        float64   `json:",omitempty"`
	Currency      string    `json:",omitempty"`
}

func kindName(k ItemKind) string {
	switch k {
	case KindMessage:
		return "message"
	case KindStatus:
		return "status"
	case KindIgnored:
		return "ignored"
	case KindEdit:
		return "edit"
	case KindNumberChange:
		return "number_change"
	case KindAutoEvent:
		return "automatic_event"
	}
	return "invalid"
}

func goldenOf(f Format, items []Item, err error) golden {
	g := golden{Format: f.String(), Items: []goldenItem{}}
	if err != nil {
		g.Error = err.Error()
	}
	for _, it := range items {
		gi := goldenItem{
			Kind: kindName(it.Kind), Format: it.Format.String(), AppID: it.AppID, WABA: it.WABA, ID: it.ID,
			Time: it.Time, TimeUTC: time.Unix(it.Time, 0).UTC().Format(time.RFC3339), Lead: it.Lead,
			LeadIsBSUID: it.LeadIsBSUID, Type: it.Type, Text: it.Text, ButtonPayload: it.ButtonPayload,
			ReplyKind: it.ReplyKind, ReplyID: it.ReplyID, ReplyTitle: it.ReplyTitle,
			ContextID: it.ContextID, Status: it.Status, BizOpaque: it.BizOpaque, Reason: it.Reason,
			EditOf: it.EditOf, NewLead: it.NewLead, EventName: it.EventName, Amount: it.Amount, Currency: it.Currency,
		}
		if it.Referral != (Referral{}) {
			r := it.Referral
			gi.Referral = &r
		}
		g.Items = append(g.Items, gi)
	}
	return g
}

func marshalGolden(tb testing.TB, g golden) []byte {
	tb.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestGolden decodes every fixture and compares the result with the .golden file next to it.
// Run `go test ./engine -run Golden -update` to rewrite them, then check the diff by eye.
func TestGolden(t *testing.T) {
	var d Decoder
	for _, fx := range fixtures.Webhooks(t) {
		t.Run(fx.Name, func(t *testing.T) {
			f, items, err := d.Decode(fx.Body, testAppID)
			if err != nil {
				t.Fatalf("fixture does not decode: %v", err)
			}
			if f.String() != fx.Format {
				t.Fatalf("detected as %s, want %s", f, fx.Format)
			}
			got := marshalGolden(t, goldenOf(f, items, err))
			goldenPath := strings.TrimSuffix(fx.Path, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decoded items differ from %s\n--- got\n%s\n--- want\n%s", goldenPath, got, want)
			}
		})
	}
}
