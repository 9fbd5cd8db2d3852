package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// Off-thread events by result; rejections by the error code the caller got.
var (
	offAttributed   = metrics.NewCounter(`ctwa_sidecar_offthread_events_total{result="attributed"}`)
	offUnattributed = metrics.NewCounter(`ctwa_sidecar_offthread_events_total{result="unattributed"}`)
	offDuplicate    = metrics.NewCounter(`ctwa_sidecar_offthread_events_total{result="duplicate"}`)
)

func countRejected(code string) {
	metrics.GetOrCreateCounter(`ctwa_sidecar_offthread_events_total{result="rejected",reason="` + code + `"}`).Inc()
}

// OffThreadRecorder records an off-thread event (a *engine.Recorder is one): it returns
// the event as attributed, and created false when its object_id was recorded before
// (then the first event), or engine.ErrPreviousNotFound for an unknown
// previous_external_event_id.
type OffThreadRecorder interface {
	RecordOffThread(ctx context.Context, e engine.OffThread) (engine.OffThreadRecord, bool, error)
}

// offThreadAPI serves POST /clients/{client_id}/external-events (SPEC §5).
type offThreadAPI struct {
	apiKey []byte
	recs   map[string]OffThreadRecorder // by client id
	known  knownClients
	now    func() time.Time
}

// RegisterOffThreadRoutes adds the off-thread endpoint and its /v1 alias, each event
// recorded by the recorder of the {client_id} in the path (one per followed stream on
// a read replica's fleet view). They check the api key themselves (body field or bearer
// token), not the API token.
func RegisterOffThreadRoutes(a *API, apiKey string, recs map[string]OffThreadRecorder) {
	o := &offThreadAPI{apiKey: []byte(apiKey), recs: recs, known: knownOf(recs), now: time.Now}
	a.Handle("POST", "/clients/{client_id}/external-events", AuthNone, o.post)
	a.Handle("POST", "/v1/clients/{client_id}/external-events", AuthNone, o.post)
}

// offThreadResponse is the answer of SPEC §5.
type offThreadResponse struct {
	ID             string `json:"external_event_id"`
	Attributed     bool   `json:"attributed"`
	ConversationID string `json:"conversation_id"`
	AppID          string `json:"app_id"`
	Source         struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"source"`
}

func (o *offThreadAPI) post(ctx *fasthttp.RequestCtx, p Params) {
	if code, status, msg, field := o.precheck(ctx, p); code != "" {
		countRejected(code)
		WriteError(ctx, status, code, msg, field)
		return
	}
	e, err := engine.ParseOffThread(ctx.PostBody(), o.now())
	if err != nil {
		// ParseOffThread names the field of every problem it finds; an error without one
		// still gets a 400 rather than a nil dereference.
		var fe *engine.FieldError
		code, field := "invalid_request", ""
		if errors.As(err, &fe) {
			code, field = "invalid_field", fe.Field
		}
		countRejected(code)
		WriteError(ctx, fasthttp.StatusBadRequest, code, err.Error(), field)
		return
	}
	rec, created, err := o.recs[p.Get("client_id")].RecordOffThread(ctx, e)
	switch {
	case errors.Is(err, engine.ErrPreviousNotFound):
		countRejected("not_found")
		WriteError(ctx, fasthttp.StatusNotFound, "not_found",
			"previous_external_event_id "+quote(e.PreviousID)+" is not a known off-thread event", "previous_external_event_id")
		return
	case err != nil:
		countRejected("store_error")
		writeStoreError(ctx, err)
		return
	}
	status := fasthttp.StatusCreated
	switch {
	case !created:
		status = fasthttp.StatusOK
		offDuplicate.Inc()
	case rec.Attributed:
		offAttributed.Inc()
	default:
		offUnattributed.Inc()
	}
	resp := offThreadResponse{ID: rec.ID, Attributed: rec.Attributed, ConversationID: rec.ConversationID, AppID: rec.AppID}
	resp.Source.Type, resp.Source.ID = rec.SourceType, rec.SourceID
	WriteJSON(ctx, status, &resp)
}

// precheck refuses, before any validation, a request for a client not recorded here, a
// body over 64 KiB, one that is not JSON, or one without the right api key.
func (o *offThreadAPI) precheck(ctx *fasthttp.RequestCtx, p Params) (code string, status int, msg, field string) {
	switch {
	case o.recs[p.Get("client_id")] == nil:
		return "unknown_client", fasthttp.StatusNotFound, o.known.notRecorded(p.Get("client_id")), "client_id"
	case len(ctx.PostBody()) > engine.MaxOffThreadBody:
		return "too_large", fasthttp.StatusRequestEntityTooLarge, "body is larger than 64 KiB", ""
	case !isJSON(ctx):
		return "unsupported_media_type", fasthttp.StatusUnsupportedMediaType, errNotJSON.Error(), ""
	case !o.keyOK(ctx):
		return "unauthorized", fasthttp.StatusUnauthorized,
			"missing or wrong api key: send api_key in the body or Authorization: Bearer <api-key>", "api_key"
	}
	return "", 0, "", ""
}

// keyOK checks the api key of the body, or else the bearer token, in constant time.
// Without a configured key (loopback-only API) every caller is accepted.
func (o *offThreadAPI) keyOK(ctx *fasthttp.RequestCtx) bool {
	if len(o.apiKey) == 0 {
		return true
	}
	key := []byte(engine.OffThreadAPIKey(ctx.PostBody()))
	if len(key) == 0 {
		key, _ = BearerToken(ctx)
	}
	return subtle.ConstantTimeCompare(key, o.apiKey) == 1
}
