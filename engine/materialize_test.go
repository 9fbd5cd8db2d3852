package engine

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Log-first recording: a webhook is acknowledged once it is in the log; these tests
// stop the materializer to hold the views back, as a crash between the log append and
// the view checkpoint does, and check that the views come out the same.

// pending counts the log entries not yet in the views.
func (e *testEnv) pending() int {
	e.t.Helper()
	return unapplied(e.t, e.store, e.log)
}

// unapplied counts the entries of log after the checkpoint of store's views.
func unapplied(t testing.TB, store *storage.Store, log Log) int {
	t.Helper()
	v, _, err := store.Get(kv.ViewPosKey())
	if err != nil {
		t.Fatal(err)
	}
	applied, _, _ := kv.DecodeViewPos(v)
	n := 0
	err = log.Entries(applied, func(uint64, []byte) (bool, error) {
		n++
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// gaugeValue reads a gauge of /metrics by its name.
func gaugeValue(name string) float64 { return metrics.GetOrCreateGauge(name, nil).Get() }

// Webhooks acknowledged while the views were held back, then a restart: every message
// is placed once, and a retry after the restart is a duplicate.
func TestViewsCatchUpAfterAStopBeforeTheCheckpoint(t *testing.T) {
	e := newTestEnv(t)
	first := cloudWebhook(leadMsgs("491700000001")("wamid.lf.1", t0, "hi"))
	e.record(first) // in the views
	e.rec.mat.close()
	msg := leadMsgs("491700000002")
	bodies := [][]byte{
		cloudWebhook(withReferral(msg("wamid.lf.2", t0+10, "hello"), adReferral("ad-1", "clid-lf-2"))),
		cloudWebhook(msg("wamid.lf.3", t0+20, "what is the price?")),
	}
	for _, b := range bodies {
		if err := e.rec.Record(context.Background(), b); err != nil { // must not wait for the views
			t.Fatal(err)
		}
	}
	if n := e.pending(); n != 2 {
		t.Fatalf("%d log entries wait for the views, want 2", n)
	}
	if lag := gaugeValue("ctwa_sidecar_view_lag_entries"); lag != 2 {
		t.Errorf("view lag %v entries, want 2", lag)
	}
	e.reopen()
	e.sync()
	evs := e.events(scApp)
	if got := len(ofType(evs, TypeConversation)); got != 2 {
		t.Fatalf("%d conversations, want 2:\n%s", got, dumpEvents(evs))
	}
	if got := len(ofType(evs, TypeEngagement)); got != 1 {
		t.Fatalf("%d engagements, want 1:\n%s", got, dumpEvents(evs))
	}
	if n := e.pending(); n != 0 {
		t.Fatalf("%d log entries left after the views caught up", n)
	}
	if lag := gaugeValue("ctwa_sidecar_view_lag_entries"); lag != 0 {
		t.Errorf("view lag %v entries after catching up, want 0", lag)
	}
	dups := delta(`ctwa_sidecar_webhooks_total{format="cloud",result="duplicate"}`)
	e.record(bodies[1])
	if dups() != 1 || len(e.events(scApp)) != len(evs) {
		t.Fatalf("a retry after the restart: duplicates +%d, %d events; want +1, %d", dups(), len(e.events(scApp)), len(evs))
	}
}

// An entry too big for one view commit is applied in parts; a stop after the first part
// resumes at the item where it ended, placing nothing twice.
func TestBigEntryResumesAtItsCheckpointedItem(t *testing.T) {
	e := newTestEnv(t)
	e.rec.mat.close() // steps are run by hand below
	msgs := make([]cloudMsg, maxItems)
	for i := range msgs {
		msgs[i] = cloudMsg{App: scApp, ID: "wamid.part." + strconv.Itoa(i), From: strconv.Itoa(491700200000 + i),
			Time: t0 + int64(i), Text: "hello"}
	}
	if err := e.rec.Record(context.Background(), cloudWebhook(msgs...)); err != nil {
		t.Fatal(err)
	}
	m := e.rec.mat
	if err := m.step(); err != nil {
		t.Fatal(err)
	}
	if m.partial == 0 || int(m.partial) >= maxItems || m.applied.Load() != 0 {
		t.Fatalf("after one step: %d items of the entry applied, applied seq %d; want part of it", m.partial, m.applied.Load())
	}
	e.reopen()
	e.sync()
	if n := len(ofType(e.events(scApp), TypeConversation)); n != maxItems {
		t.Fatalf("%d conversations, want %d", n, maxItems)
	}
	if n := len(e.sessions(scApp)); n != maxItems {
		t.Fatalf("%d sessions, want %d", n, maxItems)
	}
	// The rollups add up: an item placed twice would count its session twice there.
	totals, err := e.rec.SourceTotals(scApp, e.rec.DaysOf(t0-day, t0+day))
	if err != nil {
		t.Fatal(err)
	}
	if got := totals[SourceRef{Type: SourceOrganic}]; got == nil || got.Sessions != maxItems || got.Engaged != 0 {
		t.Fatalf("organic totals %+v, want %d sessions and none engaged", got, maxItems)
	}
	// A message placed twice would look like the lead's second one: an engagement.
	if n := len(ofType(e.events(scApp), TypeEngagement)); n != 0 {
		t.Fatalf("%d engagements, want none", n)
	}
}

// An entry the views cannot take (corrupt) is skipped and counted; the entries after it
// are applied.
func TestCorruptLogEntryIsSkipped(t *testing.T) {
	e := newTestEnv(t)
	skipped := delta("ctwa_sidecar_view_items_skipped_total")
	var seq uint64
	err := e.rec.log.Append(context.Background(), func(tx kv.LogTx) error {
		tx.Add([]byte{logEntryVersion, 1, 2}, &seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rec.mat.published(seq)
	e.record(cloudWebhook(leadMsgs("491700000003")("wamid.after", t0, "hi")))
	if n := len(ofType(e.events(scApp), TypeConversation)); n != 1 {
		t.Fatalf("%d conversations after the corrupt entry, want 1", n)
	}
	if skipped() != 1 {
		t.Fatalf("skipped items +%d, want +1", skipped())
	}
	if n := e.pending(); n != 0 {
		t.Fatalf("%d log entries left", n)
	}
}

// Reads wait for the views: an event list right after a Record sees the conversation of
// its new lead, with
// no sleep and no explicit Sync.
func TestReadsSeeAcknowledgedWebhooks(t *testing.T) {
	e := newTestEnv(t)
	for i := range 50 {
		id := "wamid.read." + strconv.Itoa(i)
		if err := e.rec.Record(context.Background(), cloudWebhook(leadMsgs(strconv.Itoa(491700300000+i))(id, t0+int64(i), "hi"))); err != nil {
			t.Fatal(err)
		}
		found := false
		if err := e.rec.Events(EventFilter{AppID: scApp, To: t0 + 1000}, func(ev *kv.Event) bool {
			found = found || ev.MessageID == id
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Fatalf("message %d is not in the events read right after its Record", i)
		}
	}
}

// A store written before the log kept full message records under the message keys; a
// refresh still places them.
func TestRefreshReadsRecordsFromBeforeTheLog(t *testing.T) {
	e := newTestEnv(t)
	m := kv.Message{ID: "wamid.old.1", AppID: scApp, Time: t0, Lead: "491700000005", Type: "text", Text: "price?"}
	err := e.store.Apply(context.Background(), func(b kv.Batch) error {
		b.Set(kv.LegacyMessageKey(nil, m.AppID, m.Time, m.ID), kv.AppendMessage(nil, &m))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.addKeyword(scApp, "price")
	e.record(cloudWebhook(leadMsgs("491700000006")("wamid.new.1", t0+5, "price please")))
	res, err := e.rec.Refresh(context.Background(), scApp)
	if err != nil {
		t.Fatal(err)
	}
	evs := e.events(scApp)
	if res.Messages != 2 || len(ofType(evs, TypeConversation)) != 2 || len(ofType(evs, TypeKeyword)) != 2 {
		t.Fatalf("refresh placed %d messages; events:\n%s\nwant 2 messages, 2 conversations, 2 keyword events", res.Messages, dumpEvents(evs))
	}
}

// An off-thread event is a log entry: posted while the views are behind (then answered
// unattributed), it is attributed in log order once they catch up, after the session of
// the webhook acknowledged before it; its object_id stays taken across the restart.
func TestOffThreadEventIsLoggedAndAttributedInLogOrder(t *testing.T) {
	e := newTestEnv(t)
	e.rec.mat.close()
	const lead = "491700000007"
	body := cloudWebhook(withReferral(leadMsgs(lead)("wamid.ot.1", t0, "hi"), adReferral("ad-9", "clid-ot-1")))
	if err := e.rec.Record(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	ev := OffThread{Lead: lead, Action: "purchase", Amount: 49.9, Currency: "EUR", Time: t0 + 60, ObjectID: "order-1"}
	rec, created, err := e.rec.RecordOffThread(context.Background(), ev)
	if err != nil || !created || rec.Attributed {
		t.Fatalf("posted with the views stopped: %+v, created %v, %v; want a new, not yet attributed event", rec, created, err)
	}
	if n := e.pending(); n != 2 {
		t.Fatalf("%d log entries wait for the views, want 2 (the webhook, the event)", n)
	}
	e.reopen()
	e.sync()
	got, ok, err := e.rec.OffThread(rec.ID)
	if err != nil || !ok || !got.Attributed || got.SourceType != SourceAd || got.SourceID != "ad-9" {
		t.Fatalf("after the views caught up: %+v, %v, %v; want it attributed to ad-9", got, ok, err)
	}
	again, created, err := e.rec.RecordOffThread(context.Background(), ev)
	if err != nil || created || again.ID != rec.ID {
		t.Fatalf("the same object_id again: %+v, created %v, %v; want the first event back", again, created, err)
	}
	totals, err := e.rec.AdTotals(scApp, []string{"ad-9"}, e.rec.DaysOf(t0-day, t0+day))
	if err != nil {
		t.Fatal(err)
	}
	if totals.OffCount != 1 || totals.Revenue["EUR"] != 49.9 {
		t.Fatalf("ad-9 totals: %d off-thread events, revenue %v; want 1 and 49.9 EUR", totals.OffCount, totals.Revenue)
	}
}

// A refresh is a log command: logged while the views are stopped (a crash before it
// ran), it runs at the next start, before the webhooks logged after it.
func TestRefreshIsLoggedAndRunsAfterARestart(t *testing.T) {
	e := newTestEnv(t)
	msg := leadMsgs("491700000008")
	e.record(cloudWebhook(msg("wamid.rf.1", t0, "what is the price?")))
	e.addKeyword(scApp, "price") // after the message: counted by a refresh only
	e.rec.mat.close()
	if _, err := e.rec.Refresh(context.Background(), scApp); err == nil {
		t.Fatal("Refresh returned nil with the materializer stopped; want an error saying the views are behind")
	}
	if err := e.rec.Record(context.Background(), cloudWebhook(msg("wamid.rf.2", t0+10, "price again"))); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	e.sync()
	evs := e.events(scApp)
	if n := len(ofType(evs, TypeKeyword)); n != 2 {
		t.Fatalf("%d keyword events after the logged refresh ran, want 2 (the message before it, re-classified, and the one after):\n%s", n, dumpEvents(evs))
	}
	if n := len(ofType(evs, TypeEngagement)); n != 1 {
		t.Fatalf("%d engagements, want 1:\n%s", n, dumpEvents(evs))
	}
}

// One refresh of an app at a time: another while one is logged is refused.
func TestRefreshWhileOneIsLoggedIsRefused(t *testing.T) {
	e := newTestEnv(t)
	if !e.rec.mat.claimRefresh(scApp) {
		t.Fatal("a first claim was refused")
	}
	if _, err := e.rec.Refresh(context.Background(), scApp); !errors.Is(err, ErrRefreshRunning) {
		t.Fatalf("Refresh = %v, want ErrRefreshRunning", err)
	}
	e.rec.mat.releaseRefresh(scApp)
	if _, err := e.rec.Refresh(context.Background(), scApp); err != nil {
		t.Fatalf("Refresh after the first ended: %v", err)
	}
}

// A definition change is a log command: logged but not yet applied when the process
// stopped, it is applied at the next start before the webhooks logged after it, which
// then classify with it, and the in-memory definitions are reloaded.
func TestDefinitionChangeIsLoggedAndAppliedInLogOrder(t *testing.T) {
	e := newTestEnv(t)
	msg := leadMsgs("491700000009")
	e.record(cloudWebhook(msg("wamid.def.1", t0, "what is the price?"))) // before the keyword
	e.rec.mat.close()
	g := Group{AppID: scApp, Type: TypeKeyword, TypeValue: "price", Status: StatusActive}
	id, counter, err := e.rec.nextID(defGroup)
	if err != nil {
		t.Fatal(err)
	}
	g.ID, g.TypeID = id, id
	// As AddGroup logs it; the wait fails, as in a process killed before its views caught up.
	if err := e.rec.logDefinitions(context.Background(), counter, defPut(defGroup, g.AppID, g.ID, &g)); err == nil {
		t.Fatal("logDefinitions returned nil with the materializer stopped")
	}
	if err := e.rec.Record(context.Background(), cloudWebhook(msg("wamid.def.2", t0+10, "price please"))); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	e.sync()
	if groups := e.rec.Definitions().Groups; len(groups) != 1 || groups[0].TypeValue != "price" {
		t.Fatalf("definitions after the restart: %+v, want the logged keyword group", groups)
	}
	kw := ofType(e.events(scApp), TypeKeyword)
	if len(kw) != 1 || kw[0].MessageID != "wamid.def.2" {
		t.Fatalf("keyword events %+v, want one, of the message logged after the keyword", kw)
	}
	next, _, err := e.rec.nextID(defGroup)
	if err != nil || next != "2" {
		t.Fatalf("next group id %q (%v), want 2: the logged counter is applied", next, err)
	}
}

// Placement returns what it decided — whether the message opened a session, the types of
// the events it wrote — and the materializer counts events_total from that, once the
// step is committed.
func TestPlacementReturnsWhatItDecided(t *testing.T) {
	e := newTestEnv(t)
	defs := testDefinitions(t, []Group{{ID: "k1", AppID: scApp, Type: TypeKeyword, TypeID: "k1", TypeValue: "price",
		Status: StatusActive}}, nil, nil)
	e.rec.defs.Store(defs)
	const lead = "491700000091"
	msg := func(id string, at int64, text string, ref *webhook.Referral) webhook.Item {
		it := webhook.Item{Kind: webhook.KindMessage, AppID: scApp, ID: id, Time: at, Lead: lead, Type: "text", Text: text}
		if ref != nil {
			it.Referral = *ref
		}
		return it
	}
	var got []placement
	err := e.rec.views.Derive(context.Background(), func(b kv.Batch) error {
		p := &e.rec.placer
		p.cache.check(b)
		for _, it := range []webhook.Item{msg("p1", t0, "the price?", adReferral("120", "clid-p")), msg("p2", t0+60, "hello", nil),
			msg("p3", t0+120, "price again", nil)} {
			var c Classification
			Classify(&c, &it, defs)
			placed, err := p.place(b, &it, &c, defs)
			if err != nil {
				return err
			}
			got = append(got, placement{opened: placed.opened, events: slices.Clone(placed.events)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []placement{{true, []string{TypeConversation, TypeKeyword}}, {false, []string{TypeEngagement}}, {false, []string{TypeKeyword}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("placements = %+v, want %+v", got, want)
	}

	before := map[string]uint64{}
	for _, typ := range EventTypes {
		before[typ] = eventsByType[typ].Get()
	}
	m := leadMsgs("491700000092")
	e.record(cloudWebhook(withReferral(m("w1", t0, "price please"), adReferral("120", "clid-w")), m("w2", t0+60, "hi")))
	for _, typ := range EventTypes {
		want := map[string]uint64{TypeConversation: 1, TypeKeyword: 1, TypeEngagement: 1}[typ]
		if d := eventsByType[typ].Get() - before[typ]; d != want {
			t.Errorf("events_total{type=%q} went up by %d, want %d", typ, d, want)
		}
	}
}

// refusingViews is a view store that refuses writes while refuse is set, as a store on a
// full disk does: the views cannot move.
type refusingViews struct {
	Views
	refuse atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (v *refusingViews) Apply(ctx context.Context, fn func(kv.Batch) error) error {
	if v.refuse.Load() {
		return errDiskFull
	}
	return v.Views.Apply(ctx, fn)
}

func (v *refusingViews) Derive(ctx context.Context, fn func(kv.Batch) error) error {
	if v.refuse.Load() {
		return errDiskFull
	}
	return v.Views.Derive(ctx, fn)
}

func (v *refusingViews) Ready() error {
	if v.refuse.Load() {
		return errDiskFull
	}
	return v.Views.Ready()
}

// While the store refuses writes the views cannot reach the log, so reads answer from the
// views as they are instead of waiting for each (an API answer is several reads: it took
// over 30 s with inodes exhausted). Once writes return, the views catch up.
func TestReadsDoNotWaitForViewsThatCannotMove(t *testing.T) {
	s, err := storage.Open(t.TempDir(), storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := storage.OpenLog(s)
	if err != nil {
		t.Fatal(err)
	}
	v := &refusingViews{Views: s}
	rec, err := NewRecorder(l, v, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	v.refuse.Store(true)
	if err := rec.Record(context.Background(), cloudWebhook(leadMsgs("491700000009")("wamid.full", t0, "hi"))); err != nil {
		t.Fatal(err)
	}
	timeouts := delta("ctwa_sidecar_view_read_timeouts_total")
	for range 3 {
		if n := len(listEvents(t, rec, EventFilter{AppID: scApp})); n != 0 {
			t.Fatalf("%d events while the views cannot apply, want 0", n)
		}
	}
	if timeouts() != 0 {
		t.Fatalf("%d reads waited for views that could not move", timeouts())
	}
	v.refuse.Store(false)
	if err := rec.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(ofType(listEvents(t, rec, EventFilter{AppID: scApp}), TypeConversation)); n != 1 {
		t.Fatalf("%d conversations once writes return, want 1", n)
	}
}
