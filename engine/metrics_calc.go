package engine

import (
	"cmp"
	"math"
	"slices"
	"strings"

	json "github.com/goccy/go-json"
)

// Round2 rounds half away from zero to 2 decimals (SPEC §6.2), as on the decimal value:
// money comes in as decimals that binary floating point holds a hair off (64.35/2 is
// 32.174999…97, not 32.175), so a value within a trillionth of a half cent counts as
// that half cent and rounds away from zero (32.18), as a hand calculation does.
func Round2(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	cents := x * 100
	whole, frac := math.Modf(math.Abs(cents))
	if frac < 0.5 && 0.5-frac <= 1e-12*max(1, math.Abs(cents)) {
		return math.Copysign(whole+1, x) / 100
	}
	return math.Round(cents) / 100
}

// Ratio is num/den rounded to 2 decimals; a zero denominator gives 0, never NaN or Inf.
func Ratio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return Round2(num / den)
}

// Percent is num/den*100 rounded to 2 decimals, 0 for a zero denominator.
func Percent(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return Round2(num / den * 100)
}

// NullString is a string that the API writes as null when it is empty: a datetime or an
// id that an object does not have (the campaign of an ad no import has placed has no
// start time; a campaign that still runs has no stop time).
type NullString string

// MarshalJSON writes s as a JSON string, or null when it is empty.
func (s NullString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// Money is revenue in one currency.
type Money struct {
	Currency string  `json:"currency"`
	Amount   float64 `json:"revenue"`
}

// SplitRevenue returns the revenue in the reporting currency and the other currencies
// apart (never summed). The reporting currency is want (the ad account's) or, when
// unknown, the first currency in order (day order of the rollups).
func (t *Totals) SplitRevenue(want string) (currency string, amount float64, others []Money) {
	currency = want
	if currency == "" && len(t.currencyOrder) > 0 {
		currency = t.currencyOrder[0]
	}
	for _, c := range t.currencyOrder {
		if c == currency {
			amount = t.Revenue[c]
			continue
		}
		others = append(others, Money{Currency: c, Amount: Round2(t.Revenue[c])})
	}
	slices.SortFunc(others, func(a, b Money) int { return strings.Compare(a.Currency, b.Currency) })
	return currency, amount, others
}

// Insight is the "insight" object of the Signals API (seed 002): the metrics of SPEC
// §6.2 over a Totals. Date is when the numbers stand: the time of the answer for a
// whole range, the start of the day for one day of a daily list.
type Insight struct {
	AdID                      string       `json:"ad_id,omitempty"`
	CampaignID                string       `json:"campaign_id,omitempty"`
	Date                      NullString   `json:"date"`
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
	Events                    EventCounts  `json:"events"`
	Keywords                  []KeywordRow `json:"keywords"`
	KeywordsCount             int          `json:"keywords_count"`
}

// EventCounts are the event counts of an insight.
type EventCounts struct {
	Conversation int64 `json:"conversation"`
	Keyword      int64 `json:"keyword"`
	// AutomaticEvent counts the leads and purchases Meta detected in the ad's threads.
	AutomaticEvent int64 `json:"automatic_event"`
}

// KeywordRow is the keyword events of one keyword group, and their share of sessions.
type KeywordRow struct {
	Keyword string  `json:"keyword"`
	Events  int64   `json:"events"`
	CVR     float64 `json:"cvr"`
}

// NewInsight computes the insight of t: costs are spend per click, per thousand
// impressions, per session, per unique user, per engaged and per converted session;
// rates are percentages (CTR clicks of impressions, then each funnel step of the one
// before). currency is the ad account's; date labels the insight; defs names keywords.
func NewInsight(t *Totals, currency, date string, defs *Definitions) Insight {
	spend, clicks, users := t.Spend, float64(t.Clicks), float64(t.UniqueUsers())
	sessions := float64(t.Sessions)
	in := Insight{
		Date: NullString(date), Clicks: t.Clicks, Impressions: t.Impressions, Spend: Round2(spend), Currency: currency,
		CPC: Ratio(spend, clicks), CPM: Ratio(spend*1000, float64(t.Impressions)),
		CTR:      Percent(clicks, float64(t.Impressions)),
		Sessions: t.Sessions, CostPerSession: Ratio(spend, sessions), CVRClicksToSessions: Percent(sessions, clicks),
		UniqueUsers: t.UniqueUsers(), CostPerUniqueUser: Ratio(spend, users), CVRClicksToUniqueUsers: Percent(users, clicks),
		Engaged: t.Engaged, CostPerEngagement: Ratio(spend, float64(t.Engaged)),
		CVRUniqueUsersToEngaged: Percent(float64(t.Engaged), users),
		Converted:               t.Converted, CostPerConversions: Ratio(spend, float64(t.Converted)),
		CVRUniqueUsersToConverted: Percent(float64(t.Converted), users),
		Events:                    EventCounts{Conversation: t.Sessions, Keyword: t.KeywordEvents, AutomaticEvent: t.AutoEvents},
		Keywords:                  keywordRows(t, defs),
	}
	in.KeywordsCount = len(in.Keywords)
	return in
}

// keywordRows lists keyword events by keyword, most events first, then by keyword; each
// keyword's CVR is its events per session, in percent.
func keywordRows(t *Totals, defs *Definitions) []KeywordRow {
	rows := []KeywordRow{}
	for id, n := range t.Keywords {
		rows = append(rows, KeywordRow{Keyword: defs.KeywordText(id), Events: n, CVR: Percent(float64(n), float64(t.Sessions))})
	}
	slices.SortFunc(rows, func(a, b KeywordRow) int {
		if a.Events != b.Events {
			return cmp.Compare(b.Events, a.Events)
		}
		return strings.Compare(a.Keyword, b.Keyword)
	})
	return rows
}

// SaleInsight is the "sale_insight" object: attributed off-thread events and revenue;
// Date as in Insight.
type SaleInsight struct {
	AdID            NullString `json:"ad_id"` // a campaign's: its only ad, null when it has several
	CampaignID      string     `json:"campaign_id,omitempty"`
	Date            NullString `json:"date"`
	Revenue         float64    `json:"revenue"`
	Currency        string     `json:"currency"`
	Count           int64      `json:"count"`
	ROAS            float64    `json:"roas"`
	CVR             float64    `json:"cvr"`
	CVRCost         float64    `json:"cvr_cost"`
	OtherCurrencies []Money    `json:"other_currencies,omitempty"`
}

// NewSaleInsight computes the sale insight of t in currency (the ad account's; the first
// seen when unknown): ROAS is revenue per spend, CVR off-thread events per unique user
// in percent, CVRCost spend per off-thread event. Revenue in other currencies is listed
// apart, never summed.
func NewSaleInsight(t *Totals, currency, date string) SaleInsight {
	cur, revenue, others := t.SplitRevenue(currency)
	return SaleInsight{
		Date: NullString(date), Revenue: Round2(revenue), Currency: cur, Count: t.OffCount,
		ROAS: Ratio(revenue, t.Spend), CVR: Percent(float64(t.OffCount), float64(t.UniqueUsers())),
		CVRCost: Ratio(t.Spend, float64(t.OffCount)), OtherCurrencies: others,
	}
}
