package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/adsstub"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

const (
	// spendApp is the phone_number_id of webhookTemplate: the app the bench's webhooks
	// are recorded under, so the spend lands next to the leads.
	spendApp  = "106540352242922"
	spendAct  = "1000"
	spendAds  = 200
	spendDays = 28 // -spend-sync-days: every run pulls all the stub's days again
	// spendPokeEvery is how often the bench asks for a run: -spend-sync-every cannot go
	// below 1m, which would leave a round of load without a sync.
	spendPokeEvery = 2 * time.Second
)

// spendArgs returns the sidecar flags of -spend: none for off; for up, a spend sync of
// one ad account (spendAds ads, spendDays days each) from a Marketing API stub in this
// process, which stops when ctx ends.
func spendArgs(ctx context.Context, mode string) ([]string, error) {
	switch mode {
	case "off", "": // "": options built in code, as the tests do
		return nil, nil
	case "up":
		stub, err := adsstub.New(adsstub.Options{Version: metaapi.DefaultVersion, Token: "bench-token",
			AsyncPolls: -1, Accounts: []adsstub.Account{spendAccount(time.Now())}})
		if err != nil {
			return nil, fmt.Errorf("-spend up: %w", err)
		}
		context.AfterFunc(ctx, func() { stub.Close() })
		return []string{"-spend-sync", "act_" + spendAct + "=" + spendApp, "-meta-token", "bench-token",
			"-graph-url", stub.URL, "-spend-sync-every", "1m", "-spend-sync-days", fmt.Sprint(spendDays)}, nil
	}
	return nil, fmt.Errorf("-spend %q is not off or up", mode)
}

// spendAccount is an advertiser with spendAds active ads in 20 ad sets and 5 campaigns,
// each delivering on every one of the spendDays days up to now, with made-up but fixed
// numbers. The first adCount ads are the ones the bench's leads click.
func spendAccount(now time.Time) adsstub.Account {
	tz := "Europe/Berlin"
	loc, err := time.LoadLocation(tz)
	if err != nil { // no zone database: a zone both the stub and the sidecar know
		tz, loc = "UTC", time.UTC
	}
	a := adsstub.Account{ID: spendAct, Name: "Bench Shoes GmbH", Currency: "EUR", Timezone: tz}
	today := now.In(loc)
	for i := range spendAds {
		id := string(appendPadded([]byte("1202145678900"), uint64(i), 5)) // stream.go's ad ids
		a.Ads = append(a.Ads, adsstub.Ad{ID: id, Name: fmt.Sprintf("Ad %03d", i), Status: "ACTIVE",
			AdSetID: fmt.Sprintf("12021456788%07d", i/10), AdSetName: fmt.Sprintf("Ad set %02d", i/10), AdSetStatus: "ACTIVE",
			CampaignID: fmt.Sprintf("12021456787%07d", i/40), CampaignName: fmt.Sprintf("Campaign %d", i/40), CampaignStatus: "ACTIVE"})
		for d := range spendDays {
			cents := 100 + (i*37+d*11)%2900
			impressions := 200 + (i*53+d*29)%5000
			a.Days = append(a.Days, adsstub.DayRow{AdID: id, Date: today.AddDate(0, 0, -d).Format(time.DateOnly),
				Spend: fmt.Sprintf("%d.%02d", cents/100, cents%100), Impressions: fmt.Sprint(impressions),
				Clicks: fmt.Sprint(impressions / 40)})
		}
	}
	return a
}

// sidecarAPI is the base URL of the sidecar's API listener among systems ("" if none).
func sidecarAPI(systems []*system) string {
	for _, s := range systems {
		if s.name == nameSidecar {
			return strings.TrimSuffix(s.metrics, "/metrics")
		}
	}
	return ""
}

// keepSpendSyncing asks the sidecar at api for a spend sync of spendApp every
// spendPokeEvery, so that syncs run all through the load rather than once at start.
// stop (safe to call again) ends the asking and says how many runs the sidecar made and
// how many rows they stored, from its metrics; call it before the sidecar stops.
func keepSpendSyncing(ctx context.Context, api string) (stop func() (string, error)) {
	ctx, cancel := context.WithCancel(ctx)
	path := api + "/v1/clients/default/apps/" + spendApp + "/ads/sync"
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(spendPokeEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// A refused or failed request is not the bench's business: the runs
			// counted at the end show what happened.
			if req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, nil); err == nil {
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	return sync.OnceValues(func() (string, error) {
		cancel()
		wg.Wait()
		body, err := scrapeMetrics(api + "/metrics")
		if err != nil {
			return "", err
		}
		runs, err1 := sumSeries(body, "ctwa_sidecar_spend_sync_runs_total", "")
		ok, err2 := sumSeries(body, "ctwa_sidecar_spend_sync_runs_total", `result="ok"`)
		rows, err3 := sumSeries(body, "ctwa_sidecar_spend_sync_rows_total", "")
		if err := errors.Join(err1, err2, err3); err != nil {
			return "", err
		}
		note := fmt.Sprintf("spend sync: %.0f runs (%.0f ok), %.0f rows during the run (act_%s, %d ads × %d days, into app %s; a run asked for every %s)",
			runs, ok, rows, spendAct, spendAds, spendDays, spendApp, spendPokeEvery)
		if last := lastSpendError(client, path); last != "" {
			note += "; last error: " + last
		}
		return note, nil
	})
}

// lastSpendError is the error of the sync's last run as GET …/ads/sync reports it.
func lastSpendError(client *http.Client, path string) string {
	resp, err := client.Get(path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var ans struct {
		Data []struct {
			LastError string `json:"last_error"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || len(ans.Data) == 0 {
		return fmt.Sprintf("GET %s: %s, %v", path, resp.Status, err)
	}
	return ans.Data[0].LastError
}
