package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// Handler tests over fakes of each route group's interface: the handler parses the
// request, calls the engine and encodes what it answered. The engine's rules have tests
// of their own in engine.

var errStoreDown = errors.New("disk on fire")

// fakeInsights answers the insights routes from fixed totals; the methods a test does
// not set panic through the nil interface.
type fakeInsights struct {
	Insights
	cat   *engine.Catalog
	ads   map[string]engine.Ad
	daily map[int32]*engine.Totals
	err   error
	asked []string // the ads DailyTotals was asked for
}

func (f *fakeInsights) Catalog() *engine.Catalog         { return f.cat }
func (f *fakeInsights) Definitions() *engine.Definitions { return &engine.Definitions{} }
func (f *fakeInsights) DaysOf(from, to int64) engine.Days {
	return engine.Days{From: int32(from / 86400), To: int32(to / 86400)}
}

func (f *fakeInsights) FindAd(app, id string) (engine.Ad, bool, error) {
	ad, ok := f.ads[id]
	return ad, ok && ad.AppID == app, f.err
}

func (f *fakeInsights) DailyTotals(app string, ads []string, days engine.Days) (map[int32]*engine.Totals, error) {
	f.asked = append(f.asked, app+":"+strings.Join(ads, ","))
	return f.daily, f.err
}

func dataRoutes(s dataStores) *API {
	a := NewAPI("", nil)
	registerData(a, time.UTC, map[string]dataStores{"default": s})
	return a
}

const testAppPath = "/v1/clients/default/apps/app1"

// An ad's insights: one insight per day the engine has totals for, in day order, each
// computed by engine.NewInsight in the ad account's currency and tagged with the ad.
func TestAdInsightsEncodesTheEnginesDays(t *testing.T) {
	cat := &engine.Catalog{AdAccounts: map[string]engine.AdAccount{"act_1": {ID: "act_1", Currency: "EUR"}}}
	day2, day1 := engine.NewTotals(), engine.NewTotals()
	day2.Clicks, day2.Impressions, day2.Spend = 10, 1000, 5
	day1.Clicks, day1.Impressions, day1.Spend = 4, 400, 1
	f := &fakeInsights{cat: cat, ads: map[string]engine.Ad{"ad9": {ID: "ad9", AppID: "app1", AdAccountID: "act_1"}},
		daily: map[int32]*engine.Totals{20529: day2, 20528: day1}}
	a := dataRoutes(dataStores{insights: f})

	code, body := serve(a, "GET", testAppPath+"/ads/ad9/insights", "")
	var got []engine.Insight
	if err := json.Unmarshal(body, &got); err != nil || code != 200 {
		t.Fatalf("answer %d %s (%v)", code, body, err)
	}
	// Each day's date is the start of that day in the zone (UTC here), with its offset.
	want := []engine.Insight{engine.NewInsight(day1, "EUR", "2026-03-16T00:00:00+00:00", &engine.Definitions{}),
		engine.NewInsight(day2, "EUR", "2026-03-17T00:00:00+00:00", &engine.Definitions{})}
	want[0].AdID, want[1].AdID = "ad9", "ad9"
	if !reflect.DeepEqual(got, want) || got[0].CPC != 0.25 || got[1].CTR != 1 {
		t.Errorf("insights = %+v\nwant %+v", got, want)
	}
	if len(f.asked) != 1 || f.asked[0] != "app1:ad9" {
		t.Errorf("DailyTotals asked for %v, want the ad of app1", f.asked)
	}

	for _, tc := range []struct {
		name, uri  string
		err        error
		code       int
		errCode    string
		errField   string
		engineCall bool
	}{
		{"unknown ad", testAppPath + "/ads/nope/insights", nil, 404, "not_found", "ad_id", false},
		{"ad of another app", "/v1/clients/default/apps/app2/ads/ad9/insights", nil, 404, "not_found", "ad_id", false},
		{"bad date", testAppPath + "/ads/ad9/insights?date_from=yesterday", nil, 400, "invalid_parameter", "date_from", false},
		{"unknown client", "/v1/clients/other/apps/app1/ads/ad9/insights", nil, 404, "unknown_client", "client_id", false},
		{"store down", testAppPath + "/ads/ad9/insights", errStoreDown, 503, "store_unavailable", "", false},
	} {
		f.err, f.asked = tc.err, nil
		code, body := serve(a, "GET", tc.uri, "")
		if e := decodeError(t, body); code != tc.code || e.Code != tc.errCode || e.Field != tc.errField || len(f.asked) != 0 {
			t.Errorf("%s: answer %d %s, DailyTotals asked %v; want %d %s naming %q", tc.name, code, body, f.asked, tc.code, tc.errCode, tc.errField)
		}
	}
}

type apiError struct{ Code, Message, Field string }

func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var e struct{ Error apiError }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return e.Error
}

// fakeOffThread answers RecordOffThread with a fixed record or error.
type fakeOffThread struct {
	rec     engine.OffThreadRecord
	created bool
	err     error
	got     []engine.OffThread
}

func (f *fakeOffThread) RecordOffThread(_ context.Context, e engine.OffThread) (engine.OffThreadRecord, bool, error) {
	f.got = append(f.got, e)
	return f.rec, f.created, f.err
}

// The off-thread route maps what the engine decided to the answer of SPEC §5: 201 for a
// new event, 200 for one recorded before, 404 for an unknown previous event, 503 for a
// store failure; a body the engine cannot parse is a 400 naming the field, and never
// reaches the recorder.
func TestOffThreadRouteMapsTheEnginesAnswer(t *testing.T) {
	f := &fakeOffThread{}
	a := NewAPI("", nil)
	RegisterOffThreadRoutes(a, "K", map[string]OffThreadRecorder{"default": f})
	const path = "/clients/default/external-events"
	valid := `{"api_key":"K","lead_phone":"+491701234567","action":"purchase","revenue":{"amount":49.9,"currency":"EUR"}}`

	f.rec = engine.OffThreadRecord{ID: "ot1", Attributed: true, ConversationID: "s1", AppID: "app1", SourceType: "ad", SourceID: "120"}
	f.created = true
	code, body := serve(a, "POST", path, valid)
	want := `{"external_event_id":"ot1","attributed":true,"conversation_id":"s1","app_id":"app1","source":{"type":"ad","id":"120"}}` + "\n"
	if code != 201 || string(body) != want {
		t.Errorf("new event: %d %s, want 201 %s", code, body, want)
	}
	if len(f.got) != 1 || f.got[0].Lead != "491701234567" || f.got[0].Amount != 49.9 || f.got[0].Currency != "EUR" {
		t.Errorf("the recorder got %+v", f.got)
	}
	f.created = false
	if code, _ := serve(a, "POST", path, valid); code != 200 {
		t.Errorf("an object_id recorded before: %d, want 200", code)
	}

	for _, tc := range []struct {
		name, body   string
		err          error
		code         int
		errCode, fld string
		reaches      bool
	}{
		{"unknown previous event", strings.Replace(valid, `"action"`, `"previous_external_event_id":"old","action"`, 1),
			engine.ErrPreviousNotFound, 404, "not_found", "previous_external_event_id", true},
		{"store failure", valid, errStoreDown, 503, "store_unavailable", "", true},
		{"invalid field", strings.Replace(valid, `"EUR"`, `"EURO"`, 1), nil, 400, "invalid_field", "revenue.currency", false},
		{"wrong key", strings.Replace(valid, `"K"`, `"X"`, 1), nil, 401, "unauthorized", "api_key", false},
	} {
		f.got, f.err = nil, tc.err
		code, body := serve(a, "POST", path, tc.body)
		if e := decodeError(t, body); code != tc.code || e.Code != tc.errCode || e.Field != tc.fld || (len(f.got) == 1) != tc.reaches {
			t.Errorf("%s: %d %s (recorder called %d times); want %d %s naming %q", tc.name, code, body, len(f.got), tc.code, tc.errCode, tc.fld)
		}
	}
	if code, body := serve(a, "POST", "/clients/other/external-events", valid); code != 404 || decodeError(t, body).Code != "unknown_client" {
		t.Errorf("another client: %d %s", code, body)
	}
}

// fakeEvents answers the events routes from fixed rows.
type fakeEvents struct {
	EventReader
	rows  []engine.EventRow
	total int
	f     engine.EventFilter
}

func (f *fakeEvents) EventPage(ef engine.EventFilter, offset, limit int) ([]engine.EventRow, int, error) {
	f.f = ef
	return f.rows[min(offset, len(f.rows)):min(offset+limit, len(f.rows))], f.total, nil
}

// The events list passes the filters it parsed to the engine and encodes its rows, with
// times in the configured zone.
func TestEventsListEncodesTheEnginesRows(t *testing.T) {
	f := &fakeEvents{rows: []engine.EventRow{{ID: "e1", AppID: "app1", AdID: "120", Phone: "4917", Type: "keyword",
		TypeID: "3", TypeValue: "price", Time: 1773652447, ConversationID: "s1", ExpireTime: 1773652447 + 86400,
		SourceType: "ad", SourceID: "120"}}, total: 7}
	a := NewAPI("", nil)
	registerData(a, time.FixedZone("CET", 3600), map[string]dataStores{"default": {events: f}})

	code, body := serve(a, "GET", testAppPath+"/events?date_from=2026-03-16&date_to=2026-03-16&event_type_id=keyword%233&offset=0&limit=1", "")
	want := `{"data":[{"id":"e1","app_id":"app1","ad_id":"120","campaign_id":"","phone":"4917","type":"keyword","type_id":"3",` +
		`"type_value":"price","date":"2026-03-16T10:14:07+01:00","conversation_id":"s1",` +
		`"conversation_expire_time":"2026-03-17T10:14:07+01:00","source_type":"ad","source_id":"120"}],` +
		`"total_count":7,"offset":0,"limit":1}` + "\n"
	if code != 200 || string(body) != want {
		t.Errorf("answer %d %s\nwant %s", code, body, want)
	}
	day := time.Date(2026, 3, 16, 0, 0, 0, 0, time.FixedZone("CET", 3600)).Unix()
	if want := (engine.EventFilter{AppID: "app1", From: day, To: day + 86400, Type: "keyword", TypeID: "3"}); f.f != want {
		t.Errorf("filter = %+v, want %+v", f.f, want)
	}
	if code, body := serve(a, "GET", testAppPath+"/events", ""); code != 400 || decodeError(t, body).Field != "date_from" {
		t.Errorf("without dates: %d %s, want 400 naming date_from", code, body)
	}
}

// fakeDefiner refuses or accepts definition changes as told.
type fakeDefiner struct {
	Definer
	err error
}

func (f *fakeDefiner) AddGroup(_ context.Context, g engine.Group) (engine.Group, error) {
	g.ID, g.Status = "12", engine.StatusActive
	return g, f.err
}

func (f *fakeDefiner) SetGroupStatus(context.Context, string, string, string) (engine.Group, error) {
	return engine.Group{}, f.err
}

// A definition change the engine refuses is a 400 naming the field, an unknown group a
// 404; a stored one is answered with its id.
func TestDefinitionRoutesMapTheEnginesErrors(t *testing.T) {
	f := &fakeDefiner{}
	a := dataRoutes(dataStores{definitions: f})
	code, body := serve(a, "POST", testAppPath+"/event_groups", `{"type":"keyword","type_value":"price"}`)
	want := `{"id":"12","app_id":"app1","ad_id":"","campaign_id":"","type":"keyword","type_id":"","type_value":"price","status":"active","events_count":0}` + "\n"
	if code != 201 || string(body) != want {
		t.Errorf("added: %d %s\nwant 201 %s", code, body, want)
	}
	f.err = &engine.FieldError{Field: "type_value", Message: "is required"}
	if code, body := serve(a, "POST", testAppPath+"/event_groups", `{"type":"keyword"}`); code != 400 ||
		decodeError(t, body) != (apiError{"invalid_field", "type_value: is required", "type_value"}) {
		t.Errorf("refused: %d %s", code, body)
	}
	f.err = engine.ErrNotFound
	if code, body := serve(a, "PATCH", testAppPath+"/event_groups/99", `{"status":"archived"}`); code != 404 || decodeError(t, body).Field != "id" {
		t.Errorf("unknown group: %d %s", code, body)
	}
	if code, body := serve(a, "POST", testAppPath+"/event_groups", `{"type":`); code != 400 || decodeError(t, body).Field != "body" {
		t.Errorf("broken JSON: %d %s", code, body)
	}
}

type fakeSync struct{ n int }

func (f fakeSync) Status(app string) []engine.SpendSyncStatus {
	return []engine.SpendSyncStatus{{AdAccountID: "act_1", AppID: app, Rows: f.n}}
}
func (f fakeSync) RunNow(string) int { return f.n }

// Without a spend sync, or with none for the app, "sync now" is a 404; with one, 202 and
// the sync state.
func TestSpendSyncRoutes(t *testing.T) {
	for _, tc := range []struct {
		sync SpendSyncer
		code int
		body string
	}{
		{nil, 404, ""},
		{fakeSync{0}, 404, ""},
		{fakeSync{3}, 202, `{"data":[{"ad_account_id":"act_1","app_id":"app1","rows":3,"stopped":false}]}` + "\n"},
	} {
		code, body := serve(dataRoutes(dataStores{sync: tc.sync}), "POST", testAppPath+"/ads/sync", "")
		if code != tc.code || (tc.body != "" && string(body) != tc.body) || (tc.code == 404 && decodeError(t, body).Code != "no_spend_sync") {
			t.Errorf("sync %v: %d %s, want %d %s", tc.sync, code, body, tc.code, tc.body)
		}
	}
	if code, body := serve(dataRoutes(dataStores{}), "GET", testAppPath+"/ads/sync", ""); code != 200 || string(body) != `{"data":[]}`+"\n" {
		t.Errorf("state without a sync: %d %s", code, body)
	}
}
