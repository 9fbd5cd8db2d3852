package adsstub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	ver = "v23.0"
	tok = "tok-1"
)

var insightsFields = "ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,account_currency," +
	"spend,impressions,inline_link_clicks,date_start,date_stop"

func testAccount() Account {
	return Account{
		ID: "111", Name: "Shop", Currency: "EUR", Timezone: "Europe/Berlin",
		Ads: []Ad{
			{ID: "a1", Name: "Ad 1", Status: "ACTIVE", AdSetID: "s1", AdSetName: "Set 1", AdSetStatus: "ACTIVE",
				CampaignID: "c1", CampaignName: "Camp 1", CampaignStatus: "ACTIVE"},
			{ID: "a2", Name: "Ad 2", Status: "PAUSED", AdSetID: "s1", AdSetName: "Set 1", AdSetStatus: "ACTIVE",
				CampaignID: "c1", CampaignName: "Camp 1", CampaignStatus: "ACTIVE"},
			{ID: "a3", Name: "Ad 3", Status: "CAMPAIGN_PAUSED", AdSetID: "s2", AdSetName: "Set 2", AdSetStatus: "ACTIVE",
				CampaignID: "c2", CampaignName: "Camp 2", CampaignStatus: "PAUSED"},
		},
		Days: []DayRow{
			{AdID: "a2", Date: "2026-11-02", Spend: "5.50", Impressions: "300", Clicks: "7"},
			{AdID: "a1", Date: "2026-11-01", Spend: "20.00", Impressions: "1234", Clicks: "41"},
			{AdID: "a2", Date: "2026-11-01", Spend: "3.10", Impressions: "200", Clicks: "2"},
			{AdID: "a1", Date: "2026-11-02", Spend: "18.00", Impressions: "1100", Clicks: "30"},
			{AdID: "a1", Date: "2026-11-03", Spend: "1.00", Impressions: "90", Clicks: "1"},
			{AdID: "a1", Date: "2026-10-31", Spend: "9.99", Impressions: "1", Clicks: "0"}, // outside the range
		},
	}
}

func start(t *testing.T, mod func(*Options)) *Server {
	t.Helper()
	o := Options{Version: ver, Token: tok, Accounts: []Account{testAccount()}, PageSize: 2,
		Now: func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }}
	if mod != nil {
		mod(&o)
	}
	return Start(t, o)
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, u, bearer string, form url.Values) resp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, u, b, err)
	}
	return r
}

func get(t *testing.T, u string) resp { t.Helper(); return do(t, http.MethodGet, u, tok, nil) }

func insightsURL(s *Server, since, until string) string {
	q := url.Values{"level": {"ad"}, "time_increment": {"1"}, "fields": {insightsFields}, "limit": {"500"},
		"time_range": {fmt.Sprintf(`{"since":%q,"until":%q}`, since, until)}}
	return s.URL + "/" + ver + "/act_111/insights?" + q.Encode()
}

// errOf checks the answer is Graph's error with that status, code and subcode.
func errOf(t *testing.T, r resp, status, code, subcode int) map[string]any {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("want an error object, got %s", r.raw)
	}
	if r.status != status || e["code"] != float64(code) || (subcode != 0 && e["error_subcode"] != float64(subcode)) ||
		(subcode == 0 && e["error_subcode"] != nil) {
		t.Fatalf("want %d code %d subcode %d, got %d %s", status, code, subcode, r.status, r.raw)
	}
	for _, k := range []string{"message", "type", "fbtrace_id"} {
		if s, _ := e[k].(string); s == "" {
			t.Fatalf("error without %s: %s", k, r.raw)
		}
	}
	if _, ok := e["is_transient"].(bool); !ok {
		t.Fatalf("error without is_transient: %s", r.raw)
	}
	return e
}

// pages follows paging.next and returns every row and the number of pages.
func pages(t *testing.T, first string) ([]map[string]any, int) {
	t.Helper()
	var rows []map[string]any
	n := 0
	for u := first; u != ""; n++ {
		var r resp
		if n == 0 {
			r = get(t, u)
		} else {
			r = do(t, http.MethodGet, u, "", nil) // next carries access_token
		}
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", n+1, r.status, r.raw)
		}
		data, _ := r.body["data"].([]any)
		for _, d := range data {
			rows = append(rows, d.(map[string]any))
		}
		u = ""
		if p, ok := r.body["paging"].(map[string]any); ok {
			c := p["cursors"].(map[string]any)
			if c["before"] == "" || c["after"] == "" {
				t.Fatalf("cursors: %s", r.raw)
			}
			if nx, ok := p["next"].(string); ok {
				if !strings.HasPrefix(nx, "http://127.0.0.1:") || !strings.Contains(nx, "access_token="+tok) {
					t.Fatalf("next %q", nx)
				}
				u = nx
			}
		}
		if n > 20 {
			t.Fatal("paging does not end")
		}
	}
	return rows, n
}

func TestInsightsPagingAndRange(t *testing.T) {
	s := start(t, nil)
	rows, n := pages(t, insightsURL(s, "2026-11-01", "2026-11-03"))
	if n != 3 || len(rows) != 5 {
		t.Fatalf("want 5 rows on 3 pages, got %d rows on %d pages", len(rows), n)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r["date_start"].(string)+"/"+r["ad_id"].(string))
		if r["date_start"] != r["date_stop"] {
			t.Fatalf("not a daily row: %v", r)
		}
	}
	if want := "2026-11-01/a1 2026-11-01/a2 2026-11-02/a1 2026-11-02/a2 2026-11-03/a1"; strings.Join(got, " ") != want {
		t.Fatalf("order: %v", got)
	}
	r := rows[0]
	want := map[string]any{"ad_id": "a1", "ad_name": "Ad 1", "adset_id": "s1", "adset_name": "Set 1",
		"campaign_id": "c1", "campaign_name": "Camp 1", "account_currency": "EUR", "spend": "20.00",
		"impressions": "1234", "inline_link_clicks": "41", "date_start": "2026-11-01", "date_stop": "2026-11-01"}
	if len(r) != len(want) {
		t.Fatalf("row %v", r)
	}
	for k, v := range want {
		if r[k] != v {
			t.Fatalf("%s = %#v, want %#v (strings, like Meta)", k, r[k], v)
		}
	}
	// One day, and a range with no delivery.
	if rows, _ := pages(t, insightsURL(s, "2026-10-31", "2026-10-31")); len(rows) != 1 || rows[0]["spend"] != "9.99" {
		t.Fatalf("one day: %v", rows)
	}
	if r := get(t, insightsURL(s, "2026-11-10", "2026-11-20")); r.status != 200 || r.raw != `{"data":[]}` {
		t.Fatalf("no rows: %d %s", r.status, r.raw)
	}
	// An account with no rows at all.
	s2 := start(t, func(o *Options) { o.Accounts = []Account{{ID: "222", Currency: "USD", Timezone: "UTC"}} })
	u := strings.Replace(insightsURL(s2, "2026-11-01", "2026-11-28"), "act_111", "act_222", 1)
	if r := get(t, u); r.status != 200 || r.raw != `{"data":[]}` {
		t.Fatalf("empty account: %d %s", r.status, r.raw)
	}
}

func TestSmallerLimitAndFieldSubset(t *testing.T) {
	s := start(t, func(o *Options) { o.PageSize = 0 }) // default 500
	u := strings.Replace(insightsURL(s, "2026-11-01", "2026-11-03"), "limit=500", "limit=4", 1)
	if rows, n := pages(t, u); n != 2 || len(rows) != 5 {
		t.Fatalf("limit 4: %d rows, %d pages", len(rows), n)
	}
	u = strings.Replace(insightsURL(s, "2026-11-01", "2026-11-03"), url.QueryEscape(insightsFields), "spend", 1)
	r := get(t, u)
	row := r.body["data"].([]any)[0].(map[string]any)
	if len(row) != 3 || row["spend"] != "20.00" || row["date_start"] != "2026-11-01" {
		t.Fatalf("fields=spend: %s", r.raw)
	}
	if _, ok := r.body["paging"].(map[string]any)["next"]; ok {
		t.Fatalf("single page has next: %s", r.raw)
	}
}

func TestAdsPaging(t *testing.T) {
	s := start(t, nil)
	q := url.Values{"fields": {"id,name,effective_status,adset{id,name,effective_status},campaign{id,name,effective_status}"},
		"limit": {"500"}}
	rows, n := pages(t, s.URL+"/"+ver+"/act_111/ads?"+q.Encode())
	if n != 2 || len(rows) != 3 {
		t.Fatalf("want 3 ads on 2 pages, got %d on %d", len(rows), n)
	}
	a3 := rows[2]
	if a3["id"] != "a3" || a3["name"] != "Ad 3" || a3["effective_status"] != "CAMPAIGN_PAUSED" {
		t.Fatalf("ad: %v", a3)
	}
	as := a3["adset"].(map[string]any)
	cs := a3["campaign"].(map[string]any)
	if as["id"] != "s2" || as["name"] != "Set 2" || as["effective_status"] != "ACTIVE" ||
		cs["id"] != "c2" || cs["name"] != "Camp 2" || cs["effective_status"] != "PAUSED" {
		t.Fatalf("nested: %v %v", as, cs)
	}
	s.SetAd("act_111", Ad{ID: "a3", Name: "Ad 3", Status: "ACTIVE", CampaignID: "c2", CampaignStatus: "ACTIVE"})
	rows, _ = pages(t, s.URL+"/"+ver+"/act_111/ads?"+q.Encode())
	if rows[2]["effective_status"] != "ACTIVE" {
		t.Fatalf("SetAd: %v", rows[2])
	}
	errOf(t, get(t, s.URL+"/"+ver+"/act_111/ads?fields=id,bogus"), 400, 100, 0)
}

func TestAccountNodeAndUnknown(t *testing.T) {
	s := start(t, nil)
	r := get(t, s.URL+"/"+ver+"/act_111?fields=timezone_name,currency,name")
	if r.status != 200 || r.body["id"] != "act_111" || r.body["timezone_name"] != "Europe/Berlin" ||
		r.body["currency"] != "EUR" || r.body["name"] != "Shop" {
		t.Fatalf("account: %d %s", r.status, r.raw)
	}
	e := errOf(t, get(t, s.URL+"/"+ver+"/act_999?fields=timezone_name"), 400, 100, 33)
	if e["type"] != "GraphMethodException" || !strings.Contains(e["message"].(string), "'act_999'") {
		t.Fatalf("unknown account: %v", e)
	}
	errOf(t, get(t, strings.Replace(insightsURL(s, "2026-11-01", "2026-11-01"), "act_111", "act_999", 1)), 400, 100, 33)
	e = errOf(t, get(t, s.URL+"/v19.0/act_111?fields=name"), 400, 100, 33)
	if e["type"] != "GraphMethodException" {
		t.Fatalf("version: %v", e)
	}
}

func TestInsightsValidation(t *testing.T) {
	s := start(t, nil)
	good := insightsURL(s, "2026-11-01", "2026-11-03")
	for name, c := range map[string]struct{ from, to, word string }{
		"level":          {"level=ad", "level=campaign", "level"},
		"no level":       {"level=ad", "x=1", "level"},
		"time_increment": {"time_increment=1", "time_increment=all_days", "time_increment"},
		"no time_range":  {"time_range=", "x=", "time_range"},
		"bad json":       {"time_range=", "time_range=nope&x=", "time_range"},
		"field":          {"fields=ad_id", "fields=bogus_field", "bogus_field"},
	} {
		u := strings.Replace(good, c.from, c.to, 1)
		if u == good {
			t.Fatalf("%s: replacement did not apply", name)
		}
		e := errOf(t, get(t, u), 400, 100, 0)
		if !strings.Contains(e["message"].(string), c.word) {
			t.Fatalf("%s: message %q does not name %s", name, e["message"], c.word)
		}
	}
	errOf(t, get(t, insightsURL(s, "2026-11-05", "2026-11-01")), 400, 100, 0)
	errOf(t, get(t, insightsURL(s, "2023-01-01", "2023-01-02")), 400, 3018, 0) // beyond 37 months
}

func TestSetDayRevises(t *testing.T) {
	s := start(t, nil)
	s.SetDay("act_111", DayRow{AdID: "a1", Date: "2026-11-01", Spend: "21.40", Impressions: "1300", Clicks: "44"})
	s.SetDay("111", DayRow{AdID: "a3", Date: "2026-11-01", Spend: "0.50", Impressions: "10", Clicks: "0"})
	rows, _ := pages(t, insightsURL(s, "2026-11-01", "2026-11-01"))
	if len(rows) != 3 {
		t.Fatalf("rows: %v", rows)
	}
	if rows[0]["spend"] != "21.40" || rows[0]["impressions"] != "1300" || rows[0]["inline_link_clicks"] != "44" {
		t.Fatalf("revised: %v", rows[0])
	}
	if rows[2]["ad_id"] != "a3" || rows[2]["spend"] != "0.50" {
		t.Fatalf("added: %v", rows[2])
	}
	s.DeleteDay("act_111", "a3", "2026-11-01")
	if rows, _ := pages(t, insightsURL(s, "2026-11-01", "2026-11-01")); len(rows) != 2 {
		t.Fatalf("deleted: %v", rows)
	}
}

func TestAsyncReport(t *testing.T) {
	s := start(t, nil)
	u, _ := url.Parse(insightsURL(s, "2026-11-01", "2026-11-03"))
	form := u.Query()
	u.RawQuery = ""
	r := do(t, http.MethodPost, u.String(), tok, form)
	id, _ := r.body["report_run_id"].(string)
	if r.status != 200 || id == "" {
		t.Fatalf("POST: %d %s", r.status, r.raw)
	}
	runURL := s.URL + "/" + ver + "/" + id
	// Rows are not there before the job completed.
	errOf(t, get(t, runURL+"/insights"), 400, 100, 0)
	var got []string
	for i := 0; i < 3; i++ {
		p := get(t, runURL+"?fields=async_status,async_percent_completion")
		if p.status != 200 || p.body["id"] != id {
			t.Fatalf("poll: %s", p.raw)
		}
		got = append(got, fmt.Sprintf("%s %v", p.body["async_status"], p.body["async_percent_completion"]))
	}
	if want := "Job Not Started 0|Job Running 50|Job Completed 100"; strings.Join(got, "|") != want {
		t.Fatalf("polls: %v", got)
	}
	rows, n := pages(t, runURL+"/insights?limit=500")
	if n != 3 || len(rows) != 5 || rows[0]["spend"] != "20.00" || rows[4]["date_start"] != "2026-11-03" {
		t.Fatalf("report rows: %d pages %v", n, rows)
	}
	// Same params in the query of the POST work too, and validation applies.
	q, _ := url.Parse(insightsURL(s, "2026-11-01", "2026-11-03"))
	if r := do(t, http.MethodPost, q.String(), tok, nil); r.status != 200 || r.body["report_run_id"] == "" {
		t.Fatalf("POST with query: %s", r.raw)
	}
	errOf(t, do(t, http.MethodPost, strings.Replace(q.String(), "level=ad", "level=x", 1), tok, nil), 400, 100, 0)
	errOf(t, get(t, s.URL+"/"+ver+"/123456"), 400, 100, 33) // unknown run
}

func TestAsyncFail(t *testing.T) {
	s := start(t, func(o *Options) { o.AsyncFail = true; o.AsyncPolls = 1 })
	r := do(t, http.MethodPost, insightsURL(s, "2026-11-01", "2026-11-03"), tok, nil)
	id := r.body["report_run_id"].(string)
	runURL := s.URL + "/" + ver + "/" + id
	if p := get(t, runURL); p.body["async_status"] != JobNotStarted {
		t.Fatalf("poll 1: %s", p.raw)
	}
	p := get(t, runURL)
	if p.body["async_status"] != JobFailed || p.body["error_subcode"] != float64(2490547) {
		t.Fatalf("poll 2: %s", p.raw)
	}
	errOf(t, get(t, runURL+"/insights"), 400, 100, 0)
}

func TestFaultHelpers(t *testing.T) {
	s := start(t, nil)
	type c struct {
		f                     Fault
		status, code, subcode int
	}
	cases := []c{
		{Throttled(4, 1504022), 400, 4, 1504022},
		{Throttled(4, 1504039), 400, 4, 1504039},
		{Throttled(17, 2446079), 400, 17, 2446079},
		{Throttled(613, 1487742), 400, 613, 1487742},
		{InsightsTimeout(1504018), 500, 100, 1504018},
		{InsightsTimeout(1504038), 500, 2, 1504038},
		{ExpiredToken(), 400, 190, 463},
	}
	for code := 80000; code <= 80014; code++ {
		cases = append(cases, c{Throttled(code, 0), 400, code, 0})
	}
	for _, k := range cases {
		s.Script(k.f)
		e := errOf(t, get(t, insightsURL(s, "2026-11-01", "2026-11-03")), k.status, k.code, k.subcode)
		msg := e["message"].(string)
		switch {
		case k.code == 613 && !strings.Contains(msg, "too many calls from this ad-account"),
			k.code == 17 && !strings.Contains(msg, "User request limit reached"),
			k.code >= 80000 && !strings.Contains(msg, fmt.Sprintf("(#%d)", k.code)),
			k.code == 190 && e["type"] != "OAuthException",
			k.subcode == 1504018 && !strings.Contains(msg, "reduce the amount of data"):
			t.Fatalf("%d/%d message %q type %v", k.code, k.subcode, msg, e["type"])
		}
		if k.code != 190 && e["is_transient"] != true {
			t.Fatalf("%d: not transient", k.code)
		}
	}
	if r := get(t, insightsURL(s, "2026-11-01", "2026-11-03")); r.status != 200 || s.Pending() != 0 {
		t.Fatalf("after the script: %d %s", r.status, r.raw)
	}
	// A fault applies to every endpoint, in order; Code 0 is a plain-text answer.
	s.Script(Throttled(17, 2446079), Fault{Status: 502})
	errOf(t, get(t, s.URL+"/"+ver+"/act_111?fields=name"), 400, 17, 2446079)
	res, err := http.Get(s.URL + "/" + ver + "/act_111/ads?access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 502 {
		t.Fatalf("plain fault: %d", res.StatusCode)
	}
}

func TestAfterPage(t *testing.T) {
	s := start(t, nil)
	s.Script(Fault{AfterPage: 1, Status: 500, Code: 1, Message: "An unknown error occurred", Transient: true})
	// Other requests pass it by.
	if r := get(t, s.URL+"/"+ver+"/act_111?fields=timezone_name"); r.status != 200 {
		t.Fatalf("account: %s", r.raw)
	}
	p1 := get(t, insightsURL(s, "2026-11-01", "2026-11-03"))
	if p1.status != 200 || s.Pending() != 1 {
		t.Fatalf("page 1: %d %s", p1.status, p1.raw)
	}
	next := p1.body["paging"].(map[string]any)["next"].(string)
	errOf(t, do(t, http.MethodGet, next, "", nil), 500, 1, 0)
	if r := do(t, http.MethodGet, next, "", nil); r.status != 200 || len(r.body["data"].([]any)) != 2 {
		t.Fatalf("page 2 retried: %d %s", r.status, r.raw)
	}
	if s.Pending() != 0 {
		t.Fatal("fault not spent")
	}
}

func TestUsageHeaders(t *testing.T) {
	s := start(t, nil)
	buc := `{"111":[{"type":"ads_insights","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":3}]}`
	acc := `{"acc_id_util_pct":9.67,"reset_time_duration":100}`
	thr := `{"app_id_util_pct":12,"acc_id_util_pct":80}`
	s.SetUsage(map[string]string{"X-Business-Use-Case-Usage": buc, "X-Ad-Account-Usage": acc,
		"X-FB-Ads-Insights-Throttle": thr})
	for _, r := range []resp{get(t, insightsURL(s, "2026-11-01", "2026-11-01")),
		get(t, s.URL+"/"+ver+"/act_999")} {
		if r.header.Get("X-Business-Use-Case-Usage") != buc || r.header.Get("X-Ad-Account-Usage") != acc ||
			r.header.Get("X-FB-Ads-Insights-Throttle") != thr {
			t.Fatalf("headers: %v", r.header)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(r.header.Get("X-FB-Ads-Insights-Throttle")), &v); err != nil || v["acc_id_util_pct"] != float64(80) {
			t.Fatalf("header JSON: %v", err)
		}
	}
	full := `{"app_id_util_pct":12,"acc_id_util_pct":100}`
	f := Throttled(80000, 0)
	f.Headers = map[string]string{"X-FB-Ads-Insights-Throttle": full}
	s.Script(f)
	r := get(t, insightsURL(s, "2026-11-01", "2026-11-01"))
	if r.header.Get("X-FB-Ads-Insights-Throttle") != full || r.header.Get("X-Ad-Account-Usage") != acc {
		t.Fatalf("fault headers: %v", r.header)
	}
	s.SetUsage(nil)
	if r := get(t, insightsURL(s, "2026-11-01", "2026-11-01")); r.header.Get("X-Ad-Account-Usage") != "" {
		t.Fatalf("usage not cleared: %v", r.header)
	}
}

func TestTokenChange(t *testing.T) {
	s := start(t, nil)
	u := s.URL + "/" + ver + "/act_111?fields=name"
	if r := do(t, http.MethodGet, u+"&access_token="+tok, "", nil); r.status != 200 {
		t.Fatalf("query token: %s", r.raw)
	}
	errOf(t, do(t, http.MethodGet, u, "", nil), 400, 190, 0)
	s.SetToken("tok-2")
	e := errOf(t, get(t, u), 400, 190, 0)
	if e["type"] != "OAuthException" || !strings.Contains(e["message"].(string), "Invalid OAuth access token") {
		t.Fatalf("190: %v", e)
	}
	if r := do(t, http.MethodGet, u, "tok-2", nil); r.status != 200 {
		t.Fatalf("new token: %s", r.raw)
	}
	reqs := s.Requests()
	if len(reqs) != 4 {
		t.Fatalf("requests: %d", len(reqs))
	}
	last := reqs[3]
	if last.Method != "GET" || last.Path != "/"+ver+"/act_111" || last.Query.Get("fields") != "name" ||
		last.Authorization != "Bearer tok-2" || last.Status != 200 || !last.At.Equal(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("request log: %+v", last)
	}
	if reqs[2].Status != 400 {
		t.Fatalf("logged status: %+v", reqs[2])
	}
}

func TestConcurrent(t *testing.T) {
	s := start(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				s.SetDay("act_111", DayRow{AdID: "a1", Date: "2026-11-01", Spend: fmt.Sprintf("%d.00", j)})
				res, err := http.Get(insightsURL(s, "2026-11-01", "2026-11-03") + "&access_token=" + tok)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				s.Requests()
			}
		}()
	}
	wg.Wait()
	if n := len(s.Requests()); n != 40 {
		t.Fatalf("requests: %d", n)
	}
}
