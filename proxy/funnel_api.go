package proxy

import (
	"github.com/valyala/fasthttp"
)

// funnel answers, per source, what the sessions that started in the range led to —
// engaged, converted and the off-thread events credited to them, whenever they happened
// (engine.Recorder.Funnel): GET …/funnel[?date_from&date_to].
func (e sourcesAPI) funnel(ctx *fasthttp.RequestCtx, p Params) {
	q := newQuery(ctx, e.loc)
	from, to := q.dateRange(false)
	if q.err != nil {
		writeBadRequest(ctx, q.err)
		return
	}
	rows, err := e.rec.Funnel(p.Get("app_id"), from, to)
	if err != nil {
		writeStoreError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, wholePage(rows))
}
