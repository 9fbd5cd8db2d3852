package engine_test

// Tests of RecordOffThread over the real store (SPEC §5): last-touch attribution over
// sessions opened by real Cloud API webhooks, the attribution window, app_id,
// previous_external_event_id, idempotency by object_id under concurrency, and the event
// rows the events API lists.

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/internal/fixtures"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

const (
	otApp1  = "106540352242922" // metadata.phone_number_id of the fixtures
	otApp2  = "207651463353033"
	otLead  = "491701234567"
	otLead2 = "4915112345678"
	otAdA   = "120214567890123456"
	otAdB   = "120214567890654321"
)

// otT0 is the start of the recorder scenarios; otNowRec is the "now" the validator sees,
// later than every event of the scenarios.
var (
	otT0     = time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)
	otNowRec = otT0.Add(90 * 24 * time.Hour)
)

// otEnv is a recorder over a real store in a temporary directory.
type otEnv struct {
	t     *testing.T
	store *storage.Store
	rec   *engine.Recorder
	seq   int
}

func newOTEnv(t *testing.T) *otEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	s, err := storage.Open(t.TempDir(), storage.Options{Logger: log})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	l, err := storage.OpenLog(s)
	if err != nil {
		t.Fatalf("storage.OpenLog: %v", err)
	}
	r, err := engine.NewRecorder(l, s, engine.Config{DefaultAppID: "onprem", SessionWindow: 24 * time.Hour,
		AttributionWindow: 672 * time.Hour, Log: log})
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	return &otEnv{t: t, store: s, rec: r}
}

// otMsg is one inbound text message of a Cloud API webhook.
type otMsg struct {
	App  string // metadata.phone_number_id
	Lead string // phone digits
	At   time.Time
	Ad   string // referral source_id; "" for a message without referral
}

// otWebhook is a Cloud API webhook shaped like testdata/webhooks/cloud/text_ctwa_referral.json.
func otWebhook(m otMsg, id string) []byte {
	msg := map[string]any{"from": m.Lead, "id": id, "timestamp": strconv.FormatInt(m.At.Unix(), 10),
		"type": "text", "text": map[string]any{"body": "Hi! I saw your ad, is the spring sale still on?"}}
	if m.Ad != "" {
		msg["referral"] = map[string]any{"source_url": "https://fb.me/4kQ9vZx2b", "source_id": m.Ad,
			"source_type": "ad", "body": "Spring sale", "headline": "Chat with us on WhatsApp",
			"media_type": "image", "ctwa_clid": "ARAkLkA8rmlFeiCk-" + id}
	}
	b, err := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "4930609859535", "phone_number_id": m.App},
			"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Lena"}, "wa_id": m.Lead}},
			"messages":          []any{msg},
		}}},
	}}})
	if err != nil {
		panic(err)
	}
	return b
}

// message records m and returns the conversation_id of the session it belongs to, read
// from the conversation or engagement event it produced.
func (e *otEnv) message(m otMsg) string {
	e.t.Helper()
	e.seq++
	id := "wamid.offthread." + strconv.Itoa(e.seq)
	e.recordBody(otWebhook(m, id))
	for _, ev := range e.events(m.App) {
		if ev.MessageID == id && (ev.Type == engine.TypeConversation || ev.Type == engine.TypeEngagement) {
			return ev.ConversationID
		}
	}
	e.t.Fatalf("message %s of %s at %s produced no conversation or engagement event", id, m.Lead, m.At)
	return ""
}

func (e *otEnv) recordBody(body []byte) {
	e.t.Helper()
	if err := e.rec.Record(context.Background(), body); err != nil {
		e.t.Fatalf("Record: %v", err)
	}
}

// events returns every event of app in time order.
func (e *otEnv) events(app string) []kv.Event {
	e.t.Helper()
	var evs []kv.Event
	err := e.rec.Events(engine.EventFilter{AppID: app, To: math.MaxInt64}, func(ev *kv.Event) bool {
		evs = append(evs, *ev)
		return true
	})
	if err != nil {
		e.t.Fatalf("Events: %v", err)
	}
	return evs
}

// ofType returns the events of app with type typ.
func (e *otEnv) ofType(app, typ string) []kv.Event {
	e.t.Helper()
	var out []kv.Event
	for _, ev := range e.events(app) {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// post validates body and records it; it fails the test on any error.
func (e *otEnv) post(body string) (engine.OffThreadRecord, bool) {
	e.t.Helper()
	rec, created, err := e.try(body)
	if err != nil {
		e.t.Fatalf("RecordOffThread(%s): %v", body, err)
	}
	return rec, created
}

func (e *otEnv) try(body string) (engine.OffThreadRecord, bool, error) {
	e.t.Helper()
	ev, err := engine.ParseOffThread([]byte(body), otNowRec)
	if err != nil {
		e.t.Fatalf("ParseOffThread(%s): %v", body, err)
	}
	return e.rec.RecordOffThread(context.Background(), ev)
}

// otEvent is an off-thread body for lead at time at, with extra JSON members.
func otEvent(lead string, at time.Time, extra string) string {
	b := `{"lead_phone":"+` + lead + `","action":"purchase","revenue":{"amount":49.9,"currency":"EUR"},` +
		`"event_time":"` + at.UTC().Format(time.RFC3339) + `"`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// attribution is what a test expects of a record's attribution.
type attribution struct {
	Attributed     bool
	AppID          string
	ConversationID string
	SourceType     string
	SourceID       string
}

func attributionOf(r engine.OffThreadRecord) attribution {
	return attribution{r.Attributed, r.AppID, r.ConversationID, r.SourceType, r.SourceID}
}

func unattributed(app string) attribution {
	return attribution{AppID: app, SourceType: engine.SourceUnattributed}
}

func (e *otEnv) wantAttribution(name string, r engine.OffThreadRecord, want attribution) {
	e.t.Helper()
	if got := attributionOf(r); got != want {
		e.t.Errorf("%s: attribution\n got %+v\nwant %+v", name, got, want)
	}
	// The stored record says the same.
	stored, ok, err := e.rec.OffThread(r.ID)
	if err != nil || !ok {
		e.t.Fatalf("%s: OffThread(%q) = %v, %v", name, r.ID, ok, err)
	}
	if got := attributionOf(stored); got != want {
		e.t.Errorf("%s: stored attribution\n got %+v\nwant %+v", name, got, want)
	}
}

func TestOffThreadSingleSession(t *testing.T) {
	e := newOTEnv(t)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	rec, created := e.post(otEvent(otLead, otT0.Add(time.Hour), `"object_id":"order-1"`))
	if !created || rec.ID == "" {
		t.Fatalf("created = %v, id %q; want a new event", created, rec.ID)
	}
	e.wantAttribution("one session", rec, attribution{true, otApp1, s, engine.SourceAd, otAdA})
	if rec.Lead != otLead || rec.Action != "purchase" || rec.Amount != 49.9 || rec.Currency != "EUR" ||
		rec.Time != otT0.Add(time.Hour).Unix() || rec.ObjectID != "order-1" || rec.LeadIsUser {
		t.Errorf("record = %+v", rec)
	}
}

func TestOffThreadLastTouchWins(t *testing.T) {
	e := newOTEnv(t)
	sA := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	sB := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0.Add(48 * time.Hour), Ad: otAdB})
	if sA == sB {
		t.Fatalf("two ad clicks two days apart share session %s", sA)
	}
	f := func(name string, at time.Time, want attribution) {
		t.Helper()
		rec, _ := e.post(otEvent(otLead, at, ""))
		e.wantAttribution(name, rec, want)
	}
	f("after both sessions", otT0.Add(72*time.Hour), attribution{true, otApp1, sB, engine.SourceAd, otAdB})
	// The later session started after this event: it cannot have caused it.
	f("between the sessions", otT0.Add(24*time.Hour), attribution{true, otApp1, sA, engine.SourceAd, otAdA})
	f("just before the second", otT0.Add(48*time.Hour-time.Second), attribution{true, otApp1, sA, engine.SourceAd, otAdA})
	f("at the second's start", otT0.Add(48*time.Hour), attribution{true, otApp1, sB, engine.SourceAd, otAdB})
	f("at the first's start", otT0, attribution{true, otApp1, sA, engine.SourceAd, otAdA})
	f("before any session", otT0.Add(-time.Second), unattributed(""))
}

func TestOffThreadReclickOpensNewAdSession(t *testing.T) {
	e := newOTEnv(t)
	sA := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	// A second message inside the window stays in the first session ...
	if s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0.Add(5 * time.Minute)}); s != sA {
		t.Fatalf("a message 5 minutes later opened session %s, want %s", s, sA)
	}
	// ... a new click on another ad opens a new one, although the first is still open.
	sB := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0.Add(10 * time.Minute), Ad: otAdB})
	if sB == sA {
		t.Fatalf("a re-click stayed in session %s", sA)
	}
	rec, _ := e.post(otEvent(otLead, otT0.Add(20*time.Minute), ""))
	e.wantAttribution("after the re-click", rec, attribution{true, otApp1, sB, engine.SourceAd, otAdB})
	rec, _ = e.post(otEvent(otLead, otT0.Add(7*time.Minute), ""))
	e.wantAttribution("before the re-click", rec, attribution{true, otApp1, sA, engine.SourceAd, otAdA})
}

func TestOffThreadAttributionWindow(t *testing.T) {
	e := newOTEnv(t)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	window := 672 * time.Hour
	f := func(name string, at time.Time, extra string, want attribution) {
		t.Helper()
		rec, _ := e.post(otEvent(otLead, at, extra))
		e.wantAttribution(name, rec, want)
	}
	f("at the window's end", otT0.Add(window), "", attribution{true, otApp1, s, engine.SourceAd, otAdA})
	f("a second past the window", otT0.Add(window+time.Second), "", unattributed(""))
	f("30 days later", otT0.Add(30*24*time.Hour), "", unattributed(""))
	// An unattributed event keeps the app_id it was given.
	f("30 days later, app given", otT0.Add(30*24*time.Hour), `"app_id":"`+otApp1+`"`, unattributed(otApp1))
}

// Near 1970 the window reaches before the epoch; the scan must still find the session.
// The earliest session a webhook can open is of 2009 (earlier times are refused); the
// attribution window reaches back past it without wrapping around.
func TestOffThreadAttributionNearTheFirstPlausibleTime(t *testing.T) {
	e := newOTEnv(t)
	start := time.Date(2009, 1, 1, 0, 1, 40, 0, time.UTC)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: start, Ad: otAdA})
	rec, _ := e.post(otEvent(otLead, start.Add(24*time.Hour), ""))
	e.wantAttribution("a day after a session of 2009", rec, attribution{true, otApp1, s, engine.SourceAd, otAdA})
}

func TestOffThreadUnattributedRows(t *testing.T) {
	e := newOTEnv(t)
	e.message(otMsg{App: otApp1, Lead: otLead2, At: otT0, Ad: otAdA}) // another lead
	rec, created := e.post(otEvent(otLead, otT0.Add(time.Hour), `"app_id":"`+otApp1+`"`))
	if !created {
		t.Fatal("not created")
	}
	e.wantAttribution("other lead's session only, app given", rec, unattributed(otApp1))
	rows := e.ofType(otApp1, "purchase")
	want := kv.Event{ID: rec.ID, AppID: otApp1, Type: "purchase", TypeValue: "49.9 EUR",
		Time: otT0.Add(time.Hour).Unix(), Lead: otLead, SourceType: engine.SourceUnattributed, Amount: 49.9, Currency: "EUR"}
	if len(rows) != 1 || rows[0] != want {
		t.Errorf("purchase rows = %+v, want [%+v]", rows, want)
	}
	// Without app_id there is no app to list it under, but it is stored.
	rec, _ = e.post(otEvent(otLead, otT0.Add(2*time.Hour), ""))
	e.wantAttribution("no session, no app", rec, unattributed(""))
	if n := len(e.ofType(otApp1, "purchase")); n != 1 {
		t.Errorf("purchase rows of %s = %d, want 1", otApp1, n)
	}
}

func TestOffThreadAppRestriction(t *testing.T) {
	e := newOTEnv(t)
	s1 := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	s2 := e.message(otMsg{App: otApp2, Lead: otLead, At: otT0.Add(time.Hour), Ad: otAdB})
	at := otT0.Add(2 * time.Hour)
	f := func(name, extra string, want attribution) {
		t.Helper()
		rec, _ := e.post(otEvent(otLead, at, extra))
		e.wantAttribution(name, rec, want)
	}
	f("no app_id: the latest session of any app", "", attribution{true, otApp2, s2, engine.SourceAd, otAdB})
	f("app_id of the older session", `"app_id":"`+otApp1+`"`, attribution{true, otApp1, s1, engine.SourceAd, otAdA})
	f("app_id of the newer session", `"app_id":"`+otApp2+`"`, attribution{true, otApp2, s2, engine.SourceAd, otAdB})
	f("app_id without a session", `"app_id":"309999999999999"`, unattributed("309999999999999"))
	// Each app lists its own.
	if n := len(e.ofType(otApp1, "purchase")); n != 1 {
		t.Errorf("purchase rows of app 1 = %d, want 1", n)
	}
	if n := len(e.ofType(otApp2, "purchase")); n != 2 {
		t.Errorf("purchase rows of app 2 = %d, want 2", n)
	}
	if n := len(e.ofType("309999999999999", "purchase")); n != 1 {
		t.Errorf("purchase rows of app 3 = %d, want 1", n)
	}
}

func TestOffThreadPreviousEventChain(t *testing.T) {
	e := newOTEnv(t)
	s1 := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	first, _ := e.post(otEvent(otLead, otT0.Add(time.Hour), `"object_id":"booking-1"`))
	want := attribution{true, otApp1, s1, engine.SourceAd, otAdA}
	e.wantAttribution("booking", first, want)

	// A newer session on another ad, and an appointment long after the window.
	s2 := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0.Add(5 * 24 * time.Hour), Ad: otAdB})
	if s2 == s1 {
		t.Fatal("the second click stayed in the first session")
	}
	plain, _ := e.post(otEvent(otLead, otT0.Add(6*24*time.Hour), ""))
	e.wantAttribution("without previous", plain, attribution{true, otApp1, s2, engine.SourceAd, otAdB})

	second, _ := e.post(otEvent(otLead, otT0.Add(6*24*time.Hour), `"previous_external_event_id":"`+first.ID+`"`))
	e.wantAttribution("chained", second, want)
	if second.PreviousID != first.ID {
		t.Errorf("previous id = %q, want %q", second.PreviousID, first.ID)
	}
	// A chain of chains, also past the attribution window and with an app_id of another app.
	third, _ := e.post(otEvent(otLead, otT0.Add(40*24*time.Hour),
		`"previous_external_event_id":"`+second.ID+`","app_id":"`+otApp2+`"`))
	e.wantAttribution("chained twice", third, want)

	// An unattributed previous event passes on that it is unattributed.
	lone, _ := e.post(otEvent(otLead2, otT0, ""))
	e.wantAttribution("lone", lone, unattributed(""))
	next, _ := e.post(otEvent(otLead, otT0.Add(2*time.Hour), `"previous_external_event_id":"`+lone.ID+`"`))
	e.wantAttribution("chained to the unattributed", next, unattributed(""))
}

func TestOffThreadUnknownPreviousStoresNothing(t *testing.T) {
	e := newOTEnv(t)
	e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	before := len(e.events(otApp1))
	body := otEvent(otLead, otT0.Add(time.Hour), `"previous_external_event_id":"nope","object_id":"order-9","app_id":"`+otApp1+`"`)
	rec, created, err := e.try(body)
	if !errors.Is(err, engine.ErrPreviousNotFound) {
		t.Fatalf("err = %v, want ErrPreviousNotFound", err)
	}
	if created || rec.ID != "" {
		t.Errorf("got %+v, created %v; want nothing", rec, created)
	}
	if after := len(e.events(otApp1)); after != before {
		t.Errorf("events %d → %d; an error stored something", before, after)
	}
	// The object_id was not taken either: the same id without the bad reference is new.
	rec, created = e.post(otEvent(otLead, otT0.Add(time.Hour), `"object_id":"order-9"`))
	if !created || !rec.Attributed {
		t.Errorf("after the error, object_id order-9: created %v, attributed %v; want true, true", created, rec.Attributed)
	}
}

func TestOffThreadObjectIDIsIdempotent(t *testing.T) {
	e := newOTEnv(t)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	first, created := e.post(otEvent(otLead, otT0.Add(time.Hour), `"object_id":"order-1234"`))
	if !created {
		t.Fatal("first post not created")
	}
	// The same object_id again, even with other values, returns the first event.
	again, created := e.post(`{"lead_phone":"+4915112345678","action":"refund","revenue":{"amount":1,"currency":"USD"},` +
		`"object_id":"order-1234","event_time":"` + otT0.Add(3*time.Hour).Format(time.RFC3339) + `"}`)
	if created {
		t.Error("repeated object_id: created = true")
	}
	if again.ID != first.ID || again.Action != "purchase" || again.Amount != 49.9 || again.Lead != otLead ||
		again.ConversationID != s {
		t.Errorf("repeated object_id returned %+v, want the first %+v", again, first)
	}
	if rows := e.ofType(otApp1, "purchase"); len(rows) != 1 || rows[0].ID != first.ID {
		t.Errorf("purchase rows = %+v, want only %s", rows, first.ID)
	}
	if n := len(e.ofType(otApp1, "refund")); n != 0 {
		t.Errorf("refund rows = %d, want 0", n)
	}
	// Without object_id, every post is a new event.
	a, _ := e.post(otEvent(otLead, otT0.Add(time.Hour), ""))
	b, _ := e.post(otEvent(otLead, otT0.Add(time.Hour), ""))
	if a.ID == b.ID || a.ID == first.ID {
		t.Errorf("posts without object_id share ids: %s %s %s", first.ID, a.ID, b.ID)
	}
	if n := len(e.ofType(otApp1, "purchase")); n != 3 {
		t.Errorf("purchase rows = %d, want 3", n)
	}
}

func TestOffThreadConcurrentPosts(t *testing.T) {
	e := newOTEnv(t)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	const distinct, shared = 20, 10
	type result struct {
		rec     engine.OffThreadRecord
		created bool
		err     error
	}
	results := make([]result, distinct+shared)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		object := "shared-order"
		if i < distinct {
			object = "order-" + strconv.Itoa(i)
		}
		ev, err := engine.ParseOffThread([]byte(otEvent(otLead, otT0.Add(time.Hour), `"object_id":"`+object+`"`)), otNowRec)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec, created, err := e.rec.RecordOffThread(context.Background(), ev)
			results[i] = result{rec, created, err}
		}()
	}
	close(start)
	wg.Wait()

	ids := map[string]bool{}
	sharedCreated, sharedID := 0, ""
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("post %d: %v", i, r.err)
		}
		if r.rec.ConversationID != s || !r.rec.Attributed || r.rec.SourceID != otAdA {
			t.Errorf("post %d attributed to %+v, want session %s", i, attributionOf(r.rec), s)
		}
		ids[r.rec.ID] = true
		switch {
		case i < distinct && !r.created:
			t.Errorf("post %d with its own object_id: created = false", i)
		case i >= distinct:
			if r.created {
				sharedCreated++
			}
			if sharedID == "" {
				sharedID = r.rec.ID
			} else if r.rec.ID != sharedID {
				t.Errorf("shared object_id answered ids %s and %s", sharedID, r.rec.ID)
			}
		}
	}
	if sharedCreated != 1 {
		t.Errorf("%d posts of the shared object_id were created, want 1", sharedCreated)
	}
	if len(ids) != distinct+1 {
		t.Errorf("%d distinct ids answered, want %d", len(ids), distinct+1)
	}
	rows := e.ofType(otApp1, "purchase")
	if len(rows) != distinct+1 {
		t.Fatalf("%d purchase rows stored, want %d", len(rows), distinct+1)
	}
	for _, ev := range rows {
		if !ids[ev.ID] || ev.ConversationID != s {
			t.Errorf("row %+v: unknown id or other session than %s", ev, s)
		}
	}
}

func TestOffThreadEventRowsJoinTheSession(t *testing.T) {
	e := newOTEnv(t)
	s := e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	at := otT0.Add(90 * time.Minute)
	rec, _ := e.post(`{"lead_phone":"+49 (0)170 123-4567","action":"sign_up","revenue":{"amount":0.5,"currency":"JPY"},` +
		`"event_time":"` + at.Format(time.RFC3339) + `","object_id":"signup-7","attributes":{"plan":"pro"}}`)
	want := kv.Event{ID: rec.ID, AppID: otApp1, Type: "sign_up", TypeID: "signup-7", TypeValue: "0.5 JPY",
		Time: at.Unix(), Lead: otLead, ConversationID: s, SourceType: engine.SourceAd, SourceID: otAdA, Amount: 0.5, Currency: "JPY"}
	rows := e.ofType(otApp1, "sign_up")
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("sign_up rows = %+v\nwant [%+v]", rows, want)
	}
	// It sits among the session's events in time order: conversation, then sign_up.
	evs := e.events(otApp1)
	if len(evs) != 2 || evs[0].Type != engine.TypeConversation || evs[1].ID != rec.ID {
		t.Errorf("events = %+v, want the conversation then the sign_up", evs)
	}
	stored, ok, err := e.rec.OffThread(rec.ID)
	if err != nil || !ok || len(stored.Attributes) != 1 || stored.Attributes[0] != (engine.Attribute{Name: "plan", Type: "STRING", Value: "pro"}) {
		t.Errorf("stored = %+v, %v, %v", stored, ok, err)
	}
	// A lead known only by phone does not match an event by BSUID, and vice versa.
	other, _ := e.post(`{"lead_user_id":"` + otLead + `x","action":"sign_up","event_time":"` + at.Format(time.RFC3339) + `"}`)
	e.wantAttribution("BSUID of no session", other, unattributed(""))
}

func TestOffThreadBSUIDLead(t *testing.T) {
	e := newOTEnv(t)
	e.recordBody(fixtures.Body(t, "cloud/bsuid_only_lead"))
	const bsuid, at = "DE.1502576394655843", int64(1773653167) // user_id and timestamp of the fixture
	conv := e.ofType(otApp1, engine.TypeConversation)
	if len(conv) != 1 || conv[0].Lead != bsuid || !conv[0].LeadIsBSUID {
		t.Fatalf("conversation events of the fixture = %+v", conv)
	}
	when := time.Unix(at+3600, 0).UTC().Format(time.RFC3339)
	rec, created := e.post(`{"lead_user_id":"` + bsuid + `","action":"purchase","revenue":{"amount":12,"currency":"EUR"},"event_time":"` + when + `"}`)
	if !created || !rec.LeadIsUser || rec.Lead != bsuid {
		t.Fatalf("record = %+v, created %v", rec, created)
	}
	e.wantAttribution("BSUID lead", rec, attribution{true, otApp1, conv[0].ConversationID, engine.SourceOrganic, ""})
	rows := e.ofType(otApp1, "purchase")
	want := kv.Event{ID: rec.ID, AppID: otApp1, Type: "purchase", TypeValue: "12 EUR", Time: at + 3600,
		Lead: bsuid, LeadIsBSUID: true, ConversationID: conv[0].ConversationID, SourceType: engine.SourceOrganic,
		Amount: 12, Currency: "EUR"}
	if len(rows) != 1 || rows[0] != want {
		t.Errorf("purchase rows = %+v\nwant [%+v]", rows, want)
	}
	// Before the fixture's message there was no session.
	early := time.Unix(at-1, 0).UTC().Format(time.RFC3339)
	rec, _ = e.post(`{"lead_user_id":"` + bsuid + `","action":"purchase","event_time":"` + early + `"}`)
	e.wantAttribution("BSUID lead before its session", rec, unattributed(""))
}

// Apps lists the apps with traffic; the off-thread events that named no app and found no
// session are filed under "", which is no app.
func TestAppsLeaveOutTheUnnamedApp(t *testing.T) {
	e := newOTEnv(t)
	e.post(otEvent(otLead2, otT0, "")) // no session yet, no app_id: filed under ""
	e.message(otMsg{App: otApp1, Lead: otLead, At: otT0, Ad: otAdA})
	apps, err := e.rec.Apps()
	if err != nil || len(apps) != 1 || apps[0] != otApp1 {
		t.Errorf("Apps() = %q, %v; want [%s]", apps, err, otApp1)
	}
}
