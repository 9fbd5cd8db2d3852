// Package engine holds the product's rules: what a webhook means, who a lead is, which
// ad or campaign a conversation comes from, and what counts as engaged, converted and
// bought. It runs on the Log and Views interfaces of store.go and imports no store and
// no HTTP stack (deps_test.go checks): proxy is the HTTP edge, storage the Badger store.
//
// The path of a webhook, with the file where each step lives:
//
//  1. Decode (package webhook: decode.go and one decode_<format>.go per payload format,
//     Cloud API, On-Premises, Sinch, YCloud; decode_whatsapp.go holds the message
//     objects they share, decode_autoevents.go Meta's automatic events): bytes to
//     webhook.Items, each validated on its own (a time out of range, a missing id), so a
//     bad item is rejected and counted and the rest go on. Pure functions of the body.
//  2. Limits (recorder.go, decode and keep): too many items in a webhook, ids too long
//     or with control bytes.
//  3. Verify (signature.go): a format with a configured secret is recorded only when its
//     signature header verifies.
//  4. Log (log.go): the new items are deduplicated by claims and appended as one log
//     entry; the webhook is answered once that is durable. Off-thread events
//     (offthread.go), definition changes (definitions.go), spend rows (import.go,
//     spendsync.go) and refreshes (refresh.go) are log entries too.
//  5. Views (materialize.go): one goroutine reads the log in order and, per entry,
//     classifies each message (classify.go: keywords, replies, sources) and the placer
//     places it (session.go, rollup.go, notices.go): sessions, events, daily rollups,
//     lead indexes, the conversions outbox (conversions.go). A placement returns what it
//     decided (a session opened, the events written). The views' checkpoint commits
//     with them, so a crash resumes exactly.
//
// Reads wait until the views hold the writes before them, and return what the API shows:
// event rows and event-group counts (query.go, event_rows.go, groups.go), totals and the
// insight formulas (insights.go, metrics_calc.go), the compare-sources rows (sources.go),
// the catalogue (catalog.go), the contacts export (contacts.go, csv_cells.go). proxy
// parses a request, calls one of them and encodes the answer. The conversions sender (conversions_send.go) and the spend
// sync (spendsync.go) run on their own goroutines and talk to Meta through metaapi.
package engine
