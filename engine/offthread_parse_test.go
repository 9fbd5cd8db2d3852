package engine_test

// Tests of the off-thread event validator (SPEC §5, seeds 000 and 004): every bad input
// is a *FieldError naming the field and the rule; good inputs, flat or nested, give the
// same OffThread with the documented defaults and inferred attribute types.

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// otNow is the fixed "now" of the validator tests: 2026-11-20T12:00:00Z.
var otNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// otBody is a valid flat body with extra, already JSON-encoded, members appended.
func otBody(extra string) string {
	b := `{"api_key":"K","lead_phone":"+49 170 1234567","action":"purchase"`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// otAttr is a valid body with one attribute named a.
func otAttr(value string) string { return otBody(`"attributes":{"a":` + value + `}`) }

func TestParseOffThreadRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	var many []string
	for i := range 51 {
		many = append(many, fmt.Sprintf(`"k%02d":%d`, i, i))
	}
	cases := []struct {
		name, body string
		field      string // the *FieldError's Field
		rule       string // a part of its message that states the rule
	}{
		// The lead.
		{"no lead", `{"api_key":"K","action":"purchase"}`, "lead_phone", "is required (or lead_user_id"},
		{"null lead", `{"lead_phone":null,"action":"purchase"}`, "lead_phone", "is required"},
		{"empty lead", `{"lead_phone":"","action":"purchase"}`, "lead_phone", "is required"},
		{"phone and user id", otBody(`"lead_user_id":"DE.1502576394655843"`), "lead_user_id", "give lead_phone or lead_user_id, not both"},
		{"phone letters", `{"lead_phone":"abc","action":"purchase"}`, "lead_phone",
			`"abc" is not a phone number in international form (7 to 15 digits`},
		{"phone too short", `{"lead_phone":"+49","action":"purchase"}`, "lead_phone", `"+49" is not a phone number`},
		{"phone too long", `{"lead_phone":"123456789012345678","action":"purchase"}`, "lead_phone", `"123456789012345678" is not a phone number`},
		{"phone national", `{"lead_phone":"0170 1234567","action":"purchase"}`, "lead_phone", `"0170 1234567" is not a phone number`},
		{"phone extension", `{"lead_phone":"+49 170 1234567 ext 5","action":"purchase"}`, "lead_phone", "is not a phone number"},
		{"phone number type", `{"lead_phone":491701234567,"action":"purchase"}`, "lead_phone", "must be a string"},
		{"phone over 64 bytes", `{"lead_phone":"` + strings.Repeat("1", 65) + `","action":"purchase"}`, "lead_phone", "is longer than 64 bytes"},

		// The action.
		{"no action", `{"lead_phone":"+491701234567"}`, "action", "is required: what the lead did"},
		{"blank action", `{"lead_phone":"+491701234567","action":"  "}`, "action", "is required"},
		{"action over 100 bytes", `{"lead_phone":"+491701234567","action":"` + long(101) + `"}`, "action", "is longer than 100 bytes"},
		{"action with NUL", `{"lead_phone":"+491701234567","action":"buy\u0000"}`, "action", "is not valid UTF-8 text"},
		{"action not a string", `{"lead_phone":"+491701234567","action":["purchase"]}`, "action", "must be a string"},

		// Revenue.
		{"revenue number", otBody(`"revenue":49.9`), "revenue", `must be an object {"amount": number, "currency": "ISO 4217 code"}`},
		{"revenue string", otBody(`"revenue":"49.90 EUR"`), "revenue", "must be an object"},
		{"revenue array", otBody(`"revenue":[49.9,"EUR"]`), "revenue", "must be an object"},
		{"revenue unknown member", otBody(`"revenue":{"amount":1,"currency":"EUR","tax":0.2}`), "revenue", `unknown field "tax"`},
		{"amount string", otBody(`"revenue":{"amount":"49.90"}`), "revenue.amount", "must be a number, not a string"},
		{"amount negative", otBody(`"revenue":{"amount":-1.5,"currency":"EUR"}`), "revenue.amount", "-1.5 is negative; amounts are ≥ 0"},
		{"amount overflow", otBody(`"revenue":{"amount":1e400}`), "revenue.amount", "1e400 is not a finite number"},
		{"amount bool", otBody(`"revenue":{"amount":true}`), "revenue.amount", "true is not a finite number"},
		{"currency EURO", otBody(`"revenue":{"amount":1,"currency":"EURO"}`), "revenue.currency", `"EURO" is not an ISO 4217 code`},
		{"currency lower case", otBody(`"revenue":{"amount":1,"currency":"eur"}`), "revenue.currency", `"eur" is not an ISO 4217 code`},
		{"currency unknown", otBody(`"revenue":{"amount":1,"currency":"XYZ"}`), "revenue.currency", `"XYZ" is not an ISO 4217 code`},
		{"currency empty", otBody(`"revenue":{"amount":1,"currency":""}`), "revenue.currency", `"" is not an ISO 4217 code`},
		{"currency number", otBody(`"revenue":{"amount":1,"currency":978}`), "revenue", "must be an object"},

		// Event time.
		{"time not RFC 3339", otBody(`"event_time":"2026-11-20 10:00:00"`), "event_time",
			`"2026-11-20 10:00:00" is not an RFC 3339 time such as 2026-11-20T10:00:00Z`},
		{"time date only", otBody(`"event_time":"2026-11-20"`), "event_time", "is not an RFC 3339 time"},
		{"time epoch number", otBody(`"event_time":1795176000`), "event_time", "must be a string"},
		{"time beyond skew", otBody(`"event_time":"2026-11-20T12:01:01Z"`), "event_time", "2026-11-20T12:01:01Z is in the future"},
		{"time beyond skew by a fraction", otBody(`"event_time":"2026-11-20T12:01:00.001Z"`), "event_time", "is in the future"},
		{"time far future", otBody(`"event_time":"2027-01-01T00:00:00Z"`), "event_time", "is in the future"},
		{"time before 1970", otBody(`"event_time":"1969-12-31T23:59:59Z"`), "event_time", "is before 1970-01-01T00:00:00Z"},

		// Attributes (YCloud typing, seed 004).
		{"string over 255 chars", otAttr(`"` + long(256) + `"`), "attributes.a", "has 256 characters; STRING allows 255"},
		{"typed string over 255 chars", otAttr(`{"type":"STRING","value":"` + strings.Repeat("ä", 256) + `"}`), "attributes.a", "has 256 characters; STRING allows 255"},
		{"number two decimals", otAttr(`12.34`), "attributes.a", "12.34 has more than one decimal place (NUMBER)"},
		{"typed number two decimals", otAttr(`{"type":"NUMBER","value":0.05}`), "attributes.a", "0.05 has more than one decimal place (NUMBER)"},
		{"typed number as text", otAttr(`{"type":"NUMBER","value":"12.3"}`), "attributes.a", `"12.3" is text, not a NUMBER`},
		{"timestamp fraction", otAttr(`{"type":"TIMESTAMP","value":1763632800000.5}`), "attributes.a", "1763632800000.5 is not epoch milliseconds (TIMESTAMP)"},
		{"timestamp negative", otAttr(`{"type":"TIMESTAMP","value":-1}`), "attributes.a", "-1 is not epoch milliseconds (TIMESTAMP)"},
		{"timestamp text", otAttr(`{"type":"TIMESTAMP","value":"20 Nov 2026"}`), "attributes.a",
			`"20 Nov 2026" is not an RFC 3339 time or epoch milliseconds (TIMESTAMP)`},
		{"url without scheme", otAttr(`{"type":"URL","value":"www.example.com/r/1"}`), "attributes.a",
			`"www.example.com/r/1" is not a URL starting with http:// or https://`},
		{"url ftp", otAttr(`{"type":"URL","value":"ftp://example.com/r/1"}`), "attributes.a", "is not a URL starting with http:// or https://"},
		{"url without host", otAttr(`"https://"`), "attributes.a", `"https://" is not a URL starting with http:// or https://`},
		{"url as number", otAttr(`{"type":"URL","value":7}`), "attributes.a", "a number is not a valid URL"},
		{"unknown type", otAttr(`{"type":"DATE","value":"2026-11-20"}`), "attributes.a.type", `"DATE" is not STRING, NUMBER, TIMESTAMP or URL`},
		{"lower-case type", otAttr(`{"type":"string","value":"x"}`), "attributes.a.type", `"string" is not STRING, NUMBER, TIMESTAMP or URL`},
		{"typed without value", otAttr(`{"type":"STRING"}`), "attributes.a", `must be a value or {"type": "STRING|NUMBER|TIMESTAMP|URL", "value": …}`},
		{"boolean", otAttr(`true`), "attributes.a", "must be a string or a number"},
		{"null", otAttr(`null`), "attributes.a", "must be a string or a number"},
		{"array", otAttr(`[1]`), "attributes.a", "must be a string or a number"},
		{"attributes array", otBody(`"attributes":[{"a":1}]`), "attributes", "must be a JSON object"},
		{"too many attributes", otBody(`"attributes":{` + strings.Join(many, ",") + `}`), "attributes", "has 51 attributes; at most 50"},
		{"empty attribute name", otBody(`"attributes":{"":"x"}`), "attributes.", "attribute names are 1 to 64 bytes of UTF-8"},
		{"long attribute name", otBody(`"attributes":{"` + long(65) + `":"x"}`), "attributes." + long(65), "attribute names are 1 to 64 bytes"},
		{"first bad attribute by name", otBody(`"attributes":{"z":true,"b":12.34,"a":"ok"}`), "attributes.b", "more than one decimal place"},

		// The body's shape.
		{"unknown field", `{"lead_phon":"+491701234567","action":"purchase"}`, "lead_phon",
			"is not a field of an off-thread event; the fields are api_key, lead_phone, lead_user_id, action"},
		{"unknown field nested", `{"api_key":"K","external_event":{"lead_phone":"+491701234567","action":"purchase","currency":"EUR"}}`,
			"currency", "is not a field of an off-thread event"},
		{"member without a name", `{"":"x","lead_phone":"+491701234567","action":"purchase"}`, "body",
			`the member named "" is not a field of an off-thread event`},
		{"member without a name beside external_event", `{"":"x","external_event":{"lead_phone":"+491701234567","action":"purchase"}}`,
			"body", `the member named "" is not allowed beside external_event`},
		{"field beside external_event", `{"external_event":{"lead_phone":"+491701234567","action":"purchase"},"action":"purchase"}`,
			"action", "is not allowed beside external_event; put it inside external_event"},
		{"external_event not an object", `{"api_key":"K","external_event":"purchase"}`, "external_event", "must be a JSON object"},
		{"external_event null", `{"external_event":null}`, "external_event", "must be a JSON object"},
		{"array body", `[{"lead_phone":"+491701234567","action":"purchase"}]`, "body", "must be a JSON object"},
		{"string body", `"purchase"`, "body", "must be a JSON object"},
		{"null body", `null`, "body", "must be a JSON object"},
		{"empty body", ``, "body", "must be a JSON object"},
		{"form body", `lead_phone=%2B491701234567&action=purchase`, "body", "must be a JSON object"},
		{"invalid JSON", `{"lead_phone":"+491701234567","action":`, "body", "is not valid JSON"},
		{"trailing garbage", otBody("") + `}`, "body", "is not valid JSON"},
		{"object_id over 255 bytes", otBody(`"object_id":"` + long(256) + `"`), "object_id", "is longer than 255 bytes"},
		{"object_id number", otBody(`"object_id":1234`), "object_id", "must be a string"},
		{"app_id number", otBody(`"app_id":106540352242922`), "app_id", "must be a string"},
		{"api_key number", `{"api_key":5,"lead_phone":"+491701234567","action":"purchase"}`, "api_key", "must be a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := engine.ParseOffThread([]byte(c.body), otNow)
			var fe *engine.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseOffThread(%s) = %+v, %v; want a *FieldError for %s", c.body, got, err, c.field)
			}
			if fe.Field != c.field {
				t.Errorf("field = %q, want %q (message %q)", fe.Field, c.field, fe.Message)
			}
			if !strings.Contains(fe.Message, c.rule) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, c.rule)
			}
			if want := fe.Field + ": " + fe.Message; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if !reflect.DeepEqual(got, engine.OffThread{}) {
				t.Errorf("a rejected body returned %+v, want the zero OffThread", got)
			}
		})
	}
}

// Of several wrong members, the error always names the same one (the first by name).
func TestParseOffThreadRejectsDeterministically(t *testing.T) {
	for _, c := range []struct{ body, field string }{
		{`{"zz":1,"mm":2,"aa":3,"lead_phone":"+491701234567","action":"purchase"}`, "aa"},
		{`{"external_event":{"lead_phone":"+491701234567","action":"purchase"},"zz":1,"mm":2,"bb":3}`, "bb"},
	} {
		for range 50 {
			_, err := engine.ParseOffThread([]byte(c.body), otNow)
			var fe *engine.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("ParseOffThread(%s) = %v, want a *FieldError for %s", c.body, err, c.field)
			}
		}
	}
}

func TestParseOffThreadFlatAndNestedAgree(t *testing.T) {
	const event = `"lead_phone":"+49 170 1234567","action":"purchase",
		"revenue":{"amount":49.9,"currency":"EUR"},"app_id":"106540352242922",
		"previous_external_event_id":"prev-1","event_time":"2026-11-20T10:00:00Z","object_id":"order-1234",
		"attributes":{"sku":"A1","paid_at":1763632800000,"receipt":"https://shop.example/r/1234"}`
	want := engine.OffThread{
		APIKey: "K", Lead: "491701234567", Action: "purchase", Amount: 49.9, Currency: "EUR",
		AppID: "106540352242922", PreviousID: "prev-1",
		Time:     time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Unix(),
		ObjectID: "order-1234",
		Attributes: []engine.Attribute{ // sorted by name
			{Name: "paid_at", Type: engine.AttrNumber, Value: "1763632800000"},
			{Name: "receipt", Type: engine.AttrURL, Value: "https://shop.example/r/1234"},
			{Name: "sku", Type: engine.AttrString, Value: "A1"},
		},
	}
	for name, body := range map[string]string{
		"flat (seed 000)":         `{"api_key":"K",` + event + `}`,
		"nested, key outside":     `{"api_key":"K","external_event":{` + event + `}}`,
		"nested, key inside":      `{"external_event":{"api_key":"K",` + event + `}}`,
		"nested, key both places": `{"api_key":"outer","external_event":{"api_key":"K",` + event + `}}`,
	} {
		got, err := engine.ParseOffThread([]byte(body), otNow)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestParseOffThreadDefaultsAndTimes(t *testing.T) {
	f := func(extra string, want engine.OffThread) {
		t.Helper()
		got, err := engine.ParseOffThread([]byte(otBody(extra)), otNow)
		if err != nil {
			t.Fatalf("ParseOffThread(%s): %v", otBody(extra), err)
		}
		want.APIKey, want.Lead, want.Action = "K", "491701234567", "purchase"
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseOffThread(%s):\n got %+v\nwant %+v", otBody(extra), got, want)
		}
	}
	now := otNow.Unix()
	// Without revenue and event_time: no amount, USD, now.
	f("", engine.OffThread{Currency: "USD", Time: now})
	f(`"revenue":null,"event_time":null,"attributes":null,"app_id":null`, engine.OffThread{Currency: "USD", Time: now})
	f(`"revenue":{"amount":10}`, engine.OffThread{Amount: 10, Currency: "USD", Time: now})
	f(`"revenue":{"currency":"JPY"}`, engine.OffThread{Currency: "JPY", Time: now})
	f(`"revenue":{"amount":0,"currency":"EUR"}`, engine.OffThread{Currency: "EUR", Time: now})
	f(`"revenue":{"amount":1.5e3,"currency":"GBP"}`, engine.OffThread{Amount: 1500, Currency: "GBP", Time: now})
	// Times: an offset is honoured, fractions are dropped, up to 60 s of clock skew pass.
	f(`"event_time":"2026-11-20T11:00:00+01:00"`, engine.OffThread{Currency: "USD", Time: now - 7200})
	f(`"event_time":"2026-11-20T10:00:00.9Z"`, engine.OffThread{Currency: "USD", Time: now - 7200})
	f(`"event_time":"2026-11-20T12:01:00Z"`, engine.OffThread{Currency: "USD", Time: now + 60})
	f(`"event_time":"1970-01-01T00:00:00Z"`, engine.OffThread{Currency: "USD", Time: 0})
	// The lead by BSUID.
	got, err := engine.ParseOffThread([]byte(`{"lead_user_id":"DE.1502576394655843","action":"sign_up"}`), otNow)
	want := engine.OffThread{Lead: "DE.1502576394655843", LeadIsUser: true, Action: "sign_up", Currency: "USD", Time: now}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("lead_user_id: got %+v, %v; want %+v", got, err, want)
	}
	// The action is trimmed.
	got, err = engine.ParseOffThread([]byte(`{"lead_phone":"491701234567","action":" purchase\n"}`), otNow)
	if err != nil || got.Action != "purchase" {
		t.Errorf("action = %q, %v; want purchase", got.Action, err)
	}
}

func TestParseOffThreadNegativeZeroAmount(t *testing.T) {
	got, err := engine.ParseOffThread([]byte(otBody(`"revenue":{"amount":-0,"currency":"EUR"}`)), otNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.Amount != 0 || math.Signbit(got.Amount) {
		t.Errorf("amount -0 gave %v (sign bit %v); want +0", got.Amount, math.Signbit(got.Amount))
	}
}

func TestParseOffThreadAttributeTypes(t *testing.T) {
	f := func(value string, want engine.Attribute) {
		t.Helper()
		got, err := engine.ParseOffThread([]byte(otAttr(value)), otNow)
		if err != nil {
			t.Fatalf("attribute %s: %v", value, err)
		}
		want.Name = "a"
		if len(got.Attributes) != 1 || got.Attributes[0] != want {
			t.Errorf("attribute %s = %+v, want [%+v]", value, got.Attributes, want)
		}
	}
	// Inferred.
	f(`12.3`, engine.Attribute{Type: engine.AttrNumber, Value: "12.3"})
	f(`7`, engine.Attribute{Type: engine.AttrNumber, Value: "7"})
	f(`-2.5`, engine.Attribute{Type: engine.AttrNumber, Value: "-2.5"})
	f(`12.0`, engine.Attribute{Type: engine.AttrNumber, Value: "12"})
	f(`1.25e1`, engine.Attribute{Type: engine.AttrNumber, Value: "12.5"})
	f(`"https://shop.example/r/1?x=1"`, engine.Attribute{Type: engine.AttrURL, Value: "https://shop.example/r/1?x=1"})
	f(`"http://shop.example"`, engine.Attribute{Type: engine.AttrURL, Value: "http://shop.example"})
	f(`"2026-11-20T11:00:00+01:00"`, engine.Attribute{Type: engine.AttrTimestamp, Value: "2026-11-20T10:00:00Z"})
	f(`"blue, size 42"`, engine.Attribute{Type: engine.AttrString, Value: "blue, size 42"})
	f(`"2026-11-20"`, engine.Attribute{Type: engine.AttrString, Value: "2026-11-20"})
	f(`""`, engine.Attribute{Type: engine.AttrString, Value: ""})
	f(`"`+strings.Repeat("ä", 255)+`"`, engine.Attribute{Type: engine.AttrString, Value: strings.Repeat("ä", 255)})
	// Typed.
	f(`{"type":"STRING","value":"https://shop.example"}`, engine.Attribute{Type: engine.AttrString, Value: "https://shop.example"})
	f(`{"type":"STRING","value":"2026-11-20T10:00:00Z"}`, engine.Attribute{Type: engine.AttrString, Value: "2026-11-20T10:00:00Z"})
	f(`{"type":"NUMBER","value":12.3}`, engine.Attribute{Type: engine.AttrNumber, Value: "12.3"})
	f(`{"type":"TIMESTAMP","value":1763632800000}`, engine.Attribute{Type: engine.AttrTimestamp, Value: "2025-11-20T10:00:00Z"})
	f(`{"type":"TIMESTAMP","value":1763632800123}`, engine.Attribute{Type: engine.AttrTimestamp, Value: "2025-11-20T10:00:00.123Z"})
	f(`{"type":"TIMESTAMP","value":"2026-11-20T10:00:00Z"}`, engine.Attribute{Type: engine.AttrTimestamp, Value: "2026-11-20T10:00:00Z"})
	f(`{"type":"URL","value":"https://shop.example/r/1"}`, engine.Attribute{Type: engine.AttrURL, Value: "https://shop.example/r/1"})

	// Several attributes come back sorted by name.
	got, err := engine.ParseOffThread([]byte(otBody(`"attributes":{"z":1,"b":"x","m":"https://m.example"}`)), otNow)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got.Attributes {
		names = append(names, a.Name+"="+a.Type)
	}
	if g, w := strings.Join(names, " "), "b=STRING m=URL z=NUMBER"; g != w {
		t.Errorf("attributes = %s, want %s", g, w)
	}
	// 50 attributes are allowed.
	var fifty []string
	for i := range 50 {
		fifty = append(fifty, fmt.Sprintf(`"k%02d":%d`, i, i))
	}
	got, err = engine.ParseOffThread([]byte(otBody(`"attributes":{`+strings.Join(fifty, ",")+`}`)), otNow)
	if err != nil || len(got.Attributes) != 50 {
		t.Errorf("50 attributes: %d, %v; want 50, nil", len(got.Attributes), err)
	}
}

func TestOffThreadNormalizePhone(t *testing.T) {
	f := func(in, want string, wantOK bool) {
		t.Helper()
		got, ok := engine.NormalizePhone(in)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q, %v", in, got, ok, want, wantOK)
		}
		if !wantOK {
			return
		}
		// The validator stores the same digits.
		e, err := engine.ParseOffThread([]byte(`{"lead_phone":"`+in+`","action":"purchase"}`), otNow)
		if err != nil || e.Lead != want || e.LeadIsUser {
			t.Errorf("ParseOffThread lead_phone %q: lead %q (user %v), %v; want %q", in, e.Lead, e.LeadIsUser, err, want)
		}
	}
	f("+49 170 123-4567", "491701234567", true)
	f("+49 170 1234567", "491701234567", true)
	f("491701234567", "491701234567", true)
	f("0049 170 1234567", "491701234567", true)
	f("0049 (170) 1234567", "491701234567", true)
	f("+49.170.1234567", "491701234567", true)
	f("+49/170/1234567", "491701234567", true)
	f("  +49 170 1234567  ", "491701234567", true)
	f("+1 (650) 555-1234", "16505551234", true)
	// The national trunk prefix written after the country code is not part of the number.
	f("+49 (0)170 1234567", "491701234567", true)
	f("0049 (0) 170 1234567", "491701234567", true)
	f("+44 (0)20 7946 0958", "442079460958", true)
	f("1234567", "1234567", true)                 // 7 digits
	f("123456789012345", "123456789012345", true) // 15 digits
	// Refused.
	f("(0)170 1234567", "", false) // national: no country code
	f("0170 1234567", "", false)
	f("+0049 170 1234567", "", false)
	f("123456", "", false)
	f("1234567890123456", "", false)
	f("123456789012345678", "", false)
	f("+49", "", false)
	f("abc", "", false)
	f("", "", false)
	f("+", "", false)
	f("00", "", false)
	f("+49 170 1234567 ext 5", "", false)
	f("+49\u00a0170\u00a01234567", "", false)
	f("+٤٩١٧٠١٢٣٤٥٦٧", "", false) // Arabic-Indic digits
	f("+49 170 1234567#", "", false)
}

func TestOffThreadAPIKey(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		if got := engine.OffThreadAPIKey([]byte(body)); got != want {
			t.Errorf("OffThreadAPIKey(%s) = %q, want %q", body, got, want)
		}
	}
	f(`{"api_key":"K","lead_phone":"+491701234567","action":"purchase"}`, "K")
	f(`{"external_event":{"api_key":"N","lead_phone":"+491701234567"}}`, "N")
	f(`{"api_key":"K","external_event":{"lead_phone":"+491701234567"}}`, "K")
	f(`{"api_key":"K","external_event":{"api_key":"N"}}`, "K")
	f(`{"api_key":"","external_event":{"api_key":"N"}}`, "N")
	f(`{"api_key":5,"external_event":{"api_key":"N"}}`, "N")
	f(`{"lead_phone":"+491701234567","action":"purchase"}`, "")
	f(`{"external_event":{"action":"purchase"}}`, "")
	f(`{"api_key":5}`, "")
	f(`{"api_key":null}`, "")
	f(`not json`, "")
	f(``, "")
	f(`["K"]`, "")
	// A malformed sibling does not hide the key: the caller gets the 400 for that field.
	f(`{"api_key":"K","external_event":5}`, "K")
	f(`{"api_key":"K","revenue":"49.9 EUR"}`, "K")
}
