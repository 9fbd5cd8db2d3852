package engine_test

import (
	"errors"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/internal/currency"
)

// FuzzParseOffThread feeds the off-thread validator arbitrary bodies: it never panics, a
// body it accepts satisfies every rule of SPEC §5, and a body it refuses gets a
// *FieldError naming a field.
func FuzzParseOffThread(f *testing.F) {
	for _, seed := range []string{
		// Valid: flat (seed 000), nested, BSUID, typed attributes.
		`{"api_key":"K","lead_phone":"+49 170 1234567","action":"purchase","revenue":{"amount":49.9,"currency":"EUR"},` +
			`"app_id":"106540352242922","previous_external_event_id":"abc","event_time":"2026-11-20T10:00:00Z",` +
			`"object_id":"order-1234","attributes":{"sku":"A1","paid_at":1763632800000,"receipt":"https://shop.example/r/1"}}`,
		`{"api_key":"K","external_event":{"lead_phone":"0049 (0)170 1234567","action":"sign_up"}}`,
		`{"lead_user_id":"DE.1502576394655843","action":"purchase","revenue":{"amount":0}}`,
		`{"lead_phone":"491701234567","action":"x","attributes":{"a":{"type":"TIMESTAMP","value":1},` +
			`"b":{"type":"URL","value":"http://a.b"},"c":{"type":"NUMBER","value":1.5e1},"d":"2026-11-20T10:00:00+01:00"}}`,
		// Invalid.
		`{"lead_phon":"+491701234567","action":"purchase"}`,
		`{"lead_phone":"+49","action":"purchase"}`,
		`{"lead_phone":"+491701234567","action":"purchase","revenue":{"amount":-0.0,"currency":"eur"}}`,
		`{"lead_phone":"+491701234567","action":"purchase","revenue":{"amount":1e400}}`,
		`{"lead_phone":"+491701234567","action":"purchase","event_time":"2099-01-01T00:00:00Z"}`,
		`{"lead_phone":"+491701234567","action":"purchase","attributes":{"a":12.34,"b":{"type":"DATE","value":1}}}`,
		`{"external_event":{"action":"purchase"},"action":"purchase"}`,
		`{"external_event":[]}`,
		`[{"action":"purchase"}]`,
		`{"lead_phone":"+491701234567","action":"purchase"`,
		"{\"lead_phone\":\"+491701234567\",\"action\":\"p\xff\"}",
		``,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := engine.ParseOffThread(body, now)
		if err != nil {
			var fe *engine.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Message == "" {
				t.Fatalf("error %#v is not a *FieldError with a field and a message", err)
			}
			if !reflect.DeepEqual(e, engine.OffThread{}) {
				t.Fatalf("error %v came with %+v", err, e)
			}
			return
		}
		checkOffThread(t, e, now)
		// Parsing is deterministic.
		again, err := engine.ParseOffThread(body, now)
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("second parse gave %+v, %v; first %+v", again, err, e)
		}
	})
}

// checkOffThread fails t unless e satisfies the rules of SPEC §5.
func checkOffThread(t *testing.T, e engine.OffThread, now time.Time) {
	t.Helper()
	if e.LeadIsUser {
		if e.Lead == "" {
			t.Fatal("BSUID lead is empty")
		}
	} else {
		if n := len(e.Lead); n < 7 || n > 15 || e.Lead[0] == '0' {
			t.Fatalf("lead %q is not 7 to 15 digits without a leading 0", e.Lead)
		}
		for _, c := range e.Lead {
			if c < '0' || c > '9' {
				t.Fatalf("lead %q holds a non-digit", e.Lead)
			}
		}
	}
	if strings.TrimSpace(e.Action) == "" || e.Action != strings.TrimSpace(e.Action) || !utf8.ValidString(e.Action) {
		t.Fatalf("action %q is empty, untrimmed or not UTF-8", e.Action)
	}
	if !currency.Valid(e.Currency) {
		t.Fatalf("currency %q is not ISO 4217", e.Currency)
	}
	if math.IsNaN(e.Amount) || math.IsInf(e.Amount, 0) || e.Amount < 0 || math.Signbit(e.Amount) {
		t.Fatalf("amount %v is not a finite number ≥ 0", e.Amount)
	}
	if e.Time > now.Add(60*time.Second).Unix() || e.Time < 0 {
		t.Fatalf("time %d is after now+60s (%d) or before 1970", e.Time, now.Unix()+60)
	}
	if len(e.Attributes) > 50 {
		t.Fatalf("%d attributes", len(e.Attributes))
	}
	for i, a := range e.Attributes {
		if a.Name == "" || len(a.Name) > 64 || (i > 0 && e.Attributes[i-1].Name >= a.Name) {
			t.Fatalf("attribute names %+v are not 1–64 bytes, sorted and unique", e.Attributes)
		}
		switch a.Type {
		case engine.AttrString:
			if utf8.RuneCountInString(a.Value) > 255 {
				t.Fatalf("STRING %q is longer than 255 characters", a.Name)
			}
		case engine.AttrNumber:
			f, err := strconv.ParseFloat(a.Value, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				t.Fatalf("NUMBER %q = %q", a.Name, a.Value)
			}
		case engine.AttrTimestamp:
			if _, err := time.Parse(time.RFC3339Nano, a.Value); err != nil {
				t.Fatalf("TIMESTAMP %q = %q: %v", a.Name, a.Value, err)
			}
		case engine.AttrURL:
			u, err := url.Parse(a.Value)
			if err != nil || !slices.Contains([]string{"http", "https"}, u.Scheme) || u.Host == "" {
				t.Fatalf("URL %q = %q", a.Name, a.Value)
			}
		default:
			t.Fatalf("attribute %q has type %q", a.Name, a.Type)
		}
	}
}
