// Number, money, percent and date formatting in the reader's locale.

const locale = undefined; // the browser's language
const integer = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
const twoDecimals = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const percent = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 0 });
const moneyFormats = new Map();

export const num = (n) => integer.format(n);
export const ratio = (n) => twoDecimals.format(n);

/** money formats an amount with its ISO 4217 currency ("€218.90"); without one, a plain amount. */
export function money(amount, currency) {
  if (!currency) return twoDecimals.format(amount);
  let f = moneyFormats.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat(locale, { style: 'currency', currency });
    } catch {
      f = { format: (v) => `${twoDecimals.format(v)} ${currency}` };
    }
    moneyFormats.set(currency, f);
  }
  return f.format(amount);
}

/** moneyList formats amounts in several currencies: "€10.00 + $4.00" (never summed). */
export function moneyList(byCurrency) {
  const parts = [...byCurrency].filter(([, v]) => v !== 0).map(([c, v]) => money(v, c));
  return parts.length ? parts.join(' + ') : null;
}

/** share is part/whole as a percent ("73%"), or "—" when whole is 0. */
export const share = (part, whole) => (whole > 0 ? percent.format(part / whole) : '—');

const pad = (n) => String(n).padStart(2, '0');

/** today is the browser's local date as YYYY-MM-DD. */
export function today() {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** addDays shifts a YYYY-MM-DD date by n days. */
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** dayCount is the number of days from a to b, both included. */
export const dayCount = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000) + 1;

export const isDay = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));

const shortDay = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const longDay = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
const dateTime = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });

/** dayShort is "Mar 16"; dayLong is "Mar 16, 2026". */
export const dayShort = (day) => shortDay.format(new Date(`${day}T00:00:00Z`));
export const dayLong = (day) => longDay.format(new Date(`${day}T00:00:00Z`));

/** when formats an RFC 3339 time of the sidecar as written there (its -timezone), without converting. */
export function when(rfc3339) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(rfc3339 || '');
  return m ? dateTime.format(new Date(`${m[1]}T${m[2]}:00Z`)) : rfc3339 || '';
}

/** phone shows a WhatsApp id as an international number. */
export const phone = (id) => (id && /^\d+$/.test(id) ? `+${id}` : id || '');

const wholeMoneyFormats = new Map();

/** moneyShort is an amount without cents, compact when large ("€1.2K"): for chart axes. */
export function moneyShort(amount, currency) {
  const key = currency || '';
  let f = wholeMoneyFormats.get(key);
  if (!f) {
    try {
      f = new Intl.NumberFormat(locale, currency
        ? { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 }
        : { notation: 'compact', maximumFractionDigits: 1 });
    } catch {
      f = { format: (v) => `${integer.format(v)} ${currency}` };
    }
    wholeMoneyFormats.set(key, f);
  }
  return f.format(amount);
}

/** unit is one unit of a currency without cents ("€1"), for "per €1 spent". */
export function unit(currency) {
  if (!currency) return '1';
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency, maximumFractionDigits: 0, minimumFractionDigits: 0 }).format(1);
  } catch {
    return `1 ${currency}`;
  }
}

/** addMonths shifts a YYYY-MM-DD date by n calendar months; a day the month lacks
 * becomes its last day (Aug 31 − 6 months = Feb 28). */
export function addMonths(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  const first = new Date(Date.UTC(y, m - 1 + n, 1));
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  first.setUTCDate(Math.min(d, last));
  return first.toISOString().slice(0, 10);
}
