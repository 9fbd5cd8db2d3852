package proxy

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// insightsAPI serves the ads, campaigns and accounts endpoints of SPEC §6.1 from rollups.
type insightsAPI struct{ *eventsAPI }

// register adds the apps, accounts, ads, campaigns, refresh and converted-events routes.
func (in insightsAPI) register(a *API) {
	c := in.client
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
	a.Handle("POST", appPrefix+"/converted_events", AuthToken, c(in.convertedEvent))
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
		if id != "" { // unattributed off-thread events that named no app
			rows = append(rows, map[string]string{"id": id})
		}
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(rows), Limit: len(rows)})
}

func (in insightsAPI) facebookAccounts(ctx *fasthttp.RequestCtx, _ Params) {
	out := []engine.FacebookAccount{}
	for _, fb := range in.rec.Catalog().Facebook {
		out = append(out, fb)
	}
	sortBy(out, func(f engine.FacebookAccount) string { return f.ID })
	WriteJSON(ctx, fasthttp.StatusOK, out)
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
	for _, a := range cat.AdAccounts {
		if a.FacebookAccountID == fb {
			out = append(out, adAccountRow{a.ID, a.Name, a.Currency})
		}
	}
	sortBy(out, func(a adAccountRow) string { return a.ID })
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
	limit, offset := q.intRange("limit", 20, 1, 100), q.intRange("offset", 0, 0, 1<<30)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	ads, err := in.adsOf(p.Get("app_id"), p.Get("ad_account_id"), q.str("campaign_id"))
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

// adsOf lists the ads of an ad account in app; "unassigned" lists referral-only ads.
func (in insightsAPI) adsOf(app, acct, campaign string) ([]engine.Ad, error) {
	if acct == engine.Unassigned {
		if campaign != "" {
			return nil, nil
		}
		return in.rec.ReferralAds(app)
	}
	return in.rec.Catalog().AdsOf(app, acct, campaign), nil
}

// findAd returns an imported ad of app, or else a referral-only one.
func (in insightsAPI) findAd(app, id string) (engine.Ad, bool, error) {
	if ad, ok := in.rec.Catalog().Ads[id]; ok && ad.AppID == app {
		return ad, true, nil
	}
	refs, err := in.rec.ReferralAds(app)
	for _, ad := range refs {
		if ad.ID == id {
			return ad, true, err
		}
	}
	return engine.Ad{}, false, err
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
	ad, ok, err := in.findAd(p.Get("app_id"), p.Get("ad_id"))
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
		i := engine.NewInsight(byDay[day], currency, engine.DayDate(day), defs)
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
	if _, ok := cat.AdAccounts[acct]; ok || acct == engine.Unassigned {
		return true
	}
	WriteError(ctx, fasthttp.StatusNotFound, "not_found", "ad account "+quote(acct)+" is not known; import its spend first", "ad_account_id")
	return false
}

// convertedEvent sets the event that counts a campaign's (or an ad's) sessions as
// converted; it applies to new messages at once and to history after a refresh.
func (in insightsAPI) convertedEvent(ctx *fasthttp.RequestCtx, p Params) {
	var req groupRequest
	if !in.readBody(ctx, &req) {
		return
	}
	g, err := in.rec.SetConverted(ctx, engine.Group{AppID: p.Get("app_id"), CampaignID: req.CampaignID, AdID: req.AdID,
		Type: req.Type, TypeID: req.TypeID, TypeValue: req.TypeValue})
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"success": true, "id": g.ID})
}
