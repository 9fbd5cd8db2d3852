package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
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
	for _, rw := range rep.Closed {
		if rw.CPUUsPerReq <= 0 {
			t.Errorf("%s: CPU %.1f µs per request, want it measured", rw.System, rw.CPUUsPerReq)
		}
	}
	if rep.Ratios.SidecarOverBareCPU == nil {
		t.Error("no sidecar/bare CPU ratio")
	}
	// Every request of the run was a new webhook with one message: the store holds them all.
	if st := rep.Store; st == nil || st.Messages < float64(len(rep.Rounds)) || st.BytesPerMessage <= 0 || st.DataBytes > st.ApparentBytes {
		t.Errorf("store %+v: want the recorded messages and their size", st)
	}
	for _, want := range []string{"CPU per recorded webhook ÷ bare CPU per request", "store bytes per message"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table has no line %q", want)
		}
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

// TestMessageIDs checks the ids of the stream: Meta's shape (wamid. and 56 characters
// of standard base64 starting HBgM; click ids AR and 96 of URL-safe base64), distinct
// across goroutines drawing concurrently, in no order (a sequential generator would
// have every id sort after the one before), and bodies of one length.
func TestMessageIDs(t *testing.T) {
	s := newStream(1773652507)
	const workers, each = 4, 10_000
	bodies := make([][][]byte, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for range each {
				bodies[g] = append(bodies[g], s.appendNext(nil))
			}
		})
	}
	wg.Wait()
	seen := map[string]map[string]bool{"id": {}, "clid": {}, "lead": {}}
	length := len(bodies[0][0])
	for _, bs := range bodies {
		for _, b := range bs {
			if len(b) != length {
				t.Fatalf("bodies differ in length: %d and %d", len(b), length)
			}
			id, clid, lead := between(t, b, `"id":"wamid.`, `"`), between(t, b, `"ctwa_clid":"`, `"`), between(t, b, `"from":"`, `"`)
			checkMetaID(t, "wamid."+id, clid)
			for k, v := range map[string]string{"id": id, "clid": clid, "lead": lead} {
				if seen[k][v] {
					t.Fatalf("%s %q repeats", k, v)
				}
				seen[k][v] = true
			}
		}
	}
	// One goroutine's ids in the order it drew them: sorted ones would rise every time.
	for _, field := range []string{`"id":"wamid.`, `"from":"`} {
		rises := 0
		for i := 1; i < each; i++ {
			if between(t, bodies[0][i-1], field, `"`) < between(t, bodies[0][i], field, `"`) {
				rises++
			}
		}
		if frac := float64(rises) / (each - 1); frac < 0.4 || frac > 0.6 {
			t.Errorf("%s…: %.0f%% of the values sort after the one before, want about half (random order)", field, frac*100)
		}
	}
}

// checkMetaID fails unless id and clid have the shape of Meta's message and click ids.
func checkMetaID(t *testing.T, id, clid string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(id, "wamid."))
	if len(id) != 62 || !strings.HasPrefix(id, "wamid.HBgM") || err != nil || len(raw) != 42 {
		t.Fatalf("message id %q (%d characters, %d bytes, %v): want wamid.HBgM… of 62 characters, base64 of 42 bytes", id, len(id), len(raw), err)
	}
	raw, err = base64.RawURLEncoding.DecodeString(strings.TrimPrefix(clid, "AR"))
	if len(clid) != 98 || !strings.HasPrefix(clid, "AR") || err != nil || len(raw) != 72 {
		t.Fatalf("click id %q (%d characters, %v): want AR and URL-safe base64 of 72 bytes, 98 characters", clid, len(clid), err)
	}
}

// between is the text of b between the first start and the end after it.
func between(t *testing.T, b []byte, start, end string) string {
	t.Helper()
	_, rest, ok := bytes.Cut(b, []byte(start))
	v, _, ok2 := bytes.Cut(rest, []byte(end))
	if !ok || !ok2 {
		t.Fatalf("no %s…%s in %s", start, end, b)
	}
	return string(v)
}

// TestStatCPU parses a /proc/PID/stat line whose command name holds ") " and spaces:
// utime 1234 + stime 567 + cutime 89 + cstime 10 = 1900 ticks.
func TestStatCPU(t *testing.T) {
	line := []byte("4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1500 30 2 0 1234 567 89 10 20 0 9 0 123456 " +
		"1234567890 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
	got, err := statCPU(line)
	if err != nil || got != 1900 {
		t.Fatalf("statCPU = %d, %v; want 1900", got, err)
	}
	if fields := statFields(line); fields[1] != "1" {
		t.Errorf("ppid field %q, want 1", fields[1])
	}
	if _, err := statCPU([]byte("4242 (short) S 1 2 3\n")); err == nil {
		t.Error("statCPU of a truncated line: no error")
	}
	if ticks, ok := cpuTicks(os.Getpid()); runtime.GOOS == "linux" && (!ok || ticks <= 0) {
		t.Errorf("cpuTicks(self) = %d, %v; want some CPU time", ticks, ok)
	}
}

// TestDirUsage measures a directory of known files: *.sst, *.vlog and the log's *.seg,
// *.claims and *.run count as data (also in a subdirectory), everything counts as apparent size, and a sparse file has size but
// (almost) no blocks.
func TestDirUsage(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{"000001.sst": 1000, "000002.vlog": 3000, "MANIFEST": 50, "sub/000003.sst": 24, "log/00000000000000000001.seg": 500,
		"log/00000000000000000009.claims": 20, "log/00000000000000000009.run": 80}
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const sparse = 4 << 20
	if err := os.WriteFile(filepath.Join(dir, "00005.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "00005.mem"), sparse); err != nil {
		t.Fatal(err)
	}
	d, err := dirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.sst != 1024 || d.vlog != 3000 || d.log != 600 || d.apparent != 4674+sparse || d.files != 8 {
		t.Errorf("dirUsage = %+v; want *.sst 1024, *.vlog 3000, log 600, apparent %d, 8 files", d, 4674+sparse)
	}
	if runtime.GOOS == "linux" && (d.allocated < 4624 || d.allocated >= sparse) {
		t.Errorf("allocated %d: want at least the 4624 bytes of data and far less than the sparse file's %d", d.allocated, sparse)
	}
	u := newStoreUsage(d, 10)
	if u.DataBytes != 4624 || u.BytesPerMessage != 462.4 || u.ApparentPerMessage != float64(4674+sparse)/10 || u.AllocatedPerMessage != float64(d.allocated)/10 {
		t.Errorf("per message: %+v; want 462.4 data bytes per message", u)
	}
	if newStoreUsage(d, 0).BytesPerMessage != 0 {
		t.Error("no messages: want 0 bytes per message, not a division by zero")
	}
}

func TestSumRecorded(t *testing.T) {
	body := []byte(`ctwa_sidecar_webhooks_total{format="cloud",result="recorded"} 40` + "\n" +
		`ctwa_sidecar_webhooks_total{format="cloud",result="duplicate"} 7` + "\n" +
		`ctwa_sidecar_webhooks_total{format="onprem",result="recorded"} 2` + "\n" +
		`ctwa_sidecar_webhooks_totals{result="recorded"} 1000` + "\n" +
		`ctwa_sidecar_webhook_items_total{format="cloud",result="recorded",reason="x"} 5` + "\n")
	got, err := sumRecorded(body)
	if err != nil || got != 42 {
		t.Fatalf("sumRecorded = %v, %v; want 42", got, err)
	}
}

func TestParseStoreScale(t *testing.T) {
	o, err := parseFlags([]string{"-store-scale", "2000"}, io.Discard)
	if err != nil || o.storeScale != 2000 {
		t.Fatalf("-store-scale 2000: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"-store-scale", "-1"}, io.Discard); err == nil {
		t.Error("-store-scale -1: no error")
	}
	if _, err := parseFlags([]string{"-refresh-profile", "cpu.pprof"}, io.Discard); err == nil || !strings.Contains(err.Error(), "-store-scale") {
		t.Errorf("-refresh-profile without -store-scale: %v, want an error naming -store-scale", err)
	}
}

// TestStoreScaleSmall runs the store-scale mode end to end on 2 000 webhooks and checks
// that every number it reports was measured.
func TestStoreScaleSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 2000
	var out, progress bytes.Buffer
	profile := filepath.Join(t.TempDir(), "refresh.pprof")
	rep, err := runStoreScale(ctx, options{storeScale: n, concurrency: 8, refreshProfile: profile}, &out, &progress)
	t.Logf("\n%s%s", progress.String(), out.String())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recorded != n || rep.Leads != n/10 || rep.Referrals < 150 || rep.Referrals > 250 {
		t.Errorf("recorded %.0f of %d webhooks, %d leads, %d referrals: want all, %d leads, about %d referrals",
			rep.Recorded, n, rep.Leads, rep.Referrals, n/10, n/10)
	}
	if rep.BuildPerSec <= 0 || rep.Store == nil || rep.Store.BytesPerMessage <= 0 || rep.Store.AllocatedBytes <= 0 {
		t.Errorf("build %.0f/s, store %+v: want a rate and a size", rep.BuildPerSec, rep.Store)
	}
	// Some of the year's referrals fall into the last 30 days; the sources include
	// them and the unattributed conversations.
	if rep.AdsListed < 10 || rep.AdsPageP50Ms <= 0 || rep.SourcesFound < 2 || rep.SourcesP50Ms <= 0 {
		t.Errorf("ads list: %d ads in %.3f ms, sources: %d in %.3f ms; want ads, sources and timings",
			rep.AdsListed, rep.AdsPageP50Ms, rep.SourcesFound, rep.SourcesP50Ms)
	}
	if rep.Refresh.Messages != n || rep.Refresh.Sessions <= 0 || rep.RefreshPerSec <= 0 || rep.RefreshPerMillion <= 0 {
		t.Errorf("refresh %+v, %.0f/s, %.1f s per million: want all %d messages rebuilt", rep.Refresh, rep.RefreshPerSec, rep.RefreshPerMillion, n)
	}
	// The query timings are in the progress before the refresh starts (a 10 M run's
	// refresh takes many minutes).
	if q, r := strings.Index(progress.String(), "sources view p50"), strings.Index(progress.String(), "refreshing"); q < 0 || r < q {
		t.Errorf("progress names the query timings at %d and the refresh at %d: want the timings first", q, r)
	}
	if p, err := os.ReadFile(profile); err != nil || len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
		t.Errorf("-refresh-profile: %d bytes, %v; want a gzipped pprof profile", len(p), err)
	}
	if runtime.GOOS == "linux" && rep.RSSMaxMiB <= 0 {
		t.Errorf("RSS max %.1f MiB: want it sampled", rep.RSSMaxMiB)
	}
	for _, want := range []string{"build rate", "store bytes per message", "ads list p50", "sources view p50",
		"refresh, extrapolated s per 1 M messages", "RSS max"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report has no line %q", want)
		}
	}
}
