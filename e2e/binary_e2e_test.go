package e2e

import (
	"bufio"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryServesAndExitsZeroOnSIGTERM builds the real binary, runs it as a user would,
// forwards one webhook through it and stops it with SIGTERM.
func TestBinaryServesAndExitsZeroOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ctwa-sidecar")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	up := startUpstream(t, echoUpstream)
	cmd := exec.Command(bin, "-upstream", "http://"+up.addr, "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", t.TempDir(), "-log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	webhook := waitForListenAddr(t, bufio.NewScanner(stderr))
	resp, err := http.Post("http://"+webhook+"/hook?x=1", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || len(up.requests()) != 1 || up.requests()[0].uri != "/hook?x=1" {
		t.Fatalf("forward through the binary: status %d, upstream saw %+v", resp.StatusCode, up.requests())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("binary did not stop within 30s of SIGTERM")
	}
}

var listenAttr = regexp.MustCompile(`"listen":"([^"]+)"`)

// waitForListenAddr reads the JSON log until the start-up line names the webhook address.
func waitForListenAddr(t *testing.T, sc *bufio.Scanner) string {
	t.Helper()
	for sc.Scan() {
		if m := listenAttr.FindStringSubmatch(sc.Text()); m != nil {
			go func() { // keep draining so the child never blocks on a full pipe
				for sc.Scan() {
				}
			}()
			return m[1]
		}
	}
	t.Fatalf("binary exited before logging its listen address: %v", sc.Err())
	return ""
}
