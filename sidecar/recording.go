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

// startRecording builds the recorders and the API on the stores. For stores that are
// not all open yet (a full disk at start-up) it returns stand-ins until they are:
// webhooks are forwarded but not recorded, and the API answers /healthz, /readyz (503,
// with the reason) and /metrics, and 503 on /v1.
func startRecording(ctx context.Context, c *config, stores clientStores, log *slog.Logger) (recorder, fasthttp.RequestHandler, error) {
	if stores.open() {
		recs, api, err := c.recording(ctx, stores, log)
		if err != nil {
			return nil, nil, err
		}
		return recs, api.ServeHTTP, nil
	}
	l := &lateRecording{stores: stores}
	l.waiting = proxy.NewAPI(c.apiToken, l.ready)
	go func() {
		if !stores.waitOpen(ctx) {
			return
		}
		recs, api, err := c.recording(ctx, stores, log)
		if err != nil {
			log.Error("cannot start recording: webhooks are forwarded but not recorded until a restart", "err", err)
			return
		}
		l.rec.Store(&recs) // before the API, whose /readyz says 200 once the stores take writes
		l.api.Store(api)
	}()
	return l, l.serveAPI, nil
}

// running is one client's recorder and, in cluster mode, the cluster's log, which
// closes first: the recorder then applies what the log mirrored.
type running struct {
	*engine.Recorder
	client     string
	clusterLog *cluster.Log      // nil without -nats
	spend      *engine.SpendSync // nil without -spend-sync
}

func (r *running) Close() {
	if r.clusterLog != nil {
		r.clusterLog.Close()
	}
	r.Recorder.Close()
}

// recordings are the recorders of the client logs, in the order of config.logs. A member
// has one, which records the webhooks; a read replica's fleet view one per stream.
type recordings []*running

func (rs recordings) RecordSigned(ctx context.Context, body []byte, sig *engine.Signature) error {
	return rs[0].RecordSigned(ctx, body, sig)
}

func (rs recordings) Close() {
	for _, r := range rs {
		r.Close()
	}
}

// spoolingNote is what /readyz adds while webhooks are spooled (only a member spools:
// API writes are refused meanwhile).
func (rs recordings) spoolingNote() string {
	for _, r := range rs {
		if r.Spooling() {
			return "spooling: the NATS cluster cannot be reached; webhooks are kept in the local store until it can"
		}
	}
	return ""
}

// recording builds a recorder on each open store, and the API on all of them.
func (c *config) recording(ctx context.Context, stores clientStores, log *slog.Logger) (recordings, *proxy.API, error) {
	recs := make(recordings, 0, len(stores))
	for _, s := range stores {
		r, err := c.record(ctx, s, log)
		if err != nil {
			recs.Close()
			return nil, nil, err
		}
		recs = append(recs, r)
	}
	return recs, c.api(recs, stores), nil
}

// record builds the recorder of one client log on its store, and starts sending
// conversions to Meta and the spend sync when they are on (until ctx ends).
func (c *config) record(ctx context.Context, s clientStore, log *slog.Logger) (*running, error) {
	if len(c.logs) > 1 {
		log = log.With("client", s.client) // a fleet view: whose stream a line is about
	}
	cfg := engine.Config{
		DefaultAppID: c.appID, SessionWindow: c.sessionWindow, AttributionWindow: c.attributionWindow,
		Secrets:  engine.Secrets{Meta: c.appSecret, YCloud: c.ycloudSecret, Sinch: c.sinchSecret},
		Location: c.timezone, Log: log, Conversions: c.capi.events,
	}
	l, clusterLog, err := c.openLog(s, log, &cfg)
	if err != nil {
		return nil, err
	}
	r, err := engine.NewRecorder(l, s.Store, cfg)
	if err != nil {
		if clusterLog != nil {
			clusterLog.Close()
		}
		return nil, err
	}
	rec := &running{Recorder: r, client: s.client, clusterLog: clusterLog}
	if c.capi.events != nil {
		go rec.SendConversions(ctx, engine.OutboxConfig{
			Meta:    c.capi.client(metaapi.DefaultTimeout),
			Dataset: c.capi.dataset, WABA: c.capi.wabaID, TestCode: c.capi.testCode, DryRun: c.capi.dryRun, Log: log,
		})
	}
	if len(c.spend.pairs) > 0 {
		rec.spend = rec.NewSpendSync(engine.SpendSyncConfig{
			Meta:     c.capi.client(metaapi.InsightsTimeout),
			Accounts: c.spend.pairs, Every: c.spend.every, Days: c.spend.days, BackfillDays: c.spend.backfillDays, Log: log,
		})
		go rec.spend.Run(ctx)
	}
	return rec, nil
}

// api is the API on the recorders: each client's data under its {client_id}.
func (c *config) api(recs recordings, stores clientStores) *proxy.API {
	api := proxy.NewAPI(c.apiToken, stores.Ready)
	api.SetReadyNote(recs.spoolingNote)
	data, offThread := map[string]proxy.ClientData{}, map[string]proxy.OffThreadRecorder{}
	for _, r := range recs {
		data[r.client] = proxy.ClientData{Rec: r.Recorder, Sync: r.spend}
		offThread[r.client] = r.Recorder
	}
	proxy.RegisterDataRoutes(api, data, c.timezone)
	proxy.RegisterOffThreadRoutes(api, c.apiKey, offThread)
	if len(stores) == 1 {
		// A fleet view's stores are only copies of their streams, each rebuilt by
		// following it again: back up a member (or the stream) instead.
		proxy.RegisterBackupRoute(api, stores[0].Store)
	}
	if c.pprof {
		proxy.RegisterPprof(api)
	}
	proxy.RegisterDashboard(api)
	return api
}

// openLog opens the log of a client: its store's own, or with -nats the cluster's stream
// (returned twice: the caller closes it), with a spool in the store for the webhooks
// that arrive while the stream cannot be reached.
func (c *config) openLog(s clientStore, log *slog.Logger, cfg *engine.Config) (engine.Log, *cluster.Log, error) {
	if s.stream == "" {
		l, err := storage.OpenLog(s.Store)
		return l, nil, err
	}
	spool, err := storage.OpenSpool(s.Store)
	if err != nil {
		return nil, nil, err
	}
	cfg.Spool = spool
	cfg.Stream = s.stream
	cc := c.cluster.config(s.stream, "ctwa-sidecar "+s.client)
	cc.Log = log
	l, err := cluster.Open(cc, s.Store)
	if err != nil {
		return nil, nil, err
	}
	return l, l, nil
}

// lateRecording stands in for the recorders and the API of stores that open after
// start-up, and hands over to them once they are built.
type lateRecording struct {
	stores  clientStores
	waiting *proxy.API // health, readiness and metrics only
	rec     atomic.Pointer[recordings]
	api     atomic.Pointer[proxy.API]
}

var errNotRecording = errors.New("not recording yet: the store has just opened")

func (l *lateRecording) ready() error {
	if err := l.stores.Ready(); err != nil || l.rec.Load() != nil {
		return err
	}
	return errNotRecording
}

func (l *lateRecording) RecordSigned(ctx context.Context, body []byte, sig *engine.Signature) error {
	if r := l.rec.Load(); r != nil {
		return r.RecordSigned(ctx, body, sig)
	}
	// Apply refuses, and counts why, while the store is not open (a member, which
	// records webhooks, has one).
	return l.stores[0].Apply(ctx, func(kv.Batch) error { return errNotRecording })
}

// Close brings the views of the recorders, once there are some, up to their logs.
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
