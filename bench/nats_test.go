package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
)

// TestNATSFlags: -nats turns cluster mode on and fixes the open loop at 1 000 req/s
// whatever the peak; it is refused, naming both flags, with the modes that run no
// comparison and with -sidecar-args that set a cluster flag of their own.
func TestNATSFlags(t *testing.T) {
	o, err := parseFlags([]string{"-nats", "-sidecar-args", "-api-token x"}, io.Discard)
	if err != nil || !o.nats {
		t.Fatalf("-nats: %+v, %v", o, err)
	}
	if got := openRate(o, 600); got != 1000 {
		t.Errorf("-nats open rate at a peak of 600 req/s: %.0f, want 1000", got)
	}
	if got := openRate(options{}, 600); got != 300 {
		t.Errorf("open rate at a peak of 600 req/s without -nats: %.0f, want 300 (half)", got)
	}
	for _, tc := range []struct {
		args []string
		want []string // in the error
	}{
		{[]string{"-nats", "-soak", "1m"}, []string{"-nats", "-soak"}},
		{[]string{"-nats", "-store-scale", "10"}, []string{"-nats", "-store-scale"}},
		{[]string{"-nats", "-sidecar-args", "-api-token x -nats-replicas 1"}, []string{"-nats", "-nats-replicas"}},
		{[]string{"-nats", "-sidecar-args", "--nats=nats://10.0.0.1:4222"}, []string{"-nats", "--nats=nats://10.0.0.1:4222"}},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want an error naming %s", tc.args, err, w)
			}
		}
	}
	// Without -nats the sidecar may be pointed at a cluster of one's own.
	if o, err := parseFlags([]string{"-sidecar-args", "-nats nats://10.0.0.1:4222"}, io.Discard); err != nil || o.nats {
		t.Errorf("-sidecar-args with -nats, without the bench's -nats: %+v, %v", o, err)
	}
	if f := natsFlagIn("-api-token natsy -natsx 1"); f != "" {
		t.Errorf("natsFlagIn found %q among flags that are not the cluster's", f)
	}
}

// TestNATSCluster: the bench's cluster has three nodes on loopback that take writes to a
// stream laid out as the sidecar's (entries and claims, R3), the sidecar gets their URLs,
// and readStream counts what the stream holds.
func TestNATSCluster(t *testing.T) {
	nodes, err := startNATS(t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer nodes.StopAll()
	args := natsSidecarArgs(nodes.URLs())
	arg := func(name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("no %s in %q", name, args)
		}
		return args[i+1]
	}
	urls := strings.Split(arg("-nats"), ",")
	if len(urls) != 3 || slices.ContainsFunc(urls, func(u string) bool { return !strings.HasPrefix(u, "nats://127.0.0.1:") }) {
		t.Errorf("-nats %q: want three loopback URLs", arg("-nats"))
	}
	if arg("-nats-replicas") != "3" || arg("-nats-stream") != natsStream {
		t.Errorf("sidecar args %q: want -nats-replicas 3 and -nats-stream %s", args, natsStream)
	}

	_, js := natstest.JetStream(t, nodes.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: natsStream, Replicas: 3,
		Subjects: []string{natsStream + ".e", natsStream + ".c.*"}}); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{natsStream + ".c.1", natsStream + ".e", natsStream + ".e"} {
		if _, err := js.Publish(ctx, subj, []byte("entry")); err != nil {
			t.Fatalf("publish to %s: %v", subj, err)
		}
	}
	u := natsUsage{Stream: natsStream}
	if err := u.readStream(ctx, nodes.URLs()); err != nil {
		t.Fatal(err)
	}
	if u.Entries != 2 || u.Claims != 1 || u.Bytes == 0 {
		t.Errorf("stream read as %+v, want 2 entries, 1 claim and their bytes", u)
	}
	if err := (&natsUsage{Stream: "ctwa_none"}).readStream(ctx, nodes.URLs()); err == nil || !strings.Contains(err.Error(), "ctwa_none") {
		t.Errorf("a missing stream: %v, want an error naming it", err)
	}
}

// TestParseNATS reads the sidecar's cluster counters, and the open loop's publishes are
// the difference of two samples.
func TestParseNATS(t *testing.T) {
	text := func(seconds, batches, requests string) []byte {
		return []byte(`ctwa_sidecar_nats_publish_duration_seconds_bucket{le="0.001"} 3
ctwa_sidecar_nats_publish_duration_seconds_sum ` + seconds + `
ctwa_sidecar_nats_publish_duration_seconds_count ` + batches + `
ctwa_sidecar_nats_batch_requests_sum ` + requests + `
ctwa_sidecar_nats_batch_requests_count ` + batches + `
ctwa_sidecar_nats_publish_errors_total{reason="refused"} 1
ctwa_sidecar_nats_publish_errors_total{reason="unreachable"} 4
ctwa_sidecar_spool_entries 2
`)
	}
	before, err := parseNATS(text("1", "100", "300"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseNATS(text("3", "600", "1300"))
	if err != nil {
		t.Fatal(err)
	}
	var u natsUsage
	u.openLoop(before, after)
	want := natsUsage{OpenBatches: 500, OpenPublishMeanMs: 4, OpenWebhooksPerBatch: 2, Unreachable: 4, Refused: 1, Spooled: 2}
	if u != want {
		t.Errorf("open loop %+v, want %+v", u, want)
	}
	if _, err := parseNATS([]byte("ctwa_sidecar_spool_entries x\n")); err == nil {
		t.Error("a bad value was read without an error")
	}
}

// TestClusterReport: with -nats the table checks the added p99 at 1 000 req/s against
// 5 ms, met or MISSED, says where the NATS servers ran, and checks none of the single
// sidecar's targets.
func TestClusterReport(t *testing.T) {
	for _, tc := range []struct {
		sidecarP99 float64
		verdict    string
	}{{3.2, "(target ≤ 5 ms: met)"}, {7.5, "(target ≤ 5 ms: MISSED)"}} {
		rep := &report{OpenRate: natsRate, NATS: &natsUsage{Nodes: 3, Replicas: 3, Stream: natsStream, Entries: 10, Claims: 10}}
		rep.note(natsNote())
		rep.Rounds = []roundResult{
			{System: nameBare, Mode: modeClosed, RPS: 9000, P99Ms: 2},
			{System: nameSidecar, Mode: modeClosed, RPS: 4000, P99Ms: 9},
			{System: nameBare, Mode: modeOpen, RPS: 1000, P99Ms: 1.2},
			{System: nameSidecar, Mode: modeOpen, RPS: 1000, P99Ms: tc.sidecarP99},
		}
		rep.summarize()
		var b bytes.Buffer
		if err := rep.writeTable(&b); err != nil {
			t.Fatal(err)
		}
		table := b.String()
		for _, want := range []string{"open loop: 1000 req/s offered (SPEC §8's cluster rate)",
			"added p99 at 1000 req/s (sidecar − bare fasthttp), ms", tc.verdict,
			"NATS servers run inside the bench process", "stream ctwa_bench (R3)"} {
			if !strings.Contains(table, want) {
				t.Errorf("the table has no %q:\n%s", want, table)
			}
		}
		if n := strings.Count(table, "(target "); n != 1 {
			t.Errorf("%d targets checked, want only the cluster's:\n%s", n, table)
		}
	}
}

// TestRunNATSEndToEnd runs the driver briefly in cluster mode against the real sidecar:
// its webhooks reach the stream, and the report checks the cluster target.
func TestRunNATSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the sidecar and a 3-node NATS cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := options{duration: 300 * time.Millisecond, concurrency: 4, rounds: 1, nginx: "off", nats: true}
	var table, progress bytes.Buffer
	rep, err := run(ctx, o, &table, &progress)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", table.String())
	if rep.OpenRate != natsRate || findRow(rep.Open, nameSidecar) == nil || rep.Ratios.AddedP99VsBareMs == nil {
		t.Errorf("open loop at %.0f req/s, rows %+v: want the sidecar and bare fasthttp at %.0f", rep.OpenRate, rep.Open, natsRate)
	}
	// Every recorded webhook made an entry and claimed its message id; a publish that
	// timed out under load was spooled and is published later, so only a floor is checked.
	if u := rep.NATS; u == nil || u.Entries == 0 || u.Claims == 0 || u.OpenBatches == 0 {
		t.Errorf("cluster %+v: want entries and claims in the stream and batches published in the open loop", u)
	}
	if !strings.Contains(table.String(), "(target ≤ 5 ms: ") {
		t.Errorf("the table does not check the cluster target:\n%s", table.String())
	}
}
