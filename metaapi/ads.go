package metaapi

// The Marketing API: an ad account's time zone and currency, its daily per-ad insights
// (paged, or as an async report when Meta times the request out) and its ads' statuses.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// AdAccountInfo is what the spend sync needs of an ad account.
type AdAccountInfo struct {
	Name     string `json:"name"`
	Currency string `json:"currency"`
	Timezone string `json:"timezone_name"` // Meta cuts the account's days in this zone
}

// InsightRow is one ad's delivery on one day; Meta sends the numbers as strings.
type InsightRow struct {
	AdID         string `json:"ad_id"`
	AdName       string `json:"ad_name"`
	AdSetID      string `json:"adset_id"`
	AdSetName    string `json:"adset_name"`
	CampaignID   string `json:"campaign_id"`
	CampaignName string `json:"campaign_name"`
	Currency     string `json:"account_currency"`
	Spend        string `json:"spend"`
	Impressions  string `json:"impressions"`
	Clicks       string `json:"inline_link_clicks"` // Ads Manager's "Link clicks"
	DateStart    string `json:"date_start"`
	DateStop     string `json:"date_stop"`
}

// AdStatus is an ad's effective status and those of its ad set and campaign, and when
// Meta created the ad and the campaign (Graph's datetime, "2026-03-01T10:00:00+0000").
type AdStatus struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"effective_status"`
	Created string `json:"created_time"`
	AdSet   struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Status string `json:"effective_status"`
	} `json:"adset"`
	Campaign struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Status  string `json:"effective_status"`
		Created string `json:"created_time"`
	} `json:"campaign"`
}

const (
	insightFields = "ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,account_currency,spend,impressions,inline_link_clicks,date_start,date_stop"
	adFields      = "id,name,effective_status,created_time,adset{id,name,effective_status},campaign{id,name,effective_status,created_time}"
	pageLimit     = "500"
)

// AdAccount reads the account act (digits, without "act_").
func (c *Client) AdAccount(ctx context.Context, act string) (AdAccountInfo, error) {
	var info AdAccountInfo
	_, err := c.callURL(ctx, http.MethodGet, c.url("act_"+act, url.Values{"fields": {"timezone_name,currency,name"}}), nil, &info)
	return info, err
}

// Insights returns every ad's delivery per day from since to until (account days,
// YYYY-MM-DD, inclusive), following the pages. A request Meta times out as too large
// (100/1504018, 2/1504038) is run again as an async report.
func (c *Client) Insights(ctx context.Context, act, since, until string) ([]InsightRow, error) {
	q := url.Values{"level": {"ad"}, "time_increment": {"1"}, "fields": {insightFields}, "limit": {pageLimit},
		"time_range": {fmt.Sprintf(`{"since":%q,"until":%q}`, since, until)}}
	rows, err := pages[InsightRow](ctx, c, c.url("act_"+act+"/insights", q))
	var me *Error
	if errors.As(err, &me) && me.tooLarge() {
		return c.asyncInsights(ctx, act, q)
	}
	return rows, err
}

// AdStatuses returns the effective status of every ad of the account.
func (c *Client) AdStatuses(ctx context.Context, act string) ([]AdStatus, error) {
	return pages[AdStatus](ctx, c, c.url("act_"+act+"/ads", url.Values{"fields": {adFields}, "limit": {pageLimit}}))
}

// asyncInsights runs the insights query as a report: POST, poll until Meta says
// "Job Completed", then read its pages.
func (c *Client) asyncInsights(ctx context.Context, act string, q url.Values) ([]InsightRow, error) {
	var run struct {
		ID string `json:"report_run_id"`
	}
	if _, err := c.callURL(ctx, http.MethodPost, c.url("act_"+act+"/insights", q), nil, &run); err != nil {
		return nil, err
	}
	if run.ID == "" {
		return nil, &Error{Status: 200, Message: "the async report answered no report_run_id"}
	}
	for {
		var st struct {
			Status  string  `json:"async_status"`
			Percent float64 `json:"async_percent_completion"`
		}
		if _, err := c.callURL(ctx, http.MethodGet, c.url(run.ID, url.Values{"fields": {"async_status,async_percent_completion"}}), nil, &st); err != nil {
			return nil, err
		}
		switch st.Status {
		case "Job Completed":
			return pages[InsightRow](ctx, c, c.url(run.ID+"/insights", url.Values{"limit": {pageLimit}}))
		case "Job Failed", "Job Skipped":
			return nil, &Error{Status: 200, Message: fmt.Sprintf("the async insights report %s ended %q", run.ID, st.Status)}
		}
		if err := c.sleep(ctx, c.PollEvery); err != nil {
			return nil, err
		}
	}
}

func (c *Client) url(path string, q url.Values) string {
	return c.base + "/" + c.version + "/" + path + "?" + q.Encode()
}

// pages reads every page from first on, following paging.next, pacing each request by
// the usage Meta reported with the one before.
func pages[T any](ctx context.Context, c *Client, first string) ([]T, error) {
	var all []T
	for next := first; next != ""; {
		if !strings.HasPrefix(next, c.base+"/") { // the token goes to Meta's host only
			return nil, &Error{Status: 200, Message: fmt.Sprintf("paging.next %q leaves %s", next, c.base)}
		}
		var page struct {
			Data   []T `json:"data"`
			Paging struct {
				Next string `json:"next"`
			} `json:"paging"`
		}
		hdr, err := c.callURL(ctx, http.MethodGet, next, nil, &page)
		c.noteUsage(hdr)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if next = page.Paging.Next; next != "" {
			if err := c.pace(ctx); err != nil {
				return nil, err
			}
		}
	}
	return all, nil
}

// tooLarge reports Meta's timeouts of a synchronous insights request.
func (e *Error) tooLarge() bool {
	return e.Code == 100 && e.Subcode == 1504018 || e.Code == 2 && e.Subcode == 1504038
}

// Usage is how much of Meta's rate limits the last answer said is used: the highest
// percentage of its usage headers, and how long until access returns when it is used up.
type Usage struct {
	Percent  float64
	RegainIn time.Duration
}

// parseUsage reads X-Business-Use-Case-Usage, X-Ad-Account-Usage and
// X-FB-Ads-Insights-Throttle (JSON strings) from h.
func parseUsage(h http.Header) Usage {
	var u Usage
	var buc map[string][]struct {
		CallCount float64 `json:"call_count"`
		CPUTime   float64 `json:"total_cputime"`
		TotalTime float64 `json:"total_time"`
		Regain    float64 `json:"estimated_time_to_regain_access"` // minutes
	}
	if json.Unmarshal([]byte(h.Get("X-Business-Use-Case-Usage")), &buc) == nil {
		for _, list := range buc {
			for _, x := range list {
				u.Percent = max(u.Percent, x.CallCount, x.CPUTime, x.TotalTime)
				u.RegainIn = max(u.RegainIn, time.Duration(x.Regain*float64(time.Minute)))
			}
		}
	}
	var acct struct {
		Util  float64 `json:"acc_id_util_pct"`
		Reset float64 `json:"reset_time_duration"` // seconds
	}
	if json.Unmarshal([]byte(h.Get("X-Ad-Account-Usage")), &acct) == nil {
		u.Percent = max(u.Percent, acct.Util)
		if acct.Util >= 100 {
			u.RegainIn = max(u.RegainIn, time.Duration(acct.Reset*float64(time.Second)))
		}
	}
	var thr struct {
		App  float64 `json:"app_id_util_pct"`
		Acct float64 `json:"acc_id_util_pct"`
	}
	if json.Unmarshal([]byte(h.Get("X-FB-Ads-Insights-Throttle")), &thr) == nil {
		u.Percent = max(u.Percent, thr.App, thr.Acct)
	}
	return u
}

// pause is how long to wait before the next call at usage u: nothing below 75 %, then
// up to PaceMax as usage nears 100 %, and at 100 % until Meta says access returns.
func (c *Client) pause(u Usage) time.Duration {
	switch {
	case u.Percent >= 100:
		return max(u.RegainIn, c.PaceMax)
	case u.Percent >= 75:
		return time.Duration((u.Percent - 75) / 25 * float64(c.PaceMax))
	}
	return 0
}

func (c *Client) noteUsage(h http.Header) {
	if h != nil {
		c.mu.Lock()
		c.usage = parseUsage(h)
		c.mu.Unlock()
	}
}

// LastUsage is the usage of the last answer that carried usage headers.
func (c *Client) LastUsage() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usage
}

func (c *Client) pace(ctx context.Context) error { return c.sleep(ctx, c.pause(c.LastUsage())) }

// sleep waits d unless ctx ends first.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
