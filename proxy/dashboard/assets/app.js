// The Insights dashboard: campaigns, ad sets and ads as in Ads Manager, compare sources,
// follow the funnel, see ROAS and cost per lead against the previous period, choose the
// conversion event of a campaign or an ad, drill into a source, download events,
// contacts and tables, import spend or see its sync from Meta, add keywords and sources.
// Everything comes from the sidecar's JSON API.

import { h, fill, append } from './dom.js';
import * as fmt from './format.js';
import { request, download, setTokenPrompt, getToken, setToken, ApiError } from './api.js';
import { funnelChart, dailyChart, legend, worstStep } from './charts.js';
import { STATUSES, LATEST, renderConversions } from './conversions.js';
import { renderSpendSync, noSpendAnswer, syncTrouble } from './spendsync.js';
import * as camp from './campaigns.js';

const $ = (id) => document.getElementById(id);

const TYPES = {
  ad: { label: 'Ad', hint: 'Click-to-WhatsApp ad on Facebook or Instagram' },
  post: { label: 'Post', hint: 'Click-to-WhatsApp boosted post' },
  custom: { label: 'Custom', hint: 'QR code or wa.me link, recognised by its prefilled text' },
  campaign: { label: 'Campaign', hint: 'outgoing: a message your business sent' },
  organic: { label: 'Organic', hint: 'the lead wrote without a known source' },
  unattributed: { label: 'Unattributed', hint: 'purchases reported for leads with no conversation in the attribution window' },
};

const EVENT_NAMES = {
  conversation: 'Conversation started', engagement: 'Engaged (second message)', keyword: 'Keyword',
  button: 'Button', button_reply: 'Button reply', list_reply: 'List reply', link: 'Link',
  converted: 'Converted',
};
const SHORT_NAMES = { conversation: 'Started', engagement: 'Engaged' };
const EVENT_ORDER = Object.keys(EVENT_NAMES);

const MAX_EVENT_PAGES = 5; // a drill-down reads at most 5 × 1000 events
const MAX_CONVERSION_PAGES = 5; // the conversions panel explains at most 5 × 1000 rows of a status
const DAILY_CONCURRENCY = 6;
const SYNC_POLL_MS = 500; // "Sync now" reads the state this often until the run has ended
const SYNC_WAIT_MS = 30_000; // and gives up waiting after this long
const SYNC_FIRST_RUN_MS = 3000; // while an account's first run is under way, re-read this often

const PRESETS = ['7', '14', '30', '90', '6m', '12m', 'all', 'custom'];

const state = {
  knownApps: [], // apps with recorded traffic, from GET /v1/clients/{client}/apps
  knownAppsRead: false, // whether knownApps is the sidecar's answer (not a failure)
  client: 'default',
  app: '',
  preset: '30',
  from: '',
  to: '',
  compare: false, // show the previous period of the same length beside each figure
  prevFrom: '',
  prevTo: '',
  rows: [],
  prevRows: null, // the sources of the previous period, by key; null without comparison
  funnel: null, // GET …/funnel of the period: [{type, id, sessions, engaged, converted, purchases, revenue}]
  campaigns: null, // the campaign → ad set → ad hierarchy of the period (campaigns.js); null while loading
  prevCampaigns: null, // Map key → metrics of the previous period
  converted: [], // GET …/converted_events
  expanded: new Set(), // campaign keys shown with their ad sets and ads
  collapsed: new Set(), // ad set keys whose ads are hidden
  loadedKey: '', // client/app of the figures shown: notes of another app are cleared
  selected: '',
  sort: { col: '', dir: -1 },
  daily: null, // {size, buckets: [{from, to, rows}]}
  span: null, // {key, promise} of activitySpan
  syncNote: null, // {key, ok, text}: the outcome of the last "Sync now", for the app of key
  spendSync: null, // GET …/ads/sync: [{ad_account_id, last_success, rows, last_error, stopped, …}], null when unreadable
  seq: 0,
};

// ---------------------------------------------------------------- storage and URL

const saved = {
  get(key, def) {
    try { return localStorage.getItem(`ctwa-sidecar.${key}`) ?? def; } catch { return def; }
  },
  set(key, value) {
    try { localStorage.setItem(`ctwa-sidecar.${key}`, value); } catch { /* private mode */ }
  },
};

function recentApps() {
  try { return JSON.parse(saved.get('apps', '[]')).filter((a) => typeof a === 'string'); } catch { return []; }
}

function rememberApp(app) {
  saved.set('apps', JSON.stringify([app, ...recentApps().filter((a) => a !== app)].slice(0, 8)));
  saved.set('app', app);
  renderRecentApps();
}

function readInitialState() {
  const q = new URLSearchParams(location.search);
  state.client = q.get('client') || saved.get('client', 'default');
  state.app = q.get('app') ?? saved.get('app', '');
  state.preset = q.get('range') || saved.get('preset', '30');
  if (!PRESETS.includes(state.preset)) state.preset = '30';
  state.compare = (q.get('compare') ?? saved.get('compare', '0')) === '1';
  if (fmt.isDay(q.get('from') || '') && fmt.isDay(q.get('to') || '')) {
    state.preset = 'custom';
    [state.from, state.to] = [q.get('from'), q.get('to')];
  } else if (state.preset === 'custom') {
    [state.from, state.to] = [saved.get('from', ''), saved.get('to', '')];
    if (!fmt.isDay(state.from) || !fmt.isDay(state.to)) state.preset = '30';
  }
  state.selected = q.get('source') || '';
  applyPreset();
  writeControls();
}

function writeURL() {
  const q = new URLSearchParams();
  if (state.client !== 'default') q.set('client', state.client);
  if (state.app) q.set('app', state.app);
  if (state.preset === 'custom') {
    q.set('from', state.from);
    q.set('to', state.to);
  } else {
    q.set('range', state.preset);
  }
  if (state.compare && state.from) q.set('compare', '1');
  if (state.selected) q.set('source', state.selected);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

// ---------------------------------------------------------------- controls

/** applyPreset sets from/to of a preset: the last n days (or months: "6m") up to today
 * (the browser's date). */
function applyPreset() {
  if (state.preset === 'custom') return;
  if (state.preset === 'all') {
    state.from = state.to = '';
    return;
  }
  state.to = fmt.today();
  state.from = state.preset.endsWith('m')
    ? fmt.addDays(fmt.addMonths(state.to, -Number(state.preset.slice(0, -1))), 1)
    : fmt.addDays(state.to, 1 - Number(state.preset));
}

/** applyComparison sets the previous period: as many days, ending the day before from. */
function applyComparison() {
  if (!state.compare || !state.from) {
    state.prevFrom = state.prevTo = '';
    return;
  }
  state.prevTo = fmt.addDays(state.from, -1);
  state.prevFrom = fmt.addDays(state.prevTo, 1 - fmt.dayCount(state.from, state.to));
}

/** comparing is whether the figures of the previous period are shown. */
const comparing = () => Boolean(state.compare && state.from && state.prevFrom);

function writeControls() {
  $('client').value = state.client;
  $('app').value = state.app;
  $('preset').value = state.preset;
  $('from').value = state.from;
  $('to').value = state.to;
  $('from').disabled = $('to').disabled = false;
  writeCompare();
}

/** writeCompare shows the comparison box: unavailable for all time, and the preset chips. */
function writeCompare() {
  const all = $('preset').value === 'all';
  $('compare').checked = state.compare && !all;
  $('compare').disabled = all;
  $('compare').closest('label').title = all ? '"All time" has no previous period'
    : 'Show each figure beside the one of the period of the same length just before';
  for (const b of document.querySelectorAll('#preset-chips [data-preset]')) {
    b.setAttribute('aria-pressed', b.dataset.preset === $('preset').value ? 'true' : 'false');
  }
}

function readControls() {
  state.client = $('client').value.trim() || 'default';
  state.app = $('app').value.trim();
  state.preset = $('preset').value;
  if (state.preset === 'custom') {
    state.from = $('from').value;
    state.to = $('to').value;
  } else {
    applyPreset();
  }
  if (!$('compare').disabled) state.compare = $('compare').checked;
  saved.set('client', state.client);
  saved.set('preset', state.preset);
  saved.set('compare', state.compare ? '1' : '0');
  if (state.preset === 'custom') {
    saved.set('from', state.from);
    saved.set('to', state.to);
  }
}

function periodText() {
  if (!state.from) return 'all recorded time';
  return spanText(state.from, state.to);
}

const spanText = (from, to) => (from === to ? fmt.dayLong(from) : `${fmt.dayLong(from)} – ${fmt.dayLong(to)}`);

/** prevText is the previous period in words, for "vs …" ("" without comparison). */
const prevText = () => (state.prevFrom ? spanText(state.prevFrom, state.prevTo) : '');

// ---------------------------------------------------------------- API paths

function appPath(rest, params) {
  const base = `/v1/clients/${encodeURIComponent(state.client)}/apps/${encodeURIComponent(state.app)}${rest}`;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const qs = q.toString();
  return qs ? `${base}?${qs}` : base;
}

/** rangeParams are date_from/date_to of the period; none for all time. */
const rangeParams = () => (state.from ? { date_from: state.from, date_to: state.to } : {});

/** prevParams are date_from/date_to of the previous period. */
const prevParams = () => ({ date_from: state.prevFrom, date_to: state.prevTo });

/** activitySpan finds the first and last day with events in the app: {first, last}, or
 * null when nothing is recorded. Asked once per client, app and press of Show. */
function activitySpan() {
  const key = `${state.client}/${state.app}`;
  if (state.span && state.span.key === key) return state.span.promise;
  const wide = { date_from: '2000-01-01', date_to: '2100-12-31', limit: 1 };
  const promise = (async () => {
    const first = await request(appPath('/events', wide));
    if (!first.total_count) return null;
    const last = first.total_count > 1 ? await request(appPath('/events', { ...wide, offset: first.total_count - 1 })) : first;
    return { first: first.data[0].date.slice(0, 10), last: last.data[0].date.slice(0, 10) };
  })();
  state.span = { key, promise };
  promise.catch(() => { if (state.span && state.span.promise === promise) state.span = null; });
  return promise;
}

/** concreteDates are the period's dates, or for all time the span of recorded activity. */
async function concreteDates() {
  if (state.from) return { from: state.from, to: state.to };
  const span = await activitySpan();
  return span ? { from: span.first, to: span.last } : null;
}

// ---------------------------------------------------------------- messages

function setStatus(text) {
  $('status').textContent = text;
}

function showBanner(text, detail) {
  const b = $('banner');
  fill(b, h('strong', {}, text), detail ? ` ${detail}` : '',
    h('button', { type: 'button', class: 'quiet', onclick: () => { b.hidden = true; } }, 'Dismiss'));
  b.hidden = false;
}

function hideBanner() {
  $('banner').hidden = true;
}

/** explain turns an error into a sentence for the reader: the API's own message. */
function explain(err) {
  if (err instanceof ApiError && err.code === 'unknown_client') return `${err.message}. Change the client id above.`;
  return String(err && err.message ? err.message : err);
}

/** result writes the outcome of an action: ok true (done), false (failed) or null (under way). */
function result(el, ok, text) {
  el.textContent = text;
  el.className = `result ${ok === null ? 'pending' : ok ? 'ok' : 'error'}`;
}

// ---------------------------------------------------------------- loading

async function load() {
  const seq = ++state.seq;
  readControls();
  hideBanner();
  if (state.preset === 'custom' && (!fmt.isDay(state.from) || !fmt.isDay(state.to))) {
    showBanner('Choose both dates.', 'A custom period needs a From and a To date.');
    return;
  }
  if (state.from && state.from > state.to) {
    showBanner('The period ends before it starts.', `From ${fmt.dayLong(state.from)} is after To ${fmt.dayLong(state.to)}.`);
    return;
  }
  applyComparison();
  writeCompare();
  writeURL();
  const key = `${state.client}/${state.app}`;
  if (key !== state.loadedKey) { // the notes ("…csv downloaded") and campaigns were of another app
    clearNotes();
    state.campaigns = null;
    state.expanded.clear();
    state.collapsed.clear();
  }
  state.loadedKey = key;
  $('tools').hidden = !state.app;
  $('unknown-app').hidden = true;
  if (!state.app) {
    $('welcome').hidden = false;
    $('dashboard').hidden = true;
    setStatus('');
    loadKnownApps();
    return;
  }
  $('welcome').hidden = true;
  setStatus(`Loading ${periodText()}…`);
  let sources;
  let names;
  let spenders;
  let syncs;
  let apps;
  let funnel;
  let prev = null;
  try {
    [sources, names, spenders, syncs, apps, funnel, prev] = await Promise.all([
      request(appPath('/sources', rangeParams())), referralNames(), adsWithSpend(rangeParams()), spendSyncState(), knownApps(),
      request(appPath('/funnel', rangeParams())).then((r) => r.data).catch((err) => {
        if (err instanceof ApiError && err.status === 401) throw err;
        return null; // an older sidecar: the funnel falls back to the sources report
      }),
      comparing() ? Promise.all([request(appPath('/sources', prevParams())), adsWithSpend(prevParams())]) : null]);
  } catch (err) {
    if (seq !== state.seq) return;
    setStatus('');
    $('dashboard').hidden = true;
    state.spendSync = null;
    renderSync(seq);
    showBanner('Could not load the sources.', explain(err));
    return;
  }
  if (seq !== state.seq) return;
  state.spendSync = syncs;
  renderSync(seq);
  if (apps && !apps.includes(state.app)) {
    // The sources report answers the unattributed row of off-thread events that named no
    // app for any app id: for an app with no traffic that is no data of its own.
    renderUnknownApp(apps);
    return;
  }
  rememberApp(state.app);
  state.rows = sourceRows(sources, names, spenders);
  state.prevRows = prev ? new Map(sourceRows(prev[0], names, prev[1]).map((r) => [r.key, r])) : null;
  state.funnel = funnel;
  if (state.selected && !state.rows.some((r) => r.key === state.selected)) state.selected = '';
  state.daily = null;
  $('dashboard').hidden = false;
  setStatus(`${periodText()} · app ${state.app}${comparing() ? ` · compared with ${prevText()}` : ''}`);
  await renderAll();
  loadCampaigns(seq);
  loadConversions(seq);
  if (hasActivity(state.rows)) {
    loadDaily(seq);
  } else {
    state.daily = { size: 1, buckets: [] };
    renderDaily();
  }
}

/** sourceRows are the rows of the sources table from the sources report, named by
 * referral headlines; an ad that only spent money in the period is added from the ads
 * report (spenders), so that its spend is not lost. */
function sourceRows(sources, names, spenders) {
  const rows = sources.data.map((r) => ({
    ...r,
    key: `${r.type}:${r.id}`,
    name: (r.type === 'ad' || r.type === 'post') && names.has(r.id) && r.name === `${r.type} ${r.id}` ? names.get(r.id) : r.name,
  }));
  for (const ad of spenders) {
    if (!rows.some((r) => r.key === ad.key || r.key === `post:${ad.id}`)) rows.push(ad);
  }
  return rows;
}

/** clearNotes empties the outcome notes of the tools and tables: they were of another app. */
function clearNotes() {
  for (const id of ['download-result', 'campaigns-result', 'sources-result', 'import-result', 'keyword-result', 'source-result']) {
    const el = $(id);
    if (el) result(el, true, '');
  }
}

/** renderUnknownApp says that nothing is recorded for the app, and offers the apps that
 * have recorded traffic. */
function renderUnknownApp(apps) {
  setStatus('');
  $('dashboard').hidden = true;
  $('tools').hidden = true; // no download of another app's rows, no definition for a mistyped id
  $('unknown-app').hidden = false;
  const open = (a) => h('button', { type: 'button', 'data-app': a, onclick: () => { $('app').value = a; state.span = null; load(); } }, a);
  fill($('unknown-body'),
    h('p', { id: 'unknown-message' }, h('strong', {}, `Nothing has been recorded for app ${state.app}`),
      ' — no conversation and no purchase. Check that this is the phone number id (metadata.phone_number_id) ',
      'of the WhatsApp number, and that its webhooks reach the sidecar.'),
    apps.length
      ? [h('p', {}, `The sidecar has recorded traffic for ${apps.length === 1 ? 'this app' : `these ${apps.length} apps`}:`),
        h('div', { class: 'buttons', id: 'unknown-apps' }, apps.map(open))]
      : h('p', {}, 'The sidecar has recorded no traffic for any app yet.'));
}

/** importedAccounts lists the ad accounts known from imports: every ad account of every
 * Facebook account. */
async function importedAccounts() {
  const client = `/v1/clients/${encodeURIComponent(state.client)}`;
  const fbs = await request(`${client}/facebook-accounts`);
  return (await Promise.all(fbs.map((fb) => request(`${client}/facebook-accounts/${encodeURIComponent(fb.id)}`)))).flat().map((a) => a.id);
}

/** adsWithSpend lists, as source rows, the imported ads with spend in the range of
 * params: every ad account known from imports, page by page. */
async function adsWithSpend(params) {
  try {
    const accounts = await importedAccounts();
    const rows = [];
    for (const acct of accounts) {
      for (let offset = 0; ; offset += 100) {
        const res = await request(appPath(`/ads/account/${encodeURIComponent(acct)}`, { ...params, limit: 100, offset }));
        for (const ad of res.data) {
          const i = ad.insight;
          const sale = ad.sale_insight;
          if (!(i.spend > 0)) continue;
          rows.push({
            type: 'ad', id: ad.id, key: `ad:${ad.id}`, name: ad.name, direction: 'incoming',
            sessions: i.sessions, unique_users: i.unique_users, engaged: i.engaged, converted: i.converted,
            offthread_count: sale.count, revenue: sale.revenue, currency: i.currency || sale.currency,
            other_currencies: sale.other_currencies, spend: i.spend, roas: sale.roas, cost_per_lead: i.cost_per_unique_user,
          });
        }
        if (offset + res.data.length >= res.total_count || !res.data.length) break;
      }
    }
    return rows;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return []; // the sources report alone still stands
  }
}

/** spendSyncState reads the app's spend sync from Meta (GET …/ads/sync): one entry per ad
 * account synced into it, [] when none, null when it could not be read. */
async function spendSyncState() {
  try {
    return (await request(appPath('/ads/sync'))).data || [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return null; // the CSV import still stands
  }
}

/** referralNames maps ads that only referrals revealed to their headline. */
async function referralNames() {
  try {
    const res = await request(appPath('/ads/account/unassigned', { limit: 100 }));
    return new Map(res.data.filter((a) => a.name).map((a) => [a.id, a.name]));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return new Map();
  }
}

async function renderAll() {
  renderKPIs();
  renderSources();
  renderFunnel();
  renderAnswer();
  renderDaily();
  renderDrill();
}

const hasActivity = (rows) => rows.some((r) => r.sessions > 0 || r.offthread_count > 0);

// ---------------------------------------------------------------- totals

function sumRows(rows) {
  const t = {
    sessions: 0, unique_users: 0, engaged: 0, converted: 0, offthread_count: 0,
    revenue: new Map(), spend: new Map(), paidRevenue: new Map(),
  };
  const add = (m, cur, v) => { if (v) m.set(cur, (m.get(cur) || 0) + v); };
  for (const r of rows) {
    for (const k of ['sessions', 'unique_users', 'engaged', 'converted', 'offthread_count']) t[k] += r[k];
    add(t.revenue, r.currency, r.revenue);
    for (const o of r.other_currencies || []) add(t.revenue, o.currency, o.revenue);
    add(t.spend, r.currency, r.spend);
    if (r.spend > 0) add(t.paidRevenue, r.currency, r.revenue);
  }
  return t;
}

/** mainCurrency is the currency with the most money in rows (revenue or spend). */
function mainCurrency(rows) {
  const t = sumRows(rows);
  let best = '';
  let most = -1;
  for (const m of [t.spend, t.revenue]) {
    for (const [c, v] of m) if (c && v > most) [best, most] = [c, v];
  }
  return best;
}

/** paidROAS is revenue ÷ spend over the sources with spend, when all are in one currency. */
function paidROAS(t) {
  if (t.spend.size !== 1) return null;
  const [[cur, spend]] = [...t.spend];
  return spend > 0 ? { roas: (t.paidRevenue.get(cur) || 0) / spend, currency: cur } : null;
}

// ---------------------------------------------------------------- KPIs and the answer

function renderKPIs() {
  const t = sumRows(state.rows);
  const roas = paidROAS(t);
  const p = comparing() && state.prevRows ? sumRows([...state.prevRows.values()]) : null;
  const proas = p ? paidROAS(p) : null;
  const cpl = costPerLead(state.rows);
  const pcpl = p ? costPerLead([...state.prevRows.values()]) : null;
  // The change of a card: of the one currency's amount when both periods have one.
  const one = (m) => (m.size === 1 ? [...m.values()][0] : m.size === 0 ? 0 : null);
  const card = (id, label, value, note, title, cur, prev, shown) => h('div', { class: 'kpi', id: `kpi-${id}`, title },
    h('span', { class: 'kpi-label' }, label), h('span', { class: 'kpi-value' }, value), note ? h('span', { class: 'kpi-note' }, note) : null,
    p ? kpiDelta(id, cur, prev, shown) : null);
  const moneyText = (m) => fmt.moneyList(m) ?? '—';
  fill($('kpis'),
    card('sessions', 'Sessions', fmt.num(t.sessions), periodText(), 'conversations started in the period', t.sessions, p?.sessions, fmt.num(p?.sessions ?? 0)),
    card('engaged', 'Engaged', fmt.num(t.engaged), `${fmt.share(t.engaged, t.sessions)} of sessions`, null, t.engaged, p?.engaged, fmt.num(p?.engaged ?? 0)),
    card('converted', 'Converted', fmt.num(t.converted), `${fmt.share(t.converted, t.sessions)} of sessions`, null, t.converted, p?.converted, fmt.num(p?.converted ?? 0)),
    card('purchases', 'Purchases', fmt.num(t.offthread_count), 'off-thread events', 'purchases and other events your shop reported, attributed to a conversation',
      t.offthread_count, p?.offthread_count, fmt.num(p?.offthread_count ?? 0)),
    card('revenue', 'Revenue', moneyText(t.revenue), 'from off-thread events', null, one(t.revenue), p ? one(p.revenue) : null, p ? moneyText(p.revenue) : ''),
    card('spend', 'Ad spend', moneyText(t.spend), spendNote(t), null, one(t.spend), p ? one(p.spend) : null, p ? moneyText(p.spend) : ''),
    card('roas', 'ROAS of ads', roas ? fmt.ratio(roas.roas) : '—',
      roas ? `${fmt.money(roas.roas, roas.currency)} back per ${fmt.unit(roas.currency)}` : syncing() ? 'needs spend' : 'needs imported spend',
      'revenue ÷ spend over the sources with spend', roas ? roas.roas : null, proas ? proas.roas : null, proas ? fmt.ratio(proas.roas) : '—'),
    card('cost-per-lead', 'Cost per lead', cpl ? fmt.money(cpl.value, cpl.currency) : '—', 'ad spend ÷ unique users of the ads',
      'spend ÷ unique users, over the sources with spend', cpl ? cpl.value : null, pcpl ? pcpl.value : null, pcpl ? fmt.money(pcpl.value, pcpl.currency) : '—'));
}

/** costPerLead is spend ÷ unique users over the sources with spend, in one currency. */
function costPerLead(rows) {
  const paid = rows.filter((r) => r.spend > 0);
  const currencies = new Set(paid.map((r) => r.currency));
  const users = paid.reduce((n, r) => n + r.unique_users, 0);
  if (currencies.size !== 1 || users === 0) return null;
  return { value: paid.reduce((n, r) => n + r.spend, 0) / users, currency: [...currencies][0] };
}

/** kpiDelta is a card's change against the previous period: "▲ +12% vs 41", the
 * previous figure last; a fall of cost per lead is good news, of spend neither. */
function kpiDelta(id, cur, prev, shown) {
  const title = `previous period, ${prevText()}: ${shown || '—'}`;
  const d = camp.change(cur ?? null, prev ?? null);
  if (!d) return h('span', { class: 'kpi-delta delta-flat', 'data-delta': '', title }, `vs ${shown || '—'}`);
  const mood = d.dir === 0 || id === 'spend' ? 'flat' : (d.dir > 0) !== (id === 'cost-per-lead') ? 'up' : 'down';
  const arrow = d.dir > 0 ? '▲' : d.dir < 0 ? '▼' : '';
  return h('span', { class: `kpi-delta delta-${mood}`, 'data-delta': d.text, title }, `${arrow ? `${arrow} ` : ''}${d.text} vs ${shown}`);
}

/** syncing is whether ad accounts sync their spend from Meta into the app. */
const syncing = () => Boolean(state.spendSync && state.spendSync.length);

function spendNote(t) {
  if (!syncing()) return t.spend.size ? 'imported from Ads Manager' : 'none imported';
  return t.spend.size ? 'synced from Meta or imported' : 'none synced for the period';
}

/** funnelOf is the funnel of a source row, or without one of the Click-to-WhatsApp ads
 * (the sessions a conversion event applies to): the sessions of the period and what
 * they led to — their own purchases, also after the period (GET …/funnel). Without that
 * answer (an older sidecar) it falls back to the sources report. */
function funnelOf(row) {
  const canConvert = !row || row.type === 'ad';
  if (!state.funnel) {
    const t = row || sumRows(state.rows.filter((r) => r.type === 'ad'));
    return { sessions: t.sessions, engaged: t.engaged, converted: t.converted, purchases: t.offthread_count, canConvert };
  }
  const f = { sessions: 0, engaged: 0, converted: 0, purchases: 0, revenue: new Map(), canConvert };
  for (const x of state.funnel) {
    if (row ? `${x.type}:${x.id}` !== row.key : x.type !== 'ad') continue;
    f.sessions += x.sessions;
    f.engaged += x.engaged;
    f.converted += x.converted;
    f.purchases += x.purchases;
    for (const m of x.revenue || []) f.revenue.set(m.currency, (f.revenue.get(m.currency) || 0) + m.revenue);
  }
  return f;
}

/** stagesOf describes a funnel (funnelOf) as stages; a source no conversion event
 * applies to has no converted stage. */
function stagesOf(f) {
  return [
    { label: 'Sessions', value: f.sessions, hint: 'conversations started' },
    { label: 'Engaged', value: f.engaged, hint: 'the lead wrote a second message' },
    f.canConvert ? { label: 'Converted', value: f.converted, hint: 'the chat reached the conversion event of the ad\'s campaign' } : null,
    { label: 'Purchases', value: f.purchases, hint: 'off-thread events your shop reported for these sessions', color: 3 },
  ].filter(Boolean);
}

const KIND_WORDS = {
  post: 'boosted-post sessions', custom: 'QR-code and wa.me-link sessions', campaign: 'sessions of your outgoing campaigns',
  organic: 'organic sessions', ad: 'ad sessions',
};

/** apartText says which purchases the funnel of the ads leaves out, and why; for a
 * selected source no conversion event applies to, why it has no converted step. */
function apartText(row) {
  if (row) {
    if (row.type === 'ad') return '';
    if (row.type === 'unattributed') return 'Unattributed purchases matched no conversation: they belong to no funnel.';
    return `No conversion event applies to ${KIND_WORDS[row.type] || 'these sessions'}: conversion events are set per ad or ad campaign, so this funnel has no converted step.`;
  }
  const parts = [];
  const money = (m) => (m && fmt.moneyList(m) ? ` (${fmt.moneyList(m)})` : '');
  const byKind = new Map();
  for (const x of state.funnel || []) {
    if (x.type === 'ad' || !x.purchases) continue;
    const k = byKind.get(x.type) || { n: 0, revenue: new Map() };
    k.n += x.purchases;
    for (const m of x.revenue || []) k.revenue.set(m.currency, (k.revenue.get(m.currency) || 0) + m.revenue);
    byKind.set(x.type, k);
  }
  for (const [type, k] of byKind) parts.push(`${fmt.num(k.n)} purchase${k.n === 1 ? '' : 's'}${money(k.revenue)} of ${KIND_WORDS[type] || `${type} sessions`}`);
  const un = state.rows.find((r) => r.type === 'unattributed');
  const words = [];
  // Purchases of the period that the sources report credits to ads, minus those of the
  // funnel's own sessions: purchases of ad sessions that started before the period.
  const adRows = (state.funnel || []).filter((x) => x.type === 'ad');
  const older = adRows.every((x) => typeof x.purchases_in_range === 'number')
    ? state.rows.filter((r) => r.type === 'ad').reduce((n, r) => n + r.offthread_count, 0) - adRows.reduce((n, x) => n + x.purchases_in_range, 0)
    : 0;
  if (parts.length) {
    words.push(`Not in this funnel: ${parts.join(', ')} — these leads came without an ad, so no conversion event applies to them`);
  }
  if (un && un.offthread_count) {
    const m = new Map([[un.currency, un.revenue], ...(un.other_currencies || []).map((o) => [o.currency, o.revenue])]);
    words.push(`${parts.length ? 'and ' : 'Not in this funnel: '}${fmt.num(un.offthread_count)} unattributed purchase${un.offthread_count === 1 ? '' : 's'}${money(m)}, which matched no conversation`);
  }
  if (older > 0 && state.from) {
    words.push(`${words.length ? 'and ' : 'Not in this funnel: '}${fmt.num(older)} purchase${older === 1 ? '' : 's'} of the period by leads of ad sessions that started before it`);
  }
  return words.length ? `${words.join('; ')}. They count in the cards and the sources table.` : '';
}

/** dropText says in words how the leads of stages go through the funnel and where
 * most of them are lost. */
function dropText(stages) {
  if (stages[0].value === 0) return 'No sessions, so no funnel.';
  const chain = stages.map((st, i) => `${fmt.num(st.value)} ${i ? st.label.toLowerCase() : 'sessions'}`).join(' → ');
  const worst = worstStep(stages);
  if (worst < 0) return `${chain}: no stage loses leads.`;
  const a = stages[worst];
  const b = stages[worst + 1];
  return `${chain}. Most leads drop off between ${a.label.toLowerCase()} and ${b.label.toLowerCase()}: ` +
    `${fmt.num(a.value - b.value)} of ${fmt.num(a.value)} (${fmt.share(a.value - b.value, a.value)}) go no further.`;
}

function renderAnswer() {
  const body = $('answer-body');
  if (!hasActivity(state.rows)) {
    fill(body, h('p', {}, `Nothing to compare for ${periodText()}: no conversation started and no purchase was reported.`));
    return;
  }
  const paid = state.rows.filter((r) => r.spend > 0);
  const items = [];
  const tools = () => h('a', { href: '#tools' }, 'Downloads and settings');
  if (!paid.length && syncing()) {
    items.push(h('p', { id: 'answer-spend' }, noSpendAnswer(state.spendSync, tools)));
  } else if (!paid.length) {
    items.push(h('p', { id: 'answer-spend' }, 'No ad spend is recorded for this period, so there is no return on ad spend or cost per lead yet. ',
      'Import the daily spend report of Meta Ads Manager under ', tools(), '.'));
  } else {
    const best = [...paid].sort((a, b) => b.roas - a.roas || b.revenue - a.revenue)[0];
    const worstAd = [...paid].sort((a, b) => a.roas - b.roas || b.spend - a.spend)[0];
    const link = (r) => h('button', { type: 'button', class: 'link', 'data-select': r.key }, r.name);
    if (best.roas > 0) {
      items.push(h('p', { class: 'answer-best' }, 'Most revenue per ', fmt.unit(best.currency), ' spent: ', link(best), ` (${TYPES[best.type]?.label ?? best.type}) — `,
        h('strong', {}, `ROAS ${fmt.ratio(best.roas)}`), `: ${fmt.money(best.revenue, best.currency)} revenue on ${fmt.money(best.spend, best.currency)} spend, `,
        best.unique_users > 0 ? `${fmt.money(best.cost_per_lead, best.currency)} per lead.` : 'no new lead in the period.'));
      items.push(h('p', {}, `Its funnel: ${dropText(stagesOf(funnelOf(best)))}`));
    } else {
      items.push(h('p', {}, `None of the ${paid.length} sources with spend brought revenue in this period.`));
    }
    if (paid.length > 1 && worstAd.key !== best.key) {
      items.push(h('p', {}, 'Lowest return: ', link(worstAd), ` — ROAS ${fmt.ratio(worstAd.roas)} on ${fmt.money(worstAd.spend, worstAd.currency)} spend.`));
    }
    const trouble = syncing() ? syncTrouble(state.spendSync, tools) : null;
    if (trouble) items.push(h('p', { class: 'error', id: 'answer-spend' }, trouble));
  }
  fill(body, items);
}

// ---------------------------------------------------------------- campaigns

/** adAccounts lists the ad accounts of the app's campaigns: those known from imports and
 * those the spend sync fills. */
async function adAccounts() {
  const ids = new Set(await importedAccounts());
  for (const a of state.spendSync || []) ids.add(a.ad_account_id);
  return [...ids];
}

/** loadCampaigns fills the campaigns panel: the hierarchy of the period (and of the
 * previous one when comparing) and the conversion events. */
async function loadCampaigns(seq) {
  const el = $('campaigns');
  if (!state.campaigns) fill(el, h('p', { class: 'loading' }, 'Loading the campaigns…'));
  try {
    const accounts = await adAccounts();
    const get = (path) => request(path);
    const [campaigns, prev, converted] = await Promise.all([
      camp.loadHierarchy(get, appPath, accounts, rangeParams()),
      comparing() ? camp.loadHierarchy(get, appPath, accounts, prevParams()) : null,
      request(appPath('/converted_events')).then((r) => r.data || []).catch((err) => {
        if (err instanceof ApiError && err.status === 401) throw err;
        return [];
      })]);
    if (seq !== state.seq) return;
    state.campaigns = campaigns;
    state.prevCampaigns = prev ? new Map(camp.rowsOf(prev).map((r) => [camp.keyOf(r), r.m])) : null;
    state.converted = converted;
    renderCampaignTable();
  } catch (err) {
    if (seq !== state.seq) return;
    state.campaigns = [];
    fill(el, h('p', { class: 'error' }, `Could not load the campaigns: ${explain(err)}`));
  }
}

function renderCampaignTable() {
  const el = $('campaigns');
  const empty = $('campaigns-empty');
  const list = state.campaigns || [];
  $('campaigns-csv').disabled = $('campaigns-expand').disabled = !list.length;
  if (!list.length) {
    fill(el);
    el.hidden = true;
    empty.hidden = false;
    fill(empty, h('p', {}, 'No Meta campaign is known for this app yet. Import the daily spend report of Ads Manager under ',
      h('a', { href: '#tools' }, 'Downloads and settings'), ', or let the sidecar sync it (-spend-sync): the campaigns, ad sets and ads it names are listed here.'));
    return;
  }
  el.hidden = false;
  empty.hidden = true;
  $('campaigns-expand').textContent = list.every((c) => state.expanded.has(camp.keyOf(c))) ? 'Collapse all' : 'Expand all';
  camp.renderCampaigns(el, {
    campaigns: list, prev: comparing() ? state.prevCampaigns : null, prevText: `previous period ${prevText()}`,
    expanded: state.expanded, collapsed: state.collapsed, converted: state.converted,
    onToggle: (key) => {
      const set = key.startsWith('campaign:') ? state.expanded : state.collapsed;
      if (set.has(key)) set.delete(key);
      else set.add(key);
      renderCampaignTable();
    },
    onChoose: chooseConversion,
  });
}

function toggleAllCampaigns() {
  const list = state.campaigns || [];
  const all = list.every((c) => state.expanded.has(camp.keyOf(c)));
  for (const c of list) {
    if (all) state.expanded.delete(camp.keyOf(c));
    else state.expanded.add(camp.keyOf(c));
  }
  state.collapsed.clear();
  renderCampaignTable();
}

/** chooseConversion lets the reader choose the conversion event of a campaign or an ad
 * (row r, whose event is def), stores it, recounts the app's history with it (a
 * refresh) and shows the new figures. */
async function chooseConversion(r, def) {
  const out = $('campaigns-result');
  const scope = r.level === 'campaign' ? { campaign_id: r.id } : { ad_id: r.id };
  const what = r.level === 'campaign' ? `campaign “${r.name}”` : `ad “${r.name}”`;
  let choices = [];
  try {
    choices = (await request(appPath('/converted_events/choices', scope))).data || [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    /* the typed keyword and action still work */
  }
  const picked = await camp.chooseEvent(r, def, choices);
  if (!picked) return;
  const seq = state.seq;
  result(out, null, `Saving the conversion event of ${what} and recounting its past conversations…`);
  try {
    if (picked.remove) {
      await request(appPath('/converted_events', scope), { method: 'DELETE' });
    } else {
      await request(appPath('/converted_events'), { method: 'POST', body: { ...scope, type: picked.type, type_id: picked.type_id || undefined, type_value: picked.type_value } });
    }
    const res = await request(appPath(r.level === 'campaign' ? `/campaigns/${encodeURIComponent(r.id)}/refresh` : `/ads/${encodeURIComponent(r.id)}/refresh`), { method: 'POST' });
    const n = res.rebuilt || {};
    result(out, true, picked.remove
      ? `${what[0].toUpperCase()}${what.slice(1)} has no conversion event now; its past conversations were recounted (${fmt.num(n.messages ?? 0)} messages).`
      : `Converted now counts ${camp.eventText(picked)} for ${what}; its past conversations were recounted (${fmt.num(n.messages ?? 0)} messages).`);
  } catch (err) {
    result(out, false, `Not saved: ${explain(err)}`);
    return;
  }
  if (seq !== state.seq) return;
  state.span = null;
  state.loadedKey = `${state.client}/${state.app}`; // keep the note just written
  load();
}

function tableFile(what) {
  return `${what}-${state.app}-${fileStem()}.csv`;
}

function downloadCampaigns() {
  const name = tableFile('campaigns');
  const size = camp.saveText(camp.campaignsCSV(state.campaigns || [], state.converted, comparing() ? state.prevCampaigns : null), name);
  result($('campaigns-result'), true, `${name} downloaded (${kb(size)}): every campaign, ad set and ad.`);
}

function downloadSources() {
  const name = tableFile('sources');
  const size = camp.saveText(camp.sourcesCSV(sortedRows(), comparing() ? state.prevRows : null), name);
  result($('sources-result'), true, `${name} downloaded (${kb(size)}).`);
}

// ---------------------------------------------------------------- sources table

const COLUMNS = [
  { col: 'name', label: 'Source', text: true, sort: (r) => r.name.toLowerCase() },
  { col: 'sessions', label: 'Sessions', title: 'conversations the source started' },
  { col: 'unique_users', label: 'Unique users', title: 'distinct leads among the sessions' },
  { col: 'engaged', label: 'Engaged', title: 'sessions where the lead wrote a second message' },
  { col: 'converted', label: 'Converted', title: 'sessions that reached a converted event' },
  { col: 'revenue', label: 'Revenue', title: 'off-thread revenue attributed to the sessions' },
  { col: 'spend', label: 'Spend', title: 'ad spend imported from Ads Manager', sort: (r) => (r.spend > 0 ? r.spend : null) },
  { col: 'roas', label: 'ROAS', title: 'return on ad spend: revenue ÷ spend', sort: (r) => (r.spend > 0 ? r.roas : null) },
  { col: 'cost_per_lead', label: 'Cost per lead', title: 'spend ÷ unique users', sort: (r) => (r.spend > 0 ? r.cost_per_lead : null) },
];

function sortedRows() {
  const { col, dir } = state.sort;
  if (!col) return state.rows;
  const c = COLUMNS.find((x) => x.col === col);
  const key = c.sort || ((r) => r[col]);
  return [...state.rows].sort((a, b) => {
    const va = key(a);
    const vb = key(b);
    if (va === null && vb === null) return a.key < b.key ? -1 : 1;
    if (va === null) return 1; // rows without a value stay last
    if (vb === null) return -1;
    if (va < vb) return -dir;
    if (va > vb) return dir;
    return b.sessions - a.sessions || (a.key < b.key ? -1 : 1);
  });
}

function moneyCell(r, amount) {
  return fmt.money(amount, r.currency);
}

function cellValue(r, col) {
  switch (col) {
    case 'revenue': {
      if (!(r.revenue > 0 || r.spend > 0 || r.other_currencies)) return '—';
      const others = (r.other_currencies || []).map((o) => fmt.money(o.revenue, o.currency));
      return [moneyCell(r, r.revenue), ...others].join(' + ');
    }
    case 'spend': return r.spend > 0 ? moneyCell(r, r.spend) : '—';
    case 'roas': return r.spend > 0 ? fmt.ratio(r.roas) : '—';
    case 'cost_per_lead': return r.spend > 0 && r.unique_users > 0 ? moneyCell(r, r.cost_per_lead) : '—';
    default: return fmt.num(r[col]);
  }
}

function cellTitle(r, col) {
  if (col === 'roas' && r.spend > 0) return `${fmt.money(r.roas, r.currency)} of revenue per ${fmt.unit(r.currency)} spent`;
  if ((col === 'spend' || col === 'roas' || col === 'cost_per_lead') && !(r.spend > 0)) {
    return r.type === 'ad' || r.type === 'post' ? 'no spend imported for this ad in the period' : 'no spend is known for this kind of source';
  }
  return null;
}

/** sourceDelta is the change of a source's cell against the previous period, or null. */
function sourceDelta(r, col) {
  if (!comparing() || !state.prevRows) return null;
  const p = state.prevRows.get(r.key) || { sessions: 0, unique_users: 0, engaged: 0, converted: 0, revenue: 0, spend: 0, roas: 0, cost_per_lead: 0 };
  const v = (x) => ((col === 'roas' || col === 'cost_per_lead') && !(x.spend > 0)) || (col === 'cost_per_lead' && !(x.unique_users > 0)) ? null : x[col] ?? 0;
  return camp.deltaEl(col, v(r), v(p), `previous period ${prevText()}`);
}

function renderSources() {
  const empty = $('sources-empty');
  const wrap = $('sources');
  if (!hasActivity(state.rows)) {
    renderEmptySources(empty);
  } else {
    empty.hidden = true;
  }
  if (!state.rows.length) {
    fill(wrap);
    return;
  }
  const head = h('tr', {}, COLUMNS.map((c) => {
    const sorted = state.sort.col === c.col;
    return h('th', {
      scope: 'col', class: c.text ? 'text' : 'num', 'data-col': c.col,
      'aria-sort': sorted ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none',
    }, h('button', { type: 'button', class: 'sort', 'data-sort': c.col, title: c.title ? `Sort by ${c.label.toLowerCase()}: ${c.title}` : 'Sort by name' },
      c.label, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, sorted ? (state.sort.dir > 0 ? '▲' : '▼') : '↕')));
  }));
  const body = sortedRows().map((r) => h('tr', {
    class: r.key === state.selected ? 'selected' : null, 'data-source': r.key, 'aria-selected': r.key === state.selected ? 'true' : 'false',
  }, COLUMNS.map((c) => {
    if (c.col === 'name') {
      const sub = r.type === 'custom' && r.phrase ? `“${r.phrase}”` : r.id && r.type !== 'custom' ? r.id : '';
      return h('th', { scope: 'row', class: 'text source', 'data-col': 'name' }, h('div', { class: 'source-cell' },
        h('span', { class: `badge badge-${r.type}`, title: TYPES[r.type]?.hint ?? r.type }, TYPES[r.type]?.label ?? r.type),
        h('span', { class: 'source-text' },
          h('button', { type: 'button', class: 'link source-name', 'data-select': r.key, title: 'Show funnel, keywords and events of this source' }, r.name),
          sub ? h('span', { class: r.type === 'custom' ? 'source-sub' : 'source-sub source-id' }, sub) : null)));
    }
    return h('td', { class: `num${camp.MONEY.includes(c.col) ? ' money' : ''}`, 'data-col': c.col, 'data-label': c.label, title: cellTitle(r, c.col) },
      h('span', { class: 'value' }, cellValue(r, c.col)), sourceDelta(r, c.col));
  })));
  const t = sumRows(state.rows);
  const roas = paidROAS(t);
  const cpl = costPerLead(state.rows);
  const foot = h('tr', { class: 'total' },
    h('th', { scope: 'row', class: 'text' }, 'All sources'),
    ['sessions'].map((k) => h('td', { class: 'num', 'data-col': k, 'data-label': 'Sessions' }, fmt.num(t[k]))),
    h('td', { class: 'num', 'data-label': 'Unique users', title: 'a lead can come from several sources, so unique users do not add up' }, '—'),
    ['engaged', 'converted'].map((k) => h('td', { class: 'num', 'data-col': k, 'data-label': k === 'engaged' ? 'Engaged' : 'Converted' }, fmt.num(t[k]))),
    h('td', { class: 'num money', 'data-col': 'revenue', 'data-label': 'Revenue' }, fmt.moneyList(t.revenue) ?? '—'),
    h('td', { class: 'num money', 'data-col': 'spend', 'data-label': 'Spend' }, fmt.moneyList(t.spend) ?? '—'),
    h('td', { class: 'num money', 'data-col': 'roas', 'data-label': 'ROAS', title: 'over the sources with spend' }, roas ? fmt.ratio(roas.roas) : '—'),
    h('td', { class: 'num money', 'data-col': 'cost_per_lead', 'data-label': 'Cost per lead', title: 'spend ÷ unique users over the sources with spend' },
      cpl ? fmt.money(cpl.value, cpl.currency) : '—'));
  fill(wrap, h('table', { class: 'sources stack', id: 'sources-table' },
    h('caption', { class: 'visually-hidden' }, `Sources of app ${state.app}, ${periodText()}`),
    h('thead', {}, head), h('tbody', {}, body), h('tfoot', {}, foot)));
}

async function renderEmptySources(el) {
  const seq = state.seq;
  el.hidden = false;
  fill(el, h('p', {}, h('strong', {}, `No conversation started in ${periodText()} for app ${state.app}.`)));
  let span = null;
  try {
    span = await activitySpan();
  } catch {
    /* the hint below is enough */
  }
  if (seq !== state.seq) return;
  if (span) {
    append(el, h('p', {}, `This app's recorded activity runs from ${fmt.dayLong(span.first)} to ${fmt.dayLong(span.last)}. `,
      h('button', { type: 'button', class: 'link', id: 'show-span', onclick: () => setPeriod('custom', span.first, span.last) }, 'Show that period'),
      ' or ', h('button', { type: 'button', class: 'link', onclick: () => setPeriod('all') }, 'show all time'), '.'));
  } else {
    append(el, h('p', {}, `Nothing has been recorded for app ${state.app} yet. Check that WhatsApp (or your BSP) posts its webhooks `,
      'to the sidecar\'s listener, and that this app id is the phone number id those webhooks carry ',
      '(On-Premises webhooks are recorded under the sidecar\'s -app-id, onprem unless set).'));
  }
}

function setPeriod(preset, from, to) {
  $('preset').value = preset;
  if (from) {
    $('from').value = from;
    $('to').value = to;
  }
  load();
}

// ---------------------------------------------------------------- funnel

const selectedRow = () => state.rows.find((r) => r.key === state.selected) || null;

function renderFunnel() {
  const row = selectedRow();
  const label = row ? row.name : 'Click-to-WhatsApp ads';
  $('funnel-title').textContent = `Funnel · ${label}`;
  $('funnel-all').hidden = !row;
  const stages = stagesOf(funnelOf(row));
  const el = $('funnel');
  $('funnel-apart').textContent = apartText(row);
  if (stages[0].value === 0 && stages[stages.length - 1].value === 0) {
    fill(el, h('p', { class: 'empty' }, `No sessions for ${row ? row.name : 'any ad'} in ${periodText()}, so there is no funnel to draw.`));
    $('funnel-summary').textContent = '';
    return;
  }
  funnelChart(el, stages, `Funnel of ${label}`);
  $('funnel-summary').textContent = dropText(stages);
}

// ---------------------------------------------------------------- daily chart

async function loadDaily(seq) {
  const el = $('daily');
  fill($('daily-legend'));
  fill(el, h('p', { class: 'loading' }, 'Counting day by day…'));
  $('daily-caption').textContent = '';
  try {
    const dates = await concreteDates();
    if (seq !== state.seq) return;
    if (!dates) {
      state.daily = { size: 1, buckets: [] };
      renderDaily();
      return;
    }
    const n = fmt.dayCount(dates.from, dates.to);
    const size = n <= 62 ? 1 : n <= 62 * 7 ? 7 : Math.ceil(n / 60);
    const buckets = [];
    for (let d = dates.from; d <= dates.to; d = fmt.addDays(d, size)) {
      const end = fmt.addDays(d, size - 1);
      buckets.push({ from: d, to: end < dates.to ? end : dates.to, rows: [] });
    }
    let next = 0;
    const worker = async () => {
      while (next < buckets.length && seq === state.seq) {
        const b = buckets[next++];
        b.rows = (await request(appPath('/sources', { date_from: b.from, date_to: b.to }))).data;
      }
    };
    await Promise.all(Array.from({ length: Math.min(DAILY_CONCURRENCY, buckets.length) }, worker));
    if (seq !== state.seq) return;
    state.daily = { size, buckets };
    renderDaily();
  } catch (err) {
    if (seq !== state.seq) return;
    fill(el, h('p', { class: 'error' }, `Could not load the days of the period: ${explain(err)}`));
  }
}

function renderDaily() {
  const el = $('daily');
  const d = state.daily;
  if (!d) return;
  const row = selectedRow();
  const currency = mainCurrency(row ? [row] : state.rows);
  let otherMoney = false;
  const buckets = d.buckets.map((b) => {
    let sessions = 0;
    let revenue = 0;
    for (const r of b.rows) {
      if (row && `${r.type}:${r.id}` !== row.key) continue;
      sessions += r.sessions;
      if (r.currency === currency || !r.currency) revenue += r.revenue;
      else if (r.revenue) otherMoney = true;
      if (r.other_currencies?.length) otherMoney = true;
    }
    const label = fmt.dayShort(b.from);
    const title = b.from === b.to ? fmt.dayLong(b.from) : `${fmt.dayLong(b.from)} – ${fmt.dayLong(b.to)}`;
    return { label, title, sessions, revenue };
  });
  const who = row ? row.name : 'all sources';
  if (!buckets.some((b) => b.sessions > 0 || b.revenue > 0)) {
    fill($('daily-legend'));
    fill(el, h('p', { class: 'empty' }, `No session started and no revenue was booked on any day of ${periodText()} for ${who}.`));
  } else {
    fill($('daily-legend'), legend(currency));
    dailyChart(el, buckets, currency);
  }
  const per = d.size === 1 ? 'Each bar is one day' : `Each bar is ${d.size} days, starting on the date shown`;
  $('daily-caption').textContent = `${per}, for ${who}: the sessions that started then and the revenue of purchases reported then ` +
    '(a purchase counts on its own date, which can be days after the conversation that brought it). ' +
    'Each bar is the sources report of its own dates, so the bars add up to the table above. Days follow the sidecar\'s -timezone.' +
    (state.from ? '' : ' "All time" spans the first to the last day with recorded events.') +
    (otherMoney ? ` Revenue in currencies other than ${currency} is left out of the line (see the table).` : '');
}

// ---------------------------------------------------------------- conversions to Meta

/** loadConversions fills the "Conversions to Meta" panel from the activity log
 * (GET …/conversions) of the period. The counts are one call per status with limit=1,
 * reading total_count: exact however many conversions there are, without moving rows
 * (counting client-side would need every row of the period). Then only what is shown is
 * read: the latest LATEST rows (the log is in event-time order, so the last page), and
 * the rows of the failed, pending and skipped statuses that the sentences explain. */
async function loadConversions(seq) {
  const el = $('conversions');
  fill(el, h('p', { class: 'loading' }, 'Loading the conversions…'));
  const path = (params) => appPath('/conversions', { ...rangeParams(), ...params });
  try {
    const totals = await Promise.all(STATUSES.map((status) => request(path({ status, limit: 1 }))));
    if (seq !== state.seq) return;
    const counts = Object.fromEntries(STATUSES.map((st, i) => [st, totals[i].total_count]));
    const total = STATUSES.reduce((sum, st) => sum + counts[st], 0);
    if (total === 0) {
      // None in the period: say whether the app has some at other times before
      // suggesting the sidecar has conversions off.
      const elsewhere = state.from ? (await request(appPath('/conversions', { limit: 1 }))).total_count : 0;
      if (seq !== state.seq) return;
      renderConversions(el, { counts, latest: [], elsewhere, period: periodText() });
      return;
    }
    const rowsOf = async (status) => {
      const rows = [];
      for (let page = 0; page < MAX_CONVERSION_PAGES && rows.length < counts[status]; page++) {
        const res = await request(path({ status, limit: 1000, offset: rows.length }));
        rows.push(...res.data);
        if (!res.data.length) break;
      }
      return { rows, truncated: rows.length < counts[status] };
    };
    const [latest, failed, pending, skipped] = await Promise.all([
      request(path({ limit: LATEST, offset: Math.max(0, total - LATEST) })),
      rowsOf('failed'), rowsOf('pending'), rowsOf('skipped')]);
    if (seq !== state.seq) return;
    renderConversions(el, {
      counts, latest: latest.data.slice().reverse(), failed: failed.rows, pending: pending.rows, skipped: skipped.rows,
      truncated: failed.truncated || pending.truncated || skipped.truncated, period: periodText(),
    });
  } catch (err) {
    if (seq !== state.seq) return;
    fill(el, h('p', { class: 'error' }, `Could not load the conversions: ${explain(err)}`));
  }
}

// ---------------------------------------------------------------- drill-down

function select(key) {
  state.selected = state.selected === key ? '' : key;
  writeURL();
  renderSources();
  renderFunnel();
  renderDaily();
  renderDrill();
  if (state.selected) $('funnel-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function stat(label, value, title) {
  return h('div', { class: 'stat', title }, h('dt', {}, label), h('dd', {}, value));
}

async function renderDrill() {
  const panel = $('drill');
  const row = selectedRow();
  if (!row) {
    panel.hidden = true;
    fill(panel);
    return;
  }
  const seq = state.seq;
  const key = row.key;
  const isAd = row.type === 'ad' || row.type === 'post';
  panel.hidden = false;
  const adBox = h('div', { class: 'drill-ad', id: 'drill-ad' }, isAd ? h('p', { class: 'loading' }, 'Loading the ad…') : null);
  const keywordsBox = h('div', { class: 'drill-box', id: 'drill-keywords' }, h('h3', {}, 'Keywords'), h('p', { class: 'loading' }, 'Loading…'));
  const eventsBox = h('div', { class: 'drill-box', id: 'drill-events' }, h('h3', {}, 'Events by type'), h('p', { class: 'loading' }, 'Loading…'));
  const latestBox = h('div', { class: 'drill-box drill-latest', id: 'drill-latest' }, h('h3', {}, 'Latest events'), h('p', { class: 'loading' }, 'Loading…'));
  const downloads = h('div', { class: 'buttons' },
    h('button', { type: 'button', id: 'drill-contacts', onclick: (e) => downloadContacts(e.currentTarget, row) }, 'Contacts of this source (CSV)'),
    isAd ? h('button', { type: 'button', id: 'drill-events-csv', onclick: (e) => downloadEvents(e.currentTarget, row.id) }, 'Events of this ad (CSV)') : null,
    h('span', { class: 'result', id: 'drill-download-result', role: 'status' }));
  fill(panel,
    h('div', { class: 'panel-head' },
      h('h2', { id: 'drill-title' }, h('span', { class: `badge badge-${row.type}` }, TYPES[row.type]?.label ?? row.type), ' ', row.name),
      h('button', { type: 'button', class: 'quiet', id: 'drill-close', onclick: () => select(key) }, 'Close')),
    h('p', { class: 'caption' }, `${TYPES[row.type]?.hint ?? ''}${row.type === 'custom' && row.phrase ? ` · phrase “${row.phrase}”` : ''}${row.id && row.type !== 'custom' ? ` · id ${row.id}` : ''} · ${periodText()}`),
    h('dl', { class: 'stats' },
      stat('Sessions', fmt.num(row.sessions)), stat('Unique users', fmt.num(row.unique_users)),
      stat('Engaged', `${fmt.num(row.engaged)} (${fmt.share(row.engaged, row.sessions)})`),
      stat('Converted', `${fmt.num(row.converted)} (${fmt.share(row.converted, row.sessions)})`),
      stat('Purchases', fmt.num(row.offthread_count)), stat('Revenue', cellValue(row, 'revenue')),
      stat('Spend', cellValue(row, 'spend')), stat('ROAS', cellValue(row, 'roas')), stat('Cost per lead', cellValue(row, 'cost_per_lead'))),
    adBox,
    h('div', { class: 'drill-grid' }, keywordsBox, eventsBox, latestBox),
    downloads);

  const still = () => seq === state.seq && state.selected === key;
  const [ad, events] = await Promise.all([
    isAd ? request(appPath(`/ads/${encodeURIComponent(row.id)}`, rangeParams())).catch((err) => err) : null,
    collectEvents(row).catch((err) => err),
  ]);
  if (!still()) return;
  if (isAd) renderAdBox(adBox, ad, row);
  renderKeywords(keywordsBox, row, ad instanceof Error ? null : ad, events);
  renderEventTypes(eventsBox, row, events);
  renderLatest(latestBox, events);
}

/** collectEvents reads the events of a source in the period: an ad's with the ad_id
 * filter, other sources' by their source fields (at most MAX_EVENT_PAGES pages). */
async function collectEvents(row) {
  const dates = await concreteDates();
  if (!dates) return { events: [], truncated: false };
  const params = { date_from: dates.from, date_to: dates.to, limit: 1000 };
  if (row.type === 'ad' || row.type === 'post') params.ad_id = row.id;
  const events = [];
  const seenKeywords = new Set();
  let offset = 0;
  let total = 0;
  for (let page = 0; page < MAX_EVENT_PAGES; page++) {
    const res = await request(appPath('/events', { ...params, offset }));
    total = res.total_count;
    for (const ev of res.data) {
      if (ev.source_type !== row.type || (ev.source_id || '') !== row.id) continue;
      // A keyword that is also a campaign's converted event is tracked by two groups and
      // recorded twice for one message: count the message once.
      if (ev.type === 'keyword') {
        const k = `${ev.conversation_id}|${ev.date}|${ev.type_value.toLowerCase()}`;
        if (seenKeywords.has(k)) continue;
        seenKeywords.add(k);
      }
      events.push(ev);
    }
    offset += res.data.length;
    if (offset >= total || !res.data.length) break;
  }
  return { events, truncated: offset < total, read: offset, total };
}

function renderAdBox(box, ad, row) {
  if (ad instanceof Error) {
    fill(box, h('p', { class: 'error' }, `The ad's details could not be loaded: ${explain(ad)}`));
    return;
  }
  const i = ad.insight;
  const cur = i.currency || row.currency;
  const where = [ad.campaign?.name && `campaign ${ad.campaign.name}`, ad.ad_set?.name && `ad set ${ad.ad_set.name}`,
    ad.ad_account?.name && `account ${ad.ad_account.name}`].filter(Boolean).join(' · ');
  fill(box,
    h('p', { class: 'caption' }, where || (ad.referral_only ? 'Known from referrals only: import the spend sheet to place it in its campaign.' : ''),
      ad.status ? ` · status ${ad.status.toLowerCase()}` : ''),
    h('dl', { class: 'stats stats-ad' },
      stat('Impressions', fmt.num(i.impressions)), stat('Link clicks', fmt.num(i.clicks)),
      stat('CTR', i.impressions ? `${fmt.ratio(i.ctr)}%` : '—', 'clicks ÷ impressions'),
      stat('Cost per click', i.clicks ? fmt.money(i.cpc, cur) : '—'),
      stat('Clicks → sessions', i.clicks ? `${fmt.ratio(i.cvr_clicks_to_sessions)}%` : '—', 'sessions ÷ link clicks'),
      stat('Cost per session', i.sessions && i.spend ? fmt.money(i.cost_per_session, cur) : '—'),
      stat('Cost per engaged', i.engaged && i.spend ? fmt.money(i.cost_per_engagement, cur) : '—'),
      stat('Cost per conversion', i.converted && i.spend ? fmt.money(i.cost_per_conversions, cur) : '—'),
      stat('Cost per purchase', ad.sale_insight.count && i.spend ? fmt.money(ad.sale_insight.cvr_cost, cur) : '—')));
}

function renderKeywords(box, row, ad, events) {
  let rows;
  if (ad && ad.insight) {
    // One keyword can be tracked by several groups (say, also as a campaign's converted
    // event); they count the same messages, so show it once.
    const byWord = new Map();
    for (const k of ad.insight.keywords || []) {
      const cur = byWord.get(k.keyword);
      if (!cur || k.events > cur.events) byWord.set(k.keyword, k);
    }
    rows = [...byWord.values()].map((k) => ({ keyword: k.keyword, events: k.events, share: k.cvr / 100 }));
  } else if (!(events instanceof Error)) {
    const counts = new Map();
    for (const ev of events.events) if (ev.type === 'keyword') counts.set(ev.type_value, (counts.get(ev.type_value) || 0) + 1);
    rows = [...counts].map(([keyword, n]) => ({ keyword, events: n, share: row.sessions ? n / row.sessions : 0 }));
  } else {
    fill(box, h('h3', {}, 'Keywords'), h('p', { class: 'error' }, `Could not load the keywords: ${explain(events)}`));
    return;
  }
  rows.sort((a, b) => b.events - a.events || a.keyword.localeCompare(b.keyword));
  if (!rows.length) {
    fill(box, h('h3', {}, 'Keywords'), h('p', { class: 'empty' }, 'No tracked keyword appeared in these conversations. ',
      'Add one under ', h('a', { href: '#keyword-form' }, 'Track a keyword'), '; it counts new messages from then on.'));
    return;
  }
  fill(box, h('h3', {}, 'Keywords'),
    h('table', { class: 'mini', id: 'drill-keywords-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'text' }, 'Keyword'), h('th', { scope: 'col', class: 'num' }, 'Messages'),
        h('th', { scope: 'col', class: 'num', title: 'keyword events ÷ sessions' }, 'Per session'))),
      h('tbody', {}, rows.map((k) => h('tr', { 'data-keyword': k.keyword },
        h('td', { class: 'text' }, k.keyword), h('td', { class: 'num' }, fmt.num(k.events)), h('td', { class: 'num' }, fmt.share(k.share, 1)))))));
}

function renderEventTypes(box, row, events) {
  if (events instanceof Error) {
    fill(box, h('h3', {}, 'Events by type'), h('p', { class: 'error' }, `Could not load the events: ${explain(events)}`));
    return;
  }
  const counts = new Map();
  for (const ev of events.events) counts.set(ev.type, (counts.get(ev.type) || 0) + 1);
  const types = [...counts.keys()].sort((a, b) => {
    const ia = EVENT_ORDER.indexOf(a);
    const ib = EVENT_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  if (!types.length) {
    fill(box, h('h3', {}, 'Events by type'), h('p', { class: 'empty' },
      row.type === 'unattributed' ? 'Unattributed purchases belong to no conversation, so they have no chat events.' : 'No events of this source in the period.'));
    return;
  }
  const max = Math.max(...counts.values());
  fill(box, h('h3', {}, 'Events by type'),
    h('ul', { class: 'bars', id: 'drill-event-types' }, types.map((t) => {
      const bar = h('span', { class: `bar-fill bar-${EVENT_NAMES[t] ? t : 'offthread'}` });
      bar.style.width = `${Math.max(2, (100 * counts.get(t)) / max)}%`;
      return h('li', { 'data-type': t },
        h('span', { class: 'bar-label' }, EVENT_NAMES[t] || `${t} (off-thread)`),
        h('span', { class: 'bar-track' }, bar),
        h('span', { class: 'bar-value' }, fmt.num(counts.get(t))));
    })),
    events.truncated ? h('p', { class: 'caption' }, `Counted over the first ${fmt.num(events.read)} of ${fmt.num(events.total)} events of the period; download the CSV for all.`) : null);
}

/** eventValue shows what an event carries: the keyword, button or host; an off-thread
 * event's revenue ("129.9 EUR") as money. */
function eventValue(ev) {
  if (ev.type === 'conversation') return '';
  const m = /^(-?\d+(?:\.\d+)?) ([A-Z]{3})$/.exec(ev.type_value || '');
  if (!EVENT_NAMES[ev.type] && m) return fmt.money(Number(m[1]), m[2]);
  return ev.type_value;
}

function renderLatest(box, events) {
  if (events instanceof Error) {
    fill(box, h('h3', {}, 'Latest events'), h('p', { class: 'error' }, explain(events)));
    return;
  }
  const last = events.events.slice(-8).reverse();
  if (!last.length) {
    fill(box, h('h3', {}, 'Latest events'), h('p', { class: 'empty' }, 'None in the period.'));
    return;
  }
  fill(box, h('h3', {}, 'Latest events'),
    h('table', { class: 'mini stack-mini', id: 'drill-latest-table' },
      h('thead', {}, h('tr', {}, ['When', 'Event', 'Value', 'Lead'].map((c) => h('th', { scope: 'col', class: 'text' }, c)))),
      h('tbody', {}, last.map((ev) => h('tr', {},
        h('td', { class: 'text nowrap', 'data-col': 'when', 'data-label': 'When' }, fmt.when(ev.date)),
        h('td', { class: 'text', 'data-col': 'event', 'data-label': 'Event' }, SHORT_NAMES[ev.type] || EVENT_NAMES[ev.type] || ev.type),
        h('td', { class: 'text', 'data-col': 'value', 'data-label': 'Value' }, eventValue(ev)),
        h('td', { class: 'text nowrap', 'data-col': 'lead', 'data-label': 'Lead' }, fmt.phone(ev.phone) || ev.user_id))))));
}

// ---------------------------------------------------------------- spend sync from Meta

/** renderSync shows the spend sync in "Import ad spend". While an account's first run is
 * under way (no last run yet), it reads the state again until the run has ended. */
function renderSync(seq) {
  renderSpendSync($('spend-sync'), state.spendSync, syncNow);
  const note = state.syncNote;
  if (note && note.key === `${state.client}/${state.app}` && $('spend-sync-result')) result($('spend-sync-result'), note.ok, note.text);
  if (syncing() && state.spendSync.some((a) => !a.last_run)) {
    setTimeout(async () => {
      if (seq !== state.seq) return;
      const syncs = await spendSyncState().catch(() => null);
      if (seq !== state.seq || !syncs) return;
      const finished = syncs.some((a) => a.last_success) && !state.spendSync.some((a) => a.last_success);
      state.spendSync = syncs;
      if (finished) load(); // the first spend has arrived: show it
      else renderSync(seq);
    }, SYNC_FIRST_RUN_MS);
  }
}

/** syncNow runs the app's spend sync (POST …/ads/sync answers 202 at once) and reads the
 * state until every account's run has ended, then shows it; new spend reloads the page's
 * figures. */
async function syncNow(button) {
  const seq = state.seq;
  button.disabled = true;
  result($('spend-sync-result'), null, 'Syncing with Meta…');
  let syncs;
  let ended = false;
  try {
    const before = new Map(((await request(appPath('/ads/sync'))).data || []).map((a) => [a.ad_account_id, a.last_run || '']));
    syncs = (await request(appPath('/ads/sync'), { method: 'POST' })).data || [];
    for (const deadline = Date.now() + SYNC_WAIT_MS; ;) {
      ended = syncs.every((a) => (a.last_run || '') !== (before.get(a.ad_account_id) ?? ''));
      if (ended || Date.now() > deadline || seq !== state.seq) break;
      await new Promise((r) => setTimeout(r, SYNC_POLL_MS));
      syncs = (await request(appPath('/ads/sync'))).data || [];
    }
  } catch (err) {
    if (seq !== state.seq) return;
    button.disabled = false;
    result($('spend-sync-result'), false, `Sync not started: ${explain(err)}`);
    return;
  }
  if (seq !== state.seq) return;
  const say = (ok, text) => { state.syncNote = { key: `${state.client}/${state.app}`, ok, text }; };
  const gotSpend = syncs.some((a) => a.last_success && !a.last_error &&
    a.last_success !== (state.spendSync || []).find((b) => b.ad_account_id === a.ad_account_id)?.last_success);
  const failed = syncs.filter((a) => a.stopped || a.last_error);
  if (!ended) say(null, 'Still syncing: the lines above are of the last run that ended. Press Show later to see the result.');
  else if (failed.length) say(false, `The sync ran and failed for ${failed.map((a) => `act_${a.ad_account_id}`).join(', ')}: see above.`);
  else say(true, `Synced: ${fmt.num(syncs.reduce((n, a) => n + (a.rows || 0), 0))} rows from Meta.`);
  state.spendSync = syncs;
  renderSync(seq);
  renderKPIs();
  renderAnswer();
  if (gotSpend && ended && !failed.length) {
    state.span = null;
    load(); // the table, cards and charts with the new spend
  }
}

// ---------------------------------------------------------------- downloads

function fileStem() {
  return state.from ? `${state.from}_${state.to}` : 'all-time';
}

async function runDownload(button, out, what) {
  button.disabled = true;
  result(out, null, 'Preparing…');
  try {
    const text = await what();
    result(out, true, text);
  } catch (err) {
    result(out, false, `Download failed: ${explain(err)}`);
  } finally {
    button.disabled = false;
  }
}

function downloadEvents(button, adID) {
  const out = adID ? $('drill-download-result') : $('download-result');
  return runDownload(button, out, async () => {
    const dates = await concreteDates();
    if (!dates) return 'Nothing recorded yet: no events to download.';
    const name = `events-${state.app}${adID ? `-ad-${adID}` : ''}-${fileStem()}.csv`;
    const size = await download(appPath('/events/export', { date_from: dates.from, date_to: dates.to, ad_id: adID }), name);
    return `${name} downloaded (${kb(size)}).`;
  });
}

function downloadContacts(button, row) {
  const out = row ? $('drill-download-result') : $('download-result');
  return runDownload(button, out, async () => {
    const name = `contacts-${state.app}${row ? `-${row.key.replace(/[^A-Za-z0-9_-]+/g, '-')}` : ''}-${fileStem()}.csv`;
    const size = await download(appPath('/contacts/export', { ...rangeParams(), source_id: row ? row.key : '' }), name);
    return `${name} downloaded (${kb(size)}).`;
  });
}

const kb = (n) => (n < 1024 ? `${n} bytes` : `${fmt.ratio(n / 1024)} KB`);

// ---------------------------------------------------------------- forms

async function submitting(form, out, fn) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  result(out, null, 'Sending…');
  try {
    result(out, true, await fn());
    state.span = null;
    load();
  } catch (err) {
    const field = err instanceof ApiError && err.field && !err.message.includes(err.field) ? ` (${err.field})` : '';
    result(out, false, `Not saved${field}: ${explain(err)}`);
  } finally {
    button.disabled = false;
  }
}

function wireForms() {
  $('import-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (f) $('import-csv').value = await f.text();
  });
  $('import-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const csv = $('import-csv').value;
    const out = $('import-result');
    if (!csv.trim()) {
      result(out, false, 'Choose a CSV file or paste the report first.');
      return;
    }
    submitting(e.target, out, async () => {
      const res = await request(appPath('/ads/import', {
        ad_account_id: $('import-account').value.trim(), currency: $('import-currency').value.trim().toUpperCase(),
      }), { method: 'POST', body: csv, type: 'text/csv' });
      const n = res.imported || {};
      return `Imported ${fmt.num(n.rows ?? 0)} rows: ${fmt.num(n.ads ?? 0)} ads in ${fmt.num(n.campaigns ?? 0)} campaigns.`;
    });
  });
  $('keyword-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const word = $('keyword').value.trim();
    submitting(e.target, $('keyword-result'), async () => {
      const g = await request(appPath('/event_groups'), { method: 'POST', body: { type: 'keyword', type_value: word } });
      $('keyword').value = '';
      return `Tracking “${g.type_value}” (event group ${g.id}) in new messages.`;
    });
  });
  $('source-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitting(e.target, $('source-result'), async () => {
      const src = await request(appPath('/sources'), {
        method: 'POST', body: { name: $('source-name').value.trim(), phrase: $('source-phrase').value.trim() },
      });
      $('source-name').value = $('source-phrase').value = '';
      return `Added source “${src.name}”: first messages containing “${src.phrase}” now count for it.`;
    });
  });
  $('download-events').addEventListener('click', (e) => downloadEvents(e.currentTarget, ''));
  $('download-contacts').addEventListener('click', (e) => downloadContacts(e.currentTarget, null));
}

// ---------------------------------------------------------------- token

/** askToken asks for the API token; refused says the sidecar just refused the one it had
 * (which api.js has dropped already: nothing wrong is kept). Cancel rejects with what
 * happened in words. */
function askToken(refused) {
  const dialog = $('token-dialog');
  const input = $('token-input');
  $('token-why').textContent = refused
    ? 'The sidecar refused that token. Enter the value of its -api-token (or CTWA_API_TOKEN); it is kept in this browser tab only.'
    : 'This sidecar asks for its API token (-api-token). Enter it once: it is kept in this browser tab only and sent with every API call.';
  input.value = '';
  $('forget-token').hidden = true;
  return new Promise((resolve, reject) => {
    const done = (token) => {
      $('token-form').removeEventListener('submit', onSubmit);
      $('token-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      if (token) {
        $('forget-token').hidden = false;
        resolve(token);
      } else if (refused) {
        reject(new ApiError(401, 'token_refused', 'The sidecar refused the API token that was entered, so it was not kept; ' +
          'no token is stored in this tab now. Press Show (or "Enter the API token") to try again with the value of its -api-token.'));
      } else {
        reject(new ApiError(401, 'unauthorized', 'No API token was given, and the sidecar answers every API call with 401 without it. Press Show to enter it.'));
      }
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (token) done(token);
    };
    const onCancel = (e) => {
      e.preventDefault();
      done('');
    };
    $('token-form').addEventListener('submit', onSubmit);
    $('token-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    input.focus();
  });
}

// ---------------------------------------------------------------- wiring

function renderRecentApps() {
  const known = state.knownAppsRead ? state.knownApps : null;
  // Recently opened apps the sidecar no longer (or never) recorded are not offered as data.
  const apps = recentApps().filter((a) => !known || known.includes(a));
  const others = state.knownApps.filter((a) => !apps.includes(a));
  fill($('recent-apps'), [...apps, ...others].map((a) => h('option', { value: a })));
  const open = (a) => h('button', { type: 'button', 'data-app': a, onclick: () => { $('app').value = a; state.span = null; load(); } }, a);
  fill($('recent'), [
    ...(apps.length ? [h('p', {}, 'Recently opened here:'), h('div', { class: 'buttons', id: 'recent-list' }, apps.map(open))] : []),
    ...(others.length ? [h('p', {}, 'Apps with recorded traffic — choose one:'), h('div', { class: 'buttons', id: 'known-apps' }, others.map(open))] : []),
    ...(state.knownAppsRead && !state.knownApps.length ? [h('p', {}, 'The sidecar has recorded no traffic yet: point WhatsApp\'s webhooks at it, then come back.')] : []),
  ]);
}

/** knownClients offers the clients the sidecar records in the client id field: its
 * -client-id, or one per stream of a read replica's fleet view. An older sidecar without
 * GET /v1/clients offers none. */
async function knownClients() {
  try {
    const res = await request('/v1/clients');
    fill($('known-clients'), (res.data || []).map((c) => h('option', { value: c.id })));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
  }
}

/** knownApps reads the apps with recorded traffic (asking for the token when needed):
 * their ids, or null when the list cannot be read (an older sidecar). The clients to
 * choose from come first, so that they are offered when the client id is not one. */
async function knownApps() {
  try {
    await knownClients();
    const res = await request(`/v1/clients/${encodeURIComponent(state.client)}/apps`);
    state.knownApps = (res.data || []).map((a) => a.id);
    state.knownAppsRead = true;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.code === 'unknown_client')) throw err;
    state.knownApps = [];
    state.knownAppsRead = false;
    return null;
  }
  renderRecentApps();
  return state.knownApps;
}

/** loadKnownApps fills the welcome page: the token first (the API's 401 asks for it),
 * then the apps to choose from; a refused or missing token is said in words, with a way
 * to enter it again. */
async function loadKnownApps() {
  const note = $('welcome-token');
  fill(note, h('p', { class: 'loading' }, 'Asking the sidecar which apps it has recorded…'));
  try {
    await knownApps();
    fill(note);
  } catch (err) {
    state.knownApps = [];
    state.knownAppsRead = false;
    renderRecentApps();
    fill(note, h('p', { class: 'error', id: 'welcome-token-error' }, explain(err)),
      err instanceof ApiError && err.status === 401
        ? h('div', { class: 'buttons' }, h('button', { type: 'button', class: 'primary', id: 'welcome-token-ask', onclick: () => loadKnownApps() }, 'Enter the API token'))
        : null);
  }
}

function init() {
  setTokenPrompt(askToken);
  $('forget-token').hidden = !getToken();
  $('forget-token').addEventListener('click', () => {
    setToken('');
    $('forget-token').hidden = true;
    setStatus('Token forgotten: the next call will ask for it.');
  });
  readInitialState();
  renderRecentApps();
  $('controls').addEventListener('submit', (e) => {
    e.preventDefault();
    state.span = null;
    load();
  });
  $('preset').addEventListener('change', () => {
    state.preset = $('preset').value;
    writeCompare();
    if (state.preset !== 'custom') {
      applyPreset();
      $('from').value = state.from;
      $('to').value = state.to;
      load();
    }
  });
  for (const b of document.querySelectorAll('#preset-chips [data-preset]')) {
    b.addEventListener('click', () => {
      $('preset').value = b.dataset.preset;
      $('preset').dispatchEvent(new Event('change'));
    });
  }
  $('compare').addEventListener('change', () => load());
  for (const id of ['from', 'to']) {
    $(id).addEventListener('change', () => { $('preset').value = 'custom'; writeCompare(); });
  }
  $('app').addEventListener('change', () => { state.span = null; });
  document.addEventListener('click', (e) => {
    const sortBtn = e.target.closest('[data-sort]');
    if (sortBtn) {
      const col = sortBtn.dataset.sort;
      state.sort = state.sort.col === col ? { col, dir: -state.sort.dir } : { col, dir: col === 'name' ? 1 : -1 };
      renderSources();
      return;
    }
    const pick = e.target.closest('[data-select]');
    if (pick) {
      select(pick.dataset.select);
      return;
    }
    const tr = e.target.closest('#sources-table tbody tr');
    if (tr && !e.target.closest('button, a')) select(tr.dataset.source);
  });
  $('funnel-all').addEventListener('click', () => select(state.selected));
  $('campaigns-expand').addEventListener('click', toggleAllCampaigns);
  $('campaigns-csv').addEventListener('click', downloadCampaigns);
  $('sources-csv').addEventListener('click', downloadSources);
  wireForms();
  let width = window.innerWidth;
  new ResizeObserver(() => {
    if (window.innerWidth === width) return;
    width = window.innerWidth;
    if (!$('dashboard').hidden) {
      renderFunnel();
      renderDaily();
    }
  }).observe(document.body);
  load();
}

init();
