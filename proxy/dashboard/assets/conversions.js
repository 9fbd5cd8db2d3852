// The "Conversions to Meta" panel: what the sidecar's outbox did with the conversions it
// derived (SPEC §9) — counts by status, the failures and waits in words, and the latest
// conversions. Loading is in app.js (loadConversions); this module only turns the
// activity log's rows into DOM, with text nodes only (dom.js).

import { h, fill } from './dom.js';
import * as fmt from './format.js';

/** STATUSES are the activity log's statuses, in the order the panel shows them. */
export const STATUSES = ['sent', 'pending', 'failed', 'skipped', 'expired'];

const STATUS_HINTS = {
  sent: 'Meta received them (events_received matched)',
  pending: 'in the outbox, waiting for their first try or for a retry',
  failed: 'Meta refused them; they are not retried',
  skipped: 'not sent: no click id, no conversation, no WhatsApp Business Account, or a dry run',
  expired: 'older than the 7 days Meta accepts, so never sent',
};

export const NO_CONVERSIONS_HINT =
  'No conversions sent to Meta: start the sidecar with -meta-token and -waba-id (README: Conversions to Meta)';

/** LATEST is how many of the newest conversions the table lists. */
export const LATEST = 50;

// Meta's event names as nouns, one and many.
const NOUNS = {
  LeadSubmitted: ['lead', 'leads'], QualifiedLead: ['qualified lead', 'qualified leads'],
  Purchase: ['purchase', 'purchases'], AddToCart: ['add to cart', 'adds to cart'],
  InitiateCheckout: ['checkout', 'checkouts'], ViewContent: ['content view', 'content views'],
  OrderCreated: ['order created', 'orders created'], OrderShipped: ['order shipped', 'orders shipped'],
  OrderDelivered: ['order delivered', 'orders delivered'], OrderCanceled: ['order canceled', 'orders canceled'],
  OrderReturned: ['order returned', 'orders returned'], CartAbandoned: ['abandoned cart', 'abandoned carts'],
  RatingProvided: ['rating', 'ratings'], ReviewProvided: ['review', 'reviews'],
};

/** count is "3 purchases", "1 purchase", "2 Foo events". */
export function count(n, eventName) {
  const [one, many] = NOUNS[eventName] || [`${eventName} event`, `${eventName} events`];
  return `${fmt.num(n)} ${n === 1 ? one : many}`;
}

const conversions = (n) => `${fmt.num(n)} ${n === 1 ? 'conversion' : 'conversions'}`;

/** withoutTrace drops Meta's " [fbtrace_id …]" from an error (the table keeps it). */
export const withoutTrace = (err) => (err || '').replace(/\s*\[fbtrace_id [^\]]*\]/g, '').trim();

/** metaMessage is Meta's answer in a last_error without the transport prefix and the
 * trace id: "graph API HTTP 400, code 100/2804087: Invalid parameter (Title) [fbtrace_id X]"
 * → "code 100/2804087: Invalid parameter (Title)". */
export function metaMessage(row) {
  const err = withoutTrace(row.last_error);
  const m = /(code \d+(?:\/\d+)?: .*)$/.exec(err);
  if (m) return m[1];
  const code = row.error_code ? `code ${row.error_code}${row.error_subcode ? `/${row.error_subcode}` : ''}` : '';
  return code && err ? `${code}: ${err}` : code || err || 'no message';
}

// Known refusals in words: what Meta refused, given "3 purchases".
const SUBCODES = {
  2804087: (what) => `Meta refused the click id of ${what}`,
  2804066: (what) => `Meta does not allow this event type for this dataset: ${what} refused`,
  2804116: (what) => `Meta refused ${what}: the WhatsApp Business Account id was missing`,
};

const SKIP_REASONS = {
  no_click_id: (n) => `${conversions(n)} not sent: the session has no click id (ctwa_clid) — only Click-to-WhatsApp ad clicks carry one`,
  unattributed: (n) => `${conversions(n)} not sent: the off-thread event matched no conversation, so there is no click to credit`,
  dry_run: (n) => `${conversions(n)} not sent: the sidecar runs with -capi-dry-run (recorded here, never sent)`,
  no_waba: (n) => `${conversions(n)} not sent: no webhook of this app named its WhatsApp Business Account, and -waba-id is not set`,
};

/** groupBy counts rows by key, keeping the first row of each group, biggest group first. */
function groupBy(rows, key) {
  const groups = new Map();
  for (const r of rows) {
    const k = key(r);
    const g = groups.get(k);
    if (g) g.n++;
    else groups.set(k, { n: 1, row: r });
  }
  return [...groups.values()].sort((a, b) => b.n - a.n);
}

/** explanations are the sentences for failed, waiting and skipped rows (and the count of
 * expired ones): [{kind, text}], most frequent first within each kind. */
export function explanations({ failed = [], pending = [], skipped = [], expired = 0 }) {
  const out = [];
  for (const { n, row } of groupBy(failed, (r) => `${r.error_code}/${r.error_subcode}/${r.event_name}`)) {
    const what = count(n, row.event_name);
    const words = SUBCODES[row.error_subcode];
    const text = words
      ? `${words(what)} (${metaMessage(row)})`
      : `Meta refused ${what}: ${metaMessage(row)}`;
    out.push({ kind: 'failed', text });
  }
  // Grouped by the error without Meta's trace id, which differs at every try.
  const retried = pending.filter((r) => r.attempts > 0 && r.last_error);
  for (const { n, row } of groupBy(retried, (r) => withoutTrace(r.last_error))) {
    out.push({ kind: 'pending', text: `${conversions(n)} waiting: last try failed: ${withoutTrace(row.last_error)}` });
  }
  for (const { n, row } of groupBy(skipped, (r) => r.reason || '')) {
    const words = SKIP_REASONS[row.reason];
    out.push({ kind: 'skipped', text: words ? words(n) : `${conversions(n)} not sent: ${row.reason || row.last_error || 'skipped'}` });
  }
  if (expired > 0) {
    out.push({ kind: 'expired', text: `${conversions(expired)} expired: Meta takes events of the last 7 days only, and these were older before they could be sent` });
  }
  return out;
}

/** renderConversions fills the panel. data: {counts: {status: n}, latest: [row…] newest
 * first, failed, pending, skipped: [row…], truncated: bool, elsewhere: n (conversions
 * outside the period), period: text}. */
export function renderConversions(el, data) {
  const total = STATUSES.reduce((sum, st) => sum + (data.counts[st] || 0), 0);
  if (total === 0) {
    const text = data.elsewhere > 0
      ? `No conversion in ${data.period}; ${conversions(data.elsewhere)} at other times: choose another period to see them.`
      : NO_CONVERSIONS_HINT;
    fill(el, h('p', { class: 'empty conversions-hint', id: 'conversions-hint' }, text));
    return;
  }
  const cards = h('dl', { class: 'stats conversions-counts', id: 'conversions-counts' }, STATUSES.map((st) =>
    h('div', { class: `stat conv-${st}`, 'data-status': st, title: STATUS_HINTS[st] },
      h('dt', {}, st[0].toUpperCase() + st.slice(1)), h('dd', {}, fmt.num(data.counts[st] || 0)))));
  const words = explanations({ ...data, expired: data.counts.expired || 0 });
  const list = words.length
    ? h('ul', { class: 'conversions-words', id: 'conversions-words' },
      words.map((w) => h('li', { class: `conv-word conv-word-${w.kind}`, 'data-kind': w.kind }, w.text)))
    : h('p', { class: 'summary', id: 'conversions-words' },
      data.counts.pending ? `${conversions(data.counts.pending)} waiting for their first try.` : 'Every conversion of the period reached Meta.');
  fill(el, cards, list,
    data.truncated ? h('p', { class: 'caption' }, 'Explained over the first rows of each status only; the counts above are complete.') : null,
    h('h3', {}, `Latest ${fmt.num(data.latest.length)} of ${fmt.num(total)}`),
    h('p', { class: 'caption phone-only' }, 'Swipe the table sideways for the status, attempts and last error.'),
    h('div', { class: 'table-wrap' }, latestTable(data.latest)));
}

const COLS = ['Time', 'Event', 'Source', 'Ad', 'Value', 'Status', 'Attempts', 'Last error'];

function latestTable(rows) {
  return h('table', { class: 'mini conversions-table', id: 'conversions-table' },
    h('thead', {}, h('tr', {}, COLS.map((c) => h('th', { scope: 'col', class: c === 'Value' || c === 'Attempts' ? 'num' : 'text' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-status': r.status, 'data-event-id': r.event_id },
      h('td', { class: 'text nowrap', 'data-col': 'time' }, fmt.when(r.event_time)),
      h('td', { class: 'text', 'data-col': 'event' }, r.event_name),
      h('td', { class: 'text', 'data-col': 'source' }, r.source),
      h('td', { class: 'text nowrap', 'data-col': 'ad' }, r.ad_id || '—'),
      h('td', { class: 'num', 'data-col': 'value' }, r.value ? fmt.money(r.value, r.currency) : '—'),
      h('td', { class: 'text nowrap', 'data-col': 'status' },
        h('span', { class: `badge conv-badge conv-${r.status}` }, r.status), r.reason ? h('span', { class: 'conv-reason' }, ` ${r.reason}`) : null),
      h('td', { class: 'num', 'data-col': 'attempts' }, fmt.num(r.attempts || 0)),
      h('td', { class: 'text conv-error', 'data-col': 'last_error' }, r.last_error || '')))));
}
