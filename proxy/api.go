package proxy

import (
	"bytes"
	"crypto/subtle"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// Params are the values of a route's {placeholders}, in pattern order.
type Params []Param

// Param is one path placeholder and its value.
type Param struct{ Key, Value string }

// Get returns the value of placeholder key, or "".
func (p Params) Get(key string) string {
	for _, kv := range p {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// HandlerFunc serves one API route.
type HandlerFunc func(ctx *fasthttp.RequestCtx, p Params)

// Auth says how a route checks its caller.
type Auth uint8

const (
	AuthToken Auth = iota // Authorization: Bearer <api-token>, when a token is configured
	AuthNone              // the handler checks credentials itself (or the route is open)
)

type route struct {
	method  string
	pattern string
	parts   []string
	auth    Auth
	h       HandlerFunc
}

// API is the local API listener: health, readiness, metrics, the OpenAPI document of its
// routes (openapi.go) and the JSON routes that the insights issues add with Handle.
type API struct {
	token []byte
	ready func() error
	// readyNote, when set, adds to a ready answer (SetReadyNote).
	readyNote func() string
	routes    []route
}

// NewAPI returns the API router. token, when not empty, is required as a bearer token on
// every AuthToken route; ready reports whether the store can take writes.
func NewAPI(token string, ready func() error) *API {
	a := &API{token: []byte(token), ready: ready}
	readyCheck.Store(&ready)
	a.Handle("GET", "/healthz", AuthNone, func(ctx *fasthttp.RequestCtx, _ Params) {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	})
	a.Handle("GET", "/readyz", AuthNone, a.serveReady)
	a.Handle("GET", "/metrics", AuthNone, func(ctx *fasthttp.RequestCtx, _ Params) {
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(ctx)
	})
	a.Handle("GET", "/v1/openapi.json", AuthToken, a.serveOpenAPI)
	return a
}

// Handle registers h for method and pattern; pattern segments in braces are placeholders
// ("/v1/clients/{client_id}/events").
func (a *API) Handle(method, pattern string, auth Auth, h HandlerFunc) {
	a.routes = append(a.routes, route{
		method: method, pattern: pattern, parts: splitPath(pattern), auth: auth, h: h,
	})
}

// SetReadyNote makes /readyz add what note returns, when not empty, to a ready answer:
// a state that records and serves, yet that an operator should know of (spooling).
func (a *API) SetReadyNote(note func() string) { a.readyNote = note }

func (a *API) serveReady(ctx *fasthttp.RequestCtx, _ Params) {
	ctx.SetContentType("text/plain; charset=utf-8")
	if err := a.ready(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready: " + err.Error() + "\n")
		return
	}
	if a.readyNote != nil {
		if note := a.readyNote(); note != "" {
			ctx.SetBodyString("ready, " + note + "\n")
			return
		}
	}
	ctx.SetBodyString("ready\n")
}

// ServeHTTP routes one request, checks its bearer token and counts it by route and code.
func (a *API) ServeHTTP(ctx *fasthttp.RequestCtx) {
	r, params, allowed := a.match(string(ctx.Method()), string(ctx.Path()))
	// Tagged first, so that the server's panic guard answers in the API's shape and counts
	// the panic by route (a pointer in an interface: no allocation).
	ctx.SetUserValue(routeKey{}, r)
	// Unknown /v1 paths need the token too, so that callers without it learn nothing
	// about which routes exist.
	needToken := (r != nil && r.auth == AuthToken) || (r == nil && bytes.HasPrefix(ctx.Path(), strV1))
	switch {
	case needToken && !a.authorized(ctx):
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="ctwa-sidecar"`)
		WriteError(ctx, fasthttp.StatusUnauthorized, "unauthorized",
			"missing or wrong bearer token: send Authorization: Bearer <api-token>", "")
	case r == nil && allowed != "":
		ctx.Response.Header.Set("Allow", allowed)
		WriteError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed",
			"method "+string(ctx.Method())+" is not allowed here; allowed: "+allowed, "")
	case r == nil:
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "no route for "+string(ctx.Path()), "")
	default:
		r.h(ctx, params)
	}
	metrics.GetOrCreateCounter(`ctwa_sidecar_api_requests_total{route="` + r.patternOrUnmatched() +
		`",code="` + strconv.Itoa(ctx.Response.StatusCode()) + `"}`).Inc()
}

// routeKey is the user value under which ServeHTTP tags a request with its *route.
type routeKey struct{}

// patternOrUnmatched names r in metrics and logs; requests that matched no route share one name.
func (r *route) patternOrUnmatched() string {
	if r == nil {
		return "unmatched"
	}
	return r.pattern
}

var strV1 = []byte("/v1/")

// match finds the route for method and path. When the path exists under other methods
// only, it returns those in allowed.
func (a *API) match(method, path string) (*route, Params, string) {
	segs := splitPath(path)
	var allowed []string
	for i := range a.routes {
		r := &a.routes[i]
		params, ok := matchParts(r.parts, segs)
		if !ok {
			continue
		}
		if r.method == method || (method == "HEAD" && r.method == "GET") {
			return r, params, ""
		}
		allowed = append(allowed, r.method)
	}
	return nil, nil, strings.Join(allowed, ", ")
}

func matchParts(parts, segs []string) (Params, bool) {
	if len(parts) != len(segs) {
		return nil, false
	}
	var params Params
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" || strings.ContainsFunc(segs[i], isControl) {
				return nil, false // ids are store keys: no NUL or line breaks
			}
			params = append(params, Param{Key: p[1 : len(p)-1], Value: segs[i]})
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func splitPath(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// authorized reports whether the request carries the configured bearer token. Without a
// configured token every request is authorized (the listener is loopback-only then).
func (a *API) authorized(ctx *fasthttp.RequestCtx) bool {
	if len(a.token) == 0 {
		return true
	}
	got, ok := BearerToken(ctx)
	return ok && subtle.ConstantTimeCompare(got, a.token) == 1
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
func BearerToken(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	v := HeaderValue(&ctx.Request.Header, "Authorization")
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(string(v[:len(prefix)]), prefix) {
		return nil, false
	}
	return v[len(prefix):], true
}

// errorBody is the JSON error of SPEC §5.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// WriteError answers with the JSON error form {"error": {"code", "message", "field"}}.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message, field string) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.Field = code, message, field
	WriteJSON(ctx, status, &b)
}

// WriteJSON answers with v encoded as JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	// Plain < > & read better in messages such as "Bearer <api-token>"; the API serves JSON, not HTML.
	body, err := json.MarshalWithOption(v, json.DisableHTMLEscape())
	if err != nil {
		// Only a programming error (an unencodable type) lands here.
		panic("cannot encode API response: " + err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
