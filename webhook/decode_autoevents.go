package webhook

import (
	"math"
	"strconv"
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/currency"
)

// waAutoEvent is an element of automatic_events[] (Cloud API webhook field automatic_events):
// a lead or a purchase that Meta detected in the thread a Click-to-WhatsApp ad started.
type waAutoEvent struct {
	ID         string     `json:"id"` // the message in which it was detected
	EventName  string     `json:"event_name"`
	Timestamp  jsonScalar `json:"timestamp"` // a JSON number here, unlike the messages' strings
	CtwaClid   string     `json:"ctwa_clid"`
	CustomData struct {
		Currency string     `json:"currency"`
		Value    jsonScalar `json:"value"` // the amount ×1000: 25000 is 25.00
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
	case e.Timestamp == "":
		return rejectf(rejectBadTime, "timestamp is missing")
	}
	t, err := parseUnix("timestamp", string(e.Timestamp))
	if err != nil {
		return err
	}
	amount, err := parseMilli("custom_data.value", string(e.CustomData.Value))
	if err != nil {
		return err
	}
	cur := e.CustomData.Currency
	if e.EventName == AutoEventPurchase && !currency.Valid(cur) {
		return rejectf(rejectBadMetadata, "custom_data.currency %q is not an ISO 4217 code", cur)
	}
	d.items = append(d.items, Item{
		Kind: KindAutoEvent, Format: FormatCloud, AppID: appID, ID: e.ID, Time: t,
		EventName: e.EventName, Amount: amount, Currency: cur,
		Referral: Referral{CtwaClid: e.CtwaClid},
	})
	return nil
}

// parseMilli parses an amount Meta sends multiplied by 1000; empty is none.
func parseMilli(field, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, rejectf(rejectBadMetadata, "%s %s is not a finite amount ×1000 of at least 0", field, s)
	}
	return n / 1000, nil
}

// jsonScalar is the text of a JSON number or string (without its quotes; null is
// empty), so that a value of either type is validated with the item, not refused with
// the whole webhook by the JSON decoder.
type jsonScalar string

func (s *jsonScalar) UnmarshalJSON(b []byte) error {
	if t := string(b); t != "null" {
		*s = jsonScalar(strings.Trim(t, `"`))
	} else {
		*s = ""
	}
	return nil
}
