package proxy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// FuzzQueryParams feeds the query validation of the API (limit, offset, date_from,
// date_to, event_type_id) arbitrary query strings: it never panics; what it accepts is in
// range (limit 1–100, offset ≥ 0, date_from before date_to); what it refuses is a
// paramError naming one of the parameters.
//
//	go test -run='^$' -fuzz='^FuzzQueryParams$' -fuzztime=10m ./proxy
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{
		"date_from=2026-03-16&date_to=2026-03-18&limit=20&offset=0",
		"date_from=2026-03-16T23:00:00Z&date_to=2026-03-17T00:00:00%2B01:00",
		"date_from=2026-03-18&date_to=2026-03-16",
		"date_from=2026-02-30&limit=0&offset=-1",
		"limit=101&offset=1073741825",
		"limit=%00&date_from=%ff",
		"event_type_id=keyword%231&event_type=keyword",
		"event_type_id=keyword%23",
		"date_from=0000-01-01&date_to=9999-12-31",
		"date_from=2026-03-16T00:00:00.999999999Z&date_to=2026-03-16T00:00:00.999999999Z",
		"limit=99999999999999999999999",
		"&&==&date_from&date_to=",
	} {
		f.Add(s)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/x?" + raw)
		q := newQuery(&ctx, berlin)
		from, to := q.dateRange(false)
		limit, offset := q.intRange("limit", 20, 1, 100), q.intRange("offset", 0, 0, 1<<30)
		if v := q.str("event_type_id"); v != "" && q.err == nil {
			if typ, id, err := engine.ParseEventTypeID(v); err != nil {
				q.err = badParam("event_type_id", "%s", err.Error())
			} else if !engine.IsEventType(typ) || id == "" || typ+"#"+id != v {
				t.Fatalf("event_type_id %q parsed to %q, %q", v, typ, id)
			}
		}
		if q.err != nil {
			var pe *paramError
			if !errors.As(q.err, &pe) || !strings.Contains("date_from date_to limit offset event_type_id", pe.field) || pe.field == "" {
				t.Fatalf("error %#v does not name a parameter", q.err)
			}
			return
		}
		if from >= to || limit < 1 || limit > 100 || offset < 0 || offset > 1<<30 {
			t.Fatalf("accepted %q as [%d, %d) limit %d offset %d", raw, from, to, limit, offset)
		}
	})
}

// FuzzHeaderNames checks the header-name rule of SPEC §3.3 on arbitrary names: the
// forwarded spelling is stable (normalizing twice changes nothing), the sidecar's own
// lookups find a header under its original and its forwarded spelling, and an
// -upstream-header value is accepted only when it cannot break the request.
//
//	go test -run='^$' -fuzz='^FuzzHeaderNames$' -fuzztime=10m ./proxy
func FuzzHeaderNames(f *testing.F) {
	for _, s := range []string{"Custom_Header_1", "X-Hub-Signature-256", "x_hub_signature_256", "Content-Type",
		"Proxy-Authorization", "Transfer-Encoding", "Host", "YCloud-Signature", "ÄÖÜ_x", "a b", "x\r\ny", ":", ""} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		once := AppendHeaderName(nil, []byte(name))
		if twice := AppendHeaderName(nil, once); !bytes.Equal(once, twice) {
			t.Fatalf("normalizing %q gives %q, then %q", name, once, twice)
		}
		if !sameHeaderName(once, name) || !sameHeaderName([]byte(name), string(once)) {
			t.Fatalf("lookups do not match %q with its forwarded spelling %q", name, once)
		}
		h, err := ParseHeader(name + ":" + value)
		if err != nil {
			return
		}
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n:") || strings.ContainsAny(h.Value, "\r\n") ||
			isHopByHop([]byte(h.Name)) || strings.EqualFold(h.Name, "Host") || strings.EqualFold(h.Name, "Content-Length") {
			t.Fatalf("-upstream-header %q accepted as %+v", name+":"+value, h)
		}
		var req fasthttp.RequestHeader
		req.DisableNormalizing()
		req.Set(h.Name, h.Value)
		if got := HeaderValue(&req, h.Given); string(got) != h.Value {
			t.Fatalf("header %q set as %q: lookup by %q gives %q, want %q", h.Given, h.Name, h.Given, got, h.Value)
		}
	})
}

// FuzzAPIRouter sends arbitrary methods, paths and queries, with and without the token,
// through the full router on an empty store: nothing panics, nothing is a server error,
// a request without the token reaches only the open routes, and JSON answers are JSON.
//
//	go test -run='^$' -fuzz='^FuzzAPIRouter$' -fuzztime=10m ./proxy
func FuzzAPIRouter(f *testing.F) {
	const token = "tok-fuzz"
	for _, s := range []string{
		"/v1/clients/default/apps/1/events?date_from=2026-03-16&date_to=2026-03-16",
		"/v1/clients/default/apps/1/events/export?date_from=2026-03-16&date_to=2026-03-16&limit=5",
		"/v1/clients/default/apps/1/ads/account/act_1?limit=100&offset=3",
		"/v1/clients/default/apps/1/ads/a1/insights?date_from=2026-03-18&date_to=2026-03-16",
		"/v1/clients/default/apps/1/sources?date_from=x",
		"/v1/clients/default/apps/1/contacts/export?source_id=ad:1&event_type=keyword",
		"/v1/clients/default/apps/1/event_groups?status=archived&event_type_id=keyword%231",
		"/v1/clients/default/facebook-accounts/fb",
		"/v1/clients/other/apps/1/standalone-events-stats",
		"/v1/clients/default/apps/..%2F..%2Fx/events", "/assets/..%2Fx", "/assets/app.js", "/", "/healthz", "/metrics",
		"/clients/default/external-events", "//v1//clients", "/v1/%00", "",
	} {
		f.Add("GET", s, true)
		f.Add("POST", s, false)
	}
	a := fullAPI(f, token, "key-fuzz")
	f.Fuzz(func(t *testing.T, method, uri string, withToken bool) {
		if method == "" || strings.ContainsAny(method, " \r\n\t/") || len(uri) > 4096 {
			return // the listener refuses these before the router
		}
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI("/" + strings.TrimLeft(uri, "/"))
		req.Header.SetContentType("application/json")
		req.SetBodyString(`{"status":"archived","name":"n","phrase":"p","type":"keyword","type_value":"k"}`)
		if withToken {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		a.ServeHTTP(&ctx)
		status := ctx.Response.StatusCode()
		if status >= 500 {
			t.Fatalf("%s %q: %d %s", method, uri, status, ctx.Response.Body())
		}
		r, _, _ := a.match(method, string(ctx.Path()))
		if !withToken && status/100 == 2 && (r == nil || r.auth != AuthNone) {
			t.Fatalf("%s %q without the token answered %d", method, uri, status)
		}
		if bytes.HasPrefix(ctx.Response.Header.ContentType(), []byte("application/json")) && !json.Valid(ctx.Response.Body()) {
			t.Fatalf("%s %q: invalid JSON %q", method, uri, ctx.Response.Body())
		}
	})
}
