package e2e

import (
	"bytes"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestForwardsBodiesPathsAndAnswersUnchanged(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr+"/base/")

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	mib := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(mib)
	cases := []struct {
		name, method, path string
		body               []byte
	}{
		{"empty", "POST", "/", nil},
		{"json", "POST", "/webhook", []byte(`{"object":"whatsapp_business_account","entry":[]}`)},
		{"not json", "POST", "/hooks/meta?x=1&y=a%20b", []byte("this is { not json")},
		{"binary", "PUT", "/bin/%2F%2e%2e/raw?q=%00", binary},
		{"non-ascii", "POST", "/%C3%BCn%C3%AF?name=Jos%C3%A9", []byte(`{"text":"Grüße, 你好 👋"}`)},
		{"one mebibyte", "POST", "/big?size=1MiB", mib},
		{"delete", "DELETE", "/items/7?force=1", nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newRequest(t, c.method, sc.webhook+c.path, c.body)
			req.Header.Set("Content-Type", "application/json")
			resp, body := mustDo(t, req)
			if resp.StatusCode != 201 {
				t.Fatalf("status %d, want the upstream's 201; body %q", resp.StatusCode, body)
			}
			if want := append([]byte("echo:"), c.body...); !bytes.Equal(body, want) {
				t.Fatalf("sender got %d bytes, not the upstream's %d", len(body), len(want))
			}
			if got := resp.Header.Get("X-Upstream_Custom"); got != "Kept As Is" {
				t.Errorf("upstream response header X-Upstream_Custom = %q", got)
			}
			if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Proxy-Hint") != "" {
				t.Errorf("hop-by-hop response headers relayed: %v", resp.Header)
			}
			if resp.Header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("content type %q", resp.Header.Get("Content-Type"))
			}
			got := up.requests()[i]
			if got.method != c.method {
				t.Errorf("upstream method %q, want %q", got.method, c.method)
			}
			if want := "/base" + c.path; got.uri != want {
				t.Errorf("upstream URI %q, want %q", got.uri, want)
			}
			if !bytes.Equal(got.body, c.body) {
				t.Errorf("upstream body differs: %d bytes, want %d", len(got.body), len(c.body))
			}
		})
	}
}

func TestForwardsHeadersNormalizedAndHopByHopDropped(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-upstream-header", "X_Tenant_Key: secret value")

	resp := rawRequest(t, sc.webhook, "POST /webhook HTTP/1.1\r\nHost: attacker.example\r\n"+
		"Content-Type: application/json\r\nCustom_Header_1: value1\r\nX-Hub-Signature-256: sha256=ab\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic x\r\nTE: trailers\r\nUpgrade: h2c\r\n"+
		"Connection: X-Drop-Me\r\nx_drop_me: listed in Connection\r\n"+
		"X-Forwarded-For: 203.0.113.9\r\nUser-Agent: facebookexternalua\r\nConnection: close\r\n"+
		"Content-Length: 2\r\n\r\n{}")
	if !strings.HasPrefix(resp, "HTTP/1.1 201") {
		t.Fatalf("response %q", resp)
	}
	h := up.requests()[0].rawHeaders
	for _, want := range []string{
		"Host: " + up.addr + "\r\n", "Content-Type: application/json\r\n", "custom-header-1: value1\r\n",
		"x-hub-signature-256: sha256=ab\r\n", "User-Agent: facebookexternalua\r\n",
		"X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n", "X-Forwarded-Proto: http\r\n",
		"x-tenant-key: secret value\r\n", "Content-Length: 2\r\n",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("upstream headers lack %q:\n%s", want, h)
		}
	}
	names := rawHeaderNames(h)
	for _, banned := range []string{"keep-alive", "proxy-authorization", "te", "upgrade", "connection", "x-drop-me", "x_drop_me"} {
		if names[banned] {
			t.Errorf("upstream headers carry hop-by-hop %q:\n%s", banned, h)
		}
	}
	for _, banned := range []string{"attacker.example", "Custom_Header_1"} {
		if strings.Contains(h, banned) {
			t.Errorf("upstream headers carry %q:\n%s", banned, h)
		}
	}
	if !strings.Contains(sc.stderr.String(), "sent_as=x-tenant-key") {
		t.Errorf("no start-up warning for the normalized -upstream-header:\n%s", sc.stderr)
	}
}

// rawHeaderNames returns the header names of a raw header block, lower-cased: the sidecar
// lower-cases custom names, so a case-sensitive search would never find them.
func rawHeaderNames(raw string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(raw, "\r\n") {
		if name, _, ok := strings.Cut(line, ":"); ok {
			names[strings.ToLower(strings.TrimSpace(name))] = true
		}
	}
	return names
}

func TestVerificationHandshakePassesThrough(t *testing.T) {
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		args := ctx.QueryArgs()
		if string(args.Peek("hub.mode")) == "subscribe" && string(args.Peek("hub.verify_token")) == "tok" {
			ctx.SetBody(args.Peek("hub.challenge"))
			return
		}
		ctx.SetStatusCode(403)
	})
	sc := startSidecar(t, "http://"+up.addr)
	resp, body := mustDo(t, newRequest(t, "GET", sc.webhook+"/webhook?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1158201444", nil))
	if resp.StatusCode != 200 || string(body) != "1158201444" {
		t.Fatalf("handshake answered %d %q", resp.StatusCode, body)
	}
	resp, _ = mustDo(t, newRequest(t, "GET", sc.webhook+"/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", nil))
	if resp.StatusCode != 403 {
		t.Fatalf("wrong verify token answered %d, want the upstream's 403", resp.StatusCode)
	}
}

func TestUpstreamErrorStatusesAreRelayedNot2xx(t *testing.T) {
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(500)
		ctx.SetBodyString("boom")
	})
	sc := startSidecar(t, "http://"+up.addr)
	resp, body := mustDo(t, newRequest(t, "POST", sc.webhook+"/", []byte("{}")))
	if resp.StatusCode != 500 || string(body) != "boom" {
		t.Fatalf("got %d %q, want the upstream's 500 boom", resp.StatusCode, body)
	}
}

func TestBodyOverMaxBodyIs413AndNotForwarded(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-max-body", "1KiB")
	resp, _ := mustDo(t, newRequest(t, "POST", sc.webhook+"/", make([]byte, 1025)))
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	resp, _ = mustDo(t, newRequest(t, "POST", sc.webhook+"/", make([]byte, 1024)))
	if resp.StatusCode != 201 {
		t.Fatalf("body at the limit: status %d, want 201", resp.StatusCode)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want only the one within the limit", n)
	}
}

func TestUnreachableUpstreamIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	sc := startSidecar(t, "http://"+addr)
	resp, body := mustDo(t, newRequest(t, "POST", sc.webhook+"/", []byte("{}")))
	if resp.StatusCode != 502 || !strings.Contains(string(body), "refused") {
		t.Fatalf("got %d %q, want 502 naming the refusal", resp.StatusCode, body)
	}
	_, metrics := mustDo(t, newRequest(t, "GET", sc.api+"/metrics", nil))
	if !bytes.Contains(metrics, []byte(`ctwa_sidecar_upstream_errors_total{reason="refused"}`)) {
		t.Fatalf("refusal not counted in /metrics")
	}
}

func TestSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) { <-release })
	defer close(release)
	sc := startSidecar(t, "http://"+up.addr, "-upstream-timeout", "200ms")
	resp, body := mustDo(t, newRequest(t, "POST", sc.webhook+"/", []byte("{}")))
	if resp.StatusCode != 504 || !strings.Contains(string(body), "200ms") {
		t.Fatalf("got %d %q, want 504 naming the deadline", resp.StatusCode, body)
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	entered := make(chan struct{})
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		close(entered)
		time.Sleep(300 * time.Millisecond)
		ctx.SetBodyString("late but delivered")
	})
	sc := startSidecar(t, "http://"+up.addr)
	type result struct {
		status int
		body   string
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Post(sc.webhook+"/", "application/json", strings.NewReader("{}"))
		if err != nil {
			res <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		res <- result{resp.StatusCode, b.String()}
	}()
	<-entered
	sc.stop(t) // returns only after sidecar.Run returned nil
	if r := <-res; r.status != 200 || r.body != "late but delivered" {
		t.Fatalf("in-flight request got %d %q during shutdown", r.status, r.body)
	}
}

// TestForwardedProtoFromAFrontProxyIsKept keeps the scheme a TLS-terminating front proxy
// set, whatever the case of its header name, instead of adding a second one.
func TestForwardedProtoFromAFrontProxyIsKept(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	rawRequest(t, sc.webhook, "POST /w HTTP/1.1\r\nHost: x\r\nx-forwarded-proto: https\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
	h := up.requests()[0].rawHeaders
	if strings.Count(strings.ToLower(h), "x-forwarded-proto:") != 1 || !strings.Contains(h, "x-forwarded-proto: https\r\n") {
		t.Fatalf("upstream headers:\n%s\nwant the front proxy's x-forwarded-proto: https only", h)
	}
}
