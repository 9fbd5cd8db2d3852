// Package sidecar is the ctwa-sidecar command: its configuration (flags and CTWA_
// variables), serve (the webhook and API listeners on the store), backup and restore, and
// the demo. The binary's main only builds an Env from the process and calls Run; tests run
// the same commands in process through Run.
package sidecar

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
)

// Env is what a command reads and writes besides its arguments: the process's
// environment and standard streams in main, stand-ins in tests.
type Env struct {
	// Getenv looks up the CTWA_<NAME> variable each flag falls back to (os.Getenv in
	// main); nil reads no variables.
	Getenv func(string) string
	// Stdout takes -help, version, the demo's tables and `backup -out -`; Stderr takes
	// the log. A nil writer discards.
	Stdout, Stderr io.Writer
	// Version is what `version` prints and the start-up log line names; "" takes the
	// module version from the build info, or "(devel)".
	Version string
	// Listening, when set, is told the bound addresses of the webhook and API listeners
	// once both accept (with -listen 127.0.0.1:0, the ports chosen).
	Listening func(webhook, api net.Addr)
}

// Run executes one command line (without the program name): serve (the default), demo,
// backup, restore, version or help. It returns when the command is done or, for serve and
// demo, when ctx is cancelled; -help prints the flags and returns nil.
func Run(ctx context.Context, args []string, e Env) error {
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	cmd := "serve"
	switch {
	case len(args) > 0 && (args[0] == "--version" || args[0] == "-version"):
		cmd = "version" // what users of other tools type first
	case len(args) > 0 && args[0] != "" && args[0][0] != '-':
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		c, err := parseServe(args, e.Getenv, e.Stdout)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		return serve(ctx, c, e)
	case "demo":
		return demo(ctx, args, e)
	case "backup", "restore":
		return backupRestore(cmd, args, e)
	case "version":
		fmt.Fprintln(e.Stdout, "ctwa-sidecar", buildVersion(e.Version))
		return nil
	case "help":
		_, err := parseServe([]string{"-help"}, e.Getenv, e.Stdout)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return fmt.Errorf("unknown command %q: commands are serve (default), demo, backup, restore and version; see -help", cmd)
}

func buildVersion(version string) string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// shutdownGrace bounds how long in-flight requests may take to finish after SIGTERM.
const shutdownGrace = 30 * time.Second

// serve opens the store, runs the webhook and API listeners until ctx is cancelled, then
// drains them and closes the store.
func serve(ctx context.Context, c *config, e Env) error {
	log := newLogger(c.logFormat, e.Stderr)
	c.warnNormalizedHeaders(log)
	if limit, ok := openFileLimit(); ok {
		c.warnFileLimit(log, limit)
	}

	stores, err := c.openStores(log)
	if err != nil {
		return err
	}
	defer stores.close(log)
	rec, apiHandler, err := startRecording(ctx, c, stores, log)
	if err != nil {
		return err
	}
	defer rec.Close() // after the listeners drained, before the stores close
	apiLimits := proxy.ServerLimits{
		MaxBody: 16 << 20, HeaderTimeout: c.headerTimeout, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxConns: c.apiMaxConns,
	}
	apiSrv := proxy.NewServer("api", apiHandler, apiLimits, log)

	apiLn, err := net.Listen("tcp", c.apiListen)
	if err != nil {
		return fmt.Errorf("-api-listen %q: %w", c.apiListen, err)
	}
	srvs, lns := []*fasthttp.Server{apiSrv}, []net.Listener{proxy.GateListener(apiLn, "api", apiLimits, log)}
	var webhookAddr net.Addr // none on a read replica (-listen "")
	upstream := "none (a read replica)"
	if c.listen != "" {
		webhookLn, err := net.Listen("tcp", c.listen)
		if err != nil {
			apiLn.Close()
			return fmt.Errorf("-listen %q: %w", c.listen, err)
		}
		fwd := proxy.NewForwarder(proxy.ForwardConfig{
			Upstream: c.upstream, Headers: c.upstreamHeaders, Timeout: c.upstreamTimeout,
			Recorder: rec, Log: log,
		})
		webhookLimits := proxy.ServerLimits{
			MaxBody: int(c.maxBody), HeaderTimeout: c.headerTimeout, ReadTimeout: 30 * time.Second,
			WriteTimeout: c.upstreamTimeout + 30*time.Second, IdleTimeout: 2 * time.Minute,
			MaxConns: c.maxConns, MaxConnsPerIP: c.maxConnsPerIP,
		}
		webhook := proxy.NewServer("webhook", fwd.Handle, webhookLimits, log)
		webhookAddr, upstream = webhookLn.Addr(), c.upstream.Redacted()
		// First, so that it stops taking webhooks before the API stops answering.
		srvs = append([]*fasthttp.Server{webhook}, srvs...)
		lns = append([]net.Listener{proxy.GateListener(webhookLn, "webhook", webhookLimits, log)}, lns...)
	}
	api := localURL(apiLn.Addr())
	log.Info("ctwa-sidecar started", "version", buildVersion(e.Version), "listen", addrString(webhookAddr),
		"api_listen", apiLn.Addr().String(), "dashboard", api+"/", "metrics", api+"/metrics",
		"upstream", upstream, "data", c.dataDir, "nats_stream", c.cluster.stream, "clients", stores.clients())
	if e.Listening != nil {
		e.Listening(webhookAddr, apiLn.Addr())
	}
	return serveUntilDone(ctx, log, srvs, lns)
}

// addrString is a listener's address, or "none".
func addrString(a net.Addr) string {
	if a == nil {
		return "none"
	}
	return a.String()
}

// localURL is the http URL of a listener as a browser on this machine reaches it: a
// listener on every interface (":9090") is reached on 127.0.0.1.
func localURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// serveUntilDone serves each server on its listener until ctx is cancelled or one fails,
// then shuts all down, letting in-flight requests finish within shutdownGrace.
func serveUntilDone(ctx context.Context, log *slog.Logger, srvs []*fasthttp.Server, lns []net.Listener) error {
	errc := make(chan error, len(srvs))
	for i := range srvs {
		go func(s *fasthttp.Server, ln net.Listener) { errc <- s.Serve(ln) }(srvs[i], lns[i])
	}
	var err error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests")
	case err = <-errc:
		err = fmt.Errorf("listener stopped: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, s := range srvs {
		if e := s.ShutdownWithContext(sctx); e != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", e)
		}
	}
	log.Info("stopped")
	return err
}
