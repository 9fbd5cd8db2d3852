package main

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// childCommand is the hidden first argument with which the driver re-executes itself to
// run the stub upstream or the bare forwarder in a process of its own.
const childCommand = "__bench_child"

// runChild runs a child role when args ask for one; handled reports whether they did.
func runChild(args []string) (handled bool, err error) {
	if len(args) == 0 || args[0] != childCommand {
		return false, nil
	}
	switch {
	case len(args) == 3 && args[1] == "upstream":
		return true, serveUpstream(args[2])
	case len(args) == 4 && args[1] == "bare":
		return true, serveBare(args[2], args[3])
	}
	return true, fmt.Errorf("bad child arguments %q", args[1:])
}

// childArgs are the arguments that start role in a child process.
func childArgs(role string, rest ...string) []string {
	return append([]string{childCommand, role}, rest...)
}

var okBody = []byte(`{"ok":true}`)

// serveUpstream answers every request with 200 {"ok":true}, as a business webhook that
// queues the work and acknowledges at once. It stops when the driver sends SIGTERM.
func serveUpstream(listen string) error {
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(okBody)
		},
		Name:                          "stub",
		DisableHeaderNamesNormalizing: true,
		IdleTimeout:                   2 * time.Minute,
	}
	return srv.ListenAndServe(listen)
}

// serveBare forwards every request to upstream and relays the answer with as little work
// as fasthttp allows: the inbound request itself is sent, no header is rewritten and
// nothing is recorded. It is the floor the sidecar is compared with.
func serveBare(listen, upstream string) error {
	client := &fasthttp.HostClient{
		Addr:                          upstream,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		ReadTimeout:                   10 * time.Second,
		WriteTimeout:                  10 * time.Second,
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			// Connection is hop-by-hop: the inbound one must not close the upstream one.
			ctx.Request.Header.Del("Connection")
			if err := client.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error("bad gateway: "+err.Error(), fasthttp.StatusBadGateway)
				return
			}
			ctx.Response.Header.Del("Connection")
		},
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: true,
		IdleTimeout:                   2 * time.Minute,
	}
	return srv.ListenAndServe(listen)
}
