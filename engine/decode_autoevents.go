package engine

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// waAutoEvent is an element of automatic_events[] (Cloud API webhook field automatic_events):
// a lead or a purchase that Meta detected in the thread a Click-to-WhatsApp ad started.
type waAutoEvent struct {
	ID         string   `json:"id"` // the message in which it was detected
	EventName  string   `json:"event_name"`
	Timestamp  jsonUnix `json:"timestamp"`
	CtwaClid   string   `json:"ctwa_clid"`
	CustomData struct {
		Currency string    `json:"currency"`
		Value    jsonMilli `json:"value"`
	} `json:"custom_data"`
}

func (e *waAutoEvent) reset() { *e = waAutoEvent{} }

// The event names Meta sends (automatic_events webhook reference).
const (
	AutoEventLead     = "LeadSubmitted"
	AutoEventPurchase = "Purchase"
)

func (d *Decoder) appendAutoEvent(appID string, e *waAutoEvent) error {
	switch {
	case e.ID == "":
		return rejectf(rejectMissingID, "id is missing")
	case e.EventName != AutoEventLead && e.EventName != AutoEventPurchase:
		return rejectf(rejectMissingType, "event_name %q is not %s or %s", e.EventName, AutoEventLead, AutoEventPurchase)
	case e.CtwaClid == "":
		// Ads in WhatsApp Status carry no click id: there is no session to credit.
		return rejectf(rejectMissingID, "ctwa_clid is missing")
	case e.Timestamp.err == nil && e.Timestamp.v == 0:
		return rejectf(rejectBadTime, "timestamp is missing")
	case e.Timestamp.err != nil:
		return rejectf(rejectBadTime, "timestamp %w", e.Timestamp.err)
	}
	if err := plausibleTime("timestamp", e.Timestamp.v); err != nil {
		return err
	}
	switch {
	case e.CustomData.Value.err != nil:
		return rejectf(rejectBadMetadata, "custom_data.value %w", e.CustomData.Value.err)
	}
	cur := e.CustomData.Currency
	if e.EventName == AutoEventPurchase && !IsCurrency(cur) {
		return rejectf(rejectBadMetadata, "custom_data.currency %q is not an ISO 4217 code", cur)
	}
	d.items = append(d.items, Item{
		Kind: KindAutoEvent, Format: FormatCloud, AppID: appID, ID: e.ID, Time: e.Timestamp.v,
		EventName: e.EventName, Amount: e.CustomData.Value.v, Currency: cur,
		Referral: Referral{CtwaClid: e.CtwaClid},
	})
	return nil
}

// jsonUnix is unix seconds sent as a JSON number (automatic_events) or a string (messages).
// A bad value is kept as err, so that one event is rejected, not the webhook.
type jsonUnix struct {
	v   int64
	err error
}

func (u *jsonUnix) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil || t < 0 {
		u.v, u.err = 0, fmt.Errorf("%s is not unix seconds", b)
		return nil
	}
	u.v, u.err = t, nil
	return nil
}

// jsonMilli is an amount Meta sends multiplied by 1000 ("value": 25000 is 25.00), as a
// JSON number or a string; v is the amount itself.
type jsonMilli struct {
	v   float64
	err error
}

func (m *jsonMilli) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		*m = jsonMilli{}
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		m.v, m.err = 0, fmt.Errorf("%s is not a finite amount ×1000 of at least 0", b)
		return nil
	}
	m.v, m.err = n/1000, nil
	return nil
}
