package sidecar

// Recording and the API on the store: built at once on an open store, or, after a start
// on a full disk, once the store opens (webhooks are forwarded meanwhile).

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/cluster"
	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// recorder is what serve needs of the recorder: webhooks, and Close before the store
// closes, which applies the log entries the views do not hold yet.
type recorder interface {
	proxy.Recorder
	Close()
}

// startRecording builds the recorder and the API on store. For a store that is not open
// yet (a full disk at start-up) it returns stand-ins until the store opens: webhooks are
// forwarded but not recorded, and the API answers /healthz, /readyz (503, with the
// reason) and /metrics, and 503 on /v1.
func startRecording(ctx context.Context, c *config, store *storage.Store, log *slog.Logger) (recorder, fasthttp.RequestHandler, error) {
	select {
	case <-store.Opened():
		rec, api, err := c.recording(ctx, store, log)
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
		rec, api, err := c.recording(ctx, store, log)
		if err != nil {
			log.Error("cannot start recording: webhooks are forwarded but not recorded until a restart", "err", err)
			return
		}
		l.rec.Store(rec) // before the API, whose /readyz says 200 once the store takes writes
		l.api.Store(api)
	}()
	return l, l.serveAPI, nil
}

// running is the recorder and, in cluster mode, the cluster's log, which closes first:
// the recorder then applies what the log mirrored.
type running struct {
	*engine.Recorder
	clusterLog *cluster.Log // nil without -nats
}

func (r *running) Close() {
	if r.clusterLog != nil {
		r.clusterLog.Close()
	}
	r.Recorder.Close()
}

// recording builds the recorder on an open store, and the API on both, and starts
// sending conversions to Meta when they are on (until ctx ends).
func (c *config) recording(ctx context.Context, store *storage.Store, log *slog.Logger) (*running, *proxy.API, error) {
	cfg := engine.Config{
		DefaultAppID: c.appID, SessionWindow: c.sessionWindow, AttributionWindow: c.attributionWindow,
		Secrets:  engine.Secrets{Meta: c.appSecret, YCloud: c.ycloudSecret, Sinch: c.sinchSecret},
		Location: c.timezone, Log: log, Conversions: c.capi.events,
	}
	l, clusterLog, err := c.openLog(store, log, &cfg)
	if err != nil {
		return nil, nil, err
	}
	r, err := engine.NewRecorder(l, store, cfg)
	if err != nil {
		if clusterLog != nil {
			clusterLog.Close()
		}
		return nil, nil, err
	}
	rec := &running{Recorder: r, clusterLog: clusterLog}
	if c.capi.events != nil {
		go rec.SendConversions(ctx, engine.OutboxConfig{
			Meta:    c.capi.client(metaapi.DefaultTimeout),
			Dataset: c.capi.dataset, WABA: c.capi.wabaID, TestCode: c.capi.testCode, DryRun: c.capi.dryRun, Log: log,
		})
	}
	var spend *engine.SpendSync
	if len(c.spend.pairs) > 0 {
		spend = rec.NewSpendSync(engine.SpendSyncConfig{
			Meta:     c.capi.client(metaapi.InsightsTimeout),
			Accounts: c.spend.pairs, Every: c.spend.every, Days: c.spend.days, BackfillDays: c.spend.backfillDays, Log: log,
		})
		go spend.Run(ctx)
	}
	api := proxy.NewAPI(c.apiToken, store.Ready)
	api.SetReadyNote(func() string {
		if rec.Spooling() {
			return "spooling: the NATS cluster cannot be reached; webhooks are kept in the local store until it can"
		}
		return ""
	})
	proxy.RegisterDataRoutes(api, c.clientID, r, c.timezone, spend)
	proxy.RegisterOffThreadRoutes(api, c.clientID, c.apiKey, r)
	proxy.RegisterBackupRoute(api, store)
	if c.pprof {
		proxy.RegisterPprof(api)
	}
	proxy.RegisterDashboard(api)
	return rec, api, nil
}

// openLog opens the log: the store's own, or with -nats the cluster's stream (returned
// twice: the caller closes it), with a spool in the store for the webhooks that arrive
// while the stream cannot be reached.
func (c *config) openLog(store *storage.Store, log *slog.Logger, cfg *engine.Config) (engine.Log, *cluster.Log, error) {
	if c.cluster.urls == "" {
		l, err := storage.OpenLog(store)
		return l, nil, err
	}
	spool, err := storage.OpenSpool(store)
	if err != nil {
		return nil, nil, err
	}
	cfg.Spool = spool
	cc := c.cluster.config("ctwa-sidecar " + c.clientID)
	cc.Log = log
	l, err := cluster.Open(cc, store)
	if err != nil {
		return nil, nil, err
	}
	return l, l, nil
}

// lateRecording stands in for the recorder and the API of a store that opens after
// start-up, and hands over to them once they are built.
type lateRecording struct {
	store   *storage.Store
	waiting *proxy.API // health, readiness and metrics only
	rec     atomic.Pointer[running]
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
	return l.store.Apply(ctx, func(kv.Batch) error { return errNotRecording })
}

// Close brings the views of the recorder, once there is one, up to the log.
func (l *lateRecording) Close() {
	if r := l.rec.Load(); r != nil {
		r.Close()
	}
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
