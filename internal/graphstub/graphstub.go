// Package graphstub is a test stub of Meta's Graph API for the Conversions API for
// Business Messaging: the dataset of a WhatsApp Business Account
// (GET/POST /{version}/{waba_id}/dataset) and the events edge
// (POST /{version}/{dataset_id}/events). It listens on 127.0.0.1 over real HTTP so the
// sidecar's sender is tested end to end, and it answers with Graph's error envelope
//
//	{"error":{"message","type","code","error_subcode","error_user_title","error_user_msg","is_transient","fbtrace_id"}}
//
// Where each documented answer comes from:
//   - Request and success shapes, the 1 000-event batch limit, the allowlist of event
//     names, seconds in event_time, the 7-day limit failing the whole request, and the
//     codes 100/2804066 (event type not allowed), 100/2804087 "Messaging Event Invalid
//     Ctwa Clid", 100/2804116 (missing whatsapp_business_account_id / page_id), 100/33
//     (wrong dataset or no access), 190 (token), "Messaging Event Within Messaging
//     Restrictive Region" (EU/Japan pages) and throttling 4/17/613/80000–80014/429:
//     issue 15 and SPEC §9, from Meta's "Conversions API for Business Messaging" guide
//     (developers.facebook.com/docs/marketing-api/conversions-api/business-messaging).
//   - The envelope, codes 1, 2, 4, 17, 190 (subcode 463 = expired) and their messages:
//     Graph API "Handling Errors" (developers.facebook.com/docs/graph-api/guides/error-handling).
//   - Messages of 613 and 80000–80014: Graph API "Rate Limits"
//     (developers.facebook.com/docs/graph-api/overview/rate-limiting) and the Marketing
//     API reference tables ("Calls to this api have exceeded the rate limit.").
//   - HTTP 401 for code 190: the WhatsApp Cloud API "error codes" page (Cloud API is
//     Graph on the same host) lists 190 with 401 Unauthorized. Plain Graph nodes have been
//     seen answering 400 for 190, so a sender must classify by code, not status;
//     Options.TokenErrorStatus lets a test pick 400.
//
// Not confirmed in Meta's documentation and chosen here (each marked "unconfirmed" at the
// place it is used): subcode 2804003 and title "Event Timestamp Too Old" (seen in public
// implementations only), the answer to an event_time in the future, the titles of 2804066
// and 2804116, the code/subcode of the restrictive-region error (code 100, no subcode),
// the messages for a missing, empty or oversized data array, and the answer to an
// unsupported version.
package graphstub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/graphwire"
)

// MaxEvents is the most events one request may carry.
const MaxEvents = 1000

// CreatedDatasetID is the id a POST /{waba}/dataset creates when the WABA has none.
const CreatedDatasetID = "1000000000000001"

// MaxAge is how old an event_time may be; one older event fails the whole request.
const MaxAge = 7 * 24 * time.Hour

// MaxFuture is how far past the stub's clock an event_time may be. Unconfirmed: Meta
// rejects events "in the future" without a documented tolerance; the stub allows one hour
// of clock skew, so an event_time in milliseconds (year ~57 000) is always rejected.
const MaxFuture = time.Hour

// AllowedEvents is Meta's business-messaging allowlist of event names (SPEC §9).
var AllowedEvents = []string{
	"LeadSubmitted", "QualifiedLead", "Purchase", "AddToCart", "InitiateCheckout",
	"ViewContent", "OrderCreated", "OrderShipped", "OrderDelivered", "OrderCanceled",
	"OrderReturned", "CartAbandoned", "RatingProvided", "ReviewProvided",
}

// Options configures a stub.
type Options struct {
	// Version is the only Graph version served, e.g. "v23.0". Another version gets
	// 400 GraphMethodException 100/33 "Unsupported … request" naming the segment
	// (unconfirmed: what Graph answers for a version that does not exist).
	Version string
	// Token is the only valid access token (Authorization: Bearer, or access_token in
	// the query or a form body). Anything else, or none, gets 190 "Invalid OAuth access
	// token - Cannot parse access token".
	Token string
	// WABA is the WhatsApp Business Account whose dataset edge exists.
	WABA string
	// Dataset is the WABA's dataset id; "" means none until POST /{waba}/dataset
	// creates CreatedDatasetID.
	Dataset string
	// DatasetAsList makes GET /{waba}/dataset answer {"data":[{"id":…}]} instead of {"id":…}.
	DatasetAsList bool
	// TokenErrorStatus is the HTTP status of a 190 answer for a bad token; 0 means 401.
	TokenErrorStatus int
	// Now is the stub's clock for the event_time checks; nil means time.Now.
	Now func() time.Time
}

// Fault is one scripted answer to a POST /{version}/{dataset}/events.
type Fault struct {
	// Status is the HTTP status; 0 means 400 when Code != 0. With Code == 0 and
	// Status != 0 the stub answers that status with a plain-text body (a proxy's error).
	Status        int
	Code, Subcode int
	// Type defaults to "OAuthException".
	Type               string
	Message, UserTitle string
	// UserMsg is error_user_msg, if any.
	UserMsg string
	// Transient sets is_transient in the error object.
	Transient bool
	// RetryAfter is the Retry-After header value, if set.
	RetryAfter string
	// Drop answers 200 with events_received = len(data) - Drop; the request is still
	// validated normally (an invalid one gets its error and the fault is spent).
	Drop int
	// Delay is slept before answering (or hanging up); a client that gives up ends the
	// sleep, but the request is then still processed and recorded like Meta may do
	// (its events count in Events() if valid): the at-least-once case of a timeout.
	Delay time.Duration
	// HangUp closes the connection without an answer.
	HangUp bool
}

func (f Fault) isError() bool { return f.Code != 0 || f.Status != 0 }

// InvalidClickID is Meta's refusal of a ctwa_clid (issue 15).
func InvalidClickID() Fault {
	return Fault{Code: 100, Subcode: 2804087, Message: "Invalid parameter",
		UserTitle: "Messaging Event Invalid Ctwa Clid",
		UserMsg:   "The ctwa_clid in user_data is not a valid click id for this business."}
}

// EventTypeNotAllowed is 100/2804066, an event_name outside the business-messaging
// allowlist. Title unconfirmed (seen in a public SDK: "Messaging Event Invalid Event Type").
func EventTypeNotAllowed() Fault {
	return Fault{Code: 100, Subcode: 2804066, Message: "Invalid parameter",
		UserTitle: "Messaging Event Invalid Event Type",
		UserMsg:   "This event_name is not allowed for action_source business_messaging."}
}

// MissingWABA is 100/2804116, user_data without whatsapp_business_account_id (or page_id).
// Title unconfirmed.
func MissingWABA() Fault {
	return Fault{Code: 100, Subcode: 2804116, Message: "Invalid parameter",
		UserTitle: "Messaging Event Missing Business Account Id",
		UserMsg:   "user_data must contain whatsapp_business_account_id or page_id."}
}

// ExpiredToken is 190/463 (Graph "Handling Errors": 463 = expired) with HTTP 401, the
// status the WhatsApp Cloud API error-code table gives for 190.
func ExpiredToken() Fault {
	return Fault{Status: http.StatusUnauthorized, Code: 190, Subcode: 463,
		Message: "Error validating access token: Session has expired."}
}

// MissingPermission is (#10), a token without whatsapp_business_manage_events; HTTP 403
// as the WhatsApp Cloud API table gives for code 10.
func MissingPermission() Fault {
	return Fault{Status: http.StatusForbidden, Code: 10,
		Message: "(#10) Application does not have permission for this action"}
}

// WrongDataset is 100/33: the dataset does not exist or the token cannot reach it. The
// message names the object of the request's path ("Unsupported post request. Object with
// ID '<dataset>' does not exist, …").
func WrongDataset() Fault {
	return Fault{Code: 100, Subcode: 33, Type: "GraphMethodException"}
}

// RestrictedRegion is the refusal of events of a page registered in the EU or Japan.
// Unconfirmed: Meta documents only the title; code 100 without a subcode is chosen here.
func RestrictedRegion() Fault {
	return Fault{Code: 100, Message: "Invalid parameter",
		UserTitle: "Messaging Event Within Messaging Restrictive Region",
		UserMsg:   "Events cannot be sent for conversations in a messaging-restricted region."}
}

// Throttled is a Graph rate-limit error: HTTP 400 (Graph answers 400 for these) with the
// documented message of code 4, 17, 32, 613 or 80000–80014.
func Throttled(code int) Fault {
	return Fault{Status: http.StatusBadRequest, Code: code, Message: graphwire.ThrottleMessage(code), Transient: true}
}

// TooManyRequests is HTTP 429 with code 4 and Retry-After (empty: no header).
func TooManyRequests(retryAfter string) Fault {
	return Fault{Status: http.StatusTooManyRequests, Code: 4, Message: graphwire.ThrottleMessage(4),
		RetryAfter: retryAfter, Transient: true}
}

// ServerError is HTTP 500, code 1 "An unknown error occurred".
func ServerError() Fault {
	return Fault{Status: http.StatusInternalServerError, Code: 1,
		Message: "An unknown error occurred", Transient: true}
}

// ServiceUnavailable is HTTP 503, code 2 "Service temporarily unavailable".
func ServiceUnavailable() Fault {
	return Fault{Status: http.StatusServiceUnavailable, Code: 2,
		Message: "Service temporarily unavailable", Transient: true}
}

// Request is one request the stub received.
type Request struct {
	Method, Path, Query, Authorization string
	Body                               []byte
	// Status is the HTTP status answered; 0 for a hang-up.
	Status int
}

// Event is one event as received in an answered-with-success request.
type Event struct {
	EventName                               string
	EventTime                               int64
	EventID, ActionSource, MessagingChannel string
	UserData                                map[string]any
	CustomData                              map[string]any
	// Raw is the whole event object.
	Raw map[string]any
	// TestEventCode is the request's test_event_code ("" when absent).
	TestEventCode string
}

// Server is a running stub.
type Server struct {
	// URL is http://127.0.0.1:port, no trailing slash.
	URL string

	opts Options
	srv  *http.Server

	mu      sync.Mutex
	dataset string
	faults  []Fault
	reqs    []Request
	events  []Event
}

// Start listens on 127.0.0.1:0 and stops on t.Cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("graphstub: listen: %v", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{URL: "http://" + ln.Addr().String(), opts: o, dataset: o.Dataset}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Script queues faults for the next POSTs to /{version}/{dataset}/events, one per
// request, in order; after them requests are answered normally.
func (s *Server) Script(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// Pending is the number of scripted faults not yet spent.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// Dataset is the WABA's dataset id now ("" if none was configured or created).
func (s *Server) Dataset() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataset
}

// Requests is every request received, in order (a copy).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// EventRequests is the requests to the events edge only.
func (s *Server) EventRequests() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/events") {
			out = append(out, r)
		}
	}
	return out
}

// Events is every event of every request answered with success, in order; with Drop, the
// last Drop events of that request are left out.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// answer is what the stub writes back.
type answer struct {
	status int
	header map[string]string
	body   []byte
}

func jsonAnswer(status int, v any) answer {
	b, _ := json.Marshal(v)
	return answer{status: status, body: b}
}

func faultAnswer(f Fault) answer {
	if f.Code == 0 {
		return answer{status: f.Status, header: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
			body: []byte(http.StatusText(f.Status) + "\n")}
	}
	st := f.Status
	if st == 0 {
		st = http.StatusBadRequest
	}
	typ := f.Type
	if typ == "" {
		typ = "OAuthException"
	}
	a := jsonAnswer(st, map[string]graphwire.Error{"error": {
		Message: f.Message, Type: typ, Code: f.Code, ErrorSubcode: f.Subcode, IsTransient: f.Transient,
		ErrorUserTitle: f.UserTitle, ErrorUserMsg: f.UserMsg, FBTraceID: graphwire.TraceID(),
	}})
	a.header = map[string]string{}
	if f.RetryAfter != "" {
		a.header["Retry-After"] = f.RetryAfter
	}
	if f.Code == 190 {
		a.header["WWW-Authenticate"] = `OAuth "Facebook Platform" "invalid_token" "` + f.Message + `"`
	}
	return a
}

func invalidParam(sub int, title, msg string) answer {
	return faultAnswer(Fault{Code: 100, Subcode: sub, Message: "Invalid parameter", UserTitle: title, UserMsg: msg})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization"), Body: body}

	var fault *Fault
	if r.Method == http.MethodPost && strings.HasSuffix(strings.TrimRight(r.URL.Path, "/"), "/events") {
		s.mu.Lock()
		if len(s.faults) > 0 {
			f := s.faults[0]
			s.faults = s.faults[1:]
			fault = &f
		}
		s.mu.Unlock()
	}

	if fault != nil && fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
		}
	}
	if fault != nil && fault.HangUp {
		s.record(rec, nil)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // fallback: net/http drops the connection
	}

	var a answer
	var evs []Event
	if fault != nil && fault.isError() {
		f := *fault
		if f.Code == 100 && f.Subcode == 33 && f.Message == "" {
			f.Message = graphwire.Unsupported(strings.ToLower(r.Method), pathObject(r.URL.Path))
		}
		a = faultAnswer(f)
	} else {
		drop := 0
		if fault != nil {
			drop = fault.Drop
		}
		a, evs = s.handle(r, body, drop)
	}
	rec.Status = a.status
	s.record(rec, evs)

	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=UTF-8")
	}
	for k, v := range a.header {
		h.Set(k, v)
	}
	h.Set("X-FB-Trace-ID", graphwire.TraceID())
	w.WriteHeader(a.status)
	w.Write(a.body) //nolint:errcheck
}

// pathObject is the object id of /{version}/{object}/….
func pathObject(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

func (s *Server) record(rec Request, evs []Event) {
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.events = append(s.events, evs...)
	s.mu.Unlock()
}

// token finds the access token like Graph: bearer header, then query, then form body.
func token(r *http.Request, body []byte) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		if len(a) > 6 && strings.EqualFold(a[:6], "oauth ") {
			return strings.TrimSpace(a[6:])
		}
		return ""
	}
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t
	}
	if isForm(r) {
		if v, err := url.ParseQuery(string(body)); err == nil {
			return v.Get("access_token")
		}
	}
	return ""
}

func isForm(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/x-www-form-urlencoded")
}

func (s *Server) handle(r *http.Request, body []byte, drop int) (answer, []Event) {
	if tok := token(r, body); tok == "" || tok != s.opts.Token {
		st := s.opts.TokenErrorStatus
		if st == 0 {
			st = http.StatusUnauthorized
		}
		return faultAnswer(Fault{Status: st, Code: 190,
			Message: "Invalid OAuth access token - Cannot parse access token"}), nil
	}
	method := strings.ToLower(r.Method)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 0 || parts[0] == "" {
		return faultAnswer(Fault{Code: 100, Message: "Unsupported " + method + " request."}), nil
	}
	if parts[0] != s.opts.Version {
		// Unconfirmed: Graph's answer to a version it does not serve.
		return faultAnswer(Fault{Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: graphwire.Unsupported(method, parts[0])}), nil
	}
	parts = parts[1:]
	if len(parts) == 0 {
		return faultAnswer(Fault{Code: 100, Message: "Unsupported " + method + " request."}), nil
	}
	obj := parts[0]
	s.mu.Lock()
	ds := s.dataset
	s.mu.Unlock()
	known := obj == s.opts.WABA || (ds != "" && obj == ds)
	if !known {
		return faultAnswer(Fault{Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: graphwire.Unsupported(method, obj)}), nil
	}
	if len(parts) != 2 {
		if len(parts) == 1 && r.Method == http.MethodGet {
			return jsonAnswer(http.StatusOK, map[string]string{"id": obj}), nil
		}
		return faultAnswer(Fault{Code: 2500, Message: "Unknown path components: /" + strings.Join(parts[1:], "/")}), nil
	}
	edge := parts[1]
	switch {
	case obj == s.opts.WABA && edge == "dataset" && r.Method == http.MethodGet:
		if ds == "" {
			return jsonAnswer(http.StatusOK, map[string][]any{"data": {}}), nil
		}
		if s.opts.DatasetAsList {
			return jsonAnswer(http.StatusOK, map[string][]map[string]string{"data": {{"id": ds}}}), nil
		}
		return jsonAnswer(http.StatusOK, map[string]string{"id": ds}), nil
	case obj == s.opts.WABA && edge == "dataset" && r.Method == http.MethodPost:
		s.mu.Lock()
		if s.dataset == "" {
			s.dataset = CreatedDatasetID
		}
		ds = s.dataset
		s.mu.Unlock()
		return jsonAnswer(http.StatusOK, map[string]string{"id": ds}), nil
	case obj == ds && edge == "events" && r.Method == http.MethodPost:
		return s.events1(r, body, drop)
	case (obj == s.opts.WABA && edge == "dataset") || (obj == ds && edge == "events"):
		return faultAnswer(Fault{Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: graphwire.Unsupported(method, obj)}), nil
	}
	return faultAnswer(Fault{Code: 2500, Message: "Unknown path components: /" + edge}), nil
}

// events1 validates and answers one POST /{dataset}/events.
func (s *Server) events1(r *http.Request, body []byte, drop int) (answer, []Event) {
	var rawData json.RawMessage
	var testCode string
	if isForm(r) {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return faultAnswer(Fault{Code: 100, Message: "(#100) param data must be an array."}), nil
		}
		if d := v.Get("data"); d != "" {
			rawData = json.RawMessage(d)
		}
		testCode = v.Get("test_event_code")
	} else {
		var req map[string]json.RawMessage
		if err := json.Unmarshal(body, &req); err != nil {
			return faultAnswer(Fault{Code: 100, Message: "(#100) param data must be an array."}), nil
		}
		rawData = req["data"]
		if tc, ok := req["test_event_code"]; ok {
			if err := json.Unmarshal(tc, &testCode); err != nil {
				return faultAnswer(Fault{Code: 100, Message: "(#100) param test_event_code must be a string."}), nil
			}
		}
	}
	// Unconfirmed: the exact messages Graph gives for a missing, empty or oversized data array.
	if len(rawData) == 0 || string(rawData) == "null" {
		return faultAnswer(Fault{Code: 100, Message: "(#100) The parameter data is required"}), nil
	}
	var data []json.RawMessage
	if err := json.Unmarshal(rawData, &data); err != nil {
		return faultAnswer(Fault{Code: 100, Message: "(#100) param data must be an array."}), nil
	}
	if len(data) == 0 {
		return faultAnswer(Fault{Code: 100, Message: "(#100) param data must be a non-empty array."}), nil
	}
	if len(data) > MaxEvents {
		return faultAnswer(Fault{Code: 100, Message: fmt.Sprintf(
			"(#100) param data must be an array of at most %d elements.", MaxEvents)}), nil
	}
	now := s.opts.Now()
	evs := make([]Event, 0, len(data))
	for i, raw := range data {
		ev, a, ok := checkEvent(i, raw, now)
		if !ok {
			return a, nil // one invalid event fails the whole request
		}
		ev.TestEventCode = testCode
		evs = append(evs, ev)
	}
	received := len(evs)
	if drop > 0 {
		received -= min(drop, received)
		evs = evs[:received]
	}
	return jsonAnswer(http.StatusOK, map[string]any{
		"events_received": received, "messages": []string{}, "fbtrace_id": graphwire.TraceID(),
	}), evs
}

func checkEvent(i int, raw json.RawMessage, now time.Time) (Event, answer, bool) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Event{}, invalidParam(0, "Invalid Event", fmt.Sprintf("The event at index %d is not an object.", i)), false
	}
	bad := func(sub int, title, format string, a ...any) (Event, answer, bool) {
		return Event{}, invalidParam(sub, title, fmt.Sprintf("Event at index %d: ", i)+fmt.Sprintf(format, a...)), false
	}
	str := func(k string) (string, bool) { v, ok := m[k].(string); return v, ok }

	name, ok := str("event_name")
	if !ok || name == "" {
		return bad(0, "Missing Event Name", "the parameter event_name is required.")
	}
	et, ok := eventTime(m["event_time"])
	if !ok {
		return bad(0, "Missing Event Time", "the parameter event_time is required and must be a unix time in seconds.")
	}
	t := time.Unix(et, 0)
	if t.After(now.Add(MaxFuture)) {
		// Unconfirmed title and no subcode: Meta rejects future timestamps (milliseconds
		// read as seconds land here) but the stub's rule is its own: > now + MaxFuture.
		return bad(0, "Event Timestamp In Future", "event_time %d is in the future; send unix seconds.", et)
	}
	if t.Before(now.Add(-MaxAge)) {
		// Unconfirmed: subcode 2804003 / "Event Timestamp Too Old" come from public
		// implementations, not Meta's pages.
		return bad(2804003, "Event Timestamp Too Old", "event_time %d is more than 7 days in the past.", et)
	}
	if v, _ := str("action_source"); v != "business_messaging" {
		return bad(0, "Invalid Action Source", "action_source must be business_messaging, got %q.", v)
	}
	if v, _ := str("messaging_channel"); v != "whatsapp" {
		return bad(0, "Invalid Messaging Channel", "messaging_channel must be whatsapp, got %q.", v)
	}
	allowed := false
	for _, a := range AllowedEvents {
		allowed = allowed || a == name
	}
	if !allowed {
		f := EventTypeNotAllowed()
		return bad(f.Subcode, f.UserTitle, "event_name %q is not allowed for business_messaging.", name)
	}
	for _, k := range []string{"value", "currency"} {
		if _, top := m[k]; top {
			return bad(0, "Invalid Parameter", "%s is not an event parameter; send it in custom_data.%s.", k, k)
		}
	}
	var cd map[string]any
	if v, present := m["custom_data"]; present {
		if cd, ok = v.(map[string]any); !ok {
			return bad(0, "Invalid Parameter", "custom_data must be an object.")
		}
	}
	if name == "Purchase" {
		// Meta's event reference: value and currency are required for Purchase.
		cur, _ := cd["currency"].(string)
		_, isNum := cd["value"].(float64)
		if len(cur) != 3 || !isNum {
			return bad(0, "Invalid Parameter", "a Purchase needs custom_data.value (number) and custom_data.currency (ISO 4217).")
		}
	}
	ud, ok := m["user_data"].(map[string]any)
	if !ok {
		ud = nil
	}
	if clid, _ := ud["ctwa_clid"].(string); clid == "" {
		f := InvalidClickID()
		return bad(f.Subcode, f.UserTitle, "user_data.ctwa_clid is missing or empty.")
	}
	waba, _ := ud["whatsapp_business_account_id"].(string)
	page, _ := ud["page_id"].(string)
	if waba == "" && page == "" {
		f := MissingWABA()
		return bad(f.Subcode, f.UserTitle, "user_data.whatsapp_business_account_id is missing.")
	}
	id, _ := str("event_id") // Meta accepts an event without event_id
	as, _ := str("action_source")
	mc, _ := str("messaging_channel")
	return Event{EventName: name, EventTime: et, EventID: id, ActionSource: as, MessagingChannel: mc,
		UserData: ud, CustomData: cd, Raw: m}, answer{}, true
}

// eventTime accepts an integral JSON number or a string of digits, as Graph does.
func eventTime(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		if x <= 0 || x != math.Trunc(x) || x > math.MaxInt64/2 {
			return 0, false
		}
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil && n > 0
	}
	return 0, false
}
