package proxy

import (
	"embed"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// dashboardFiles is the Insights dashboard: one page, its script, styles and icon,
// built into the binary. The page holds no data; its calls to the JSON API carry the
// bearer token, so the files themselves are served without one.
//
//go:embed dashboard/index.html dashboard/assets
var dashboardFiles embed.FS

// dashboardCSP lets the page load only its own files and talk only to this listener:
// no inline script or style, no other origin, no framing.
const dashboardCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// dashboardTypes are the content types of the dashboard's files, by extension.
var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// RegisterDashboard serves the Insights dashboard at GET / and its files at
// GET /assets/{file}.
func RegisterDashboard(a *API) {
	a.Handle("GET", "/", AuthNone, func(ctx *fasthttp.RequestCtx, _ Params) {
		serveDashboardFile(ctx, "dashboard/index.html")
	})
	a.Handle("GET", "/assets/{file}", AuthNone, func(ctx *fasthttp.RequestCtx, p Params) {
		name := p.Get("file")
		if strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
			WriteError(ctx, fasthttp.StatusNotFound, "not_found", "no dashboard file "+quote(name), "")
			return
		}
		serveDashboardFile(ctx, "dashboard/assets/"+name)
	})
}

func serveDashboardFile(ctx *fasthttp.RequestCtx, name string) {
	body, err := dashboardFiles.ReadFile(name)
	ctype, known := dashboardTypes[path.Ext(name)]
	if err != nil || !known {
		WriteError(ctx, fasthttp.StatusNotFound, "not_found", "no dashboard file "+quote(path.Base(name)), "")
		return
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// The files change with the binary; revalidating costs little on a loopback listener.
	h.Set("Cache-Control", "no-cache")
	ctx.SetContentType(ctype)
	ctx.SetBody(body)
}
