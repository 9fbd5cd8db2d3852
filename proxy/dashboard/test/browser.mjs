// Drives the Insights dashboard in headless Debian Chromium against a sidecar seeded with
// the demo scenario (see e2e/dashboard_browser_test.go, which starts it):
//
//   node browser.mjs <api base url> <artifact dir>
//
// Environment: CTWA_API_TOKEN (the sidecar's -api-token), CTWA_APP_ID (the demo app),
// CTWA_CONVERSIONS_APP_ID (the app of the recent conversions sent to the Graph API stub),
// CTWA_SPEND_SYNC_API (a second sidecar, without API token, that syncs ad account
// CTWA_SPEND_SYNC_ACT from a Marketing API stub into CTWA_CONVERSIONS_APP_ID),
// CTWA_ADS_STUB_CONTROL (POST <it>/token sets the stub's valid token), CTWA_CHROMIUM
// (default /usr/bin/chromium). It exits non-zero on the first failed check and writes
// dashboard-1280.png, dashboard-drilldown-1280.png, dashboard-conversions-1280.png,
// dashboard-390.png, dashboard-conversions-390.png, dashboard-spend-sync-1280.png,
// dashboard-welcome-1280.png, dashboard-compare-1280.png, dashboard-unknown-app-1280.png,
// dashboard-campaigns-1280.png and dashboard-campaigns-390.png into the artifact dir.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error('usage: node browser.mjs <api base url> <artifact dir>');
  process.exit(2);
}
const token = process.env.CTWA_API_TOKEN || '';
const app = process.env.CTWA_APP_ID || '106540352242922';
const capiApp = process.env.CTWA_CONVERSIONS_APP_ID || '106540352299999';
const NO_CONVERSIONS = 'No conversions sent to Meta: start the sidecar with -meta-token and -waba-id (README: Conversions to Meta)';
const NO_CLICK_ID = 'not sent: the session has no click id (ctwa_clid) — only Click-to-WhatsApp ad clicks carry one';
const spendBase = process.env.CTWA_SPEND_SYNC_API || '';
const spendAct = process.env.CTWA_SPEND_SYNC_ACT || '';
const adsControl = process.env.CTWA_ADS_STUB_CONTROL || '';
const NO_SYNC_HINT = 'Or let the sidecar sync spend itself: -spend-sync act_<id>=<app id> (README: Spend sync)';
const SYNC_STOPPED = 'Spend sync stopped: Meta refused the token — start the sidecar with a new -meta-token';
if (!spendBase || !spendAct || !adsControl) {
  console.error('CTWA_SPEND_SYNC_API, CTWA_SPEND_SYNC_ACT and CTWA_ADS_STUB_CONTROL are needed');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

// playwright-core starts Chromium with a fresh, empty --user-data-dir of its own (and
// refuses one passed in args), removed when the browser closes.
const browser = await chromium.launch({
  executablePath: process.env.CTWA_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let checks = 0;
function check(cond, what) {
  assert.ok(cond, what);
  checks++;
  console.log(`ok ${checks} - ${what}`);
}

/** newPage opens a page that fails the run on script errors and CSP violations. */
async function newPage(viewport, extra = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC', acceptDownloads: true, ...extra });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // A 401 (asking for the token), a refused form (400) or a wrong client id (404) shows
    // as a failed resource load; anything else logged as an error (a CSP violation, an
    // exception) is a defect.
    if (msg.type() === 'error' && !/Failed to load resource: the server responded with a status of (400|401|404)/.test(msg.text())) {
      problems.push(`console error: ${msg.text()}`);
    }
  });
  return { context, page, problems };
}

async function giveToken(page) {
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible', timeout: 10_000 });
  check(await dialog.getByText('API token').first().isVisible(), 'the page asks for the API token when the API answers 401');
  await page.fill('#token-input', token);
  await page.click('#token-ok');
  await dialog.waitFor({ state: 'hidden' });
}

const cell = (page, name, col) => page.locator('#sources-table tbody tr', { hasText: name }).locator(`[data-col="${col}"]`);

async function rowValues(page, name) {
  const out = {};
  for (const col of ['sessions', 'unique_users', 'engaged', 'converted', 'revenue', 'spend', 'roas', 'cost_per_lead']) {
    out[col] = (await cell(page, name, col).innerText()).trim();
  }
  return out;
}

const campRow = (page, key) => page.locator(`#campaigns-table tbody tr[data-key="${key}"]`);

/** campValues reads a row of the campaigns table: every column's value (without its
 * change against the previous period), by data-col. */
async function campValues(page, key) {
  return campRow(page, key).locator('[data-col]').evaluateAll((cells) => Object.fromEntries(cells.map((c) =>
    [c.dataset.col, (c.dataset.col === 'conversion_event' ? c.textContent : (c.querySelector('.value, .source-name') || c).textContent).trim()])));
}

/** deltaOf reads the change line of a cell of the sources or campaigns table. */
const deltaOf = (row, col) => row.locator(`[data-col="${col}"] .delta`).innerText();

/** offScreen lists the cells of cols in rows (a CSS selector) whose box is not wholly
 * inside the viewport's width (or is empty), or whose text is clipped. */
async function offScreen(page, rows, cols) {
  return page.evaluate(([sel, want]) => {
    const out = [];
    const vw = document.documentElement.clientWidth;
    for (const tr of document.querySelectorAll(sel)) {
      for (const col of want) {
        const td = tr.querySelector(`[data-col="${col}"]`);
        const r = td ? td.getBoundingClientRect() : null;
        if (!r || r.width <= 0 || r.left < 0 || r.right > vw || td.scrollWidth > td.clientWidth + 1 || !td.textContent.trim()) {
          out.push(`${tr.dataset.source || tr.dataset.key || tr.textContent.slice(0, 20)} ${col}: ${r ? `${Math.round(r.left)}–${Math.round(r.right)}` : 'missing'}`);
        }
      }
    }
    return out;
  }, [rows, cols]);
}

const MONEY_COLS = ['revenue', 'spend', 'roas', 'cost_per_lead'];

/** chartsRendered checks that the funnel and daily SVGs hold drawn shapes. */
async function chartsRendered(page) {
  return page.evaluate(() => {
    const funnelBars = [...document.querySelectorAll('#funnel svg rect.funnel-bar')].map((r) => Number(r.getAttribute('width')));
    const dailyBars = [...document.querySelectorAll('#daily svg rect.bar')].map((r) => Number(r.getAttribute('height')));
    const line = document.querySelector('#daily svg path.revenue-line')?.getAttribute('d') || '';
    const dayTitles = [...document.querySelectorAll('#daily svg .bucket title')].map((t) => t.textContent);
    return { funnelBars, dailyBars, line, dayTitles };
  });
}

/** conversions reads the "Conversions to Meta" panel once the sentence `waitFor` shows:
 * the counts by status, the sentences and the table's rows. */
async function conversions(page, waitFor) {
  await page.locator('#conversions-words', { hasText: waitFor }).waitFor({ timeout: 15_000 });
  return page.evaluate(() => ({
    counts: Object.fromEntries([...document.querySelectorAll('#conversions-counts .stat')].map((e) => [e.dataset.status, e.querySelector('dd').textContent])),
    words: [...document.querySelectorAll('#conversions-words li')].map((li) => li.textContent),
    rows: [...document.querySelectorAll('#conversions-table tbody tr')].map((tr) =>
      Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.textContent.trim()]))),
    heading: document.querySelector('#conversions-panel h3')?.textContent || '',
  }));
}

try {
  // ---------------------------------------------------------------- desktop, 1280 px
  const { page, problems } = await newPage({ width: 1280, height: 900 });
  const res = await page.goto(`${base}/`);
  check(res.status() === 200, 'GET / answers 200');
  check(/default-src 'self'/.test(res.headers()['content-security-policy'] || ''), 'the page is served with a Content-Security-Policy');
  await page.locator('#welcome').waitFor({ state: 'visible' });
  check((await page.locator('#welcome').innerText()).includes('phone number id'), 'without an app id the page explains what to enter');

  // First visit: the token comes first, so that the page can list the apps. A wrong token
  // and Cancel are said in words, and nothing wrong is kept.
  await page.locator('#token-dialog').waitFor({ state: 'visible', timeout: 10_000 });
  check(await page.locator('#known-apps button').count() === 0, 'the first visit asks for the token before listing any app');
  await page.fill('#token-input', 'not-the-token');
  await page.click('#token-ok');
  await page.locator('#token-why', { hasText: 'refused that token' }).waitFor({ timeout: 10_000 });
  const storedToken = () => page.evaluate(() => sessionStorage.getItem('ctwa-sidecar.api-token'));
  check(await storedToken() === null, 'a refused token is dropped at once, while the page asks again');
  await page.click('#token-cancel');
  await page.locator('#welcome-token-error').waitFor({ timeout: 10_000 });
  const refusedWords = await page.locator('#welcome-token-error').innerText();
  console.log('wrong token, then Cancel:', refusedWords);
  check(refusedWords.includes('The sidecar refused the API token that was entered') && refusedWords.includes('no token is stored') &&
    !refusedWords.includes('No API token was given'), 'Cancel after a wrong token says the sidecar refused it, not that no token was given');
  check(await storedToken() === null && await page.locator('#forget-token').isHidden() && await page.locator('#known-apps button').count() === 0,
    'and nothing wrong is kept: no token, no "Forget token", no app list');
  await page.click('#welcome-token-ask');
  await giveToken(page);
  await page.locator('#known-apps button', { hasText: app }).waitFor({ timeout: 15_000 });
  const listed = await page.locator('#known-apps button').allInnerTexts();
  check(listed.includes(app) && listed.includes('onprem') && listed.includes(capiApp) && await storedToken() === token,
    `with the right token the welcome page lists the apps to choose from: ${listed.join(', ')}`);
  await page.screenshot({ path: join(artifacts, 'dashboard-welcome-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-welcome-1280.png')}`);

  // As a person would: type the app id, pick the demo's dates, press Show.
  await page.fill('#app', app);
  await page.selectOption('#preset', 'custom');
  await page.fill('#from', '2026-03-16');
  await page.fill('#to', '2026-03-18');
  await page.click('#show');
  await page.locator('#sources-table').waitFor({ timeout: 15_000 });

  const image = await rowValues(page, 'Spring sale - image');
  console.log('Spring sale - image row:', JSON.stringify(image));
  assert.deepEqual(image, {
    sessions: '15', unique_users: '15', engaged: '11', converted: '5',
    revenue: '€218.90', spend: '€188.55', roas: '1.16', cost_per_lead: '€12.57',
  });
  check(true, 'the Spring sale - image row shows 15 sessions, 5 converted, €218.90 revenue, €188.55 spend, ROAS 1.16');
  const video = await rowValues(page, 'Spring sale - video');
  check(video.sessions === '10' && video.revenue === '€119.50' && video.spend === '€122.30' && video.roas === '0.98',
    `the Spring sale - video row: ${JSON.stringify(video)}`);
  const club = await rowValues(page, 'Join our running club');
  check(club.sessions === '5' && club.revenue === '€0.00' && club.spend === '€61.20' && club.roas === '0.00', `the running club row: ${JSON.stringify(club)}`);
  await page.waitForFunction(() => document.querySelectorAll('#recent-apps option').length >= 2);
  const options = await page.locator('#recent-apps option').evaluateAll((os) => os.map((o) => o.value));
  check(options.includes('106540352242922') && options.includes('onprem'), `the app picker offers the apps with traffic: ${options.join(', ')}`);
  const qr = await rowValues(page, 'Billboard A (QR)');
  check(qr.sessions === '6' && qr.revenue === '€49.90' && qr.spend === '—' && qr.roas === '—', `the QR source row: ${JSON.stringify(qr)}`);
  const organic = await rowValues(page, 'Organic');
  check(organic.sessions === '10' && organic.engaged === '5' && organic.revenue === '—', `the organic row: ${JSON.stringify(organic)}`);
  const types = await page.locator('#sources-table tbody .badge').allInnerTexts();
  check(['AD', 'POST', 'CUSTOM', 'ORGANIC'].every((t) => types.map((x) => x.toUpperCase()).includes(t)), `source kinds shown: ${types.join(', ')}`);
  check((await page.locator('#sources-table tfoot').innerText()).includes('€388.30'), 'the total row sums the revenue (€388.30)');

  // The answer to "which ad brought the most revenue per euro spent".
  const answer = await page.locator('#answer-body').innerText();
  console.log('At a glance:', answer.replace(/\n+/g, ' | '));
  check(/Most revenue per €1 spent: Spring sale - image/.test(answer) && answer.includes('ROAS 1.16'), 'the summary names the ad with the best ROAS');
  check(answer.includes('15 sessions → 11 engaged → 5 converted → 2 purchases') && answer.includes('between engaged and converted: 6 of 11'),
    'the summary says where its leads drop off');
  check((await page.locator('#kpi-roas .kpi-value').innerText()) === '0.91', 'the ROAS of all ads is (218.90 + 119.50) / 372.05 = 0.91');
  check((await page.locator('#kpi-sessions .kpi-value').innerText()) === '47', 'the sessions card counts 47 sessions');

  // This sidecar syncs no spend from Meta: the CSV import as before, with one hint line.
  await page.locator('#spend-sync-hint').waitFor();
  check((await page.locator('#spend-sync').innerText()) === NO_SYNC_HINT, `an app without spend sync shows how to turn it on: ${NO_SYNC_HINT}`);
  check(await page.locator('#spend-sync-now').count() === 0 && await page.locator('#spend-sync-list').count() === 0 &&
    await page.locator('#import-csv').isVisible() && await page.locator('#import-form button[type=submit]').isVisible(),
  'and the CSV import is unchanged, without a "Sync now" button');

  // Sorting: by ROAS, highest first; sources without spend stay last.
  await page.click('[data-sort="roas"]');
  let names = await page.locator('#sources-table tbody [data-col="name"] .source-name').allInnerTexts();
  check(names[0] === 'Spring sale - image' && names[1] === 'Spring sale - video' && names[2] === 'Join our running club',
    `sorted by ROAS: ${names.slice(0, 3).join(', ')}`);
  check(await page.locator('th[data-col="roas"]').getAttribute('aria-sort') === 'descending', 'the ROAS header says it sorts descending');
  await page.click('[data-sort="roas"]');
  names = await page.locator('#sources-table tbody [data-col="name"] .source-name').allInnerTexts();
  check(names[0] === 'Join our running club', `ROAS ascending starts with the running club: ${names[0]}`);
  await page.click('[data-sort="sessions"]');
  names = await page.locator('#sources-table tbody [data-col="name"] .source-name').allInnerTexts();
  check(names[0] === 'Spring sale - image', 'sorted by sessions, the image ad leads');

  // Charts: the funnel of all sources and the daily chart, drawn as SVG.
  await page.locator('#daily svg path.revenue-line').waitFor({ timeout: 15_000 });
  let charts = await chartsRendered(page);
  console.log('charts:', JSON.stringify(charts));
  check(charts.funnelBars.length === 4 && charts.funnelBars.every((w) => w > 0), 'the funnel draws four non-empty bars');
  check(charts.dailyBars.length === 3 && charts.dailyBars.filter((v) => v > 0).length === 2, 'the daily chart draws one bar per day, two of them with sessions');
  check(charts.dayTitles.join('; ') === 'Mar 16, 2026: 30 sessions, €0.00 revenue; Mar 17, 2026: 17 sessions, €0.00 revenue; Mar 18, 2026: 0 sessions, €388.30 revenue',
    `day by day, the chart adds up to the table: ${charts.dayTitles.join('; ')}`);
  check(/^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+){2}$/.test(charts.line), 'the daily chart draws the revenue line through three days');
  // The funnel of the ads (the sessions a conversion event applies to): image 15 + video
  // 10 + club 5 sessions; 11 + 5 + 0 engaged; the 5 "buy" leads of the image ad converted;
  // the purchases of these sessions are leads 2 and 5 (image) and 16 (video). The QR-code
  // lead 29's purchase is shown apart: 3 + 1 are the 4 purchases of the cards.
  const funnelLabels = await page.locator('#funnel svg text.funnel-value').allTextContents();
  check((await page.locator('#funnel-title').innerText()) === 'Funnel · Click-to-WhatsApp ads' && funnelLabels.join('|') === '30 · 100%|16 · 53%|5 · 17%|3 · 10%',
    `funnel of the ads: ${funnelLabels.join(', ')}`);
  const apart = await page.locator('#funnel-apart').innerText();
  console.log('apart from the funnel:', apart);
  check(apart.startsWith('Not in this funnel: 1 purchase (€49.90) of QR-code and wa.me-link sessions') && apart.includes('no conversion event applies to them') &&
    (await page.locator('#kpi-purchases .kpi-value').innerText()) === '4', 'the QR-code purchase is shown apart from the funnel, in words; the cards still count all 4');
  check((await page.locator('#daily-caption').innerText()).includes('one day'), 'the daily chart explains what a bar is');

  // Campaign → ad set → ad, as in Ads Manager (sidecar/assets/demo/spend.csv): Spring sale
  // is ad set Runners 25-45 with the image and the video ad; Trail club is Trail fans with
  // the running club ad. Campaigns start collapsed.
  const spring = 'campaign:23851172049950001';
  await campRow(page, spring).waitFor({ timeout: 15_000 });
  check(await page.locator('#campaigns-table tbody tr[data-level="ad"]').count() === 0 && await page.locator('#campaigns-table tbody tr[data-level="campaign"]').count() === 2,
    'the campaigns table lists the 2 campaigns, collapsed');
  let cv = await campValues(page, spring);
  console.log('Spring sale:', JSON.stringify(cv));
  // 12,000 + 11,500 + 8,000 + 7,600 impressions; 240 + 221 + 96 clicks; CTR 557 ÷ 39,100;
  // CPC €310.85 ÷ 557; ROAS (218.90 + 119.50) ÷ 310.85; cost per lead €310.85 ÷ 25 leads.
  assert.deepEqual(cv, { name: 'Spring sale', conversion_event: 'Keyword “buy”Change', impressions: '39,100', clicks: '557', ctr: '1.42%', cpc: '€0.56',
    sessions: '25', engaged: '16', converted: '5', revenue: '€338.40', spend: '€310.85', roas: '1.09', cost_per_lead: '€12.43' });
  check(await campRow(page, spring).locator('.badge').innerText() === 'CAMPAIGN', 'the Spring sale campaign: 39,100 impressions, 557 clicks, CTR 1.42%, CPC €0.56, ROAS 1.09, its conversion event shown');
  await campRow(page, spring).locator('button.toggle').click();
  await campRow(page, 'ad:120214567890123456').waitFor();
  const adSet = await campValues(page, 'adset:23851172049950101');
  check(adSet.name === 'Runners 25-45' && adSet.impressions === '39,100' && adSet.spend === '€310.85' && adSet.converted === '5' && adSet.cost_per_lead === '€12.43',
    `expanded, the campaign shows its ad set Runners 25-45 with the same totals: ${JSON.stringify(adSet)}`);
  const imageAd = await campValues(page, 'ad:120214567890123456');
  const videoAd = await campValues(page, 'ad:120214567890987654');
  console.log('image ad:', JSON.stringify(imageAd), 'video ad:', JSON.stringify(videoAd));
  check(imageAd.impressions === '23,500' && imageAd.clicks === '461' && imageAd.ctr === '1.96%' && imageAd.cpc === '€0.41' && imageAd.sessions === '15' &&
    imageAd.converted === '5' && imageAd.revenue === '€218.90' && imageAd.spend === '€188.55' && imageAd.roas === '1.16' && imageAd.cost_per_lead === '€12.57',
  'and its ads: the image ad 23,500 impressions, 461 clicks, CTR 1.96%, CPC €0.41 (188.55 ÷ 461), ROAS 1.16');
  check(videoAd.impressions === '15,600' && videoAd.clicks === '96' && videoAd.ctr === '0.62%' && videoAd.cpc === '€1.27' && videoAd.sessions === '10' &&
    videoAd.converted === '0' && videoAd.revenue === '€119.50' && videoAd.roas === '0.98' && videoAd.conversion_event.includes('campaign\'s: Keyword “buy”'),
  'the video ad 15,600 impressions, 96 clicks, CTR 0.62%, CPC €1.27, under the campaign\'s conversion event');
  check(await campRow(page, 'ad:120214567890777777').count() === 0, 'Trail club stays collapsed');
  const trail = await campValues(page, 'campaign:23851172049950002');
  check(trail.impressions === '10,200' && trail.clicks === '124' && trail.ctr === '1.22%' && trail.cpc === '€0.49' && trail.spend === '€61.20' &&
    trail.roas === '0.00' && trail.cost_per_lead === '€12.24' && trail.conversion_event.startsWith('none'), `the Trail club campaign: ${JSON.stringify(trail)}`);
  const [campaignsFile] = await Promise.all([page.waitForEvent('download'), page.click('#campaigns-csv')]);
  const campaignsCSV = (await streamText(await campaignsFile.createReadStream())).trim().split('\r\n');
  console.log('campaigns CSV:', campaignsCSV.join(' / '));
  const csvHead = campaignsCSV[0].split(',');
  const csvImage = campaignsCSV.find((l) => l.startsWith('ad,Spring sale,Runners 25-45,Spring sale - image,120214567890123456,'))?.split(',') || [];
  const at = (name) => csvImage[csvHead.indexOf(name)];
  check(campaignsCSV.length === 8 && csvHead.slice(0, 7).join(',') === 'level,campaign,ad_set,ad,id,status,conversion_event' &&
    at('impressions') === '23500' && at('clicks') === '461' && at('ctr') === '1.96' && at('cpc') === '0.41' && at('converted') === '5' &&
    at('revenue') === '218.9' && at('spend') === '188.55' && at('roas') === '1.16' && at('cost_per_lead') === '12.57' && at('currency') === 'EUR' &&
    campaignsFile.suggestedFilename() === `campaigns-${app}-2026-03-16_2026-03-18.csv`,
  `the CSV holds every campaign, ad set and ad (collapsed or not) with plain numbers (${campaignsFile.suggestedFilename()})`);
  await page.locator('#campaigns-result.ok', { hasText: 'downloaded' }).waitFor();

  // Conversions to Meta of the demo's days: all from March 2026, so long past the 7 days
  // Meta takes (expired), except those without a click id (skipped).
  let conv = await conversions(page, 'expired');
  console.log('conversions of the demo:', JSON.stringify({ counts: conv.counts, words: conv.words, heading: conv.heading }));
  check(JSON.stringify(conv.counts) === JSON.stringify({ sent: '0', pending: '0', failed: '0', skipped: '3', expired: '37' }),
    `the conversions panel counts 0 sent, 0 pending, 0 failed, 3 skipped, 37 expired: ${JSON.stringify(conv.counts)}`);
  check(conv.words.includes(`3 conversions ${NO_CLICK_ID}`), 'the skipped conversions are explained: no click id');
  check(conv.words.some((w) => w.startsWith('37 conversions expired: Meta takes events of the last 7 days only')), 'the expired conversions are explained');
  check(conv.rows.length === 40 && conv.heading === 'Latest 40 of 40', `the table lists the 40 conversions (${conv.rows.length}, "${conv.heading}")`);
  // The four purchases share one time (Mar 18, 12:00): they lead, in any order.
  check(conv.rows.slice(0, 4).every((r) => r.time === 'Mar 18, 2026, 12:00 PM' && r.event === 'Purchase' && /^€\d/.test(r.value)) &&
    conv.rows[4].time.startsWith('Mar 1') && conv.rows[4].event !== 'Purchase',
  `the newest conversions come first: ${JSON.stringify(conv.rows.slice(0, 5))}`);
  check(conv.rows.some((r) => r.event === 'Purchase' && r.value === '€49.90' && r.status === 'skipped no_click_id'),
    'the QR code purchase is listed as skipped, no_click_id, with its €49.90');

  await page.screenshot({ path: join(artifacts, 'dashboard-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-1280.png')}`);

  // Drill down: click the image ad.
  await page.locator('#sources-table tbody tr', { hasText: 'Spring sale - image' }).locator('td[data-col="sessions"]').click();
  await page.locator('#drill').waitFor({ state: 'visible' });
  check((await page.locator('#drill-title').innerText()).includes('Spring sale - image'), 'clicking the source opens its drill-down');
  check(await page.locator('#sources-table tbody tr.selected').count() === 1, 'the clicked row is marked selected');
  check((await page.locator('#funnel-title').innerText()) === 'Funnel · Spring sale - image', 'the funnel follows the selection');
  await page.waitForFunction(() => document.querySelectorAll('#funnel svg text.funnel-value').length === 4);
  const adFunnel = await page.locator('#funnel svg text.funnel-value').allTextContents();
  check(adFunnel.join('|') === '15 · 100%|11 · 73%|5 · 33%|2 · 13%', `funnel of the ad: ${adFunnel.join(', ')}`);
  check((await page.locator('#funnel-summary').innerText()).includes('between engaged and converted: 6 of 11 (55%)'), 'the funnel names the biggest drop-off in words');
  await page.locator('#drill-keywords-table').waitFor({ timeout: 15_000 });
  const keywords = await page.locator('#drill-keywords-table tbody tr').allInnerTexts();
  console.log('keywords:', JSON.stringify(keywords));
  check(keywords.length === 2 && keywords.some((k) => /^buy\s+5\s+33%$/.test(k)) && keywords.some((k) => /^price\s+5\s+33%$/.test(k)),
    'the keywords panel lists buy and price, 5 messages each (33% of sessions)');
  await page.locator('#drill-event-types').waitFor();
  const eventTypes = Object.fromEntries(await page.locator('#drill-event-types li').evaluateAll((lis) =>
    lis.map((li) => [li.dataset.type, li.querySelector('.bar-value').textContent])));
  console.log('events by type:', JSON.stringify(eventTypes));
  check(eventTypes.conversation === '15' && eventTypes.engagement === '11' && eventTypes.keyword === '10' && eventTypes.converted === '5' && eventTypes.purchase === '2',
    'the events panel counts 15 conversations, 11 engagements, 10 keywords (buy counted once per message), 5 converted and 2 purchases');
  const adStats = await page.locator('#drill-ad').innerText();
  check(adStats.includes('campaign Spring sale') && adStats.includes('23,500') && adStats.includes('461'), 'the ad panel shows campaign, impressions and clicks');
  charts = await chartsRendered(page);
  check(charts.dayTitles[0] === 'Mar 16, 2026: 15 sessions, €0.00 revenue' && charts.dayTitles[2] === 'Mar 18, 2026: 0 sessions, €218.90 revenue',
    `the daily chart follows the selection: ${charts.dayTitles.join('; ')}`);

  // Downloads carry the token: fetch + blob.
  const [contacts] = await Promise.all([page.waitForEvent('download'), page.click('#drill-contacts')]);
  const contactsCSV = await streamText(await contacts.createReadStream());
  check(contactsCSV.startsWith('phone,user_id,first_seen') && contactsCSV.trim().split('\n').length === 16,
    `the contacts CSV of the ad has a header and 15 leads (${contacts.suggestedFilename()})`);
  await page.screenshot({ path: join(artifacts, 'dashboard-drilldown-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-drilldown-1280.png')}`);

  // ---------------------------------------------------------------- phone, 390 px
  const phone = await newPage({ width: 390, height: 844 }, { isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await phone.page.goto(`${base}/?app=${app}&from=2026-03-16&to=2026-03-18`);
  await phone.page.locator('#token-dialog').waitFor({ state: 'visible', timeout: 10_000 });
  await phone.page.fill('#token-input', 'not-the-token');
  await phone.page.click('#token-ok');
  await phone.page.locator('#token-why', { hasText: 'refused that token' }).waitFor({ timeout: 10_000 });
  check(true, 'a wrong token is refused in words and asked again');
  await giveToken(phone.page);
  await phone.page.locator('#sources-table').waitFor({ timeout: 15_000 });
  await phone.page.locator('#daily svg path.revenue-line').waitFor({ timeout: 15_000 });
  const phoneImage = await rowValues(phone.page, 'Spring sale - image');
  check(phoneImage.revenue === '€218.90' && phoneImage.roas === '1.16', 'the phone layout shows the same table values');
  // Revenue, spend, ROAS and cost per lead of every source and campaign row are on
  // screen, not behind a sideways swipe: each cell's box lies within the 390 px viewport.
  let cut = await offScreen(phone.page, '#sources-table tbody tr, #sources-table tfoot tr', MONEY_COLS);
  check(cut.length === 0 && await phone.page.locator('#sources-table tbody tr').count() >= 6,
    `the four money columns of every source are within 390 px${cut.length ? `: ${cut.join('; ')}` : ''}`);
  await campRow(phone.page, 'campaign:23851172049950001').locator('button.toggle').click();
  await campRow(phone.page, 'ad:120214567890987654').waitFor();
  cut = await offScreen(phone.page, '#campaigns-table tbody tr', MONEY_COLS);
  check(cut.length === 0 && await phone.page.locator('#campaigns-table tbody tr').count() === 5,
    `so are those of the campaigns, ad sets and ads${cut.length ? `: ${cut.join('; ')}` : ''}`);
  const wraps = await phone.page.evaluate(() => ['sources', 'campaigns'].map((id) => {
    const w = document.getElementById(id);
    return w.scrollWidth - w.clientWidth;
  }));
  check(wraps.every((d) => d <= 0), `and neither table scrolls sideways inside its panel (${wraps.join(', ')} px)`);
  const phoneRevenue = await phone.page.locator('#campaigns-table tr[data-key="ad:120214567890987654"] [data-col="revenue"] .value').innerText();
  check(phoneRevenue === '€119.50', 'the video ad\'s revenue reads €119.50 on the phone');
  await phone.page.locator('#campaigns-panel').scrollIntoViewIfNeeded();
  await phone.page.screenshot({ path: join(artifacts, 'dashboard-campaigns-390.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-campaigns-390.png')}`);
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page does not scroll sideways at 390 px (overflow ${overflow} px); the table scrolls inside its panel`);
  charts = await chartsRendered(phone.page);
  const svgWidths = await phone.page.evaluate(() => [...document.querySelectorAll('.chart svg')].map((s) => s.getBoundingClientRect().width));
  check(charts.funnelBars.length === 4 && svgWidths.every((w) => w > 200 && w <= 390), `charts fit the phone width (${svgWidths.join(', ')} px)`);
  await phone.page.locator('#sources-table tbody tr', { hasText: 'Spring sale - image' }).locator('.source-name').click();
  await phone.page.locator('#drill-keywords-table').waitFor({ timeout: 15_000 });
  check(true, 'the drill-down opens on a phone');
  await phone.page.locator('#drill-latest-table').waitFor({ timeout: 15_000 });
  const leads = await phone.page.locator('#drill-latest-table td[data-col="lead"]').allInnerTexts();
  cut = await offScreen(phone.page, '#drill-latest-table tbody tr', ['when', 'event', 'lead']);
  check(leads.length === 8 && leads.every((l) => /^\+49\d{9,}$/.test(l)) && cut.length === 0,
    `the latest events' lead column is whole at 390 px (${leads[0]}…)${cut.length ? `: ${cut.join('; ')}` : ''}`);
  await phone.page.screenshot({ path: join(artifacts, 'dashboard-390.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-390.png')}`);
  await phone.page.goto(`${base}/?app=${capiApp}&range=7`);
  const phoneConv = await conversions(phone.page, 'Meta refused the click id');
  check(phoneConv.counts.failed === '2' && phoneConv.rows.length === 7, `the conversions panel on a phone: ${JSON.stringify(phoneConv.counts)}, ${phoneConv.rows.length} rows`);
  const convOverflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const convBox = await phone.page.locator('#conversions-panel').boundingBox();
  check(convOverflow <= 0 && convBox.x >= 0 && convBox.x + convBox.width <= 390,
    `the conversions panel fits 390 px (overflow ${convOverflow} px, panel ${Math.round(convBox.x)}–${Math.round(convBox.x + convBox.width)} px); its table scrolls inside`);
  await phone.page.locator('#conversions-panel').scrollIntoViewIfNeeded();
  await phone.page.screenshot({ path: join(artifacts, 'dashboard-conversions-390.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-conversions-390.png')}`);
  check(phone.problems.length === 0, `no script errors or CSP violations at 390 px${phone.problems.length ? `: ${phone.problems.join('; ')}` : ''}`);
  await phone.context.close();

  // ---------------------------------------------------------------- back at 1280 px: downloads, forms, empty states
  const [events] = await Promise.all([page.waitForEvent('download'), page.click('#download-events')]);
  const eventsCSV = await streamText(await events.createReadStream());
  check(eventsCSV.startsWith('id,date,app_id,type') && eventsCSV.includes('purchase'), `the events CSV downloads (${events.suggestedFilename()})`);
  await page.locator('#download-result.ok', { hasText: 'downloaded' }).waitFor();
  check(true, 'the page says the download is done');
  const [allContacts] = await Promise.all([page.waitForEvent('download'), page.click('#download-contacts')]);
  check((await streamText(await allContacts.createReadStream())).startsWith('phone,'), 'the contacts CSV of all sources downloads');

  // Forms: a refused import explains itself; a keyword and a source are added.
  await page.fill('#import-csv', 'Day,Campaign name,Campaign ID,Ad name,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n' +
    'yesterday,Spring sale,23851172049950001,Spring sale - image,120214567890123456,1000,20,11.45\n');
  await page.fill('#import-account', '174816537731874');
  await page.click('#import-form button[type=submit]');
  await page.locator('#import-result.error').waitFor();
  const importErr = await page.locator('#import-result').innerText();
  console.log('import error:', importErr);
  check(/^Not saved/.test(importErr) && /line 2/.test(importErr) && /yesterday/.test(importErr), 'a refused import shows the API\'s message in words');
  await page.fill('#import-csv', 'Day,Campaign name,Campaign ID,Ad name,Ad ID,Impressions,Link clicks,Amount spent (EUR)\n' +
    '2026-03-18,Spring sale,23851172049950001,Spring sale - image,120214567890123456,1000,20,11.45\n');
  await page.fill('#import-account', '174816537731874');
  await page.click('#import-form button[type=submit]');
  await page.locator('#import-result.ok', { hasText: 'Imported 1 rows' }).waitFor();
  await page.locator('#sources-table tbody tr', { hasText: 'Spring sale - image' }).locator('[data-col="spend"]', { hasText: '€200.00' }).waitFor();
  check(true, 'an imported spend row shows up in the table (€188.55 + €11.45 = €200.00)');
  await page.fill('#keyword', 'size');
  await page.click('#keyword-form button[type=submit]');
  await page.locator('#keyword-result.ok', { hasText: 'Tracking “size”' }).waitFor();
  check(true, 'a keyword can be tracked');
  await page.fill('#keyword', 'price');
  await page.click('#keyword-form button[type=submit]');
  await page.locator('#keyword-result.error', { hasText: 'already tracked' }).waitFor();
  check(true, 'a duplicate keyword is refused in words');
  await page.fill('#source-name', 'Flyer (QR)');
  await page.fill('#source-phrase', 'flyer spring');
  await page.click('#source-form button[type=submit]');
  await page.locator('#source-result.ok').waitFor();
  await page.locator('#sources-table tbody tr', { hasText: 'Flyer (QR)' }).waitFor();
  check(true, 'a new custom source is added and listed');

  // Empty period: explained, with a way back to the data.
  await page.fill('#from', '2025-01-01');
  await page.fill('#to', '2025-01-31');
  await page.click('#show');
  await page.locator('#sources-empty #show-span').waitFor({ timeout: 15_000 });
  const empty = await page.locator('#sources-empty').innerText();
  check(empty.includes('No conversation started') && empty.includes('Mar 16, 2026'), 'an empty period is explained and points to the recorded days');
  await page.locator('#conversions-hint', { hasText: 'at other times' }).waitFor({ timeout: 15_000 });
  check((await page.locator('#conversions-hint').innerText()) === 'No conversion in Jan 1, 2025 – Jan 31, 2025; 40 conversions at other times: choose another period to see them.',
    'a period without conversions says the app has some at other times');
  check((await page.locator('#funnel').innerText()).includes('no funnel to draw'), 'the empty funnel says why it is empty');
  await page.click('#show-span');
  await page.locator('#sources-table tbody tr', { hasText: 'Spring sale - image' }).waitFor();
  check(await page.inputValue('#from') === '2026-03-16', '"Show that period" brings the data back');

  // All time: the sources without dates; the daily chart spans the recorded days.
  await page.selectOption('#preset', 'all');
  await page.locator('#status', { hasText: 'all recorded time' }).waitFor({ timeout: 15_000 });
  await page.locator('#daily-caption', { hasText: 'All time" spans the first to the last day' }).waitFor({ timeout: 15_000 });
  check((await rowValues(page, 'Spring sale - image')).sessions === '15' && (await chartsRendered(page)).dailyBars.length === 3,
    '"All time" lists the sources and charts the three recorded days');

  // A day when the image ad spent money but started no session: its spend still counts.
  await page.selectOption('#preset', 'custom');
  await page.fill('#from', '2026-03-17');
  await page.fill('#to', '2026-03-17');
  await page.click('#show');
  await page.locator('#status', { hasText: 'Mar 17, 2026 · app' }).waitFor({ timeout: 15_000 });
  const spentOnly = await rowValues(page, 'Spring sale - image');
  check(spentOnly.sessions === '0' && spentOnly.spend === '€92.15' && spentOnly.roas === '0.00',
    `an ad with spend and no session that day is listed with its spend: ${JSON.stringify(spentOnly)}`);

  // Periods: the presets end today (the browser's date) and span 14 days or 6 months.
  const todayUTC = new Date().toISOString().slice(0, 10);
  const shift = (day, days, months = 0) => {
    const d = new Date(`${day}T00:00:00Z`);
    const want = d.getUTCDate();
    d.setUTCDate(1);
    d.setUTCMonth(d.getUTCMonth() + months);
    d.setUTCDate(Math.min(want, new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate()));
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  };
  for (const [chip, from] of [['14', shift(todayUTC, -13)], ['6m', shift(todayUTC, 1, -6)], ['12m', shift(todayUTC, 1, -12)], ['7', shift(todayUTC, -6)], ['30', shift(todayUTC, -29)]]) {
    await page.click(`#preset-chips [data-preset="${chip}"]`);
    await page.waitForFunction(([f]) => document.getElementById('from').value === f && /app /.test(document.getElementById('status').textContent), [from]);
    check(await page.inputValue('#preset') === chip && await page.inputValue('#to') === todayUTC &&
      await page.locator(`#preset-chips [data-preset="${chip}"]`).getAttribute('aria-pressed') === 'true',
    `the ${chip.toUpperCase().replace(/^(\d+)$/, '$1D')} preset shows ${from} to ${todayUTC}`);
  }

  // Comparison with the previous period of the same length: Mar 17–18 against Mar 15–16.
  // Sessions: leads 25–41 started on Mar 17 (17), leads 1–24 and the 6 fixture sessions on
  // Mar 16 (30): −43%. Engaged 6 (QR leads 29, 31, 33; organic 36, 38, 40) against 18:
  // −67%. Converted 0 against the 5 "buy" leads: −100%. Revenue €388.30 (Mar 18) against
  // none: new. Spend 92.15 + 58.30 + 31.20 of Mar 17 and the €11.45 imported above for
  // Mar 18 = €193.10 against 96.40 + 64.00 + 30.00 = €190.40: +1%.
  await page.selectOption('#preset', 'custom');
  await page.fill('#from', '2026-03-17');
  await page.fill('#to', '2026-03-18');
  await page.check('#compare');
  await page.locator('#status', { hasText: 'compared with Mar 15, 2026 – Mar 16, 2026' }).waitFor({ timeout: 15_000 });
  await page.locator('#kpi-sessions .kpi-delta').waitFor();
  const kpiDelta = async (id) => (await page.locator(`#kpi-${id} .kpi-delta`).innerText()).trim();
  const deltas = { sessions: await kpiDelta('sessions'), engaged: await kpiDelta('engaged'), converted: await kpiDelta('converted'),
    revenue: await kpiDelta('revenue'), spend: await kpiDelta('spend') };
  console.log('deltas against the previous period:', JSON.stringify(deltas));
  check(deltas.sessions === '▼ −43% vs 30' && deltas.engaged === '▼ −67% vs 18' && deltas.converted === '▼ −100% vs 5' &&
    deltas.revenue === '▲ new vs —' && deltas.spend === '▲ +1% vs €190.40' && (await page.locator('#kpi-sessions .kpi-value').innerText()) === '17',
  'the cards show the change against the previous period and its figure');
  check(await page.locator('#kpi-sessions .kpi-delta.delta-down').count() === 1 && await page.locator('#kpi-revenue .kpi-delta.delta-up').count() === 1 &&
    await page.locator('#kpi-spend .kpi-delta.delta-flat').count() === 1, 'a fall of sessions reads as bad news, new revenue as good news, more spend as neither');
  // In the table: the QR code's 6 sessions (leads 29–34, all on Mar 17) are new; organic
  // 7 (leads 35–41) against the 3 fixture sessions of Mar 16: +133%; the Spring sale
  // campaign spent 92.15 + 58.30 + 11.45 = €161.90 against 96.40 + 64.00 = €160.40: +1%,
  // and had no session against 25: −100%.
  const qrRow = page.locator('#sources-table tbody tr', { hasText: 'Billboard A (QR)' });
  const organicRow = page.locator('#sources-table tbody tr', { hasText: 'Organic' });
  check(await deltaOf(qrRow, 'sessions') === 'new' && await deltaOf(organicRow, 'sessions') === '+133%' &&
    (await qrRow.locator('[data-col="sessions"] .value').innerText()) === '6', 'the sources table shows each cell\'s change');
  await campRow(page, spring).locator('[data-col="spend"] .delta').waitFor({ timeout: 15_000 });
  check(await deltaOf(campRow(page, spring), 'spend') === '+1%' && await deltaOf(campRow(page, spring), 'sessions') === '−100%' &&
    (await campRow(page, spring).locator('[data-col="spend"] .value').innerText()) === '€161.90', 'and so does the campaigns table');
  check(new URL(page.url()).searchParams.get('compare') === '1', 'the comparison is kept in the address');
  await page.screenshot({ path: join(artifacts, 'dashboard-compare-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-compare-1280.png')}`);
  await page.uncheck('#compare');
  await page.locator('#kpi-sessions .kpi-delta').waitFor({ state: 'detached', timeout: 15_000 });
  await page.selectOption('#preset', 'all');
  check(await page.locator('#compare').isDisabled(), '"All time" has no previous period to compare with');

  // Conversions sent to the Graph API stub in the last hour (e2e/dashboard_browser_test.go,
  // seedConversions): 3 leads sent, 2 purchases refused for their click id, a lead
  // without a click id skipped, a lead waiting while Meta answers 503.
  check((await page.locator('#download-result').innerText()).includes('downloaded') && (await page.locator('#campaigns-result').innerText()).includes('downloaded'),
    'the "…csv downloaded" notes stay while the app stays');
  await page.fill('#app', capiApp);
  await page.selectOption('#preset', '7');
  conv = await conversions(page, 'Meta refused the click id');
  check((await page.locator('#download-result').innerText()) === '' && (await page.locator('#campaigns-result').innerText()) === '',
    'switching app clears the "…csv downloaded" notes of the other app');
  console.log('conversions sent to the stub:', JSON.stringify(conv, null, 1));
  check(JSON.stringify(conv.counts) === JSON.stringify({ sent: '3', pending: '1', failed: '2', skipped: '1', expired: '0' }),
    `the counts of the last 7 days: 3 sent, 1 pending, 2 failed, 1 skipped: ${JSON.stringify(conv.counts)}`);
  check(conv.words[0] === 'Meta refused the click id of 2 purchases (code 100/2804087: Invalid parameter (Messaging Event Invalid Ctwa Clid))',
    `the refusal is in words: ${conv.words[0]}`);
  check(conv.words.includes('1 conversion waiting: last try failed: graph API HTTP 503, code 2: Service temporarily unavailable'),
    'the waiting conversion says why its last try failed');
  check(conv.words.includes(`1 conversion ${NO_CLICK_ID}`), 'the lead without a click id is explained');
  check(!conv.words.some((w) => w.includes('expired')), 'nothing expired is mentioned when nothing expired');
  check(conv.rows.length === 7 && conv.heading === 'Latest 7 of 7', `the table lists the 7 conversions (${conv.rows.length})`);
  const refused = conv.rows.filter((r) => r.status === 'failed code_100_2804087');
  check(refused.length === 2 && refused.every((r) => r.event === 'Purchase' && r.attempts === '1' && r.ad === '120214567890123456' &&
    r.last_error.includes('Messaging Event Invalid Ctwa Clid')) && refused.map((r) => r.value).sort().join(' ') === '€59.90 €69.90',
  `the refused purchases are listed with their value, attempt and Meta's error: ${JSON.stringify(refused)}`);
  const waiting = conv.rows.find((r) => r.status === 'pending');
  check(waiting && waiting.event === 'LeadSubmitted' && Number(waiting.attempts) >= 1 && waiting.last_error.includes('HTTP 503'),
    `the waiting lead shows its attempts and last error: ${JSON.stringify(waiting)}`);
  check(conv.rows.filter((r) => r.status === 'sent').length === 3 && conv.rows.every((r) => r.time && r.source),
    'the sent leads are listed, every row with its time and source');
  await page.locator('#conversions-panel').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, 'dashboard-conversions-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-conversions-1280.png')}`);

  const noSpend = await page.locator('#answer-spend').innerText();
  check(noSpend.includes('Import the daily spend report of Meta Ads Manager'), `without a spend sync, "At a glance" asks for the CSV: ${noSpend}`);

  // An app with no conversion at all (a fixture's, with one organic session): the hint to
  // turn them on.
  await page.fill('#app', '106540352242977');
  await page.click('#show');
  await page.locator('#conversions-hint').waitFor({ timeout: 15_000 });
  check((await page.locator('#conversions-hint').innerText()) === NO_CONVERSIONS, 'an app without conversions shows how to turn them on');
  check(await page.locator('#conversions-counts').count() === 0 && await page.locator('#conversions-table').count() === 0,
    'and no counts or table');

  // A mistyped app id: nothing recorded, and the apps that are, never the unattributed
  // row that the API answers for any app id.
  await page.fill('#app', '106540352200000');
  await page.click('#show');
  await page.locator('#unknown-app').waitFor({ state: 'visible', timeout: 15_000 });
  const unknownWords = await page.locator('#unknown-app').innerText();
  const offered = await page.locator('#unknown-apps button').allInnerTexts();
  console.log('unknown app:', unknownWords.replace(/\n+/g, ' | '));
  check(unknownWords.includes('Nothing has been recorded for app 106540352200000') && offered.includes(app) && offered.includes(capiApp) &&
    offered.includes('onprem') && !offered.includes('106540352200000'), `a mistyped app id says nothing is recorded and lists the known apps: ${offered.join(', ')}`);
  check(await page.locator('#dashboard').isHidden() && await page.locator('#tools').isHidden() && !(await page.locator('main').innerText()).includes('Unattributed'),
    'and shows no figures, no funnel, no unattributed row, no downloads or settings for the mistyped id');
  await page.screenshot({ path: join(artifacts, 'dashboard-unknown-app-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-unknown-app-1280.png')}`);
  await page.locator('#unknown-apps button', { hasText: app }).click();
  await page.locator('#dashboard').waitFor({ state: 'visible', timeout: 15_000 });
  check(await page.inputValue('#app') === app, 'choosing a listed app opens it');

  // The client id field offers the clients the sidecar records (GET /v1/clients).
  const clients = await page.locator('#known-clients option').evaluateAll((os) => os.map((o) => o.value));
  check(clients.join(',') === 'default', `the client id field offers the recorded clients: ${clients.join(', ')}`);

  // A wrong client id is explained with the API's words.
  await page.fill('#client', 'nobody');
  await page.click('#show');
  await page.locator('#banner').waitFor({ state: 'visible' });
  check((await page.locator('#banner').innerText()).includes('this sidecar records client "default"'), 'a wrong client id is explained');
  await page.fill('#client', 'default');
  await page.click('#show');
  await page.locator('#banner').waitFor({ state: 'hidden' });

  // The conversion event, chosen in the campaigns table (last: choosing one recounts the
  // app's history). The running club ad gets the keyword "club": each of its 5 leads
  // wrote "I want to join the club", so converted goes 0 → 5.
  await page.selectOption('#preset', 'custom');
  await page.fill('#from', '2026-03-16');
  await page.fill('#to', '2026-03-18');
  await page.click('#show');
  const clubAd = 'ad:120214567890777777';
  await campRow(page, 'campaign:23851172049950002').locator('button.toggle').click();
  await campRow(page, clubAd).waitFor({ timeout: 15_000 });
  check((await campValues(page, clubAd)).converted === '0', 'the running club ad converts nobody: its campaign has no conversion event');
  await campRow(page, clubAd).locator('[data-choose]').click();
  await page.locator('#conversion-dialog').waitFor({ state: 'visible' });
  check((await page.locator('#conversion-choices').innerText()).includes('No keyword, button, list reply or purchase is recorded in these sessions yet'),
    'the dialog says the ad\'s sessions hold no event to choose yet');
  await page.fill('#conv-keyword', 'club');
  await page.click('#conversion-ok');
  await page.locator('#campaigns-result.ok', { hasText: 'Converted now counts Keyword “club” for ad “Join our running club”' }).waitFor({ timeout: 30_000 });
  await campRow(page, clubAd).locator('[data-col="converted"]', { hasText: '5' }).waitFor({ timeout: 15_000 });
  let clubValues = await campValues(page, clubAd);
  check(clubValues.converted === '5' && clubValues.conversion_event.startsWith('Keyword “club”') &&
    (await campValues(page, 'campaign:23851172049950002')).converted === '5' && (await rowValues(page, 'Join our running club')).converted === '5',
  `choosing keyword "club" for the ad counts its 5 sessions as converted, in both tables: ${JSON.stringify(clubValues)}`);

  // Spring sale's conversion event becomes the purchase: leads 2 and 5 of the image ad
  // and 16 of the video ad bought, so converted goes 5 (the "buy" leads) → 3.
  await campRow(page, spring).locator('[data-choose]').first().click();
  await page.locator('#conversion-dialog').waitFor({ state: 'visible' });
  const choiceTexts = await page.locator('#conversion-choices label.choice').allInnerTexts();
  console.log('choices of Spring sale:', JSON.stringify(choiceTexts));
  const checkedChoice = await page.locator('#conversion-choices input[type=radio]:checked').evaluate((i) => i.closest('label').textContent);
  check(choiceTexts.some((c) => /^Off-thread: purchase\s*3 sessions$/.test(c)) && choiceTexts.some((c) => /^Keyword “buy”\s*5 sessions$/.test(c)) &&
    choiceTexts.some((c) => /^Keyword “price”\s*10 sessions$/.test(c)) && /^Keyword “buy”/.test(checkedChoice),
  'the dialog lists the events of the campaign\'s sessions with their counts (price 10, buy 5, purchase 3), the current one chosen');
  await page.locator('#conversion-choices label.choice', { hasText: 'Off-thread: purchase' }).locator('input').check();
  await page.click('#conversion-ok');
  await page.locator('#campaigns-result.ok', { hasText: 'Converted now counts Off-thread: purchase for campaign “Spring sale”' }).waitFor({ timeout: 30_000 });
  await campRow(page, spring).locator('[data-col="converted"]', { hasText: '3' }).waitFor({ timeout: 15_000 });
  if (await campRow(page, 'ad:120214567890123456').count() === 0) await campRow(page, spring).locator('button.toggle').click();
  const springAfter = { campaign: (await campValues(page, spring)).converted, image: (await campValues(page, 'ad:120214567890123456')).converted,
    video: (await campValues(page, 'ad:120214567890987654')).converted, event: (await campValues(page, spring)).conversion_event };
  check(springAfter.campaign === '3' && springAfter.image === '2' && springAfter.video === '1' && springAfter.event.startsWith('Off-thread: purchase') &&
    (await page.locator('#kpi-converted .kpi-value').innerText()) === '8',
  `the purchase as Spring sale's conversion event: 3 converted (image 2, video 1), 8 with the club's 5: ${JSON.stringify(springAfter)}`);
  await page.locator('#campaigns-panel').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, 'dashboard-campaigns-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-campaigns-1280.png')}`);
  check(problems.length === 0, `no script errors or CSP violations at 1280 px${problems.length ? `: ${problems.join('; ')}` : ''}`);

  // ---------------------------------------------------------------- spend synced from Meta
  // A second sidecar syncs the ad account from the Marketing API stub into capiApp: the
  // ad spent €12.00 two days ago and €8.50 yesterday; a lead clicked it today.
  const sync = await newPage({ width: 1280, height: 900 });
  await sync.page.goto(`${spendBase}/?app=${capiApp}&range=7`);
  await sync.page.locator('#spend-sync-list').waitFor({ timeout: 15_000 });
  const synced = await sync.page.locator('#spend-sync-list li').allInnerTexts();
  console.log('spend sync:', JSON.stringify(synced));
  check(synced.length === 1 && new RegExp(`^Spend synced from Meta for ad account act_${spendAct}: last at [A-Z][a-z]{2} \\d+, \\d{4}, \\d+:\\d\\d [AP]M \\(2 rows\\), next at [A-Z][a-z]{2} \\d+, \\d{4}, \\d+:\\d\\d [AP]M$`).test(synced[0]),
    `the synced account shows its last run with 2 rows and its next run: ${synced[0]}`);
  check(await sync.page.locator('#spend-sync .spend-sync-error').count() === 0 && await sync.page.locator('#spend-sync-hint').count() === 0,
    'no sync error and no "turn it on" hint while the sync works');
  check(await sync.page.locator('#spend-sync-now').isVisible() && await sync.page.locator('#import-csv').isVisible(),
    'a "Sync now" button, and the CSV import stays');
  const syncedRow = sync.page.locator('#sources-table tbody tr[data-source="ad:120214567890123456"]');
  await syncedRow.waitFor({ timeout: 15_000 });
  check((await syncedRow.locator('[data-col="spend"]').innerText()) === '€20.50' && (await syncedRow.locator('[data-col="sessions"]').innerText()) === '1',
    'the synced spend is in the sources table (€12.00 + €8.50), next to the session of the ad');
  check((await sync.page.locator('#kpi-spend .kpi-note').innerText()) === 'synced from Meta or imported', 'the spend card says where the spend comes from');

  // Today: the session, no spend yet. "At a glance" does not ask a syncing user for a CSV.
  const today = new Date().toISOString().slice(0, 10);
  await sync.page.selectOption('#preset', 'custom');
  await sync.page.fill('#from', today);
  await sync.page.fill('#to', today);
  await sync.page.click('#show');
  await sync.page.locator('#answer-spend', { hasText: 'Spend syncs from Meta' }).waitFor({ timeout: 15_000 });
  const syncAnswer = await sync.page.locator('#answer-spend').innerText();
  console.log('At a glance, today:', syncAnswer);
  check(syncAnswer.includes(`Spend syncs from Meta for ad account act_${spendAct} (last at`) && !/import|CSV/i.test(syncAnswer),
    `a day without spend, with a working sync, is explained without asking for a CSV: ${syncAnswer}`);

  // Meta now refuses the token: "Sync now" runs, and the dashboard says the sync stopped.
  const setToken = await fetch(`${adsControl}/token`, { method: 'POST', body: 'other' });
  check(setToken.status === 204, 'the Marketing API stub now takes another token');
  await sync.page.click('#spend-sync-now');
  await sync.page.locator('#spend-sync .spend-sync-error', { hasText: 'Spend sync stopped' }).waitFor({ timeout: 20_000 });
  const stopped = await sync.page.locator('#spend-sync-list li').innerText();
  console.log('spend sync stopped:', JSON.stringify(stopped));
  check((await sync.page.locator('#spend-sync .spend-sync-error').innerText()) === SYNC_STOPPED, `the refused token is said in words: ${SYNC_STOPPED}`);
  check(/Meta answered: code 190: /.test(stopped) && !stopped.includes('fbtrace_id'), "Meta's answer follows, without its trace id");
  check(stopped.includes('(2 rows), no next run until Sync now or a restart'), 'the last good run stays, with no next run');
  check(await sync.page.locator('#spend-sync-now').isVisible() && (await sync.page.locator('#spend-sync-result.error').innerText()).includes(`act_${spendAct}`),
    'the button stays, and its outcome names the failed account');
  const stoppedAnswer = await sync.page.locator('#answer-spend').innerText();
  check(stoppedAnswer.includes('the spend sync from Meta is stopped: Meta refused the token') && !/import|CSV/i.test(stoppedAnswer),
    `"At a glance" says the sync stopped: ${stoppedAnswer}`);
  await sync.page.locator('#tools').scrollIntoViewIfNeeded();
  await sync.page.screenshot({ path: join(artifacts, 'dashboard-spend-sync-1280.png'), fullPage: true });
  console.log(`screenshot: ${join(artifacts, 'dashboard-spend-sync-1280.png')}`);
  check(sync.problems.length === 0, `no script errors or CSP violations on the spend sync page${sync.problems.length ? `: ${sync.problems.join('; ')}` : ''}`);
  await sync.context.close();

  console.log(`${checks} passed, 0 failed`);
  console.log('dashboard: all browser checks passed');
} catch (err) {
  console.error(`FAILED after ${checks} checks: ${err.message}`);
  try {
    for (const ctx of browser.contexts()) {
      for (const p of ctx.pages()) await p.screenshot({ path: join(artifacts, `dashboard-failure-${Date.now()}.png`), fullPage: true });
    }
  } catch { /* the failure itself matters more */ }
  await browser.close();
  process.exit(1);
}
await browser.close();

async function streamText(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}
