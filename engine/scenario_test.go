package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Scenario tests: webhooks built by cloudWebhook go through Recorder.Record into a real
// store, and the events and sessions they leave are checked with exact counts (SPEC §4).

const (
	scApp = "106540352242922"
	t0    = int64(1773652447) // 2026-03-16T09:14:07Z
	day   = int64(86400)
)

// lead returns a helper that builds text messages of one phone lead on scApp.
func leadMsgs(phone string) func(id string, ts int64, text string) cloudMsg {
	return func(id string, ts int64, text string) cloudMsg {
		return cloudMsg{App: scApp, ID: id, From: phone, Time: ts, Text: text}
	}
}

func adReferral(adID, clid string) *webhook.Referral {
	return &webhook.Referral{SourceType: "ad", SourceID: adID, SourceURL: "https://fb.me/" + adID,
		Headline: "Headline of " + adID, Body: "Body of " + adID, MediaType: "image", CtwaClid: clid}
}

func withReferral(m cloudMsg, r *webhook.Referral) cloudMsg {
	m.Referral = r
	return m
}

// typeCounts counts events by type.
func typeCounts(evs []kv.Event) map[string]int {
	n := map[string]int{}
	for _, ev := range evs {
		n[ev.Type]++
	}
	return n
}

func wantCounts(t *testing.T, evs []kv.Event, want map[string]int) {
	t.Helper()
	if got := typeCounts(evs); !maps.Equal(got, want) {
		t.Fatalf("event counts = %v, want %v\n%s", got, want, dumpEvents(evs))
	}
}

func dumpEvents(evs []kv.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s id=%q value=%q t=%d lead=%s conv=%s source=%s:%s msg=%s\n", ev.Type, ev.TypeID,
			ev.TypeValue, ev.Time, ev.Lead, ev.ConversationID, ev.SourceType, ev.SourceID, ev.MessageID)
	}
	return b.String()
}

// only returns the single event of type typ in evs; it fails the test when there is not exactly one.
func only(t *testing.T, evs []kv.Event, typ string) kv.Event {
	t.Helper()
	got := ofType(evs, typ)
	if len(got) != 1 {
		t.Fatalf("%d %s events, want 1\n%s", len(got), typ, dumpEvents(evs))
	}
	return got[0]
}

func wantEvent(t *testing.T, ev kv.Event, typ, typeID, typeValue, sourceType, sourceID, msgID string) {
	t.Helper()
	if ev.Type != typ || ev.TypeID != typeID || ev.TypeValue != typeValue || ev.SourceType != sourceType ||
		ev.SourceID != sourceID || ev.MessageID != msgID {
		t.Fatalf("event = %s id=%q value=%q source=%s:%s msg=%s; want %s id=%q value=%q source=%s:%s msg=%s",
			ev.Type, ev.TypeID, ev.TypeValue, ev.SourceType, ev.SourceID, ev.MessageID,
			typ, typeID, typeValue, sourceType, sourceID, msgID)
	}
}

func TestScenarioCTWASession(t *testing.T) {
	e := newTestEnv(t)
	msg := leadMsgs("491700000001")
	ref := adReferral("ad-1", "clid-1")
	e.record(cloudWebhook(withReferral(msg("m1", t0, "Hi, is this available?"), ref)))

	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 1})
	conv := evs[0]
	wantEvent(t, conv, TypeConversation, "", "ad-1", SourceAd, "ad-1", "m1")
	if conv.Lead != "491700000001" || conv.LeadIsBSUID || conv.Time != t0 || conv.AppID != scApp {
		t.Fatalf("conversation event = %+v", conv)
	}
	s := e.session(scApp, conv.ConversationID)
	// The session keeps the click and the source; the referral's texts are kept once per
	// ad, in its referral record.
	want := kv.Session{ID: conv.ConversationID, AppID: scApp, Lead: "491700000001", Start: t0, Last: t0,
		Messages: 1, SourceType: SourceAd, SourceID: "ad-1",
		Referral: kv.Referral{SourceType: "ad", SourceID: "ad-1", CtwaClid: "clid-1"}}
	if s != want {
		t.Fatalf("session =\n%+v\nwant\n%+v", s, want)
	}
	if ads, err := e.rec.ReferralAds(scApp); err != nil || len(ads) != 1 || ads[0].ID != "ad-1" || ads[0].Name != "Headline of ad-1" {
		t.Fatalf("referral ads %+v (%v), want ad-1 named by its headline", ads, err)
	}

	// The second message engages, once.
	e.record(cloudWebhook(msg("m2", t0+60, "What sizes do you have?")))
	evs = e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1})
	eng := only(t, evs, TypeEngagement)
	wantEvent(t, eng, TypeEngagement, "", "", SourceAd, "ad-1", "m2")
	if eng.ConversationID != conv.ConversationID {
		t.Fatalf("engagement in conversation %s, want %s", eng.ConversationID, conv.ConversationID)
	}

	// The third does not.
	e.record(cloudWebhook(msg("m3", t0+120, "Thanks")))
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1, TypeEngagement: 1})
	s = e.session(scApp, conv.ConversationID)
	if s.Messages != 3 || s.Last != t0+120 || !s.Engaged || s.Referral.CtwaClid != "clid-1" {
		t.Fatalf("session after 3 messages = %+v", s)
	}
	if n := len(e.sessions(scApp)); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}

	// Everything survives a restart, and the next message still lands in the session.
	e.reopen()
	e.record(cloudWebhook(msg("m4", t0+180, "Bye")))
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1, TypeEngagement: 1})
	if s := e.session(scApp, conv.ConversationID); s.Messages != 4 {
		t.Fatalf("session after restart has %d messages, want 4", s.Messages)
	}
}

func TestScenarioKeywordBoundaries(t *testing.T) {
	e := newTestEnv(t)
	yes := e.addKeyword(scApp, "yes")
	other := e.addKeyword("another-app", "yesterday") // another app's keyword never fires here
	msg := leadMsgs("491700000002")
	e.record(cloudWebhook(
		msg("k1", t0, "yes"),
		msg("k2", t0+1, "yesterday I asked about eyes"),
		msg("k3", t0+2, "Yes!"),
		msg("k4", t0+3, "YES yes Yes, really yes"),
		msg("k5", t0+4, "yess"),
	))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1, TypeKeyword: 3})
	var ids []string
	for _, ev := range ofType(evs, TypeKeyword) {
		if ev.TypeID != yes.ID || ev.TypeValue != "yes" || ev.SourceType != SourceOrganic {
			t.Fatalf("keyword event = %+v, want type_id %s value yes, organic", ev, yes.ID)
		}
		ids = append(ids, ev.MessageID)
	}
	if strings.Join(ids, ",") != "k1,k3,k4" {
		t.Fatalf("keyword events of messages %v, want k1,k3,k4", ids)
	}
	if yes.ID == other.ID || yes.TypeID != yes.ID {
		t.Fatalf("groups %+v and %+v: want distinct ids, keyword type_id = id", yes, other)
	}
}

func TestScenarioReplies(t *testing.T) {
	e := newTestEnv(t)
	e.addKeyword(scApp, "berlin")
	m := leadMsgs("491700000003")
	list := m("r1", t0, "")
	list.ListReply = &[2]string{"store_berlin", "Berlin Mitte"}
	btn := m("r2", t0+1, "")
	btn.ButtonReply = &[2]string{"size_42", "Size 42"}
	tmpl := m("r3", t0+2, "")
	tmpl.Button = &[2]string{"SPRING_SALE_YES", "Yes, show me"}
	links := m("r4", t0+3, "see https://example.com/a, HTTP://user@shop.example.org:8080/x?y and https://Example.COM.")
	e.record(cloudWebhook(list, btn, tmpl, links))

	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1, TypeListReply: 1,
		TypeButtonReply: 1, TypeButton: 1, TypeKeyword: 1, TypeLink: 2})
	wantEvent(t, only(t, evs, TypeListReply), TypeListReply, "store_berlin", "Berlin Mitte", SourceOrganic, "", "r1")
	wantEvent(t, only(t, evs, TypeButtonReply), TypeButtonReply, "size_42", "Size 42", SourceOrganic, "", "r2")
	wantEvent(t, only(t, evs, TypeButton), TypeButton, "SPRING_SALE_YES", "Yes, show me", SourceOrganic, "", "r3")
	// The list title is matched like text.
	if kw := only(t, evs, TypeKeyword); kw.MessageID != "r1" || kw.TypeValue != "berlin" {
		t.Fatalf("keyword event = %+v, want berlin on r1", kw)
	}
	var hosts []string
	for _, ev := range ofType(evs, TypeLink) {
		if ev.MessageID != "r4" {
			t.Fatalf("link event of message %s, want r4", ev.MessageID)
		}
		hosts = append(hosts, ev.TypeValue)
	}
	if strings.Join(slices.Sorted(slices.Values(hosts)), ",") != "example.com,shop.example.org" {
		t.Fatalf("link hosts %v, want example.com and shop.example.org", hosts)
	}
}

func TestScenarioReclick(t *testing.T) {
	e := newTestEnv(t)
	msg := leadMsgs("491700000004")
	e.record(cloudWebhook(withReferral(msg("c1", t0, "first ad"), adReferral("ad-1", "clid-1"))))
	e.record(cloudWebhook(msg("c2", t0+10, "more")))
	// A click on another ad while the session is open starts a new session.
	e.record(cloudWebhook(withReferral(msg("c3", t0+100, "second ad"), adReferral("ad-2", "clid-2"))))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 2, TypeEngagement: 1})
	convs := ofType(evs, TypeConversation)
	wantEvent(t, convs[0], TypeConversation, "", "ad-1", SourceAd, "ad-1", "c1")
	wantEvent(t, convs[1], TypeConversation, "", "ad-2", SourceAd, "ad-2", "c3")
	if convs[0].ConversationID == convs[1].ConversationID {
		t.Fatal("the re-click did not open a new conversation")
	}
	if s := e.session(scApp, convs[1].ConversationID); s.Referral.CtwaClid != "clid-2" || s.Messages != 1 || s.Engaged {
		t.Fatalf("new session = %+v", s)
	}
	if s := e.session(scApp, convs[0].ConversationID); s.SourceID != "ad-1" || s.Messages != 2 || !s.Engaged {
		t.Fatalf("old session = %+v", s)
	}
	// The next message engages the new session, credited to the new ad.
	e.record(cloudWebhook(msg("c4", t0+200, "ok")))
	evs = e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 2, TypeEngagement: 2})
	eng := ofType(evs, TypeEngagement)[1]
	wantEvent(t, eng, TypeEngagement, "", "", SourceAd, "ad-2", "c4")
	if eng.ConversationID != convs[1].ConversationID {
		t.Fatalf("engagement in %s, want the new conversation %s", eng.ConversationID, convs[1].ConversationID)
	}
	// The same ad clicked again is a new touch too.
	e.record(cloudWebhook(withReferral(msg("c5", t0+300, "again"), adReferral("ad-2", "clid-3"))))
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 3, TypeEngagement: 2})
	if n := len(e.sessions(scApp)); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
}

// The session window runs from the lead's last message, not from the session's start
// (SPEC §4.1): w3 is past one window after the start but inside one after w2.
func TestScenarioWindowExpiry(t *testing.T) {
	e := newTestEnv(t)
	msg := leadMsgs("491700000005")
	e.record(cloudWebhook(withReferral(msg("w1", t0, "hi"), adReferral("ad-1", "clid-1"))))
	// Exactly one window after the last message (and the start) the session is still open.
	e.record(cloudWebhook(msg("w2", t0+day, "still there?")))
	// Half a window past the start's window, half a window after w2: still open.
	e.record(cloudWebhook(msg("w3", t0+day+day/2, "sorry, busy day")))
	// One second past the window after w3, it has expired.
	e.record(cloudWebhook(msg("w4", t0+2*day+day/2+1, "back again")))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 2, TypeEngagement: 1})
	convs := ofType(evs, TypeConversation)
	wantEvent(t, convs[0], TypeConversation, "", "ad-1", SourceAd, "ad-1", "w1")
	wantEvent(t, convs[1], TypeConversation, "", SourceOrganic, SourceOrganic, "", "w4")
	wantEvent(t, only(t, evs, TypeEngagement), TypeEngagement, "", "", SourceAd, "ad-1", "w2")
	if s := e.session(scApp, convs[0].ConversationID); s.Messages != 3 || s.Start != t0 || s.Last != t0+day+day/2 {
		t.Fatalf("first session = %+v, want messages w1..w3 from %d to %d", s, t0, t0+day+day/2)
	}
	if s := e.session(scApp, convs[1].ConversationID); s.SourceType != SourceOrganic || s.Referral != (kv.Referral{}) ||
		s.Start != t0+2*day+day/2+1 {
		t.Fatalf("new session = %+v", s)
	}
}

func TestScenarioDuplicates(t *testing.T) {
	e := newTestEnv(t)
	e.addKeyword(scApp, "price")
	msg := leadMsgs("491700000006")
	body := cloudWebhook(withReferral(msg("d1", t0, "what is the price?"), adReferral("ad-1", "clid-1")))
	e.record(body)
	e.record(body) // retried delivery
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1, TypeKeyword: 1})

	// The same message id twice in one batch counts once; the retry of a second message
	// in a later batch too.
	e.record(cloudWebhook(msg("d2", t0+5, "price?"), msg("d2", t0+5, "price?")))
	e.record(cloudWebhook(msg("d3", t0+6, "hello"), msg("d2", t0+5, "price?")))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1, TypeKeyword: 2})
	if s := e.session(scApp, evs[0].ConversationID); s.Messages != 3 {
		t.Fatalf("session counts %d messages, want 3 (d1, d2, d3)", s.Messages)
	}
	// Deduplication outlives a restart.
	e.reopen()
	e.record(body)
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1, TypeEngagement: 1, TypeKeyword: 2})
}

func TestScenarioCampaign(t *testing.T) {
	e := newTestEnv(t)
	const tagged, untagged, stale, failed = "491700000010", "491700000011", "491700000012", "491700000013"
	e.record(cloudStatusWebhook(
		cloudStatus{App: scApp, ID: "out-1", Status: "sent", Recipient: tagged, Time: t0, Tag: "spring_sale"},
		cloudStatus{App: scApp, ID: "out-2", Status: "sent", Recipient: untagged, Time: t0},
		cloudStatus{App: scApp, ID: "out-3", Status: "sent", Recipient: stale, Time: t0, Tag: "old_campaign"},
		cloudStatus{App: scApp, ID: "out-4", Status: "failed", Recipient: failed, Time: t0, Tag: "failed_campaign"},
	))
	if evs := e.events(scApp); len(evs) != 0 {
		t.Fatalf("statuses produced events:\n%s", dumpEvents(evs))
	}
	// The same status again is deduplicated; a later status of the same message is not.
	dupBefore := dedupeStatuses.Get()
	e.record(cloudStatusWebhook(cloudStatus{App: scApp, ID: "out-1", Status: "sent", Recipient: tagged, Time: t0, Tag: "spring_sale"}))
	e.record(cloudStatusWebhook(cloudStatus{App: scApp, ID: "out-1", Status: "delivered", Recipient: tagged, Time: t0 + 2, Tag: "spring_sale"}))
	if n := dedupeStatuses.Get() - dupBefore; n != 1 {
		t.Fatalf("%d statuses deduplicated, want 1", n)
	}

	e.record(cloudWebhook(
		cloudMsg{App: scApp, ID: "p1", From: tagged, Time: t0 + 3600, Text: "I got your offer"},
		cloudMsg{App: scApp, ID: "p2", From: untagged, Time: t0 + 3600, Text: "hi"},
		cloudMsg{App: scApp, ID: "p3", From: stale, Time: t0 + day + 3, Text: "hi, late"},
		cloudMsg{App: scApp, ID: "p4", From: failed, Time: t0 + 60, Text: "hi"},
	))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 4})
	for _, ev := range evs {
		switch ev.MessageID {
		case "p1":
			wantEvent(t, ev, TypeConversation, "", "spring_sale", SourceCampaign, "spring_sale", "p1")
		default:
			wantEvent(t, ev, TypeConversation, "", SourceOrganic, SourceOrganic, "", ev.MessageID)
		}
	}

	// A campaign touch during an open session does not change the session's source.
	e.record(cloudStatusWebhook(cloudStatus{App: scApp, ID: "out-5", Status: "sent", Recipient: untagged, Time: t0 + 3700, Tag: "later"}))
	e.record(cloudWebhook(cloudMsg{App: scApp, ID: "p5", From: untagged, Time: t0 + 3800, Text: "again"}))
	evs = e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 4, TypeEngagement: 1})
	wantEvent(t, only(t, evs, TypeEngagement), TypeEngagement, "", "", SourceOrganic, "", "p5")
	// A CTWA referral wins over a campaign touch.
	e.record(cloudStatusWebhook(cloudStatus{App: scApp, ID: "out-6", Status: "read", Recipient: "491700000014", Time: t0, Tag: "c6"}))
	e.record(cloudWebhook(withReferral(cloudMsg{App: scApp, ID: "p6", From: "491700000014", Time: t0 + 10, Text: "hi"},
		adReferral("ad-9", "clid-9"))))
	evs = ofType(e.events(scApp), TypeConversation)
	if len(evs) != 5 {
		t.Fatalf("%d conversations, want 5", len(evs))
	}
	for _, ev := range evs {
		if ev.MessageID == "p6" {
			wantEvent(t, ev, TypeConversation, "", "ad-9", SourceAd, "ad-9", "p6")
		}
	}
}

func TestScenarioCustomSource(t *testing.T) {
	e := newTestEnv(t)
	src := e.addSource(scApp, "Billboard A", "billboard a")
	e.addSource("another-app", "Elsewhere", "hello there")
	first := leadMsgs("491700000020")
	later := leadMsgs("491700000021")
	e.record(cloudWebhook(first("s1", t0, "Hi, I saw BILLBOARD  A at the station")))
	e.record(cloudWebhook(later("s2", t0, "hello there")))
	e.record(cloudWebhook(later("s3", t0+10, "billboard a")))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 2, TypeEngagement: 1})
	for _, ev := range ofType(evs, TypeConversation) {
		switch ev.MessageID {
		case "s1":
			wantEvent(t, ev, TypeConversation, "", src.ID, SourceCustom, src.ID, "s1")
		case "s2":
			wantEvent(t, ev, TypeConversation, "", SourceOrganic, SourceOrganic, "", "s2")
		default:
			t.Fatalf("conversation of message %s", ev.MessageID)
		}
	}
	wantEvent(t, only(t, evs, TypeEngagement), TypeEngagement, "", "", SourceOrganic, "", "s3")
	// With a referral, the ad wins over the phrase.
	e.record(cloudWebhook(withReferral(leadMsgs("491700000022")("s4", t0, "billboard a"), adReferral("ad-1", "c"))))
	for _, ev := range ofType(e.events(scApp), TypeConversation) {
		if ev.MessageID == "s4" {
			wantEvent(t, ev, TypeConversation, "", "ad-1", SourceAd, "ad-1", "s4")
		}
	}
}

func TestScenarioNothingToRecord(t *testing.T) {
	e := newTestEnv(t)
	keys := e.keyCount()
	for _, body := range []string{
		``,
		`   `,
		`not json`,
		`{"foo":1}`,
		`[1,2,3]`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[`,
		// A known format with a broken message: no id.
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"1"},` +
			`"messages":[{"from":"491700000030","timestamp":"1773652447","type":"text","text":{"body":"x"}}]}}]}]}`,
		// A known format with nothing to record.
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"message_template_status_update","value":{}}]}]}`,
		// A timestamp that is not unix seconds.
		strings.Replace(string(cloudWebhook(cloudMsg{App: scApp, ID: "b1", From: "491700000030", Time: t0, Text: "x"})),
			`"1773652447"`, `"yesterday"`, 1),
	} {
		if err := e.rec.Record(context.Background(), []byte(body)); err != nil {
			t.Fatalf("Record(%q) = %v, want nil", body, err)
		}
	}
	if n := e.keyCount(); n != keys {
		t.Fatalf("the store holds %d keys after undecodable bodies, want %d", n, keys)
	}
	// The broken message's id was not remembered: it records once fixed.
	e.record(cloudWebhook(cloudMsg{App: scApp, ID: "b1", From: "491700000030", Time: t0, Text: "x"}))
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1})
}

func TestScenarioBSUIDLead(t *testing.T) {
	e := newTestEnv(t)
	const bsuid = "DE.1502576394655843"
	e.record(fixtures.Body(t, "cloud/bsuid_only_lead"))
	e.record(cloudWebhook(cloudMsg{App: scApp, ID: "u2", UserID: bsuid, Time: 1773653167 + 30, Text: "me again"}))
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1})
	for _, ev := range evs {
		if ev.Lead != bsuid || !ev.LeadIsBSUID {
			t.Fatalf("event lead %q (BSUID %v), want %q as BSUID", ev.Lead, ev.LeadIsBSUID, bsuid)
		}
	}
	s := e.session(scApp, evs[0].ConversationID)
	if s.Lead != bsuid || !s.LeadIsBSUID || s.Messages != 2 {
		t.Fatalf("session = %+v", s)
	}
}

// TestScenarioConverted installs converted definitions directly: the API for
// converted_events comes later, and AddGroup is for tracked events.
func TestScenarioConverted(t *testing.T) {
	e := newTestEnv(t)
	e.rec.defs.Store(testDefinitions(t, []Group{
		{ID: "c1", AppID: scApp, Type: TypeButtonReply, TypeID: "buy", Status: StatusActive, Converted: true, AdID: "ad-1"},
		{ID: "c2", AppID: scApp, Type: TypeEngagement, Status: StatusActive, Converted: true, CampaignID: "camp-3"},
		{ID: "c3", AppID: scApp, Type: TypeListReply, Status: StatusArchived, Converted: true},
	}, nil, map[string]string{"ad-3": "camp-3"}))

	buy := func(m cloudMsg) cloudMsg {
		m.ButtonReply = &[2]string{"buy", "Buy now"}
		return m
	}
	list := func(m cloudMsg) cloudMsg {
		m.ListReply = &[2]string{"row", "Row"}
		return m
	}
	a := leadMsgs("491700000040") // ad-1: the buy tap converts, once
	e.record(cloudWebhook(withReferral(a("a1", t0, "hi"), adReferral("ad-1", "x")), buy(a("a2", t0+1, "")),
		buy(a("a3", t0+2, "")), list(a("a4", t0+3, ""))))
	b := leadMsgs("491700000041") // ad-2: out of scope
	e.record(cloudWebhook(withReferral(b("b1", t0, "hi"), adReferral("ad-2", "y")), buy(b("b2", t0+1, ""))))
	c := leadMsgs("491700000042") // ad-3 of campaign camp-3: engagement converts
	e.record(cloudWebhook(withReferral(c("c1", t0, "hi"), adReferral("ad-3", "z")), c("c2", t0+1, "more"), c("c3", t0+2, "more")))

	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: 3, TypeEngagement: 3, TypeButtonReply: 3, TypeListReply: 1,
		TypeConverted: 2})
	for _, ev := range ofType(evs, TypeConverted) {
		switch ev.Lead {
		case "491700000040":
			wantEvent(t, ev, TypeConverted, "c1", "Buy now", SourceAd, "ad-1", "a2")
		case "491700000042":
			wantEvent(t, ev, TypeConverted, "c2", TypeEngagement, SourceAd, "ad-3", "c2")
		default:
			t.Fatalf("converted event of lead %s", ev.Lead)
		}
		if s := e.session(scApp, ev.ConversationID); !s.Converted {
			t.Fatalf("session %s not marked converted", s.ID)
		}
	}
}

func TestScenarioDefinitions(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	price := e.addKeyword(scApp, "price")
	msg := leadMsgs("491700000050")
	e.record(cloudWebhook(msg("g1", t0, "price?")))

	// Refused definitions: a duplicate keyword (any case) and one over the matcher's limit.
	keys := e.keyCount()
	for _, g := range []Group{
		{AppID: scApp, Type: TypeKeyword, TypeValue: " PRICE "},
		{AppID: scApp, Type: TypeKeyword, TypeValue: strings.Repeat("x", 101)},
		{AppID: scApp, Type: TypeKeyword, TypeValue: ""},
	} {
		_, err := e.rec.AddGroup(ctx, g)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "type_value" {
			t.Fatalf("AddGroup(%q) = %v, want a *FieldError for type_value", g.TypeValue, err)
		}
	}
	for _, src := range []Source{
		{AppID: scApp, Name: "Long", Phrase: strings.Repeat("y ", 60)},
		{AppID: scApp, Name: "Price", Phrase: "  "},
	} {
		_, err := e.rec.AddSource(ctx, src)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "phrase" {
			t.Fatalf("AddSource(%q) = %v, want a *FieldError for phrase", src.Phrase, err)
		}
	}
	if n := e.keyCount(); n != keys {
		t.Fatalf("refused definitions changed the store: %d keys, want %d", n, keys)
	}
	if n := len(e.rec.Definitions().Groups); n != 1 {
		t.Fatalf("%d groups after refused definitions, want 1", n)
	}

	// Archiving stops the keyword, also after a restart; activating it again restarts it.
	if g, err := e.rec.SetGroupStatus(ctx, scApp, price.ID, StatusArchived); err != nil || g.Status != StatusArchived {
		t.Fatalf("SetGroupStatus = %+v, %v", g, err)
	}
	e.record(cloudWebhook(msg("g2", t0+1, "price again")))
	e.reopen()
	e.record(cloudWebhook(msg("g3", t0+2, "and the price?")))
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1, TypeEngagement: 1, TypeKeyword: 1})
	if _, err := e.rec.SetGroupStatus(ctx, scApp, price.ID, StatusActive); err != nil {
		t.Fatal(err)
	}
	e.record(cloudWebhook(msg("g4", t0+3, "price!")))
	wantCounts(t, e.events(scApp), map[string]int{TypeConversation: 1, TypeEngagement: 1, TypeKeyword: 2})
	var fe *FieldError
	if _, err := e.rec.SetGroupStatus(ctx, scApp, price.ID, "paused"); !errors.As(err, &fe) || fe.Field != "status" {
		t.Fatalf("SetGroupStatus(paused) = %v, want a *FieldError for status", err)
	}
	if _, err := e.rec.SetGroupStatus(ctx, scApp, "404", StatusArchived); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetGroupStatus(unknown id) = %v, want ErrNotFound", err)
	}
}

func TestScenarioConcurrentLeads(t *testing.T) {
	e := newTestEnv(t)
	e.addKeyword(scApp, "price")
	const leads = 50
	var wg sync.WaitGroup
	errs := make(chan error, leads)
	for i := range leads {
		wg.Go(func() {
			msg := leadMsgs(fmt.Sprintf("4917100%05d", i))
			id := func(n int) string { return fmt.Sprintf("wamid.conc.%d.%d", i, n) }
			for _, body := range [][]byte{
				cloudWebhook(withReferral(msg(id(1), t0+int64(i), "hi"), adReferral(fmt.Sprintf("ad-%d", i%5), "c"))),
				cloudWebhook(msg(id(2), t0+int64(i)+1, "what is the price?")),
				cloudWebhook(msg(id(3), t0+int64(i)+2, "ok")),
			} {
				if err := e.rec.Record(context.Background(), body); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs := e.events(scApp)
	wantCounts(t, evs, map[string]int{TypeConversation: leads, TypeEngagement: leads, TypeKeyword: leads})
	perLead := map[string]map[string]int{}
	for _, ev := range evs {
		if perLead[ev.Lead] == nil {
			perLead[ev.Lead] = map[string]int{}
		}
		perLead[ev.Lead][ev.Type]++
		if !strings.HasPrefix(ev.SourceID, "ad-") {
			t.Fatalf("event of lead %s credited to %s:%s", ev.Lead, ev.SourceType, ev.SourceID)
		}
	}
	if len(perLead) != leads {
		t.Fatalf("%d leads have events, want %d", len(perLead), leads)
	}
	if n := len(e.sessions(scApp)); n != leads {
		t.Fatalf("%d sessions, want %d", n, leads)
	}
}

// TestScenarioDefinitionsSurviveRestart checks that a restart, which reloads the
// definitions from the store, classifies like before: with overlapping source phrases
// the same source wins, whatever the ids look like as strings ("10" < "2").
func TestScenarioDefinitionsSurviveRestart(t *testing.T) {
	e := newTestEnv(t)
	var ids []string
	for i := 1; i <= 10; i++ {
		phrase := fmt.Sprintf("flyer %d", i)
		switch i {
		case 2:
			phrase = "billboard"
		case 10:
			phrase = "billboard a"
		}
		ids = append(ids, e.addSource(scApp, fmt.Sprintf("Source %d", i), phrase).ID)
	}
	before := e.rec.Definitions()
	e.record(cloudWebhook(leadMsgs("491700000060")("o1", t0, "billboard a")))
	e.reopen()
	after := e.rec.Definitions()
	e.record(cloudWebhook(leadMsgs("491700000061")("o2", t0, "billboard a")))
	convs := ofType(e.events(scApp), TypeConversation)
	if len(convs) != 2 || convs[0].SourceID != convs[1].SourceID {
		t.Fatalf("the same first message is credited to different sources before and after a restart:\n%s",
			dumpEvents(convs))
	}
	var gotBefore, gotAfter []string
	for i := range before.Sources {
		gotBefore = append(gotBefore, before.Sources[i].ID)
		gotAfter = append(gotAfter, after.Sources[i].ID)
	}
	if !slices.Equal(gotBefore, ids) || !slices.Equal(gotAfter, ids) {
		t.Fatalf("source order %v before and %v after a restart, want %v", gotBefore, gotAfter, ids)
	}
}
