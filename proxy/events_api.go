package proxy

import (
	"bufio"
	"encoding/csv"
	"errors"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// eventsAPI serves the events endpoints of SPEC §6.1 from the recorder's store.
type eventsAPI struct {
	clientID string
	rec      *engine.Recorder
	loc      *time.Location
}

// appPrefix is the path prefix of every per-app route.
const appPrefix = "/v1/clients/{client_id}/apps/{app_id}"

// RegisterDataRoutes adds every route that reads or defines recorded data: events,
// event groups and sources (§6.1), insights (§6.1–6.3), spend import and contacts
// export (§6.4–6.5), conversions (§9) and the spend sync (§10; sync may be nil). They
// share one view of the recorder.
func RegisterDataRoutes(a *API, clientID string, rec *engine.Recorder, loc *time.Location, sync *engine.SpendSync) {
	e := &eventsAPI{clientID: clientID, rec: rec, loc: loc}
	e.registerSpendSync(a, sync)
	e.registerEvents(a)
	insightsAPI{e}.register(a)
	e.registerImport(a)
	e.registerConversions(a)
}

// registerEvents adds the events, event types, event groups and sources routes.
func (e *eventsAPI) registerEvents(a *API) {
	a.Handle("GET", appPrefix+"/events", AuthToken, e.client(e.listEvents))
	a.Handle("GET", appPrefix+"/events/export", AuthToken, e.client(e.exportEvents))
	a.Handle("GET", appPrefix+"/event_types", AuthToken, e.client(e.eventTypes))
	a.Handle("GET", appPrefix+"/standalone-events-stats", AuthToken, e.client(e.standaloneStats))
	a.Handle("GET", appPrefix+"/event_groups", AuthToken, e.client(e.listGroups))
	a.Handle("POST", appPrefix+"/event_groups", AuthToken, e.client(e.addGroup))
	a.Handle("PATCH", appPrefix+"/event_groups/{id}", AuthToken, e.client(e.patchGroup))
	a.Handle("GET", appPrefix+"/sources", AuthToken, e.client(e.listSources))
	a.Handle("POST", appPrefix+"/sources", AuthToken, e.client(e.addSource))
}

// client rejects paths whose {client_id} is not the one this sidecar records for.
func (e *eventsAPI) client(h HandlerFunc) HandlerFunc {
	return func(ctx *fasthttp.RequestCtx, p Params) {
		if p.Get("client_id") != e.clientID {
			WriteError(ctx, fasthttp.StatusNotFound, "unknown_client",
				"client "+quote(p.Get("client_id"))+" is not recorded here; this sidecar records client "+quote(e.clientID), "client_id")
			return
		}
		h(ctx, p)
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// eventFilter reads the filters shared by the events endpoints.
func (e *eventsAPI) eventFilter(q *query, app string, datesRequired bool) engine.EventFilter {
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

// eventRow is one event as the Signals events list shows it.
type eventRow struct {
	ID                     string `json:"id"`
	AppID                  string `json:"app_id"`
	AdID                   string `json:"ad_id"`
	CampaignID             string `json:"campaign_id"`
	Phone                  string `json:"phone"`
	UserID                 string `json:"user_id,omitempty"`
	Type                   string `json:"type"`
	TypeID                 string `json:"type_id"`
	TypeValue              string `json:"type_value"`
	Date                   string `json:"date"`
	ConversationID         string `json:"conversation_id"`
	ConversationExpireTime string `json:"conversation_expire_time"`
	SourceType             string `json:"source_type"`
	SourceID               string `json:"source_id"`
}

// eventRow encodes an event row of the engine.
func (e *eventsAPI) eventRow(r *engine.EventRow) eventRow {
	return eventRow{ID: r.ID, AppID: r.AppID, AdID: r.AdID, CampaignID: r.CampaignID, Phone: r.Phone, UserID: r.UserID,
		Type: r.Type, TypeID: r.TypeID, TypeValue: r.TypeValue, Date: e.format(r.Time), ConversationID: r.ConversationID,
		ConversationExpireTime: e.format(r.ExpireTime), SourceType: r.SourceType, SourceID: r.SourceID}
}

func (e *eventsAPI) format(unix int64) string {
	return time.Unix(unix, 0).In(e.loc).Format(time.RFC3339)
}

func (e *eventsAPI) listEvents(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), true)
	limit, offset := q.intRange("limit", 100, 1, 1000), q.intRange("offset", 0, 0, 1<<30)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	events, total, err := e.rec.EventPage(f, offset, limit)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	rows := make([]eventRow, 0, len(events))
	for i := range events {
		rows = append(rows, e.eventRow(&events[i]))
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: total, Offset: offset, Limit: limit})
}

// csvColumns are the columns of the events export, in order.
var csvColumns = []string{"id", "date", "app_id", "type", "type_id", "type_value", "phone", "user_id",
	"ad_id", "campaign_id", "source_type", "source_id", "conversation_id", "conversation_expire_time"}

func (r *eventRow) csv() []string {
	return []string{r.ID, r.Date, r.AppID, r.Type, r.TypeID, r.TypeValue, r.Phone, r.UserID,
		r.AdID, r.CampaignID, r.SourceType, r.SourceID, r.ConversationID, r.ConversationExpireTime}
}

// exportEvents streams the selected events as CSV (RFC 4180), so a long range never
// sits in memory. limit and offset are optional here: without them, every event; a
// given limit has the documented range 1–1000 of the seed, as on the JSON list.
func (e *eventsAPI) exportEvents(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), true)
	limit, offset := q.intRange("limit", 1<<31-1, 1, 1000), q.intRange("offset", 0, 0, 1<<30)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	streamCSV(ctx, "events.csv", csvColumns, func(write func([]string) bool) error {
		return e.rec.ExportEvents(f, offset, limit, func(r *engine.EventRow) bool {
			row := e.eventRow(r)
			return write(row.csv())
		})
	})
}

// streamCSV answers a CSV download (RFC 4180, CRLF) whose rows rows writes through
// write, which defuses formula cells (engine.EscapeCSV) and reports false once the
// client is gone. The
// body is streamed, so a long export never sits in memory; a failure after the first
// bytes can only end the file with a comment line. rows runs on fasthttp's stream
// goroutine, out of the handler's guard: streamBody recovers a panic there, logs and
// counts it, after the file got its comment line.
func streamCSV(ctx *fasthttp.RequestCtx, filename string, header []string, rows func(write func([]string) bool) error) {
	ctx.SetContentType("text/csv; charset=utf-8")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	streamBody(ctx, func(bw *bufio.Writer) {
		w := csv.NewWriter(bw)
		w.UseCRLF = true // RFC 4180 §2.1
		defer func() {
			if v := recover(); v != nil {
				_ = w.Write([]string{csvPanicLine})
				w.Flush()
				panic(v) // streamBody logs and counts it
			}
		}()
		_ = w.Write(header)
		err := rows(func(cells []string) bool {
			_ = w.Write(engine.EscapeCSV(cells))
			return w.Error() == nil
		})
		if err != nil {
			_ = w.Write([]string{"# export failed: " + err.Error()})
		}
		w.Flush()
	})
}

// csvPanicLine ends an export whose rows panicked, so that the file does not pass for a
// whole one; the log has the details.
const csvPanicLine = "# export failed: internal error; the sidecar log has the details"

// eventTypeNames are the display names of the event types.
var eventTypeNames = map[string]string{
	engine.TypeButton: "Button", engine.TypeButtonReply: "Button reply", engine.TypeConversation: "Conversation",
	engine.TypeConverted: "Converted", engine.TypeEngagement: "Engagement", engine.TypeKeyword: "Keyword",
	engine.TypeLink: "Link", engine.TypeList: "List", engine.TypeListReply: "List reply",
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// eventTypes lists the event types that occur among the selected events.
func (e *eventsAPI) eventTypes(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), true)
	limit := q.intRange("limit", 1000, 1, 1000)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	types, err := e.rec.EventTypesOf(f)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	out := []nameValue{}
	for _, t := range types[:min(limit, len(types))] {
		out = append(out, nameValue{eventTypeNames[t], t})
	}
	WriteJSON(ctx, fasthttp.StatusOK, out)
}

// standaloneStats counts sessions that no referral click (ad or post) started (QR codes,
// links, campaigns, organic) and their events, over an optional date range.
func (e *eventsAPI) standaloneStats(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	from, to := q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	out, err := e.rec.StandaloneStats(p.Get("app_id"), from, to)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, &out)
}

// writeStoreError answers a failed read of the store.
func writeStoreError(ctx *fasthttp.RequestCtx, err error) {
	WriteError(ctx, fasthttp.StatusServiceUnavailable, "store_unavailable", "cannot read the store: "+err.Error(), "")
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
