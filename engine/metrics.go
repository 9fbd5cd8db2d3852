package engine

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/webhook"
)

// Webhook results, by format, as counted in ctwa_sidecar_webhooks_total.
type result uint8

const (
	resultRecorded     result = iota // at least one new message or status was committed
	resultDuplicate                  // every item was seen before
	resultEmpty                      // a known format with nothing to record
	resultUndecodable                // unknown or broken payload: forwarded, not recorded
	resultStoreError                 // the commit failed: forwarded, not recorded
	resultPanic                      // a decoder panicked: forwarded, not recorded
	resultUnsigned                   // a secret is set and the signature is missing: forwarded, not recorded
	resultBadSignature               // a secret is set and the signature does not verify
	resultOverLimit                  // too many items in one webhook: forwarded, not recorded
	resultIgnored                    // only items that are not the lead talking (SPEC §3.4): delivery reports, system notices, …
	resultRejected                   // every item failed validation: forwarded, not recorded
	numResults
)

var resultNames = [numResults]string{"recorded", "duplicate", "empty", "undecodable", "store_error", "panic",
	"unsigned", "bad_signature", "over_limit", "ignored", "rejected"}

var (
	webhooks       [webhook.FormatYCloud + 1][numResults]*metrics.Counter
	eventsByType   = map[string]*metrics.Counter{}
	dedupeMessages = metrics.NewCounter(`ctwa_sidecar_dedupe_hits_total{kind="message"}`)
	dedupeStatuses = metrics.NewCounter(`ctwa_sidecar_dedupe_hits_total{kind="status"}`)
	// automatic events whose click no stored session has (yet): placed by the next refresh
	autoEventsUnmatched = metrics.NewCounter(`ctwa_sidecar_automatic_events_unmatched_total`)
)

// Items of webhooks that were rejected or ignored, by format and reason
// (ctwa_sidecar_webhook_items_total{format,result,reason}).
var (
	itemsRejected [webhook.FormatYCloud + 1]map[string]*metrics.Counter
	itemsIgnored  [webhook.FormatYCloud + 1]map[string]*metrics.Counter
)

func init() {
	for f := range itemsRejected {
		itemsRejected[f] = itemCounters(webhook.Format(f), "rejected", webhook.RejectReasons)
		itemsIgnored[f] = itemCounters(webhook.Format(f), "ignored", webhook.IgnoreReasons)
	}
	for f := range webhooks {
		for r := range webhooks[f] {
			webhooks[f][r] = metrics.NewCounter(`ctwa_sidecar_webhooks_total{format="` + webhook.Format(f).String() +
				`",result="` + resultNames[r] + `"}`)
		}
	}
	for _, t := range EventTypes {
		eventsByType[t] = metrics.NewCounter(`ctwa_sidecar_events_total{type="` + t + `"}`)
	}
}

func countWebhook(f webhook.Format, r result) { webhooks[f][r].Inc() }

func itemCounters(f webhook.Format, result string, reasons []string) map[string]*metrics.Counter {
	m := make(map[string]*metrics.Counter, len(reasons))
	for _, r := range reasons {
		m[r] = metrics.NewCounter(`ctwa_sidecar_webhook_items_total{format="` + f.String() +
			`",result="` + result + `",reason="` + r + `"}`)
	}
	return m
}
