package proxy

import (
	"context"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// Definer is what the definitions routes use: the event groups with their event counts,
// and the changes of event groups, custom sources and converted events. The engine
// serializes the changes (definitions.go, under its definitions lock).
type Definer interface {
	EventGroups(f engine.GroupFilter, offset, limit int) ([]engine.GroupStats, int, error)
	GroupEvents(app string, groups []engine.Group, from, to int64) ([]engine.GroupStats, error)
	AddGroup(ctx context.Context, g engine.Group) (engine.Group, error)
	SetGroupStatus(ctx context.Context, app, id, status string) (engine.Group, error)
	AddSource(ctx context.Context, s engine.Source) (engine.Source, error)
	SetConverted(ctx context.Context, g engine.Group) (engine.Group, error)
	ConvertedEvents(app string) []engine.Group
	ClearConverted(ctx context.Context, app, campaignID, adID string) (engine.Group, error)
	ConversionChoices(app, campaignID, adID string) ([]engine.ConversionChoice, error)
}

// definitionsAPI serves the event groups, the custom source definitions and the
// converted events (SPEC §6.1–6.3).
type definitionsAPI struct {
	dataAPI
	rec Definer
}

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

func (e definitionsAPI) listGroups(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := e.eventFilter(q, p.Get("app_id"), false)
	status := q.str("status")
	if status != "" && status != engine.StatusActive && status != engine.StatusArchived && q.err == nil {
		q.err = badParam("status", "%q is not active or archived", status)
	}
	limit, offset := q.pageParams(100, 1000)
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
func (e definitionsAPI) groupRows(stats []engine.GroupStats) []groupRow {
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

// group is the definition the request asks for in app.
func (r *groupRequest) group(app string) engine.Group {
	return engine.Group{AppID: app, Type: r.Type, TypeID: r.TypeID, TypeValue: r.TypeValue, AdID: r.AdID, CampaignID: r.CampaignID}
}

// convertedResult answers a change of a converted event (the fields in the order the
// answer always had).
type convertedResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
}

func (e definitionsAPI) addGroup(ctx *fasthttp.RequestCtx, p Params) {
	var req groupRequest
	if !e.readBody(ctx, &req) {
		return
	}
	g, err := e.rec.AddGroup(ctx, req.group(p.Get("app_id")))
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusCreated, groupRow{ID: g.ID, AppID: g.AppID, AdID: g.AdID, CampaignID: g.CampaignID,
		Type: g.Type, TypeID: g.TypeID, TypeValue: g.TypeValue, Status: g.Status})
}

func (e definitionsAPI) patchGroup(ctx *fasthttp.RequestCtx, p Params) {
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

func (e definitionsAPI) sourceRow(s *engine.Source) sourceRow {
	return sourceRow{ID: s.ID, Type: engine.SourceCustom, Name: s.Name, Phrase: s.Phrase, Created: e.format(s.Created)}
}

func (e definitionsAPI) addSource(ctx *fasthttp.RequestCtx, p Params) {
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

// convertedEvent sets the event that counts a campaign's (or an ad's) sessions as
// converted; it applies to new messages at once and to history after a refresh.
func (e definitionsAPI) convertedEvent(ctx *fasthttp.RequestCtx, p Params) {
	var req groupRequest
	if !e.readBody(ctx, &req) {
		return
	}
	g, err := e.rec.SetConverted(ctx, req.group(p.Get("app_id")))
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, convertedResult{ID: g.ID, Success: true})
}

// convertedRow is a converted-event definition: the event that counts a session of the
// campaign (or of the ad) as converted.
type convertedRow struct {
	ID          string `json:"id"`
	CampaignID  string `json:"campaign_id,omitempty"`
	AdID        string `json:"ad_id,omitempty"`
	Type        string `json:"type"`
	TypeID      string `json:"type_id,omitempty"`
	TypeValue   string `json:"type_value,omitempty"`
	CreatedTime string `json:"created_time"`
}

// listConverted answers the app's converted events in force, one per campaign or ad:
// GET …/converted_events.
func (e definitionsAPI) listConverted(ctx *fasthttp.RequestCtx, p Params) {
	groups := e.rec.ConvertedEvents(p.Get("app_id"))
	rows := make([]convertedRow, len(groups))
	for i, g := range groups {
		rows[i] = convertedRow{ID: g.ID, CampaignID: g.CampaignID, AdID: g.AdID, Type: g.Type, TypeID: g.TypeID,
			TypeValue: g.TypeValue, CreatedTime: e.format(g.Created)}
	}
	WriteJSON(ctx, fasthttp.StatusOK, wholePage(rows))
}

// clearConverted removes the converted event of a campaign (?campaign_id=) or of an ad
// (?ad_id=): DELETE …/converted_events. 404 when it has none.
func (e definitionsAPI) clearConverted(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	g, err := e.rec.ClearConverted(ctx, p.Get("app_id"), q.str("campaign_id"), q.str("ad_id"))
	switch {
	case errors.Is(err, engine.ErrNotFound):
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "this campaign or ad has no converted event", "campaign_id")
	case err != nil:
		writeDefError(ctx, err)
	default:
		WriteJSON(ctx, fasthttp.StatusOK, convertedResult{ID: g.ID, Success: true})
	}
}

// conversionChoices lists the events recorded in the sessions of a campaign's ads (or of
// one ad, or of every ad of the app) that can be its converted event, each with the
// sessions that had it: GET …/converted_events/choices[?campaign_id|ad_id].
func (e definitionsAPI) conversionChoices(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	campaign, ad := q.str("campaign_id"), q.str("ad_id")
	if campaign != "" && ad != "" {
		writeBadRequest(ctx, badParam("campaign_id", "give ad_id or campaign_id, not both"))
		return
	}
	choices, err := e.rec.ConversionChoices(p.Get("app_id"), campaign, ad)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, wholePage(choices))
}
