package engine

import (
	"context"
	"math"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// A source_type "post" referral is the source post:<id>, a click on a page post (SPEC
// §4.1): no ad, so it is neither listed under ad account "unassigned" nor counted in an
// ad's totals; its headline still names its source.
func TestPostReferralIsNoAd(t *testing.T) {
	e := newTestEnv(t)
	const post, ad = "318276543219876", "120219999999999999"
	postRef := &webhook.Referral{SourceType: SourcePost, SourceID: post, SourceURL: "https://fb.me/p", Headline: "Nouveautés"}
	e.record(cloudWebhook(
		withReferral(leadMsgs("491700000010")("p1", t0, "hi"), postRef),
		withReferral(leadMsgs("491700000011")("a1", t0, "hi"), adReferral(ad, "clid-a1")),
	))

	ads, err := e.rec.ReferralAds(scApp)
	if err != nil || len(ads) != 1 || ads[0].ID != ad || ads[0].AdAccountID != Unassigned {
		t.Fatalf("ReferralAds = %+v, %v; want only ad %s", ads, err, ad)
	}
	all := Days{From: math.MinInt32, To: math.MaxInt32}
	for _, id := range []string{post, ad} {
		want := int64(0)
		if id == ad {
			want = 1
		}
		if tot, err := e.rec.AdTotals(scApp, []string{id}, all); err != nil || tot.Sessions != want {
			t.Errorf("AdTotals(%s): %d sessions, %v; want %d", id, tot.Sessions, err, want)
		}
	}
	sources, err := e.rec.SourceTotals(scApp, all)
	if err != nil || sources[SourceRef{SourcePost, post}] == nil || sources[SourceRef{SourcePost, post}].Sessions != 1 {
		t.Errorf("SourceTotals = %v, %v; want post:%s with 1 session", sources, err, post)
	}
	names, err := e.rec.ReferralNames(scApp)
	if err != nil || names[SourceRef{SourcePost, post}] != "Nouveautés" || names[SourceRef{SourceAd, ad}] != "Headline of "+ad ||
		len(names) != 2 {
		t.Errorf("ReferralNames = %v, %v", names, err)
	}
}

// A store written before referral records kept their type lists a post as an ad; the
// post's next referral types its record, keeping what the first one told.
func TestUntypedReferralRecordIsTypedByTheNextReferral(t *testing.T) {
	e := newTestEnv(t)
	const post = "318276543219876"
	old := `{"id":"` + post + `","app_id":"` + scApp + `","headline":"First headline","source_url":"","first_seen":100}`
	if err := e.store.Apply(context.Background(), func(b kv.Batch) error {
		b.Set(kv.ReferralAdKey(scApp, post), []byte(old))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ads, err := e.rec.ReferralAds(scApp); err != nil || len(ads) != 1 {
		t.Fatalf("ReferralAds before = %+v, %v; want the untyped record", ads, err)
	}
	postRef := &webhook.Referral{SourceType: SourcePost, SourceID: post, Headline: "Second headline"}
	e.record(cloudWebhook(withReferral(leadMsgs("491700000010")("p1", t0, "hi"), postRef)))
	if ads, err := e.rec.ReferralAds(scApp); err != nil || len(ads) != 0 {
		t.Errorf("ReferralAds after = %+v, %v; want none", ads, err)
	}
	names, err := e.rec.ReferralNames(scApp)
	if err != nil || len(names) != 1 || names[SourceRef{SourcePost, post}] != "First headline" {
		t.Errorf("ReferralNames = %v, %v; want post:%s named First headline", names, err, post)
	}
}
