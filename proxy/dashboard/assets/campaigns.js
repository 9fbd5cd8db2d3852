// The campaigns panel: Meta's campaign → ad set → ad hierarchy as in Ads Manager, with
// delivery (impressions, clicks, CTR, CPC), the conversations the ads started and their
// money; the conversion event of each campaign or ad, chosen in a dialog; a CSV of the
// whole table.

import { h, fill } from './dom.js';
import * as fmt from './format.js';
import { ApiError } from './api.js';

/** COLUMNS of the table and of its CSV, after the name and the conversion event. */
export const METRICS = [
  { col: 'impressions', label: 'Impressions', title: 'times the ad was shown (from Ads Manager)' },
  { col: 'clicks', label: 'Clicks', title: 'link clicks (from Ads Manager)' },
  { col: 'ctr', label: 'CTR', title: 'click-through rate: clicks ÷ impressions' },
  { col: 'cpc', label: 'CPC', title: 'cost per click: spend ÷ clicks' },
  { col: 'sessions', label: 'Sessions', title: 'conversations the ads started' },
  { col: 'engaged', label: 'Engaged', title: 'sessions where the lead wrote a second message' },
  { col: 'converted', label: 'Converted', title: 'sessions that reached the conversion event' },
  { col: 'revenue', label: 'Revenue', title: 'off-thread revenue attributed to the sessions' },
  { col: 'spend', label: 'Spend', title: 'amount spent (from Ads Manager)' },
  { col: 'roas', label: 'ROAS', title: 'return on ad spend: revenue ÷ spend' },
  { col: 'cost_per_lead', label: 'Cost per lead', title: 'spend ÷ unique users' },
];

/** MONEY are the columns a phone shows first. */
export const MONEY = ['revenue', 'spend', 'roas', 'cost_per_lead'];

const EVENT_LABELS = {
  keyword: 'Keyword', button: 'Button', button_reply: 'Button reply', list_reply: 'List reply',
  off_thread: 'Off-thread', engagement: 'Engaged', link: 'Link',
};

/** eventText describes a converted definition or a choice in words: Keyword “buy”. */
export function eventText(ev) {
  if (!ev) return '';
  const label = EVENT_LABELS[ev.type] || ev.type;
  if (ev.type === 'off_thread') return `${label}: ${ev.type_value}`;
  if (ev.type === 'engagement') return label;
  const value = ev.type_value || ev.type_id || '';
  return value ? `${label} “${value}”` : `${label} (any)`;
}

/** metricsOf reads an ad, ad set or campaign object's insight and sale insight. */
export function metricsOf(obj) {
  const i = obj.insight || {};
  const s = obj.sale_insight || {};
  return {
    impressions: i.impressions || 0, clicks: i.clicks || 0, ctr: i.ctr || 0, cpc: i.cpc || 0,
    sessions: i.sessions || 0, unique_users: i.unique_users || 0, engaged: i.engaged || 0, converted: i.converted || 0,
    revenue: s.revenue || 0, other_currencies: s.other_currencies || null, purchases: s.count || 0,
    spend: i.spend || 0, roas: s.roas || 0, cost_per_lead: i.cost_per_unique_user || 0,
    currency: i.currency || s.currency || '',
  };
}

/** loadHierarchy reads every campaign, ad set and ad of the accounts, over params (a
 * date range), into campaigns → ad sets → ads. get(path) calls the API. */
export async function loadHierarchy(get, appPath, accounts, params) {
  const all = async (what, acct) => {
    const out = [];
    for (let offset = 0; ; offset += 100) {
      const res = await get(appPath(`/${what}/account/${encodeURIComponent(acct)}`, { ...params, limit: 100, offset }));
      out.push(...res.data);
      if (offset + res.data.length >= res.total_count || !res.data.length) break;
    }
    return out;
  };
  const campaigns = [];
  for (const acct of accounts) {
    const [cps, sets, ads] = await Promise.all([all('campaigns', acct), all('adsets', acct), all('ads', acct)]);
    for (const cp of cps) {
      const c = { level: 'campaign', id: cp.id, name: cp.name || `campaign ${cp.id}`, status: cp.status, account: acct, m: metricsOf(cp), adSets: [] };
      for (const as of sets.filter((x) => x.campaign_id === cp.id)) {
        const set = { level: 'adset', id: as.id, name: as.name || `ad set ${as.id}`, status: as.status, campaign: c, m: metricsOf(as), ads: [] };
        for (const ad of ads.filter((x) => x.ad_set?.id === as.id && x.campaign?.id === cp.id)) {
          set.ads.push({ level: 'ad', id: ad.id, name: ad.name || `ad ${ad.id}`, status: ad.status, campaign: c, adSet: set, m: metricsOf(ad) });
        }
        c.adSets.push(set);
      }
      // Ads of the campaign without an ad set (a sheet without Ad set ID): one set of their own.
      const loose = ads.filter((x) => x.campaign?.id === cp.id && !x.ad_set?.id);
      if (loose.length) {
        const set = { level: 'adset', id: '', name: 'No ad set', status: '', campaign: c, m: null, ads: [] };
        for (const ad of loose) set.ads.push({ level: 'ad', id: ad.id, name: ad.name, status: ad.status, campaign: c, adSet: set, m: metricsOf(ad) });
        c.adSets.push(set);
      }
      campaigns.push(c);
    }
  }
  return campaigns;
}

/** rowsOf flattens campaigns into rows in table order. */
export function rowsOf(campaigns) {
  const rows = [];
  for (const c of campaigns) {
    rows.push(c);
    for (const s of c.adSets) {
      rows.push(s);
      rows.push(...s.ads);
    }
  }
  return rows;
}

/** keyOf names a row across periods: campaign:<id>, adset:<id>, ad:<id>. */
export const keyOf = (r) => `${r.level}:${r.id}`;

// ---------------------------------------------------------------- cells

/** cellText formats one metric of m. */
export function cellText(m, col) {
  if (!m) return '';
  const paid = m.spend > 0;
  switch (col) {
    case 'ctr': return m.impressions > 0 ? `${fmt.ratio(m.ctr)}%` : '—';
    case 'cpc': return m.clicks > 0 && paid ? fmt.money(m.cpc, m.currency) : '—';
    case 'revenue': {
      const others = (m.other_currencies || []).map((o) => fmt.money(o.revenue, o.currency));
      return [fmt.money(m.revenue, m.currency), ...others].join(' + ');
    }
    case 'spend': return fmt.money(m.spend, m.currency);
    case 'roas': return paid ? fmt.ratio(m.roas) : '—';
    case 'cost_per_lead': return paid && m.unique_users > 0 ? fmt.money(m.cost_per_lead, m.currency) : '—';
    default: return fmt.num(m[col] || 0);
  }
}

/** change is the relative change from prev to cur as a signed percent text ("+12%",
 * "−43%", "new", "±0%"), with its direction; null when there is nothing to compare. */
export function change(cur, prev) {
  if (cur === null || cur === undefined || prev === null || prev === undefined) return null;
  if (prev === 0 && cur === 0) return { text: '±0%', dir: 0 };
  if (prev === 0) return { text: 'new', dir: 1 };
  const r = (cur - prev) / Math.abs(prev);
  const pct = Math.round(r * 100);
  if (pct === 0) return { text: '±0%', dir: 0 };
  return { text: `${pct > 0 ? '+' : '−'}${fmt.num(Math.abs(pct))}%`, dir: pct > 0 ? 1 : -1 };
}

/** metricValue is the number a delta compares (null when the metric does not apply). */
export function metricValue(m, col) {
  if (!m) return null;
  if ((col === 'roas' || col === 'cost_per_lead' || col === 'cpc') && !(m.spend > 0)) return null;
  if ((col === 'ctr' && !(m.impressions > 0)) || (col === 'cpc' && !(m.clicks > 0)) || (col === 'cost_per_lead' && !(m.unique_users > 0))) return null;
  return m[col] ?? 0;
}

/** LOWER_IS_BETTER: a fall of these is good news. */
export const LOWER_IS_BETTER = new Set(['cpc', 'cost_per_lead']);

/** deltaEl is the small change line under a value, or null. */
export function deltaEl(col, cur, prev, what) {
  const d = change(cur, prev);
  if (!d) return null;
  const good = d.dir === 0 || col === 'spend' ? 'flat' : (d.dir > 0) !== LOWER_IS_BETTER.has(col) ? 'up' : 'down';
  return h('span', { class: `delta delta-${good}`, title: `${what}: ${prev === null ? '—' : fmt.ratio(prev)}` }, d.text);
}

// ---------------------------------------------------------------- the table

/**
 * renderCampaigns fills wrap with the hierarchy table. opt: campaigns, prev (Map key →
 * metrics of the previous period, or null), expanded (Set of campaign and ad set keys),
 * converted (definitions), onToggle(key), onChoose(row), prevText (the previous period
 * in words).
 */
export function renderCampaigns(wrap, opt) {
  const defs = opt.converted || [];
  const defOf = (r) => defs.find((d) => (r.level === 'campaign' && d.campaign_id === r.id && !d.ad_id) || (r.level === 'ad' && d.ad_id === r.id)) || null;
  const head = h('tr', {},
    h('th', { scope: 'col', class: 'text', 'data-head': 'name' }, 'Campaign · ad set · ad'),
    h('th', { scope: 'col', class: 'text', 'data-head': 'conversion_event', title: 'the event that counts a session as converted' }, 'Conversion event'),
    METRICS.map((c) => h('th', { scope: 'col', class: 'num', 'data-head': c.col, title: c.title }, c.label)));
  const body = [];
  for (const c of opt.campaigns) {
    const open = opt.expanded.has(keyOf(c));
    body.push(row(c, open, defOf(c), null));
    if (!open) continue;
    for (const s of c.adSets) {
      const setOpen = !opt.collapsed.has(keyOf(s));
      body.push(row(s, setOpen, null, null));
      if (!setOpen) continue;
      for (const ad of s.ads) body.push(row(ad, false, defOf(ad), defOf(c)));
    }
  }
  fill(wrap, h('table', { class: 'campaigns stack', id: 'campaigns-table' },
    h('caption', { class: 'visually-hidden' }, 'Campaigns, ad sets and ads'),
    h('thead', {}, head), h('tbody', {}, body)));

  function row(r, open, def, inherited) {
    const key = keyOf(r);
    const kids = r.level === 'campaign' ? r.adSets.length : r.level === 'adset' ? r.ads.length : 0;
    const toggle = kids ? h('button', {
      type: 'button', class: 'toggle', 'aria-expanded': open ? 'true' : 'false', 'data-toggle': key,
      title: open ? 'Collapse' : r.level === 'campaign' ? 'Show its ad sets and ads' : 'Show its ads',
      onclick: () => opt.onToggle(key),
    }, h('span', { 'aria-hidden': 'true' }, open ? '▾' : '▸'), h('span', { class: 'visually-hidden' }, open ? 'Collapse' : 'Expand')) : h('span', { class: 'toggle-space' });
    const label = { campaign: 'Campaign', adset: 'Ad set', ad: 'Ad' }[r.level];
    const sub = r.level === 'campaign' ? `${kids} ad set${kids === 1 ? '' : 's'}` : r.level === 'adset' ? `${kids} ad${kids === 1 ? '' : 's'}` : r.id;
    const name = h('th', { scope: 'row', class: `text source level-${r.level}`, 'data-col': 'name' },
      h('div', { class: 'source-cell' }, toggle,
        h('span', { class: `badge badge-level-${r.level}` }, label),
        h('span', { class: 'source-text' }, h('span', { class: 'source-name' }, r.name),
          h('span', { class: 'source-sub' }, [sub, r.status ? r.status.toLowerCase() : ''].filter(Boolean).join(' · ')))));
    let event = h('td', { class: 'text event-cell', 'data-col': 'conversion_event', 'data-label': 'Conversion event' });
    if (r.level !== 'adset') {
      const own = def ? h('span', { class: 'event-name' }, eventText(def)) : null;
      const note = !def && inherited ? h('span', { class: 'event-inherited' }, `campaign's: ${eventText(inherited)}`)
        : !def && r.level === 'campaign' ? h('span', { class: 'event-none' }, 'none: converted stays 0') : null;
      event = h('td', { class: 'text event-cell', 'data-col': 'conversion_event', 'data-label': 'Conversion event' }, own, note,
        h('button', { type: 'button', class: 'link choose-event', 'data-choose': key, onclick: () => opt.onChoose(r, def) },
          def ? 'Change' : 'Choose'));
    }
    const prev = opt.prev ? opt.prev.get(key) || null : null;
    const cells = METRICS.map((c) => h('td', { class: `num${MONEY.includes(c.col) ? ' money' : ''}`, 'data-col': c.col, 'data-label': c.label },
      h('span', { class: 'value' }, r.m ? cellText(r.m, c.col) : ''),
      opt.prev && r.m && prev ? deltaEl(c.col, metricValue(r.m, c.col), metricValue(prev, c.col), opt.prevText) : null));
    return h('tr', { class: `level-${r.level}`, 'data-key': key, 'data-level': r.level }, name, event, cells);
  }
}

// ---------------------------------------------------------------- CSV

/** csvCell quotes a value for RFC 4180 and keeps a spreadsheet from reading it as a formula. */
function csvCell(v) {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** campaignsCSV is the whole hierarchy (collapsed or not) as CSV text: one row per
 * campaign, ad set and ad, with plain numbers; with prev, the previous period's figures
 * after them. */
export function campaignsCSV(campaigns, converted, prev) {
  const defs = converted || [];
  const cols = ['impressions', 'clicks', 'ctr', 'cpc', 'sessions', 'unique_users', 'engaged', 'converted', 'purchases', 'revenue', 'spend', 'roas', 'cost_per_lead'];
  const header = ['level', 'campaign', 'ad_set', 'ad', 'id', 'status', 'conversion_event', ...cols, 'currency'];
  if (prev) header.push(...cols.map((c) => `${c}_previous`));
  const lines = [header.join(',')];
  for (const r of rowsOf(campaigns)) {
    const c = r.level === 'campaign' ? r : r.campaign;
    const s = r.level === 'adset' ? r : r.level === 'ad' ? r.adSet : null;
    const def = defs.find((d) => (r.level === 'campaign' && d.campaign_id === r.id && !d.ad_id) || (r.level === 'ad' && d.ad_id === r.id));
    const m = r.m || {};
    const p = prev ? prev.get(keyOf(r)) || {} : null;
    const cells = [r.level, c.name, s ? s.name : '', r.level === 'ad' ? r.name : '', r.id, r.status || '', def ? eventText(def) : '',
      ...cols.map((k) => (r.m ? m[k] ?? '' : '')), m.currency || ''];
    if (p) cells.push(...cols.map((k) => (r.m ? p[k] ?? 0 : '')));
    lines.push(cells.map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** sourcesCSV is the sources table as CSV text. */
export function sourcesCSV(rows, prev) {
  const cols = ['sessions', 'unique_users', 'engaged', 'converted', 'offthread_count', 'revenue', 'spend', 'roas', 'cost_per_lead'];
  const header = ['type', 'id', 'name', ...cols, 'currency'];
  if (prev) header.push(...cols.map((c) => `${c}_previous`));
  const lines = [header.join(',')];
  for (const r of rows) {
    const cells = [r.type, r.id, r.name, ...cols.map((k) => r[k] ?? 0), r.currency || ''];
    if (prev) {
      const p = prev.get(r.key) || {};
      cells.push(...cols.map((k) => p[k] ?? 0));
    }
    lines.push(cells.map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** saveText hands text to the browser as a file. */
export function saveText(text, filename) {
  const blob = new Blob([text], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}

// ---------------------------------------------------------------- the selector

/**
 * chooseEvent opens the conversion-event dialog for row r (a campaign or an ad) whose
 * definition is def (or null): it lists the events of its sessions (choices) and lets
 * the reader pick one, type a keyword or an off-thread action, or remove the event.
 * It resolves to {type, type_id?, type_value} to set, {remove: true}, or null (cancelled).
 */
export function chooseEvent(r, def, choices) {
  const dialog = document.getElementById('conversion-dialog');
  const box = document.getElementById('conversion-choices');
  const what = r.level === 'campaign' ? `campaign “${r.name}”` : `ad “${r.name}”`;
  document.getElementById('conversion-title').textContent = `Conversion event of ${r.level === 'campaign' ? 'the campaign' : 'the ad'}`;
  fill(document.getElementById('conversion-why'),
    `Which event counts a session of ${what} as converted. `,
    r.level === 'ad' ? 'An ad\'s own event counts beside its campaign\'s. ' : '',
    'The sidecar recounts the past conversations with it, and counts new ones as they come.');
  document.getElementById('conversion-result').textContent = '';
  const options = [];
  const radio = (value, label, extra, checked) => {
    const id = `conv-choice-${options.length}`;
    options.push(value);
    return h('label', { class: 'choice', for: id },
      h('input', { type: 'radio', name: 'conversion-choice', id, value: String(options.length - 1), checked: checked || null }),
      h('span', { class: 'choice-text' }, label, extra ? h('span', { class: 'choice-count' }, extra) : null));
  };
  const same = (c) => def && c.type === def.type && (c.type_value || '').toLowerCase() === (def.type_value || '').toLowerCase() &&
    (c.type === 'keyword' || c.type === 'off_thread' || (c.type_id || '') === (def.type_id || ''));
  const seen = choices.map((c) => radio({ type: c.type, type_id: c.type_id || '', type_value: c.type_value }, eventText(c),
    `${fmt.num(c.sessions)} session${c.sessions === 1 ? '' : 's'}`, same(c)));
  const keyword = h('input', { id: 'conv-keyword', type: 'text', maxlength: 100, placeholder: 'buy', spellcheck: 'false', 'aria-label': 'another keyword' });
  const action = h('input', { id: 'conv-action', type: 'text', maxlength: 100, placeholder: 'purchase', spellcheck: 'false', 'aria-label': 'an off-thread action' });
  const typedKeyword = radio({ typed: keyword, type: 'keyword' }, 'Another keyword: ', null, false);
  typedKeyword.append(keyword);
  const typedAction = radio({ typed: action, type: 'off_thread' }, 'An off-thread action your shop reports: ', null, false);
  typedAction.append(action);
  const none = def ? radio({ remove: true }, 'No conversion event (converted stays 0)', null, false) : null;
  fill(box, h('legend', { class: 'visually-hidden' }, 'Events seen in these sessions'),
    choices.length ? h('p', { class: 'hint' }, 'Seen in these sessions (all time):') : h('p', { class: 'hint' }, 'No keyword, button, list reply or purchase is recorded in these sessions yet.'),
    seen, typedKeyword, typedAction, none);
  for (const input of [keyword, action]) {
    input.addEventListener('input', () => { input.closest('label').querySelector('input[type=radio]').checked = true; });
  }
  return new Promise((resolve) => {
    const form = document.getElementById('conversion-form');
    const done = (v) => {
      form.removeEventListener('submit', onSubmit);
      document.getElementById('conversion-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(v);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const picked = box.querySelector('input[name=conversion-choice]:checked');
      const out = document.getElementById('conversion-result');
      if (!picked) {
        out.className = 'result error';
        out.textContent = 'Choose an event first.';
        return;
      }
      const v = options[Number(picked.value)];
      if (v.typed) {
        const text = v.typed.value.trim();
        if (!text) {
          out.className = 'result error';
          out.textContent = v.type === 'keyword' ? 'Type the keyword.' : 'Type the action, as your shop posts it (e.g. purchase).';
          v.typed.focus();
          return;
        }
        done({ type: v.type, type_value: text });
        return;
      }
      done(v);
    };
    const onCancel = (e) => {
      e.preventDefault();
      done(null);
    };
    form.addEventListener('submit', onSubmit);
    document.getElementById('conversion-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
  });
}

/** isNotFound reports an API 404. */
export const isNotFound = (err) => err instanceof ApiError && err.status === 404;
