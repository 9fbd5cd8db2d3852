package graphstub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	tVersion = "v23.0"
	tToken   = "TOKEN-OK"
	tWABA    = "102290129340398"
	tDataset = "555000111"
)

func opts() Options {
	return Options{Version: tVersion, Token: tToken, WABA: tWABA, Dataset: tDataset}
}

func event(name string, at time.Time) map[string]any {
	e := map[string]any{
		"event_name": name, "event_time": at.Unix(), "event_id": "ev-" + name,
		"action_source": "business_messaging", "messaging_channel": "whatsapp",
		"user_data": map[string]any{"ctwa_clid": "ARAkLclid", "whatsapp_business_account_id": tWABA},
	}
	if name == "Purchase" {
		e["custom_data"] = map[string]any{"currency": "EUR", "value": 49.9}
	}
	return e
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r reply) errField(k string) any {
	e, _ := r.body["error"].(map[string]any)
	return e[k]
}

func (r reply) code() (int, int) {
	c, _ := r.errField("code").(float64)
	sc, _ := r.errField("error_subcode").(float64)
	return int(c), int(sc)
}

func do(t *testing.T, client *http.Client, method, url, token string, body any) (reply, error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(b, &r.body)
	return r, nil
}

func post(t *testing.T, s *Server, events ...map[string]any) reply {
	t.Helper()
	r, err := do(t, nil, "POST", s.URL+"/"+tVersion+"/"+tDataset+"/events", tToken, map[string]any{"data": events})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSuccess(t *testing.T) {
	s := Start(t, opts())
	now := time.Now()
	r, err := do(t, nil, "POST", s.URL+"/"+tVersion+"/"+tDataset+"/events", tToken, map[string]any{
		"data":            []any{event("LeadSubmitted", now), event("Purchase", now.Add(-time.Hour))},
		"test_event_code": "TEST123",
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.body["events_received"] != 2.0 {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	if m, ok := r.body["messages"].([]any); !ok || len(m) != 0 {
		t.Fatalf("messages %v", r.body["messages"])
	}
	if tr, _ := r.body["fbtrace_id"].(string); !strings.HasPrefix(tr, "A") {
		t.Fatalf("fbtrace_id %q", tr)
	}
	evs := s.Events()
	if len(evs) != 2 || evs[0].EventName != "LeadSubmitted" || evs[1].EventName != "Purchase" ||
		evs[1].CustomData["value"] != 49.9 || evs[0].TestEventCode != "TEST123" ||
		evs[0].UserData["ctwa_clid"] != "ARAkLclid" || evs[0].EventTime != now.Unix() ||
		evs[0].ActionSource != "business_messaging" || evs[0].MessagingChannel != "whatsapp" {
		t.Fatalf("events %+v", evs)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Status != 200 || reqs[0].Authorization != "Bearer "+tToken ||
		reqs[0].Path != "/"+tVersion+"/"+tDataset+"/events" || !bytes.Contains(reqs[0].Body, []byte("TEST123")) {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestValidation(t *testing.T) {
	s := Start(t, opts())
	now := time.Now()
	mod := func(name string, f func(map[string]any)) map[string]any {
		e := event(name, now)
		f(e)
		return e
	}
	many := make([]map[string]any, MaxEvents+1)
	for i := range many {
		many[i] = event("LeadSubmitted", now)
	}
	cases := []struct {
		name      string
		events    []map[string]any
		code, sub int
	}{
		{"missing data", nil, 100, 0},
		{"empty data", []map[string]any{}, 100, 0},
		{"too many", many, 100, 0},
		{"not allowed", []map[string]any{event("Lead", now)}, 100, 2804066},
		{"seven days old fails all", []map[string]any{event("LeadSubmitted", now), event("Purchase", now.Add(-MaxAge-time.Hour))}, 100, 2804003},
		{"milliseconds", []map[string]any{mod("LeadSubmitted", func(e map[string]any) { e["event_time"] = now.UnixMilli() })}, 100, 0},
		{"no event_time", []map[string]any{mod("LeadSubmitted", func(e map[string]any) { delete(e, "event_time") })}, 100, 0},
		{"action_source", []map[string]any{mod("LeadSubmitted", func(e map[string]any) { e["action_source"] = "website" })}, 100, 0},
		{"channel", []map[string]any{mod("LeadSubmitted", func(e map[string]any) { e["messaging_channel"] = "messenger" })}, 100, 0},
		{"no clid", []map[string]any{mod("LeadSubmitted", func(e map[string]any) { delete(e["user_data"].(map[string]any), "ctwa_clid") })}, 100, 2804087},
		{"empty clid", []map[string]any{mod("LeadSubmitted", func(e map[string]any) { e["user_data"].(map[string]any)["ctwa_clid"] = "" })}, 100, 2804087},
		{"no waba", []map[string]any{mod("LeadSubmitted", func(e map[string]any) {
			delete(e["user_data"].(map[string]any), "whatsapp_business_account_id")
		})}, 100, 2804116},
		{"top-level value", []map[string]any{mod("Purchase", func(e map[string]any) { e["value"] = 10 })}, 100, 0},
		{"top-level currency", []map[string]any{mod("Purchase", func(e map[string]any) { e["currency"] = "EUR" })}, 100, 0},
		{"purchase without value", []map[string]any{mod("Purchase", func(e map[string]any) { delete(e, "custom_data") })}, 100, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, s, c.events...)
			code, sub := r.code()
			if r.status != 400 || code != c.code || sub != c.sub {
				t.Fatalf("got %d %v", r.status, r.body)
			}
			if tr, _ := r.errField("fbtrace_id").(string); tr == "" {
				t.Fatalf("no fbtrace_id: %v", r.body)
			}
		})
	}
	if r := post(t, s, mod("Purchase", func(e map[string]any) { e["value"] = 1 })); !strings.Contains(fmt.Sprint(r.errField("error_user_msg")), "value") {
		t.Fatalf("top-level value not named: %v", r.body)
	}
	if n := len(s.Events()); n != 0 {
		t.Fatalf("%d events recorded from failed requests", n)
	}
	// event_id is optional.
	if r := post(t, s, mod("LeadSubmitted", func(e map[string]any) { delete(e, "event_id") })); r.status != 200 {
		t.Fatalf("no event_id: %d %v", r.status, r.body)
	}
	if evs := s.Events(); len(evs) != 1 || evs[0].EventID != "" {
		t.Fatalf("events %+v", evs)
	}
}

func TestToken(t *testing.T) {
	s := Start(t, opts())
	for _, tok := range []string{"", "WRONG"} {
		r, err := do(t, nil, "POST", s.URL+"/"+tVersion+"/"+tDataset+"/events", tok, map[string]any{"data": []any{event("LeadSubmitted", time.Now())}})
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := r.code(); r.status != 401 || code != 190 || r.errField("type") != "OAuthException" ||
			r.errField("message") != "Invalid OAuth access token - Cannot parse access token" {
			t.Fatalf("token %q: %d %v", tok, r.status, r.body)
		}
	}
	o := opts()
	o.TokenErrorStatus = 400
	s2 := Start(t, o)
	if r, _ := do(t, nil, "GET", s2.URL+"/"+tVersion+"/"+tWABA+"/dataset", "x", nil); r.status != 400 {
		t.Fatalf("TokenErrorStatus: %d", r.status)
	}
}

func TestPathsAndVersion(t *testing.T) {
	s := Start(t, opts())
	r := post(t, s) // sanity: stub reachable
	_ = r
	r, _ = do(t, nil, "POST", s.URL+"/"+tVersion+"/999/events", tToken, map[string]any{"data": []any{event("LeadSubmitted", time.Now())}})
	if code, sub := r.code(); r.status != 400 || code != 100 || sub != 33 || !strings.Contains(fmt.Sprint(r.errField("message")), "Unsupported post request. Object with ID '999'") {
		t.Fatalf("unknown dataset: %d %v", r.status, r.body)
	}
	r, _ = do(t, nil, "POST", s.URL+"/v1.0/"+tDataset+"/events", tToken, map[string]any{"data": []any{event("LeadSubmitted", time.Now())}})
	if code, sub := r.code(); r.status != 400 || code != 100 || sub != 33 {
		t.Fatalf("wrong version: %d %v", r.status, r.body)
	}
	r, _ = do(t, nil, "GET", s.URL+"/"+tVersion+"/42/dataset", tToken, nil)
	if code, sub := r.code(); code != 100 || sub != 33 || !strings.HasPrefix(fmt.Sprint(r.errField("message")), "Unsupported get request") {
		t.Fatalf("unknown waba: %d %v", r.status, r.body)
	}
}

func TestDataset(t *testing.T) {
	url := func(s *Server) string { return s.URL + "/" + tVersion + "/" + tWABA + "/dataset" }
	s := Start(t, opts())
	if r, _ := do(t, nil, "GET", url(s), tToken, nil); r.status != 200 || r.body["id"] != tDataset {
		t.Fatalf("GET: %v", r.body)
	}
	o := opts()
	o.DatasetAsList = true
	s = Start(t, o)
	if r, _ := do(t, nil, "GET", url(s), tToken, nil); fmt.Sprint(r.body["data"]) != "[map[id:"+tDataset+"]]" {
		t.Fatalf("GET list: %v", r.body)
	}
	o = opts()
	o.Dataset = ""
	s = Start(t, o)
	if r, _ := do(t, nil, "GET", url(s), tToken, nil); r.status != 200 || fmt.Sprint(r.body["data"]) != "[]" {
		t.Fatalf("GET none: %v", r.body)
	}
	r, _ := do(t, nil, "POST", url(s), tToken, nil)
	if r.status != 200 || r.body["id"] != CreatedDatasetID || s.Dataset() != CreatedDatasetID {
		t.Fatalf("POST: %v", r.body)
	}
	if r, _ := do(t, nil, "GET", url(s), tToken, nil); r.body["id"] != CreatedDatasetID {
		t.Fatalf("GET after POST: %v", r.body)
	}
	if r, _ := do(t, nil, "POST", url(s), tToken, nil); r.body["id"] != CreatedDatasetID {
		t.Fatalf("second POST: %v", r.body)
	}
	r, _ = do(t, nil, "POST", s.URL+"/"+tVersion+"/"+CreatedDatasetID+"/events", tToken, map[string]any{"data": []any{event("LeadSubmitted", time.Now())}})
	if r.status != 200 {
		t.Fatalf("events to created dataset: %v", r.body)
	}
}

func TestFaults(t *testing.T) {
	s := Start(t, opts())
	cases := []struct {
		name              string
		f                 Fault
		status, code, sub int
		title             string
	}{
		{"click id", InvalidClickID(), 400, 100, 2804087, "Messaging Event Invalid Ctwa Clid"},
		{"event type", EventTypeNotAllowed(), 400, 100, 2804066, ""},
		{"waba", MissingWABA(), 400, 100, 2804116, ""},
		{"expired", ExpiredToken(), 401, 190, 463, ""},
		{"permission", MissingPermission(), 403, 10, 0, ""},
		{"dataset", WrongDataset(), 400, 100, 33, ""},
		{"region", RestrictedRegion(), 400, 100, 0, "Messaging Event Within Messaging Restrictive Region"},
		{"throttle 4", Throttled(4), 400, 4, 0, ""},
		{"throttle 17", Throttled(17), 400, 17, 0, ""},
		{"throttle 613", Throttled(613), 400, 613, 0, ""},
		{"throttle 80008", Throttled(80008), 400, 80008, 0, ""},
		{"429", TooManyRequests("3"), 429, 4, 0, ""},
		{"500", ServerError(), 500, 1, 0, ""},
		{"503", ServiceUnavailable(), 503, 2, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.Script(c.f)
			r := post(t, s, event("LeadSubmitted", time.Now()))
			code, sub := r.code()
			if r.status != c.status || code != c.code || sub != c.sub {
				t.Fatalf("got %d %v", r.status, r.body)
			}
			if c.title != "" && r.errField("error_user_title") != c.title {
				t.Fatalf("title %v", r.errField("error_user_title"))
			}
			if msg, _ := r.errField("message").(string); msg == "" {
				t.Fatalf("no message: %v", r.body)
			}
		})
	}
	if r := post(t, s); r.status != 400 { // sanity: faults spent, validation back
		t.Fatalf("after faults: %d", r.status)
	}
	s.Script(TooManyRequests("7"))
	if r := post(t, s, event("LeadSubmitted", time.Now())); r.header.Get("Retry-After") != "7" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	s.Script(WrongDataset())
	if r := post(t, s, event("LeadSubmitted", time.Now())); !strings.Contains(fmt.Sprint(r.errField("message")), "'"+tDataset+"'") {
		t.Fatalf("WrongDataset message: %v", r.errField("message"))
	}
	if msg := Throttled(613).Message; msg != "(#613) Calls to this api have exceeded the rate limit." {
		t.Fatal(msg)
	}
	if n := len(s.Events()); n != 0 {
		t.Fatalf("%d events from faulted requests", n)
	}
}

func TestScriptOrderDropHangUpDelay(t *testing.T) {
	s := Start(t, opts())
	now := time.Now()
	three := []map[string]any{event("LeadSubmitted", now), event("QualifiedLead", now), event("Purchase", now)}

	s.Script(ServerError(), Fault{Drop: 1}, Fault{HangUp: true}, Fault{Delay: 300 * time.Millisecond}, InvalidClickID())

	if r := post(t, s, three...); r.status != 500 {
		t.Fatalf("1st: %d", r.status)
	}
	if r := post(t, s, three...); r.status != 200 || r.body["events_received"] != 2.0 {
		t.Fatalf("drop: %d %v", r.status, r.body)
	}
	if evs := s.Events(); len(evs) != 2 || evs[1].EventName != "QualifiedLead" {
		t.Fatalf("events after drop %+v", evs)
	}
	b, _ := json.Marshal(map[string]any{"data": three})
	if _, err := http.Post(s.URL+"/"+tVersion+"/"+tDataset+"/events?access_token="+tToken, "application/json", bytes.NewReader(b)); err == nil {
		t.Fatal("hang-up: no client error")
	}
	client := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := do(t, client, "POST", s.URL+"/"+tVersion+"/"+tDataset+"/events", tToken, map[string]any{"data": three}); err == nil {
		t.Fatal("delay: no client timeout")
	}
	if code, sub := post(t, s, three...).code(); code != 100 || sub != 2804087 {
		t.Fatalf("5th: %d/%d", code, sub)
	}
	if r := post(t, s, three...); r.status != 200 || r.body["events_received"] != 3.0 {
		t.Fatalf("after script: %d %v", r.status, r.body)
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d", s.Pending())
	}
	// The delayed request was still processed after the client gave up (as Meta may):
	// 2 (drop) + 3 (delayed) + 3 (last), once its 300 ms have passed.
	for deadline := time.Now().Add(5 * time.Second); len(s.Events()) < 8 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(s.Events()); n != 8 {
		t.Fatalf("events %d", n)
	}
	reqs := s.EventRequests()
	if len(reqs) != 6 || reqs[2].Status != 0 || reqs[0].Status != 500 || reqs[5].Status != 200 {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestConcurrent(t *testing.T) {
	s := Start(t, opts())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, _ := json.Marshal(map[string]any{"data": []any{event("LeadSubmitted", time.Now())}})
		for range 20 {
			resp, err := http.Post(s.URL+"/"+tVersion+"/"+tDataset+"/events?access_token="+tToken, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}
	}()
	for range 50 {
		_ = s.Requests()
		_ = s.Events()
	}
	<-done
	if n := len(s.Events()); n != 20 {
		t.Fatalf("events %d", n)
	}
}
