package proxy

import (
	"bufio"
	"bytes"
	"io"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// /metrics carries a HELP and a TYPE line for every metric family, as promtool and
// Prometheus expect. VictoriaMetrics writes the TYPE and an empty HELP; writeMetrics
// fills in the help of the sidecar's own families from metricHelp (README's Metrics
// table says more about each). The Go runtime and process families keep an empty HELP.
func init() {
	metrics.ExposeMetadata(true)
	metrics.NewGauge("ctwa_sidecar_ready", func() float64 {
		if f := readyCheck.Load(); f != nil && *f != nil && (*f)() == nil {
			return 1
		}
		return 0
	})
}

// metricHelp is the help text of every ctwa_sidecar_ family, by family name.
var metricHelp = map[string]string{
	"ctwa_sidecar_requests_total":                   "Webhook requests on -listen by what the sender got (2xx…5xx relayed, bad_gateway, gateway_timeout, too_large, bad_request).",
	"ctwa_sidecar_connections_rejected_total":       "Connections turned away or closed without a request, by listener and reason.",
	"ctwa_sidecar_connections_open":                 "Connections open on each listener, idle ones included.",
	"ctwa_sidecar_forward_duration_seconds":         "Upstream round trip of a forwarded webhook request.",
	"ctwa_sidecar_upstream_errors_total":            "Failed upstream round trips by reason (timeout, refused, closed, response_too_large, other).",
	"ctwa_sidecar_requests_in_flight":               "Webhook requests being forwarded.",
	"ctwa_sidecar_request_body_bytes_total":         "Request body bytes relayed to the upstream.",
	"ctwa_sidecar_response_body_bytes_total":        "Response body bytes relayed from the upstream.",
	"ctwa_sidecar_webhooks_total":                   "Webhooks by payload format and recording outcome.",
	"ctwa_sidecar_webhook_items_total":              "Items within webhooks that were rejected or ignored, by format and reason.",
	"ctwa_sidecar_automatic_events_unmatched_total": "Automatic events whose click (ctwa_clid) no stored session has yet.",
	"ctwa_sidecar_offthread_events_total":           "Off-thread events by result (attributed, unattributed, duplicate, rejected).",
	"ctwa_sidecar_events_total":                     "Events recorded, by type.",
	"ctwa_sidecar_dedupe_hits_total":                "Retried messages and statuses not counted again, by kind.",
	"ctwa_sidecar_store_batch_requests":             "Requests per group commit of the store, by lane (log: what webhooks wait for; views).",
	"ctwa_sidecar_store_commit_duration_seconds":    "Duration of a group commit of the store, by lane.",
	"ctwa_sidecar_store_commit_errors_total":        "Failed commits of the store.",
	"ctwa_sidecar_store_size_bytes":                 "Size of the store on disk (Badger tables and value log).",
	"ctwa_sidecar_view_lag_entries":                 "Log entries the views (sessions, events, rollups) have not applied yet.",
	"ctwa_sidecar_spool_entries":                    "Cluster mode: webhooks kept in the local spool while the NATS stream cannot be reached.",
	"ctwa_sidecar_spool_publish_errors_total":       "Cluster mode: failed attempts to publish the spool (retried each second).",
	"ctwa_sidecar_nats_connected":                   "Cluster mode: 1 while the connection to NATS is up.",
	"ctwa_sidecar_nats_publish_duration_seconds":    "Cluster mode: duration of a batch publish to JetStream, until its acknowledgement.",
	"ctwa_sidecar_nats_batch_requests":              "Cluster mode: appends (webhooks, commands) carried by one batch publish.",
	"ctwa_sidecar_nats_publish_errors_total":        "Cluster mode: failed batch publishes, by reason (unreachable: spooled; refused: JetStream answered an error).",
	"ctwa_sidecar_nats_claim_conflicts_total":       "Cluster mode: batches run again because another member claimed one of their keys first.",
	"ctwa_sidecar_nats_mirrored_sequence":           "Cluster mode: stream sequence of the last entry copied into this member's store.",
	"ctwa_sidecar_view_lag_seconds":                 "Age of the oldest log entry the views have not applied yet.",
	"ctwa_sidecar_view_items_skipped_total":         "Log items the views could not take (a corrupt entry), skipped and logged.",
	"ctwa_sidecar_view_read_timeouts_total":         "Reads that waited the most (5 s) for the views to reach earlier writes and answered from older views.",
	"ctwa_sidecar_store_sync_errors_total":          "Failed periodic fsyncs of the store.",
	"ctwa_sidecar_store_refused_total":              "Writes the store refused without trying, by reason (disk_full, no_inodes, unavailable).",
	"ctwa_sidecar_store_disk_free_bytes":            "Free space of the data directory's file system.",
	"ctwa_sidecar_store_disk_free_inodes":           "Free inodes of the data directory's file system (0: no inode limit).",
	"ctwa_sidecar_matcher_dictionary_bytes":         "Size of the keyword and phrase dictionary.",
	"ctwa_sidecar_matcher_patterns":                 "Keywords and phrases in the dictionary.",
	"ctwa_sidecar_api_requests_total":               "API requests by route pattern and status code.",
	"ctwa_sidecar_api_exports_total":                "Contacts exports by how they ended (done, client_gone, failed).",
	"ctwa_sidecar_handler_panics_total":             "Panics recovered in a handler or a streamed body, by listener and route.",
	"ctwa_sidecar_capi_events_total":                "Conversions for Meta's Conversions API by result and reason.",
	"ctwa_sidecar_capi_pending_events":              "Conversions waiting in the outbox.",
	"ctwa_sidecar_capi_oldest_pending_seconds":      "Age of the source event of the oldest conversion in the outbox.",
	"ctwa_sidecar_spend_sync_runs_total":            "Spend syncs from the Marketing API by result (ok, failed, throttled, stopped).",
	"ctwa_sidecar_spend_sync_rows_total":            "Daily per-ad delivery rows stored by spend syncs.",
	"ctwa_sidecar_ready":                            "1 when /readyz answers ready (the store takes writes), 0 otherwise; forwarding goes on either way.",
	"ctwa_sidecar_backup_failures_total":            "Online backups that failed after the answer started.",
}

// readyCheck is what /readyz of the newest API asks (a process serves one API; tests
// make several). The ready gauge lets Prometheus alert on what /readyz says.
var readyCheck atomic.Pointer[func() error]

var metricsBuf = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeMetrics writes every metric in Prometheus text, with help texts.
func writeMetrics(w io.Writer) {
	b := metricsBuf.Get().(*bytes.Buffer)
	defer metricsBuf.Put(b)
	b.Reset()
	metrics.WritePrometheus(b, true)
	out := bufio.NewWriter(w)
	for line := range bytes.Lines(b.Bytes()) {
		if fam, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			if help, ok := metricHelp[string(bytes.TrimSpace(fam))]; ok {
				out.Write(line[:len(line)-1])
				out.WriteString(" " + help + "\n")
				continue
			}
		}
		out.Write(line)
	}
	out.Flush()
}
