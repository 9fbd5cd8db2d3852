package engine

import (
	"context"
	"flag"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

var (
	refreshStored  = flag.Int("refresh.stored", 40_000, "messages stored before the refresh of BenchmarkRecordDuringRefresh")
	refreshRate    = flag.Int("refresh.rate", 300, "webhooks per second recorded by BenchmarkRecordDuringRefresh")
	refreshSenders = flag.Int("refresh.senders", 4, "goroutines recording the webhooks of BenchmarkRecordDuringRefresh")
	refreshIdle    = flag.Duration("refresh.idle", 3*time.Second, "how long BenchmarkRecordDuringRefresh measures without a refresh")
)

// BenchmarkRecordDuringRefresh asks whether a refresh slows the webhook path (issue 12):
// with -refresh.stored messages of one app in the store, it records one-message webhooks
// of that app at -refresh.rate per second from -refresh.senders goroutines, first for
// -refresh.idle without a refresh, then while a refresh of the app runs, and reports the
// p50 and p99 of Record (what a sender waits for) in both phases and their ratios.
// Nothing is asserted: run it alone, once,
//
//	go test -run '^$' -bench RecordDuringRefresh -benchtime 1x ./engine
func BenchmarkRecordDuringRefresh(b *testing.B) {
	e := &testEnv{t: b, dir: b.TempDir(), opts: storage.Options{SyncInterval: time.Second}} // the sidecar's default -fsync-interval
	e.open()
	b.Cleanup(e.close)
	lead := func(i int) string { return strconv.Itoa(491700000000 + i) }
	msg := func(i int) cloudMsg {
		return cloudMsg{App: scApp, ID: "wamid.rr." + strconv.Itoa(i), From: lead(i), Time: t0 + int64(i), Text: "hi"}
	}
	const perWebhook = 100
	for i := 0; i < *refreshStored; i += perWebhook {
		msgs := make([]cloudMsg, min(perWebhook, *refreshStored-i))
		for k := range msgs {
			msgs[k] = msg(i + k)
		}
		e.record(cloudWebhook(msgs...))
	}
	next := *refreshStored

	// send records webhooks at the rate until stop is closed and returns each Record's
	// duration; the bodies are built before the clock starts.
	send := func(stop <-chan struct{}) []time.Duration {
		tokens := make(chan []byte, *refreshSenders)
		go func() {
			defer close(tokens)
			tick := time.NewTicker(time.Second / time.Duration(*refreshRate))
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				body := cloudWebhook(msg(next))
				next++
				select {
				case tokens <- body:
				case <-stop:
					return
				}
			}
		}()
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for range *refreshSenders {
			wg.Go(func() {
				for body := range tokens {
					start := time.Now()
					err := e.rec.Record(context.Background(), body)
					d := time.Since(start)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return lat
	}

	var idle, during []time.Duration
	var refreshTook time.Duration
	b.ResetTimer()
	for range b.N {
		stop := make(chan struct{})
		time.AfterFunc(*refreshIdle, func() { close(stop) })
		idle = append(idle, send(stop)...)

		stop = make(chan struct{})
		var res RefreshResult
		var err error
		go func() {
			defer close(stop)
			start := time.Now()
			res, err = e.rec.Refresh(context.Background(), scApp)
			refreshTook += time.Since(start)
		}()
		during = append(during, send(stop)...)
		if err != nil {
			b.Fatalf("Refresh: %v", err)
		}
		if res.Messages < *refreshStored {
			b.Fatalf("the refresh placed %d messages, want at least the %d stored", res.Messages, *refreshStored)
		}
	}
	b.StopTimer()

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	idle50, idle99 := percentile(idle, 50), percentile(idle, 99)
	ref50, ref99 := percentile(during, 50), percentile(during, 99)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(idle50), "idle-p50-ms")
	b.ReportMetric(ms(idle99), "idle-p99-ms")
	b.ReportMetric(ms(ref50), "refresh-p50-ms")
	b.ReportMetric(ms(ref99), "refresh-p99-ms")
	b.ReportMetric(float64(ref50)/float64(idle50), "p50-ratio")
	b.ReportMetric(float64(ref99)/float64(idle99), "p99-ratio")
	b.ReportMetric(refreshTook.Seconds()/float64(b.N), "refresh-s")
	b.ReportMetric(float64(len(during))/refreshTook.Seconds(), "webhooks/s-during")
	b.Logf("%d messages stored; %d webhooks without a refresh (p50 %.2f ms, p99 %.2f ms, max %.2f ms), "+
		"%d during %s of refresh (p50 %.2f ms, p99 %.2f ms, max %.2f ms)", *refreshStored,
		len(idle), ms(idle50), ms(idle99), ms(slices.Max(idle)), len(during), refreshTook.Round(time.Millisecond),
		ms(ref50), ms(ref99), ms(slices.Max(during)))
}

// percentile returns the p-th percentile of ds (nearest rank); it sorts ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)*p+99)/100-1]
}
