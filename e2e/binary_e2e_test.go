package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryServesAndExitsZeroOnSIGTERM builds the real binary, runs it as a user would
// (the default command, no "serve"), forwards one webhook through it and stops it with
// SIGTERM.
func TestBinaryServesAndExitsZeroOnSIGTERM(t *testing.T) {
	bin := sidecarBinary(t)
	up := startUpstream(t, echoUpstream)
	sc := runBinary(t, bin, "-upstream", "http://"+up.addr, "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", t.TempDir(), "-log-format", "json")

	resp, err := http.Post(sc.webhook+"/hook?x=1", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || len(up.requests()) != 1 || up.requests()[0].uri != "/hook?x=1" {
		t.Fatalf("forward through the binary: status %d, upstream saw %+v", resp.StatusCode, up.requests())
	}

	if err := sc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := sc.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
}
