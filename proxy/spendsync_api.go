package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// spendSyncRow is one ad account's spend sync state (SPEC §10).
type spendSyncRow struct {
	AdAccountID string `json:"ad_account_id"`
	AppID       string `json:"app_id"`
	LastRun     string `json:"last_run,omitempty"`
	LastSuccess string `json:"last_success,omitempty"`
	NextRun     string `json:"next_run,omitempty"`
	Rows        int    `json:"rows"`
	LastError   string `json:"last_error,omitempty"`
	Stopped     bool   `json:"stopped"`
}

// registerSpendSync adds GET (state) and POST (run now) of the app's spend sync. It goes
// before the /ads/{ad_id} routes, which would take "sync" for an ad id.
func (e *eventsAPI) registerSpendSync(a *API, sync *engine.SpendSync) {
	a.Handle("GET", appPrefix+"/ads/sync", AuthToken, e.client(func(ctx *fasthttp.RequestCtx, p Params) {
		WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"data": e.spendSyncRows(sync, p.Get("app_id"))})
	}))
	a.Handle("POST", appPrefix+"/ads/sync", AuthToken, e.client(func(ctx *fasthttp.RequestCtx, p Params) {
		app := p.Get("app_id")
		if sync == nil || sync.RunNow(app) == 0 {
			WriteError(ctx, fasthttp.StatusNotFound, "no_spend_sync",
				"no ad account syncs its spend into app "+quote(app)+"; start the sidecar with -spend-sync act_<id>="+app, "app_id")
			return
		}
		WriteJSON(ctx, fasthttp.StatusAccepted, map[string]any{"data": e.spendSyncRows(sync, app)})
	}))
}

func (e *eventsAPI) spendSyncRows(sync *engine.SpendSync, app string) []spendSyncRow {
	rows := []spendSyncRow{}
	if sync == nil {
		return rows
	}
	for _, st := range sync.Status(app) {
		rows = append(rows, spendSyncRow{AdAccountID: st.AdAccountID, AppID: st.AppID, LastRun: e.formatTime(st.LastRun),
			LastSuccess: e.formatTime(st.LastSuccess), NextRun: e.formatTime(st.NextRun), Rows: st.Rows,
			LastError: st.LastError, Stopped: st.Stopped})
	}
	return rows
}

// formatTime is format for an optional time: "" when zero.
func (e *eventsAPI) formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return e.format(t.Unix())
}
