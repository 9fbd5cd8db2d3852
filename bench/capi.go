package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	json "github.com/goccy/go-json"
)

// capiArgs returns the sidecar flags of -capi: none for off; conversions to a Meta that
// refuses connections for down; to a stub in this process that takes every event for up.
func capiArgs(ctx context.Context, mode string) ([]string, error) {
	flags := []string{"-meta-token", "bench-token", "-waba-id", "1", "-capi-dataset", "1", "-graph-url"}
	switch mode {
	case "off", "": // "": options built in code, as the tests do
		return nil, nil
	case "down":
		return append(flags, "http://127.0.0.1:1"), nil
	case "up":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("-capi up: %w", err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(takeEvents)}
		go srv.Serve(ln)
		context.AfterFunc(ctx, func() { srv.Close() })
		return append(flags, "http://"+ln.Addr().String()), nil
	}
	return nil, fmt.Errorf("-capi %q is not off, down or up", mode)
}

// takeEvents answers a Conversions API request as Meta does when it takes every event.
func takeEvents(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"events_received":%d,"messages":[],"fbtrace_id":"bench"}`, len(body.Data))
}
