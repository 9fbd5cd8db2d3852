package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
)

// Cluster mode (-nats): the measured sidecar keeps its log on a JetStream stream of a
// cluster that the bench runs in its own process, and the open loop runs at the rate
// SPEC §8 sets the cluster target for, instead of at half of the sidecar's peak.
const (
	natsNodes    = 3
	natsReplicas = 3
	natsStream   = "ctwa_bench"
	natsRate     = 1000.0 // req/s of the open loop with -nats
	natsTargetMs = 5.0    // SPEC §8: p99 added at natsRate with a 3-node cluster
)

// natsUsage is what the cluster did in a -nats run.
type natsUsage struct {
	Nodes    int    `json:"nodes"`
	Replicas int    `json:"replicas"`
	Stream   string `json:"stream"`
	// The sidecar's JetStream publishes during its open-loop round at natsRate.
	OpenBatches          float64 `json:"open_loop_batches"`
	OpenPublishMeanMs    float64 `json:"open_loop_publish_mean_ms"`    // a batch, until JetStream acknowledged it
	OpenWebhooksPerBatch float64 `json:"open_loop_requests_per_batch"` // appends one batch carried
	// Over the whole run, read before the sidecar stopped.
	Unreachable float64 `json:"publish_unreachable"` // batches not acknowledged in time: their webhooks were spooled
	Refused     float64 `json:"publish_refused"`     // batches JetStream answered with an error
	Spooled     float64 `json:"spool_entries_at_end"`
	// The stream after the run (on each node: every one holds a replica).
	Entries uint64 `json:"stream_entries"` // messages on <stream>.e: the log's entries
	Claims  uint64 `json:"stream_claims"`  // the other messages: message ids claimed
	Bytes   uint64 `json:"stream_bytes"`
}

// startNATS starts the cluster of -nats in this process, its stores under dir.
func startNATS(dir string, progress io.Writer) (*natstest.Nodes, error) {
	fmt.Fprintf(progress, "starting a %d-node NATS JetStream cluster in the bench process\n", natsNodes)
	nodes, err := natstest.Start(natstest.Config{Nodes: natsNodes, Dir: filepath.Join(dir, "nats")})
	if err != nil {
		return nil, fmt.Errorf("-nats: cannot start the JetStream cluster: %w", err)
	}
	return nodes, nil
}

// natsSidecarArgs are the flags that put the measured sidecar's log on the cluster at urls.
func natsSidecarArgs(urls string) []string {
	return []string{"-nats", urls, "-nats-stream", natsStream, "-nats-replicas", fmt.Sprint(natsReplicas)}
}

// natsFlagIn names the first cluster flag among the fields of args ("" if none): -nats
// sets them itself.
func natsFlagIn(args string) string {
	for _, f := range strings.Fields(args) {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if strings.HasPrefix(f, "-") && (name == "nats" || strings.HasPrefix(name, "nats-")) {
			return f
		}
	}
	return ""
}

// openRate is the rate of the open loop: natsRate with -nats, else half of the
// sidecar's closed-loop peak.
func openRate(o options, peak float64) float64 {
	if o.nats {
		return natsRate
	}
	return peak / 2
}

// waitPublishing waits until the sidecar at api says plainly "ready": its log is on the
// stream, not in the local spool, so the rounds measure webhooks acknowledged by JetStream.
func waitPublishing(ctx context.Context, api string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, err := fasthttp.GetTimeout(nil, api+"/readyz", time.Second)
		if err == nil && status == fasthttp.StatusOK && strings.TrimSpace(string(body)) == "ready" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("-nats: the sidecar did not say ready on %s/readyz within 20s (last: status %d, %q, %v)",
				api, status, strings.TrimSpace(string(body)), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// natsSample is the sidecar's cluster counters at one moment.
type natsSample struct {
	publishSeconds, batches, requests, unreachable, refused, spooled float64
}

func scrapeNATS(api string) (natsSample, error) {
	body, err := scrapeMetrics(api + "/metrics")
	if err != nil {
		return natsSample{}, err
	}
	return parseNATS(body)
}

// parseNATS reads the cluster counters from the sidecar's Prometheus text.
func parseNATS(body []byte) (natsSample, error) {
	var s natsSample
	var errs [6]error
	s.publishSeconds, errs[0] = sumSeries(body, "ctwa_sidecar_nats_publish_duration_seconds_sum", "")
	s.batches, errs[1] = sumSeries(body, "ctwa_sidecar_nats_publish_duration_seconds_count", "")
	s.requests, errs[2] = sumSeries(body, "ctwa_sidecar_nats_batch_requests_sum", "")
	s.unreachable, errs[3] = sumSeries(body, "ctwa_sidecar_nats_publish_errors_total", `reason="unreachable"`)
	s.refused, errs[4] = sumSeries(body, "ctwa_sidecar_nats_publish_errors_total", `reason="refused"`)
	s.spooled, errs[5] = sumSeries(body, "ctwa_sidecar_spool_entries", "")
	return s, errors.Join(errs[:]...)
}

// openLoop keeps the publishes between two samples taken around the open loop (only
// the sidecar's round moves them) and the error counters of the later one.
func (u *natsUsage) openLoop(before, after natsSample) {
	u.OpenBatches = after.batches - before.batches
	if u.OpenBatches > 0 {
		u.OpenPublishMeanMs = (after.publishSeconds - before.publishSeconds) * 1e3 / u.OpenBatches
		u.OpenWebhooksPerBatch = (after.requests - before.requests) / u.OpenBatches
	}
	u.Unreachable, u.Refused, u.Spooled = after.unreachable, after.refused, after.spooled
}

// readStream counts what the stream holds, through the cluster at urls.
func (u *natsUsage) readStream(ctx context.Context, urls string) error {
	nc, err := nats.Connect(urls, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("-nats: cannot connect to the cluster to read the stream: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, u.Stream)
	if err != nil {
		return fmt.Errorf("-nats: stream %s: %w", u.Stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(u.Stream+".e"))
	if err != nil {
		return fmt.Errorf("-nats: stream %s: %w", u.Stream, err)
	}
	u.Entries = info.State.Subjects[u.Stream+".e"]
	u.Claims = info.State.Msgs - u.Entries
	u.Bytes = info.State.Bytes
	return nil
}

// write prints the cluster's lines of the report.
func (u *natsUsage) write(w io.Writer, recorded float64) {
	fmt.Fprintf(w, "  JetStream at %.0f req/s: %.0f batch publishes, %.3f ms mean until acknowledged, %.1f webhooks per batch\n",
		natsRate, u.OpenBatches, u.OpenPublishMeanMs, u.OpenWebhooksPerBatch)
	fmt.Fprintf(w, "  stream %s (R%d) after the run: %d entries, %d claims, %s on each node; %.0f webhooks recorded\n",
		u.Stream, u.Replicas, u.Entries, u.Claims, fmtBytes(int64(u.Bytes)), recorded)
	if u.Unreachable > 0 || u.Refused > 0 || u.Spooled > 0 {
		fmt.Fprintf(w, "  publishes failed: %.0f unreachable (their webhooks spooled, answered without JetStream), %.0f refused; %.0f in the spool at the end\n",
			u.Unreachable, u.Refused, u.Spooled)
	}
}

// natsNote says where the cluster ran.
func natsNote() string {
	return fmt.Sprintf("nats: the %d NATS servers run inside the bench process, beside the load generator, on the same %d CPUs as the systems; "+
		"their CPU time is in no system's CPU/req", natsNodes, runtime.NumCPU())
}
