package e2e

// The API's OpenAPI document (proxy/openapi.json, served at GET /v1/openapi.json) held
// against the running sidecar: the document describes exactly the routes it serves, and
// every answer the API client gets (apiClient.call) on a documented route is checked
// against the answer's schema — status, media type and JSON shape — so that neither the
// handlers nor the document can drift. The checker knows the part of JSON Schema the
// document uses: type (one or a list, "null" for nullable), enum, properties, required,
// additionalProperties, items, pattern, format date-time, minimum, maximum and local
// $ref; any other keyword is an error, so that the document cannot come to rely on
// what is not checked.

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openAPIChecked counts the answers checked against the document; TestMain prints it.
var openAPIChecked atomic.Int64

// openAPIFile is the document as the module holds it (the binary embeds the same bytes).
var openAPIFile = testdata("..", "proxy", "openapi.json")

var openAPI struct {
	once sync.Once
	doc  map[string]any
	raw  []byte
	err  error
}

// openAPIDoc reads and decodes proxy/openapi.json once.
func openAPIDoc(t testing.TB) map[string]any {
	t.Helper()
	openAPI.once.Do(func() {
		if openAPI.raw, openAPI.err = os.ReadFile(openAPIFile); openAPI.err == nil {
			openAPI.err = stdjson.Unmarshal(openAPI.raw, &openAPI.doc)
		}
	})
	if openAPI.err != nil {
		t.Fatalf("openapi.json: %v", openAPI.err)
	}
	return openAPI.doc
}

// checkOpenAPI checks an answer of the API against the document when the document
// describes method and path (a query is ignored); an undescribed path or method is
// left to the test (404 and 405 answers have their own tests).
func checkOpenAPI(t testing.TB, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	if method == "HEAD" {
		return
	}
	doc := openAPIDoc(t)
	path, _, _ = strings.Cut(path, "?")
	op, tmpl := findOperation(doc, method, path)
	if op == nil {
		return
	}
	openAPIChecked.Add(1)
	for _, p := range answerProblems(doc, op, resp.StatusCode, resp.Header.Get("Content-Type"), body) {
		t.Errorf("%s %s (%s in openapi.json) answered %d: %s\n%.600s", method, path, tmpl, resp.StatusCode, p, body)
	}
}

// findOperation returns the operation of method on the documented path that path
// matches with the most literal segments ("/ads/sync" before "/ads/{ad_id}"), and that
// path's template.
func findOperation(doc map[string]any, method, path string) (map[string]any, string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	best, bestLiterals, tmpl := map[string]any(nil), -1, ""
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		parts := strings.Split(strings.Trim(p, "/"), "/")
		if len(parts) != len(segs) {
			continue
		}
		literals, ok := 0, true
		for i, part := range parts {
			switch {
			case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
				ok = ok && segs[i] != ""
			case part == segs[i]:
				literals++
			default:
				ok = false
			}
		}
		if !ok || literals <= bestLiterals {
			continue
		}
		if op, _ := resolve(doc, item)[strings.ToLower(method)].(map[string]any); op != nil {
			best, bestLiterals, tmpl = op, literals, p
		}
	}
	return best, tmpl
}

// answerProblems lists how an answer departs from op: a 2xx status it does not list, a
// media type it does not give for the status, a JSON body that does not match the schema.
func answerProblems(doc map[string]any, op map[string]any, status int, contentType string, body []byte) []string {
	responses, _ := op["responses"].(map[string]any)
	r := responses[strconv.Itoa(status)]
	if r == nil {
		if status/100 == 2 {
			return []string{"the status is not documented"}
		}
		r = responses["default"]
	}
	content, _ := resolve(doc, r)["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			return []string{"a body where the document gives none"}
		}
		return nil
	}
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return []string{fmt.Sprintf("content type %q: %v", contentType, err)}
	}
	mt, ok := content[media].(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("content type %s is not one of %v", media, sortedKeys(content))}
	}
	if media != "application/json" {
		return nil
	}
	var v any
	if err := stdjson.Unmarshal(body, &v); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	return schemaProblems(doc, mt["schema"], v, "$")
}

// schemaKeywords are the JSON Schema keywords the checker knows; the rest only annotate.
var schemaKeywords = map[string]bool{"$ref": true, "type": true, "enum": true, "properties": true, "required": true,
	"additionalProperties": true, "items": true, "pattern": true, "format": true, "minimum": true, "maximum": true,
	"description": true, "default": true, "contentEncoding": true, "title": true}

// schemaProblems lists where v departs from schema; at names v ($.data[0].date).
func schemaProblems(doc map[string]any, schema any, v any, at string) []string {
	s := resolve(doc, schema)
	if s == nil {
		return []string{at + ": the schema " + fmt.Sprint(schema) + " resolves to nothing"}
	}
	var out []string
	for k := range s {
		if !schemaKeywords[k] {
			out = append(out, at+": the checker does not know the schema keyword "+k)
		}
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		return append(out, fmt.Sprintf("%s: %s is not of type %v", at, brief(v), t))
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		out = append(out, fmt.Sprintf("%s: %s is not one of %v", at, brief(v), enum))
	}
	switch v := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			out = append(out, fmt.Sprintf("%s: %q does not match %s", at, v, p))
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				out = append(out, fmt.Sprintf("%s: %q is not an RFC 3339 date-time", at, v))
			}
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && v < m {
			out = append(out, fmt.Sprintf("%s: %v is below the minimum %v", at, v, m))
		}
		if m, ok := s["maximum"].(float64); ok && v > m {
			out = append(out, fmt.Sprintf("%s: %v is above the maximum %v", at, v, m))
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range v {
				out = append(out, schemaProblems(doc, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asStrings(s["required"]) {
			if _, ok := v[r]; !ok {
				out = append(out, at+": the required property "+r+" is missing")
			}
		}
		for _, k := range sortedKeys(v) {
			switch ps, ok := props[k]; {
			case ok:
				out = append(out, schemaProblems(doc, ps, v[k], at+"."+k)...)
			case s["additionalProperties"] == false:
				out = append(out, at+": the property "+k+" is not in the document")
			case s["additionalProperties"] != nil && s["additionalProperties"] != true:
				out = append(out, schemaProblems(doc, s["additionalProperties"], v[k], at+"."+k)...)
			}
		}
	}
	return out
}

// typeMatches reports whether v is of the type t (a name or a list of names).
func typeMatches(t, v any) bool {
	names := asStrings(t)
	if name, ok := t.(string); ok {
		names = []string{name}
	}
	for _, name := range names {
		switch x := v.(type) {
		case nil:
			if name == "null" {
				return true
			}
		case bool:
			if name == "boolean" {
				return true
			}
		case string:
			if name == "string" {
				return true
			}
		case float64:
			if name == "number" || name == "integer" && x == math.Trunc(x) {
				return true
			}
		case []any:
			if name == "array" {
				return true
			}
		case map[string]any:
			if name == "object" {
				return true
			}
		}
	}
	return false
}

// resolve follows a local $ref ("#/components/schemas/Ad") to the object it names.
func resolve(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	for range 8 { // a reference to a reference, not a loop
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var at any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			obj, _ := at.(map[string]any)
			at = obj[part]
		}
		m, _ = at.(map[string]any)
	}
	return nil
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func brief(v any) string {
	b, _ := stdjson.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// ---- the document and the routes ----

// The document served is openapi.json byte for byte when the sidecar serves exactly the
// routes it describes (with -pprof, every one); the sidecar adds a route it does not
// describe as x-undocumented, and leaves out what it does not serve. Byte equality
// is both directions at once: every registered route is described, every described
// operation is registered.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := openAPIDoc(t)
	up := acceptingUpstream(t)
	sc := startSidecar(t, "http://"+up.addr, "-pprof", "-api-token", "T")
	c := newAPIClient(t, sc, "T")
	resp, served := c.call("GET", "/v1/openapi.json", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json answered %d %s", resp.StatusCode, served)
	}
	if !bytes.Equal(served, openAPI.raw) {
		var got map[string]any
		if err := stdjson.Unmarshal(served, &got); err != nil {
			t.Fatalf("served document is not JSON: %v", err)
		}
		t.Errorf("the served document is not openapi.json; routes and document differ: %s", routeDiff(doc, got))
	}
	if resp, body := (&apiClient{t: t, base: sc.api}).call("GET", "/v1/openapi.json", "", nil); resp.StatusCode != 401 {
		t.Errorf("without the token: %d %s, want 401 as every /v1 route", resp.StatusCode, body)
	}

	// Without -pprof the profiling routes are not served, and not in the document.
	plain := startSidecar(t, "http://"+up.addr)
	var got map[string]any
	newAPIClient(t, plain, "").getJSON("/v1/openapi.json", &got)
	if d := routeDiff(doc, got); d != "profiling routes only in openapi.json: [/v1/debug/pprof/allocs /v1/debug/pprof/block "+
		"/v1/debug/pprof/cmdline /v1/debug/pprof/goroutine /v1/debug/pprof/heap /v1/debug/pprof/mutex /v1/debug/pprof/profile "+
		"/v1/debug/pprof/symbol /v1/debug/pprof/threadcreate /v1/debug/pprof/trace]" {
		t.Errorf("without -pprof: %s", d)
	}
}

// routeDiff tells how the served document got differs from the file's want.
func routeDiff(want, got map[string]any) string {
	var missing, undocumented, pprof, other []string
	wp, _ := want["paths"].(map[string]any)
	gp, _ := got["paths"].(map[string]any)
	for p := range wp {
		if _, ok := gp[p]; !ok {
			if strings.HasPrefix(p, "/v1/debug/pprof/") {
				pprof = append(pprof, p)
			} else {
				missing = append(missing, p)
			}
		}
	}
	for p, item := range gp {
		for m, op := range resolve(got, item) {
			if o, _ := op.(map[string]any); o["x-undocumented"] == true {
				undocumented = append(undocumented, strings.ToUpper(m)+" "+p)
			} else if resolve(want, wp[p])[m] == nil && o != nil {
				other = append(other, strings.ToUpper(m)+" "+p)
			}
		}
	}
	var parts []string
	for _, x := range []struct {
		what string
		list []string
	}{{"registered routes not in openapi.json", undocumented}, {"paths of openapi.json no route serves", missing},
		{"profiling routes only in openapi.json", pprof}, {"other operations", other}} {
		if len(x.list) > 0 {
			sort.Strings(x.list)
			parts = append(parts, fmt.Sprintf("%s: %v", x.what, x.list))
		}
	}
	return strings.Join(parts, "; ")
}

// The document holds together: every $ref resolves, every path placeholder is a declared
// path parameter, every operation documents a success and the error answer, and its
// schemas use only what the checker checks.
func TestOpenAPIDocumentIsWhole(t *testing.T) {
	doc := openAPIDoc(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v, want 3.1.0", doc["openapi"])
	}
	var refs func(v any, at string)
	refs = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok && resolve(doc, v) == nil {
				t.Errorf("%s: $ref %s resolves to nothing", at, r)
			}
			for k, e := range v {
				refs(e, at+"/"+k)
			}
		case []any:
			for i, e := range v {
				refs(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	refs(doc, "#")
	placeholder := regexp.MustCompile(`\{([^}]+)\}`)
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		for m, v := range resolve(doc, item) {
			op, _ := v.(map[string]any)
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, pv := range params {
				if prm := resolve(doc, pv); prm["in"] == "path" {
					declared[prm["name"].(string)] = prm["required"] == true
				}
			}
			for _, name := range placeholder.FindAllStringSubmatch(p, -1) {
				if !declared[name[1]] {
					t.Errorf("%s %s: path parameter %s is not declared (as required)", m, p, name[1])
				}
			}
			if len(declared) != len(placeholder.FindAllString(p, -1)) {
				t.Errorf("%s %s: declares path parameters %v the path does not have", m, p, declared)
			}
			responses, _ := op["responses"].(map[string]any)
			success := slices.ContainsFunc(sortedKeys(responses), func(code string) bool { return strings.HasPrefix(code, "2") })
			if !success || responses["default"] == nil {
				t.Errorf("%s %s: responses %v lack a 2xx or the default (error) answer", m, p, sortedKeys(responses))
			}
		}
	}
	// Every schema, wherever it stands, uses only the keywords the checker checks.
	var walk func(s any, at string)
	walk = func(s any, at string) {
		m, _ := s.(map[string]any)
		for k, v := range m {
			switch {
			case !schemaKeywords[k]:
				t.Errorf("%s: the checker does not know the schema keyword %s", at, k)
			case k == "properties":
				props, _ := v.(map[string]any)
				for name, ps := range props {
					walk(ps, at+"/properties/"+name)
				}
			case k == "items" || k == "additionalProperties":
				walk(v, at+"/"+k)
			}
		}
	}
	var schemasIn func(v any, at string)
	schemasIn = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "schema" {
					walk(e, at+"/schema")
				} else {
					schemasIn(e, at+"/"+k)
				}
			}
		case []any:
			for i, e := range v {
				schemasIn(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	schemasIn(doc, "#")
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, s := range schemas {
		walk(s, "#/components/schemas/"+name)
	}
}

// The checker fails what it should: a missing property, a wrong type, a property the
// document does not have, a value out of its enum, a UTC "Z" time, a null where none is
// allowed, and an undocumented success status or media type.
func TestOpenAPICheckerCatches(t *testing.T) {
	doc := openAPIDoc(t)
	ev := func(edit func(map[string]any)) []any {
		e := map[string]any{"id": "x", "app_id": "1", "ad_id": "", "campaign_id": "", "phone": "49", "type": "conversation",
			"type_id": "", "type_value": "", "date": "2026-03-16T10:00:00+01:00", "conversation_id": "c",
			"conversation_expire_time": "2026-03-17T10:00:00+01:00", "source_type": "organic", "source_id": ""}
		edit(e)
		return []any{e}
	}
	page := func(data []any) map[string]any {
		return map[string]any{"data": data, "total_count": 1.0, "offset": 0.0, "limit": 100.0}
	}
	events := map[string]any{"$ref": "#/components/schemas/EventPage"}
	if p := schemaProblems(doc, events, page(ev(func(map[string]any) {})), "$"); len(p) != 0 {
		t.Fatalf("a good page fails: %v", p)
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"missing", func(e map[string]any) { delete(e, "phone") }, "$.data[0]: the required property phone is missing"},
		{"type", func(e map[string]any) { e["phone"] = 49.0 }, "$.data[0].phone: 49 is not of type string"},
		{"extra", func(e map[string]any) { e["lead"] = "x" }, "$.data[0]: the property lead is not in the document"},
		{"utc Z", func(e map[string]any) { e["date"] = "2026-03-16T10:00:00Z" }, `$.data[0].date: "2026-03-16T10:00:00Z" does not match`},
		{"null", func(e map[string]any) { e["date"] = nil }, "$.data[0].date: null is not of type string"},
	} {
		got := strings.Join(schemaProblems(doc, events, page(ev(tc.edit)), "$"), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: problems %q, want %q", tc.name, got, tc.want)
		}
	}
	if p := schemaProblems(doc, events, map[string]any{"data": []any{}, "total_count": 1.5, "offset": 0.0, "limit": 1.0}, "$"); len(p) != 1 ||
		!strings.Contains(p[0], "1.5 is not of type integer") {
		t.Errorf("a fraction for an integer: %v", p)
	}
	groups := map[string]any{"$ref": "#/components/schemas/EventGroup"}
	if p := strings.Join(schemaProblems(doc, groups, map[string]any{"status": "paused"}, "$"), "\n"); !strings.Contains(p, `"paused" is not one of [active archived]`) {
		t.Errorf("a value out of its enum: %s", p)
	}
	op, _ := findOperation(doc, "GET", "/v1/clients/default/apps/1/events")
	if p := answerProblems(doc, op, 201, "application/json", []byte(`{}`)); len(p) != 1 || p[0] != "the status is not documented" {
		t.Errorf("an undocumented 201: %v", p)
	}
	if p := answerProblems(doc, op, 200, "text/csv", nil); len(p) != 1 || !strings.Contains(p[0], "text/csv is not one of") {
		t.Errorf("an undocumented media type: %v", p)
	}
	if p := answerProblems(doc, op, 400, "application/json", []byte(`{"error":{"code":"x","message":"y","field":"limit"}}`)); len(p) != 0 {
		t.Errorf("an error answer: %v", p)
	}
	if _, tmpl := findOperation(doc, "GET", "/v1/clients/default/apps/1/ads/sync"); tmpl != "/v1/clients/{client_id}/apps/{app_id}/ads/sync" {
		t.Errorf("/ads/sync matched %s, not its own path before /ads/{ad_id}", tmpl)
	}
}
