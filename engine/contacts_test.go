package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
	"github.com/ctwa-sidecar/ctwa-sidecar/storage"
)

// contactsOracle is the contacts export as it was computed before it streamed: every
// session and event of the app in maps, then one sort. Contacts must give the same rows.
func contactsOracle(t *testing.T, r *Recorder, f ContactFilter) []Contact {
	t.Helper()
	type row struct {
		c           Contact
		sourceStart map[string]int64
		revenue     map[string]float64
		hasType     bool
	}
	byLead := map[string]*row{}
	selected := map[string]bool{}
	err := r.Sessions(f.AppID, func(s *kv.Session) bool {
		if !f.selects(s) {
			return true
		}
		selected[s.ID] = true
		c := byLead[s.Lead]
		if c == nil {
			c = &row{c: Contact{Lead: s.Lead, LeadIsBSUID: s.LeadIsBSUID, First: s.Start},
				sourceStart: map[string]int64{}, revenue: map[string]float64{}}
			byLead[s.Lead] = c
		}
		c.c.First, c.c.Last = min(c.c.First, s.Start), max(c.c.Last, s.Last)
		c.c.Sessions++
		if src := SourceLabel(s.SourceType, s.SourceID); !slices.Contains(c.c.Sources, src) {
			c.c.Sources = append(c.c.Sources, src)
			c.sourceStart[src] = s.Start
		} else {
			c.sourceStart[src] = min(c.sourceStart[src], s.Start)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Events(EventFilter{AppID: f.AppID, From: f.From, To: 1 << 62}, func(ev *kv.Event) bool {
		c := byLead[ev.Lead]
		if c == nil {
			return true
		}
		if ev.Type == f.EventType && selected[ev.ConversationID] {
			c.hasType = true
		}
		if amount, currency, ok := offThreadRevenue(ev); ok && amount > 0 {
			c.revenue[currency] += amount
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []Contact
	for _, c := range byLead {
		if f.EventType != "" && !c.hasType {
			continue
		}
		slices.SortFunc(c.c.Sources, func(a, b string) int {
			return cmp.Or(cmp.Compare(c.sourceStart[a], c.sourceStart[b]), strings.Compare(a, b))
		})
		for cur, v := range c.revenue {
			c.c.Revenue = append(c.c.Revenue, Money{Currency: cur, Amount: v})
		}
		slices.SortFunc(c.c.Revenue, func(a, b Money) int { return strings.Compare(a.Currency, b.Currency) })
		out = append(out, c.c)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].First < out[j].First || (out[i].First == out[j].First && out[i].ExportID() < out[j].ExportID())
	})
	return out
}

func contactLine(c *Contact) string {
	return fmt.Sprintf("%s bsuid=%v %d..%d %q n=%d %v", c.Lead, c.LeadIsBSUID, c.First, c.Last, c.Sources, c.Sessions, c.Revenue)
}

// collect runs the export with a sort budget and returns its rows as lines.
func collectContacts(t *testing.T, r *Recorder, f ContactFilter, budget int) []string {
	t.Helper()
	lines := []string{}
	if err := r.contacts(context.Background(), f, budget, func(c *Contact) bool {
		lines = append(lines, contactLine(c))
		return true
	}); err != nil {
		t.Fatalf("Contacts(%+v): %v", f, err)
	}
	return lines
}

// writeRandomLeads stores n leads of two apps with sessions, message events and
// off-thread rows, shaped as the recorder writes them, with the odd cases a contacts
// export must get right: leads whose id is a prefix of another's, BSUID leads, equal
// start times, an off-thread event credited to another lead's session (through
// previous_external_event_id), actions named like event types, invalid currencies,
// index entries whose event row a refresh cleared.
func writeRandomLeads(t *testing.T, s *storage.Store, rng *rand.Rand, n int) {
	t.Helper()
	var all []sessRef
	for lo := 0; lo < n; lo += 50 {
		if err := s.Apply(context.Background(), func(b kv.Batch) error {
			writeRandomChunk(b, rng, lo, min(lo+50, n), &all)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

type sessRef struct{ app, id string }

func writeRandomChunk(b kv.Batch, rng *rand.Rand, lo, hi int, all *[]sessRef) {
	const base = 1773619200 // 2026-03-16
	sources := [][2]string{{SourceAd, "1"}, {SourceAd, "2"}, {SourcePost, "9"}, {SourceOrganic, ""},
		{SourceCustom, "1"}, {SourceCampaign, "spring"}}
	types := []string{TypeKeyword, TypeEngagement, TypeConverted, TypeButton}
	for i := lo; i < hi; i++ {
		lead, bsuid := strconv.Itoa(4917000+i/3), false
		switch i % 7 {
		case 1:
			lead = lead[:5] // a prefix of other leads
		case 2:
			lead, bsuid = "DE."+strconv.Itoa(1500+i), true
		}
		for k := range 1 + rng.IntN(3) {
			app := []string{"A", "B"}[rng.IntN(2)]
			src := sources[rng.IntN(len(sources))]
			start := base + int64(rng.IntN(40))*3600 // many equal starts
			ses := kv.Session{ID: fmt.Sprintf("s%d-%d", i, k), AppID: app, Lead: lead, LeadIsBSUID: bsuid,
				Start: start, Last: start + int64(rng.IntN(7200)), Messages: 2, SourceType: src[0], SourceID: src[1]}
			b.Set(kv.SessionKey(nil, app, ses.ID), kv.AppendSession(nil, &ses))
			b.Set(kv.LeadSessionKey(nil, lead, start, app, ses.ID), nil)
			*all = append(*all, sessRef{app, ses.ID})
			writeEvent(b, &kv.Event{ID: ses.ID + "c", AppID: app, Type: TypeConversation, Time: start, Lead: lead,
				LeadIsBSUID: bsuid, ConversationID: ses.ID, SourceType: src[0], SourceID: src[1], MessageID: "m" + ses.ID})
			for j := range rng.IntN(3) {
				writeEvent(b, &kv.Event{ID: fmt.Sprintf("%se%d", ses.ID, j), AppID: app, Type: types[rng.IntN(len(types))],
					Time: start + int64(rng.IntN(7200)), Lead: lead, LeadIsBSUID: bsuid, ConversationID: ses.ID,
					SourceType: src[0], SourceID: src[1], MessageID: "m" + ses.ID})
			}
		}
		for j := range rng.IntN(3) {
			conv := ""
			if len(*all) > 0 && rng.IntN(3) > 0 {
				conv = (*all)[rng.IntN(len(*all))].id // often another lead's session, or another app's
			}
			app := []string{"A", "B"}[rng.IntN(2)]
			id := fmt.Sprintf("x%d-%d", i, j)
			at := base + int64(rng.IntN(60))*3600 - 5*3600
			amount := []string{"49.9", "0", "12.345", "0.1", "abc"}[rng.IntN(5)]
			cur := []string{"EUR", "USD", "XX", "EUR"}[rng.IntN(4)]
			action := []string{"purchase", "purchase", TypeKeyword, "lead"}[rng.IntN(4)]
			b.Set(kv.OffThreadAppKey(app, at, id), nil)
			if rng.IntN(10) == 0 {
				continue // a refresh cleared the row, not yet the index entry
			}
			writeEvent(b, &kv.Event{ID: id, AppID: app, Type: action, TypeValue: amount + " " + cur, Time: at,
				Lead: lead, LeadIsBSUID: bsuid, ConversationID: conv, SourceType: SourceUnattributed})
		}
	}
}

func writeEvent(b kv.Batch, ev *kv.Event) {
	b.Set(kv.EventKey(nil, ev.AppID, ev.Time, ev.ID), kv.AppendEvent(nil, ev))
}

// TestContactsMatchesInMemoryExport: the streamed export gives the rows the in-memory one
// gave, in its order, for every filter — with the sorts in memory, and with a budget so
// small that every record goes to its own run in the temporary file and the runs are
// merged in several rounds.
func TestContactsMatchesInMemoryExport(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(12, 1))
	writeRandomLeads(t, e.store, rng, 500)
	day := int64(86400)
	filters := []ContactFilter{}
	for _, app := range []string{"A", "C"} { // B's leads are the noise around A's; C has none
		for _, r := range [][2]int64{{0, 1 << 62}, {1773619200 + 3600*10, 1773619200 + day}, {-100, 1773619200 + 3600}} {
			for _, src := range []string{"", "1", "ad:1", "organic", "custom:1", "post:9", "campaign:spring", "nope"} {
				for _, typ := range []string{"", TypeKeyword, TypeConversation, TypeConverted, "purchase", "lead", "nope"} {
					filters = append(filters, ContactFilter{AppID: app, From: r[0], To: r[1], SourceID: src, EventType: typ})
				}
			}
		}
	}
	rows := 0
	for i, f := range filters {
		want := []string{}
		for _, c := range contactsOracle(t, e.rec, f) {
			want = append(want, contactLine(&c))
		}
		rows += len(want)
		budgets := []int{contactsSortBudget, 256}
		if i%16 == 0 {
			budgets = append(budgets, 1) // a run per record: merges in rounds of maxMergeRuns
		}
		for _, budget := range budgets {
			if got := collectContacts(t, e.rec, f, budget); !slices.Equal(got, want) {
				t.Fatalf("%+v, budget %d:\ngot  %d rows\n %s\nwant %d rows\n %s", f, budget,
					len(got), strings.Join(got, "\n "), len(want), strings.Join(want, "\n "))
			}
		}
	}
	if rows < 2000 {
		t.Fatalf("only %d rows over %d filters: the data does not exercise the export", rows, len(filters))
	}
	t.Logf("%d filters, %d rows", len(filters), rows)
}

// checkCountingCtx is a context that reports itself canceled from its cancelAt-th Err
// call on, and counts the calls: how far a scan went after it was canceled.
type checkCountingCtx struct {
	context.Context
	calls, cancelAt int
}

func (c *checkCountingCtx) Err() error {
	c.calls++
	if c.calls >= c.cancelAt {
		return context.Canceled
	}
	return nil
}

// TestContactsStopsWhenAsked: an export whose context ends stops its scan at the next
// check, with the context's error and no row; one whose fn returns false gets no further
// row.
func TestContactsStopsWhenAsked(t *testing.T) {
	e := newTestEnv(t)
	writeRandomLeads(t, e.store, rand.New(rand.NewPCG(3, 4)), 3000)
	f := ContactFilter{AppID: "A", To: 1 << 62}

	// The first checks are in the scan of the off-thread index, the later ones in the
	// scan of the lead→sessions index.
	for _, cancelAt := range []int{1, 3, 8, 15} {
		ctx := &checkCountingCtx{Context: context.Background(), cancelAt: cancelAt}
		rows := 0
		err := e.rec.Contacts(ctx, f, func(*Contact) bool { rows++; return true })
		// One more call than cancelAt: context.Cause asks the context that ended once more.
		if !errors.Is(err, context.Canceled) || rows != 0 || ctx.calls != cancelAt+1 {
			t.Errorf("canceled at check %d: err %v, %d rows, %d calls of Err; want context.Canceled, 0 rows, %d calls",
				cancelAt, err, rows, ctx.calls, cancelAt+1)
		}
	}
	total := 0
	if err := e.rec.Contacts(context.Background(), f, func(*Contact) bool { total++; return true }); err != nil || total < 1000 {
		t.Fatalf("full export: %d rows, %v", total, err)
	}
	rows := 0
	err := e.rec.Contacts(context.Background(), f, func(*Contact) bool { rows++; return rows < 10 })
	if err != nil || rows != 10 {
		t.Errorf("fn said stop at row 10: %d rows, %v", rows, err)
	}
}

// TestRevenueOfRowsWrittenBeforeTypedRevenue: an off-thread event row written before
// rows kept their revenue typed (only the text "49.9 EUR" in its type_value) counts in
// the contacts export and reads with Amount and Currency, as the rows written since do.
func TestRevenueOfRowsWrittenBeforeTypedRevenue(t *testing.T) {
	e := newTestEnv(t)
	const app, lead, start = "A", "4917012345", int64(1773619200)
	ses := kv.Session{ID: "s1", AppID: app, Lead: lead, Start: start, Last: start + 60, Messages: 1, SourceType: SourceOrganic}
	old := kv.Event{ID: "x-old", AppID: app, Type: "purchase", TypeValue: "49.9 EUR", Time: start + 100, Lead: lead,
		ConversationID: ses.ID, SourceType: SourceOrganic} // no Currency: the old encoding
	typed := kv.Event{ID: "x-new", AppID: app, Type: "purchase", TypeValue: "12.5 EUR", Time: start + 200, Lead: lead,
		ConversationID: ses.ID, SourceType: SourceOrganic, Amount: 12.5, Currency: "EUR"}
	usd := kv.Event{ID: "x-usd", AppID: app, Type: "purchase", TypeValue: "30 USD", Time: start + 300, Lead: lead,
		ConversationID: ses.ID, SourceType: SourceOrganic, Amount: 30, Currency: "USD"}
	if err := e.store.Apply(context.Background(), func(b kv.Batch) error {
		b.Set(kv.SessionKey(nil, app, ses.ID), kv.AppendSession(nil, &ses))
		b.Set(kv.LeadSessionKey(nil, lead, start, app, ses.ID), nil)
		for _, ev := range []*kv.Event{&old, &typed, &usd} {
			b.Set(kv.OffThreadAppKey(app, ev.Time, ev.ID), nil)
			writeEvent(b, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []Contact
	if err := e.rec.Contacts(context.Background(), ContactFilter{AppID: app, To: 1 << 62}, func(c *Contact) bool {
		got = append(got, Contact{Lead: c.Lead, Revenue: slices.Clone(c.Revenue)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	// 49.9 + 12.5 EUR, 30 USD, by currency code.
	if len(got) != 1 || !slices.Equal(got[0].Revenue, []Money{{"EUR", 62.4}, {"USD", 30}}) {
		t.Errorf("contacts = %+v, want one lead with 62.40 EUR and 30 USD", got)
	}
	var amounts []string
	if err := e.rec.Events(EventFilter{AppID: app, To: 1 << 62}, func(ev *kv.Event) bool {
		amounts = append(amounts, fmt.Sprintf("%s %v %s", ev.ID, ev.Amount, ev.Currency))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"x-old 49.9 EUR", "x-new 12.5 EUR", "x-usd 30 USD"}; !slices.Equal(amounts, want) {
		t.Errorf("events = %q, want %q", amounts, want)
	}
}

// A contacts export row: phone with '+' or the user id of a BSUID lead, times as the
// caller formats them, sources in order, the revenue as a plain amount rounded to cents
// beside its currency (a sheet sums the column), further currencies apart.
func TestContactRow(t *testing.T) {
	format := func(unix int64) string { return "t" + strconv.FormatInt(unix, 10) }
	c := Contact{Lead: "491701234567", First: 10, Last: 20, Sources: []string{"ad:1", "organic"}, Sessions: 3,
		Revenue: []Money{{"EUR", 49.9 + 12.345}, {"USD", 30}}}
	if got, want := c.Row(nil, format), []string{"+491701234567", "", "t10", "t20", "ad:1 organic", "3", "62.25", "EUR", "30.00 USD"}; !slices.Equal(got, want) {
		t.Errorf("phone lead row = %q\nwant %q", got, want)
	}
	b := Contact{Lead: "DE.1502576394655843", LeadIsBSUID: true, First: 5, Last: 5, Sources: []string{"campaign:spring"}, Sessions: 1}
	cells := make([]string, len(ContactColumns))
	if got, want := b.Row(cells, format), []string{"", "DE.1502576394655843", "t5", "t5", "campaign:spring", "1", "", "", ""}; !slices.Equal(got, want) || &got[0] != &cells[0] {
		t.Errorf("BSUID lead row = %q\nwant %q, in the cells given", got, want)
	}
	one := Contact{Lead: "4915112345678", Revenue: []Money{{"EUR", 134.375}}}
	if got := one.Row(nil, format)[6:]; !slices.Equal(got, []string{"134.38", "EUR", ""}) {
		t.Errorf("one currency: revenue, currency, other_revenue = %q, want 134.38, EUR and nothing else", got)
	}
	if got := PhoneE164("491701234567") + " " + PhoneE164("+491701234567") + " " + PhoneE164(""); got != "+491701234567 +491701234567 " {
		t.Errorf("PhoneE164: %q", got)
	}
	if got := RevenueText([]Money{{"JPY", 0.005}, {"EUR", 1.005}}); got != "0.01 JPY; 1.01 EUR" {
		t.Errorf("RevenueText = %q: half a cent rounds away from zero", got)
	}
}
