package engine

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A refresh while webhooks keep coming leaves every acknowledged message placed: those
// logged before it are replayed, those logged during it are placed after it, in log
// order, however many they are (SPEC §3.2, §4.1).
func TestRefreshUnderTraffic(t *testing.T) {
	e := newTestEnv(t)
	const stored, perWebhook = 5000, 100
	lead := func(i int) string { return strconv.Itoa(491700000000 + i) }
	webhook := func(from, n int) []byte {
		msgs := make([]cloudMsg, n)
		for i := range msgs {
			msgs[i] = cloudMsg{App: scApp, ID: "wamid.rt." + strconv.Itoa(from+i), From: lead(from + i), Time: t0 + int64(from+i), Text: "hi"}
		}
		return cloudWebhook(msgs...)
	}
	for i := 0; i < stored; i += perWebhook {
		e.record(webhook(i, perWebhook))
	}

	// Webhooks flow from before the refresh starts until after it ends.
	var next atomic.Int64
	next.Store(stored)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				from := int(next.Add(10)) - 10
				if err := e.rec.Record(context.Background(), webhook(from, 10)); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond) // a steady flow, not a flood that buries the refresh under -race

			}
		}()
	}
	for next.Load() < stored+200 { // traffic is flowing
	}
	res, err := e.rec.Refresh(context.Background(), scApp)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	total := int(next.Load())
	t.Logf("%d messages stored before, %d recorded in all; the refresh replayed %d", stored, total, res.Messages)
	if res.Messages < stored || res.Messages > total {
		t.Fatalf("the refresh replayed %d messages, want between the %d logged before it and all %d", res.Messages, stored, total)
	}
	e.sync() // the backlog may take longer than a read waits
	if n := len(ofType(e.events(scApp), TypeConversation)); n != total {
		t.Fatalf("%d conversations, want one per message: %d", n, total)
	}
}
