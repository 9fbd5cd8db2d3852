package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demoOutput is exactly what `go run . demo` prints on stdout; README.md shows the same
// text. The numbers follow from the inputs in demo.go and assets/demo/spend.csv, e.g.:
//   - image ad: leads 1–14 click it (+1 lead from the fixtures) = 15 sessions; lead i
//     replies replies[i%3], so i = 1,4,7,10,13 say "buy" (5 converted, "buy" converts
//     the Spring sale) and i = 2,5,8,11 do not reply (15 − 4 = 11 engaged); the orders of
//     leads 2 and 5 give 129.90 + 89.00 = 218.90; spend 96.40 + 92.15 = 188.55, so ROAS
//     218.90 / 188.55 = 1.16 and cost per lead 188.55 / 15 = 12.57.
//   - club ad: leads 24–28, no replies: 5 sessions, 0 engaged; spend 30.00 + 31.20 =
//     61.20, cost per lead 61.20 / 5 = 12.24.
//   - QR code: leads 29–34 name "billboard a": 6 sessions, i = 0,2,4 reply (3 engaged);
//     lead 29's order is 49.90.
//   - 14+10 + 9+5 + 5 + 6+3 + 7+3 = 62 messages from 14+9+5+6+7 = 41 leads.
//   - organic, the QR code and the post have no spend: ROAS and cost per lead are "—".
//
// When the demo's output changes on purpose, update this text and README.md together.
const demoOutput = `· importing the Ads Manager spend sheet: 2 campaigns, 3 ads, 2 days (EUR)
· defining a QR-code source and tracked keywords: source "billboard a", keywords "price" and "buy", "buy" converts the Spring sale
· replaying the webhook fixtures (Cloud API, On-Premises, Sinch, YCloud): 31 webhooks forwarded and recorded
· replaying two days of Click-to-WhatsApp traffic: 62 messages from 41 leads
· posting off-thread purchases from the shop: 4 orders

Sources of app 106540352242922 (2026-03-16 to 2026-03-18)
                 source                   name  sessions  users  engaged  converted  revenue   spend  ROAS  cost/lead
  ad:120214567890123456    Spring sale - image        15     15       11          5   218.90  188.55  1.16      12.57
  ad:120214567890987654    Spring sale - video        10     10        5          0   119.50  122.30  0.98      12.23
                organic                Organic        10     10        5          0     0.00    0.00     —          —
               custom:1       Billboard A (QR)         6      6        3          0    49.90    0.00     —          —
  ad:120214567890777777  Join our running club         5      5        0          0     0.00   61.20  0.00      12.24
   post:318276543219876             Nouveautés         1      1        0          0     0.00    0.00     —          —

Ads of ad account 174816537731874
                  ad                   name  sessions  engaged  converted  revenue       spend  ROAS
  120214567890123456    Spring sale - image        15       11          5   218.90  188.55 EUR  1.16
  120214567890777777  Join our running club         5        0          0     0.00   61.20 EUR  0.00
  120214567890987654    Spring sale - video        10        5          0   119.50  122.30 EUR  0.98
`

// TestDemoPrintsTheInsightsTables runs `ctwa-sidecar demo` as a user would and compares
// everything it prints with demoOutput.
func TestDemoPrintsTheInsightsTables(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"demo"}, Env{Getenv: noEnv, Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if got := out.String(); got != demoOutput {
		t.Errorf("demo printed:\n%s\nwant:\n%s\nfirst difference at line %d", got, demoOutput, firstDiffLine(got, demoOutput))
	}
}

// TestREADMEShowsTheDemoOutput keeps the README's demo block equal to what the demo prints.
func TestREADMEShowsTheDemoOutput(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\n```\n"+demoOutput+"```\n") {
		t.Errorf("README.md has no fenced block equal to the demo's output:\n%s", demoOutput)
	}
}

// firstDiffLine returns the 1-based number of the first line where a and b differ.
func firstDiffLine(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// The binary carries the demo's own assets and no test data: webhook bodies and the
// spend sheet only (issue 14).
func TestDemoEmbedsNoTestData(t *testing.T) {
	n := 0
	err := fs.WalkDir(demoFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		json := strings.HasPrefix(path, "assets/demo/webhooks/") && strings.HasSuffix(path, ".json")
		if !json && path != "assets/demo/spend.csv" {
			t.Errorf("the binary embeds %s", path)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walking the demo's files: %d files, %v", n, err)
	}
}

// demo refuses what it does not know, -help only prints, and -data wants a new store.
func TestDemoFlags(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"demo", "extra"}, Env{Stdout: &out}); err == nil ||
		!strings.Contains(err.Error(), `demo takes flags only, not "extra"`) {
		t.Errorf("demo extra: %v, want a refusal naming the argument", err)
	}
	if err := Run(context.Background(), []string{"demo", "-bogus"}, Env{Stdout: &out}); err == nil ||
		!strings.Contains(err.Error(), "-bogus") {
		t.Errorf("demo -bogus: %v, want a refusal naming the flag", err)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"demo", "-help"}, Env{Stdout: &out}); err != nil ||
		!strings.HasPrefix(out.String(), "Usage: ctwa-sidecar demo") || strings.Contains(out.String(), "Sources of app") {
		t.Errorf("demo -help: %v\n%s\nwant the usage and no tour", err, out.String())
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), []string{"demo", "-data", full}, Env{Stdout: io.Discard}); err == nil ||
		!strings.Contains(err.Error(), "is not empty") {
		t.Errorf("demo -data on a directory with files: %v, want a refusal", err)
	}
}

// demo -data keeps its store: serve opens it later with the demo's numbers.
func TestDemoKeepsItsStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"demo", "-data", dir}, Env{Stdout: &out}); err != nil {
		t.Fatalf("demo -data: %v", err)
	}
	if !strings.HasPrefix(out.String(), demoOutput) || !strings.Contains(out.String(), "The store is kept in "+dir) {
		t.Errorf("demo -data printed:\n%s\nwant the tour, then where the store is", out.String())
	}
	apps := serveAndGet(t, []string{"-data", dir}, "", "/v1/clients/default/apps/"+DemoApp+"/sources?date_from=2026-03-16&date_to=2026-03-18")
	if !strings.Contains(apps, `"sessions":15`) {
		t.Errorf("the kept store's sources: %s, want the image ad's 15 sessions", apps)
	}
}

// demo -serve stays up on the demo's data with a token until ctx ends.
func TestDemoServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"demo", "-serve"}, Env{Stdout: w}); w.Close() }()
	var base, token, store string
	sc := bufio.NewScanner(r)
	for store == "" && sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 5 && f[0] == "dashboard":
			base, token = strings.TrimSuffix(f[1], "/"), strings.TrimSuffix(f[4], ")")
		case len(f) >= 2 && f[0] == "store":
			store = f[1]
		}
	}
	go io.Copy(io.Discard, r)
	if base == "" || token == "" {
		cancel()
		t.Fatalf("demo -serve printed no dashboard URL and token (%v)", <-done)
	}
	get := func(tok string) int {
		req, _ := http.NewRequest("GET", base+"/v1/clients/default/apps", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(token); got != 200 {
		t.Errorf("apps with the printed token: %d, want 200", got)
	}
	if got := get(""); got != 401 {
		t.Errorf("apps without a token: %d, want 401", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo -serve after Ctrl-C: %v", err)
	}
	if _, err := os.Stat(store); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the temporary store %s is still there after exit (%v)", store, err)
	}
}

// serveAndGet serves the store of args (flags of serve) on loopback, GETs path from the
// API with token and returns the body.
func serveAndGet(t *testing.T, args []string, token, path string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	api, done := make(chan string, 1), make(chan error, 1)
	args = append([]string{"serve", "-upstream", "http://127.0.0.1:1", "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}, args...)
	go func() {
		done <- Run(ctx, args, Env{Listening: func(_, a net.Addr) { api <- "http://" + a.String() }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var base string
	select {
	case base = <-api:
	case err := <-done:
		t.Fatalf("serve did not start: %v", err)
	}
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, body, err)
	}
	return string(body)
}

// `--version`, as other tools take it, prints the version like `version`.
func TestDashDashVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		var out bytes.Buffer
		if err := Run(context.Background(), []string{arg}, Env{Stdout: &out, Version: "v9.9.9"}); err != nil || out.String() != "ctwa-sidecar v9.9.9\n" {
			t.Errorf("%s: %q %v, want the version line", arg, out.String(), err)
		}
	}
}

// The start-up line says where the dashboard and /metrics are, as a local browser opens them.
func TestStartUpLineNamesDashboardAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var log bytes.Buffer // read once Run has returned: no write is left then
	api, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"-upstream", "http://127.0.0.1:1", "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0",
			"-data", t.TempDir()}, Env{Stderr: &log, Listening: func(_, a net.Addr) { api <- a }})
	}()
	a := <-api
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	url := "http://" + a.String()
	for _, want := range []string{"dashboard=" + url + "/", "metrics=" + url + "/metrics"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log.String())
		}
	}
	if got := localURL(&net.TCPAddr{IP: net.IPv6unspecified, Port: 9090}); got != "http://127.0.0.1:9090" {
		t.Errorf("localURL of [::]:9090 = %s, want http://127.0.0.1:9090", got)
	}
}
