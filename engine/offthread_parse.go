package engine

import (
	"bytes"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/currency"
)

// OffThread is a validated off-thread event: something a lead did on the business's
// website because of a WhatsApp conversation (SPEC §5).
type OffThread struct {
	APIKey     string // from the body; the API also accepts a bearer token
	Lead       string // phone digits, or the BSUID for lead_user_id
	LeadIsUser bool   // Lead is a BSUID (lead_user_id)
	Action     string
	Amount     float64
	Currency   string
	AppID      string
	PreviousID string
	Time       int64 // unix seconds
	ObjectID   string
	Attributes []Attribute
}

// Attribute is one typed attribute of an off-thread event (YCloud typing, seed 004).
type Attribute struct {
	Name  string `json:"name"`
	Type  string `json:"type"`  // STRING, NUMBER, TIMESTAMP, URL
	Value string `json:"value"` // normalized: numbers as decimal text, timestamps RFC 3339 UTC
}

// Attribute types.
const (
	AttrString    = "STRING"
	AttrNumber    = "NUMBER"
	AttrTimestamp = "TIMESTAMP"
	AttrURL       = "URL"
)

// Off-thread limits.
const (
	MaxOffThreadBody = 64 << 10 // larger bodies get 413
	maxAttributes    = 50
	maxStringAttr    = 255
	futureSkew       = 60 * time.Second // clocks differ a little between website and sidecar
)

var offThreadFields = []string{"api_key", "lead_phone", "lead_user_id", "action", "revenue", "app_id",
	"previous_external_event_id", "event_time", "object_id", "attributes"}

// ParseOffThread decodes and validates an off-thread event body: flat (seed 000) or
// nested under "external_event". Every problem is a *FieldError naming the field and the
// rule; nothing about the request is trusted before it passes.
func ParseOffThread(body []byte, now time.Time) (OffThread, error) {
	fields, err := objectFields(body, "body")
	if err != nil {
		return OffThread{}, err
	}
	if nested, ok := fields["external_event"]; ok {
		inner, err := objectFields(nested, "external_event")
		if err != nil {
			return OffThread{}, err
		}
		if key, ok := fields["api_key"]; ok {
			if _, dup := inner["api_key"]; !dup {
				inner["api_key"] = key
			}
		}
		delete(fields, "external_event")
		delete(fields, "api_key")
		if len(fields) > 0 {
			return OffThread{}, memberError(sortedKeys(fields)[0], "is not allowed beside external_event; put it inside external_event")
		}
		fields = inner
	}
	// In name order, so that the same body always gets the same error.
	for _, name := range sortedKeys(fields) {
		if !slices.Contains(offThreadFields, name) {
			return OffThread{}, memberError(name, "is not a field of an off-thread event; the fields are "+strings.Join(offThreadFields, ", "))
		}
	}
	p := offThreadParser{fields: fields, now: now}
	return p.parse()
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// memberError is the error of a member that should not be there; a member named ""
// cannot name itself, so the body is named instead.
func memberError(name, rule string) *FieldError {
	if name == "" {
		return &FieldError{"body", `the member named "" ` + rule}
	}
	return &FieldError{name, rule}
}

// objectFields decodes a JSON object into its raw fields.
func objectFields(raw []byte, field string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &FieldError{field, "must be a JSON object"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &FieldError{field, "is not valid JSON: " + err.Error()}
	}
	return m, nil
}

type offThreadParser struct {
	fields map[string]json.RawMessage
	now    time.Time
	err    error
}

func (p *offThreadParser) parse() (OffThread, error) {
	var e OffThread
	e.APIKey = p.str("api_key", 256)
	phone, user := p.str("lead_phone", 64), p.str("lead_user_id", 256)
	e.Action = strings.TrimSpace(p.str("action", 100))
	e.AppID = p.str("app_id", 64)
	e.PreviousID = p.str("previous_external_event_id", 64)
	e.ObjectID = p.str("object_id", 255)
	e.Time = p.eventTime()
	e.Amount, e.Currency = p.revenue()
	e.Attributes = p.attributes()
	if p.err != nil {
		return OffThread{}, p.err
	}
	switch {
	case phone == "" && user == "":
		return OffThread{}, &FieldError{"lead_phone", "is required (or lead_user_id for a lead known only by its WhatsApp user id)"}
	case phone != "" && user != "":
		return OffThread{}, &FieldError{"lead_user_id", "give lead_phone or lead_user_id, not both"}
	case e.Action == "":
		return OffThread{}, &FieldError{"action", "is required: what the lead did, e.g. purchase"}
	case IsEventType(e.Action):
		// Off-thread events share the events list with message events; a purchase
		// called "conversation" would be counted as a session.
		return OffThread{}, &FieldError{"action", fmt.Sprintf("%q is a message event type; name what the lead did, e.g. purchase or signup", e.Action)}
	case phone != "":
		digits, ok := NormalizePhone(phone)
		if !ok {
			return OffThread{}, &FieldError{"lead_phone", fmt.Sprintf("%q is not a phone number in international form (7 to 15 digits, e.g. +49 170 1234567)", phone)}
		}
		e.Lead = digits
	default:
		e.Lead, e.LeadIsUser = user, true
	}
	return e, nil
}

// str reads an optional string field of at most max bytes.
func (p *offThreadParser) str(name string, max int) string {
	raw, ok := p.fields[name]
	if !ok || p.err != nil || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.err = &FieldError{name, "must be a string"}
		return ""
	}
	if len(s) > max {
		p.err = &FieldError{name, fmt.Sprintf("is longer than %d bytes", max)}
		return ""
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		p.err = &FieldError{name, "is not valid UTF-8 text"}
		return ""
	}
	return s
}

// eventTime reads event_time (RFC 3339), defaulting to now; it may not be in the future.
func (p *offThreadParser) eventTime() int64 {
	v := p.str("event_time", 64)
	if v == "" || p.err != nil {
		return p.now.Unix()
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		p.err = &FieldError{"event_time", fmt.Sprintf("%q is not an RFC 3339 time such as 2026-11-20T10:00:00Z", v)}
		return 0
	}
	if t.After(p.now.Add(futureSkew)) {
		p.err = &FieldError{"event_time", fmt.Sprintf("%s is in the future", v)}
		return 0
	}
	if t.Unix() < 0 {
		// Keys hold times as unsigned seconds: a negative time would sort after every other.
		p.err = &FieldError{"event_time", fmt.Sprintf("%s is before 1970-01-01T00:00:00Z", v)}
		return 0
	}
	return t.Unix()
}

// revenue reads revenue {amount, currency}: amount a finite number ≥ 0, currency an
// ISO 4217 code (default USD).
func (p *offThreadParser) revenue() (float64, string) {
	raw, ok := p.fields["revenue"]
	if !ok || p.err != nil || string(raw) == "null" {
		return 0, "USD"
	}
	var r struct {
		Amount   json.RawMessage `json:"amount"`
		Currency *string         `json:"currency"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		p.err = &FieldError{"revenue", "must be an object {\"amount\": number, \"currency\": \"ISO 4217 code\"}: " + err.Error()}
		return 0, ""
	}
	code := "USD"
	if r.Currency != nil {
		code = *r.Currency
	}
	if !currency.Valid(code) {
		p.err = &FieldError{"revenue.currency", fmt.Sprintf("%q is not an ISO 4217 code such as EUR or USD", code)}
		return 0, ""
	}
	if len(r.Amount) == 0 || string(r.Amount) == "null" {
		return 0, code
	}
	amount, err := strconv.ParseFloat(string(r.Amount), 64)
	switch {
	case err != nil && r.Amount[0] == '"':
		p.err = &FieldError{"revenue.amount", "must be a number, not a string"}
	case err != nil || math.IsInf(amount, 0) || math.IsNaN(amount):
		p.err = &FieldError{"revenue.amount", fmt.Sprintf("%s is not a finite number", r.Amount)}
	case amount < 0:
		p.err = &FieldError{"revenue.amount", fmt.Sprintf("%s is negative; amounts are ≥ 0", r.Amount)}
	case amount == 0:
		amount = 0 // -0 is ≥ 0 but would read "-0 USD"
	}
	return amount, code
}

// attributes reads the typed attributes: each value is either plain (a string, number
// or boolean-free scalar whose type is inferred) or {"type": T, "value": v}.
func (p *offThreadParser) attributes() []Attribute {
	raw, ok := p.fields["attributes"]
	if !ok || p.err != nil || string(raw) == "null" {
		return nil
	}
	fields, err := objectFields(raw, "attributes")
	if err != nil {
		p.err = err
		return nil
	}
	if len(fields) > maxAttributes {
		p.err = &FieldError{"attributes", fmt.Sprintf("has %d attributes; at most %d", len(fields), maxAttributes)}
		return nil
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names) // stable order, and the first bad one is always the same
	out := make([]Attribute, 0, len(names))
	for _, name := range names {
		a, err := parseAttribute(name, fields[name])
		if err != nil {
			p.err = err
			return nil
		}
		out = append(out, a)
	}
	return out
}

func parseAttribute(name string, raw json.RawMessage) (Attribute, error) {
	field := "attributes." + name
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return Attribute{}, &FieldError{field, "attribute names are 1 to 64 bytes of UTF-8"}
	}
	raw = bytes.TrimSpace(raw)
	typ := ""
	if len(raw) > 0 && raw[0] == '{' {
		var typed struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(raw, &typed); err != nil || len(typed.Value) == 0 {
			return Attribute{}, &FieldError{field, `must be a value or {"type": "STRING|NUMBER|TIMESTAMP|URL", "value": …}`}
		}
		typ, raw = typed.Type, bytes.TrimSpace(typed.Value)
		if !slices.Contains([]string{AttrString, AttrNumber, AttrTimestamp, AttrURL}, typ) {
			return Attribute{}, &FieldError{field + ".type", fmt.Sprintf("%q is not STRING, NUMBER, TIMESTAMP or URL", typ)}
		}
	}
	value, typ, err := typedValue(raw, typ)
	if err != nil {
		return Attribute{}, &FieldError{field, err.Error()}
	}
	return Attribute{Name: name, Type: typ, Value: value}, nil
}

// typedValue checks raw against typ (inferred when empty) and returns its normal form.
func typedValue(raw json.RawMessage, typ string) (string, string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "", fmt.Errorf("is not a valid JSON string")
		}
		return stringValue(s, typ)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return "", "", fmt.Errorf("must be a string or a number")
	}
	switch typ {
	case "", AttrNumber:
		if !oneDecimal(string(raw)) {
			return "", "", fmt.Errorf("%s has more than one decimal place (NUMBER)", raw)
		}
		return strconv.FormatFloat(f, 'f', -1, 64), AttrNumber, nil
	case AttrTimestamp: // epoch milliseconds
		if f != math.Trunc(f) || f < 0 || f > 1e15 {
			return "", "", fmt.Errorf("%s is not epoch milliseconds (TIMESTAMP)", raw)
		}
		return time.UnixMilli(int64(f)).UTC().Format(time.RFC3339Nano), AttrTimestamp, nil
	}
	return "", "", fmt.Errorf("a number is not a valid %s", typ)
}

// stringValue types a string attribute: URLs and RFC 3339 times are recognized when no
// type is given.
func stringValue(s, typ string) (string, string, error) {
	if !utf8.ValidString(s) {
		return "", "", fmt.Errorf("is not valid UTF-8 text")
	}
	isURL := strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
	if typ == "" {
		typ = AttrString
		if isURL {
			typ = AttrURL
		} else if _, err := time.Parse(time.RFC3339, s); err == nil {
			typ = AttrTimestamp
		}
	}
	switch typ {
	case AttrString:
		if n := utf8.RuneCountInString(s); n > maxStringAttr {
			return "", "", fmt.Errorf("has %d characters; STRING allows %d", n, maxStringAttr)
		}
		return s, typ, nil
	case AttrURL:
		u, err := url.Parse(s)
		if !isURL || err != nil || u.Host == "" || len(s) > 2048 {
			return "", "", fmt.Errorf("%q is not a URL starting with http:// or https://", s)
		}
		return s, typ, nil
	case AttrTimestamp:
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return "", "", fmt.Errorf("%q is not an RFC 3339 time or epoch milliseconds (TIMESTAMP)", s)
		}
		return t.UTC().Format(time.RFC3339Nano), typ, nil
	}
	return "", "", fmt.Errorf("%q is text, not a NUMBER", s)
}

// oneDecimal reports whether a JSON number literal has at most one decimal place.
func oneDecimal(lit string) bool {
	if strings.ContainsAny(lit, "eE") {
		f, _ := strconv.ParseFloat(lit, 64)
		return math.Abs(f*10-math.Round(f*10)) < 1e-9
	}
	dot := strings.IndexByte(lit, '.')
	return dot < 0 || len(lit)-dot-1 <= 1
}

// NormalizePhone turns "+49 170 123-4567", "0049 (170) 1234567", "+49 (0)170 1234567"
// and the like into digits only (E.164 without '+'); false when the result is not 7 to
// 15 digits.
func NormalizePhone(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "00") {
		s = s[2:]
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '(' && b.Len() > 0 && strings.HasPrefix(s[i:], "(0)"):
			// "+49 (0)170 …": the national trunk prefix after the country code is not
			// part of the E.164 number.
			i += len("(0)") - 1
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/':
		default:
			return "", false
		}
	}
	d := b.String()
	return d, len(d) >= 7 && len(d) <= 15 && d[0] != '0'
}

// OffThreadAPIKey returns the api_key of an off-thread body, flat or nested, without
// validating anything else, so that a caller without the key learns nothing from
// validation errors.
func OffThreadAPIKey(body []byte) string {
	if key := apiKeyOf(body); key != "" {
		return key
	}
	var b struct {
		Nested json.RawMessage `json:"external_event"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return apiKeyOf(b.Nested)
}

// apiKeyOf returns the api_key string of a JSON object, or "". Each level is decoded on
// its own so that a malformed sibling (external_event: 5) does not hide a valid key: the
// caller then gets the 400 for that field, not a 401.
func apiKeyOf(obj []byte) string {
	var b struct {
		APIKey json.RawMessage `json:"api_key"`
	}
	var key string
	if json.Unmarshal(obj, &b) != nil || json.Unmarshal(b.APIKey, &key) != nil {
		return ""
	}
	return key
}
