package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Helpers shared by the recorder tests: a recorder over a real store in a temporary
// directory, and builders of Cloud API webhooks shaped like testdata/webhooks/cloud/*.json.

// testWindow is the session window of the recorder tests (the -session-window default).
const testWindow = 24 * time.Hour

// testAppID is the app of On-Premises payloads in the tests (-app-id).
const testAppID = "onprem"

func testConfig() Config {
	return Config{DefaultAppID: testAppID, SessionWindow: testWindow, AttributionWindow: 672 * time.Hour,
		Log: slog.New(slog.DiscardHandler)}
}

// testEnv is a recorder over a real store in a temporary directory.
type testEnv struct {
	t     testing.TB
	dir   string
	store *storage.Store
	log   *storage.FileLog
	rec   *Recorder
	opts  storage.Options // of the store; the logger is set by open
	capi  ConversionMap   // Config.Conversions of the recorder
}

// newTestEnv opens a fresh store and a recorder on it; both are closed when the test ends.
func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) open() {
	e.t.Helper()
	opts := e.opts
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := storage.Open(e.dir, opts)
	if err != nil {
		e.t.Fatalf("storage.Open: %v", err)
	}
	cfg := testConfig()
	cfg.Conversions = e.capi
	l, err := storage.OpenLog(s)
	if err != nil {
		s.Close()
		e.t.Fatalf("storage.OpenLog: %v", err)
	}
	r, err := NewRecorder(l, s, cfg)
	if err != nil {
		s.Close()
		e.t.Fatalf("NewRecorder: %v", err)
	}
	e.store, e.log, e.rec = s, l, r
}

func (e *testEnv) close() {
	if e.store == nil {
		return
	}
	if err := e.store.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	e.store, e.log, e.rec = nil, nil, nil
}

// reopen closes the store and opens it again with a new recorder, as a restart does.
func (e *testEnv) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

// record records body and waits for the views to hold it, as a reader does; it fails
// the test if Record returns an error.
func (e *testEnv) record(body []byte) {
	e.t.Helper()
	if err := e.rec.Record(context.Background(), body); err != nil {
		e.t.Fatalf("Record: %v", err)
	}
	e.sync()
}

// sync waits for the views to hold everything logged so far, as a reader does.
func (e *testEnv) sync() {
	e.t.Helper()
	if err := e.rec.Sync(context.Background()); err != nil {
		e.t.Fatalf("Sync: %v", err)
	}
}

// events returns every event of app, in time order.
func (e *testEnv) events(app string) []kv.Event {
	e.t.Helper()
	return listEvents(e.t, e.rec, EventFilter{AppID: app})
}

func listEvents(t testing.TB, r *Recorder, f EventFilter) []kv.Event {
	t.Helper()
	if f.To == 0 {
		f.To = math.MaxInt64
	}
	var evs []kv.Event
	if err := r.Events(f, func(ev *kv.Event) bool {
		evs = append(evs, *ev)
		return true
	}); err != nil {
		t.Fatalf("Events: %v", err)
	}
	return evs
}

// ofType returns the events of evs with type typ.
func ofType(evs []kv.Event, typ string) []kv.Event {
	var out []kv.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// session returns the session id of app; it fails the test when there is none.
func (e *testEnv) session(app, id string) kv.Session {
	e.t.Helper()
	s, ok, err := e.rec.Session(app, id)
	if err != nil || !ok {
		e.t.Fatalf("Session(%q, %q) = %v, %v", app, id, ok, err)
	}
	return s
}

// sessions returns every session of app.
func (e *testEnv) sessions(app string) []kv.Session {
	e.t.Helper()
	var out []kv.Session
	if err := e.rec.Sessions(app, func(s *kv.Session) bool {
		out = append(out, *s)
		return true
	}); err != nil {
		e.t.Fatalf("Sessions: %v", err)
	}
	return out
}

// keyCount counts every key in the store.
func (e *testEnv) keyCount() int {
	e.t.Helper()
	n := 0
	e.sync()
	if err := e.store.Scan(nil, false, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	}); err != nil {
		e.t.Fatalf("Scan: %v", err)
	}
	return n
}

func (e *testEnv) addKeyword(app, keyword string) Group {
	e.t.Helper()
	g, err := e.rec.AddGroup(context.Background(), Group{AppID: app, Type: TypeKeyword, TypeValue: keyword})
	if err != nil {
		e.t.Fatalf("AddGroup(keyword %q): %v", keyword, err)
	}
	return g
}

func (e *testEnv) addSource(app, name, phrase string) Source {
	e.t.Helper()
	s, err := e.rec.AddSource(context.Background(), Source{AppID: app, Name: name, Phrase: phrase})
	if err != nil {
		e.t.Fatalf("AddSource(%q): %v", phrase, err)
	}
	return s
}

// cloudMsg is one lead message of a Cloud API webhook. Its content is text unless
// Button, ButtonReply or ListReply is set.
type cloudMsg struct {
	App    string // metadata.phone_number_id
	ID     string
	From   string // phone digits; empty for a BSUID-only lead
	UserID string // BSUID, sent as contacts[].user_id
	Time   int64
	Text   string

	Button      *[2]string // template quick reply: payload, text
	ButtonReply *[2]string // interactive button reply: id, title
	ListReply   *[2]string // interactive list reply: id, title
	Referral    *webhook.Referral
}

type jsonObj = map[string]any

// cloudWebhook returns a Cloud API webhook carrying msgs: one change per run of
// consecutive messages of the same app, with one contact per message.
func cloudWebhook(msgs ...cloudMsg) []byte {
	var changes []any
	for i := 0; i < len(msgs); {
		j := i
		var contacts, messages []any
		for ; j < len(msgs) && msgs[j].App == msgs[i].App; j++ {
			contacts = append(contacts, msgs[j].contact())
			messages = append(messages, msgs[j].message())
		}
		changes = append(changes, jsonObj{"field": "messages", "value": jsonObj{
			"messaging_product": "whatsapp",
			"metadata":          jsonObj{"display_phone_number": "4930609859535", "phone_number_id": msgs[i].App},
			"contacts":          contacts,
			"messages":          messages,
		}})
		i = j
	}
	return mustJSON(jsonObj{"object": "whatsapp_business_account",
		"entry": []any{jsonObj{"id": "102290129340398", "changes": changes}}})
}

func (m *cloudMsg) contact() jsonObj {
	c := jsonObj{"profile": jsonObj{"name": "Lead " + m.From + m.UserID}}
	if m.From != "" {
		c["wa_id"] = m.From
	}
	if m.UserID != "" {
		c["user_id"] = m.UserID
	}
	return c
}

func (m *cloudMsg) message() jsonObj {
	o := jsonObj{"id": m.ID, "timestamp": strconv.FormatInt(m.Time, 10)}
	if m.From != "" {
		o["from"] = m.From
	}
	reply := func(kind string, r *[2]string) {
		o["type"] = "interactive"
		o["context"] = jsonObj{"from": "4930609859535", "id": "wamid.context." + m.ID}
		o["interactive"] = jsonObj{"type": kind, kind: jsonObj{"id": r[0], "title": r[1]}}
	}
	switch {
	case m.Button != nil:
		o["type"] = "button"
		o["context"] = jsonObj{"from": "4930609859535", "id": "wamid.context." + m.ID}
		o["button"] = jsonObj{"payload": m.Button[0], "text": m.Button[1]}
	case m.ButtonReply != nil:
		reply("button_reply", m.ButtonReply)
	case m.ListReply != nil:
		reply("list_reply", m.ListReply)
	default:
		o["type"] = "text"
		o["text"] = jsonObj{"body": m.Text}
	}
	if r := m.Referral; r != nil {
		ref := jsonObj{"source_url": r.SourceURL, "source_id": r.SourceID, "source_type": r.SourceType,
			"body": r.Body, "headline": r.Headline, "media_type": r.MediaType}
		if r.CtwaClid != "" {
			ref["ctwa_clid"] = r.CtwaClid
		}
		o["referral"] = ref
	}
	return o
}

// cloudStatus is one status of a business message in a Cloud API webhook.
type cloudStatus struct {
	App, ID, Status, Recipient string
	Time                       int64
	Tag                        string // biz_opaque_callback_data; empty for none
}

// cloudStatusWebhook returns a Cloud API webhook carrying statuses, all of app sts[0].App.
func cloudStatusWebhook(sts ...cloudStatus) []byte {
	var statuses []any
	for _, s := range sts {
		o := jsonObj{"id": s.ID, "status": s.Status, "timestamp": strconv.FormatInt(s.Time, 10),
			"recipient_id": s.Recipient,
			"conversation": jsonObj{"id": "a75d17ad06104c51166f948319b03c6a",
				"expiration_timestamp": strconv.FormatInt(s.Time+86400, 10), "origin": jsonObj{"type": "marketing"}},
			"pricing": jsonObj{"billable": true, "pricing_model": "PMP", "category": "marketing", "type": "regular"}}
		if s.Tag != "" {
			o["biz_opaque_callback_data"] = s.Tag
		}
		statuses = append(statuses, o)
	}
	return mustJSON(jsonObj{"object": "whatsapp_business_account", "entry": []any{jsonObj{
		"id": "102290129340398", "changes": []any{jsonObj{"field": "messages", "value": jsonObj{
			"messaging_product": "whatsapp",
			"metadata":          jsonObj{"display_phone_number": "4930609859535", "phone_number_id": sts[0].App},
			"statuses":          statuses,
		}}},
	}}})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// testDefinitions builds a Definitions snapshot without a store, for tests and benchmarks
// of Classify and for definitions the API cannot create yet (converted groups).
func testDefinitions(tb testing.TB, groups []Group, sources []Source, adCampaign map[string]string) *Definitions {
	tb.Helper()
	d, err := newDefinitions(groups, sources, adCampaign)
	if err != nil {
		tb.Fatalf("newDefinitions: %v", err)
	}
	return d
}
