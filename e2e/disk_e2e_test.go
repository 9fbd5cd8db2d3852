package e2e

// Disk faults through the real binary, on a small tmpfs each test mounts (root only;
// CI runs as root): the disk filled by another file under webhook traffic, inodes
// exhausted, and a shutdown and start-up on a full disk. Badger writes through mmaps,
// so without the store's reserve and allocation the first of these is a SIGBUS that
// ends the process; a real binary makes that observable.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/diskfault"
)

// diskLead is lead i of the disk tests; diskWebhook carries n first messages of leads
// first… from clicks on the kill test's ads, so conversations() counts them.
func diskLead(i int) string { return fmt.Sprintf("4917800%05d", i) }

func diskWebhook(first, n int) []byte {
	msgs := make([]waItem, n)
	for k := range msgs {
		i := first + k
		at := day(2026, 3, 16).Add(8*time.Hour + time.Duration(i)*time.Second)
		msgs[k] = waItem{"from": diskLead(i), "id": fmt.Sprintf("wamid.disk.%06d", i), "timestamp": unixString(at),
			"type": "text", "text": map[string]string{"body": "Hi, is the offer still on?"}}.fromAd(killAd(i))
	}
	return messagesWebhook(msgs...)
}

// forwardLeads forwards n webhooks of per leads' first messages each, for the leads from
// lead on, and returns the lead after them.
func forwardLeads(t *testing.T, sc *binSidecar, lead, n, per int) int {
	t.Helper()
	for range n {
		forwarded(t, sc, diskWebhook(lead, per))
		lead += per
	}
	return lead
}

// readiness returns /readyz's status and body.
func readiness(t *testing.T, sc *binSidecar) (int, string) {
	t.Helper()
	status, _, body, err := do("GET", sc.api+"/readyz", "", nil)
	if err != nil {
		t.Fatalf("GET /readyz: %v\n%s", err, logTail(sc))
	}
	return status, string(body)
}

// waitReadiness polls /readyz until its status is want.
func waitReadiness(t *testing.T, sc *binSidecar, want int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body := readiness(t, sc)
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d %q, want %d\n%s", status, body, want, logTail(sc))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkRecorded fails unless each lead of the ranges has exactly one conversation, and
// no lead has two.
func checkRecorded(t *testing.T, api string, ranges ...[2]int) {
	t.Helper()
	count, _ := conversations(t, api)
	missing := 0
	for _, r := range ranges {
		for i := r[0]; i < r[1]; i++ {
			if count[diskLead(i)] != 1 {
				missing++
			}
		}
	}
	doubled := 0
	for _, n := range count {
		if n > 1 {
			doubled++
		}
	}
	if missing > 0 || doubled > 0 {
		t.Fatalf("%d leads of %v not recorded exactly once, %d recorded twice", missing, ranges, doubled)
	}
}

func sigterm(t *testing.T, sc *binSidecar) {
	t.Helper()
	if err := sc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := sc.waitExit(t, 40*time.Second); err != nil {
		t.Fatalf("after SIGTERM the sidecar exited with %v; its log ends:\n%s", err, logTail(sc))
	}
}

// TestDiskFullForwardsAndResumes fills the data directory's file system with another
// file while webhooks flow: the sidecar lives, every sender gets the upstream's answer,
// /readyz says the disk is full, each webhook is counted as refused; once the file is
// removed recording resumes by itself, and after a restart every webhook recorded
// before the fault and after it is there.
func TestDiskFullForwardsAndResumes(t *testing.T) {
	bin := sidecarBinary(t)
	mnt := diskfault.Tmpfs(t, "size=256m")
	data := filepath.Join(mnt, "data")
	upstream := "http://" + acceptingUpstream(t).addr
	sc := startBinary(t, bin, upstream, data, "-min-free-disk", "32MiB")

	lead := 0
	lead = forwardLeads(t, sc, lead, 20, 10)
	before := lead

	// Traffic from four senders while another file takes all the space.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := forward(sc, diskWebhook(20_000+w*5000+i*5%5000, 5)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	faultsInjected.Add(1)
	filler := diskfault.Fill(t, mnt)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("while the disk filled up: %v", err)
	default:
	}

	const refusedSeries = `ctwa_sidecar_store_refused_total{reason="disk_full"}`
	const storeErrors = `ctwa_sidecar_webhooks_total{format="cloud",result="store_error"}`
	refused0, storeErrors0 := scrape(t, sc.api, refusedSeries), scrape(t, sc.api, storeErrors)
	const whileFull = 50
	lead = forwardLeads(t, sc, lead, whileFull, 10)
	if got := scrape(t, sc.api, refusedSeries) - refused0; got < whileFull {
		t.Errorf("%s rose by %.0f for %d webhooks on a full disk", refusedSeries, got, whileFull)
	}
	if got := scrape(t, sc.api, storeErrors) - storeErrors0; got < whileFull {
		t.Errorf("%s rose by %.0f for %d webhooks on a full disk", storeErrors, got, whileFull)
	}
	if status, body := readiness(t, sc); status != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("/readyz on a full disk: %d %q, want 503 saying the disk is full", status, body)
	}
	if !strings.Contains(sc.log.String(), "store refuses writes") {
		t.Errorf("no log line says the store refuses writes:\n%s", logTail(sc))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReadiness(t, sc, 200)
	after := lead
	lead = forwardLeads(t, sc, lead, 20, 10)
	checkRecorded(t, sc.api, [2]int{0, before}, [2]int{after, lead})

	sigterm(t, sc)
	sc2 := startBinary(t, bin, upstream, data, "-min-free-disk", "32MiB")
	checkRecorded(t, sc2.api, [2]int{0, before}, [2]int{after, lead})
	t.Logf("disk filled under traffic: %d webhooks forwarded while full, all refused and counted; recording resumed; %d leads there after a restart",
		whileFull, before+lead-after)
}

// TestInodesExhaustedForwardsAndResumes uses up every inode of the data directory's
// file system and sends more than a memtable of messages: the sidecar lives and
// forwards, /readyz names the inodes, every webhook is counted as refused, API reads
// answer, and freeing the inodes resumes recording; a restart keeps everything
// recorded. (Badger used to be left without a memtable here for good: every write
// failed uncounted and the next read crashed.)
func TestInodesExhaustedForwardsAndResumes(t *testing.T) {
	bin := sidecarBinary(t)
	mnt := diskfault.Tmpfs(t, "size=256m,nr_inodes=2000")
	data := filepath.Join(mnt, "data")
	upstream := "http://" + acceptingUpstream(t).addr
	sc := startBinary(t, bin, upstream, data, "-min-free-disk", "32MiB")

	lead := 0
	lead = forwardLeads(t, sc, lead, 20, 10)
	before := lead

	faultsInjected.Add(1)
	hog := diskfault.UseAllInodes(t, mnt)
	series := []string{`ctwa_sidecar_store_refused_total{reason="no_inodes"}`,
		`ctwa_sidecar_store_refused_total{reason="unavailable"}`, `ctwa_sidecar_store_commit_errors_total`}
	failures := func() (n float64) {
		for _, s := range series {
			n += scrape(t, sc.api, s)
		}
		return n
	}
	failed0 := failures()
	// 200 webhooks of 50 messages: about twice the keys a 4 MiB memtable holds.
	const whileFull = 200
	lead = forwardLeads(t, sc, lead, whileFull, 50)
	refused := failures() - failed0
	if status, body := readiness(t, sc); status != 503 || !strings.Contains(body, "inodes") {
		t.Errorf("/readyz without inodes: %d %q, want 503 naming the inodes", status, body)
	}
	status, _, body, err := do("GET", sc.api+"/v1/clients/default/apps/"+killApp+
		"/events?event_type=conversation&date_from=2026-03-16&date_to=2026-03-16&limit=10", "", nil)
	if err != nil || !json.Valid(body) {
		t.Fatalf("events read without inodes: %d %q %v\n%s", status, body, err, logTail(sc))
	}

	if err := os.RemoveAll(hog); err != nil {
		t.Fatal(err)
	}
	waitReadiness(t, sc, 200)
	after := lead
	lead = forwardLeads(t, sc, lead, 20, 10)
	checkRecorded(t, sc.api, [2]int{0, before}, [2]int{after, lead})
	sigterm(t, sc)
	sc2 := startBinary(t, bin, upstream, data, "-min-free-disk", "32MiB")
	checkRecorded(t, sc2.api, [2]int{0, before}, [2]int{after, lead})
	// The log's file exists, so appends taken before the next disk check (every 250 ms)
	// are written and recorded; every other webhook is refused and counted.
	recorded := recordedLeads(t, sc2.api, before, after) / 50
	if refused+float64(recorded) < whileFull {
		t.Errorf("refusals and commit errors rose by %.0f and %d webhooks were recorded, of %d sent without inodes", refused, recorded, whileFull)
	}
}

// recordedLeads counts the disk test's leads from..to-1 that have a conversation.
func recordedLeads(t *testing.T, api string, from, to int) int {
	count, _ := conversations(t, api)
	n := 0
	for i := from; i < to; i++ {
		n += count[diskLead(i)]
	}
	return n
}

// TestFullDiskAtShutdownAndStartUp stops the sidecar on a full disk and starts it
// again there: SIGTERM exits 0 (Badger is left for the next start to replay, since
// closing it would write its memtable into the full disk); the start-up says so in one
// line and serves forward-only — /readyz 503 with the reason, the API 503 — and once
// space returns it opens the store by itself: everything recorded before is there and
// new webhooks are recorded.
func TestFullDiskAtShutdownAndStartUp(t *testing.T) {
	bin := sidecarBinary(t)
	mnt := diskfault.Tmpfs(t, "size=256m")
	data := filepath.Join(mnt, "data")
	upstream := "http://" + acceptingUpstream(t).addr
	sc := startBinary(t, bin, upstream, data, "-min-free-disk", "32MiB")
	lead := 0
	lead = forwardLeads(t, sc, lead, 20, 10)
	before := lead

	faultsInjected.Add(1)
	filler := diskfault.Fill(t, mnt)
	sigterm(t, sc)

	sc2 := startBinary(t, bin, upstream, data, "-min-free-disk", "32MiB")
	if n := strings.Count(sc2.log.String(), "store not opened, the disk is full"); n != 1 {
		t.Errorf("start-up on a full disk logged %d lines saying so, want 1:\n%s", n, logTail(sc2))
	}
	const refusedSeries = `ctwa_sidecar_store_refused_total{reason="unavailable"}`
	refused0 := scrape(t, sc2.api, refusedSeries)
	lead = forwardLeads(t, sc2, lead, 10, 10)
	if got := scrape(t, sc2.api, refusedSeries) - refused0; got < 10 {
		t.Errorf("%s rose by %.0f for 10 webhooks before the store opened", refusedSeries, got)
	}
	if status, body := readiness(t, sc2); status != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("/readyz on a full disk at start-up: %d %q, want 503 saying the disk is full", status, body)
	}
	status, _, body, err := do("GET", sc2.api+"/v1/clients/default/apps/"+killApp+"/events", "", nil)
	if err != nil || status != 503 || !bytes.Contains(body, []byte("store_unavailable")) {
		t.Errorf("the API before the store opened: %d %q %v, want 503 store_unavailable", status, body, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReadiness(t, sc2, 200)
	after := lead
	lead = forwardLeads(t, sc2, lead, 20, 10)
	checkRecorded(t, sc2.api, [2]int{0, before}, [2]int{after, lead})
}

// TestStartUpWithoutDataDirOnFullDisk starts the sidecar for a data directory that does
// not exist yet, on a file system without an inode to create it: one line, forward-only
// service, and once inodes return the store creates the directory, opens and records.
func TestStartUpWithoutDataDirOnFullDisk(t *testing.T) {
	bin := sidecarBinary(t)
	mnt := diskfault.Tmpfs(t, "size=256m,nr_inodes=500")
	data := filepath.Join(mnt, "new", "data")
	upstream := "http://" + acceptingUpstream(t).addr
	faultsInjected.Add(1)
	hog := diskfault.UseAllInodes(t, mnt)

	sc := startBinary(t, bin, upstream, data, "-min-free-disk", "8MiB")
	if n := strings.Count(sc.log.String(), "store not opened, the disk is full"); n != 1 {
		t.Errorf("start-up without room for the data directory logged %d lines saying so, want 1:\n%s", n, logTail(sc))
	}
	lead := forwardLeads(t, sc, 0, 5, 10)
	if status, body := readiness(t, sc); status != 503 || !strings.Contains(body, "inodes") {
		t.Errorf("/readyz without room for the data directory: %d %q, want 503 naming the inodes", status, body)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the data directory exists before inodes returned: %v", err)
	}

	if err := os.RemoveAll(hog); err != nil {
		t.Fatal(err)
	}
	waitReadiness(t, sc, 200)
	after := lead
	lead = forwardLeads(t, sc, lead, 10, 10)
	checkRecorded(t, sc.api, [2]int{after, lead})
	sigterm(t, sc)
	sc2 := startBinary(t, bin, upstream, data, "-min-free-disk", "8MiB")
	checkRecorded(t, sc2.api, [2]int{after, lead})
}
