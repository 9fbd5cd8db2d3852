package proxy

import (
	"context"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// Insights is what the insights routes use: the apps, the catalogue and the
// definitions (which name keywords and count event groups), the ads of an account, the
// totals behind each insight, and the refresh that rebuilds them.
type Insights interface {
	Apps() ([]string, error)
	Catalog() *engine.Catalog
	Definitions() *engine.Definitions
	DaysOf(from, to int64) engine.Days
	AccountAds(app, acct, campaign string) ([]engine.Ad, error)
	FindAd(app, id string) (engine.Ad, bool, error)
	AdTotals(app string, adIDs []string, days engine.Days) (*engine.Totals, error)
	AdTotalsEach(app string, groups [][]string, days engine.Days) ([]*engine.Totals, error)
	DailyTotals(app string, adIDs []string, days engine.Days) (map[int32]*engine.Totals, error)
	Refresh(ctx context.Context, app string) (engine.RefreshResult, error)
}

// insightsAPI serves the apps, accounts, ads and campaigns endpoints of SPEC §6.1 from
// rollups, and their refresh.
type insightsAPI struct {
	dataAPI
	rec Insights
}

// apps lists the apps (phone number ids) with recorded traffic: {"data": [{"id"}]}.
func (in insightsAPI) apps(ctx *fasthttp.RequestCtx, _ Params) {
	ids, err := in.rec.Apps()
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	rows := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		rows = append(rows, map[string]string{"id": id})
	}
	WriteJSON(ctx, fasthttp.StatusOK, wholePage(rows))
}

func (in insightsAPI) facebookAccounts(ctx *fasthttp.RequestCtx, _ Params) {
	WriteJSON(ctx, fasthttp.StatusOK, in.rec.Catalog().FacebookAccountList())
}

type adAccountRow struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
}

func (in insightsAPI) adAccounts(ctx *fasthttp.RequestCtx, p Params) {
	cat := in.rec.Catalog()
	fb := p.Get("facebook_account")
	if _, ok := cat.Facebook[fb]; !ok {
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "facebook account "+quote(fb)+" is not known; import spend with its facebook_account first", "facebook_account")
		return
	}
	out := []adAccountRow{}
	for _, a := range cat.AdAccountsOf(fb) {
		out = append(out, adAccountRow{a.ID, a.Name, a.Currency})
	}
	WriteJSON(ctx, fasthttp.StatusOK, out)
}

// dayRange reads the optional date_from/date_to as days (all time when absent).
func (in insightsAPI) dayRange(q *query) engine.Days {
	from, to := q.dateRange(false)
	return in.rec.DaysOf(from, to)
}

func (in insightsAPI) listAds(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, in.loc)
	days := in.dayRange(q)
	limit, offset := q.pageParams(20, 100)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	ads, err := in.rec.AccountAds(p.Get("app_id"), p.Get("ad_account_id"), q.str("campaign_id"))
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	pageAds, a := pageOf(ads, offset, limit), newAnswer(days)
	if err := in.prefetch(a, p.Get("app_id"), pageAds); err != nil {
		writeStoreError(ctx, err)
		return
	}
	rows := []adObject{}
	for _, ad := range pageAds {
		obj, err := in.adObject(ad, a)
		if err != nil {
			writeStoreError(ctx, err)
			return
		}
		rows = append(rows, obj)
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(ads), Offset: offset, Limit: limit})
}

func (in insightsAPI) getAd(ctx *fasthttp.RequestCtx, p Params) {
	days, ok := in.requestDays(ctx)
	if !ok {
		return
	}
	if ad, ok := in.adOr404(ctx, p); ok {
		obj, err := in.adObject(ad, newAnswer(days))
		answerJSON(ctx, obj, err)
	}
}

// requestDays reads the optional date_from/date_to; false means a 400 was written.
func (in insightsAPI) requestDays(ctx *fasthttp.RequestCtx) (engine.Days, bool) {
	q := newQuery(ctx, in.loc)
	days := in.dayRange(q)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return days, false
	}
	return days, true
}

// answerJSON writes v, or the store error that kept it from being computed.
func answerJSON(ctx *fasthttp.RequestCtx, v any, err error) {
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, v)
}

func (in insightsAPI) adOr404(ctx *fasthttp.RequestCtx, p Params) (engine.Ad, bool) {
	ad, ok, err := in.rec.FindAd(p.Get("app_id"), p.Get("ad_id"))
	switch {
	case err != nil:
		writeStoreError(ctx, err)
	case !ok:
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "ad "+quote(p.Get("ad_id"))+" is not known in app "+quote(p.Get("app_id")), "ad_id")
	}
	return ad, ok && err == nil
}

// adInsights answers one insight per day with sessions, events or delivery.
func (in insightsAPI) adInsights(ctx *fasthttp.RequestCtx, p Params) {
	days, ok := in.requestDays(ctx)
	if !ok {
		return
	}
	if ad, ok := in.adOr404(ctx, p); ok {
		rows, err := in.daily(ad.AppID, []string{ad.ID}, days, in.rec.Catalog().Currency(ad.AdAccountID), func(i *engine.Insight) { i.AdID = ad.ID })
		answerJSON(ctx, rows, err)
	}
}

// daily computes one insight per active day of ads, in day order.
func (in insightsAPI) daily(app string, ads []string, days engine.Days, currency string, tag func(*engine.Insight)) ([]engine.Insight, error) {
	byDay, err := in.rec.DailyTotals(app, ads, days)
	if err != nil {
		return nil, err
	}
	defs := in.rec.Definitions()
	out := []engine.Insight{}
	for _, day := range sortedDays(byDay) {
		i := engine.NewInsight(byDay[day], currency, in.dayTime(day), defs)
		tag(&i)
		out = append(out, i)
	}
	return out, nil
}

// refresh rebuilds the whole app (sessions span ads, so one ad cannot be rebuilt alone)
// once the ad, campaign or ad account the route names is known to exist.
func (in insightsAPI) refresh(ctx *fasthttp.RequestCtx, p Params) {
	if !in.refreshTargetKnown(ctx, p) {
		return
	}
	res, err := in.rec.Refresh(ctx, p.Get("app_id"))
	switch {
	case errors.Is(err, engine.ErrRefreshRunning):
		WriteError(ctx, fasthttp.StatusConflict, "refresh_running", err.Error(), "")
	case err != nil:
		writeStoreError(ctx, err)
	default:
		WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"success": true, "rebuilt": res})
	}
}

// refreshTargetKnown answers 404 for an unknown ad, campaign or ad account.
func (in insightsAPI) refreshTargetKnown(ctx *fasthttp.RequestCtx, p Params) bool {
	cat := in.rec.Catalog()
	switch {
	case p.Get("ad_id") != "":
		_, ok := in.adOr404(ctx, p)
		return ok
	case p.Get("campaign_id") != "":
		_, ok := in.campaignOr404(ctx, p)
		return ok
	}
	acct := p.Get("ad_account_id")
	if cat.KnowsAdAccount(acct) {
		return true
	}
	WriteError(ctx, fasthttp.StatusNotFound, "not_found", "ad account "+quote(acct)+" is not known; import its spend first", "ad_account_id")
	return false
}
