package engine

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Days is a range of day numbers: From inclusive, To exclusive.
type Days struct{ From, To int32 }

// DaysOf converts a [from, to) range of unix seconds into the days it touches, in the
// configured zone.
func (r *Recorder) DaysOf(from, to int64) Days {
	const far = 1 << 40
	d := Days{From: math.MinInt32, To: math.MaxInt32}
	if from > -far {
		d.From = dayIn(from, r.cfg.Location)
	}
	if to < far {
		d.To = dayIn(to-1, r.cfg.Location) + 1
	}
	return d
}

// Day returns the day number of a unix time in the configured zone.
func (r *Recorder) Day(unix int64) int32 { return dayIn(unix, r.cfg.Location) }

// Totals sums rollups and deliveries: the raw numbers behind an insight.
type Totals struct {
	Sessions, Engaged, Converted, KeywordEvents, OffCount int64
	AutoEvents                                            int64              // automatic_event events
	Keywords                                              map[string]int64   // keyword group id → events
	Revenue                                               map[string]float64 // currency → amount
	Impressions, Clicks                                   int64
	Spend                                                 float64
	currencyOrder                                         []string // currencies in the order first seen
	// The hashes of the sessions' leads, with repeats until UniqueUsers sorts them out:
	// appending is cheaper than a set's inserts (the sources view over 10 M messages
	// spent a seventh of its time in map inserts, for 160 000 lead keys a query).
	leads    []uint64
	distinct bool // leads is sorted and without repeats
}

// UniqueUsers is the number of distinct leads among the sessions.
func (t *Totals) UniqueUsers() int64 {
	if !t.distinct {
		slices.Sort(t.leads)
		t.leads, t.distinct = slices.Compact(t.leads), true
	}
	return int64(len(t.leads))
}

// addLead counts a session's lead (by its hash).
func (t *Totals) addLead(h uint64) { t.leads, t.distinct = append(t.leads, h), false }

// NewTotals returns empty totals.
func NewTotals() *Totals { return newTotals() }

// Merge adds o into t (for a campaign over its ads, or a source over days).
func (t *Totals) Merge(o *Totals) {
	t.Sessions += o.Sessions
	t.Engaged += o.Engaged
	t.Converted += o.Converted
	t.KeywordEvents += o.KeywordEvents
	t.OffCount += o.OffCount
	t.AutoEvents += o.AutoEvents
	t.Impressions += o.Impressions
	t.Clicks += o.Clicks
	t.Spend += o.Spend
	for k, n := range o.Keywords {
		t.Keywords[k] += n
	}
	for _, c := range o.currencyOrder {
		if _, seen := t.Revenue[c]; !seen {
			t.currencyOrder = append(t.currencyOrder, c)
		}
		t.Revenue[c] += o.Revenue[c]
	}
	if len(o.leads) > 0 {
		t.leads, t.distinct = append(t.leads, o.leads...), false
	}
}

func newTotals() *Totals {
	return &Totals{Keywords: map[string]int64{}, Revenue: map[string]float64{}, distinct: true}
}

func (t *Totals) addRollup(r *kv.Rollup) {
	t.Sessions += r.Sessions
	t.Engaged += r.Engaged
	t.Converted += r.Converted
	t.KeywordEvents += r.KeywordEvents
	t.OffCount += r.OffCount
	t.AutoEvents += r.AutoEvents
	for _, k := range r.Keywords {
		t.Keywords[k.ID] += k.N
	}
	for _, m := range r.Revenue {
		if _, seen := t.Revenue[m.Currency]; !seen {
			t.currencyOrder = append(t.currencyOrder, m.Currency)
		}
		t.Revenue[m.Currency] += m.Amount
	}
}

// putFirst makes currency, when t has revenue in it, the first currency seen.
func (t *Totals) putFirst(currency string) {
	if i := slices.Index(t.currencyOrder, currency); i > 0 {
		t.currencyOrder = slices.Insert(slices.Delete(t.currencyOrder, i, i+1), 0, currency)
	}
}

func (t *Totals) addDelivery(d *Delivery) {
	t.Impressions += d.Impressions
	t.Clicks += d.Clicks
	t.Spend += d.Spend
}

// SourceRef names a session source.
type SourceRef struct{ Type, ID string }

// AdSources are the rollup sources of an ad. A post:<id> referral is a click on a
// page post, not on an ad (SPEC §4.1): it is a source of its own, never in ad totals.
func AdSources(adID string) []SourceRef {
	return []SourceRef{{SourceAd, adID}}
}

// sink returns the Totals that a day's numbers are added to: one for a whole range
// (AdTotals), one per day (DailyTotals).
type sink func(day int32) *Totals

// into is the sink of a single Totals.
func into(t *Totals) sink { return func(int32) *Totals { return t } }

// rangeKeys returns the [start, end) keys of days under prefix, where key(day) builds a
// day's first key; an open start begins at the prefix itself.
func rangeKeys(prefix []byte, days Days, key func(day int32) []byte) ([]byte, []byte) {
	start := key(days.From)
	if days.From == math.MinInt32 {
		start = prefix
	}
	return start, key(days.To)
}

// addSource adds one source's daily rollups and its leads over days.
func (r *Recorder) addSource(to sink, app string, src SourceRef, days Days) error {
	start, end := rangeKeys(kv.RollupSourcePrefix(app, src.Type, src.ID), days,
		func(d int32) []byte { return kv.RollupKey(nil, app, src.Type, src.ID, d) })
	var roll kv.Rollup
	err := r.views.ScanRange(start, end, func(k, v []byte) (bool, error) {
		if err := kv.DecodeRollup(v, &roll); err != nil {
			return false, err
		}
		to(kv.RollupDay(k)).addRollup(&roll)
		return true, nil
	})
	if err != nil {
		return err
	}
	start, end = rangeKeys(kv.RollupLeadSourcePrefix(app, src.Type, src.ID), days,
		func(d int32) []byte { return kv.RollupLeadKey(nil, app, src.Type, src.ID, d, 0) })
	return r.views.ScanKeys(start, end, func(k []byte) bool {
		to(kv.RollupLeadDay(k)).addLead(kv.LeadHashOf(k))
		return true
	})
}

func (r *Recorder) addDelivery(to sink, adID string, days Days) error {
	start, end := rangeKeys(kv.SpendPrefix(adID), days, func(d int32) []byte { return kv.SpendKey(adID, d) })
	return r.views.ScanRange(start, end, func(k, v []byte) (bool, error) {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return false, fmt.Errorf("corrupt delivery row: %w", err)
		}
		to(kv.SpendDay(k)).addDelivery(&d)
		return true, nil
	})
}

// addAds adds the sessions and delivery of ads (one ad, or a campaign's ads) in app.
func (r *Recorder) addAds(to sink, app string, adIDs []string, days Days) error {
	for _, id := range adIDs {
		for _, src := range AdSources(id) {
			if err := r.addSource(to, app, src, days); err != nil {
				return err
			}
		}
		if err := r.addDelivery(to, id, days); err != nil {
			return err
		}
	}
	return nil
}

// AdTotals sums the sessions and delivery of ads (one ad, or a campaign's ads) in app.
func (r *Recorder) AdTotals(app string, adIDs []string, days Days) (*Totals, error) {
	r.settle()
	t := newTotals()
	if err := r.addAds(into(t), app, adIDs, days); err != nil {
		return nil, err
	}
	return t, nil
}

// DailyTotals returns one Totals per day of days that has sessions, events or delivery.
func (r *Recorder) DailyTotals(app string, adIDs []string, days Days) (map[int32]*Totals, error) {
	r.settle()
	out := map[int32]*Totals{}
	if err := r.addAds(perDay(out), app, adIDs, days); err != nil {
		return nil, err
	}
	return out, nil
}

// perDay is the sink that keeps one Totals per day in out.
func perDay(out map[int32]*Totals) sink {
	return func(day int32) *Totals {
		if out[day] == nil {
			out[day] = newTotals()
		}
		return out[day]
	}
}

// SourceTotals returns the totals of every source of app with sessions or off-thread
// events in days, keyed by source. Its unattributed source also holds the unattributed
// events that named no app: no app to file them under, they show in every app's view.
func (r *Recorder) SourceTotals(app string, days Days) (map[SourceRef]*Totals, error) {
	r.settle()
	var refs []SourceRef
	err := r.eachRollupSource(app, func(ref SourceRef) error {
		if ref != unattributedRef { // addUnattributed's
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The sources are read on every core: each is its own two scans.
	found := make([]*Totals, len(refs))
	err = onCores(len(refs), func(i int) error {
		return r.addSource(func(int32) *Totals {
			if found[i] == nil { // made when the days asked for have some of its numbers
				found[i] = newTotals()
			}
			return found[i]
		}, app, refs[i], days)
	})
	if err != nil {
		return nil, err
	}
	out := map[SourceRef]*Totals{}
	for i, t := range found {
		if t != nil {
			out[refs[i]] = t
		}
	}
	return out, r.addUnattributed(out, app, days)
}

// eachRollupSource calls fn with every source that has rollups in app, in key order. It
// skips from one source to the next instead of reading every day of each: reading the
// days asked for is then the caller's, and the cost follows the number of sources and
// days asked for, not the store's history (`go run ./bench -store-scale 1000000`: the
// sources view of 30 days read all 365 days of rollups and their lead keys in 138 ms).
func (r *Recorder) eachRollupSource(app string, fn func(SourceRef) error) error {
	from, end := kv.RollupAppPrefix(app), kv.PrefixEnd(kv.RollupAppPrefix(app))
	for {
		var ref SourceRef
		var found, ok bool
		err := r.views.ScanKeys(from, end, func(k []byte) bool {
			ref.Type, ref.ID, _, ok = kv.SplitRollupKey(k)
			found = true
			return false
		})
		switch {
		case err != nil:
			return err
		case !found:
			return nil
		case !ok:
			return errors.New("corrupt rollup key")
		}
		if err := fn(ref); err != nil {
			return err
		}
		from = kv.PrefixEnd(kv.RollupSourcePrefix(app, ref.Type, ref.ID))
	}
}

// unattributedRef is the source of the off-thread events no session was credited with.
var unattributedRef = SourceRef{Type: SourceUnattributed}

// addUnattributed sets the unattributed source of out from app's unattributed rollups
// and those of the events that named no app, merged in day order so that the first
// currency seen (the reporting one: there is no ad account, SPEC §6.2) is the currency
// of the earliest event, whichever of the two it is filed under.
func (r *Recorder) addUnattributed(out map[SourceRef]*Totals, app string, days Days) error {
	apps := []string{app}
	if app != "" {
		apps = append(apps, "")
	}
	byDay := map[int32]*Totals{}
	for _, a := range apps {
		if err := r.addSource(perDay(byDay), a, unattributedRef, days); err != nil {
			return err
		}
	}
	if len(byDay) == 0 {
		return nil
	}
	t := newTotals()
	sorted := slices.Sorted(maps.Keys(byDay))
	for _, day := range sorted {
		t.Merge(byDay[day])
	}
	out[unattributedRef] = t
	if i := slices.IndexFunc(sorted, func(d int32) bool { return len(byDay[d].currencyOrder) > 0 }); i >= 0 &&
		len(byDay[sorted[i]].currencyOrder) > 1 {
		return r.firstCurrencyOfDay(t, apps, sorted[i])
	}
	return nil
}

// firstCurrencyOfDay puts first among t's currencies the currency of the earliest paid
// unattributed event of day, filed under one of apps: a rollup keeps a day's currencies
// sorted by code, so only the events tell which came first when a day has several.
func (r *Recorder) firstCurrencyOfDay(t *Totals, apps []string, day int32) error {
	from, to := dayStart(day, r.cfg.Location), dayStart(day+1, r.cfg.Location)
	var first OffThreadRecord
	for _, app := range apps {
		prefix := kv.OffThreadAppPrefix(app)
		err := r.views.ScanRange(kv.OffThreadAppKey(app, from, ""), kv.OffThreadAppKey(app, to, ""),
			func(k, _ []byte) (bool, error) {
				rec, ok, err := r.OffThread(string(k[len(prefix)+8:]))
				if err != nil || !ok || rec.SourceType != SourceUnattributed || rec.Amount == 0 {
					return err == nil, err
				}
				if first.ID == "" || rec.Time < first.Time {
					first = rec
				}
				return false, nil // the index is in time order: later ones are later
			})
		if err != nil {
			return err
		}
	}
	t.putFirst(first.Currency)
	return nil
}

// dayStart is the first second of day (a day number as dayIn returns) in loc.
func dayStart(day int32, loc *time.Location) int64 {
	y, m, d := time.Unix(int64(day)*86400, 0).UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc).Unix()
}

// ReferralAds returns the ads of app that referrals revealed and no import placed,
// listed under ad account "unassigned" with the referral headline as name. Posts are
// not ads and are not listed (SPEC §4.1).
func (r *Recorder) ReferralAds(app string) ([]Ad, error) {
	r.settle()
	cat := r.catalog.Load()
	var out []Ad
	err := r.referrals(app, func(ra *referralAd) {
		if imported, ok := cat.Ads[ra.ID]; ra.Type == SourcePost || (ok && imported.AppID == app) {
			return
		}
		out = append(out, Ad{ID: ra.ID, Name: ra.name(), Status: "UNKNOWN", AdAccountID: Unassigned, AppID: app,
			Referral: true, Created: ra.FirstSeen, Updated: ra.FirstSeen})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// ReferralNames returns the names that referrals give app's ad and post sources: the
// referral headline, for sources no import names.
func (r *Recorder) ReferralNames(app string) (map[SourceRef]string, error) {
	r.settle()
	out := map[SourceRef]string{}
	err := r.referrals(app, func(ra *referralAd) {
		if ra.Type == "" { // written before types were kept: it names either
			out[SourceRef{SourceAd, ra.ID}], out[SourceRef{SourcePost, ra.ID}] = ra.name(), ra.name()
			return
		}
		out[SourceRef{ra.Type, ra.ID}] = ra.name()
	})
	return out, err
}

// referrals calls fn for each stored referral record of app.
func (r *Recorder) referrals(app string, fn func(*referralAd)) error {
	return r.views.Scan(kv.ReferralAdPrefix(app), false, func(_, v []byte) (bool, error) {
		var ra referralAd
		if err := json.Unmarshal(v, &ra); err != nil {
			return false, fmt.Errorf("corrupt referral record of app %q: %w", app, err)
		}
		fn(&ra)
		return true, nil
	})
}

// name is the headline, or "Ad <id>" ("Post <id>") for a referral without one.
func (ra *referralAd) name() string {
	switch {
	case ra.Headline != "":
		return ra.Headline
	case ra.Type == SourcePost:
		return "Post " + ra.ID
	}
	return "Ad " + ra.ID
}

// AdTotalsEach computes AdTotals for each group of ad ids (an ad, or a campaign's ads),
// spreading the groups over the cores: a page of ads reads each ad's rollups and lead
// keys independently.
func (r *Recorder) AdTotalsEach(app string, groups [][]string, days Days) ([]*Totals, error) {
	r.settle()
	out := make([]*Totals, len(groups))
	err := onCores(len(groups), func(i int) (err error) {
		out[i], err = r.AdTotals(app, groups[i], days)
		return err
	})
	return out, err
}

// onCores calls fn(i) for each i below n from as many goroutines as there are cores,
// and returns every error.
func onCores(n int, fn func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
