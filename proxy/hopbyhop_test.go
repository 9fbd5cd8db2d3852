package proxy

import (
	"bufio"
	"net"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// headerNames lists the names of every header yielded by all, lower-cased, so that a check
// cannot miss a header because of the spelling the proxy forwards it with.
func headerNames(all func(yield func(k, v []byte) bool)) []string {
	var names []string
	all(func(k, _ []byte) bool {
		names = append(names, strings.ToLower(string(k)))
		return true
	})
	sort.Strings(names)
	return names
}

// TestBuildRequestDropsHopByHop parses a request as the server does (names as sent) and
// checks the upstream request: the fixed hop-by-hop names in any case, Proxy-*, and the
// names its Connection lines list (RFC 9110 §7.6.1) are gone; everything else stays.
func TestBuildRequestDropsHopByHop(t *testing.T) {
	raw := "POST /w?x=1 HTTP/1.1\r\nHost: sender.example\r\n" +
		"Content-Type: application/json\r\nX-Keep: 1\r\nCustom_Header_1: v\r\n" +
		"keep-alive: timeout=5\r\nPROXY-Authorization: Basic x\r\nte: trailers\r\nUPGRADE: h2c\r\n" +
		"Connection: keep-alive, X-Hop-One\r\nconnection: x_hop_two ,\r\n" +
		"x-hop-one: 1\r\nX-HOP-TWO: 2\r\nX_Hop_Two: 3\r\n" +
		"Content-Length: 2\r\n\r\n{}"
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	u, _ := url.Parse("http://127.0.0.1:1")
	f := NewForwarder(ForwardConfig{Upstream: u, Timeout: time.Second})

	var out fasthttp.Request
	f.buildRequest(&ctx, &out, new(scratch))
	got := strings.Join(headerNames(out.Header.All()), " ")
	want := "content-type custom-header-1 host x-forwarded-for x-forwarded-proto x-keep"
	if got != want {
		t.Fatalf("upstream request headers\n got  %s\n want %s", got, want)
	}
}

// TestStripHopByHopResponse parses an upstream answer as the client does (names as sent)
// and checks what the sender would get.
func TestStripHopByHopResponse(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Keep: 1\r\n" +
		"keep-alive: timeout=5\r\nproxy-hint: x\r\nTrailer: X-Sum\r\nupgrade: h2c\r\n" +
		"Connection: X-Hop-One\r\nCONNECTION: x-hop-two\r\nx-hop-one: 1\r\nX_HOP_TWO: 2\r\n" +
		"Content-Length: 2\r\n\r\nok"
	var resp fasthttp.Response
	resp.Header.DisableNormalizing()
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	stripHopByHop(&resp.Header, new(scratch))
	got := strings.Join(headerNames(resp.Header.All()), " ")
	if want := "content-length content-type x-keep"; got != want {
		t.Fatalf("response headers relayed\n got  %s\n want %s", got, want)
	}
}
