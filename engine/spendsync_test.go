package engine

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/adsstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

const (
	adsToken = "EAAG-ads-token"
	adsAct   = "174816537731874"
	adsApp   = "106540352242922"
)

// syncEnv is a recorder, a Marketing API stub with one ad account in Berlin time, and
// the sync of that account into adsApp. Its clock is fixed at 2026-11-28 23:30 UTC:
// already the 29th in Berlin.
type syncEnv struct {
	*testEnv
	stub   *adsstub.Server
	meta   *metaapi.Client
	sync   *SpendSync
	now    time.Time
	sleeps []time.Duration // what the client paced
	mu     sync.Mutex
}

func newSyncEnv(t *testing.T, days []adsstub.DayRow) *syncEnv {
	t.Helper()
	now := time.Date(2026, 11, 28, 23, 30, 0, 0, time.UTC)
	e := &syncEnv{testEnv: newTestEnv(t), now: now}
	e.stub = adsstub.Start(t, adsstub.Options{Version: metaapi.DefaultVersion, Token: adsToken, PageSize: 2,
		AsyncPolls: 1, Now: func() time.Time { return now }, Accounts: []adsstub.Account{{
			ID: adsAct, Name: "Shoes GmbH", Currency: "EUR", Timezone: "Europe/Berlin",
			Ads: []adsstub.Ad{
				{ID: "601", Name: "Spring - image", Status: "ACTIVE", AdSetID: "501", AdSetName: "DE 25-45", AdSetStatus: "ACTIVE", CampaignID: "401", CampaignName: "Spring", CampaignStatus: "ACTIVE",
					Created: "2026-03-02T09:15:00+0100", CampaignCreated: "2026-03-01T10:00:00+0000"},
				{ID: "602", Name: "Spring - video", Status: "PAUSED", AdSetID: "501", AdSetName: "DE 25-45", AdSetStatus: "ACTIVE", CampaignID: "401", CampaignName: "Spring", CampaignStatus: "ACTIVE"},
				{ID: "603", Name: "Autumn - image", Status: "ARCHIVED", AdSetID: "502", AdSetName: "AT", AdSetStatus: "ARCHIVED", CampaignID: "402", CampaignName: "Autumn", CampaignStatus: "PAUSED"},
			},
			Days: days,
		}}})
	e.meta = metaapi.New(e.stub.URL, metaapi.DefaultVersion, adsToken, 5*time.Second)
	e.meta.PollEvery = time.Millisecond
	e.meta.Sleep = func(_ context.Context, d time.Duration) error {
		e.mu.Lock()
		e.sleeps = append(e.sleeps, d)
		e.mu.Unlock()
		return nil
	}
	e.sync = e.rec.NewSpendSync(SpendSyncConfig{Meta: e.meta, Accounts: []SpendAccount{{Act: adsAct, App: adsApp}},
		Days: 3, BackfillDays: 10, RetryMin: time.Millisecond, now: func() time.Time { return now }})
	return e
}

// run runs one sync of the account and returns its state after it.
func (e *syncEnv) run() SpendSyncStatus {
	e.t.Helper()
	e.sync.runOnce(context.Background(), e.sync.accounts[0])
	return e.sync.Status(adsApp)[0]
}

// delivery is the stored delivery of ad on date, or ok false.
func (e *syncEnv) delivery(ad, date string) (Delivery, bool) {
	e.t.Helper()
	day, err := DayOf(date)
	if err != nil {
		e.t.Fatal(err)
	}
	v, ok, err := e.store.Get(kv.SpendKey(ad, day))
	if err != nil {
		e.t.Fatal(err)
	}
	var d Delivery
	if ok {
		if err := json.Unmarshal(v, &d); err != nil {
			e.t.Fatal(err)
		}
	}
	return d, ok
}

func (e *syncEnv) wantDelivery(ad, date string, want Delivery) {
	e.t.Helper()
	got, ok := e.delivery(ad, date)
	if !ok || got != want {
		e.t.Errorf("ad %s on %s: %+v (stored %v), want %+v", ad, date, got, ok, want)
	}
}

var syncDays = []adsstub.DayRow{
	{AdID: "601", Date: "2026-11-20", Spend: "5.00", Impressions: "100", Clicks: "3"}, // in the 10-day backfill only
	{AdID: "601", Date: "2026-11-27", Spend: "20.00", Impressions: "1234", Clicks: "41"},
	{AdID: "602", Date: "2026-11-27", Spend: "7.50", Impressions: "300", Clicks: "9"},
	{AdID: "601", Date: "2026-11-29", Spend: "1.25", Impressions: "40", Clicks: "1"}, // today in Berlin, not yet in UTC
	{AdID: "601", Date: "2026-11-10", Spend: "99.00", Impressions: "1", Clicks: "1"}, // before the backfill
}

// TestSpendSyncBackfillsThenRepullsRevisedDays: the first run backfills 10 account days
// over several pages (numbers arrive as strings), up to the account's today (Berlin,
// while UTC is still on the 28th); the catalogue gets names and statuses. A later run
// pulls 3 days again and a day Meta revised replaces the stored one.
func TestSpendSyncBackfillsThenRepullsRevisedDays(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	st := e.run()
	if st.LastError != "" || st.Rows != 4 || st.LastSuccess.IsZero() {
		t.Fatalf("first run: %+v, want 4 rows", st)
	}
	e.wantDelivery("601", "2026-11-20", Delivery{Impressions: 100, Clicks: 3, Spend: 5})
	e.wantDelivery("601", "2026-11-27", Delivery{Impressions: 1234, Clicks: 41, Spend: 20})
	e.wantDelivery("602", "2026-11-27", Delivery{Impressions: 300, Clicks: 9, Spend: 7.5})
	e.wantDelivery("601", "2026-11-29", Delivery{Impressions: 40, Clicks: 1, Spend: 1.25})
	if _, ok := e.delivery("601", "2026-11-10"); ok {
		t.Error("a day before the backfill was stored")
	}
	cat := e.rec.catalog.Load()
	if ad := cat.Ads["602"]; ad.Status != "PAUSED" || ad.AppID != adsApp || ad.Name != "Spring - video" {
		t.Errorf("ad 602 in the catalogue: %+v", ad)
	}
	if acct := cat.AdAccounts[adsAct]; acct.Currency != "EUR" || acct.Name != "Shoes GmbH" {
		t.Errorf("ad account: %+v", acct)
	}
	pages, adPages := 0, 0
	for _, r := range e.stub.Requests() {
		if strings.HasSuffix(r.Path, "/ads") {
			adPages++
		}
		if strings.HasSuffix(r.Path, "/insights") {
			pages++
			if tr := r.Query.Get("time_range"); pages == 1 && tr != `{"since":"2026-11-20","until":"2026-11-29"}` {
				t.Errorf("first run's time_range %s, want the 10 Berlin days to the 29th", tr)
			}
		}
	}
	if pages != 2 || adPages != 2 {
		t.Errorf("%d insights and %d ads pages, want 2 each (4 rows and 3 ads, 2 per page)", pages, adPages)
	}

	e.stub.SetDay(adsAct, adsstub.DayRow{AdID: "601", Date: "2026-11-27", Spend: "22.40", Impressions: "1300", Clicks: "44"})
	before := len(e.stub.Requests())
	if st := e.run(); st.LastError != "" || st.Rows != 3 {
		t.Fatalf("second run: %+v, want the 3 rows of the last 3 days", st)
	}
	e.wantDelivery("601", "2026-11-27", Delivery{Impressions: 1300, Clicks: 44, Spend: 22.4})
	for _, r := range e.stub.Requests()[before:] {
		if tr := r.Query.Get("time_range"); tr != "" && tr != `{"since":"2026-11-27","until":"2026-11-29"}` {
			t.Errorf("second run's time_range %s, want the last 3 Berlin days", tr)
		}
	}
}

// TestSpendSyncFailureStoresNothing: a throttle on page 2 fails the run and stores none of
// its days, and the next run stores them; each throttle code backs off and recovers.
func TestSpendSyncFailureStoresNothing(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	f := adsstub.Throttled(17, 2446079)
	f.AfterPage = 1
	e.stub.Script(f)
	st := e.run()
	if st.LastError == "" || !strings.Contains(st.LastError, "17") || !st.LastSuccess.IsZero() {
		t.Fatalf("run with page 2 refused: %+v, want a failure naming code 17", st)
	}
	for _, d := range []string{"2026-11-20", "2026-11-27"} {
		if _, ok := e.delivery("601", d); ok {
			t.Errorf("ad 601 on %s was stored by a run that failed", d)
		}
	}
	for _, th := range []adsstub.Fault{adsstub.Throttled(4, 1504022), adsstub.Throttled(613, 1487742), adsstub.Throttled(80000, 0)} {
		e.stub.Script(th)
		if st := e.run(); st.LastError == "" {
			t.Errorf("code %d: the run succeeded", th.Code)
		}
		if wait := e.sync.accounts[0].st.NextRun.Sub(e.now); wait <= 0 {
			t.Errorf("code %d: next run in %s, want a backoff", th.Code, wait)
		}
	}
	if st := e.run(); st.LastError != "" || st.Rows != 4 {
		t.Errorf("after the throttles: %+v, want the 4 rows", st)
	}
	e.wantDelivery("601", "2026-11-27", Delivery{Impressions: 1234, Clicks: 41, Spend: 20})
}

// TestSpendSyncAsyncReport: Meta times a synchronous request out (100/1504018, 2/1504038);
// the client runs it as an async report, polls it to Job Completed and reads its pages.
func TestSpendSyncAsyncReport(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	for _, f := range []adsstub.Fault{adsstub.InsightsTimeout(1504018), adsstub.InsightsTimeout(1504038)} {
		e.stub.Script(f) // the first request is the insights one
		rows, err := e.meta.Insights(context.Background(), adsAct, "2026-11-20", "2026-11-29")
		if err != nil || len(rows) != 4 {
			t.Fatalf("after %d/%d: %d rows, %v; want the 4 through the async report", f.Code, f.Subcode, len(rows), err)
		}
	}
	var posted, polled bool
	for _, r := range e.stub.Requests() {
		posted = posted || r.Method == "POST" && strings.HasSuffix(r.Path, "/insights")
		polled = polled || r.Query.Get("fields") == "async_status,async_percent_completion"
	}
	if !posted || !polled {
		t.Errorf("async report posted %v, polled %v", posted, polled)
	}
}

// TestSpendSyncPacesByUsage: at 80 % usage the client waits before the next page, at
// 100 % it waits for Meta's estimated_time_to_regain_access; below 75 % not at all.
func TestSpendSyncPacesByUsage(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	e.meta.PaceMax = time.Minute
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{`{"acc_id_util_pct": 9.67, "reset_time_duration": 100}`, 0},
		{`{"acc_id_util_pct": 80, "reset_time_duration": 100}`, 12 * time.Second}, // (80-75)/25 of a minute
		{`{"acc_id_util_pct": 100, "reset_time_duration": 300}`, 5 * time.Minute},
	} {
		e.stub.SetUsage(map[string]string{"X-Ad-Account-Usage": tc.header})
		e.sleeps = nil
		if st := e.run(); st.LastError != "" {
			t.Fatalf("%s: %+v", tc.header, st)
		}
		// One pause between the 2 insights pages, one between the 2 ads pages.
		if len(e.sleeps) != 2 || e.sleeps[0] != tc.want || e.sleeps[1] != tc.want {
			t.Errorf("usage %s: paced %v, want two pauses of %s", tc.header, e.sleeps, tc.want)
		}
	}
	e.stub.SetUsage(map[string]string{"X-Business-Use-Case-Usage": `{"` + adsAct + `": [{"type": "ads_insights", "call_count": 100, "total_cputime": 20, "total_time": 20, "estimated_time_to_regain_access": 3}]}`})
	e.sleeps = nil
	e.run()
	if len(e.sleeps) != 2 || e.sleeps[0] != 3*time.Minute {
		t.Errorf("business use case at 100 %%: paced %v, want 3m twice", e.sleeps)
	}
}

// TestSpendSyncStopsOnTokenError: a refused token (190) stops the account's sync, says
// so in its state, and a run after the token is valid again (POST …/ads/sync) resumes.
func TestSpendSyncStopsOnTokenError(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	e.stub.SetToken("another")
	st := e.run()
	if !st.Stopped || !strings.Contains(st.LastError, "token") || !st.NextRun.IsZero() {
		t.Fatalf("after a 190: %+v, want stopped, saying token, no next run", st)
	}
	e.stub.SetToken(adsToken)
	if st := e.run(); st.Stopped || st.LastError != "" || st.Rows != 4 {
		t.Errorf("after the token works again: %+v", st)
	}
}

// TestSpendSyncAccountWithoutRows: an account that delivered nothing is a successful run
// of 0 rows that stores nothing.
func TestSpendSyncAccountWithoutRows(t *testing.T) {
	e := newSyncEnv(t, nil)
	if st := e.run(); st.LastError != "" || st.Rows != 0 || st.LastSuccess.IsZero() {
		t.Errorf("empty account: %+v", st)
	}
	if _, ok := e.rec.catalog.Load().AdAccounts[adsAct]; ok {
		t.Error("an account without rows entered the catalogue")
	}
}

// TestSpendSyncResumesWithANewTokenFile: a sync stopped by a refused token runs again by
// itself once -meta-token-file holds another token, and stores the rows.
func TestSpendSyncResumesWithANewTokenFile(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	file := t.TempDir() + "/token"
	if err := os.WriteFile(file, []byte("expired\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.meta.ReadTokenFrom(file)
	e.sync.cfg.TokenCheck = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.sync.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "the sync to stop", func() bool { return e.sync.Status(adsApp)[0].Stopped })
	time.Sleep(50 * time.Millisecond) // several token checks with the same token: still stopped
	if st := e.sync.Status(adsApp)[0]; !st.Stopped || st.Rows != 0 {
		t.Fatalf("with the refused token unchanged: %+v", st)
	}
	if err := os.WriteFile(file, []byte(adsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the sync to resume", func() bool { st := e.sync.Status(adsApp)[0]; return !st.Stopped && st.Rows == 4 })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The catalogue takes Meta's created_time of an ad and its campaign when the sync
// reads them; an ad Meta gives none for keeps the time the sidecar first saw it.
func TestSpendSyncTakesMetasCreatedTime(t *testing.T) {
	e := newSyncEnv(t, syncDays)
	if st := e.run(); st.LastError != "" {
		t.Fatalf("sync: %s", st.LastError)
	}
	cat := e.rec.Catalog()
	// 2026-03-02 09:15 at +01:00 is 08:15 UTC; 2026-03-01 10:00 UTC.
	if got, want := cat.Ads["601"].Created, time.Date(2026, 3, 2, 8, 15, 0, 0, time.UTC).Unix(); got != want {
		t.Errorf("ad 601 created %s, want Meta's %s", time.Unix(got, 0).UTC(), time.Unix(want, 0).UTC())
	}
	if got, want := cat.Campaigns["401"].Created, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Unix(); got != want {
		t.Errorf("campaign 401 created %s, want Meta's %s", time.Unix(got, 0).UTC(), time.Unix(want, 0).UTC())
	}
	if cat.Ads["602"].Created == 0 {
		t.Error("ad 602, without a created_time from Meta, has no creation time")
	}
}
