package proxy

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// SourceReader is what the sources, funnel and contacts routes read: the compare-sources
// rows, the funnel of the sessions of a range and the contacts export.
type SourceReader interface {
	SourceStats(app string, from, to int64) ([]engine.SourceStats, error)
	Contacts(ctx context.Context, f engine.ContactFilter, fn func(c *engine.Contact) bool) error
	Funnel(app string, from, to int64) ([]engine.FunnelRow, error)
}

// sourcesAPI serves the compare-sources view (SPEC §6.3) and the contacts export (§6.4).
type sourcesAPI struct {
	dataAPI
	rec SourceReader
}

// listSources answers every source seen in the range, with the funnel and money
// columns (engine.Recorder.SourceStats).
func (e sourcesAPI) listSources(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	from, to := q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	rows, err := e.rec.SourceStats(p.Get("app_id"), from, to)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, wholePage(rows))
}

// exportContacts streams a CSV of leads for a Meta custom audience (SPEC §6.4): phone in
// E.164 with '+' (or the user id of a BSUID lead), first and last session, sources,
// sessions and revenue; by first session. The rows come from one bounded-memory pass over
// the store (engine.Recorder.Contacts), on the stream goroutine; it stops when the client
// hangs up or the server shuts down.
func (e sourcesAPI) exportContacts(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	f := engine.ContactFilter{AppID: p.Get("app_id"), SourceID: q.str("source_id"), EventType: q.str("event_type")}
	f.From, f.To = q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	client := watchClient(ctx)
	streamCSV(ctx, "contacts.csv", engine.ContactColumns, func(write func([]string) bool) error {
		return e.contactRows(client, f, write)
	})
}

// contactRows writes the rows of f through write, until it reports the client gone.
func (e sourcesAPI) contactRows(client clientWatch, f engine.ContactFilter, write func([]string) bool) error {
	wctx, stop := client.start()
	defer stop()
	cells, gone := make([]string, len(engine.ContactColumns)), false
	err := e.rec.Contacts(wctx, f, func(c *engine.Contact) bool {
		gone = !write(c.Row(cells, e.format))
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
