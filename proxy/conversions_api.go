package proxy

import (
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// conversionRow is one line of the conversions activity log (SPEC §9).
type conversionRow struct {
	EventID        string  `json:"event_id"`
	EventName      string  `json:"event_name"`
	EventTime      string  `json:"event_time"`
	Source         string  `json:"source"`
	SourceEventID  string  `json:"source_event_id"`
	ConversationID string  `json:"conversation_id,omitempty"`
	AdID           string  `json:"ad_id,omitempty"`
	Value          float64 `json:"value,omitempty"`
	Currency       string  `json:"currency,omitempty"`
	Status         string  `json:"status"`
	Reason         string  `json:"reason,omitempty"`
	Attempts       int     `json:"attempts"`
	LastError      string  `json:"last_error,omitempty"`
	ErrorCode      int     `json:"error_code,omitempty"`
	ErrorSubcode   int     `json:"error_subcode,omitempty"`
	QueuedAt       string  `json:"queued_at"`
	UpdatedAt      string  `json:"updated_at,omitempty"`
	SentAt         string  `json:"sent_at,omitempty"`
}

// ConversionLister is what the conversions route reads: an app's conversions.
type ConversionLister interface {
	Conversions(f engine.ConversionFilter, fn func(c *engine.Conversion) bool) error
}

// conversionsAPI serves the conversions activity log.
type conversionsAPI struct {
	dataAPI
	rec ConversionLister
}

// listConversions pages through an app's conversions in source-event time order,
// filtered by status and date (date_from/date_to, optional).
func (e conversionsAPI) listConversions(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := engine.ConversionFilter{AppID: p.Get("app_id"), Status: q.str("status")}
	f.From, f.To = q.dateRange(false)
	limit, offset := q.pageParams(100, 1000)
	if f.Status != "" && !slices.Contains(engine.ConversionStatuses, f.Status) && q.err == nil {
		q.err = badParam("status", "%q is not one of %s", f.Status, strings.Join(engine.ConversionStatuses, ", "))
	}
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	rows, total := []conversionRow{}, 0
	err := e.rec.Conversions(f, func(c *engine.Conversion) bool {
		if total >= offset && len(rows) < limit {
			rows = append(rows, e.conversionRow(c))
		}
		total++
		return true
	})
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: total, Offset: offset, Limit: limit})
}

func (e conversionsAPI) conversionRow(c *engine.Conversion) conversionRow {
	return conversionRow{EventID: c.ID, EventName: c.Name, EventTime: e.format(c.Time), Source: c.Source,
		SourceEventID: c.SourceEventID, ConversationID: c.ConversationID, AdID: c.AdID, Value: c.Value,
		Currency: c.Currency, Status: c.Status, Reason: c.Reason, Attempts: c.Attempts, LastError: c.LastError,
		ErrorCode: c.ErrorCode, ErrorSubcode: c.ErrorSubcode, QueuedAt: e.format(c.Queued),
		UpdatedAt: e.formatIf(c.Updated), SentAt: e.formatIf(c.SentAt)}
}
