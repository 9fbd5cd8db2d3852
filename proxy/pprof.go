package proxy

import (
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// RegisterPprof adds Go's profiling endpoints under /v1/debug/pprof/ (behind the API
// token): `go tool pprof http://127.0.0.1:9090/v1/debug/pprof/profile?seconds=20`.
func RegisterPprof(a *API) {
	for _, p := range []string{"cmdline", "profile", "symbol", "trace", "heap", "goroutine", "allocs",
		"block", "mutex", "threadcreate"} {
		a.Handle("GET", "/v1/debug/pprof/"+p, AuthToken, func(ctx *fasthttp.RequestCtx, _ Params) {
			// pprofhandler routes on the net/http/pprof paths.
			ctx.URI().SetPath("/debug/pprof/" + p)
			pprofhandler.PprofHandler(ctx)
		})
	}
}
