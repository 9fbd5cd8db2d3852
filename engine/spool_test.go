package engine

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// flakyLog stands for a cluster's log, kept apart from the member's store as the stream
// is: while down, every append fails as unreachable.
type flakyLog struct {
	*storage.FileLog
	down atomic.Bool
}

func (l *flakyLog) Append(ctx context.Context, fn func(kv.LogTx) error) error {
	if l.down.Load() {
		return kv.ErrUnavailable
	}
	return l.FileLog.Append(ctx, fn)
}

// While the log cannot be reached, webhooks are spooled (a retry among them once),
// commands are refused, and once it is back the spool is published in order, each item
// deduplicated again: a message another member recorded meanwhile is not counted twice.
func TestSpoolKeepsWebhooksUntilTheLogReturns(t *testing.T) {
	open := func() *storage.Store {
		s, err := storage.Open(t.TempDir(), storage.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	store, elsewhere := open(), open()
	local, err := storage.OpenLog(elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	spool, err := storage.OpenSpool(store)
	if err != nil {
		t.Fatal(err)
	}
	log := &flakyLog{FileLog: local}
	cfg := testConfig()
	cfg.Spool = spool
	r, err := NewRecorder(log, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ctx := context.Background()
	ad := &webhook.Referral{SourceType: "ad", SourceID: "ad-1", CtwaClid: "clid"}
	first := func(id, from string, at int64) []byte {
		return cloudWebhook(cloudMsg{App: "app", ID: id, From: from, Time: at, Text: "hi", Referral: ad})
	}
	now := time.Now().Unix()

	if err := r.Record(ctx, first("wamid.A", "4911", now)); err != nil {
		t.Fatal(err)
	}
	log.down.Store(true)
	for _, body := range [][]byte{first("wamid.B", "4922", now+1), first("wamid.B", "4922", now+1), first("wamid.C", "4933", now+2)} {
		if err := r.Record(ctx, body); err != nil {
			t.Fatalf("a webhook while the log is down: %v, want it spooled", err)
		}
	}
	if !r.Spooling() || spoolSize.Load() != 2 {
		t.Fatalf("spooling=%v with %d entries, want spooling with 2 (B once, C)", r.Spooling(), spoolSize.Load())
	}
	if _, err := r.logCommand(ctx, cmdRefresh, []byte("app")); err == nil {
		t.Fatal("a command was logged while webhooks wait in the spool")
	}
	// Another member records C while this one spools it.
	log.down.Store(false)
	if !r.Spooling() {
		t.Fatal("spooling stopped before the spool was published")
	}
	err = local.Append(ctx, func(tx kv.LogTx) error {
		_, _, err := tx.Claim(kv.DedupeMessageKey(nil, "wamid.C"), binary.BigEndian.AppendUint64(nil, uint64(now+2)), DedupeTTL)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.Spooling() {
		if time.Now().After(deadline) {
			t.Fatalf("still spooling %d entries after the log returned", spoolSize.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var leads []string
	for _, s := range (&testEnv{t: t, rec: r}).sessions("app") {
		leads = append(leads, s.Lead)
	}
	if len(leads) != 2 || leads[0] == leads[1] || spoolSize.Load() != 0 {
		t.Fatalf("sessions of %v, %d left in the spool; want A's and B's, none left (C is the other member's)", leads, spoolSize.Load())
	}
	if n := 0; spool.Entries(0, func(uint64, []byte) (bool, error) { n++; return true, nil }) != nil || n != 0 {
		t.Fatalf("the spool still holds %d entries", n)
	}
}
