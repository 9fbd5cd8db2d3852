package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// dashboardToken is the API token of the seeded sidecar the browser test opens.
const dashboardToken = "dashboard-test-token"

// startDemoSidecar runs the sidecar, replays the demo scenario through it (spend import,
// keywords, a QR source, fixtures, two days of traffic, purchases), then restarts it on
// the same store with an API token, as a deployment would run it. It returns the
// restarted sidecar.
func startDemoSidecar(t *testing.T) *sidecar {
	t.Helper()
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"received":true}`) })
	dir := t.TempDir()
	seed := startSidecar(t, "http://"+up.addr, "-data", dir)
	d := demoClient{webhook: seed.webhook, api: seed.api + "/v1/clients/default"}
	for _, step := range []func() (string, error){d.importSpend, d.define, d.replayFixtures, d.replayTraffic, d.purchases} {
		if _, err := step(); err != nil {
			t.Fatalf("seeding the demo scenario: %v", err)
		}
	}
	seed.stop(t)
	return startSidecar(t, "http://"+up.addr, "-data", dir, "-api-token", dashboardToken)
}

// TestDashboardIsServed checks the page and its files: served without a token, with
// their content types and a Content-Security-Policy that allows only this origin,
// while the API behind them still needs the token.
func TestDashboardIsServed(t *testing.T) {
	s := startDemoSidecar(t)
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
	if resp, _ := mustDo(t, newRequest(t, "GET", s.api+"/v1/clients/default/apps/"+demoApp+"/sources", nil)); resp.StatusCode != 401 {
		t.Errorf("sources without the token: %d, want 401", resp.StatusCode)
	}
}

// TestDashboardInHeadlessChromium opens the dashboard in headless Chromium (driven by
// proxy/dashboard/test/browser.mjs through playwright-core) against the seeded demo,
// checks the sources table, the charts and the drill-down at 1280 px and at a phone
// width, and keeps screenshots. Without Chromium or the script's node_modules it skips,
// unless CTWA_BROWSER_TEST=1 (as in CI), where it fails instead.
func TestDashboardInHeadlessChromium(t *testing.T) {
	scriptDir, err := filepath.Abs(filepath.Join("proxy", "dashboard", "test"))
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

	s := startDemoSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(scriptDir, "browser.mjs"), s.api, artifacts)
	cmd.Dir = scriptDir
	cmd.Env = append(os.Environ(), "CTWA_CHROMIUM="+chromium, "CTWA_API_TOKEN="+dashboardToken, "CTWA_APP_ID="+demoApp)
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
	for _, name := range []string{"dashboard-1280.png", "dashboard-390.png", "dashboard-drilldown-1280.png"} {
		p := filepath.Join(artifacts, name)
		if st, err := os.Stat(p); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s missing or nearly empty: %v", p, err)
			continue
		}
		t.Logf("screenshot: %s", p)
	}
}

// TestDashboardHold keeps a seeded sidecar running for working on the page by hand:
// CTWA_DASHBOARD_HOLD=10m go test -run TestDashboardHold -v . prints its address.
func TestDashboardHold(t *testing.T) {
	hold, err := time.ParseDuration(os.Getenv("CTWA_DASHBOARD_HOLD"))
	if err != nil {
		t.Skip("set CTWA_DASHBOARD_HOLD=10m to keep a seeded sidecar running")
	}
	s := startDemoSidecar(t)
	resp, err := http.Get(s.api + "/")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	t.Logf("dashboard: %s/?app=%s  token: %s", s.api, demoApp, dashboardToken)
	os.Stdout.WriteString("dashboard at " + s.api + "\n")
	time.Sleep(hold)
}
