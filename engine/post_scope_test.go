package engine

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// A post is no ad (SPEC §4.1), even when a post's id equals an ad's: groups scoped to an
// ad or a campaign (tracked keywords, converted events, event-group counts) apply to
// sessions of source ad:<id> only, and the events filter by ad_id selects no post session.
func TestAdAndCampaignScopesSkipPostSessions(t *testing.T) {
	e := newTestEnv(t)
	const adX, adY, camp = "120210000000000001", "120210000000000002", "camp-1"
	e.rec.defs.Store(testDefinitions(t, []Group{
		{ID: "k1", AppID: scApp, Type: TypeKeyword, TypeID: "k1", TypeValue: "price", Status: StatusActive, AdID: adX},
		{ID: "k2", AppID: scApp, Type: TypeKeyword, TypeID: "k2", TypeValue: "delivery", Status: StatusActive, CampaignID: camp},
		{ID: "c1", AppID: scApp, Type: TypeEngagement, Status: StatusActive, Converted: true, AdID: adX},
		{ID: "c2", AppID: scApp, Type: TypeButtonReply, TypeID: "buy", Status: StatusActive, Converted: true, CampaignID: camp},
	}, nil, map[string]string{adX: camp, adY: camp}))

	post := func(id string) *webhook.Referral {
		return &webhook.Referral{SourceType: SourcePost, SourceID: id, Headline: "Post " + id}
	}
	buy := func(m cloudMsg) cloudMsg {
		m.ButtonReply = &[2]string{"buy", "Buy now"}
		return m
	}
	const postXLead, adXLead, postYLead, adYLead = "491700000050", "491700000051", "491700000052", "491700000053"
	p, a := leadMsgs(postXLead), leadMsgs(adXLead)
	e.record(cloudWebhook(withReferral(p("p1", t0, "hi, the price and delivery?"), post(adX)), p("p2", t0+1, "more")))
	e.record(cloudWebhook(withReferral(a("a1", t0, "hi, the price and delivery?"), adReferral(adX, "clid-x")), a("a2", t0+1, "more")))
	q, b := leadMsgs(postYLead), leadMsgs(adYLead)
	e.record(cloudWebhook(withReferral(q("q1", t0, "hi"), post(adY)), buy(q("q2", t0+1, ""))))
	e.record(cloudWebhook(withReferral(b("b1", t0, "hi"), adReferral(adY, "clid-y")), buy(b("b2", t0+1, ""))))

	evs := e.events(scApp)
	got := map[string][]string{}
	for _, ev := range evs {
		got[ev.Lead] = append(got[ev.Lead], ev.Type+"#"+ev.TypeID+"@"+ev.SourceType)
	}
	for _, l := range got {
		slices.Sort(l)
	}
	want := map[string][]string{
		postXLead: {"conversation#@post", "engagement#@post"},
		adXLead:   {"conversation#@ad", "converted#c1@ad", "engagement#@ad", "keyword#k1@ad", "keyword#k2@ad"},
		postYLead: {"button_reply#buy@post", "conversation#@post", "engagement#@post"},
		adYLead:   {"button_reply#buy@ad", "conversation#@ad", "converted#c2@ad", "engagement#@ad"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events by lead:\n got %v\nwant %v\n%s", got, want, dumpEvents(evs))
	}

	// Event-group counts (groupMatches) of groups scoped to an ad and to a campaign.
	count := func(g Group) (n int) {
		for i := range evs {
			if e.rec.groupMatches(&g, &evs[i]) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		g    Group
		want int
	}{
		{Group{AppID: scApp, Type: TypeConversation, AdID: adX}, 1},
		{Group{AppID: scApp, Type: TypeConversation, CampaignID: camp}, 2},
		{Group{AppID: scApp, Type: TypeButtonReply, AdID: adY}, 1},
		{Group{AppID: scApp, Type: TypeConversation}, 4}, // unscoped: every source
	} {
		if n := count(tc.g); n != tc.want {
			t.Errorf("group %+v counts %d events, want %d", tc.g, n, tc.want)
		}
	}

	// The events filter by ad id.
	for _, id := range []string{adX, adY} {
		var leads []string
		for _, ev := range listEvents(t, e.rec, EventFilter{AppID: scApp, AdID: id}) {
			leads = append(leads, ev.Lead+"@"+ev.SourceType)
		}
		wantLead := map[string]string{adX: adXLead, adY: adYLead}[id]
		if len(leads) == 0 || slices.ContainsFunc(leads, func(l string) bool { return l != wantLead+"@"+SourceAd }) {
			t.Errorf("EventFilter{AdID: %s} selects %v, want only events of %s@ad", id, leads, wantLead)
		}
	}
}

// inScope, directly: an ad or campaign group never applies to a post of the same id.
func TestInScopePostIsNoAd(t *testing.T) {
	d := testDefinitions(t, nil, nil, map[string]string{"42": "camp-1"})
	for _, tc := range []struct {
		g          Group
		typ, id    string
		wantInside bool
	}{
		{Group{AdID: "42"}, SourceAd, "42", true},
		{Group{AdID: "42"}, SourcePost, "42", false},
		{Group{AdID: "42"}, SourceAd, "43", false},
		{Group{CampaignID: "camp-1"}, SourceAd, "42", true},
		{Group{CampaignID: "camp-1"}, SourcePost, "42", false},
		{Group{}, SourcePost, "42", true},
		{Group{}, SourceOrganic, "", true},
	} {
		if got := d.inScope(&tc.g, tc.typ, tc.id); got != tc.wantInside {
			t.Errorf("inScope(%s, %s:%s) = %v, want %v", fmt.Sprintf("%+v", tc.g), tc.typ, tc.id, got, tc.wantInside)
		}
	}
}
