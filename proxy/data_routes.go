package proxy

import (
	"errors"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// appPrefix is the path prefix of every per-app route.
const appPrefix = "/v1/clients/{client_id}/apps/{app_id}"

// dataStores are what the data routes read and change: one small interface per route
// group, each declared next to its handlers, so that a handler's tests need a fake of
// only what it calls. A *engine.Recorder is each of them; a *engine.SpendSync the sync.
type dataStores struct {
	events      EventReader      // events_api.go
	definitions Definer          // groups_api.go
	sources     SourceReader     // sources_api.go
	insights    Insights         // insights_api.go, ad_objects.go, campaigns_api.go
	imports     SpendImporter    // import_api.go
	conversions ConversionLister // conversions_api.go
	sync        SpendSyncer      // spendsync_api.go; nil without a spend sync
}

// RegisterDataRoutes adds every route that reads or defines recorded data: events,
// event groups and sources (§6.1), insights (§6.1–6.3), spend import and contacts
// export (§6.4–6.5), conversions (§9) and the spend sync (§10; sync may be nil).
func RegisterDataRoutes(a *API, clientID string, rec *engine.Recorder, loc *time.Location, sync *engine.SpendSync) {
	s := dataStores{events: rec, definitions: rec, sources: rec, insights: rec, imports: rec, conversions: rec}
	if sync != nil { // a nil *SpendSync in the interface would not be nil
		s.sync = sync
	}
	registerData(a, dataAPI{clientID: clientID, loc: loc}, s)
}

// registerData adds the data routes, each group's handlers over its store. A route is
// matched in the order added: the spend sync goes before the /ads/{ad_id} routes, which
// would take "sync" for an ad id.
func registerData(a *API, d dataAPI, s dataStores) {
	c := d.client
	ss := spendSyncAPI{d, s.sync}
	a.Handle("GET", appPrefix+"/ads/sync", AuthToken, c(ss.state))
	a.Handle("POST", appPrefix+"/ads/sync", AuthToken, c(ss.runNow))

	ev, def, src := eventsAPI{d, s.events}, definitionsAPI{d, s.definitions}, sourcesAPI{d, s.sources}
	a.Handle("GET", appPrefix+"/events", AuthToken, c(ev.listEvents))
	a.Handle("GET", appPrefix+"/events/export", AuthToken, c(ev.exportEvents))
	a.Handle("GET", appPrefix+"/event_types", AuthToken, c(ev.eventTypes))
	a.Handle("GET", appPrefix+"/standalone-events-stats", AuthToken, c(ev.standaloneStats))
	a.Handle("GET", appPrefix+"/event_groups", AuthToken, c(def.listGroups))
	a.Handle("POST", appPrefix+"/event_groups", AuthToken, c(def.addGroup))
	a.Handle("PATCH", appPrefix+"/event_groups/{id}", AuthToken, c(def.patchGroup))
	a.Handle("GET", appPrefix+"/sources", AuthToken, c(src.listSources))
	a.Handle("POST", appPrefix+"/sources", AuthToken, c(def.addSource))
	a.Handle("GET", appPrefix+"/funnel", AuthToken, c(src.funnel))

	in := insightsAPI{d, s.insights}
	a.Handle("GET", "/v1/clients/{client_id}/apps", AuthToken, c(in.apps))
	a.Handle("GET", "/v1/clients/{client_id}/facebook-accounts", AuthToken, c(in.facebookAccounts))
	a.Handle("GET", "/v1/clients/{client_id}/facebook-accounts/{facebook_account}", AuthToken, c(in.adAccounts))
	a.Handle("GET", appPrefix+"/ads/account/{ad_account_id}", AuthToken, c(in.listAds))
	a.Handle("GET", appPrefix+"/ads/{ad_id}", AuthToken, c(in.getAd))
	a.Handle("GET", appPrefix+"/ads/{ad_id}/insights", AuthToken, c(in.adInsights))
	a.Handle("GET", appPrefix+"/campaigns/account/{ad_account_id}", AuthToken, c(in.listCampaigns))
	a.Handle("GET", appPrefix+"/campaigns/{campaign_id}", AuthToken, c(in.getCampaign))
	a.Handle("GET", appPrefix+"/campaigns/{campaign_id}/insights", AuthToken, c(in.campaignInsights))
	for _, p := range []string{"/ads/account/{ad_account_id}/refresh", "/ads/{ad_id}/refresh",
		"/campaigns/account/{ad_account_id}/refresh", "/campaigns/{campaign_id}/refresh"} {
		a.Handle("POST", appPrefix+p, AuthToken, c(in.refresh))
	}
	a.Handle("POST", appPrefix+"/converted_events", AuthToken, c(def.convertedEvent))
	a.Handle("GET", appPrefix+"/converted_events", AuthToken, c(def.listConverted))
	a.Handle("DELETE", appPrefix+"/converted_events", AuthToken, c(def.clearConverted))
	a.Handle("GET", appPrefix+"/converted_events/choices", AuthToken, c(def.conversionChoices))
	a.Handle("GET", appPrefix+"/adsets/account/{ad_account_id}", AuthToken, c(in.listAdSets))

	imp := importAPI{d, s.imports}
	a.Handle("POST", appPrefix+"/ads/import", AuthToken, c(imp.importSpend))
	a.Handle("GET", appPrefix+"/contacts/export", AuthToken, c(src.exportContacts))

	conv := conversionsAPI{d, s.conversions}
	a.Handle("GET", appPrefix+"/conversions", AuthToken, c(conv.listConversions))
}

// dataAPI is what every data route group shares: the client this sidecar records for and
// the time zone of dates, in requests and answers.
type dataAPI struct {
	clientID string
	loc      *time.Location
}

// client rejects paths whose {client_id} is not the one this sidecar records for.
func (d dataAPI) client(h HandlerFunc) HandlerFunc {
	return func(ctx *fasthttp.RequestCtx, p Params) {
		if p.Get("client_id") != d.clientID {
			WriteError(ctx, fasthttp.StatusNotFound, "unknown_client",
				"client "+quote(p.Get("client_id"))+" is not recorded here; this sidecar records client "+quote(d.clientID), "client_id")
			return
		}
		h(ctx, p)
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// timeLayout is how the API writes every datetime: RFC 3339 to the second with the
// numeric offset of -timezone ("2026-03-16T10:00:00+01:00"; "+00:00" in UTC, never "Z"),
// the form of the Signals examples (seed 002).
const timeLayout = "2006-01-02T15:04:05-07:00"

// format writes a unix time in the configured zone (timeLayout).
func (d dataAPI) format(unix int64) string {
	return time.Unix(unix, 0).In(d.loc).Format(timeLayout)
}

// formatIf is format for an optional time: "" when unset.
func (d dataAPI) formatIf(unix int64) string {
	if unix == 0 {
		return ""
	}
	return d.format(unix)
}

// formatTime is format for an optional time: "" when zero.
func (d dataAPI) formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return d.format(t.Unix())
}

// nullTime is format for an optional time of an object whose fields are always present:
// null when unset.
func (d dataAPI) nullTime(unix int64) engine.NullString {
	return engine.NullString(d.formatIf(unix))
}

// dayTime writes the start of a day (a day number of the engine) in the configured
// zone: the "date" of a daily insight, a campaign's start and stop.
func (d dataAPI) dayTime(day int32) string {
	y, m, dd := time.Unix(int64(day)*86400, 0).UTC().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, d.loc).Format(timeLayout)
}

// eventFilter reads the filters shared by the events and event-group endpoints.
func (d dataAPI) eventFilter(q *query, app string, datesRequired bool) engine.EventFilter {
	f := engine.EventFilter{AppID: app, AdID: q.str("ad_id"), Type: q.str("event_type")}
	f.From, f.To = q.dateRange(datesRequired)
	if f.Type != "" && !engine.IsEventType(f.Type) && q.err == nil {
		q.err = badParam("event_type", "%q is not one of %s", f.Type, strings.Join(engine.EventTypes, ", "))
	}
	if v := q.str("event_type_id"); v != "" && q.err == nil {
		typ, id, err := engine.ParseEventTypeID(v)
		switch {
		case err != nil:
			q.err = badParam("event_type_id", "%s", err.Error())
		case f.Type != "" && f.Type != typ:
			q.err = badParam("event_type_id", "%q names type %s but event_type is %s", v, typ, f.Type)
		}
		f.Type, f.TypeID = typ, id
	}
	return f
}

// readBody decodes a JSON body, answering 415 or 400 itself when it cannot.
func (d dataAPI) readBody(ctx *fasthttp.RequestCtx, v any) bool {
	err := decodeBody(ctx, v)
	switch {
	case errors.Is(err, errNotJSON):
		WriteError(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type", err.Error(), "")
	case err != nil:
		writeBadRequest(ctx, err)
	}
	return err == nil
}

// writeStoreError answers a failed read of the store.
func writeStoreError(ctx *fasthttp.RequestCtx, err error) {
	WriteError(ctx, fasthttp.StatusServiceUnavailable, "store_unavailable", "cannot read the store: "+err.Error(), "")
}

// writeDefError answers a refused definition change.
func writeDefError(ctx *fasthttp.RequestCtx, err error) {
	var fe *engine.FieldError
	switch {
	case errors.As(err, &fe):
		WriteError(ctx, fasthttp.StatusBadRequest, "invalid_field", fe.Error(), fe.Field)
	case errors.Is(err, engine.ErrNotFound):
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "no event group with this id in this app", "id")
	default:
		writeStoreError(ctx, err)
	}
}

// decodeBody decodes a JSON request body into v, refusing what is not JSON.
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	if !isJSON(ctx) {
		return errNotJSON
	}
	if err := json.Unmarshal(ctx.PostBody(), v); err != nil {
		return &paramError{"body", "is not valid JSON for this endpoint: " + err.Error()}
	}
	return nil
}

// isJSON reports whether the request body is declared JSON, or not declared at all.
func isJSON(ctx *fasthttp.RequestCtx) bool {
	// Media types are case-insensitive (RFC 9110 §8.3.1); parameters such as charset may follow.
	ct, _, _ := strings.Cut(string(ctx.Request.Header.ContentType()), ";")
	ct = strings.TrimSpace(ct)
	return ct == "" || strings.EqualFold(ct, "application/json")
}

var errNotJSON = errors.New("body must be JSON (Content-Type: application/json)")
