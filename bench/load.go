package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// The load generator shares the machine's CPUs with the system under test, so it is kept
// lean: one fasthttp connection per worker, one reused request whose body is regenerated
// in place, and latencies appended to a per-worker slice (sorted once at the end).

// worker sends webhooks over its own kept-alive connection.
type worker struct {
	client *fasthttp.HostClient
	req    fasthttp.Request
	resp   fasthttp.Response
	body   []byte
	gen    *stream
	tally  tally
}

// tally is what one worker saw during the measured window.
type tally struct {
	lat    []int64        // nanoseconds, one per 2xx answer
	errors map[string]int // non-2xx answers and transport errors by kind
	unsent int            // open loop: requests still due when the round ended
}

func newWorker(addr string, gen *stream) *worker {
	w := &worker{
		client: &fasthttp.HostClient{
			Addr:                          addr,
			MaxConns:                      1,
			ReadTimeout:                   15 * time.Second,
			WriteTimeout:                  15 * time.Second,
			DisableHeaderNamesNormalizing: true,
			NoDefaultUserAgentHeader:      true,
		},
		gen:   gen,
		tally: tally{lat: make([]int64, 0, 1<<15), errors: map[string]int{}},
	}
	h := &w.req.Header
	h.SetMethod(fasthttp.MethodPost)
	h.SetRequestURI("/webhook")
	h.SetHost(addr)
	h.SetContentType("application/json")
	h.Set("User-Agent", "facebookexternalua") // what Meta sends
	return w
}

// send posts the next webhook of the stream and returns the status it got.
func (w *worker) send() (int, error) {
	w.body = w.gen.appendNext(w.body[:0])
	w.req.SetBodyRaw(w.body)
	err := w.client.Do(&w.req, &w.resp)
	return w.resp.StatusCode(), err
}

// record notes one measured request that started at start.
func (w *worker) record(start time.Time, status int, err error) {
	switch {
	case err != nil:
		w.tally.errors[err.Error()]++
	case status < 200 || status > 299:
		w.tally.errors[fmt.Sprintf("HTTP %d", status)]++
	default:
		w.tally.lat = append(w.tally.lat, int64(time.Since(start)))
	}
}

// window is when a round's load starts, when measuring starts, and when it ends.
type window struct{ start, measure, end time.Time }

func newWindow(warmup, duration time.Duration) window {
	now := time.Now()
	return window{start: now, measure: now.Add(warmup), end: now.Add(warmup + duration)}
}

// closedLoop keeps conc requests in flight: each worker sends its next webhook as soon as
// the previous one is answered. Requests started before w.measure only warm up.
func closedLoop(ctx context.Context, addr string, gen *stream, conc int, win window) []tally {
	return runWorkers(ctx, addr, gen, conc, func(w *worker, _ int) {
		for ctx.Err() == nil {
			start := time.Now()
			if !start.Before(win.end) {
				return
			}
			status, err := w.send()
			if !start.Before(win.measure) {
				w.record(start, status, err)
			}
		}
	})
}

// openLoop sends rate webhooks per second whatever the answers, spread over conc
// connections: request k of worker i is due at win.start + (k·conc + i)/rate. A request
// sent late because its connection was still busy is timed from when it was due, so a
// slow answer also counts against the requests it held up (no coordinated omission); a
// request sent after the worker slept is timed from when it was sent, so the sleep's own
// imprecision is not blamed on the system.
func openLoop(ctx context.Context, addr string, gen *stream, conc int, rate float64, win window) []tally {
	return runWorkers(ctx, addr, gen, conc, func(w *worker, i int) {
		for k := 0; ctx.Err() == nil; k++ {
			due := win.start.Add(time.Duration(float64(k*conc+i) * float64(time.Second) / rate))
			if !due.Before(win.end) {
				return
			}
			start := due
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
				start = time.Now()
			} else if !time.Now().Before(win.end) {
				// Behind schedule at the end: the system (or the machine) could not take
				// the rate. Count what is left instead of sending it, so the round still
				// ends on time.
				w.tally.unsent++
				continue
			}
			status, err := w.send()
			if !due.Before(win.measure) {
				w.record(start, status, err)
			}
		}
	})
}

// runWorkers runs loop in conc workers and returns what each saw.
func runWorkers(ctx context.Context, addr string, gen *stream, conc int, loop func(w *worker, i int)) []tally {
	var wg sync.WaitGroup
	tallies := make([]tally, conc)
	for i := range conc {
		wg.Go(func() {
			w := newWorker(addr, gen)
			defer w.client.CloseIdleConnections()
			loop(w, i)
			tallies[i] = w.tally
		})
	}
	wg.Wait()
	return tallies
}

// loadStats summarizes the tallies of one round measured over seconds.
type loadStats struct {
	ok       int
	rps      float64
	p50, p99 time.Duration
	errors   map[string]int
	unsent   int
}

func summarize(tallies []tally, seconds float64) loadStats {
	var lat []int64
	st := loadStats{errors: map[string]int{}}
	for _, t := range tallies {
		lat = append(lat, t.lat...)
		for k, n := range t.errors {
			st.errors[k] += n
		}
		st.unsent += t.unsent
	}
	slices.Sort(lat)
	st.ok = len(lat)
	st.rps = float64(st.ok) / seconds
	st.p50, st.p99 = percentile(lat, 50), percentile(lat, 99)
	return st
}

// percentile is the nearest-rank percentile p of sorted samples (0 for none).
func percentile(sorted []int64, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(len·p/100)
	return time.Duration(sorted[max(rank, 1)-1])
}
