package engine_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/internal/currency"
)

// spendCSVSeeds are Meta Ads Manager exports: a daily-breakdown sheet under testdata/
// (the demo's, copied) and hand-made variants around every rule of the parser.
func spendCSVSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	demo, err := os.ReadFile(filepath.Join("..", "testdata", "ads-manager", "daily_breakdown.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.SplitAfter(string(demo), "\n")
	head := strings.Join(lines[:min(3, len(lines))], "")
	return [][]byte{
		demo,
		[]byte(head),
		[]byte("\xef\xbb\xbf" + head), // Excel's BOM
		[]byte(lines[0]),              // header only: no rows
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (USD)\n2026-03-16,c1,a1,10,1,0.50\n,,,,,\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Clicks (all),Amount spent\n2026-03-16,c1,a1,,,\n"),
		[]byte("day,campaign id,ad id,impressions,link clicks,amount spent (eur)\r\n\"2026-03-16\",\"c,1\",\"a\"\"1\",1,1,1\r\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,c1,a1,-1,1,1\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,c1,a1,1,1,1e400\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,c1,a1,1,1,NaN\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-02-30,c1,a1,1,1,1\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,c1,a1,1,1,1\n2026-03-16,c1,a1,2,2,2\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR),Account ID\n2026-03-16,c1,a1,1,1,1,x\n2026-03-17,c1,a1,1,1,1,y\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions\n2026-03-16,c1,a1,1\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n2026-03-16,c1,\"a1\n"),
		[]byte("Day,Campaign ID,Ad ID,Impressions,Link clicks,Amount spent (€)\n2026-03-16,c1,a1,1,1,1\n"),
		{},
	}
}

// FuzzParseSpendCSV feeds the Ads Manager CSV parser arbitrary sheets: it never panics,
// it refuses with a *FieldError that names a line or field, it is deterministic, and an
// import it accepts satisfies every rule of SPEC §6.5 and reads back the same as JSON.
//
//	go test -run='^$' -fuzz='^FuzzParseSpendCSV$' -fuzztime=10m ./engine
func FuzzParseSpendCSV(f *testing.F) {
	for _, s := range spendCSVSeeds(f) {
		f.Add(s, "", "")
		f.Add(s, "act_1", "EUR")
	}
	f.Fuzz(func(t *testing.T, body []byte, account, currency string) {
		acct := engine.AdAccount{ID: account, Name: "fuzz", Currency: currency}
		fb := engine.FacebookAccount{ID: "fb-1"}
		imp, err := engine.ParseSpendCSV(body, acct, fb)
		if err != nil {
			checkFieldError(t, err)
			return
		}
		checkSpendImport(t, imp)
		again, err := engine.ParseSpendCSV(body, acct, fb)
		if err != nil || !sameImport(again, imp) {
			t.Fatalf("second parse gave %+v, %v; first %+v", again, err, imp)
		}
		// The same import sent as JSON is accepted with the same content (JSON cannot
		// carry invalid UTF-8, which a CSV cell may hold: those are left out).
		if !validUTF8(imp) {
			return
		}
		b, err := json.Marshal(imp)
		if err != nil {
			t.Fatal(err)
		}
		viaJSON, err := engine.ParseSpendJSON(b)
		if err != nil || !sameImport(viaJSON, imp) {
			t.Fatalf("JSON form %s parsed to %+v, %v; want %+v", b, viaJSON, err, imp)
		}
	})
}

// FuzzParseSpendJSON does the same for the JSON import, seeded with that sheet in its
// JSON form and with hand-made bodies.
//
//	go test -run='^$' -fuzz='^FuzzParseSpendJSON$' -fuzztime=10m ./engine
func FuzzParseSpendJSON(f *testing.F) {
	for _, s := range spendCSVSeeds(f) {
		if imp, err := engine.ParseSpendCSV(s, engine.AdAccount{ID: "act_1", Currency: "EUR"}, engine.FacebookAccount{}); err == nil {
			b, err := json.Marshal(imp)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"ad_account":{"id":"act_1","name":"A","currency":"EUR"},"facebook_account":{"id":"fb","email":"a@b.c"},` +
			`"rows":[{"date":"2026-03-16","campaign_id":"c1","campaign_name":"C","adset_id":"s1","adset_name":"S","ad_id":"a1",` +
			`"ad_name":"A","status":"ACTIVE","impressions":100,"clicks":10,"spend":5.5}]}`,
		`{"ad_account":{"id":"act_1","currency":"eur"},"rows":[{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1"}]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1","spend":-0.01}]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1","clicks":1e30}]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[{"date":"16.03.2026","campaign_id":"c1","ad_id":"a1"}]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1","extra":1}]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1"},` +
			`{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1"}]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"},"rows":[{"date":"2026-03-16","campaign_id":"c1","ad_id":"a1","impressions":"5"}]}`,
		`{"rows":[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"ad_account":{"id":"act_1","currency":"EUR"}} trailing`,
		`null`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		imp, err := engine.ParseSpendJSON(body)
		if err != nil {
			checkFieldError(t, err)
			return
		}
		checkSpendImport(t, imp)
		again, err := engine.ParseSpendJSON(body)
		if err != nil || !sameImport(again, imp) {
			t.Fatalf("second parse gave %+v, %v; first %+v", again, err, imp)
		}
	})
}

func checkFieldError(t *testing.T, err error) {
	t.Helper()
	var fe *engine.FieldError
	if !errors.As(err, &fe) || fe.Field == "" || fe.Message == "" {
		t.Fatalf("error %#v is not a *FieldError with a field and a message", err)
	}
}

// checkSpendImport fails t unless imp satisfies the rules of SPEC §6.5.
func checkSpendImport(t *testing.T, imp engine.SpendImport) {
	t.Helper()
	if imp.AdAccount.ID == "" || !currency.Valid(imp.AdAccount.Currency) {
		t.Fatalf("account %+v without id or ISO 4217 currency", imp.AdAccount)
	}
	if len(imp.Rows) == 0 {
		t.Fatal("an import without rows was accepted")
	}
	seen := map[[2]string]bool{}
	for _, r := range imp.Rows {
		if _, err := time.Parse("2006-01-02", r.Date); err != nil {
			t.Fatalf("row date %q is not a day", r.Date)
		}
		if r.AdID == "" || r.CampaignID == "" {
			t.Fatalf("row %+v without ad or campaign id", r)
		}
		if r.Impressions < 0 || r.Clicks < 0 || r.Spend < 0 || math.IsNaN(r.Spend) || math.IsInf(r.Spend, 0) || math.Signbit(r.Spend) && r.Spend != 0 {
			t.Fatalf("row %+v has a negative or non-finite number", r)
		}
		if k := [2]string{r.AdID, r.Date}; seen[k] {
			t.Fatalf("ad %s on %s imported twice in one import", r.AdID, r.Date)
		} else {
			seen[k] = true
		}
	}
}

// sameImport compares the exported content of two imports.
func sameImport(a, b engine.SpendImport) bool {
	if a.AdAccount != b.AdAccount || a.FacebookAccount != b.FacebookAccount || len(a.Rows) != len(b.Rows) {
		return false
	}
	for i := range a.Rows {
		x, y := a.Rows[i], b.Rows[i]
		if x.Date != y.Date || x.CampaignID != y.CampaignID || x.CampaignName != y.CampaignName || x.AdSetID != y.AdSetID ||
			x.AdSetName != y.AdSetName || x.AdID != y.AdID || x.AdName != y.AdName || x.Status != y.Status ||
			x.Impressions != y.Impressions || x.Clicks != y.Clicks || x.Spend != y.Spend {
			return false
		}
	}
	return true
}

func validUTF8(imp engine.SpendImport) bool {
	ss := []string{imp.AdAccount.ID, imp.AdAccount.Name, imp.AdAccount.Currency, imp.AdAccount.FacebookAccountID,
		imp.FacebookAccount.ID, imp.FacebookAccount.Email}
	for _, r := range imp.Rows {
		ss = append(ss, r.Date, r.CampaignID, r.CampaignName, r.AdSetID, r.AdSetName, r.AdID, r.AdName, r.Status)
	}
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
