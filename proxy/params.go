package proxy

import (
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// paramError is a bad query parameter or body field; it becomes a 400 naming the field.
type paramError struct{ field, msg string }

func (e *paramError) Error() string { return e.field + " " + e.msg }

func badParam(field, format string, args ...any) error {
	return &paramError{field, fmt.Sprintf(format, args...)}
}

// query reads and validates query parameters; the first problem sticks in err.
type query struct {
	args *fasthttp.Args
	loc  *time.Location
	err  error
}

func newQuery(ctx *fasthttp.RequestCtx, loc *time.Location) *query {
	return &query{args: ctx.QueryArgs(), loc: loc}
}

func (q *query) str(name string) string { return string(q.args.Peek(name)) }

// intRange reads an integer parameter in [lo, hi], def when absent.
func (q *query) intRange(name string, def, lo, hi int) int {
	v := q.args.Peek(name)
	if q.err != nil || len(v) == 0 {
		return def
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < lo || n > hi {
		q.err = badParam(name, "%q is not an integer from %d to %d", v, lo, hi)
		return def
	}
	return n
}

// date reads a YYYY-MM-DD day (its start in the configured zone; with end set, the
// start of the next day, so the day is included) or an RFC 3339 instant.
func (q *query) date(name string, required, end bool) (time.Time, bool) {
	v := string(q.args.Peek(name))
	if q.err != nil {
		return time.Time{}, false
	}
	if v == "" {
		if required {
			q.err = badParam(name, "is required (YYYY-MM-DD or RFC 3339)")
		}
		return time.Time{}, false
	}
	if d, err := time.ParseInLocation("2006-01-02", v, q.loc); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		q.err = badParam(name, "%q is not YYYY-MM-DD or RFC 3339", v)
		return time.Time{}, false
	}
	if end {
		t = t.Add(time.Second) // an instant is included, as a day is
	}
	return t, true
}

// dateRange reads date_from and date_to as [from, to) unix seconds.
func (q *query) dateRange(required bool) (from, to int64) {
	f, okF := q.date("date_from", required, false)
	t, okT := q.date("date_to", required, true)
	from, to = 0, 1<<62
	if okF {
		from = f.Unix()
	}
	if okT {
		to = t.Unix()
	}
	if q.err == nil && from >= to {
		q.err = badParam("date_to", "is before date_from")
	}
	return from, to
}

// writeParamError answers a paramError (or other error) as a JSON 400.
func writeBadRequest(ctx *fasthttp.RequestCtx, err error) {
	if pe, ok := err.(*paramError); ok {
		WriteError(ctx, fasthttp.StatusBadRequest, "invalid_parameter", pe.Error(), pe.field)
		return
	}
	WriteError(ctx, fasthttp.StatusBadRequest, "invalid_request", err.Error(), "")
}

// page is the list envelope of the Signals API.
type page struct {
	Data       any `json:"data"`
	TotalCount int `json:"total_count"`
	Offset     int `json:"offset"`
	Limit      int `json:"limit"`
}

// pageParams reads limit (1 to most, def when absent) and offset, the paging of every list.
func (q *query) pageParams(def, most int) (limit, offset int) {
	return q.intRange("limit", def, 1, most), q.intRange("offset", 0, 0, 1<<30)
}

// wholePage is the envelope of a list that one page always holds.
func wholePage[T any](rows []T) page {
	return page{Data: rows, TotalCount: len(rows), Limit: len(rows)}
}

// pageOf returns the items of one page: limit items from offset, clipped to xs.
func pageOf[T any](xs []T, offset, limit int) []T {
	return xs[min(offset, len(xs)):min(offset+limit, len(xs))]
}
