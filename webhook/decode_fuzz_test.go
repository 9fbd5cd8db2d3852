package webhook

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
)

// FuzzDecode feeds Decode arbitrary bodies, seeded with every fixture under testdata/webhooks
// and testdata/external-payloads (`go test ./engine -fuzz FuzzDecode`; a normal run only
// replays the seeds). Decode must not panic, must give the same result with a fresh Decoder
// and with one that decoded something else before, every item it returns must be
// recordable and every rejection must name its reason.
func FuzzDecode(f *testing.F) {
	fxs := fixtures.Webhooks(f)
	for _, fx := range fxs {
		f.Add(fx.Body)
	}
	external, _ := filepath.Glob(filepath.Join("..", "testdata", "external-payloads", "*.json"))
	for _, p := range external {
		body, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	var warm Decoder
	f.Fuzz(func(t *testing.T, body []byte) {
		var fresh Decoder
		wantF, want, wantErr := fresh.Decode(body, testAppID)
		// Dirty the reused Decoder with the largest fixture first.
		warm.Decode(fixtureBodyBatch(fxs), testAppID)
		gotF, got, gotErr := warm.Decode(body, testAppID)
		if gotF != wantF || !sameItems(got, want) || !sameError(gotErr, wantErr) {
			t.Fatalf("a reused Decoder gives %s %+v %v, a fresh one %s %+v %v", gotF, got, gotErr, wantF, want, wantErr)
		}
		if !slices.EqualFunc(warm.Rejections(), fresh.Rejections(), func(a, b Rejection) bool {
			return a.Reason == b.Reason && sameError(a.Err, b.Err)
		}) {
			t.Fatalf("a reused Decoder rejects %v, a fresh one %v", warm.Rejections(), fresh.Rejections())
		}
		for _, r := range fresh.Rejections() {
			if !slices.Contains(RejectReasons, r.Reason) || r.Err == nil {
				t.Fatalf("rejection %+v", r)
			}
		}
		if wantErr != nil {
			if want != nil {
				t.Fatalf("items returned with the error %v", wantErr)
			}
			return
		}
		if wantF == FormatUnknown {
			t.Fatal("FormatUnknown without an error")
		}
		for i := range want {
			checkItem(t, wantF, &want[i])
		}
	})
}

func fixtureBodyBatch(fxs []fixtures.Webhook) []byte {
	for _, fx := range fxs {
		if fx.Name == "cloud/batch" {
			return fx.Body
		}
	}
	return fxs[0].Body
}

// sameItems compares item by item: a fresh Decoder returns a nil slice where a reused one
// returns an empty one.
func sameItems(a, b []Item) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// checkItem fails unless it has what the store needs to record it.
func checkItem(t *testing.T, f Format, it *Item) {
	t.Helper()
	if it.Format != f {
		t.Fatalf("item of format %s in a %s payload", it.Format, f)
	}
	switch it.Kind {
	case KindIgnored:
		if !slices.Contains(IgnoreReasons, it.Reason) {
			t.Fatalf("ignored item with reason %q", it.Reason)
		}
	case KindAutoEvent:
		if it.ID == "" || it.AppID == "" || it.EventName == "" || it.Referral.CtwaClid == "" {
			t.Fatalf("automatic event without id, app, name or click: %+v", it)
		}
	case KindMessage, KindStatus, KindEdit, KindNumberChange:
		checkLeadItem(t, it)
	default:
		t.Fatalf("item kind %d", it.Kind)
	}
	if c := it.Clone(); c != *it {
		t.Fatalf("clone %+v differs from %+v", c, *it)
	}
}

// checkLeadItem checks an item of a lead: a message, a status, an edit or a number change.
func checkLeadItem(t *testing.T, it *Item) {
	t.Helper()
	if it.ID == "" || it.AppID == "" || it.Lead == "" {
		t.Fatalf("item without id, app or lead: %+v", it)
	}
	if !it.LeadIsBSUID && !isDigits(it.Lead) {
		t.Fatalf("lead %q is not digits only", it.Lead)
	}
	switch {
	case it.Kind == KindStatus && it.Status == "":
		t.Fatalf("status item without status: %+v", it)
	case it.Kind == KindMessage && it.Type == "":
		t.Fatalf("message item without type: %+v", it)
	case it.Kind == KindEdit && it.EditOf == "":
		t.Fatalf("edit without the edited message: %+v", it)
	case it.Kind == KindNumberChange && !isDigits(it.NewLead):
		t.Fatalf("number change to %q", it.NewLead)
	}
}
