package engine

import (
	"reflect"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

func adIDs(ads []Ad) []string {
	ids := []string{}
	for _, ad := range ads {
		ids = append(ids, ad.ID+"@"+ad.AdAccountID)
	}
	return ids
}

// Which ads an ad account lists, and which ad an id names: the imported ads of the app,
// and under "unassigned" those only referrals revealed — never a post, never an ad
// another app imported under the same id in this app.
func TestAccountAdsAndFindAd(t *testing.T) {
	e := newTestEnv(t)
	cat := newCatalog()
	cat.Ads["Y"] = Ad{ID: "Y", AppID: scApp, AdAccountID: "act_1", CampaignID: "c1"}
	cat.Ads["W"] = Ad{ID: "W", AppID: scApp, AdAccountID: "act_2"}
	cat.Ads["Z"] = Ad{ID: "Z", AppID: "other-app", AdAccountID: "act_1"}
	e.rec.catalog.Store(cat)
	for i, ref := range []*webhook.Referral{adReferral("X", "clid-x"), adReferral("Z", "clid-z"), adReferral("Y", "clid-y"),
		{SourceType: SourcePost, SourceID: "P", Headline: "A post"}} {
		m := leadMsgs("49170000007" + string(rune('0'+i)))
		e.record(cloudWebhook(withReferral(m("m"+string(rune('0'+i)), t0, "hi"), ref)))
	}
	for _, tc := range []struct {
		acct, campaign string
		want           []string
	}{
		{"act_1", "", []string{"Y@act_1"}},
		{"act_1", "c1", []string{"Y@act_1"}},
		{"act_1", "c2", []string{}},
		{"act_2", "", []string{"W@act_2"}},
		{Unassigned, "", []string{"X@unassigned", "Z@unassigned"}},
		{Unassigned, "c1", []string{}}, // referral-only ads belong to no campaign
	} {
		ads, err := e.rec.AccountAds(scApp, tc.acct, tc.campaign)
		if got := adIDs(ads); err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AccountAds(%s, %q) = %v, %v; want %v", tc.acct, tc.campaign, got, err, tc.want)
		}
	}
	for id, want := range map[string]string{"Y": "Y@act_1", "Z": "Z@unassigned", "X": "X@unassigned", "P": "", "nope": ""} {
		ad, ok, err := e.rec.FindAd(scApp, id)
		if got := adIDs([]Ad{ad})[0]; err != nil || ok != (want != "") || (ok && got != want) {
			t.Errorf("FindAd(%s) = %s, %v, %v; want %q", id, got, ok, err, want)
		}
	}
}

func TestCatalogAccounts(t *testing.T) {
	cat := newCatalog()
	cat.Facebook["fb2"], cat.Facebook["fb1"] = FacebookAccount{ID: "fb2"}, FacebookAccount{ID: "fb1"}
	cat.AdAccounts["act_3"] = AdAccount{ID: "act_3", FacebookAccountID: "fb1"}
	cat.AdAccounts["act_1"] = AdAccount{ID: "act_1", FacebookAccountID: "fb1"}
	cat.AdAccounts["act_2"] = AdAccount{ID: "act_2", FacebookAccountID: "fb2"}
	if got := cat.FacebookAccountList(); len(got) != 2 || got[0].ID != "fb1" || got[1].ID != "fb2" {
		t.Errorf("FacebookAccountList = %v", got)
	}
	if got := cat.AdAccountsOf("fb1"); len(got) != 2 || got[0].ID != "act_1" || got[1].ID != "act_3" {
		t.Errorf("AdAccountsOf(fb1) = %v", got)
	}
	if got := cat.AdAccountsOf("fb9"); got == nil || len(got) != 0 {
		t.Errorf("AdAccountsOf(fb9) = %#v, want an empty list", got)
	}
	for acct, want := range map[string]bool{"act_1": true, Unassigned: true, "act_9": false, "": false} {
		if cat.KnowsAdAccount(acct) != want {
			t.Errorf("KnowsAdAccount(%q) = %v", acct, !want)
		}
	}
}
