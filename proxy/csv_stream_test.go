package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestCSVExportPanicMidStream: a CSV export's rows run on fasthttp's stream goroutine, out
// of the handler's guard; a panic there must not end the process, and the file it cut
// short ends with a comment line instead of passing for a whole export. The panic is
// logged and counted by route, and the server keeps serving.
func TestCSVExportPanicMidStream(t *testing.T) {
	a := NewAPI("", nil)
	a.Handle("GET", "/v1/export-panic", AuthNone, func(ctx *fasthttp.RequestCtx, _ Params) {
		streamCSV(ctx, "rows.csv", []string{"id", "value"}, func(write func([]string) bool) error {
			write([]string{"1", "first"})
			var m map[string]int
			m["boom"]++ // assignment to a nil map
			return nil
		})
	})
	base, logged := serveAPI(t, "csv-panic", a)

	resp, err := http.Get(base + "/v1/export-panic")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "id,value\r\n1,first\r\n" + csvPanicLine + "\r\n"; resp.StatusCode != 200 || string(body) != want {
		t.Errorf("answer %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	series := `ctwa_sidecar_handler_panics_total{listener="csv-panic",route="/v1/export-panic"}`
	if n := counterValue(t, series); n != 1 {
		t.Errorf("%s = %v, want 1", series, n)
	}
	if log := logged.String(); !strings.Contains(log, "handler panicked") || !strings.Contains(log, "nil map") {
		t.Errorf("panic not logged:\n%s", log)
	}
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("server after the panic: %v", err)
	}
}
