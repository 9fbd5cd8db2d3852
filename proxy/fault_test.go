package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// gateRecorder holds every recording until release is closed, then returns err.
type gateRecorder struct {
	started chan struct{}
	release chan struct{}
	err     error
}

func (g *gateRecorder) RecordSigned(_ context.Context, _ []byte, _ *engine.Signature) error {
	g.started <- struct{}{}
	<-g.release
	return g.err
}

// instantUpstream answers every request at once with 201 "up".
func instantUpstream(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.SetBodyString("up")
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

func handleAsync(f *Forwarder, body string) <-chan *fasthttp.RequestCtx {
	done := make(chan *fasthttp.RequestCtx, 1)
	go func() {
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/webhook")
		req.SetBodyString(body)
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
		f.Handle(ctx)
		done <- ctx
	}()
	return done
}

// TestAnswerWaitsForTheCommit: however fast the upstream answers, the sender gets that
// answer only once the recording returned (SPEC §3.2), and a failed recording does not
// change the answer. The kill -9 tests prove the same end to end, but only this one sees
// a recorder that is slower than the upstream.
func TestAnswerWaitsForTheCommit(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, recErr := range []error{nil, errors.New("store is closed")} {
		rec := &gateRecorder{started: make(chan struct{}, 1), release: make(chan struct{}), err: recErr}
		f := NewForwarder(ForwardConfig{Upstream: instantUpstream(t), Timeout: 5 * time.Second, Recorder: rec, Log: quiet})
		done := handleAsync(f, `{"object":"whatsapp_business_account"}`)
		<-rec.started
		select {
		case ctx := <-done:
			t.Fatalf("answered %d before the recording returned", ctx.Response.StatusCode())
		case <-time.After(300 * time.Millisecond):
		}
		close(rec.release)
		select {
		case ctx := <-done:
			if ctx.Response.StatusCode() != fasthttp.StatusCreated || string(ctx.Response.Body()) != "up" {
				t.Fatalf("recording error %v: answered %d %q, want the upstream's 201 up", recErr,
					ctx.Response.StatusCode(), ctx.Response.Body())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer after the recording returned")
		}
	}
}
