package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Connection floods and idle connections (issue 12, items 5 and 6): real sockets on
// loopback. A flood comes from 127.0.0.2 and up (all loopback on Linux), the real traffic
// from 127.0.0.1, as a sender and an attacker on different addresses would.

// floodDeadline bounds every wait of these tests; nothing is asserted about how fast.
const floodDeadline = 20 * time.Second

// connResult is how one flood connection ended: what the sidecar wrote before closing it.
type connResult struct {
	i    int
	got  string
	err  error
	open bool // still open when the test stopped watching
}

// flood opens n idle connections to addr from the loopback address from and watches each
// for the sidecar closing it; the connections are closed at the end of the test.
func flood(t *testing.T, addr, from string, n int) ([]net.Conn, chan connResult) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: floodDeadline}
	conns := make([]net.Conn, 0, n)
	ended := make(chan connResult, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			if i == 0 && from != "127.0.0.1" {
				t.Skipf("cannot dial from %s (loopback beyond 127.0.0.1 is Linux only): %v", from, err)
			}
			t.Fatalf("connection %d from %s: %v", i, from, err)
		}
		conns = append(conns, c)
		go func() {
			c.SetReadDeadline(time.Now().Add(floodDeadline))
			b, err := io.ReadAll(c)
			var ne net.Error
			ended <- connResult{i: i, got: string(b), err: err, open: errors.As(err, &ne) && ne.Timeout()}
		}()
	}
	return conns, ended
}

// waitEnded collects n connection ends, failing the test if they do not come.
func waitEnded(t *testing.T, ended chan connResult, n int, what string) []connResult {
	t.Helper()
	var out []connResult
	timeout := time.After(floodDeadline)
	for len(out) < n {
		select {
		case r := <-ended:
			if r.open {
				t.Fatalf("%s: connection %d still open after %s, want it closed", what, r.i, floodDeadline)
			}
			out = append(out, r)
		case <-timeout:
			t.Fatalf("%s: %d of %d connections closed within %s", what, len(out), n, floodDeadline)
		}
	}
	return out
}

var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: floodDeadline}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := freshClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func postFresh(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := freshClient.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const rejectedSeries = `ctwa_sidecar_connections_rejected_total{listener="webhook",reason="`

// TestConnectionFloodLeavesWebhooksAndHealthAnswered floods the webhook listener with idle
// connections from one address, past its per-address cap: the surplus is refused (429)
// and counted, a webhook from another address is still forwarded and answered with the
// upstream's status, /healthz answers. Then more addresses fill the listener to its
// -max-conns: webhooks get 503, counted as concurrency_limit, while the API, with its own
// limit, still answers; once the flood goes, webhooks flow again.
func TestConnectionFloodLeavesWebhooksAndHealthAnswered(t *testing.T) {
	up := acceptingUpstream(t)
	const perIP, total = 20, 40
	sc := startSidecar(t, "http://"+up.addr, "-max-conns-per-ip", "20", "-max-conns", "40", "-api-max-conns", "8",
		"-header-timeout", "2m") // the flood stays while the test looks
	addr := strings.TrimPrefix(sc.webhook, "http://")
	perIPBefore := scrape(t, sc.api, rejectedSeries+`per_ip_limit"}`)
	fullBefore := scrape(t, sc.api, rejectedSeries+`concurrency_limit"}`)

	// 3× the cap from 127.0.0.2: the surplus is refused at once, the rest held open.
	floodStart := time.Now()
	_, endedA := flood(t, addr, "127.0.0.2", 3*perIP)
	for _, r := range waitEnded(t, endedA, 2*perIP, "connections over -max-conns-per-ip") {
		if !strings.HasPrefix(r.got, "HTTP/1.1 429 ") {
			t.Errorf("a refused connection got %q (%v), want a 429", r.got, r.err)
		}
	}
	if got := scrape(t, sc.api, rejectedSeries+`per_ip_limit"}`) - perIPBefore; got != 2*perIP {
		t.Errorf("per_ip_limit rejections grew by %v, want %d", got, 2*perIP)
	}
	if got := scrape(t, sc.api, `ctwa_sidecar_connections_open{listener="webhook"}`); got < perIP {
		t.Errorf("connections_open{listener=webhook} = %v, want at least the %d held", got, perIP)
	}
	if code, body := postFresh(t, sc.webhook+"/webhook", `{"object":"whatsapp_business_account","entry":[]}`); code != 202 || body != upstreamAnswer {
		t.Fatalf("webhook during the flood: %d %q, want the upstream's 202", code, body)
	}
	if code, _ := get(t, sc.api+"/healthz"); code != 200 {
		t.Fatalf("/healthz during the flood: %d", code)
	}

	// Two more addresses fill the listener: the webhook listener is full, the API is not.
	// First the webhook's own connection must be gone, or the listener fills one early.
	waitOpen(t, sc.api, perIP)
	flood(t, addr, "127.0.0.3", total-perIP)
	waitOpen(t, sc.api, total)
	_, endedC := flood(t, addr, "127.0.0.4", 5)
	for _, r := range waitEnded(t, endedC, 5, "connections over -max-conns") {
		if !strings.HasPrefix(r.got, "HTTP/1.1 503 ") {
			t.Errorf("a connection over -max-conns got %q (%v), want a 503", r.got, r.err)
		}
	}
	if got := scrape(t, sc.api, rejectedSeries+`concurrency_limit"}`) - fullBefore; got < 5 {
		t.Errorf("concurrency_limit rejections grew by %v, want at least 5", got)
	}
	if code, _ := get(t, sc.api+"/healthz"); code != 200 {
		t.Fatalf("/healthz while the webhook listener is full: %d", code)
	}
	// A sender's connection gets the 503 as soon as it is accepted, before its request: read it
	// off the socket (an HTTP client may take the early answer for an error of its own).
	_, endedSender := flood(t, addr, "127.0.0.1", 1)
	if r := waitEnded(t, endedSender, 1, "a sender's connection to the full listener"); !strings.HasPrefix(r[0].got, "HTTP/1.1 503 ") {
		t.Errorf("a sender's connection while the listener holds -max-conns got %q (%v), want a 503", r[0].got, r[0].err)
	}
	if log := sc.stderr.String(); !strings.Contains(log, "reason=per_ip_limit") || !strings.Contains(log, "reason=concurrency_limit") {
		t.Errorf("refusals not logged:\n%s", log)
	}
	// At most one line per 5 s: one, unless the machine took that long for the flood.
	if n, most := strings.Count(sc.stderr.String(), "reason=per_ip_limit"), 1+int(time.Since(floodStart)/(5*time.Second)); n > most {
		t.Errorf("%d log lines for %d per-address refusals, want at most %d", n, 2*perIP, most)
	}
}

// waitOpen waits until the webhook listener holds want connections.
func waitOpen(t *testing.T, api string, want int) {
	t.Helper()
	deadline := time.Now().Add(floodDeadline)
	for {
		got := scrape(t, api, `ctwa_sidecar_connections_open{listener="webhook"}`)
		if got == float64(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook listener holds %v connections, want %d", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIdleConnectionsClosedAfterHeaderTimeout: a connection that sends nothing, or only
// part of its headers, is closed after -header-timeout, on both listeners, and counted as
// header_timeout, not as a bad request; a request whose body comes slowly, for longer than
// the header timeout, is still read whole and forwarded.
func TestIdleConnectionsClosedAfterHeaderTimeout(t *testing.T) {
	up := acceptingUpstream(t)
	sc := startSidecar(t, "http://"+up.addr, "-header-timeout", "300ms")
	webhookAddr, apiAddr := strings.TrimPrefix(sc.webhook, "http://"), strings.TrimPrefix(sc.api, "http://")
	apiSeries := `ctwa_sidecar_connections_rejected_total{listener="api",reason="header_timeout"}`
	badBefore := scrape(t, sc.api, `ctwa_sidecar_requests_total{result="bad_request"}`)
	hookBefore, apiBefore := scrape(t, sc.api, rejectedSeries+`header_timeout"}`), scrape(t, sc.api, apiSeries)

	// Nothing sent, on each listener: closed (the test's 20 s deadline is far off).
	_, endedHook := flood(t, webhookAddr, "127.0.0.1", 2)
	_, endedAPI := flood(t, apiAddr, "127.0.0.1", 1)
	waitEnded(t, endedHook, 2, "idle webhook connections")
	waitEnded(t, endedAPI, 1, "idle API connection")

	// Half a request line, then nothing: closed as well.
	slow, endedSlow := flood(t, webhookAddr, "127.0.0.1", 1)
	io.WriteString(slow[0], "POST /webhook HTTP/1.1\r\nHost: x\r\n")
	waitEnded(t, endedSlow, 1, "connection with half its headers")

	if got := scrape(t, sc.api, rejectedSeries+`header_timeout"}`) - hookBefore; got != 3 {
		t.Errorf("webhook header_timeout grew by %v, want 3", got)
	}
	if got := scrape(t, sc.api, apiSeries) - apiBefore; got != 1 {
		t.Errorf("api header_timeout grew by %v, want 1", got)
	}
	if got := scrape(t, sc.api, `ctwa_sidecar_requests_total{result="bad_request"}`) - badBefore; got != 0 {
		t.Errorf("connections that sent no request counted as %v bad requests", got)
	}

	// Headers at once, the body in pieces over more than the header timeout.
	c, err := net.Dial("tcp", webhookAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(floodDeadline))
	body := bytes.Repeat([]byte("x"), 4000)
	io.WriteString(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
	for part := range slices.Chunk(body, 1000) {
		time.Sleep(250 * time.Millisecond) // together past -header-timeout
		if _, err := c.Write(part); err != nil {
			t.Fatalf("writing the slow body: %v", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("slow body: no answer: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 || string(got) != upstreamAnswer {
		t.Fatalf("slow body: %d %q, want the upstream's 202", resp.StatusCode, got)
	}
	reqs := up.requests()
	if len(reqs) == 0 || !bytes.Equal(reqs[len(reqs)-1].body, body) {
		t.Errorf("the slow body did not reach the upstream whole")
	}
}

// TestListenerErrorsCountedApart: a request the API listener cannot read counts in the
// API's metric, not in the webhook listener's requests_total; one the webhook listener
// cannot read counts there.
func TestListenerErrorsCountedApart(t *testing.T) {
	up := acceptingUpstream(t)
	sc := startSidecar(t, "http://"+up.addr)
	bad := `ctwa_sidecar_requests_total{result="bad_request"}`
	apiBad := `ctwa_sidecar_api_requests_total{route="unreadable",code="400"}`
	badBefore, apiBefore := scrape(t, sc.api, bad), scrape(t, sc.api, apiBad)

	if got := rawRequest(t, sc.api, "NOT HTTP AT ALL\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Fatalf("malformed API request answered %q", got)
	}
	if got := scrape(t, sc.api, bad) - badBefore; got != 0 {
		t.Errorf("a malformed API request counted %v times in the webhook metric %s", got, bad)
	}
	if got := scrape(t, sc.api, apiBad) - apiBefore; got != 1 {
		t.Errorf("%s grew by %v, want 1", apiBad, got)
	}

	if got := rawRequest(t, sc.webhook, "NOT HTTP AT ALL\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Fatalf("malformed webhook request answered %q", got)
	}
	if got := scrape(t, sc.api, bad) - badBefore; got != 1 {
		t.Errorf("%s grew by %v after a malformed webhook request, want 1", bad, got)
	}
	if got := scrape(t, sc.api, apiBad) - apiBefore; got != 1 {
		t.Errorf("a malformed webhook request counted in %s", apiBad)
	}
}
