package proxy

import (
	"bufio"
	"encoding/csv"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// EventReader is what the events routes read: pages and exports of event rows, the
// event types that occur and the standalone sessions.
type EventReader interface {
	EventPage(f engine.EventFilter, offset, limit int) ([]engine.EventRow, int, error)
	ExportEvents(f engine.EventFilter, offset, limit int, fn func(*engine.EventRow) bool) error
	EventTypesOf(f engine.EventFilter) ([]string, error)
	StandaloneStats(app string, from, to int64) (engine.Standalone, error)
}

// eventsAPI serves the events endpoints of SPEC §6.1.
type eventsAPI struct {
	dataAPI
	rec EventReader
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
func (e eventsAPI) eventRow(r *engine.EventRow) eventRow {
	return eventRow{ID: r.ID, AppID: r.AppID, AdID: r.AdID, CampaignID: r.CampaignID, Phone: r.Phone, UserID: r.UserID,
		Type: r.Type, TypeID: r.TypeID, TypeValue: r.TypeValue, Date: e.format(r.Time), ConversationID: r.ConversationID,
		ConversationExpireTime: e.format(r.ExpireTime), SourceType: r.SourceType, SourceID: r.SourceID}
}

func (e eventsAPI) listEvents(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), true)
	limit, offset := q.pageParams(100, 1000)
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

// csv writes the row's cells; the phone in E.164 with '+', as the contacts export writes
// it (the JSON list keeps the digits of the Signals examples).
func (r *eventRow) csv() []string {
	return []string{r.ID, r.Date, r.AppID, r.Type, r.TypeID, r.TypeValue, engine.PhoneE164(r.Phone), r.UserID,
		r.AdID, r.CampaignID, r.SourceType, r.SourceID, r.ConversationID, r.ConversationExpireTime}
}

// exportEvents streams the selected events as CSV (RFC 4180), so a long range never
// sits in memory. limit and offset are optional here: without them, every event; a
// given limit has the documented range 1–1000 of the seed, as on the JSON list.
func (e eventsAPI) exportEvents(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), true)
	limit, offset := q.pageParams(1<<31-1, 1000)
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
// client is gone. The body is streamed, so a long export never sits in memory; a
// failure after the first bytes can only end the file with a comment line. rows runs on
// fasthttp's stream goroutine, out of the handler's guard: streamBody recovers a panic
// there, logs and counts it, after the file got its comment line.
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
func (e eventsAPI) eventTypes(ctx *fasthttp.RequestCtx, p Params) {
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
func (e eventsAPI) standaloneStats(ctx *fasthttp.RequestCtx, p Params) {
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
