package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
)

// run starts the systems, drives them and writes the report to stdout; progress and
// notes go to progress. It returns an error only when the run itself failed.
func run(ctx context.Context, o options, stdout, progress io.Writer) (rep *report, err error) {
	dir, done, err := workDir(o, "ctwa-bench-", progress)
	if err != nil {
		return nil, err
	}
	defer done(&err)
	rep = newReport(o)
	var nodes *natstest.Nodes
	var clusterArgs []string
	if o.nats {
		if nodes, err = startNATS(dir, progress); err != nil {
			return nil, err
		}
		defer nodes.StopAll() // after the sidecar, before the directory with their stores is removed
		clusterArgs = natsSidecarArgs(nodes.URLs())
		rep.NATS = &natsUsage{Nodes: natsNodes, Replicas: natsReplicas, Stream: natsStream}
		rep.note(natsNote())
	}
	systems, stopAll, err := startSystems(ctx, o, dir, rep, progress, clusterArgs...)
	defer stopAll() // before the directory is removed: the sidecar's store is in it
	if err != nil {
		return nil, err
	}
	api := sidecarAPI(systems)
	if o.nats {
		if err := waitPublishing(ctx, api); err != nil {
			return nil, err
		}
	}
	stopSpend := func() (string, error) { return "", nil }
	if o.spend == "up" {
		stopSpend = keepSpendSyncing(ctx, api)
		defer stopSpend() //nolint:errcheck // for an early return; after the load it is called below
	}
	gen := newStream(time.Now().Unix())
	if err := closedRounds(ctx, o, systems, gen, rep, progress); err != nil {
		return nil, err
	}
	var before natsSample
	if o.nats {
		if before, err = scrapeNATS(api); err != nil {
			return nil, err
		}
	}
	if err := openRounds(ctx, o, systems, gen, rep, progress); err != nil {
		return nil, err
	}
	if o.nats {
		after, err := scrapeNATS(api)
		if err != nil {
			return nil, err
		}
		rep.NATS.openLoop(before, after)
	}
	note, err := stopSpend() // while the sidecar still serves its metrics
	if err != nil {
		return nil, err
	}
	if note != "" {
		rep.note(note)
	}
	if err := measureStore(systems, rep, progress); err != nil {
		return nil, err
	}
	if o.nats {
		if err := rep.NATS.readStream(ctx, nodes.URLs()); err != nil {
			return nil, err
		}
	}
	rep.summarize()
	if o.json {
		return rep, writeJSON(stdout, rep)
	}
	return rep, rep.writeTable(stdout)
}

// startSystems starts the stub upstream and every system in front of it, the sidecar
// with the flags sidecarArgs besides those of o. stopAll stops whatever was started, in
// reverse order, and is valid even when err is not nil.
func startSystems(ctx context.Context, o options, dir string, rep *report, progress io.Writer, sidecarArgs ...string) (
	systems []*system, stopAll func(), err error) {
	var started []*system
	stopAll = func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].proc.stop()
		}
	}
	add := func(s *system, err error) error {
		if err == nil {
			started = append(started, s)
		}
		return err
	}
	bin, nginxBin, err := resolveBinaries(ctx, o, dir, rep, progress)
	if err != nil {
		return nil, stopAll, err
	}
	fmt.Fprintln(progress, "starting the systems on 127.0.0.1")
	if err := add(startSelf(ctx, dir, nameUpstream)); err != nil {
		return nil, stopAll, err
	}
	up := started[0].addr
	if err := add(startSelf(ctx, dir, nameBare, up)); err != nil {
		return nil, stopAll, err
	}
	if nginxBin != "" {
		if err := add(startNginx(ctx, dir, nginxBin, up)); err != nil {
			return nil, stopAll, fmt.Errorf("nginx (%s) did not start, pass -nginx off to skip it: %w", nginxBin, err)
		}
	}
	capi, err := capiArgs(ctx, o.capi)
	if err != nil {
		return nil, stopAll, err
	}
	spend, err := spendArgs(ctx, o.spend)
	if err != nil {
		return nil, stopAll, err
	}
	extra := append(append(append(capi, spend...), sidecarArgs...), strings.Fields(o.sidecarArgs)...)
	if err := add(startSidecar(ctx, dir, bin, up, extra...)); err != nil {
		return nil, stopAll, err
	}
	return started, stopAll, nil
}

// resolveBinaries builds the sidecar unless -sidecar names one, and finds nginx.
func resolveBinaries(ctx context.Context, o options, dir string, rep *report, progress io.Writer) (sidecar, nginx string, err error) {
	nginx, err = findNginx(o.nginx)
	if err != nil {
		return "", "", err
	}
	switch {
	case nginx != "":
		rep.Machine.Nginx = nginxVersion(nginx)
	case o.nginx == "off":
		rep.note("nginx: skipped (-nginx off)")
	default:
		rep.note("nginx: not installed (looked in PATH and /usr/sbin/nginx), skipped; install it (apt-get install -y nginx) to compare")
	}
	sidecar = o.sidecar
	if sidecar == "" {
		fmt.Fprintln(progress, "building the sidecar (go build)")
		start := time.Now()
		if sidecar, err = buildSidecar(ctx, dir); err != nil {
			return "", "", err
		}
		fmt.Fprintf(progress, "built in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	return sidecar, nginx, nil
}

// closedRounds drives every system at fixed concurrency, round after round. The order
// rotates each round so that no system always runs right after the same one.
func closedRounds(ctx context.Context, o options, systems []*system, gen *stream, rep *report, progress io.Writer) error {
	for r := range o.rounds {
		for i := range systems {
			s := systems[(i+r)%len(systems)]
			res, err := measure(ctx, s, o, func(win window) []tally {
				return closedLoop(ctx, s.addr, gen, o.concurrency, win)
			})
			if err != nil {
				return err
			}
			res.Mode, res.Round = modeClosed, r+1
			rep.Rounds = append(rep.Rounds, res)
			fmt.Fprintf(progress, "closed loop round %d/%d  %-16s %8.0f req/s  p99 %s\n",
				r+1, o.rounds, s.name, res.RPS, fmtMs(res.P99Ms))
		}
	}
	return nil
}

// openRounds drives every system at the rate at which SPEC §8 bounds the latency the
// sidecar adds: half of the sidecar's closed-loop peak, or 1 000 req/s with -nats.
func openRounds(ctx context.Context, o options, systems []*system, gen *stream, rep *report, progress io.Writer) error {
	peak := rep.median(nameSidecar, modeClosed, func(r roundResult) float64 { return r.RPS })
	if peak < 1 {
		rep.note("open loop: skipped, the sidecar answered no request successfully in the closed loop")
		return nil
	}
	rep.OpenRate = openRate(o, peak)
	if rep.OpenRate > peak {
		rep.note(fmt.Sprintf("open loop: %.0f req/s is above the sidecar's closed-loop peak of %.0f req/s: it cannot keep the rate, and its latency shows the queue",
			rep.OpenRate, peak))
	}
	for _, s := range systems {
		res, err := measure(ctx, s, o, func(win window) []tally {
			return openLoop(ctx, s.addr, gen, o.concurrency, rep.OpenRate, win)
		})
		if err != nil {
			return err
		}
		res.Mode, res.Round = modeOpen, 1
		rep.Rounds = append(rep.Rounds, res)
		fmt.Fprintf(progress, "open loop at %.0f req/s  %-16s p50 %s  p99 %s\n",
			rep.OpenRate, s.name, fmtMs(res.P50Ms), fmtMs(res.P99Ms))
	}
	return nil
}

// measure runs one round of load against s and gathers its numbers: throughput and
// latency from the load; the CPU time s used and, for the sidecar, the events it
// recorded, both read when the measured window opens and when it closes; and the
// resident memory of s at the end.
func measure(ctx context.Context, s *system, o options, load func(window) []tally) (roundResult, error) {
	win := newWindow(o.warmup(), o.duration)
	edges := make(chan windowSample, 1)
	go func() { edges <- sampleWindow(s, win) }()
	tallies := load(win)
	if err := ctx.Err(); err != nil {
		return roundResult{}, fmt.Errorf("interrupted: %w", err)
	}
	select {
	case <-s.proc.done:
		return roundResult{}, fmt.Errorf("%s exited during the run:\n%s", s.name, s.proc.logTail())
	default:
	}
	st := summarize(tallies, o.duration.Seconds())
	res := roundResult{
		System: s.name, RPS: st.rps, P50Ms: ms(st.p50), P99Ms: ms(st.p99), Errors: st.errors, Unsent: st.unsent,
		RSSMiB: float64(rssBytes(s.proc.pid())) / (1 << 20),
	}
	ws := <-edges
	if ws.err != nil {
		return roundResult{}, ws.err
	}
	if s.metrics != "" {
		res.EventsPerSec = ws.events / ws.eventSeconds
	}
	if ws.cpuOK && st.ok > 0 {
		res.CPUUsPerReq = cpuMicros(ws.cpu) / float64(st.ok)
	}
	return res, nil
}

// cpuMicros converts clock ticks to microseconds.
func cpuMicros(ticks int64) float64 { return float64(ticks) * 1e6 / clockTicks }

// windowSample is what a system did between the opening and the closing of the
// measured window.
type windowSample struct {
	cpu          int64 // clock ticks of CPU time used by the system's processes
	cpuOK        bool  // false where /proc is not available
	events       float64
	eventSeconds float64 // time between the two scrapes of the sidecar's events
	err          error
}

// sampleWindow reads the CPU time of s (all its processes) and, when s has metrics,
// the events it recorded, when the measured part of win starts and when it ends. The
// scrapes of /metrics are kept outside the CPU interval: first the scrape, then the
// CPU time at the start; the CPU time, then the scrape at the end.
func sampleWindow(s *system, win window) windowSample {
	var ws windowSample
	time.Sleep(time.Until(win.measure))
	var n0, n1 float64
	var err0, err1 error
	if s.metrics != "" {
		n0, err0 = scrapeEvents(s.metrics)
	}
	t0 := time.Now()
	c0, ok0 := cpuTicks(s.proc.pid())
	time.Sleep(time.Until(win.end))
	c1, ok1 := cpuTicks(s.proc.pid())
	if s.metrics != "" {
		n1, err1 = scrapeEvents(s.metrics)
	}
	ws.eventSeconds = time.Since(t0).Seconds()
	if err := errors.Join(err0, err1); err != nil {
		return windowSample{err: err}
	}
	ws.events = n1 - n0
	ws.cpu, ws.cpuOK = c1-c0, ok0 && ok1 && c1 >= c0
	return ws
}

const (
	eventsMetric   = "ctwa_sidecar_events_total"
	webhooksMetric = "ctwa_sidecar_webhooks_total"
	recordedLabel  = `result="recorded"`
)

// scrapeMetrics fetches the Prometheus text at url.
func scrapeMetrics(url string) ([]byte, error) {
	status, body, err := fasthttp.GetTimeout(nil, url, 5*time.Second)
	if err != nil || status != fasthttp.StatusOK {
		return nil, fmt.Errorf("cannot scrape the sidecar's metrics at %s: status %d, %v", url, status, err)
	}
	return body, nil
}

// scrapeEvents sums every ctwa_sidecar_events_total series of the Prometheus text at url.
func scrapeEvents(url string) (float64, error) {
	body, err := scrapeMetrics(url)
	if err != nil {
		return 0, err
	}
	return sumEvents(body)
}

// sumEvents sums the ctwa_sidecar_events_total series of a Prometheus text exposition.
func sumEvents(body []byte) (float64, error) { return sumSeries(body, eventsMetric, "") }

// sumRecorded sums the ctwa_sidecar_webhooks_total{result="recorded"} series (one per
// payload format): the webhooks that committed at least one new message. Every bench
// webhook carries one message, so this is the number of messages in the store.
func sumRecorded(body []byte) (float64, error) { return sumSeries(body, webhooksMetric, recordedLabel) }

// sumSeries sums the series of metric name whose labels contain label ("" for all).
func sumSeries(body []byte, name, label string) (float64, error) {
	var sum float64
	for line := range bytes.Lines(body) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := rest[:bytes.LastIndexByte(rest, '}')+1] // empty without labels
		if label != "" && !bytes.Contains(labels, []byte(label)) {
			continue
		}
		fields := bytes.Fields(rest[len(labels):])
		v, err := strconv.ParseFloat(string(fields[len(fields)-1]), 64)
		if err != nil {
			return 0, fmt.Errorf("bad metrics line %q: %w", bytes.TrimSpace(line), err)
		}
		sum += v
	}
	return sum, nil
}

// measureStore counts the messages the sidecar recorded over the whole run, stops it
// (SIGTERM: Badger flushes its memtables into tables and cuts the last value-log file
// to what it holds) and measures its data directory.
func measureStore(systems []*system, rep *report, progress io.Writer) error {
	var sc *system
	for _, s := range systems {
		if s.name == nameSidecar {
			sc = s
		}
	}
	if sc == nil {
		return nil
	}
	body, err := scrapeMetrics(sc.metrics)
	if err != nil {
		return err
	}
	recorded, err := sumRecorded(body)
	if err != nil {
		return err
	}
	fmt.Fprintln(progress, "stopping the sidecar to measure its store")
	sc.proc.stop()
	if st := sc.proc.cmd.ProcessState; st == nil || !st.Success() {
		rep.note(fmt.Sprintf("store: the sidecar did not exit cleanly on SIGTERM (%v), its store may hold unflushed logs", st))
	}
	sizes, err := dirUsage(sc.data)
	if err != nil {
		return fmt.Errorf("cannot measure the sidecar's store: %w", err)
	}
	rep.Store = newStoreUsage(sizes, recorded)
	return nil
}

// workDir creates a run's temporary directory; done removes it, unless -keep (then it
// says where it is), and adds a failure to remove it to *err.
func workDir(o options, prefix string, progress io.Writer) (dir string, done func(err *error), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("cannot create a temporary directory: %w", err)
	}
	return dir, func(err *error) {
		if o.keep {
			fmt.Fprintln(progress, "kept", dir)
			return
		}
		*err = errors.Join(*err, os.RemoveAll(dir))
	}, nil
}
