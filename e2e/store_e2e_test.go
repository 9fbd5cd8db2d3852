package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
)

func TestLockedDataDirIsRefused(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	dir := t.TempDir()
	startSidecar(t, "http://"+up.addr, "-data", dir)
	err := sidecar.Run(context.Background(), []string{"-upstream", "http://" + up.addr, "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", dir}, sidecar.Env{})
	if err == nil || !strings.Contains(err.Error(), "-data") || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second sidecar on the same -data: %v, want a refusal naming -data and the lock", err)
	}
}

func TestUnusableDataDirIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := sidecar.Run(context.Background(), []string{"-upstream", "http://127.0.0.1:1", "-listen", "127.0.0.1:0",
		"-api-listen", "127.0.0.1:0", "-data", file}, sidecar.Env{})
	if err == nil || !strings.Contains(err.Error(), "-data") {
		t.Fatalf("-data pointing at a file: %v, want a refusal naming -data", err)
	}
}

// TestBackupRestoreKeepsEvents records a webhook, backs the store up with the backup
// command, restores it into a new directory and finds the event there.
func TestBackupRestoreKeepsEvents(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	dir := t.TempDir()
	sc := startSidecar(t, "http://"+up.addr, "-data", dir)
	body := cloudFixture(t, "text_ctwa_referral")
	mustDo(t, newRequest(t, "POST", sc.webhook+"/", body))
	sc.stop(t)

	backupFile := filepath.Join(t.TempDir(), "store.bak")
	e := sidecar.Env{}
	if err := sidecar.Run(context.Background(), []string{"backup", "-data", dir, "-out", backupFile}, e); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := sidecar.Run(context.Background(), []string{"backup", "-data", dir, "-out", backupFile}, e); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if err := sidecar.Run(context.Background(), []string{"restore", "-data", restored, "-in", backupFile}, e); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := sidecar.Run(context.Background(), []string{"restore", "-data", restored, "-in", backupFile}, e); err == nil {
		t.Fatal("restore into a non-empty directory was accepted")
	}

	sc2 := startSidecar(t, "http://"+up.addr, "-data", restored)
	_, got := mustDo(t, newRequest(t, "GET", sc2.api+"/v1/clients/default/apps/106540352242922/events?date_from=2026-01-01&date_to=2026-12-31", nil))
	if !strings.Contains(string(got), `"type":"conversation"`) || !strings.Contains(string(got), `"total_count":1`) {
		t.Fatalf("restored store lacks the recorded conversation: %s", got)
	}
}

// TestOnlineBackupThroughTheAPI backs up a running sidecar: the locked directory is
// refused with a hint, the -api route streams a backup that restores whole.
func TestOnlineBackupThroughTheAPI(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	dir := t.TempDir()
	sc := startSidecar(t, "http://"+up.addr, "-data", dir, "-api-token", "tok")
	body := cloudFixture(t, "text_ctwa_referral")
	mustDo(t, newRequest(t, "POST", sc.webhook+"/", body))

	e := sidecar.Env{}
	out := filepath.Join(t.TempDir(), "online.bak")
	err := sidecar.Run(context.Background(), []string{"backup", "-data", dir, "-out", out}, e)
	if err == nil || !strings.Contains(err.Error(), "-api") {
		t.Fatalf("offline backup of a running store: %v, want a hint to use -api", err)
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Fatalf("a failed backup left %s behind", out)
	}
	if err := sidecar.Run(context.Background(), []string{"backup", "-api", sc.api, "-api-token", "wrong", "-out", out}, e); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("backup with a wrong token: %v", err)
	}
	if err := sidecar.Run(context.Background(), []string{"backup", "-api", sc.api, "-api-token", "tok", "-out", out}, e); err != nil {
		t.Fatalf("online backup: %v", err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if err := sidecar.Run(context.Background(), []string{"restore", "-data", restored, "-in", out}, e); err != nil {
		t.Fatalf("restore: %v", err)
	}
	sc2 := startSidecar(t, "http://"+up.addr, "-data", restored)
	_, got := mustDo(t, newRequest(t, "GET", sc2.api+"/v1/clients/default/apps/106540352242922/events?date_from=2026-01-01&date_to=2026-12-31", nil))
	if !strings.Contains(string(got), `"total_count":1`) {
		t.Fatalf("restored online backup lacks the conversation: %s", got)
	}
}
