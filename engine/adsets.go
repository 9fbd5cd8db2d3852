package engine

import "sort"

// AdSetsOf returns the ad sets of app in ad account acct (those with an ad of app
// there), optionally of one campaign, sorted by id.
func (c *Catalog) AdSetsOf(app, acct, campaign string) []AdSet {
	seen := map[string]bool{}
	var out []AdSet
	for _, ad := range c.Ads {
		if ad.AppID != app || ad.AdAccountID != acct || ad.AdSetID == "" || seen[ad.AdSetID] ||
			(campaign != "" && ad.CampaignID != campaign) {
			continue
		}
		seen[ad.AdSetID] = true
		as, ok := c.AdSets[ad.AdSetID]
		if !ok {
			as = AdSet{ID: ad.AdSetID, CampaignID: ad.CampaignID}
		}
		out = append(out, as)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AdSetAds returns the ids of an ad set's ads in app.
func (c *Catalog) AdSetAds(app, adSet string) []string {
	return c.adIDs(app, func(ad *Ad) bool { return ad.AdSetID == adSet })
}
