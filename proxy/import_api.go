package proxy

import (
	"context"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// maxImportBody bounds a spend import (a year of daily rows for a few hundred ads).
const maxImportBody = 8 << 20

// SpendImporter is what the spend import route changes: the catalogue and the spend.
type SpendImporter interface {
	ImportSpend(ctx context.Context, app string, imp engine.SpendImport) (engine.ImportResult, error)
}

// importAPI serves the spend import (SPEC §6.5).
type importAPI struct {
	dataAPI
	rec SpendImporter
}

// importSpend takes a JSON import or a Meta Ads Manager CSV export (text/csv; the ad
// account comes from its Account ID column or the ad_account_id parameter).
func (e importAPI) importSpend(ctx *fasthttp.RequestCtx, p Params) {
	if len(ctx.PostBody()) > maxImportBody {
		WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, "too_large", "an import is at most 8 MiB; split it by date range", "")
		return
	}
	ct, _, _ := strings.Cut(strings.ToLower(string(ctx.Request.Header.ContentType())), ";")
	var imp engine.SpendImport
	var err error
	switch strings.TrimSpace(ct) {
	case "text/csv":
		q := ctx.QueryArgs()
		imp, err = engine.ParseSpendCSV(ctx.PostBody(),
			engine.AdAccount{ID: string(q.Peek("ad_account_id")), Name: string(q.Peek("ad_account_name")), Currency: string(q.Peek("currency"))},
			engine.FacebookAccount{ID: string(q.Peek("facebook_account_id")), Email: string(q.Peek("facebook_account_email"))})
	case "application/json", "":
		imp, err = engine.ParseSpendJSON(ctx.PostBody())
	default:
		WriteError(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the import as application/json or as text/csv (a Meta Ads Manager export)", "")
		return
	}
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	res, err := e.rec.ImportSpend(ctx, p.Get("app_id"), imp)
	if err != nil {
		writeDefError(ctx, err)
		return
	}
	WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"success": true, "imported": res})
}
