package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/proxy"
	"github.com/ctwa-sidecar/ctwa-sidecar/sidecar"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// cutBackup is a real store's backup whose writer breaks after limit bytes, as a client
// connection or a disk does mid-stream.
type cutBackup struct {
	store *storage.Store
	limit int
}

func (c cutBackup) Backup(w io.Writer) error {
	return c.store.Backup(&cutWriter{w: w, left: c.limit})
}

type cutWriter struct {
	w    io.Writer
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		n, _ := c.w.Write(p[:c.left])
		c.left = 0
		return n, errors.New("injected write error")
	}
	c.left -= len(p)
	return c.w.Write(p)
}

// recordedStore opens a store holding one recorded webhook.
func recordedStore(t *testing.T, quiet *slog.Logger) *storage.Store {
	t.Helper()
	store, err := storage.Open(t.TempDir(), storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec, err := engine.NewRecorder(testLog(t, store), store, engine.Config{DefaultAppID: "onprem", SessionWindow: 24 * time.Hour,
		AttributionWindow: 672 * time.Hour, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	body := cloudFixture(t, "text_ctwa_referral")
	if err := rec.RecordSigned(context.Background(), body, &engine.Signature{}); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestOnlineBackupThatFailsLeavesNoFile runs `backup -api` against a sidecar API whose
// backup fails after it answered 200: a store closed under it (no byte sent) and a writer
// that breaks half-way through a real backup. The command must fail and leave nothing in
// the -out directory; the server counts each failure. The same store backed up whole
// leaves exactly the -out file, and it restores.
func TestOnlineBackupThatFailsLeavesNoFile(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := recordedStore(t, quiet)
	var whole bytes.Buffer
	if err := store.Backup(&whole); err != nil {
		t.Fatal(err)
	}
	closed := recordedStore(t, quiet)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	e := sidecar.Env{}
	backupVia := func(b proxy.Backuper) (string, error) {
		api := proxy.NewAPI("", store.Ready)
		proxy.RegisterBackupRoute(api, b)
		base := serveLoopback(t, proxy.NewServer("api", api.ServeHTTP, proxy.ServerLimits{}, quiet))
		dir := t.TempDir()
		err := sidecar.Run(context.Background(), []string{"backup", "-api", base, "-out", filepath.Join(dir, "x.bak")}, e)
		return dir, err
	}

	for name, b := range map[string]proxy.Backuper{
		"store closed":       closed,
		"writer breaks half": cutBackup{store: store, limit: whole.Len() / 2},
	} {
		t.Run(name, func(t *testing.T) {
			failures := processSample("ctwa_sidecar_backup_failures_total")
			dir, err := backupVia(b)
			if err == nil || !strings.Contains(err.Error(), "end marker") {
				t.Fatalf("backup -api = %v, want a failure naming the missing end marker", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("a failed backup left %v behind", left)
			}
			if n := processSample("ctwa_sidecar_backup_failures_total"); n != failures+1 {
				t.Errorf("ctwa_sidecar_backup_failures_total %v → %v, want one more", failures, n)
			}
		})
	}

	dir, err := backupVia(store)
	if err != nil {
		t.Fatalf("whole backup: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 || left[0].Name() != "x.bak" {
		t.Fatalf("whole backup left %v, want x.bak only", left)
	}
	if err := sidecar.Run(context.Background(), []string{"restore", "-data", filepath.Join(t.TempDir(), "r"), "-in", filepath.Join(dir, "x.bak")}, e); err != nil {
		t.Fatalf("restoring the online backup (end marker stripped): %v", err)
	}
}
