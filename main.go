// Command ctwa-sidecar forwards WhatsApp webhooks byte for byte to a business endpoint and
// records Click-to-WhatsApp marketing events beside them in an embedded Badger store.
package main

import (
	"bytes"
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
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

// startRecording builds the recorder and the API on store. For a store that is not open
// yet (a full disk at start-up) it returns stand-ins until the store opens: webhooks are
// forwarded but not recorded, and the API answers /healthz, /readyz (503, with the
// reason) and /metrics, and 503 on /v1.
func startRecording(ctx context.Context, c *config, store *storage.Store, log *slog.Logger) (proxy.Recorder, fasthttp.RequestHandler, error) {
	select {
	case <-store.Opened():
		rec, api, err := c.recording(store, log)
		if err != nil {
			return nil, nil, err
		}
		return rec, api.ServeHTTP, nil
	default:
	}
	l := &lateRecording{store: store}
	l.waiting = proxy.NewAPI(c.apiToken, l.ready)
	go func() {
		select {
		case <-store.Opened():
		case <-ctx.Done():
			return
		}
		rec, api, err := c.recording(store, log)
		if err != nil {
			log.Error("cannot start recording: webhooks are forwarded but not recorded until a restart", "err", err)
			return
		}
		l.rec.Store(rec) // before the API, whose /readyz says 200 once the store takes writes
		l.api.Store(api)
	}()
	return l, l.serveAPI, nil
}

// recording builds the recorder on an open store, and the API on both.
func (c *config) recording(store *storage.Store, log *slog.Logger) (*engine.Recorder, *proxy.API, error) {
	rec, err := engine.NewRecorder(store, engine.Config{
		DefaultAppID: c.appID, SessionWindow: c.sessionWindow, AttributionWindow: c.attributionWindow,
		Secrets:  engine.Secrets{Meta: c.appSecret, YCloud: c.ycloudSecret, Sinch: c.sinchSecret},
		Location: c.timezone, Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	api := proxy.NewAPI(c.apiToken, store.Ready)
	proxy.RegisterDataRoutes(api, c.clientID, rec, c.timezone)
	proxy.RegisterOffThreadRoutes(api, c.clientID, c.apiKey, rec)
	proxy.RegisterBackupRoute(api, store)
	if c.pprof {
		proxy.RegisterPprof(api)
	}
	proxy.RegisterDashboard(api)
	return rec, api, nil
}

// lateRecording stands in for the recorder and the API of a store that opens after
// start-up, and hands over to them once they are built.
type lateRecording struct {
	store   *storage.Store
	waiting *proxy.API // health, readiness and metrics only
	rec     atomic.Pointer[engine.Recorder]
	api     atomic.Pointer[proxy.API]
}

var errNotRecording = errors.New("not recording yet: the store has just opened")

func (l *lateRecording) ready() error {
	if err := l.store.Ready(); err != nil || l.rec.Load() != nil {
		return err
	}
	return errNotRecording
}

func (l *lateRecording) RecordSigned(ctx context.Context, body []byte, sig *engine.Signature) error {
	if r := l.rec.Load(); r != nil {
		return r.RecordSigned(ctx, body, sig)
	}
	// Apply refuses, and counts why, while the store is not open.
	return l.store.Apply(ctx, func(*storage.Batch) error { return errNotRecording })
}

func (l *lateRecording) serveAPI(ctx *fasthttp.RequestCtx) {
	if a := l.api.Load(); a != nil {
		a.ServeHTTP(ctx)
		return
	}
	if bytes.HasPrefix(ctx.Path(), []byte("/v1/")) {
		msg := errNotRecording.Error()
		if err := l.ready(); err != nil {
			msg = err.Error()
		}
		proxy.WriteError(ctx, fasthttp.StatusServiceUnavailable, "store_unavailable", msg, "")
		return
	}
	l.waiting.ServeHTTP(ctx)
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
