// Command ctwa-sidecar forwards WhatsApp webhooks byte for byte to a business endpoint and
// records Click-to-WhatsApp marketing events beside them in an embedded Badger store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
	"github.com/valyala/fasthttp"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise the module
// version from the build info is used.
var version = ""

// defaultMemoryLimit is the Go heap's soft limit when GOMEMLIMIT is not set: the
// sidecar should stay under 256 MiB resident (SPEC §7), of which Badger's mmapped files
// and memtables take a share outside the Go heap's accounting.
const defaultMemoryLimit = 160 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ctwa-sidecar:", err)
		os.Exit(2)
	}
}

// Run executes one command line; it returns when the command is done or ctx is cancelled.
func Run(ctx context.Context, args []string) error {
	return run(ctx, args, env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr})
}

// env is what a command reads and writes besides its arguments; tests replace it.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// listening, when set, is told the bound addresses once both listeners accept.
	listening func(webhook, api net.Addr)
}

func run(ctx context.Context, args []string, e env) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		c, err := parseServe(args, e.getenv, e.stdout)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		return serve(ctx, c, e)
	case "demo":
		return demo(ctx, e)
	case "backup", "restore":
		return backupRestore(cmd, args, e)
	case "version":
		fmt.Fprintln(e.stdout, "ctwa-sidecar", buildVersion())
		return nil
	case "help":
		_, err := parseServe([]string{"-help"}, e.getenv, e.stdout)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return fmt.Errorf("unknown command %q: commands are serve (default), demo, backup, restore and version; see -help", cmd)
}

func buildVersion() string {
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
func serve(ctx context.Context, c *config, e env) error {
	log := newLogger(c.logFormat, e.stderr)
	c.warnNormalizedHeaders(log)
	if limit, ok := openFileLimit(); ok {
		c.warnFileLimit(log, limit)
	}

	// On a disk below -min-free-disk the store opens Badger only once space returns.
	store, err := storage.Open(c.dataDir, storage.Options{Logger: log, SyncInterval: c.fsyncInterval,
		MinFreeDisk: int64(c.minFreeDisk), WaitForSpace: true})
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	rec, apiHandler, err := startRecording(ctx, c, store, log)
	if err != nil {
		return err
	}
	defer rec.Close() // after the listeners drained, before the store closes
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
	apiLimits := proxy.ServerLimits{
		MaxBody: 16 << 20, HeaderTimeout: c.headerTimeout, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxConns: c.apiMaxConns,
	}
	apiSrv := proxy.NewServer("api", apiHandler, apiLimits, log)

	webhookLn, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", c.listen, err)
	}
	apiLn, err := net.Listen("tcp", c.apiListen)
	if err != nil {
		webhookLn.Close()
		return fmt.Errorf("-api-listen %q: %w", c.apiListen, err)
	}
	log.Info("ctwa-sidecar started", "version", buildVersion(), "listen", webhookLn.Addr().String(),
		"api_listen", apiLn.Addr().String(), "upstream", c.upstream.Redacted(), "data", c.dataDir)
	if e.listening != nil {
		e.listening(webhookLn.Addr(), apiLn.Addr())
	}
	return serveUntilDone(ctx, log, []*fasthttp.Server{webhook, apiSrv}, []net.Listener{
		proxy.GateListener(webhookLn, "webhook", webhookLimits, log), proxy.GateListener(apiLn, "api", apiLimits, log)})
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
