package proxy

import (
	"bufio"
	"io"

	"github.com/valyala/fasthttp"
)

// Backuper writes a consistent backup of the store.
type Backuper interface {
	Backup(w io.Writer) error
}

// RegisterBackupRoute adds GET /v1/backup: an online backup of the running sidecar's
// store (Badger locks its directory, so `ctwa-sidecar backup -api …` goes through here).
func RegisterBackupRoute(a *API, store Backuper) {
	a.Handle("GET", "/v1/backup", AuthToken, func(ctx *fasthttp.RequestCtx, _ Params) {
		ctx.SetContentType("application/octet-stream")
		ctx.Response.Header.Set("Content-Disposition", `attachment; filename="ctwa-sidecar.backup"`)
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			// A failure mid-stream can only cut the body short; the client sees a
			// truncated transfer and the backup command reports it.
			if err := store.Backup(w); err == nil {
				_ = w.Flush()
			}
		})
	})
}
