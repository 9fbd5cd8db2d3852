package e2e

import "testing"

// Meta's automatic_events webhook (SPEC §3.4, §4.2) through the real sidecar: a lead and a
// purchase detected in the thread of a click are listed by the events API and counted on the ad.
func TestAutomaticEventsListedAndCountedOnTheAd(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	// The click at 09:15:07, then Meta's LeadSubmitted at 09:45:07 and Purchase (89900 = 89.90 EUR) at 10:15:07.
	postFixtures(t, sc, "text_ctwa_referral", "automatic_event_lead", "automatic_event_purchase", "automatic_event_purchase")
	c := newAPIClient(t, sc, "")

	rows := c.events("date_from=2026-03-16&date_to=2026-03-16&event_type=automatic_event").Data
	if len(rows) != 2 {
		t.Fatalf("%d automatic events, want 2 (the retried purchase counts once): %+v", len(rows), rows)
	}
	conv := c.events("date_from=2026-03-16&date_to=2026-03-16&event_type=conversation").Data
	for i, want := range [][2]string{{"LeadSubmitted", ""}, {"Purchase", "89.9 EUR"}} {
		r := rows[i]
		if r.TypeID != want[0] || r.TypeValue != want[1] || r.Phone == "" || r.SourceType != "ad" ||
			r.SourceID != adSpring || len(conv) != 1 || r.ConversationID != conv[0].ConversationID {
			t.Errorf("row %d: %+v; want %s %q in the click's conversation of ad %s", i, r, want[0], want[1], adSpring)
		}
	}

	var ad struct {
		Insight struct {
			Sessions int64
			Events   struct {
				Conversation   int64 `json:"conversation"`
				AutomaticEvent int64 `json:"automatic_event"`
			}
		}
	}
	c.getJSON(appPath+"/ads/"+adSpring, &ad)
	if ad.Insight.Sessions != 1 || ad.Insight.Events.Conversation != 1 || ad.Insight.Events.AutomaticEvent != 2 {
		t.Fatalf("ad insight %+v; want 1 session, 1 conversation, 2 automatic events", ad.Insight)
	}
}
