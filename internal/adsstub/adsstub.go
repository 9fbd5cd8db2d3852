// Package adsstub is a test stub of Meta's Marketing API for daily per-ad spend (SPEC §10,
// issue 16): the ad account node (GET /{version}/act_{id}), its insights edge at ad level
// with one row per ad and day (GET and, as an async report, POST /{version}/act_{id}/insights),
// the report run (GET /{version}/{report_run_id} and /{report_run_id}/insights) and the ads
// edge with effective statuses (GET /{version}/act_{id}/ads). It listens on 127.0.0.1 over
// real HTTP and answers with Graph's error envelope
//
//	{"error":{"message","type","code","error_subcode","error_user_title","error_user_msg","fbtrace_id","is_transient"}}
//
// Where each documented answer comes from:
//   - Request and row shapes, numbers as strings, paging.cursors/paging.next, the async
//     report flow and its statuses, the usage headers and the throttle codes: issue 16 and
//     SPEC §10 (from Meta's Marketing API Insights guide and public connectors).
//   - 100/1504018, 2/1504038 ("Request Timed Out") and 4/1504022, 4/1504039 ("Too Many
//     API Requests"), their titles and user messages: Meta's "Ads Insights API Error Codes"
//     table (developers.facebook.com/documentation/ads-commerce/marketing-api/insights/error-codes).
//   - 17/2446079 "User request limit reached" and 613/1487742 "There have been too many
//     calls from this ad-account. Please wait a bit and try again.": Marketing API "Rate
//     Limiting" (developers.facebook.com/docs/marketing-api/overview/rate-limiting).
//   - The envelope, 190 and subcode 463 (expired): Graph API "Handling Errors".
//   - error_code/error_message/error_subcode/error_user_title/error_user_msg on a failed
//     report run: Meta's developer blog "Enhanced Error Messaging for Ads Insights Async
//     API" (2026-01-08, from v25.0); the stub sends them from every version.
//
// Not confirmed in Meta's documentation and chosen here (each marked "unconfirmed" where it
// is used): the HTTP status of the insights timeouts (500), the message text of code 4 for
// the insights subcodes, the answer to an unsupported version, the messages naming a bad
// level/time_increment/time_range/fields, the 37-month error (3018), the answer to
// /{report_run_id}/insights before the job completed, the sign of the failed-report code
// (-2 as printed in the table), the empty answer ({"data":[]} without paging) and the
// cursor format (Meta's cursors are opaque base64; the stub's are too).
package adsstub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/graphwire"
)

// DefaultPageSize is the most rows per page when Options.PageSize is 0.
const DefaultPageSize = 500

// RetentionMonths is how far back insights reach (37 months).
const RetentionMonths = 37

// Async report statuses, as Meta spells them.
const (
	JobNotStarted = "Job Not Started"
	JobStarted    = "Job Started"
	JobRunning    = "Job Running"
	JobCompleted  = "Job Completed"
	JobFailed     = "Job Failed"
	JobSkipped    = "Job Skipped"
)

// InsightsFields is every insights field the stub serves.
var InsightsFields = []string{
	"ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name",
	"account_currency", "account_id", "spend", "impressions", "inline_link_clicks",
	"date_start", "date_stop",
}

// Options configures a stub.
type Options struct {
	// Version is the only Graph version served, e.g. "v23.0". Another version gets
	// 400 GraphMethodException 100/33 "Unsupported get request. …" naming the segment
	// (unconfirmed: what Graph answers for a version that does not exist).
	Version string
	// Token is the only valid access token (Authorization: Bearer, access_token in the
	// query, or in a POST form body). Anything else gets HTTP 400 OAuthException 190
	// "Invalid OAuth access token - Cannot parse access token". SetToken changes it.
	Token string
	// Accounts are the ad accounts the token reaches; any other act_… gets 100/33.
	Accounts []Account
	// PageSize is the most rows per page of insights and ads (0: DefaultPageSize). A
	// request's limit lowers it, never raises it.
	PageSize int
	// AsyncPolls is how many polls of a report run answer before it is done: the first
	// "Job Not Started", the others "Job Running"; poll AsyncPolls+1 answers "Job
	// Completed" (or "Job Failed" with AsyncFail). 0 means 2; negative means done at once.
	AsyncPolls int
	// AsyncFail makes every report run end in "Job Failed".
	AsyncFail bool
	// Now is the stub's clock (Request.At, the 37-month limit); nil means time.Now.
	Now func() time.Time
}

// Account is one ad account.
type Account struct {
	// ID is the digits, without "act_".
	ID string
	// Name, Currency (ISO 4217) and Timezone (IANA timezone_name, e.g. "Europe/Berlin").
	Name, Currency, Timezone string
	Ads                      []Ad
	// Days is the delivery: one row per ad and day; a day with no delivery has no row.
	Days []DayRow
}

// Ad is one ad with its ad set and campaign; statuses are effective_status values such as
// ACTIVE, PAUSED, CAMPAIGN_PAUSED, ADSET_PAUSED, ARCHIVED.
type Ad struct {
	ID, Name, Status                         string
	AdSetID, AdSetName, AdSetStatus          string
	CampaignID, CampaignName, CampaignStatus string
	// Created and CampaignCreated are created_time as Graph writes datetimes
	// ("2026-03-01T10:00:00+0000"); "" leaves the field out of the answer.
	Created, CampaignCreated string
}

// DayRow is one ad's delivery on one day.
type DayRow struct {
	AdID string
	// Date is YYYY-MM-DD in the account's time zone.
	Date string
	// Spend ("20.00"), Impressions ("1234") and Clicks (inline_link_clicks, "41") are
	// sent as they are: strings, like Meta.
	Spend, Impressions, Clicks string
}

// Fault is one scripted answer.
type Fault struct {
	// Status is the HTTP status; 0 means 400. With Code == 0 the stub answers Status
	// with a plain-text body (a proxy's error).
	Status        int
	Code, Subcode int
	// Type defaults to "OAuthException".
	Type                        string
	Message, UserTitle, UserMsg string
	// Transient sets is_transient.
	Transient bool
	// Headers are added to this answer (e.g. usage headers at 100 %).
	Headers map[string]string
	// AfterPage > 0 makes the fault hit only an insights page request (act_…/insights or
	// {report_run_id}/insights, GET) for page AfterPage+1; other requests pass it by and
	// are answered normally while it waits at the head of the script.
	AfterPage int
}

// Throttled is a rate-limit error (HTTP 400, is_transient) with Meta's message for code
// 4 (subcodes 1504022, 1504039: insights), 17 (2446079), 613 (1487742), 32 or
// 80000–80014. Subcode 0 means none.
func Throttled(code, subcode int) Fault {
	f := Fault{Status: http.StatusBadRequest, Code: code, Subcode: subcode,
		Message: graphwire.ThrottleMessage(code), Transient: true}
	switch {
	case code == 4 && (subcode == 1504022 || subcode == 1504039):
		// Title and user message from the Ads Insights error table; the message is
		// Graph's text for code 4 (unconfirmed for these subcodes).
		f.UserTitle = "Too Many API Requests"
		f.UserMsg = "Your app has exceeded the allowed number of API requests. Wait before retrying."
	case code == 613 && subcode == 1487742:
		f.Message = "There have been too many calls from this ad-account. Please wait a bit and try again."
	}
	return f
}

// InsightsTimeout is Meta's insights timeout: subcode 1504018 (code 100) or 1504038
// (code 2), "Please reduce the amount of data you're asking for, then retry your request"
// with the table's title "Request Timed Out". HTTP 500 is unconfirmed (public reports
// show 500 for this message); classify by code and subcode.
func InsightsTimeout(subcode int) Fault {
	code := 100
	if subcode == 1504038 {
		code = 2
	}
	return Fault{Status: http.StatusInternalServerError, Code: code, Subcode: subcode,
		Message:   "Please reduce the amount of data you're asking for, then retry your request",
		UserTitle: "Request Timed Out",
		UserMsg:   "Your request timed out. Try a smaller date range, fetch less data, or use async jobs.",
		Transient: true}
}

// ExpiredToken is 190/463 with HTTP 400 (what Graph answers on Marketing API nodes).
func ExpiredToken() Fault {
	return Fault{Status: http.StatusBadRequest, Code: 190, Subcode: 463,
		Message: "Error validating access token: Session has expired."}
}

// Request is one request the stub received.
type Request struct {
	Method, Path string
	// Query is the URL query; for a form POST the body's values are merged in.
	Query         url.Values
	Authorization string
	At            time.Time
	// Status is the HTTP status answered.
	Status int
}

// Server is a running stub.
type Server struct {
	// URL is http://127.0.0.1:port, no trailing slash.
	URL string

	opts Options
	srv  *http.Server

	mu       sync.Mutex
	token    string
	accounts map[string]*Account
	faults   []Fault
	usage    map[string]string
	reqs     []Request
	runs     map[string]*reportRun
	nextRun  int
}

type reportRun struct {
	id, account string
	rows        []map[string]any
	polls       int
}

// Start listens on 127.0.0.1:0 and stops on t.Cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// New listens on 127.0.0.1:0 and serves until Close: Start without a test, for a
// program that needs a Marketing API (the bench's -spend up).
func New(o Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("adsstub: listen: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.AsyncPolls == 0 {
		o.AsyncPolls = 2
	}
	s := &Server{URL: "http://" + ln.Addr().String(), opts: o, token: o.Token,
		accounts: map[string]*Account{}, runs: map[string]*reportRun{}}
	for _, a := range o.Accounts {
		a.Ads = append([]Ad(nil), a.Ads...)
		a.Days = append([]DayRow(nil), a.Days...)
		s.accounts[strings.TrimPrefix(a.ID, "act_")] = &a
	}
	s.opts.Accounts = nil
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	return s, nil
}

// Close stops listening and closes every connection at once, requests in flight too.
func (s *Server) Close() error { return s.srv.Close() }

// SetDay replaces the row of (row.AdID, row.Date) in the account, or adds it: Meta
// revising a day. acct is with or without "act_". An unknown account is created empty.
func (s *Server) SetDay(acct string, row DayRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account(acct)
	for i := range a.Days {
		if a.Days[i].AdID == row.AdID && a.Days[i].Date == row.Date {
			a.Days[i] = row
			return
		}
	}
	a.Days = append(a.Days, row)
}

// DeleteDay removes the row of (adID, date), as when Meta finds no delivery after all.
func (s *Server) DeleteDay(acct, adID, date string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account(acct)
	for i := range a.Days {
		if a.Days[i].AdID == adID && a.Days[i].Date == date {
			a.Days = append(a.Days[:i], a.Days[i+1:]...)
			return
		}
	}
}

// SetAd replaces the ad of the same ID in the account, or adds it (a status change).
func (s *Server) SetAd(acct string, ad Ad) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account(acct)
	for i := range a.Ads {
		if a.Ads[i].ID == ad.ID {
			a.Ads[i] = ad
			return
		}
	}
	a.Ads = append(a.Ads, ad)
}

// account must be called with s.mu held.
func (s *Server) account(acct string) *Account {
	id := strings.TrimPrefix(acct, "act_")
	a := s.accounts[id]
	if a == nil {
		a = &Account{ID: id}
		s.accounts[id] = a
	}
	return a
}

// SetToken makes tok the only valid token from now on (the old one gets 190).
func (s *Server) SetToken(tok string) {
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
}

// SetUsage sets headers added to every answer from now on (nil: none), e.g.
// X-Business-Use-Case-Usage, X-Ad-Account-Usage, X-FB-Ads-Insights-Throttle with JSON
// string values. A Fault's Headers win over these.
func (s *Server) SetUsage(headers map[string]string) {
	m := make(map[string]string, len(headers))
	for k, v := range headers {
		m[k] = v
	}
	s.mu.Lock()
	s.usage = m
	s.mu.Unlock()
}

// Script queues faults for the next requests, one per request, in order, on every
// endpoint (report-run polls included); a fault with AfterPage waits at the head for its
// page. A fault answers before the token and the path are checked. After them requests
// are answered normally.
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

// Requests is every request received, in order (a copy).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.Query = cloneValues(r.Query)
		out[i] = r
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

type answer struct {
	status int
	header map[string]string
	body   []byte
}

func jsonAnswer(v any) answer {
	b, _ := json.Marshal(v)
	return answer{status: http.StatusOK, body: b}
}

func faultAnswer(f Fault) answer {
	st := f.Status
	if st == 0 {
		st = http.StatusBadRequest
	}
	h := map[string]string{}
	for k, v := range f.Headers {
		h[k] = v
	}
	if f.Code == 0 {
		h["Content-Type"] = "text/plain; charset=utf-8"
		return answer{status: st, header: h, body: []byte(http.StatusText(st) + "\n")}
	}
	typ := f.Type
	if typ == "" {
		typ = "OAuthException"
	}
	b, _ := json.Marshal(map[string]graphwire.Error{"error": {
		Message: f.Message, Type: typ, Code: f.Code, ErrorSubcode: f.Subcode, IsTransient: f.Transient,
		ErrorUserTitle: f.UserTitle, ErrorUserMsg: f.UserMsg, FBTraceID: graphwire.TraceID(),
	}})
	if f.Code == 190 {
		h["WWW-Authenticate"] = `OAuth "Facebook Platform" "invalid_token" "` + f.Message + `"`
	}
	return answer{status: st, header: h, body: b}
}

func param(msg string) answer {
	return faultAnswer(Fault{Code: 100, Message: msg})
}

func unsupportedAnswer(method, obj string) answer {
	return faultAnswer(Fault{Code: 100, Subcode: 33, Type: "GraphMethodException",
		Message: graphwire.Unsupported(strings.ToLower(method), obj)})
}

// parts splits /{version}/{obj}/{edge…}.
func parts(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// pageRequest reports whether r asks for a page of insights rows, and which page.
func (s *Server) pageRequest(r *http.Request, q url.Values) (int, bool) {
	ps := parts(r.URL.Path)
	if r.Method != http.MethodGet || len(ps) != 3 || ps[2] != "insights" {
		return 0, false
	}
	start, _ := decodeCursor(q.Get("after"))
	return start/s.pageSize(q) + 1, true
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	q := r.URL.Query()
	if r.Method == http.MethodPost && strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")),
		"application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k, vs := range form {
				if _, ok := q[k]; !ok {
					q[k] = vs
				}
			}
		}
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: cloneValues(q),
		Authorization: r.Header.Get("Authorization"), At: s.opts.Now()}

	page, isPage := s.pageRequest(r, q)
	var fault *Fault
	s.mu.Lock()
	if len(s.faults) > 0 {
		f := s.faults[0]
		if f.AfterPage <= 0 || (isPage && page == f.AfterPage+1) {
			s.faults = s.faults[1:]
			fault = &f
		}
	}
	usage := s.usage
	s.mu.Unlock()

	var a answer
	if fault != nil {
		f := *fault
		if f.Code == 100 && f.Subcode == 33 && f.Message == "" {
			ps := parts(r.URL.Path)
			obj := ""
			if len(ps) > 1 {
				obj = ps[1]
			}
			f.Message = graphwire.Unsupported(strings.ToLower(r.Method), obj)
		}
		a = faultAnswer(f)
	} else {
		a = s.handle(r, q)
	}
	rec.Status = a.status
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	for k, v := range usage {
		h.Set(k, v)
	}
	for k, v := range a.header {
		h.Set(k, v)
	}
	h.Set("X-FB-Trace-ID", graphwire.TraceID())
	w.WriteHeader(a.status)
	w.Write(a.body) //nolint:errcheck
}

// requestToken finds the access token like Graph: bearer header, then access_token.
func requestToken(r *http.Request, q url.Values) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		if len(a) > 6 && strings.EqualFold(a[:6], "oauth ") {
			return strings.TrimSpace(a[6:])
		}
		return ""
	}
	return q.Get("access_token")
}

func (s *Server) handle(r *http.Request, q url.Values) answer {
	s.mu.Lock()
	valid := s.token
	s.mu.Unlock()
	tok := requestToken(r, q)
	if tok == "" || tok != valid {
		return faultAnswer(Fault{Status: http.StatusBadRequest, Code: 190,
			Message: "Invalid OAuth access token - Cannot parse access token"})
	}
	ps := parts(r.URL.Path)
	method := strings.ToLower(r.Method)
	if len(ps) == 0 {
		return param("Unsupported " + method + " request.")
	}
	if ps[0] != s.opts.Version {
		// Unconfirmed: Graph's answer to a version it does not serve.
		return unsupportedAnswer(r.Method, ps[0])
	}
	ps = ps[1:]
	if len(ps) == 0 {
		return param("Unsupported " + method + " request.")
	}
	obj := ps[0]
	if strings.HasPrefix(obj, "act_") {
		return s.handleAccount(r, q, tok, obj, ps[1:])
	}
	s.mu.Lock()
	run := s.runs[obj]
	s.mu.Unlock()
	if run == nil || r.Method != http.MethodGet {
		return unsupportedAnswer(r.Method, obj)
	}
	switch {
	case len(ps) == 1:
		return s.poll(run, q)
	case len(ps) == 2 && ps[1] == "insights":
		s.mu.Lock()
		status, _ := s.runStatus(run)
		rows := run.rows
		s.mu.Unlock()
		if status != JobCompleted {
			// Unconfirmed: what Graph answers for the rows of an unfinished or failed run.
			return param(fmt.Sprintf("(#100) The report run %s is not complete (async_status %q); "+
				"poll it until \"Job Completed\"", run.id, status))
		}
		return s.page(r, q, tok, rows)
	}
	return faultAnswer(Fault{Code: 2500, Message: "Unknown path components: /" + strings.Join(ps[1:], "/")})
}

func (s *Server) handleAccount(r *http.Request, q url.Values, tok, obj string, edge []string) answer {
	id := strings.TrimPrefix(obj, "act_")
	s.mu.Lock()
	a0 := s.accounts[id]
	var acct Account
	if a0 != nil {
		acct = *a0
		acct.Ads = append([]Ad(nil), a0.Ads...)
		acct.Days = append([]DayRow(nil), a0.Days...)
	}
	s.mu.Unlock()
	if a0 == nil {
		return unsupportedAnswer(r.Method, obj)
	}
	switch {
	case len(edge) == 0 && r.Method == http.MethodGet:
		return accountNode(&acct, q)
	case len(edge) == 1 && edge[0] == "insights" && r.Method == http.MethodGet:
		rows, bad := s.insights(&acct, q)
		if bad != nil {
			return *bad
		}
		return s.page(r, q, tok, rows)
	case len(edge) == 1 && edge[0] == "insights" && r.Method == http.MethodPost:
		rows, bad := s.insights(&acct, q)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		s.nextRun++
		run := &reportRun{id: strconv.Itoa(6000000000000000 + s.nextRun), account: obj, rows: rows}
		s.runs[run.id] = run
		s.mu.Unlock()
		return jsonAnswer(map[string]string{"report_run_id": run.id})
	case len(edge) == 1 && edge[0] == "ads" && r.Method == http.MethodGet:
		rows, bad := adsRows(&acct, q)
		if bad != nil {
			return *bad
		}
		return s.page(r, q, tok, rows)
	case len(edge) == 1 && (edge[0] == "insights" || edge[0] == "ads"):
		return unsupportedAnswer(r.Method, obj)
	}
	return faultAnswer(Fault{Code: 2500, Message: "Unknown path components: /" + strings.Join(edge, "/")})
}

func accountNode(a *Account, q url.Values) answer {
	out := map[string]any{"id": "act_" + a.ID}
	for _, f := range splitFields(q.Get("fields")) {
		switch f.name {
		case "id":
		case "account_id":
			out["account_id"] = a.ID
		case "name":
			out["name"] = a.Name
		case "currency":
			out["currency"] = a.Currency
		case "timezone_name":
			out["timezone_name"] = a.Timezone
		default:
			return param(fmt.Sprintf("(#100) Tried accessing nonexisting field (%s) on node type (AdAccount)", f.name))
		}
	}
	return jsonAnswer(out)
}

type timeRange struct {
	Since string `json:"since"`
	Until string `json:"until"`
}

// insights validates an ad-level daily insights request and builds its rows, sorted by
// date then ad_id. The messages naming a bad parameter are unconfirmed.
func (s *Server) insights(a *Account, q url.Values) ([]map[string]any, *answer) {
	bad := func(msg string) ([]map[string]any, *answer) { ans := param(msg); return nil, &ans }
	if l := q.Get("level"); l != "ad" {
		return bad(fmt.Sprintf("(#100) param level must be one of {ad, adset, campaign, account}; the stub serves level=ad, got %q", l))
	}
	if ti := q.Get("time_increment"); ti != "1" {
		return bad(fmt.Sprintf("(#100) param time_increment must be 1 (daily rows) here, got %q", ti))
	}
	raw := q.Get("time_range")
	if raw == "" {
		return bad(`(#100) param time_range is required: {"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}`)
	}
	var tr timeRange
	if err := json.Unmarshal([]byte(raw), &tr); err != nil {
		return bad(fmt.Sprintf(`(#100) param time_range must be a JSON object {"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}, got %q`, raw))
	}
	since, err1 := time.Parse(time.DateOnly, tr.Since)
	until, err2 := time.Parse(time.DateOnly, tr.Until)
	if err1 != nil || err2 != nil {
		return bad(fmt.Sprintf("(#100) param time_range must have since and until as YYYY-MM-DD, got %q", raw))
	}
	if until.Before(since) {
		return bad("(#100) param time_range: since must be on or before until")
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil || a.Timezone == "" {
		loc = time.UTC
	}
	now := s.opts.Now().In(loc)
	oldest := time.Date(now.Year(), now.Month()-RetentionMonths, now.Day(), 0, 0, 0, 0, time.UTC)
	if since.Before(oldest) {
		// Unconfirmed: code 3018 and its wording (seen in public connectors).
		ans := faultAnswer(Fault{Code: 3018, Message: fmt.Sprintf(
			"(#3018) The start date of the time range cannot be beyond %d months from the current date", RetentionMonths)})
		return nil, &ans
	}
	fields := splitFields(q.Get("fields"))
	want := map[string]bool{"date_start": true, "date_stop": true}
	if len(fields) == 0 {
		for _, f := range InsightsFields {
			want[f] = true
		}
	}
	for _, f := range fields {
		known := false
		for _, k := range InsightsFields {
			known = known || k == f.name
		}
		if !known || f.sub != nil {
			return bad(fmt.Sprintf("(#100) %s is not valid for fields param. please check "+
				"https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all valid values", f.name))
		}
		want[f.name] = true
	}
	ads := map[string]Ad{}
	for _, ad := range a.Ads {
		ads[ad.ID] = ad
	}
	var days []DayRow
	for _, d := range a.Days {
		if d.Date >= tr.Since && d.Date <= tr.Until {
			days = append(days, d)
		}
	}
	sort.SliceStable(days, func(i, j int) bool {
		if days[i].Date != days[j].Date {
			return days[i].Date < days[j].Date
		}
		return days[i].AdID < days[j].AdID
	})
	rows := make([]map[string]any, 0, len(days))
	for _, d := range days {
		ad := ads[d.AdID]
		all := map[string]string{
			"ad_id": d.AdID, "ad_name": ad.Name, "adset_id": ad.AdSetID, "adset_name": ad.AdSetName,
			"campaign_id": ad.CampaignID, "campaign_name": ad.CampaignName,
			"account_currency": a.Currency, "account_id": a.ID,
			"spend": d.Spend, "impressions": d.Impressions, "inline_link_clicks": d.Clicks,
			"date_start": d.Date, "date_stop": d.Date,
		}
		row := map[string]any{}
		for k, v := range all {
			if want[k] {
				row[k] = v
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func adsRows(a *Account, q url.Values) ([]map[string]any, *answer) {
	fields := splitFields(q.Get("fields"))
	if len(fields) == 0 {
		fields = []field{{name: "id"}}
	}
	bad := func(node, name string) ([]map[string]any, *answer) {
		ans := param(fmt.Sprintf("(#100) Tried accessing nonexisting field (%s) on node type (%s)", name, node))
		return nil, &ans
	}
	// node answers the fields of an ad, ad set or campaign ("" and the bad field's name).
	node := func(fs []field, id, name, status, created string) (map[string]any, string) {
		out := map[string]any{}
		if len(fs) == 0 {
			fs = []field{{name: "id"}}
		}
		for _, f := range fs {
			switch f.name {
			case "id":
				out["id"] = id
			case "name":
				out["name"] = name
			case "effective_status":
				out["effective_status"] = status
			case "created_time":
				if created != "" {
					out["created_time"] = created
				}
			default:
				return nil, f.name
			}
		}
		return out, ""
	}
	rows := make([]map[string]any, 0, len(a.Ads))
	for _, ad := range a.Ads {
		row := map[string]any{}
		for _, f := range fields {
			switch f.name {
			case "id", "name", "effective_status", "created_time":
				if f.sub != nil {
					return bad("Ad", f.name)
				}
				m, _ := node([]field{f}, ad.ID, ad.Name, ad.Status, ad.Created)
				if v, ok := m[f.name]; ok {
					row[f.name] = v
				}
			case "adset_id":
				row["adset_id"] = ad.AdSetID
			case "campaign_id":
				row["campaign_id"] = ad.CampaignID
			case "adset":
				m, badName := node(f.sub, ad.AdSetID, ad.AdSetName, ad.AdSetStatus, "")
				if badName != "" {
					return bad("AdSet", badName)
				}
				row["adset"] = m
			case "campaign":
				m, badName := node(f.sub, ad.CampaignID, ad.CampaignName, ad.CampaignStatus, ad.CampaignCreated)
				if badName != "" {
					return bad("Campaign", badName)
				}
				row["campaign"] = m
			default:
				return bad("Ad", f.name)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// field is one entry of a Graph fields list, with its nested fields ("adset{id,name}").
type field struct {
	name string
	sub  []field
}

func splitFields(s string) []field {
	fs, _ := parseFields(s, 0)
	return fs
}

func parseFields(s string, i int) ([]field, int) {
	var out []field
	var cur strings.Builder
	flush := func(sub []field) {
		if n := strings.TrimSpace(cur.String()); n != "" || sub != nil {
			out = append(out, field{name: n, sub: sub})
		}
		cur.Reset()
	}
	for i < len(s) {
		switch c := s[i]; c {
		case ',':
			flush(nil)
			i++
		case '{':
			sub, j := parseFields(s, i+1)
			if sub == nil {
				sub = []field{}
			}
			flush(sub)
			i = j
		case '}':
			flush(nil)
			return out, i + 1
		default:
			cur.WriteByte(c)
			i++
		}
	}
	flush(nil)
	return out, i
}

func (s *Server) pageSize(q url.Values) int {
	n := s.opts.PageSize
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < n {
		n = l
	}
	return n
}

// Cursors are opaque base64 of the row index, like Meta's per-row cursors: before is
// the page's first row, after its last.
func cursor(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("row:" + strconv.Itoa(i)))
}

// decodeCursor gives the index of the first row after the cursor (0 for none or junk).
func decodeCursor(c string) (int, bool) {
	if c == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "row:") {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[4:]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n + 1, true
}

// page answers one page of rows: {"data":[…],"paging":{"cursors":{…},"next":…}}, next
// absent on the last page; no paging at all when there are no rows (unconfirmed).
func (s *Server) page(r *http.Request, q url.Values, tok string, rows []map[string]any) answer {
	start, ok := decodeCursor(q.Get("after"))
	if !ok {
		return param("(#100) The after cursor is not valid: " + q.Get("after"))
	}
	size := s.pageSize(q)
	if start > len(rows) {
		start = len(rows)
	}
	end := min(start+size, len(rows))
	data := rows[start:end]
	out := map[string]any{"data": data}
	if len(data) == 0 {
		return jsonAnswer(out)
	}
	paging := map[string]any{"cursors": map[string]string{"before": cursor(start), "after": cursor(end - 1)}}
	link := func(key, val string) string {
		nq := cloneValues(q)
		nq.Del("after")
		nq.Del("before")
		nq.Set("access_token", tok)
		nq.Set(key, val)
		return s.URL + r.URL.Path + "?" + nq.Encode()
	}
	if end < len(rows) {
		paging["next"] = link("after", cursor(end-1))
	}
	if start > 0 {
		paging["previous"] = link("before", cursor(start))
	}
	out["paging"] = paging
	return jsonAnswer(out)
}

// runStatus is a run's status and percentage now, without counting a poll; s.mu held.
func (s *Server) runStatus(run *reportRun) (string, int) {
	n := s.opts.AsyncPolls
	switch {
	case run.polls > n || n < 0:
		if s.opts.AsyncFail {
			if n <= 0 {
				return JobFailed, 0
			}
			return JobFailed, 100 * (n - 1) / n // where it was when it failed
		}
		return JobCompleted, 100
	case run.polls <= 1:
		return JobNotStarted, 0
	default:
		return JobRunning, 100 * (run.polls - 1) / n
	}
}

// poll answers GET /{report_run_id}: each poll advances the run.
func (s *Server) poll(run *reportRun, q url.Values) answer {
	s.mu.Lock()
	run.polls++
	status, pct := s.runStatus(run)
	s.mu.Unlock()
	out := map[string]any{"id": run.id, "account_id": strings.TrimPrefix(run.account, "act_"),
		"async_status": status, "async_percent_completion": pct}
	if status == JobFailed {
		// From v25.0 (Meta's blog); code -2 as printed in the Ads Insights error table
		// (unconfirmed sign).
		out["error_code"] = -2
		out["error_subcode"] = 2490547
		out["error_message"] = "Report Failed"
		out["error_user_title"] = "Report Failed"
		out["error_user_msg"] = "Generating the report failed. Try again later."
	}
	if fs := splitFields(q.Get("fields")); len(fs) > 0 {
		keep := map[string]bool{"id": true}
		for _, f := range fs {
			keep[f.name] = true
		}
		for k := range out {
			if !keep[k] && !strings.HasPrefix(k, "error_") {
				delete(out, k)
			}
		}
	}
	return jsonAnswer(out)
}
