package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/graphstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

const (
	capiToken   = "EAAG-test-token"
	capiWABA    = "102290129340398"
	capiDataset = "1234567890123456"
	capiAd      = "120208000000000001"
)

// capiEnv is a recorder that queues conversions, and a Graph API stub to send them to.
type capiEnv struct {
	*testEnv
	stub *graphstub.Server
	now  int64 // the time of the scenario's first message: an hour ago
}

func newCapiEnv(t *testing.T, o graphstub.Options) *capiEnv {
	t.Helper()
	o.Version, o.Token, o.WABA = metaapi.DefaultVersion, capiToken, capiWABA
	e := &testEnv{t: t, dir: t.TempDir(), capi: DefaultConversionMap()}
	e.open()
	t.Cleanup(e.close)
	return &capiEnv{testEnv: e, stub: graphstub.Start(t, o), now: time.Now().Add(-time.Hour).Unix()}
}

// send runs the outbox with cfg until no conversion is pending or it stops by itself.
// Dataset "find" makes it look the dataset up; "" is capiDataset. WABA "none" is no
// -waba-id.
func (e *capiEnv) send(cfg OutboxConfig) {
	e.t.Helper()
	if cfg.Meta == nil {
		cfg.Meta = metaapi.New(e.stub.URL, metaapi.DefaultVersion, capiToken, 300*time.Millisecond)
	}
	cfg.Poll, cfg.RetryMin = 5*time.Millisecond, time.Millisecond
	switch cfg.WABA {
	case "":
		cfg.WABA = "999999999999999" // not the webhooks' own: they win
	case "none":
		cfg.WABA = ""
	}
	switch cfg.Dataset {
	case "":
		cfg.Dataset = capiDataset
	case "find":
		cfg.Dataset = ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		e.rec.SendConversions(ctx, cfg)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.pending() > 0 && time.Now().Before(deadline) {
		select {
		case <-stopped:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-stopped
}

func (e *capiEnv) pending() int {
	n := 0
	for _, c := range e.conversions() {
		if c.Status == ConversionPending {
			n++
		}
	}
	return n
}

// conversions returns every conversion of the test app, in time order.
func (e *capiEnv) conversions() []Conversion {
	e.t.Helper()
	var cs []Conversion
	if err := e.rec.Conversions(ConversionFilter{AppID: testAppID, To: 1 << 62}, func(c *Conversion) bool {
		cs = append(cs, *c)
		return true
	}); err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// unsent fails unless no request reached Meta and every conversion has status and reason.
func (e *capiEnv) unsent(status, reason string) {
	e.t.Helper()
	if n := len(e.stub.Requests()); n != 0 {
		e.t.Errorf("%d requests to Meta, want none", n)
	}
	for _, c := range e.conversions() {
		if c.Status != status || c.Reason != reason {
			e.t.Errorf("%s: %s/%s, want %s/%s", c.Name, c.Status, c.Reason, status, reason)
		}
	}
}

func (e *capiEnv) byName(name string) Conversion {
	e.t.Helper()
	for _, c := range e.conversions() {
		if c.Name == name {
			return c
		}
	}
	e.t.Fatalf("no %s conversion among %+v", name, e.conversions())
	return Conversion{}
}

// scenario records a click on the ad with click id clid, a keyword message that
// converts the session, an organic lead's message and an attributed purchase of 49.90 EUR.
func (e *capiEnv) scenario(clid string) {
	e.t.Helper()
	g := e.addKeyword(testAppID, "buy")
	if _, err := e.rec.SetConverted(context.Background(), Group{AppID: testAppID, AdID: capiAd, Type: TypeKeyword,
		TypeValue: g.TypeValue}); err != nil {
		e.t.Fatal(err)
	}
	ref := &webhook.Referral{SourceType: "ad", SourceID: capiAd, SourceURL: "https://fb.me/x", Headline: "Shoes", CtwaClid: clid}
	e.record(cloudWebhook(
		cloudMsg{App: testAppID, ID: "wamid.capi.1", From: "491700000001", Time: e.now, Text: "Hi", Referral: ref},
		cloudMsg{App: testAppID, ID: "wamid.capi.2", From: "491700000001", Time: e.now + 60, Text: "I want to buy"},
		cloudMsg{App: testAppID, ID: "wamid.capi.3", From: "491700000002", Time: e.now + 90, Text: "Hello"},
	))
	if _, _, err := e.rec.RecordOffThread(context.Background(), OffThread{Lead: "491700000001", Action: "purchase",
		Amount: 49.9, Currency: "EUR", AppID: testAppID, Time: e.now + 600}); err != nil {
		e.t.Fatal(err)
	}
	e.sync()
}

// TestConversionsReachMetaOnce: a click, its qualified lead and an attributed purchase
// reach Meta as three events exactly as Meta documents them (checked field by field,
// by hand); the organic lead sends nothing. A second round, a refresh and a restart
// send nothing again.
func TestConversionsReachMetaOnce(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid001")
	if got := len(e.conversions()); got != 3 {
		t.Fatalf("%d conversions queued, want 3 (lead, qualified lead, purchase): %+v", got, e.conversions())
	}
	e.send(OutboxConfig{})

	evs := e.stub.Events()
	if len(evs) != 3 {
		t.Fatalf("Meta got %d events, want 3: %+v", len(evs), evs)
	}
	want := []struct {
		name string
		time int64
		data string
	}{{"LeadSubmitted", e.now, ""}, {"QualifiedLead", e.now + 60, ""}, {"Purchase", e.now + 600, "EUR 49.9"}}
	for i, w := range want {
		ev := evs[i]
		var data string
		if ev.CustomData != nil {
			data = fmt.Sprint(ev.CustomData["currency"], " ", ev.CustomData["value"])
		}
		if ev.EventName != w.name || ev.EventTime != w.time || ev.ActionSource != "business_messaging" ||
			ev.MessagingChannel != "whatsapp" || ev.UserData["ctwa_clid"] != "ARAkLclid001" ||
			ev.UserData["whatsapp_business_account_id"] != capiWABA || data != w.data || ev.EventID == "" {
			t.Errorf("event %d = %+v, want %s at %d with the click, the WABA and custom data %q", i, ev, w.name, w.time, w.data)
		}
		if _, ok := ev.Raw["value"]; ok {
			t.Errorf("event %d has value at its top level; it belongs in custom_data", i)
		}
	}
	if r := e.stub.EventRequests()[0]; r.Authorization != "Bearer "+capiToken || strings.Contains(string(r.Body), "test_event_code") {
		t.Errorf("request: Authorization %q, body %s; want the bearer token and no test_event_code", r.Authorization, r.Body)
	}
	for _, c := range e.conversions() {
		if c.Status != ConversionSent || c.Attempts != 1 || c.SentAt == 0 {
			t.Errorf("%s: status %s, %d attempts, sent at %d; want sent after 1 attempt", c.Name, c.Status, c.Attempts, c.SentAt)
		}
	}
	ids := func() []string {
		var s []string
		for _, c := range e.conversions() {
			s = append(s, c.ID)
		}
		return s
	}
	before := ids()
	if _, err := e.rec.Refresh(context.Background(), testAppID); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if got := ids(); !slices.Equal(got, before) {
		t.Errorf("after a refresh and a restart the conversions are %v, want the same %v", got, before)
	}
	e.send(OutboxConfig{}) // nothing is pending: no second request
	if n := len(e.stub.EventRequests()); n != 1 {
		t.Errorf("%d requests after a refresh and a restart, want the first one only", n)
	}
}

// TestConversionWithoutClickIsSkipped: an ad referral without ctwa_clid is never sent
// with the ad id in its place: its conversions are skipped (no_click_id).
func TestConversionWithoutClickIsSkipped(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("")
	e.send(OutboxConfig{})
	e.unsent(ConversionSkipped, "no_click_id")
}

// TestConversionRetries: server errors, 429 with Retry-After, throttling codes, a
// timeout, a refused connection and a partial receipt are retried with the same event
// ids until Meta takes all three; nothing is ever sent with another id.
func TestConversionRetries(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid002")
	ids := map[string]bool{}
	for _, c := range e.conversions() {
		ids[c.ID] = true
	}
	e.stub.Script(graphstub.ServerError(), graphstub.TooManyRequests("0"), graphstub.Throttled(4),
		graphstub.Throttled(17), graphstub.Throttled(613), graphstub.Throttled(80004), graphstub.ServiceUnavailable(),
		graphstub.Fault{Delay: 600 * time.Millisecond}, graphstub.Fault{HangUp: true}, graphstub.Fault{Drop: 1})
	e.send(OutboxConfig{})

	got := map[string]int{}
	for _, ev := range e.stub.Events() {
		if !ids[ev.EventID] {
			t.Errorf("Meta got event id %q, which is none of the queued conversions", ev.EventID)
		}
		got[ev.EventID]++
	}
	if len(got) != 3 {
		t.Errorf("Meta has %d of the 3 conversions: %v", len(got), got)
	}
	for _, c := range e.conversions() {
		if c.Status != ConversionSent || c.Attempts != 11 {
			t.Errorf("%s: %s after %d attempts (%s), want sent after 11", c.Name, c.Status, c.Attempts, c.LastError)
		}
	}
}

// TestConversionRefusedConnection: while nothing listens at the Graph URL the conversions
// stay pending, attempted and saying why; once Meta answers they are sent.
func TestConversionRefusedConnection(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid010")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.rec.SendConversions(ctx, OutboxConfig{Meta: metaapi.New("http://127.0.0.1:1", metaapi.DefaultVersion, capiToken, time.Second),
			Dataset: capiDataset, WABA: capiWABA, Poll: 5 * time.Millisecond, RetryMin: 5 * time.Millisecond})
	}()
	for deadline := time.Now().Add(10 * time.Second); e.byName("Purchase").Attempts < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	for _, c := range e.conversions() {
		if c.Status != ConversionPending || c.Attempts < 2 || !strings.Contains(c.LastError, "connection refused") {
			t.Errorf("%s: %s after %d attempts (%q), want pending, retried, naming the refused connection", c.Name, c.Status, c.Attempts, c.LastError)
		}
	}
	e.send(OutboxConfig{})
	if n := len(e.stub.Events()); n != 3 {
		t.Errorf("Meta has %d events once it answers, want 3", n)
	}
}

// TestConversionRefusals: a refused click id fails that event alone (the batch is split
// to find it) with Meta's code, subcode and message, and the others are sent; event
// type and WABA refusals are not retried.
func TestConversionRefusals(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid003")
	// The batch of 3 is refused, then its first half (the lead) alone; the other half goes.
	e.stub.Script(graphstub.InvalidClickID(), graphstub.InvalidClickID())
	e.send(OutboxConfig{})
	lead := e.byName("LeadSubmitted")
	if lead.Status != ConversionFailed || lead.ErrorCode != 100 || lead.ErrorSubcode != 2804087 ||
		!strings.Contains(lead.LastError, "Invalid Ctwa Clid") || lead.Reason != "code_100_2804087" {
		t.Errorf("refused lead = %+v, want failed with 100/2804087 and Meta's title", lead)
	}
	for _, name := range []string{"QualifiedLead", "Purchase"} {
		if c := e.byName(name); c.Status != ConversionSent {
			t.Errorf("%s: %s (%s), want sent", name, c.Status, c.LastError)
		}
	}
	if n := len(e.stub.EventRequests()); n != 3 {
		t.Errorf("%d requests, want 3 (the batch, each half)", n)
	}

	for _, fault := range []graphstub.Fault{graphstub.EventTypeNotAllowed(), graphstub.MissingWABA()} {
		e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
		e.capi = ConversionMap{ConversionSourceLead: "LeadSubmitted"}
		e.reopen()
		e.scenario("ARAkLclid004")
		e.stub.Script(fault)
		e.send(OutboxConfig{})
		c := e.byName("LeadSubmitted")
		if c.Status != ConversionFailed || c.ErrorSubcode != fault.Subcode || c.Attempts != 1 {
			t.Errorf("after %d/%d: %+v, want failed once with it", fault.Code, fault.Subcode, c)
		}
		if n := len(e.stub.EventRequests()); n != 1 {
			t.Errorf("after %d/%d: %d requests, want 1 (no retry)", fault.Code, fault.Subcode, n)
		}
	}
}

// TestConversionExpiredToken: a token Meta refuses (190) stops the sender after one
// request; the conversions stay pending, with the error, for a restart with a good one.
func TestConversionExpiredToken(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid005")
	e.stub.Script(graphstub.ExpiredToken())
	e.send(OutboxConfig{})
	if n := len(e.stub.EventRequests()); n != 1 {
		t.Errorf("%d requests after a 190, want 1", n)
	}
	for _, c := range e.conversions() {
		if c.Status != ConversionPending || c.Attempts != 1 || !strings.Contains(c.LastError, "190") {
			t.Errorf("%s: %s, %d attempts, %q; want pending after 1 attempt naming code 190", c.Name, c.Status, c.Attempts, c.LastError)
		}
	}
	e.send(OutboxConfig{}) // the restart
	if n := len(e.stub.Events()); n != 3 {
		t.Errorf("Meta has %d events after a restart with a good token, want 3", n)
	}
}

// TestConversionDatasetTestCodeAndDryRun: without a dataset id the WABA's is created;
// -capi-test-code goes beside data; a dry run sends nothing and says so.
func TestConversionDatasetTestCodeAndDryRun(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{})
	e.scenario("ARAkLclid006")
	e.send(OutboxConfig{Dataset: "find", TestCode: "TEST123", WABA: capiWABA})
	evs := e.stub.Events()
	if len(evs) != 3 || evs[0].TestEventCode != "TEST123" || e.stub.Dataset() != graphstub.CreatedDatasetID {
		t.Errorf("events %+v in dataset %q, want 3 with test_event_code TEST123 in the created dataset", evs, e.stub.Dataset())
	}

	e = newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid007")
	e.send(OutboxConfig{DryRun: true})
	e.unsent(ConversionSkipped, "dry_run")
}

// TestConversionOlderThanSevenDaysExpires: Meta refuses a whole request holding an event
// older than 7 days, so such a conversion is expired, never sent.
func TestConversionOlderThanSevenDaysExpires(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.now = time.Now().Add(-8 * 24 * time.Hour).Unix()
	e.scenario("ARAkLclid008")
	e.send(OutboxConfig{})
	e.unsent(ConversionExpired, "")
}

func TestParseConversionMap(t *testing.T) {
	m, err := ParseConversionMap("signup=LeadSubmitted, lead=, purchase=OrderCreated")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "converted=QualifiedLead,purchase=OrderCreated,signup=LeadSubmitted" {
		t.Errorf("map = %s", got)
	}
	for _, bad := range []string{"purchase=Buy", "purchase", "=Purchase", "keyword=Purchase"} {
		if _, err := ParseConversionMap(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseConversionMap(%q) = %v, want an error naming it", bad, err)
		}
	}
}

// TestWABAFromWebhooks: the WABA of a Cloud API message is its entry's id and of a YCloud
// message its wabaId (both real captures); it survives the log, and an entry logged
// before the WABA existed still decodes, without one.
func TestWABAFromWebhooks(t *testing.T) {
	for name, want := range map[string]string{
		"../testdata/external-payloads/ycloud_capture_text_real.json":            "2115170262645237",
		"../testdata/external-payloads/cloud_metadocs_ctwa_welcome_message.json": "",
	} {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var d webhook.Decoder
		_, items, err := d.Decode(body, testAppID)
		if err != nil || len(items) == 0 {
			t.Fatalf("%s: %d items, %v", name, len(items), err)
		}
		if want == "" {
			var doc struct{ Entry []struct{ ID string } }
			if err := json.Unmarshal(body, &doc); err != nil || len(doc.Entry) == 0 {
				t.Fatalf("%s: %v", name, err)
			}
			want = doc.Entry[0].ID
		}
		if items[0].WABA != want || want == "" {
			t.Errorf("%s: WABA %q, want %q", name, items[0].WABA, want)
		}
		it := items[0]
		logged := appendItem(nil, &it)
		var back webhook.Item
		if rest, err := decodeItem(&back, logged); err != nil || len(rest) != 0 || back.WABA != want || back.ID != it.ID {
			t.Errorf("%s: logged item decodes to WABA %q id %q (%v, %d left)", name, back.WABA, back.ID, err, len(rest))
		}
		it.WABA = ""
		var old webhook.Item
		if _, err := decodeItem(&old, appendItem(nil, &it)); err != nil || old.WABA != "" || old.ID != it.ID {
			t.Errorf("%s: an item logged without a WABA decodes to %q, %v", name, old.WABA, err)
		}
	}
}

// TestConversionWABAFromWebhook: without -waba-id each event names the WABA of its app's
// webhooks (entry[].id): the lead and qualified lead from their messages, the purchase
// (an off-thread event, which names none) from the app's earlier webhook.
func TestConversionWABAFromWebhook(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid009")
	e.send(OutboxConfig{WABA: "none"})
	evs := e.stub.Events()
	if len(evs) != 3 {
		t.Fatalf("Meta got %d events, want 3", len(evs))
	}
	for _, ev := range evs {
		if got := ev.UserData["whatsapp_business_account_id"]; got != "102290129340398" { // cloudWebhook's entry id
			t.Errorf("%s names WABA %v, want the webhook's 102290129340398", ev.EventName, got)
		}
	}
}

// TestConversionAgesOutWhilePending: conversions queued while Meta is down that grow older
// than Meta takes are expired by the sender, not sent.
func TestConversionAgesOutWhilePending(t *testing.T) {
	e := newCapiEnv(t, graphstub.Options{Dataset: capiDataset})
	e.scenario("ARAkLclid011") // an hour old: queued pending
	if n := e.pending(); n != 3 {
		t.Fatalf("%d pending, want 3", n)
	}
	e.send(OutboxConfig{maxAge: 30 * time.Minute})
	e.unsent(ConversionExpired, "")
}

// TestWABALoggedOnlyForConversions: the log keeps an item's WABA only when conversions
// are on (the log entries are the message records, kept for good).
func TestWABALoggedOnlyForConversions(t *testing.T) {
	for _, capi := range []ConversionMap{nil, DefaultConversionMap()} {
		e := &testEnv{t: t, dir: t.TempDir(), capi: capi}
		e.open()
		e.record(cloudWebhook(cloudMsg{App: testAppID, ID: "wamid.waba.1", From: "491700000009", Time: time.Now().Unix(), Text: "Hi"}))
		var wabas []string
		if err := e.log.Entries(0, func(_ uint64, v []byte) (bool, error) {
			items, err := decodeEntry(nil, v)
			for _, it := range items {
				wabas = append(wabas, it.WABA)
			}
			return true, err
		}); err != nil {
			t.Fatal(err)
		}
		want := ""
		if capi != nil {
			want = "102290129340398" // cloudWebhook's entry id
		}
		if len(wabas) != 1 || wabas[0] != want {
			t.Errorf("conversions %v: logged WABAs %q, want [%q]", capi != nil, wabas, want)
		}
		e.close()
	}
}
