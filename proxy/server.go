package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// ServerLimits bounds what one connection may cost the sidecar.
type ServerLimits struct {
	MaxBody        int           // request bodies above this get 413 on the announced length
	MaxHeaderBytes int           // request line plus headers (0: 16 KiB)
	ReadTimeout    time.Duration // reading one request, headers and body
	WriteTimeout   time.Duration // writing one response
	IdleTimeout    time.Duration // keep-alive connection waiting for its next request
	MaxConns       int           // concurrent connections (0: fasthttp's default)
}

// NewServer returns a fasthttp server for h that keeps header bytes as received and adds
// nothing of its own to responses (no Server, Date or Content-Type defaults), so that what
// the upstream answers is what the sender gets.
func NewServer(name string, h fasthttp.RequestHandler, l ServerLimits, log *slog.Logger) *fasthttp.Server {
	hdr := l.MaxHeaderBytes
	if hdr <= 0 {
		hdr = 16 << 10
	}
	return &fasthttp.Server{
		// No Name: fasthttp would send it as a Server header on every answer that has none,
		// adding to what the upstream said.
		Handler:                       guard(name, h, log.With("listener", name)),
		ErrorHandler:                  serverError,
		MaxRequestBodySize:            l.MaxBody,
		ReadBufferSize:                hdr,
		ReadTimeout:                   l.ReadTimeout,
		WriteTimeout:                  l.WriteTimeout,
		IdleTimeout:                   l.IdleTimeout,
		Concurrency:                   l.MaxConns,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        connLogger{log.With("listener", name)},
	}
}

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
// oversized headers, 408 for a read timeout, else 400.
func serverError(ctx *fasthttp.RequestCtx, err error) {
	var netErr net.Error
	var tooBig *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		requestsTooLarge.Inc()
		ctx.Error("request body is larger than -max-body\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &tooBig):
		requestsBadRequest.Inc()
		ctx.Error("request headers are too large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		requestsBadRequest.Inc()
		ctx.Error("request was not read in time\n", fasthttp.StatusRequestTimeout)
	default:
		requestsBadRequest.Inc()
		ctx.Error("malformed request: "+err.Error()+"\n", fasthttp.StatusBadRequest)
	}
}

// guard runs h with the listener at hand (RequestLog) and turns a panic in it into a 500,
// a log line with the stack and a count: fasthttp does not recover panics, and one
// panicking API route would otherwise end the process, webhook forwarding included.
func guard(name string, h fasthttp.RequestHandler, log *slog.Logger) fasthttp.RequestHandler {
	l := &listener{name: name, log: log}
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
	name string
	log  *slog.Logger
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
