package proxy

import (
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

// SpendSyncer is what the spend sync routes use: the state of an app's syncs, and a run
// now.
type SpendSyncer interface {
	Status(app string) []engine.SpendSyncStatus
	RunNow(app string) int
}

// spendSyncAPI serves GET (state) and POST (run now) of an app's spend sync; sync is nil
// when no ad account syncs.
type spendSyncAPI struct {
	dataAPI
	sync SpendSyncer
}

func (s spendSyncAPI) state(ctx *fasthttp.RequestCtx, p Params) {
	WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"data": s.rows(p.Get("app_id"))})
}

func (s spendSyncAPI) runNow(ctx *fasthttp.RequestCtx, p Params) {
	app := p.Get("app_id")
	if s.sync == nil || s.sync.RunNow(app) == 0 {
		WriteError(ctx, fasthttp.StatusNotFound, "no_spend_sync",
			"no ad account syncs its spend into app "+quote(app)+"; start the sidecar with -spend-sync act_<id>="+app, "app_id")
		return
	}
	WriteJSON(ctx, fasthttp.StatusAccepted, map[string]any{"data": s.rows(app)})
}

func (s spendSyncAPI) rows(app string) []spendSyncRow {
	rows := []spendSyncRow{}
	if s.sync == nil {
		return rows
	}
	for _, st := range s.sync.Status(app) {
		rows = append(rows, spendSyncRow{AdAccountID: st.AdAccountID, AppID: st.AppID, LastRun: s.formatTime(st.LastRun),
			LastSuccess: s.formatTime(st.LastSuccess), NextRun: s.formatTime(st.NextRun), Rows: st.Rows,
			LastError: st.LastError, Stopped: st.Stopped})
	}
	return rows
}
