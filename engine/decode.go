package engine

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
	body      webhookBody
	sinchMeta sinchMetadata
}

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
	case b.sinchBody.Message.ChannelIdentity != (sinchChannelIdentity{}):
		return FormatSinch
	case len(b.Contacts) > 0 || len(b.Messages) > 0 || len(b.Statuses) > 0:
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
// An unknown payload returns FormatUnknown; a broken one returns its format (as far as it
// could be read) and an error, and no items.
func (d *Decoder) Decode(body []byte, defaultAppID string) (Format, []Item, error) {
	// Drop the previous call's strings, which would keep its body alive.
	clear(d.items)
	d.items = d.items[:0]

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
		err = d.appendCloud(&b.cloudBody)
	case FormatOnPrem:
		err = d.appendWA(FormatOnPrem, defaultAppID, b.Contacts, b.Messages, b.Statuses)
	case FormatSinch:
		err = d.appendSinch(&b.sinchBody)
	case FormatYCloud:
		err = d.appendYCloud(&b.ycloudBody)
	default:
		err = errors.New(`payload is of no known format: it has no "object":"whatsapp_business_account" ` +
			`(cloud api), no top-level messages, statuses or contacts (on-premises api), ` +
			`no message.channel_identity (sinch) and no "type":"whatsapp.…" (ycloud)`)
	}
	if err != nil {
		return f, nil, err
	}
	return f, d.items, nil
}

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
		return "", false, fmt.Errorf("%s %q is not a phone number", phoneField, phone)
	}
	if userID != "" {
		return userID, true, nil
	}
	return "", false, fmt.Errorf("%s is missing and no business-scoped user id is given", phoneField)
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
		return 0, fmt.Errorf("%s %q is not unix seconds", field, s)
	}
	return t, nil
}

// parseRFC3339 parses the times of Sinch and YCloud to unix seconds.
func parseRFC3339(field, s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an RFC 3339 time", field, s)
	}
	return t.Unix(), nil
}
