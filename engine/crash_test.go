package engine

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// crashDirEnv tells the test binary, re-executed as a child, to run TestCrashHelper on
// the store in that directory.
const crashDirEnv = "CTWA_ENGINE_CRASH_DIR"

// crashHaltEnv, set to N, makes the child stop its materializer after N acknowledgements:
// the kill then comes with acknowledged webhooks in the log and not in the views.
const crashHaltEnv = "CTWA_ENGINE_CRASH_HALT"

const crashWorkers = 8

// crashLead is lead i of the crash test: a first message, then a follow-up, in two
// webhooks. Even leads come from an ad; odd ones are organic, whose first message, if
// it were recorded again, would count as an engagement.
func crashLead(i int) (phone string, ids [2]string, bodies [2][]byte) {
	phone = fmt.Sprintf("4917300%05d", i)
	ids = [2]string{fmt.Sprintf("wamid.crash.%d.1", i), fmt.Sprintf("wamid.crash.%d.2", i)}
	msg := leadMsgs(phone)
	first := msg(ids[0], t0+int64(i), "hello")
	if i%2 == 0 {
		first = withReferral(first, adReferral(fmt.Sprintf("ad-%d", i%7), "clid-"+phone))
	}
	bodies[0] = cloudWebhook(first)
	bodies[1] = cloudWebhook(msg(ids[1], t0+int64(i)+1, "what is the price?"))
	return phone, ids, bodies
}

// recordLeads records the webhooks of leads [0, n) from crashWorkers goroutines, each lead's
// two in order, and calls acked with each message id once its Record returned nil.
func recordLeads(r *Recorder, n int, acked func(id string)) error {
	var wg sync.WaitGroup
	errs := make(chan error, crashWorkers)
	for w := range crashWorkers {
		wg.Go(func() {
			for i := w; i < n; i += crashWorkers {
				_, ids, bodies := crashLead(i)
				for k, body := range bodies {
					if err := r.Record(context.Background(), body); err != nil {
						errs <- fmt.Errorf("lead %d: %w", i, err)
						return
					}
					acked(ids[k])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestCrashHelper is the child of TestCrashKeepsAcknowledgedEvents: it records webhooks
// from several goroutines and prints each message id only after Record returned nil,
// until it is killed (or gives up after a minute).
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashKeepsAcknowledgedEvents")
	}
	go func() {
		time.Sleep(time.Minute)
		fmt.Fprintln(os.Stderr, "crash helper was not killed within a minute")
		os.Exit(3)
	}()
	halt, _ := strconv.Atoi(os.Getenv(crashHaltEnv))
	e := &testEnv{t: t, dir: dir}
	e.open()
	var out sync.Mutex
	n := 0
	err := recordLeads(e.rec, 1<<20, func(id string) {
		out.Lock()
		if n++; n == halt {
			e.rec.mat.close()
		}
		fmt.Fprintln(os.Stdout, "ack", id)
		out.Unlock()
	})
	fmt.Fprintln(os.Stderr, "crash helper:", err)
	os.Exit(2)
}

// TestCrashKeepsAcknowledgedEvents kills a recording process with SIGKILL mid-load and
// checks that every webhook it acknowledged left its event, and that the sender's retry
// of every webhook, acknowledged or not, counts each lead exactly once.
//
// In the second run the child stops deriving views halfway, so the kill certainly
// falls between log appends and the view checkpoint.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	t.Run("views racing", func(t *testing.T) { crashAndReplay(t, false) })
	t.Run("views behind", func(t *testing.T) { crashAndReplay(t, true) })
}

func crashAndReplay(t *testing.T, behind bool) {
	leads, killAfter := 1000, 300
	if testing.Short() {
		leads, killAfter = 200, 60
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	if behind {
		cmd.Env = append(cmd.Env, crashHaltEnv+"="+strconv.Itoa(killAfter/2))
	}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Bound the test: a child that hangs is killed, and then fails the count below.
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()

	acked := map[string]bool{}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		id, ok := strings.CutPrefix(lines.Text(), "ack ")
		if !ok {
			continue
		}
		acked[id] = true
		if len(acked) == killAfter {
			// SIGKILL mid-load; keep reading what the child acknowledged before dying.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	state, _ := cmd.Process.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged only %d webhooks before exiting (%v)", len(acked), state)
	}
	if len(acked) >= 2*leads {
		t.Fatalf("child acknowledged %d webhooks, more than the %d the replay sends: raise leads", len(acked), 2*leads)
	}

	if n := pendingEntries(t, dir); behind && n == 0 {
		t.Fatal("no log entry waited for the views at the kill: the test did not test that")
	} else {
		t.Logf("%d log entries waited for the views at the kill", n)
	}
	e := &testEnv{t: t, dir: dir}
	e.open()
	t.Cleanup(e.close)
	byMessage := map[string]string{}
	for _, ev := range e.events(scApp) {
		byMessage[ev.MessageID] = ev.Type
	}
	for id := range acked {
		want := TypeConversation
		if strings.HasSuffix(id, ".2") {
			want = TypeEngagement
		}
		if got := byMessage[id]; got != want {
			t.Errorf("acknowledged webhook %s left event %q, want %q", id, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The sender retries everything, acknowledged or not.
	if err := recordLeads(e.rec, leads, func(string) {}); err != nil {
		t.Fatal(err)
	}
	perLead := map[string][]string{} // "type message-id" of each event of a lead
	for _, ev := range e.events(scApp) {
		perLead[ev.Lead] = append(perLead[ev.Lead], ev.Type+" "+ev.MessageID)
	}
	for i := range leads {
		phone, ids, _ := crashLead(i)
		got := slices.Sorted(slices.Values(perLead[phone]))
		if want := []string{TypeConversation + " " + ids[0], TypeEngagement + " " + ids[1]}; !slices.Equal(got, want) {
			t.Errorf("lead %d has events %q, want %q", i, got, want)
		}
	}
	if len(perLead) != leads {
		t.Errorf("%d leads have events, want %d", len(perLead), leads)
	}
	t.Logf("%d acknowledged webhooks survived SIGKILL; %d leads each counted once after the retry", len(acked), leads)
}

// pendingEntries counts the log entries of the store in dir that the views do not hold.
func pendingEntries(t *testing.T, dir string) int {
	t.Helper()
	s, err := storage.Open(dir, storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := storage.OpenLog(s)
	if err != nil {
		t.Fatal(err)
	}
	return unapplied(t, s, l)
}
