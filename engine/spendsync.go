package engine

// Spend sync (SPEC §10): each ad account's daily per-ad delivery pulled from Meta's
// Marketing API into an app, as an import of the same rows would store it. One goroutine
// per account keeps one call in flight per account; a run reads every page before it
// stores anything, so a run that fails part way stores nothing of its days.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

// MetaAds is what the spend sync needs of Meta's Marketing API (metaapi.Client).
type MetaAds interface {
	AdAccount(ctx context.Context, act string) (metaapi.AdAccountInfo, error)
	Insights(ctx context.Context, act, since, until string) ([]metaapi.InsightRow, error)
	AdStatuses(ctx context.Context, act string) ([]metaapi.AdStatus, error)
	LastUsage() metaapi.Usage
	Token() string // the token the next call sends: a stopped sync resumes when it changes
}

// SpendAccount is one -spend-sync pair: an ad account (digits, without act_) and the app
// its spend is credited to.
type SpendAccount struct{ Act, App string }

// SpendSyncConfig is how spend is synced.
type SpendSyncConfig struct {
	Meta         MetaAds
	Accounts     []SpendAccount
	Every        time.Duration // between runs; 0: 1 h
	Days         int           // days each run pulls again, today included; 0: 28
	BackfillDays int           // days the first run pulls for an account new to the store; 0: 90
	RetryMin     time.Duration // first wait after a throttled or failed run, doubling up to Every; 0: 1 min
	TokenCheck   time.Duration // how often a stopped sync looks for a new token; 0: 30 s
	Log          *slog.Logger
	now          func() time.Time // tests
}

// SpendSyncStatus is an account's sync state, for the API and the dashboard.
type SpendSyncStatus struct {
	AdAccountID string
	AppID       string
	LastRun     time.Time // zero: none yet
	LastSuccess time.Time
	NextRun     time.Time
	Rows        int    // of the last successful run
	LastError   string // of the last run, in words; "" after a success
	Stopped     bool   // Meta refused the token: no run until it changes, POST …/ads/sync or a restart
}

var spendRows = metrics.NewCounter("ctwa_sidecar_spend_sync_rows_total")

func countSpendRun(result string) {
	metrics.GetOrCreateCounter(fmt.Sprintf(`ctwa_sidecar_spend_sync_runs_total{result=%q}`, result)).Inc()
}

// SpendSync runs the spend sync of every account.
type SpendSync struct {
	r        *Recorder
	cfg      SpendSyncConfig
	accounts []*syncAccount
}

type syncAccount struct {
	SpendAccount
	now      chan struct{} // run now
	mu       sync.Mutex
	st       SpendSyncStatus
	failures int    // consecutive failed runs, for the backoff
	refused  string // the token Meta refused, while stopped
}

// NewSpendSync prepares the sync of cfg's accounts into r.
func (r *Recorder) NewSpendSync(cfg SpendSyncConfig) *SpendSync {
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Days <= 0 {
		cfg.Days = 28
	}
	if cfg.BackfillDays <= 0 {
		cfg.BackfillDays = 90
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Minute
	}
	if cfg.TokenCheck <= 0 {
		cfg.TokenCheck = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = r.cfg.Log
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	s := &SpendSync{r: r, cfg: cfg}
	for _, a := range cfg.Accounts {
		s.accounts = append(s.accounts, &syncAccount{SpendAccount: a, now: make(chan struct{}, 1),
			st: SpendSyncStatus{AdAccountID: a.Act, AppID: a.App}})
	}
	return s
}

// Run syncs every account until ctx ends, the first run at once.
func (s *SpendSync) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range s.accounts {
		wg.Go(func() { s.loop(ctx, a) })
	}
	wg.Wait()
}

// Status returns the sync state of app's accounts.
func (s *SpendSync) Status(app string) []SpendSyncStatus {
	out := []SpendSyncStatus{}
	for _, a := range s.accounts {
		if a.App == app {
			a.mu.Lock()
			out = append(out, a.st)
			a.mu.Unlock()
		}
	}
	return out
}

// RunNow starts a run of app's accounts (a stopped one too) and reports how many it has.
func (s *SpendSync) RunNow(app string) int {
	n := 0
	for _, a := range s.accounts {
		if a.App == app {
			n++
			select {
			case a.now <- struct{}{}:
			default:
			}
		}
	}
	return n
}

func (s *SpendSync) loop(ctx context.Context, a *syncAccount) {
	for {
		wait, stopped := s.runOnce(ctx, a)
		if stopped {
			wait = s.cfg.TokenCheck
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-s.r.views.Closing():
				return
			case <-a.now:
				waiting = false
			case <-time.After(wait):
				// A stopped sync runs again only once the token is not the refused one.
				waiting = stopped && s.cfg.Meta.Token() == a.refusedToken()
			}
		}
	}
}

func (a *syncAccount) refusedToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

// runOnce runs the sync of a, records the outcome and returns the wait until the next
// run, or stopped when there is none until RunNow.
func (s *SpendSync) runOnce(ctx context.Context, a *syncAccount) (wait time.Duration, stopped bool) {
	start := s.cfg.now()
	rows, err := s.run(ctx, a)
	if ctx.Err() != nil {
		return 0, false
	}
	wait = s.outcome(a, start, rows, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.NextRun = time.Time{}
	if !a.st.Stopped {
		a.st.NextRun = start.Add(wait)
	}
	return wait, a.st.Stopped
}

// outcome records how a run that started at start ended and returns the wait until the next.
func (s *SpendSync) outcome(a *syncAccount, start time.Time, rows int, err error) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.LastRun, a.st.Stopped = start, false
	var me *metaapi.Error
	switch {
	case err == nil:
		a.st.LastSuccess, a.st.Rows, a.st.LastError, a.failures = start, rows, "", 0
		spendRows.Add(rows)
		countSpendRun("ok")
		return s.cfg.Every
	case errors.As(err, &me) && me.Account():
		a.st.Stopped, a.refused = true, s.cfg.Meta.Token()
		a.st.LastError = "Meta refused the token or its permissions; put a new token in -meta-token-file (read again every 30 s), restart with a new -meta-token, or POST …/ads/sync to try again: " + err.Error()
		s.cfg.Log.Error("spend sync stopped: Meta refuses the token", "ad_account", a.Act, "err", err)
		countSpendRun("stopped")
		return 0
	}
	a.failures++
	wait := backoff(s.cfg.RetryMin, s.cfg.Every, a.failures)
	result := "failed"
	if errors.As(err, &me) && me.Retryable() {
		result = "throttled"
		wait = max(wait, s.cfg.Meta.LastUsage().RegainIn, me.RetryAfter)
	}
	a.st.LastError = err.Error()
	s.cfg.Log.Warn("spend sync failed; nothing of this run is stored, retrying", "ad_account", a.Act, "err", err, "in", wait.Round(time.Second))
	countSpendRun(result)
	return wait
}

// run pulls the account's days and stores them; it returns the rows stored.
func (s *SpendSync) run(ctx context.Context, a *syncAccount) (int, error) {
	info, err := s.cfg.Meta.AdAccount(ctx, a.Act)
	if err != nil {
		return 0, err
	}
	loc, err := time.LoadLocation(info.Timezone)
	if err != nil {
		return 0, fmt.Errorf("ad account %s: timezone_name %q is no IANA zone: %w", a.Act, info.Timezone, err)
	}
	days := s.cfg.Days
	if _, known := s.r.catalog.Load().AdAccounts[a.Act]; !known {
		days = s.cfg.BackfillDays
	}
	until := s.cfg.now().In(loc)
	since := until.AddDate(0, 0, 1-days)
	rows, err := s.cfg.Meta.Insights(ctx, a.Act, since.Format(time.DateOnly), until.Format(time.DateOnly))
	if err != nil {
		return 0, fmt.Errorf("insights of ad account %s: %w", a.Act, err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	ads, err := s.cfg.Meta.AdStatuses(ctx, a.Act)
	if err != nil {
		return 0, fmt.Errorf("ads of ad account %s: %w", a.Act, err)
	}
	imp, err := spendImportOf(a.Act, info, rows, ads)
	if err != nil {
		return 0, err
	}
	if _, err := s.r.ImportSpend(ctx, a.App, imp); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// graphTime reads a Graph API datetime ("2026-03-01T10:00:00+0000") as unix seconds; 0
// when it is absent or not one: a creation time is only shown, never computed with.
func graphTime(s string) int64 {
	t, err := time.Parse("2006-01-02T15:04:05-0700", s)
	if err != nil {
		return 0
	}
	return t.Unix()
}

// spendImportOf turns Meta's rows into an import, statuses from ads; a row that is not
// one ad's day in the account's currency with numbers is an error naming it.
func spendImportOf(act string, info metaapi.AdAccountInfo, rows []metaapi.InsightRow, ads []metaapi.AdStatus) (SpendImport, error) {
	byID := make(map[string]*metaapi.AdStatus, len(ads))
	for i := range ads {
		byID[ads[i].ID] = &ads[i]
	}
	imp := SpendImport{AdAccount: AdAccount{ID: act, Name: info.Name, Currency: info.Currency}}
	for i, row := range rows {
		bad := func(what string) error {
			return fmt.Errorf("ad account %s: insights row %d (ad %s, %s): %s", act, i, row.AdID, row.DateStart, what)
		}
		spend, err := parseMoney(row.Spend)
		if err != nil {
			return SpendImport{}, bad("spend " + err.Error())
		}
		impressions, err1 := parseCount(row.Impressions)
		clicks, err2 := parseCount(row.Clicks)
		switch {
		case err1 != nil || err2 != nil:
			return SpendImport{}, bad(fmt.Sprintf("impressions %q or inline_link_clicks %q is no count", row.Impressions, row.Clicks))
		case row.DateStart != row.DateStop:
			return SpendImport{}, bad(fmt.Sprintf("spans %s to %s, not one day (time_increment=1)", row.DateStart, row.DateStop))
		case row.Currency != "" && row.Currency != info.Currency:
			return SpendImport{}, bad(fmt.Sprintf("is in %s, the account in %s", row.Currency, info.Currency))
		}
		r := SpendRow{Date: row.DateStart, CampaignID: row.CampaignID, CampaignName: row.CampaignName,
			AdSetID: row.AdSetID, AdSetName: row.AdSetName, AdID: row.AdID, AdName: row.AdName,
			Impressions: impressions, Clicks: clicks, Spend: spend, where: fmt.Sprintf("insights row %d", i)}
		if ad := byID[row.AdID]; ad != nil {
			r.Status, r.adCreated, r.campaignCreated = ad.Status, graphTime(ad.Created), graphTime(ad.Campaign.Created)
		}
		imp.Rows = append(imp.Rows, r)
	}
	return imp, imp.validate()
}
