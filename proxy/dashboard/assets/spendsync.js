// Spend synced from Meta's Marketing API (SPEC §10): for each ad account that the sidecar
// syncs into the app (-spend-sync act_<id>=<app id>), when it last ran, how many rows it
// stored, when it runs next and its error in words. Loading and "Sync now" are in app.js
// (loadSpendSync, syncNow); this module only turns GET …/ads/sync into DOM, with text
// nodes only (dom.js).

import { h, fill } from './dom.js';
import * as fmt from './format.js';
import { withoutTrace, metaMessage } from './conversions.js';

export const NO_SYNC_HINT = 'Or let the sidecar sync spend itself: -spend-sync act_<id>=<app id> (README: Spend sync)';
export const STOPPED = 'Spend sync stopped: Meta refused the token — start the sidecar with a new -meta-token';

const rowsText = (n) => `${fmt.num(n)} ${n === 1 ? 'row' : 'rows'}`;
const act = (a) => `act_${a.ad_account_id}`;
const acts = (accounts) => accounts.map(act).join(', ');

/** syncLine is "Spend synced from Meta for ad account act_1: last at Mar 18, 2026, 10:00 AM
 * (12 rows), next at Mar 18, 2026, 11:00 AM". */
export function syncLine(a) {
  const last = a.last_success ? `last at ${fmt.when(a.last_success)} (${rowsText(a.rows || 0)})`
    : a.last_run ? 'no successful run yet' : 'first run under way';
  const next = a.stopped ? 'no next run until Sync now or a restart' : a.next_run ? `next at ${fmt.when(a.next_run)}` : '';
  return `Spend synced from Meta for ad account ${act(a)}: ${last}${next ? `, ${next}` : ''}`;
}

/** errorLines are the account's error sentences: stopped (with Meta's answer) or the last
 * run's failure; none after a success. */
export function errorLines(a) {
  if (a.stopped) return [STOPPED, ...(a.last_error ? [`Meta answered: ${metaMessage(a)}`] : [])];
  return a.last_error ? [`Last spend sync failed: ${withoutTrace(a.last_error)}`] : [];
}

/** renderSpendSync fills el (in "Import ad spend"): the hint to turn the sync on when
 * accounts is empty, else a line per account, its errors and a "Sync now" button that
 * calls onSync(button). A null accounts (the state could not be read) shows nothing. */
export function renderSpendSync(el, accounts, onSync) {
  if (!accounts) {
    fill(el);
    return;
  }
  if (!accounts.length) {
    fill(el, h('p', { class: 'hint spend-sync-hint', id: 'spend-sync-hint' }, NO_SYNC_HINT));
    return;
  }
  fill(el,
    h('ul', { class: 'spend-sync-list', id: 'spend-sync-list' }, accounts.map((a) =>
      h('li', { class: `spend-sync-account${a.stopped ? ' stopped' : a.last_error ? ' failing' : ''}`, 'data-account': a.ad_account_id },
        h('p', { class: 'spend-sync-line' }, syncLine(a)),
        errorLines(a).map((text, i) => h('p', { class: i ? 'caption spend-sync-detail' : 'error spend-sync-error' }, text))))),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'spend-sync-now', title: 'Run the spend sync of this app now (POST …/ads/sync)', onclick: (e) => onSync(e.currentTarget) }, 'Sync now')),
    h('p', { class: 'result', id: 'spend-sync-result', role: 'status' }));
}

/** noSpendAnswer is "At a glance" when the period has no spend and accounts sync into the
 * app: why, instead of asking for a CSV. tools is a link to "Downloads and settings". */
export function noSpendAnswer(accounts, tools) {
  if (accounts.some((a) => a.stopped)) {
    return ['No ad spend is recorded for this period, and the spend sync from Meta is stopped: Meta refused the token (see ', tools(), ').'];
  }
  if (accounts.some((a) => a.last_error)) {
    return ['No ad spend is recorded for this period, and the last spend sync from Meta failed (see ', tools(), ').'];
  }
  const done = accounts.filter((a) => a.last_success);
  if (!done.length) {
    return [`No ad spend is recorded for this period yet: the first spend sync from Meta for ad account ${acts(accounts)} has not finished.`];
  }
  const last = done.map((a) => a.last_success).sort().at(-1);
  return [`No ad spend is recorded for this period, so there is no return on ad spend or cost per lead. Spend syncs from Meta for ad account ${acts(accounts)} `,
    `(last at ${fmt.when(last)}): Meta reported none for these days, or they are older than the sync reaches.`];
}

/** syncTrouble is the "At a glance" warning when the period has spend but a sync is
 * stopped or failing, else null. */
export function syncTrouble(accounts, tools) {
  const bad = accounts.filter((a) => a.stopped || a.last_error);
  if (!bad.length) return null;
  const what = bad.some((a) => a.stopped) ? 'is stopped: Meta refused the token' : 'failed at its last run';
  return [`The spend sync from Meta for ad account ${acts(bad)} ${what}, so recent spend may be missing (see `, tools(), ').'];
}
