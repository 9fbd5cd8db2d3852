package proxy

import (
	"bytes"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// Every route sidecar/recording.go registers (with -pprof) is in openapi.json and every
// operation there is a route: the document is then served byte for byte. The walk is
// over the router's own table, so a route added later without its description fails.
func TestOpenAPIDescribesTheRouteTable(t *testing.T) {
	a := fullAPI(t, "T", "K")
	RegisterBackupRoute(a, nil)
	RegisterPprof(a)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	for _, r := range a.routes {
		item, ok := doc.Paths[r.pattern]
		if !ok {
			t.Errorf("route %s %s has no path in openapi.json", r.method, r.pattern)
			continue
		}
		if _, ref := item["$ref"]; !ref && item[strings.ToLower(r.method)] == nil {
			t.Errorf("route %s %s: openapi.json describes %s only under that path", r.method, r.pattern, keys(item))
		}
	}
	status, body := serve(a, "GET", "/v1/openapi.json", "", "Authorization", "Bearer T")
	if status != fasthttp.StatusOK || !bytes.Equal(body, openAPIDoc) {
		t.Errorf("GET /v1/openapi.json: %d, the document as served is not openapi.json (a route or an operation is missing):\n%.2000s", status, body)
	}
	if status, _ := serve(a, "GET", "/v1/openapi.json", ""); status != fasthttp.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401 as every /v1 route", status)
	}
}

// The document served follows the router: a route that openapi.json does not describe
// is added as x-undocumented; described routes this API does not register are left out.
func TestOpenAPIFollowsTheRouter(t *testing.T) {
	a := NewAPI("", func() error { return nil })
	a.Handle("GET", "/v1/not-described", AuthToken, func(*fasthttp.RequestCtx, Params) {})
	a.Handle("POST", "/metrics", AuthNone, func(*fasthttp.RequestCtx, Params) {})
	status, body := serve(a, "GET", "/v1/openapi.json", "")
	if status != fasthttp.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d %s", status, body)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Undocumented bool `json:"x-undocumented"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("served document: %v", err)
	}
	if !doc.Paths["/v1/not-described"]["get"].Undocumented || !doc.Paths["/metrics"]["post"].Undocumented ||
		doc.Paths["/metrics"]["get"].Undocumented {
		t.Errorf("undescribed routes are not marked x-undocumented (or a described one is): %+v %+v",
			doc.Paths["/v1/not-described"], doc.Paths["/metrics"])
	}
	var got []string
	for p := range doc.Paths {
		got = append(got, p)
	}
	if len(doc.Paths) != 5 { // /healthz, /readyz, /metrics, /v1/openapi.json and the new one
		t.Errorf("paths %v: the routes of the data, dashboard, backup and profiling are not registered here", got)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
