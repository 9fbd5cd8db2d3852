package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// BenchmarkApplyEvents measures ingest: each op is one webhook's event as the
// engine would record it (a dedupe check, the record, an index entry and a TTL'd
// dedupe key), from many concurrent callers so that group commit can work.
func BenchmarkApplyEvents(b *testing.B) {
	// RunParallel starts parallelism×GOMAXPROCS callers.
	for _, parallelism := range []int{1, 32, 128} {
		callers := parallelism * runtime.GOMAXPROCS(0)
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) { benchmarkApply(b, parallelism) })
	}
}

func benchmarkApply(b *testing.B, parallelism int) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	record := make([]byte, 180) // id, time, app, lead, type, short text
	for i := range record {
		record[i] = byte('a' + i%26)
	}
	var seq atomic.Uint64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var event, index, dedupe []byte
		for pb.Next() {
			n := seq.Add(1)
			event = binary.BigEndian.AppendUint64(append(event[:0], "ev/"...), n)
			index = binary.BigEndian.AppendUint64(append(index[:0], "ix/app/ad/"...), n)
			dedupe = binary.BigEndian.AppendUint64(append(dedupe[:0], "dd/wamid/"...), n)
			err := s.Apply(context.Background(), func(bt kv.Batch) error {
				if _, seen, err := bt.Get(dedupe); err != nil || seen {
					return err
				}
				bt.Set(event, record)
				bt.Set(index, nil)
				bt.SetWithTTL(dedupe, nil, 8*24*time.Hour)
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	st := s.Stats()
	if st.Commits > 0 {
		b.ReportMetric(float64(st.Requests)/float64(st.Commits), "events/commit")
	}
}
