package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

var (
	storeEvents  = flag.Int("store.events", 1_000_000, "events BenchmarkStoreMemory loads per iteration")
	storeCallers = flag.Int("store.callers", 64, "concurrent Apply callers in BenchmarkStoreMemory")
)

// BenchmarkStoreMemory loads -store.events inbound messages through Open and Apply,
// each a dedupe check and three of the writes the recorder makes per message: the
// compact message record (≈ 390 B with an ad referral), an lses index key and the TTL'd
// dedupe key (no sessions, events or rollups). While it loads,
// a goroutine samples the Go heap and the process RSS every 100 ms. Run it with
// -benchtime=1x; GOMEMLIMIT, when set, is the runtime's own soft limit.
//
//	GOMEMLIMIT=200MiB go test -run '^$' -bench BenchmarkStoreMemory -benchtime=1x ./storage
func BenchmarkStoreMemory(b *testing.B) {
	n, callers := *storeEvents, max(*storeCallers, 1)
	if limit := debug.SetMemoryLimit(-1); limit == math.MaxInt64 {
		b.Logf("events=%d callers=%d, no Go memory limit", n, callers)
	} else {
		b.Logf("events=%d callers=%d, Go memory limit %.0f MiB", n, callers, mib(limit))
	}
	var peak memoryPeaks
	var rssAfter, sst, vlog, disk, recordBytes int64
	var loadTime time.Duration
	for b.Loop() {
		dir := b.TempDir()
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		sampler := startMemorySampler(100 * time.Millisecond)
		start := time.Now()
		recordBytes = loadMessages(b, s, n, callers)
		loadTime = time.Since(start)
		// A few trim intervals (250 ms) after the last write, so the figure is not a burst.
		time.Sleep(time.Second)
		rss, _ := readProcStatus()
		rssAfter = max(rssAfter, rss.total)
		peak.merge(sampler.stop())
		sst = max(sst, filesSize(dir, ".sst"))
		vlog = max(vlog, filesSize(dir, ".vlog"))
		disk = max(disk, dirSize(dir))
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/loadTime.Seconds(), "events/s")
	b.ReportMetric(float64(recordBytes)/float64(n), "record-B")
	b.ReportMetric(mib(peak.liveHeap), "peak-live-heap-MiB")
	b.ReportMetric(mib(peak.heapInuse), "peak-heap-inuse-MiB")
	b.ReportMetric(mib(peak.goTotal), "peak-go-total-MiB")
	if peak.rss.total > 0 { // no /proc: no RSS figures
		b.ReportMetric(mib(peak.rss.total), "peak-RSS-MiB")
		b.ReportMetric(mib(peak.rss.anon), "peak-RSS-anon-MiB")
		b.ReportMetric(mib(peak.rss.file), "peak-RSS-file-MiB")
		b.ReportMetric(mib(rssAfter), "RSS-after-MiB")
	}
	b.ReportMetric(mib(sst), "sst-MiB")
	b.ReportMetric(mib(vlog), "vlog-MiB")
	b.ReportMetric(mib(disk), "disk-MiB")
}

// loadMessages writes n messages from callers goroutines and returns the total size of
// their message records.
func loadMessages(b *testing.B, s *Store, n, callers int) int64 {
	const dedupeTTL = 9 * 24 * time.Hour // engine.DedupeTTL
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	var next, recordBytes atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			var record, key, index, dedupe []byte
			var when [8]byte
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || b.Failed() {
					return
				}
				m := realisticMessage(i, base)
				record = kv.AppendMessage(record[:0], &m)
				recordBytes.Add(int64(len(record)))
				key = kv.MessageKey(key[:0], m.AppID, m.Time, m.ID)
				index = kv.LeadSessionKey(index[:0], m.Lead, m.Time, m.AppID, "s"+m.ID[len(m.ID)-16:])
				dedupe = kv.DedupeMessageKey(dedupe[:0], m.ID)
				binary.BigEndian.PutUint64(when[:], uint64(m.Time))
				err := s.Apply(context.Background(), func(bt kv.Batch) error {
					if _, seen, err := bt.Get(dedupe); err != nil || seen {
						return err
					}
					bt.SetWithTTL(dedupe, when[:], dedupeTTL)
					bt.Set(key, record)
					bt.Set(index, nil)
					return nil
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return recordBytes.Load()
}

// realisticMessage is the i-th inbound message of a click-to-WhatsApp ad: four apps,
// 200 000 leads, 50 messages a second, ids in random order as Meta's wamids are.
func realisticMessage(i, base int64) kv.Message {
	h := mix(uint64(i))
	lead := fmt.Sprintf("5511%09d", mix(uint64(i%200_000))%1_000_000_000)
	return kv.Message{
		ID:    fmt.Sprintf("wamid.HBgN%sFQIAEhgg%016X%016X", lead, h, mix(h)),
		AppID: fmt.Sprintf("10293847561%05d", i%4),
		Time:  base + i/50,
		Lead:  lead,
		Type:  "text",
		Text:  fmt.Sprintf("Olá! Quero mais informações sobre o plano %d.", h%1000),
		Referral: kv.Referral{
			SourceType: "ad",
			SourceID:   fmt.Sprintf("1202%014d", h%40),
			SourceURL:  fmt.Sprintf("https://fb.me/%010x", h%40),
			Headline:   "Fale conosco no WhatsApp",
			Body:       "Condições especiais só esta semana. Toque para conversar com um especialista.",
			MediaType:  "image",
			CtwaClid:   fmt.Sprintf("Afd%016x%016x%016x%016x", mix(h+1), mix(h+2), mix(h+3), mix(h+4)),
		},
	}
}

// mix is splitmix64's finalizer: a cheap bijective scramble of the event number.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

type rssFigures struct{ total, anon, file int64 }

// readProcStatus returns VmRSS, RssAnon and RssFile of this process; ok is false
// where /proc is not available.
func readProcStatus() (r rssFigures, ok bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return r, false
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"VmRSS:", &r.total}, {"RssAnon:", &r.anon}, {"RssFile:", &r.file}} {
		_, rest, found := bytes.Cut(status, []byte("\n"+f.name))
		if !found {
			continue
		}
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(line)), " kB"), 10, 64)
		*f.dst = kb << 10
	}
	return r, r.total > 0
}

// memoryPeaks are the largest values seen by a memorySampler.
type memoryPeaks struct {
	liveHeap  int64 // heap marked live by the latest GC
	heapInuse int64 // heap spans in use: objects, dead or alive, and their free slots
	goTotal   int64 // all memory the Go runtime mapped
	rss       rssFigures
}

func (p *memoryPeaks) merge(q memoryPeaks) {
	p.liveHeap, p.heapInuse, p.goTotal = max(p.liveHeap, q.liveHeap), max(p.heapInuse, q.heapInuse), max(p.goTotal, q.goTotal)
	p.rss = rssFigures{max(p.rss.total, q.rss.total), max(p.rss.anon, q.rss.anon), max(p.rss.file, q.rss.file)}
}

type memorySampler struct {
	done  chan struct{}
	peaks chan memoryPeaks
}

// startMemorySampler samples runtime/metrics and /proc/self/status every interval
// until stop.
func startMemorySampler(interval time.Duration) *memorySampler {
	m := &memorySampler{done: make(chan struct{}), peaks: make(chan memoryPeaks, 1)}
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
	value := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(samples[i].Value.Uint64())
	}
	go func() {
		var p memoryPeaks
		sample := func() {
			metrics.Read(samples)
			p.merge(memoryPeaks{liveHeap: value(0), heapInuse: value(1) + value(2), goTotal: value(3)})
			if r, ok := readProcStatus(); ok {
				p.merge(memoryPeaks{rss: r})
			}
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-tick.C:
			case <-m.done:
				sample()
				m.peaks <- p
				return
			}
		}
	}()
	return m
}

func (m *memorySampler) stop() memoryPeaks {
	close(m.done)
	return <-m.peaks
}

// filesSize is the disk space allocated to dir's files whose names end in ext.
func filesSize(dir, ext string) int64 {
	paths, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
	var n int64
	for _, p := range paths {
		if info, err := os.Stat(p); err == nil {
			n += allocatedSize(info)
		}
	}
	return n
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
