package engine

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// benchKeywords are 20 tracked keywords of the kind a shop tracks. None occurs in the
// text of cloud/text_ctwa_referral, not even inside a word, so matching finds no
// candidate; benchHitKeyword does occur there.
var benchKeywords = []string{"price", "discount", "coupon", "refund", "delivery", "shipping", "invoice",
	"return", "exchange", "warranty", "voucher", "booking", "appointment", "catalog", "payment",
	"cancel", "tracking", "address", "receipt", "wholesale"}

const benchHitKeyword = "spring sale"

// benchDefinitions returns a snapshot with the keywords of app, plus two custom sources.
func benchDefinitions(tb testing.TB, app string, keywords ...string) *Definitions {
	tb.Helper()
	var groups []Group
	for i, kw := range keywords {
		id := strconv.Itoa(i + 1)
		groups = append(groups, Group{ID: id, AppID: app, Type: TypeKeyword, TypeID: id, TypeValue: kw, Status: StatusActive})
	}
	sources := []Source{{ID: "1", AppID: app, Name: "Billboard A", Phrase: "billboard a"},
		{ID: "2", AppID: app, Name: "Flyer", Phrase: "flyer code 7"}}
	return testDefinitions(tb, groups, sources, nil)
}

// compactFixture returns the fixture compacted, as webhooks arrive.
func compactFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	var body bytes.Buffer
	if err := stdjson.Compact(&body, fixtures.Body(tb, name)); err != nil {
		tb.Fatal(err)
	}
	return body.Bytes()
}

// decodeClassify is the per-request hot path before the store: decode, then classify
// every message.
func decodeClassify(d *webhook.Decoder, c *Classification, body []byte, defs *Definitions) (int, error) {
	_, items, err := d.Decode(body, testAppID)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range items {
		if items[i].Kind == webhook.KindMessage {
			Classify(c, &items[i], defs)
			n += len(c.Events)
		}
	}
	return n, nil
}

// BenchmarkDecodeClassify measures decode + classify of a Cloud API CTWA text webhook
// with a warm Decoder and 20 tracked keywords (SPEC §8: ≤ 2 µs, 0 allocations).
// keyword_hit adds a keyword that occurs in the text: the matcher library then returns
// its candidates in a new slice (see matcher's package documentation).
func BenchmarkDecodeClassify(b *testing.B) {
	body := compactFixture(b, "cloud/text_ctwa_referral")
	for _, bc := range []struct {
		name   string
		defs   *Definitions
		events int
	}{
		{"no_hit", benchDefinitions(b, appCloud, benchKeywords...), 0},
		{"keyword_hit", benchDefinitions(b, appCloud, append(benchKeywords[:19:19], benchHitKeyword)...), 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var d webhook.Decoder
			var c Classification
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if n, err := decodeClassify(&d, &c, body, bc.defs); err != nil || n != bc.events {
					b.Fatalf("decodeClassify = %d events, %v; want %d", n, err, bc.events)
				}
			}
		})
	}
}

// BenchmarkRecordIngest records distinct webhooks (a new lead each, so a new session)
// from parallel goroutines into a real store and reports the committed events per second
// (SPEC §8: ≥ 50 000 events/s). Each webhook yields a conversation and a keyword event.
func BenchmarkRecordIngest(b *testing.B) {
	e := &testEnv{t: b, dir: b.TempDir(), opts: storage.Options{SyncInterval: time.Second}} // the sidecar's default -fsync-interval
	e.open()
	b.Cleanup(e.close)
	e.addKeyword(appCloud, "sale")
	template := compactFixture(b, "cloud/text_ctwa_referral")
	// The fixture's lead and message id, replaced per webhook by same-length counters.
	const lead, wamid = "491701234567", "HBgMNDkxNzAxMjM0NTY3FQIAEhgUQzA0MUVGREFBNzg3RjYwNEVDNDAA"
	if bytes.Count(template, []byte(lead)) != 2 || bytes.Count(template, []byte(wamid)) != 1 {
		b.Fatal("fixture cloud/text_ctwa_referral changed: update the benchmark's placeholders")
	}
	var seq atomic.Int64
	// Like a webhook listener under load: many requests wait on each group commit.
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuNow()
	b.RunParallel(func(pb *testing.PB) {
		body := bytes.Clone(template)
		var num []byte
		for pb.Next() {
			n := seq.Add(1)
			num = strconv.AppendInt(num[:0], 1e11+n, 10) // 12 digits, like the lead
			body = append(body[:0], template...)
			replaceAll(body, []byte(lead), num)
			i := bytes.Index(body, []byte(wamid))
			copy(body[i+len(wamid)-len(num):], num)
			if err := e.rec.Record(context.Background(), body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := e.rec.Sync(context.Background()); err != nil { // the views too, not only the log
		b.Fatal(err)
	}
	b.StopTimer()
	events := 2 * seq.Load()
	b.ReportMetric(float64(cpuNow()-cpu0)/float64(time.Microsecond)/float64(seq.Load()), "cpu-µs/webhook")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if st := e.store.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Requests)/float64(st.Commits), "webhooks/commit")
	}
	if got := int64(len(e.events(appCloud))); got != events {
		b.Fatalf("%d events stored, want %d", got, events)
	}
}

// replaceAll overwrites every occurrence of old in s with new, of the same length.
func replaceAll(s, old, new []byte) {
	for i := 0; ; {
		j := bytes.Index(s[i:], old)
		if j < 0 {
			return
		}
		copy(s[i+j:], new)
		i += j + len(old)
	}
}

// cpuNow is the CPU time (user + system) of this process so far.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
