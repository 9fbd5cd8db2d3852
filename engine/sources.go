package engine

import (
	"cmp"
	"slices"
	"strings"
)

// SourceStats is one row of the "compare sources" view (SPEC §6.3): a source's funnel
// and money columns.
type SourceStats struct {
	Type            string  `json:"type"`
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Phrase          string  `json:"phrase,omitempty"`
	Direction       string  `json:"direction"`
	Sessions        int64   `json:"sessions"`
	UniqueUsers     int64   `json:"unique_users"`
	Engaged         int64   `json:"engaged"`
	Converted       int64   `json:"converted"`
	OffThreadCount  int64   `json:"offthread_count"`
	Revenue         float64 `json:"revenue"`
	Currency        string  `json:"currency"`
	OtherCurrencies []Money `json:"other_currencies,omitempty"`
	Spend           float64 `json:"spend"`
	ROAS            float64 `json:"roas"`
	CostPerLead     float64 `json:"cost_per_lead"`
}

// SourceStats lists every source of app seen in [from, to) — ad, post, custom, campaign,
// organic, unattributed — with the imported ads that had delivery but brought no session,
// and the custom sources defined for app; most sessions first, then by type and id.
func (r *Recorder) SourceStats(app string, from, to int64) ([]SourceStats, error) {
	days := r.DaysOf(from, to)
	totals, err := r.SourceTotals(app, days)
	if err == nil {
		err = r.addSpend(totals, app, days)
	}
	var headlines map[SourceRef]string
	if err == nil {
		headlines, err = r.ReferralNames(app)
	}
	if err != nil {
		return nil, err
	}
	cat, defs := r.catalog.Load(), r.defs.Load()
	for _, s := range defs.Sources {
		if ref := (SourceRef{Type: SourceCustom, ID: s.ID}); s.AppID == app && totals[ref] == nil {
			totals[ref] = newTotals()
		}
	}
	rows := make([]SourceStats, 0, len(totals))
	for ref, t := range totals {
		row := newSourceStats(ref, t, sourceCurrency(ref, cat))
		row.Name, row.Phrase = sourceName(ref, cat, defs, headlines)
		rows = append(rows, row)
	}
	sortSourceStats(rows)
	return rows, nil
}

// addSpend adds the imported spend of each ad source, and lists the imported ads of app
// that had delivery in the range but brought no session: what they cost shows too.
func (r *Recorder) addSpend(totals map[SourceRef]*Totals, app string, days Days) error {
	for ref, t := range totals {
		if ref.Type == SourceAd {
			if err := r.addDelivery(into(t), ref.ID, days); err != nil {
				return err
			}
		}
	}
	for id, ad := range r.catalog.Load().Ads {
		ref := SourceRef{Type: SourceAd, ID: id}
		if ad.AppID != app || totals[ref] != nil {
			continue
		}
		t := newTotals()
		if err := r.addDelivery(into(t), id, days); err != nil {
			return err
		}
		if t.Impressions > 0 || t.Clicks > 0 || t.Spend > 0 {
			totals[ref] = t
		}
	}
	return nil
}

// sourceCurrency is the reporting currency of a source: its ad account's for an
// imported ad, else "" (the first currency its revenue came in).
func sourceCurrency(ref SourceRef, cat *Catalog) string {
	if ad, ok := cat.Ads[ref.ID]; ok && ref.Type == SourceAd {
		return cat.Currency(ad.AdAccountID)
	}
	return ""
}

// newSourceStats computes a source's row from its totals: revenue in currency (others
// apart), ROAS as revenue per spend and cost per lead as spend per unique user. A
// campaign is an outgoing source (the business wrote first), every other incoming.
func newSourceStats(ref SourceRef, t *Totals, currency string) SourceStats {
	cur, revenue, others := t.SplitRevenue(currency)
	row := SourceStats{Type: ref.Type, ID: ref.ID, Direction: "incoming", Sessions: t.Sessions,
		UniqueUsers: t.UniqueUsers(), Engaged: t.Engaged, Converted: t.Converted, OffThreadCount: t.OffCount,
		Revenue: Round2(revenue), Currency: cur, OtherCurrencies: others, Spend: Round2(t.Spend),
		ROAS: Ratio(revenue, t.Spend), CostPerLead: Ratio(t.Spend, float64(t.UniqueUsers()))}
	if ref.Type == SourceCampaign {
		row.Direction = "outgoing"
	}
	return row
}

// sourceName names a source for people: the ad's name or, for an ad no import placed
// yet and for a post, its referral headline (headlines); the custom source's name and
// phrase; the campaign tag.
func sourceName(ref SourceRef, cat *Catalog, defs *Definitions, headlines map[SourceRef]string) (name, phrase string) {
	switch ref.Type {
	case SourceAd, SourcePost:
		if ad, ok := cat.Ads[ref.ID]; ok && ref.Type == SourceAd {
			return ad.Name, ""
		}
		if h, ok := headlines[ref]; ok {
			return h, ""
		}
		return ref.Type + " " + ref.ID, ""
	case SourceCustom:
		for _, s := range defs.Sources {
			if s.ID == ref.ID {
				return s.Name, s.Phrase
			}
		}
	case SourceCampaign:
		return ref.ID, ""
	case SourceOrganic:
		return "Organic", ""
	case SourceUnattributed:
		return "Unattributed off-thread events", ""
	}
	return ref.ID, ""
}

// sortSourceStats orders rows by sessions, most first, then by type and id.
func sortSourceStats(rows []SourceStats) {
	slices.SortFunc(rows, func(a, b SourceStats) int {
		if a.Sessions != b.Sessions {
			return cmp.Compare(b.Sessions, a.Sessions)
		}
		return strings.Compare(a.Type+a.ID, b.Type+b.ID)
	})
}
