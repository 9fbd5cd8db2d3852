package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/lograte"
)

// ForwardConfig configures the webhook forwarder.
type ForwardConfig struct {
	Upstream *url.URL      // http(s) base URL; the request path and query are appended
	Headers  []Header      // extra headers set on every forwarded request
	Timeout  time.Duration // upstream deadline; past it the sender gets 504
	// MaxResponseBody caps the upstream response the sidecar buffers (0: 64 MiB).
	MaxResponseBody int
	// Recorder, when set, records the events of every POSTed webhook beside the forward.
	Recorder Recorder
	// Log receives recording failures (rate-limited).
	Log *slog.Logger
}

// Recorder records the marketing events of a webhook body. RecordSigned returns once
// they are committed, so a webhook answered afterwards is never lost (SPEC §3.2); sig
// carries the signature headers for the formats whose secret is configured.
type Recorder interface {
	RecordSigned(ctx context.Context, body []byte, sig *engine.Signature) error
}

// Forwarder relays every request to one fixed upstream. It never uses the inbound Host
// header to pick a destination, so it cannot be used as an open proxy.
type Forwarder struct {
	client   *fasthttp.HostClient
	host     string // Host header sent upstream
	basePath string // upstream path prefix, without a trailing slash
	headers  []Header
	timeout  time.Duration
	rec      Recorder
	log      *slog.Logger
	// errLog rate-limits recording-failure logs.
	errLog lograte.Limiter
}

// NewForwarder builds a Forwarder for cfg. The upstream must already be validated.
func NewForwarder(cfg ForwardConfig) *Forwarder {
	maxResp := cfg.MaxResponseBody
	if maxResp <= 0 {
		maxResp = 64 << 20
	}
	isTLS := cfg.Upstream.Scheme == "https"
	return &Forwarder{
		client: &fasthttp.HostClient{
			Addr:                          hostPort(cfg.Upstream),
			IsTLS:                         isTLS,
			DisableHeaderNamesNormalizing: true, // header bytes reach the upstream as sent
			DisablePathNormalizing:        true, // path bytes too
			NoDefaultUserAgentHeader:      true,
			MaxResponseBodySize:           maxResp,
			RetryIfErr:                    retryClosedIdleConn,
		},
		host:     cfg.Upstream.Host,
		basePath: strings.TrimSuffix(cfg.Upstream.EscapedPath(), "/"),
		headers:  cfg.Headers,
		timeout:  cfg.Timeout,
		rec:      cfg.Recorder,
		log:      cfg.Log,
	}
}

// hostPort returns the dial address of u, adding the scheme's default port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// retryClosedIdleConn retries a request once when the upstream closed a kept-alive
// connection before answering: the request was not processed, and failing it would hand
// the sender a 502 for a race between two idle timers. fasthttp calls this only for
// errors it deems retryable (a reused connection that broke before the response).
func retryClosedIdleConn(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
	closed := errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed)
	return false, closed && attempts < 2
}

// scratch holds per-request state, pooled so that forwarding does not allocate.
type scratch struct {
	uri, name, xff []byte
	// conn collects the names a message's Connection headers declare hop-by-hop; drop the
	// response headers to delete once their iteration is over.
	conn, drop []byte
	// The recording that runs beside the forward.
	rec     Recorder
	body    []byte
	sig     engine.Signature
	recErr  error
	recDone chan struct{}
	record  func() // s.runRecord, bound once so starting it does not allocate
}

var scratchPool = sync.Pool{New: func() any {
	s := &scratch{recDone: make(chan struct{}, 1)}
	s.record = s.runRecord
	return s
}}

func (s *scratch) runRecord() {
	s.recErr = s.rec.RecordSigned(context.Background(), s.body, &s.sig)
	s.recDone <- struct{}{}
}

// Handle forwards ctx's request upstream and relays the answer. The upstream response is
// read straight into ctx.Response, so its body is never copied.
func (f *Forwarder) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	inFlight.Inc()
	defer inFlight.Dec()
	requestBytes.Add(len(ctx.Request.Body()))

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	s := scratchPool.Get().(*scratch)
	defer s.release()
	f.buildRequest(ctx, req, s)
	f.startRecording(ctx, s)

	err := f.client.DoTimeout(req, &ctx.Response, f.timeout)
	forwardDuration.UpdateDuration(start)
	// Answer only once the webhook's events are committed. A failed commit is counted and
	// logged, and the upstream's answer still goes out: the business's webhook matters more
	// than the sidecar's records.
	if recErr := s.awaitRecording(); recErr != nil {
		f.logRecordError(recErr)
	}
	if err != nil {
		f.fail(ctx, err)
		return
	}
	stripHopByHop(&ctx.Response.Header, s)
	responseBytes.Add(len(ctx.Response.Body()))
	countStatus(ctx.Response.StatusCode())
}

// startRecording starts recording a POSTed webhook body beside the forward.
func (f *Forwarder) startRecording(ctx *fasthttp.RequestCtx, s *scratch) {
	if f.rec == nil || !ctx.IsPost() || len(ctx.Request.Body()) == 0 {
		return
	}
	s.rec, s.body = f.rec, ctx.Request.Body()
	readSignature(&s.sig, &ctx.Request.Header)
	go s.record()
}

// awaitRecording waits for the recording started beside the forward, if any, and returns
// its error.
func (s *scratch) awaitRecording() error {
	if s.rec == nil {
		return nil
	}
	<-s.recDone
	err := s.recErr
	s.rec, s.body, s.sig, s.recErr = nil, nil, engine.Signature{}, nil
	return err
}

// release returns s to the pool once no recording reads it or the request body (which
// fasthttp reuses when the handler returns), also when a panic that the server's guard
// recovers cut Handle short.
func (s *scratch) release() {
	_ = s.awaitRecording() // after a panic the recording's outcome has no one to go to
	scratchPool.Put(s)
}

// readSignature collects the signature headers of every format in one pass over the
// request headers (names matched as the forwarding rule normalizes them).
func readSignature(sig *engine.Signature, h *fasthttp.RequestHeader) {
	*sig = engine.Signature{}
	for k, v := range h.All() {
		switch {
		case sameHeaderName(k, "X-Hub-Signature-256"):
			sig.HubSignature256 = v
		case sameHeaderName(k, "YCloud-Signature"):
			sig.YCloud = v
		case sameHeaderName(k, "x-sinch-webhook-signature"):
			sig.Sinch = v
		case sameHeaderName(k, "x-sinch-webhook-signature-nonce"):
			sig.SinchNonce = v
		case sameHeaderName(k, "x-sinch-webhook-signature-timestamp"):
			sig.SinchTimestamp = v
		}
	}
}

func (f *Forwarder) logRecordError(err error) {
	if n, ok := f.errLog.Allow(time.Now()); ok {
		f.log.Error("webhook forwarded but not recorded", "err", err, "failures", n)
	}
}

// buildRequest writes into req the request to send upstream.
func (f *Forwarder) buildRequest(ctx *fasthttp.RequestCtx, req *fasthttp.Request, s *scratch) {
	h := &req.Header
	h.DisableNormalizing()
	h.SetNoDefaultContentType(true)
	h.SetMethodBytes(ctx.Method())
	s.uri = appendUpstreamURI(append(s.uri[:0], f.basePath...), ctx)
	h.SetRequestURIBytes(s.uri)
	h.SetHost(f.host)

	s.conn = s.conn[:0]
	for k, v := range ctx.Request.Header.All() {
		s.conn = appendConnectionOptions(s.conn, k, v)
	}
	s.xff = s.xff[:0]
	hasProto := false // a front proxy (or -upstream-header) already said the scheme
	for k, v := range ctx.Request.Header.All() {
		switch {
		case isHopByHopIn(s.conn, k), equalFold(k, "Host"), equalFold(k, "Content-Length"), equalFold(k, "Expect"):
			// The proxy sets Host and Content-Length itself, and the body is already read,
			// so an Expect: 100-continue has been answered here.
			continue
		case equalFold(k, "X-Forwarded-For"):
			s.xff = append(append(s.xff, v...), ", "...)
			continue
		}
		hasProto = hasProto || sameHeaderName(k, "X-Forwarded-Proto")
		s.name = AppendHeaderName(s.name[:0], k)
		h.AddBytesKV(s.name, v)
	}
	for i := range f.headers {
		h.Set(f.headers[i].Name, f.headers[i].Value)
		hasProto = hasProto || sameHeaderName([]byte(f.headers[i].Name), "X-Forwarded-Proto")
	}
	s.xff = appendRemoteIP(s.xff, ctx.RemoteAddr())
	h.SetBytesKV(strXForwardedFor, s.xff)
	if !hasProto {
		h.SetBytesKV(strXForwardedProto, schemeOf(ctx))
	}
	req.SetBodyRaw(ctx.Request.Body())
}

var (
	strXForwardedFor   = []byte("X-Forwarded-For")
	strXForwardedProto = []byte("X-Forwarded-Proto")
	strHTTP            = []byte("http")
	strHTTPS           = []byte("https")
)

func schemeOf(ctx *fasthttp.RequestCtx) []byte {
	if ctx.IsTLS() {
		return strHTTPS
	}
	return strHTTP
}

// appendUpstreamURI appends the path and query exactly as the sender wrote them.
func appendUpstreamURI(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	raw := ctx.Request.Header.RequestURI()
	if len(raw) > 0 && raw[0] == '/' {
		return append(dst, raw...)
	}
	// Absolute-form request target ("POST http://host/path"): keep only path and query, so
	// the fixed upstream stays the only destination.
	u := ctx.URI()
	dst = append(dst, u.PathOriginal()...)
	if q := u.QueryString(); len(q) > 0 {
		dst = append(append(dst, '?'), q...)
	}
	return dst
}

// appendRemoteIP appends the sender's IP address without allocating.
func appendRemoteIP(dst []byte, addr net.Addr) []byte {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap().AppendTo(dst)
	}
	return append(dst, addr.String()...)
}

// stripHopByHop removes the hop-by-hop headers of an upstream response, whatever the case
// of their names: the client keeps the upstream's spelling, and fasthttp deletes by exact
// name then.
func stripHopByHop(h *fasthttp.ResponseHeader, s *scratch) {
	s.conn = s.conn[:0]
	for k, v := range h.All() {
		s.conn = appendConnectionOptions(s.conn, k, v)
	}
	// Deleting while iterating is undefined in fasthttp: collect the names first.
	s.drop = s.drop[:0]
	for k := range h.All() {
		if isHopByHopIn(s.conn, k) {
			s.drop = append(append(s.drop, k...), '\n') // no header name holds a line break
		}
	}
	for rest := s.drop; len(rest) > 0; {
		var name []byte
		name, rest, _ = bytes.Cut(rest, strNewline)
		h.DelBytes(name)
	}
}

var strNewline = []byte("\n")

func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// fail answers the sender when the upstream gave no response: 504 past the deadline,
// 502 otherwise, never a 2xx on the upstream's behalf.
func (f *Forwarder) fail(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Reset()
	status, msg := fasthttp.StatusBadGateway, "bad gateway: "
	var netErr net.Error
	switch {
	// A deadline that passes while the response is read comes back as the connection's
	// own timeout error, not fasthttp.ErrTimeout: the upstream was as late all the same.
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		status, msg = fasthttp.StatusGatewayTimeout, "gateway timeout: "
		upstreamTimeout.Inc()
		requestsTimeout.Inc()
		msg += "upstream did not answer within " + f.timeout.String()
	case errors.Is(err, syscall.ECONNREFUSED):
		upstreamRefused.Inc()
		requestsBadGateway.Inc()
		msg += "upstream refused the connection"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		upstreamTooLarge.Inc()
		requestsBadGateway.Inc()
		msg += "upstream response is larger than the proxy buffers"
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET):
		upstreamClosed.Inc()
		requestsBadGateway.Inc()
		msg += "upstream closed the connection without a complete response"
	default:
		upstreamOther.Inc()
		requestsBadGateway.Inc()
		msg += "upstream unreachable: " + err.Error()
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg + "\n")
}
