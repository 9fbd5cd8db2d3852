package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestSoakShort runs the soak briefly with every fault in the rotation, and requires a
// clean record; then it runs it again with the record spoiled before the final check — an
// acknowledgement for a webhook never sent, a second click of one lead, a message from a
// lead the driver never wrote as — and requires the soak to catch each.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sidecar and runs it for 22s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin, err := buildSidecar(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Each fault takes its 2.5 s wait plus its own time and a check (more under -race): the
	// five and the flood need about 20 s, so a 15 s soak could end before the last one.
	o := options{soak: 22 * time.Second, soakRate: 150, soakFaultEvery: 2500 * time.Millisecond, concurrency: 8, sidecar: bin}
	var out, progress bytes.Buffer
	sum, err := runSoak(ctx, o, &out, &progress)
	t.Logf("\n%s%s", progress.String(), out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if sum.Lost+sum.Duplicated+sum.Misrecorded+sum.OffThreadLost+sum.OffThreadDuplicated != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for _, f := range soakFaults {
		if sum.Faults[f] == 0 {
			t.Errorf("fault %q was not injected: %v", f, sum.Faults)
		}
	}
	if sum.Restarts < 2 || sum.Checks < len(soakFaults)+1 || sum.Sent < 100 || sum.Garbage == 0 || sum.Statuses == 0 ||
		sum.OffAcked == 0 || len(sum.Samples) < 2 || sum.RSSMaxMiB <= 0 {
		t.Errorf("the soak did less than it should: %+v", sum)
	}
	if sum.AckedInLoad == sum.Sent {
		t.Errorf("every webhook was acknowledged during the load: the faults did not bite")
	}
	if !strings.Contains(out.String(), "PASS: nothing lost, duplicated or mis-recorded") {
		t.Errorf("report lacks the verdict:\n%s", out.String())
	}

	// The same soak, briefly, with the record spoiled: the check must see it.
	o.soak, o.soakFaultEvery = 3*time.Second, time.Hour
	o.soakTamper = func(r *soakRun) {
		r.mu.Lock()
		r.leads = append(r.leads, soakLead{acked: true}) // acknowledged, never sent: lost
		r.mu.Unlock()
		again := bytes.Replace(r.webhook(0), []byte("wamid.soak."), []byte("wamid.again."), 1) // lead 0 clicks again
		stranger := bytes.ReplaceAll(r.webhook(1), []byte(soakLeadPhone(1)), []byte("4915512345678"))
		stranger = bytes.Replace(stranger, []byte("wamid.soak."), []byte("wamid.stranger."), 1)
		if !r.post(false, "/webhook", again) || !r.post(false, "/webhook", stranger) {
			t.Error("tamper webhooks were not acknowledged")
		}
	}
	out.Reset()
	progress.Reset()
	sum, err = runSoak(ctx, o, &out, &progress)
	if err == nil || sum.Lost != 1 || sum.Duplicated != 1 || sum.Misrecorded != 1 || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("spoiled record: err %v, lost %d, duplicated %d, mis-recorded %d; want 1 each and a failure\n%s%s",
			err, sum.Lost, sum.Duplicated, sum.Misrecorded, progress.String(), out.String())
	}
}
