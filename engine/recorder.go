package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/lograte"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// DedupeTTL is how long a message or status id is remembered: Meta retries for 7 days,
// so a day more than that (SPEC §3.2 asks for ≥ 8 days).
const DedupeTTL = 9 * 24 * time.Hour

// Config is what the recorder needs from the command line.
type Config struct {
	DefaultAppID  string        // app id for payloads that carry none (-app-id)
	SessionWindow time.Duration // -session-window
	// Secrets, when set, make recording require valid webhook signatures.
	Secrets Secrets
	// AttributionWindow bounds how old a session an off-thread event is credited to.
	AttributionWindow time.Duration
	// Location cuts days for rollups and date ranges (-timezone); nil means UTC.
	Location *time.Location
	Log      *slog.Logger
	// Conversions, when set, queues the conversions it maps for Meta (SPEC §9).
	Conversions ConversionMap
	// Spool, for a log kept elsewhere (cluster mode), holds webhooks while that log
	// cannot be reached (spool.go).
	Spool Spool
	// Stream names the cluster stream the log is on; the view-lag gauges carry it as
	// their stream label, so that a fleet view reports each stream's lag. Empty for a
	// local log: the gauges are unlabelled.
	Stream string
}

// Recorder turns webhook bodies into committed events. Decoding runs on the caller's
// goroutine, deduplication and the log append on the store's log lane (log.go); the
// materializer derives sessions, events and rollups from the log on the view lane
// (materialize.go), where all the placer's state lives, so it needs no locks.
type Recorder struct {
	log     Log
	views   Views
	cfg     Config
	signers signers
	defs    atomic.Pointer[Definitions]
	// catalog is the ad catalogue known from spend imports and referrals.
	catalog atomic.Pointer[Catalog]
	pool    sync.Pool
	placer  placer // touched only inside Apply functions, on the view lane
	mat     *materializer
	spool   *spooler // nil without Config.Spool
	// defsMu serializes definition changes (definitions.go), importMu catalogue changes
	// (spend imports, ImportSpend: the API's and the spend sync's); neither is on the
	// hot path.
	defsMu, importMu sync.Mutex
	// rejectLog rate-limits the log of rejected webhook items.
	rejectLog lograte.Limiter
	aliases   aliasTable
}

// NewRecorder loads the definitions from store and returns a recorder for it.
func NewRecorder(log Log, views Views, cfg Config) (*Recorder, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	r := &Recorder{log: log, views: views, cfg: cfg, signers: newSigners(cfg.Secrets)}
	r.placer = placer{window: int64(cfg.SessionWindow / time.Second), loc: cfg.Location,
		cache: writeCache{bound: maxCached}, seenAds: map[string]bool{}, aliases: &r.aliases, capi: cfg.Conversions, logEntry: log.Entry, defs: &r.defs}
	r.pool.New = func() any {
		rec := &recording{r: r, appender: appender{wabas: cfg.Conversions != nil}}
		rec.apply = rec.appendAll // bound once, so Append gets a func without allocating
		return rec
	}
	if err := r.aliases.load(views); err != nil {
		return nil, fmt.Errorf("cannot load lead numbers: %w", err)
	}
	if err := r.loadCatalog(); err != nil {
		return nil, err
	}
	if err := r.reloadDefinitions(); err != nil {
		return nil, err
	}
	r.mat = newMaterializer(r)
	if err := r.mat.load(); err != nil {
		return nil, err
	}
	registerLagMetrics(r.mat, cfg.Stream)
	if cfg.Spool != nil {
		s, err := openSpool(cfg.Spool)
		if err != nil {
			return nil, err
		}
		r.spool = s
		go r.runSpool(r.mat.stop)
	}
	if f, ok := log.(Follower); ok {
		f.Follow(r.mat.published)
	}
	go r.mat.run()
	return r, nil
}

// Close brings the views up to the log and stops the materializer; close the store
// after it. Entries left behind (Close not called, or a crash) are applied at the next
// start.
func (r *Recorder) Close() {
	r.mat.close()
	if r.spool != nil {
		<-r.spool.done // a flush under way ends first: it writes to the store
	}
}

// Sync waits until the views hold every webhook acknowledged before the call, or until
// ctx ends. The read methods wait the same way by themselves, for at most settleWait.
func (r *Recorder) Sync(ctx context.Context) error { return r.mat.sync(ctx) }

// settle is what a read method waits for before it reads the views.
func (r *Recorder) settle() { r.mat.settle(context.Background()) }

// recording is the per-request state of Record, pooled.
type recording struct {
	r      *Recorder
	dec    webhook.Decoder
	items  []webhook.Item
	apply  func(kv.LogTx) error
	lo, hi int    // the items the next Append logs
	fresh  int    // items of items[lo:hi] not seen before
	writes int    // messages, statuses and automatic events among items
	entry  []byte // the log entry being built
	// appender is the request's own, so that appends to different logs (the cluster's
	// and the spool) or to a log that runs requests at once need no lock.
	appender appender
	seq      uint64 // sequence number of the entry the last Append wrote; 0 if none
}

// Record decodes body and appends its new items to the log. It returns only after the
// commit, so a webhook acknowledged afterwards survives a crash; the views follow
// (Sync waits for them).
// An undecodable body is counted and not recorded; that is not an error: forwarding
// must go on whatever the payload. It is RecordSigned without signature headers.
func (r *Recorder) Record(ctx context.Context, body []byte) error {
	return r.RecordSigned(ctx, body, nil)
}

// RecordSigned is Record for a request whose signature headers are in sig: a payload of
// a format with a configured secret is recorded only when its signature verifies.
func (r *Recorder) RecordSigned(ctx context.Context, body []byte, sig *Signature) error {
	rec := r.pool.Get().(*recording)
	defer r.pool.Put(rec)
	format, ok := rec.decode(body)
	if !ok {
		return nil
	}
	if err := r.signers.verify(format, body, sig); err != nil {
		countWebhook(format, signatureResult(err))
		return nil
	}
	fresh, err := rec.commit(ctx, 0, len(rec.items), r.logItems)
	switch {
	case err != nil:
		countWebhook(format, resultStoreError)
		return fmt.Errorf("cannot record %s webhook: %w", format, err)
	case fresh > 0:
		countWebhook(format, resultRecorded)
	case rec.writes == 0: // edits and number changes only
		countWebhook(format, resultIgnored)
	default:
		countWebhook(format, resultDuplicate)
	}
	return nil
}

// commit logs items lo to hi in one Append, or, when they write too much for one
// transaction, in halves, one after another; it returns how many items were new. The
// webhook is answered only after the last commit, and a retry of it after a failed one
// records nothing twice: every item is deduplicated on its own.
func (rec *recording) commit(ctx context.Context, lo, hi int, appendTo func(context.Context, *recording) error) (int, error) {
	rec.lo, rec.hi = lo, hi
	err := appendTo(ctx, rec)
	if errors.Is(err, kv.ErrTooBig) && hi-lo > 1 {
		mid := lo + (hi-lo)/2
		a, err := rec.commit(ctx, lo, mid, appendTo)
		if err != nil {
			return a, err
		}
		b, err := rec.commit(ctx, mid, hi, appendTo)
		return a + b, err
	}
	if err != nil {
		return 0, err
	}
	if rec.seq > 0 {
		rec.r.mat.published(rec.seq)
	}
	return rec.fresh, nil
}

// Per-webhook limits: a real batch carries tens of messages and short ids; anything far
// beyond is hostile or broken, and would only bloat keys and transactions.
const (
	maxItems     = 1000
	maxIDBytes   = 256  // message, app, lead and reply ids
	maxMetaBytes = 4096 // referral fields, button payloads, titles
)

// withinLimits reports whether an item is small enough to record.
func withinLimits(it *webhook.Item) bool {
	for _, s := range [...]string{it.ID, it.AppID, it.Lead, it.ReplyID, it.ContextID, it.Status, it.EditOf, it.NewLead, it.EventName, it.Currency} {
		if len(s) > maxIDBytes {
			return false
		}
	}
	// These become parts of store keys, separated by NUL.
	if hasControl(it.ID) || hasControl(it.AppID) || hasControl(it.Lead) || hasControl(it.Status) ||
		hasControl(it.EditOf) || hasControl(it.NewLead) || hasControl(it.EventName) {
		return false
	}
	r := &it.Referral
	for _, s := range [...]string{it.ButtonPayload, it.ReplyTitle, it.BizOpaque, r.SourceID, r.SourceURL, r.Headline, r.Body, r.CtwaClid, r.MediaType, r.SourceType} {
		if len(s) > maxMetaBytes {
			return false
		}
	}
	return true
}

// hasControl reports whether s holds a control byte: ids are keys in the store, where a
// NUL would step into another app's key range.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func signatureResult(err error) result {
	if errors.Is(err, errUnsigned) {
		return resultUnsigned
	}
	return resultBadSignature
}

// decode decodes body into rec; false means there is nothing to commit.
// A panic in a decoder is recovered and counted: recording must never break forwarding.
func (rec *recording) decode(body []byte) (format webhook.Format, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			countWebhook(format, resultPanic)
			rec.r.cfg.Log.Error("webhook decoder panicked; payload forwarded, not recorded",
				"format", format.String(), "panic", fmt.Sprint(p))
			ok = false
		}
	}()
	format, items, err := rec.dec.Decode(body, rec.r.cfg.DefaultAppID)
	switch {
	case err != nil:
		countWebhook(format, resultUndecodable)
		return format, false
	case len(items) > maxItems:
		countWebhook(format, resultOverLimit)
		return format, false
	}
	rejected := rec.r.countRejections(format, rec.dec.Rejections())
	ignored, overLimit := rec.keep(format, items)
	if len(rec.items) == 0 {
		countWebhook(format, emptyResult(ignored, rejected+overLimit))
		return format, false
	}
	return format, true
}

// keep puts into rec.items the items that write something, and counts the others:
// recognized items that are not the lead talking, and items over the limits.
func (rec *recording) keep(f webhook.Format, items []webhook.Item) (ignored, overLimit int) {
	rec.items, rec.writes = items[:0], 0 // in place: item i moves to an index ≤ i
	for i := range items {
		it := &items[i]
		switch {
		case !withinLimits(it):
			overLimit++
			itemsRejected[f][webhook.RejectOverLimit].Inc()
			continue
		case it.Kind == webhook.KindIgnored:
			ignored++
			itemsIgnored[f][it.Reason].Inc()
			continue
		case it.Kind == webhook.KindEdit || it.Kind == webhook.KindNumberChange:
			itemsIgnored[f][it.Reason].Inc() // they write, yet are not the lead talking
		default:
			rec.writes++
		}
		if n := len(rec.items); n != i { // copied only once an item before it was left out
			items[n] = *it
		}
		rec.items = items[:len(rec.items)+1]
	}
	return ignored, overLimit
}

// emptyResult is the result of a webhook with nothing to write: recognized items that
// record nothing, only rejected ones, or none at all.
func emptyResult(ignored, rejected int) result {
	switch {
	case ignored > 0:
		return resultIgnored
	case rejected > 0:
		return resultRejected
	}
	return resultEmpty
}

// countRejections counts and logs (at most once per lograte.Every) the rejected items of
// a webhook; it returns their number.
func (r *Recorder) countRejections(f webhook.Format, rejects []webhook.Rejection) int {
	for i := range rejects {
		itemsRejected[f][rejects[i].Reason].Inc()
	}
	if len(rejects) == 0 {
		return 0
	}
	if n, ok := r.rejectLog.Allow(time.Now()); ok {
		r.cfg.Log.Warn("webhook item rejected; the other items are recorded", "format", f.String(),
			"rejected", len(rejects), "err", rejects[0].Err, "webhooks_since_last_line", n)
	}
	return len(rejects)
}

// appendAll runs on the log lane: it logs items lo to hi of the request.
func (rec *recording) appendAll(tx kv.LogTx) error {
	return rec.appender.appendItems(tx, rec)
}
