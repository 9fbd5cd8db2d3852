package proxy

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// Handler tests of the routes the dashboard's campaign view uses: the converted events
// (list, clear, choices), the funnel of a range's sessions and the ad sets of an account.

// fakeConverted answers the converted-event routes and notes what it was asked.
type fakeConverted struct {
	Definer
	groups  []engine.Group
	choices []engine.ConversionChoice
	err     error
	asked   string
}

func (f *fakeConverted) ConvertedEvents(app string) []engine.Group {
	f.asked = app
	return f.groups
}

func (f *fakeConverted) ClearConverted(_ context.Context, app, campaign, ad string) (engine.Group, error) {
	f.asked = strings.Join([]string{app, campaign, ad}, "|")
	return engine.Group{ID: "7", Status: engine.StatusArchived}, f.err
}

func (f *fakeConverted) ConversionChoices(app, campaign, ad string) ([]engine.ConversionChoice, error) {
	f.asked = strings.Join([]string{app, campaign, ad}, "|")
	return f.choices, f.err
}

// GET converted_events lists each definition with its time in -timezone; DELETE clears
// a campaign's or an ad's (404 when it has none, 400 naming the field the engine
// refused); choices pass the scope and refuse two.
func TestConvertedEventRoutes(t *testing.T) {
	created := time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC).Unix()
	f := &fakeConverted{groups: []engine.Group{
		{ID: "4", AppID: "app1", CampaignID: "c1", Type: engine.TypeKeyword, TypeValue: "buy", Converted: true, Status: engine.StatusActive, Created: created},
		{ID: "9", AppID: "app1", AdID: "ad9", Type: engine.TypeOffThread, TypeValue: "purchase", Converted: true, Status: engine.StatusActive, Created: created},
	}}
	a := NewAPI("", nil)
	registerData(a, time.FixedZone("CET", 3600), map[string]dataStores{"default": {definitions: f}})

	code, body := serve(a, "GET", testAppPath+"/converted_events", "")
	want := `{"data":[{"id":"4","campaign_id":"c1","type":"keyword","type_value":"buy","created_time":"2026-03-16T10:00:00+01:00"},` +
		`{"id":"9","ad_id":"ad9","type":"off_thread","type_value":"purchase","created_time":"2026-03-16T10:00:00+01:00"}],` +
		`"total_count":2,"offset":0,"limit":2}` + "\n"
	if code != 200 || string(body) != want || f.asked != "app1" {
		t.Errorf("list: %d %s (asked %q)\nwant %s", code, body, f.asked, want)
	}

	if code, body := serve(a, "DELETE", testAppPath+"/converted_events?campaign_id=c1", ""); code != 200 ||
		string(body) != `{"id":"7","success":true}`+"\n" || f.asked != "app1|c1|" {
		t.Errorf("clear: %d %s (asked %q)", code, body, f.asked)
	}
	f.err = engine.ErrNotFound
	if code, body := serve(a, "DELETE", testAppPath+"/converted_events?ad_id=ad1", ""); code != 404 ||
		decodeError(t, body).Code != "not_found" || f.asked != "app1||ad1" {
		t.Errorf("clear without a definition: %d %s (asked %q), want 404", code, body, f.asked)
	}
	f.err = &engine.FieldError{Field: "campaign_id", Message: "is required (or ad_id for one ad)"}
	if code, body := serve(a, "DELETE", testAppPath+"/converted_events", ""); code != 400 || decodeError(t, body).Field != "campaign_id" {
		t.Errorf("clear without a scope: %d %s, want 400 naming campaign_id", code, body)
	}

	f.err = nil
	f.choices = []engine.ConversionChoice{{Type: engine.TypeListReply, TypeID: "size-42", TypeValue: "Size 42", Sessions: 3, Events: 4}}
	code, body = serve(a, "GET", testAppPath+"/converted_events/choices?campaign_id=c1", "")
	want = `{"data":[{"type":"list_reply","type_id":"size-42","type_value":"Size 42","sessions":3,"events":4}],"total_count":1,"offset":0,"limit":1}` + "\n"
	if code != 200 || string(body) != want || f.asked != "app1|c1|" {
		t.Errorf("choices: %d %s (asked %q)\nwant %s", code, body, f.asked, want)
	}
	if code, body := serve(a, "GET", testAppPath+"/converted_events/choices?campaign_id=c1&ad_id=ad1", ""); code != 400 ||
		decodeError(t, body).Field != "campaign_id" {
		t.Errorf("choices of two scopes: %d %s, want 400", code, body)
	}
}

// fakeFunnel answers the funnel route and notes the range it was asked for.
type fakeFunnel struct {
	SourceReader
	from, to int64
}

func (f *fakeFunnel) Funnel(app string, from, to int64) ([]engine.FunnelRow, error) {
	f.from, f.to = from, to
	return []engine.FunnelRow{{Type: "ad", ID: "120", Sessions: 15, Engaged: 11, Converted: 5, Purchasers: 2, Purchases: 2,
		Revenue: []engine.Money{{Currency: "EUR", Amount: 218.9}}, PurchasesInRange: 1}}, nil
}

// GET funnel reads the range in -timezone and encodes the engine's rows.
func TestFunnelRoute(t *testing.T) {
	f := &fakeFunnel{}
	loc := time.FixedZone("CET", 3600)
	a := NewAPI("", nil)
	registerData(a, loc, map[string]dataStores{"default": {sources: f}})
	code, body := serve(a, "GET", testAppPath+"/funnel?date_from=2026-03-16&date_to=2026-03-18", "")
	want := `{"data":[{"type":"ad","id":"120","sessions":15,"engaged":11,"converted":5,"purchasers":2,"purchases":2,` +
		`"revenue":[{"currency":"EUR","revenue":218.9}],"purchases_in_range":1}],"total_count":1,"offset":0,"limit":1}` + "\n"
	if code != 200 || string(body) != want {
		t.Errorf("funnel: %d %s\nwant %s", code, body, want)
	}
	from := time.Date(2026, 3, 16, 0, 0, 0, 0, loc).Unix()
	if f.from != from || f.to != from+3*86400 {
		t.Errorf("asked [%d, %d), want [%d, %d)", f.from, f.to, from, from+3*86400)
	}
	if code, body := serve(a, "GET", testAppPath+"/funnel?date_from=yesterday", ""); code != 400 || decodeError(t, body).Field != "date_from" {
		t.Errorf("a bad date: %d %s, want 400 naming date_from", code, body)
	}
}

// fakeAdSetTotals sums fixed per-ad totals for AdTotalsEach.
type fakeAdSetTotals struct {
	fakeInsights
	perAd map[string]*engine.Totals
}

func (f *fakeAdSetTotals) AdTotalsEach(app string, groups [][]string, days engine.Days) ([]*engine.Totals, error) {
	out := make([]*engine.Totals, len(groups))
	for i, ids := range groups {
		out[i] = engine.NewTotals()
		for _, id := range ids {
			out[i].Merge(f.perAd[id])
		}
	}
	return out, nil
}

// GET adsets/account/{id} lists the account's ad sets of the app, each summed over its
// ads, in the account's currency; campaign_id narrows them to one campaign.
func TestAdSetsRoute(t *testing.T) {
	cat := &engine.Catalog{
		AdAccounts: map[string]engine.AdAccount{"act_1": {ID: "act_1", Name: "Shoes", Currency: "EUR"}},
		AdSets: map[string]engine.AdSet{"s1": {ID: "s1", Name: "Runners", Status: "ACTIVE", CampaignID: "c1"},
			"s2": {ID: "s2", Name: "Trail", Status: "PAUSED", CampaignID: "c2"}},
		Ads: map[string]engine.Ad{
			"a1": {ID: "a1", AdSetID: "s1", CampaignID: "c1", AdAccountID: "act_1", AppID: "app1"},
			"a2": {ID: "a2", AdSetID: "s1", CampaignID: "c1", AdAccountID: "act_1", AppID: "app1"},
			"a3": {ID: "a3", AdSetID: "s2", CampaignID: "c2", AdAccountID: "act_1", AppID: "app1"},
			"a4": {ID: "a4", AdSetID: "s9", CampaignID: "c9", AdAccountID: "act_1", AppID: "other-app"},
		}}
	tot := func(impressions, clicks int64, spend float64) *engine.Totals {
		t := engine.NewTotals()
		t.Impressions, t.Clicks, t.Spend = impressions, clicks, spend
		return t
	}
	f := &fakeAdSetTotals{fakeInsights: fakeInsights{cat: cat}, perAd: map[string]*engine.Totals{
		"a1": tot(1000, 20, 10), "a2": tot(3000, 10, 20), "a3": tot(500, 5, 2)}}
	a := dataRoutes(dataStores{insights: f})

	var got struct {
		Data []struct {
			ID         string         `json:"id"`
			Name       string         `json:"name"`
			Status     string         `json:"status"`
			CampaignID string         `json:"campaign_id"`
			Insight    engine.Insight `json:"insight"`
		}
		Total int `json:"total_count"`
	}
	code, body := serve(a, "GET", testAppPath+"/adsets/account/act_1", "")
	if err := json.Unmarshal(body, &got); err != nil || code != 200 || got.Total != 2 || len(got.Data) != 2 {
		t.Fatalf("ad sets: %d %s (%v)", code, body, err)
	}
	s1 := got.Data[0]
	if s1.ID != "s1" || s1.Name != "Runners" || s1.Status != "ACTIVE" || s1.Insight.Impressions != 4000 ||
		s1.Insight.Clicks != 30 || s1.Insight.Spend != 30 || s1.Insight.CPC != 1 || s1.Insight.CTR != 0.75 || s1.Insight.Currency != "EUR" {
		t.Errorf("ad set s1 = %+v, want a1 + a2: 4000 impressions, 30 clicks, €30, CPC 1, CTR 0.75%%", s1)
	}
	if code, body = serve(a, "GET", testAppPath+"/adsets/account/act_1?campaign_id=c2", ""); code != 200 ||
		json.Unmarshal(body, &got) != nil || len(got.Data) != 1 || got.Data[0].ID != "s2" || got.Data[0].Insight.Spend != 2 {
		t.Errorf("ad sets of c2: %d %s", code, body)
	}
	if code, body := serve(a, "GET", testAppPath+"/adsets/account/act_1?limit=0", ""); code != 400 || decodeError(t, body).Field != "limit" {
		t.Errorf("limit 0: %d %s, want 400 naming limit", code, body)
	}
}
