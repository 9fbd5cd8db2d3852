package storage

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSyncErrorsAreCountedEachAndLoggedAtMostEvery5s feeds syncOnTicks 12 ticks one
// second apart (a fake clock: the tick times) with a failing fsync: all 12 failures are
// counted, but only the ones at 0 s, 5 s and 10 s are logged, each with the number of
// failures since the previous line.
func TestSyncErrorsAreCountedEachAndLoggedAtMostEvery5s(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	stop, ticks, done := make(chan struct{}), make(chan time.Time), make(chan struct{})
	calls := 0
	failing := func() error { calls++; return errors.New("input/output error") }
	before := syncErrors.Get()
	go func() { syncOnTicks(stop, ticks, failing, logger); close(done) }()
	start := time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)
	for i := range 12 {
		ticks <- start.Add(time.Duration(i) * time.Second)
	}
	close(stop)
	<-done

	if calls != 12 {
		t.Errorf("fsync called %d times, want 12", calls)
	}
	if n := syncErrors.Get() - before; n != 12 {
		t.Errorf("ctwa_sidecar_store_sync_errors_total rose by %d, want 12", n)
	}
	lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
	want := []string{"failures=1", "failures=5", "failures=5"} // at 0 s, 5 s, 10 s
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, line := range lines {
		if !strings.Contains(line, `msg="cannot fsync the store"`) || !strings.Contains(line, `err="input/output error"`) ||
			!strings.Contains(line, want[i]) {
			t.Errorf("log line %d = %q, want the fsync error with %s", i+1, line, want[i])
		}
	}
}

// TestSyncSuccessesAreNeitherCountedNorLogged: a working fsync leaves no trace.
func TestSyncSuccessesAreNeitherCountedNorLogged(t *testing.T) {
	var logs bytes.Buffer
	stop, ticks, done := make(chan struct{}), make(chan time.Time), make(chan struct{})
	before := syncErrors.Get()
	go func() {
		syncOnTicks(stop, ticks, func() error { return nil }, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	for i := range 3 {
		ticks <- time.Unix(int64(i), 0)
	}
	close(stop)
	<-done
	if n := syncErrors.Get() - before; n != 0 || logs.Len() != 0 {
		t.Errorf("successful fsyncs: counter rose by %d, logged %q", n, logs.String())
	}
}

// TestSyncLoopFsyncsTheStoreUntilClose runs the real loop on a store with a 1 ms
// interval: syncfs on a real directory succeeds (nothing logged) and Close stops it.
func TestSyncLoopFsyncsTheStoreUntilClose(t *testing.T) {
	var logs bytes.Buffer
	s, err := Open(t.TempDir(), Options{SyncInterval: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.syncDir(); err != nil {
		t.Errorf("syncDir: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // lets the loop tick a few times; nothing is timed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "fsync") {
		t.Errorf("fsync failures logged: %s", logs.String())
	}
}
