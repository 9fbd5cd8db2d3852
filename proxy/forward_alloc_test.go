//go:build !race

package proxy

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestForwardDoesNotAllocate guards the forwarding hot path, as fasthttp guards its own:
// once pools are warm, relaying a webhook allocates nothing (the upstream is a real
// fasthttp server on loopback, whose own work is counted too).
func TestForwardDoesNotAllocate(t *testing.T) {
	up := startTestUpstream(t)
	u, _ := url.Parse("http://" + up + "/base")
	f := NewForwarder(ForwardConfig{Upstream: u, Timeout: 5 * time.Second,
		Headers: []Header{{Name: "x-tenant", Value: "t1"}}})

	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.Header.SetMethod("POST")
	req.SetRequestURI("/webhook?x=1")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Custom_Header_1", "value1")
	req.Header.Set("X-Hub-Signature-256", "sha256=0123")
	req.SetBodyString(`{"object":"whatsapp_business_account","entry":[]}`)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)

	forward := func() {
		ctx.Response.Reset()
		f.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	forward() // warm the pools and the kept-alive connection
	if n := testing.AllocsPerRun(200, forward); n != 0 {
		t.Fatalf("forwarding allocates %.1f times per request, want 0", n)
	}
}
