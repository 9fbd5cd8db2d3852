package proxy

import (
	"sort"
	"strings"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// adObject is an ad as the Signals API shows it.
type adObject struct {
	ID           string             `json:"id"`
	AppID        string             `json:"app_id"`
	AdAccountID  string             `json:"ad_account_id"`
	AdAccount    accountRef         `json:"ad_account"`
	AdSet        adSetRef           `json:"ad_set"`
	Name         string             `json:"name"`
	Status       string             `json:"status"`
	CreatedTime  engine.NullString  `json:"created_time"`
	UpdatedTime  engine.NullString  `json:"updated_time"`
	Campaign     campaignObject     `json:"campaign"`
	Page         struct{}           `json:"page"`
	Insight      engine.Insight     `json:"insight"`
	SaleInsight  engine.SaleInsight `json:"sale_insight"`
	ActiveGroups int                `json:"active_event_groups_count"`
	ReferralOnly bool               `json:"referral_only,omitempty"`
}

type accountRef struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
}

type adSetRef struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// campaignObject is a campaign as the Signals API shows it.
type campaignObject struct {
	ID          string             `json:"id"`
	AdAccountID string             `json:"ad_account_id"`
	AdAccount   accountRef         `json:"ad_account"`
	Name        string             `json:"name"`
	Status      string             `json:"status"`
	StartTime   engine.NullString  `json:"start_time"`
	StopTime    engine.NullString  `json:"stop_time"`
	Page        struct{}           `json:"page"`
	Insight     engine.Insight     `json:"insight"`
	SaleInsight engine.SaleInsight `json:"sale_insight"`
}

func (in insightsAPI) account(id string) accountRef {
	a := in.rec.Catalog().AdAccounts[id]
	return accountRef{ID: id, Name: a.Name, Currency: a.Currency}
}

// answer holds what one API answer has computed already: a page of ads shares a few
// campaigns, each summed over all its ads, and its totals are computed up front in
// parallel (prefetch).
type answer struct {
	days      engine.Days
	totals    map[string]*engine.Totals // by comma-joined ad ids
	campaigns map[string]campaignObject
}

func newAnswer(days engine.Days) *answer {
	return &answer{days: days, totals: map[string]*engine.Totals{}, campaigns: map[string]campaignObject{}}
}

// prefetch computes, in parallel, the totals of the ads and of their campaigns.
func (in insightsAPI) prefetch(a *answer, app string, ads []engine.Ad) error {
	cat := in.rec.Catalog()
	var groups [][]string
	seen := map[string]bool{}
	add := func(ids []string) {
		if k := strings.Join(ids, ","); len(ids) > 0 && !seen[k] {
			seen[k] = true
			groups = append(groups, ids)
		}
	}
	for _, ad := range ads {
		add([]string{ad.ID})
		if cp, ok := cat.Campaigns[ad.CampaignID]; ok {
			add(cat.CampaignAds(app, cp.ID))
		}
	}
	totals, err := in.rec.AdTotalsEach(app, groups, a.days)
	for i, ids := range groups {
		a.totals[strings.Join(ids, ",")] = totals[i]
	}
	return err
}

// totalsOf returns the totals of ads over the answer's days, prefetched or computed now.
func (in insightsAPI) totalsOf(a *answer, app string, ids []string) (*engine.Totals, error) {
	if t := a.totals[strings.Join(ids, ",")]; t != nil {
		return t, nil
	}
	return in.rec.AdTotals(app, ids, a.days)
}

// adObject builds an ad with its insight and sale insight over the answer's days.
func (in insightsAPI) adObject(ad engine.Ad, a *answer) (adObject, error) {
	t, err := in.totalsOf(a, ad.AppID, []string{ad.ID})
	if err != nil {
		return adObject{}, err
	}
	cat := in.rec.Catalog()
	acct := in.account(ad.AdAccountID)
	now := in.format(time.Now().Unix())
	obj := adObject{ID: ad.ID, AppID: ad.AppID, AdAccountID: ad.AdAccountID, AdAccount: acct, Name: ad.Name,
		Status: ad.Status, CreatedTime: in.nullTime(ad.Created), UpdatedTime: in.nullTime(ad.Updated),
		Insight: engine.NewInsight(t, acct.Currency, now, in.rec.Definitions()), SaleInsight: engine.NewSaleInsight(t, acct.Currency, now),
		ActiveGroups: in.rec.Definitions().ActiveGroupsOf(&ad), ReferralOnly: ad.Referral}
	obj.Insight.AdID, obj.SaleInsight.AdID = ad.ID, engine.NullString(ad.ID)
	if as, ok := cat.AdSets[ad.AdSetID]; ok {
		obj.AdSet = adSetRef{ID: as.ID, Name: as.Name, Status: as.Status}
	}
	if cp, ok := cat.Campaigns[ad.CampaignID]; ok {
		if built, done := a.campaigns[cp.ID]; done {
			obj.Campaign = built
		} else if obj.Campaign, err = in.campaignObject(cp, a); err != nil {
			return adObject{}, err
		} else {
			a.campaigns[cp.ID] = obj.Campaign
		}
	} else {
		obj.Campaign.Insight.Keywords = []engine.KeywordRow{} // a list, as everywhere, not null
	}
	return obj, nil
}

// campaignObject builds a campaign with its insight over its ads. It starts on its first
// day of delivery; it stops, once its status says so, at the end of its last (while it
// runs, stop_time is null). Its sale insight names its ad when it has only one.
func (in insightsAPI) campaignObject(cp engine.Campaign, a *answer) (campaignObject, error) {
	cat := in.rec.Catalog()
	ads := cat.CampaignAds(cp.AppID, cp.ID)
	t, err := in.totalsOf(a, cp.AppID, ads)
	if err != nil {
		return campaignObject{}, err
	}
	acct := in.account(cp.AdAccountID)
	now := in.format(time.Now().Unix())
	obj := campaignObject{ID: cp.ID, AdAccountID: cp.AdAccountID, AdAccount: accountRef{Name: acct.Name, Currency: acct.Currency},
		Name: cp.Name, Status: cp.Status, StartTime: engine.NullString(in.dayTime(cp.FirstDay)),
		Insight: engine.NewInsight(t, acct.Currency, now, in.rec.Definitions()), SaleInsight: engine.NewSaleInsight(t, acct.Currency, now)}
	if stop, stopped := cp.StopDay(); stopped {
		obj.StopTime = engine.NullString(in.dayTime(stop))
	}
	obj.Insight.CampaignID, obj.SaleInsight.CampaignID = cp.ID, cp.ID
	obj.SaleInsight.AdID = onlyAd(ads)
	return obj, nil
}

// onlyAd is the id of the only ad of ads, or "" (null) for none or several.
func onlyAd(ads []string) engine.NullString {
	if len(ads) != 1 {
		return ""
	}
	return engine.NullString(ads[0])
}

func sortedDays[V any](m map[int32]V) []int32 {
	days := make([]int32, 0, len(m))
	for d := range m {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	return days
}
