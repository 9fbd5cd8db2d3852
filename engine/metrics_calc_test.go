package engine

import (
	"math"
	"reflect"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// The rounding of SPEC §6.2: half away from zero to 2 decimals, on the decimal value a
// person computes by hand; a zero denominator gives 0, never NaN or Inf.
func TestRound2HalfAwayFromZero(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"exact binary half: 1/8", Round2(0.125), 0.13},
		{"exact binary half, negative", Round2(-0.125), -0.13},
		{"below the half", Round2(0.1249), 0.12},
		{"above the half", Round2(0.1251), 0.13},
		// Decimal halves that binary floating point holds a hair below the half cent:
		// math.Round(x*100)/100 gives the lower cent for each of these.
		{"1.005", Round2(1.005), 1.01},
		{"2.01/2 = 1.005", Round2(2.01 / 2), 1.01},
		{"64.35/2 = 32.175", Round2(64.35 / 2), 32.18},
		{"0.29/2 = 0.145", Round2(0.29 / 2), 0.15},
		{"-64.35/2 = -32.175", Round2(-64.35 / 2), -32.18},
		{"a sum of days: (45.00+0+19.35)/2", Round2((45.00 + 0 + 19.35) / 2), 32.18},
		// Close to, but truly below, a half cent stays below.
		{"32.17499", Round2(32.17499), 32.17},
		{"1.00499999", Round2(1.00499999), 1},
		{"whole", Round2(300.02), 300.02},
		{"zero", Round2(0), 0},
		{"large", Round2(1234567.895), 1234567.9},
		{"NaN", Round2(math.NaN()), 0},
		{"+Inf", Round2(math.Inf(1)), 0},

		{"ratio cpc 300.02/500", Ratio(300.02, 500), 0.6},
		{"ratio cost per user 300.02/4 = 75.005", Ratio(300.02, 4), 75.01},
		{"ratio cpm 5.05*1000/2000 = 2.525", Ratio(5.05*1000, 2000), 2.53},
		{"ratio zero denominator", Ratio(300.02, 0), 0},
		{"ratio 0/0", Ratio(0, 0), 0},
		{"percent 2/3", Percent(2, 3), 66.67},
		{"percent 1/3", Percent(1, 3), 33.33},
		{"percent 1/800 = 0.125", Percent(1, 800), 0.13},
		{"percent zero denominator", Percent(5, 0), 0},
	} {
		if tc.got != tc.want || math.Signbit(tc.got) != math.Signbit(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// Revenue is reported in the ad account's currency, or the first seen; the others apart,
// never summed.
func TestSplitRevenue(t *testing.T) {
	tot := NewTotals()
	day1, day2 := newTotals(), newTotals()
	paid := func(currency string, amount float64) *kv.Rollup {
		return &kv.Rollup{OffCount: 1, Revenue: []kv.Money{{Currency: currency, Amount: amount}}}
	}
	day1.addRollup(paid("USD", 30))
	day2.addRollup(paid("EUR", 49.9))
	day2.addRollup(paid("EUR", 120))
	tot.Merge(day1)
	tot.Merge(day2)

	cur, amount, others := tot.SplitRevenue("EUR")
	if cur != "EUR" || Round2(amount) != 169.9 || len(others) != 1 || others[0] != (Money{"USD", 30}) {
		t.Errorf("EUR account: %s %v %v", cur, amount, others)
	}
	cur, amount, others = tot.SplitRevenue("") // no account: the first currency seen
	if cur != "USD" || amount != 30 || len(others) != 1 || others[0] != (Money{"EUR", 169.9}) {
		t.Errorf("no account: %s %v %v", cur, amount, others)
	}
	cur, amount, others = tot.SplitRevenue("GBP") // an account currency nobody paid in
	if cur != "GBP" || amount != 0 || len(others) != 2 || others[0].Currency != "EUR" || others[1].Currency != "USD" {
		t.Errorf("GBP account: %s %v %v", cur, amount, others)
	}
	cur, amount, others = NewTotals().SplitRevenue("")
	if cur != "" || amount != 0 || others != nil {
		t.Errorf("nothing: %q %v %v", cur, amount, others)
	}
}

// totalsOf builds totals with n unique users and revenue rolled up in the order given.
func totalsOf(users int, revenue ...kv.Money) *Totals {
	t := newTotals()
	for i := range users {
		t.addLead(uint64(i))
	}
	for _, m := range revenue {
		t.addRollup(&kv.Rollup{Revenue: []kv.Money{m}})
	}
	return t
}

// The insight formulas of SPEC §6.2, on numbers computed by hand.
func TestNewInsight(t *testing.T) {
	tot := totalsOf(4)
	tot.Impressions, tot.Clicks, tot.Spend = 2000, 50, 300.02
	tot.Sessions, tot.Engaged, tot.Converted = 40, 3, 2
	tot.KeywordEvents, tot.AutoEvents = 5, 1
	tot.Keywords = map[string]int64{"1": 3, "2": 2, "7": 2}
	defs := &Definitions{Groups: []Group{{ID: "1", Type: TypeKeyword, TypeValue: "price"}, {ID: "2", Type: TypeKeyword, TypeValue: "menu"}}}

	got := NewInsight(tot, "EUR", "2026-03-16", defs)
	want := Insight{
		Date: "2026-03-16", Clicks: 50, Impressions: 2000, Spend: 300.02, Currency: "EUR",
		CPC:                       6,      // 300.02 / 50 = 6.0004
		CPM:                       150.01, // 300.02 * 1000 / 2000
		CTR:                       2.5,    // 50 / 2000 * 100
		Sessions:                  40,
		CostPerSession:            7.5, // 300.02 / 40 = 7.5005
		CVRClicksToSessions:       80,  // 40 / 50 * 100
		UniqueUsers:               4,
		CostPerUniqueUser:         75.01, // 300.02 / 4 = 75.005, half away from zero
		CVRClicksToUniqueUsers:    8,     // 4 / 50 * 100
		Engaged:                   3,
		CostPerEngagement:         100.01, // 300.02 / 3 = 100.00666…
		CVRUniqueUsersToEngaged:   75,     // 3 / 4 * 100
		Converted:                 2,
		CostPerConversions:        150.01, // 300.02 / 2
		CVRUniqueUsersToConverted: 50,     // 2 / 4 * 100
		Events:                    EventCounts{Conversation: 40, Keyword: 5, AutomaticEvent: 1},
		// Most events first, then by keyword; an unknown group shows its id. CVR: events per session.
		Keywords:      []KeywordRow{{"price", 3, 7.5}, {"7", 2, 5}, {"menu", 2, 5}},
		KeywordsCount: 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewInsight:\n got %+v\nwant %+v", got, want)
	}

	// Nothing recorded: zeros, never NaN or Inf, and an empty keyword list, not null.
	got = NewInsight(newTotals(), "", "d", defs)
	if want := (Insight{Date: "d", Keywords: []KeywordRow{}}); !reflect.DeepEqual(got, want) {
		t.Errorf("NewInsight(empty) = %+v", got)
	}
}

func TestNewSaleInsight(t *testing.T) {
	tot := totalsOf(4, kv.Money{Currency: "USD", Amount: 30}, kv.Money{Currency: "EUR", Amount: 49.9}, kv.Money{Currency: "EUR", Amount: 120})
	tot.Spend, tot.OffCount = 300.02, 3
	got := NewSaleInsight(tot, "EUR", "2026-03-16")
	want := SaleInsight{Date: "2026-03-16", Revenue: 169.9, Currency: "EUR", Count: 3,
		ROAS:            0.57,   // 169.9 / 300.02 = 0.5663
		CVR:             75,     // 3 events / 4 users * 100
		CVRCost:         100.01, // 300.02 / 3
		OtherCurrencies: []Money{{"USD", 30}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewSaleInsight:\n got %+v\nwant %+v", got, want)
	}
	// No account currency: the first seen (USD) is the reporting one.
	got = NewSaleInsight(tot, "", "d")
	if got.Currency != "USD" || got.Revenue != 30 || got.ROAS != 0.1 || len(got.OtherCurrencies) != 1 || got.OtherCurrencies[0] != (Money{"EUR", 169.9}) {
		t.Errorf("NewSaleInsight without account currency = %+v", got)
	}
	if got := NewSaleInsight(newTotals(), "EUR", "d"); !reflect.DeepEqual(got, SaleInsight{Date: "d", Currency: "EUR"}) {
		t.Errorf("NewSaleInsight(empty) = %+v", got)
	}
}
