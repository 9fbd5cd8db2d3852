package proxy

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// groupRow is an event group as the Signals API lists it, with its first and last
// matching event.
type groupRow struct {
	ID         string `json:"id"`
	AppID      string `json:"app_id"`
	AdID       string `json:"ad_id"`
	CampaignID string `json:"campaign_id"`
	Type       string `json:"type"`
	TypeID     string `json:"type_id"`
	TypeValue  string `json:"type_value"`
	Status     string `json:"status"`
	FirstEvent string `json:"first_event,omitempty"`
	LastEvent  string `json:"last_event,omitempty"`
	Events     int    `json:"events_count"`
}

func (e *eventsAPI) listGroups(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), false)
	status := q.str("status")
	if status != "" && status != engine.StatusActive && status != engine.StatusArchived && q.err == nil {
		q.err = badParam("status", "%q is not active or archived", status)
	}
	limit, offset := q.intRange("limit", 100, 1, 1000), q.intRange("offset", 0, 0, 1<<30)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	stats, total, err := e.rec.EventGroups(engine.GroupFilter{AppID: f.AppID, Status: status, Type: f.Type,
		TypeID: f.TypeID, AdID: f.AdID, From: f.From, To: f.To}, offset, limit)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: e.groupRows(stats), TotalCount: total, Offset: offset, Limit: limit})
}

// groupRows encodes groups with their event counts and first and last matching events.
func (e *eventsAPI) groupRows(stats []engine.GroupStats) []groupRow {
	rows := make([]groupRow, len(stats))
	for i := range stats {
		g := &stats[i]
		rows[i] = groupRow{ID: g.ID, AppID: g.AppID, AdID: g.AdID, CampaignID: g.CampaignID, Type: g.Type,
			TypeID: g.TypeID, TypeValue: g.TypeValue, Status: g.Status, Events: g.Events}
		if g.Events > 0 {
			rows[i].FirstEvent, rows[i].LastEvent = e.format(g.First), e.format(g.Last)
		}
	}
	return rows
}

// groupRequest is the body of POST event_groups.
type groupRequest struct {
	Type       string `json:"type"`
	TypeID     string `json:"type_id"`
	TypeValue  string `json:"type_value"`
	AdID       string `json:"ad_id"`
	CampaignID string `json:"campaign_id"`
}

func (e *eventsAPI) addGroup(ctx *fasthttp.RequestCtx, p Params) {
	var req groupRequest
	if !e.readBody(ctx, &req) {
		return
	}
	g, err := e.rec.AddGroup(ctx, engine.Group{AppID: p.Get("app_id"), Type: req.Type, TypeID: req.TypeID,
		TypeValue: req.TypeValue, AdID: req.AdID, CampaignID: req.CampaignID})
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusCreated, groupRow{ID: g.ID, AppID: g.AppID, AdID: g.AdID, CampaignID: g.CampaignID,
		Type: g.Type, TypeID: g.TypeID, TypeValue: g.TypeValue, Status: g.Status})
}

func (e *eventsAPI) patchGroup(ctx *fasthttp.RequestCtx, p Params) {
	var req struct {
		Status string `json:"status"`
	}
	if !e.readBody(ctx, &req) {
		return
	}
	g, err := e.rec.SetGroupStatus(ctx, p.Get("app_id"), p.Get("id"), req.Status)
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	stats, err := e.rec.GroupEvents(g.AppID, []engine.Group{g}, 0, 1<<62)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, e.groupRows(stats)[0])
}

// sourceRow is a custom source definition.
type sourceRow struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Phrase  string `json:"phrase"`
	Created string `json:"created_time"`
}

func (e *eventsAPI) sourceRow(s *engine.Source) sourceRow {
	return sourceRow{ID: s.ID, Type: engine.SourceCustom, Name: s.Name, Phrase: s.Phrase, Created: e.format(s.Created)}
}

func (e *eventsAPI) addSource(ctx *fasthttp.RequestCtx, p Params) {
	var req struct {
		Name   string `json:"name"`
		Phrase string `json:"phrase"`
	}
	if !e.readBody(ctx, &req) {
		return
	}
	s, err := e.rec.AddSource(ctx, engine.Source{AppID: p.Get("app_id"), Name: req.Name, Phrase: req.Phrase})
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusCreated, e.sourceRow(&s))
}

// readBody decodes a JSON body, answering 415 or 400 itself when it cannot.
func (e *eventsAPI) readBody(ctx *fasthttp.RequestCtx, v any) bool {
	err := decodeBody(ctx, v)
	switch {
	case errors.Is(err, errNotJSON):
		WriteError(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type", err.Error(), "")
	case err != nil:
		writeBadRequest(ctx, err)
	}
	return err == nil
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
