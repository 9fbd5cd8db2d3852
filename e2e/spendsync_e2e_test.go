package e2e

// The spend sync through the real binary, against the Marketing API stub: a user gives a
// token and act_…=app, and the ads list shows Meta's spend, clicks and impressions per
// day without a CSV; a day Meta revises is corrected by the next run (POST …/ads/sync).

import (
	"net/http"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/adsstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

func TestSpendSyncThroughTheBinary(t *testing.T) {
	const (
		token = "EAAG-spend-e2e"
		act   = "174816537731874"
		app   = "106540352242922"
	)
	today := time.Now().UTC()
	day := func(back int) string { return today.AddDate(0, 0, -back).Format(time.DateOnly) }
	stub := adsstub.Start(t, adsstub.Options{Version: metaapi.DefaultVersion, Token: token, PageSize: 1,
		Accounts: []adsstub.Account{{ID: act, Name: "Shoes GmbH", Currency: "EUR", Timezone: "UTC",
			Ads: []adsstub.Ad{{ID: "601", Name: "Spring - image", Status: "ACTIVE", AdSetID: "501", AdSetName: "DE",
				AdSetStatus: "ACTIVE", CampaignID: "401", CampaignName: "Spring", CampaignStatus: "ACTIVE"}},
			Days: []adsstub.DayRow{
				{AdID: "601", Date: day(1), Spend: "20.00", Impressions: "1234", Clicks: "41"},
				{AdID: "601", Date: day(0), Spend: "3.10", Impressions: "100", Clicks: "2"},
			}}}})
	bin := sidecarBinary(t)
	sc := startBinary(t, bin, "http://"+acceptingUpstream(t).addr, t.TempDir(), "-meta-token", token, "-graph-url", stub.URL,
		"-spend-sync", "act_"+act+"="+app, "-spend-sync-days", "3", "-spend-backfill-days", "10")
	path := "/v1/clients/default/apps/" + app
	syncState := func() (last string, rows int, lastErr string) {
		code, _, body, err := do("GET", sc.api+path+"/ads/sync", "", nil)
		var ans struct {
			Data []struct {
				LastSuccess string `json:"last_success"`
				Rows        int    `json:"rows"`
				LastError   string `json:"last_error"`
			} `json:"data"`
		}
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &ans) != nil || len(ans.Data) != 1 {
			t.Fatalf("GET ads/sync: %d %s %v", code, body, err)
		}
		return ans.Data[0].LastSuccess, ans.Data[0].Rows, ans.Data[0].LastError
	}
	waitFor(t, "the first spend sync", func() bool { last, _, _ := syncState(); return last != "" })
	if _, rows, lastErr := syncState(); rows != 2 || lastErr != "" {
		t.Fatalf("after the first sync: %d rows, error %q; want 2 and none", rows, lastErr)
	}
	spend := func() (spend float64, impressions, clicks int64) {
		code, _, body, err := do("GET", sc.api+path+"/ads/601?date_from="+day(3)+"&date_to="+day(0), "", nil)
		var ad adObjJSON
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &ad) != nil {
			t.Fatalf("GET ad: %d %s %v", code, body, err)
		}
		return ad.Insight.Spend, ad.Insight.Impressions, ad.Insight.Clicks
	}
	if s, i, c := spend(); s != 23.1 || i != 1334 || c != 43 {
		t.Errorf("ad 601 over the last days: spend %v, impressions %d, clicks %d; want 23.1 (20.00 + 3.10), 1334, 43", s, i, c)
	}

	stub.SetDay(act, adsstub.DayRow{AdID: "601", Date: day(1), Spend: "21.50", Impressions: "1300", Clicks: "44"})
	if code, _, body, err := do("POST", sc.api+path+"/ads/sync", "", nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST ads/sync: %d %s %v", code, body, err)
	}
	waitFor(t, "the revised day", func() bool { s, _, _ := spend(); return s == 24.6 })
	if got := scrape(t, sc.api, `ctwa_sidecar_spend_sync_runs_total{result="ok"}`); got < 2 {
		t.Errorf("spend_sync_runs_total ok = %.0f, want 2", got)
	}
	if code, _, body, _ := do("POST", sc.api+"/v1/clients/default/apps/other/ads/sync", "", nil); code != http.StatusNotFound {
		t.Errorf("POST ads/sync of an app without a sync: %d %s, want 404", code, body)
	}
}
