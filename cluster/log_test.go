package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/natstest"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// member opens a log on the servers' stream "t" over a store of its own.
func member(t testing.TB, urls string) *Log {
	t.Helper()
	store, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(Config{URLs: urls, Stream: "t", Replicas: min(3, replicas(urls)), Timeout: 2 * time.Second, Name: t.Name(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		store.Close()
	})
	return l
}

// claimAndAdd claims key and, when it is fresh, adds entry: a webhook item's append.
func claimAndAdd(l *Log, key, entry string) (fresh bool, held string, seq uint64, err error) {
	err = l.Append(context.Background(), func(tx kv.LogTx) error {
		v, f, err := tx.Claim([]byte(key), []byte("v-"+entry), time.Hour)
		if err != nil {
			return err
		}
		fresh, held = f, string(v)
		if f {
			tx.Add([]byte(entry), &seq)
		} else {
			seq = tx.Last()
		}
		return nil
	})
	return fresh, held, seq, err
}

func entries(t *testing.T, l *Log) map[uint64]string {
	t.Helper()
	got := map[uint64]string{}
	if err := l.Entries(0, func(seq uint64, e []byte) (bool, error) {
		got[seq] = string(e)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// Two members share a stream: a key claimed by one is held for the other, which learns
// the value and the entry it let in; both mirror the same entries at the same numbers.
func TestMembersShareClaimsAndEntries(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	a, b := member(t, nats.URLs()), member(t, nats.URL(2))

	fresh, _, seqA, err := claimAndAdd(a, "msg-1", "first")
	if err != nil || !fresh || seqA == 0 {
		t.Fatalf("a: fresh=%v seq=%d err=%v, want a fresh claim with an entry", fresh, seqA, err)
	}
	fresh, held, seqB, err := claimAndAdd(b, "msg-1", "retry")
	if err != nil || fresh {
		t.Fatalf("b: fresh=%v err=%v, want the key held", fresh, err)
	}
	if held != "v-first" || seqB != seqA {
		t.Fatalf("b: held %q, entry %d; want v-first and a's entry %d", held, seqB, seqA)
	}
	// The entry is readable on a as soon as Append returned; b gets it from its mirror.
	if got := entries(t, a); got[seqA] != "first" || len(got) != 1 {
		t.Fatalf("a's entries: %v, want only %d=first", got, seqA)
	}
	if !b.mirror.wait(seqA, 10*time.Second) {
		t.Fatal("b never mirrored a's entry")
	}
	if got := entries(t, b); got[seqA] != "first" || len(got) != 1 {
		t.Fatalf("b's entries: %v, want only %d=first", got, seqA)
	}
}

// Requests that run at once share batches; each gets its own entry's number, and a key
// claimed twice in one batch lets in only the first entry.
func TestConcurrentAppendsAreBatched(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	l := member(t, nats.URLs())
	const n = 200
	var wg sync.WaitGroup
	seqs := make([]uint64, n)
	freshes := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i%(n/2)) // every key twice
			freshes[i], _, seqs[i], errs[i] = claimAndAdd(l, key, fmt.Sprintf("e%d", i))
		}()
	}
	wg.Wait()
	got := entries(t, l)
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		if freshes[i] {
			fresh++
			if got[seqs[i]] != fmt.Sprintf("e%d", i) {
				t.Fatalf("append %d: entry %d holds %q", i, seqs[i], got[seqs[i]])
			}
		}
	}
	if fresh != n/2 || len(got) != n/2 {
		t.Fatalf("%d fresh claims, %d entries; want %d of each", fresh, len(got), n/2)
	}
}

// Without a quorum an append fails as unavailable. A failed append may still be stored
// once the quorum returns (the batch reached the leader): a retry then finds its own
// claim, never a half-stored one.
func TestAppendWithoutQuorumIsUnavailable(t *testing.T) {
	nats := natstest.Cluster(t, 3)
	l := member(t, nats.URLs())
	if _, _, _, err := claimAndAdd(l, "warm", "up"); err != nil {
		t.Fatal(err)
	}
	nats.Stop(1)
	nats.Stop(2)
	_, _, _, err := claimAndAdd(l, "k", "during")
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("append without quorum: %v, want kv.ErrUnavailable", err)
	}
	nats.Start(1)
	nats.Start(2)
	deadline := time.Now().Add(30 * time.Second)
	for {
		fresh, held, seq, err := claimAndAdd(l, "k2", "after")
		if err == nil {
			if !fresh && (held != "v-after" || !l.mirror.wait(seq, 10*time.Second) || entries(t, l)[seq] != "after") {
				t.Fatalf("k2 held with %q, entry %d = %q; want an earlier attempt's claim and entry", held, seq, entries(t, l)[seq])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends still fail after the servers returned: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A stream that cannot hold the log (made by hand, or by a NATS server older than 2.12,
// which drops the settings it does not know) is not written to: webhooks are spooled.
func TestUnfitStreamIsNotWritten(t *testing.T) {
	servers := natstest.Cluster(t, 1)
	_, js := natstest.JetStream(t, servers.URLs())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "t", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	l := member(t, servers.URLs())
	if _, _, _, err := claimAndAdd(l, "k", "e"); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("append to an unfit stream: %v, want kv.ErrUnavailable", err)
	}
	if info, err := js.Stream(context.Background(), "t"); err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Fatalf("the unfit stream holds messages (%v)", err)
	}
}

// replicas is the number of servers in urls: a stream cannot have more.
func replicas(urls string) int { return strings.Count(urls, ",") + 1 }

// An entry over the servers' payload limit is too big, not unreachable: the engine
// splits the webhook instead of spooling it for ever.
func TestEntryOverThePayloadLimitIsTooBig(t *testing.T) {
	l := member(t, natstest.Cluster(t, 1).URLs())
	big := string(make([]byte, l.nc.MaxPayload()+1))
	if _, _, _, err := claimAndAdd(l, "k", big); !errors.Is(err, kv.ErrTooBig) {
		t.Fatalf("append of %d bytes: %v, want kv.ErrTooBig", len(big), err)
	}
}
