package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

func (in insightsAPI) listCampaigns(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, in.loc)
	days := in.dayRange(q)
	limit, offset := q.pageParams(20, 100)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	cps := in.rec.Catalog().CampaignsOf(p.Get("app_id"), p.Get("ad_account_id"))
	rows, a := []campaignObject{}, newAnswer(days)
	for _, cp := range pageOf(cps, offset, limit) {
		obj, err := in.campaignObject(cp, a)
		if err != nil {
			writeStoreError(ctx, err)
			return
		}
		rows = append(rows, obj)
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(cps), Offset: offset, Limit: limit})
}

func (in insightsAPI) campaignOr404(ctx *fasthttp.RequestCtx, p Params) (engine.Campaign, bool) {
	cp, ok := in.rec.Catalog().Campaigns[p.Get("campaign_id")]
	if !ok || cp.AppID != p.Get("app_id") {
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "campaign "+quote(p.Get("campaign_id"))+" is not known in app "+quote(p.Get("app_id")), "campaign_id")
		return cp, false
	}
	return cp, true
}

func (in insightsAPI) getCampaign(ctx *fasthttp.RequestCtx, p Params) {
	days, ok := in.requestDays(ctx)
	if !ok {
		return
	}
	if cp, ok := in.campaignOr404(ctx, p); ok {
		obj, err := in.campaignObject(cp, newAnswer(days))
		answerJSON(ctx, obj, err)
	}
}

// campaignInsights answers, as the seed shows, a list of the campaign with one
// element per active day, each carrying that day's insight and sale insight.
func (in insightsAPI) campaignInsights(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, in.loc)
	days := in.dayRange(q)
	limit, offset := q.pageParams(100, 1000)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	cp, ok := in.campaignOr404(ctx, p)
	if !ok {
		return
	}
	byDay, err := in.rec.DailyTotals(cp.AppID, in.rec.Catalog().CampaignAds(cp.AppID, cp.ID), days)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	base, err := in.campaignObject(cp, newAnswer(engine.Days{From: 1, To: 0})) // the campaign without totals
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	currency, defs, all := base.AdAccount.Currency, in.rec.Definitions(), sortedDays(byDay)
	rows := []campaignObject{}
	for _, day := range pageOf(all, offset, limit) {
		obj := base
		obj.Insight = engine.NewInsight(byDay[day], currency, in.dayTime(day), defs)
		obj.SaleInsight = engine.NewSaleInsight(byDay[day], currency, in.dayTime(day))
		obj.Insight.CampaignID, obj.SaleInsight.CampaignID, obj.SaleInsight.AdID = cp.ID, cp.ID, base.SaleInsight.AdID
		rows = append(rows, obj)
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(all), Offset: offset, Limit: limit})
}
