package engine

import (
	"reflect"
	"testing"
)

// FuzzDecode feeds Decode arbitrary bodies, seeded with every fixture under testdata/webhooks
// (`go test ./engine -fuzz FuzzDecode`; a normal run only replays the seeds). Decode must
// not panic, must give the same result with a fresh Decoder and with one that decoded
// something else before, and every item it returns must be recordable.
func FuzzDecode(f *testing.F) {
	fxs := loadFixtures(f)
	for _, fx := range fxs {
		f.Add(fx.body)
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

func fixtureBodyBatch(fxs []fixture) []byte {
	for _, fx := range fxs {
		if fx.name == "cloud/batch" {
			return fx.body
		}
	}
	return fxs[0].body
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
	if it.Kind != KindMessage && it.Kind != KindStatus {
		t.Fatalf("item kind %d", it.Kind)
	}
	if it.ID == "" || it.AppID == "" || it.Lead == "" {
		t.Fatalf("item without id, app or lead: %+v", it)
	}
	if !it.LeadIsBSUID && !isDigits(it.Lead) {
		t.Fatalf("lead %q is not digits only", it.Lead)
	}
	if it.Kind == KindStatus && it.Status == "" {
		t.Fatalf("status item without status: %+v", it)
	}
	if it.Kind == KindMessage && it.Type == "" {
		t.Fatalf("message item without type: %+v", it)
	}
	if c := it.Clone(); c != *it {
		t.Fatalf("clone %+v differs from %+v", c, *it)
	}
}
