package engine

// Conversions back to Meta (SPEC §9). The materializer derives them from what it
// records, in log order, into an outbox in the store (queueConversion): the first
// message of a CTWA session, a session that becomes converted, an attributed
// off-thread event. Each has an id derived from what caused it, so a replay after
// kill -9 or a refresh finds it already queued and adds nothing. The outbox sender
// (conversions_send.go) delivers them on a goroutine of its own.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Conversion statuses.
const (
	ConversionPending = "pending"
	ConversionSent    = "sent"
	ConversionFailed  = "failed"
	ConversionSkipped = "skipped" // reason no_click_id, unattributed, no_waba or dry_run
	ConversionExpired = "expired" // older than Meta takes (7 days)
)

// ConversionStatuses lists them, for the API's status filter.
var ConversionStatuses = []string{ConversionPending, ConversionSent, ConversionFailed, ConversionSkipped, ConversionExpired}

// conversionMaxAge is how old an event Meta still takes: an older one fails the whole
// request, so it is never sent.
const conversionMaxAge = 7 * 24 * time.Hour

// Sources of conversions: the keys of -capi-map besides off-thread actions.
const (
	ConversionSourceLead      = "lead"      // first message of a CTWA session
	ConversionSourceConverted = "converted" // the session became converted
)

// MetaEventNames are the event names Meta takes from the business-messaging channel.
var MetaEventNames = []string{"LeadSubmitted", "QualifiedLead", "Purchase", "AddToCart", "InitiateCheckout",
	"ViewContent", "OrderCreated", "OrderShipped", "OrderDelivered", "OrderCanceled", "OrderReturned",
	"CartAbandoned", "RatingProvided", "ReviewProvided"}

// ConversionMap says which Meta event each source is sent as: "lead", "converted" or an
// off-thread action. A source it does not name is not sent.
type ConversionMap map[string]string

// DefaultConversionMap is SPEC §9's default.
func DefaultConversionMap() ConversionMap {
	return ConversionMap{ConversionSourceLead: "LeadSubmitted", ConversionSourceConverted: "QualifiedLead",
		"purchase": "Purchase"}
}

// ParseConversionMap reads "source=EventName,…" over the default map. An empty name
// ("lead=") stops a source from being sent. A name outside Meta's allowlist, or a
// source that is neither lead, converted nor a valid off-thread action, is an error
// naming it.
func ParseConversionMap(s string) (ConversionMap, error) {
	m := DefaultConversionMap()
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		src, name, ok := strings.Cut(part, "=")
		src, name = strings.TrimSpace(src), strings.TrimSpace(name)
		switch {
		case !ok || src == "":
			return nil, fmt.Errorf("%q is not source=EventName", part)
		case name != "" && !slices.Contains(MetaEventNames, name):
			return nil, fmt.Errorf("%q: %q is not an event Meta takes from WhatsApp; use one of %s",
				part, name, strings.Join(MetaEventNames, ", "))
		case src != ConversionSourceConverted && IsEventType(src):
			return nil, fmt.Errorf("%q: %q is a message event type; name lead, converted or an off-thread action such as purchase", part, src)
		}
		if name == "" {
			delete(m, src)
		} else {
			m[src] = name
		}
	}
	return m, nil
}

// String writes m as ParseConversionMap reads it, sources in order.
func (m ConversionMap) String() string {
	parts := make([]string, 0, len(m))
	for src, name := range m {
		parts = append(parts, src+"="+name)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Conversion is one event for Meta and its delivery, as the outbox stores it.
type Conversion struct {
	ID             string  `json:"event_id"`
	Name           string  `json:"event_name"`
	Time           int64   `json:"event_time"` // of the source event, unix seconds
	AppID          string  `json:"app_id"`
	WABA           string  `json:"waba_id,omitempty"` // "" when no webhook of the app named it: -waba-id then
	Lead           string  `json:"lead"`
	Source         string  `json:"source"`          // lead, converted, or the off-thread action
	SourceEventID  string  `json:"source_event_id"` // the message, converted event or off-thread event
	ConversationID string  `json:"conversation_id,omitempty"`
	AdID           string  `json:"ad_id,omitempty"`
	ClickID        string  `json:"ctwa_clid,omitempty"`
	Value          float64 `json:"value,omitempty"`
	Currency       string  `json:"currency,omitempty"`
	Status         string  `json:"status"`
	Reason         string  `json:"reason,omitempty"`
	Attempts       int     `json:"attempts"`
	LastError      string  `json:"last_error,omitempty"`
	ErrorCode      int     `json:"error_code,omitempty"`
	ErrorSubcode   int     `json:"error_subcode,omitempty"`
	Queued         int64   `json:"queued_at"`
	Updated        int64   `json:"updated_at,omitempty"`
	SentAt         int64   `json:"sent_at,omitempty"`
}

// pendingKey is the conversion's key in the outbox: by source-event time, oldest first.
func (c *Conversion) pendingKey() []byte { return kv.PendingConversionKey(c.Time, c.ID) }

// queueConversion puts c in the outbox unless a conversion of its id is there already
// (a replay, a refresh). One without a click id is stored as skipped: Meta keys
// business-messaging conversions by click, and an ad id is no click id.
func (p *placer) queueConversion(b kv.Batch, c *Conversion) error {
	key := kv.ConversionKey(c.ID)
	if _, ok, err := b.Get(key); err != nil || ok {
		return err
	}
	if err := p.resolveWABA(b, c); err != nil {
		return err
	}
	c.Queued, c.Status = time.Now().Unix(), ConversionPending
	switch {
	case c.ConversationID == "":
		c.Status, c.Reason = ConversionSkipped, "unattributed"
	case c.ClickID == "":
		c.Status, c.Reason = ConversionSkipped, "no_click_id"
	case time.Since(time.Unix(c.Time, 0)) > conversionMaxAge:
		c.Status = ConversionExpired
	}
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	b.Set(key, body)
	b.Set(kv.ConversionAppKey(c.AppID, c.Time, c.ID), nil)
	if c.Status == ConversionPending {
		b.Set(c.pendingKey(), nil)
	} else {
		countConversion(c.Status, c.Reason)
	}
	return nil
}

// resolveWABA fills in the WABA of c's app from its webhooks, or remembers it there when
// c has it: an off-thread event names no WABA. The stored one is read once per app into
// the write cache, and written only when it changes.
func (p *placer) resolveWABA(b kv.Batch, c *Conversion) error {
	p.cache.check(b)
	known, cached := p.cache.wabas[c.AppID]
	if !cached {
		v, _, err := b.Get(kv.WABAKey(c.AppID))
		if err != nil {
			return err
		}
		known = string(v)
		p.cache.wabas[strings.Clone(c.AppID)] = known // the app id aliases the log entry
	}
	switch {
	case c.WABA == "":
		c.WABA = known
	case c.WABA != known:
		b.Set(kv.WABAKey(c.AppID), []byte(c.WABA))
		p.cache.wabas[strings.Clone(c.AppID)] = strings.Clone(c.WABA)
	}
	return nil
}

// queueSessionConversion queues the lead or converted conversion of the session in
// p.sess, caused by item it, when source is sent.
func (p *placer) queueSessionConversion(b kv.Batch, source, cause string, it *webhook.Item) error {
	name, ok := p.capi[source]
	if !ok {
		return nil
	}
	c := Conversion{ID: p.id("capi", source, p.sess.ID), Name: name, Time: it.Time, AppID: it.AppID,
		WABA: it.WABA, Lead: it.Lead, Source: source, SourceEventID: cause, ConversationID: p.sess.ID,
		AdID: adOf(&p.sess), ClickID: p.sess.Referral.CtwaClid}
	return p.queueConversion(b, &c)
}

// adOf is the ad a session came from, or "" for other sources (a QR code's id is no ad).
func adOf(s *kv.Session) string {
	if s.SourceType != SourceAd {
		return ""
	}
	return s.SourceID
}

// queueOffThreadConversion queues the conversion of an attributed off-thread event whose
// action is mapped: its value, and the click of the session it is credited to.
func (p *placer) queueOffThreadConversion(b kv.Batch, rec *OffThreadRecord) error {
	name, ok := p.capi[rec.Action]
	if !ok {
		return nil
	}
	c := Conversion{ID: p.id("capi", "offthread", rec.ID), Name: name, Time: rec.Time, AppID: rec.AppID,
		Lead: rec.Lead, Source: rec.Action, SourceEventID: rec.ID, Value: rec.Amount, Currency: rec.Currency}
	if rec.Attributed {
		v, found, err := b.Get(kv.SessionKey(nil, rec.AppID, rec.ConversationID))
		if err != nil {
			return err
		}
		if found {
			s, err := kv.DecodeSession(v)
			if err != nil {
				return err
			}
			c.ConversationID, c.AdID, c.ClickID = s.ID, adOf(&s), s.Referral.CtwaClid
		}
	}
	return p.queueConversion(b, &c)
}

// ConversionFilter selects conversions of an app for the activity log.
type ConversionFilter struct {
	AppID    string
	Status   string // "" for all
	From, To int64  // source-event time, [From, To)
}

// Conversions calls fn for the conversions of f in time order until it returns false.
func (r *Recorder) Conversions(f ConversionFilter, fn func(c *Conversion) bool) error {
	r.settle()
	start := kv.ConversionAppKey(f.AppID, f.From, "")
	end := kv.ConversionAppKey(f.AppID, f.To, "")
	return r.views.ScanRange(start, end, func(key, _ []byte) (bool, error) {
		c, ok, err := r.conversion(kv.ConversionAppID(f.AppID, key))
		if err != nil || !ok || f.Status != "" && c.Status != f.Status {
			return err == nil, err
		}
		return fn(&c), nil
	})
}

// conversion reads a stored conversion by event id.
func (r *Recorder) conversion(id string) (Conversion, bool, error) {
	return getJSON[Conversion](r.views, kv.ConversionKey(id), "conversion", id)
}

// getJSON reads the JSON record at key; kind and id name it in the error of a corrupt one.
func getJSON[T any](s Views, key []byte, kind, id string) (T, bool, error) {
	var rec T
	v, ok, err := s.Get(key)
	if err != nil || !ok {
		return rec, false, err
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, false, fmt.Errorf("corrupt %s %q: %w", kind, id, err)
	}
	return rec, true, nil
}
