package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	return openOpts(t, dir, Options{})
}

// get reads key from the committed state.
func get(t *testing.T, s *Store, key string) (string, bool) {
	t.Helper()
	var value []byte
	err := s.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(key))
		if err != nil {
			return err
		}
		value, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return string(value), true
}

func mustHave(t *testing.T, s *Store, key, want string) {
	t.Helper()
	got, ok := get(t, s, key)
	if !ok || got != want {
		t.Fatalf("key %q = %q (present %v), want %q", key, got, ok, want)
	}
}

func mustMiss(t *testing.T, s *Store, key string) {
	t.Helper()
	if got, ok := get(t, s, key); ok {
		t.Fatalf("key %q = %q, want it absent", key, got)
	}
}

func set(key, value string) func(kv.Batch) error {
	return func(b kv.Batch) error {
		b.Set([]byte(key), []byte(value))
		return nil
	}
}

// holdWriter makes the writer run a request that blocks until release is
// called, so that requests queued meanwhile end up in one group (the group
// gathers whatever is queued). It returns once the writer is inside fn.
func holdWriter(t *testing.T, s *Store, fn func(kv.Batch) error) (release func(), result <-chan error) {
	t.Helper()
	inside, proceed := make(chan struct{}), make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- s.Apply(context.Background(), func(b kv.Batch) error {
			close(inside)
			<-proceed
			return fn(b)
		})
	}()
	<-inside
	return func() { close(proceed) }, res
}

// applyAsync starts Apply in a goroutine and waits until the request is queued.
func applyAsync(t *testing.T, s *Store, ctx context.Context, fn func(kv.Batch) error) <-chan error {
	t.Helper()
	queued := len(s.views.reqs)
	res := make(chan error, 1)
	go func() { res <- s.Apply(ctx, fn) }()
	waitFor(t, func() bool { return len(s.views.reqs) > queued })
	return res
}

// waitFor polls cond; it bounds waiting on goroutine scheduling, it is not a timing assertion.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not return within 10s")
		return nil
	}
}

func TestApplyConcurrentAllLand(t *testing.T) {
	s := openTest(t, t.TempDir())
	const workers, perWorker = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				errs <- s.Apply(context.Background(), func(b kv.Batch) error {
					for k := range 3 {
						key := fmt.Sprintf("c/%02d/%03d/%d", w, i, k)
						b.Set([]byte(key), []byte("v"+key))
					}
					return nil
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	n := 0
	err := s.Scan([]byte("c/"), false, func(key, value []byte) (bool, error) {
		if string(value) != "v"+string(key) {
			return false, fmt.Errorf("key %q has value %q", key, value)
		}
		n++
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != workers*perWorker*3 {
		t.Fatalf("found %d keys, want %d", n, workers*perWorker*3)
	}
	if st := s.Stats(); st.Requests != workers*perWorker {
		t.Fatalf("Stats().Requests = %d, want %d", st.Requests, workers*perWorker)
	}
}

func TestApplyGroupsQueuedRequests(t *testing.T) {
	s := openTest(t, t.TempDir())
	release, first := holdWriter(t, s, set("g/first", "1"))
	const queued = 20
	var results []<-chan error
	for i := range queued {
		results = append(results, applyAsync(t, s, context.Background(), set(fmt.Sprintf("g/%02d", i), "1")))
	}
	before := s.Stats()
	release()
	for _, c := range append(results, first) {
		if err := recv(t, c); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	after := s.Stats()
	if commits := after.Commits - before.Commits; commits != 1 {
		t.Fatalf("%d commits for one group, want 1", commits)
	}
	if after.LargestGroup != queued+1 {
		t.Fatalf("LargestGroup = %d, want %d", after.LargestGroup, queued+1)
	}
	mustHave(t, s, "g/first", "1")
	mustHave(t, s, "g/19", "1")
}

func TestBatchGetSeesEarlierRequestsOfGroup(t *testing.T) {
	s := openTest(t, t.TempDir())
	if err := s.Apply(context.Background(), set("p/old", "committed")); err != nil {
		t.Fatal(err)
	}
	release, first := holdWriter(t, s, func(b kv.Batch) error {
		b.Set([]byte("p/a"), []byte("pending"))
		b.Delete([]byte("p/old"))
		return nil
	})
	var seenA, seenOld []byte
	var oldFound, committedA bool
	second := applyAsync(t, s, context.Background(), func(b kv.Batch) error {
		var err error
		if seenA, _, err = b.Get([]byte("p/a")); err != nil {
			return err
		}
		seenA = bytes.Clone(seenA)
		if seenOld, oldFound, err = b.Get([]byte("p/old")); err != nil {
			return err
		}
		// The first request's writes are not committed yet: Get saw the batch.
		_, committedA = get(t, s, "p/a")
		b.Set([]byte("p/b"), append(seenA, "+b"...))
		return nil
	})
	release()
	if err := recv(t, first); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, second); err != nil {
		t.Fatal(err)
	}
	if string(seenA) != "pending" || committedA {
		t.Fatalf("Get(p/a) = %q (committed before the group: %v), want the pending value", seenA, committedA)
	}
	if oldFound {
		t.Fatalf("Get(p/old) = %q, want the pending delete to hide it", seenOld)
	}
	mustHave(t, s, "p/b", "pending+b")
	mustMiss(t, s, "p/old")
}

func TestBatchGetReadsDatabaseAndOwnWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	if err := s.Apply(context.Background(), set("d/k", "v1")); err != nil {
		t.Fatal(err)
	}
	err := s.Apply(context.Background(), func(b kv.Batch) error {
		got, ok, err := b.Get([]byte("d/k"))
		if err != nil || !ok || string(got) != "v1" {
			return fmt.Errorf("Get(d/k) = %q, %v, %v; want v1 from the database", got, ok, err)
		}
		b.Set([]byte("d/k"), []byte("v2"))
		if got, _, _ := b.Get([]byte("d/k")); string(got) != "v2" {
			return fmt.Errorf("Get(d/k) after Set = %q, want v2", got)
		}
		if _, ok, _ := b.Get([]byte("d/missing")); ok {
			return errors.New("Get(d/missing) found a value")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustHave(t, s, "d/k", "v2")
}

func TestFailedRequestRollsBackOnlyItself(t *testing.T) {
	s := openTest(t, t.TempDir())
	release, first := holdWriter(t, s, set("r/a", "from-a"))
	errB := errors.New("request b is invalid")
	failing := applyAsync(t, s, context.Background(), func(b kv.Batch) error {
		b.Set([]byte("r/a"), []byte("from-b"))
		b.Set([]byte("r/b"), []byte("from-b"))
		if _, _, err := b.Get([]byte("r/missing")); err != nil {
			return err
		}
		return errB
	})
	panicking := applyAsync(t, s, context.Background(), func(b kv.Batch) error {
		b.Set([]byte("r/p"), []byte("from-p"))
		panic("decoder bug")
	})
	var seenA string
	var seenB bool
	last := applyAsync(t, s, context.Background(), func(b kv.Batch) error {
		a, _, err := b.Get([]byte("r/a"))
		seenA = string(a)
		if err == nil {
			_, seenB, err = b.Get([]byte("r/b"))
		}
		b.Set([]byte("r/c"), []byte("from-c"))
		return err
	})
	release()
	if err := recv(t, first); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, failing); !errors.Is(err, errB) {
		t.Fatalf("failing request got %v, want %v", err, errB)
	}
	if err := recv(t, panicking); err == nil || !strings.Contains(err.Error(), "decoder bug") {
		t.Fatalf("panicking request got %v, want the panic as error", err)
	}
	if err := recv(t, last); err != nil {
		t.Fatal(err)
	}
	if seenA != "from-a" || seenB {
		t.Fatalf("later request saw r/a=%q and r/b present=%v; the failed request leaked", seenA, seenB)
	}
	mustHave(t, s, "r/a", "from-a")
	mustHave(t, s, "r/c", "from-c")
	mustMiss(t, s, "r/b")
	mustMiss(t, s, "r/p")
}

func TestInvalidKeyFailsOnlyItsRequest(t *testing.T) {
	s := openTest(t, t.TempDir())
	for _, key := range []string{"", "!badger!x", strings.Repeat("k", maxKeySize+1)} {
		err := s.Apply(context.Background(), func(b kv.Batch) error {
			b.Set([]byte("i/ok"), []byte("1"))
			b.Set([]byte(key), []byte("1"))
			return nil
		})
		if err == nil {
			t.Fatalf("Set of key %.20q: Apply succeeded, want an error", key)
		}
	}
	mustMiss(t, s, "i/ok")
}

func TestTooBigRequestIsRefused(t *testing.T) {
	s := openTest(t, t.TempDir())
	value := make([]byte, 1000)
	err := s.Apply(context.Background(), func(b kv.Batch) error {
		for i := 0; int64(i)*1000 < s.limits.bytes; i++ {
			b.Set(fmt.Appendf(nil, "big/%06d", i), value)
		}
		return nil
	})
	if !errors.Is(err, kv.ErrTooBig) {
		t.Fatalf("Apply = %v, want kv.ErrTooBig", err)
	}
	if err := s.Apply(context.Background(), set("big/small", "1")); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, s, "big/000000")
}

func TestGroupLargerThanOneTransactionIsSplit(t *testing.T) {
	s := openTest(t, t.TempDir())
	release, first := holdWriter(t, s, set("s/first", "1"))
	// Each request takes ~40% of a transaction: the group needs several.
	value := make([]byte, 1000)
	perRequest := int(s.limits.bytes * 4 / 10 / 1020)
	var results []<-chan error
	for r := range 5 {
		results = append(results, applyAsync(t, s, context.Background(), func(b kv.Batch) error {
			for i := range perRequest {
				b.Set(fmt.Appendf(nil, "s/%d/%05d", r, i), value)
			}
			return nil
		}))
	}
	release()
	for _, c := range append(results, first) {
		if err := recv(t, c); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	n := 0
	if err := s.Scan([]byte("s/"), false, func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if want := 5*perRequest + 1; n != want {
		t.Fatalf("found %d keys, want %d", n, want)
	}
}

func TestApplyCanceledBeforePickupDoesNotApply(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Apply(ctx, set("x/early", "1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with canceled ctx = %v, want context.Canceled", err)
	}

	release, first := holdWriter(t, s, set("x/first", "1"))
	ctx, cancel = context.WithCancel(context.Background())
	waiting := applyAsync(t, s, ctx, set("x/late", "1"))
	cancel()
	if err := recv(t, waiting); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply canceled while queued = %v, want context.Canceled", err)
	}
	release()
	if err := recv(t, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background(), set("x/after", "1")); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, s, "x/early")
	mustMiss(t, s, "x/late")
	mustHave(t, s, "x/after", "1")
}

func TestApplyAfterClose(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background(), set("k", "v")); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("Apply after Close = %v, want kv.ErrClosed", err)
	}
	if err := s.View(func(*badger.Txn) error { return nil }); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("View after Close = %v, want kv.ErrClosed", err)
	}
	if err := s.Ready(); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("Ready after Close = %v, want kv.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

func TestCloseCommitsQueuedRequests(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release, first := holdWriter(t, s, set("q/first", "1"))
	queued := applyAsync(t, s, context.Background(), set("q/queued", "1"))
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, func() bool { return s.Ready() != nil })
	release()
	for _, c := range []<-chan error{first, queued, closed} {
		if err := recv(t, c); err != nil {
			t.Fatal(err)
		}
	}
	s = openTest(t, dir)
	mustHave(t, s, "q/first", "1")
	mustHave(t, s, "q/queued", "1")
}

func TestOpenLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("data directory %q is locked by another process", dir)
	if err.Error() != want {
		t.Fatalf("second Open error = %q, want %q", err, want)
	}
}

func TestOpenCannotCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	_, err := Open(dir, Options{})
	if want := fmt.Sprintf("cannot open store at %q: ", dir); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Open under a file = %v, want prefix %q", err, want)
	}
}

func TestCommitFailureMarksNotReadyUntilSuccess(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready on a fresh store = %v", err)
	}
	// Closing Badger under the writer makes its next commit fail like a dead disk would.
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	release, first := holdWriter(t, s, set("f/a", "1"))
	second := applyAsync(t, s, context.Background(), set("f/b", "1"))
	release()
	for _, c := range []<-chan error{first, second} {
		if err := recv(t, c); !errors.Is(err, badger.ErrBlockedWrites) {
			t.Fatalf("Apply on a failing store = %v, want ErrBlockedWrites", err)
		}
	}
	if err := s.Ready(); err == nil {
		t.Fatal("Ready = nil after a failed commit")
	}

	// The store takes the failed Badger out of use and opens it again by itself
	// (disk.go); meanwhile writes are refused with ErrUnavailable.
	waitFor(t, func() bool {
		err := s.Apply(context.Background(), set("f/c", "1"))
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Apply while the store reopens = %v, want ErrUnavailable", err)
		}
		return err == nil
	})
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready after a successful commit = %v", err)
	}
	mustMiss(t, s, "f/a")
	mustHave(t, s, "f/c", "1")
}

func TestTTLKeysExpire(t *testing.T) {
	s := openTest(t, t.TempDir())
	err := s.Apply(context.Background(), func(b kv.Batch) error {
		b.SetWithTTL([]byte("t/short"), []byte("1"), time.Second)
		b.SetWithTTL([]byte("t/dedupe"), []byte("1"), 8*24*time.Hour)
		b.Set([]byte("t/forever"), []byte("1"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expires := func(key string) uint64 {
		var at uint64
		err := s.View(func(txn *badger.Txn) error {
			item, err := txn.Get([]byte(key))
			if err == nil {
				at = item.ExpiresAt()
			}
			return err
		})
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		return at
	}
	if at, min := expires("t/dedupe"), uint64(time.Now().Add(8*24*time.Hour-time.Minute).Unix()); at < min {
		t.Fatalf("t/dedupe expires at %d, want ≥ %d (8 days)", at, min)
	}
	if at := expires("t/forever"); at != 0 {
		t.Fatalf("t/forever expires at %d, want never", at)
	}
	waitFor(t, func() bool { _, ok := get(t, s, "t/short"); return !ok })
	mustHave(t, s, "t/dedupe", "1")
	mustHave(t, s, "t/forever", "1")
}

func TestScanPrefixBothDirections(t *testing.T) {
	s := openTest(t, t.TempDir())
	keys := []string{"a", "b", "b\x00", "b/1", "b/2", "b\xff", "b\xff\xff", "c", "c/1"}
	err := s.Apply(context.Background(), func(b kv.Batch) error {
		for _, k := range keys {
			b.Set([]byte(k), []byte("v"+k))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	collect := func(prefix string, reverse bool, limit int) string {
		var got []string
		err := s.Scan([]byte(prefix), reverse, func(key, value []byte) (bool, error) {
			if string(value) != "v"+string(key) {
				return false, fmt.Errorf("key %q has value %q", key, value)
			}
			got = append(got, string(key))
			return len(got) < limit, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	for _, tc := range []struct {
		prefix  string
		reverse bool
		limit   int
		want    string
	}{
		{"b", false, 99, "b,b\x00,b/1,b/2,b\xff,b\xff\xff"},
		{"b", true, 99, "b\xff\xff,b\xff,b/2,b/1,b\x00,b"},
		{"b/", true, 99, "b/2,b/1"},
		{"b\xff", true, 99, "b\xff\xff,b\xff"},
		{"", true, 2, "c/1,c"},
		{"", false, 2, "a,b"},
		{"z", true, 99, ""},
		{"b", true, 1, "b\xff\xff"},
	} {
		if got := collect(tc.prefix, tc.reverse, tc.limit); got != tc.want {
			t.Errorf("Scan(%q, reverse=%v) = %q, want %q", tc.prefix, tc.reverse, got, tc.want)
		}
	}
}

func TestSizeGaugeFollowsOpenStore(t *testing.T) {
	s := openTest(t, t.TempDir())
	if err := s.Apply(context.Background(), set("z/k", "v")); err != nil {
		t.Fatal(err)
	}
	if sizedStore.Load() != s {
		t.Fatal("the disk gauges do not follow the most recently opened store")
	}
	n := dirSize(s.dir)
	if n <= 0 {
		t.Fatalf("dirSize = %d, want > 0", n)
	}
	// The file log's segments count, and a second open store adds its size.
	l, err := OpenLog(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), func(tx kv.LogTx) error {
		var seq uint64
		tx.Add(make([]byte, 64<<10), &seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if m := dirSize(s.dir); m < n+64<<10 {
		t.Fatalf("dirSize = %d after a 64 KiB log entry, want at least %d", m, n+64<<10)
	}
	other := openTest(t, t.TempDir())
	if _, ok := openStores.Load(other); !ok {
		t.Fatal("the size gauge does not sum a second open store")
	}
	other.Close()
	if _, ok := openStores.Load(other); ok {
		t.Fatal("a closed store still counts in the size gauge")
	}
}
