// Charts drawn as inline SVG at the pixel width of their container (redrawn on resize),
// so text keeps its size from a phone to a wide screen.

import { s, fill, h } from './dom.js';
import * as fmt from './format.js';

const STAGE_COLORS = ['#1d5f8a', '#2a8c82', '#d39b22', '#c8553d'];

/** worstStep is the index of the step of stages that loses the most leads (the higher
 * share lost breaks ties), or -1 when no step loses any. */
export function worstStep(stages) {
  let worst = -1;
  for (let i = 0; i + 1 < stages.length; i++) {
    const lost = stages[i].value - stages[i + 1].value;
    if (lost <= 0) continue;
    const best = worst < 0 ? 0 : stages[worst].value - stages[worst + 1].value;
    if (lost > best || (lost === best && lost / stages[i].value > best / stages[worst].value)) worst = i;
  }
  return worst;
}

/** funnelChart draws stages ({label, value, hint, color?: index of its colour}) as bars, each scaled to the first,
 * with the loss between two stages written beside the link between them; the step that
 * loses the most leads is marked. */
export function funnelChart(el, stages, label) {
  const W = Math.max(260, el.clientWidth || 600);
  const narrow = W < 480;
  const labelW = narrow ? 84 : 118;
  const valueW = narrow ? 92 : 120;
  const barMax = W - labelW - valueW - 12;
  const rowH = narrow ? 30 : 34;
  const gap = 28;
  const top = stages[0].value;
  const max = Math.max(...stages.map((st) => st.value), 1);
  const H = stages.length * rowH + (stages.length - 1) * gap + 8;
  const widthOf = (v) => (v > 0 ? Math.max(3, (barMax * v) / max) : 0);
  const yOf = (i) => 4 + i * (rowH + gap);

  const worst = worstStep(stages);

  const svg = s('svg', {
    class: 'chart-svg funnel-svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `${label}: ` + stages.map((st) => `${st.label} ${st.value}`).join(', '),
  });
  stages.forEach((st, i) => {
    const y = yOf(i);
    const w = widthOf(st.value);
    if (i + 1 < stages.length) {
      const next = stages[i + 1];
      const w2 = widthOf(next.value);
      const y2 = yOf(i + 1);
      svg.append(s('path', {
        class: 'funnel-link', d: `M${labelW} ${y + rowH} L${labelW + w} ${y + rowH} L${labelW + w2} ${y2} L${labelW} ${y2} Z`,
      }));
      const diff = st.value - next.value;
      let text = '';
      if (diff > 0) text = `−${fmt.num(diff)} (${fmt.share(diff, st.value)}) drop off`;
      else if (diff < 0) text = `+${fmt.num(-diff)}`;
      else if (st.value > 0) text = 'no loss';
      if (text) {
        svg.append(s('text', {
          class: i === worst ? 'funnel-drop worst' : 'funnel-drop',
          x: labelW + Math.max(w, w2) + 8, y: y + rowH + gap / 2 + 4,
        }, narrow ? text.replace(' drop off', '') : text));
      }
    }
    const g = s('g', { class: 'funnel-stage', 'data-stage': st.label },
      s('title', {}, `${st.label}: ${fmt.num(st.value)} — ${st.hint}`),
      s('rect', { class: 'funnel-track', x: labelW, y, width: barMax, height: rowH, rx: 3 }),
      s('rect', { class: 'funnel-bar', x: labelW, y, width: w, height: rowH, rx: 3, fill: STAGE_COLORS[st.color ?? i % STAGE_COLORS.length] }),
      s('text', { class: 'funnel-label', x: labelW - 8, y: y + rowH / 2 + 5, 'text-anchor': 'end' }, st.label),
      s('text', { class: 'funnel-value', x: labelW + w + 6, y: y + rowH / 2 + 5 },
        `${fmt.num(st.value)} · ${i === 0 ? (top > 0 ? '100%' : '—') : fmt.share(st.value, top)}`));
    svg.append(g);
  });
  fill(el, svg);
}

/** niceScale returns a round step and top for an axis from 0 to max. */
function niceScale(max, ticks, integer) {
  if (!(max > 0)) return { step: 1, top: integer ? ticks : 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((v) => v >= raw);
  if (integer) step = Math.max(1, Math.ceil(step));
  return { step, top: step * Math.ceil(max / step) };
}

/** dailyChart draws sessions as bars (left axis) and revenue as a line (right axis) per
 * bucket ({label, title, sessions, revenue}). */
export function dailyChart(el, buckets, currency) {
  const W = Math.max(260, el.clientWidth || 600);
  const narrow = W < 480;
  const H = narrow ? 210 : 250;
  const m = { l: 40, r: narrow ? 56 : 66, t: 14, b: 28 };
  const plotW = W - m.l - m.r;
  const plotH = H - m.t - m.b;
  const n = buckets.length;
  const sScale = niceScale(Math.max(...buckets.map((b) => b.sessions)), 4, true);
  const rScale = niceScale(Math.max(...buckets.map((b) => b.revenue)), 4, false);
  const band = plotW / n;
  const barW = Math.max(2, Math.min(36, band * 0.62));
  const xc = (i) => m.l + band * (i + 0.5);
  const yS = (v) => m.t + plotH - (plotH * v) / sScale.top;
  const yR = (v) => m.t + plotH - (plotH * v) / rScale.top;

  const svg = s('svg', {
    class: 'chart-svg daily-svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Sessions and revenue over ${n} periods`,
  });
  const grid = s('g', { class: 'axis' });
  for (let v = 0; v <= sScale.top + 1e-9; v += sScale.step) {
    const y = yS(v);
    grid.append(s('line', { class: 'gridline', x1: m.l, x2: W - m.r, y1: y, y2: y }),
      s('text', { class: 'axis-label sessions-axis', x: m.l - 6, y: y + 4, 'text-anchor': 'end' }, fmt.num(v)));
  }
  for (let v = 0; v <= rScale.top + 1e-9; v += rScale.step) {
    grid.append(s('text', { class: 'axis-label revenue-axis', x: W - m.r + 6, y: yR(v) + 4 }, fmt.moneyShort(v, currency)));
  }
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / (narrow ? 52 : 64)))));
  buckets.forEach((b, i) => {
    if (i % every === 0) {
      grid.append(s('text', { class: 'axis-label', x: xc(i), y: H - 8, 'text-anchor': 'middle' }, b.label));
    }
  });
  svg.append(grid);

  const bars = s('g', { class: 'sessions-bars' });
  buckets.forEach((b, i) => {
    const y = yS(b.sessions);
    bars.append(s('g', { class: 'bucket' },
      s('title', {}, `${b.title}: ${fmt.num(b.sessions)} sessions, ${fmt.money(b.revenue, currency)} revenue`),
      s('rect', { class: 'hit', x: m.l + band * i, y: m.t, width: band, height: plotH }),
      s('rect', { class: 'bar', x: xc(i) - barW / 2, y, width: barW, height: m.t + plotH - y })));
  });
  svg.append(bars);

  const points = buckets.map((b, i) => [xc(i), yR(b.revenue)]);
  svg.append(s('path', {
    class: 'revenue-line', d: points.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`).join(' '),
  }));
  const dots = s('g', { class: 'revenue-dots' });
  buckets.forEach((b, i) => {
    if (b.revenue > 0 || n <= 31) dots.append(s('circle', { cx: points[i][0], cy: points[i][1], r: b.revenue > 0 ? 4 : 2.5 }));
  });
  svg.append(dots);
  svg.append(s('line', { class: 'baseline', x1: m.l, x2: W - m.r, y1: m.t + plotH, y2: m.t + plotH }));
  fill(el, svg);
}

/** legend is the key of the daily chart. */
export function legend(currency) {
  return h('ul', { class: 'legend' },
    h('li', {}, h('span', { class: 'key key-sessions', 'aria-hidden': 'true' }), 'Sessions (left axis)'),
    h('li', {}, h('span', { class: 'key key-revenue', 'aria-hidden': 'true' }), `Revenue${currency ? ` in ${currency}` : ''} (right axis)`));
}
