package main

// The soak's disk-full fault (-soak-disk-full): the sidecar's data directory is on a
// tmpfs the soak mounts (root on Linux only), and the fault fills it with another file
// until less than the sidecar's -min-free-disk is free, under the running load. The
// sidecar must live, answer every webhook with the upstream's answer, say so on /readyz
// and count each refused recording; once the file is gone it must record again by
// itself. Webhooks acknowledged while the disk was full are not recorded, by design:
// a lead whose every 2xx answer came during the fault is excused from the check that
// every acknowledged webhook is recorded (it must still be recorded at most once, and
// at the end no more of them may be missing than the sidecar counted as refused).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	soakDiskFull = "disk full"
	// soakReserve is the sidecar's -min-free-disk on the soak's tmpfs.
	soakReserve = 64 << 20
	// soakStoreRoom is what the store takes on the tmpfs besides its records: the
	// value-log file allocated whole (128 MiB), the memtable files, tables that
	// compactions write before they delete the old ones.
	soakStoreRoom = 256 << 20
	// soakBytesPerRequest bounds what one request of the soak's mix adds to the store
	// (about 1 KiB is measured; four times that for headroom).
	soakBytesPerRequest = 4 << 10
)

// Disk phases of the soak: the window runs from just before the filler is written
// until /readyz answers 200 again after it is removed.
const (
	diskOff      int32 = iota
	diskFilling        // the filler is being written: the sidecar may or may not record
	diskFull           // /readyz said the disk is full: the sidecar must refuse every recording
	diskClearing       // the filler is being removed, until /readyz says ready
)

// soakDisk is the tmpfs that holds the sidecar's data directory.
type soakDisk struct {
	mnt, data string
	size      int64
	stats     diskStats
}

// mountSoakDisk mounts the tmpfs for the soak under dir, or says why the disk-full
// fault is skipped.
func mountSoakDisk(dir string, o options) (*soakDisk, string) {
	if runtime.GOOS != "linux" {
		return nil, "needs Linux to mount a tmpfs"
	}
	d := &soakDisk{mnt: filepath.Join(dir, "tmpfs")}
	d.data = filepath.Join(d.mnt, "sidecar-data")
	d.size = soakStoreRoom + soakReserve + int64(soakBytesPerRequest*float64(o.soakRate)*o.soak.Seconds())
	d.size = (d.size + 1<<20 - 1) &^ (1<<20 - 1)
	if err := os.Mkdir(d.mnt, 0o700); err != nil {
		return nil, err.Error()
	}
	if err := mountTmpfs(d.mnt, d.size); err != nil {
		return nil, err.Error()
	}
	return d, ""
}

// diskStats is what the disk-full faults saw, over the whole soak.
type diskStats struct {
	answered int64   // webhooks answered while the disk was full (all with the upstream's answer)
	newLeads int64   // new leads among them, acknowledged
	refused  float64 // growth of store_refused_total (every reason) from filling to ready again
}

// fillDisk is the disk-full fault; hold is how long the disk stays full.
func (r *soakRun) fillDisk(ctx context.Context, hold time.Duration) error {
	const (
		refusedSeries = `ctwa_sidecar_store_refused_total{reason="disk_full"}`
		storeErrors   = `ctwa_sidecar_webhooks_total{format="cloud",result="store_error"}`
	)
	d := r.disk
	t := r.target.Load()
	free, err := freeBytes(d.mnt)
	if err != nil {
		return err
	}
	if free < 2*soakReserve {
		return fmt.Errorf("%s: the tmpfs of %s has %s free before the fault: the store outgrew it", soakDiskFull, mib(d.size), mib(free))
	}
	alive := func(when string) error {
		select {
		case <-t.proc.done:
			return fmt.Errorf("%s: the sidecar died %s:\n%s", soakDiskFull, when, t.proc.logTail())
		default:
		}
		if r.target.Load() != t {
			return fmt.Errorf("%s: the sidecar was restarted %s", soakDiskFull, when)
		}
		return nil
	}

	refusedBefore, err := refusedAll(t.api)
	if err != nil {
		return err
	}
	r.diskBad.Store(0)
	r.diskPhase.Store(diskFilling)
	defer r.diskPhase.Store(diskOff)
	filler, err := os.Create(filepath.Join(d.mnt, "filler"))
	if err != nil {
		return err
	}
	defer os.Remove(filler.Name()) // on every way out
	defer filler.Close()
	var size int64
	if err := fillTo(filler, &size, d.mnt, soakReserve/2); err != nil {
		return fmt.Errorf("%s: %w", soakDiskFull, err)
	}
	// The other program keeps the disk full: the store frees some space now and then
	// (flushed memtables, compacted tables), which must not end the fault early.
	stopTopping, topped := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTopping:
				topped <- nil
				return
			case <-tick.C:
			}
			if err := fillTo(filler, &size, d.mnt, soakReserve*3/4); err != nil {
				topped <- err
				return
			}
		}
	}()
	stopped, topErr := false, error(nil)
	stopFilling := func() error {
		if !stopped {
			stopped = true
			close(stopTopping)
			topErr = <-topped
		}
		return topErr
	}
	defer stopFilling()
	used := d.size - free // by the store, before the filler
	free, _ = freeBytes(d.mnt)
	body, err := r.waitReadyz(t, fasthttp.StatusServiceUnavailable, "disk full")
	if err != nil {
		return err
	}
	refused0, err := soakMetric(t.api, refusedSeries)
	if err != nil {
		return err
	}
	storeErrs0, err := soakMetric(t.api, storeErrors)
	if err != nil {
		return err
	}
	answered0 := r.diskAnswered.Load()
	r.mu.Lock()
	leads0 := len(r.diskFullLeads)
	r.mu.Unlock()
	r.diskPhase.Store(diskFull)
	fmt.Fprintf(r.out, "t=%-6s %s: the store took %s of the %s tmpfs, a filler leaves %s free (-min-free-disk %s); /readyz %s\n",
		r.elapsed(), soakDiskFull, mib(used), mib(d.size), mib(free), mib(soakReserve), strings.TrimSpace(body))
	// The load goes on; a few leads of our own make sure some traffic meets the full disk
	// even when the load is about to end.
	for range 3 {
		if seq := r.newLead(); !r.sendLead(seq) {
			return fmt.Errorf("%s: a new lead's webhook was not answered 2xx while the disk was full", soakDiskFull)
		}
	}
	sleepCtx(ctx, hold)
	r.diskPhase.Store(diskClearing)
	answered := r.diskAnswered.Load() - answered0
	r.mu.Lock()
	leads := slices.Clone(r.diskFullLeads[leads0:])
	r.mu.Unlock()
	refused, err := soakMetric(t.api, refusedSeries)
	if err != nil {
		return err
	}
	storeErrs, err := soakMetric(t.api, storeErrors)
	if err != nil {
		return err
	}
	d.stats.answered += answered
	d.stats.newLeads += int64(len(leads))
	if err := alive("while the disk was full"); err != nil {
		return err
	}
	if status, body, err := soakReadyz(t.api); err != nil || status != fasthttp.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		return fmt.Errorf("%s: /readyz answered %d %q %v at the end of the fault, want 503 saying the disk is full", soakDiskFull, status, body, err)
	}
	if n := r.diskBad.Load(); n > 0 {
		return fmt.Errorf("%s: %d webhooks sent during the fault were not answered with the upstream's answer (first: %v)", soakDiskFull, n, r.diskBadFirst.Load())
	}

	if err := stopFilling(); err != nil {
		return fmt.Errorf("%s: %w", soakDiskFull, err)
	}
	filler.Close() // an open file keeps its space
	if err := os.Remove(filler.Name()); err != nil {
		return fmt.Errorf("%s: cannot remove the filler: %w", soakDiskFull, err)
	}
	if _, err := r.waitReadyz(t, fasthttp.StatusOK, ""); err != nil {
		return err
	}
	r.diskPhase.Store(diskOff)
	refusedAfter, err := refusedAll(t.api)
	if err != nil {
		return err
	}
	d.stats.refused += refusedAfter - refusedBefore
	// Recording resumed: new leads are recorded again.
	var resumed []int
	for range 5 {
		seq := r.newLead()
		resumed = append(resumed, seq)
		if !r.sendLead(seq) {
			return fmt.Errorf("%s: a new lead's webhook was not answered 2xx once the disk had room again", soakDiskFull)
		}
	}
	events, err := r.exportEvents()
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, ev := range events {
		seen[ev.phone]++
	}
	for _, seq := range resumed {
		if seen[soakLeadPhone(seq)] != 1 {
			return fmt.Errorf("%s: lead %s, acknowledged once the disk had room again, has %d events, want 1",
				soakDiskFull, soakLeadPhone(seq), seen[soakLeadPhone(seq)])
		}
	}
	// The new leads acknowledged while the disk was full are not recorded (unless the
	// store found room for a moment, or a retry since recorded them), and each one the
	// store refused is counted.
	unrecorded := 0
	for _, seq := range leads {
		if seen[soakLeadPhone(seq)] == 0 {
			unrecorded++
		}
	}
	if unrecorded == 0 || refused-refused0 < float64(unrecorded) || storeErrs-storeErrs0 < float64(unrecorded) {
		return fmt.Errorf("%s: %d new leads acknowledged on a full disk, %d of them unrecorded; %s grew by %v and %s by %v meanwhile",
			soakDiskFull, len(leads), unrecorded, refusedSeries, refused-refused0, storeErrors, storeErrs-storeErrs0)
	}
	if err := alive("after the fault"); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "t=%-6s %s: filler removed; %d webhooks answered by the upstream while full (%d new leads acknowledged, %d unrecorded), "+
		"store_refused_total{reason=\"disk_full\"} +%.0f; /readyz 200 again, %d new leads recorded\n",
		r.elapsed(), soakDiskFull, answered, len(leads), unrecorded, refused-refused0, len(resumed))
	return nil
}

// fillTo grows f, of *size bytes, until the file system of dir has at most left bytes
// free: it leaves soakReserve/2 free (room for what the store writes below its reserve).
func fillTo(f *os.File, size *int64, dir string, left int64) error {
	for range 50 {
		free, err := freeBytes(dir)
		if err != nil {
			return err
		}
		if free <= left {
			return nil
		}
		grow := free - soakReserve/2
		for {
			err := allocate(f, *size, grow)
			if err == nil {
				*size += grow
				break
			}
			if !errors.Is(err, syscall.ENOSPC) || grow <= 1<<20 {
				return fmt.Errorf("cannot fill the tmpfs: %w", err)
			}
			grow /= 2 // the store took some meanwhile
		}
	}
	return fmt.Errorf("the tmpfs of %s keeps more than %s free", dir, mib(left))
}

// waitReadyz polls /readyz until it answers status with a body containing want, the
// sidecar exits, or 10 s pass; it returns the body.
func (r *soakRun) waitReadyz(t *soakTarget, status int, want string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, body, err := soakReadyz(t.api)
		if err == nil && got == status && strings.Contains(body, want) {
			return body, nil
		}
		select {
		case <-t.proc.done:
			return "", fmt.Errorf("%s: the sidecar died:\n%s", soakDiskFull, t.proc.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: /readyz answered %d %q %v for 10s, want %d %q", soakDiskFull, got, body, err, status, want)
		}
	}
}

// refusedAll sums ctwa_sidecar_store_refused_total over its reasons.
func refusedAll(api string) (float64, error) {
	sum := 0.0
	for _, reason := range []string{"disk_full", "no_inodes", "unavailable"} {
		v, err := soakMetric(api, `ctwa_sidecar_store_refused_total{reason="`+reason+`"}`)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

func soakReadyz(api string) (int, string, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+api+"/readyz", 5*time.Second)
	return status, string(body), err
}

// inDiskFault reports whether phase is part of a disk-full fault.
func inDiskFault(phase int32) bool { return phase != diskOff }

// checkDiskAnswer is called for every answer of the webhook listener: while the disk
// is full the sender must still get the upstream's own answer.
func (r *soakRun) checkDiskAnswer(before, after int32, status int, body []byte, err error) {
	if !inDiskFault(before) && !inDiskFault(after) {
		return
	}
	if err != nil || status != fasthttp.StatusOK || !bytes.Equal(body, okBody) {
		if r.diskBad.Add(1) == 1 {
			r.diskBadFirst.Store(fmt.Sprintf("%d %.100q %v", status, body, err))
		}
		return
	}
	if before == diskFull && after == diskFull {
		r.diskAnswered.Add(1)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
