package webhook

import "strings"

// Format is the webhook payload format detected from a body (SPEC §3.4).
type Format uint8

const (
	FormatUnknown Format = iota
	FormatCloud          // Meta Cloud API (also 360dialog Cloud)
	FormatOnPrem         // On-Premises API (also 360dialog on-prem)
	FormatSinch          // Sinch Conversation API
	FormatYCloud         // YCloud
)

// String returns the metric label of the format.
func (f Format) String() string {
	switch f {
	case FormatCloud:
		return "cloud"
	case FormatOnPrem:
		return "onprem"
	case FormatSinch:
		return "sinch"
	case FormatYCloud:
		return "ycloud"
	}
	return "unknown"
}

// ItemKind tells what an item is: a lead's message, a status of a business-sent message,
// or one of the callbacks that are recognized but are not the lead talking (SPEC §3.4).
type ItemKind uint8

const (
	KindMessage      ItemKind = iota + 1 // a message the lead sent
	KindStatus                           // a status (sent/delivered/read/failed) of a business message
	KindIgnored                          // recognized, records nothing: Reason says what it is
	KindEdit                             // the lead edited (or revoked) message EditOf: no new message
	KindNumberChange                     // system notice: Lead now writes from NewLead
	KindAutoEvent                        // Meta's automatic_events: EventName detected in click Referral.CtwaClid's thread
)

// Item is one message or status decoded from a webhook. Strings alias the request body
// until Clone is called: anything that outlives the request must be cloned first.
type Item struct {
	Kind   ItemKind
	Format Format
	AppID  string // phone_number_id (Cloud), -app-id (On-Premises), app_id (Sinch), to digits (YCloud)
	WABA   string // WhatsApp Business Account: entry[].id (Cloud), wabaId (YCloud); "" in the others
	ID     string // message id (wamid) or, for a status, the id of the business message
	Time   int64  // unix seconds from the payload

	// Lead is the phone number as digits only (E.164 without '+'), or the BSUID when the
	// payload carries no phone; LeadIsBSUID tells which.
	Lead        string
	LeadIsBSUID bool

	// Messages.
	Type          string // text, image, video, document, audio, sticker, location, button, interactive, reaction, …
	Text          string // text body, media caption, button text or interactive title
	ButtonPayload string // template quick-reply payload (type "button")
	ReplyKind     string // "button_reply" or "list_reply" for interactive replies
	ReplyID       string // interactive reply id
	ReplyTitle    string // interactive reply title
	ContextID     string // id of the message this one replies to
	Referral      Referral

	// Statuses.
	Status    string // sent, delivered, read, failed
	BizOpaque string // biz_opaque_callback_data of the business message

	// Reason names what an ignored, edit or number-change item is, for metrics
	// (ctwa_sidecar_webhook_items_total{result="ignored",reason}).
	Reason string
	EditOf string // KindEdit: id of the edited or revoked message; Text is its new text
	// EditTime (KindEdit) is the edited message's time, read from its dedupe claim when
	// the edit is logged (0: the log has no such message): the views find the message's
	// record by it without reading the log's claims.
	EditTime int64
	NewLead  string // KindNumberChange: the lead's new number, digits only

	// Automatic events (KindAutoEvent); the click is Referral.CtwaClid.
	EventName string  // LeadSubmitted or Purchase
	Amount    float64 // purchase value (Meta sends it ×1000; this is the real amount)
	Currency  string
}

// Referral is the Click-to-WhatsApp ad referral carried by a lead's first message after a click.
type Referral struct {
	SourceType string // "ad" or "post"
	SourceID   string
	SourceURL  string
	Headline   string
	Body       string
	MediaType  string
	CtwaClid   string
}

// HasReferral reports whether the item carries a CTWA referral.
func (it *Item) HasReferral() bool { return it.Referral.SourceID != "" || it.Referral.CtwaClid != "" }

// Clone returns a copy of it whose strings are copied out of the request body into one
// allocation, for an item that outlives the request.
func (it *Item) Clone() Item {
	c := *it
	fields := c.StringFields()
	OwnStrings(fields[:]...)
	return c
}

// OwnStrings points the strings at copies of their bytes, all in one allocation: a
// record that outlives the buffer its strings alias costs one object for the allocator
// and the garbage collector instead of one per string.
func OwnStrings(ps ...*string) {
	n := 0
	for _, p := range ps {
		n += len(*p)
	}
	if n == 0 {
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range ps {
		b.WriteString(*p)
	}
	all, off := b.String(), 0
	for _, p := range ps {
		*p, off = all[off:off+len(*p)], off+len(*p)
	}
}

// StringFields returns pointers to every string of it: for Clone, and for the engine's
// log, which writes the first LoggedFields of them always, in this order, and WABA (added
// later) only when set.
func (it *Item) StringFields() [25]*string {
	r := &it.Referral
	return [25]*string{
		&it.AppID, &it.ID, &it.Lead, &it.Type, &it.Text, &it.ButtonPayload, &it.ReplyKind,
		&it.ReplyID, &it.ReplyTitle, &it.ContextID, &it.Status, &it.BizOpaque,
		&it.Reason, &it.EditOf, &it.NewLead, &it.EventName, &it.Currency,
		&r.SourceType, &r.SourceID, &r.SourceURL, &r.Headline, &r.Body, &r.MediaType, &r.CtwaClid,
		&it.WABA,
	}
}

// LoggedFields is how many of StringFields every logged item holds; the order of
// StringFields is part of the log's format and must not change.
const LoggedFields = 24
