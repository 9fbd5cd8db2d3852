package engine_test

// Tests of how a refresh re-credits off-thread events (SPEC §4.1, §5): every indexed
// event is re-examined even when one record is missing, events that named no app reach
// the session a post would find now that the lead's messages are in, an event that
// named an app stays in it, and no rollup counts an event twice.

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

const otLead3 = "4915223456789"

var allDays = engine.Days{From: math.MinInt32, To: math.MaxInt32}

func (e *otEnv) refresh(app string) engine.RefreshResult {
	e.t.Helper()
	res, err := e.rec.Refresh(context.Background(), app)
	if err != nil {
		e.t.Fatalf("Refresh(%s): %v", app, err)
	}
	return res
}

// credit is what a source's totals say about off-thread events.
type credit struct {
	Count   int64
	Revenue map[string]float64
}

// credits returns the off-thread count and revenue of every source of app that has any.
func (e *otEnv) credits(app string) map[engine.SourceRef]credit {
	e.t.Helper()
	totals, err := e.rec.SourceTotals(app, allDays)
	if err != nil {
		e.t.Fatalf("SourceTotals(%s): %v", app, err)
	}
	out := map[engine.SourceRef]credit{}
	for ref, t := range totals {
		if t.OffCount == 0 && len(t.Revenue) == 0 {
			continue
		}
		rev := map[string]float64{}
		for c, v := range t.Revenue {
			rev[c] = math.Round(v*100) / 100
		}
		out[ref] = credit{t.OffCount, rev}
	}
	return out
}

func (e *otEnv) wantCredits(name, app string, want map[engine.SourceRef]credit) {
	e.t.Helper()
	got := e.credits(app)
	if len(got) != len(want) {
		e.t.Errorf("%s: app %s credits\n got %v\nwant %v", name, app, got, want)
		return
	}
	for ref, w := range want {
		g, ok := got[ref]
		if !ok || g.Count != w.Count || len(g.Revenue) != len(w.Revenue) {
			e.t.Errorf("%s: app %s credits\n got %v\nwant %v", name, app, got, want)
			return
		}
		for c, v := range w.Revenue {
			if g.Revenue[c] != v {
				e.t.Errorf("%s: app %s credits\n got %v\nwant %v", name, app, got, want)
				return
			}
		}
	}
}

func (e *otEnv) stored(id string) engine.OffThreadRecord {
	e.t.Helper()
	rec, ok, err := e.rec.OffThread(id)
	if err != nil || !ok {
		e.t.Fatalf("OffThread(%q) = %v, %v", id, ok, err)
	}
	return rec
}

func eur(amount float64) map[string]float64 { return map[string]float64{"EUR": amount} }

// A record missing behind its index entry used to end the re-attribution there: every
// later event of the app lost its row and its credit.
func TestRefreshGoesOnPastAMissingOffThreadRecord(t *testing.T) {
	e := newOTEnv(t)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	app1 := `"app_id":"` + otApp1 + `"`
	first, _ := e.post(otEvent(otLead, otT0.Add(time.Hour), app1))
	second, _ := e.post(otEvent(otLead, otT0.Add(2*time.Hour), app1))
	// An index entry earlier than both whose record is gone.
	ghost := kv.OffThreadAppKey(otApp1, otT0.Add(30*time.Minute).Unix(), "ghost")
	if err := e.store.Apply(context.Background(), func(b kv.Batch) error {
		b.Set(ghost, nil)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	res := e.refresh(otApp1)
	if res.OffThread != 2 || res.MissingOffThread != 1 {
		t.Errorf("refresh answered %+v, want 2 off-thread events re-attributed and 1 missing", res)
	}
	want := attribution{true, otApp1, s, engine.SourceAd, otAdA}
	e.wantAttribution("first after refresh", first, want)
	e.wantAttribution("second after refresh", second, want)
	if rows := e.ofType(otApp1, "purchase"); len(rows) != 2 {
		t.Errorf("%d purchase rows after refresh, want 2: %+v", len(rows), rows)
	}
	// 49.9 + 49.9 = 99.8 EUR on the ad.
	e.wantCredits("after refresh", otApp1, map[engine.SourceRef]credit{{Type: engine.SourceAd, ID: otAdA}: {2, eur(99.8)}})
}

// Events posted before the lead's first message was delivered find no session. Once the
// messages are in, a refresh credits them as a post would now (SPEC §5): the latest
// session of any app when they named none, of their app when they named one.
func TestRefreshCreditsEventsPostedBeforeTheLeadsMessages(t *testing.T) {
	e := newOTEnv(t)
	at := otT0.Add(time.Hour)
	app1 := `"app_id":"` + otApp1 + `"`
	// Lead 1: one app-less purchase; its app-1 ad session starts an hour before it.
	lone, _ := e.post(otEvent(otLead, at, ""))
	// Lead 2: an app-less and an app-1 purchase; sessions on app 1 (ad A, 09:00) and on
	// app 2 (ad B, 09:30).
	anyApp, _ := e.post(otEvent(otLead2, at, ""))
	named, _ := e.post(otEvent(otLead2, at, app1))
	// Lead 3: an app-less purchase credited, when posted, to its only session (app 1);
	// app 2's later session arrives afterwards.
	s3 := e.message(otMsg{App: otApp1, Lead: otLead3, At: otT0, Ad: otAdA})
	moved, _ := e.post(otEvent(otLead3, at, ""))
	e.wantAttribution("lead 3 as posted", moved, attribution{true, otApp1, s3, engine.SourceAd, otAdA})
	for _, r := range []engine.OffThreadRecord{lone, anyApp} {
		e.wantAttribution("app-less, as posted", r, unattributed(""))
	}
	e.wantAttribution("app 1, as posted", named, unattributed(otApp1))
	// The unattributed row of app 1: its own event and the two that named no app,
	// 3 × 49.9 = 149.7 EUR; lead 3's event on ad A.
	unattributedRow := engine.SourceRef{Type: engine.SourceUnattributed}
	adA, adB := engine.SourceRef{Type: engine.SourceAd, ID: otAdA}, engine.SourceRef{Type: engine.SourceAd, ID: otAdB}
	e.wantCredits("as posted", otApp1, map[engine.SourceRef]credit{unattributedRow: {3, eur(149.7)}, adA: {1, eur(49.9)}})

	// The messages arrive.
	s1 := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	s2a := e.message(otMsg{App: otApp1, Lead: otLead2, At: otT0, Ad: otAdA})
	s2b := e.message(otMsg{App: otApp2, Lead: otLead2, At: otT0.Add(30 * time.Minute), Ad: otAdB})
	s3b := e.message(otMsg{App: otApp2, Lead: otLead3, At: otT0.Add(30 * time.Minute), Ad: otAdB})

	res := e.refresh(otApp1)
	// Re-examined: app 1's lead-3 event and lead-2 app-1 event, and the two app-less.
	if res.OffThread != 4 || res.MissingOffThread != 0 {
		t.Errorf("refresh answered %+v, want 4 off-thread events", res)
	}
	check := func(when string) {
		t.Helper()
		e.wantAttribution(when+": lead 1", e.stored(lone.ID), attribution{true, otApp1, s1, engine.SourceAd, otAdA})
		e.wantAttribution(when+": lead 2, no app", e.stored(anyApp.ID), attribution{true, otApp2, s2b, engine.SourceAd, otAdB})
		e.wantAttribution(when+": lead 2, app 1", e.stored(named.ID), attribution{true, otApp1, s2a, engine.SourceAd, otAdA})
		e.wantAttribution(when+": lead 3", e.stored(moved.ID), attribution{true, otApp2, s3b, engine.SourceAd, otAdB})
		// App 1: lead 1's and lead 2's named event on ad A, 2 × 49.9 = 99.8; no
		// unattributed row left. App 2: lead 2's and lead 3's app-less events on ad B.
		e.wantCredits(when, otApp1, map[engine.SourceRef]credit{adA: {2, eur(99.8)}})
		e.wantCredits(when, otApp2, map[engine.SourceRef]credit{adB: {2, eur(99.8)}})
		e.wantCredits(when, "", map[engine.SourceRef]credit{})
		if n1, n2 := len(e.ofType(otApp1, "purchase")), len(e.ofType(otApp2, "purchase")); n1 != 2 || n2 != 2 {
			t.Errorf("%s: purchase rows %d on app 1, %d on app 2; want 2 and 2", when, n1, n2)
		}
	}
	check("after refreshing app 1")
	// Refreshing again, either app, credits nothing twice.
	e.refresh(otApp1)
	check("after refreshing app 1 again")
	e.refresh(otApp2)
	check("after refreshing app 2")
}

// paid is an off-thread purchase of lead at time at, with extra JSON members.
func paid(lead string, at time.Time, amount, currency, extra string) string {
	b := `{"lead_phone":"+` + lead + `","action":"purchase","revenue":{"amount":` + amount + `,"currency":"` + currency +
		`"},"event_time":"` + at.UTC().Format(time.RFC3339) + `"`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// The unattributed row of an app holds its own unattributed events and those that named
// no app; with no ad account, its revenue is reported in the currency of the earliest of
// them (SPEC §6.2), whichever of the two it is.
func TestUnattributedRowCurrencyFollowsEventTime(t *testing.T) {
	e := newOTEnv(t)
	app1 := `"app_id":"` + otApp1 + `"`
	d := func(n int, hour int) time.Time {
		return otT0.Truncate(24*time.Hour).AddDate(0, 0, n).Add(time.Duration(hour) * time.Hour)
	}
	// None of these leads has a session: every event is unattributed.
	e.post(paid(otLead, d(0, 10), "30", "USD", ""))     // day 0: no app
	e.post(paid(otLead, d(1, 9), "49.9", "EUR", app1))  // day 1: app 1
	e.post(paid(otLead2, d(2, 9), "20", "EUR", app1))   // day 2, 09:00: app 1
	e.post(paid(otLead2, d(2, 10), "5", "USD", ""))     // day 2, 10:00: no app
	e.post(paid(otLead3, d(3, 8), "7", "USD", ""))      // day 3, 08:00: no app
	e.post(paid(otLead3, d(3, 9), "12.5", "EUR", app1)) // day 3, 09:00: app 1

	cases := []struct {
		name     string
		from, to int // days, inclusive
		count    int64
		currency string
		amount   float64
		other    engine.Money
	}{
		// Days 0 and 1: the app-less USD came first. 49.9 EUR apart.
		{"across days", 0, 1, 2, "USD", 30, engine.Money{Currency: "EUR", Amount: 49.9}},
		// Day 2: app 1's EUR at 09:00 before the app-less USD at 10:00.
		{"one day, the app's first", 2, 2, 2, "EUR", 20, engine.Money{Currency: "USD", Amount: 5}},
		// Day 3: the app-less USD at 08:00 before app 1's EUR at 09:00.
		{"one day, the app-less first", 3, 3, 2, "USD", 7, engine.Money{Currency: "EUR", Amount: 12.5}},
		// Days 2 and 3: the first day decides. USD 5 + 7 = 12 apart.
		{"the first day decides", 2, 3, 4, "EUR", 32.5, engine.Money{Currency: "USD", Amount: 12}},
	}
	for _, tc := range cases {
		days := engine.Days{From: e.rec.Day(d(tc.from, 0).Unix()), To: e.rec.Day(d(tc.to, 0).Unix()) + 1}
		totals, err := e.rec.SourceTotals(otApp1, days)
		if err != nil {
			t.Fatal(err)
		}
		row := totals[engine.SourceRef{Type: engine.SourceUnattributed}]
		if row == nil {
			t.Errorf("%s: no unattributed row among %v", tc.name, totals)
			continue
		}
		currency, amount, others := row.SplitRevenue("")
		if row.OffCount != tc.count || currency != tc.currency || engine.Round2(amount) != tc.amount ||
			len(others) != 1 || others[0] != tc.other {
			t.Errorf("%s: count %d, revenue %v %s, others %v; want %d, %v %s, [%v]", tc.name, row.OffCount,
				amount, currency, others, tc.count, tc.amount, tc.currency, tc.other)
		}
	}
}
