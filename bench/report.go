package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

const (
	modeClosed = "closed"
	modeOpen   = "open"
)

// roundResult is one system driven for one round.
type roundResult struct {
	System       string         `json:"system"`
	Mode         string         `json:"mode"` // closed or open loop
	Round        int            `json:"round"`
	RPS          float64        `json:"rps"` // 2xx answers per second
	P50Ms        float64        `json:"p50_ms"`
	P99Ms        float64        `json:"p99_ms"`
	Errors       map[string]int `json:"errors,omitempty"` // non-2xx answers and transport errors
	Unsent       int            `json:"unsent,omitempty"` // open loop: still due when the round ended
	EventsPerSec float64        `json:"events_per_sec,omitempty"`
	CPUUsPerReq  float64        `json:"cpu_us_per_req,omitempty"` // CPU time of all its processes per 2xx answer
	RSSMiB       float64        `json:"rss_mib"`
}

// row is a system's rounds of one mode combined: the median of the rounds, the largest
// RSS (the sidecar's grows with its store) and every error.
type row struct {
	System       string         `json:"system"`
	RPS          float64        `json:"rps"`
	P50Ms        float64        `json:"p50_ms"`
	P99Ms        float64        `json:"p99_ms"`
	Errors       map[string]int `json:"errors,omitempty"`
	Unsent       int            `json:"unsent,omitempty"`
	EventsPerSec float64        `json:"events_per_sec,omitempty"`
	CPUUsPerReq  float64        `json:"cpu_us_per_req,omitempty"` // CPU time of all its processes per 2xx answer
	RSSMiB       float64        `json:"rss_mib"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	OS     string `json:"os"`
	Kernel string `json:"kernel,omitempty"`
	Go     string `json:"go"`
	Nginx  string `json:"nginx,omitempty"`
}

// ratios are the numbers SPEC §8 sets targets for; nil when a system was not measured.
type ratios struct {
	SidecarOverBare      *float64 `json:"sidecar_over_bare_rps,omitempty"`
	SidecarOverBareCPU   *float64 `json:"sidecar_over_bare_cpu_per_req,omitempty"`
	SidecarOverNginx     *float64 `json:"sidecar_over_nginx_rps,omitempty"`
	AddedP99VsBareMs     *float64 `json:"added_p99_vs_bare_ms,omitempty"`
	AddedP99VsUpstreamMs *float64 `json:"added_p99_vs_upstream_ms,omitempty"`
}

type report struct {
	Machine     machine       `json:"machine"`
	DurationS   float64       `json:"round_seconds"`
	Concurrency int           `json:"concurrency"`
	RoundsN     int           `json:"closed_rounds"`
	Closed      []row         `json:"closed_loop"`
	OpenRate    float64       `json:"open_loop_rate"`
	Open        []row         `json:"open_loop"`
	Ratios      ratios        `json:"ratios"`
	Store       *storeUsage   `json:"sidecar_store,omitempty"` // measured after the sidecar stopped
	NATS        *natsUsage    `json:"nats,omitempty"`          // -nats: the sidecar's log on a JetStream cluster
	Notes       []string      `json:"notes,omitempty"`
	Rounds      []roundResult `json:"rounds"`
	order       []string      // systems in the order they were started
}

func newReport(o options) *report {
	return &report{
		Machine:   machineInfo(),
		DurationS: o.duration.Seconds(), Concurrency: o.concurrency, RoundsN: o.rounds,
	}
}

func (r *report) note(s string) { r.Notes = append(r.Notes, s) }

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// median is the median of f over the rounds of system in mode (0 if there are none).
func (r *report) median(system, mode string, f func(roundResult) float64) float64 {
	var v []float64
	for _, rr := range r.Rounds {
		if rr.System == system && rr.Mode == mode {
			v = append(v, f(rr))
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// summarize combines the rounds into rows and computes the ratios.
func (r *report) summarize() {
	for _, rr := range r.Rounds {
		if !slices.Contains(r.order, rr.System) {
			r.order = append(r.order, rr.System)
		}
	}
	slices.SortStableFunc(r.order, func(a, b string) int { return systemRank(a) - systemRank(b) })
	r.Closed, r.Open = r.rows(modeClosed), r.rows(modeOpen)
	r.Ratios = ratios{
		SidecarOverBare:      ratio(findRow(r.Closed, nameSidecar), findRow(r.Closed, nameBare)),
		SidecarOverBareCPU:   cpuRatio(findRow(r.Closed, nameSidecar), findRow(r.Closed, nameBare)),
		SidecarOverNginx:     ratio(findRow(r.Closed, nameSidecar), findRow(r.Closed, nameNginx)),
		AddedP99VsBareMs:     addedP99(findRow(r.Open, nameSidecar), findRow(r.Open, nameBare)),
		AddedP99VsUpstreamMs: addedP99(findRow(r.Open, nameSidecar), findRow(r.Open, nameUpstream)),
	}
}

func systemRank(name string) int {
	return slices.Index([]string{nameUpstream, nameBare, nameNginx, nameSidecar}, name)
}

func (r *report) rows(mode string) []row {
	var rows []row
	for _, sys := range r.order {
		rw := row{System: sys, Errors: map[string]int{}}
		n := 0
		for _, rr := range r.Rounds {
			if rr.System != sys || rr.Mode != mode {
				continue
			}
			n++
			rw.RSSMiB = max(rw.RSSMiB, rr.RSSMiB)
			rw.Unsent += rr.Unsent
			for k, v := range rr.Errors {
				rw.Errors[k] += v
			}
		}
		if n == 0 {
			continue
		}
		rw.RPS = r.median(sys, mode, func(rr roundResult) float64 { return rr.RPS })
		rw.P50Ms = r.median(sys, mode, func(rr roundResult) float64 { return rr.P50Ms })
		rw.P99Ms = r.median(sys, mode, func(rr roundResult) float64 { return rr.P99Ms })
		rw.EventsPerSec = r.median(sys, mode, func(rr roundResult) float64 { return rr.EventsPerSec })
		rw.CPUUsPerReq = r.median(sys, mode, func(rr roundResult) float64 { return rr.CPUUsPerReq })
		rows = append(rows, rw)
	}
	return rows
}

func findRow(rows []row, system string) *row {
	for i := range rows {
		if rows[i].System == system {
			return &rows[i]
		}
	}
	return nil
}

func ratio(a, b *row) *float64 {
	if a == nil || b == nil || b.RPS == 0 {
		return nil
	}
	v := a.RPS / b.RPS
	return &v
}

// cpuRatio is a's CPU time per request over b's.
func cpuRatio(a, b *row) *float64 {
	if a == nil || b == nil || a.CPUUsPerReq == 0 || b.CPUUsPerReq == 0 {
		return nil
	}
	v := a.CPUUsPerReq / b.CPUUsPerReq
	return &v
}

func addedP99(a, b *row) *float64 {
	if a == nil || b == nil {
		return nil
	}
	v := a.P99Ms - b.P99Ms
	return &v
}

// writeJSON prints a report (comparison or store scale) as indented JSON.
func writeJSON(w io.Writer, report any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// writeTable prints the results as aligned text.
func (r *report) writeTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s %s, %s", m.CPUs, m.Model, m.OS, m.Kernel, m.Go)
	if m.Nginx != "" {
		fmt.Fprintf(w, ", %s", m.Nginx)
	}
	round := time.Duration(r.DurationS * float64(time.Second))
	fmt.Fprintf(w, "\nload: loopback, distinct Cloud API CTWA text webhooks (new random message id, click id and lead each), %d connections\n",
		r.Concurrency)
	fmt.Fprint(w, "CPU/req: CPU time (user + system) of the system's processes over the measured window ÷ requests answered 2xx\n\n")
	fmt.Fprintf(w, "closed loop: %d round(s) × %s per system, alternating; median of rounds\n", r.RoundsN, round)
	writeRows(w, r.Closed, "req/s")
	if r.NATS != nil {
		fmt.Fprintf(w, "cluster mode (-nats): the sidecar's log on an R%d stream of a %d-node NATS JetStream cluster on loopback, in the bench process\n",
			r.NATS.Replicas, r.NATS.Nodes)
	}
	if len(r.Open) > 0 {
		basis := "half of the sidecar's peak"
		if r.NATS != nil {
			basis = "SPEC §8's cluster rate"
		}
		fmt.Fprintf(w, "\nopen loop: %.0f req/s offered (%s), %s per system\n", r.OpenRate, basis, round)
		writeRows(w, r.Open, "answered/s")
	}
	r.writeRatios(w)
	r.writeErrors(w)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

const rowFormat = "%-16s %10s %11s %11s %7s %9s %10s %10s\n"

func writeRows(w io.Writer, rows []row, rate string) {
	fmt.Fprintf(w, rowFormat, "system", rate, "p50", "p99", "errors", "events/s", "CPU/req", "RSS")
	for _, rw := range rows {
		events, cpu := "-", "-"
		if rw.System == nameSidecar {
			events = fmt.Sprintf("%.0f", rw.EventsPerSec)
		}
		if rw.CPUUsPerReq > 0 {
			cpu = fmt.Sprintf("%.1f µs", rw.CPUUsPerReq)
		}
		fmt.Fprintf(w, rowFormat, rw.System, fmt.Sprintf("%.0f", rw.RPS), fmtMs(rw.P50Ms), fmtMs(rw.P99Ms),
			fmt.Sprint(sumErrors(rw.Errors)), events, cpu, fmt.Sprintf("%.1f MiB", rw.RSSMiB))
	}
}

func (r *report) writeRatios(w io.Writer) {
	fmt.Fprintln(w)
	rt := r.Ratios
	if r.NATS != nil {
		r.writeClusterRatios(w)
		return
	}
	writeCheck(w, "sidecar / bare fasthttp req/s", rt.SidecarOverBare, "%.2f", "≥ 0.90", func(v float64) bool { return v >= 0.9 })
	writeCheck(w, "sidecar / nginx req/s", rt.SidecarOverNginx, "%.2f", "≥ 1.00", func(v float64) bool { return v >= 1.0 })
	writeCheck(w, "added p99 at half load (sidecar − bare fasthttp), ms", rt.AddedP99VsBareMs, "%.3f", "≤ 1 ms",
		func(v float64) bool { return v <= 1 })
	writeCheck(w, "added p99 at half load (sidecar − upstream direct), ms", rt.AddedP99VsUpstreamMs, "%.3f", "", nil)
	writeCheck(w, "CPU per recorded webhook ÷ bare CPU per request", rt.SidecarOverBareCPU, "%.2f", "≤ 1.15",
		func(v float64) bool { return v <= 1.15 })
	r.writeStore(w)
}

// writeClusterRatios is writeRatios with -nats: SPEC §8's cluster target is checked; the
// single sidecar's targets (on its local log, open loop at half its peak) do not apply,
// and their numbers are printed for comparison only.
func (r *report) writeClusterRatios(w io.Writer) {
	rt := r.Ratios
	rate := fmt.Sprintf("%.0f req/s", r.OpenRate)
	writeCheck(w, "sidecar / bare fasthttp req/s", rt.SidecarOverBare, "%.2f", "", nil)
	writeCheck(w, "sidecar / nginx req/s", rt.SidecarOverNginx, "%.2f", "", nil)
	writeCheck(w, "added p99 at "+rate+" (sidecar − bare fasthttp), ms", rt.AddedP99VsBareMs, "%.3f",
		fmt.Sprintf("≤ %.0f ms", natsTargetMs), func(v float64) bool { return v <= natsTargetMs })
	writeCheck(w, "added p99 at "+rate+" (sidecar − upstream direct), ms", rt.AddedP99VsUpstreamMs, "%.3f", "", nil)
	writeCheck(w, "CPU per recorded webhook ÷ bare CPU per request", rt.SidecarOverBareCPU, "%.2f", "", nil)
	fmt.Fprintln(w, "  (single-sidecar targets not checked here: go run ./bench checks them; the NATS servers' CPU is in no CPU/req)")
	r.writeStore(w)
	var recorded float64
	if r.Store != nil {
		recorded = r.Store.Messages
	}
	r.NATS.write(w, recorded)
}

// writeStore prints the sidecar's store size per message; the target is checked on the
// *.sst and *.vlog files and the log's files (see storeUsage), for a sidecar on its local log.
func (r *report) writeStore(w io.Writer) {
	st := r.Store
	if st == nil {
		return
	}
	var per *float64
	if st.Messages > 0 {
		per = &st.BytesPerMessage
	}
	if r.NATS != nil {
		writeCheck(w, "store bytes per message (sidecar, *.sst + *.vlog + log)", per, "%.0f", "", nil)
	} else {
		writeCheck(w, "store bytes per message (sidecar, *.sst + *.vlog + log)", per, "%.0f", "≤ 400",
			func(v float64) bool { return v <= 400 })
	}
	fmt.Fprintf(w, "  store after shutdown: %.0f messages; *.sst + *.vlog + log %s (%s + %s + %s); all files %s apparent (%.0f B/message), %s allocated (%.0f B/message)\n",
		st.Messages, fmtBytes(st.DataBytes), fmtBytes(st.SSTBytes), fmtBytes(st.VlogBytes), fmtBytes(st.LogBytes), fmtBytes(st.ApparentBytes), st.ApparentPerMessage,
		fmtBytes(st.AllocatedBytes), st.AllocatedPerMessage)
}

// fmtBytes prints a size in MiB, or in KiB below one MiB.
func fmtBytes(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// writeCheck prints one number with its SPEC §8 target and whether it was met.
func writeCheck(w io.Writer, what string, v *float64, format, target string, met func(float64) bool) {
	if v == nil {
		fmt.Fprintf(w, "%-56s  n/a\n", what)
		return
	}
	fmt.Fprintf(w, "%-56s  "+format, what, *v)
	if met != nil {
		verdict := "met"
		if !met(*v) {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "   (target %s: %s)", target, verdict)
	}
	fmt.Fprintln(w)
}

// writeErrors lists what the failed requests got, per system and mode.
func (r *report) writeErrors(w io.Writer) {
	for _, sec := range []struct {
		mode string
		rows []row
	}{{modeClosed, r.Closed}, {modeOpen, r.Open}} {
		for _, rw := range sec.rows {
			for _, k := range slices.Sorted(maps.Keys(rw.Errors)) {
				fmt.Fprintf(w, "errors: %s, %s loop: %d × %s\n", rw.System, sec.mode, rw.Errors[k], k)
			}
			if rw.Unsent > 0 {
				fmt.Fprintf(w, "behind: %s, %s loop: %d requests still due at the end were not sent (the system or the machine could not keep the rate)\n",
					rw.System, sec.mode, rw.Unsent)
			}
		}
	}
}

func sumErrors(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMs prints milliseconds with microsecond precision.
func fmtMs(v float64) string { return fmt.Sprintf("%.3f ms", v) }
