package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// A fleet view serves several clients on one API: each request reads and changes the data
// of the client in its path, GET /v1/clients lists them, and any other client is
// refused with their list.
func TestEachClientIsServedFromItsOwnData(t *testing.T) {
	fa := &fakeEvents{rows: []engine.EventRow{{ID: "ev-of-a", AppID: "app1"}}, total: 1}
	fb := &fakeEvents{rows: []engine.EventRow{{ID: "ev-of-b", AppID: "app1"}, {ID: "ev2-of-b", AppID: "app1"}}, total: 2}
	a := NewAPI("", nil)
	registerData(a, time.UTC, map[string]dataStores{
		"a": {events: fa, sync: fakeSync{1}},
		"b": {events: fb, sync: fakeSync{2}},
	})
	const q = "/events?date_from=2026-03-16&date_to=2026-03-16"
	for _, tc := range []struct {
		client, want string
		asked        *fakeEvents
	}{{"a", `"total_count":1`, fa}, {"b", `"total_count":2`, fb}} {
		fa.f, fb.f = engine.EventFilter{}, engine.EventFilter{}
		code, body := serve(a, "GET", "/v1/clients/"+tc.client+"/apps/app1"+q, "")
		if code != 200 || !strings.Contains(string(body), `"id":"ev-of-`+tc.client+`"`) || !strings.Contains(string(body), tc.want) {
			t.Errorf("client %s's events: %d %s, want its own rows (%s)", tc.client, code, body, tc.want)
		}
		if tc.asked.f.AppID != "app1" || fa.f.AppID+fb.f.AppID != "app1" {
			t.Errorf("client %s's request reached a: %+v, b: %+v; want only its own store", tc.client, fa.f, fb.f)
		}
	}
	// Another route group, the spend sync, follows the client too.
	if code, body := serve(a, "POST", "/v1/clients/b/apps/app1/ads/sync", ""); code != 202 || !strings.Contains(string(body), `"rows":2`) {
		t.Errorf("client b's spend sync: %d %s, want b's sync (2 rows)", code, body)
	}
	if code, body := serve(a, "GET", "/v1/clients", ""); code != 200 ||
		string(body) != `{"data":[{"id":"a"},{"id":"b"}],"total_count":2,"offset":0,"limit":2}`+"\n" {
		t.Errorf("GET /v1/clients: %d %s, want a and b", code, body)
	}
	code, body := serve(a, "GET", "/v1/clients/c/apps/app1"+q, "")
	want := apiError{"unknown_client", `client "c" is not recorded here; this sidecar records clients "a", "b"`, "client_id"}
	if e := decodeError(t, body); code != 404 || e != want {
		t.Errorf("an unknown client: %d %s, want 404 %+v", code, body, want)
	}
}

// Off-thread events go to the recorder of the client in the path.
func TestOffThreadEventsGoToTheirClient(t *testing.T) {
	fa, fb := &fakeOffThread{created: true}, &fakeOffThread{created: true}
	a := NewAPI("", nil)
	RegisterOffThreadRoutes(a, "K", map[string]OffThreadRecorder{"a": fa, "b": fb})
	const body = `{"api_key":"K","lead_phone":"+491701234567","action":"purchase"}`
	if code, got := serve(a, "POST", "/v1/clients/b/external-events", body); code != 201 || len(fa.got) != 0 || len(fb.got) != 1 {
		t.Errorf("an event of client b: %d %s; recorded by a %d, by b %d times, want by b once", code, got, len(fa.got), len(fb.got))
	}
	code, got := serve(a, "POST", "/clients/c/external-events", body)
	want := apiError{"unknown_client", `client "c" is not recorded here; this sidecar records clients "a", "b"`, "client_id"}
	if e := decodeError(t, got); code != 404 || e != want || len(fa.got)+len(fb.got) != 1 {
		t.Errorf("an unknown client: %d %s, want 404 %+v and nothing recorded", code, got, want)
	}
}

// Every route of a client's data refuses a client that is not recorded here, naming
// client_id and the one client that is (the router's own table: later routes are covered).
func TestEveryClientRouteRefusesAnUnknownClient(t *testing.T) {
	a := fullAPI(t, "", "")
	checked := 0
	for _, r := range a.routes {
		if !strings.Contains(r.pattern, "{client_id}") {
			continue
		}
		checked++
		uri := strings.Replace(fill(r.pattern), "/clients/default/", "/clients/nobody/", 1)
		want := apiError{"unknown_client", `client "nobody" is not recorded here; this sidecar records client "default"`, "client_id"}
		if code, body := serve(a, r.method, uri, `{}`); code != fasthttp.StatusNotFound || decodeError(t, body) != want {
			t.Errorf("%s %s: %d %s, want 404 %+v", r.method, uri, code, body, want)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d routes take a {client_id}: the router table is not what sidecar/recording.go builds", checked)
	}
}
