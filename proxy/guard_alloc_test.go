//go:build !race

package proxy

import (
	"io"
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestGuardDoesNotAllocate: the panic guard wraps the webhook listener too, so it must keep
// SPEC §8's 0 allocations per request (fasthttp resets user values between requests).
func TestGuardDoesNotAllocate(t *testing.T) {
	h := newListener("webhook", slog.New(slog.NewTextHandler(io.Discard, nil))).
		guard(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(200) })
	var ctx fasthttp.RequestCtx
	serve := func() {
		ctx.ResetUserValues()
		h(&ctx)
	}
	serve()
	if n := testing.AllocsPerRun(200, serve); n != 0 {
		t.Fatalf("the guard allocates %.1f times per request, want 0", n)
	}
}
