package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/buckets"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

var (
	publishDuration = metrics.NewPrometheusHistogramExt("ctwa_sidecar_nats_publish_duration_seconds", buckets.Latency)
	batchRequests   = metrics.NewPrometheusHistogramExt("ctwa_sidecar_nats_batch_requests", buckets.Count)
	claimConflicts  = metrics.NewCounter("ctwa_sidecar_nats_claim_conflicts_total")
	unreachable     = metrics.NewCounter(`ctwa_sidecar_nats_publish_errors_total{reason="unreachable"}`)
	refused         = metrics.NewCounter(`ctwa_sidecar_nats_publish_errors_total{reason="refused"}`)
)

// streamGauges are the gauges of one stream, labelled with its name: a fleet view
// follows several streams in one process.
type streamGauges struct {
	mirrored  atomic.Uint64             // stream sequence of the last entry the mirror copied
	connected atomic.Pointer[nats.Conn] // the connection of the stream's log
}

// streams maps a stream's name to its gauges.
var streams sync.Map

// gaugesOf returns the gauges of stream, registering them the first time. Logs of one
// stream opened one after another in a process (tests, a restart) share them.
func gaugesOf(stream string) *streamGauges {
	g := new(streamGauges)
	if old, loaded := streams.LoadOrStore(stream, g); loaded {
		return old.(*streamGauges)
	}
	label := fmt.Sprintf(`{stream=%q}`, stream)
	metrics.NewGauge("ctwa_sidecar_nats_mirrored_sequence"+label, func() float64 { return float64(g.mirrored.Load()) })
	metrics.NewGauge("ctwa_sidecar_nats_connected"+label, func() float64 {
		if c := g.connected.Load(); c != nil && c.Status() == nats.CONNECTED {
			return 1
		}
		return 0
	})
	return g
}

func countError(err error) {
	if errors.Is(err, kv.ErrUnavailable) {
		unreachable.Inc()
	} else {
		refused.Inc()
	}
}
