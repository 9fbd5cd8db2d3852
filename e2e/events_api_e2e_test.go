package e2e

// End-to-end tests of the events API (SPEC §6.1, seed 002 "events" to "event_groups"):
// a real sidecar started through sidecar.Run, real webhooks posted to its listener, the
// API called over HTTP on loopback.

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// summary is the sorted "type=type_value" of rows: what a filter selected.
func summary(rows []eventJSON) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r.Type+"="+r.TypeValue)
	}
	slices.Sort(out)
	return out
}

// ---- events list ----

// seedEventsDays posts the Cloud fixtures of 2026-03-16 and an organic lead with a link
// on 2026-03-18: 7 events on the 16th, 2 on the 18th.
func seedEventsDays(t *testing.T, sc *runSidecar) {
	postFixtures(t, sc, "text_ctwa_referral", "button", "list_reply", "bsuid_only_lead", "post_referral")
	postWebhook(t, sc, messagesWebhook(textMsg("4915700000001", day(2026, 3, 18).Add(12*time.Hour),
		"see https://shop.example.com/p/1 please")))
}

const days16to18 = "date_from=2026-03-16&date_to=2026-03-18"

func TestEventsList(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	seedEventsDays(t, sc)

	t.Run("rows", func(t *testing.T) {
		var p eventsPage
		raw := c.getJSON(appPath+"/events?date_from=2026-03-16&date_to=2026-03-16", &p)
		if p.TotalCount != 7 || len(p.Data) != 7 || p.Offset != 0 || p.Limit != 100 {
			t.Fatalf("envelope total %d, %d rows, offset %d, limit %d; want 7, 7, 0, 100",
				p.TotalCount, len(p.Data), p.Offset, p.Limit)
		}
		ad := func(typ, typeID, value, date string) eventJSON {
			return eventJSON{AppID: fixtureApp, AdID: adSpring, Phone: leadLena, Type: typ, TypeID: typeID,
				TypeValue: value, Date: date, ConversationExpireTime: "2026-03-17T09:21:07+00:00", SourceType: "ad", SourceID: adSpring}
		}
		want := []eventJSON{ // by date, then type; the expiry is the session's last message + 24h
			ad("conversation", "", adSpring, "2026-03-16T09:15:07+00:00"),
			// A post is no ad (SPEC §4.1): its id is the source id, never the ad_id.
			{AppID: fixtureApp, Phone: leadEmile, Type: "conversation", TypeValue: postID,
				Date: "2026-03-16T09:17:07+00:00", ConversationExpireTime: "2026-03-17T09:17:07+00:00", SourceType: "post", SourceID: postID},
			ad("button", "SPRING_SALE_YES", "Yes, show me", "2026-03-16T09:21:07+00:00"),
			ad("engagement", "", "", "2026-03-16T09:21:07+00:00"),
			{AppID: fixtureApp, Phone: leadJonas, Type: "conversation", TypeValue: "organic",
				Date: "2026-03-16T09:23:07+00:00", ConversationExpireTime: "2026-03-17T09:23:07+00:00", SourceType: "organic"},
			{AppID: fixtureApp, Phone: leadJonas, Type: "list_reply", TypeID: "store_berlin_mitte", TypeValue: "Berlin Mitte",
				Date: "2026-03-16T09:23:07+00:00", ConversationExpireTime: "2026-03-17T09:23:07+00:00", SourceType: "organic"},
			{AppID: fixtureApp, UserID: leadMara, Type: "conversation", TypeValue: "organic",
				Date: "2026-03-16T09:26:07+00:00", ConversationExpireTime: "2026-03-17T09:26:07+00:00", SourceType: "organic"},
		}
		got := slices.Clone(p.Data)
		for i := 1; i < len(got); i++ {
			if got[i].Date < got[i-1].Date {
				t.Errorf("rows not in time order: %s after %s", got[i].Date, got[i-1].Date)
			}
		}
		// Same-second events come in id order; compare by date and type.
		slices.SortStableFunc(got, func(a, b eventJSON) int {
			return strings.Compare(a.Date+a.Type, b.Date+b.Type)
		})
		convByLead := map[string]string{}
		seenIDs := map[string]bool{}
		for i := range got {
			g := got[i]
			lead := g.Phone + g.UserID
			if len(g.ID) < 16 || seenIDs[g.ID] {
				t.Errorf("row %d: id %q empty, short or repeated", i, g.ID)
			}
			seenIDs[g.ID] = true
			if prev, ok := convByLead[lead]; ok && prev != g.ConversationID || g.ConversationID == "" {
				t.Errorf("row %d: conversation_id %q, the lead's other rows have %q", i, g.ConversationID, prev)
			}
			convByLead[lead] = g.ConversationID
			g.ID, g.ConversationID = "", ""
			if g != want[i] {
				t.Errorf("row %d:\n got %+v\nwant %+v", i, g, want[i])
			}
		}
		distinct := map[string]bool{}
		for _, id := range convByLead {
			distinct[id] = true
		}
		if len(convByLead) != 4 || len(distinct) != 4 {
			t.Errorf("%d leads with %d distinct conversation ids, want 4 and 4", len(convByLead), len(distinct))
		}
		// A BSUID lead has user_id and no phone; a phone lead has no user_id.
		var rawRows struct{ Data []map[string]any }
		if err := json.Unmarshal(raw, &rawRows); err != nil {
			t.Fatal(err)
		}
		for _, r := range rawRows.Data {
			uid, hasUID := r["user_id"]
			switch {
			case uid == leadMara && (r["phone"] != nil && r["phone"] != ""):
				t.Errorf("BSUID row has phone %v", r["phone"])
			case uid != leadMara && hasUID:
				t.Errorf("phone row %v has user_id %v", r["phone"], uid)
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		cases := []struct {
			name, query string
			want        []string
		}{
			{"three days", days16to18, []string{"button=Yes, show me", "conversation=" + adSpring,
				"conversation=" + postID, "conversation=organic", "conversation=organic", "conversation=organic",
				"engagement=", "link=shop.example.com", "list_reply=Berlin Mitte"}},
			{"one day is inclusive", "date_from=2026-03-18&date_to=2026-03-18",
				[]string{"conversation=organic", "link=shop.example.com"}},
			{"day without events", "date_from=2026-03-17&date_to=2026-03-17", []string{}},
			{"RFC 3339 bounds are inclusive", "date_from=2026-03-16T09:15:07Z&date_to=2026-03-16T09:21:07Z",
				[]string{"button=Yes, show me", "conversation=" + adSpring, "conversation=" + postID, "engagement="}},
			{"RFC 3339 one second less", "date_from=2026-03-16T09:15:08Z&date_to=2026-03-16T09:21:06Z",
				[]string{"conversation=" + postID}},
			{"RFC 3339 with offset", "date_from=2026-03-16T10:21:07%2B01:00&date_to=2026-03-16T10:23:07%2B01:00",
				[]string{"button=Yes, show me", "conversation=organic", "engagement=", "list_reply=Berlin Mitte"}},
			{"ad_id", days16to18 + "&ad_id=" + adSpring,
				[]string{"button=Yes, show me", "conversation=" + adSpring, "engagement="}},
			{"ad_id of a post selects no post session", days16to18 + "&ad_id=" + postID, []string{}},
			{"unknown ad_id", days16to18 + "&ad_id=999", []string{}},
			{"event_type", days16to18 + "&event_type=link", []string{"link=shop.example.com"}},
			{"event_type and ad_id", days16to18 + "&event_type=engagement&ad_id=" + adSpring, []string{"engagement="}},
			{"event_type_id", days16to18 + "&event_type_id=button%23SPRING_SALE_YES", []string{"button=Yes, show me"}},
			{"event_type_id and event_type", days16to18 + "&event_type=list_reply&event_type_id=list_reply%23store_berlin_mitte",
				[]string{"list_reply=Berlin Mitte"}},
			{"event_type_id of no event", days16to18 + "&event_type_id=list_reply%23store_hamburg", []string{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := c.events(tc.query + "&limit=1000")
				if got := summary(p.Data); !slices.Equal(got, tc.want) || p.TotalCount != len(tc.want) {
					t.Errorf("total %d, rows %q; want %q", p.TotalCount, got, tc.want)
				}
			})
		}
	})

	t.Run("a post in the CSV export", func(t *testing.T) {
		_, raw := c.call("GET", appPath+"/events/export?"+days16to18, "", nil)
		records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil || len(records) != 10 {
			t.Fatalf("export: %d records, %v; want a header and 9 rows\n%s", len(records), err, raw)
		}
		col := map[string]int{}
		for i, name := range records[0] {
			col[name] = i
		}
		posts := 0
		for _, r := range records[1:] {
			if r[col["source_type"]] != "post" {
				continue
			}
			posts++
			if r[col["source_id"]] != postID || r[col["ad_id"]] != "" || r[col["campaign_id"]] != "" {
				t.Errorf("post row: source_id %q, ad_id %q, campaign_id %q; want %s, no ad, no campaign",
					r[col["source_id"]], r[col["ad_id"]], r[col["campaign_id"]], postID)
			}
		}
		if posts != 1 {
			t.Errorf("%d post rows, want 1", posts)
		}
		_, raw = c.call("GET", appPath+"/events/export?"+days16to18+"&ad_id="+postID, "", nil)
		if records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll(); err != nil || len(records) != 1 {
			t.Errorf("export with ad_id of a post: %q, %v; want the header only", raw, err)
		}
	})

	t.Run("paging", func(t *testing.T) {
		all := c.events(days16to18 + "&limit=1000")
		if all.TotalCount != 9 || len(all.Data) != 9 || all.Limit != 1000 {
			t.Fatalf("total %d, %d rows, limit %d", all.TotalCount, len(all.Data), all.Limit)
		}
		for offset := 0; offset < 9; offset += 4 {
			p := c.events(fmt.Sprintf("%s&limit=4&offset=%d", days16to18, offset))
			want := ids(all.Data[offset:min(offset+4, 9)])
			if p.TotalCount != 9 || p.Offset != offset || p.Limit != 4 || !slices.Equal(ids(p.Data), want) {
				t.Errorf("offset %d: total %d offset %d limit %d ids %v; want 9, %d, 4, %v",
					offset, p.TotalCount, p.Offset, p.Limit, ids(p.Data), offset, want)
			}
		}
		raw := c.getJSON(appPath+"/events?"+days16to18+"&offset=9&limit=1", new(eventsPage))
		if want := `{"data":[],"total_count":9,"offset":9,"limit":1}`; strings.TrimSpace(string(raw)) != want {
			t.Errorf("past the end: %s, want %s", raw, want)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		cases := []struct{ query, field string }{
			{"date_to=2026-03-18", "date_from"},
			{"date_from=2026-03-16", "date_to"},
			{"date_from=16.03.2026&date_to=2026-03-18", "date_from"},
			{"date_from=2026-03-16&date_to=2026-03-32", "date_to"},
			{"date_from=2026-03-18&date_to=2026-03-16", "date_to"},
			{days16to18 + "&limit=0", "limit"},
			{days16to18 + "&limit=1001", "limit"},
			{days16to18 + "&limit=ten", "limit"},
			{days16to18 + "&offset=-1", "offset"},
			{days16to18 + "&event_type=click", "event_type"},
			{days16to18 + "&event_type_id=keyword", "event_type_id"},
			{days16to18 + "&event_type_id=click%231", "event_type_id"},
			{days16to18 + "&event_type=button&event_type_id=keyword%231", "event_type_id"},
		}
		for _, path := range []string{"/events", "/events/export", "/event_types"} {
			for _, tc := range cases {
				if path == "/event_types" && tc.field == "offset" {
					continue // event_types has no offset
				}
				t.Run(path+"?"+tc.query, func(t *testing.T) {
					resp, body := c.call("GET", appPath+path+"?"+tc.query, "", nil)
					wantError(t, resp, body, 400, tc.field)
				})
			}
			for _, limit := range []string{"1", "1000"} { // the ends of the range are allowed
				if resp, body := c.call("GET", appPath+path+"?"+days16to18+"&limit="+limit, "", nil); resp.StatusCode != 200 {
					t.Errorf("%s limit=%s answered %d %s", path, limit, resp.StatusCode, body)
				}
			}
		}
	})
}

func TestEventsDaysFollowTimezone(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	utcSC := startSidecar(t, "http://"+up.addr)
	berlinSC := startSidecar(t, "http://"+up.addr, "-timezone", "Europe/Berlin")
	utc, berlin := newAPIClient(t, utcSC, ""), newAPIClient(t, berlinSC, "")

	late := time.Date(2026, 3, 16, 23, 30, 0, 0, time.UTC)  // 00:30 on the 17th in Berlin (CET)
	early := time.Date(2026, 3, 16, 22, 59, 0, 0, time.UTC) // 23:59 on the 16th in Berlin
	body := messagesWebhook(textMsg("4915200000001", late, "late"), textMsg("4915200000002", early, "early"))
	postWebhook(t, utcSC, body)
	postWebhook(t, berlinSC, body)

	dates := func(p eventsPage) []string {
		out := []string{}
		for _, r := range p.Data {
			out = append(out, r.Date+" expires "+r.ConversationExpireTime)
		}
		return out
	}
	cases := []struct {
		name  string
		c     *apiClient
		query string
		want  []string
	}{
		{"UTC 16th", utc, "date_from=2026-03-16&date_to=2026-03-16", []string{
			"2026-03-16T22:59:00+00:00 expires 2026-03-17T22:59:00+00:00", "2026-03-16T23:30:00+00:00 expires 2026-03-17T23:30:00+00:00"}},
		{"UTC 17th", utc, "date_from=2026-03-17&date_to=2026-03-17", []string{}},
		{"Berlin 16th", berlin, "date_from=2026-03-16&date_to=2026-03-16", []string{
			"2026-03-16T23:59:00+01:00 expires 2026-03-17T23:59:00+01:00"}},
		{"Berlin 17th", berlin, "date_from=2026-03-17&date_to=2026-03-17", []string{
			"2026-03-17T00:30:00+01:00 expires 2026-03-18T00:30:00+01:00"}},
		{"UTC instants", utc, "date_from=2026-03-16T23:00:00Z&date_to=2026-03-17T00:00:00Z", []string{
			"2026-03-16T23:30:00+00:00 expires 2026-03-17T23:30:00+00:00"}},
		{"instants ignore the zone", berlin, "date_from=2026-03-16T23:00:00Z&date_to=2026-03-17T00:00:00Z", []string{
			"2026-03-17T00:30:00+01:00 expires 2026-03-18T00:30:00+01:00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.c.events(tc.query + "&event_type=conversation")
			if got := dates(p); !slices.Equal(got, tc.want) || p.TotalCount != len(tc.want) {
				t.Errorf("total %d, %q; want %q", p.TotalCount, got, tc.want)
			}
		})
	}
}

// ---- export ----

// defuse is the CSV-injection guard the export applies to a cell.
func defuse(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func TestEventsExportCSV(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	at := day(2026, 3, 16).Add(10 * time.Hour)
	postFixtures(t, sc, "text_ctwa_referral", "bsuid_only_lead")
	postWebhook(t, sc, messagesWebhook(
		replyMsg("4915300000001", at, "list_reply", "promo_1", `=HYPERLINK("https://evil.example","Win, now")`),
		replyMsg("4915300000002", at.Add(time.Minute), "button_reply", "@size", `Size "42", wide`),
		buttonMsg("4915300000003", at.Add(2*time.Minute), "+BUY", "Yes,\nplease"),
	))
	const q = "date_from=2026-03-16&date_to=2026-03-16"

	resp, raw := c.call("GET", appPath+"/events/export?"+q, "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export answered %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("export is not RFC 4180 CSV: %v\n%s", err, raw)
	}
	wantHeader := []string{"id", "date", "app_id", "type", "type_id", "type_value", "phone", "user_id",
		"ad_id", "campaign_id", "source_type", "source_id", "conversation_id", "conversation_expire_time"}
	if !slices.Equal(records[0], wantHeader) {
		t.Fatalf("header %q, want %q", records[0], wantHeader)
	}

	// Every data row is the JSON row, column by column, with formula cells defused; the
	// phone in E.164 with '+' (the JSON list has the digits of the Signals examples).
	var list struct{ Data []map[string]any }
	c.getJSON(appPath+"/events?"+q+"&limit=1000", &list)
	// referral: conversation; Mara: conversation; list reply: conversation, list_reply,
	// link (the title holds a URL); button reply: conversation, button_reply; button:
	// conversation, button.
	if len(list.Data) != 9 || len(records) != 1+len(list.Data) {
		t.Fatalf("%d JSON rows and %d CSV data rows, want 9 and 9", len(list.Data), len(records)-1)
	}
	for i, row := range list.Data {
		for j, col := range wantHeader {
			v, _ := row[col].(string)
			if col == "phone" && v != "" {
				v = "+" + v // a signed plain number: not defused
			} else {
				v = defuse(v)
			}
			if got := records[i+1][j]; got != v {
				t.Errorf("row %d %s: CSV %q, JSON %q", i, col, got, v)
			}
		}
	}
	phones := map[string]bool{}
	for _, rec := range records[1:] {
		for j, cell := range rec {
			if wantHeader[j] == "phone" && cell != "" {
				phones[cell] = true
				if !regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`).MatchString(cell) {
					t.Errorf("phone %q is not E.164 with '+'", cell)
				}
				continue
			}
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("cell %q would run as a formula", cell)
			}
		}
	}
	// The contacts export names the same leads in the same form.
	_, contacts := c.call("GET", appPath+"/contacts/export?"+q, "", nil)
	leads, err := csv.NewReader(bytes.NewReader(contacts)).ReadAll()
	if err != nil || len(leads) < 2 || leads[0][0] != "phone" {
		t.Fatalf("contacts export: %v\n%s", err, contacts)
	}
	for _, lead := range leads[1:] {
		if lead[0] != "" && !phones[lead[0]] {
			t.Errorf("contacts export phone %q is not one of the events export's %v", lead[0], phones)
		}
		delete(phones, lead[0])
	}
	if len(phones) != 0 || !strings.Contains(string(raw), ",+"+leadLena+",") {
		t.Errorf("events export phones %v are not in the contacts export (or Lena's +%s is missing)", phones, leadLena)
	}
	// The exact bytes: quotes doubled, fields with , " or a newline quoted, a leading
	// apostrophe before = + - @.
	for _, want := range []string{
		`,"'=HYPERLINK(""https://evil.example"",""Win, now"")",`,
		`,'@size,"Size ""42"", wide",`,
		",'+BUY,\"Yes,\r\nplease\",", // RFC 4180: CRLF line breaks, also inside quoted cells
		",promo_1,",
		",link,,evil.example,",
	} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("export lacks %q:\n%s", want, raw)
		}
	}

	// Filters and paging select the same rows as the JSON list.
	for _, extra := range []string{"&event_type=list_reply", "&event_type_id=button_reply%23%40size",
		"&ad_id=" + adSpring, "&limit=3&offset=2", "&offset=8"} {
		_, raw := c.call("GET", appPath+"/events/export?"+q+extra, "", nil)
		records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		p := c.events(q + extra)
		var got []string
		for _, rec := range records[1:] {
			got = append(got, rec[0])
		}
		want := ids(p.Data)
		for i := range want {
			want[i] = defuse(want[i])
		}
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: CSV ids %q, JSON ids %q", extra, got, want)
		}
	}
}

// ---- event types ----

func TestEventTypesListsTypesInRange(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	postFixtures(t, sc, "text_ctwa_referral", "button")
	postWebhook(t, sc, messagesWebhook(textMsg("4915700000001", day(2026, 3, 18).Add(12*time.Hour),
		"see https://shop.example.com/p/1 please")))

	type nameValue struct{ Name, Value string }
	var (
		button       = nameValue{"Button", "button"}
		conversation = nameValue{"Conversation", "conversation"}
		engagement   = nameValue{"Engagement", "engagement"}
		link         = nameValue{"Link", "link"}
	)
	cases := []struct {
		name, query string
		want        []nameValue
	}{
		{"ad day", "date_from=2026-03-16&date_to=2026-03-16", []nameValue{button, conversation, engagement}},
		{"organic day", "date_from=2026-03-18&date_to=2026-03-18", []nameValue{conversation, link}},
		{"both days", days16to18, []nameValue{button, conversation, engagement, link}},
		{"empty day", "date_from=2026-03-17&date_to=2026-03-17", []nameValue{}},
		{"ad_id", days16to18 + "&ad_id=" + adSpring, []nameValue{button, conversation, engagement}},
		{"event_type", days16to18 + "&event_type=link", []nameValue{link}},
		{"event_type_id", days16to18 + "&event_type_id=button%23SPRING_SALE_YES", []nameValue{button}},
		{"limit", days16to18 + "&limit=2", []nameValue{button, conversation}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []nameValue
			raw := c.getJSON(appPath+"/event_types?"+tc.query, &got)
			if !slices.Equal(got, tc.want) || got == nil {
				t.Errorf("got %s, want %v", raw, tc.want)
			}
		})
	}
}

// ---- standalone events stats ----

func TestStandaloneEventsStatsCountsNonAdSessions(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	var src struct{ ID string }
	c.sendJSON("POST", appPath+"/sources", map[string]string{"name": "Billboard A", "phrase": "billboard a"}, 201, &src)

	d16, d17 := day(2026, 3, 16), day(2026, 3, 17)
	const campaignLead, customLead, organicLead, laterLead = "4915400000001", "4915400000002", "4915400000003", "4915400000004"
	// Ad and post sessions do not count: 3 + 1 events.
	postFixtures(t, sc, "text_ctwa_referral", "button", "post_referral")
	// Campaign: a tagged template reached the lead an hour before it wrote: 1 event.
	postWebhook(t, sc, statusesWebhook(sentStatus(campaignLead, d16.Add(8*time.Hour), "spring_2026")))
	postWebhook(t, sc, messagesWebhook(textMsg(campaignLead, d16.Add(9*time.Hour), "yes please")))
	// Custom source: conversation, engagement, link: 3 events.
	postWebhook(t, sc, messagesWebhook(textMsg(customLead, d16.Add(10*time.Hour), "Hi, I saw Billboard A at the station")))
	postWebhook(t, sc, messagesWebhook(textMsg(customLead, d16.Add(10*time.Hour+5*time.Minute), "details at https://shop.example.com")))
	// Organic: conversation, engagement: 2 events; another organic lead the next day: 1.
	postWebhook(t, sc, messagesWebhook(textMsg(organicLead, d16.Add(11*time.Hour), "hello"),
		textMsg(organicLead, d16.Add(11*time.Hour+time.Minute), "anyone there?")))
	postWebhook(t, sc, messagesWebhook(textMsg(laterLead, d17.Add(12*time.Hour), "hi")))

	// The sessions got the sources the counts rely on.
	sources := map[string]string{}
	for _, r := range c.events("date_from=2026-03-16&date_to=2026-03-17&event_type=conversation").Data {
		sources[r.Phone] = r.SourceType + ":" + r.SourceID + ":" + r.TypeValue
	}
	wantSources := map[string]string{
		leadLena: "ad:" + adSpring + ":" + adSpring, leadEmile: "post:" + postID + ":" + postID,
		campaignLead: "campaign:spring_2026:spring_2026", customLead: "custom:" + src.ID + ":" + src.ID,
		organicLead: "organic::organic", laterLead: "organic::organic",
	}
	if fmt.Sprint(sources) != fmt.Sprint(wantSources) {
		t.Fatalf("session sources %v, want %v", sources, wantSources)
	}

	type stats struct {
		Sessions int `json:"sessions_num"`
		Events   int `json:"events_num"`
	}
	for _, tc := range []struct {
		query string
		want  stats
	}{
		{"", stats{4, 7}},
		{"date_from=2026-03-16&date_to=2026-03-16", stats{3, 6}},
		{"date_from=2026-03-17&date_to=2026-03-17", stats{1, 1}},
		{"date_from=2026-03-16T10:00:00Z&date_to=2026-03-16T11:00:00Z", stats{2, 4}},
		{"date_from=2026-03-18", stats{0, 0}},
	} {
		var got stats
		raw := c.getJSON(appPath+"/standalone-events-stats?"+tc.query, &got)
		if got != tc.want {
			t.Errorf("%q: %s, want %+v", tc.query, raw, tc.want)
		}
	}
	for _, tc := range []struct{ query, field string }{
		{"date_from=yesterday", "date_from"},
		{"date_from=2026-03-17&date_to=2026-03-16", "date_to"},
	} {
		resp, body := c.call("GET", appPath+"/standalone-events-stats?"+tc.query, "", nil)
		wantError(t, resp, body, 400, tc.field)
	}
}

// ---- event groups ----

func TestEventGroups(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	groupsPath := appPath + "/event_groups"
	d16 := day(2026, 3, 16)
	keywordEvents := func() eventsPage { return c.events("date_from=2026-03-16&date_to=2026-03-16&event_type=keyword") }

	var price groupJSON
	c.sendJSON("POST", groupsPath, map[string]string{"type": "keyword", "type_value": "price"}, 201, &price)
	if price.ID == "" || price.TypeID != price.ID || price.Type != "keyword" || price.TypeValue != "price" ||
		price.Status != "active" || price.AppID != fixtureApp || price.Events != 0 {
		t.Fatalf("created %+v", price)
	}

	// From now on "price" fires in lead text, on word boundaries, in any case.
	postWebhook(t, sc, messagesWebhook(textMsg("4915500000001", d16.Add(10*time.Hour), "What's the PRICE of the red ones?")))
	postWebhook(t, sc, messagesWebhook(textMsg("4915500000001", d16.Add(10*time.Hour+time.Minute), "priceless, thanks")))
	postWebhook(t, sc, messagesWebhook(textMsg("4915500000002", d16.Add(12*time.Hour), "price list please")))
	kw := c.events("date_from=2026-03-16&date_to=2026-03-16&event_type_id=keyword%23" + price.ID)
	if kw.TotalCount != 2 {
		t.Fatalf("%d keyword events, want 2: %+v", kw.TotalCount, kw.Data)
	}
	for i, lead := range []string{"4915500000001", "4915500000002"} {
		if r := kw.Data[i]; r.Type != "keyword" || r.TypeID != price.ID || r.TypeValue != "price" || r.Phone != lead {
			t.Errorf("keyword event %d: %+v", i, r)
		}
	}

	// A group scoped to an ad counts only events of that ad's sessions.
	var size groupJSON
	c.sendJSON("POST", groupsPath, map[string]string{"type": "button_reply", "type_id": "size_42", "ad_id": adSpring}, 201, &size)
	if size.ID == "" || size.ID == price.ID || size.TypeID != "size_42" || size.AdID != adSpring || size.Status != "active" {
		t.Fatalf("created %+v", size)
	}
	postFixtures(t, sc, "button_reply") // size_42 by an organic lead: out of scope
	postWebhook(t, sc, messagesWebhook(textMsg("4915500000003", d16.Add(13*time.Hour), "hi").fromAd(adSpring)))
	postWebhook(t, sc, messagesWebhook(replyMsg("4915500000003", d16.Add(13*time.Hour+time.Minute), "button_reply", "size_42", "Size 42")))

	var all groupsPage
	c.getJSON(groupsPath, &all)
	wantPrice := price
	wantPrice.Events, wantPrice.FirstEvent, wantPrice.LastEvent = 2, "2026-03-16T10:00:00+00:00", "2026-03-16T12:00:00+00:00"
	wantSize := size
	wantSize.Events, wantSize.FirstEvent, wantSize.LastEvent = 1, "2026-03-16T13:01:00+00:00", "2026-03-16T13:01:00+00:00"
	if all.TotalCount != 2 || !slices.Equal(all.Data, []groupJSON{wantPrice, wantSize}) {
		t.Fatalf("groups %+v\nwant %+v", all, []groupJSON{wantPrice, wantSize})
	}

	listIDs := func(query string) (got []string, total int) {
		t.Helper()
		var p groupsPage
		c.getJSON(groupsPath+"?"+query, &p)
		got = []string{}
		for _, g := range p.Data {
			got = append(got, g.ID)
		}
		return got, p.TotalCount
	}
	filters := []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{price.ID, size.ID}, 2},
		{"status=active", []string{price.ID, size.ID}, 2},
		{"status=archived", []string{}, 0},
		{"event_type=keyword", []string{price.ID}, 1},
		{"event_type=button_reply", []string{size.ID}, 1},
		{"event_type_id=keyword%23" + price.ID, []string{price.ID}, 1},
		{"event_type_id=keyword%23999", []string{}, 0},
		{"ad_id=" + adSpring, []string{size.ID}, 1},
		{"limit=1", []string{price.ID}, 2},
		{"limit=1&offset=1", []string{size.ID}, 2},
		{"offset=2", []string{}, 2},
	}
	for _, f := range filters {
		if got, total := listIDs(f.query); !slices.Equal(got, f.want) || total != f.total {
			t.Errorf("%q: ids %v total %d, want %v total %d", f.query, got, total, f.want, f.total)
		}
	}

	// Rejected requests answer the JSON error and change nothing.
	_, before := c.call("GET", groupsPath, "", nil)
	rejects := []struct {
		name, method, path, contentType, body string
		status                                int
		field                                 string
	}{
		{"bad type", "POST", groupsPath, "application/json", `{"type":"click"}`, 400, "type"},
		{"keyword without value", "POST", groupsPath, "application/json", `{"type":"keyword"}`, 400, "type_value"},
		{"keyword tracked twice", "POST", groupsPath, "application/json", `{"type":"keyword","type_value":"Price"}`, 400, "type_value"},
		{"keyword with own type_id", "POST", groupsPath, "application/json", `{"type":"keyword","type_id":"promo","type_value":"offer"}`, 400, "type_id"},
		{"ad and campaign", "POST", groupsPath, "application/json", `{"type":"button","ad_id":"1","campaign_id":"2"}`, 400, "campaign_id"},
		{"not JSON", "POST", groupsPath, "text/plain", `{"type":"keyword","type_value":"offer"}`, 415, ""},
		{"form", "POST", groupsPath, "application/x-www-form-urlencoded", `type=keyword&type_value=offer`, 415, ""},
		{"malformed JSON", "POST", groupsPath, "application/json", `{"type":"keyword",`, 400, "body"},
		{"bad list filter", "GET", groupsPath + "?status=deleted", "", "", 400, "status"},
		{"bad list limit", "GET", groupsPath + "?limit=0", "", "", 400, "limit"},
		{"patch unknown id", "PATCH", groupsPath + "/999", "application/json", `{"status":"archived"}`, 404, "id"},
		{"patch bad status", "PATCH", groupsPath + "/" + price.ID, "application/json", `{"status":"deleted"}`, 400, "status"},
		{"patch not JSON", "PATCH", groupsPath + "/" + price.ID, "text/plain", `{"status":"archived"}`, 415, ""},
		{"patch malformed JSON", "PATCH", groupsPath + "/" + price.ID, "application/json", `status=archived`, 400, "body"},
	}
	for _, r := range rejects {
		t.Run(r.name, func(t *testing.T) {
			resp, body := c.call(r.method, r.path, r.contentType, []byte(r.body))
			wantError(t, resp, body, r.status, r.field)
			if _, after := c.call("GET", groupsPath, "", nil); !bytes.Equal(after, before) {
				t.Errorf("groups changed:\n%s\nbefore:\n%s", after, before)
			}
		})
	}

	// Archiving stops the keyword; what it counted stays.
	var archived groupJSON
	c.sendJSON("PATCH", groupsPath+"/"+price.ID, map[string]string{"status": "archived"}, 200, &archived)
	if wantPrice.Status = "archived"; archived != wantPrice {
		t.Fatalf("patched %+v, want %+v", archived, wantPrice)
	}
	postWebhook(t, sc, messagesWebhook(textMsg("4915500000004", d16.Add(14*time.Hour), "price?")))
	if n := keywordEvents().TotalCount; n != 2 {
		t.Errorf("%d keyword events after archiving, want still 2", n)
	}
	recorded := c.events("date_from=2026-03-16T14:00:00Z&date_to=2026-03-16T14:00:00Z")
	if got := summary(recorded.Data); !slices.Equal(got, []string{"conversation=organic"}) {
		t.Errorf("the message after archiving recorded %q, want only its conversation", got)
	}
	for _, f := range []struct {
		query string
		want  []string
	}{{"status=archived", []string{price.ID}}, {"status=active", []string{size.ID}}} {
		if got, _ := listIDs(f.query); !slices.Equal(got, f.want) {
			t.Errorf("%q: %v, want %v", f.query, got, f.want)
		}
	}
}

// ---- sources ----

type sourceJSON struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Phrase  string `json:"phrase"`
	Created string `json:"created_time"`
}

func TestSourcesOpenCustomSessions(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr)
	c := newAPIClient(t, sc, "")
	sourcesPath := appPath + "/sources"

	var src sourceJSON
	c.sendJSON("POST", sourcesPath, map[string]string{"name": "Billboard A", "phrase": "billboard a"}, 201, &src)
	created, err := time.Parse(time.RFC3339, src.Created)
	if src.ID == "" || src.Type != "custom" || src.Name != "Billboard A" || src.Phrase != "billboard a" ||
		err != nil || time.Since(created).Abs() > time.Minute {
		t.Fatalf("created %+v (%v)", src, err)
	}

	d16 := day(2026, 3, 16)
	const newLead, openLead = "4915600000001", "4915600000002"
	// A new lead's first message with the phrase opens a custom session.
	postWebhook(t, sc, messagesWebhook(textMsg(newLead, d16.Add(10*time.Hour), "Hello! I scanned BILLBOARD A near the station")))
	// A lead with an open session keeps its source.
	postWebhook(t, sc, messagesWebhook(textMsg(openLead, d16.Add(10*time.Hour), "hi")))
	postWebhook(t, sc, messagesWebhook(textMsg(openLead, d16.Add(10*time.Hour+time.Minute), "billboard a")))

	got := map[string]string{}
	for _, r := range c.events("date_from=2026-03-16&date_to=2026-03-16&event_type=conversation").Data {
		got[r.Phone] = r.SourceType + ":" + r.SourceID + ":" + r.TypeValue
	}
	want := map[string]string{newLead: "custom:" + src.ID + ":" + src.ID, openLead: "organic::organic"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sessions %v, want %v", got, want)
	}

	// GET sources compares every source seen: the custom source (with its phrase) and
	// the organic session of the other lead, one session and one user each.
	var list struct {
		Data []struct {
			Type, ID, Name, Phrase string
			Sessions               int64 `json:"sessions"`
			UniqueUsers            int64 `json:"unique_users"`
		} `json:"data"`
		TotalCount int `json:"total_count"`
	}
	before := c.getJSON(sourcesPath, &list)
	rows := fmt.Sprintf("%+v", list.Data)
	wantRows := fmt.Sprintf("[{Type:custom ID:%s Name:%s Phrase:%s Sessions:1 UniqueUsers:1} {Type:organic ID: Name:Organic Phrase: Sessions:1 UniqueUsers:1}]",
		src.ID, src.Name, src.Phrase)
	if list.TotalCount != 2 || rows != wantRows {
		t.Fatalf("sources %s\nrows %s\nwant %s", before, rows, wantRows)
	}

	rejects := []struct {
		name, contentType, body string
		status                  int
		field                   string
	}{
		{"no name", "application/json", `{"phrase":"summer qr"}`, 400, "name"},
		{"blank name", "application/json", `{"name":"  ","phrase":"summer qr"}`, 400, "name"},
		{"no phrase", "application/json", `{"name":"Summer QR"}`, 400, "phrase"},
		{"duplicate phrase", "application/json", `{"name":"Billboard B","phrase":"Billboard A"}`, 400, "phrase"},
		{"not JSON", "text/plain", `{"name":"Summer QR","phrase":"summer qr"}`, 415, ""},
		{"JSON look-alike", "application/json-seq", `{"name":"Summer QR","phrase":"summer qr"}`, 415, ""},
		{"malformed JSON", "application/json", `{"name":`, 400, "body"},
	}
	for _, r := range rejects {
		t.Run(r.name, func(t *testing.T) {
			resp, body := c.call("POST", sourcesPath, r.contentType, []byte(r.body))
			wantError(t, resp, body, r.status, r.field)
			if _, after := c.call("GET", sourcesPath, "", nil); !bytes.Equal(after, before) {
				t.Errorf("sources changed:\n%s\nbefore:\n%s", after, before)
			}
		})
	}

	// Media types are case-insensitive and may carry parameters.
	resp, body := c.call("POST", sourcesPath, "Application/JSON; charset=UTF-8", []byte(`{"name":"Summer QR","phrase":"summer qr"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("Application/JSON; charset=UTF-8 answered %d %s", resp.StatusCode, body)
	}
	// A defined custom source is listed even before it brought a session.
	if c.getJSON(sourcesPath, &list); list.TotalCount != 3 || list.Data[2].Name != "Summer QR" || list.Data[2].Sessions != 0 {
		t.Errorf("after a second source: %+v", list)
	}
}

// ---- auth and client ----

func TestEventsAPIRequiresTokenAndKnownClient(t *testing.T) {
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-api-token", "s3cret")
	authed := newAPIClient(t, sc, "s3cret")
	var group groupJSON
	authed.sendJSON("POST", appPath+"/event_groups", map[string]string{"type": "keyword", "type_value": "price"}, 201, &group)
	_, groupsBefore := authed.call("GET", appPath+"/event_groups", "", nil)
	_, sourcesBefore := authed.call("GET", appPath+"/sources", "", nil)

	routes := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/events?" + days16to18, "", 200},
		{"GET", "/events/export?" + days16to18, "", 200},
		{"GET", "/event_types?" + days16to18, "", 200},
		{"GET", "/standalone-events-stats", "", 200},
		{"GET", "/event_groups", "", 200},
		{"POST", "/event_groups", `{"type":"keyword","type_value":"offer"}`, 201},
		{"PATCH", "/event_groups/" + group.ID, `{"status":"archived"}`, 200},
		{"GET", "/sources", "", 200},
		{"POST", "/sources", `{"name":"QR","phrase":"qr hello"}`, 201},
	}
	callers := []struct {
		name, token, client string
		status              int
		field               string
	}{
		{"no token", "", "default", 401, ""},
		{"wrong token", "nope", "default", 401, ""},
		{"wrong token, wrong client", "nope", "acme", 401, ""},
		{"wrong client", "s3cret", "acme", 404, "client_id"},
	}
	for _, r := range routes {
		for _, caller := range callers {
			t.Run(caller.name+" "+r.method+" "+r.path, func(t *testing.T) {
				c := newAPIClient(t, sc, caller.token)
				path := "/v1/clients/" + caller.client + "/apps/" + fixtureApp + r.path
				resp, body := c.call(r.method, path, "application/json", []byte(r.body))
				wantError(t, resp, body, caller.status, caller.field)
				if caller.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			})
		}
	}
	// Nothing the refused calls asked for happened.
	if _, after := authed.call("GET", appPath+"/event_groups", "", nil); !bytes.Equal(after, groupsBefore) {
		t.Errorf("groups changed by refused calls:\n%s", after)
	}
	if _, after := authed.call("GET", appPath+"/sources", "", nil); !bytes.Equal(after, sourcesBefore) {
		t.Errorf("sources changed by refused calls:\n%s", after)
	}

	for _, r := range routes {
		resp, body := authed.call(r.method, appPath+r.path, "application/json", []byte(r.body))
		if resp.StatusCode != r.status {
			t.Errorf("with the token %s %s answered %d %s, want %d", r.method, r.path, resp.StatusCode, body, r.status)
		}
	}
	var groups groupsPage
	authed.getJSON(appPath+"/event_groups", &groups)
	if groups.TotalCount != 2 || groups.Data[0].Status != "archived" || groups.Data[1].TypeValue != "offer" {
		t.Errorf("after the authorized calls: %+v", groups)
	}
}
