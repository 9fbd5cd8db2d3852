package engine

import (
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// The rows of the events list: the lead as phone, an ad's session with its ad and
// campaign (a post's without), the session's expiry from its latest message; a page of
// them, and the export's offset and limit.
func TestEventRows(t *testing.T) {
	e := newTestEnv(t)
	const adX, camp = "120210000000000001", "camp-1"
	e.rec.defs.Store(testDefinitions(t, nil, nil, map[string]string{adX: camp}))
	const adLead, postLead = "491700000061", "491700000062"
	a, p := leadMsgs(adLead), leadMsgs(postLead)
	e.record(cloudWebhook(withReferral(a("a1", t0, "hi"), adReferral(adX, "clid-x")), a("a2", t0+100, "more")))
	e.record(cloudWebhook(withReferral(p("p1", t0+10, "hi"), &webhook.Referral{SourceType: SourcePost, SourceID: adX, Headline: "Post"})))

	window := int64(testWindow.Seconds())
	rows, total, err := e.rec.EventPage(EventFilter{AppID: scApp, To: 1 << 62}, 0, 100)
	if err != nil || total != 3 || len(rows) != 3 {
		t.Fatalf("EventPage = %+v, %d, %v; want 3 rows", rows, total, err)
	}
	conv, post, engaged := rows[0], rows[1], rows[2]
	if conv.Type != TypeConversation || conv.Phone != adLead || conv.UserID != "" || conv.AdID != adX ||
		conv.CampaignID != camp || conv.SourceType != SourceAd || conv.Time != t0 || conv.ExpireTime != t0+100+window {
		t.Errorf("the ad session's conversation row = %+v", conv)
	}
	if post.Type != TypeConversation || post.Phone != postLead || post.AdID != "" || post.CampaignID != "" ||
		post.SourceType != SourcePost || post.SourceID != adX || post.ExpireTime != t0+10+window {
		t.Errorf("the post session's row = %+v: a post is no ad", post)
	}
	if engaged.Type != TypeEngagement || engaged.ConversationID != conv.ConversationID || engaged.ExpireTime != conv.ExpireTime {
		t.Errorf("the engagement row = %+v", engaged)
	}

	rows, total, err = e.rec.EventPage(EventFilter{AppID: scApp, To: 1 << 62}, 1, 1)
	if err != nil || total != 3 || len(rows) != 1 || rows[0].ID != post.ID {
		t.Errorf("EventPage(offset 1, limit 1) = %+v, %d, %v; want the post row of 3", rows, total, err)
	}
	var ids []string
	if err := e.rec.ExportEvents(EventFilter{AppID: scApp, To: 1 << 62}, 1, 5, func(r *EventRow) bool {
		ids = append(ids, r.ID)
		return true
	}); err != nil || len(ids) != 2 || ids[0] != post.ID || ids[1] != engaged.ID {
		t.Errorf("ExportEvents(offset 1) = %v, %v; want the post and engagement rows", ids, err)
	}
	ids = nil
	if err := e.rec.ExportEvents(EventFilter{AppID: scApp, To: 1 << 62}, 0, 2, func(r *EventRow) bool {
		ids = append(ids, r.ID)
		return true
	}); err != nil || len(ids) != 2 {
		t.Errorf("ExportEvents(limit 2) = %v, %v", ids, err)
	}
	types, err := e.rec.EventTypesOf(EventFilter{AppID: scApp, To: 1 << 62})
	if err != nil || len(types) != 2 || types[0] != TypeConversation || types[1] != TypeEngagement {
		t.Errorf("EventTypesOf = %v, %v", types, err)
	}
}
