package e2e

// Fault suite: the real binary (built once) and the in-process forwarder, driven into
// every failure the issue names — upstream down, resetting, slow, oversized, redirecting;
// kill -9 under concurrent load with the sender's replay; SIGTERM with requests in
// flight; a closed store — and checked for what the sender sees, what is recorded, and
// that nothing leaks. Everything runs on 127.0.0.1 and is bounded in time.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// openFDs counts the open file descriptors of pid (-1 where /proc is not available).
func openFDs(pid int) int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// ---- a raw upstream that misbehaves on demand ----

// faultUpstream is a plain TCP server speaking just enough HTTP/1.1 to fail in exactly
// the way the request path asks for.
type faultUpstream struct {
	t     *testing.T
	addr  string
	stall time.Duration // how long the slow modes hold the connection
	stop  chan struct{}

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	hits  map[string]int
	wg    sync.WaitGroup
}

func startFaultUpstream(t *testing.T, stall time.Duration) *faultUpstream {
	t.Helper()
	u := &faultUpstream{t: t, stall: stall, stop: make(chan struct{}), conns: map[net.Conn]bool{}, hits: map[string]int{}}
	u.listen("127.0.0.1:0")
	t.Cleanup(func() {
		close(u.stop)
		u.down()
		u.wg.Wait()
	})
	return u
}

// listen (re)opens the listener, on the same address after a down.
func (u *faultUpstream) listen(addr string) {
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		u.t.Fatalf("upstream cannot listen on %s: %v", addr, err)
	}
	u.mu.Lock()
	u.ln, u.addr = ln, ln.Addr().String()
	u.mu.Unlock()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = true
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(c)
				c.Close()
				u.mu.Lock()
				delete(u.conns, c)
				u.mu.Unlock()
			}()
		}
	}()
}

// down closes the listener and every connection: the upstream is gone (refused).
func (u *faultUpstream) down() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ln != nil {
		u.ln.Close()
		u.ln = nil
	}
	for c := range u.conns {
		c.Close()
	}
}

// up brings the upstream back on the same address: a restarted business endpoint.
func (u *faultUpstream) up() { u.listen(u.addr) }

func (u *faultUpstream) hitsOf(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

func (u *faultUpstream) sleep() {
	select {
	case <-time.After(u.stall):
	case <-u.stop:
	}
}

// serve answers requests on c until a mode closes it.
func (u *faultUpstream) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		u.mu.Lock()
		u.hits[req.URL.Path]++
		u.mu.Unlock()
		switch req.URL.Path {
		case "/half": // headers and part of the body, then the connection closes
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
			return
		case "/close": // closed without a byte of answer
			return
		case "/rst": // the connection is reset (RST) without a byte of answer
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return
		case "/slow-headers": // nothing until well past the deadline
			u.sleep()
			return
		case "/slow-body": // headers at once, then the body stalls
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"slow\":")
			u.sleep()
			return
		case "/huge-length": // announces more than the proxy buffers
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 67108865\r\n\r\n")
			c.Write(make([]byte, 64<<10))
			return
		case "/huge-chunked": // streams more than the proxy buffers, without announcing it
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			chunk := append(append([]byte("100000\r\n"), bytes.Repeat([]byte("x"), 1<<20)...), "\r\n"...)
			for range 70 {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
			io.WriteString(c, "0\r\n\r\n")
			return
		case "/garbage": // not HTTP at all
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
			return
		case "/redirect": // to another path of this very upstream: a follow would show up in hits
			fmt.Fprintf(c, "HTTP/1.1 302 Found\r\nLocation: http://%s/followed?from=redirect\r\n"+
				"X-Upstream-Note: kept\r\nContent-Length: 0\r\n\r\n", u.addr)
		default: // "/ok" and anything else: a well-behaved business webhook
			answer := fmt.Sprintf(`{"ok":true,"bytes":%d}`, len(body))
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
		}
	}
}

// ---- upstream faults ----

// TestFaultsUpstreamMisbehaving drives the binary into every upstream failure, several
// at once, and checks the sender's answer, the metric that counts it, that the sidecar
// stays healthy after each, and that its goroutines and descriptors return to baseline.
func TestFaultsUpstreamMisbehaving(t *testing.T) {
	bin := sidecarBinary(t)
	// Long enough to buffer the 64 MiB streamed response on a loaded CI machine.
	const timeout = 3 * time.Second
	up := startFaultUpstream(t, 5*timeout/2)
	sc := startBinary(t, bin, "http://"+up.addr, t.TempDir(), "-upstream-timeout", timeout.String())
	pid := sc.cmd.Process.Pid

	healthy := func(after string) {
		t.Helper()
		if status, _, body, err := do("GET", sc.api+"/healthz", "", nil); err != nil || status != 200 {
			t.Fatalf("after %s: /healthz %d %q %v", after, status, body, err)
		}
		webhook := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
		status, _, body, err := do("POST", sc.webhook+"/ok", "application/json", webhook)
		if want := fmt.Sprintf(`{"ok":true,"bytes":%d}`, len(webhook)); err != nil || status != 200 || string(body) != want {
			t.Fatalf("after %s: a normal webhook got %d %q %v, want 200 %s", after, status, body, err, want)
		}
	}
	for range 5 {
		healthy("start-up")
	}
	baseG, baseFD := scrape(t, sc.api, "go_goroutines"), openFDs(pid)
	t.Logf("baseline: %.0f goroutines, %d fds", baseG, baseFD)

	faults := []struct {
		name, path string
		status     []int  // acceptable statuses
		cause      string // the body names it
		metric     string // upstream_errors_total reason it counts under
		parallel   int    // injected this many times at once
	}{
		{"reset mid-response", "/half", []int{502}, "closed the connection", "closed", 4},
		{"closed before answering", "/close", []int{502}, "closed the connection", "closed", 4},
		{"connection reset (RST)", "/rst", []int{502}, "closed the connection", "closed", 4},
		{"slow headers", "/slow-headers", []int{504}, "did not answer within " + timeout.String(), "timeout", 4},
		{"slow body", "/slow-body", []int{504}, "did not answer within " + timeout.String(), "timeout", 4},
		{"huge announced response", "/huge-length", []int{502}, "larger than the proxy buffers", "response_too_large", 4},
		// One at a time: each is buffered up to the 64 MiB limit before it is refused.
		{"huge streamed response", "/huge-chunked", []int{502}, "larger than the proxy buffers", "response_too_large", 1},
		{"not HTTP", "/garbage", []int{502}, "upstream", "other", 4},
		{"refused (upstream down)", "", []int{502}, "refused the connection", "refused", 4},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			if f.path == "" {
				up.down()
			}
			var before float64
			if f.metric != "" {
				before = scrape(t, sc.api, `ctwa_sidecar_upstream_errors_total{reason="`+f.metric+`"}`)
			}
			hitsBefore := up.hitsOf(f.path)
			var wg sync.WaitGroup
			for range f.parallel {
				wg.Go(func() {
					faultsInjected.Add(1)
					path := f.path
					if path == "" {
						path = "/ok"
					}
					status, _, body, err := do("POST", sc.webhook+path, "application/json", []byte(`{"fault":true}`))
					switch {
					case err != nil:
						t.Errorf("sender got a transport error instead of an answer: %v", err)
					case !slices.Contains(f.status, status) || !strings.Contains(string(body), f.cause):
						t.Errorf("sender got %d %q, want one of %v naming %q", status, body, f.status, f.cause)
					}
				})
			}
			wg.Wait()
			if f.metric != "" {
				if after := scrape(t, sc.api, `ctwa_sidecar_upstream_errors_total{reason="`+f.metric+`"}`); after-before != float64(f.parallel) {
					t.Errorf("upstream_errors_total{reason=%q} rose by %.0f, want %d", f.metric, after-before, f.parallel)
				}
			}
			// A connection closed before any answer is retried once (it may be a kept-alive
			// connection the upstream closed as it went idle); nothing else is resent.
			maxHits := f.parallel
			if f.path == "/close" || f.path == "/rst" {
				maxHits *= 2
			}
			if hits := up.hitsOf(f.path) - hitsBefore; f.path != "" && (hits < f.parallel || hits > maxHits) {
				t.Errorf("upstream saw %d requests for %d webhooks, want %d to %d", hits, f.parallel, f.parallel, maxHits)
			}
			if f.path == "" {
				up.up()
			}
			healthy(f.name)
		})
	}

	t.Run("redirect is relayed, not followed", func(t *testing.T) {
		faultsInjected.Add(1)
		status, h, body, err := do("POST", sc.webhook+"/redirect", "application/json", []byte(`{}`))
		want := "http://" + up.addr + "/followed?from=redirect"
		if err != nil || status != 302 || h.Get("Location") != want || h.Get("X-Upstream-Note") != "kept" || len(body) != 0 {
			t.Fatalf("got %d Location %q note %q body %q (%v), want the upstream's 302 to %s", status,
				h.Get("Location"), h.Get("X-Upstream-Note"), body, err, want)
		}
		if s := h.Get("Server"); s != "" {
			t.Errorf("the sidecar added Server: %q to the upstream's answer", s)
		}
		if n := up.hitsOf("/followed"); n != 0 {
			t.Fatalf("the sidecar followed the redirect (%d requests to its target)", n)
		}
		healthy("a redirect")
	})

	t.Run("upstream restarted", func(t *testing.T) {
		// The sidecar holds a kept-alive connection; the upstream restarts and closes it.
		// The next webhook must not get a 502 for that stale connection.
		healthy("keep-alive warm-up")
		up.down()
		up.up()
		faultsInjected.Add(1)
		healthy("an upstream restart")
	})

	// Leaks: every faulted connection is closed and no goroutine waits on one. The idle
	// keep-alive connection to the upstream may differ by one; the tolerance covers that
	// and the runtime's own background goroutines.
	const tolerance = 6
	var g float64
	var fds int
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, fds = scrape(t, sc.api, "go_goroutines"), openFDs(pid)
		if (g <= baseG+tolerance && fds <= baseFD+tolerance) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if g > baseG+tolerance || fds > baseFD+tolerance {
		t.Errorf("after the faults: %.0f goroutines and %d fds, baseline %.0f and %d (+%d allowed)", g, fds, baseG, baseFD, tolerance)
	}
	t.Logf("after %d faults: %.0f goroutines, %d fds", faultsInjected.Load(), g, fds)
}

// ---- kill -9 under load ----

// killWebhook is lead i's first message, from a click on one of five ads: a distinct
// lead, message id and click per webhook.
func killWebhook(i int) (lead string, body []byte) {
	lead = fmt.Sprintf("4917900%05d", i)
	at := day(2026, 3, 16).Add(8*time.Hour + time.Duration(i)*time.Second)
	msg := waItem{"from": lead, "id": fmt.Sprintf("wamid.kill9.%05d", i), "timestamp": unixString(at),
		"type": "text", "text": map[string]string{"body": "Hi, is the offer still on?"}}
	return lead, messagesWebhook(msg.fromAd(killAd(i)))
}

// TestKill9UnderLoadLosesNoAcknowledgedWebhook posts distinct CTWA webhooks from many
// connections, kills the binary with SIGKILL mid-load, restarts it on the same data and
// checks: every webhook the sender saw acknowledged is recorded; after the sender
// replays every webhook (acknowledged or not), each lead has exactly one conversation,
// from the right ad.
func TestKill9UnderLoadLosesNoAcknowledgedWebhook(t *testing.T) {
	bin := sidecarBinary(t)
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	data := t.TempDir()
	const leads, workers, killAfter = 800, 16, 200
	bodies := make([][]byte, leads)
	phones := make([]string, leads)
	for i := range leads {
		phones[i], bodies[i] = killWebhook(i)
	}

	sc := startBinary(t, bin, "http://"+up.addr, data)
	var (
		mu       sync.Mutex
		acked    = map[int]bool{}
		next     atomic.Int64
		ackCount atomic.Int64
		killed   sync.Once
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= leads {
					return
				}
				status, _, _, err := do("POST", sc.webhook+"/webhook", "application/json", bodies[i])
				if err != nil || status/100 != 2 {
					continue // not acknowledged: the sender will retry it
				}
				mu.Lock()
				acked[i] = true
				mu.Unlock()
				if ackCount.Add(1) == killAfter {
					killed.Do(func() { faultsInjected.Add(1); sc.kill9(t) })
				}
			}
		})
	}
	wg.Wait()
	killed.Do(func() { sc.kill9(t) })
	if len(acked) < killAfter || len(acked) >= leads {
		t.Fatalf("%d of %d webhooks acknowledged: the kill did not land mid-load", len(acked), leads)
	}

	sc2 := startBinary(t, bin, "http://"+up.addr, data)
	count, _ := conversations(t, sc2.api)
	lost, dup := 0, 0
	for i := range acked {
		if count[phones[i]] == 0 {
			lost++
		}
	}
	for _, n := range count {
		if n > 1 {
			dup++
		}
	}
	if lost > 0 || dup > 0 {
		t.Fatalf("after kill -9: %d acknowledged webhooks lost, %d leads counted twice", lost, dup)
	}

	// The sender retries everything; every retry is answered 2xx now.
	next.Store(0)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= leads {
					return
				}
				if status, _, body, err := do("POST", sc2.webhook+"/webhook", "application/json", bodies[i]); err != nil || status != 200 {
					t.Errorf("replay of lead %d: %d %q %v", i, status, body, err)
				}
			}
		})
	}
	wg.Wait()
	count, source := conversations(t, sc2.api)
	misrecorded := 0
	for i, phone := range phones {
		switch {
		case count[phone] == 0:
			lost++
		case count[phone] > 1:
			dup++
		case source[phone] != "ad:"+killAd(i):
			misrecorded++
		}
	}
	if lost+dup+misrecorded > 0 || len(count) != leads {
		t.Fatalf("after the replay: %d leads lost, %d counted twice, %d from the wrong source, %d leads in all (want %d)",
			lost, dup, misrecorded, len(count), leads)
	}
	t.Logf("kill -9 after %d acknowledged of %d: none lost; after the replay all %d leads counted exactly once",
		len(acked), leads, leads)
}

// ---- SIGTERM drain ----

// TestSIGTERMDrainsInFlightWebhooks holds webhooks in a slow upstream, sends SIGTERM,
// and checks that the listener stops accepting at once, every in-flight webhook gets the
// upstream's answer, the process exits 0, and each drained webhook was recorded.
func TestSIGTERMDrainsInFlightWebhooks(t *testing.T) {
	bin := sidecarBinary(t)
	const inFlight = 6
	entered, release := make(chan struct{}, inFlight), make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // before the upstream's own cleanup waits for its handlers
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		<-release
		ctx.SetStatusCode(202)
		ctx.SetBodyString("accepted late")
	})
	data := t.TempDir()
	sc := startBinary(t, bin, "http://"+up.addr, data)

	type result struct {
		status int
		body   string
		err    error
	}
	results := make(chan result, inFlight)
	for i := range inFlight {
		_, body := killWebhook(i)
		go func() {
			status, _, b, err := do("POST", sc.webhook+"/webhook", "application/json", body)
			results <- result{status, string(b), err}
		}()
	}
	for range inFlight {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the webhooks did not reach the upstream")
		}
	}
	faultsInjected.Add(1)
	if err := sc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes while the requests are still held.
	addr := strings.TrimPrefix(sc.webhook, "http://")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the webhook listener still accepts connections 5s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case r := <-results:
		t.Fatalf("a held webhook was answered before the upstream answered: %+v", r)
	default:
	}
	releaseAll()
	for range inFlight {
		if r := <-results; r.err != nil || r.status != 202 || r.body != "accepted late" {
			t.Errorf("in-flight webhook got %d %q %v during shutdown, want the upstream's 202", r.status, r.body, r.err)
		}
	}
	if err := sc.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, sc.log)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the webhook address accepts connections after exit")
	}
	sc2 := startBinary(t, bin, "http://"+up.addr, data)
	count, _ := conversations(t, sc2.api)
	for i := range inFlight {
		if lead, _ := killWebhook(i); count[lead] != 1 {
			t.Errorf("drained webhook of lead %s left %d conversations, want 1", lead, count[lead])
		}
	}
}

// ---- store closed ----

// TestStoreClosedStillForwards closes the store under a running forwarder: the sender
// still gets the upstream's answer, the failure is counted as store_error, /readyz turns
// 503, and the store reopened afterwards holds no trace of the failed webhook — the
// sender's retry is recorded as new, not taken for a duplicate.
func TestStoreClosedStillForwards(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	cfg := engine.Config{DefaultAppID: "onprem", SessionWindow: 24 * time.Hour, AttributionWindow: 672 * time.Hour, Log: quiet}
	store, err := storage.Open(dir, storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := engine.NewRecorder(testLog(t, store), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t, echoUpstream)
	u, _ := url.Parse("http://" + up.addr)
	fwd := proxy.NewForwarder(proxy.ForwardConfig{Upstream: u, Timeout: 5 * time.Second, Recorder: rec, Log: quiet})
	webhook := serveLoopback(t, proxy.NewServer("webhook", fwd.Handle, proxy.ServerLimits{MaxBody: 1 << 20}, quiet))
	api := serveLoopback(t, proxy.NewServer("api", proxy.NewAPI("tok", store.Ready).ServeHTTP, proxy.ServerLimits{}, quiet))

	const storeErrors = `ctwa_sidecar_webhooks_total{format="cloud",result="store_error"}`
	at := day(2026, 3, 16).Add(9 * time.Hour)
	okBody := messagesWebhook(textMsg("4917811111111", at, "hello").fromAd("120200000000000777"))
	failBody := messagesWebhook(textMsg("4917822222222", at, "hello").fromAd("120200000000000777"))

	post := func(body []byte) {
		t.Helper()
		status, _, got, err := do("POST", webhook+"/webhook", "application/json", body)
		if err != nil || status != 201 || !bytes.Equal(got, append([]byte("echo:"), body...)) {
			t.Fatalf("sender got %d %q %v, want the upstream's 201 echo", status, got, err)
		}
	}
	ready := func() (int, string) {
		status, _, body, err := do("GET", api+"/readyz", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(body)
	}
	post(okBody)
	if status, body := ready(); status != 200 {
		t.Fatalf("/readyz with the store open: %d %q", status, body)
	}
	before := processSample(storeErrors)
	faultsInjected.Add(1)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	post(failBody)
	if got := processSample(storeErrors) - before; got != 1 {
		t.Errorf("%s rose by %.0f, want 1", storeErrors, got)
	}
	if status, body := ready(); status != 503 || !strings.Contains(body, "closed") {
		t.Errorf("/readyz with the store closed: %d %q, want 503 naming it", status, body)
	}
	if store.Ready() == nil {
		t.Error("store.Ready() is nil on a closed store")
	}

	// Reopen: the webhook acknowledged before is there; the failed one left nothing.
	store2, err := storage.Open(dir, storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store2.Close() })
	rec2, err := engine.NewRecorder(testLog(t, store2), store2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	leadsOf := func() (events, sessions map[string]int) {
		events, sessions = map[string]int{}, map[string]int{}
		if err := rec2.Events(engine.EventFilter{AppID: fixtureApp, To: 1 << 62}, func(e *kv.Event) bool {
			events[e.Lead+" "+e.Type]++
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if err := rec2.Sessions(fixtureApp, func(s *kv.Session) bool { sessions[s.Lead]++; return true }); err != nil {
			t.Fatal(err)
		}
		return events, sessions
	}
	events, sessions := leadsOf()
	if events["4917811111111 conversation"] != 1 || sessions["4917811111111"] != 1 {
		t.Errorf("the webhook recorded before the close: events %v, sessions %v", events, sessions)
	}
	if len(events) != 1 || len(sessions) != 1 {
		t.Errorf("the failed webhook left a trace: events %v, sessions %v", events, sessions)
	}
	if err := rec2.Record(context.Background(), failBody); err != nil {
		t.Fatal(err)
	}
	if events, sessions := leadsOf(); events["4917822222222 conversation"] != 1 || sessions["4917822222222"] != 1 {
		t.Errorf("the retry of the failed webhook was not recorded as new (a dedupe key was half-written?): events %v", events)
	}
}
