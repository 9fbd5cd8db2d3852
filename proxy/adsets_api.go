package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// adSetObject is an ad set with its insight and sale insight over its ads, as campaigns
// and ads are shown: the middle level of Ads Manager's campaign → ad set → ad.
type adSetObject struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Status      string             `json:"status"`
	CampaignID  string             `json:"campaign_id"`
	AdAccountID string             `json:"ad_account_id"`
	AdAccount   accountRef         `json:"ad_account"`
	Insight     engine.Insight     `json:"insight"`
	SaleInsight engine.SaleInsight `json:"sale_insight"`
}

// listAdSets answers the ad sets of an ad account (optionally of one campaign), each
// summed over its ads: GET …/adsets/account/{ad_account_id}.
func (in insightsAPI) listAdSets(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, in.loc)
	days := in.dayRange(q)
	limit, offset := q.pageParams(20, 100)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	app, acctID := p.Get("app_id"), p.Get("ad_account_id")
	cat := in.rec.Catalog()
	sets := cat.AdSetsOf(app, acctID, q.str("campaign_id"))
	pageSets := pageOf(sets, offset, limit)
	groups := make([][]string, len(pageSets))
	for i, as := range pageSets {
		groups[i] = cat.AdSetAds(app, as.ID)
	}
	totals, err := in.rec.AdTotalsEach(app, groups, days)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	acct, now, defs := in.account(acctID), in.format(time.Now().Unix()), in.rec.Definitions()
	rows := []adSetObject{}
	for i, as := range pageSets {
		obj := adSetObject{ID: as.ID, Name: as.Name, Status: as.Status, CampaignID: as.CampaignID, AdAccountID: acctID,
			AdAccount: acct, Insight: engine.NewInsight(totals[i], acct.Currency, now, defs),
			SaleInsight: engine.NewSaleInsight(totals[i], acct.Currency, now)}
		obj.Insight.CampaignID, obj.SaleInsight.CampaignID = as.CampaignID, as.CampaignID
		rows = append(rows, obj)
	}
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(sets), Offset: offset, Limit: limit})
}
