package webhook

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
)

func TestDecodeFormat(t *testing.T) {
	f := func(body string, want Format) {
		t.Helper()
		var d Decoder
		if got, _, err := d.Decode([]byte(body), testAppID); got != want {
			t.Errorf("Decode(%s) = %s (%v), want %s", body, got, err, want)
		}
	}
	f(`{"object":"whatsapp_business_account","entry":[]}`, FormatCloud)
	f(`{"type":"whatsapp.inbound_message.received","whatsappInboundMessage":{}}`, FormatYCloud)
	f(`{"type":"whatsapp.message.updated","whatsappMessage":{}}`, FormatYCloud)
	f(`{"type":"whatsapp.template.reviewed","whatsappTemplate":{}}`, FormatYCloud)
	f(`{"app_id":"A","message":{"contact_message":{},"channel_identity":{"channel":"WHATSAPP"}}}`, FormatSinch)
	f(`{"messages":[{}]}`, FormatOnPrem)
	f(`{"statuses":[{}]}`, FormatOnPrem)
	f(`{"contacts":[{}]}`, FormatOnPrem)
	// Only top-level fields count.
	f(`{"data":{"messages":[{"id":"x"}],"object":"whatsapp_business_account"}}`, FormatUnknown)
	// A Messenger or Instagram webhook is not WhatsApp.
	f(`{"object":"page","entry":[]}`, FormatUnknown)
	// A Sinch delivery report is not an inbound message; an SMS event of YCloud is not WhatsApp.
	f(`{"app_id":"A","message_delivery_report":{"channel_identity":{"channel":"WHATSAPP"}}}`, FormatUnknown)
	f(`{"type":"sms.message.updated","sms":{}}`, FormatUnknown)
	// Keys inside a string do not count.
	f(`{"text":"say \"object\":\"whatsapp_business_account\" and \"messages\":[1]"}`, FormatUnknown)
	// A broken body is reported as the format read before the break.
	f(`{"object":"whatsapp_business_account","entry":[{"changes":[`, FormatCloud)
	f(`{"entry":[{"changes":[],"object":"whatsapp_business_account"`, FormatUnknown)
	f(``, FormatUnknown)
	f(`{}`, FormatUnknown)
	f(`[1,2,3]`, FormatUnknown)
}

func TestNormalizePhone(t *testing.T) {
	f := func(in, want string, wantOK bool) {
		t.Helper()
		got, ok := normalizePhone(in)
		if got != want || ok != wantOK {
			t.Errorf("normalizePhone(%q) = %q, %v; want %q, %v", in, got, ok, want, wantOK)
		}
	}
	f("491701234567", "491701234567", true)
	f("+491701234567", "491701234567", true)
	f("+49 170 1234567", "491701234567", true)
	f("+49-170-123-4567", "491701234567", true)
	f("+1 (650) 555-1234", "16505551234", true)
	f("", "", false)
	f("+", "", false)
	f(" - ", "", false)
	f("49170abc", "", false)
	f("US.13491208655302741918", "", false)
	f("+49\u00a0170", "", false)
}

func TestNormalizePhoneAliasesDigits(t *testing.T) {
	// The common forms must not copy: the hot path relies on it.
	for _, s := range []string{"491701234567", "+491701234567"} {
		got, _ := normalizePhone(s)
		if got == "" || unsafe.StringData(got) != unsafe.StringData(s[len(s)-len(got):]) {
			t.Errorf("normalizePhone(%q) copied its result", s)
		}
	}
}

func TestLooksLikeBSUID(t *testing.T) {
	for s, want := range map[string]bool{
		"US.13491208655302741918":     true,
		"DE.1502576394655843":         true,
		"US.ENT.11815799212886844830": true,
		"491701234567":                false,
		"us.1349":                     false,
		"US1349":                      false,
		"US.":                         false,
		"US.12 34":                    false,
	} {
		if got := looksLikeBSUID(s); got != want {
			t.Errorf("looksLikeBSUID(%q) = %v", s, got)
		}
	}
}

// decodeOne decodes body with a fresh Decoder and fails unless it gives exactly one item.
func decodeOne(t *testing.T, body string) Item {
	t.Helper()
	var d Decoder
	_, items, err := d.Decode([]byte(body), testAppID)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(items) != 1 {
		t.Fatalf("got %d items, want 1", len(items))
	}
	return items[0]
}

func cloudBodyWith(value string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":` +
		`{"metadata":{"phone_number_id":"106540352242922"},` + value + `}}]}]}`
}

func TestDecodeLeads(t *testing.T) {
	f := func(name, body, wantLead string, wantBSUID bool) {
		t.Helper()
		it := decodeOne(t, body)
		if it.Lead != wantLead || it.LeadIsBSUID != wantBSUID {
			t.Errorf("%s: lead %q bsuid %v, want %q %v", name, it.Lead, it.LeadIsBSUID, wantLead, wantBSUID)
		}
	}
	msg := `"messages":[{"id":"wamid.X","timestamp":"1773652447","type":"text","text":{"body":"hi"}`
	f("cloud from", cloudBodyWith(msg+`,"from":"491701234567"}]`), "491701234567", false)
	f("cloud from with separators", cloudBodyWith(msg+`,"from":"+49 170-1234567"}]`), "491701234567", false)
	f("cloud phone wins over bsuid", cloudBodyWith(
		`"contacts":[{"wa_id":"491701234567","user_id":"DE.1502576394655843"}],`+msg+`,"from":"491701234567"}]`),
		"491701234567", false)
	f("cloud from_user_id", cloudBodyWith(msg+`,"from_user_id":"DE.1502576394655843"}]`), "DE.1502576394655843", true)
	f("cloud contacts user_id", cloudBodyWith(
		`"contacts":[{"profile":{"username":"@mara"},"user_id":"DE.1502576394655843"}],`+msg+`}]`),
		"DE.1502576394655843", true)
	f("cloud bsuid in from", cloudBodyWith(msg+`,"from":"US.13491208655302741918"}]`), "US.13491208655302741918", true)
	f("cloud status recipient_user_id", cloudBodyWith(
		`"statuses":[{"id":"wamid.S","status":"read","timestamp":"1773652447","recipient_user_id":"DE.1502576394655843"}]`),
		"DE.1502576394655843", true)
	f("ycloud fromUserId", `{"type":"whatsapp.inbound_message.received","whatsappInboundMessage":`+
		`{"id":"y1","wamid":"wamid.Y","fromUserId":"DE.1502576394655843","to":"+4930609859535",`+
		`"sendTime":"2026-03-16T09:14:07.000Z","type":"text","text":{"body":"hi"}}}`,
		"DE.1502576394655843", true)
	f("sinch bsuid identity", sinchBodyWith(`"text_message":{"text":"hi"}`, "DE.1502576394655843", ""),
		"DE.1502576394655843", true)
	f("sinch phone identity", sinchBodyWith(`"text_message":{"text":"hi"}`, "+46 712 312 312", ""),
		"46712312312", false)
}

func sinchBodyWith(contactMessage, identity, metadata string) string {
	md := ""
	if metadata != "" {
		md = `,"metadata":` + metadata
	}
	return `{"app_id":"01EB37HMH1M6SV18ASNS3G135H","accepted_time":"2026-03-16T09:14:08.020Z",` +
		`"event_time":"2026-03-16T09:14:07.412Z","message":{"id":"01EKJ1534NWK5R02TGWEJN13HA",` +
		`"direction":"TO_APP","contact_message":{` + contactMessage + `},` +
		`"channel_identity":{"channel":"WHATSAPP","identity":"` + identity + `","app_id":""}` + md + `}}`
}

func TestDecodeSinchMetadata(t *testing.T) {
	const text = `"text_message":{"text":"hi"}`
	f := func(name, metadata string, want Referral) {
		t.Helper()
		it := decodeOne(t, sinchBodyWith(text, "46712312312", metadata))
		if it.Referral != want {
			t.Errorf("%s: referral %+v, want %+v", name, it.Referral, want)
		}
	}
	f("seed shape", `"{\"referral\":{\"source_type\":\"ad\",\"source_id\":\"120214567890123456\",`+
		`\"source_url\":\"https://fb.me/4kQ9vZx2b\",\"ctwa_clid\":\"ARAkLk\",\"headline\":\"Our new product\",`+
		`\"body\":\"This is a great product\"}}"`,
		Referral{SourceType: "ad", SourceID: "120214567890123456", SourceURL: "https://fb.me/4kQ9vZx2b",
			CtwaClid: "ARAkLk", Headline: "Our new product", Body: "This is a great product"})
	// Escapes inside the escaped document: a slash, a quote and a non-ASCII letter.
	f("nested escapes", `"{\"referral\":{\"source_id\":\"42\",\"source_url\":\"https:\\/\\/fb.me\\/x\",`+
		`\"headline\":\"Caf\\u00e9 \\\"Mitte\\\"\"}}"`,
		Referral{SourceID: "42", SourceURL: "https://fb.me/x", Headline: `Café "Mitte"`})
	f("no referral", `"{\"campaign\":\"x\"}"`, Referral{})
	f("not JSON", `"order-1234"`, Referral{})
	f("empty", `""`, Referral{})

	wantRejected(t, "broken metadata", sinchBodyWith(text, "46712312312", `"{\"referral\":{\"source_id\":"`),
		FormatSinch, rejectBadMetadata, "message.metadata is not valid JSON")
}

func TestDecodeSinchSkips(t *testing.T) {
	body := sinchBodyWith(`"text_message":{"text":"hi"}`, "46712312312", "")
	wantIgnored(t, "app to contact", strings.Replace(body, "TO_APP", "TO_CONTACT", 1), FormatSinch, IgnoreOutbound)
	wantIgnored(t, "other channel", strings.Replace(body, `"WHATSAPP"`, `"MESSENGER"`, 1), FormatSinch, IgnoreOtherChannel)
	wantIgnored(t, "delivery report", `{"app_id":"01E8","accepted_time":"2020-06-22T11:05:53.910Z",`+
		`"message_delivery_report":{"message_id":"01EB","status":"READ","channel_identity":{"channel":"WHATSAPP","identity":"+46702471483"}}}`,
		FormatSinch, IgnoreDeliveryReport)
	wantIgnored(t, "event delivery report", `{"app_id":"01E8","accepted_time":"2020-06-22T11:05:53.910Z",`+
		`"event_delivery_report":{"event_id":"01EC","status":"DELIVERED"}}`, FormatSinch, IgnoreDeliveryReport)
	wantIgnored(t, "contact created", `{"app_id":"01E8","accepted_time":"2020-06-22T11:05:53.910Z",`+
		`"contact_create_notification":{"contact":{"id":"01ED"}}}`, FormatSinch, IgnoreEvent)
}

func TestDecodeNotTheLeadTalking(t *testing.T) {
	msg := func(extra string) string {
		return cloudBodyWith(`"messages":[{"from":"491701234567","id":"wamid.N","timestamp":"1773652447",` + extra + `}]`)
	}
	wantIgnored(t, "revoke", msg(`"type":"revoke","revoke":{"original_message_id":"wamid.O"}`), FormatCloud, IgnoreRevoke)
	wantIgnored(t, "other system notice", msg(`"type":"system","system":{"type":"customer_identity_changed","body":"x"}`),
		FormatCloud, IgnoreSystem)
	wantIgnored(t, "cloud errors", cloudBodyWith(`"errors":[{"code":131000,"title":"Something went wrong"}]`), FormatCloud, IgnoreErrors)

	var d Decoder
	_, items, err := d.Decode([]byte(msg(`"type":"edit","edit":{"original_message_id":"wamid.O","message":`+
		`{"type":"text","text":{"body":"new words"}}}`)), testAppID)
	if err != nil || len(items) != 1 || items[0].Kind != KindEdit || items[0].EditOf != "wamid.O" || items[0].Text != "new words" {
		t.Fatalf("edit decoded as %+v, %v", items, err)
	}
}

// wantIgnored decodes body and wants exactly one item, recognized and ignored for reason.
func wantIgnored(t *testing.T, name, body string, wantFormat Format, reason string) {
	t.Helper()
	var d Decoder
	format, items, err := d.Decode([]byte(body), testAppID)
	if format != wantFormat || err != nil || len(items) != 1 || items[0].Kind != KindIgnored || items[0].Reason != reason {
		t.Errorf("%s: got %s, %+v, %v; want %s and one item ignored as %q", name, format, items, err, wantFormat, reason)
	}
	if len(d.Rejections()) != 0 {
		t.Errorf("%s: rejections %v", name, d.Rejections())
	}
}

// wantRejected decodes body and wants its one item rejected for reason, with an error
// containing wantErr, and no error for the webhook.
func wantRejected(t *testing.T, name, body string, wantFormat Format, reason, wantErr string) {
	t.Helper()
	var d Decoder
	format, items, err := d.Decode([]byte(body), testAppID)
	rej := d.Rejections()
	if format != wantFormat || err != nil || len(items) != 0 || len(rej) != 1 {
		t.Fatalf("%s: got %s, %d items, %v, rejections %v; want %s, no items, one rejection", name, format, len(items), err, rej, wantFormat)
	}
	if rej[0].Reason != reason || !strings.Contains(rej[0].Err.Error(), wantErr) {
		t.Errorf("%s: rejected as %q: %q; want %q and an error containing %q", name, rej[0].Reason, rej[0].Err, reason, wantErr)
	}
}

func TestDecodeSinchKinds(t *testing.T) {
	f := func(contactMessage, wantType, wantText, wantReplyID, wantContext string) {
		t.Helper()
		it := decodeOne(t, sinchBodyWith(contactMessage, "46712312312", ""))
		if it.Type != wantType || it.Text != wantText || it.ReplyID != wantReplyID || it.ContextID != wantContext {
			t.Errorf("%s: got type %q text %q reply %q context %q", contactMessage, it.Type, it.Text, it.ReplyID, it.ContextID)
		}
	}
	f(`"text_message":{"text":"hi"},"reply_to":{"message_id":"01PREV"}`, "text", "hi", "", "01PREV")
	f(`"media_message":{"url":"https://x/y.jpg"}`, "media", "", "", "")
	f(`"media_card_message":{"url":"https://x/y.jpg","caption":"look"}`, "media", "look", "", "")
	f(`"choice_response_message":{"message_id":"01CHOICE","postback_data":"yes"}`, "interactive", "", "yes", "01CHOICE")
	f(`"location_message":{"coordinates":{"latitude":52.52,"longitude":13.40},"title":"Home"}`, "location", "", "", "")
	f(`"product_response_message":{"products":[]}`, "unsupported", "", "", "")
}

func TestDecodeYCloudOtherEvents(t *testing.T) {
	var d Decoder
	body := `{"id":"evt_1","type":"whatsapp.smb.message.created","whatsappMessage":{"id":"x","from":"+1","to":"+2"}}`
	_, _, _ = d.Decode([]byte(body), testAppID)
	wantIgnored(t, "smb echo", body, FormatYCloud, IgnoreEvent)
}

func TestDecodeCloudOtherFields(t *testing.T) {
	// A template status update has neither messages nor statuses, nor a phone number id.
	body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":` +
		`"message_template_status_update","value":{"event":"APPROVED","message_template_id":1}}]}]}`
	var d Decoder
	format, items, err := d.Decode([]byte(body), testAppID)
	if format != FormatCloud || err != nil || len(items) != 0 {
		t.Errorf("got %s, %d items, %v; want cloud, no items, no error", format, len(items), err)
	}
}

func TestDecodeErrors(t *testing.T) {
	f := func(name, body string, wantFormat Format, wantErr string) {
		t.Helper()
		var d Decoder
		format, items, err := d.Decode([]byte(body), testAppID)
		if err == nil {
			t.Fatalf("%s: no error, %d items", name, len(items))
		}
		if format != wantFormat || items != nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: got %s, %d items, %q; want %s and an error containing %q",
				name, format, len(items), err, wantFormat, wantErr)
		}
	}
	f("empty", ``, FormatUnknown, "cannot decode payload")
	f("blank", " \n", FormatUnknown, "cannot decode payload")
	f("not JSON", `hello`, FormatUnknown, "cannot decode payload")
	f("other JSON", `{"event":"ping"}`, FormatUnknown, "payload is of no known format")
	f("nested keys only", `{"data":{"messages":[{"id":"x"}]}}`, FormatUnknown, "payload is of no known format")
	f("broken cloud", `{"object":"whatsapp_business_account","entry":[{`, FormatCloud, "cannot decode cloud payload")
	// A value of the wrong JSON type breaks the document, not one item: the JSON decoder stops there.
	f("cloud timestamp as number", cloudBodyWith(`"messages":[{"from":"491701234567","id":"wamid.X","timestamp":1773652447}]`),
		FormatCloud, "cannot decode cloud payload")
	f("onprem broken", `{"messages":[{"from":"1",`, FormatOnPrem, "cannot decode onprem payload")
	f("ycloud wrong type", `{"type":"whatsapp.inbound_message.received","whatsappInboundMessage":[]}`,
		FormatYCloud, "cannot decode ycloud payload")
}

// TestDecodeRejects: an item that fails validation is rejected alone, naming its path,
// the field and the rule, with the reason it is counted under.
func TestDecodeRejects(t *testing.T) {
	f := func(name, body string, wantFormat Format, reason, wantErr string) {
		t.Helper()
		wantRejected(t, name, body, wantFormat, reason, wantErr)
	}
	f("cloud timestamp", `{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{}},{"value":{`+
		`"metadata":{"phone_number_id":"1"},"messages":[{"from":"491701234567","id":"wamid.X","timestamp":"abc","type":"text"}]}}]}]}`,
		FormatCloud, rejectBadTime, `entry[0].changes[1].value.messages[0].timestamp "abc" is not unix seconds`)
	f("cloud no app id", `{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{`+
		`"messages":[{"from":"491701234567","id":"wamid.X","timestamp":"1773652447"}]}}]}]}`,
		FormatCloud, rejectBadApp, "entry[0].changes[0].value.metadata.phone_number_id is missing")
	f("cloud no lead", cloudBodyWith(`"messages":[{"id":"wamid.X","timestamp":"1773652447","type":"text"}]`),
		FormatCloud, rejectBadLead, "messages[0].from is missing and no business-scoped user id is given")
	f("cloud bad phone", cloudBodyWith(`"messages":[{"from":"abc","id":"wamid.X","timestamp":"1773652447"}]`),
		FormatCloud, rejectBadLead, `messages[0].from "abc" is not a phone number`)
	f("cloud no type", cloudBodyWith(`"messages":[{"from":"491701234567","id":"wamid.X","timestamp":"1773652447"}]`),
		FormatCloud, rejectMissingType, "messages[0].type is missing")
	f("cloud no id", cloudBodyWith(`"messages":[{"from":"491701234567","timestamp":"1773652447"}]`),
		FormatCloud, rejectMissingID, "messages[0].id is missing")
	f("cloud status without status", cloudBodyWith(`"statuses":[{"id":"wamid.S","timestamp":"1773652447","recipient_id":"491701234567"}]`),
		FormatCloud, rejectMissingStatus, "statuses[0].status is missing")
	f("cloud status no recipient", cloudBodyWith(`"statuses":[{"id":"wamid.S","status":"sent","timestamp":"1773652447"}]`),
		FormatCloud, rejectBadLead, "statuses[0].recipient_id is missing")
	f("onprem timestamp", `{"messages":[{"from":"491701234567","id":"ABGG","timestamp":"-5"}]}`,
		FormatOnPrem, rejectBadTime, `messages[0].timestamp "-5" is not unix seconds`)
	// Times outside 2009 … a day ahead of the clock (SPEC §3.4: refuse the item, keep the rest).
	f("onprem time zero", `{"messages":[{"from":"491701234567","id":"ABGG","timestamp":"0","type":"text"}]}`,
		FormatOnPrem, rejectBadTime, `messages[0].timestamp 0 is before 2009-01-01`)
	f("year 5138", cloudBodyWith(`"messages":[{"from":"491701234567","id":"wamid.X","timestamp":"99999999999","type":"text"}]`),
		FormatCloud, rejectBadTime, `messages[0].timestamp 99999999999 is more than a day ahead of the clock`)
	f("max int64", cloudBodyWith(`"statuses":[{"id":"wamid.S","status":"sent","timestamp":"9223372036854775807","recipient_id":"491701234567"}]`),
		FormatCloud, rejectBadTime, `statuses[0].timestamp 9223372036854775807 is more than a day ahead of the clock`)
	f("sinch before 2009", strings.Replace(sinchBodyWith(`"text_message":{"text":"hi"}`, "46712312312", ""),
		"2026-03-16T09:14:07.412Z", "1999-12-31T23:59:59Z", 1), FormatSinch, rejectBadTime, `event_time 946684799 is before 2009-01-01`)
	f("sinch no app", strings.Replace(sinchBodyWith(`"text_message":{"text":"hi"}`, "46712312312", ""),
		`"app_id":"01EB37HMH1M6SV18ASNS3G135H",`, "", 1), FormatSinch, rejectBadApp, "app_id is missing")
	f("sinch bad time", strings.Replace(sinchBodyWith(`"text_message":{"text":"hi"}`, "46712312312", ""),
		"2026-03-16T09:14:07.412Z", "yesterday", 1), FormatSinch, rejectBadTime, `event_time "yesterday" is not an RFC 3339 time`)
	f("ycloud bad to", `{"type":"whatsapp.inbound_message.received","whatsappInboundMessage":{"wamid":"wamid.Y",`+
		`"from":"+491701234567","to":"","sendTime":"2026-03-16T09:14:07.000Z"}}`,
		FormatYCloud, rejectBadApp, `whatsappInboundMessage.to "" is not a phone number`)
	f("ycloud status no time", `{"type":"whatsapp.message.updated","whatsappMessage":{"wamid":"wamid.Y",`+
		`"from":"+4930609859535","to":"+491701234567","status":"failed"}}`,
		FormatYCloud, rejectBadTime, `whatsappMessage.updateTime "" is not an RFC 3339 time`)
	f("edit without original", cloudBodyWith(`"messages":[{"from":"491701234567","id":"wamid.E","timestamp":"1773652447","type":"edit","edit":{}}]`),
		FormatCloud, rejectMissingID, "messages[0].edit.original_message_id is missing")
	f("number change to garbage", cloudBodyWith(`"messages":[{"from":"491701234567","id":"wamid.N","timestamp":"1773652447","type":"system",`+
		`"system":{"type":"user_changed_number","wa_id":"new"}}]`),
		FormatCloud, rejectBadLead, `messages[0].system.wa_id "new" is not a phone number`)
	f("automatic event unknown name", cloudBodyWith(`"automatic_events":[{"id":"wamid.A","event_name":"AddToCart","timestamp":1739321024,"ctwa_clid":"C"}]`),
		FormatCloud, rejectMissingType, `automatic_events[0].event_name "AddToCart" is not LeadSubmitted or Purchase`)
	f("automatic event without click", cloudBodyWith(`"automatic_events":[{"id":"wamid.A","event_name":"LeadSubmitted","timestamp":1739321024}]`),
		FormatCloud, rejectMissingID, `automatic_events[0].ctwa_clid is missing`)
	f("automatic event bad currency", cloudBodyWith(`"automatic_events":[{"id":"wamid.A","event_name":"Purchase","timestamp":1739321024,`+
		`"ctwa_clid":"C","custom_data":{"currency":"usd","value":25000}}]`),
		FormatCloud, rejectBadMetadata, `automatic_events[0].custom_data.currency "usd" is not an ISO 4217 code`)
	f("automatic event bad value", cloudBodyWith(`"automatic_events":[{"id":"wamid.A","event_name":"Purchase","timestamp":1739321024,`+
		`"ctwa_clid":"C","custom_data":{"currency":"USD","value":-1}}]`),
		FormatCloud, rejectBadMetadata, `automatic_events[0].custom_data.value -1 is not a finite amount ×1000 of at least 0`)
	f("automatic event bad time", cloudBodyWith(`"automatic_events":[{"id":"wamid.A","event_name":"LeadSubmitted","timestamp":"soon","ctwa_clid":"C"}]`),
		FormatCloud, rejectBadTime, `automatic_events[0].timestamp "soon" is not unix seconds`)
}

// TestDecodeTruncated cuts every fixture short: a cut JSON document is never valid, so
// Decode must report an error, and must not panic.
func TestDecodeTruncated(t *testing.T) {
	var d Decoder
	for _, fx := range fixtures.Webhooks(t) {
		body := bytes.TrimSpace(fx.Body)
		for _, n := range []int{0, 1, len(body) / 3, len(body) / 2, len(body) - 2, len(body) - 1} {
			format, items, err := d.Decode(body[:n], testAppID)
			if err == nil {
				t.Errorf("%s cut at %d: no error, %s with %d items", fx.Name, n, format, len(items))
			}
			if items != nil {
				t.Errorf("%s cut at %d: items returned with the error", fx.Name, n)
			}
		}
	}
}

// TestDecoderReuse decodes every fixture with a Decoder that has decoded all the others
// before: nothing of an earlier body may show up in a later result.
func TestDecoderReuse(t *testing.T) {
	fxs := fixtures.Webhooks(t)
	var warm Decoder
	for round := 0; round < 2; round++ {
		for i := range fxs {
			// The batch first, so that the reused slices are longer than most bodies need.
			fx := fxs[(i+round*len(fxs)/2)%len(fxs)]
			var fresh Decoder
			wantF, want, wantErr := fresh.Decode(fx.Body, testAppID)
			gotF, got, gotErr := warm.Decode(fx.Body, testAppID)
			if gotF != wantF || !sameItems(got, want) || !sameError(gotErr, wantErr) {
				t.Fatalf("%s: a reused Decoder gives\n%+v\nwant\n%+v", fx.Name, got, want)
			}
		}
	}
}

func TestItemClone(t *testing.T) {
	body := fixtures.Body(t, "cloud/text_ctwa_referral")
	var d Decoder
	_, items, err := d.Decode(body, testAppID)
	if err != nil {
		t.Fatal(err)
	}
	want := items[0]
	c := items[0].Clone()
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("clone differs:\n%+v\n%+v", c, want)
	}
	for i := range body {
		body[i] = 'x'
	}
	if c.Text != "Hi! I saw your ad, is the spring sale still on?" || c.Referral.SourceID != "120214567890123456" {
		t.Fatalf("the clone changed with the body: %+v", c)
	}
	if (&Item{}).Clone() != (Item{}) {
		t.Fatal("clone of an empty item is not empty")
	}
}

// TestItemStringFields guards Clone: every string of Item must be in StringFields.
func TestItemStringFields(t *testing.T) {
	var it Item
	n := countStrings(reflect.TypeOf(it))
	if got := len(it.StringFields()); got != n {
		t.Fatalf("StringFields lists %d strings, Item has %d", got, n)
	}
	seen := map[*string]bool{}
	for _, p := range it.StringFields() {
		if seen[p] {
			t.Fatal("StringFields lists a field twice")
		}
		seen[p] = true
	}
}

func countStrings(t reflect.Type) int {
	n := 0
	for i := 0; i < t.NumField(); i++ {
		switch ft := t.Field(i).Type; ft.Kind() {
		case reflect.String:
			n++
		case reflect.Struct:
			n += countStrings(ft)
		}
	}
	return n
}
