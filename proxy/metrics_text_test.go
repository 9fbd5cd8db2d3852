package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every ctwa_sidecar_ family the code defines has a help text and a row in README's
// Metrics table, and no help text is left for a family that is gone.
func TestEveryMetricHasHelpAndAREADMERow(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`ctwa_sidecar_[a-z_]+`)
	defined := map[string]bool{}
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == "third_party" || d.Name() == "node_modules" || d.Name() == ".git") {
			if err == nil {
				err = filepath.SkipDir
			}
			return err
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == "metrics_text.go" {
			return nil
		}
		src, err := os.ReadFile(path)
		for _, m := range name.FindAll(src, -1) {
			fam := string(m)
			for _, series := range []string{"_bucket", "_sum", "_count"} { // of a histogram
				fam = strings.TrimSuffix(fam, series)
			}
			defined[fam] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 30 {
		t.Fatalf("found only %d metric families in the code: %v", len(defined), defined)
	}
	for fam := range defined {
		if metricHelp[fam] == "" {
			t.Errorf("%s has no help text in metricHelp", fam)
		}
		if !bytes.Contains(readme, []byte("`"+strings.TrimPrefix(fam, "ctwa_sidecar_"))) {
			t.Errorf("README's Metrics table has no row for %s", fam)
		}
	}
	for fam := range metricHelp {
		if !defined[fam] {
			t.Errorf("metricHelp has %s, which the code does not define", fam)
		}
	}
}

// A live scrape of /metrics passes promtool's lint for every ctwa_sidecar_ family:
// help text, type, histogram and counter naming. CI sets CTWA_PROMTOOL_TEST=1, so that a
// missing promtool fails instead of skipping.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CTWA_PROMTOOL_TEST") != "" {
			t.Fatal("promtool not found (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus); CTWA_PROMTOOL_TEST=1 makes this a failure")
	}
	forwardDuration.Update(0.0003) // a histogram with samples, not only empty buckets
	base, _ := serveAPI(t, "api", NewAPI("", func() error { return nil }))
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# HELP ctwa_sidecar_forward_duration_seconds Upstream round trip",
		"# TYPE ctwa_sidecar_forward_duration_seconds histogram",
		`ctwa_sidecar_forward_duration_seconds_bucket{le="0.0001"} `, // buckets from 100 µs
		`ctwa_sidecar_forward_duration_seconds_bucket{le="0.0005"} `,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, _ := cmd.CombinedOutput() // exit 3 for findings on the Go runtime's families
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ctwa_sidecar_") || strings.Contains(line, "error") {
			t.Errorf("promtool: %s", line)
		}
	}
	if !bytes.Contains(body, []byte("ctwa_sidecar_requests_total")) {
		t.Fatal("the scrape has no ctwa_sidecar_ families")
	}
}

// ctwa_sidecar_ready says what /readyz says.
func TestReadyGauge(t *testing.T) {
	var notReady error = errors.New("disk full")
	NewAPI("", func() error { return notReady })
	if v := counterValue(t, "ctwa_sidecar_ready"); v != 0 {
		t.Fatalf("ready %v while /readyz answers 503, want 0", v)
	}
	notReady = nil
	if v := counterValue(t, "ctwa_sidecar_ready"); v != 1 {
		t.Fatalf("ready %v once the store takes writes, want 1", v)
	}
}

// The alerts and the Grafana dashboard in deploy/ chart metrics that exist, with queries
// that parse: each ctwa_sidecar_ name they use has help (so the code defines it), and
// promtool compiles every dashboard query as a rule.
func TestDeployFilesUseRealMetrics(t *testing.T) {
	alerts, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "ctwa-sidecar.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/ctwa-sidecar.json: %v", err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			n++
			expr := strings.ReplaceAll(q.Expr, "$instance", ".*")
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %q\n", n, expr)
		}
	}
	if n < 10 {
		t.Fatalf("the dashboard has %d queries", n)
	}
	name := regexp.MustCompile(`ctwa_sidecar_[a-z_]+`)
	for file, text := range map[string][]byte{"alerts.yml": alerts, "ctwa-sidecar.json": raw} {
		for _, m := range name.FindAll(text, -1) {
			fam := strings.TrimSuffix(string(m), "_bucket")
			if metricHelp[fam] == "" {
				t.Errorf("%s uses %s, which the sidecar does not expose", file, fam)
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CTWA_PROMTOOL_TEST") != "" {
			t.Fatal("promtool not found (apt-get install prometheus)")
		}
		t.Skip("promtool not installed; CTWA_PROMTOOL_TEST=1 makes this a failure")
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}
