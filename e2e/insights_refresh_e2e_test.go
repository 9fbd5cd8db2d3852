package e2e

// End-to-end tests of refresh (SPEC §4.1, §4.4, §6.1): definitions added after the
// messages count them only after a refresh, a late message is placed by its timestamp,
// refreshing twice changes nothing, and ads that only referrals revealed are listed
// under "unassigned" until an import places them.

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	refLead1 = "491720000001" // A1: asks the price, taps "Order now"
	refLead2 = "491720000002" // A1, then a message 30 h later, then a late one from 15 h after the click
	refLead3 = "491720000003" // clicks A5, an ad no import knows yet
	insA5    = "120215555555555555"
)

// refreshState is what a refresh may change, normalized, for before/after comparisons.
func (c *apiClient) refreshState() string {
	c.t.Helper()
	var b strings.Builder
	for _, path := range []string{
		appPath + "/ads/account/" + insAccount,
		appPath + "/ads/" + insA1 + "/insights",
		appPath + "/campaigns/" + insC1 + "/insights",
		appPath + "/sources",
		appPath + "/events?date_from=2026-03-16&date_to=2026-03-17&limit=1000",
		appPath + "/event_groups",
	} {
		b.Write(normalize(c.t, c.getJSON(path, new(any))))
	}
	return b.String()
}

// leadEvents is the "type@time" of a lead's events, in time order.
func (c *apiClient) leadEvents(lead string) []string {
	c.t.Helper()
	out := []string{}
	for _, r := range c.events("date_from=2026-03-16&date_to=2026-03-17&limit=1000").Data {
		if r.Phone == lead {
			out = append(out, r.Type+"@"+strings.TrimPrefix(r.Date, "2026-03-")+" "+r.SourceType)
		}
	}
	return out
}

func (c *apiClient) sourceSessions() map[string]string {
	c.t.Helper()
	var p pageOf[sourceRowJSON]
	c.getJSON(appPath+"/sources", &p)
	out := map[string]string{}
	for _, r := range p.Data {
		out[r.Type+":"+r.ID] = fmtRow(r) + " engaged " + jsonNum(float64(r.Engaged))
	}
	return out
}

type refreshAnswer struct {
	Success bool `json:"success"`
	Rebuilt struct {
		Messages  int `json:"messages"`
		Sessions  int `json:"sessions"`
		OffThread int `json:"off_thread_events"`
	} `json:"rebuilt"`
}

func TestInsightsRefresh(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	c.sendJSON("POST", importPath, spendImport(rowA1("2026-03-16", 10000, 250, 123.45), rowA1("2026-03-17", 8000, 160, 100.55)), 200, nil)

	d1, d2 := day(2026, 3, 16), day(2026, 3, 17)
	for _, m := range []waItem{
		textMsg(refLead1, d1.Add(10*time.Hour), "hi, what's the price?").fromAd(insA1),
		replyMsg(refLead1, d1.Add(10*time.Hour+2*time.Minute), "button_reply", "order_now", "Order now"),
		textMsg(refLead2, d1.Add(8*time.Hour), "hello").fromAd(insA1),
		textMsg(refLead2, d2.Add(14*time.Hour), "back again"), // 30 h after the click: a new, organic session
		referralMsg(textMsg(refLead3, d1.Add(12*time.Hour), "hi"), insA5, "Autumn boots"),
		// Delivered last, written 15 h after the click: it belongs to the ad's session.
		textMsg(refLead2, d1.Add(23*time.Hour), "sorry, fell asleep"),
	} {
		postWebhook(t, sc, messagesWebhook(m))
	}
	// Bought after the organic message: live, the organic session gets it.
	c.postPurchase(purchase(refLead2, "EUR", 20, "2026-03-17T15:00:00Z", "r-order-1"), "organic:")

	// As delivered: the late message joined the lead's open (organic) session.
	if got, want := c.leadEvents(refLead2), []string{"conversation@16T08:00:00+00:00 ad", "engagement@16T23:00:00+00:00 organic",
		"conversation@17T14:00:00+00:00 organic", "purchase@17T15:00:00+00:00 organic"}; !slices.Equal(got, want) {
		t.Errorf("lead 2 before refresh: %q, want %q", got, want)
	}

	// Definitions added after the messages do not count them yet.
	var price groupJSON
	c.sendJSON("POST", appPath+"/event_groups", map[string]string{"type": "keyword", "type_value": "price"}, 201, &price)
	c.sendJSON("POST", appPath+"/converted_events", map[string]string{"campaign_id": insC1, "type": "button_reply", "type_id": "order_now"}, 200, nil)
	if n := c.events("date_from=2026-03-16&date_to=2026-03-17&event_type=keyword").TotalCount; n != 0 {
		t.Errorf("%d keyword events before refresh, want 0", n)
	}
	if n := c.events("date_from=2026-03-16&date_to=2026-03-17&event_type=converted").TotalCount; n != 0 {
		t.Errorf("%d converted events before refresh, want 0", n)
	}
	var ad adObjJSON
	c.getJSON(appPath+"/ads/"+insA1, &ad)
	if in := ad.Insight; in.Sessions != 2 || in.Engaged != 1 || in.Converted != 0 || in.Events.Keyword != 0 || len(in.Keywords) != 0 ||
		ad.SaleInsight.Count != 0 {
		t.Errorf("A1 before refresh: %+v %+v", in, ad.SaleInsight)
	}
	wantSources := map[string]string{
		"ad:" + insA1: "2/2 rev 0 EUR [] spend 224 engaged 1",
		"ad:" + insA5: "1/1 rev 0  [] spend 0 engaged 0",
		"organic:":    "1/1 rev 20 EUR [] spend 0 engaged 1",
	}
	if got := c.sourceSessions(); !mapsEqual(got, wantSources) {
		t.Errorf("sources before refresh:\n got %v\nwant %v", got, wantSources)
	}

	// The unassigned ad, named by its referral headline.
	var unassigned pageOf[adObjJSON]
	c.getJSON(appPath+"/ads/account/unassigned", &unassigned)
	if unassigned.TotalCount != 1 || unassigned.Data[0].ID != insA5 || unassigned.Data[0].Name != "Autumn boots" ||
		unassigned.Data[0].Insight.Sessions != 1 || !unassigned.Data[0].ReferralOnly {
		t.Errorf("unassigned ads %+v", unassigned)
	}

	var first refreshAnswer
	c.sendJSON("POST", appPath+"/ads/"+insA1+"/refresh", nil, 200, &first)
	// 6 messages in 3 sessions now (the late one glued lead 2's two), 1 purchase.
	if !first.Success || first.Rebuilt.Messages != 6 || first.Rebuilt.Sessions != 3 || first.Rebuilt.OffThread != 1 {
		t.Errorf("refresh answered %+v", first)
	}

	// Placed by timestamp: click 08:00, late message 23:00 (engagement), then 14:00 the
	// next day, 15 h later, in the same session.
	if got, want := c.leadEvents(refLead2), []string{"conversation@16T08:00:00+00:00 ad", "engagement@16T23:00:00+00:00 ad",
		"purchase@17T15:00:00+00:00 ad"}; !slices.Equal(got, want) {
		t.Errorf("lead 2 after refresh: %q, want %q", got, want)
	}
	if got, want := c.leadEvents(refLead1), []string{"conversation@16T10:00:00+00:00 ad", "keyword@16T10:00:00+00:00 ad",
		"button_reply@16T10:02:00+00:00 ad", "converted@16T10:02:00+00:00 ad", "engagement@16T10:02:00+00:00 ad"}; !slices.Equal(sortedCopy(got), sortedCopy(want)) {
		t.Errorf("lead 1 after refresh: %q, want %q", got, want)
	}
	c.getJSON(appPath+"/ads/"+insA1, &ad)
	want := insightJSON{AdID: insA1, Impressions: 18000, Clicks: 410, Spend: 224, Currency: "EUR",
		CPC:                       0.55,  // 224/410 = 0.546341…
		CPM:                       12.44, // 224/18000*1000 = 12.444…
		CTR:                       2.28,  // 410/18000*100 = 2.2777…
		Sessions:                  2,
		CostPerSession:            112,  // 224/2
		CVRClicksToSessions:       0.49, // 2/410*100 = 0.4878…
		UniqueUsers:               2,
		CostPerUniqueUser:         112,
		CVRClicksToUniqueUsers:    0.49,
		Engaged:                   2,
		CostPerEngagement:         112,
		CVRUniqueUsersToEngaged:   100,
		Converted:                 1,
		CostPerConversions:        224,
		CVRUniqueUsersToConverted: 50,
		Events:                    eventsOf(2, 1),
		Keywords:                  []keywordJSON{{"price", 1, 50}},
		KeywordsCount:             1,
	}
	checkInsight(t, "A1 after refresh", ad.Insight, want)
	// The purchase follows the rebuilt session: A1 now, and the organic source is gone.
	checkSale(t, "A1 after refresh", ad.SaleInsight, saleJSON{AdID: insA1, Revenue: 20, Currency: "EUR", Count: 1,
		ROAS: 0.09, CVR: 50, CVRCost: 224}) // 20/224 = 0.0893
	wantSources = map[string]string{
		"ad:" + insA1: "2/2 rev 20 EUR [] spend 224 engaged 2",
		"ad:" + insA5: "1/1 rev 0  [] spend 0 engaged 0",
	}
	if got := c.sourceSessions(); !mapsEqual(got, wantSources) {
		t.Errorf("sources after refresh:\n got %v\nwant %v", got, wantSources)
	}

	// Refreshing again, by any of the four routes, changes nothing.
	before := c.refreshState()
	for _, path := range []string{"/ads/account/" + insAccount + "/refresh", "/campaigns/" + insC1 + "/refresh",
		"/campaigns/account/" + insAccount + "/refresh", "/ads/" + insA1 + "/refresh"} {
		var again refreshAnswer
		c.sendJSON("POST", appPath+path, nil, 200, &again)
		if again != first {
			t.Errorf("%s answered %+v, the first refresh %+v", path, again, first)
		}
		if after := c.refreshState(); after != before {
			t.Errorf("%s changed the answers:\n%s", path, lineDiff(before, after))
		}
	}

	// An import that places A5 moves it out of "unassigned", with its sessions.
	c.sendJSON("POST", importPath, spendImport(spendRow{"2026-03-16", insC1, "Spring sale", insAS1, "Runners 25-45",
		insA5, "Autumn boots - carousel", "ACTIVE", 2000, 40, 10}), 200, nil)
	c.getJSON(appPath+"/ads/account/unassigned", &unassigned)
	if unassigned.TotalCount != 0 || len(unassigned.Data) != 0 {
		t.Errorf("unassigned after the import: %+v", unassigned)
	}
	var listed pageOf[adObjJSON]
	c.getJSON(appPath+"/ads/account/"+insAccount, &listed)
	if listed.TotalCount != 2 || listed.Data[1].ID != insA5 || listed.Data[1].Name != "Autumn boots - carousel" ||
		listed.Data[1].ReferralOnly || listed.Data[1].Insight.Sessions != 1 || listed.Data[1].Insight.Spend != 10 ||
		listed.Data[1].Insight.CostPerSession != 10 || listed.Data[1].Campaign.Insight.Sessions != 3 {
		t.Errorf("account ads after placing A5: %+v", listed.Data)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRefreshUnknownTargetsAre404 refuses refreshes of ads, campaigns and ad accounts the
// sidecar does not know, and accepts the unassigned account.
func TestRefreshUnknownTargetsAre404(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	for _, r := range []struct{ path, field string }{
		{"/ads/999/refresh", "ad_id"},
		{"/campaigns/999/refresh", "campaign_id"},
		{"/ads/account/999/refresh", "ad_account_id"},
		{"/campaigns/account/999/refresh", "ad_account_id"},
	} {
		resp, body := c.call("POST", appPath+r.path, "", nil)
		wantError(t, resp, body, 404, r.field)
	}
	if resp, body := c.call("POST", appPath+"/ads/account/unassigned/refresh", "", nil); resp.StatusCode != 200 {
		t.Fatalf("refresh of the unassigned account answered %d %s", resp.StatusCode, body)
	}
}
