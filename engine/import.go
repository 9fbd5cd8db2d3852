package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/currency"
	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// SpendImport is a delivery report to import (SPEC §6.5): the account it belongs to and
// one row per ad and day.
type SpendImport struct {
	AdAccount       AdAccount       `json:"ad_account"`
	FacebookAccount FacebookAccount `json:"facebook_account"`
	Rows            []SpendRow      `json:"rows"`
}

// SpendRow is one ad's delivery on one day.
type SpendRow struct {
	Date         string  `json:"date"` // YYYY-MM-DD
	CampaignID   string  `json:"campaign_id"`
	CampaignName string  `json:"campaign_name"`
	AdSetID      string  `json:"adset_id"`
	AdSetName    string  `json:"adset_name"`
	AdID         string  `json:"ad_id"`
	AdName       string  `json:"ad_name"`
	Status       string  `json:"status"`
	Impressions  int64   `json:"impressions"`
	Clicks       int64   `json:"clicks"`
	Spend        float64 `json:"spend"`
	where        string  // "rows[3]" or "line 4", for error messages
	// adCreated and campaignCreated are Meta's created_time (unix seconds) of the ad and
	// its campaign, known to a spend sync; 0 when unknown (imports).
	adCreated, campaignCreated int64
	// columns names, for a CSV row, the header of each field's column, so that errors
	// say `line 4, column "Day"` as the file shows it.
	columns map[string]string
}

// Delivery is an ad's imported delivery on one day, as stored.
type Delivery struct {
	Impressions int64   `json:"impressions"`
	Clicks      int64   `json:"clicks"`
	Spend       float64 `json:"spend"`
}

// ParseSpendJSON decodes a JSON spend import.
func ParseSpendJSON(body []byte) (SpendImport, error) {
	var imp SpendImport
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&imp); err != nil {
		return SpendImport{}, &FieldError{"body", "is not a spend import {ad_account, facebook_account, rows}: " + err.Error()}
	}
	for i := range imp.Rows {
		imp.Rows[i].where = fmt.Sprintf("rows[%d]", i)
	}
	return imp, imp.validate()
}

// csvColumns maps the column headers of a Meta Ads Manager export (daily breakdown)
// to row fields. "Amount spent (EUR)" carries the currency in its header.
var csvColumns = map[string]string{
	"day": "date", "reporting starts": "date", "date": "date",
	"campaign name": "campaign_name", "campaign id": "campaign_id",
	"ad set name": "adset_name", "ad set id": "adset_id",
	"ad name": "ad_name", "ad id": "ad_id",
	"impressions": "impressions", "link clicks": "clicks", "clicks (all)": "clicks", "clicks": "clicks",
	"ad delivery": "status", "delivery status": "status", "status": "status",
	"account id": "account_id", "account name": "account_name",
}

var requiredCSV = []string{"date", "campaign_id", "ad_id", "impressions", "clicks", "spend"}

// ParseSpendCSV decodes a Meta Ads Manager CSV export. The ad account comes from its
// "Account ID"/"Account name" columns or, when absent, from acct; the currency from the
// "Amount spent (XXX)" header or acct.Currency.
func ParseSpendCSV(body []byte, acct AdAccount, fb FacebookAccount) (SpendImport, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))) // Excel's BOM
	header, err := r.Read()
	if err != nil {
		return SpendImport{}, &FieldError{"line 1", "cannot read the CSV header: " + err.Error()}
	}
	cols, currency, err := mapColumns(header)
	if err != nil {
		return SpendImport{}, err
	}
	if currency != "" {
		if acct.Currency != "" && acct.Currency != currency {
			return SpendImport{}, &FieldError{"currency", fmt.Sprintf("the CSV is in %s but currency=%s was given", currency, acct.Currency)}
		}
		acct.Currency = currency
	}
	names := make(map[string]string, len(cols))
	for f, i := range cols {
		names[f] = strings.TrimSpace(header[i])
	}
	imp := SpendImport{AdAccount: acct, FacebookAccount: fb}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return SpendImport{}, &FieldError{fmt.Sprintf("line %d", line), err.Error()}
		}
		// The line in the file, as an editor shows it: blank lines and quoted line
		// breaks make it differ from the record number.
		line, _ := r.FieldPos(0)
		row, err := csvRow(rec, header, cols, line, &imp.AdAccount)
		row.columns = names
		if err != nil {
			return SpendImport{}, err
		}
		if row.AdID == "" && row.CampaignID == "" && row.Date == "" {
			continue // Ads Manager ends exports with a blank or totals row
		}
		imp.Rows = append(imp.Rows, row)
	}
	return imp, imp.validate()
}

// mapColumns finds the index of every known column and the currency of the spend column.
func mapColumns(header []string) (map[string]int, string, error) {
	cols, currency := map[string]int{}, ""
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if strings.HasPrefix(name, "amount spent") {
			cols["spend"] = i
			if open, close := strings.IndexByte(h, '('), strings.IndexByte(h, ')'); open >= 0 && close > open {
				currency = strings.ToUpper(strings.TrimSpace(h[open+1 : close]))
			}
			continue
		}
		if f, ok := csvColumns[name]; ok {
			// The first column of a field wins, but "Day" wins for the date: an export
			// with a daily breakdown also carries the report range (Reporting starts).
			if _, dup := cols[f]; !dup || name == "day" {
				cols[f] = i
			}
		}
	}
	for _, f := range requiredCSV {
		if _, ok := cols[f]; !ok {
			return nil, "", &FieldError{"line 1", fmt.Sprintf("has no %s column (expected headers such as Day, Campaign ID, Ad ID, Impressions, Link clicks, Amount spent (EUR))", f)}
		}
	}
	return cols, currency, nil
}

// csvRow reads one data line; errors name the line and the column header.
func csvRow(rec, header []string, cols map[string]int, line int, acct *AdAccount) (SpendRow, error) {
	get := func(f string) string {
		if i, ok := cols[f]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	row := SpendRow{Date: get("date"), CampaignID: get("campaign_id"), CampaignName: get("campaign_name"),
		AdSetID: get("adset_id"), AdSetName: get("adset_name"), AdID: get("ad_id"), AdName: get("ad_name"),
		Status: strings.ToUpper(get("status")), where: fmt.Sprintf("line %d", line)}
	if id := get("account_id"); id != "" {
		if acct.ID != "" && acct.ID != id {
			return row, &FieldError{fmt.Sprintf("line %d, column %q", line, header[cols["account_id"]]), fmt.Sprintf("ad account %s differs from %s", id, acct.ID)}
		}
		acct.ID = id
		if name := get("account_name"); name != "" {
			acct.Name = name
		}
	}
	var err error
	for _, n := range []struct {
		f   string
		dst *int64
	}{{"impressions", &row.Impressions}, {"clicks", &row.Clicks}} {
		if *n.dst, err = parseCount(get(n.f)); err != nil {
			return row, &FieldError{fmt.Sprintf("line %d, column %q", line, header[cols[n.f]]), err.Error()}
		}
	}
	if row.Spend, err = parseMoney(get("spend")); err != nil {
		return row, &FieldError{fmt.Sprintf("line %d, column %q", line, header[cols["spend"]]), err.Error()}
	}
	return row, nil
}

// parseCount reads a whole number ≥ 0; an empty cell (Ads Manager's zero) is 0.
func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a whole number ≥ 0", s)
	}
	return n, nil
}

// parseMoney reads an amount ≥ 0 with a decimal point; an empty cell is 0.
func parseMoney(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not an amount ≥ 0 with a decimal point, such as 12.34", s)
	}
	return f, nil
}

// validate checks the account and every row; errors name the row (JSON index or CSV line).
func (imp *SpendImport) validate() error {
	a := &imp.AdAccount
	switch {
	case a.ID == "":
		return &FieldError{"ad_account.id", "is required (in CSV: an Account ID column or the ad_account_id parameter)"}
	case !currency.Valid(a.Currency):
		return &FieldError{"ad_account.currency", fmt.Sprintf("%q is not an ISO 4217 code (in CSV: the \"Amount spent (EUR)\" header or the currency parameter)", a.Currency)}
	case len(imp.Rows) == 0:
		return &FieldError{"rows", "has no rows"}
	}
	seen := map[[2]string]string{}
	for i := range imp.Rows {
		row := &imp.Rows[i]
		if err := row.validate(); err != nil {
			return err
		}
		k := [2]string{row.AdID, row.Date}
		if first, dup := seen[k]; dup {
			return &FieldError{row.where, fmt.Sprintf("repeats ad %s on %s (first at %s)", row.AdID, row.Date, first)}
		}
		seen[k] = row.where
	}
	return nil
}

func (row *SpendRow) validate() error {
	bad := func(field, msg string) error {
		if col := row.columns[field]; col != "" {
			return &FieldError{fmt.Sprintf("%s, column %q", row.where, col), msg}
		}
		return &FieldError{row.where + "." + field, msg}
	}
	if _, err := time.Parse("2006-01-02", row.Date); err != nil {
		return bad("date", fmt.Sprintf("%q is not a day YYYY-MM-DD", row.Date))
	}
	switch {
	case row.AdID == "":
		return bad("ad_id", "is required")
	case row.CampaignID == "":
		return bad("campaign_id", "is required")
	case row.Impressions < 0 || row.Clicks < 0:
		return bad("impressions", "impressions and clicks are ≥ 0")
	case row.Spend < 0 || math.IsNaN(row.Spend) || math.IsInf(row.Spend, 0):
		return bad("spend", "is an amount ≥ 0")
	case len(row.AdName) > 512 || len(row.CampaignName) > 512 || len(row.AdSetName) > 512:
		return bad("ad_name", "names are at most 512 bytes")
	}
	return nil
}

// ImportResult tells what an import changed.
type ImportResult struct {
	Rows      int `json:"rows"`
	Ads       int `json:"ads"`
	Campaigns int `json:"campaigns"`
}

// ImportSpend stores a validated import for app: the account, campaigns, ad sets and
// ads are created or updated, and each (ad, day) row replaces what was there.
// The import is checked whole before anything is written. It is then logged in chunks
// (Recorder.logPuts), the rows before the catalogue, so that an ad never shows without
// its spend: a store failure part way leaves some rows stored, and importing the same
// file again replaces them.
func (r *Recorder) ImportSpend(ctx context.Context, app string, imp SpendImport) (ImportResult, error) {
	r.importMu.Lock() // one catalogue change at a time
	defer r.importMu.Unlock()
	if err := r.Sync(ctx); err != nil { // the catalogue holds every change logged before
		return ImportResult{}, err
	}
	old := r.catalog.Load()
	if cur, ok := old.AdAccounts[imp.AdAccount.ID]; ok && cur.Currency != imp.AdAccount.Currency {
		return ImportResult{}, &FieldError{"ad_account.currency", fmt.Sprintf("ad account %s is kept in %s; this import is in %s", cur.ID, cur.Currency, imp.AdAccount.Currency)}
	}
	cat, changed := old.clone(), map[string]any{}
	now := time.Now().Unix()
	mergeAccount(cat, imp, changed)
	for i := range imp.Rows {
		mergeRow(cat, app, imp.AdAccount.ID, &imp.Rows[i], now, changed)
	}
	rollUpStatus(cat, imp.Rows, changed)
	writes := make([][2][]byte, 0, len(imp.Rows)+len(changed))
	for _, row := range imp.Rows {
		day, _ := DayOf(row.Date)
		v, err := json.Marshal(Delivery{row.Impressions, row.Clicks, row.Spend})
		if err != nil {
			return ImportResult{}, err
		}
		writes = append(writes, [2][]byte{kv.SpendKey(row.AdID, day), v})
	}
	keys := make([]string, 0, len(changed))
	for key := range changed {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		v, err := json.Marshal(changed[key])
		if err != nil {
			return ImportResult{}, err
		}
		writes = append(writes, [2][]byte{[]byte(key), v})
	}
	if err := r.logPuts(ctx, reloadCatalog, writes); err != nil {
		return ImportResult{}, fmt.Errorf("cannot store the import (rows before the failure may be stored; importing the file again replaces them): %w", err)
	}
	return ImportResult{Rows: len(imp.Rows), Ads: countKind(changed, catAd), Campaigns: countKind(changed, catCampaign)}, nil
}

func countKind(changed map[string]any, kind string) int {
	n := 0
	for k := range changed {
		if strings.HasPrefix(k, string(kv.CatalogPrefix(kind))) {
			n++
		}
	}
	return n
}

func mergeAccount(cat *Catalog, imp SpendImport, changed map[string]any) {
	a := imp.AdAccount
	if fb := imp.FacebookAccount; fb.ID != "" {
		cat.Facebook[fb.ID] = fb
		changed[string(kv.CatalogKey(catFacebook, fb.ID))] = fb
		a.FacebookAccountID = fb.ID
	} else if cur, ok := cat.AdAccounts[a.ID]; ok {
		a.FacebookAccountID = cur.FacebookAccountID
	}
	if a.Name == "" {
		a.Name = cat.AdAccounts[a.ID].Name
	}
	cat.AdAccounts[a.ID] = a
	changed[string(kv.CatalogKey(catAdAccount, a.ID))] = a
}

// mergeRow creates or updates the campaign, ad set and ad of one row.
func mergeRow(cat *Catalog, app, acct string, row *SpendRow, now int64, changed map[string]any) {
	day, _ := DayOf(row.Date)
	cp, ok := cat.Campaigns[row.CampaignID]
	if !ok {
		cp = Campaign{ID: row.CampaignID, Created: now, FirstDay: day, LastDay: day}
	}
	cp.Name, cp.AdAccountID, cp.AppID, cp.Updated = orKeep(row.CampaignName, cp.Name), acct, app, now
	cp.Status = orKeep(cp.Status, "ACTIVE")
	cp.Created = cmp.Or(row.campaignCreated, cp.Created)
	cp.FirstDay, cp.LastDay = min(cp.FirstDay, day), max(cp.LastDay, day)
	cat.Campaigns[cp.ID] = cp
	changed[string(kv.CatalogKey(catCampaign, cp.ID))] = cp
	if row.AdSetID != "" {
		as := cat.AdSets[row.AdSetID]
		as.ID, as.CampaignID = row.AdSetID, row.CampaignID
		as.Name, as.Status = orKeep(row.AdSetName, as.Name), orKeep(as.Status, "ACTIVE")
		cat.AdSets[as.ID] = as
		changed[string(kv.CatalogKey(catAdSet, as.ID))] = as
	}
	ad, ok := cat.Ads[row.AdID]
	if !ok || ad.Referral {
		ad.Created = cmp.Or(ad.Created, now)
	}
	// An export without ad set columns (a short correction) keeps the ad's ad set.
	ad.ID, ad.AdSetID, ad.CampaignID, ad.AdAccountID, ad.AppID, ad.Referral = row.AdID, orKeep(row.AdSetID, ad.AdSetID), row.CampaignID, acct, app, false
	ad.Name, ad.Status, ad.Updated = orKeep(row.AdName, ad.Name), orKeep(row.Status, orKeep(ad.Status, "ACTIVE")), now
	ad.Created = cmp.Or(row.adCreated, ad.Created)
	cat.Ads[ad.ID] = ad
	changed[string(kv.CatalogKey(catAd, ad.ID))] = ad
}

// rollUpStatus sets each imported campaign's and ad set's status from its ads' rows:
// a row's status is the ad's delivery, so a campaign is ACTIVE while any of its ads in
// the sheet is, else it takes the status its ads share (the last row's).
func rollUpStatus(cat *Catalog, rows []SpendRow, changed map[string]any) {
	campaigns, adsets := map[string]string{}, map[string]string{}
	merge := func(m map[string]string, id, status string) {
		if id != "" && status != "" && m[id] != "ACTIVE" {
			m[id] = status
		}
	}
	for _, row := range rows {
		merge(campaigns, row.CampaignID, row.Status)
		merge(adsets, row.AdSetID, row.Status)
	}
	for id, st := range campaigns {
		cp := cat.Campaigns[id]
		cp.Status = st
		cat.Campaigns[id] = cp
		changed[string(kv.CatalogKey(catCampaign, id))] = cp
	}
	for id, st := range adsets {
		as := cat.AdSets[id]
		as.Status = st
		cat.AdSets[id] = as
		changed[string(kv.CatalogKey(catAdSet, id))] = as
	}
}

func orKeep(v, old string) string {
	if v != "" {
		return v
	}
	return old
}

// DayOf returns the day number (days since 1970-01-01) of a YYYY-MM-DD date.
func DayOf(date string) (int32, error) {
	t, err := time.Parse("2006-01-02", date)
	if err != nil {
		return 0, err
	}
	return int32(t.Unix() / 86400), nil
}
