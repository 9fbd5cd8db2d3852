package e2e

// End-to-end tests of the spend import (SPEC §6.5): a Meta Ads Manager CSV export and
// JSON, re-imports that replace an (ad, day), and rejected imports that store nothing.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

const importPath = appPath + "/ads/import"

// adsManagerCSV is a daily-breakdown export as Ads Manager writes it: a UTF-8 BOM,
// the report range beside the day, a campaign name with a comma, empty "Link clicks"
// cells for days without clicks, extra columns the import ignores, and a trailing
// totals row and blank line.
const adsManagerCSV = "\ufeff" +
	`Reporting starts,Reporting ends,Day,Account ID,Account name,Campaign name,Campaign ID,Ad set name,Ad set ID,Ad name,Ad ID,Ad delivery,Impressions,Link clicks,Amount spent (EUR),CPC (cost per link click) (EUR)
2026-03-16,2026-03-17,2026-03-16,174816537731874,Shop GmbH - Ad-Account,"Spring sale, 2026",120200000000000001,Runners 25-45,120201000000000001,Spring sale - video,120210000000000001,active,10000,250,123.45,0.49
2026-03-16,2026-03-17,2026-03-17,174816537731874,Shop GmbH - Ad-Account,"Spring sale, 2026",120200000000000001,Runners 25-45,120201000000000001,Spring sale - video,120210000000000001,active,8000,,100.55,
2026-03-16,2026-03-17,2026-03-16,174816537731874,Shop GmbH - Ad-Account,"Spring sale, 2026",120200000000000001,Runners 25-45,120201000000000001,Spring sale - image,120210000000000002,inactive,5000,120,45.00,0.38
2026-03-16,2026-03-17,2026-03-17,174816537731874,Shop GmbH - Ad-Account,"Spring sale, 2026",120200000000000001,Runners 25-45,120201000000000001,Spring sale - image,120210000000000002,inactive,3000,,0.00,
2026-03-16,2026-03-17,,,,,,,,,,,26000,370,269.00,0.73

`

// deliveryOf is what an ad's insight says about its delivery.
type deliveryOf struct {
	Impressions, Clicks int64
	Spend               float64
}

func (c *apiClient) adDelivery(adID, query string) deliveryOf {
	c.t.Helper()
	var ad adObjJSON
	c.getJSON(appPath+"/ads/"+adID+"?"+query, &ad)
	return deliveryOf{ad.Insight.Impressions, ad.Insight.Clicks, ad.Insight.Spend}
}

// catalogueState is everything an import can change, normalized, for before/after
// comparisons.
func (c *apiClient) catalogueState() string {
	c.t.Helper()
	var b strings.Builder
	for _, path := range []string{
		"/v1/clients/default/facebook-accounts",
		appPath + "/ads/account/" + insAccount,
		appPath + "/ads/account/unassigned",
		appPath + "/campaigns/account/" + insAccount,
		appPath + "/ads/" + insA1 + "/insights",
		appPath + "/ads/" + insA2 + "/insights",
	} {
		resp, body := c.call("GET", path, "", nil)
		b.WriteString(path + " " + resp.Status + "\n")
		b.Write(normalize(c.t, body))
	}
	return b.String()
}

func TestInsightsSpendImportCSV(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")

	importCSV := func(query, body string) {
		t.Helper()
		resp, got := c.call("POST", importPath+query, "text/csv; charset=utf-8", []byte(body))
		if resp.StatusCode != 200 || !strings.Contains(string(got), `"success":true`) {
			t.Fatalf("CSV import answered %d %s", resp.StatusCode, got)
		}
	}
	resp, got := c.call("POST", importPath+"?facebook_account_id="+insFacebook+"&facebook_account_email=ads@shop.example",
		"text/csv", []byte(adsManagerCSV))
	// 4 rows (the totals row is not one), 2 ads, 1 campaign.
	var res struct {
		Success  bool `json:"success"`
		Imported struct {
			Rows, Ads, Campaigns int
		} `json:"imported"`
	}
	if err := json.Unmarshal(got, &res); err != nil || resp.StatusCode != 200 || !res.Success ||
		res.Imported.Rows != 4 || res.Imported.Ads != 2 || res.Imported.Campaigns != 1 {
		t.Fatalf("CSV import answered %d %s (%v), want 4 rows, 2 ads, 1 campaign", resp.StatusCode, got, err)
	}

	// The catalogue as the export names it; the account and its currency from the
	// columns and the "Amount spent (EUR)" header; empty link clicks are 0.
	var ads pageOf[adObjJSON]
	c.getJSON(appPath+"/ads/account/"+insAccount, &ads)
	if ads.TotalCount != 2 || len(ads.Data) != 2 {
		t.Fatalf("ads %+v", ads)
	}
	a1, a2 := ads.Data[0], ads.Data[1]
	if a1.ID != insA1 || a1.Name != "Spring sale - video" || a1.Status != "ACTIVE" || a2.Status != "INACTIVE" ||
		a1.AdAccount != (accountJSON{insAccount, "Shop GmbH - Ad-Account", "EUR"}) ||
		a1.AdSet.ID != insAS1 || a1.AdSet.Name != "Runners 25-45" || a1.Campaign.Name != "Spring sale, 2026" ||
		a1.Campaign.StartTime != "2026-03-16T00:00:00+00:00" || a1.Campaign.StopTime != "" { // ACTIVE: it runs
		t.Errorf("imported ads %+v", ads.Data)
	}
	// A row's status is its ad's delivery: the campaign stays ACTIVE while one of its
	// ads is, whichever row comes last.
	if a1.Campaign.Status != "ACTIVE" || a2.Campaign.Status != "ACTIVE" {
		t.Errorf("campaign status %q / %q, want ACTIVE (one of its ads is active)", a1.Campaign.Status, a2.Campaign.Status)
	}
	wantA1, wantA2 := deliveryOf{18000, 250, 224}, deliveryOf{8000, 120, 45}
	if got := c.adDelivery(insA1, ""); got != wantA1 {
		t.Errorf("A1 delivery %+v, want %+v", got, wantA1)
	}
	if got := c.adDelivery(insA2, ""); got != wantA2 {
		t.Errorf("A2 delivery %+v, want %+v", got, wantA2)
	}
	var accounts []accountJSON
	c.getJSON("/v1/clients/default/facebook-accounts/"+insFacebook, &accounts)
	if len(accounts) != 1 || accounts[0] != (accountJSON{insAccount, "Shop GmbH - Ad-Account", "EUR"}) {
		t.Errorf("ad accounts of the facebook account: %+v", accounts)
	}

	// The same export again replaces each (ad, day): nothing is counted twice.
	before := c.catalogueState()
	importCSV("", adsManagerCSV)
	if after := c.catalogueState(); after != before {
		t.Errorf("a second import of the same export changed the answers:\n%s", lineDiff(before, after))
	}

	// A corrected row replaces its (ad, day) only. Without an Account ID column the
	// account is a parameter.
	importCSV("?ad_account_id="+insAccount, "Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n"+
		"2026-03-17,"+insC1+","+insA1+",8000,160,100.65\n")
	if got, want := c.adDelivery(insA1, ""), (deliveryOf{18000, 410, 224.1}); got != want {
		t.Errorf("A1 after the correction: %+v, want %+v", got, want)
	}
	if got, want := c.adDelivery(insA1, "date_from=2026-03-16&date_to=2026-03-16"), (deliveryOf{10000, 250, 123.45}); got != want {
		t.Errorf("A1 on 03-16 after correcting 03-17: %+v, want %+v", got, want)
	}
	if got := c.adDelivery(insA2, ""); got != wantA2 {
		t.Errorf("A2 after correcting A1: %+v, want %+v", got, wantA2)
	}
	// The short export kept the names the first one gave (it has no name columns).
	var a1Now adObjJSON
	c.getJSON(appPath+"/ads/"+insA1, &a1Now)
	if a1Now.Name != "Spring sale - video" || a1Now.Campaign.Name != "Spring sale, 2026" || a1Now.AdSet.Name != "Runners 25-45" {
		t.Errorf("names after a short export: %q %q %q", a1Now.Name, a1Now.Campaign.Name, a1Now.AdSet.Name)
	}

	// Rejected imports answer 400 naming the line and column (or 415), and store
	// nothing: not the good rows before the bad one, not a new ad or account.
	const head = "Day,Account ID,Campaign name,Campaign ID,Ad name,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n"
	good := "2026-03-18," + insAccount + ",New,120200000000000009,New ad,120210000000000009,100,1,1.00\n" +
		"2026-03-16," + insAccount + ",Spring sale,120200000000000001,Spring sale - video," + insA1 + ",1,1,1.00\n"
	before = c.catalogueState()
	rejects := []struct {
		name, contentType, query, body string
		status                         int
		field                          string
	}{
		{"count with a thousands separator", "text/csv", "", head + good +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",\"8,000\",160,100.55\n",
			400, `line 4, column "Impressions"`},
		{"count that is not a number", "text/csv", "", head + good +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",n/a,160,100.55\n",
			400, `line 4, column "Impressions"`},
		{"a blank line before the bad row", "text/csv", "", head + good + "\n" +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",8000,lots,100.55\n",
			400, `line 5, column "Link clicks"`},
		{"amount with a comma decimal", "text/csv", "", head + good +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",8000,160,\"100,55\"\n",
			400, `line 4, column "Amount spent (EUR)"`},
		{"negative amount", "text/csv", "", head + good +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",8000,160,-1.00\n",
			400, `line 4, column "Amount spent (EUR)"`},
		{"bad day", "text/csv", "", head + good +
			"17.03.2026," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",8000,160,100.55\n",
			400, `line 4, column "Day"`},
		{"missing ad id", "text/csv", "", head + good +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x,,8000,160,100.55\n",
			400, `line 4, column "Ad ID"`},
		{"an (ad, day) twice", "text/csv", "", head + good +
			"2026-03-16," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",8000,160,100.55\n",
			400, "line 4"},
		{"another ad account in the same file", "text/csv", "", head + good +
			"2026-03-17,999,Spring sale,120200000000000001,x," + insA1 + ",8000,160,100.55\n",
			400, `line 4, column "Account ID"`},
		{"a row with a missing cell", "text/csv", "", head + good +
			"2026-03-17," + insAccount + ",Spring sale,120200000000000001,x," + insA1 + ",8000,160\n",
			400, "line 4"},
		{"no Ad ID column", "text/csv", "", "Day,Campaign ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,1,1,1,1.00\n",
			400, "line 1"},
		{"the account's currency is EUR", "text/csv", "", strings.ReplaceAll(head, "(EUR)", "(USD)") + good, 400, "ad_account.currency"},
		{"header and parameter disagree", "text/csv", "?currency=USD", head + good, 400, "currency"},
		{"no account", "text/csv", "", "Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,1,2,1,1,1.00\n",
			400, "ad_account.id"},
		{"only a header", "text/csv", "?ad_account_id=" + insAccount, head, 400, "rows"},
		{"a spreadsheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "", head + good, 415, ""},
		{"form upload", "multipart/form-data; boundary=x", "", head + good, 415, ""},
		{"plain text", "text/plain", "", head + good, 415, ""},
	}
	for _, r := range rejects {
		t.Run(r.name, func(t *testing.T) {
			resp, body := c.call("POST", importPath+r.query, r.contentType, []byte(r.body))
			wantError(t, resp, body, r.status, r.field)
			if after := c.catalogueState(); after != before {
				t.Errorf("a rejected import changed the answers:\n%s", lineDiff(before, after))
			}
		})
	}
	resp, body := c.call("GET", appPath+"/ads/120210000000000009", "", nil)
	wantError(t, resp, body, 404, "ad_id")
}

func TestInsightsSpendImportJSON(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	c.sendJSON("POST", importPath, spendImport(rowA1("2026-03-16", 10000, 250, 123.45), rowA1("2026-03-17", 8000, 160, 100.55)), 200, nil)
	if got, want := c.adDelivery(insA1, ""), (deliveryOf{18000, 410, 224}); got != want {
		t.Fatalf("A1 %+v, want %+v", got, want)
	}
	// Again, and with one corrected day: each (ad, day) is replaced.
	c.sendJSON("POST", importPath, spendImport(rowA1("2026-03-16", 10000, 250, 123.45), rowA1("2026-03-17", 8000, 160, 100.55)), 200, nil)
	if got, want := c.adDelivery(insA1, ""), (deliveryOf{18000, 410, 224}); got != want {
		t.Fatalf("A1 after the same import: %+v, want %+v", got, want)
	}
	c.sendJSON("POST", importPath, spendImport(rowA1("2026-03-17", 9000, 170, 110)), 200, nil)
	if got, want := c.adDelivery(insA1, ""), (deliveryOf{19000, 420, 233.45}); got != want {
		t.Fatalf("A1 after a corrected day: %+v, want %+v", got, want)
	}

	before := c.catalogueState()
	ok := rowA2("2026-03-16", 5000, 120, 45)
	bad := func(mutate func(r *spendRow)) []spendRow {
		r := rowA2("2026-03-17", 3000, 10, 5)
		mutate(&r)
		return []spendRow{ok, r}
	}
	withRows := func(rows []spendRow) map[string]any { return spendImport(rows...) }
	withAccount := func(acct map[string]string) map[string]any {
		imp := spendImport(ok)
		imp["ad_account"] = acct
		return imp
	}
	rejects := []struct {
		name  string
		body  any
		field string
	}{
		{"bad date", withRows(bad(func(r *spendRow) { r.Date = "2026-02-30" })), "rows[1].date"},
		{"date with time", withRows(bad(func(r *spendRow) { r.Date = "2026-03-17T00:00:00Z" })), "rows[1].date"},
		{"no ad id", withRows(bad(func(r *spendRow) { r.AdID = "" })), "rows[1].ad_id"},
		{"no campaign id", withRows(bad(func(r *spendRow) { r.CampaignID = "" })), "rows[1].campaign_id"},
		{"negative impressions", withRows(bad(func(r *spendRow) { r.Impressions = -1 })), "rows[1].impressions"},
		{"negative spend", withRows(bad(func(r *spendRow) { r.Spend = -0.01 })), "rows[1].spend"},
		{"an (ad, day) twice", withRows([]spendRow{ok, ok}), "rows[1]"},
		{"no rows", withRows([]spendRow{}), "rows"},
		{"no account id", withAccount(map[string]string{"name": "Shop", "currency": "EUR"}), "ad_account.id"},
		{"currency not ISO 4217", withAccount(map[string]string{"id": insAccount, "currency": "EURO"}), "ad_account.currency"},
		{"the account's currency is EUR", withAccount(map[string]string{"id": insAccount, "currency": "USD"}), "ad_account.currency"},
		{"unknown field", map[string]any{"ad_account": map[string]string{"id": insAccount, "currency": "EUR"},
			"rows": []spendRow{ok}, "spend_total": 45}, "body"},
		{"impressions as text", `{"ad_account":{"id":"` + insAccount + `","currency":"EUR"},"rows":[{"date":"2026-03-16","campaign_id":"1","ad_id":"2","impressions":"10"}]}`, "body"},
		{"malformed", `{"ad_account":`, "body"},
	}
	for _, r := range rejects {
		t.Run(r.name, func(t *testing.T) {
			body, isText := r.body.(string)
			raw := []byte(body)
			if !isText {
				var err error
				if raw, err = json.Marshal(r.body); err != nil {
					t.Fatal(err)
				}
			}
			resp, got := c.call("POST", importPath, "application/json", raw)
			wantError(t, resp, got, 400, r.field)
			if after := c.catalogueState(); after != before {
				t.Errorf("a rejected import changed the answers:\n%s", lineDiff(before, after))
			}
		})
	}
	resp, got := c.call("POST", importPath, "application/xml", []byte("<rows/>"))
	wantError(t, resp, got, 415, "")
}

// A quarter of daily rows for 100 ads (9 000 rows) is more than one store transaction
// holds; the import still stores every row.
func TestInsightsSpendImportLarge(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	var rows []spendRow
	for a := range 100 {
		for d := range 90 {
			rows = append(rows, spendRow{Date: day(2026, 1, 1).AddDate(0, 0, d).Format(time.DateOnly),
				CampaignID: strconv.Itoa(120200000000000000 + a%10), CampaignName: "Campaign " + strconv.Itoa(a%10),
				AdSetID: strconv.Itoa(120201000000000000 + a%10), AdSetName: "Ad set",
				AdID: strconv.Itoa(120210000000000000 + a), AdName: "Ad " + strconv.Itoa(a),
				Impressions: 1000, Clicks: 10, Spend: 1.25})
		}
	}
	var res struct {
		Imported struct{ Rows, Ads, Campaigns int } `json:"imported"`
	}
	c.sendJSON("POST", importPath, spendImport(rows...), 200, &res)
	if res.Imported.Rows != 9000 || res.Imported.Ads != 100 || res.Imported.Campaigns != 10 {
		t.Fatalf("imported %+v", res.Imported)
	}
	var p pageOf[adObjJSON]
	c.getJSON(appPath+"/ads/account/"+insAccount+"?limit=100", &p)
	if p.TotalCount != 100 || len(p.Data) != 100 {
		t.Fatalf("%d ads listed (total %d), want 100", len(p.Data), p.TotalCount)
	}
	for _, ad := range p.Data {
		// 90 days of 1000 impressions, 10 clicks, 1.25 each; the campaign has 10 ads.
		if in := ad.Insight; in.Impressions != 90000 || in.Clicks != 900 || in.Spend != 112.5 || ad.Campaign.Insight.Spend != 1125 {
			t.Fatalf("ad %s: %+v, campaign spend %v", ad.ID, in, ad.Campaign.Insight.Spend)
		}
	}
}
