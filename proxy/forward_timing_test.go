package proxy

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkForward measures one webhook relayed through Forwarder.Handle to a loopback
// upstream, the upstream's own cost included.
func BenchmarkForward(b *testing.B) {
	up := startTestUpstream(b)
	u, _ := url.Parse("http://" + up)
	f := NewForwarder(ForwardConfig{Upstream: u, Timeout: 5 * time.Second})
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/webhook")
		req.Header.Set("Content-Type", "application/json")
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
		for pb.Next() {
			ctx.Response.Reset()
			f.Handle(&ctx)
		}
	})
}
