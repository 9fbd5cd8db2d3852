// Package e2e holds the end-to-end suites: the sidecar started through sidecar.Run or as
// the real binary, a stub upstream behind it, webhooks and API calls over loopback, and
// what the sender, the upstream and the API see checked. The tests use exported APIs
// only (sidecar, engine, storage, kv, proxy, internal/*), or the binary.
//
// This file is their harness: starting the sidecar (in process or the binary), the stub
// upstreams, the HTTP and API clients, and the payload builders. A suite's own helpers
// stay in its file.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// Counters the hostile and fault suites add to; TestMain prints them (go test -v shows
// them, and `go test -run 'Fault|Hostile|Kill9|SIGTERM|StoreClosed' -v ./e2e` is the
// proof).
var (
	hostileInputs  atomic.Int64
	faultsInjected atomic.Int64
)

// TestMain removes the binary built for the tests and prints the counters.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if n, f := hostileInputs.Load(), faultsInjected.Load(); n+f > 0 {
		fmt.Printf("hostile inputs tried: %d; faults injected: %d\n", n, f)
	}
	if n := openAPIChecked.Load(); n > 0 {
		fmt.Printf("API answers checked against openapi.json: %d\n", n)
	}
	os.Exit(code)
}

// ---- the sidecar through sidecar.Run ----

// runSidecar is a running `serve` started through sidecar.Run in this process, stopped at
// the end of the test.
type runSidecar struct {
	webhook, api string // base URLs
	stderr       *syncBuffer
	cancel       context.CancelFunc
	done         chan error
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers (a log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSidecar runs `serve` through sidecar.Run in front of upstreamURL, on free loopback
// ports and a new store (args may name another -data), with no CTWA_ variables; the log
// goes to s.stderr. It returns once both listeners accept.
func startSidecar(t *testing.T, upstreamURL string, args ...string) *runSidecar {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runSidecar{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	addrs := make(chan [2]net.Addr, 1)
	all := append([]string{"serve", "-upstream", upstreamURL, "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", t.TempDir()}, args...)
	e := sidecar.Env{Stderr: s.stderr, Listening: func(w, a net.Addr) { addrs <- [2]net.Addr{w, a} }}
	go func() { s.done <- sidecar.Run(ctx, all, e) }()
	select {
	case a := <-addrs:
		s.webhook, s.api = "http://"+a[0].String(), "http://"+a[1].String()
	case err := <-s.done:
		t.Fatalf("sidecar did not start: %v\n%s", err, s.stderr)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the sidecar and waits for sidecar.Run to return nil.
func (s *runSidecar) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Errorf("sidecar.Run returned %v", err)
	}
	s.done <- nil // a second stop (test plus cleanup) returns at once
}

// ---- the real binary ----

// built is the sidecar binary, built once for every test that runs it.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// sidecarBinary builds the module's binary once; the tests that run it skip under -short.
func sidecarBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "ctwa-e2e-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "ctwa-sidecar")
		if out, err := exec.Command("go", "build", "-o", built.path, "..").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// binSidecar is the real binary, running as a child process.
type binSidecar struct {
	cmd          *exec.Cmd
	webhook, api string // base URLs
	log          *lineLog
	exited       chan struct{}
	waitErr      error
}

// lineLog keeps the child's log and reports the listen addresses of its start-up line.
type lineLog struct {
	syncBuffer
	mu      sync.Mutex
	partial []byte
	started chan [2]string
}

var startedLine = regexp.MustCompile(`"msg":"ctwa-sidecar started".*"listen":"([^"]+)","api_listen":"([^"]+)"`)

func (l *lineLog) Write(p []byte) (int, error) {
	l.syncBuffer.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if m := startedLine.FindSubmatch(l.partial[:i]); m != nil {
			select {
			case l.started <- [2]string{string(m[1]), string(m[2])}:
			default:
			}
		}
		l.partial = l.partial[i+1:]
	}
}

// startBinary runs bin's serve in front of upstream on the store in data, on free loopback
// ports, logging JSON.
func startBinary(t *testing.T, bin, upstream, data string, args ...string) *binSidecar {
	t.Helper()
	return runBinary(t, bin, append([]string{"serve", "-upstream", upstream, "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", data, "-log-format", "json"}, args...)...)
}

// runBinary runs bin with the command line args, without the CTWA_ variables of the test's
// environment, and returns once its start-up line (-log-format json) names the listeners'
// addresses; it is killed at the end of the test if still running.
func runBinary(t *testing.T, bin string, args ...string) *binSidecar {
	t.Helper()
	s := &binSidecar{cmd: exec.Command(bin, args...), log: &lineLog{started: make(chan [2]string, 1)},
		exited: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CTWA_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case a := <-s.log.started:
		s.webhook, s.api = "http://"+a[0], "http://"+a[1]
	case <-s.exited:
		t.Fatalf("sidecar exited at start-up (%v):\n%s", s.waitErr, s.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("sidecar did not start within 20s:\n%s", s.log)
	}
	return s
}

// kill9 sends SIGKILL and waits until the process is gone.
func (s *binSidecar) kill9(t *testing.T) {
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Error(err)
	}
	<-s.exited
}

// waitExit waits up to d for the process to exit and returns its Wait error.
func (s *binSidecar) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(d):
		t.Fatalf("sidecar did not exit within %s:\n%s", d, s.log)
		return nil
	}
}

// logTail is the end of the sidecar's log, or the start of a crash dump in it.
func logTail(sc *binSidecar) string {
	s := sc.log.String()
	for _, crash := range []string{"unexpected fault address", "fatal error:", "panic:"} {
		if i := strings.Index(s, crash); i >= 0 {
			s = s[i:]
			break
		}
	}
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// forwarded posts body to the binary's webhook listener and fails unless the sender got
// acceptingUpstream's own answer.
func forwarded(t *testing.T, sc *binSidecar, body []byte) {
	t.Helper()
	if err := forward(sc, body); err != nil {
		t.Fatal(err)
	}
}

// forward is forwarded as an error; when the sidecar has died, the error ends with its log.
func forward(sc *binSidecar, body []byte) error {
	status, _, got, err := do("POST", sc.webhook+"/webhook", "application/json", body)
	if err == nil && status == fasthttp.StatusAccepted && string(got) == upstreamAnswer {
		return nil
	}
	select {
	case <-sc.exited:
		return fmt.Errorf("the sidecar died (%v); its log ends:\n%s", sc.waitErr, logTail(sc))
	case <-time.After(2 * time.Second): // a transport error may be the process dying
		return fmt.Errorf("sender got %d %q %v, want the upstream's %d %q", status, got, err, fasthttp.StatusAccepted, upstreamAnswer)
	}
}

// ---- stub upstreams ----

// received is one request as the stub upstream saw it.
type received struct {
	method, uri string
	rawHeaders  string
	body        []byte
}

// stubUpstream is a real HTTP server on 127.0.0.1 that records what reaches it and answers
// with respond.
type stubUpstream struct {
	addr string
	mu   sync.Mutex
	got  []received
}

// startUpstream starts a stub upstream answering with respond. It takes any body as bytes
// (fasthttp's default would refuse a multipart content type over a body that is not
// multipart, and a test would see the stub's 400, not the sidecar's behaviour) and keeps
// header names as sent.
func startUpstream(t *testing.T, respond func(ctx *fasthttp.RequestCtx)) *stubUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &stubUpstream{addr: ln.Addr().String()}
	srv := &fasthttp.Server{
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			u.mu.Lock()
			u.got = append(u.got, received{
				method:     string(ctx.Method()),
				uri:        string(ctx.RequestURI()),
				rawHeaders: string(ctx.Request.Header.RawHeaders()),
				body:       append([]byte(nil), ctx.PostBody()...),
			})
			u.mu.Unlock()
			respond(ctx)
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return u
}

// requests returns what reached the stub so far, in order.
func (u *stubUpstream) requests() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

// echoUpstream answers 201 with a custom header, a cookie and a body derived from the
// request, so the test can tell the upstream's answer reached the sender unchanged.
func echoUpstream(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.DisableNormalizing()
	ctx.SetStatusCode(201)
	ctx.Response.Header.Set("X-Upstream_Custom", "Kept As Is")
	ctx.Response.Header.Set("Content-Type", "application/octet-stream")
	ctx.Response.Header.Set("Keep-Alive", "timeout=5")
	ctx.Response.Header.Set("Proxy-Hint", "drop me")
	ctx.SetBody(append([]byte("echo:"), ctx.PostBody()...))
}

// upstreamAnswer is the body of acceptingUpstream's 202.
const upstreamAnswer = "upstream-got-it"

// acceptingUpstream starts a stub upstream that answers every request 202 upstreamAnswer.
func acceptingUpstream(t *testing.T) *stubUpstream {
	return startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetBodyString(upstreamAnswer)
	})
}

// serveLoopback serves srv on a free loopback port until the test ends.
func serveLoopback(t *testing.T, srv *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// ---- HTTP and API clients ----

// testClient opens a connection per request (no keep-alive, so the sidecar's connection
// count returns to its baseline) and never follows redirects.
var testClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends one request and returns the status, headers and body; a transport error
// comes back as err.
func do(method, url, contentType string, body []byte, header ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// mustDo sends req with http.DefaultClient and returns the answer and its whole body; a
// transport error fails the test.
func mustDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// newRequest builds a request with body, failing the test on a malformed URL.
func newRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// rawRequest sends bytes on a new connection and returns the raw response.
func rawRequest(t *testing.T, base, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(resp)
}

// call2xx sends one request and returns the body; a transport error or a status that is
// not 2xx is an error.
func call2xx(method, url, contentType, body string) ([]byte, error) {
	status, _, got, err := do(method, url, contentType, []byte(body))
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("%s %s answered %d: %s", method, url, status, bytes.TrimSpace(got))
	}
	return got, nil
}

// getJSON2xx GETs url and decodes its 2xx answer into v.
func getJSON2xx(url string, v any) error {
	body, err := call2xx("GET", url, "", "")
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// scrape reads one sample of the Prometheus text at base+/metrics (0 when absent).
func scrape(t *testing.T, base, series string) float64 {
	t.Helper()
	status, _, body, err := do("GET", base+"/metrics", "", nil)
	if err != nil || status != 200 {
		t.Fatalf("GET /metrics: %d %v", status, err)
	}
	return sampleOf(body, series)
}

// sampleOf finds the sample of series in the Prometheus text body (0 when absent).
func sampleOf(body []byte, series string) float64 {
	for line := range bytes.Lines(body) {
		if rest, ok := bytes.CutPrefix(line, []byte(series+" ")); ok {
			v, _ := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			return v
		}
	}
	return 0
}

// processSample reads a metric of this test process.
func processSample(series string) float64 {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	return sampleOf(b.Bytes(), series)
}

// waitFor polls cond every 50 ms and fails the test when it is still false after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// apiClient calls the sidecar's local API, with a bearer token when token is set.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// newAPIClient is a client of sc's API, sending token when it is not empty.
func newAPIClient(t *testing.T, sc *runSidecar, token string) *apiClient {
	return &apiClient{t: t, base: sc.api, token: token}
}

// call sends one request to path (from /v1 or /metrics on) and returns its answer, which
// must match the API's OpenAPI document when that describes the route (openapi_test.go).
func (c *apiClient) call(method, path, contentType string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	req := newRequest(c.t, method, c.base+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, got := mustDo(c.t, req)
	checkOpenAPI(c.t, method, path, resp, got)
	return resp, got
}

// getJSON GETs path, requires 200 with a JSON body and decodes it into v; it returns
// the raw body.
func (c *apiClient) getJSON(path string, v any) []byte {
	c.t.Helper()
	resp, body := c.call("GET", path, "", nil)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s answered %d %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Fatalf("GET %s: content type %q", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return body
}

// sendJSON sends in as a JSON body, requires status want and decodes the answer into out.
func (c *apiClient) sendJSON(method, path string, in any, want int, out any) {
	c.t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, got := c.call(method, path, "application/json", body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s %s answered %d %s, want %d", method, path, body, resp.StatusCode, got, want)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, got)
		}
	}
}

// wantError requires the JSON error form of SPEC §5 with status and field; a 400 must
// also name the field in its message.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, field string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("answer %d %q is not the JSON error form (%v)", resp.StatusCode, body, err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("error content type %q", resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode != status || e.Error.Field != field {
		t.Fatalf("got %d field %q (%s), want %d field %q", resp.StatusCode, e.Error.Field, body, status, field)
	}
	if status == 400 && field != "" && !strings.Contains(e.Error.Message, field) {
		t.Errorf("message %q does not name %s", e.Error.Message, field)
	}
}

// eventJSON is one row of GET .../events.
type eventJSON struct {
	ID                     string `json:"id"`
	AppID                  string `json:"app_id"`
	AdID                   string `json:"ad_id"`
	CampaignID             string `json:"campaign_id"`
	Phone                  string `json:"phone"`
	UserID                 string `json:"user_id"`
	Type                   string `json:"type"`
	TypeID                 string `json:"type_id"`
	TypeValue              string `json:"type_value"`
	Date                   string `json:"date"`
	ConversationID         string `json:"conversation_id"`
	ConversationExpireTime string `json:"conversation_expire_time"`
	SourceType             string `json:"source_type"`
	SourceID               string `json:"source_id"`
}

// eventsPage is a page of GET .../events.
type eventsPage struct {
	Data       []eventJSON `json:"data"`
	TotalCount int         `json:"total_count"`
	Offset     int         `json:"offset"`
	Limit      int         `json:"limit"`
}

// events GETs the fixture app's events with query.
func (c *apiClient) events(query string) eventsPage {
	c.t.Helper()
	var p eventsPage
	c.getJSON(appPath+"/events?"+query, &p)
	return p
}

// ids are the event ids of rows, in order.
func ids(rows []eventJSON) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

// groupJSON is an event group as POST, PATCH and GET event_groups show it.
type groupJSON struct {
	ID         string `json:"id"`
	AppID      string `json:"app_id"`
	AdID       string `json:"ad_id"`
	CampaignID string `json:"campaign_id"`
	Type       string `json:"type"`
	TypeID     string `json:"type_id"`
	TypeValue  string `json:"type_value"`
	Status     string `json:"status"`
	FirstEvent string `json:"first_event"`
	LastEvent  string `json:"last_event"`
	Events     int    `json:"events_count"`
}

// groupsPage is a page of GET .../event_groups.
type groupsPage struct {
	Data       []groupJSON `json:"data"`
	TotalCount int         `json:"total_count"`
	Offset     int         `json:"offset"`
	Limit      int         `json:"limit"`
}

// conversations lists the conversation events of the kill test's app: source by lead,
// and how many each lead has.
func conversations(t *testing.T, api string) (count map[string]int, source map[string]string) {
	t.Helper()
	count, source = map[string]int{}, map[string]string{}
	for offset, total := 0, 1; offset < total; {
		status, _, body, err := do("GET", fmt.Sprintf("%s/v1/clients/default/apps/%s/events?event_type=conversation"+
			"&date_from=2026-03-16&date_to=2026-03-16&limit=1000&offset=%d", api, killApp, offset), "", nil)
		var p eventsPage
		if err != nil || status != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("events: %d %v %.300s", status, err, body)
		}
		for _, ev := range p.Data {
			count[ev.Phone]++
			source[ev.Phone] = ev.SourceType + ":" + ev.SourceID
		}
		total, offset = p.TotalCount, offset+len(p.Data)
		if len(p.Data) == 0 {
			break
		}
	}
	return count, source
}

// ---- payloads ----

const (
	fixtureApp = "106540352242922" // metadata.phone_number_id of the Cloud API fixtures
	appPath    = "/v1/clients/default/apps/" + fixtureApp

	// Leads and sources of the Cloud API fixtures, all on 2026-03-16 (UTC).
	leadLena  = "491701234567"        // text_ctwa_referral 09:15:07, button 09:21:07
	leadJonas = "491761234568"        // button_reply 09:22:07, list_reply 09:23:07 (organic)
	leadEmile = "4915112345678"       // post_referral 09:17:07
	leadMara  = "DE.1502576394655843" // bsuid_only_lead 09:26:07 (organic, no phone)
	adSpring  = "120214567890123456"
	postID    = "318276543219876"
)

// testdata is the path of the module's testdata directory, seen from this package, joined
// with elem.
func testdata(elem ...string) string {
	return filepath.Join(append([]string{"..", "testdata"}, elem...)...)
}

// fixture reads the webhook fixture testdata/webhooks/<format>/<name>.json.
func fixture(t testing.TB, format, name string) []byte {
	t.Helper()
	return fixtures.Body(t, format+"/"+name)
}

// cloudFixture reads the Cloud API fixture name (of fixtureApp).
func cloudFixture(t testing.TB, name string) []byte {
	t.Helper()
	return fixture(t, "cloud", name)
}

// postWebhook posts body to the webhook listener and requires the upstream's 2xx: the
// answer comes only after the webhook's events are committed (SPEC §3.2).
func postWebhook(t *testing.T, sc *runSidecar, body []byte) {
	t.Helper()
	req := newRequest(t, "POST", sc.webhook+"/webhook", body)
	req.Header.Set("Content-Type", "application/json")
	if resp, got := mustDo(t, req); resp.StatusCode/100 != 2 {
		t.Fatalf("webhook answered %d %q", resp.StatusCode, got)
	}
}

// postFixtures posts Cloud API fixtures by name.
func postFixtures(t *testing.T, sc *runSidecar, names ...string) {
	t.Helper()
	for _, n := range names {
		postWebhook(t, sc, cloudFixture(t, n))
	}
}

// waItem is one element of a Cloud API messages[] or statuses[] array.
type waItem map[string]any

var wamidSeq atomic.Int64

// newWamid is a message id not used before in this test process.
func newWamid() string { return fmt.Sprintf("wamid.e2e.%06d", wamidSeq.Add(1)) }

func unixString(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

// textMsg is a text message.
func textMsg(from string, at time.Time, body string) waItem {
	return waItem{"from": from, "id": newWamid(), "timestamp": unixString(at), "type": "text",
		"text": map[string]string{"body": body}}
}

// replyMsg is an interactive reply; kind is button_reply or list_reply.
func replyMsg(from string, at time.Time, kind, id, title string) waItem {
	return waItem{"from": from, "id": newWamid(), "timestamp": unixString(at), "type": "interactive",
		"interactive": map[string]any{"type": kind, kind: map[string]string{"id": id, "title": title}}}
}

// buttonMsg is a tap on a template quick-reply button.
func buttonMsg(from string, at time.Time, payload, text string) waItem {
	return waItem{"from": from, "id": newWamid(), "timestamp": unixString(at), "type": "button",
		"button": map[string]string{"payload": payload, "text": text}}
}

// fromAd adds the CTWA referral of a click on ad adID.
func (m waItem) fromAd(adID string) waItem {
	m["referral"] = map[string]string{"source_type": "ad", "source_id": adID,
		"source_url": "https://fb.me/e2e", "headline": "Chat with us", "ctwa_clid": "clid-" + adID}
	return m
}

// sentStatus is the "sent" status of a business message tagged with a campaign.
func sentStatus(to string, at time.Time, tag string) waItem {
	return waItem{"id": newWamid(), "status": "sent", "timestamp": unixString(at),
		"recipient_id": to, "biz_opaque_callback_data": tag}
}

// cloudWebhook wraps messages and statuses in a Cloud API webhook of fixtureApp.
func cloudWebhook(key string, items []waItem) []byte {
	value := map[string]any{
		"messaging_product": "whatsapp",
		"metadata":          map[string]string{"display_phone_number": "4930609859535", "phone_number_id": fixtureApp},
		key:                 items,
	}
	body, err := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{
		map[string]any{"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": value}}},
	}})
	if err != nil {
		panic(err)
	}
	return body
}

func messagesWebhook(msgs ...waItem) []byte    { return cloudWebhook("messages", msgs) }
func statusesWebhook(sts ...waItem) []byte     { return cloudWebhook("statuses", sts) }
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// killApp is the app of the kill -9, disk and conversions tests' leads, who click one of
// the five ads killAd(i).
const killApp = fixtureApp

func killAd(i int) string { return fmt.Sprintf("12020000000000%04d", i%5) }

// ---- stores ----

// testLog opens the log kept in store.
func testLog(t testing.TB, store *storage.Store) *storage.FileLog {
	t.Helper()
	l, err := storage.OpenLog(store)
	if err != nil {
		t.Fatalf("storage.OpenLog: %v", err)
	}
	return l
}
