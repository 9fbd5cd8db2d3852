package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/adsstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/internal/graphstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
)

// dashboardToken is the API token of the seeded sidecar the browser test opens.
const dashboardToken = "dashboard-test-token"

// startDemoSidecar runs the sidecar, replays the demo scenario through it (spend import,
// keywords, a QR source, fixtures, two days of traffic, purchases), then restarts it on
// the same store with an API token, as a deployment would run it. It returns the
// restarted sidecar.
//
// With graph (a Graph API stub), both runs send conversions to it (-meta-token,
// -waba-id, -capi-dataset, -graph-url) and seedConversions adds recent traffic in a
// second app, conversionsApp, so that the activity log holds each outcome; the demo's
// own conversions are of March 2026, so expired or skipped.
func startDemoSidecar(t *testing.T, graph *graphstub.Server) *runSidecar {
	t.Helper()
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"received":true}`) })
	dir := t.TempDir()
	var capi []string
	if graph != nil {
		capi = []string{"-meta-token", dashboardMetaToken, "-waba-id", dashboardWABA, "-capi-dataset", dashboardDataset,
			"-graph-url", graph.URL}
	}
	seed := startSidecar(t, "http://"+up.addr, append([]string{"-data", dir}, capi...)...)
	if err := sidecar.SeedDemo(seed.webhook, seed.api); err != nil {
		t.Fatalf("seeding the demo scenario: %v", err)
	}
	if graph != nil {
		seedConversions(t, seed, graph)
	}
	seed.stop(t)
	return startSidecar(t, "http://"+up.addr, append([]string{"-data", dir, "-api-token", dashboardToken}, capi...)...)
}

// The Graph API stub's account of the browser test, and the app of its recent traffic.
const (
	dashboardMetaToken = "EAAG-dashboard-token"
	dashboardWABA      = "102290129340398" // entry[].id of the demo's webhooks
	dashboardDataset   = "556677889900112"
	conversionsApp     = "106540352299999"
)

// startDashboardGraph starts the Graph API stub the browser test's sidecar sends to.
func startDashboardGraph(t *testing.T) *graphstub.Server {
	return graphstub.Start(t, graphstub.Options{Version: metaapi.DefaultVersion, Token: dashboardMetaToken,
		WABA: dashboardWABA, Dataset: dashboardDataset})
}

// seedConversions sends, an hour ago in conversionsApp, one step at a time (each waits
// for its outcome, so that every batch holds one event and each scripted answer meets
// the conversion it is meant for):
//   - three Click-to-WhatsApp leads: LeadSubmitted sent;
//   - purchases of two of them, refused by Meta (100/2804087, invalid click id): failed;
//   - an ad click whose referral has no ctwa_clid: skipped (no_click_id);
//   - a last lead while Meta answers 503: pending, retried, with its last error. The
//     stub keeps answering 503, so it stays pending while the browser looks.
func seedConversions(t *testing.T, sc *runSidecar, graph *graphstub.Server) {
	t.Helper()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	click := func(lead int, clid string) {
		t.Helper()
		phone := fmt.Sprintf("491520000%04d", lead)
		if _, err := call2xx("POST", sc.webhook+"/webhook", "application/json",
			conversionsWebhook(phone, fmt.Sprintf("wamid.CAPI%04d", lead), at.Add(time.Duration(lead)*time.Minute), clid)); err != nil {
			t.Fatalf("posting lead %d: %v", lead, err)
		}
	}
	purchase := func(lead int, amount float64) {
		t.Helper()
		body := fmt.Sprintf(`{"lead_phone":"+491520000%04d","action":"purchase","revenue":{"amount":%.2f,"currency":"EUR"},"event_time":%q,"object_id":"capi-order-%d"}`,
			lead, amount, at.Add(30*time.Minute).Format(time.RFC3339), lead)
		if _, err := call2xx("POST", sc.api+"/v1/clients/default/external-events", "application/json", body); err != nil {
			t.Fatalf("posting the purchase of lead %d: %v", lead, err)
		}
	}
	for lead := 1; lead <= 3; lead++ {
		click(lead, fmt.Sprintf("ARAkLdash%04d", lead))
		waitConversions(t, sc, "sent", lead, nil)
	}
	for i, lead := range []int{2, 3} {
		graph.Script(graphstub.InvalidClickID())
		purchase(lead, 59.90+float64(i)*10)
		waitConversions(t, sc, "failed", i+1, nil)
	}
	click(4, "")
	waitConversions(t, sc, "skipped", 1, nil)
	faults := make([]graphstub.Fault, 500)
	for i := range faults {
		faults[i] = graphstub.ServiceUnavailable()
	}
	graph.Script(faults...)
	click(5, "ARAkLdash0005")
	waitConversions(t, sc, "pending", 1, func(row map[string]any) bool {
		n, _ := row["attempts"].(float64)
		return n >= 1 && row["last_error"] != nil
	})
}

// waitConversions waits until conversionsApp has n conversions of status and, with
// ok, its first such row satisfies ok.
func waitConversions(t *testing.T, sc *runSidecar, status string, n int, ok func(row map[string]any) bool) {
	t.Helper()
	var page struct {
		Data  []map[string]any `json:"data"`
		Total int              `json:"total_count"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := getJSON2xx(sc.api+"/v1/clients/default/apps/"+conversionsApp+"/conversions?status="+status, &page)
		if err == nil && page.Total == n && (ok == nil || ok(page.Data[0])) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeding conversions: waited 20 s for %d %s, have %d (%v): %+v", n, status, page.Total, err, page.Data)
		}
	}
}

// conversionsWebhook is a Cloud API message of conversionsApp from a Click-to-WhatsApp
// ad click; clid "" is a referral without a click id.
func conversionsWebhook(phone, id string, at time.Time, clid string) string {
	referral := map[string]string{"source_url": "https://fb.me/capi", "source_id": "120214567890123456", "source_type": "ad",
		"headline": "Spring sale", "body": "20% off running shoes", "media_type": "image"}
	if clid != "" {
		referral["ctwa_clid"] = clid
	}
	body, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": dashboardWABA, "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]string{"display_phone_number": "4930609859599", "phone_number_id": conversionsApp},
			"contacts":          []any{map[string]any{"profile": map[string]string{"name": "Capi lead"}, "wa_id": phone}},
			"messages": []any{map[string]any{"from": phone, "id": id, "timestamp": fmt.Sprint(at.Unix()), "type": "text",
				"text": map[string]string{"body": "Hi, is the spring sale still on?"}, "referral": referral}}}}}}}})
	return string(body)
}

// The spend sync of the browser test: an ad account of the Marketing API stub synced into
// conversionsApp of a second sidecar (its -graph-url is the stub, so it cannot be the
// demo sidecar, which sends conversions to the Graph API stub), and the token it takes.
const (
	spendSyncToken = "EAAG-dashboard-ads-token"
	spendSyncAct   = "174816537731899"
	spendSyncAd    = "120214567890123456" // the ad of conversionsWebhook's referral
)

// startSpendSyncSidecar starts a sidecar (no API token) that syncs spendSyncAct from a
// Marketing API stub into conversionsApp: the ad spent €12.00 two days ago and €8.50
// yesterday (UTC, within the dashboard's last 7 days), and one lead clicked it today, so
// that today has a session and no spend. It returns once the first sync has stored its
// rows, with a control URL for browser.mjs: POST <url>/token with a body sets the
// stub's only valid token (adsstub.Server.SetToken).
func startSpendSyncSidecar(t *testing.T) (s *runSidecar, control string) {
	t.Helper()
	day := func(back int) string { return time.Now().UTC().AddDate(0, 0, -back).Format(time.DateOnly) }
	stub := adsstub.Start(t, adsstub.Options{Version: metaapi.DefaultVersion, Token: spendSyncToken,
		Accounts: []adsstub.Account{{ID: spendSyncAct, Name: "Shoes GmbH", Currency: "EUR", Timezone: "UTC",
			Ads: []adsstub.Ad{{ID: spendSyncAd, Name: "Spring sale - synced", Status: "ACTIVE", AdSetID: "23851172049950101",
				AdSetName: "DE runners", AdSetStatus: "ACTIVE", CampaignID: "23851172049950001", CampaignName: "Spring sale",
				CampaignStatus: "ACTIVE"}},
			Days: []adsstub.DayRow{
				{AdID: spendSyncAd, Date: day(2), Spend: "12.00", Impressions: "900", Clicks: "30"},
				{AdID: spendSyncAd, Date: day(1), Spend: "8.50", Impressions: "700", Clicks: "21"},
			}}}})
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"received":true}`) })
	s = startSidecar(t, "http://"+up.addr, "-meta-token", spendSyncToken, "-graph-url", stub.URL,
		"-spend-sync", "act_"+spendSyncAct+"="+conversionsApp)
	if _, err := call2xx("POST", s.webhook+"/webhook", "application/json",
		conversionsWebhook("4915200009001", "wamid.SPEND0001", time.Now().Add(-time.Minute).Truncate(time.Second), "ARAkLspend0001")); err != nil {
		t.Fatalf("posting the lead of the synced ad: %v", err)
	}
	var state struct {
		Data []struct {
			LastSuccess string `json:"last_success"`
			Rows        int    `json:"rows"`
			LastError   string `json:"last_error"`
		} `json:"data"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := getJSON2xx(s.api+"/v1/clients/default/apps/"+conversionsApp+"/ads/sync", &state)
		if err == nil && len(state.Data) == 1 && state.Data[0].LastSuccess != "" {
			if state.Data[0].Rows != 2 || state.Data[0].LastError != "" {
				t.Fatalf("the first spend sync: %+v, want 2 rows and no error", state.Data[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for the first spend sync: %+v (%v)", state.Data, err)
		}
	}
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/token" || len(body) == 0 {
			http.Error(w, "POST /token with the new token as body", http.StatusBadRequest)
			return
		}
		stub.SetToken(string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ctl.Close)
	return s, ctl.URL
}

// TestDashboardIsServed checks the page and its files: served without a token, with
// their content types and a Content-Security-Policy that allows only this origin,
// while the API behind them still needs the token.
func TestDashboardIsServed(t *testing.T) {
	s := startDemoSidecar(t, nil)
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/assets/app.js">`},
		{"/assets/app.js", "text/javascript; charset=utf-8", "import "},
		{"/assets/api.js", "text/javascript; charset=utf-8", "Authorization"},
		{"/assets/app.css", "text/css; charset=utf-8", "@media"},
		{"/assets/icon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := mustDo(t, newRequest(t, "GET", s.api+c.path, nil))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype || !bytes.Contains(body, []byte(c.contains)) {
			t.Errorf("GET %s: %d %q, body has %q: %v", c.path, resp.StatusCode, resp.Header.Get("Content-Type"),
				c.contains, bytes.Contains(body, []byte(c.contains)))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") ||
			!strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", c.path)
		}
	}
	for _, path := range []string{"/assets/missing.js", "/assets/..%2findex.html", "/assets/.hidden.js", "/index.html"} {
		if resp, _ := mustDo(t, newRequest(t, "GET", s.api+path, nil)); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, _ := mustDo(t, newRequest(t, "GET", s.api+"/v1/clients/default/apps/"+sidecar.DemoApp+"/sources", nil)); resp.StatusCode != 401 {
		t.Errorf("sources without the token: %d, want 401", resp.StatusCode)
	}
}

// TestDashboardInHeadlessChromium opens the dashboard in headless Chromium (driven by
// proxy/dashboard/test/browser.mjs through playwright-core) against the seeded demo,
// checks the first visit (token first, then the apps), the campaign → ad set → ad
// table and its CSV, the sources table, the funnel of the ads, the charts, the period
// presets and the comparison with the previous period, a mistyped app id, the choice of
// a conversion event and the drill-down at 1280 px and at a phone width (the money
// columns within 390 px), and against a second sidecar the spend synced from a Marketing
// API stub, until the stub refuses the token; it keeps screenshots. Without Chromium or the script's node_modules it skips,
// unless CTWA_BROWSER_TEST=1 (as in CI), where it fails instead.
func TestDashboardInHeadlessChromium(t *testing.T) {
	scriptDir, err := filepath.Abs(filepath.Join("..", "proxy", "dashboard", "test"))
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("CTWA_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "Chromium at "+chromium+" (apt-get install chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(filepath.Join(scriptDir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci in proxy/dashboard/test)")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, ", ")
		if os.Getenv("CTWA_BROWSER_TEST") == "1" {
			t.Fatal(msg + "; CTWA_BROWSER_TEST=1 forbids skipping")
		}
		t.Skip(msg + "; set CTWA_BROWSER_TEST=1 to make this a failure")
	}
	artifacts := os.Getenv("CTWA_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if artifacts, err = filepath.Abs(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	s := startDemoSidecar(t, startDashboardGraph(t))
	spend, control := startSpendSyncSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(scriptDir, "browser.mjs"), s.api, artifacts)
	cmd.Dir = scriptDir
	cmd.Env = append(os.Environ(), "CTWA_CHROMIUM="+chromium, "CTWA_API_TOKEN="+dashboardToken, "CTWA_APP_ID="+sidecar.DemoApp,
		"CTWA_CONVERSIONS_APP_ID="+conversionsApp, "CTWA_SPEND_SYNC_API="+spend.api, "CTWA_SPEND_SYNC_ACT="+spendSyncAct,
		"CTWA_ADS_STUB_CONTROL="+control)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("browser script output:\n%s", out.String())
	if err != nil {
		t.Fatalf("browser script failed: %v", err)
	}
	if !strings.Contains(out.String(), "dashboard: all browser checks passed") {
		t.Fatal("browser script exited 0 without its closing line")
	}
	for _, name := range []string{"dashboard-1280.png", "dashboard-390.png", "dashboard-drilldown-1280.png",
		"dashboard-conversions-1280.png", "dashboard-conversions-390.png", "dashboard-spend-sync-1280.png",
		"dashboard-welcome-1280.png", "dashboard-compare-1280.png", "dashboard-unknown-app-1280.png",
		"dashboard-campaigns-1280.png", "dashboard-campaigns-390.png"} {
		p := filepath.Join(artifacts, name)
		if st, err := os.Stat(p); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s missing or nearly empty: %v", p, err)
			continue
		}
		t.Logf("screenshot: %s", p)
	}
}

// TestDashboardHold keeps a seeded sidecar running for working on the page by hand:
// CTWA_DASHBOARD_HOLD=10m go test -run TestDashboardHold -v ./e2e prints its address.
func TestDashboardHold(t *testing.T) {
	hold, err := time.ParseDuration(os.Getenv("CTWA_DASHBOARD_HOLD"))
	if err != nil {
		t.Skip("set CTWA_DASHBOARD_HOLD=10m to keep a seeded sidecar running")
	}
	s := startDemoSidecar(t, startDashboardGraph(t))
	resp, err := http.Get(s.api + "/")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	t.Logf("dashboard: %s/?app=%s (conversions: ?app=%s&range=7)  token: %s", s.api, sidecar.DemoApp, conversionsApp, dashboardToken)
	os.Stdout.WriteString("dashboard at " + s.api + "\n")
	time.Sleep(hold)
}
