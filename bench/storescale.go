package main

// Store-scale mode (-store-scale N): the store and the engine in this process, without
// HTTP, filled with N webhooks shaped like a year of a busy advertiser's traffic, then
// the queries SPEC §8 bounds timed on it. The target size is N = 10 000 000:
// 1 000 ads, 1 M leads, 365 days.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// Shape of the scale traffic.
const (
	scaleTargetN      = 10_000_000 // the target: 1 000 ads, 1 M leads, 365 days
	scaleAds          = 1000
	scaleDays         = 365
	scaleConversation = 5  // messages per conversation, consecutive in time
	scaleQueryDays    = 30 // the range the dashboard's ads list and sources view show
	scaleQueryRuns    = 20 // each query is timed this often; the median is reported
	scalePage         = 20 // ads per page of the ads list (the API's default limit)
	scaleApp          = "106540352242922"
	scaleRSSEvery     = 100 * time.Millisecond
)

// scaleReport is what a store-scale run measured.
type scaleReport struct {
	Machine     machine `json:"machine"`
	Messages    int     `json:"messages"` // webhooks fed, one message each
	Leads       int     `json:"leads"`
	Ads         int     `json:"ads"`
	Referrals   int     `json:"referrals"` // messages that carry a CTWA referral
	Days        int     `json:"days"`
	Concurrency int     `json:"concurrency"`
	// Build.
	Recorded     float64 `json:"recorded_webhooks"` // ctwa_sidecar_webhooks_total{result="recorded"} during the build
	BuildSeconds float64 `json:"build_seconds"`     // recording and Sync
	BuildPerSec  float64 `json:"build_messages_per_sec"`
	SyncSeconds  float64 `json:"sync_seconds"` // engine.Recorder.Sync: until the derived views caught up
	// Size, after the store was closed (see storeUsage).
	Store *storeUsage `json:"store"`
	// Queries over the last scaleQueryDays days, scaleQueryRuns runs each.
	AdsListed    int     `json:"ads_listed"` // referral ads the ads list found
	AdsPageP50Ms float64 `json:"ads_list_p50_ms"`
	SourcesFound int     `json:"sources_found"`
	SourcesP50Ms float64 `json:"sources_p50_ms"`
	// One refresh of the app's whole history.
	Refresh           engine.RefreshResult `json:"refresh"`
	RefreshSeconds    float64              `json:"refresh_seconds"`
	RefreshPerSec     float64              `json:"refresh_messages_per_sec"`
	RefreshPerMillion float64              `json:"refresh_seconds_per_million"`
	RSSMaxMiB         float64              `json:"rss_max_mib"` // this process, sampled every 100 ms
	Notes             []string             `json:"notes,omitempty"`
}

func (r *scaleReport) note(s string) { r.Notes = append(r.Notes, s) }

// scaleTraffic generates the webhooks of a store-scale run. Message i (0-based) of n
// belongs to conversation i/5; conversation c is lead c mod n/10's, so each lead has two
// conversations half a year apart; about half the conversations (chosen by a hash of c,
// so spread over the whole year) open with a CTWA referral from one of 1 000 ads: about
// one message in ten carries one. Timestamps rise evenly over the 365 days ending at
// end. Message and click ids are random-looking, as in the HTTP stream.
type scaleTraffic struct {
	n, leads       uint64
	start, spanSec int64
	seed           uint64
	plain, ctwa    []string // split templates without and with the referral
}

func newScaleTraffic(n int, end time.Time) *scaleTraffic {
	span := int64(scaleDays * 24 * 3600)
	t := &scaleTraffic{n: uint64(n), leads: uint64(max(n/10, 1)), start: end.Unix() - span, spanSec: span,
		seed: mix64(uint64(end.Unix())), ctwa: splitTemplate(webhookTemplate)}
	i := strings.Index(webhookTemplate, `,"referral":`)
	t.plain = splitTemplate(webhookTemplate[:i] + `}]},"field":"messages"}]}]}`)
	return t
}

// referral reports whether message i carries a referral, and from which ad.
func (t *scaleTraffic) referral(i uint64) (ad uint64, ok bool) {
	c := i / scaleConversation
	h := mix64(t.seed ^ (c * golden))
	return (h >> 1) % scaleAds, i%scaleConversation == 0 && h&1 == 0
}

// appendBody appends webhook i to dst.
func (t *scaleTraffic) appendBody(dst []byte, i uint64) []byte {
	lead := (i / scaleConversation) % t.leads
	ts := t.start + int64(i*uint64(t.spanSec)/t.n)
	ad, withReferral := t.referral(i)
	parts := t.plain
	if withReferral {
		parts = t.ctwa
	}
	var w idWords
	w.fill(t.seed, i+1)
	for k, p := range parts {
		if k%2 == 0 {
			dst = append(dst, p...)
			continue
		}
		switch p {
		case "lead":
			dst = appendPadded(append(dst, "49"...), leadDigits(t.seed, lead), 10)
		case "id":
			dst = w.appendMessageID(dst)
		case "clid":
			dst = w.appendClickID(dst)
		case "ad":
			dst = appendPadded(append(dst, "1202145678900"...), ad, 5)
		case "ts":
			dst = appendPadded(dst, uint64(ts), 10)
		}
	}
	return dst
}

// rssPeak samples this process's resident memory until stopped.
type rssPeak struct {
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startRSSPeak() *rssPeak {
	p := &rssPeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(scaleRSSEvery)
		defer tick.Stop()
		for {
			p.sample()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *rssPeak) sample() {
	if v := vmRSS(os.Getpid()); v > p.max.Load() {
		p.max.Store(v)
	}
}

// end stops sampling and returns the largest RSS seen, in bytes.
func (p *rssPeak) end() int64 {
	close(p.stop)
	<-p.done
	p.sample()
	return p.max.Load()
}

// recordedWebhooks reads this process's ctwa_sidecar_webhooks_total{result="recorded"}.
func recordedWebhooks() (float64, error) {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	return sumRecorded(b.Bytes())
}

// runStoreScale runs the store-scale mode and writes its report to stdout.
// sidecarMemoryLimit is the Go heap limit the sidecar sets when GOMEMLIMIT is not set
// (defaultMemoryLimit in the root package).
const sidecarMemoryLimit = 160 << 20

func runStoreScale(ctx context.Context, o options, stdout, progress io.Writer) (rep *scaleReport, err error) {
	dir, done, err := workDir(o, "ctwa-bench-scale-", progress)
	if err != nil {
		return nil, err
	}
	defer done(&err)
	// The sidecar's own heap limit (main.go), so that the RSS compares with its target.
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(sidecarMemoryLimit))
	}
	rss := startRSSPeak()
	rep, err = measureScale(ctx, o, dir, progress)
	peak := rss.end()
	if err != nil {
		return nil, err
	}
	rep.RSSMaxMiB = float64(peak) / (1 << 20)
	if o.json {
		return rep, writeJSON(stdout, rep)
	}
	return rep, rep.writeTable(stdout)
}

// measureScale builds the store in dir, measures its size, times the queries and a
// refresh.
func measureScale(ctx context.Context, o options, dir string, progress io.Writer) (rep *scaleReport, err error) {
	n := o.storeScale
	end := time.Now()
	traffic := newScaleTraffic(n, end)
	rep = &scaleReport{Machine: machineInfo(), Messages: n, Leads: int(traffic.leads), Days: scaleDays,
		Concurrency: o.concurrency}
	var adSeen [scaleAds]bool
	for i := range uint64(n) {
		if ad, ok := traffic.referral(i); ok {
			rep.Referrals++
			if !adSeen[ad] {
				adSeen[ad] = true
				rep.Ads++
			}
		}
	}
	log := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Build, with the store as the sidecar runs it by default (-fsync-interval 1s).
	store, rec, err := openScale(dir, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if store != nil {
			err = errors.Join(err, store.Close())
		}
	}()
	before, err := recordedWebhooks()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "store scale: recording %d webhooks in process (%d leads, %d ads, %d days), %d goroutines\n",
		n, rep.Leads, rep.Ads, scaleDays, o.concurrency)
	start := time.Now()
	if err := feedScale(ctx, rec, traffic, o.concurrency, progress); err != nil {
		return nil, err
	}
	after, err := recordedWebhooks()
	if err != nil {
		return nil, err
	}
	rep.Recorded = after - before
	if int(rep.Recorded) != n {
		rep.note(fmt.Sprintf("only %.0f of the %d webhooks were recorded as new", rep.Recorded, n))
	}
	syncStart := time.Now()
	if err := rec.Sync(ctx); err != nil {
		return nil, fmt.Errorf("waiting for the derived views: %w", err)
	}
	rep.SyncSeconds = time.Since(syncStart).Seconds()
	// The build ends once the views have caught up: their work is part of recording.
	rep.BuildSeconds = time.Since(start).Seconds()
	rep.BuildPerSec = float64(n) / rep.BuildSeconds

	// Size: closed, so that Badger has flushed its memtables and cut its value log.
	err = store.Close()
	store = nil
	if err != nil {
		return nil, fmt.Errorf("closing the store: %w", err)
	}
	sizes, err := dirUsage(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot measure the store: %w", err)
	}
	rep.Store = newStoreUsage(sizes, rep.Recorded)
	if store, rec, err = openScale(dir, log); err != nil {
		return nil, err
	}

	// Queries, on the reopened store.
	fmt.Fprintf(progress, "timing the ads list and the sources view, %d runs each\n", scaleQueryRuns)
	if err := timeScaleQueries(rec, end, rep); err != nil {
		return nil, err
	}
	// Said now as well: at 10 M messages the refresh runs for many minutes after them.
	fmt.Fprintf(progress, "ads list p50 %.2f ms (%d ads), sources view p50 %.2f ms (%d sources)\n",
		rep.AdsPageP50Ms, rep.AdsListed, rep.SourcesP50Ms, rep.SourcesFound)
	fmt.Fprintf(progress, "refreshing the app's %d messages\n", n)
	stopProfile, err := startProfile(o.refreshProfile)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	rep.Refresh, err = rec.Refresh(ctx, scaleApp)
	err = errors.Join(err, stopProfile())
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	rep.RefreshSeconds = time.Since(start).Seconds()
	if rep.Refresh.Messages > 0 {
		rep.RefreshPerSec = float64(rep.Refresh.Messages) / rep.RefreshSeconds
		rep.RefreshPerMillion = 1e6 / rep.RefreshPerSec
	}
	return rep, nil
}

// startProfile starts a CPU profile into path ("": none) and returns what stops it.
func startProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-refresh-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-refresh-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// openScale opens the store in dir and a recorder on it.
func openScale(dir string, log *slog.Logger) (*storage.Store, *engine.Recorder, error) {
	store, err := storage.Open(dir, storage.Options{Logger: log, SyncInterval: time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the store: %w", err)
	}
	l, err := storage.OpenLog(store)
	if err != nil {
		return nil, nil, errors.Join(err, store.Close())
	}
	rec, err := engine.NewRecorder(l, store, engine.Config{SessionWindow: 24 * time.Hour,
		AttributionWindow: 7 * 24 * time.Hour, Log: log})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("cannot start the recorder: %w", err), store.Close())
	}
	return store, rec, nil
}

// feedScale records every webhook of t from conc goroutines, reporting each tenth.
func feedScale(ctx context.Context, rec *engine.Recorder, t *scaleTraffic, conc int, progress io.Writer) error {
	var next, done atomic.Uint64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tenth := max(t.n/10, 1)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var body []byte
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= t.n {
					return
				}
				body = t.appendBody(body[:0], i)
				if err := rec.Record(ctx, body); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("webhook %d: %w", i, err); cancel() })
					return
				}
				if d := done.Add(1); d%tenth == 0 {
					el := time.Since(start).Seconds()
					fmt.Fprintf(progress, "  %3d%%  %d messages  %.0f/s\n", d*100/t.n, d, float64(d)/el)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// timeScaleQueries times the ads list and the sources view over the last 30 days, as
// the API answers them: the ads list (GET …/ads/account/unassigned, its first page of 20)
// lists the referral ads and sums each ad's rollups (engine.ReferralAds, AdTotalsEach);
// the sources view (GET …/sources) sums the rollups of every source and names them from
// the referrals (SourceTotals, ReferralNames). Spend is not imported, so the API's spend
// lookups are left out.
func timeScaleQueries(rec *engine.Recorder, end time.Time, rep *scaleReport) error {
	days := rec.DaysOf(end.Add(-scaleQueryDays*24*time.Hour).Unix(), end.Unix()+1)
	ads, err := medianOf(func() (int, error) {
		ads, err := rec.ReferralAds(scaleApp)
		if err != nil {
			return 0, err
		}
		var groups [][]string
		for _, ad := range ads[:min(scalePage, len(ads))] {
			groups = append(groups, []string{ad.ID})
		}
		_, err = rec.AdTotalsEach(scaleApp, groups, days)
		return len(ads), err
	})
	if err != nil {
		return fmt.Errorf("ads list: %w", err)
	}
	rep.AdsListed, rep.AdsPageP50Ms = ads.n, ads.p50Ms
	sources, err := medianOf(func() (int, error) {
		totals, err := rec.SourceTotals(scaleApp, days)
		if err != nil {
			return 0, err
		}
		_, err = rec.ReferralNames(scaleApp)
		return len(totals), err
	})
	if err != nil {
		return fmt.Errorf("sources: %w", err)
	}
	rep.SourcesFound, rep.SourcesP50Ms = sources.n, sources.p50Ms
	return nil
}

type timed struct {
	n     int // what the last run found
	p50Ms float64
}

// medianOf runs f scaleQueryRuns times and returns the median duration.
func medianOf(f func() (int, error)) (timed, error) {
	var t timed
	durs := make([]time.Duration, 0, scaleQueryRuns)
	for range scaleQueryRuns {
		start := time.Now()
		n, err := f()
		if err != nil {
			return t, err
		}
		durs = append(durs, time.Since(start))
		t.n = n
	}
	slices.Sort(durs)
	t.p50Ms = ms(durs[(len(durs)-1)/2])
	return t, nil
}

// writeTable prints the store-scale results with the SPEC §8 targets.
func (r *scaleReport) writeTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s %s, %s (GOMAXPROCS %d)\n", m.CPUs, m.Model, m.OS, m.Kernel, m.Go,
		runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "store scale: %d Cloud API text webhooks in process, %d leads, %d ads, %d with a CTWA referral, over %d days; %d goroutines\n",
		r.Messages, r.Leads, r.Ads, r.Referrals, r.Days, r.Concurrency)
	if r.Messages != scaleTargetN {
		fmt.Fprintf(w, "(the issue's target size is -store-scale %d)\n", scaleTargetN)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-56s  %.0f messages/s (%.1f s, of which %.1f s waiting in Recorder.Sync for the views)\n",
		"build rate", r.BuildPerSec, r.BuildSeconds, r.SyncSeconds)
	if st := r.Store; st != nil {
		writeCheck(w, "store bytes per message (*.sst + *.vlog + log)", &st.BytesPerMessage, "%.0f", "≤ 400",
			func(v float64) bool { return v <= 400 })
		fmt.Fprintf(w, "  store after close: *.sst + *.vlog + log %s (%s + %s + %s); all files %s apparent (%.0f B/message), %s allocated (%.0f B/message)\n",
			fmtBytes(st.DataBytes), fmtBytes(st.SSTBytes), fmtBytes(st.VlogBytes), fmtBytes(st.LogBytes), fmtBytes(st.ApparentBytes), st.ApparentPerMessage,
			fmtBytes(st.AllocatedBytes), st.AllocatedPerMessage)
	}
	writeCheck(w, fmt.Sprintf("ads list p50, ms (%d ads, first page, %d days)", r.AdsListed, scaleQueryDays),
		&r.AdsPageP50Ms, "%.2f", "≤ 50 ms", func(v float64) bool { return v <= 50 })
	writeCheck(w, fmt.Sprintf("sources view p50, ms (%d sources, %d days)", r.SourcesFound, scaleQueryDays),
		&r.SourcesP50Ms, "%.2f", "≤ 100 ms", func(v float64) bool { return v <= 100 })
	fmt.Fprintf(w, "%-56s  %d messages, %d sessions in %.1f s: %.0f messages/s\n", "refresh", r.Refresh.Messages,
		r.Refresh.Sessions, r.RefreshSeconds, r.RefreshPerSec)
	var perMillion *float64
	if r.RefreshPerSec > 0 {
		perMillion = &r.RefreshPerMillion
	}
	writeCheck(w, "refresh, extrapolated s per 1 M messages", perMillion, "%.1f", "≤ 30 s",
		func(v float64) bool { return v <= 30 })
	writeCheck(w, "RSS max of the process, MiB", &r.RSSMaxMiB, "%.1f", "≤ 256 MiB",
		func(v float64) bool { return v <= 256 })
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}
