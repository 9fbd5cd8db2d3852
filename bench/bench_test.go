package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the child roles, as the bench binary does, since the
// driver re-executes os.Executable() for the stub upstream and the bare forwarder.
func TestMain(m *testing.M) {
	if handled, err := runChild(os.Args[1:]); handled {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunEndToEnd runs the whole driver briefly against the real sidecar, built from this
// module, and checks that every system was measured and the sidecar recorded events.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the sidecar")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := options{duration: 300 * time.Millisecond, concurrency: 4, rounds: 1, nginx: "off"}
	var table, progress bytes.Buffer
	rep, err := run(ctx, o, &table, &progress)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", table.String())
	systems := []string{nameUpstream, nameBare, nameSidecar}
	for _, rows := range [][]row{rep.Closed, rep.Open} {
		if len(rows) != len(systems) {
			t.Fatalf("rows %+v, want one for each of %q", rows, systems)
		}
		for i, rw := range rows {
			// No timing is asserted: a busy machine may slow any system down.
			if rw.System != systems[i] || rw.RPS <= 0 || rw.P99Ms <= 0 || len(rw.Errors) > 0 {
				t.Errorf("row %+v: want system %q with requests answered 2xx and no errors", rw, systems[i])
			}
		}
	}
	if sc := findRow(rep.Closed, nameSidecar); sc.EventsPerSec <= 0 {
		t.Errorf("sidecar recorded %.1f events/s, want some", sc.EventsPerSec)
	}
	if rep.Ratios.SidecarOverBare == nil || rep.Ratios.AddedP99VsBareMs == nil || rep.Ratios.SidecarOverNginx != nil {
		t.Errorf("ratios %+v: want sidecar/bare and added p99, no sidecar/nginx without nginx", rep.Ratios)
	}
	lines := strings.Split(table.String(), "\n")
	for _, sys := range systems {
		if n := countPrefix(lines, fmt.Sprintf("%-16s ", sys)); n != 2 {
			t.Errorf("table has %d rows for %q, want 2 (closed and open loop)", n, sys)
		}
	}
	if !strings.Contains(table.String(), "note: nginx: skipped") {
		t.Errorf("table does not say that nginx was skipped")
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestNginxForwards checks the generated nginx configuration: nginx starts and relays a
// webhook to the stub upstream.
func TestNginxForwards(t *testing.T) {
	bin, err := findNginx("auto")
	if err != nil || bin == "" {
		t.Skip("nginx is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	up, err := startSelf(ctx, dir, nameUpstream)
	if err != nil {
		t.Fatal(err)
	}
	defer up.proc.stop()
	ng, err := startNginx(ctx, dir, bin, up.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ng.proc.stop()
	w := newWorker(ng.addr, newStream(1773652507))
	status, err := w.send()
	if err != nil || status != 200 || string(w.resp.Body()) != string(okBody) {
		t.Fatalf("through nginx: status %d, body %q, err %v; want 200 %s", status, w.resp.Body(), err, okBody)
	}
	if rss := rssBytes(ng.proc.pid()); rss <= vmRSS(ng.proc.pid()) {
		t.Errorf("nginx RSS %d does not include its workers (master alone: %d)", rss, vmRSS(ng.proc.pid()))
	}
}

// TestStreamShape checks that generated webhooks have the fixture's JSON shape and that
// the ids that make each one new differ from request to request.
func TestStreamShape(t *testing.T) {
	fixture, err := os.ReadFile("../testdata/webhooks/cloud/text_ctwa_referral.json")
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(1773652507)
	a, b := s.appendNext(nil), s.appendNext(nil)
	if len(a) != len(b) {
		t.Errorf("bodies differ in length: %d and %d", len(a), len(b))
	}
	if want, got := shape(t, fixture), shape(t, a); !reflect.DeepEqual(got, want) {
		t.Errorf("generated webhook has shape\n%v\nwant the fixture's\n%v", got, want)
	}
	ma, mb := message(t, a), message(t, b)
	for _, k := range []string{"id", "from"} {
		if ma[k] == mb[k] {
			t.Errorf("two webhooks share messages[0].%s = %v", k, ma[k])
		}
	}
	ra, rb := ma["referral"].(map[string]any), mb["referral"].(map[string]any)
	if ra["source_id"] == rb["source_id"] || ra["ctwa_clid"] == rb["ctwa_clid"] || len(ra["source_id"].(string)) != 18 {
		t.Errorf("referrals %v and %v: want distinct 18-digit ad ids and distinct click ids", ra, rb)
	}
}

// shape is v with every string and number replaced by its kind, so that two payloads
// compare equal when they have the same fields.
func shape(t *testing.T, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", body, err)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		default:
			return fmt.Sprintf("%T", v)
		}
		return v
	}
	return walk(v)
}

func message(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var p struct {
		Entry []struct {
			Changes []struct {
				Value struct {
					Messages []map[string]any `json:"messages"`
				} `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p.Entry[0].Changes[0].Value.Messages[0]
}

func TestPercentile(t *testing.T) {
	f := func(samples []int64, p int, want time.Duration) {
		t.Helper()
		if got := percentile(samples, p); got != want {
			t.Errorf("percentile(%v, %d) = %d, want %d", samples, p, got, want)
		}
	}
	f(nil, 99, 0)
	f([]int64{7}, 50, 7)
	f([]int64{1, 2, 3, 4}, 50, 2)
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	f(hundred, 99, 99)
	f(hundred, 50, 50)
	f(append(hundred, 101), 99, 100)
}

func TestScrapeEventsSums(t *testing.T) {
	body := []byte("# HELP x\nctwa_sidecar_events_total{type=\"conversation\"} 12\n" +
		"ctwa_sidecar_events_total{type=\"keyword\"} 3\nctwa_sidecar_requests_total{result=\"2xx\"} 99\n")
	got, err := sumEvents(body)
	if err != nil || got != 15 {
		t.Fatalf("sumEvents = %v, %v; want 15", got, err)
	}
}
