package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSoakDiskFull runs the soak briefly with the disk-full fault and a kill -9 after
// it, on the tmpfs the soak mounts (root on Linux; CI runs as root): the fault must
// bite (webhooks acknowledged and not recorded, counted as refused), everything
// acknowledged outside it must be recorded once, and the tmpfs must be gone after.
// Then a short soak whose record claims one more lead acknowledged on a full disk than
// the sidecar refused must fail.
func TestSoakDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sidecar and runs it for 10s")
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to mount a tmpfs (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin, err := buildSidecar(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := options{soak: 10 * time.Second, soakRate: 150, soakFaultEvery: 3 * time.Second, concurrency: 8, sidecar: bin,
		soakDiskFull: true, soakOnly: []string{soakDiskFull, "sidecar kill -9"}}
	var out, progress bytes.Buffer
	sum, err := runSoak(ctx, o, &out, &progress)
	t.Logf("\n%s%s", progress.String(), out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if mounted := soakMounts(t); mounted != "" {
		t.Errorf("the soak's tmpfs is still mounted: %s", mounted)
	}
	if sum.Faults[soakDiskFull] == 0 || sum.Faults["sidecar kill -9"] == 0 || sum.DiskFull != "" {
		t.Fatalf("faults %v (disk full: %q), want a disk-full fault and a kill -9", sum.Faults, sum.DiskFull)
	}
	if !sum.ok() || sum.Lost != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.DiskNewLeads < 3 || sum.DiskAnswered < sum.DiskNewLeads || sum.InFaultAcked == 0 || sum.InFaultMissing == 0 ||
		sum.DiskRefused < float64(sum.InFaultMissing) {
		t.Errorf("the disk-full fault did not bite as it should: %d answered, %d new leads on a full disk, %d leads acknowledged only then, "+
			"%d of them unrecorded, %.0f refused", sum.DiskAnswered, sum.DiskNewLeads, sum.InFaultAcked, sum.InFaultMissing, sum.DiskRefused)
	}
	if !strings.Contains(progress.String(), "/readyz 200 again") || !strings.Contains(out.String(), "PASS") {
		t.Errorf("report lacks the fault's end or the verdict")
	}

	// A lead acknowledged on a full disk and unrecorded, with no refusal counted: lost.
	o.soak, o.soakFaultEvery = 3*time.Second, time.Hour
	o.soakTamper = func(r *soakRun) {
		r.mu.Lock()
		r.leads = append(r.leads, soakLead{acked: true, inFault: true})
		r.mu.Unlock()
	}
	out.Reset()
	progress.Reset()
	sum, err = runSoak(ctx, o, &out, &progress)
	if err == nil || sum.Lost != 1 || sum.InFaultMissing != 1 {
		t.Fatalf("unrefused lead: err %v, lost %d, unrecorded on a full disk %d; want a failure with 1 lost\n%s%s",
			err, sum.Lost, sum.InFaultMissing, progress.String(), out.String())
	}
}

// soakMounts lists the soak's mounts that are left.
func soakMounts(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "ctwa-soak-") {
			left = append(left, strings.TrimSpace(line))
		}
	}
	return strings.Join(left, "; ")
}
