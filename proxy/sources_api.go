package proxy

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// sourceStats is one row of the "compare sources" view (SPEC §6.3).
type sourceStats struct {
	Type            string         `json:"type"`
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Phrase          string         `json:"phrase,omitempty"`
	Direction       string         `json:"direction"`
	Sessions        int64          `json:"sessions"`
	UniqueUsers     int64          `json:"unique_users"`
	Engaged         int64          `json:"engaged"`
	Converted       int64          `json:"converted"`
	OffThreadCount  int64          `json:"offthread_count"`
	Revenue         float64        `json:"revenue"`
	Currency        string         `json:"currency"`
	OtherCurrencies []engine.Money `json:"other_currencies,omitempty"`
	Spend           float64        `json:"spend"`
	ROAS            float64        `json:"roas"`
	CostPerLead     float64        `json:"cost_per_lead"`
}

// listSources answers every source seen in the range — ad, post, custom, campaign,
// organic, unattributed — plus the custom sources defined for the app, with the funnel
// and money columns; most sessions first.
func (e *eventsAPI) listSources(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	from, to := q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	app, days := p.Get("app_id"), e.rec.DaysOf(from, to)
	totals, err := e.rec.SourceTotals(app, days)
	if err == nil {
		err = e.addSpend(totals, app, days)
	}
	var headlines map[engine.SourceRef]string
	if err == nil {
		headlines, err = e.rec.ReferralNames(app)
	}
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	for _, s := range e.rec.Definitions().Sources {
		if ref := (engine.SourceRef{Type: engine.SourceCustom, ID: s.ID}); s.AppID == app && totals[ref] == nil {
			totals[ref] = engine.NewTotals()
		}
	}
	rows := make([]sourceStats, 0, len(totals))
	for ref, t := range totals {
		rows = append(rows, e.sourceStatsRow(ref, t, headlines))
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Sessions != rows[j].Sessions {
			return rows[i].Sessions > rows[j].Sessions
		}
		return rows[i].Type+rows[i].ID < rows[j].Type+rows[j].ID
	})
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(rows), Limit: len(rows)})
}

// addSpend adds the imported spend of each ad source, and lists the imported ads of app
// that had delivery in the range but brought no session: what they cost shows too.
func (e *eventsAPI) addSpend(totals map[engine.SourceRef]*engine.Totals, app string, days engine.Days) error {
	for ref, t := range totals {
		if ref.Type == engine.SourceAd {
			if err := e.rec.AddDelivery(t, ref.ID, days); err != nil {
				return err
			}
		}
	}
	for id, ad := range e.rec.Catalog().Ads {
		ref := engine.SourceRef{Type: engine.SourceAd, ID: id}
		if ad.AppID != app || totals[ref] != nil {
			continue
		}
		t := engine.NewTotals()
		if err := e.rec.AddDelivery(t, id, days); err != nil {
			return err
		}
		if t.Impressions > 0 || t.Clicks > 0 || t.Spend > 0 {
			totals[ref] = t
		}
	}
	return nil
}

func (e *eventsAPI) sourceStatsRow(ref engine.SourceRef, t *engine.Totals, headlines map[engine.SourceRef]string) sourceStats {
	cat := e.rec.Catalog()
	currency := ""
	if ad, ok := cat.Ads[ref.ID]; ok && ref.Type == engine.SourceAd {
		currency = cat.Currency(ad.AdAccountID)
	}
	cur, revenue, others := t.SplitRevenue(currency)
	row := sourceStats{Type: ref.Type, ID: ref.ID, Direction: "incoming", Sessions: t.Sessions,
		UniqueUsers: t.UniqueUsers(), Engaged: t.Engaged, Converted: t.Converted, OffThreadCount: t.OffCount,
		Revenue: engine.Round2(revenue), Currency: cur, OtherCurrencies: others, Spend: engine.Round2(t.Spend),
		ROAS: engine.Ratio(revenue, t.Spend), CostPerLead: engine.Ratio(t.Spend, float64(t.UniqueUsers()))}
	row.Name, row.Phrase = e.sourceName(ref, headlines)
	if ref.Type == engine.SourceCampaign {
		row.Direction = "outgoing"
	}
	return row
}

// sourceName names a source for people: the ad's name or, for an ad no import placed
// yet and for a post, its referral headline (headlines); the custom source's name; the
// campaign tag.
func (e *eventsAPI) sourceName(ref engine.SourceRef, headlines map[engine.SourceRef]string) (name, phrase string) {
	switch ref.Type {
	case engine.SourceAd, engine.SourcePost:
		if ad, ok := e.rec.Catalog().Ads[ref.ID]; ok && ref.Type == engine.SourceAd {
			return ad.Name, ""
		}
		if h, ok := headlines[ref]; ok {
			return h, ""
		}
		return ref.Type + " " + ref.ID, ""
	case engine.SourceCustom:
		for _, s := range e.rec.Definitions().Sources {
			if s.ID == ref.ID {
				return s.Name, s.Phrase
			}
		}
	case engine.SourceCampaign:
		return ref.ID, ""
	case engine.SourceOrganic:
		return "Organic", ""
	case engine.SourceUnattributed:
		return "Unattributed off-thread events", ""
	}
	return ref.ID, ""
}

// contactRow is one lead of the contacts export.
type contactRow struct {
	phone, userID string
	first, last   int64
	sources       []string
	sourceStart   map[string]int64 // first session start by source, to list sources in that order
	sessions      int
	revenue       map[string]float64
	hasType       bool
}

// exportContacts streams a CSV of leads for a Meta custom audience (SPEC §6.4): phone in
// E.164 with '+', first and last session, sources, sessions and revenue.
func (e *eventsAPI) exportContacts(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	from, to := q.dateRange(false)
	sourceID, eventType := q.str("source_id"), q.str("event_type")
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	leads, err := e.contacts(p.Get("app_id"), from, to, sourceID, eventType)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	header := []string{"phone", "user_id", "first_seen", "last_seen", "source", "sessions", "revenue"}
	streamCSV(ctx, "contacts.csv", header, func(write func([]string) bool) error {
		for _, c := range leads {
			if !write([]string{c.phone, c.userID, e.format(c.first), e.format(c.last),
				strings.Join(c.sources, " "), strconv.Itoa(c.sessions), revenueCell(c.revenue)}) {
				break
			}
		}
		return nil
	})
}

// contacts collects the leads whose sessions started in [from, to), filtered by source
// (id, or type:id as the source column shows it) and by an event type produced in one of
// those sessions.
func (e *eventsAPI) contacts(app string, from, to int64, sourceID, eventType string) ([]*contactRow, error) {
	byLead := map[string]*contactRow{}
	selected := map[string]bool{} // ids of the sessions that passed the filters
	err := e.rec.Sessions(app, func(s *storage.Session) bool {
		if s.Start < from || s.Start >= to ||
			(sourceID != "" && sourceID != s.SourceID && sourceID != sourceLabel(s.SourceType, s.SourceID)) {
			return true
		}
		selected[s.ID] = true
		c := byLead[s.Lead]
		if c == nil {
			c = &contactRow{first: s.Start, revenue: map[string]float64{}, sourceStart: map[string]int64{}}
			if s.LeadIsBSUID {
				c.userID = s.Lead
			} else {
				c.phone = "+" + s.Lead
			}
			byLead[s.Lead] = c
		}
		c.first, c.last = min(c.first, s.Start), max(c.last, s.Last)
		c.sessions++
		if src := sourceLabel(s.SourceType, s.SourceID); !slices.Contains(c.sources, src) {
			c.sources = append(c.sources, src)
			c.sourceStart[src] = s.Start
		} else {
			c.sourceStart[src] = min(c.sourceStart[src], s.Start)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	err = e.rec.Events(engine.EventFilter{AppID: app, From: from, To: 1 << 62}, func(ev *storage.Event) bool {
		c := byLead[ev.Lead]
		if c == nil {
			return true
		}
		if ev.Type == eventType && selected[ev.ConversationID] {
			c.hasType = true
		}
		if amount, currency, ok := offThreadRevenue(ev); ok && amount > 0 {
			c.revenue[currency] += amount
		}
		return true
	})
	out := make([]*contactRow, 0, len(byLead))
	for _, c := range byLead {
		if eventType == "" || c.hasType {
			// Sessions come in id order, which is no order: list the sources as the
			// lead met them.
			slices.SortFunc(c.sources, func(a, b string) int {
				return cmp.Or(cmp.Compare(c.sourceStart[a], c.sourceStart[b]), strings.Compare(a, b))
			})
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].first < out[j].first || (out[i].first == out[j].first && out[i].phone+out[i].userID < out[j].phone+out[j].userID)
	})
	return out, err
}

// offThreadRevenue reads the revenue of an off-thread event row ("49.9 EUR").
func offThreadRevenue(ev *storage.Event) (float64, string, bool) {
	if engine.IsEventType(ev.Type) {
		return 0, "", false
	}
	amount, currency, ok := strings.Cut(ev.TypeValue, " ")
	f, err := strconv.ParseFloat(amount, 64)
	return f, currency, ok && err == nil && engine.IsCurrency(currency)
}

// revenueCell writes revenue by currency, in currency order: "49.90 EUR; 30.00 USD".
func revenueCell(m map[string]float64) string {
	currencies := make([]string, 0, len(m))
	for c := range m {
		currencies = append(currencies, c)
	}
	sort.Strings(currencies)
	parts := make([]string, 0, len(m))
	for _, c := range currencies {
		parts = append(parts, strconv.FormatFloat(engine.Round2(m[c]), 'f', 2, 64)+" "+c)
	}
	return strings.Join(parts, "; ")
}

// sourceLabel is "type:id", or the type alone for sources without id (organic).
func sourceLabel(typ, id string) string {
	if id == "" {
		return typ
	}
	return typ + ":" + id
}
