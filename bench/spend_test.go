package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

// TestSpendModes: -spend up is a Marketing API stub in the bench that serves the ad
// account to the sidecar's token, synced into the app the bench's webhooks carry; off adds
// nothing, and anything else is refused naming the flag.
func TestSpendModes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args, err := spendArgs(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	arg := func(name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("no %s in %q", name, args)
		}
		return args[i+1]
	}
	if got := arg("-spend-sync"); got != "act_1000="+spendApp || !strings.Contains(webhookTemplate, `"phone_number_id":"`+spendApp+`"`) {
		t.Errorf("-spend-sync %s: want act_1000= the app of the bench's webhooks", got)
	}
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		loc = time.UTC
	}
	today := time.Now().In(loc)
	q := url.Values{"level": {"ad"}, "time_increment": {"1"}, "fields": {"ad_id,spend"}, "limit": {"500"},
		"time_range": {`{"since":"` + today.AddDate(0, 0, 1-spendDays).Format(time.DateOnly) + `","until":"` + today.Format(time.DateOnly) + `"}`}}
	req, _ := http.NewRequest(http.MethodGet, arg("-graph-url")+"/"+metaapi.DefaultVersion+"/act_1000/insights?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+arg("-meta-token"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Data   []map[string]string `json:"data"`
		Paging struct {
			Next string `json:"next"`
		} `json:"paging"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("insights: %d %v", resp.StatusCode, err)
	}
	// 200 ads × 28 days is 5 600 rows: a full first page and more behind it.
	if len(page.Data) != 500 || page.Data[0]["ad_id"] == "" || page.Data[0]["spend"] == "" || page.Paging.Next == "" {
		t.Errorf("insights page: %d rows, first %v, next %q; want 500 rows of ad_id and spend and a next page",
			len(page.Data), page.Data[:min(1, len(page.Data))], page.Paging.Next)
	}
	if args, err := spendArgs(ctx, "off"); args != nil || err != nil {
		t.Errorf("off: %v %v", args, err)
	}
	if _, err := spendArgs(ctx, "down"); err == nil || !strings.Contains(err.Error(), "-spend") {
		t.Errorf("down: %v", err)
	}
	if _, err := parseFlags([]string{"-spend", "up", "-capi", "up"}, &strings.Builder{}); err == nil {
		t.Error("-spend up with -capi up: accepted, though both set -graph-url")
	}
}
