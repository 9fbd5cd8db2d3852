package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Tests of what webhooks carry besides a lead's own messages (SPEC §3.4), with the real
// third-party payloads of testdata/external-payloads where one shows the case.

func externalPayload(tb testing.TB, name string) []byte {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join("..", "testdata", "external-payloads", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// counterValue reads a counter of /metrics by its full name.
func counterValue(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }

// delta returns a function telling how much the counter has grown since delta was called.
func delta(name string) func() uint64 {
	start := counterValue(name)
	return func() uint64 { return counterValue(name) - start }
}

func TestSystemMessageIsNoLeadEvent(t *testing.T) {
	e := newTestEnv(t)
	ignored := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="ignored"}`)
	e.record(externalPayload(t, "cloud_pywa_system_user_changed_number"))
	if evs := e.events("1122334455667"); len(evs) != 0 {
		t.Fatalf("a system message recorded events:\n%s", dumpEvents(evs))
	}
	if ignored() != 1 {
		t.Errorf("webhooks ignored grew by %d, want 1", ignored())
	}

	// Inside an open ad session, a system notice is no engagement either.
	e.record(cloudWebhook(withReferral(cloudMsg{App: "1122334455667", ID: "wamid.first", From: "972987654321",
		Time: 1753851000, Text: "hi"}, adReferral("ad-1", "clid-1"))))
	onprem := strings.Replace(string(externalPayload(t, "cloud_pywa_system_user_changed_number")), "wamid.xyzxyz==", "wamid.sys2", 1)
	e.record([]byte(onprem))
	wantCounts(t, e.events("1122334455667"), map[string]int{TypeConversation: 1})
}

func TestNumberChangeContinuesTheLead(t *testing.T) {
	e := newTestEnv(t)
	const app, oldNo, newNo = "1122334455667", "972987654321", "972912345678"
	e.record(cloudWebhook(withReferral(cloudMsg{App: app, ID: "wamid.a1", From: oldNo, Time: 1753851000, Text: "hi"},
		adReferral("ad-1", "clid-1"))))
	e.record(externalPayload(t, "cloud_pywa_system_user_changed_number")) // at 1753851315: 972987654321 → 972912345678
	e.reopen()                                                            // the link is stored, not only in memory
	e.record(cloudWebhook(cloudMsg{App: app, ID: "wamid.b1", From: newNo, Time: 1753851400, Text: "still me"}))

	evs := e.events(app)
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1})
	conv, eng := only(t, evs, TypeConversation), only(t, evs, TypeEngagement)
	if eng.ConversationID != conv.ConversationID || eng.Lead != oldNo || eng.SourceID != "ad-1" {
		t.Fatalf("the new number's message is in conversation %s of lead %s (source %s); want %s of %s (ad-1)",
			eng.ConversationID, eng.Lead, eng.SourceID, conv.ConversationID, oldNo)
	}

	// A second change (new → newer) still leads back to the first number.
	second := strings.NewReplacer(`"from": "972987654321"`, `"from": "972912345678"`, `"wa_id": "972912345678"`,
		`"wa_id": "972900000003"`, "wamid.xyzxyz==", "wamid.sys2", "1753851315", "1753851500").
		Replace(string(externalPayload(t, "cloud_pywa_system_user_changed_number")))
	e.record([]byte(second))
	e.record(cloudWebhook(cloudMsg{App: app, ID: "wamid.c1", From: "972900000003", Time: 1753851600, Text: "me again"}))
	for _, ev := range e.events(app) {
		if ev.Lead != oldNo || ev.ConversationID != conv.ConversationID {
			t.Fatalf("after two number changes: %s event of lead %s in %s; want lead %s in %s",
				ev.Type, ev.Lead, ev.ConversationID, oldNo, conv.ConversationID)
		}
	}

	// The website reports a purchase by the newest number: it is the same lead's.
	rec, _, err := e.rec.RecordOffThread(context.Background(), OffThread{Lead: "972900000003", Action: "purchase",
		Amount: 49.9, Currency: "EUR", Time: 1753852000})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Attributed || rec.ConversationID != conv.ConversationID || rec.SourceID != "ad-1" {
		t.Fatalf("purchase by the new number: attributed %v to %s (%s); want %s of ad-1",
			rec.Attributed, rec.ConversationID, rec.SourceID, conv.ConversationID)
	}
}

func TestOnPremNumberChange(t *testing.T) {
	e := newTestEnv(t)
	var d webhook.Decoder
	_, items, err := d.Decode(externalPayload(t, "onprem_metadocs_system_user_changed_number"), testAppID)
	if err != nil || len(items) != 1 || items[0].Kind != webhook.KindNumberChange || items[0].Lead != "16315558889" ||
		items[0].NewLead != "16315558890" {
		t.Fatalf("decoded %+v, %v; want a number change 16315558889 → 16315558890", items, err)
	}
	e.record(externalPayload(t, "onprem_metadocs_system_user_changed_number"))
	if evs := e.events(testAppID); len(evs) != 0 {
		t.Fatalf("a system message recorded events:\n%s", dumpEvents(evs))
	}
}

func TestOneBadItemDoesNotLoseTheWebhook(t *testing.T) {
	e := newTestEnv(t)
	rejected := delta(`ctwa_sidecar_webhook_items_total{format="cloud",result="rejected",reason="missing_type"}`)
	recorded := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="recorded"}`)
	// 4 messages in 2 changes; the location message has no type.
	e.record(externalPayload(t, "cloud_pius_two_changes_location_without_type"))
	evs := e.events("1093849293")
	wantCounts(t, evs, map[string]int{TypeConversation: 1, TypeEngagement: 1})
	if got := only(t, evs, TypeConversation).MessageID; got != "wamid.TEXT123" {
		t.Errorf("conversation opened by %s, want wamid.TEXT123", got)
	}
	if rejected() != 1 || recorded() != 1 {
		t.Errorf("rejected items +%d, recorded webhooks +%d; want +1, +1", rejected(), recorded())
	}
	var msgs int
	if err := e.store.Scan([]byte("msg\x001093849293\x00"), false, func(_, _ []byte) (bool, error) {
		msgs++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if msgs != 3 {
		t.Errorf("%d message records, want 3 (text, reaction, sticker)", msgs)
	}
}

func TestGroupStatusKeepsTheCampaignTouch(t *testing.T) {
	e := newTestEnv(t)
	const app, lead = "1122334455667", "972987654321"
	ignored := delta(`ctwa_sidecar_webhook_items_total{format="cloud",result="ignored",reason="group_status"}`)
	// A Groups API status batched with a tagged status of a campaign message to the lead.
	group := string(externalPayload(t, "cloud_pywa_status_group_recipient"))
	tagged := `{"id":"wamid.camp1","status":"delivered","timestamp":"1698266900","recipient_id":"972987654321",` +
		`"biz_opaque_callback_data":"spring-sale"},`
	body := strings.Replace(strings.Replace(group, `"<BUSINESS_PHONE_NUMBER_ID>"`, `"`+app+`"`, 1),
		`"statuses": [`, `"statuses": [`+tagged, 1)
	e.record([]byte(body))
	if ignored() != 1 {
		t.Errorf("group statuses ignored +%d, want 1", ignored())
	}
	e.record(cloudWebhook(cloudMsg{App: app, ID: "wamid.reply", From: lead, Time: 1698267000, Text: "tell me more"}))
	conv := only(t, e.events(app), TypeConversation)
	if conv.SourceType != SourceCampaign || conv.SourceID != "spring-sale" {
		t.Fatalf("the reply is credited to %s:%s, want campaign:spring-sale", conv.SourceType, conv.SourceID)
	}
}

func TestEditIsNoNewMessage(t *testing.T) {
	e := newTestEnv(t)
	const app = "106540352242922"
	e.record(externalPayload(t, "cloud_pywa_edit_image"))
	if evs := e.events(app); len(evs) != 0 {
		t.Fatalf("an edit of an unknown message recorded events:\n%s", dumpEvents(evs))
	}

	// A message, then its edit: the edit opens nothing and counts as no engagement...
	const original = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
	e.record(cloudWebhook(cloudMsg{App: app, ID: original, From: "16505551234", Time: 1749854500, Text: "a photo"}))
	edit := strings.Replace(string(externalPayload(t, "cloud_pywa_edit_image")), "Updated image caption", "I want to buy it", 1)
	e.record([]byte(edit))
	wantCounts(t, e.events(app), map[string]int{TypeConversation: 1})
	// The edit is logged with the edited message's time, from the message's dedupe claim:
	// the views find the record by it without reading the log's claims.
	entry, _, err := e.rec.log.Entry(e.rec.mat.appended.Load())
	items, derr := decodeEntry(nil, entry)
	if err != nil || derr != nil || len(items) != 1 || items[0].Kind != webhook.KindEdit || items[0].EditTime != 1749854500 {
		t.Fatalf("logged edit %+v (%v, %v), want one edit with EditTime 1749854500", items, err, derr)
	}

	// ...and a keyword tracked later counts the edited text after a refresh.
	g := e.addKeyword(app, "buy")
	if _, err := e.rec.Refresh(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	kw := only(t, e.events(app), TypeKeyword)
	if kw.TypeID != g.ID || kw.MessageID != original {
		t.Fatalf("keyword event %+v, want group %s on the edited message", kw, g.ID)
	}
}

// A message recorded before message keys held the id's hash (its record, and its
// dedupe mark, in Badger) is still found by its edit.
func TestEditFindsAMessageKeyedByItsFullID(t *testing.T) {
	e := newTestEnv(t)
	const app = "106540352242922"
	const original = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
	m := kv.Message{ID: original, AppID: app, Time: 1749854500, Lead: "16505551234", Type: "text", Text: "a photo"}
	err := e.store.Apply(context.Background(), func(b kv.Batch) error {
		b.Set(kv.LegacyMessageKey(nil, app, m.Time, m.ID), kv.AppendMessage(nil, &m))
		b.Set(kv.DedupeMessageKey(nil, m.ID), binary.BigEndian.AppendUint64(nil, uint64(m.Time)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.record([]byte(strings.Replace(string(externalPayload(t, "cloud_pywa_edit_image")), "Updated image caption", "I want to buy it", 1)))
	g := e.addKeyword(app, "buy")
	if _, err := e.rec.Refresh(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if kw := only(t, e.events(app), TypeKeyword); kw.TypeID != g.ID || kw.MessageID != original {
		t.Fatalf("keyword event %+v, want group %s on the edited message", kw, g.ID)
	}
}

func TestIgnoredCallbacksAreNotUndecodable(t *testing.T) {
	e := newTestEnv(t)
	for _, c := range []struct{ payload, format, reason string }{
		{"sinch_docs_delivery_report_read", "sinch", webhook.IgnoreDeliveryReport},
		{"onprem_metadocs_errors_only", "onprem", webhook.IgnoreErrors},
		{"cloud_pywa_status_group_recipient", "cloud", webhook.IgnoreGroupStatus},
	} {
		undecodable := delta(`ctwa_sidecar_webhooks_total{format="` + c.format + `",result="undecodable"}`)
		ignored := delta(`ctwa_sidecar_webhooks_total{format="` + c.format + `",result="ignored"}`)
		item := delta(`ctwa_sidecar_webhook_items_total{format="` + c.format + `",result="ignored",reason="` + c.reason + `"}`)
		keys := e.keyCount()
		e.record(externalPayload(t, c.payload))
		if undecodable() != 0 || ignored() != 1 || item() != 1 {
			t.Errorf("%s: undecodable +%d, ignored +%d, items ignored as %s +%d; want 0, 1, 1",
				c.payload, undecodable(), ignored(), c.reason, item())
		}
		if e.keyCount() != keys {
			t.Errorf("%s: stored something", c.payload)
		}
	}
}

func TestAutomaticEvents(t *testing.T) {
	e := newTestEnv(t)
	const app, ad, lead = "106540352242922", "120214567890123456", "491701234567"
	unmatched := delta(`ctwa_sidecar_automatic_events_unmatched_total`)
	e.record(fixtures.Body(t, "cloud/text_ctwa_referral")) // the click, at 1773652507
	e.record(fixtures.Body(t, "cloud/automatic_event_lead"))
	e.record(fixtures.Body(t, "cloud/automatic_event_purchase"))
	e.record(fixtures.Body(t, "cloud/automatic_event_purchase")) // Meta retries: counted once

	check := func(when string) {
		t.Helper()
		evs := ofType(e.events(app), TypeAutomaticEvent)
		if len(evs) != 2 {
			t.Fatalf("%s: %d automatic events, want 2\n%s", when, len(evs), dumpEvents(e.events(app)))
		}
		conv := only(t, e.events(app), TypeConversation)
		for i, want := range []struct{ name, value string }{{webhook.AutoEventLead, ""}, {webhook.AutoEventPurchase, "89.9 EUR"}} {
			ev := evs[i]
			if ev.TypeID != want.name || ev.TypeValue != want.value || ev.Lead != lead ||
				ev.ConversationID != conv.ConversationID || ev.SourceType != SourceAd || ev.SourceID != ad {
				t.Fatalf("%s: automatic event %+v; want %s %q of lead %s in %s (ad %s)", when, ev, want.name,
					want.value, lead, conv.ConversationID, ad)
			}
		}
		days := e.rec.DaysOf(0, 1<<40)
		tot, err := e.rec.AdTotals(app, []string{ad}, days)
		if err != nil {
			t.Fatal(err)
		}
		if tot.AutoEvents != 2 || tot.Sessions != 1 {
			t.Fatalf("%s: ad totals: %d automatic events, %d sessions; want 2, 1", when, tot.AutoEvents, tot.Sessions)
		}
	}
	check("live")
	if unmatched() != 0 {
		t.Errorf("unmatched +%d, want 0", unmatched())
	}
	if _, err := e.rec.Refresh(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	check("after refresh")
}

// A click recorded before click keys held the id's hash is still found by its
// automatic events; a refresh rewrites its key.
func TestAutomaticEventFindsAClickKeyedByItsFullID(t *testing.T) {
	e := newTestEnv(t)
	const app = "106540352242922"
	const clid = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
	e.record(fixtures.Body(t, "cloud/text_ctwa_referral"))
	err := e.store.Apply(context.Background(), func(b kv.Batch) error {
		sid, ok, err := b.Get(kv.ClidKey(nil, app, clid))
		if err != nil || !ok {
			return fmt.Errorf("the click's key: %q %v %v", sid, ok, err)
		}
		b.Delete(kv.ClidKey(nil, app, clid))
		b.Set(kv.LegacyClidKey(nil, app, clid), sid)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	unmatched := delta(`ctwa_sidecar_automatic_events_unmatched_total`)
	e.record(fixtures.Body(t, "cloud/automatic_event_purchase"))
	ev := only(t, e.events(app), TypeAutomaticEvent)
	if unmatched() != 0 || ev.TypeValue != "89.9 EUR" || ev.SourceID != "120214567890123456" {
		t.Fatalf("automatic event %+v, unmatched +%d; want 89.9 EUR on ad 120214567890123456", ev, unmatched())
	}
	if _, err := e.rec.Refresh(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if ev := only(t, e.events(app), TypeAutomaticEvent); ev.SourceID != "120214567890123456" {
		t.Fatalf("automatic event %+v after refresh; want it on ad 120214567890123456", ev)
	}
}

// An automatic event whose click arrives later is placed by the next refresh.
func TestAutomaticEventBeforeItsClick(t *testing.T) {
	e := newTestEnv(t)
	const app = "106540352242922"
	unmatched := delta(`ctwa_sidecar_automatic_events_unmatched_total`)
	e.record(fixtures.Body(t, "cloud/automatic_event_purchase"))
	if unmatched() != 1 || len(e.events(app)) != 0 {
		t.Fatalf("unmatched +%d, %d events; want +1, none", unmatched(), len(e.events(app)))
	}
	e.record(fixtures.Body(t, "cloud/text_ctwa_referral"))
	if _, err := e.rec.Refresh(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	ev := only(t, e.events(app), TypeAutomaticEvent)
	if ev.TypeValue != "89.9 EUR" || ev.SourceID != "120214567890123456" {
		t.Fatalf("automatic event %+v after refresh; want 89.9 EUR on ad 120214567890123456", ev)
	}
}

// An item over the limits is rejected alone; a webhook of more items than maxItems is not recorded.
func TestOverLimitItemIsRejectedAlone(t *testing.T) {
	e := newTestEnv(t)
	overLimit := delta(`ctwa_sidecar_webhook_items_total{format="cloud",result="rejected",reason="over_limit"}`)
	e.record(cloudWebhook(
		cloudMsg{App: scApp, ID: strings.Repeat("x", maxIDBytes+1), From: "491700000040", Time: t0, Text: "long id"},
		cloudMsg{App: scApp, ID: "wamid.ok", From: "491700000041", Time: t0, Text: "fine"}))
	conv := only(t, e.events(scApp), TypeConversation)
	if conv.MessageID != "wamid.ok" || overLimit() != 1 {
		t.Fatalf("conversation of %s, over-limit items +%d; want wamid.ok, +1", conv.MessageID, overLimit())
	}
	whole := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="over_limit"}`)
	msgs := make([]cloudMsg, maxItems+1)
	for i := range msgs {
		msgs[i] = cloudMsg{App: scApp, ID: "wamid.many." + strconv.Itoa(i), From: "491700000042", Time: t0 + int64(i), Text: "x"}
	}
	keys := e.keyCount()
	e.record(cloudWebhook(msgs...))
	if whole() != 1 || e.keyCount() != keys {
		t.Fatalf("a webhook of %d items: over_limit +%d, keys %d → %d; want +1 and nothing stored", len(msgs), whole(), keys, e.keyCount())
	}
}

// The link outlives the request: fasthttp reuses a request's body buffer afterwards.
func TestNumberChangeOutlivesTheRequestBody(t *testing.T) {
	e := newTestEnv(t)
	body := externalPayload(t, "cloud_pywa_system_user_changed_number") // 972987654321 → 972912345678
	e.record(body)
	for i := range body {
		body[i] = '7' // what the next request would leave in the buffer
	}
	e.record(cloudWebhook(cloudMsg{App: "1122334455667", ID: "wamid.after", From: "972912345678", Time: 1753851400, Text: "hi"}))
	if conv := only(t, e.events("1122334455667"), TypeConversation); conv.Lead != "972987654321" {
		t.Fatalf("the new number's message is of lead %s, want 972987654321", conv.Lead)
	}
}
