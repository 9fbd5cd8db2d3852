package storage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashDirEnv = "CTWA_STORAGE_CRASH_DIR"

// TestHelperProcess is the child of TestCrashKeepsAcknowledgedWrites: it writes
// numbered keys from many goroutines and prints each key only after Apply
// returned nil, until it is killed (or gives up after 30s).
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashKeepsAcknowledgedWrites")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("crash/%02d/%07d", w, i)
				if err := s.Apply(context.Background(), set(key, "v"+key)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintln(os.Stdout, "ack", key)
				out.Unlock()
			}
		}()
	}
	time.Sleep(30 * time.Second)
	os.Exit(3)
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 3000
	var acked []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		key, ok := strings.CutPrefix(lines.Text(), "ack ")
		if !ok {
			continue
		}
		acked = append(acked, key)
		if len(acked) == killAfter {
			// SIGKILL mid-load; keep reading what the child acknowledged before dying.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	state, _ := cmd.Process.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged only %d keys before exiting (%v)", len(acked), state)
	}

	s := openTest(t, dir)
	for _, key := range acked {
		mustHave(t, s, key, "v"+key)
	}
	t.Logf("%d acknowledged keys survived SIGKILL", len(acked))
}
