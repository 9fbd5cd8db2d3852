package engine

import (
	"cmp"
	"slices"
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// FunnelRow is what the sessions of one source that started in a range led to: how many
// engaged and converted, and the off-thread events (purchases, sign-ups) credited to
// them, whenever those happened. Unlike a source's row of the sources report, which
// counts purchases on their own day whatever session they are credited to, every number
// here is of the same sessions: a funnel that cannot grow at its last step because of
// purchases of other sessions.
type FunnelRow struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Sessions  int64  `json:"sessions"`
	Engaged   int64  `json:"engaged"`
	Converted int64  `json:"converted"`
	// Purchasers counts the sessions with at least one off-thread event; Purchases the
	// off-thread events (any action), Revenue their amounts by currency.
	Purchasers int64   `json:"purchasers"`
	Purchases  int64   `json:"purchases"`
	Revenue    []Money `json:"revenue"`
}

// Funnel follows the sessions of app that started in [from, to), by source, to what
// they led to up to now: one pass over the app's events from from on. Sources without a
// session in the range are left out (unattributed off-thread events belong to none).
// Most sessions first, then by type and id.
func (r *Recorder) Funnel(app string, from, to int64) ([]FunnelRow, error) {
	rows := map[SourceRef]*FunnelRow{}
	sessions := map[string]*FunnelRow{} // conversation id → its source's row
	purchased := map[string]bool{}
	revenue := map[SourceRef]map[string]float64{}
	err := r.Events(EventFilter{AppID: app, From: from, To: 1 << 62}, func(ev *kv.Event) bool {
		if ev.Type == TypeConversation {
			if ev.Time >= to {
				return true
			}
			ref := SourceRef{ev.SourceType, ev.SourceID}
			row := rows[ref]
			if row == nil {
				row = &FunnelRow{Type: ref.Type, ID: ref.ID, Revenue: []Money{}}
				rows[ref] = row
			}
			row.Sessions++
			sessions[ev.ConversationID] = row
			return true
		}
		row := sessions[ev.ConversationID]
		if row == nil || ev.ConversationID == "" {
			return true // a session of another range, or none
		}
		switch {
		case ev.Type == TypeEngagement:
			row.Engaged++
		case ev.Type == TypeConverted:
			row.Converted++
		case !IsEventType(ev.Type): // an off-thread event credited to the session
			row.Purchases++
			if !purchased[ev.ConversationID] {
				purchased[ev.ConversationID] = true
				row.Purchasers++
			}
			if ev.Amount > 0 {
				ref := SourceRef{row.Type, row.ID}
				if revenue[ref] == nil {
					revenue[ref] = map[string]float64{}
				}
				revenue[ref][ev.Currency] += ev.Amount
			}
		}
		return true
	})
	out := make([]FunnelRow, 0, len(rows))
	for ref, row := range rows {
		for cur, amount := range revenue[ref] {
			row.Revenue = append(row.Revenue, Money{Currency: cur, Amount: Round2(amount)})
		}
		slices.SortFunc(row.Revenue, func(a, b Money) int { return strings.Compare(a.Currency, b.Currency) })
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b FunnelRow) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.Type+a.ID, b.Type+b.ID))
	})
	return out, err
}
