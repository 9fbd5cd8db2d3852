package proxy

import (
	"context"
	"errors"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// sourceStats is one row of the "compare sources" view (SPEC §6.3).
type sourceStats struct {
	Type            string         `json:"type"`
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Phrase          string         `json:"phrase,omitempty"`
	Direction       string         `json:"direction"`
	Sessions        int64          `json:"sessions"`
	UniqueUsers     int64          `json:"unique_users"`
	Engaged         int64          `json:"engaged"`
	Converted       int64          `json:"converted"`
	OffThreadCount  int64          `json:"offthread_count"`
	Revenue         float64        `json:"revenue"`
	Currency        string         `json:"currency"`
	OtherCurrencies []engine.Money `json:"other_currencies,omitempty"`
	Spend           float64        `json:"spend"`
	ROAS            float64        `json:"roas"`
	CostPerLead     float64        `json:"cost_per_lead"`
}

// listSources answers every source seen in the range — ad, post, custom, campaign,
// organic, unattributed — plus the custom sources defined for the app, with the funnel
// and money columns; most sessions first.
func (e *eventsAPI) listSources(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	from, to := q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	app, days := p.Get("app_id"), e.rec.DaysOf(from, to)
	totals, err := e.rec.SourceTotals(app, days)
	if err == nil {
		err = e.addSpend(totals, app, days)
	}
	var headlines map[engine.SourceRef]string
	if err == nil {
		headlines, err = e.rec.ReferralNames(app)
	}
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	for _, s := range e.rec.Definitions().Sources {
		if ref := (engine.SourceRef{Type: engine.SourceCustom, ID: s.ID}); s.AppID == app && totals[ref] == nil {
			totals[ref] = engine.NewTotals()
		}
	}
	rows := make([]sourceStats, 0, len(totals))
	for ref, t := range totals {
		rows = append(rows, e.sourceStatsRow(ref, t, headlines))
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Sessions != rows[j].Sessions {
			return rows[i].Sessions > rows[j].Sessions
		}
		return rows[i].Type+rows[i].ID < rows[j].Type+rows[j].ID
	})
	WriteJSON(ctx, fasthttp.StatusOK, page{Data: rows, TotalCount: len(rows), Limit: len(rows)})
}

// addSpend adds the imported spend of each ad source, and lists the imported ads of app
// that had delivery in the range but brought no session: what they cost shows too.
func (e *eventsAPI) addSpend(totals map[engine.SourceRef]*engine.Totals, app string, days engine.Days) error {
	for ref, t := range totals {
		if ref.Type == engine.SourceAd {
			if err := e.rec.AddDelivery(t, ref.ID, days); err != nil {
				return err
			}
		}
	}
	for id, ad := range e.rec.Catalog().Ads {
		ref := engine.SourceRef{Type: engine.SourceAd, ID: id}
		if ad.AppID != app || totals[ref] != nil {
			continue
		}
		t := engine.NewTotals()
		if err := e.rec.AddDelivery(t, id, days); err != nil {
			return err
		}
		if t.Impressions > 0 || t.Clicks > 0 || t.Spend > 0 {
			totals[ref] = t
		}
	}
	return nil
}

func (e *eventsAPI) sourceStatsRow(ref engine.SourceRef, t *engine.Totals, headlines map[engine.SourceRef]string) sourceStats {
	cat := e.rec.Catalog()
	currency := ""
	if ad, ok := cat.Ads[ref.ID]; ok && ref.Type == engine.SourceAd {
		currency = cat.Currency(ad.AdAccountID)
	}
	cur, revenue, others := t.SplitRevenue(currency)
	row := sourceStats{Type: ref.Type, ID: ref.ID, Direction: "incoming", Sessions: t.Sessions,
		UniqueUsers: t.UniqueUsers(), Engaged: t.Engaged, Converted: t.Converted, OffThreadCount: t.OffCount,
		Revenue: engine.Round2(revenue), Currency: cur, OtherCurrencies: others, Spend: engine.Round2(t.Spend),
		ROAS: engine.Ratio(revenue, t.Spend), CostPerLead: engine.Ratio(t.Spend, float64(t.UniqueUsers()))}
	row.Name, row.Phrase = e.sourceName(ref, headlines)
	if ref.Type == engine.SourceCampaign {
		row.Direction = "outgoing"
	}
	return row
}

// sourceName names a source for people: the ad's name or, for an ad no import placed
// yet and for a post, its referral headline (headlines); the custom source's name; the
// campaign tag.
func (e *eventsAPI) sourceName(ref engine.SourceRef, headlines map[engine.SourceRef]string) (name, phrase string) {
	switch ref.Type {
	case engine.SourceAd, engine.SourcePost:
		if ad, ok := e.rec.Catalog().Ads[ref.ID]; ok && ref.Type == engine.SourceAd {
			return ad.Name, ""
		}
		if h, ok := headlines[ref]; ok {
			return h, ""
		}
		return ref.Type + " " + ref.ID, ""
	case engine.SourceCustom:
		for _, s := range e.rec.Definitions().Sources {
			if s.ID == ref.ID {
				return s.Name, s.Phrase
			}
		}
	case engine.SourceCampaign:
		return ref.ID, ""
	case engine.SourceOrganic:
		return "Organic", ""
	case engine.SourceUnattributed:
		return "Unattributed off-thread events", ""
	}
	return ref.ID, ""
}

// contactColumns is the header row of the contacts export.
var contactColumns = []string{"phone", "user_id", "first_seen", "last_seen", "source", "sessions", "revenue"}

// exportContacts streams a CSV of leads for a Meta custom audience (SPEC §6.4): phone in
// E.164 with '+' (or the user id of a BSUID lead), first and last session, sources,
// sessions and revenue; by first session. The rows come from one bounded-memory pass over
// the store (engine.Recorder.Contacts), on the stream goroutine; it stops when the client
// hangs up or the server shuts down.
func (e *eventsAPI) exportContacts(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := engine.ContactFilter{AppID: p.Get("app_id"), SourceID: q.str("source_id"), EventType: q.str("event_type")}
	f.From, f.To = q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	client := watchClient(ctx)
	streamCSV(ctx, "contacts.csv", contactColumns, func(write func([]string) bool) error {
		return e.contactRows(client, f, write)
	})
}

// contactRows writes the rows of f through write, until it reports the client gone.
func (e *eventsAPI) contactRows(client clientWatch, f engine.ContactFilter, write func([]string) bool) error {
	wctx, stop := client.start()
	defer stop()
	cells, gone := make([]string, len(contactColumns)), false
	err := e.rec.Contacts(wctx, f, func(c *engine.Contact) bool {
		cells[0], cells[1] = "", ""
		if c.LeadIsBSUID {
			cells[1] = c.Lead
		} else {
			cells[0] = "+" + c.Lead
		}
		cells[2], cells[3] = e.format(c.First), e.format(c.Last)
		cells[4], cells[5], cells[6] = strings.Join(c.Sources, " "), strconv.Itoa(c.Sessions), revenueCell(c.Revenue)
		gone = !write(cells)
		return !gone
	})
	switch {
	case gone || errors.Is(err, errClientGone):
		exportsClientGone.Inc()
		return nil // nobody reads a last line
	case err != nil:
		exportsFailed.Inc()
	default:
		exportsDone.Inc()
	}
	return err
}

// Contacts exports by how they ended: every row written, the client gone (it hung up while
// rows were computed or sent), or failed (the file ends with a "# export failed" line).
var (
	exportsDone       = metrics.NewCounter(`ctwa_sidecar_api_exports_total{export="contacts",result="done"}`)
	exportsClientGone = metrics.NewCounter(`ctwa_sidecar_api_exports_total{export="contacts",result="client_gone"}`)
	exportsFailed     = metrics.NewCounter(`ctwa_sidecar_api_exports_total{export="contacts",result="failed"}`)
)

// errClientGone ends an export whose client closed or reset its connection.
var errClientGone = errors.New("the client closed the connection")

// errShutdown ends an export when the server shuts down.
var errShutdown = errors.New("the sidecar is shutting down")

// clientWatch notices that the client of a streamed answer has gone. fasthttp notices it
// only when a write fails, and an export sorted by first session writes its first row
// only after its whole scan: without the watch, a client that hung up would still cost
// that scan.
type clientWatch struct {
	conn     net.Conn
	shutdown <-chan struct{}
}

// watchClient prepares the watch of ctx's client. The watch reads the connection, so the
// answer closes it: a request pipelined behind this one would lose bytes to the watch.
func watchClient(ctx *fasthttp.RequestCtx) clientWatch {
	ctx.SetConnectionClose()
	return clientWatch{conn: ctx.Conn(), shutdown: ctx.Done()}
}

// start watches from the stream goroutine, while the answer is being written: the
// returned context ends with errClientGone when the connection reads EOF or fails (the
// client closed or reset it), with errShutdown when the server shuts down. stop ends the
// watch and returns once it no longer touches the connection.
func (w clientWatch) start() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	read, quit := make(chan struct{}), make(chan struct{})
	// The deadline is cleared here, not in the reader: stop's deadline must come after it.
	watching := w.conn != nil && clearReadDeadline(w.conn)
	go func() {
		defer close(read)
		if !watching {
			return
		}
		var b [1]byte
		n, err := w.conn.Read(b[:])
		var ne net.Error
		if n == 0 && err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			cancel(errClientGone)
		}
		// Bytes (a pipelined request) or a deadline: the client is there, or the watch ends.
	}()
	go func() {
		select {
		case <-w.shutdown:
			cancel(errShutdown)
		case <-quit:
		}
	}()
	return ctx, func() {
		close(quit)
		if watching {
			_ = w.conn.SetReadDeadline(time.Now()) // ends the read
		}
		<-read
		cancel(nil)
	}
}

// clearReadDeadline clears c's read deadline and reports whether c can be watched: the
// connection of a RequestCtx made by Init (fuzzers, tests) panics when used.
func clearReadDeadline(c net.Conn) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return c.SetReadDeadline(time.Time{}) == nil
}

// revenueCell writes revenue by currency, in currency order: "49.90 EUR; 30.00 USD".
func revenueCell(revenue []engine.Money) string {
	parts := make([]string, 0, len(revenue))
	for _, m := range revenue {
		parts = append(parts, strconv.FormatFloat(engine.Round2(m.Amount), 'f', 2, 64)+" "+m.Currency)
	}
	return strings.Join(parts, "; ")
}
