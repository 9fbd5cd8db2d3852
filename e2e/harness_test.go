package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// received is one request as the stub upstream saw it.
type received struct {
	method, uri string
	rawHeaders  string
	body        []byte
}

// stubUpstream is a real HTTP server on 127.0.0.1 that records what reaches it and answers
// with respond.
type stubUpstream struct {
	addr string
	mu   sync.Mutex
	got  []received
}

func startUpstream(t *testing.T, respond func(ctx *fasthttp.RequestCtx)) *stubUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &stubUpstream{addr: ln.Addr().String()}
	srv := &fasthttp.Server{
		DisableHeaderNamesNormalizing: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			u.mu.Lock()
			u.got = append(u.got, received{
				method:     string(ctx.Method()),
				uri:        string(ctx.RequestURI()),
				rawHeaders: string(ctx.Request.Header.RawHeaders()),
				body:       append([]byte(nil), ctx.PostBody()...),
			})
			u.mu.Unlock()
			respond(ctx)
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return u
}

func (u *stubUpstream) requests() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

// runSidecar is a running `serve` started through sidecar.Run, stopped at the end of the test.
type runSidecar struct {
	webhook, api string // base URLs
	stderr       *syncBuffer
	cancel       context.CancelFunc
	done         chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSidecar(t *testing.T, upstreamURL string, args ...string) *runSidecar {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runSidecar{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	addrs := make(chan [2]net.Addr, 1)
	all := append([]string{"serve", "-upstream", upstreamURL, "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", t.TempDir()}, args...)
	e := sidecar.Env{Stderr: s.stderr, Listening: func(w, a net.Addr) { addrs <- [2]net.Addr{w, a} }}
	go func() { s.done <- sidecar.Run(ctx, all, e) }()
	select {
	case a := <-addrs:
		s.webhook, s.api = "http://"+a[0].String(), "http://"+a[1].String()
	case err := <-s.done:
		t.Fatalf("sidecar did not start: %v\n%s", err, s.stderr)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the sidecar and waits for sidecar.Run to return nil.
func (s *runSidecar) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Errorf("sidecar.Run returned %v", err)
	}
	s.done <- nil // a second stop (test plus cleanup) returns at once
}

// rawRequest sends bytes on a new connection and returns the raw response.
func rawRequest(t *testing.T, base, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(resp)
}

func mustDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func newRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// testLog opens the log kept in store.
func testLog(t testing.TB, store *storage.Store) *storage.Log {
	t.Helper()
	l, err := storage.OpenLog(store)
	if err != nil {
		t.Fatalf("storage.OpenLog: %v", err)
	}
	return l
}

// call2xx sends one request and returns the body; a transport error or a status that is
// not 2xx is an error.
func call2xx(method, url, contentType, body string) ([]byte, error) {
	status, _, got, err := do(method, url, contentType, []byte(body))
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("%s %s answered %d: %s", method, url, status, bytes.TrimSpace(got))
	}
	return got, nil
}

// getJSON2xx GETs url and decodes its 2xx answer into v.
func getJSON2xx(url string, v any) error {
	body, err := call2xx("GET", url, "", "")
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}
