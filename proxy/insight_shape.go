package proxy

import (
	"sort"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// insight is the "insight" object of the Signals API (seed 002), with the metric
// definitions of SPEC §6.2.
type insight struct {
	AdID                      string       `json:"ad_id,omitempty"`
	CampaignID                string       `json:"campaign_id,omitempty"`
	Date                      string       `json:"date"`
	Clicks                    int64        `json:"clicks"`
	CPC                       float64      `json:"cpc"`
	CPM                       float64      `json:"cpm"`
	CTR                       float64      `json:"ctr"`
	Impressions               int64        `json:"impressions"`
	Spend                     float64      `json:"spend"`
	Currency                  string       `json:"currency"`
	Sessions                  int64        `json:"sessions"`
	CostPerSession            float64      `json:"cost_per_session"`
	CVRClicksToSessions       float64      `json:"cvr_clicks_to_sessions"`
	UniqueUsers               int64        `json:"unique_users"`
	CostPerUniqueUser         float64      `json:"cost_per_unique_user"`
	CVRClicksToUniqueUsers    float64      `json:"cvr_clicks_to_unique_users"`
	Engaged                   int64        `json:"engaged"`
	CostPerEngagement         float64      `json:"cost_per_engagement"`
	CVRUniqueUsersToEngaged   float64      `json:"cvr_unique_users_to_engaged"`
	Converted                 int64        `json:"converted"`
	CostPerConversions        float64      `json:"cost_per_conversions"`
	CVRUniqueUsersToConverted float64      `json:"cvr_unique_users_to_converted"`
	Events                    eventCounts  `json:"events"`
	Keywords                  []keywordRow `json:"keywords"`
	KeywordsCount             int          `json:"keywords_count"`
}

type eventCounts struct {
	Conversation int64 `json:"conversation"`
	Keyword      int64 `json:"keyword"`
	// AutomaticEvent counts the leads and purchases Meta detected in the ad's threads.
	AutomaticEvent int64 `json:"automatic_event"`
}

type keywordRow struct {
	Keyword string  `json:"keyword"`
	Events  int64   `json:"events"`
	CVR     float64 `json:"cvr"`
}

// saleInsight is the "sale_insight" object: attributed off-thread events and revenue.
type saleInsight struct {
	AdID            string         `json:"ad_id,omitempty"`
	CampaignID      string         `json:"campaign_id,omitempty"`
	Date            string         `json:"date"`
	Revenue         float64        `json:"revenue"`
	Currency        string         `json:"currency"`
	Count           int64          `json:"count"`
	ROAS            float64        `json:"roas"`
	CVR             float64        `json:"cvr"`
	CVRCost         float64        `json:"cvr_cost"`
	OtherCurrencies []engine.Money `json:"other_currencies,omitempty"`
}

// newInsight computes the insight of t; currency is the ad account's.
func newInsight(t *engine.Totals, currency, date string, defs *engine.Definitions) insight {
	spend, clicks, users := t.Spend, float64(t.Clicks), float64(t.UniqueUsers())
	sessions := float64(t.Sessions)
	in := insight{
		Date: date, Clicks: t.Clicks, Impressions: t.Impressions, Spend: engine.Round2(spend), Currency: currency,
		CPC: engine.Ratio(spend, clicks), CPM: engine.Ratio(spend*1000, float64(t.Impressions)),
		CTR:      engine.Percent(clicks, float64(t.Impressions)),
		Sessions: t.Sessions, CostPerSession: engine.Ratio(spend, sessions), CVRClicksToSessions: engine.Percent(sessions, clicks),
		UniqueUsers: t.UniqueUsers(), CostPerUniqueUser: engine.Ratio(spend, users), CVRClicksToUniqueUsers: engine.Percent(users, clicks),
		Engaged: t.Engaged, CostPerEngagement: engine.Ratio(spend, float64(t.Engaged)),
		CVRUniqueUsersToEngaged: engine.Percent(float64(t.Engaged), users),
		Converted:               t.Converted, CostPerConversions: engine.Ratio(spend, float64(t.Converted)),
		CVRUniqueUsersToConverted: engine.Percent(float64(t.Converted), users),
		Events:                    eventCounts{Conversation: t.Sessions, Keyword: t.KeywordEvents, AutomaticEvent: t.AutoEvents},
		Keywords:                  keywordRows(t, defs),
	}
	in.KeywordsCount = len(in.Keywords)
	return in
}

// keywordRows lists keyword events by keyword, most events first.
func keywordRows(t *engine.Totals, defs *engine.Definitions) []keywordRow {
	rows := []keywordRow{}
	for id, n := range t.Keywords {
		rows = append(rows, keywordRow{Keyword: defs.KeywordText(id), Events: n, CVR: engine.Percent(float64(n), float64(t.Sessions))})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Events != rows[j].Events {
			return rows[i].Events > rows[j].Events
		}
		return rows[i].Keyword < rows[j].Keyword
	})
	return rows
}

// newSaleInsight computes the sale insight of t in currency (the ad account's; the first
// seen when unknown); revenue in other currencies is listed apart, never summed.
func newSaleInsight(t *engine.Totals, currency, date string) saleInsight {
	cur, revenue, others := t.SplitRevenue(currency)
	return saleInsight{
		Date: date, Revenue: engine.Round2(revenue), Currency: cur, Count: t.OffCount,
		ROAS: engine.Ratio(revenue, t.Spend), CVR: engine.Percent(float64(t.OffCount), float64(t.UniqueUsers())),
		CVRCost: engine.Ratio(t.Spend, float64(t.OffCount)), OtherCurrencies: others,
	}
}
