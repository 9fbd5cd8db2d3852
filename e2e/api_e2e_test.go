package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

func TestHealthReadyAndMetrics(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	mustDo(t, newRequest(t, "POST", sc.webhook+"/", []byte("{}")))

	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, body := mustDo(t, newRequest(t, "GET", sc.api+path, nil))
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("%s answered %d %q", path, resp.StatusCode, body)
		}
	}
	resp, body := mustDo(t, newRequest(t, "GET", sc.api+"/metrics", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	for _, want := range []string{
		`ctwa_sidecar_requests_total{result="2xx"}`, `ctwa_sidecar_forward_duration_seconds_bucket{le=`,
		`ctwa_sidecar_requests_in_flight`, `ctwa_sidecar_request_body_bytes_total`,
		`ctwa_sidecar_response_body_bytes_total`, `ctwa_sidecar_upstream_errors_total{reason="timeout"}`,
		`ctwa_sidecar_api_requests_total{route="/healthz",code="200"}`, "process_resident_memory_bytes",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAPITokenGuardsV1AndErrorsAreJSON(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-api-token", "s3cret")

	cases := []struct {
		name, method, path, auth string
		status                   int
		code                     string
	}{
		{"no token", "GET", "/v1/clients/default/facebook-accounts", "", 401, "unauthorized"},
		{"wrong token", "GET", "/v1/clients/default/facebook-accounts", "Bearer nope", 401, "unauthorized"},
		{"token of other scheme", "GET", "/v1/clients/default/facebook-accounts", "Basic s3cret", 401, "unauthorized"},
		{"right token unknown route", "GET", "/v1/clients/default/nothing-here", "Bearer s3cret", 404, "not_found"},
		{"unknown route outside v1", "GET", "/nope", "", 404, "not_found"},
		{"wrong method", "POST", "/healthz", "", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newRequest(t, c.method, sc.api+c.path, nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, body := mustDo(t, req)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not the JSON error form: %v", body, err)
			}
			if resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	// Health and metrics stay open for probes and Prometheus.
	if resp, _ := mustDo(t, newRequest(t, "GET", sc.api+"/metrics", nil)); resp.StatusCode != 200 {
		t.Errorf("/metrics needs no token, got %d", resp.StatusCode)
	}
}

func TestChunkedUpstreamResponseIsRelayedWhole(t *testing.T) {
	up := startUpstream(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStream(strings.NewReader(strings.Repeat("chunk ", 5000)), -1) // chunked
	})
	sc := startSidecar(t, "http://"+up.addr)
	resp, body := mustDo(t, newRequest(t, http.MethodPost, sc.webhook+"/", []byte("{}")))
	if resp.StatusCode != 200 || string(body) != strings.Repeat("chunk ", 5000) {
		t.Fatalf("got %d and %d bytes", resp.StatusCode, len(body))
	}
}

func TestAppsListsAppsWithTraffic(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	for _, body := range [][]byte{cloudFixture(t, "text_ctwa_referral"), fixture(t, "onprem", "text")} {
		mustDo(t, newRequest(t, "POST", sc.webhook+"/", body))
	}
	_, got := mustDo(t, newRequest(t, "GET", sc.api+"/v1/clients/default/apps", nil))
	if want := `{"data":[{"id":"106540352242922"},{"id":"onprem"}],"total_count":2,"offset":0,"limit":2}` + "\n"; string(got) != want {
		t.Fatalf("apps %s, want %s", got, want)
	}
}
