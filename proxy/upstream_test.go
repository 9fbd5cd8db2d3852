package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// startTestUpstream serves 200 "ok" on a loopback port until the test ends.
func startTestUpstream(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}
