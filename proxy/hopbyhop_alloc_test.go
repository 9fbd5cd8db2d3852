//go:build !race

package proxy

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestForwardWithConnectionOptionsDoesNotAllocate keeps SPEC §8's 0 allocations when both
// the request and the upstream's answer name extra hop-by-hop headers in Connection.
func TestForwardWithConnectionOptionsDoesNotAllocate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Connection", "keep-alive, X-Up-Hop")
		ctx.Response.Header.Set("X-Up-Hop", "1")
		ctx.Response.Header.Set("keep-alive", "timeout=5")
		ctx.SetBodyString("ok")
	}}
	go up.Serve(ln)
	t.Cleanup(func() { up.Shutdown() })
	u, _ := url.Parse("http://" + ln.Addr().String())
	f := NewForwarder(ForwardConfig{Upstream: u, Timeout: 5 * time.Second})

	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.Header.SetMethod("POST")
	req.SetRequestURI("/webhook")
	req.Header.Set("Connection", "keep-alive, X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Proxy-Authorization", "Basic x")
	req.SetBodyString(`{}`)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)

	forward := func() {
		ctx.Response.Reset()
		f.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Header.Peek("X-Up-Hop")) != 0 {
			t.Fatalf("status %d, headers %s", ctx.Response.StatusCode(), ctx.Response.Header.Header())
		}
	}
	forward() // warm the pools and the kept-alive connection
	if n := testing.AllocsPerRun(200, forward); n != 0 {
		t.Fatalf("forwarding allocates %.1f times per request, want 0", n)
	}
}
