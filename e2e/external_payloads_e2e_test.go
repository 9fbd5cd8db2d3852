package e2e

// Every webhook of testdata/external-payloads (bodies written by other people: Meta's docs,
// open-source libraries, Sinch and YCloud docs, captured webhooks; sources in its README)
// through the real sidecar: forwarded byte for byte, answered with the upstream's bytes,
// and recorded as SPEC §3.4–§4 says. The expectations are written by hand from the
// payloads, one fresh sidecar per payload so that each stands alone.

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// externalCase is what one payload must leave behind.
type externalCase struct {
	file   string
	format string         // webhooks_total label
	result string         // webhooks_total result
	app    string         // the app its events are filed under; "" for none
	lead   string         // phone or BSUID of every event
	source string         // source of every event: organic, ad:<id>
	events map[string]int // event counts by type
	items  []string       // webhook_items_total series (result,reason) that grow by one
}

const (
	pywaApp      = "1122334455667" // pywa's fixtures: phone_number_id, and lead 972987654321
	pywaLead     = "972987654321"
	e2eOnPremApp = "onprem-e2e" // -app-id of the On-Premises payloads
)

func conv(extra ...string) map[string]int {
	m := map[string]int{"conversation": 1}
	for _, typ := range extra {
		m[typ]++
	}
	return m
}

var externalCases = []externalCase{
	// Cloud API text from a phone lead that also carries a BSUID: the phone is the lead.
	{"cloud_capture_from_user_id_bsuid", "cloud", "recorded", "1088451004357858", "919810218674", "organic", conv(), nil},
	// No phone at all: the BSUID is the lead.
	{"cloud_metadocs_bsuid_only_text", "cloud", "recorded", "106540352242922", "US.13491208655302741918", "organic", conv(), nil},
	// A status without a campaign tag: deduplicated, no event.
	{"cloud_metadocs_bsuid_status_delivered_no_recipient_id", "cloud", "recorded", "", "", "", nil, nil},
	// CTWA click of ad 120226305854810726 (the welcome_message is the business's, not the lead's).
	{"cloud_metadocs_ctwa_welcome_message", "cloud", "recorded", "1204727649384372", "16505551234", "ad:120226305854810726", conv(), nil},
	{"cloud_pius_ctwa_referral", "cloud", "recorded", "123123123", "100100200", "ad:ADID123", conv(), nil},
	// context.referred_product is a product inquiry, not an ad referral.
	{"cloud_pius_referred_product", "cloud", "recorded", "678678678", "16789991111", "organic", conv(), nil},
	// A text and a reaction of one lead: the second message is the engagement.
	{"cloud_pius_text_and_reaction_batch", "cloud", "recorded", "987654321", "1234567890", "organic", conv("engagement"), nil},
	// 4 messages in 2 changes, the location without type is rejected alone; text, reaction
	// and sticker are recorded: a conversation and its engagement.
	{"cloud_pius_two_changes_location_without_type", "cloud", "recorded", "1093849293", "16505551234", "organic",
		conv("engagement"), []string{`rejected",reason="missing_type`}},
	{"cloud_pywa_audio_voice", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	{"cloud_pywa_button_reply", "cloud", "recorded", pywaApp, pywaLead, "organic", conv("button_reply"), nil},
	// An edit of a message this store never saw: no session, nothing stored.
	{"cloud_pywa_edit_image", "cloud", "ignored", "", "", "", nil, []string{`ignored",reason="edit`}},
	// A flow reply (nfm_reply) carries no reply id: a conversation only.
	{"cloud_pywa_flow_nfm_reply", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	{"cloud_pywa_list_reply", "cloud", "recorded", pywaApp, pywaLead, "organic", conv("list_reply"), nil},
	{"cloud_pywa_location_with_url", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	{"cloud_pywa_order", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	// A template quick reply (type button) with a BSUID beside the phone.
	{"cloud_pywa_quick_reply_from_user_id", "cloud", "recorded", pywaApp, pywaLead, "organic", conv("button"), nil},
	{"cloud_pywa_reaction", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	// The docs' placeholders, recorded as given: source_type "ad or post" is not "post".
	{"cloud_pywa_referral_docs_placeholders", "cloud", "recorded", pywaApp, pywaLead, "ad:ADID", conv(), nil},
	// A Groups API status: the recipient is a group, not a lead.
	{"cloud_pywa_status_group_recipient", "cloud", "ignored", "", "", "", nil, []string{`ignored",reason="group_status`}},
	// A tagged status is a campaign touch, not an event.
	{"cloud_pywa_status_sent_biz_opaque", "cloud", "recorded", "", "", "", nil, nil},
	// user_changed_number: no lead event, the new number is linked.
	{"cloud_pywa_system_user_changed_number", "cloud", "ignored", "", "", "", nil, []string{`ignored",reason="number_change`}},
	{"cloud_pywa_template_quick_reply", "cloud", "recorded", pywaApp, pywaLead, "organic", conv("button"), nil},
	{"cloud_pywa_text", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	// A message type WhatsApp does not support (a poll) is still the lead writing.
	{"cloud_pywa_unsupported", "cloud", "recorded", pywaApp, pywaLead, "organic", conv(), nil},
	{"onprem_metadocs_errors_only", "onprem", "ignored", "", "", "", nil, []string{`ignored",reason="errors`}},
	{"onprem_metadocs_image_caption_no_contacts", "onprem", "recorded", e2eOnPremApp, "16315551234", "organic", conv(), nil},
	{"onprem_metadocs_status_sent_pricing", "onprem", "recorded", "", "", "", nil, nil},
	{"onprem_metadocs_system_user_changed_number", "onprem", "ignored", "", "", "", nil, []string{`ignored",reason="number_change`}},
	// "payload": null, text "No": a button event without payload.
	{"onprem_metadocs_template_button", "onprem", "recorded", e2eOnPremApp, "16505551234", "organic", conv("button"), nil},
	{"onprem_metadocs_text", "onprem", "recorded", e2eOnPremApp, "16315551234", "organic", conv(), nil},
	{"onprem_metadocs_text_mentions_from_trailing_space", "onprem", "recorded", e2eOnPremApp, "16315551234", "organic", conv(), nil},
	// The referral sits in the JSON-escaped metadata (placeholders as the article has them).
	{"sinch_community_ctwa_media_card_metadata_referral", "sinch", "recorded", "01EB37HMH1M6SV18ASNS3G135H", "46712312312", "ad:<SOURCE_ID>", conv(), nil},
	// A choice is a button_reply whose id is the postback data.
	{"sinch_docs_choice_response", "sinch", "recorded", "01E8RCZPK7HFV70FFDWFFK0EXK", "46712312312", "organic", conv("button_reply"), nil},
	{"sinch_docs_delivery_report_read", "sinch", "ignored", "", "", "", nil, []string{`ignored",reason="delivery_report`}},
	{"sinch_docs_location", "sinch", "recorded", "01E8RCZPK7HFV70FFDWFFK0EXK", "46712312312", "organic", conv(), nil},
	{"sinch_docs_media_card_caption", "sinch", "recorded", "01EB37HMH1M6SV18ASNS3G135H", "46712312312", "organic", conv(), nil},
	{"sinch_docs_text_accepted_time_only", "sinch", "recorded", "01E8RCZPK7HFV70FFDWFFK0EXK", "46712312312", "organic", conv(), nil},
	{"sinch_skills_whatsapp_text", "sinch", "recorded", "01H1234567...", "46732001122", "organic", conv(), nil},
	{"ycloud_capture_text_real", "ycloud", "recorded", "6281170706611", "6281268098300", "organic", conv(), nil},
	// The docs' placeholders ("to": "BUSINESS-PHONE-NUMBER") are no phone number: the only
	// item is rejected, the webhook is still forwarded.
	{"ycloud_docs_text_with_context_placeholders", "ycloud", "rejected", "", "", "", nil, []string{`rejected",reason="bad_app`}},
}

func TestExternalPayloads(t *testing.T) {
	files, err := filepath.Glob(testdata("external-payloads", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range externalCases {
		covered[c.file] = true
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !covered[name] {
			t.Errorf("%s has no expectation in externalCases", name)
		}
	}
	if len(files) != 40 || len(externalCases) != 40 {
		t.Fatalf("%d payloads and %d cases, want 40 of each", len(files), len(externalCases))
	}
	up := startUpstream(t, echoUpstream)
	for _, c := range externalCases {
		t.Run(c.file, func(t *testing.T) { checkExternal(t, up, c) })
	}
}

func checkExternal(t *testing.T, up *stubUpstream, c externalCase) {
	body, err := os.ReadFile(testdata("external-payloads", c.file+".json"))
	if err != nil {
		t.Fatal(err)
	}
	sc := startSidecar(t, "http://"+up.addr, "-app-id", e2eOnPremApp)
	defer sc.stop(t)
	result := fmt.Sprintf(`ctwa_sidecar_webhooks_total{format="%s",result="%s"}`, c.format, c.result)
	series := []string{result}
	for _, it := range c.items {
		series = append(series, fmt.Sprintf(`ctwa_sidecar_webhook_items_total{format="%s",result="%s"}`, c.format, it))
	}
	before := scrapeAll(t, sc.api, series)
	sent := len(up.requests())

	resp, got := mustDo(t, newRequest(t, "POST", sc.webhook+"/webhook", body))
	if resp.StatusCode != 201 || !bytes.Equal(got, append([]byte("echo:"), body...)) {
		t.Fatalf("answered %d with %d bytes, want the upstream's 201 and its %d bytes", resp.StatusCode, len(got), len(body)+5)
	}
	reqs := up.requests()
	if len(reqs) != sent+1 || !bytes.Equal(reqs[len(reqs)-1].body, body) {
		t.Fatalf("the upstream did not get the body byte for byte")
	}
	after := scrapeAll(t, sc.api, series)
	for _, s := range series {
		if after[s]-before[s] != 1 {
			t.Errorf("%s grew by %v, want 1", s, after[s]-before[s])
		}
	}
	checkExternalEvents(t, sc, c)
}

// checkExternalEvents compares the apps and events the API shows with c.
func checkExternalEvents(t *testing.T, sc *runSidecar, c externalCase) {
	api := newAPIClient(t, sc, "")
	var apps struct{ Data []struct{ ID string } }
	api.getJSON("/v1/clients/default/apps", &apps)
	var gotApps []string
	for _, a := range apps.Data {
		gotApps = append(gotApps, a.ID)
	}
	wantApps := []string{}
	if c.app != "" {
		wantApps = []string{c.app}
	}
	if !slices.Equal(append([]string{}, gotApps...), wantApps) {
		t.Errorf("apps %v, want %v", gotApps, wantApps)
	}
	if c.app == "" {
		return
	}
	var page eventsPage
	api.getJSON("/v1/clients/default/apps/"+c.app+"/events?date_from=2015-01-01&date_to=2026-12-31&limit=100", &page)
	counts := map[string]int{}
	for _, ev := range page.Data {
		counts[ev.Type]++
		lead := ev.Phone
		if lead == "" {
			lead = ev.UserID
		}
		lead = strings.TrimPrefix(lead, "+")
		source := ev.SourceType
		if ev.SourceID != "" {
			source += ":" + ev.SourceID
		}
		if lead != c.lead || source != c.source {
			t.Errorf("%s event of lead %s from %s, want lead %s from %s", ev.Type, lead, source, c.lead, c.source)
		}
	}
	if !maps.Equal(counts, c.events) {
		t.Errorf("events %v, want %v", counts, c.events)
	}
}

func scrapeAll(t *testing.T, base string, series []string) map[string]float64 {
	t.Helper()
	status, _, body, err := do("GET", base+"/metrics", "", nil)
	if err != nil || status != 200 {
		t.Fatalf("GET /metrics: %d %v", status, err)
	}
	out := map[string]float64{}
	for _, s := range series {
		out[s] = sampleOf(body, s)
	}
	return out
}
