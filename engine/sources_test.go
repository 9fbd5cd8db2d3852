package engine

import (
	"reflect"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// The money columns of the compare-sources view, on numbers computed by hand.
func TestNewSourceStats(t *testing.T) {
	tot := totalsOf(3, kv.Money{Currency: "EUR", Amount: 200}, kv.Money{Currency: "USD", Amount: 10}, kv.Money{Currency: "EUR", Amount: 100.5})
	tot.Sessions, tot.Engaged, tot.Converted, tot.OffCount, tot.Spend = 5, 2, 1, 3, 90.5
	got := newSourceStats(SourceRef{SourceAd, "120"}, tot, "EUR")
	want := SourceStats{Type: SourceAd, ID: "120", Direction: "incoming", Sessions: 5, UniqueUsers: 3, Engaged: 2,
		Converted: 1, OffThreadCount: 3, Revenue: 300.5, Currency: "EUR", OtherCurrencies: []Money{{"USD", 10}},
		Spend:       90.5,
		ROAS:        3.32,  // 300.5 / 90.5 = 3.3204
		CostPerLead: 30.17, // 90.5 / 3 users = 30.1666…
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ad source:\n got %+v\nwant %+v", got, want)
	}
	// A campaign is outgoing; without spend ROAS and cost per lead are 0, not Inf; without
	// an account currency the first currency seen reports.
	got = newSourceStats(SourceRef{SourceCampaign, "spring"}, totalsOf(2, kv.Money{Currency: "USD", Amount: 12.345}), "")
	want = SourceStats{Type: SourceCampaign, ID: "spring", Direction: "outgoing", UniqueUsers: 2, Revenue: 12.35, Currency: "USD"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("campaign source:\n got %+v\nwant %+v", got, want)
	}
}

func TestSourceName(t *testing.T) {
	cat := newCatalog()
	cat.Ads["120"] = Ad{ID: "120", Name: "Spring sale"}
	defs := &Definitions{Sources: []Source{{ID: "1", Name: "Hamburg poster", Phrase: "store in hamburg"}}}
	headlines := map[SourceRef]string{{SourceAd, "130"}: "Chat with us", {SourcePost, "120"}: "Our post"}
	for _, tc := range []struct {
		ref          SourceRef
		name, phrase string
	}{
		{SourceRef{SourceAd, "120"}, "Spring sale", ""},  // imported: its name
		{SourceRef{SourceAd, "130"}, "Chat with us", ""}, // referral only: its headline
		{SourceRef{SourcePost, "120"}, "Our post", ""},   // a post is no ad, even with an ad's id
		{SourceRef{SourceAd, "140"}, "ad 140", ""},       // neither
		{SourceRef{SourcePost, "150"}, "post 150", ""},   //
		{SourceRef{SourceCustom, "1"}, "Hamburg poster", "store in hamburg"},
		{SourceRef{SourceCustom, "9"}, "9", ""}, // a definition gone
		{SourceRef{SourceCampaign, "spring-2026"}, "spring-2026", ""},
		{SourceRef{SourceOrganic, ""}, "Organic", ""},
		{SourceRef{SourceUnattributed, ""}, "Unattributed off-thread events", ""},
	} {
		if name, phrase := sourceName(tc.ref, cat, defs, headlines); name != tc.name || phrase != tc.phrase {
			t.Errorf("sourceName(%v) = %q, %q; want %q, %q", tc.ref, name, phrase, tc.name, tc.phrase)
		}
	}
}

func TestSortSourceStats(t *testing.T) {
	rows := []SourceStats{{Type: SourceOrganic, Sessions: 2}, {Type: SourceAd, ID: "2", Sessions: 7},
		{Type: SourceCustom, ID: "1"}, {Type: SourceAd, ID: "1", Sessions: 2}, {Type: SourceAd, ID: "3", Sessions: 7}}
	sortSourceStats(rows)
	var got []string
	for _, r := range rows {
		got = append(got, SourceLabel(r.Type, r.ID))
	}
	if want := []string{"ad:2", "ad:3", "ad:1", "organic", "custom:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}
