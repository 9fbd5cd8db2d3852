package engine

import (
	"cmp"
	"slices"
	"strings"
	"time"

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
	// PurchasesInRange counts those of Purchases that happened in the range too: the
	// sources report counts them there, with the purchases of older sessions.
	PurchasesInRange int64 `json:"purchases_in_range"`
}

// Funnel follows the sessions of app that started in [from, to), by source, to what
// they led to up to now: one pass over the app's events from a session window before
// from on (a message that arrived out of order can have been placed before its
// session's first one). Sources without a session in the range are left out
// (unattributed off-thread events belong to none). Most sessions first, then by type
// and id.
func (r *Recorder) Funnel(app string, from, to int64) ([]FunnelRow, error) {
	f := funnelCount{rows: map[SourceRef]*FunnelRow{}, sessions: map[string]*FunnelRow{}, purchased: map[string]bool{},
		revenue: map[*FunnelRow]map[string]float64{}, pending: map[string][]kv.Event{}, outside: map[string]bool{}}
	start := from - int64(r.cfg.SessionWindow/time.Second)
	if from <= 0 || start > from {
		start = from
	}
	f.to = to
	err := r.Events(EventFilter{AppID: app, From: start, To: 1 << 62}, func(ev *kv.Event) bool {
		f.add(ev, from, to)
		return true
	})
	out := make([]FunnelRow, 0, len(f.rows))
	for _, row := range f.rows {
		for cur, amount := range f.revenue[row] {
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

// funnelCount is the state of one Funnel pass.
type funnelCount struct {
	rows      map[SourceRef]*FunnelRow
	sessions  map[string]*FunnelRow // conversation id → its source's row, for sessions of the range
	purchased map[string]bool       // sessions with an off-thread event
	revenue   map[*FunnelRow]map[string]float64
	// pending holds the events read before their session's conversation event (placed
	// out of order), until it comes; outside the sessions known to be of another range.
	pending map[string][]kv.Event
	outside map[string]bool
	to      int64 // the end of the range
}

func (f *funnelCount) add(ev *kv.Event, from, to int64) {
	conv := ev.ConversationID
	if conv == "" || f.outside[conv] {
		return // an unattributed event, or one of a session of another range
	}
	if ev.Type == TypeConversation {
		if ev.Time < from || ev.Time >= to {
			f.outside[conv] = true
			delete(f.pending, conv)
			return
		}
		ref := SourceRef{ev.SourceType, ev.SourceID}
		row := f.rows[ref]
		if row == nil {
			row = &FunnelRow{Type: ref.Type, ID: ref.ID, Revenue: []Money{}}
			f.rows[ref] = row
		}
		row.Sessions++
		f.sessions[conv] = row
		for i := range f.pending[conv] {
			f.count(row, &f.pending[conv][i])
		}
		delete(f.pending, conv)
		return
	}
	if row := f.sessions[conv]; row != nil {
		f.count(row, ev)
	} else if ev.Type == TypeEngagement || ev.Type == TypeConverted || !IsEventType(ev.Type) {
		f.pending[conv] = append(f.pending[conv], *ev)
	}
}

// count adds an event of a session of the range to its source's row.
func (f *funnelCount) count(row *FunnelRow, ev *kv.Event) {
	switch {
	case ev.Type == TypeEngagement:
		row.Engaged++
	case ev.Type == TypeConverted:
		row.Converted++
	case !IsEventType(ev.Type): // an off-thread event credited to the session
		row.Purchases++
		if ev.Time < f.to {
			row.PurchasesInRange++
		}
		if !f.purchased[ev.ConversationID] {
			f.purchased[ev.ConversationID] = true
			row.Purchasers++
		}
		if ev.Amount > 0 {
			if f.revenue[row] == nil {
				f.revenue[row] = map[string]float64{}
			}
			f.revenue[row][ev.Currency] += ev.Amount
		}
	}
}
