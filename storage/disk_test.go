package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/diskfault"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

func sample(series string) float64 {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	for line := range bytes.Lines(b.Bytes()) {
		if rest, ok := bytes.CutPrefix(line, []byte(series+" ")); ok {
			var v float64
			fmt.Sscan(string(rest), &v)
			return v
		}
	}
	return 0
}

// diskTestMemTable is the memtable size the file systems of these tests are sized for:
// a flush, a new memtable file and Close's room follow from it.
const diskTestMemTable = 4 << 20

func openOpts(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// value is a record big enough to go to the value log.
func value(i int) string { return fmt.Sprintf("%0200d", i) }

func putRange(from, to int) func(kv.Batch) error {
	return func(b kv.Batch) error {
		for i := from; i < to; i++ {
			b.Set(fmt.Appendf(nil, "d/%06d", i), []byte(value(i)))
		}
		return nil
	}
}

// TestStorePausesOnFullDiskAndResumes fills the store's file system under it: writes
// are refused with ErrDiskFull (counted, in Ready), reads go on, and writing resumes
// by itself once the space is back; everything committed before is still there after
// a reopen. Without the reserve and the allocation ahead, Badger's next write into its
// value log would be a SIGBUS that ends the test binary.
func TestStorePausesOnFullDiskAndResumes(t *testing.T) {
	mnt := diskfault.Tmpfs(t, "size=200m")
	dir := filepath.Join(mnt, "data")
	ctx := context.Background()
	s := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeDisk: 16 << 20})

	for i := 0; i < 1000; i += 100 {
		if err := s.Apply(ctx, putRange(i, i+100)); err != nil {
			t.Fatal(err)
		}
	}
	filler := diskfault.Fill(t, mnt)
	const series = `ctwa_sidecar_store_refused_total{reason="disk_full"}`
	before := sample(series)
	refused := 0
	for i := 1000; i < 3000; i += 100 {
		err := s.Apply(ctx, putRange(i, i+100))
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("Apply on a full disk = %v, want ErrDiskFull", err)
		}
		refused++
	}
	if got := sample(series) - before; got != float64(refused) {
		t.Errorf("%s rose by %.0f, want %d", series, got, refused)
	}
	if err := s.Ready(); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Ready on a full disk = %v, want ErrDiskFull naming it", err)
	}
	mustHave(t, s, "d/000999", value(999))

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Apply(ctx, putRange(1000, 1100)) == nil })
	if err := s.Ready(); err != nil {
		t.Errorf("Ready once space is back = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeDisk: 16 << 20})
	for _, i := range []int{0, 500, 999, 1000, 1099} {
		mustHave(t, s2, fmt.Sprintf("d/%06d", i), value(i))
	}
	mustMiss(t, s2, "d/001100")
}

// TestAllocatedFilesTakeWritesOnFullDisk turns the reserve off and fills the disk:
// commits still go into the value-log and memtable files the store allocated ahead, so
// they succeed instead of faulting (a SIGBUS would end the test binary).
func TestAllocatedFilesTakeWritesOnFullDisk(t *testing.T) {
	mnt := diskfault.Tmpfs(t, "size=200m")
	s := openOpts(t, filepath.Join(mnt, "data"), Options{MinFreeDisk: -1})
	filler := diskfault.Fill(t, mnt)
	defer os.Remove(filler) // before Close, which needs room to flush the memtable
	// ≈ 1 MiB of values and far less than a memtable of keys: no new file is needed.
	for i := 0; i < 5000; i += 500 {
		if err := s.Apply(context.Background(), putRange(i, i+500)); err != nil {
			t.Fatalf("Apply into allocated files on a full disk = %v", err)
		}
	}
	mustHave(t, s, "d/004999", value(4999))
}

// TestStoreSurvivesExhaustedInodes uses every inode of the file system and then writes
// more than a memtable holds, with the inode reserve off: Badger's next memtable file
// was created ahead, so switching to it needs no inode; the one after cannot be
// created, so writes are refused (counted, in Ready) instead of Badger being left
// without a memtable — which panicked every read and ended the process on the next
// write. Freeing inodes resumes writing; everything committed is there after a reopen.
func TestStoreSurvivesExhaustedInodes(t *testing.T) {
	mnt := diskfault.Tmpfs(t, "size=200m,nr_inodes=200")
	dir := filepath.Join(mnt, "data")
	ctx := context.Background()
	s := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeInodes: -1, MinFreeDisk: 16 << 20})
	hog := diskfault.UseAllInodes(t, mnt)

	// Small values stay in the memtable: 5 000 of them per request, until the
	// memtable is full and Badger switches to the next file.
	const series = `ctwa_sidecar_store_refused_total{reason="no_inodes"}`
	before := sample(series)
	small := func(from, to int) func(kv.Batch) error {
		return func(b kv.Batch) error {
			for i := from; i < to; i++ {
				b.Set(fmt.Appendf(nil, "s/%07d", i), []byte("v"))
			}
			return nil
		}
	}
	committed, refused := 0, 0
	for i := 0; i < 200_000 && refused < 5; i += 5000 {
		err := s.Apply(ctx, small(i, i+5000))
		switch {
		case err == nil:
			committed = i + 5000
		case errors.Is(err, ErrDiskFull):
			refused++
		default:
			t.Fatalf("Apply with no inode left = %v, want nil or ErrDiskFull", err)
		}
	}
	if refused == 0 {
		t.Fatalf("%d writes committed with no inode left and none refused", committed)
	}
	if got := sample(series) - before; got != float64(refused) {
		t.Errorf("%s rose by %.0f, want %d", series, got, refused)
	}
	if err := s.Ready(); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "inodes") {
		t.Errorf("Ready with no inode left = %v, want ErrDiskFull naming inodes", err)
	}
	mustHave(t, s, fmt.Sprintf("s/%07d", committed-1), "v") // reads go on

	if err := os.RemoveAll(hog); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Apply(ctx, small(committed, committed+10)) == nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeInodes: -1, MinFreeDisk: 16 << 20})
	for _, i := range []int{0, committed - 1, committed + 9} {
		mustHave(t, s2, fmt.Sprintf("s/%07d", i), "v")
	}
}

// TestStoreReopensAfterFailedCommit makes Badger fail a commit for real: with no inode
// left (reserve off) it cannot create its next value-log file. The store takes Badger
// out of use — reads answer kv.ErrClosed, writes ErrUnavailable, each counted, Ready says
// why — while Badger closes (its memtable flush waits for an inode), then opens it
// again by itself once inodes are free; nothing committed is lost.
func TestStoreReopensAfterFailedCommit(t *testing.T) {
	mnt := diskfault.Tmpfs(t, "size=400m,nr_inodes=200")
	dir := filepath.Join(mnt, "data")
	ctx := context.Background()
	s := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeInodes: -1, MinFreeDisk: 16 << 20})
	if err := s.Apply(ctx, putRange(0, 10)); err != nil {
		t.Fatal(err)
	}
	hog := diskfault.UseAllInodes(t, mnt)

	// 400 KiB values fill the 64 MiB value-log file in ~170 commits; the commit that
	// needs the next file fails.
	big := bytes.Repeat([]byte{'b'}, 400<<10)
	commitErrorsBefore := sample("ctwa_sidecar_store_commit_errors_total")
	var failed error
	n := 0
	for ; n < 400 && failed == nil; n++ {
		failed = s.Apply(ctx, func(b kv.Batch) error {
			b.Set(fmt.Appendf(nil, "b/%04d", n), big)
			return nil
		})
	}
	if failed == nil || errors.Is(failed, ErrDiskFull) || errors.Is(failed, ErrUnavailable) {
		t.Fatalf("after %d big commits with no inode left: %v, want a failed commit", n, failed)
	}
	if got := sample("ctwa_sidecar_store_commit_errors_total") - commitErrorsBefore; got != 1 {
		t.Errorf("commit errors rose by %.0f, want 1", got)
	}
	const series = `ctwa_sidecar_store_refused_total{reason="unavailable"}`
	before := sample(series)
	for range 3 {
		if err := s.Apply(ctx, putRange(10, 11)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Apply while Badger is out of use = %v, want ErrUnavailable", err)
		}
	}
	if got := sample(series) - before; got != 3 {
		t.Errorf("%s rose by %.0f, want 3", series, got)
	}
	// Badger is closed in the background, and readers are kept off it first.
	waitFor(t, func() bool {
		_, _, err := s.Get([]byte("d/000001"))
		return errors.Is(err, kv.ErrClosed)
	})
	if err := s.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ready while Badger is out of use = %v, want ErrUnavailable", err)
	}

	if err := os.RemoveAll(hog); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Apply(ctx, putRange(10, 20)) == nil })
	if err := s.Ready(); err != nil {
		t.Errorf("Ready after the reopen = %v", err)
	}
	mustHave(t, s, "d/000005", value(5))
	mustHave(t, s, "d/000015", value(15))
	mustHave(t, s, fmt.Sprintf("b/%04d", n-2), string(big))
	mustMiss(t, s, fmt.Sprintf("b/%04d", n-1))
}

// TestStoreReopensBadgerLeftWithoutMemtable reproduces the state exhausted inodes left
// Badger in before the memtable file was created ahead (removed here): Badger
// fails to create its next memtable file and has none. The failed commit is counted,
// the store stops using Badger at once — reads answer kv.ErrClosed instead of panicking,
// writes ErrUnavailable instead of ending the process — and once inodes are free it
// closes and reopens Badger by itself; every committed write is there.
func TestStoreReopensBadgerLeftWithoutMemtable(t *testing.T) {
	mnt := diskfault.Tmpfs(t, "size=200m,nr_inodes=200")
	dir := filepath.Join(mnt, "data")
	ctx := context.Background()
	s := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeInodes: -1, MinFreeDisk: 16 << 20})
	removeAhead(dir, s.logger) // the store believes it is there
	hog := diskfault.UseAllInodes(t, mnt)

	small := func(from, to int) func(kv.Batch) error {
		return func(b kv.Batch) error {
			for i := from; i < to; i++ {
				b.Set(fmt.Appendf(nil, "s/%07d", i), []byte("v"))
			}
			return nil
		}
	}
	commitErrorsBefore := sample("ctwa_sidecar_store_commit_errors_total")
	committed := 0
	var err error
	for ; committed < 200_000; committed += 5000 {
		if err = s.Apply(ctx, small(committed, committed+5000)); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "mem table") {
		t.Fatalf("after %d writes with no inode left: %v, want Badger failing to create a memtable", committed, err)
	}
	if got := sample("ctwa_sidecar_store_commit_errors_total") - commitErrorsBefore; got != 1 {
		t.Errorf("commit errors rose by %.0f, want 1", got)
	}
	for range 3 {
		if err := s.Apply(ctx, small(0, 1)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Apply to a Badger without memtable = %v, want ErrUnavailable", err)
		}
	}
	// Readers are off it from the failed commit on: a read would panic in Badger.
	if _, _, err := s.Get([]byte("s/0000000")); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("a read of a Badger without memtable = %v, want kv.ErrClosed", err)
	}

	if err := os.RemoveAll(hog); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Apply(ctx, small(committed, committed+10)) == nil })
	for _, i := range []int{0, committed - 1, committed + 9} {
		mustHave(t, s, fmt.Sprintf("s/%07d", i), "v")
	}
	mustMiss(t, s, fmt.Sprintf("s/%07d", committed+10))
}

// backupOf returns a backup of n values of size bytes, made on the test's disk.
func backupOf(t *testing.T, n, size int) []byte {
	t.Helper()
	src := openTest(t, t.TempDir())
	val := bytes.Repeat([]byte{'v'}, size)
	for i := 0; i < n; i += 500 {
		err := src.Apply(context.Background(), func(b kv.Batch) error {
			for k := i; k < min(n, i+500); k++ {
				b.Set(fmt.Appendf(nil, "r/%07d", k), val)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := src.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRestoreRefusesBackupLargerThanFreeSpace restores a 40 MiB backup file onto a file
// system with about 56 MiB left once Badger's files are allocated, with a 32 MiB reserve:
// refused before anything is written, naming the sizes, and the target left absent.
func TestRestoreRefusesBackupLargerThanFreeSpace(t *testing.T) {
	backup := filepath.Join(t.TempDir(), "backup")
	if err := os.WriteFile(backup, backupOf(t, 40_000, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := diskfault.Tmpfs(t, "size=200m")
	dir := filepath.Join(mnt, "restored")
	f, err := os.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = Restore(dir, f, 32<<20)
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "the backup holds") {
		t.Fatalf("Restore of a backup larger than the free space = %v, want ErrDiskFull naming the sizes", err)
	}
	t.Log(err)
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused restore left %q behind: %v", dir, err)
	}
}

// TestRestoreStopsWhenDiskFallsBelowReserve fills the file system to below the reserve
// (not to zero: a disk at zero under Badger's mmapped writes cannot be survived) after
// the backup's first frame: the next frame is refused, the restore fails with
// ErrDiskFull and removes what it wrote.
func TestRestoreStopsWhenDiskFallsBelowReserve(t *testing.T) {
	backup := backupOf(t, 40_000, 1000)
	first := 8 + int(binary.LittleEndian.Uint64(backup))
	if first >= len(backup) {
		t.Fatalf("the backup is one frame of %d bytes; the test needs two", len(backup))
	}
	mnt := diskfault.Tmpfs(t, "size=300m")
	dir := filepath.Join(mnt, "restored")
	var filler string
	fill := readFunc(func([]byte) (int, error) {
		filler = diskfault.FillLeaving(t, mnt, 16<<20)
		return 0, io.EOF
	})
	r := io.MultiReader(bytes.NewReader(backup[:first]), fill, bytes.NewReader(backup[first:]))
	err := Restore(dir, r, 32<<20)
	if filler == "" {
		t.Fatalf("the restore did not read past the first frame: %v", err)
	}
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "below the reserve") {
		t.Fatalf("Restore onto a disk that fell below the reserve = %v, want ErrDiskFull naming the reserve", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed restore left %q behind: %v", dir, err)
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// TestFlushIntoFullDiskIsAnError turns both reserves off and fills the disk to zero,
// then writes several memtables of small values: Badger's flushes and the memtables
// after the one allocated ahead need space that is not there. Each must fail as an
// error (refused or failed commits, Badger retrying its flush), never as a SIGBUS
// from a write into a mapped file with no blocks behind it, which ends the test
// binary; once space returns everything committed is there after a reopen.
func TestFlushIntoFullDiskIsAnError(t *testing.T) {
	mnt := diskfault.Tmpfs(t, "size=200m")
	dir := filepath.Join(mnt, "data")
	ctx := context.Background()
	s := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeInodes: -1, MinFreeDisk: -1})
	filler := diskfault.Fill(t, mnt)
	small := func(from, to int) func(kv.Batch) error {
		return func(b kv.Batch) error {
			for i := from; i < to; i++ {
				b.Set(fmt.Appendf(nil, "s/%07d", i), []byte("v"))
			}
			return nil
		}
	}
	committed, failed := 0, 0
	for i := 0; i < 400_000 && failed < 20; i += 5000 {
		if err := s.Apply(ctx, small(i, i+5000)); err != nil {
			failed++
			time.Sleep(20 * time.Millisecond)
			continue
		}
		committed = i + 5000
	}
	if failed == 0 {
		t.Fatalf("%d writes committed into a full disk and none failed", committed)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Apply(ctx, small(committed, committed+10)) == nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openOpts(t, dir, Options{MemTableSize: diskTestMemTable, MinFreeDisk: 16 << 20})
	for _, i := range []int{0, committed - 1, committed + 9} {
		mustHave(t, s2, fmt.Sprintf("s/%07d", i), "v")
	}
}
