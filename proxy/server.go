package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

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
		Handler:                       h,
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
