package e2e

// End-to-end test of the off-thread endpoint (SPEC §5) through a real sidecar started by
// run: rejections with their status and JSON error, nothing stored on error, a purchase
// attributed to the lead's CTWA session, idempotency by object_id, the /v1 alias and the
// counters in /metrics.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	otE2EApp  = "106540352242922"
	otE2ELead = "491709876543"
	otE2EAd   = "120214567890123456"
)

// otE2EWebhook is a Cloud API webhook: lead writes to app, from an ad when ad is not "".
func otE2EWebhook(t *testing.T, lead, ad, id string, at time.Time) []byte {
	t.Helper()
	msg := map[string]any{"from": lead, "id": id, "timestamp": strconv.FormatInt(at.Unix(), 10),
		"type": "text", "text": map[string]any{"body": "Hi! I saw your ad"}}
	if ad != "" {
		msg["referral"] = map[string]any{"source_url": "https://fb.me/4kQ9vZx2b", "source_id": ad,
			"source_type": "ad", "headline": "Chat with us", "media_type": "image", "ctwa_clid": "ARAk-" + id}
	}
	b, err := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "4930609859535", "phone_number_id": otE2EApp},
			"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Lead"}, "wa_id": lead}},
			"messages":          []any{msg},
		}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// otPost posts body to path on the API listener with the given Content-Type and
// Authorization headers ("" for none).
func otPost(t *testing.T, sc *runSidecar, path, contentType, auth string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req := newRequest(t, "POST", sc.api+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return mustDo(t, req)
}

// otMetrics returns the ctwa_sidecar_offthread_events_total series of /metrics by labels.
func otMetrics(t *testing.T, sc *runSidecar) map[string]float64 {
	t.Helper()
	resp, body := mustDo(t, newRequest(t, "GET", sc.api+"/metrics", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, "ctwa_sidecar_offthread_events_total")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, " ")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[labels] = v
	}
	return out
}

// otRow is one row of GET .../events.
type otRow struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	TypeID         string `json:"type_id"`
	TypeValue      string `json:"type_value"`
	Phone          string `json:"phone"`
	AdID           string `json:"ad_id"`
	ConversationID string `json:"conversation_id"`
	SourceType     string `json:"source_type"`
	SourceID       string `json:"source_id"`
}

// otEvents lists every event of the app from yesterday to tomorrow.
func otEvents(t *testing.T, sc *runSidecar) []otRow {
	t.Helper()
	now := time.Now().UTC()
	q := "date_from=" + now.AddDate(0, 0, -1).Format(time.DateOnly) + "&date_to=" + now.AddDate(0, 0, 1).Format(time.DateOnly) + "&limit=1000"
	resp, body := mustDo(t, newRequest(t, "GET", sc.api+"/v1/clients/default/apps/"+otE2EApp+"/events?"+q, nil))
	if resp.StatusCode != 200 {
		t.Fatalf("events answered %d %s", resp.StatusCode, body)
	}
	var page struct {
		Data       []otRow `json:"data"`
		TotalCount int     `json:"total_count"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("events: %v in %s", err, body)
	}
	if page.TotalCount != len(page.Data) {
		t.Fatalf("events: total_count %d but %d rows", page.TotalCount, len(page.Data))
	}
	return page.Data
}

// otResponse is the 201/200 answer of SPEC §5.
type otResponse struct {
	ID             string `json:"external_event_id"`
	Attributed     bool   `json:"attributed"`
	ConversationID string `json:"conversation_id"`
	AppID          string `json:"app_id"`
	Source         struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"source"`
}

func otDecode(t *testing.T, resp *http.Response, body []byte, status int) otResponse {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("answered %d %s, want %d", resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var r otResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if r.ID == "" || strings.ContainsAny(r.ID, "/?#%& ") {
		t.Errorf("external_event_id %q is empty or not safe in a URL", r.ID)
	}
	return r
}

func TestOffThreadEndToEnd(t *testing.T) {
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(200) })
	sc := startSidecar(t, "http://"+up.addr, "-api-key", "K")

	// The lead clicked an ad two hours ago.
	req := newRequest(t, "POST", sc.webhook+"/webhook",
		otE2EWebhook(t, otE2ELead, otE2EAd, "wamid.offthread.e2e.1", time.Now().Add(-2*time.Hour)))
	req.Header.Set("Content-Type", "application/json")
	if resp, body := mustDo(t, req); resp.StatusCode != 200 {
		t.Fatalf("webhook answered %d %s", resp.StatusCode, body)
	}
	before := otEvents(t, sc)
	if len(before) != 1 || before[0].Type != "conversation" || before[0].SourceID != otE2EAd {
		t.Fatalf("events after the webhook = %+v, want one ad conversation", before)
	}
	conversation := before[0].ConversationID
	base := otMetrics(t, sc)

	const (
		path    = "/clients/default/external-events"
		v1      = "/v1/clients/default/external-events"
		jsonCT  = "application/json"
		good    = `"lead_phone":"+49 170 987-6543","action":"purchase","revenue":{"amount":49.9,"currency":"EUR"}`
		goodKey = `{"api_key":"K",` + good + `}`
		noKey   = `{` + good + `}`
	)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	// A body of exactly 64 KiB is read and validated; one byte more is refused unread.
	pad := func(n int) string {
		b := `{"api_key":"K",` + good + `,"object_id":"`
		return b + strings.Repeat("x", n-len(b)-2) + `"}`
	}
	rejections := []struct {
		name, path, contentType, auth, body string
		status                              int
		code, field                         string
	}{
		{"no key", path, jsonCT, "", noKey, 401, "unauthorized", "api_key"},
		{"wrong body key", path, jsonCT, "", `{"api_key":"nope",` + good + `}`, 401, "unauthorized", "api_key"},
		{"wrong bearer", path, jsonCT, "Bearer nope", noKey, 401, "unauthorized", "api_key"},
		{"other scheme", v1, jsonCT, "Basic Sw==", noKey, 401, "unauthorized", "api_key"},
		{"wrong body key, right bearer", path, jsonCT, "Bearer K", `{"api_key":"nope",` + good + `}`, 401, "unauthorized", "api_key"},
		{"bad phone", path, jsonCT, "", `{"api_key":"K","lead_phone":"abc","action":"purchase"}`, 400, "invalid_field", "lead_phone"},
		{"no action, bearer", v1, jsonCT, "Bearer K", `{"lead_phone":"+491709876543"}`, 400, "invalid_field", "action"},
		{"currency", path, jsonCT, "", `{"api_key":"K","lead_phone":"+491709876543","action":"purchase","revenue":{"amount":1,"currency":"EURO"}}`,
			400, "invalid_field", "revenue.currency"},
		{"negative amount", path, jsonCT, "", `{"api_key":"K","lead_phone":"+491709876543","action":"purchase","revenue":{"amount":-1}}`,
			400, "invalid_field", "revenue.amount"},
		{"future", path, jsonCT, "", `{"api_key":"K",` + good + `,"event_time":"` + future + `"}`, 400, "invalid_field", "event_time"},
		{"attribute", path, jsonCT, "", `{"api_key":"K",` + good + `,"attributes":{"price":12.34}}`, 400, "invalid_field", "attributes.price"},
		{"typo", path, jsonCT, "", `{"api_key":"K","lead_phon":"+491709876543","action":"purchase"}`, 400, "invalid_field", "lead_phon"},
		{"external_event not an object", path, jsonCT, "", `{"api_key":"K","external_event":5}`, 400, "invalid_field", "external_event"},
		{"invalid JSON", path, jsonCT, "Bearer K", `{"lead_phone":`, 400, "invalid_field", "body"},
		{"exactly 64 KiB", path, jsonCT, "", pad(64 << 10), 400, "invalid_field", "object_id"},
		{"unknown previous", path, jsonCT, "", `{"api_key":"K",` + good + `,"previous_external_event_id":"nope","object_id":"e2e-prev"}`,
			404, "not_found", "previous_external_event_id"},
		{"unknown client", "/clients/other/external-events", jsonCT, "", goodKey, 404, "unknown_client", "client_id"},
		{"unknown client v1", "/v1/clients/other/external-events", jsonCT, "", goodKey, 404, "unknown_client", "client_id"},
		{"over 64 KiB", path, jsonCT, "", pad(64<<10 + 1), 413, "too_large", ""},
		{"text/plain", path, "text/plain", "", goodKey, 415, "unsupported_media_type", ""},
		{"form", v1, "application/x-www-form-urlencoded", "Bearer K", "lead_phone=%2B491709876543&action=purchase", 415, "unsupported_media_type", ""},
	}
	rejected := map[string]float64{}
	for _, c := range rejections {
		resp, body := otPost(t, sc, c.path, c.contentType, c.auth, []byte(c.body))
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Errorf("%s: answer %d %.200s is not the JSON error form: %v", c.name, resp.StatusCode, body, err)
			continue
		}
		if resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Field != c.field || e.Error.Message == "" {
			t.Errorf("%s: got %d %+v, want %d code %q field %q", c.name, resp.StatusCode, e.Error, c.status, c.code, c.field)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", c.name, ct)
		}
		if c.status == 400 && !strings.HasPrefix(e.Error.Message, c.field+": ") {
			t.Errorf("%s: message %q does not start with the field %s", c.name, e.Error.Message, c.field)
		}
		rejected[c.code]++
	}
	// Nothing was stored: the events are the webhook's alone.
	if after := otEvents(t, sc); len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("after the rejections the events are %+v, want only %+v", after, before[0])
	}

	// A purchase by phone, key in the body: attributed to the ad session.
	body := []byte(`{"api_key":"K",` + good + `,"object_id":"e2e-order-1"}`)
	resp, raw := otPost(t, sc, path, "application/json; charset=utf-8", "", body)
	first := otDecode(t, resp, raw, 201)
	want := otResponse{ID: first.ID, Attributed: true, ConversationID: conversation, AppID: otE2EApp}
	want.Source.Type, want.Source.ID = "ad", otE2EAd
	if first != want {
		t.Errorf("first purchase answered %+v, want %+v", first, want)
	}
	// The same object_id again, by bearer on the /v1 alias: 200 and the first answer.
	resp, raw2 := otPost(t, sc, v1, jsonCT, "Bearer K", []byte(`{`+good+`,"object_id":"e2e-order-1"}`))
	if again := otDecode(t, resp, raw2, 200); again != first || !bytes.Equal(raw2, raw) {
		t.Errorf("repeated object_id answered %s, want %s", raw2, raw)
	}
	// The nested form on the /v1 alias, without Content-Type, key inside external_event.
	resp, raw = otPost(t, sc, v1, "", "", []byte(`{"external_event":{"api_key":"K",`+good+`,"object_id":"e2e-order-2"}}`))
	nested := otDecode(t, resp, raw, 201)
	want.ID = nested.ID
	if nested != want || nested.ID == first.ID {
		t.Errorf("nested purchase answered %+v, want %+v with a new id", nested, want)
	}
	// A lead without any session: stored unattributed.
	resp, raw = otPost(t, sc, path, jsonCT, "Bearer K", []byte(`{"lead_phone":"+1 650 555 1234","action":"sign_up"}`))
	lone := otDecode(t, resp, raw, 201)
	wantLone := otResponse{ID: lone.ID}
	wantLone.Source.Type = "unattributed"
	if lone != wantLone {
		t.Errorf("lead without session answered %+v, want %+v", lone, wantLone)
	}

	// The events list shows the two purchases in the ad's conversation, once each.
	var purchases []otRow
	for _, r := range otEvents(t, sc) {
		if r.Type != "conversation" {
			purchases = append(purchases, r)
		}
	}
	wantRow := func(id, object string) otRow {
		return otRow{ID: id, Type: "purchase", TypeID: object, TypeValue: "49.9 EUR", Phone: otE2ELead, AdID: otE2EAd,
			ConversationID: conversation, SourceType: "ad", SourceID: otE2EAd}
	}
	// Both may fall in the same second; order them by object_id.
	slices.SortFunc(purchases, func(a, b otRow) int { return strings.Compare(a.TypeID, b.TypeID) })
	if len(purchases) != 2 || purchases[0] != wantRow(first.ID, "e2e-order-1") || purchases[1] != wantRow(nested.ID, "e2e-order-2") {
		t.Errorf("off-thread rows = %+v\nwant %+v and %+v", purchases, wantRow(first.ID, "e2e-order-1"), wantRow(nested.ID, "e2e-order-2"))
	}

	// The counters match what this test did.
	got := otMetrics(t, sc)
	delta := func(labels string) float64 { return got[labels] - base[labels] }
	for labels, want := range map[string]float64{
		`{result="attributed"}`:   2,
		`{result="duplicate"}`:    1,
		`{result="unattributed"}`: 1,
	} {
		if d := delta(labels); d != want {
			t.Errorf("ctwa_sidecar_offthread_events_total%s went up by %v, want %v", labels, d, want)
		}
	}
	var total float64
	for code, n := range rejected {
		labels := `{result="rejected",reason="` + code + `"}`
		if d := delta(labels); d != n {
			t.Errorf("ctwa_sidecar_offthread_events_total%s went up by %v, want %v", labels, d, n)
		}
		total += n
	}
	if total != float64(len(rejections)) || len(rejected) != 6 {
		t.Errorf("%v rejections in %d codes, want %d in 6", total, len(rejected), len(rejections))
	}
}
