package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// run starts the systems, drives them and writes the report to stdout; progress and
// notes go to progress. It returns an error only when the run itself failed.
func run(ctx context.Context, o options, stdout, progress io.Writer) (rep *report, err error) {
	dir, err := os.MkdirTemp("", "ctwa-bench-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary directory: %w", err)
	}
	defer func() {
		if o.keep {
			fmt.Fprintln(progress, "kept", dir)
			return
		}
		err = errors.Join(err, os.RemoveAll(dir))
	}()
	rep = newReport(o)
	systems, stopAll, err := startSystems(ctx, o, dir, rep, progress)
	defer stopAll() // before the directory is removed: the sidecar's store is in it
	if err != nil {
		return nil, err
	}
	gen := newStream(time.Now().Unix())
	if err := closedRounds(ctx, o, systems, gen, rep, progress); err != nil {
		return nil, err
	}
	if err := openRounds(ctx, o, systems, gen, rep, progress); err != nil {
		return nil, err
	}
	rep.summarize()
	if o.json {
		return rep, rep.writeJSON(stdout)
	}
	return rep, rep.writeTable(stdout)
}

// startSystems starts the stub upstream and every system in front of it. stopAll stops
// whatever was started, in reverse order, and is valid even when err is not nil.
func startSystems(ctx context.Context, o options, dir string, rep *report, progress io.Writer) (
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
	if err := add(startSidecar(ctx, dir, bin, up)); err != nil {
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

// openRounds drives every system at half of the sidecar's closed-loop peak, the load at
// which SPEC §8 bounds the latency the sidecar adds.
func openRounds(ctx context.Context, o options, systems []*system, gen *stream, rep *report, progress io.Writer) error {
	peak := rep.median(nameSidecar, modeClosed, func(r roundResult) float64 { return r.RPS })
	rep.OpenRate = peak / 2
	if rep.OpenRate < 1 {
		rep.note("open loop: skipped, the sidecar answered no request successfully in the closed loop")
		return nil
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
// latency from the load, events recorded from the sidecar's /metrics over the measured
// window, and the resident memory of s at the end.
func measure(ctx context.Context, s *system, o options, load func(window) []tally) (roundResult, error) {
	win := newWindow(o.warmup(), o.duration)
	events := make(chan eventRate, 1)
	if s.metrics != "" {
		go func() { events <- eventsDuring(s.metrics, win) }()
	}
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
	if s.metrics != "" {
		ev := <-events
		if ev.err != nil {
			return roundResult{}, ev.err
		}
		res.EventsPerSec = ev.perSec
	}
	return res, nil
}

type eventRate struct {
	perSec float64
	err    error
}

// eventsDuring is the rate at which the sidecar at url recorded events during the
// measured part of win: its counters are scraped when measuring starts and when it ends.
func eventsDuring(url string, win window) eventRate {
	time.Sleep(time.Until(win.measure))
	n0, err0 := scrapeEvents(url)
	t0 := time.Now()
	time.Sleep(time.Until(win.end))
	n1, err1 := scrapeEvents(url)
	if err := errors.Join(err0, err1); err != nil {
		return eventRate{err: err}
	}
	return eventRate{perSec: (n1 - n0) / time.Since(t0).Seconds()}
}

var eventsMetric = []byte("ctwa_sidecar_events_total")

// scrapeEvents sums every ctwa_sidecar_events_total series of the Prometheus text at url.
func scrapeEvents(url string) (float64, error) {
	status, body, err := fasthttp.GetTimeout(nil, url, 5*time.Second)
	if err != nil || status != fasthttp.StatusOK {
		return 0, fmt.Errorf("cannot scrape the sidecar's metrics at %s: status %d, %v", url, status, err)
	}
	return sumEvents(body)
}

// sumEvents sums the ctwa_sidecar_events_total series of a Prometheus text exposition.
func sumEvents(body []byte) (float64, error) {
	var sum float64
	for line := range bytes.Lines(body) {
		if !bytes.HasPrefix(line, eventsMetric) {
			continue
		}
		fields := bytes.Fields(line)
		v, err := strconv.ParseFloat(string(fields[len(fields)-1]), 64)
		if err != nil {
			return 0, fmt.Errorf("bad metrics line %q: %w", bytes.TrimSpace(line), err)
		}
		sum += v
	}
	return sum, nil
}
