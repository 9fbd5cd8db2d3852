package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/lograte"
)

// ServerLimits bounds what one connection may cost the sidecar.
type ServerLimits struct {
	MaxBody        int // request bodies above this get 413 on the announced length
	MaxHeaderBytes int // request line plus headers (0: 16 KiB)
	// HeaderTimeout bounds the wait for a request's line and headers: from the moment a
	// connection is accepted, and on a kept-alive connection from its next request's first
	// byte. A connection that sends nothing is closed when it passes, counted as
	// header_timeout and never as a bad request. 0: ReadTimeout covers headers and body.
	HeaderTimeout time.Duration
	ReadTimeout   time.Duration // reading one request's body once its headers are in
	WriteTimeout  time.Duration // writing one response
	IdleTimeout   time.Duration // keep-alive connection waiting for its next request's first byte
	// MaxConns and MaxConnsPerIP cap the connections open at once, idle ones included, on
	// the listener and from one address (an IPv6 address counts by its /64); 0 is no cap.
	// GateListener enforces both as connections arrive, counting and logging each refusal.
	MaxConns      int
	MaxConnsPerIP int
}

// NewServer returns a fasthttp server for h that keeps header bytes as received and adds
// nothing of its own to responses (no Server, Date or Content-Type defaults), so that what
// the upstream answers is what the sender gets. name labels the listener in metrics and
// logs; the requests a "webhook" listener cannot read count in requests_total, those of
// any other listener in api_requests_total{route="unreadable"}. Serve it on a
// GateListener with the same limits.
func NewServer(name string, h fasthttp.RequestHandler, l ServerLimits, log *slog.Logger) *fasthttp.Server {
	hdr := l.MaxHeaderBytes
	if hdr <= 0 {
		hdr = 16 << 10
	}
	ln := newListener(name, log.With("listener", name))
	// fasthttp's ReadTimeout runs from the connection's start (or a kept-alive request's
	// first byte) to the end of the body; HeaderReceived restarts it for the body. So the
	// wait for the first byte and the headers is short while a slow large body keeps
	// ReadTimeout.
	readTimeout := l.ReadTimeout
	var onHeaders func(*fasthttp.RequestHeader) fasthttp.RequestConfig
	if l.HeaderTimeout > 0 {
		body := fasthttp.RequestConfig{ReadTimeout: l.ReadTimeout}
		if body.ReadTimeout <= 0 {
			body.ReadTimeout = noBodyDeadline
		}
		readTimeout, onHeaders = l.HeaderTimeout, func(*fasthttp.RequestHeader) fasthttp.RequestConfig { return body }
	}
	return &fasthttp.Server{
		// No Name: fasthttp would send it as a Server header on every answer that has none,
		// adding to what the upstream said.
		Handler:            ln.guard(h),
		ErrorHandler:       ln.serverError,
		HeaderReceived:     onHeaders,
		MaxRequestBodySize: l.MaxBody,
		ReadBufferSize:     hdr,
		ReadTimeout:        readTimeout,
		WriteTimeout:       l.WriteTimeout,
		IdleTimeout:        l.IdleTimeout,
		// Above MaxConns, which GateListener enforces: a connection the gate admitted is
		// served even while a closed one's worker is still being handed back, so every
		// refusal is the gate's, counted and logged (fasthttp's own 503 is neither).
		Concurrency:                   l.MaxConns + (l.MaxConns+7)/8,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        connLogger{log.With("listener", name)},
	}
}

// noBodyDeadline stands for "no deadline" for a body when only HeaderTimeout is set.
const noBodyDeadline = 100 * 365 * 24 * time.Hour

// connLogger takes fasthttp's per-connection error lines (malformed requests, oversized
// bodies) to slog at debug level: the client already got its 4xx and a metric counts it,
// so at info level a misbehaving client could flood the log.
type connLogger struct{ log *slog.Logger }

func (l connLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

// serverError answers requests fasthttp could not read: 413 for a body over the limit
// (checked on the announced length, so it is neither read nor forwarded), 431 for
// oversized headers, 408 for a read timeout, else 400. A connection that timed out before
// its request line and headers were in never sent a request: it is counted as
// header_timeout, not as a bad request, and one that failed (a reset) before then is not
// counted at all.
func (l *listener) serverError(ctx *fasthttp.RequestCtx, err error) {
	var netErr net.Error
	var tooBig *fasthttp.ErrSmallBuffer
	isNet := errors.As(err, &netErr)
	headersIn := len(ctx.Request.Header.RawHeaders()) > 0
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		l.countUnreadable(fasthttp.StatusRequestEntityTooLarge)
		ctx.Error("request body is larger than -max-body\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &tooBig):
		l.countUnreadable(fasthttp.StatusRequestHeaderFieldsTooLarge)
		ctx.Error("request headers are too large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case isNet && netErr.Timeout() && !headersIn:
		l.rejected.add(rejectHeaderTimeout, ctx.RemoteAddr())
		ctx.Error("no request arrived in time\n", fasthttp.StatusRequestTimeout)
	case isNet && netErr.Timeout():
		l.countUnreadable(fasthttp.StatusRequestTimeout)
		ctx.Error("request was not read in time\n", fasthttp.StatusRequestTimeout)
	case isNet && !headersIn:
		// The client's connection failed before it sent a request: nobody reads an answer.
		ctx.Error("connection failed\n", fasthttp.StatusBadRequest)
	default:
		l.countUnreadable(fasthttp.StatusBadRequest)
		ctx.Error("malformed request: "+err.Error()+"\n", fasthttp.StatusBadRequest)
	}
}

// countUnreadable counts a request the listener could not read, with the listener's own
// requests: the webhook listener's by the result its sender saw, the API's by code.
func (l *listener) countUnreadable(code int) {
	if l.name != "webhook" {
		metrics.GetOrCreateCounter(`ctwa_sidecar_api_requests_total{route="unreadable",code="` +
			strconv.Itoa(code) + `"}`).Inc()
		return
	}
	if code == fasthttp.StatusRequestEntityTooLarge {
		requestsTooLarge.Inc()
		return
	}
	requestsBadRequest.Inc()
}

// guard runs h with the listener at hand (RequestLog) and turns a panic in it into a 500,
// a log line with the stack and a count: fasthttp does not recover panics, and one
// panicking API route would otherwise end the process, webhook forwarding included.
func (l *listener) guard(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if v := recover(); v != nil {
				l.answerPanic(ctx, v)
			}
		}()
		ctx.SetUserValue(listenerKey{}, l) // a pointer in an interface: no allocation
		h(ctx)
	}
}

// listener is what a handler learns of the server it runs in.
type listener struct {
	name     string
	log      *slog.Logger
	rejected *rejections // its connections closed without a request (header_timeout)
}

func newListener(name string, log *slog.Logger) *listener {
	return &listener{name: name, log: log, rejected: newRejections(name, log)}
}

type listenerKey struct{}

func listenerOf(ctx *fasthttp.RequestCtx) *listener {
	if l, ok := ctx.UserValue(listenerKey{}).(*listener); ok {
		return l
	}
	// A handler called outside NewServer (a unit test).
	return &listener{name: "none", log: slog.Default()}
}

// RequestLog returns the logger of the listener serving ctx, so that a route logs in the
// configured format without being handed a logger.
func RequestLog(ctx *fasthttp.RequestCtx) *slog.Logger { return listenerOf(ctx).log }

// routeOf names the handler of ctx in metrics and logs: the API route the router tagged it
// with, or "*" for a listener's one handler.
func routeOf(ctx *fasthttp.RequestCtx) (pattern string, api bool) {
	r, api := ctx.UserValue(routeKey{}).(*route)
	if !api {
		return "*", false
	}
	return r.patternOrUnmatched(), true
}

// answerPanic answers a request whose handler panicked: in the API's JSON error shape when
// the API router took it, else in plain text as the forwarder's own errors are.
func (l *listener) answerPanic(ctx *fasthttp.RequestCtx, v any) {
	pattern, api := routeOf(ctx)
	l.recordPanic(pattern, v)
	ctx.Response.Reset()
	if api {
		WriteError(ctx, fasthttp.StatusInternalServerError, "internal_error",
			"the sidecar failed while serving "+pattern+"; its log has the details", "")
		return
	}
	ctx.Error("internal error: the sidecar failed while handling this request\n", fasthttp.StatusInternalServerError)
}

// recordPanic logs and counts a recovered panic. The log names the route pattern, not the
// path: paths carry ids that logs must not print.
func (l *listener) recordPanic(pattern string, v any) {
	metrics.GetOrCreateCounter(`ctwa_sidecar_handler_panics_total{listener="` + l.name +
		`",route="` + pattern + `"}`).Inc()
	l.log.Error("handler panicked", "route", pattern, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// streamBody answers with a body that sw streams. fasthttp runs sw on a goroutine of its own
// once the handler returned, out of guard's reach, so sw gets its own recovery: a panic
// there cuts the body short and is logged and counted like one in a handler.
func streamBody(ctx *fasthttp.RequestCtx, sw func(w *bufio.Writer)) {
	l := listenerOf(ctx)
	pattern, _ := routeOf(ctx) // read now: ctx is not ours once the handler returns
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer func() {
			if v := recover(); v != nil {
				l.recordPanic(pattern, v)
			}
		}()
		sw(w)
	})
}

// Why a listener turned a connection away or closed it without a request: the reason
// label of connections_rejected_total.
const (
	rejectPerIP         = iota // per_ip_limit: its address already holds MaxConnsPerIP connections
	rejectConcurrency          // concurrency_limit: the listener already holds MaxConns connections
	rejectHeaderTimeout        // header_timeout: no request line and headers within HeaderTimeout
	rejectAcceptError          // accept_error: accepting failed (out of file descriptors), retried
	rejectReasons
)

var rejectNames = [rejectReasons]string{"per_ip_limit", "concurrency_limit", "header_timeout", "accept_error"}

var rejectLines = [rejectReasons]string{
	"connections refused: their address holds its most connections (-max-conns-per-ip)",
	"connections refused: the listener holds its most connections (-max-conns, -api-max-conns)",
	"connections closed without a request: no request line and headers within -header-timeout",
	"accepting connections failed, retrying: raise the file descriptor limit (ulimit -n) or lower -max-conns",
}

// rejections counts what one listener turned away, by reason, and logs each reason at most
// every lograte.Every with how many happened since its last line: a flood of connections
// must not become a flood of log lines.
type rejections struct {
	log     *slog.Logger
	counter [rejectReasons]*metrics.Counter
	limit   [rejectReasons]int
	lines   [rejectReasons]lograte.Limiter
}

func newRejections(listener string, log *slog.Logger) *rejections {
	r := &rejections{log: log}
	for i, name := range rejectNames {
		// Created at start, so that a rate over them works before the first rejection.
		r.counter[i] = metrics.GetOrCreateCounter(`ctwa_sidecar_connections_rejected_total{listener="` +
			listener + `",reason="` + name + `"}`)
	}
	return r
}

func (r *rejections) add(reason int, remote net.Addr, args ...any) {
	r.counter[reason].Inc()
	n, ok := r.lines[reason].Allow(time.Now())
	if !ok {
		return
	}
	level := slog.LevelWarn
	if reason == rejectHeaderTimeout {
		level = slog.LevelInfo // also browsers' speculative connections: common, harmless alone
	}
	args = append(args, "reason", rejectNames[reason], "count", n)
	if remote != nil {
		args = append(args, "remote", describeKey(remoteKey(remote)))
	}
	if r.limit[reason] > 0 {
		args = append(args, "limit", r.limit[reason])
	}
	r.log.Log(context.Background(), level, rejectLines[reason], args...)
}

// GateListener returns ln admitting at most l.MaxConns connections at once, and at most
// l.MaxConnsPerIP from one address, idle ones included. A connection over a cap is
// answered 429 (its address's cap) or 503 (the listener's) and closed at once, without
// taking a worker; each is counted in connections_rejected_total{listener=name} and
// logged at most every 5 s. Out of file descriptors, Accept waits and retries instead of
// failing (which would stop the server). fasthttp's own MaxConnsPerIP is not used: it
// leaves IPv6 senders uncapped and its refusals uncounted.
func GateListener(ln net.Listener, name string, l ServerLimits, log *slog.Logger) net.Listener {
	g := &gate{Listener: ln, maxConns: l.MaxConns, maxPerIP: l.MaxConnsPerIP, perIP: map[netip.Addr]int{},
		rejected: newRejections(name, log.With("listener", name)),
		open:     metrics.GetOrCreateGauge(`ctwa_sidecar_connections_open{listener="`+name+`"}`, nil)}
	g.rejected.limit[rejectPerIP], g.rejected.limit[rejectConcurrency] = l.MaxConnsPerIP, l.MaxConns
	g.refusal[rejectPerIP] = fastAnswer("429 Too Many Requests", "too many connections from your address\n")
	g.refusal[rejectConcurrency] = fastAnswer("503 Service Unavailable", "too many connections; retry later\n")
	return g
}

type gate struct {
	net.Listener
	maxConns, maxPerIP int
	rejected           *rejections
	open               *metrics.Gauge
	refusal            [rejectReasons][]byte

	mu    sync.Mutex
	n     int                // connections open
	perIP map[netip.Addr]int // connections open by remoteKey, when maxPerIP > 0
}

// fastAnswer is a whole HTTP response that closes the connection.
func fastAnswer(status, body string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Content-Length: %d\r\n\r\n%s", status, len(body), body)
}

func (g *gate) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			if !outOfResources(err) {
				return nil, err
			}
			// As net/http does: the connection waits in the backlog until a descriptor is free.
			g.rejected.add(rejectAcceptError, nil, "err", err.Error())
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		key := remoteKey(c.RemoteAddr())
		if reason := g.admit(key); reason >= 0 {
			g.rejected.add(reason, c.RemoteAddr())
			// A fresh socket's send buffer is empty: the write does not wait for the client.
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(g.refusal[reason])
			c.Close()
			continue
		}
		g.open.Inc()
		return &gatedConn{Conn: c, gate: g, key: key}, nil
	}
}

// admit takes a place for a connection from key, or returns why there is none (else -1).
func (g *gate) admit(key netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	perIP := g.maxPerIP > 0 && key.IsValid()
	switch {
	case perIP && g.perIP[key] >= g.maxPerIP:
		return rejectPerIP
	case g.maxConns > 0 && g.n >= g.maxConns:
		return rejectConcurrency
	}
	if perIP {
		g.perIP[key]++
	}
	g.n++
	return -1
}

func (g *gate) release(key netip.Addr) {
	g.mu.Lock()
	if g.maxPerIP > 0 && key.IsValid() {
		if n := g.perIP[key] - 1; n > 0 {
			g.perIP[key] = n
		} else {
			delete(g.perIP, key) // no key per address ever seen
		}
	}
	g.n--
	g.mu.Unlock()
	g.open.Dec()
}

// gatedConn gives its place back on its first Close (fasthttp may close a connection twice
// on shutdown).
type gatedConn struct {
	net.Conn
	gate   *gate
	key    netip.Addr
	closed atomic.Bool
}

func (c *gatedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.gate.release(c.key)
	}
	return c.Conn.Close()
}

// remoteKey is the address a connection counts against: its IP, or an IPv6 address's /64
// (one host's usual allocation). Not a TCP address: invalid, uncapped.
func remoteKey(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func describeKey(k netip.Addr) string {
	if k.Is6() {
		return k.String() + "/64"
	}
	return k.String()
}

// outOfResources reports an accept error that passes once connections close.
func outOfResources(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
