package engine

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// Converted events chosen in the dashboard: an off-thread action as a campaign's
// converted event, listing and clearing the definitions, and the choices offered. Every
// expected number is counted by hand from the messages below.

// convertedFixture records, in app scApp, over a spend import that puts ads ad-1 and
// ad-2 in campaign camp-1 (ad set set-1) and ad-3 in camp-2:
//
//	lead 1: ad-1, "hi" then "what is the price?"  (engaged, keyword price)
//	lead 2: ad-1, "hi", then taps list row "size-42"/"Size 42"
//	lead 3: ad-2, "price please"                   (keyword price)
//	lead 4: ad-3, "hi"
//	lead 5: organic, "price?"                      (keyword price, no ad)
//
// "price" is tracked. It returns the recorder's env.
func convertedFixture(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	ctx := context.Background()
	row := func(ad, adSet, campaign string) SpendRow {
		return SpendRow{Date: "2026-03-16", CampaignID: campaign, CampaignName: "Campaign " + campaign, AdSetID: adSet,
			AdSetName: "Ad set " + adSet, AdID: ad, AdName: "Ad " + ad, Status: "active", Impressions: 1000, Clicks: 10, Spend: 5}
	}
	if _, err := e.rec.ImportSpend(ctx, scApp, SpendImport{AdAccount: AdAccount{ID: "act-1", Name: "Shoes", Currency: "EUR"},
		Rows: []SpendRow{row("ad-1", "set-1", "camp-1"), row("ad-2", "set-1", "camp-1"), row("ad-3", "set-2", "camp-2")}}); err != nil {
		t.Fatalf("ImportSpend: %v", err)
	}
	e.addKeyword(scApp, "price")
	l1, l2, l3, l4, l5 := leadMsgs("491700000101"), leadMsgs("491700000102"), leadMsgs("491700000103"),
		leadMsgs("491700000104"), leadMsgs("491700000105")
	size := l2("b2", t0+70, "")
	size.ListReply = &[2]string{"size-42", "Size 42"}
	e.record(cloudWebhook(
		withReferral(l1("a1", t0, "hi"), adReferral("ad-1", "c1")), l1("a2", t0+60, "what is the price?"),
		withReferral(l2("b1", t0+10, "hi"), adReferral("ad-1", "c2")), size,
		withReferral(l3("c1", t0+20, "price please"), adReferral("ad-2", "c3")),
		withReferral(l4("d1", t0+30, "hi"), adReferral("ad-3", "c4")),
		l5("e1", t0+40, "price?")))
	return e
}

// purchase posts an off-thread event of lead (digits) at t.
func (e *testEnv) purchase(lead, action string, amount float64, t int64) {
	e.t.Helper()
	if _, _, err := e.rec.RecordOffThread(context.Background(), OffThread{Lead: lead, Action: action, Amount: amount,
		Currency: "EUR", AppID: scApp, Time: t}); err != nil {
		e.t.Fatalf("RecordOffThread(%s %s): %v", lead, action, err)
	}
	e.sync()
}

// convertedOf returns the converted count of ads in scApp over all days.
func (e *testEnv) convertedOf(ads ...string) int64 {
	e.t.Helper()
	tot, err := e.rec.AdTotals(scApp, ads, Days{From: -1 << 31, To: 1<<31 - 1})
	if err != nil {
		e.t.Fatalf("AdTotals: %v", err)
	}
	return tot.Converted
}

// A purchase converts the session it is credited to when "purchase" is the converted
// event of the session's campaign: once per session, only in the campaign, only for that
// action; a refresh rebuilds the same; clearing the definition stops it.
func TestOffThreadActionConvertsTheSession(t *testing.T) {
	e := convertedFixture(t)
	ctx := context.Background()
	for _, bad := range []Group{
		{AppID: scApp, CampaignID: "camp-1", Type: TypeOffThread},
		{AppID: scApp, CampaignID: "camp-1", Type: TypeOffThread, TypeValue: "keyword"},
		{AppID: scApp, CampaignID: "camp-1", Type: TypeOffThread, TypeValue: "purchase", TypeID: "x"},
	} {
		var fe *FieldError
		if _, err := e.rec.SetConverted(ctx, bad); !errors.As(err, &fe) {
			t.Errorf("SetConverted(%+v) = %v, want a *FieldError", bad, err)
		}
	}
	g, err := e.rec.SetConverted(ctx, Group{AppID: scApp, CampaignID: "camp-1", Type: TypeOffThread, TypeValue: " purchase "})
	if err != nil {
		t.Fatalf("SetConverted: %v", err)
	}
	if g.TypeValue != "purchase" {
		t.Fatalf("stored action %q, want it trimmed", g.TypeValue)
	}
	e.purchase("491700000101", "purchase", 49.9, t0+600)                      // lead 1, ad-1 of camp-1: converts
	e.purchase("491700000101", "Purchase", 10, t0+700)                        // again: the session converted already
	e.purchase("491700000102", "signup", 0, t0+800)                           // another action: no
	e.purchase("491700000104", "purchase", 20, t0+900)                        // ad-3 is in camp-2: no
	e.purchase("491700000105", "purchase", 5, t0+1000)                        // organic: no
	e.record(cloudWebhook(leadMsgs("491700000101")("a3", t0+1100, "thanks"))) // the session stays converted

	check := func(when string) {
		t.Helper()
		if got := [3]int64{e.convertedOf("ad-1"), e.convertedOf("ad-2"), e.convertedOf("ad-3")}; got != [3]int64{1, 0, 0} {
			t.Errorf("%s: converted of ad-1, ad-2, ad-3 = %v, want [1 0 0]", when, got)
		}
		conv := ofType(e.events(scApp), TypeConverted)
		if len(conv) != 1 {
			t.Fatalf("%s: %d converted events, want 1\n%s", when, len(conv), dumpEvents(e.events(scApp)))
		}
		wantEvent(t, conv[0], TypeConverted, g.ID, "purchase", SourceAd, "ad-1", "")
		if conv[0].Time != t0+600 || conv[0].Lead != "491700000101" {
			t.Errorf("%s: converted event at %d of %s, want %d of lead 1", when, conv[0].Time, conv[0].Lead, t0+600)
		}
		if s := e.session(scApp, conv[0].ConversationID); !s.Converted {
			t.Errorf("%s: the session is not marked converted", when)
		}
	}
	check("live")
	if _, err := e.rec.Refresh(ctx, scApp); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	check("after a refresh")
	e.reopen()
	check("after a restart")

	if got := e.rec.ConvertedEvents(scApp); len(got) != 1 || got[0].ID != g.ID || got[0].CampaignID != "camp-1" {
		t.Fatalf("ConvertedEvents = %+v, want the one of camp-1", got)
	}
	if _, err := e.rec.ClearConverted(ctx, scApp, "camp-2", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("ClearConverted(camp-2) = %v, want ErrNotFound", err)
	}
	var fe *FieldError
	if _, err := e.rec.ClearConverted(ctx, scApp, "", ""); !errors.As(err, &fe) || fe.Field != "campaign_id" {
		t.Errorf("ClearConverted() = %v, want a *FieldError for campaign_id", err)
	}
	if cleared, err := e.rec.ClearConverted(ctx, scApp, "camp-1", ""); err != nil || cleared.ID != g.ID || cleared.Status != StatusArchived {
		t.Fatalf("ClearConverted(camp-1) = %+v, %v", cleared, err)
	}
	if got := e.rec.ConvertedEvents(scApp); len(got) != 0 {
		t.Fatalf("ConvertedEvents after clearing = %+v, want none", got)
	}
	if _, err := e.rec.Refresh(ctx, scApp); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if n := e.convertedOf("ad-1", "ad-2", "ad-3"); n != 0 {
		t.Errorf("converted after clearing and a refresh = %d, want 0", n)
	}
}

// A purchase that a refresh credits to another session takes its conversion along.
func TestOffThreadConversionMovesWithItsCredit(t *testing.T) {
	e := convertedFixture(t)
	ctx := context.Background()
	if _, err := e.rec.SetConverted(ctx, Group{AppID: scApp, AdID: "ad-1", Type: TypeOffThread, TypeValue: "purchase"}); err != nil {
		t.Fatal(err)
	}
	// Named no app: credited to lead 1's latest session, in scApp.
	if _, _, err := e.rec.RecordOffThread(ctx, OffThread{Lead: "491700000101", Action: "purchase", Amount: 30,
		Currency: "EUR", Time: t0 + 5000}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if n := e.convertedOf("ad-1"); n != 1 {
		t.Fatalf("converted of ad-1 = %d, want 1", n)
	}
	// Lead 1 then turns out to have written to another app just before the purchase
	// (delivered late): a refresh credits the purchase, which named no app, there.
	other := "207651463353033"
	msg := cloudMsg{App: other, ID: "x1", From: "491700000101", Time: t0 + 4000, Text: "hello"}
	e.record(cloudWebhook(msg))
	if _, err := e.rec.Refresh(ctx, scApp); err != nil {
		t.Fatal(err)
	}
	if n := e.convertedOf("ad-1"); n != 0 {
		t.Errorf("converted of ad-1 after its purchase moved = %d, want 0", n)
	}
	if conv := ofType(e.events(scApp), TypeConverted); len(conv) != 0 {
		t.Errorf("converted events left in scApp:\n%s", dumpEvents(conv))
	}
	for _, s := range e.sessions(scApp) {
		if s.Converted {
			t.Errorf("session %s of %s still converted", s.ID, s.Lead)
		}
	}
}

// The choices of a campaign are the events of its ads' sessions, with the sessions that
// had each; of one ad, that ad's; without scope, every ad's (never an organic session's).
func TestConversionChoices(t *testing.T) {
	e := convertedFixture(t)
	e.purchase("491700000101", "purchase", 49.9, t0+600)
	e.purchase("491700000101", "purchase", 10, t0+700)
	e.purchase("491700000103", "purchase", 20, t0+800)
	e.purchase("491700000105", "purchase", 5, t0+900) // organic: never a choice

	got, err := e.rec.ConversionChoices(scApp, "camp-1", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []ConversionChoice{
		{Type: TypeKeyword, TypeValue: "price", Sessions: 2, Events: 2},                        // leads 1 and 3
		{Type: TypeOffThread, TypeValue: "purchase", Sessions: 2, Events: 3},                   // lead 1 twice, lead 3
		{Type: TypeListReply, TypeID: "size-42", TypeValue: "Size 42", Sessions: 1, Events: 1}, // lead 2
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("choices of camp-1:\n got %+v\nwant %+v", got, want)
	}
	if got, _ := e.rec.ConversionChoices(scApp, "", "ad-2"); !reflect.DeepEqual(got, []ConversionChoice{
		{Type: TypeKeyword, TypeValue: "price", Sessions: 1, Events: 1},
		{Type: TypeOffThread, TypeValue: "purchase", Sessions: 1, Events: 1},
	}) {
		t.Errorf("choices of ad-2: %+v", got)
	}
	if got, _ := e.rec.ConversionChoices(scApp, "camp-2", ""); len(got) != 0 {
		t.Errorf("choices of camp-2 (one session, no event): %+v", got)
	}
	if got, _ := e.rec.ConversionChoices(scApp, "", ""); len(got) != 3 || got[0].Sessions != 2 || got[1].Sessions != 2 {
		t.Errorf("choices of every ad: %+v", got)
	}
}

// The funnel follows the sessions that started in the range to their purchases,
// whenever these happened; purchases of sessions of other days are not counted.
func TestFunnelCountsTheSessionsOwnPurchases(t *testing.T) {
	e := convertedFixture(t) // five sessions on day t0
	ctx := context.Background()
	if _, err := e.rec.SetConverted(ctx, Group{AppID: scApp, CampaignID: "camp-1", Type: TypeKeyword, TypeValue: "price"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.Refresh(ctx, scApp); err != nil {
		t.Fatal(err)
	}
	e.purchase("491700000101", "purchase", 49.9, t0+2*day) // lead 1 (ad-1), two days later
	e.purchase("491700000101", "purchase", 10.1, t0+3*day) // again
	e.purchase("491700000105", "purchase", 5, t0+2*day)    // lead 5, organic
	l6 := leadMsgs("491700000106")                         // a session of the next day
	e.record(cloudWebhook(withReferral(l6("f1", t0+day, "hi"), adReferral("ad-1", "c6"))))
	e.purchase("491700000106", "purchase", 99, t0+day+60)
	l7 := leadMsgs("491700000107") // organic; its later message arrives first
	e.record(cloudWebhook(l7("g2", t0+500, "anyone there?")))
	e.record(cloudWebhook(l7("g1", t0+400, "hello")))

	dayStart := t0 - t0%day
	rows, err := e.rec.Funnel(scApp, dayStart, dayStart+day)
	if err != nil {
		t.Fatal(err)
	}
	want := []FunnelRow{
		{Type: SourceAd, ID: "ad-1", Sessions: 2, Engaged: 2, Converted: 1, Purchasers: 1, Purchases: 2,
			Revenue: []Money{{Currency: "EUR", Amount: 60}}}, // leads 1 and 2; lead 1 wrote "price"
		// Leads 5 and 7: lead 7's engagement is placed before its session's first event.
		{Type: SourceOrganic, Sessions: 2, Engaged: 1, Purchasers: 1, Purchases: 1, Revenue: []Money{{Currency: "EUR", Amount: 5}}},
		// (every purchase of day 0's sessions came later: none in the range)
		{Type: SourceAd, ID: "ad-2", Sessions: 1, Converted: 1, Revenue: []Money{}}, // lead 3's "price please"
		{Type: SourceAd, ID: "ad-3", Sessions: 1, Revenue: []Money{}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("funnel of day 0:\n got %+v\nwant %+v", rows, want)
	}
	rows, _ = e.rec.Funnel(scApp, dayStart+day, dayStart+2*day)
	if len(rows) != 1 || rows[0].ID != "ad-1" || rows[0].Sessions != 1 || rows[0].Purchases != 1 || rows[0].PurchasesInRange != 1 ||
		rows[0].Revenue[0].Amount != 99 {
		t.Errorf("funnel of day 1: %+v, want lead 6's session and its purchase, the same day", rows)
	}
	rows, _ = e.rec.Funnel(scApp, dayStart, dayStart+3*day) // days 0–2: lead 1's second purchase is on day 3
	if len(rows) != 4 || rows[0].ID != "ad-1" || rows[0].Sessions != 3 || rows[0].Purchases != 3 || rows[0].PurchasesInRange != 2 {
		t.Errorf("funnel of days 0–2: %+v, want ad-1 with 3 sessions, 3 purchases, 2 of them in the range", rows)
	}
	if rows, _ = e.rec.Funnel(scApp, dayStart+2*day, dayStart+4*day); len(rows) != 0 {
		t.Errorf("funnel of days 2–3 (purchases, no session): %+v, want none", rows)
	}
}
