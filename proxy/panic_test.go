package proxy

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAPIPanicIsAJSON500 panics in an API route, as a nil dereference would, after the
// handler started its answer: the caller gets the API's JSON 500 and nothing of the
// half-written answer, the panic is logged without the request path and counted by
// route, and the same server keeps serving.
func TestAPIPanicIsAJSON500(t *testing.T) {
	a := NewAPI("", func() error { return nil })
	a.Handle("GET", "/v1/leads/{phone}", AuthNone, func(ctx *fasthttp.RequestCtx, _ Params) {
		ctx.Response.Header.Set("X-Half-Written", "1")
		ctx.SetBodyString("partial")
		var p *Param
		_ = p.Value // nil dereference
	})
	base, logged := serveAPI(t, "api-panic", a)

	resp, err := http.Get(base + "/v1/leads/4917012345678")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e errorBody
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil {
		t.Fatalf("answer %d %q %s, want a JSON 500", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if e.Error.Code != "internal_error" || !strings.Contains(e.Error.Message, "/v1/leads/{phone}") {
		t.Errorf("error %+v, want code internal_error naming the route", e.Error)
	}
	if resp.Header.Get("X-Half-Written") != "" {
		t.Errorf("the half-written answer's header was sent")
	}

	series := `ctwa_sidecar_handler_panics_total{listener="api-panic",route="/v1/leads/{phone}"}`
	if n := counterValue(t, series); n != 1 {
		t.Errorf("%s = %v, want 1", series, n)
	}
	log := logged.String()
	if !strings.Contains(log, "handler panicked") || !strings.Contains(log, "nil pointer dereference") {
		t.Errorf("panic not logged:\n%s", log)
	}
	if strings.Contains(log, "4917012345678") {
		t.Errorf("the log prints the request path (a phone number):\n%s", log)
	}
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("server after the panic: %v", err)
	}
}

// TestListenerPanicIsA500 covers a listener's own handler (the webhook listener's): plain
// text, as the forwarder's own errors are, and the next request is served.
func TestListenerPanicIsA500(t *testing.T) {
	var calls atomic.Int32
	srv := NewServer("plain-panic", func(ctx *fasthttp.RequestCtx) {
		if calls.Add(1) == 1 {
			panic("first request breaks")
		}
		ctx.SetBodyString("ok")
	}, ServerLimits{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })

	for i, want := range []int{500, 200} {
		resp, err := http.Post("http://"+ln.Addr().String()+"/webhook", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 500 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain")) {
			t.Fatalf("request %d: %d %q %q, want %d", i, resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
		}
	}
	if n := counterValue(t, `ctwa_sidecar_handler_panics_total{listener="plain-panic",route="*"}`); n != 1 {
		t.Errorf("panics counted %v, want 1", n)
	}
}
