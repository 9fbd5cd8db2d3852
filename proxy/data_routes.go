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

// ClientData is what the data routes of one client read and change: its recorder, and
// its spend sync (nil without one).
type ClientData struct {
	Rec  *engine.Recorder
	Sync *engine.SpendSync
}

// RegisterDataRoutes adds every route that reads or defines recorded data: events,
// event groups and sources (§6.1), insights (§6.1–6.3), spend import and contacts
// export (§6.4–6.5), conversions (§9) and the spend sync (§10). Each request is served
// from the data of the {client_id} in its path: a member records one client, a read
// replica's fleet view one per followed stream (§11).
func RegisterDataRoutes(a *API, clients map[string]ClientData, loc *time.Location) {
	stores := make(map[string]dataStores, len(clients))
	for id, c := range clients {
		s := dataStores{events: c.Rec, definitions: c.Rec, sources: c.Rec, insights: c.Rec, imports: c.Rec, conversions: c.Rec}
		if c.Sync != nil { // a nil *SpendSync in the interface would not be nil
			s.sync = c.Sync
		}
		stores[id] = s
	}
	registerData(a, loc, stores)
}

// registerData adds the data routes, each group's handlers over the stores of the client
// in the path. A route is matched in the order added: the spend sync goes before the
// /ads/{ad_id} routes, which would take "sync" for an ad id.
func registerData(a *API, loc *time.Location, stores map[string]dataStores) {
	d, known := dataAPI{loc: loc}, knownOf(stores)
	ss := groupsOf(stores, known, func(s dataStores) spendSyncAPI { return spendSyncAPI{d, s.sync} })
	a.Handle("GET", appPrefix+"/ads/sync", AuthToken, on(ss, spendSyncAPI.state))
	a.Handle("POST", appPrefix+"/ads/sync", AuthToken, on(ss, spendSyncAPI.runNow))

	ev := groupsOf(stores, known, func(s dataStores) eventsAPI { return eventsAPI{d, s.events} })
	def := groupsOf(stores, known, func(s dataStores) definitionsAPI { return definitionsAPI{d, s.definitions} })
	src := groupsOf(stores, known, func(s dataStores) sourcesAPI { return sourcesAPI{d, s.sources} })
	a.Handle("GET", appPrefix+"/events", AuthToken, on(ev, eventsAPI.listEvents))
	a.Handle("GET", appPrefix+"/events/export", AuthToken, on(ev, eventsAPI.exportEvents))
	a.Handle("GET", appPrefix+"/event_types", AuthToken, on(ev, eventsAPI.eventTypes))
	a.Handle("GET", appPrefix+"/standalone-events-stats", AuthToken, on(ev, eventsAPI.standaloneStats))
	a.Handle("GET", appPrefix+"/event_groups", AuthToken, on(def, definitionsAPI.listGroups))
	a.Handle("POST", appPrefix+"/event_groups", AuthToken, on(def, definitionsAPI.addGroup))
	a.Handle("PATCH", appPrefix+"/event_groups/{id}", AuthToken, on(def, definitionsAPI.patchGroup))
	a.Handle("GET", appPrefix+"/sources", AuthToken, on(src, sourcesAPI.listSources))
	a.Handle("POST", appPrefix+"/sources", AuthToken, on(def, definitionsAPI.addSource))
	a.Handle("GET", appPrefix+"/funnel", AuthToken, on(src, sourcesAPI.funnel))

	in := groupsOf(stores, known, func(s dataStores) insightsAPI { return insightsAPI{d, s.insights} })
	a.Handle("GET", "/v1/clients", AuthToken, known.list)
	a.Handle("GET", "/v1/clients/{client_id}/apps", AuthToken, on(in, insightsAPI.apps))
	a.Handle("GET", "/v1/clients/{client_id}/facebook-accounts", AuthToken, on(in, insightsAPI.facebookAccounts))
	a.Handle("GET", "/v1/clients/{client_id}/facebook-accounts/{facebook_account}", AuthToken, on(in, insightsAPI.adAccounts))
	a.Handle("GET", appPrefix+"/ads/account/{ad_account_id}", AuthToken, on(in, insightsAPI.listAds))
	a.Handle("GET", appPrefix+"/ads/{ad_id}", AuthToken, on(in, insightsAPI.getAd))
	a.Handle("GET", appPrefix+"/ads/{ad_id}/insights", AuthToken, on(in, insightsAPI.adInsights))
	a.Handle("GET", appPrefix+"/campaigns/account/{ad_account_id}", AuthToken, on(in, insightsAPI.listCampaigns))
	a.Handle("GET", appPrefix+"/campaigns/{campaign_id}", AuthToken, on(in, insightsAPI.getCampaign))
	a.Handle("GET", appPrefix+"/campaigns/{campaign_id}/insights", AuthToken, on(in, insightsAPI.campaignInsights))
	for _, p := range []string{"/ads/account/{ad_account_id}/refresh", "/ads/{ad_id}/refresh",
		"/campaigns/account/{ad_account_id}/refresh", "/campaigns/{campaign_id}/refresh"} {
		a.Handle("POST", appPrefix+p, AuthToken, on(in, insightsAPI.refresh))
	}
	a.Handle("POST", appPrefix+"/converted_events", AuthToken, on(def, definitionsAPI.convertedEvent))
	a.Handle("GET", appPrefix+"/converted_events", AuthToken, on(def, definitionsAPI.listConverted))
	a.Handle("DELETE", appPrefix+"/converted_events", AuthToken, on(def, definitionsAPI.clearConverted))
	a.Handle("GET", appPrefix+"/converted_events/choices", AuthToken, on(def, definitionsAPI.conversionChoices))
	a.Handle("GET", appPrefix+"/adsets/account/{ad_account_id}", AuthToken, on(in, insightsAPI.listAdSets))

	imp := groupsOf(stores, known, func(s dataStores) importAPI { return importAPI{d, s.imports} })
	a.Handle("POST", appPrefix+"/ads/import", AuthToken, on(imp, importAPI.importSpend))
	a.Handle("GET", appPrefix+"/contacts/export", AuthToken, on(src, sourcesAPI.exportContacts))

	conv := groupsOf(stores, known, func(s dataStores) conversionsAPI { return conversionsAPI{d, s.conversions} })
	a.Handle("GET", appPrefix+"/conversions", AuthToken, on(conv, conversionsAPI.listConversions))
}

// byClient is one route group for each client recorded here.
type byClient[G any] struct {
	groups map[string]G
	known  knownClients
}

// groupsOf builds the route group that mk makes of each client's stores.
func groupsOf[G any](stores map[string]dataStores, known knownClients, mk func(dataStores) G) byClient[G] {
	b := byClient[G]{groups: make(map[string]G, len(stores)), known: known}
	for id, s := range stores {
		b.groups[id] = mk(s)
	}
	return b
}

// on serves a request with handler h of the group of the client in its path, and
// refuses a client that is not recorded here.
func on[G any](b byClient[G], h func(G, *fasthttp.RequestCtx, Params)) HandlerFunc {
	return func(ctx *fasthttp.RequestCtx, p Params) {
		id := p.Get("client_id")
		g, ok := b.groups[id]
		if !ok {
			b.known.refuse(ctx, id)
			return
		}
		h(g, ctx, p)
	}
}

// dataAPI is what every data route group shares: the time zone of dates, in requests
// and answers.
type dataAPI struct {
	loc *time.Location
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
