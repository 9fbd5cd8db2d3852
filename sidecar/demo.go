package sidecar

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// demoFiles are the webhooks (one of each format and message type, copies of the test
// fixtures' bodies) and the spend sheet the demo replays, built into the binary so that
// `ctwa-sidecar demo` works anywhere. They are the demo's own: the binary carries no
// test data (goldens, fuzz corpora).
//
//go:embed assets/demo
var demoFiles embed.FS

// DemoApp is the app of the demo's scenario: the Cloud API phone number id of its
// webhooks, which its spend sheet and purchases are recorded in.
const DemoApp = "106540352242922"

const demoAccount = "174816537731874"

// SeedDemo replays the demo's scenario (the spend sheet, a QR-code source and keywords,
// the webhook fixtures, two days of Click-to-WhatsApp traffic, off-thread purchases) into
// a running sidecar of client "default" without an API token or off-thread key, and prints
// nothing: webhook and api are its listeners' base URLs, such as http://127.0.0.1:8080.
// The dashboard's tests seed their sidecar this way.
func SeedDemo(webhook, api string) error {
	d := demoClient{webhook: webhook, api: api + "/v1/clients/default"}
	for _, s := range d.steps() {
		if _, err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.say, err)
		}
	}
	return nil
}

// demo runs a self-contained tour: a store (temporary, or -data), a stub upstream, the
// real sidecar, the fixtures and two days of synthetic traffic through the forwarding
// path, a spend import and off-thread purchases; then it prints the sources and ads
// tables, and with -serve stays up on that data until ctx ends.
func demo(ctx context.Context, args []string, e Env) error {
	o, err := parseDemo(args, e.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	dir := o.data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ctwa-demo-*"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	upstream, stopUpstream, err := demoUpstream()
	if err != nil {
		return err
	}
	defer stopUpstream()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	flags := []string{"-upstream", upstream, "-listen", "127.0.0.1:0", "-api-listen", o.apiListen, "-data", dir}
	var token string
	if o.serve {
		// The dashboard stays up: it gets a token, as any sidecar reachable by others should.
		token = rand.Text()
		flags = append(flags, "-api-token", token)
	}
	c, err := parseServe(flags, func(string) string { return "" }, io.Discard)
	if err != nil {
		return err
	}
	addrs, done := make(chan [2]net.Addr, 1), make(chan error, 1)
	quiet := Env{Getenv: e.Getenv, Stdout: io.Discard, Stderr: io.Discard, Version: e.Version,
		Listening: func(w, a net.Addr) { addrs <- [2]net.Addr{w, a} }}
	go func() { done <- serve(ctx, c, quiet) }()
	var d demoClient
	select {
	case a := <-addrs:
		d = demoClient{webhook: "http://" + a[0].String(), api: "http://" + a[1].String() + "/v1/clients/default", token: token}
	case err := <-done:
		return fmt.Errorf("demo: the sidecar did not start: %w", err)
	}
	if err := d.run(e.Stdout); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if o.serve {
		d.printServing(e.Stdout, dir, o.data != "")
		<-ctx.Done()
	} else if o.data != "" {
		fmt.Fprintf(e.Stdout, "\nThe store is kept in %s: ctwa-sidecar serve -data %s -upstream URL opens it.\n", dir, dir)
	}
	cancel()
	return <-done
}

// demoOptions are the demo's flags.
type demoOptions struct {
	serve     bool
	data      string
	apiListen string
}

func parseDemo(args []string, usage io.Writer) (demoOptions, error) {
	var o demoOptions
	set := flag.NewFlagSet("demo", flag.ContinueOnError)
	set.SetOutput(usage)
	set.BoolVar(&o.serve, "serve", false, "after the tour, stay up on its data: print the dashboard's URL and an API token, stop on Ctrl-C")
	set.StringVar(&o.data, "data", "", "keep the demo's store in this directory (new or empty) instead of a temporary one; serve -data DIR opens it later")
	set.StringVar(&o.apiListen, "api-listen", "127.0.0.1:0", "address of the API and dashboard (port 0: a free one)")
	set.Usage = func() {
		fmt.Fprint(usage, "Usage: ctwa-sidecar demo [-serve] [-data DIR] [-api-listen ADDR]\n\n"+
			"A tour of the product on sample traffic: the real sidecar on a store of its own, a stub\n"+
			"upstream, a spend sheet, webhooks and purchases; it prints the sources and ads tables.\n\n")
		set.PrintDefaults()
	}
	if err := set.Parse(args); err != nil {
		return o, err
	}
	if set.NArg() > 0 {
		return o, fmt.Errorf("demo takes flags only, not %q; see demo -help", set.Arg(0))
	}
	if o.data != "" {
		if err := emptyOrNew(o.data); err != nil {
			return o, fmt.Errorf("-data: %w", err)
		}
	}
	return o, nil
}

// emptyOrNew refuses a directory that holds anything: the demo seeds a new store, and
// seeding a kept one again would define its sources and keywords twice.
func emptyOrNew(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: the demo seeds a new store; open a kept one with ctwa-sidecar serve -data %s", dir, dir)
	}
	return nil
}

// printServing tells where the running demo is.
func (d demoClient) printServing(out io.Writer, dir string, kept bool) {
	base := strings.TrimSuffix(d.api, "/v1/clients/default")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "The demo sidecar is up until Ctrl-C:")
	fmt.Fprintf(out, "  dashboard  %s/  (API token %s)\n", base, d.token)
	fmt.Fprintf(out, "  metrics    %s/metrics\n", base)
	fmt.Fprintf(out, "  webhooks   %s/\n", d.webhook)
	if kept {
		fmt.Fprintf(out, "  store      %s (kept)\n", dir)
	} else {
		fmt.Fprintf(out, "  store      %s (removed at exit; demo -data DIR keeps it)\n", dir)
	}
}

// demoUpstream starts the stand-in for the business's webhook: 200 OK to everything.
func demoUpstream() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"received":true}`) }}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Shutdown() }, nil
}

type demoClient struct{ webhook, api, token string }

// demoStep is one step of the scenario: what it does, and the doing, which says what it did.
type demoStep struct {
	say string
	do  func() (string, error)
}

func (d demoClient) steps() []demoStep {
	return []demoStep{
		{"importing the Ads Manager spend sheet", d.importSpend},
		{"defining a QR-code source and tracked keywords", d.define},
		{"replaying the webhook fixtures (Cloud API, On-Premises, Sinch, YCloud)", d.replayFixtures},
		{"replaying two days of Click-to-WhatsApp traffic", d.replayTraffic},
		{"posting off-thread purchases from the shop", d.purchases},
	}
}

func (d demoClient) run(out io.Writer) error {
	for _, s := range d.steps() {
		what, err := s.do()
		if err != nil {
			return fmt.Errorf("%s: %w", s.say, err)
		}
		fmt.Fprintf(out, "· %s: %s\n", s.say, what)
	}
	fmt.Fprintln(out)
	if err := d.printSources(out); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return d.printAds(out)
}

func (d demoClient) define() (string, error) {
	for _, def := range []struct{ path, body string }{
		{"/sources", `{"name":"Billboard A (QR)","phrase":"billboard a"}`},
		{"/event_groups", `{"type":"keyword","type_value":"price"}`},
		{"/event_groups", `{"type":"keyword","type_value":"buy"}`},
		{"/converted_events", `{"campaign_id":"23851172049950001","type":"keyword","type_value":"buy"}`},
	} {
		if _, err := d.call("POST", d.api+"/apps/"+DemoApp+def.path, "application/json", def.body); err != nil {
			return "", err
		}
	}
	return `source "billboard a", keywords "price" and "buy", "buy" converts the Spring sale`, nil
}

// replayFixtures posts every fixture through the webhook listener, as WhatsApp would.
func (d demoClient) replayFixtures() (string, error) {
	n := 0
	err := fs.WalkDir(demoFiles, "assets/demo/webhooks", func(path string, _ fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".json") {
			return err
		}
		body, err := demoFiles.ReadFile(path)
		if err == nil {
			_, err = d.call("POST", d.webhook+"/webhook", "application/json", string(body))
			n++
		}
		return err
	})
	return fmt.Sprintf("%d webhooks forwarded and recorded", n), err
}

// replayTraffic sends leads clicking the ads, scanning the QR code and writing in
// without a source; some come back (engaged), some ask for the price or buy.
func (d demoClient) replayTraffic() (string, error) {
	day := time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)
	plan := []struct {
		ad      string
		leads   int
		first   string
		replies []string
	}{
		{"120214567890123456", 14, "Hi, is the spring sale still on?", []string{"What's the price of the Aero 3?", "ok I'll buy them", ""}},
		{"120214567890987654", 9, "Hello! Saw the video", []string{"price for size 42?", ""}},
		{"120214567890777777", 5, "I want to join the club", []string{""}},
		{"", 6, "Hi, I scanned billboard A", []string{"price?", ""}},
		{"", 7, "Hello, do you ship to Austria?", []string{"", "thanks"}},
	}
	sent, lead := 0, 0
	for _, p := range plan {
		for i := 0; i < p.leads; i++ {
			lead++
			phone := fmt.Sprintf("4917%08d", lead)
			at := day.Add(time.Duration(lead*37) * time.Minute)
			msgs := []string{p.first, p.replies[i%len(p.replies)]}
			for j, text := range msgs {
				if text == "" {
					continue
				}
				ad := ""
				if j == 0 {
					ad = p.ad
				}
				body := demoWebhook(phone, fmt.Sprintf("wamid.DEMO%04d%d", lead, j), at.Add(time.Duration(j)*4*time.Minute), text, ad)
				if _, err := d.call("POST", d.webhook+"/webhook", "application/json", body); err != nil {
					return "", err
				}
				sent++
			}
		}
	}
	return fmt.Sprintf("%d messages from %d leads", sent, lead), nil
}

// demoWebhook builds a Cloud API message webhook, with a CTWA referral when ad is set.
func demoWebhook(phone, id string, at time.Time, text, ad string) string {
	msg := map[string]any{"from": phone, "id": id, "timestamp": fmt.Sprint(at.Unix()), "type": "text",
		"text": map[string]string{"body": text}}
	if ad != "" {
		msg["referral"] = map[string]string{"source_url": "https://fb.me/demo", "source_id": ad, "source_type": "ad",
			"headline": "Spring sale", "body": "20% off running shoes", "media_type": "image", "ctwa_clid": "demo-" + id}
	}
	body, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]string{"display_phone_number": "4930609859535", "phone_number_id": DemoApp},
			"contacts":          []any{map[string]any{"profile": map[string]string{"name": "Demo lead"}, "wa_id": phone}},
			"messages":          []any{msg}}}}}}})
	return string(body)
}

func (d demoClient) importSpend() (string, error) {
	sheet, err := demoFiles.ReadFile("assets/demo/spend.csv")
	if err != nil {
		return "", err
	}
	_, err = d.call("POST", d.api+"/apps/"+DemoApp+"/ads/import?facebook_account_id=2311334042249923&facebook_account_email=ads@example.com",
		"text/csv", string(sheet))
	return "2 campaigns, 3 ads, 2 days (EUR)", err
}

// purchases reports orders of leads who came from the ads and from the QR code.
func (d demoClient) purchases() (string, error) {
	orders := []struct {
		lead   int
		amount float64
	}{{2, 129.90}, {5, 89.00}, {16, 119.50}, {29, 49.90}}
	for _, o := range orders {
		body := fmt.Sprintf(`{"lead_phone":"+49 17 %08d","action":"purchase","revenue":{"amount":%.2f,"currency":"EUR"},"event_time":"2026-03-18T12:00:00Z","object_id":"demo-order-%d"}`,
			o.lead, o.amount, o.lead)
		if _, err := d.call("POST", d.api+"/external-events", "application/json", body); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d orders", len(orders)), nil
}

func (d demoClient) printSources(out io.Writer) error {
	var res struct {
		Data []struct {
			Type, ID, Name, Direction, Currency string
			Sessions                            int64   `json:"sessions"`
			UniqueUsers                         int64   `json:"unique_users"`
			Engaged                             int64   `json:"engaged"`
			Converted                           int64   `json:"converted"`
			Revenue                             float64 `json:"revenue"`
			Spend                               float64 `json:"spend"`
			ROAS                                float64 `json:"roas"`
			CostPerLead                         float64 `json:"cost_per_lead"`
		} `json:"data"`
	}
	if err := d.getJSON(d.api+"/apps/"+DemoApp+"/sources?date_from=2026-03-16&date_to=2026-03-18", &res); err != nil {
		return err
	}
	fmt.Fprintln(out, "Sources of app", DemoApp, "(2026-03-16 to 2026-03-18)")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "source\tname\tsessions\tusers\tengaged\tconverted\trevenue\tspend\tROAS\tcost/lead\t")
	for _, r := range res.Data {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%s\t%s\t\n", sourceLabel(r.Type, r.ID), r.Name,
			r.Sessions, r.UniqueUsers, r.Engaged, r.Converted, r.Revenue, r.Spend,
			perSpend(r.Spend, r.ROAS), costPerLead(r.Spend, r.UniqueUsers, r.CostPerLead))
	}
	return w.Flush()
}

func (d demoClient) printAds(out io.Writer) error {
	var res struct {
		Data []struct {
			ID, Name string
			Insight  struct {
				Sessions  int64   `json:"sessions"`
				Engaged   int64   `json:"engaged"`
				Converted int64   `json:"converted"`
				Spend     float64 `json:"spend"`
				Currency  string  `json:"currency"`
			} `json:"insight"`
			Sale struct {
				Revenue float64 `json:"revenue"`
				ROAS    float64 `json:"roas"`
			} `json:"sale_insight"`
		} `json:"data"`
	}
	if err := d.getJSON(d.api+"/apps/"+DemoApp+"/ads/account/"+demoAccount, &res); err != nil {
		return err
	}
	fmt.Fprintln(out, "Ads of ad account", demoAccount)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "ad\tname\tsessions\tengaged\tconverted\trevenue\tspend\tROAS\t")
	for _, r := range res.Data {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%.2f\t%.2f %s\t%s\t\n", r.ID, r.Name, r.Insight.Sessions,
			r.Insight.Engaged, r.Insight.Converted, r.Sale.Revenue, r.Insight.Spend, r.Insight.Currency,
			perSpend(r.Insight.Spend, r.Sale.ROAS))
	}
	return w.Flush()
}

// perSpend formats a ratio over spend (ROAS, cost per lead), or "—" where there is no
// spend to divide by (organic, QR code and post rows), as the dashboard does.
func perSpend(spend, v float64) string {
	if spend <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

// costPerLead is "—" without spend or without a lead to divide it by.
func costPerLead(spend float64, leads int64, v float64) string {
	if leads == 0 {
		return "—"
	}
	return perSpend(spend, v)
}

// sourceLabel is "type:id", or the type alone for sources without id.
func sourceLabel(typ, id string) string {
	if id == "" {
		return typ
	}
	return typ + ":" + id
}

func (d demoClient) getJSON(url string, v any) error {
	body, err := d.call("GET", url, "", "")
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// call sends one request and fails on any status that is not 2xx.
func (d demoClient) call(method, url, contentType, body string) ([]byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s answered %d: %s", method, url, resp.StatusCode, bytes.TrimSpace(out))
	}
	return out, nil
}
