package proxy

import (
	_ "embed"
	"maps"
	"strings"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// openAPIDoc is the OpenAPI 3.1 description of every route of the API (openapi.json,
// kept by hand next to the handlers): their parameters, bodies and answers. GET
// /v1/openapi.json serves it; the e2e tests check every JSON answer against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI answers GET /v1/openapi.json (openAPI).
func (a *API) serveOpenAPI(ctx *fasthttp.RequestCtx, _ Params) {
	body, err := a.openAPI()
	if err != nil {
		// openapi.json is embedded: only a broken build lands here (a test parses it).
		panic("cannot read the embedded openapi.json: " + err.Error())
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// undocumentedOp stands in the document for a registered route that openapi.json does
// not describe, so that such a route shows at once (the tests fail on it).
var undocumentedOp = map[string]any{
	"summary":        "not described in openapi.json",
	"x-undocumented": true,
	"responses":      map[string]any{"default": map[string]any{"description": "not described"}},
}

// openAPI returns the document of the routes a serves: openapi.json byte for byte when
// it describes exactly them. Otherwise the operations of routes that are not registered
// here are left out (the profiling routes without -pprof) and every registered route
// that it does not describe is added with "x-undocumented": true.
func (a *API) openAPI() ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		return nil, err
	}
	registered := map[string]map[string]bool{} // pattern → lower-case methods
	for _, r := range a.routes {
		if registered[r.pattern] == nil {
			registered[r.pattern] = map[string]bool{}
		}
		registered[r.pattern][strings.ToLower(r.method)] = true
	}
	paths, _ := doc["paths"].(map[string]any)
	changed := false
	for pattern, v := range paths {
		item := resolveRef(doc, v)
		kept := map[string]any{}
		for k, op := range item {
			if !httpMethods[k] || registered[pattern][k] {
				kept[k] = op
			}
		}
		if len(kept) == len(item) {
			continue
		}
		changed = true
		if hasOperation(kept) {
			paths[pattern] = kept
		} else {
			delete(paths, pattern)
		}
	}
	for pattern, methods := range registered {
		for m := range methods {
			item := resolveRef(doc, paths[pattern])
			if item[m] != nil {
				continue
			}
			changed = true
			item = maps.Clone(item)
			if item == nil {
				item = map[string]any{}
			}
			item[m] = undocumentedOp
			paths[pattern] = item
		}
	}
	if !changed {
		return openAPIDoc, nil
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	return append(body, '\n'), err
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true}

func hasOperation(item map[string]any) bool {
	for k := range item {
		if httpMethods[k] {
			return true
		}
	}
	return false
}

// resolveRef follows a local "$ref" ("#/components/pathItems/pprof") of the document to
// the object it names; v itself when it is no reference; nil when it names nothing.
func resolveRef(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var at any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		obj, _ := at.(map[string]any)
		at = obj[part]
	}
	resolved, _ := at.(map[string]any)
	return resolved
}
