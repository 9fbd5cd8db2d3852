// Package webhook decodes the webhook bodies of the four payload formats (Meta's Cloud
// API, the On-Premises API, Sinch, YCloud; Meta's automatic events) into Items: pure
// functions of the bytes, validated item by item, without allocating once warmed up. The
// engine records the Items (engine/doc.go has the whole path of a webhook).
package webhook

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Decoder turns webhook bodies into Items (SPEC §3.4). It keeps its decode target and its
// item slice between calls, so that a warmed-up Decoder decodes without allocating.
// It is not safe for concurrent use: callers pool Decoders.
type Decoder struct {
	items     []Item
	rejects   []Rejection
	body      webhookBody
	sinchMeta sinchMetadata
}

// Rejection is an item of a webhook that failed validation. Decoding is per item: the
// rejected one is skipped and counted, every other item of the webhook is recorded.
type Rejection struct {
	Reason string // metric label (reason of ctwa_sidecar_webhook_items_total)
	Err    error  // names the item, the field and the rule
}

// Reasons an item is rejected.
const (
	rejectMissingID     = "missing_id"
	rejectMissingType   = "missing_type"
	rejectMissingStatus = "missing_status"
	rejectBadApp        = "bad_app"
	rejectBadLead       = "bad_lead"
	rejectBadTime       = "bad_timestamp"
	rejectBadMetadata   = "bad_metadata"
	RejectOverLimit     = "over_limit" // also the engine's, for an item too large for the log
)

// RejectReasons are every reason an item is rejected for: metric labels, each counted
// from start so that a rate query finds the series.
var RejectReasons = []string{rejectMissingID, rejectMissingType, rejectMissingStatus, rejectBadApp,
	rejectBadLead, rejectBadTime, rejectBadMetadata, RejectOverLimit}

// itemError is why one item was rejected; wrapping it in the item's path keeps the reason.
type itemError struct {
	reason string
	err    error
}

func (e *itemError) Error() string { return e.err.Error() }
func (e *itemError) Unwrap() error { return e.err }

func rejectf(reason, format string, args ...any) error {
	return &itemError{reason: reason, err: fmt.Errorf(format, args...)}
}

// reject notes a rejected item; err carries its path (e.g. "messages[1].type is missing").
func (d *Decoder) reject(err error) {
	reason := rejectBadMetadata
	var ie *itemError
	if errors.As(err, &ie) {
		reason = ie.reason
	}
	d.rejects = append(d.rejects, Rejection{Reason: reason, Err: err})
}

// prefixRejects puts path before the errors of the rejections from index n on, for the
// items of a nested part of the body (a Cloud API change).
func (d *Decoder) prefixRejects(n int, path string, args ...any) {
	for i := n; i < len(d.rejects); i++ {
		d.rejects[i].Err = fmt.Errorf(path+"%w", append(args, d.rejects[i].Err)...)
	}
}

// Rejections returns the items the last Decode rejected; valid until the next call.
func (d *Decoder) Rejections() []Rejection { return d.rejects }

// webhookBody has the top-level fields of every format. Their names do not collide, so one
// decode reads a body of any format, and the format is told from what it found: no scan
// or extra parse is needed to detect it.
type webhookBody struct {
	cloudBody
	onpremBody
	sinchBody
	ycloudBody
}

func (b *webhookBody) reset() {
	b.cloudBody.reset()
	b.onpremBody.reset()
	b.sinchBody = sinchBody{}
	b.ycloudBody = ycloudBody{}
}

// format tells the format of b by the fields that only it has (SPEC §3.4).
func (b *webhookBody) format() Format {
	switch {
	case b.Object == "whatsapp_business_account":
		return FormatCloud
	case strings.HasPrefix(b.Type, "whatsapp."):
		return FormatYCloud
	case b.sinchBody.isSinch():
		return FormatSinch
	case len(b.Contacts) > 0 || len(b.Messages) > 0 || len(b.Statuses) > 0 || len(b.Errors) > 0:
		return FormatOnPrem
	}
	return FormatUnknown
}

// Decode detects the format of body and decodes its messages and statuses. defaultAppID is
// the app of payloads that name none (On-Premises API: the sidecar's -app-id).
//
// The returned items belong to d and are valid until the next call of Decode; their strings
// alias body (or d), so body must not change while they are used. Clone what outlives that.
// A payload of a known format that carries nothing to record returns no items and no error.
// Items that fail validation are left out and listed by Rejections.
// An unknown payload returns FormatUnknown; one that is not JSON of its format returns its
// format (as far as it could be read) and an error, and no items.
func (d *Decoder) Decode(body []byte, defaultAppID string) (Format, []Item, error) {
	// Drop the previous call's strings, which would keep its body alive.
	clear(d.items)
	d.items = d.items[:0]
	clear(d.rejects)
	d.rejects = d.rejects[:0]

	b := &d.body
	b.reset()
	err := unmarshal(body, b)
	f := b.format()
	switch {
	case err != nil && f == FormatUnknown:
		return f, nil, fmt.Errorf("cannot decode payload: %w", err)
	case err != nil:
		return f, nil, fmt.Errorf("cannot decode %s payload: %w", f, err)
	}
	switch f {
	case FormatCloud:
		d.appendCloud(&b.cloudBody)
	case FormatOnPrem:
		d.appendOnPrem(&b.onpremBody, defaultAppID)
	case FormatSinch:
		d.appendSinch(&b.sinchBody)
	case FormatYCloud:
		d.appendYCloud(&b.ycloudBody)
	default:
		return f, nil, errors.New(`payload is of no known format: it has no "object":"whatsapp_business_account" ` +
			`(cloud api), no top-level messages, statuses, contacts or errors (on-premises api), ` +
			`no message, delivery report or event of an app_id (sinch) and no "type":"whatsapp.…" (ycloud)`)
	}
	return f, d.items, nil
}

// ignore appends a recognized item that records nothing.
func (d *Decoder) ignore(f Format, appID, reason string) {
	d.items = append(d.items, Item{Kind: KindIgnored, Format: f, AppID: appID, Reason: reason})
}

// Reasons an item is recognized and ignored (SPEC §3.4): none of them is the lead talking.
const (
	IgnoreSystem         = "system"          // a system message other than a number change
	IgnoreNumberChange   = "number_change"   // user_changed_number: linked, not a message
	IgnoreEdit           = "edit"            // the lead edited an earlier message
	IgnoreRevoke         = "revoke"          // the lead deleted an earlier message
	IgnoreGroupStatus    = "group_status"    // a status of a message sent to a group (Groups API)
	IgnoreErrors         = "errors"          // an errors-only notification
	IgnoreDeliveryReport = "delivery_report" // Sinch delivery report of a message or event
	IgnoreEvent          = "event"           // other callbacks: Sinch events, YCloud non-message events
	IgnoreOutbound       = "outbound"        // an echo of a message the business sent
	IgnoreOtherChannel   = "other_channel"   // a Sinch message of another channel than WhatsApp
)

// IgnoreReasons are every reason an item is recognized and ignored for (metric labels).
var IgnoreReasons = []string{IgnoreSystem, IgnoreNumberChange, IgnoreEdit, IgnoreRevoke, IgnoreGroupStatus,
	IgnoreErrors, IgnoreDeliveryReport, IgnoreEvent, IgnoreOutbound, IgnoreOtherChannel}

// unmarshal decodes data into v. Every JSON call of the package goes through here, so the
// library can be swapped in one place. UnmarshalOf with DecodeNoCopyString decodes without
// allocating: strings without escapes alias data, so v must not outlive data.
func unmarshal[T any](data []byte, v *T) error {
	return json.UnmarshalOf(data, v, json.DecodeNoCopyString())
}

// resetElems resets the used elements of s and empties it. The arrays of s and of the
// elements' own slices are kept, so the next decode fills them instead of allocating; the
// decoder writes into elements past the length too, which are clean since their reset.
func resetElems[T any, P interface {
	*T
	reset()
}](s []T) []T {
	for i := range s {
		P(&s[i]).reset()
	}
	return s[:0]
}

// resolveLead returns the lead of a message: phone as digits only, or else the BSUID
// userID. phoneField names phone in errors.
func resolveLead(phoneField, phone, userID string) (lead string, isBSUID bool, err error) {
	if phone != "" {
		if p, ok := normalizePhone(phone); ok {
			return p, false, nil
		}
		// A user without a phone (usernames, 2026) may come with the BSUID in the phone field.
		if looksLikeBSUID(phone) {
			return phone, true, nil
		}
		return "", false, rejectf(rejectBadLead, "%s %q is not a phone number", phoneField, phone)
	}
	if userID != "" {
		return userID, true, nil
	}
	return "", false, rejectf(rejectBadLead, "%s is missing and no business-scoped user id is given", phoneField)
}

// normalizePhone returns s as digits only (E.164 without '+'). The common forms, all digits
// or digits after one '+', are returned as substrings without a copy; separators (spaces,
// dashes, parentheses) cost one. Anything else is not a phone.
func normalizePhone(s string) (string, bool) {
	if t := strings.TrimPrefix(s, "+"); isDigits(t) {
		return t, t != ""
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' || c == ' ' || c == '-' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// looksLikeBSUID reports whether s has the form of a business-scoped user id: a two-letter
// country code, a dot and alphanumerics, e.g. "US.13491208655302741918" or "US.ENT.1181…".
func looksLikeBSUID(s string) bool {
	if len(s) < 4 || !isUpper(s[0]) || !isUpper(s[1]) || s[2] != '.' {
		return false
	}
	for i := 3; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || isUpper(c) || c == '.') {
			return false
		}
	}
	return true
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// parseUnix parses the unix seconds of the Cloud and On-Premises APIs, which are strings.
func parseUnix(field, s string) (int64, error) {
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil || t < 0 {
		return 0, rejectf(rejectBadTime, "%s %q is not unix seconds", field, s)
	}
	return t, plausibleTime(field, t)
}

// parseRFC3339 parses the times of Sinch and YCloud to unix seconds.
func parseRFC3339(field, s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, rejectf(rejectBadTime, "%s %q is not an RFC 3339 time", field, s)
	}
	return t.Unix(), plausibleTime(field, t.Unix())
}

// Bounds of a plausible message time: WhatsApp did not exist before 2009, and a clock
// that runs more than a day ahead of this one is broken. A time outside would open real
// sessions in 1970 or in the year 5138, and dates the API cannot write.
const (
	minMessageTime = 1230768000 // 2009-01-01T00:00:00Z
	maxClockAhead  = 24 * 60 * 60
)

func plausibleTime(field string, t int64) error {
	switch {
	case t < minMessageTime:
		return rejectf(rejectBadTime, "%s %d is before 2009-01-01", field, t)
	case t > time.Now().Unix()+maxClockAhead:
		return rejectf(rejectBadTime, "%s %d is more than a day ahead of the clock", field, t)
	}
	return nil
}
