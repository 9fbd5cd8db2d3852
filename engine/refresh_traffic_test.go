package engine

import (
	"context"
	"fmt"
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

// A refresh larger than the write cache reads back the leads and rollups it wrote
// (its filter of written keys, keyFilter, must let those reads through) and gives the
// numbers the live placement gave: 20 leads, each with a session of two messages
// (opened, then engaged) on each of 3 days, all organic.
func TestRefreshPastTheWriteCache(t *testing.T) {
	e := newTestEnv(t)
	e.rec.placer.cache.bound = 2
	const leads, days = 20, 3
	var msgs []cloudMsg
	for d := range days {
		for i := range leads {
			at := t0 + int64(d)*2*86400 + int64(i)
			for m := range 2 {
				msgs = append(msgs, cloudMsg{App: scApp, ID: fmt.Sprintf("wamid.pc.%d.%d.%d", d, i, m),
					From: strconv.Itoa(491710000000 + i), Time: at + int64(m)*leads, Text: "hi"})
			}
		}
	}
	e.record(cloudWebhook(msgs...))
	span := e.rec.DaysOf(t0-86400, t0+2*days*86400)
	want := organicTotals(t, e, span)
	if want.Sessions != leads*days || want.Engaged != leads*days || want.UniqueUsers() != leads {
		t.Fatalf("live: %d sessions, %d engaged, %d leads; want %d, %d, %d",
			want.Sessions, want.Engaged, want.UniqueUsers(), leads*days, leads*days, leads)
	}
	if _, err := e.rec.Refresh(context.Background(), scApp); err != nil {
		t.Fatal(err)
	}
	got := organicTotals(t, e, span)
	if got.Sessions != want.Sessions || got.Engaged != want.Engaged || got.UniqueUsers() != want.UniqueUsers() {
		t.Fatalf("after the refresh: %d sessions, %d engaged, %d leads; want %d, %d, %d",
			got.Sessions, got.Engaged, got.UniqueUsers(), want.Sessions, want.Engaged, want.UniqueUsers())
	}
}

func organicTotals(t *testing.T, e *testEnv, days Days) *Totals {
	t.Helper()
	totals, err := e.rec.SourceTotals(scApp, days)
	if err != nil {
		t.Fatal(err)
	}
	if tot := totals[SourceRef{Type: SourceOrganic}]; tot != nil {
		return tot
	}
	return newTotals()
}
