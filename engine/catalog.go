package engine

import (
	"fmt"
	"sort"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// The ad catalogue: what spend imports (the stand-in for Meta's sync) and referrals
// tell about accounts, campaigns, ad sets and ads. It is small, so a snapshot is kept
// in memory and replaced on every import.

// FacebookAccount is a Meta business login that owns ad accounts.
type FacebookAccount struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// AdAccount is a Meta ad account; its currency is the currency of its spend and of the
// revenue its ads are credited with.
type AdAccount struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Currency          string `json:"currency"`
	FacebookAccountID string `json:"facebook_account_id,omitempty"`
}

// Campaign is a Meta campaign.
type Campaign struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Status      string `json:"status"`
	AdAccountID string `json:"ad_account_id"`
	AppID       string `json:"app_id"`
	FirstDay    int32  `json:"first_day"` // first and last day with imported delivery
	LastDay     int32  `json:"last_day"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

// StopDay is the day after the campaign's last day of delivery, and true, once its
// status says it no longer delivers; while it runs (ACTIVE, or any status that does not
// say it stopped) it has no stop day.
func (c *Campaign) StopDay() (int32, bool) {
	if !stoppedStatuses[c.Status] {
		return 0, false
	}
	return c.LastDay + 1, true
}

// stoppedStatuses are the statuses of a campaign that was switched off, ended, archived,
// deleted or rejected: Meta's effective_status values (the spend sync) and Ads Manager's
// delivery column, upper-cased (an import).
var stoppedStatuses = map[string]bool{
	"PAUSED": true, "CAMPAIGN_PAUSED": true, "ADSET_PAUSED": true, "OFF": true, "CAMPAIGN_OFF": true, "ADSET_OFF": true,
	"INACTIVE": true, "COMPLETED": true, "RECENTLY_COMPLETED": true, "ARCHIVED": true, "DELETED": true,
	"DISAPPROVED": true, "REJECTED": true,
}

// AdSet is a Meta ad set.
type AdSet struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	CampaignID string `json:"campaign_id"`
}

// Ad is a Meta ad: imported, or revealed only by a referral (then Referral is set and
// AdAccountID is "unassigned").
type Ad struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Status      string `json:"status"`
	AdSetID     string `json:"adset_id,omitempty"`
	CampaignID  string `json:"campaign_id,omitempty"`
	AdAccountID string `json:"ad_account_id"`
	AppID       string `json:"app_id"`
	Referral    bool   `json:"referral,omitempty"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

// Unassigned is the ad account of ads that referrals revealed before any import.
const Unassigned = "unassigned"

// Catalog kinds in the store.
const (
	catFacebook  = "facebook"
	catAdAccount = "adaccount"
	catCampaign  = "campaign"
	catAdSet     = "adset"
	catAd        = "ad"
)

// Catalog is an immutable snapshot of the catalogue.
type Catalog struct {
	Facebook   map[string]FacebookAccount
	AdAccounts map[string]AdAccount
	Campaigns  map[string]Campaign
	AdSets     map[string]AdSet
	Ads        map[string]Ad
}

func newCatalog() *Catalog {
	return &Catalog{Facebook: map[string]FacebookAccount{}, AdAccounts: map[string]AdAccount{},
		Campaigns: map[string]Campaign{}, AdSets: map[string]AdSet{}, Ads: map[string]Ad{}}
}

// clone returns a copy whose maps can be changed.
func (c *Catalog) clone() *Catalog {
	n := newCatalog()
	copyMap(n.Facebook, c.Facebook)
	copyMap(n.AdAccounts, c.AdAccounts)
	copyMap(n.Campaigns, c.Campaigns)
	copyMap(n.AdSets, c.AdSets)
	copyMap(n.Ads, c.Ads)
	return n
}

func copyMap[V any](dst, src map[string]V) {
	for k, v := range src {
		dst[k] = v
	}
}

// adCampaign maps ad ids to campaign ids, for campaign-scoped definitions.
func (c *Catalog) adCampaign() map[string]string {
	m := make(map[string]string, len(c.Ads))
	for id, ad := range c.Ads {
		if ad.CampaignID != "" {
			m[id] = ad.CampaignID
		}
	}
	return m
}

// AdsOf returns the ads of app in ad account acct (Unassigned for referral-only ads),
// optionally of one campaign, sorted by id.
func (c *Catalog) AdsOf(app, acct, campaign string) []Ad {
	var out []Ad
	for _, ad := range c.Ads {
		if ad.AppID == app && ad.AdAccountID == acct && (campaign == "" || ad.CampaignID == campaign) {
			out = append(out, ad)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CampaignsOf returns the campaigns of app in ad account acct, sorted by id.
func (c *Catalog) CampaignsOf(app, acct string) []Campaign {
	var out []Campaign
	for _, cp := range c.Campaigns {
		if cp.AppID == app && cp.AdAccountID == acct {
			out = append(out, cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CampaignAds returns the ids of a campaign's ads in app.
func (c *Catalog) CampaignAds(app, campaign string) []string {
	return c.adIDs(app, func(ad *Ad) bool { return ad.CampaignID == campaign })
}

// adIDs returns the ids of the ads of app that match, sorted.
func (c *Catalog) adIDs(app string, match func(*Ad) bool) []string {
	var ids []string
	for _, ad := range c.Ads {
		if ad.AppID == app && match(&ad) {
			ids = append(ids, ad.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// Currency returns the currency of an ad account, or "" when unknown.
func (c *Catalog) Currency(acct string) string { return c.AdAccounts[acct].Currency }

// FacebookAccountList returns the Facebook accounts, by id.
func (c *Catalog) FacebookAccountList() []FacebookAccount {
	out := []FacebookAccount{}
	for _, fb := range c.Facebook {
		out = append(out, fb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AdAccountsOf returns the ad accounts of Facebook account fb, by id.
func (c *Catalog) AdAccountsOf(fb string) []AdAccount {
	out := []AdAccount{}
	for _, a := range c.AdAccounts {
		if a.FacebookAccountID == fb {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// KnowsAdAccount reports whether acct is an imported ad account or Unassigned, the
// account of the ads only referrals revealed.
func (c *Catalog) KnowsAdAccount(acct string) bool {
	_, ok := c.AdAccounts[acct]
	return ok || acct == Unassigned
}

// AccountAds lists the ads of app in ad account acct, optionally of one campaign, by id:
// the imported ones or, for acct Unassigned, those only referrals revealed (which belong
// to no campaign).
func (r *Recorder) AccountAds(app, acct, campaign string) ([]Ad, error) {
	if acct == Unassigned {
		if campaign != "" {
			return nil, nil
		}
		return r.ReferralAds(app)
	}
	return r.Catalog().AdsOf(app, acct, campaign), nil
}

// FindAd returns ad id of app: an imported one, or else one only a referral revealed.
func (r *Recorder) FindAd(app, id string) (Ad, bool, error) {
	if ad, ok := r.Catalog().Ads[id]; ok && ad.AppID == app {
		return ad, true, nil
	}
	refs, err := r.ReferralAds(app)
	for _, ad := range refs {
		if ad.ID == id {
			return ad, true, err
		}
	}
	return Ad{}, false, err
}

// Catalog returns the current catalogue snapshot.
func (r *Recorder) Catalog() *Catalog {
	r.settle() // referrals add ads to it
	return r.catalog.Load()
}

// loadCatalog reads the catalogue from the store.
func (r *Recorder) loadCatalog() error {
	c := newCatalog()
	for _, load := range []func() error{
		func() error {
			return loadMap(r.views, catFacebook, c.Facebook, func(v FacebookAccount) string { return v.ID })
		},
		func() error {
			return loadMap(r.views, catAdAccount, c.AdAccounts, func(v AdAccount) string { return v.ID })
		},
		func() error {
			return loadMap(r.views, catCampaign, c.Campaigns, func(v Campaign) string { return v.ID })
		},
		func() error { return loadMap(r.views, catAdSet, c.AdSets, func(v AdSet) string { return v.ID }) },
		func() error { return loadMap(r.views, catAd, c.Ads, func(v Ad) string { return v.ID }) },
	} {
		if err := load(); err != nil {
			return err
		}
	}
	r.catalog.Store(c)
	return nil
}

func loadMap[V any](store Views, kind string, into map[string]V, id func(V) string) error {
	return store.Scan(kv.CatalogPrefix(kind), false, func(key, value []byte) (bool, error) {
		var v V
		if err := json.Unmarshal(value, &v); err != nil {
			return false, fmt.Errorf("cannot read catalogue entry %q: %w", key, err)
		}
		into[id(v)] = v
		return true, nil
	})
}
