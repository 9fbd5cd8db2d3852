package proxy

import (
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// openRoutes are the only routes served without the API token: health, readiness and
// metrics for probes, the dashboard's static files (its data calls carry the token), and
// the off-thread endpoint, which checks its own api key.
var openRoutes = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true,
	"GET /": true, "GET /assets/{file}": true,
	"POST /clients/{client_id}/external-events": true, "POST /v1/clients/{client_id}/external-events": true,
}

// fullAPI registers every route the way sidecar/recording.go does.
func fullAPI(t testing.TB, token, key string) *API {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.Open(t.TempDir(), storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec, err := engine.NewRecorder(testLog(t, store), store, engine.Config{DefaultAppID: "onprem", SessionWindow: 24 * time.Hour,
		AttributionWindow: 672 * time.Hour, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAPI(token, store.Ready)
	RegisterDataRoutes(a, map[string]ClientData{"default": {Rec: rec}}, time.UTC)
	RegisterOffThreadRoutes(a, key, map[string]OffThreadRecorder{"default": rec})
	RegisterDashboard(a)
	return a
}

// serve runs one request through the router.
func serve(a *API, method, uri, body string, header ...string) (int, []byte) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetContentType("application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.SetBodyString(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	a.ServeHTTP(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// fill puts a value in every {placeholder} of a pattern.
func fill(pattern string) string {
	parts := splitPath(pattern)
	for i, p := range parts {
		switch {
		case p == "{client_id}":
			parts[i] = "default"
		case strings.HasPrefix(p, "{"):
			parts[i] = "x1"
		}
	}
	return "/" + strings.Join(parts, "/")
}

// TestEveryRouteNeedsTheToken walks the router's own table, so a route added later is
// covered without editing this test: every route outside openRoutes refuses a request
// without the right bearer token, and answers it with the token.
func TestEveryRouteNeedsTheToken(t *testing.T) {
	const token, key = "tok-3c9e", "key-77a1"
	a := fullAPI(t, token, key)
	wrong := [][]string{
		nil,
		{"Authorization", "Bearer nope"},
		{"Authorization", "Bearer " + token[:len(token)-1]},
		{"Authorization", "Bearer " + token + "x"},
		{"Authorization", "Bearer " + key},
		{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+token))},
		{"Authorization", token},
		{"Authorization", "Bearer"},
	}
	guarded := 0
	for _, r := range a.routes {
		name := r.method + " " + r.pattern
		if r.auth == AuthNone {
			if !openRoutes[name] {
				t.Errorf("route %s is served without the token but is not one of the routes meant to be open", name)
			}
			continue
		}
		guarded++
		uri := fill(r.pattern)
		for _, h := range wrong {
			if status, body := serve(a, r.method, uri, `{}`, h...); status != fasthttp.StatusUnauthorized ||
				!strings.Contains(string(body), `"unauthorized"`) {
				t.Errorf("%s with %q: %d %s, want 401", name, h, status, body)
			}
		}
		if status, body := serve(a, r.method, uri, `{}`, "Authorization", "Bearer "+token); status == fasthttp.StatusUnauthorized ||
			strings.Contains(string(body), "no route for") {
			t.Errorf("%s with the token: %d %s", name, status, body)
		}
	}
	if guarded < 20 {
		t.Fatalf("only %d token routes registered: the router table is not what sidecar/recording.go builds", guarded)
	}
	for name := range openRoutes {
		method, pattern, _ := strings.Cut(name, " ")
		if r, _, _ := a.match(method, fill(pattern)); r == nil || r.auth != AuthNone {
			t.Errorf("open route %s is not registered as open", name)
		}
	}
	// Off-thread routes check the api key; the API token is not it.
	for _, uri := range []string{"/clients/default/external-events", "/v1/clients/default/external-events"} {
		for _, h := range [][]string{nil, {"Authorization", "Bearer " + token}, {"Authorization", "Bearer nope"}} {
			if status, body := serve(a, "POST", uri, `{"lead_phone":"+491701234567","action":"purchase"}`, h...); status != fasthttp.StatusUnauthorized {
				t.Errorf("POST %s with %q: %d %s, want 401", uri, h, status, body)
			}
		}
	}
	// Paths no route matches need the token too under /v1, so that they reveal nothing.
	for _, uri := range []string{"/v1/clients/default/nothing", "/v1/", "/v1/clients/default/apps/x1/events/export/more"} {
		if status, _ := serve(a, "GET", uri, ""); status != fasthttp.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", uri, status)
		}
	}
}

// testLog opens the log kept in store.
func testLog(t testing.TB, store *storage.Store) *storage.FileLog {
	t.Helper()
	l, err := storage.OpenLog(store)
	if err != nil {
		t.Fatalf("storage.OpenLog: %v", err)
	}
	return l
}
