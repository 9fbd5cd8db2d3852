package e2e

// End-to-end tests of the insights API (SPEC §6, seed 002 "Meta Ads" and "Meta
// Campaigns"): one fixed scenario — a spend import, CTWA clicks, a keyword group, a
// converted event, organic, custom-source and campaign leads, off-thread purchases in
// two currencies — posted to a real sidecar, then the ads, campaigns, accounts and
// sources answers compared with golden files and with numbers computed by hand.
//
// Refresh the golden files after an intended change of a response with
//
//	go test -run Insights -update ./e2e

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/insights")

// The scenario's catalogue: one EUR ad account with two campaigns and three ads, and
// an ad that only referrals reveal.
const (
	insFacebook = "2311334042249923"
	insAccount  = "174816537731874"
	insC1       = "120200000000000001" // Spring sale: ads A1, A2
	insC2       = "120200000000000002" // Loyalty: ad A3
	insAS1      = "120201000000000001"
	insAS2      = "120201000000000002"
	insA1       = "120210000000000001" // Spring sale - video
	insA2       = "120210000000000002" // Spring sale - image
	insA3       = "120210000000000003" // Loyalty - carousel: spend, never clicked through to WhatsApp
	insA4       = "120219999999999999" // referral only: headline "Summer drop"
	insTag      = "spring_newsletter"  // biz_opaque_callback_data of the outgoing campaign
)

// The scenario's leads.
const (
	insL1 = "491710000001" // A1 D1, converted; buys 49.90 EUR and 30.00 USD
	insL2 = "491710000002" // A1 D1 and A1 again D2 (two sessions, one user); buys 120.00 EUR
	insL3 = "491710000003" // A1 D1, engaged
	insL4 = "491710000004" // A1 D2, then A2 D2 (two ads), converted on A2
	insL5 = "491710000005" // A2 D3, engaged; signs up (no revenue)
	insL6 = "491710000006" // A4 D3 (referral only); buys 25.00 USD
	insL7 = "491710000007" // organic D1
	insL8 = "491710000008" // custom source "Billboard A" D2, engaged
	insL9 = "491710000009" // outgoing campaign D2; buys 10.00 EUR
	insL0 = "491719999999" // never wrote: its purchase of 15.00 EUR is unattributed
)

// spendRow is one row of a JSON spend import (SPEC §6.5).
type spendRow struct {
	Date         string  `json:"date"`
	CampaignID   string  `json:"campaign_id"`
	CampaignName string  `json:"campaign_name"`
	AdSetID      string  `json:"adset_id"`
	AdSetName    string  `json:"adset_name"`
	AdID         string  `json:"ad_id"`
	AdName       string  `json:"ad_name"`
	Status       string  `json:"status,omitempty"`
	Impressions  int64   `json:"impressions"`
	Clicks       int64   `json:"clicks"`
	Spend        float64 `json:"spend"`
}

func spendImport(rows ...spendRow) map[string]any {
	return map[string]any{
		"ad_account":       map[string]string{"id": insAccount, "name": "Shop GmbH - Ad-Account", "currency": "EUR"},
		"facebook_account": map[string]string{"id": insFacebook, "email": "ads@shop.example"},
		"rows":             rows,
	}
}

func rowA1(date string, impressions, clicks int64, spend float64) spendRow {
	return spendRow{date, insC1, "Spring sale", insAS1, "Runners 25-45", insA1, "Spring sale - video", "ACTIVE", impressions, clicks, spend}
}

func rowA2(date string, impressions, clicks int64, spend float64) spendRow {
	return spendRow{date, insC1, "Spring sale", insAS1, "Runners 25-45", insA2, "Spring sale - image", "ACTIVE", impressions, clicks, spend}
}

func rowA3(date string, impressions, clicks int64, spend float64) spendRow {
	return spendRow{date, insC2, "Loyalty", insAS2, "Past buyers", insA3, "Loyalty - carousel", "PAUSED", impressions, clicks, spend}
}

// scenarioSpend is the delivery of the scenario:
//
//	ad  day    impressions clicks  spend
//	A1  03-16      10000    250   123.45
//	A1  03-17       8000    160   100.55
//	A1  03-18       6000     90    76.02   A1: 24000, 500, 300.02
//	A2  03-16       5000    120    45.00
//	A2  03-17       3000      0     0.00
//	A2  03-18       2000     40    19.35   A2: 10000, 160,  64.35
//	A3  03-16        400      8     1.00
//	A3  03-17       1600     12     4.05   A3:  2000,  20,   5.05
var scenarioSpend = spendImport(
	rowA1("2026-03-16", 10000, 250, 123.45), rowA1("2026-03-17", 8000, 160, 100.55), rowA1("2026-03-18", 6000, 90, 76.02),
	rowA2("2026-03-16", 5000, 120, 45.00), rowA2("2026-03-17", 3000, 0, 0), rowA2("2026-03-18", 2000, 40, 19.35),
	rowA3("2026-03-16", 400, 8, 1.00), rowA3("2026-03-17", 1600, 12, 4.05),
)

// offThreadResp is the answer of POST external-events.
type offThreadResp struct {
	ID         string `json:"external_event_id"`
	Attributed bool   `json:"attributed"`
	AppID      string `json:"app_id"`
	Source     struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"source"`
}

// postPurchase posts an off-thread event and requires it attributed to source
// ("type:id", "" for unattributed).
func (c *apiClient) postPurchase(body map[string]any, source string) {
	c.t.Helper()
	var res offThreadResp
	c.sendJSON("POST", "/v1/clients/default/external-events", body, 201, &res)
	got := ""
	if res.Attributed {
		got = res.Source.Type + ":" + res.Source.ID
	}
	if got != source {
		c.t.Fatalf("off-thread event %v credited to %q (%+v), want %q", body, got, res, source)
	}
}

func purchase(lead, currency string, amount float64, at, object string) map[string]any {
	return map[string]any{"lead_phone": "+" + lead, "action": "purchase", "app_id": fixtureApp, "object_id": object,
		"revenue": map[string]any{"amount": amount, "currency": currency}, "event_time": at}
}

// referralMsg is a click on an ad with its own headline.
func referralMsg(m waItem, adID, headline string) waItem {
	m["referral"] = map[string]string{"source_type": "ad", "source_id": adID, "source_url": "https://fb.me/" + adID,
		"headline": headline, "ctwa_clid": "clid-" + adID}
	return m
}

// seedInsightsScenario builds the scenario of the golden files on sc. Days D1, D2, D3
// are 2026-03-16, -17, -18 (UTC, the sidecar's -timezone).
func seedInsightsScenario(t *testing.T, sc *runSidecar, c *apiClient) {
	t.Helper()
	var imported struct {
		Success  bool
		Imported struct{ Rows, Ads, Campaigns int }
	}
	c.sendJSON("POST", appPath+"/ads/import", scenarioSpend, 200, &imported)
	if !imported.Success || imported.Imported.Rows != 8 || imported.Imported.Ads != 3 || imported.Imported.Campaigns != 2 {
		t.Fatalf("import answered %+v", imported)
	}
	// Tracked before the first message: "price" is group 1, "delivery" group 2.
	var g groupJSON
	c.sendJSON("POST", appPath+"/event_groups", map[string]string{"type": "keyword", "type_value": "price"}, 201, &g)
	c.sendJSON("POST", appPath+"/event_groups", map[string]string{"type": "keyword", "type_value": "delivery"}, 201, &g)
	c.sendJSON("POST", appPath+"/sources", map[string]string{"name": "Billboard A", "phrase": "billboard a"}, 201, nil)
	// A session of the Spring sale converts when the lead taps "Order now" (group 3).
	var conv struct {
		Success bool
		ID      string
	}
	c.sendJSON("POST", appPath+"/converted_events", map[string]string{"campaign_id": insC1, "type": "button_reply", "type_id": "order_now"}, 200, &conv)
	if !conv.Success || conv.ID != "3" {
		t.Fatalf("converted_events answered %+v", conv)
	}

	d1, d2, d3 := day(2026, 3, 16), day(2026, 3, 17), day(2026, 3, 18)
	at := func(d time.Time, hh, mm int) time.Time {
		return d.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}
	order := func(lead string, d time.Time, hh, mm int) waItem {
		return replyMsg(lead, at(d, hh, mm), "button_reply", "order_now", "Order now")
	}
	postWebhook(t, sc, statusesWebhook(sentStatus(insL9, at(d2, 8, 0), insTag)))
	for _, m := range []waItem{
		textMsg(insL1, at(d1, 10, 0), "Hi! What's the price of the sneakers?").fromAd(insA1), // conversation, keyword price
		order(insL1, d1, 10, 5),                                                // engagement, button_reply, converted
		textMsg(insL2, at(d1, 11, 0), "Hello").fromAd(insA1),                   // conversation
		textMsg(insL3, at(d1, 12, 0), "Hi there").fromAd(insA1),                // conversation
		textMsg(insL3, at(d1, 12, 10), "Is delivery to Berlin free?"),          // engagement, keyword delivery
		textMsg(insL7, at(d1, 13, 0), "hello, what's the price?"),              // organic conversation, keyword price
		textMsg(insL4, at(d2, 9, 0), "hi, price?").fromAd(insA1),               // conversation, keyword price
		textMsg(insL9, at(d2, 9, 0), "yes please"),                             // campaign conversation
		textMsg(insL4, at(d2, 9, 30), "hi again").fromAd(insA2),                // a second ad: new session
		order(insL4, d2, 9, 35),                                                // engagement, button_reply, converted
		textMsg(insL2, at(d2, 12, 0), "price and delivery?").fromAd(insA1),     // new click: new session, two keywords
		textMsg(insL8, at(d2, 14, 0), "I saw Billboard A at the station"),      // custom source conversation
		textMsg(insL8, at(d2, 14, 2), "delivery?"),                             // engagement, keyword delivery
		textMsg(insL5, at(d3, 10, 0), "hello").fromAd(insA2),                   // conversation
		textMsg(insL5, at(d3, 10, 1), "price pls"),                             // engagement, keyword price
		referralMsg(textMsg(insL6, at(d3, 15, 0), "hi"), insA4, "Summer drop"), // conversation of an unimported ad
	} {
		postWebhook(t, sc, messagesWebhook(m))
	}

	c.postPurchase(purchase(insL1, "EUR", 49.90, "2026-03-16T18:00:00Z", "order-1"), "ad:"+insA1)
	c.postPurchase(purchase(insL1, "USD", 30.00, "2026-03-17T10:00:00Z", "order-2"), "ad:"+insA1)
	c.postPurchase(purchase(insL2, "EUR", 120.00, "2026-03-18T09:00:00Z", "order-3"), "ad:"+insA1)
	c.postPurchase(map[string]any{"lead_phone": "+" + insL5, "action": "signup", "app_id": fixtureApp,
		"event_time": "2026-03-18T11:00:00Z"}, "ad:"+insA2)
	c.postPurchase(purchase(insL6, "USD", 25.00, "2026-03-18T16:00:00Z", "order-5"), "ad:"+insA4)
	c.postPurchase(purchase(insL9, "EUR", 10.00, "2026-03-17T12:00:00Z", "order-6"), "campaign:"+insTag)
	c.postPurchase(map[string]any{"lead_phone": "+" + insL0, "action": "purchase", "object_id": "order-7",
		"revenue": map[string]any{"amount": 15.00, "currency": "EUR"}, "event_time": "2026-03-18T12:00:00Z"}, "")
}

// ---- response shapes ----

type keywordJSON struct {
	Keyword string  `json:"keyword"`
	Events  int64   `json:"events"`
	CVR     float64 `json:"cvr"`
}

// insightJSON is the "insight" object of seed 002.
type insightJSON struct {
	AdID                      string  `json:"ad_id"`
	CampaignID                string  `json:"campaign_id"`
	Date                      string  `json:"date"`
	Clicks                    int64   `json:"clicks"`
	CPC                       float64 `json:"cpc"`
	CPM                       float64 `json:"cpm"`
	CTR                       float64 `json:"ctr"`
	Impressions               int64   `json:"impressions"`
	Spend                     float64 `json:"spend"`
	Currency                  string  `json:"currency"`
	Sessions                  int64   `json:"sessions"`
	CostPerSession            float64 `json:"cost_per_session"`
	CVRClicksToSessions       float64 `json:"cvr_clicks_to_sessions"`
	UniqueUsers               int64   `json:"unique_users"`
	CostPerUniqueUser         float64 `json:"cost_per_unique_user"`
	CVRClicksToUniqueUsers    float64 `json:"cvr_clicks_to_unique_users"`
	Engaged                   int64   `json:"engaged"`
	CostPerEngagement         float64 `json:"cost_per_engagement"`
	CVRUniqueUsersToEngaged   float64 `json:"cvr_unique_users_to_engaged"`
	Converted                 int64   `json:"converted"`
	CostPerConversions        float64 `json:"cost_per_conversions"`
	CVRUniqueUsersToConverted float64 `json:"cvr_unique_users_to_converted"`
	Events                    struct {
		Conversation int64 `json:"conversation"`
		Keyword      int64 `json:"keyword"`
	} `json:"events"`
	Keywords      []keywordJSON `json:"keywords"`
	KeywordsCount int           `json:"keywords_count"`
}

type moneyJSON struct {
	Currency string  `json:"currency"`
	Revenue  float64 `json:"revenue"`
}

// saleJSON is the "sale_insight" object of seed 002.
type saleJSON struct {
	AdID            string      `json:"ad_id"`
	CampaignID      string      `json:"campaign_id"`
	Date            string      `json:"date"`
	Revenue         float64     `json:"revenue"`
	Currency        string      `json:"currency"`
	Count           int64       `json:"count"`
	ROAS            float64     `json:"roas"`
	CVR             float64     `json:"cvr"`
	CVRCost         float64     `json:"cvr_cost"`
	OtherCurrencies []moneyJSON `json:"other_currencies"`
}

type accountJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
}

type campaignObjJSON struct {
	ID          string      `json:"id"`
	AdAccountID string      `json:"ad_account_id"`
	AdAccount   accountJSON `json:"ad_account"`
	Name        string      `json:"name"`
	Status      string      `json:"status"`
	StartTime   string      `json:"start_time"`
	StopTime    string      `json:"stop_time"`
	Insight     insightJSON `json:"insight"`
	SaleInsight saleJSON    `json:"sale_insight"`
}

type adObjJSON struct {
	ID          string      `json:"id"`
	AppID       string      `json:"app_id"`
	AdAccountID string      `json:"ad_account_id"`
	AdAccount   accountJSON `json:"ad_account"`
	AdSet       struct {
		ID, Name, Status string
	} `json:"ad_set"`
	Name         string          `json:"name"`
	Status       string          `json:"status"`
	CreatedTime  string          `json:"created_time"`
	UpdatedTime  string          `json:"updated_time"`
	Campaign     campaignObjJSON `json:"campaign"`
	Insight      insightJSON     `json:"insight"`
	SaleInsight  saleJSON        `json:"sale_insight"`
	ActiveGroups int             `json:"active_event_groups_count"`
	ReferralOnly bool            `json:"referral_only"`
}

type pageOf[T any] struct {
	Data       []T `json:"data"`
	TotalCount int `json:"total_count"`
	Offset     int `json:"offset"`
	Limit      int `json:"limit"`
}

// sourceRowJSON is one row of GET .../sources (SPEC §6.3).
type sourceRowJSON struct {
	Type            string      `json:"type"`
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Phrase          string      `json:"phrase"`
	Direction       string      `json:"direction"`
	Sessions        int64       `json:"sessions"`
	UniqueUsers     int64       `json:"unique_users"`
	Engaged         int64       `json:"engaged"`
	Converted       int64       `json:"converted"`
	OffThreadCount  int64       `json:"offthread_count"`
	Revenue         float64     `json:"revenue"`
	Currency        string      `json:"currency"`
	OtherCurrencies []moneyJSON `json:"other_currencies"`
	Spend           float64     `json:"spend"`
	ROAS            float64     `json:"roas"`
	CostPerLead     float64     `json:"cost_per_lead"`
}

// ---- golden files ----

// volatile matches the fields whose value is the time of the request or of the import.
var volatile = regexp.MustCompile(`"(date|created_time|updated_time)":"([^"]*)"`)

// normalize replaces the instants later than the scenario (the import's created and
// updated times, the "date" of whole-range insights, which is now) by "<now>", and
// indents the JSON. Scenario-derived times (days, referral first-seen times) stay.
func normalize(t *testing.T, body []byte) []byte {
	t.Helper()
	scenarioEnd := day(2026, 3, 19)
	body = volatile.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := volatile.FindSubmatch(m)
		if at, err := time.Parse(time.RFC3339, string(sub[2])); err == nil && !at.Before(scenarioEnd) {
			return []byte(`"` + string(sub[1]) + `":"<now>"`)
		}
		return m
	})
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// checkGolden compares the normalized body with testdata/insights/<name>.json.
func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	got := normalize(t, body)
	path := testdata("insights", name+".json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Insights -update . to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, lineDiff(string(want), string(got)))
	}
}

// lineDiff lists the lines that differ, with their line numbers.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
		}
	}
	return b.String()
}

// ---- the scenario ----

func TestInsightsScenario(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	seedInsightsScenario(t, sc, c)

	t.Run("golden", func(t *testing.T) {
		for _, g := range []struct{ name, path string }{
			{"facebook_accounts", "/v1/clients/default/facebook-accounts"},
			{"facebook_account", "/v1/clients/default/facebook-accounts/" + insFacebook},
			{"ads_list", appPath + "/ads/account/" + insAccount},
			{"ads_list_page", appPath + "/ads/account/" + insAccount + "?campaign_id=" + insC1 + "&limit=1&offset=1"},
			{"ads_unassigned", appPath + "/ads/account/unassigned"},
			{"ad", appPath + "/ads/" + insA1},
			{"ad_insights", appPath + "/ads/" + insA1 + "/insights"},
			{"campaigns_list", appPath + "/campaigns/account/" + insAccount},
			{"campaign", appPath + "/campaigns/" + insC1},
			{"campaign_insights", appPath + "/campaigns/" + insC1 + "/insights"},
			{"sources", appPath + "/sources?date_from=2026-03-16&date_to=2026-03-18"},
		} {
			t.Run(g.name, func(t *testing.T) {
				checkGolden(t, g.name, c.getJSON(g.path, new(any)))
			})
		}
	})

	t.Run("list envelopes", func(t *testing.T) {
		for _, tc := range []struct {
			path                 string
			ids                  []string
			total, offset, limit int
		}{
			{"/ads/account/" + insAccount, []string{insA1, insA2, insA3}, 3, 0, 20},
			{"/ads/account/" + insAccount + "?limit=2", []string{insA1, insA2}, 3, 0, 2},
			{"/ads/account/" + insAccount + "?limit=2&offset=2", []string{insA3}, 3, 2, 2},
			{"/ads/account/" + insAccount + "?offset=3", []string{}, 3, 3, 20},
			{"/ads/account/" + insAccount + "?campaign_id=" + insC2, []string{insA3}, 1, 0, 20},
			{"/ads/account/" + insAccount + "?limit=100", []string{insA1, insA2, insA3}, 3, 0, 100},
			{"/ads/account/unassigned", []string{insA4}, 1, 0, 20},
			{"/ads/account/999999", []string{}, 0, 0, 20}, // an unknown ad account has no ads
			{"/campaigns/account/" + insAccount, []string{insC1, insC2}, 2, 0, 20},
			{"/campaigns/account/" + insAccount + "?limit=1&offset=1", []string{insC2}, 2, 1, 1},
			{"/campaigns/account/999999", []string{}, 0, 0, 20},
		} {
			var p pageOf[struct{ ID string }]
			raw := c.getJSON(appPath+tc.path, &p)
			if len(tc.ids) == 0 && !strings.Contains(string(raw), `"data":[]`) {
				t.Errorf("%s: an empty page must list [], got %s", tc.path, raw)
			}
			got := []string{}
			for _, r := range p.Data {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tc.ids) || p.TotalCount != tc.total || p.Offset != tc.offset || p.Limit != tc.limit {
				t.Errorf("%s: ids %v total %d offset %d limit %d; want %v %d %d %d",
					tc.path, got, p.TotalCount, p.Offset, p.Limit, tc.ids, tc.total, tc.offset, tc.limit)
			}
		}
	})

	t.Run("hand-checked accounts", func(t *testing.T) { checkAccounts(t, c) })
	t.Run("hand-checked ad lists", func(t *testing.T) { checkAdLists(t, c) })
	t.Run("hand-checked campaign lists", func(t *testing.T) { checkCampaignLists(t, c) })

	t.Run("hand-checked ad and campaign", func(t *testing.T) {
		var ad adObjJSON
		c.getJSON(appPath+"/ads/"+insA1, &ad)
		checkInsight(t, "A1", ad.Insight, wantA1)
		checkSale(t, "A1", ad.SaleInsight, wantA1Sale)
		checkInsight(t, "A1's campaign", ad.Campaign.Insight, wantC1)
		if ad.Name != "Spring sale - video" || ad.Status != "ACTIVE" || ad.AdAccountID != insAccount ||
			ad.AdAccount != (accountJSON{insAccount, "Shop GmbH - Ad-Account", "EUR"}) ||
			ad.AdSet.ID != insAS1 || ad.AdSet.Name != "Runners 25-45" || ad.Campaign.ID != insC1 ||
			ad.Campaign.StartTime != "2026-03-16T00:00:00+00:00" || ad.Campaign.StopTime != "" ||
			ad.ActiveGroups != 2 || ad.ReferralOnly {
			t.Errorf("A1 object %+v", ad)
		}

		var cp campaignObjJSON
		c.getJSON(appPath+"/campaigns/"+insC1, &cp)
		checkInsight(t, "C1", cp.Insight, wantC1)
		checkSale(t, "C1", cp.SaleInsight, wantC1Sale)
		// The campaign of A3 is all zero denominators but spend.
		var c2 campaignObjJSON
		rawC2 := c.getJSON(appPath+"/campaigns/"+insC2, &c2)
		checkInsight(t, "C2", c2.Insight, wantA3(insightJSON{CampaignID: insC2}))
		checkSale(t, "C2", c2.SaleInsight, saleJSON{AdID: insA3, CampaignID: insC2, Currency: "EUR"})

		// Null, not absent and not "": the running C1's stop_time, and the ad_id of the sale
		// insight of C1, which has two ads (C2's names its only ad, A3). C2 is PAUSED: it
		// stopped at the end of its last day of delivery.
		rawC1 := c.getJSON(appPath+"/campaigns/"+insC1, new(any))
		for _, want := range []string{`"status":"ACTIVE","start_time":"2026-03-16T00:00:00+00:00","stop_time":null,`,
			`"sale_insight":{"ad_id":null,"campaign_id":"` + insC1 + `","date":"`} {
			if !strings.Contains(string(rawC1), want) {
				t.Errorf("C1 lacks %s:\n%s", want, rawC1)
			}
		}
		for _, want := range []string{`"stop_time":"2026-03-18T00:00:00+00:00"`, `"sale_insight":{"ad_id":"` + insA3 + `","campaign_id":"` + insC2 + `"`} {
			if !strings.Contains(string(rawC2), want) {
				t.Errorf("C2 lacks %s:\n%s", want, rawC2)
			}
		}
		// An ad no import has placed has an empty campaign: its times are null, not "".
		rawA4 := c.getJSON(appPath+"/ads/"+insA4, new(any))
		for _, want := range []string{`"start_time":null,"stop_time":null,`, `"insight":{"date":null,`, `"sale_insight":{"ad_id":null,"date":null,`,
			`"created_time":"2026-03-18T15:00:00+00:00"`} {
			if !strings.Contains(string(rawA4), want) {
				t.Errorf("A4 lacks %s:\n%s", want, rawA4)
			}
		}
	})

	t.Run("hand-checked zero denominators", func(t *testing.T) {
		var ad adObjJSON
		c.getJSON(appPath+"/ads/"+insA3, &ad) // spend and clicks, no sessions
		checkInsight(t, "A3", ad.Insight, wantA3(insightJSON{AdID: insA3}))
		checkSale(t, "A3", ad.SaleInsight, saleJSON{AdID: insA3, Currency: "EUR"})

		var a4 adObjJSON
		c.getJSON(appPath+"/ads/"+insA4, &a4) // sessions and a purchase, no spend
		checkInsight(t, "A4", a4.Insight, insightJSON{AdID: insA4, Sessions: 1, UniqueUsers: 1,
			Events: eventsOf(1, 0), Keywords: []keywordJSON{}})
		// No ad account: revenue in the first currency seen; roas over no spend is 0.
		checkSale(t, "A4", a4.SaleInsight, saleJSON{AdID: insA4, Revenue: 25, Currency: "USD", Count: 1, CVR: 100})
		if a4.Name != "Summer drop" || a4.AdAccountID != "unassigned" || !a4.ReferralOnly || a4.Status != "UNKNOWN" ||
			a4.CreatedTime != "2026-03-18T15:00:00+00:00" || a4.Campaign.ID != "" {
			t.Errorf("A4 object %+v", a4)
		}
	})

	t.Run("hand-checked daily insights", func(t *testing.T) {
		var rows []insightJSON
		c.getJSON(appPath+"/ads/"+insA1+"/insights", &rows)
		want := wantA1Daily()
		if len(rows) != len(want) {
			t.Fatalf("%d daily rows, want %d: %+v", len(rows), len(want), rows)
		}
		for i := range rows {
			checkInsight(t, "A1 "+want[i].Date, rows[i], want[i])
		}
		// A2 on 03-17: impressions without clicks or spend, one session.
		var a2 []insightJSON
		c.getJSON(appPath+"/ads/"+insA2+"/insights?date_from=2026-03-17&date_to=2026-03-17", &a2)
		if len(a2) != 1 {
			t.Fatalf("A2 on 03-17: %+v", a2)
		}
		checkInsight(t, "A2 2026-03-17", a2[0], insightJSON{AdID: insA2, Date: "2026-03-17T00:00:00+00:00", Impressions: 3000,
			Currency: "EUR", Sessions: 1, UniqueUsers: 1, Engaged: 1, CVRUniqueUsersToEngaged: 100,
			Converted: 1, CVRUniqueUsersToConverted: 100, Events: eventsOf(1, 0), Keywords: []keywordJSON{}})

		// The campaign's days carry the day's sale insight: 03-17 has A1's USD purchase only.
		var days pageOf[campaignObjJSON]
		c.getJSON(appPath+"/campaigns/"+insC1+"/insights", &days)
		if days.TotalCount != 3 || len(days.Data) != 3 || days.Limit != 100 {
			t.Fatalf("campaign days %+v", days)
		}
		checkSale(t, "C1 2026-03-17", days.Data[1].SaleInsight, saleJSON{CampaignID: insC1, Date: "2026-03-17T00:00:00+00:00",
			Currency: "EUR", Count: 1, CVR: 50, CVRCost: 100.55, OtherCurrencies: []moneyJSON{{"USD", 30}}})
		// 03-17: spend 100.55 + 0.00, clicks 160 + 0; sessions L4 and L2 on A1, L4 on A2: 3
		// sessions, 2 users; cpc 100.55/160 = 0.628…, per session 100.55/3 = 33.516…,
		// per user 100.55/2 = 50.275.
		if in := days.Data[1].Insight; in.Spend != 100.55 || in.Sessions != 3 || in.UniqueUsers != 2 || in.Clicks != 160 ||
			in.CPC != 0.63 || in.CostPerSession != 33.52 || in.CostPerUniqueUser != 50.28 {
			t.Errorf("C1 on 2026-03-17: %+v", in)
		}
	})

	t.Run("date range", func(t *testing.T) {
		// 03-17 only: A1's delivery of the day, the sessions that started then (L2's
		// second, L4's first) and the purchase made then (30.00 USD).
		var ad adObjJSON
		c.getJSON(appPath+"/ads/"+insA1+"?date_from=2026-03-17&date_to=2026-03-17", &ad)
		in := ad.Insight
		if in.Impressions != 8000 || in.Clicks != 160 || in.Spend != 100.55 || in.Sessions != 2 || in.UniqueUsers != 2 ||
			in.Engaged != 0 || in.Events.Keyword != 3 || in.CostPerSession != 50.28 || in.CVRClicksToSessions != 1.25 {
			t.Errorf("A1 on 03-17: %+v", in)
		}
		checkSale(t, "A1 on 03-17", ad.SaleInsight, saleJSON{AdID: insA1, Currency: "EUR", Count: 1, CVR: 50,
			CVRCost: 100.55, OtherCurrencies: []moneyJSON{{"USD", 30}}})
		// RFC 3339 bounds select whole days of rollups.
		var d3 adObjJSON
		c.getJSON(appPath+"/ads/"+insA1+"?date_from=2026-03-18T00:00:00Z&date_to=2026-03-18T23:59:59Z", &d3)
		if in := d3.Insight; in.Spend != 76.02 || in.Sessions != 0 || d3.SaleInsight.Revenue != 120 || d3.SaleInsight.Count != 1 ||
			d3.SaleInsight.OtherCurrencies != nil {
			t.Errorf("A1 on 03-18: %+v %+v", in, d3.SaleInsight)
		}
	})

	t.Run("hand-checked sources", func(t *testing.T) {
		var p pageOf[sourceRowJSON]
		c.getJSON(appPath+"/sources?date_from=2026-03-16&date_to=2026-03-18", &p)
		want := wantSources()
		if p.TotalCount != len(want) || len(p.Data) != len(want) {
			t.Errorf("%d sources (total %d), want %d", len(p.Data), p.TotalCount, len(want))
		}
		for i := range min(len(p.Data), len(want)) {
			if !reflect.DeepEqual(p.Data[i], want[i]) {
				t.Errorf("source %d:\n got %+v\nwant %+v", i, p.Data[i], want[i])
			}
		}
		// One day: only what started or was bought that day.
		var d2 pageOf[sourceRowJSON]
		c.getJSON(appPath+"/sources?date_from=2026-03-17&date_to=2026-03-17", &d2)
		got := map[string]string{}
		for _, r := range d2.Data {
			got[r.Type+":"+r.ID] = fmtRow(r)
		}
		wantDay := map[string]string{
			"ad:" + insA1:        "2/2 rev 0 EUR [{USD 30}] spend 100.55",
			"ad:" + insA2:        "1/1 rev 0 EUR [] spend 0",
			"ad:" + insA3:        "0/0 rev 0 EUR [] spend 4.05",
			"campaign:" + insTag: "1/1 rev 10 EUR [] spend 0",
			"custom:1":           "1/1 rev 0  [] spend 0",
		}
		if !reflect.DeepEqual(got, wantDay) {
			t.Errorf("sources on 03-17:\n got %v\nwant %v", got, wantDay)
		}
	})

	t.Run("contacts export", func(t *testing.T) { checkContacts(t, c) })
	t.Run("parameters", func(t *testing.T) { checkInsightParams(t, c) })
}

// Every datetime of the insights is RFC 3339 with the offset of -timezone: a daily
// insight's date is the start of its day there, a campaign starts and (once stopped)
// stops at the start of a day there, and the times of the answer and of the import are
// written there too.
func TestInsightsTimesInTheConfiguredZone(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-timezone", "Europe/Berlin")
	c := newAPIClient(t, sc, "")
	c.sendJSON("POST", appPath+"/ads/import", spendImport(rowA1("2026-03-16", 100, 10, 5), rowA1("2026-03-17", 100, 10, 5),
		rowA3("2026-03-16", 100, 1, 1)), 200, nil)
	postWebhook(t, sc, messagesWebhook(textMsg(insL1, day(2026, 3, 16).Add(10*time.Hour), "hi").fromAd(insA1)))

	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// inBerlin requires an RFC 3339 time written with Berlin's offset at that instant.
	inBerlin := func(what, v string) {
		t.Helper()
		at, err := time.Parse(time.RFC3339, v)
		_, got := at.Zone()
		_, want := at.In(berlin).Zone()
		if err != nil || got != want || !strings.HasSuffix(v, at.In(berlin).Format("-07:00")) {
			t.Errorf("%s %q is not RFC 3339 with Berlin's offset", what, v)
		}
	}
	var ad adObjJSON
	c.getJSON(appPath+"/ads/"+insA1, &ad)
	inBerlin("created_time", ad.CreatedTime)
	inBerlin("updated_time", ad.UpdatedTime)
	inBerlin("insight.date", ad.Insight.Date)
	inBerlin("sale_insight.date", ad.SaleInsight.Date)
	if ad.Campaign.StartTime != "2026-03-16T00:00:00+01:00" || ad.Campaign.StopTime != "" {
		t.Errorf("running campaign: start %q stop %q, want 2026-03-16T00:00:00+01:00 and null", ad.Campaign.StartTime, ad.Campaign.StopTime)
	}
	var c2 campaignObjJSON
	c.getJSON(appPath+"/campaigns/"+insC2, &c2)
	if c2.StartTime != "2026-03-16T00:00:00+01:00" || c2.StopTime != "2026-03-17T00:00:00+01:00" {
		t.Errorf("paused campaign: start %q stop %q, want the start of 03-16 and of 03-17 in Berlin", c2.StartTime, c2.StopTime)
	}
	var days []insightJSON
	c.getJSON(appPath+"/ads/"+insA1+"/insights", &days)
	if len(days) != 2 || days[0].Date != "2026-03-16T00:00:00+01:00" || days[1].Date != "2026-03-17T00:00:00+01:00" {
		t.Errorf("daily dates %+v, want the starts of 03-16 and 03-17 in Berlin", days)
	}
	var cdays pageOf[campaignObjJSON]
	c.getJSON(appPath+"/campaigns/"+insC1+"/insights", &cdays)
	if len(cdays.Data) != 2 || cdays.Data[1].Insight.Date != "2026-03-17T00:00:00+01:00" || cdays.Data[1].SaleInsight.Date != "2026-03-17T00:00:00+01:00" {
		t.Errorf("campaign days %+v", cdays.Data)
	}
	if ev := c.events("date_from=2026-03-16&date_to=2026-03-16").Data; len(ev) != 1 || ev[0].Date != "2026-03-16T11:00:00+01:00" ||
		ev[0].ConversationExpireTime != "2026-03-17T11:00:00+01:00" {
		t.Errorf("events %+v, want the message at 11:00 Berlin time", ev)
	}
}

func fmtRow(r sourceRowJSON) string {
	others := "["
	for i, m := range r.OtherCurrencies {
		if i > 0 {
			others += " "
		}
		others += "{" + m.Currency + " " + jsonNum(m.Revenue) + "}"
	}
	return strconv.FormatInt(r.Sessions, 10) + "/" + strconv.FormatInt(r.UniqueUsers, 10) + " rev " + jsonNum(r.Revenue) + " " + r.Currency +
		" " + others + "] spend " + jsonNum(r.Spend)
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func eventsOf(conversation, keyword int64) (e struct {
	Conversation int64 `json:"conversation"`
	Keyword      int64 `json:"keyword"`
}) {
	e.Conversation, e.Keyword = conversation, keyword
	return e
}

// checkInsight compares an insight with its hand-computed value; the "date" of a
// whole-range insight is the time of the request and is only checked to be RFC 3339.
func checkInsight(t *testing.T, name string, got, want insightJSON) {
	t.Helper()
	if want.Date == "" {
		if _, err := time.Parse(time.RFC3339, got.Date); err != nil {
			t.Errorf("%s: date %q is not RFC 3339", name, got.Date)
		}
		got.Date = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s insight:\n got %+v\nwant %+v", name, got, want)
	}
}

func checkSale(t *testing.T, name string, got, want saleJSON) {
	t.Helper()
	if want.Date == "" {
		if _, err := time.Parse(time.RFC3339, got.Date); err != nil {
			t.Errorf("%s: sale date %q is not RFC 3339", name, got.Date)
		}
		got.Date = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s sale_insight:\n got %+v\nwant %+v", name, got, want)
	}
}

// ---- the hand-computed numbers ----
//
// Sessions by source (a session's counts go to the day it started):
//
//	A1: L1 D1 (engaged, converted), L2 D1, L3 D1 (engaged), L4 D2, L2 D2
//	    → 5 sessions, 4 users (L2 twice), 2 engaged, 1 converted;
//	    keywords: price L1, L4, L2(D2) = 3; delivery L3, L2(D2) = 2
//	A2: L4 D2 (engaged, converted), L5 D3 (engaged) → 2 sessions, 2 users, 2 engaged,
//	    1 converted; keyword price L5 = 1
//	A3: none. A4 (referral only): L6 D3. organic: L7 D1. custom 1: L8 D2 (engaged).
//	campaign spring_newsletter: L9 D2.
//
// Off-thread events by source: A1 49.90 EUR (D1), 30.00 USD (D2), 120.00 EUR (D3) →
// count 3, revenue 169.90 EUR, 30.00 USD apart; A2 a signup (D3) → count 1, no revenue;
// A4 25.00 USD (D3); campaign 10.00 EUR (D2); unattributed 15.00 EUR (D3).
//
// Rounding is half away from zero to 2 decimals, on the decimal value: 300.02/4 =
// 75.005 → 75.01 and 64.35/2 = 32.175 → 32.18 (binary floating point holds both a
// hair below the half cent; a plain math.Round(x*100)/100 gives 32.17).

// wantA1 is A1 over all days: spend 123.45+100.55+76.02 = 300.02, impressions
// 10000+8000+6000 = 24000, clicks 250+160+90 = 500.
var wantA1 = insightJSON{
	AdID: insA1, Impressions: 24000, Clicks: 500, Spend: 300.02, Currency: "EUR",
	CPC:                       0.6,    // 300.02/500 = 0.60004
	CPM:                       12.5,   // 300.02/24000*1000 = 12.500833…
	CTR:                       2.08,   // 500/24000*100 = 2.08333…
	Sessions:                  5,      //
	CostPerSession:            60,     // 300.02/5 = 60.004
	CVRClicksToSessions:       1,      // 5/500*100
	UniqueUsers:               4,      //
	CostPerUniqueUser:         75.01,  // 300.02/4 = 75.005, half away from zero
	CVRClicksToUniqueUsers:    0.8,    // 4/500*100
	Engaged:                   2,      //
	CostPerEngagement:         150.01, // 300.02/2
	CVRUniqueUsersToEngaged:   50,     // 2/4*100
	Converted:                 1,      //
	CostPerConversions:        300.02, // 300.02/1
	CVRUniqueUsersToConverted: 25,     // 1/4*100
	Events:                    eventsOf(5, 5),
	Keywords: []keywordJSON{
		{"price", 3, 60},    // 3/5*100
		{"delivery", 2, 40}, // 2/5*100
	},
	KeywordsCount: 2,
}

var wantA1Sale = saleJSON{
	AdID: insA1, Revenue: 169.9, Currency: "EUR", Count: 3,
	ROAS:            0.57,   // 169.90/300.02 = 0.566296…
	CVR:             75,     // 3/4*100
	CVRCost:         100.01, // 300.02/3 = 100.00666…
	OtherCurrencies: []moneyJSON{{"USD", 30}},
}

// wantC1 is campaign C1 = A1 + A2: spend 300.02 + (45.00+0+19.35) = 364.37,
// impressions 24000+10000 = 34000, clicks 500+160 = 660; sessions 5+2 = 7, users
// L1..L5 = 5 (L4 clicked both ads), engaged 2+2 = 4, converted 1+1 = 2.
var wantC1 = insightJSON{
	CampaignID: insC1, Impressions: 34000, Clicks: 660, Spend: 364.37, Currency: "EUR",
	CPC:                       0.55,   // 364.37/660 = 0.552075…
	CPM:                       10.72,  // 364.37/34000*1000 = 10.716764…
	CTR:                       1.94,   // 660/34000*100 = 1.941176…
	Sessions:                  7,      //
	CostPerSession:            52.05,  // 364.37/7 = 52.052857…
	CVRClicksToSessions:       1.06,   // 7/660*100 = 1.060606…
	UniqueUsers:               5,      //
	CostPerUniqueUser:         72.87,  // 364.37/5 = 72.874
	CVRClicksToUniqueUsers:    0.76,   // 5/660*100 = 0.757575…
	Engaged:                   4,      //
	CostPerEngagement:         91.09,  // 364.37/4 = 91.0925
	CVRUniqueUsersToEngaged:   80,     // 4/5*100
	Converted:                 2,      //
	CostPerConversions:        182.19, // 364.37/2 = 182.185, half away from zero
	CVRUniqueUsersToConverted: 40,     // 2/5*100
	Events:                    eventsOf(7, 6),
	Keywords: []keywordJSON{
		{"price", 4, 57.14},    // 4/7*100 = 57.142857…
		{"delivery", 2, 28.57}, // 2/7*100 = 28.571428…
	},
	KeywordsCount: 2,
}

var wantC1Sale = saleJSON{
	CampaignID: insC1, Revenue: 169.9, Currency: "EUR", Count: 4, // A1's 3 and A2's signup
	ROAS:            0.47,  // 169.90/364.37 = 0.466284…
	CVR:             80,    // 4/5*100
	CVRCost:         91.09, // 364.37/4 = 91.0925
	OtherCurrencies: []moneyJSON{{"USD", 30}},
}

// wantA2 is A2 over all days: spend 45.00+0.00+19.35 = 64.35, impressions
// 5000+3000+2000 = 10000, clicks 120+0+40 = 160; sessions L4 D2 (engaged, converted) and
// L5 D3 (engaged), 2 users; keyword price L5.
var wantA2 = insightJSON{
	AdID: insA2, Impressions: 10000, Clicks: 160, Spend: 64.35, Currency: "EUR",
	CPC:                       0.4,   // 64.35/160 = 0.4021875
	CPM:                       6.44,  // 64.35/10000*1000 = 6.435, half away from zero
	CTR:                       1.6,   // 160/10000*100
	Sessions:                  2,     //
	CostPerSession:            32.18, // 64.35/2 = 32.175, half away from zero
	CVRClicksToSessions:       1.25,  // 2/160*100
	UniqueUsers:               2,     //
	CostPerUniqueUser:         32.18, // 64.35/2
	CVRClicksToUniqueUsers:    1.25,  // 2/160*100
	Engaged:                   2,     //
	CostPerEngagement:         32.18, // 64.35/2
	CVRUniqueUsersToEngaged:   100,   // 2/2*100
	Converted:                 1,     //
	CostPerConversions:        64.35, // 64.35/1
	CVRUniqueUsersToConverted: 50,    // 1/2*100
	Events:                    eventsOf(2, 1),
	Keywords:                  []keywordJSON{{"price", 1, 50}}, // 1/2*100
	KeywordsCount:             1,
}

// wantA2Sale: L5's signup, no revenue.
var wantA2Sale = saleJSON{AdID: insA2, Currency: "EUR", Count: 1,
	CVR:     50,    // 1/2*100
	CVRCost: 64.35, // 64.35/1
}

// checkAccounts checks the accounts the import named (scenarioSpend).
func checkAccounts(t *testing.T, c *apiClient) {
	var logins []struct{ ID, Email string }
	c.getJSON("/v1/clients/default/facebook-accounts", &logins)
	if len(logins) != 1 || logins[0].ID != insFacebook || logins[0].Email != "ads@shop.example" {
		t.Errorf("facebook accounts %+v, want the import's %s ads@shop.example", logins, insFacebook)
	}
	var accounts []accountJSON
	c.getJSON("/v1/clients/default/facebook-accounts/"+insFacebook, &accounts)
	if want := (accountJSON{insAccount, "Shop GmbH - Ad-Account", "EUR"}); len(accounts) != 1 || accounts[0] != want {
		t.Errorf("ad accounts of %s: %+v, want [%+v]", insFacebook, accounts, want)
	}
}

// checkAdLists checks the second ad of C1 (ads A1, A2 by id: A2 is at offset 1) and
// the referral-only ads.
func checkAdLists(t *testing.T, c *apiClient) {
	var page pageOf[adObjJSON]
	c.getJSON(appPath+"/ads/account/"+insAccount+"?campaign_id="+insC1+"&limit=1&offset=1", &page)
	if page.TotalCount != 2 || page.Offset != 1 || page.Limit != 1 || len(page.Data) != 1 {
		t.Fatalf("C1's ads from offset 1: total %d offset %d limit %d, %d rows; want 2, 1, 1, 1 row",
			page.TotalCount, page.Offset, page.Limit, len(page.Data))
	}
	a2 := page.Data[0]
	checkInsight(t, "A2", a2.Insight, wantA2)
	checkSale(t, "A2", a2.SaleInsight, wantA2Sale)
	checkInsight(t, "A2's campaign", a2.Campaign.Insight, wantC1)
	checkSale(t, "A2's campaign", a2.Campaign.SaleInsight, wantC1Sale)
	// Two keyword groups (price, delivery) apply to every ad; the converted event is no group.
	if a2.ID != insA2 || a2.AppID != fixtureApp || a2.Name != "Spring sale - image" || a2.Status != "ACTIVE" ||
		a2.AdAccountID != insAccount || a2.AdAccount != (accountJSON{insAccount, "Shop GmbH - Ad-Account", "EUR"}) ||
		a2.AdSet.ID != insAS1 || a2.AdSet.Name != "Runners 25-45" || a2.AdSet.Status != "ACTIVE" ||
		a2.Campaign.ID != insC1 || a2.Campaign.Name != "Spring sale" || a2.Campaign.Status != "ACTIVE" ||
		a2.Campaign.StartTime != "2026-03-16T00:00:00+00:00" || a2.Campaign.StopTime != "" ||
		a2.ActiveGroups != 2 || a2.ReferralOnly {
		t.Errorf("A2 object %+v", a2)
	}

	// A4, known from L6's referral only: one session D3, no engagement; L6's 25.00 USD.
	var unassigned pageOf[adObjJSON]
	c.getJSON(appPath+"/ads/account/unassigned", &unassigned)
	if unassigned.TotalCount != 1 || unassigned.Offset != 0 || unassigned.Limit != 20 || len(unassigned.Data) != 1 {
		t.Fatalf("unassigned ads: total %d offset %d limit %d, %d rows; want 1, 0, 20, 1 row",
			unassigned.TotalCount, unassigned.Offset, unassigned.Limit, len(unassigned.Data))
	}
	a4 := unassigned.Data[0]
	checkInsight(t, "A4 unassigned", a4.Insight, insightJSON{AdID: insA4, Sessions: 1, UniqueUsers: 1,
		Events: eventsOf(1, 0), Keywords: []keywordJSON{}}) // no delivery: every ratio over spend or clicks is 0
	checkSale(t, "A4 unassigned", a4.SaleInsight, saleJSON{AdID: insA4, Revenue: 25, Currency: "USD", Count: 1,
		CVR: 100}) // 1/1*100; no account: the first currency seen
	if a4.ID != insA4 || a4.AppID != fixtureApp || a4.Name != "Summer drop" || a4.Status != "UNKNOWN" ||
		a4.AdAccountID != "unassigned" || a4.AdAccount.ID != "unassigned" || a4.AdAccount.Currency != "" ||
		a4.CreatedTime != "2026-03-18T15:00:00+00:00" || a4.UpdatedTime != "2026-03-18T15:00:00+00:00" || a4.Campaign.ID != "" ||
		a4.ActiveGroups != 2 || !a4.ReferralOnly {
		t.Errorf("A4 object %+v", a4)
	}
}

// checkCampaignLists checks the account's campaigns and C1's days.
func checkCampaignLists(t *testing.T, c *apiClient) {
	var list pageOf[campaignObjJSON]
	c.getJSON(appPath+"/campaigns/account/"+insAccount, &list)
	if list.TotalCount != 2 || list.Offset != 0 || list.Limit != 20 || len(list.Data) != 2 {
		t.Fatalf("campaigns: total %d offset %d limit %d, %d rows; want 2, 0, 20, 2 rows",
			list.TotalCount, list.Offset, list.Limit, len(list.Data))
	}
	c1, c2 := list.Data[0], list.Data[1]
	checkInsight(t, "listed C1", c1.Insight, wantC1)
	checkSale(t, "listed C1", c1.SaleInsight, wantC1Sale)
	checkInsight(t, "listed C2", c2.Insight, wantA3(insightJSON{CampaignID: insC2}))
	checkSale(t, "listed C2", c2.SaleInsight, saleJSON{AdID: insA3, CampaignID: insC2, Currency: "EUR"})
	// A campaign starts on its first day of delivery; once its status says it stopped, it
	// stops at the end of its last: C1 (ACTIVE) from 03-16 on, its stop_time null; C2 (A3,
	// PAUSED) 03-16 to the end of 03-17.
	for _, tc := range []struct {
		got                           campaignObjJSON
		id, name, status, start, stop string
	}{
		{c1, insC1, "Spring sale", "ACTIVE", "2026-03-16T00:00:00+00:00", ""}, // runs: null
		{c2, insC2, "Loyalty", "PAUSED", "2026-03-16T00:00:00+00:00", "2026-03-18T00:00:00+00:00"},
	} {
		if g := tc.got; g.ID != tc.id || g.Name != tc.name || g.Status != tc.status || g.StartTime != tc.start ||
			g.StopTime != tc.stop || g.AdAccountID != insAccount || g.AdAccount.Name != "Shop GmbH - Ad-Account" ||
			g.AdAccount.Currency != "EUR" {
			t.Errorf("campaign %s: %+v", tc.id, g)
		}
	}

	var days pageOf[campaignObjJSON]
	c.getJSON(appPath+"/campaigns/"+insC1+"/insights", &days)
	want, wantSales := wantC1Daily()
	if days.TotalCount != 3 || days.Offset != 0 || days.Limit != 100 || len(days.Data) != len(want) {
		t.Fatalf("C1 days: total %d offset %d limit %d, %d rows; want 3, 0, 100, 3 rows",
			days.TotalCount, days.Offset, days.Limit, len(days.Data))
	}
	for i, d := range days.Data {
		checkInsight(t, "C1 "+want[i].Date, d.Insight, want[i])
		checkSale(t, "C1 "+want[i].Date, d.SaleInsight, wantSales[i])
		if d.ID != insC1 || d.Name != "Spring sale" || d.StartTime != "2026-03-16T00:00:00+00:00" || d.StopTime != "" {
			t.Errorf("C1 %s: %+v", want[i].Date, d)
		}
	}
}

// wantC1Daily is C1 (A1 + A2) per day, with the day's sale insight.
func wantC1Daily() ([]insightJSON, []saleJSON) {
	insights := []insightJSON{{
		// D1: delivery A1 10000/250/123.45 + A2 5000/120/45.00 = 15000/370/168.45;
		// sessions L1 (engaged, converted, price), L2, L3 (engaged, delivery), all on A1.
		CampaignID: insC1, Date: "2026-03-16T00:00:00+00:00", Impressions: 15000, Clicks: 370, Spend: 168.45, Currency: "EUR",
		CPC:                       0.46,   // 168.45/370 = 0.455270…
		CPM:                       11.23,  // 168.45/15000*1000
		CTR:                       2.47,   // 370/15000*100 = 2.4666…
		Sessions:                  3,      //
		CostPerSession:            56.15,  // 168.45/3
		CVRClicksToSessions:       0.81,   // 3/370*100 = 0.810810…
		UniqueUsers:               3,      //
		CostPerUniqueUser:         56.15,  // 168.45/3
		CVRClicksToUniqueUsers:    0.81,   // 3/370*100
		Engaged:                   2,      //
		CostPerEngagement:         84.23,  // 168.45/2 = 84.225, half away from zero
		CVRUniqueUsersToEngaged:   66.67,  // 2/3*100
		Converted:                 1,      //
		CostPerConversions:        168.45, // 168.45/1
		CVRUniqueUsersToConverted: 33.33,  // 1/3*100
		Events:                    eventsOf(3, 2),
		Keywords:                  []keywordJSON{{"delivery", 1, 33.33}, {"price", 1, 33.33}}, // 1/3*100; ties by keyword
		KeywordsCount:             2,
	}, {
		// D2: delivery A1 8000/160/100.55 + A2 3000/0/0.00 = 11000/160/100.55; sessions
		// L4 (price) and L2 (price, delivery) on A1, L4 on A2 (engaged, converted): 3
		// sessions of 2 users.
		CampaignID: insC1, Date: "2026-03-17T00:00:00+00:00", Impressions: 11000, Clicks: 160, Spend: 100.55, Currency: "EUR",
		CPC:                       0.63,   // 100.55/160 = 0.6284375
		CPM:                       9.14,   // 100.55/11000*1000 = 9.140909…
		CTR:                       1.45,   // 160/11000*100 = 1.454545…
		Sessions:                  3,      //
		CostPerSession:            33.52,  // 100.55/3 = 33.516666…
		CVRClicksToSessions:       1.88,   // 3/160*100 = 1.875, half away from zero
		UniqueUsers:               2,      //
		CostPerUniqueUser:         50.28,  // 100.55/2 = 50.275, half away from zero
		CVRClicksToUniqueUsers:    1.25,   // 2/160*100
		Engaged:                   1,      //
		CostPerEngagement:         100.55, // 100.55/1
		CVRUniqueUsersToEngaged:   50,     // 1/2*100
		Converted:                 1,      //
		CostPerConversions:        100.55, // 100.55/1
		CVRUniqueUsersToConverted: 50,     // 1/2*100
		Events:                    eventsOf(3, 3),
		Keywords:                  []keywordJSON{{"price", 2, 66.67}, {"delivery", 1, 33.33}}, // 2/3*100, 1/3*100
		KeywordsCount:             2,
	}, {
		// D3: delivery A1 6000/90/76.02 + A2 2000/40/19.35 = 8000/130/95.37; session L5 on
		// A2 (engaged, price).
		CampaignID: insC1, Date: "2026-03-18T00:00:00+00:00", Impressions: 8000, Clicks: 130, Spend: 95.37, Currency: "EUR",
		CPC:                     0.73,  // 95.37/130 = 0.733615…
		CPM:                     11.92, // 95.37/8000*1000 = 11.92125
		CTR:                     1.63,  // 130/8000*100 = 1.625, half away from zero
		Sessions:                1,     //
		CostPerSession:          95.37, // 95.37/1
		CVRClicksToSessions:     0.77,  // 1/130*100 = 0.769230…
		UniqueUsers:             1,     //
		CostPerUniqueUser:       95.37, // 95.37/1
		CVRClicksToUniqueUsers:  0.77,  // 1/130*100
		Engaged:                 1,     //
		CostPerEngagement:       95.37, // 95.37/1
		CVRUniqueUsersToEngaged: 100,   // 1/1*100
		Events:                  eventsOf(1, 1),
		Keywords:                []keywordJSON{{"price", 1, 100}}, // 1/1*100
		KeywordsCount:           1,
	}}
	sales := []saleJSON{
		// D1: L1's 49.90 EUR on A1.
		{CampaignID: insC1, Date: "2026-03-16T00:00:00+00:00", Revenue: 49.9, Currency: "EUR", Count: 1,
			ROAS:    0.3,    // 49.90/168.45 = 0.296230…
			CVR:     33.33,  // 1/3*100
			CVRCost: 168.45, // 168.45/1
		},
		// D2: L1's 30.00 USD on A1, apart from the EUR account's revenue.
		{CampaignID: insC1, Date: "2026-03-17T00:00:00+00:00", Currency: "EUR", Count: 1,
			CVR:             50,     // 1/2*100
			CVRCost:         100.55, // 100.55/1
			OtherCurrencies: []moneyJSON{{"USD", 30}},
		},
		// D3: L2's 120.00 EUR on A1 and L5's signup on A2, over D3's one user.
		{CampaignID: insC1, Date: "2026-03-18T00:00:00+00:00", Revenue: 120, Currency: "EUR", Count: 2,
			ROAS:    1.26,  // 120/95.37 = 1.258257…
			CVR:     200,   // 2/1*100
			CVRCost: 47.69, // 95.37/2 = 47.685, half away from zero
		},
	}
	return insights, sales
}

// wantA3 is A3 (and its campaign C2): delivery only. Every ratio over sessions, users,
// engagements or conversions has a zero denominator and is 0.
func wantA3(id insightJSON) insightJSON {
	id.Impressions, id.Clicks, id.Spend, id.Currency = 2000, 20, 5.05, "EUR"
	id.CPC = 0.25 // 5.05/20 = 0.2525
	id.CPM = 2.53 // 5.05/2000*1000 = 2.525, half away from zero
	id.CTR = 1    // 20/2000*100
	id.Keywords = []keywordJSON{}
	return id
}

// wantA1Daily is A1's insights per day.
func wantA1Daily() []insightJSON {
	return []insightJSON{{
		// D1: L1 (engaged, converted, price), L2, L3 (engaged, delivery).
		AdID: insA1, Date: "2026-03-16T00:00:00+00:00", Impressions: 10000, Clicks: 250, Spend: 123.45, Currency: "EUR",
		CPC:                       0.49,   // 123.45/250 = 0.4938
		CPM:                       12.35,  // 123.45/10000*1000 = 12.345, half away from zero
		CTR:                       2.5,    // 250/10000*100
		Sessions:                  3,      //
		CostPerSession:            41.15,  // 123.45/3
		CVRClicksToSessions:       1.2,    // 3/250*100
		UniqueUsers:               3,      //
		CostPerUniqueUser:         41.15,  //
		CVRClicksToUniqueUsers:    1.2,    //
		Engaged:                   2,      //
		CostPerEngagement:         61.73,  // 123.45/2 = 61.725, half away from zero
		CVRUniqueUsersToEngaged:   66.67,  // 2/3*100
		Converted:                 1,      //
		CostPerConversions:        123.45, //
		CVRUniqueUsersToConverted: 33.33,  // 1/3*100
		Events:                    eventsOf(3, 2),
		Keywords:                  []keywordJSON{{"delivery", 1, 33.33}, {"price", 1, 33.33}}, // ties by keyword
		KeywordsCount:             2,
	}, {
		// D2: L4 (price), L2 (price, delivery); no engagement.
		AdID: insA1, Date: "2026-03-17T00:00:00+00:00", Impressions: 8000, Clicks: 160, Spend: 100.55, Currency: "EUR",
		CPC:                    0.63,  // 100.55/160 = 0.6284375
		CPM:                    12.57, // 100.55/8000*1000 = 12.56875
		CTR:                    2,     // 160/8000*100
		Sessions:               2,     //
		CostPerSession:         50.28, // 100.55/2 = 50.275, half away from zero
		CVRClicksToSessions:    1.25,  // 2/160*100
		UniqueUsers:            2,     //
		CostPerUniqueUser:      50.28, //
		CVRClicksToUniqueUsers: 1.25,  //
		Events:                 eventsOf(2, 3),
		Keywords:               []keywordJSON{{"price", 2, 100}, {"delivery", 1, 50}},
		KeywordsCount:          2,
	}, {
		// D3: delivery and no session (L2's purchase that day is not in the insight).
		AdID: insA1, Date: "2026-03-18T00:00:00+00:00", Impressions: 6000, Clicks: 90, Spend: 76.02, Currency: "EUR",
		CPC:      0.84,  // 76.02/90 = 0.844666…
		CPM:      12.67, // 76.02/6000*1000
		CTR:      1.5,   // 90/6000*100
		Keywords: []keywordJSON{},
	}}
}

// wantSources is the compare-sources view of 03-16 to 03-18: most sessions first,
// then by type and id.
func wantSources() []sourceRowJSON {
	return []sourceRowJSON{
		{Type: "ad", ID: insA1, Name: "Spring sale - video", Direction: "incoming", Sessions: 5, UniqueUsers: 4, Engaged: 2,
			Converted: 1, OffThreadCount: 3, Revenue: 169.9, Currency: "EUR", OtherCurrencies: []moneyJSON{{"USD", 30}},
			Spend: 300.02, ROAS: 0.57, CostPerLead: 75.01}, // 169.90/300.02; 300.02/4 = 75.005
		{Type: "ad", ID: insA2, Name: "Spring sale - image", Direction: "incoming", Sessions: 2, UniqueUsers: 2, Engaged: 2,
			Converted: 1, OffThreadCount: 1, Currency: "EUR", Spend: 64.35, CostPerLead: 32.18}, // 64.35/2 = 32.175
		{Type: "ad", ID: insA4, Name: "Summer drop", Direction: "incoming", Sessions: 1, UniqueUsers: 1,
			OffThreadCount: 1, Revenue: 25, Currency: "USD"}, // no spend: roas and cost per lead 0
		{Type: "campaign", ID: insTag, Name: insTag, Direction: "outgoing", Sessions: 1, UniqueUsers: 1,
			OffThreadCount: 1, Revenue: 10, Currency: "EUR"},
		{Type: "custom", ID: "1", Name: "Billboard A", Phrase: "billboard a", Direction: "incoming", Sessions: 1,
			UniqueUsers: 1, Engaged: 1},
		{Type: "organic", Name: "Organic", Direction: "incoming", Sessions: 1, UniqueUsers: 1},
		// Spend without sessions is a source too: the money it cost shows.
		{Type: "ad", ID: insA3, Name: "Loyalty - carousel", Direction: "incoming", Currency: "EUR", Spend: 5.05},
		{Type: "unattributed", Name: "Unattributed off-thread events", Direction: "incoming", OffThreadCount: 1,
			Revenue: 15, Currency: "EUR"},
	}
}

// ---- contacts export (SPEC §6.4) ----

func checkContacts(t *testing.T, c *apiClient) {
	const (
		l1 = "+491710000001,,2026-03-16T10:00:00+00:00,2026-03-16T10:05:00+00:00,ad:" + insA1 + ",1,49.90,EUR,30.00 USD"
		l2 = "+491710000002,,2026-03-16T11:00:00+00:00,2026-03-17T12:00:00+00:00,ad:" + insA1 + ",2,120.00,EUR,"
		l3 = "+491710000003,,2026-03-16T12:00:00+00:00,2026-03-16T12:10:00+00:00,ad:" + insA1 + ",1,,,"
		l7 = "+491710000007,,2026-03-16T13:00:00+00:00,2026-03-16T13:00:00+00:00,organic,1,,,"
		l4 = "+491710000004,,2026-03-17T09:00:00+00:00,2026-03-17T09:35:00+00:00,ad:" + insA1 + " ad:" + insA2 + ",2,,,"
		l9 = "+491710000009,,2026-03-17T09:00:00+00:00,2026-03-17T09:00:00+00:00,campaign:" + insTag + ",1,10.00,EUR,"
		l8 = "+491710000008,,2026-03-17T14:00:00+00:00,2026-03-17T14:02:00+00:00,custom:1,1,,,"
		l5 = "+491710000005,,2026-03-18T10:00:00+00:00,2026-03-18T10:01:00+00:00,ad:" + insA2 + ",1,,,"
		l6 = "+491710000006,,2026-03-18T15:00:00+00:00,2026-03-18T15:00:00+00:00,ad:" + insA4 + ",1,25.00,USD,"
	)
	cases := []struct {
		name, query string
		want        []string
	}{
		{"everyone, by first session", "", []string{l1, l2, l3, l7, l4, l9, l8, l5, l6}},
		{"an ad by id", "source_id=" + insA1, []string{l1, l2, l3,
			"+491710000004,,2026-03-17T09:00:00+00:00,2026-03-17T09:00:00+00:00,ad:" + insA1 + ",1,,,"}},
		{"an ad as type:id", "source_id=ad:" + insA2, []string{
			"+491710000004,,2026-03-17T09:30:00+00:00,2026-03-17T09:35:00+00:00,ad:" + insA2 + ",1,,,", l5}},
		{"organic, as the source column names it", "source_id=organic", []string{l7}},
		{"a campaign", "source_id=campaign:" + insTag, []string{l9}},
		{"a custom source", "source_id=custom:1", []string{l8}},
		{"converted leads", "event_type=converted", []string{l1, l4}},
		// L4 converted on A2, not in its A1 session.
		{"converted leads of an ad", "source_id=" + insA1 + "&event_type=converted", []string{l1}},
		{"engaged leads of an ad", "source_id=" + insA1 + "&event_type=engagement", []string{l1, l3}},
		{"keyword leads", "event_type=keyword", []string{l1, l2, l3, l7, l4, l8, l5}},
		{"one day", "date_from=2026-03-18&date_to=2026-03-18", []string{l5, l6}},
		{"until D1: sessions that started then", "date_to=2026-03-16", []string{l1,
			"+491710000002,,2026-03-16T11:00:00+00:00,2026-03-16T11:00:00+00:00,ad:" + insA1 + ",1,120.00,EUR,", l3, l7}},
		{"nobody", "source_id=" + insA3, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := c.call("GET", appPath+"/contacts/export?"+tc.query, "", nil)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
				t.Fatalf("answered %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
			records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
			if err != nil {
				t.Fatalf("not CSV: %v\n%s", err, raw)
			}
			if want := []string{"phone", "user_id", "first_seen", "last_seen", "source", "sessions", "revenue", "currency", "other_revenue"}; !slices.Equal(records[0], want) {
				t.Fatalf("header %q, want %q", records[0], want)
			}
			got := []string{}
			for _, r := range records[1:] {
				got = append(got, strings.Join(r, ","))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rows:\n %s\nwant:\n %s", strings.Join(got, "\n "), strings.Join(tc.want, "\n "))
			}
		})
	}
	for _, tc := range []struct{ query, field string }{
		{"date_from=18.03.2026", "date_from"},
		{"date_from=2026-03-18&date_to=2026-03-16", "date_to"},
	} {
		resp, body := c.call("GET", appPath+"/contacts/export?"+tc.query, "", nil)
		wantError(t, resp, body, 400, tc.field)
	}
}

// ---- parameter validation (SPEC §6: out of range → 400; unknown objects → 404) ----

func checkInsightParams(t *testing.T, c *apiClient) {
	bad := []struct{ path, field string }{
		{"/ads/account/" + insAccount + "?limit=0", "limit"},
		{"/ads/account/" + insAccount + "?limit=101", "limit"},
		{"/ads/account/" + insAccount + "?limit=ten", "limit"},
		{"/ads/account/" + insAccount + "?offset=-1", "offset"},
		{"/ads/account/" + insAccount + "?date_from=2026-3-16", "date_from"},
		{"/ads/account/" + insAccount + "?date_to=yesterday", "date_to"},
		{"/ads/account/" + insAccount + "?date_from=2026-03-18&date_to=2026-03-16", "date_to"},
		{"/ads/" + insA1 + "?date_from=16.03.2026", "date_from"},
		{"/ads/" + insA1 + "/insights?date_to=2026-02-30", "date_to"},
		{"/campaigns/account/" + insAccount + "?limit=0", "limit"},
		{"/campaigns/account/" + insAccount + "?limit=101", "limit"},
		{"/campaigns/account/" + insAccount + "?offset=-1", "offset"},
		{"/campaigns/" + insC1 + "?date_from=x", "date_from"},
		{"/campaigns/" + insC1 + "/insights?limit=0", "limit"},
		{"/sources?date_from=2026-13-01", "date_from"},
	}
	for _, tc := range bad {
		resp, body := c.call("GET", appPath+tc.path, "", nil)
		wantError(t, resp, body, 400, tc.field)
	}
	for _, limit := range []string{"1", "100"} { // the ends of the range are allowed
		if resp, body := c.call("GET", appPath+"/ads/account/"+insAccount+"?limit="+limit, "", nil); resp.StatusCode != 200 {
			t.Errorf("limit=%s answered %d %s", limit, resp.StatusCode, body)
		}
	}
	notFound := []struct{ path, field string }{
		{appPath + "/ads/999", "ad_id"},
		{appPath + "/ads/999/insights", "ad_id"},
		{"/v1/clients/default/apps/other-app/ads/" + insA1, "ad_id"}, // known, but in another app
		{appPath + "/campaigns/999", "campaign_id"},
		{appPath + "/campaigns/999/insights", "campaign_id"},
		{"/v1/clients/default/apps/other-app/campaigns/" + insC1, "campaign_id"},
		{"/v1/clients/default/facebook-accounts/999", "facebook_account"},
	}
	for _, tc := range notFound {
		resp, body := c.call("GET", tc.path, "", nil)
		wantError(t, resp, body, 404, tc.field)
		if !strings.Contains(string(body), "999") && !strings.Contains(string(body), "other-app") {
			t.Errorf("%s: message does not name the unknown id: %s", tc.path, body)
		}
	}
}
