// Vigil web UI. Plain ES module, no framework, no build step.
//
// Security rules for this file (the page runs under a strict CSP and shows
// attacker-controlled event data):
//   * never use innerHTML / outerHTML / insertAdjacentHTML / document.write;
//     every node is built with createElement / createElementNS / textContent;
//   * no inline event handlers and no style="" strings: listeners via
//     addEventListener, dynamic sizes via SVG attributes or element.style (CSSOM);
//   * URLs built from data always go through encodeURIComponent / URLSearchParams.
'use strict';

// ------------------------------------------------------------------ helpers

const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

/** Build an HTML element. attrs: class, text, dataset keys as data-*, on* listeners, others via setAttribute. */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** Build an SVG element. */
function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'class') node.setAttribute('class', v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'hidden') node.hidden = Boolean(v);
    else if (k === 'value') node.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') node[k] = Boolean(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** Values from events can be anything JSON: show them as text. */
function valueText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Parse a time value: RFC 3339 string, or a number of ns / ms / s since the epoch. */
function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  if (v instanceof Date) return v;
  if (typeof v === 'number' || (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v))) {
    const n = Number(v);
    if (n > 1e17) return new Date(n / 1e6); // nanoseconds
    if (n > 1e14) return new Date(n / 1e3); // microseconds
    if (n > 1e11) return new Date(n); // milliseconds
    return new Date(n * 1000); // seconds
  }
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function fmtTime(v, withSeconds = true) {
  const d = toDate(v);
  if (!d) return v === null || v === undefined ? '—' : String(v);
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${base}:${pad(d.getSeconds())}` : base;
}

function fmtAgo(v) {
  const d = toDate(v);
  if (!d) return 'never';
  const sec = Math.round((Date.now() - d.getTime()) / 1000);
  if (sec < 0) return 'in the future';
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
  return `${Math.floor(sec / 86400)} d ago`;
}

/** A <time> element showing local time, with the raw value as tooltip. */
function timeEl(v, opts = {}) {
  const d = toDate(v);
  if (!d) return h('span', { class: 'muted', text: opts.empty || '—' });
  return h('time', { datetime: d.toISOString(), title: d.toISOString(), text: opts.ago ? fmtAgo(d) : fmtTime(d) });
}

const fmtNum = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : valueText(n));

// ------------------------------------------------------------------ levels and statuses (never colour alone)

const LEVELS = ['informational', 'low', 'medium', 'high', 'critical'];
const LEVEL_ICON = { informational: 'ℹ', low: '▽', medium: '◆', high: '▲', critical: '⬢' };
const STATUS_ICON = { open: '●', acknowledged: '◐', closed: '✓', loaded: '✓', error: '✗' };

function levelBadge(level) {
  const l = String(level || 'unknown').toLowerCase();
  const known = LEVELS.includes(l) ? l : 'unknown';
  return h('span', { class: `badge level level-${known}`, 'data-level': l },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true', text: LEVEL_ICON[l] || '?' }), ' ', l);
}

function statusBadge(status) {
  const st = String(status || 'unknown').toLowerCase();
  return h('span', { class: `badge status status-${st.replace(/[^a-z]/g, '')}`, 'data-status': st },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true', text: STATUS_ICON[st] || '•' }), ' ', st);
}

// ------------------------------------------------------------------ API

const session = { user: '', role: '', csrf: '', expires: '', mustChangePassword: false };

class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body || {};
    this.column = typeof this.body.column === 'number' ? this.body.column : null;
  }
}

// A hash route worth returning to after signing in: #/view[/id][?params as URLSearchParams writes them].
const SAFE_HASH = /^#\/[A-Za-z0-9/_-]*(\?[A-Za-z0-9%._~*+=&-]*)?$/;

function toLogin() {
  const next = location.hash && SAFE_HASH.test(location.hash) ? `?next=${encodeURIComponent(location.hash)}` : '';
  location.assign('/login' + next);
}

/** fetch wrapper: JSON in/out, CSRF header on writes, 401 → /login, errors → ApiError with the server's text. */
async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', headers, signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = session.csrf;
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(`Cannot reach the Vigil server (${e && e.message ? e.message : e})`, 0);
  }
  if (r.status === 401) {
    toLogin();
    throw new ApiError('Your session has ended; please sign in again.', 401);
  }
  if (r.status === 204) return null;
  let data = null;
  const text = await r.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!r.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : `HTTP ${r.status} ${r.statusText}`.trim();
    throw new ApiError(msg, r.status, data);
  }
  if (data === null) throw new ApiError(`Unexpected response from ${path} (not JSON)`, r.status);
  return data;
}

// ------------------------------------------------------------------ error banner

function showError(err, context) {
  if (err && err.name === 'AbortError') return;
  if (err && err.status === 401) return; // already on the way to /login
  const msg = err instanceof Error ? err.message : String(err);
  const prefix = context ? `${context}: ` : '';
  const status = err && err.status ? ` (HTTP ${err.status})` : '';
  $('error-text').textContent = prefix + msg + status;
  $('error-banner').hidden = false;
}

function hideError() {
  $('error-banner').hidden = true;
  $('error-text').textContent = '';
}

/** A small inline error box (for panels). */
function inlineError(err, context) {
  const msg = err instanceof Error ? err.message : String(err);
  return h('div', { class: 'inline-error', role: 'alert', 'data-testid': 'inline-error' },
    h('span', { 'aria-hidden': 'true', text: '⚠ ' }), context ? `${context}: ${msg}` : msg);
}

const canWrite = () => session.role !== 'viewer' && session.role !== '';

// ------------------------------------------------------------------ query helpers

/** Index of the first `|` outside double quotes (backslash escapes inside quotes), or -1. */
function firstPipe(q) {
  let inq = false;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (inq && c === '\\') { i++; continue; }
    if (c === '"') inq = !inq;
    else if (c === '|' && !inq) return i;
  }
  return -1;
}

function searchPart(q) {
  const i = firstPipe(q);
  const part = (i < 0 ? q : q.slice(0, i)).trim();
  return part || '*';
}

const quoteValue = (v) => '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';

/** Add field="value" to the search part of a query (before any pipeline). */
function addFilter(q, field, value) {
  const term = `${field}=${quoteValue(value)}`;
  const i = firstPipe(q);
  let head = (i < 0 ? q : q.slice(0, i)).trim();
  const tail = i < 0 ? '' : ' ' + q.slice(i).trim();
  if (head === '' || head === '*') head = term;
  else if (!head.split(/\s+/).includes(term)) head = `${head} ${term}`;
  return head + tail;
}

const RANGES = [
  { value: '-15m', label: 'Last 15 minutes', span: '30s', ms: 15 * 60e3 },
  { value: '-1h', label: 'Last hour', span: '1m', ms: 3600e3 },
  { value: '-4h', label: 'Last 4 hours', span: '5m', ms: 4 * 3600e3 },
  { value: '-24h', label: 'Last 24 hours', span: '30m', ms: 86400e3 },
  { value: '-7d', label: 'Last 7 days', span: '6h', ms: 7 * 86400e3 },
  { value: '-30d', label: 'Last 30 days', span: '1d', ms: 30 * 86400e3 },
];

// Histogram bucket spans the UI chooses from (all accepted by `timechart span=`).
const SPANS = [
  ['1s', 1e3], ['10s', 10e3], ['30s', 30e3], ['1m', 60e3], ['5m', 300e3], ['10m', 600e3],
  ['30m', 1800e3], ['1h', 3600e3], ['3h', 3 * 3600e3], ['6h', 6 * 3600e3], ['12h', 12 * 3600e3], ['1d', 86400e3],
];

function spanMs(span) {
  const m = /^(\d+)([smhd])$/.exec(span);
  if (!m) return 60e3;
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
}

/**
 * Choose a bucket span for a range of `ms` milliseconds: a preset keeps its own span; otherwise
 * the span from SPANS giving 30–100 buckets (nearest to ~60), or, where the set has a gap
 * (e.g. 2 h: 1m → 120, 5m → 24), the one closest to that band.
 */
function spanFor(ms, preset) {
  if (preset) return preset.span;
  if (!(ms > 0)) return SPANS[0][0];
  let best = SPANS[SPANS.length - 1][0];
  let bestScore = Infinity;
  for (const [name, len] of SPANS) {
    const n = ms / len;
    const score = n < 30 ? 1 + Math.log(30 / n) : n > 100 ? 1 + Math.log(n / 100) : Math.abs(Math.log(n / 60));
    if (score < bestScore) { best = name; bestScore = score; }
  }
  return best;
}

/** A Date as RFC 3339 in UTC, e.g. 2026-12-03T09:00:00Z (milliseconds only when non-zero). */
const toRfc3339 = (d) => d.toISOString().replace(/\.000Z$/, 'Z');

/** A Date as the value of an <input type="datetime-local"> in the browser's time zone. */
function toLocalInput(d) {
  const base = `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return d.getMilliseconds() ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** Parse a datetime-local value (YYYY-MM-DDTHH:MM[:SS[.mmm]]) as local time; null if incomplete. */
function parseLocalInput(v) {
  const m = /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?$/.exec(v || '');
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] || 0), Number((m[7] || '0').padEnd(3, '0')));
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "Asia/Kolkata, UTC+05:30": the zone custom times are read in. */
function localZoneLabel(d = new Date()) {
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  const utc = `UTC${off < 0 ? '−' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  let name = '';
  try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (_) { /* no Intl */ }
  return name && name !== 'UTC' ? `${name}, ${utc}` : utc;
}

/** An absolute time (RFC 3339) as opposed to relative ("-15m", "now"). */
const isAbsoluteTime = (v) => typeof v === 'string' && /^\d{4,}-\d\d-\d\dT/.test(v) && toDate(v) !== null;

/** Resolve "-15m" / "now" / RFC 3339 to a Date (client-side, for axes). */
function resolveTime(v, now = Date.now()) {
  if (!v || v === 'now') return new Date(now);
  const m = /^-(\d+)([smhd])$/.exec(v);
  if (m) return new Date(now - spanMs(`${m[1]}${m[2]}`));
  return toDate(v) || new Date(now);
}

// ------------------------------------------------------------------ SVG charts

/**
 * Vertical bar chart over time.
 * points: [{t: Date, v: number}], from/to: Date, spanMs: bucket length.
 * Returns an <svg> with one <rect class="bar"> (with <title>) per non-zero bucket.
 */
function timeBarChart(points, { from, to, bucketMs, height = 140, width, label = 'events', onBarClick, testid } = {}) {
  // Drawn at the container's pixel width (so text is not distorted); scales uniformly on resize.
  const W = Math.max(320, Math.round(width || 1000));
  const H = height;
  const m = { l: 48, r: 10, t: 8, b: 22 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const t0 = from.getTime();
  const t1 = Math.max(to.getTime(), t0 + 1);
  const max = Math.max(1, ...points.map((p) => p.v));
  const niceMax = niceCeil(max);
  const x = (t) => m.l + ((t - t0) / (t1 - t0)) * iw;
  const y = (v) => m.t + ih - (v / niceMax) * ih;
  const svg = s('svg', { class: 'chart time-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${label} over time, ${points.length} buckets`, id: testid, 'data-testid': testid });
  // grid + y labels
  for (let i = 0; i <= 4; i++) {
    const v = (niceMax / 4) * i;
    const yy = y(v);
    svg.append(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: yy, y2: yy }));
    svg.append(s('text', { class: 'axis-label', x: m.l - 6, y: yy + 4, 'text-anchor': 'end', text: compactNum(v) }));
  }
  // x labels
  const ticks = timeTicks(t0, t1, Math.max(3, Math.min(12, Math.floor(iw / 110))));
  for (const t of ticks) {
    const xx = x(t);
    if (xx < m.l + 14 || xx > W - m.r - 22) continue; // label would be clipped
    svg.append(s('line', { class: 'tick', x1: xx, x2: xx, y1: m.t + ih, y2: m.t + ih + 4 }));
    svg.append(s('text', { class: 'axis-label', x: xx, y: H - 5, 'text-anchor': 'middle', text: tickLabel(new Date(t), t1 - t0) }));
  }
  svg.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }));
  const bw = Math.max(1, (bucketMs / (t1 - t0)) * iw - 1);
  for (const p of points) {
    if (!(p.v > 0)) continue;
    const t = p.t.getTime();
    if (t + bucketMs < t0 || t > t1) continue;
    const xx = Math.max(m.l, x(t));
    const ww = Math.max(1, Math.min(bw, W - m.r - xx));
    const yy = y(p.v);
    const rect = s('rect', { class: 'bar', x: xx.toFixed(2), y: yy.toFixed(2), width: ww.toFixed(2), height: Math.max(1, m.t + ih - yy).toFixed(2), 'data-time': p.t.toISOString(), 'data-count': p.v },
      s('title', { text: `${fmtTime(p.t)} – ${fmtTime(new Date(t + bucketMs))}: ${fmtNum(p.v)} ${label}` }));
    if (onBarClick) {
      rect.classList.add('clickable');
      rect.addEventListener('click', () => onBarClick(p));
    }
    svg.append(rect);
  }
  if (!points.some((p) => p.v > 0)) {
    svg.append(s('text', { class: 'empty-label', x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'No matches in this time range' }));
  }
  return svg;
}

/** Horizontal bar list: items [{label, value, title?}] as SVG rows with labels and values. */
function hBarChart(items, { label = 'count', width, testid, onClick, iconFor } = {}) {
  const W = Math.max(320, Math.round(width || 600));
  const row = 26;
  const H = Math.max(row, items.length * row) + 4;
  const lw = Math.min(230, Math.round(W * 0.36));
  const vw = 70;
  const max = Math.max(1, ...items.map((i) => i.value));
  const svg = s('svg', { class: 'chart hbar-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${label} by item`, id: testid, 'data-testid': testid });
  items.forEach((it, i) => {
    const y0 = 2 + i * row;
    const bw = Math.max(1, ((W - lw - vw) * it.value) / max);
    const g = s('g', { class: 'hbar-row' });
    const labelText = (iconFor ? iconFor(it) + ' ' : '') + truncate(it.label, Math.max(8, Math.floor((lw - 12) / 7.8)));
    g.append(s('text', { class: 'hbar-label', x: lw - 8, y: y0 + row / 2 + 4, 'text-anchor': 'end', text: labelText }));
    g.append(s('rect', { class: `bar ${it.cls || ''}`.trim(), x: lw, y: y0 + 4, width: bw.toFixed(2), height: row - 8, 'data-count': it.value },
      s('title', { text: `${it.label}: ${fmtNum(it.value)} ${label}` })));
    g.append(s('text', { class: 'hbar-value', x: lw + bw + 6, y: y0 + row / 2 + 4, text: fmtNum(it.value) }));
    if (onClick) {
      g.classList.add('clickable');
      g.addEventListener('click', () => onClick(it));
    }
    svg.append(g);
  });
  return svg;
}

function truncate(t, n) {
  const str = valueText(t);
  return str.length > n ? str.slice(0, n - 1) + '…' : str;
}

function niceCeil(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}

function compactNum(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(1));
}

function timeTicks(t0, t1, want) {
  const range = t1 - t0;
  const steps = [60e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];
  let step = steps[steps.length - 1];
  for (const st of steps) if (range / st <= want) { step = st; break; }
  if (range / 10e3 <= want) step = 10e3;
  const tz = new Date(t0).getTimezoneOffset() * 60e3;
  const out = [];
  let t = Math.ceil((t0 - tz) / step) * step + tz;
  for (; t <= t1; t += step) out.push(t);
  return out;
}

function tickLabel(d, range) {
  if (range > 2 * 86400e3) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}${d.getHours() || d.getMinutes() ? ` ${pad(d.getHours())}:${pad(d.getMinutes())}` : ''}`;
  if (range < 5 * 60e3) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Turn a timechart result into [{t, v}], tolerant of column names and time encodings. */
function timechartPoints(res) {
  const cols = res.columns || [];
  let ti = cols.indexOf('_time');
  if (ti < 0) ti = cols.findIndex((c) => /time/i.test(c));
  if (ti < 0) ti = 0;
  let vi = cols.indexOf('count');
  if (vi < 0) vi = cols.findIndex((c, i) => i !== ti);
  const out = [];
  for (const r of res.rows || []) {
    const t = toDate(r[ti]);
    const v = Number(r[vi]);
    if (t && Number.isFinite(v)) out.push({ t, v });
  }
  return out;
}

// ------------------------------------------------------------------ generic table

/** A data table: columns [{key,label,cls?,render?(row)}], rows: objects. */
function dataTable(columns, rows, { id, testid, empty = 'Nothing to show.', caption, rowAttrs } = {}) {
  const table = h('table', { class: 'data-table', id, 'data-testid': testid });
  if (caption) table.append(h('caption', { class: 'sr-only', text: caption }));
  const thClass = (c) => (c.cls || '').split(/\s+/).filter((k) => k === 'num' || k === 'nowrap').join(' ') || null;
  table.append(h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: thClass(c), text: c.label })))));
  const tbody = h('tbody');
  if (!rows.length) {
    tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: columns.length, class: 'muted', text: empty })));
  }
  for (const r of rows) {
    const tr = h('tr', rowAttrs ? rowAttrs(r) : null);
    for (const c of columns) {
      const v = c.render ? c.render(r) : valueText(r[c.key]);
      tr.append(h('td', { class: c.cls }, v));
    }
    tbody.append(tr);
  }
  table.append(tbody);
  return table;
}

// ------------------------------------------------------------------ view scaffolding

let currentView = null; // { cleanup() }

function pageHeader(title, ...extra) {
  return h('div', { class: 'page-header' }, h('h1', { text: title }), h('div', { class: 'page-actions' }, extra));
}

function spinner(text = 'Loading…') {
  return h('span', { class: 'spinner-wrap', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', text);
}

// ------------------------------------------------------------------ search extras: charts, fields, saved searches

/**
 * Line chart of a timechart result: one polyline per numeric column and one
 * <circle class="point"> (with <title>) per row and column.
 */
function lineChart(cols, rows, { width, testid } = {}) {
  const ti = cols.indexOf('_time');
  const series = cols.map((c, i) => i).filter((i) => i !== ti && rows.some((r) => typeof r[i] === 'number'));
  const pts = rows.map((r) => ({ t: toDate(r[ti]), r })).filter((p) => p.t);
  const W = Math.max(320, Math.round(width || 900));
  const H = 180;
  const m = { l: 48, r: 10, t: 8, b: 22 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const t0 = pts.length ? Math.min(...pts.map((p) => p.t.getTime())) : 0;
  const t1 = Math.max(t0 + 1, ...pts.map((p) => p.t.getTime()));
  const max = niceCeil(Math.max(1, ...pts.flatMap((p) => series.map((i) => Number(p.r[i]) || 0))));
  const x = (t) => m.l + (pts.length > 1 ? ((t - t0) / (t1 - t0)) * iw : iw / 2);
  const y = (v) => m.t + ih - (v / max) * ih;
  const svg = s('svg', { class: 'chart line-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${series.map((i) => cols[i]).join(', ')} over time, ${pts.length} points`, 'data-testid': testid, id: testid });
  for (let k = 0; k <= 4; k++) {
    const yy = y((max / 4) * k);
    svg.append(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: yy, y2: yy }), s('text', { class: 'axis-label', x: m.l - 6, y: yy + 4, 'text-anchor': 'end', text: compactNum((max / 4) * k) }));
  }
  for (const t of timeTicks(t0, t1, Math.max(3, Math.min(10, Math.floor(iw / 110))))) {
    const xx = x(t);
    if (xx < m.l + 14 || xx > W - m.r - 22) continue;
    svg.append(s('text', { class: 'axis-label', x: xx, y: H - 5, 'text-anchor': 'middle', text: tickLabel(new Date(t), t1 - t0) }));
  }
  svg.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }));
  series.forEach((i, n) => {
    const line = pts.map((p) => `${x(p.t.getTime()).toFixed(1)},${y(Number(p.r[i]) || 0).toFixed(1)}`).join(' ');
    svg.append(s('polyline', { class: `series series-${n % 4}`, points: line, fill: 'none', 'data-series': cols[i] }));
    for (const p of pts) {
      const v = Number(p.r[i]) || 0;
      svg.append(s('circle', { class: `point series-${n % 4}`, cx: x(p.t.getTime()).toFixed(1), cy: y(v).toFixed(1), r: 3, 'data-series': cols[i], 'data-time': p.t.toISOString(), 'data-value': v },
        s('title', { text: `${fmtTime(p.t)} · ${cols[i]}: ${fmtNum(v)}` })));
    }
  });
  return svg;
}

/**
 * A chart for a statistics result, or null: `timechart` (a `_time` column) as a line chart,
 * `stats … by` (text group columns and a numeric one) as a horizontal bar chart, one bar per row
 * (the first 50).
 */
function resultChart(cols, rows, { width, onBar } = {}) {
  if (!rows.length) return null;
  if (cols.includes('_time')) return lineChart(cols, rows, { width, testid: 'result-chart' });
  const num = cols.findIndex((c, i) => rows.every((r) => r[i] === null || typeof r[i] === 'number'));
  const groups = cols.map((c, i) => i).filter((i) => i !== num && rows.some((r) => typeof r[i] === 'string'));
  if (num < 0 || !groups.length) return null;
  const items = rows.slice(0, 50).map((r) => ({ label: groups.map((i) => valueText(r[i])).join(' · '), value: Number(r[num]) || 0, row: r }));
  return hBarChart(items, { label: cols[num], width, testid: 'result-chart', onClick: onBar });
}

/** Fields never worth a sidebar entry (unique per event). */
const SIDEBAR_SKIP = new Set(['@timestamp', 'message', 'vigil.seq', 'vigil.hash', 'event.original', 'event.ingested']);

/**
 * Top values of each field over the rows shown: [{field, present, top: [{value, count}]}], fields
 * by how many rows hold them, at most `maxFields`, the `k` most common values each (ties by value).
 */
function topValues(cols, rows, k = 5, maxFields = 40) {
  const out = [];
  cols.forEach((c, i) => {
    if (SIDEBAR_SKIP.has(c)) return;
    const counts = new Map();
    let present = 0;
    for (const r of rows) {
      const v = r[i];
      if (v === null || v === undefined || v === '') continue;
      present++;
      const t = valueText(v);
      counts.set(t, (counts.get(t) || 0) + 1);
    }
    if (!present) return;
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, k).map(([value, count]) => ({ value, count }));
    out.push({ field: c, present, distinct: counts.size, top });
  });
  out.sort((a, b) => b.present - a.present || a.field.localeCompare(b.field));
  return out.slice(0, maxFields);
}

/** The field sidebar: each field with its top values on this page; a click adds a filter. */
function fieldSidebar(cols, rows, onPick) {
  const aside = h('aside', { class: 'field-sidebar', id: 'field-sidebar', 'data-testid': 'field-sidebar', 'aria-label': 'Fields on this page' },
    h('h2', { class: 'panel-title', text: 'Fields' }), h('p', { class: 'muted small', text: `Top values of ${fmtNum(rows.length)} rows shown` }));
  for (const f of topValues(cols, rows)) {
    const list = h('ol', { class: 'top-values' });
    for (const t of f.top) {
      const b = h('button', { type: 'button', class: 'link-button sidebar-value', 'data-testid': 'sidebar-value', 'data-field': f.field, 'data-value': t.value, 'data-count': t.count, title: `Filter: ${f.field}=${quoteValue(t.value)}` },
        h('span', { class: 'mono', text: truncate(t.value, 40) }), ' ', h('span', { class: 'muted small', text: fmtNum(t.count) }));
      b.addEventListener('click', () => onPick(f.field, t.value));
      list.append(h('li', null, b));
    }
    aside.append(h('details', { class: 'sidebar-field', 'data-testid': 'sidebar-field', 'data-field': f.field, open: f.present === rows.length ? true : undefined },
      h('summary', null, h('span', { class: 'mono', text: f.field }), ' ', h('span', { class: 'muted small', text: `${fmtNum(f.distinct)}${f.distinct >= 100 ? '+' : ''} values` })), list));
  }
  return aside;
}

/** Field names seen in results this session (bounded), for autocomplete; seeded with common ones. */
const knownFields = new Set(['event.category', 'event.outcome', 'event.action', 'source.ip', 'destination.ip', 'user.name', 'host.name',
  'process.name', 'url.original', 'http.response.status_code', 'vigil.source', 'vigil.sourcetype', 'message']);
const MAX_KNOWN_FIELDS = 2000;

function learnFields(cols) {
  for (const c of cols) if (knownFields.size < MAX_KNOWN_FIELDS && c && !c.startsWith('_')) knownFields.add(c);
}

/** The field name being typed at the cursor: {start, end, word} or null. */
function wordAtCursor(value, pos) {
  const before = value.slice(0, pos);
  const mm = /[A-Za-z_@][\w.@-]*$/.exec(before);
  if (!mm) return null;
  // not inside a quoted value, not right after `=`
  const quotes = (before.slice(0, mm.index).match(/(?<!\\)"/g) || []).length;
  if (quotes % 2 === 1 || /[=<>!]$/.test(before.slice(0, mm.index))) return null;
  const after = /^[\w.@-]*/.exec(value.slice(pos))[0];
  return { start: mm.index, end: pos + after.length, word: mm[0] };
}

/** Suggest field names under `input` while typing; Up/Down pick, Tab/Enter complete, Escape closes. */
function attachAutocomplete(input) {
  const box = h('ul', { class: 'suggest', id: 'field-suggest', 'data-testid': 'field-suggest', role: 'listbox', 'aria-label': 'Field names', hidden: true });
  input.setAttribute('aria-controls', 'field-suggest');
  input.setAttribute('aria-autocomplete', 'list');
  let items = [];
  let active = -1;
  let at = null;
  const close = () => { box.hidden = true; items = []; active = -1; input.removeAttribute('aria-activedescendant'); };
  const pick = (name) => {
    const v = input.value;
    input.value = v.slice(0, at.start) + name + '=' + v.slice(at.end);
    const pos = at.start + name.length + 1;
    input.setSelectionRange(pos, pos);
    close();
    input.dispatchEvent(new Event('input'));
  };
  const mark = () => items.forEach((li, i) => { li.setAttribute('aria-selected', String(i === active)); if (i === active) input.setAttribute('aria-activedescendant', li.id); });
  input.addEventListener('input', () => {
    at = wordAtCursor(input.value, input.selectionStart ?? input.value.length);
    if (!at) return close();
    const w = at.word.toLowerCase();
    const names = [...knownFields].filter((f) => f.toLowerCase().startsWith(w) && f.toLowerCase() !== w).sort().slice(0, 8);
    if (!names.length) return close();
    clear(box);
    items = names.map((n, i) => {
      const li = h('li', { role: 'option', id: `suggest-${i}`, class: 'suggest-item mono', 'data-testid': 'suggest-item', text: n });
      li.addEventListener('mousedown', (ev) => { ev.preventDefault(); pick(n); });
      return li;
    });
    box.append(...items);
    active = -1; // Enter still runs the search until a suggestion is picked with the arrows
    mark();
    box.hidden = false;
  });
  input.addEventListener('keydown', (ev) => {
    if (box.hidden || !items.length) return;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      active = (active + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      mark();
    } else if ((ev.key === 'Tab' && !ev.shiftKey) || (ev.key === 'Enter' && active >= 0)) {
      ev.preventDefault();
      ev.stopPropagation();
      pick(items[Math.max(0, active)].textContent);
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    }
  });
  input.addEventListener('blur', close);
  return box;
}

/**
 * Saved searches on the search page: the list (run one, put it on the dashboard, remove it) and
 * a "Save" form. current(): {query, from, to} to save; load(s): run a saved search.
 */
function savedSearches({ current, load }) {
  const list = h('ul', { class: 'saved-list', id: 'saved-list', 'data-testid': 'saved-list' });
  const status = h('span', { class: 'muted small', role: 'status', id: 'saved-status' });
  const nameIn = h('input', { type: 'text', id: 'saved-name', 'data-testid': 'saved-name', maxlength: 100, placeholder: 'Name this search', 'aria-label': 'Saved search name' });
  const sharedIn = h('input', { type: 'checkbox', id: 'saved-shared', 'data-testid': 'saved-shared' });
  const saveBtn = h('button', { type: 'submit', class: 'btn btn-secondary', id: 'save-search', 'data-testid': 'save-search', text: 'Save search' });
  const form = h('form', { class: 'saved-form', id: 'saved-form' }, nameIn,
    canWrite() ? h('label', { class: 'small' }, sharedIn, ' shared') : null, saveBtn, status);
  async function refresh() {
    try {
      const res = await api('GET', '/api/v1/saved-searches');
      clear(list);
      const all = res.searches || [];
      if (!all.length) list.append(h('li', { class: 'muted small', text: 'No saved searches yet.' }));
      for (const sv of all) {
        const run = h('button', { type: 'button', class: 'link-button', 'data-testid': 'saved-run', title: sv.query, text: sv.name });
        run.addEventListener('click', () => load(sv));
        const li = h('li', { class: 'saved-item', 'data-testid': 'saved-item', 'data-id': sv.id, 'data-name': sv.name }, run,
          sv.shared ? h('span', { class: 'badge', text: 'shared' }) : null);
        if (sv.editable) {
          const pin = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'saved-panel', 'aria-pressed': String(sv.panel), text: sv.panel ? '★ on dashboard' : '☆ add to dashboard' });
          pin.addEventListener('click', async () => {
            try { await api('POST', `/api/v1/saved-searches/${encodeURIComponent(sv.id)}`, { panel: !sv.panel }); refresh(); } catch (err) { showError(err, 'Dashboard'); }
          });
          const del = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'saved-delete', 'aria-label': `Remove saved search ${sv.name}`, text: '✕' });
          del.addEventListener('click', async () => {
            try { await api('DELETE', `/api/v1/saved-searches/${encodeURIComponent(sv.id)}`); refresh(); } catch (err) { showError(err, 'Remove saved search'); }
          });
          li.append(pin, del);
        }
        list.append(li);
      }
    } catch (err) {
      clear(list).append(h('li', null, inlineError(err, 'Saved searches')));
    }
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = nameIn.value.trim();
    const c = current();
    if (!name || !c.query) { status.textContent = 'Type a query and a name first.'; return; }
    try {
      await api('POST', '/api/v1/saved-searches', { name, query: c.query, from: c.from, to: c.to, shared: sharedIn.checked });
      nameIn.value = '';
      status.textContent = `Saved “${name}”.`;
      refresh();
    } catch (err) {
      status.textContent = err.message;
    }
  });
  refresh();
  return h('section', { class: 'panel saved-panel', 'aria-label': 'Saved searches', id: 'saved-searches', 'data-testid': 'saved-searches' },
    h('div', { class: 'panel-title-row' }, h('h2', { class: 'panel-title', text: 'Saved searches' })), list, form);
}

/** A plain table of a result (dashboard panels). */
function statsTableLite(cols, rows) {
  return h('table', { class: 'data-table' }, h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', null, rows.slice(0, 50).map((r) => h('tr', null, r.map((v) => h('td', { class: 'mono', text: valueText(v) }))))));
}

// ------------------------------------------------------------------ search view

/** The server's deepest `offset` (`MAX_OFFSET` in http/ledger.rs). */
const MAX_PAGE_OFFSET = 10000;

const searchState = {
  query: '',
  from: '-24h',
  to: 'now',
  limit: 200,
};

/**
 * The URL hash is the search's state (#/search?q=…&from=…&to=…), so that a search can be
 * bookmarked and Back works. A bare #/search (the nav link) keeps the last search.
 * Returns whether the params described a search.
 */
function readSearchParams(params) {
  if (!params.has('q') && !params.has('from') && !params.has('to')) return false;
  searchState.query = params.get('q') || '';
  searchState.from = params.get('from') || '-24h';
  searchState.to = params.get('to') || 'now';
  return true;
}

function searchHash() {
  const p = new URLSearchParams();
  if (searchState.query) p.set('q', searchState.query);
  p.set('from', searchState.from);
  if (searchState.to !== 'now') p.set('to', searchState.to);
  return `#/search?${p}`;
}

const presetOf = (from, to) => (to === 'now' ? RANGES.find((r) => r.value === from) : undefined);

/** How the range picker shows a from/to pair: a preset, a custom absolute range, or as it came in the URL. */
function rangeKind(from, to) {
  if (presetOf(from, to)) return 'preset';
  if (isAbsoluteTime(from) && isAbsoluteTime(to)) return 'custom';
  return 'other';
}

function renderSearch(view, params) {
  readSearchParams(params);
  let seqNo = 0; // discards responses of superseded runs
  let controller = null;
  let openEvents = []; // expanded events, most recent last: [{ tr, detail, toggle, set(open) }]
  let pageOffset = 0; // the first row shown (paging), as the server's `offset`

  const input = h('input', {
    id: 'query', 'data-testid': 'query', class: 'query-input', type: 'search', spellcheck: 'false', autocomplete: 'off',
    'aria-label': 'Search query', 'aria-keyshortcuts': '/', placeholder: 'e.g. event.outcome=failure source.ip="203.0.113.5" | stats count by user.name',
    value: searchState.query,
  });
  const rangeSel = h('select', { id: 'time-range', 'data-testid': 'time-range', 'aria-label': 'Time range', 'aria-controls': 'custom-range' });
  const runBtn = h('button', { id: 'run-search', 'data-testid': 'run-search', type: 'submit', class: 'btn btn-primary' }, h('span', { 'aria-hidden': 'true', text: '⌕ ' }), 'Search');
  const exportLink = h('a', { id: 'export-csv', 'data-testid': 'export-csv', class: 'btn btn-secondary', download: 'vigil-export.csv', href: '#' }, h('span', { 'aria-hidden': 'true', text: '⤓ ' }), 'Export CSV');
  const queryError = h('div', { id: 'query-error', 'data-testid': 'query-error', class: 'query-error', role: 'alert', hidden: true });
  const histoBox = h('div', { id: 'histogram', 'data-testid': 'histogram', class: 'histogram' });
  const meta = h('div', { id: 'result-meta', 'data-testid': 'result-meta', class: 'result-meta', 'aria-live': 'polite' });
  const results = h('div', { id: 'results', 'data-testid': 'results', class: 'results' });

  // ---- custom range: two datetime-local inputs, read in the browser's time zone
  const fromIn = h('input', { id: 'range-from', 'data-testid': 'range-from', type: 'datetime-local', step: '1', 'aria-describedby': 'range-zone range-error' });
  const toIn = h('input', { id: 'range-to', 'data-testid': 'range-to', type: 'datetime-local', step: '1', 'aria-describedby': 'range-zone range-error' });
  const rangeError = h('div', { id: 'range-error', 'data-testid': 'range-error', class: 'range-error', role: 'alert', hidden: true });
  const zoneNote = h('span', { id: 'range-zone', class: 'muted small range-zone', text: `Local time (${localZoneLabel()})` });
  const customRow = h('div', { id: 'custom-range', 'data-testid': 'custom-range', class: 'custom-range', role: 'group', 'aria-label': 'Custom time range', hidden: true },
    h('label', { class: 'range-field' }, h('span', { class: 'filter-label', text: 'From' }), fromIn),
    h('span', { class: 'range-dash', 'aria-hidden': 'true', text: '→' }),
    h('label', { class: 'range-field' }, h('span', { class: 'filter-label', text: 'To' }), toIn),
    zoneNote,
    rangeError);
  // false while the inputs only show searchState's custom range (kept exactly, e.g. with its
  // milliseconds or in a DST overlap); true once the user edits them or picks "Custom…".
  let customEdited = false;

  function clearRangeError() {
    rangeError.hidden = true;
    rangeError.textContent = '';
    fromIn.removeAttribute('aria-invalid');
    toIn.removeAttribute('aria-invalid');
  }

  function showRangeError(msg, ...bad) {
    clear(rangeError).append(h('span', { 'aria-hidden': 'true', text: '⚠ ' }), h('span', { id: 'range-error-text', text: msg }));
    rangeError.hidden = false;
    for (const el of [fromIn, toIn]) {
      if (bad.includes(el)) el.setAttribute('aria-invalid', 'true');
      else el.removeAttribute('aria-invalid');
    }
    if (bad[0]) bad[0].focus();
  }

  function fillCustomInputs(from, to) {
    fromIn.value = toLocalInput(from);
    toIn.value = toLocalInput(to);
  }

  /** Show searchState's range in the picker. */
  function syncPicker() {
    clear(rangeSel);
    clearRangeError();
    const kind = rangeKind(searchState.from, searchState.to);
    if (kind === 'other') {
      // e.g. from=-2h in a link: shown as it is; "Custom…" turns it into absolute times
      const f = isAbsoluteTime(searchState.from) ? fmtTime(searchState.from) : searchState.from;
      const t = isAbsoluteTime(searchState.to) ? fmtTime(searchState.to) : searchState.to;
      rangeSel.append(h('option', { value: 'other', text: `${f} → ${t}`, selected: true }));
    }
    for (const r of RANGES) rangeSel.append(h('option', { value: r.value, text: r.label, selected: kind === 'preset' && r.value === searchState.from }));
    rangeSel.append(h('option', { value: 'custom', text: 'Custom…', selected: kind === 'custom' }));
    customRow.hidden = kind !== 'custom';
    if (kind === 'custom') fillCustomInputs(toDate(searchState.from), toDate(searchState.to));
    customEdited = false;
  }

  /** The range the picker stands for: {from, to} as sent to the API, or {error} (shown by the caller). */
  function pickerRange() {
    const v = rangeSel.value;
    if (v === 'other') return { from: searchState.from, to: searchState.to };
    if (v !== 'custom') return { from: v, to: 'now' };
    if (!customEdited && rangeKind(searchState.from, searchState.to) === 'custom') return { from: searchState.from, to: searchState.to };
    const f = parseLocalInput(fromIn.value);
    const t = parseLocalInput(toIn.value);
    if (!f) return { error: 'Enter a complete From date and time.', bad: [fromIn] };
    if (!t) return { error: 'Enter a complete To date and time.', bad: [toIn] };
    if (f.getTime() >= t.getTime()) {
      return { error: `From (${fmtTime(f)}) must be before To (${fmtTime(t)}).`, bad: [fromIn, toIn] };
    }
    return { from: toRfc3339(f), to: toRfc3339(t) };
  }

  syncPicker();
  rangeSel.addEventListener('change', () => {
    clearRangeError();
    if (rangeSel.value === 'custom') {
      // Start from the range shown so far, to whole minutes; applied with Search / Enter.
      const now = Date.now();
      const f = resolveTime(searchState.from, now);
      const t = resolveTime(searchState.to, now);
      const from = new Date(Math.floor(f.getTime() / 60e3) * 60e3);
      const to = new Date(Math.ceil(t.getTime() / 60e3) * 60e3);
      fillCustomInputs(from, to > from ? to : new Date(from.getTime() + 60e3));
      customEdited = true;
      customRow.hidden = false;
      fromIn.focus();
      updateExport();
      return;
    }
    customRow.hidden = true;
    run();
  });
  for (const el of [fromIn, toIn]) {
    el.addEventListener('input', () => { customEdited = true; clearRangeError(); updateExport(); });
    el.addEventListener('change', () => { customEdited = true; updateExport(); });
  }

  // novalidate: an incomplete date is reported by pickerRange() next to the inputs, not in a browser bubble
  const form = h('form', { class: 'search-form', id: 'search-form', role: 'search', novalidate: true },
    h('div', { class: 'search-bar' }, h('div', { class: 'query-wrap' }, input, attachAutocomplete(input)), rangeSel, runBtn, exportLink),
    customRow);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });
  input.addEventListener('input', () => { queryError.hidden = true; input.removeAttribute('aria-invalid'); });

  view.append(
    h('h1', { class: 'sr-only', text: 'Search' }),
    form,
    queryError,
    savedSearches({
      current: () => ({ query: input.value.trim(), from: searchState.from, to: searchState.to }),
      load: (sv) => { input.value = sv.query; searchState.from = sv.from; searchState.to = sv.to; syncPicker(); run(); },
    }),
    h('section', { class: 'panel histogram-panel', 'aria-label': 'Matches over time' },
      h('div', { class: 'panel-title-row' }, h('h2', { class: 'panel-title', text: 'Matches over time' }), h('span', { id: 'histogram-note', class: 'muted small' })),
      histoBox),
    meta,
    results,
  );

  function updateExport() {
    const r = pickerRange();
    const range = r.error ? searchState : r; // an unfinished custom range exports the last one searched
    const p = new URLSearchParams({ query: input.value.trim() || '*', from: range.from, to: range.to, format: 'csv' });
    exportLink.setAttribute('href', `/api/v1/export?${p}`);
  }
  input.addEventListener('input', updateExport);
  updateExport();

  function showQueryError(err, query) {
    clear(queryError);
    input.setAttribute('aria-invalid', 'true');
    const col = err.column;
    queryError.append(h('div', { class: 'query-error-msg' }, h('span', { 'aria-hidden': 'true', text: '✗ ' }),
      h('strong', { text: col ? `Query error at column ${col}: ` : 'Query error: ' }), h('span', { id: 'query-error-text', text: err.message })));
    if (col) {
      // The column counts Unicode characters (1-based); Array.from splits by code point.
      const chars = Array.from(query);
      const before = chars.slice(0, col - 1).join('');
      const at = chars[col - 1] ?? ' ';
      const after = chars.slice(col).join('');
      queryError.append(h('pre', { class: 'query-echo', 'data-testid': 'query-echo', 'aria-hidden': 'true' },
        h('span', { text: before }), h('mark', { class: 'query-error-char', text: at }), h('span', { text: after }), '\n',
        h('span', { id: 'query-error-caret', 'data-testid': 'query-error-caret', class: 'caret', 'data-column': col, text: ' '.repeat(Math.max(0, col - 1)) + '^' })));
      // Also put the cursor at the error in the input.
      const idx = before.length;
      try { input.setSelectionRange(idx, Math.min(input.value.length, idx + at.length)); } catch (_) { /* ignore */ }
    }
    queryError.hidden = false;
  }

  /**
   * Run the search in the bar with the picker's range. fromUrl: the state came from the URL
   * (page load, Back/Forward, a link), so no new history entry is made.
   */
  async function run({ fromUrl = false, offset = 0 } = {}) {
    const range = pickerRange();
    if (range.error) {
      // nothing is sent and the URL keeps the last search
      showRangeError(range.error, ...range.bad);
      return;
    }
    clearRangeError();
    const query = input.value.trim();
    const changedRange = range.from !== searchState.from || range.to !== searchState.to;
    searchState.query = query;
    searchState.from = range.from;
    searchState.to = range.to;
    if (changedRange) syncPicker(); // e.g. custom inputs now show the applied range exactly
    const target = searchHash();
    if (location.hash !== target) {
      // one history entry per search; the bare #/search it started from is replaced
      const bare = !location.hash.includes('?');
      if (fromUrl || bare) history.replaceState(null, '', target);
      else history.pushState(null, '', target);
    }
    updateExport();
    hideError();
    queryError.hidden = true;
    input.removeAttribute('aria-invalid');
    if (!query) {
      clear(results).append(h('p', { class: 'muted hint', text: 'Type a query and press Enter. Use * to match every event.' }));
      clear(histoBox);
      clear(meta);
      return;
    }
    const my = ++seqNo;
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    view.setAttribute('aria-busy', 'true');
    runBtn.disabled = true;
    clear(meta).append(spinner('Searching…'));
    results.classList.add('stale');

    const now = Date.now();
    const fromD = resolveTime(searchState.from, now);
    const toD = resolveTime(searchState.to, now);
    const span = spanFor(toD - fromD, presetOf(searchState.from, searchState.to));
    const histQuery = `${searchPart(query)} | timechart span=${span} count`;
    const body = { from: searchState.from, to: searchState.to };

    pageOffset = offset;
    const main = api('POST', '/api/v1/search', { ...body, query, limit: searchState.limit, offset }, { signal });
    const histo = api('POST', '/api/v1/search', { ...body, query: histQuery, limit: 10000 }, { signal });
    histo.catch(() => {}); // handled below; avoids an "unhandled rejection" if this run is superseded first
    let mainFailed = false;
    try {
      const res = await main;
      if (my !== seqNo) return;
      renderResults(res, query);
    } catch (err) {
      if (my !== seqNo || err.name === 'AbortError') return;
      mainFailed = true;
      clear(meta);
      clear(results);
      results.classList.remove('stale');
      if (err.status === 400) showQueryError(err, query);
      else showError(err, 'Search failed');
    } finally {
      if (my === seqNo) { runBtn.disabled = false; view.removeAttribute('aria-busy'); }
    }
    try {
      const hres = await histo;
      if (my !== seqNo) return;
      if (mainFailed) {
        $('histogram-note').textContent = '';
        clear(histoBox).append(h('p', { class: 'muted small pad', text: 'No histogram: the query failed.' }));
        return;
      }
      const pts = timechartPoints(hres);
      const total = pts.reduce((a, p) => a + p.v, 0);
      $('histogram-note').textContent = `${fmtNum(total)} matching events · ${span} buckets`;
      clear(histoBox).append(timeBarChart(pts, {
        from: fromD, to: toD, width: histoBox.clientWidth, bucketMs: spanMs(span), label: 'events', testid: 'histogram-svg',
        onBarClick: (p) => {
          // zoom into the bar: a custom range with its bounds ([from, to) like the buckets)
          searchState.from = toRfc3339(p.t);
          searchState.to = toRfc3339(new Date(p.t.getTime() + spanMs(span)));
          syncPicker();
          run();
        },
      }));
    } catch (err) {
      if (my !== seqNo || err.name === 'AbortError') return;
      $('histogram-note').textContent = '';
      // A query error already shows at the query; other failures show in the panel.
      clear(histoBox).append(err.status === 400 ? h('p', { class: 'muted small', text: 'No histogram for this query.' }) : inlineError(err, 'Histogram'));
    }
  }

  /** Previous / next page buttons: a full page (as many rows as asked) may have a next one. */
  function pager(rows) {
    const first = pageOffset + 1;
    const last = pageOffset + rows;
    const prev = h('button', { type: 'button', class: 'btn btn-small', id: 'page-prev', 'data-testid': 'page-prev', disabled: pageOffset === 0, text: '‹ Previous' });
    const next = h('button', { type: 'button', class: 'btn btn-small', id: 'page-next', 'data-testid': 'page-next', disabled: rows < searchState.limit || last >= MAX_PAGE_OFFSET, text: 'Next ›' });
    prev.addEventListener('click', () => run({ offset: Math.max(0, pageOffset - searchState.limit) }));
    next.addEventListener('click', () => run({ offset: pageOffset + searchState.limit }));
    return h('span', { class: 'pager', role: 'group', 'aria-label': 'Pages' }, prev,
      h('span', { id: 'page-range', 'data-testid': 'page-range', 'data-first': rows ? first : 0, 'data-last': last, text: rows ? `rows ${fmtNum(first)}–${fmtNum(last)}` : 'no rows' }), next);
  }

  function renderResults(res, query) {
    results.classList.remove('stale');
    const cols = res.columns || [];
    const rows = res.rows || [];
    learnFields(cols);
    const paged = pageOffset > 0 || rows.length >= searchState.limit;
    append(clear(meta), [
      h('span', { id: 'result-count', 'data-testid': 'result-count', 'data-count': rows.length, text: `${fmtNum(rows.length)} ${rows.length === 1 ? 'row' : 'rows'}` }),
      paged ? pager(rows.length) : null,
      h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }), `${fmtNum(res.scanned ?? 0)} events scanned`,
      h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }), `${fmtNum(res.took_ms ?? 0)} ms`,
      res.truncated && !paged ? h('span', { class: 'badge warn-badge', text: `⚠ truncated to ${fmtNum(rows.length)} rows` }) : null,
      res.message ? h('span', { class: 'result-message', text: res.message }) : null,
    ]);
    clear(results);
    openEvents = [];
    const isEvents = cols.includes('@timestamp') && (cols.includes('vigil.seq') || cols.includes('message'));
    const pick = (field, value) => { input.value = addFilter(input.value, field, value); run(); };
    if (isEvents) {
      results.append(h('div', { class: 'results-with-fields' }, rows.length ? fieldSidebar(cols, rows, pick) : null, h('div', { class: 'results-main' }, eventsTable(cols, rows, query))));
    } else {
      const chart = resultChart(cols, rows, {
        width: Math.max(320, (results.clientWidth || 900) - 24),
        onBar: (it) => {
          const groups = cols.filter((c, i) => typeof it.row[i] === 'string' && !c.startsWith('_'));
          let q = searchPart(input.value) === '*' ? '' : searchPart(input.value);
          for (const c of groups) q = addFilter(q, c, valueText(it.row[cols.indexOf(c)]));
          input.value = q;
          run();
        },
      });
      if (chart) results.append(h('div', { class: 'result-chart-wrap pad' }, chart));
      results.append(statsTable(cols, rows, query));
    }
  }

  function eventsTable(cols, rows) {
    const ti = cols.indexOf('@timestamp');
    const mi = cols.indexOf('message');
    const si = cols.indexOf('vigil.source');
    const qi = cols.indexOf('vigil.seq');
    const table = h('table', { class: 'data-table events-table', id: 'events-table', 'data-testid': 'events-table' });
    table.append(h('thead', null, h('tr', null,
      h('th', { scope: 'col', class: 'col-toggle' }, h('span', { class: 'sr-only', text: 'Expand' })),
      h('th', { scope: 'col', class: 'col-time', text: 'Time' }),
      h('th', { scope: 'col', class: 'col-source', text: 'Source' }),
      h('th', { scope: 'col', text: 'Event' }))));
    const tbody = h('tbody');
    if (!rows.length) tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 4, class: 'muted', text: 'No events match this query in the selected time range.' })));
    rows.forEach((r, idx) => {
      const detailId = `event-detail-${idx}`;
      const toggle = h('button', { type: 'button', class: 'expand-toggle', 'aria-expanded': 'false', 'aria-controls': detailId, 'data-testid': 'expand-event', title: 'Show all fields' },
        h('span', { class: 'chev', 'aria-hidden': 'true', text: '▸' }), h('span', { class: 'sr-only', text: 'Show all fields' }));
      const summary = h('td', { class: 'event-summary' });
      const msg = mi >= 0 ? valueText(r[mi]) : '';
      summary.append(h('span', { class: 'event-message', text: msg || '(no message)' }));
      // a few key fields as chips
      const chips = h('span', { class: 'chips' });
      for (const f of ['event.outcome', 'source.ip', 'user.name', 'host.name']) {
        const i = cols.indexOf(f);
        if (i >= 0 && r[i] !== null && r[i] !== undefined && r[i] !== '') chips.append(h('span', { class: 'chip' }, h('span', { class: 'chip-key', text: f + '=' }), valueText(r[i])));
      }
      summary.append(chips);
      const tr = h('tr', { class: 'event-row', 'data-testid': 'event-row', 'data-seq': qi >= 0 ? valueText(r[qi]) : '' },
        h('td', { class: 'col-toggle' }, toggle),
        h('td', { class: 'col-time mono' }, timeEl(r[ti])),
        h('td', { class: 'col-source' }, si >= 0 ? valueText(r[si]) : ''),
        summary);
      const detail = h('tr', { class: 'event-detail', id: detailId, hidden: true }, h('td', { colspan: 4 }));
      let built = false;
      const entry = { tr, detail, toggle };
      entry.set = (open) => {
        toggle.setAttribute('aria-expanded', String(open));
        toggle.querySelector('.chev').textContent = open ? '▾' : '▸';
        tr.classList.toggle('expanded', open);
        if (open && !built) { detail.firstChild.append(fieldList(cols, r)); built = true; }
        detail.hidden = !open;
        openEvents = openEvents.filter((e) => e !== entry);
        if (open) openEvents.push(entry);
      };
      const flip = () => entry.set(toggle.getAttribute('aria-expanded') !== 'true');
      toggle.addEventListener('click', flip);
      summary.addEventListener('click', (ev) => { if (!window.getSelection().toString() && ev.target.tagName !== 'BUTTON') flip(); });
      tbody.append(tr, detail);
    });
    table.append(tbody);
    return table;
  }

  function fieldList(cols, r) {
    const dl = h('table', { class: 'field-table', 'data-testid': 'event-fields' });
    const tb = h('tbody');
    const order = cols.map((c, i) => [c, i]).filter(([, i]) => r[i] !== null && r[i] !== undefined && r[i] !== '');
    order.sort((a, b) => (a[0] === '@timestamp' ? -1 : b[0] === '@timestamp' ? 1 : a[0] === 'message' ? -1 : b[0] === 'message' ? 1 : a[0].localeCompare(b[0])));
    for (const [c, i] of order) {
      const v = valueText(r[i]);
      const btn = h('button', { type: 'button', class: 'field-value', 'data-field': c, 'data-testid': 'field-value', title: `Filter: ${c}=${quoteValue(v)}`, text: v });
      btn.addEventListener('click', () => {
        input.value = addFilter(input.value, c, v);
        run();
      });
      tb.append(h('tr', null, h('th', { scope: 'row', class: 'field-name mono', text: c }), h('td', { class: 'mono' }, btn, entityJump(c, v))));
    }
    dl.append(tb);
    return dl;
  }

  function statsTable(cols, rows) {
    const table = h('table', { class: 'data-table stats-table', id: 'stats-table', 'data-testid': 'stats-table' });
    const numeric = cols.map((c, i) => rows.length > 0 && rows.every((r) => r[i] === null || typeof r[i] === 'number'));
    table.append(h('thead', null, h('tr', null, cols.map((c, i) => h('th', { scope: 'col', class: numeric[i] ? 'num' : '', text: c })))));
    const tbody = h('tbody');
    if (!rows.length) tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: Math.max(1, cols.length), class: 'muted', text: 'No results.' })));
    const timeCol = cols.indexOf('_time');
    for (const r of rows) {
      tbody.append(h('tr', { 'data-testid': 'stats-row' }, cols.map((c, i) => {
        if (i === timeCol) return h('td', { class: 'mono' }, timeEl(r[i]));
        const v = r[i];
        if (!numeric[i] && v !== null && v !== undefined && c !== 'count' && !c.startsWith('_')) {
          // group values drill down: add as a filter and drop the pipeline
          const b = h('button', { type: 'button', class: 'field-value', 'data-field': c, title: `Show events with ${c}=${quoteValue(valueText(v))}`, text: valueText(v) });
          b.addEventListener('click', () => { input.value = addFilter(searchPart(input.value) === '*' ? '' : searchPart(input.value), c, valueText(v)); run(); });
          return h('td', { class: 'mono' }, b);
        }
        return h('td', { class: numeric[i] ? 'num mono' : 'mono', text: typeof v === 'number' ? fmtNum(v) : valueText(v) });
      })));
    }
    table.append(tbody);
    return table;
  }

  // Keyboard: "/" focuses the query bar (unless typing somewhere); Escape collapses an
  // expanded event (the one holding the focus, else the last one opened).
  const onKey = (ev) => {
    if (ev.defaultPrevented || ev.isComposing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const ae = document.activeElement;
    const typing = ae && (/^(INPUT|TEXTAREA|SELECT)$/.test(ae.tagName) || ae.isContentEditable);
    if (ev.key === '/' && !typing) {
      ev.preventDefault();
      input.focus();
      const end = input.value.length;
      try { input.setSelectionRange(end, end); } catch (_) { /* ignore */ }
    } else if (ev.key === 'Escape' && !typing && openEvents.length) {
      const inside = ae && openEvents.find((e) => e.tr.contains(ae) || e.detail.contains(ae));
      const target = inside || openEvents[openEvents.length - 1];
      ev.preventDefault();
      target.set(false);
      if (inside || !ae || ae === document.body) target.toggle.focus();
    }
  };
  document.addEventListener('keydown', onKey);

  if (searchState.query) run({ fromUrl: true });
  else {
    results.append(h('div', { class: 'hint-box' },
      h('p', { text: 'Type a query and press Enter. Examples:' }),
      h('ul', null, [
        'event.category=authentication event.outcome=failure',
        'event.outcome=failure | stats count by source.ip | sort -count',
        '* | timechart span=5m count',
      ].map((ex) => {
        const b = h('button', { type: 'button', class: 'link-button mono', text: ex });
        b.addEventListener('click', () => { input.value = ex; run(); });
        return h('li', null, b);
      }))));
    input.focus();
  }
  return {
    name: 'search',
    /** A new #/search hash while this view shows (Back/Forward, a link): show and run that search. */
    update(newParams) {
      if (!readSearchParams(newParams)) {
        // bare #/search (the nav link): keep the search on screen, and in the URL
        history.replaceState(null, '', searchHash());
        return;
      }
      input.value = searchState.query;
      syncPicker();
      if (searchState.query) run({ fromUrl: true });
      else {
        if (controller) controller.abort();
        seqNo++;
        runBtn.disabled = false;
        view.removeAttribute('aria-busy');
        clear(meta);
        clear(histoBox);
        $('histogram-note').textContent = '';
        clear(results).append(h('p', { class: 'muted hint', text: 'Type a query and press Enter. Use * to match every event.' }));
        updateExport();
      }
    },
    cleanup() { document.removeEventListener('keydown', onKey); if (controller) controller.abort(); },
  };
}

// ------------------------------------------------------------------ alerts

const alertFilters = { status: 'open', level: '', rule: '' };

function renderAlerts(view, params) {
  for (const k of ['status', 'level', 'rule']) if (params.has(k)) alertFilters[k] = params.get(k);
  const controller = new AbortController();
  const statusSel = h('select', { id: 'alert-status-filter', 'data-testid': 'alert-status-filter' },
    [['', 'Any status'], ['open', '● Open'], ['acknowledged', '◐ Acknowledged'], ['closed', '✓ Closed']].map(([v, t]) => h('option', { value: v, text: t, selected: alertFilters.status === v })));
  const levelSel = h('select', { id: 'alert-level-filter', 'data-testid': 'alert-level-filter' },
    [['', 'Any level'], ...['low', 'medium', 'high', 'critical'].map((l) => [l, `${LEVEL_ICON[l]} ${l} and above`])].map(([v, t]) => h('option', { value: v, text: t, selected: alertFilters.level === v })));
  const ruleSel = h('select', { id: 'alert-rule-filter', 'data-testid': 'alert-rule-filter' }, h('option', { value: '', text: 'Any rule' }));
  if (alertFilters.rule) ruleSel.append(h('option', { value: alertFilters.rule, text: alertFilters.rule, selected: true }));
  const refresh = h('button', { type: 'button', class: 'btn btn-secondary', id: 'alerts-refresh' }, h('span', { 'aria-hidden': 'true', text: '↻ ' }), 'Refresh');
  const listBox = h('div', { id: 'alerts-list', class: 'panel flush' });
  const bans = h('section', { class: 'panel', id: 'decisions-panel', 'aria-label': 'Active bans' });

  const filterBar = h('div', { class: 'filter-bar' },
    h('label', null, h('span', { class: 'filter-label', text: 'Status' }), statusSel),
    h('label', null, h('span', { class: 'filter-label', text: 'Level' }), levelSel),
    h('label', null, h('span', { class: 'filter-label', text: 'Rule' }), ruleSel),
    refresh);
  view.append(pageHeader('Alerts'), filterBar, listBox, bans);

  for (const sel of [statusSel, levelSel, ruleSel]) sel.addEventListener('change', () => {
    alertFilters.status = statusSel.value;
    alertFilters.level = levelSel.value;
    alertFilters.rule = ruleSel.value;
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(alertFilters)) if (v) p.set(k, v);
    history.replaceState(null, '', `#/alerts?${p}`);
    load();
  });
  refresh.addEventListener('click', () => load());

  // rule filter options from the loaded rules
  api('GET', '/api/v1/rules', undefined, { signal: controller.signal }).then((r) => {
    const have = new Set([...ruleSel.options].map((o) => o.value));
    for (const rule of (r.rules || []).slice().sort((a, b) => String(a.title).localeCompare(String(b.title)))) {
      if (have.has(rule.id)) continue;
      ruleSel.append(h('option', { value: rule.id, text: `${rule.title} (${rule.id})` }));
    }
  }).catch((err) => showError(err, 'Loading rules'));

  async function load() {
    hideError();
    const p = new URLSearchParams({ limit: '500' });
    for (const [k, v] of Object.entries(alertFilters)) if (v) p.set(k, v);
    clear(listBox).append(h('div', { class: 'pad' }, spinner('Loading alerts…')));
    try {
      const res = await api('GET', `/api/v1/alerts?${p}`, undefined, { signal: controller.signal });
      const alerts = res.alerts || [];
      clear(listBox).append(dataTable([
        { label: 'ID', cls: 'num mono', render: (a) => h('a', { href: `#/alerts/${encodeURIComponent(a.id)}`, class: 'alert-link', 'data-testid': 'alert-link', text: `#${a.id}` }) },
        { label: 'Level', render: (a) => levelBadge(a.rule && a.rule.level) },
        { label: 'Status', render: (a) => statusBadge(a.status) },
        { label: 'Rule', render: (a) => h('a', { href: `#/alerts/${encodeURIComponent(a.id)}`, class: 'rule-title', text: (a.rule && a.rule.title) || '(untitled)' }) },
        { label: 'Group', cls: 'mono', render: (a) => (Object.keys(a.group || {}).length ? Object.entries(a.group).map(([k, v], i) => [i ? ' ' : '', `${k}=`, entityValue(k, v)]) : '—') },
        { label: 'Events', cls: 'num', render: (a) => fmtNum(a.count) },
        { label: 'First seen', cls: 'mono nowrap', render: (a) => timeEl(a.first_seen) },
        { label: 'Last seen', cls: 'mono nowrap', render: (a) => timeEl(a.last_seen) },
      ], alerts, {
        id: 'alerts-table', testid: 'alerts-table', caption: 'Alert queue',
        empty: 'No alerts match these filters.',
        rowAttrs: (a) => ({ class: 'alert-row', 'data-testid': 'alert-row', 'data-alert-id': a.id, 'data-status': a.status }),
      }));
      if (res.message) listBox.append(h('p', { class: 'muted pad', text: res.message }));
      listBox.prepend(h('div', { class: 'panel-title-row pad' }, h('h2', { class: 'panel-title', text: `${fmtNum(alerts.length)} ${alerts.length === 1 ? 'alert' : 'alerts'}` })));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(listBox).append(inlineError(err, 'Loading alerts'));
      showError(err, 'Loading alerts');
    }
  }
  load();
  loadDecisions(bans, controller.signal);
  return { cleanup() { controller.abort(); } };
}

async function loadDecisions(box, signal) {
  clear(box).append(h('h2', { class: 'panel-title', text: 'Active bans' }));
  try {
    const res = await api('GET', '/api/v1/decisions', undefined, { signal });
    const ds = res.decisions || [];
    box.append(dataTable([
      { label: 'Value', cls: 'mono', render: (d) => (d.scope === 'ip' ? entityValue('source.ip', d.value) : valueText(d.value)) },
      { label: 'Scope', key: 'scope' },
      { label: 'Until', cls: 'mono nowrap', render: (d) => timeEl(d.until) },
      { label: 'Reason', key: 'reason' },
      // The API names the alert `alert` (vigil_respond::decisions::Decision::to_json).
      { label: 'Alert', render: (d) => (d.alert !== null && d.alert !== undefined ? h('a', { href: `#/alerts/${encodeURIComponent(d.alert)}`, 'data-testid': 'ban-alert-link', text: `#${d.alert}` }) : '—') },
    ], ds, { id: 'decisions-table', empty: 'No active bans.' }));
  } catch (err) {
    if (err.name === 'AbortError') return;
    // Decisions are optional: a missing endpoint is not an error worth a banner.
    box.append(err.status === 404 ? h('p', { class: 'muted', text: 'Bans are not available on this server.' }) : inlineError(err, 'Loading bans'));
  }
}

function renderAlertDetail(view, id) {
  const controller = new AbortController();
  const box = h('div', { id: 'alert-detail', 'data-testid': 'alert-detail' }, spinner('Loading alert…'));
  view.append(h('p', { class: 'breadcrumb' }, h('a', { href: '#/alerts', text: '← Alerts' })), box);

  async function load() {
    try {
      const a = await api('GET', `/api/v1/alerts/${encodeURIComponent(id)}`, undefined, { signal: controller.signal });
      draw(a);
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(box).append(inlineError(err, `Loading alert #${id}`));
      showError(err, `Loading alert #${id}`);
    }
  }

  function draw(a) {
    clear(box);
    const rule = a.rule || {};
    box.append(
      h('div', { class: 'page-header' },
        h('h1', null, h('span', { class: 'muted', text: `#${a.id} ` }), h('span', { id: 'alert-title', text: rule.title || '(untitled rule)' })),
        h('div', { class: 'page-actions' }, levelBadge(rule.level), h('span', { id: 'alert-status', 'data-testid': 'alert-status', 'data-status': a.status }, statusBadge(a.status)))),
    );
    const facts = h('dl', { class: 'facts' });
    const fact = (k, v) => facts.append(h('div', { class: 'fact' }, h('dt', { text: k }), h('dd', null, v)));
    fact('Rule', h('span', null, h('strong', { 'data-testid': 'alert-rule-title', text: rule.title || '—' }), ' ', h('span', { class: 'mono muted small', text: rule.id || '' }), ' ',
      h('a', { href: `#/alerts?${new URLSearchParams({ rule: rule.id || '', status: '' })}`, class: 'small', text: 'other alerts of this rule' })));
    fact('Group', h('span', { class: 'mono', 'data-testid': 'alert-group' }, Object.entries(a.group || {}).length ? Object.entries(a.group).map(([k, v], i) => [i ? ' ' : '', `${k}=`, entityValue(k, v)]) : '—'));
    fact('Events', fmtNum(a.count));
    fact('First seen', timeEl(a.first_seen));
    fact('Last seen', timeEl(a.last_seen));
    fact('Created', timeEl(a.created));
    fact('ATT&CK / tags', tagChips(rule.tags || []));
    const banFact = h('span', { 'data-testid': 'alert-ban', text: '—' });
    fact('Ban', banFact);
    api('GET', '/api/v1/decisions', undefined, { signal: controller.signal }).then((res) => {
      const mine = (res.decisions || []).filter((d) => d.alert === a.id);
      if (mine.length) clear(banFact).append(h('span', null, mine.map((d, i) => [i ? ', ' : '', h('span', { class: 'mono', text: d.value }), ` until ${fmtTime(d.until)}`])));
    }).catch(() => {});
    const groupEntries = a.group && typeof a.group === 'object' ? Object.entries(a.group) : [];
    if (groupEntries.length) {
      const q = groupEntries.map(([k, v]) => `${k}=${quoteValue(valueText(v))}`).join(' ');
      fact('Investigate', h('a', { href: `#/search?${new URLSearchParams({ q, from: '-24h' })}`, text: `Search ${q}` }));
    }

    const about = rule.description ? h('p', { class: 'rule-description', 'data-testid': 'rule-description', text: rule.description }) : null;
    const related = h('section', { class: 'panel', id: 'related-alerts', 'aria-label': 'Related alerts' }, h('h2', { class: 'panel-title', text: 'Related alerts (same entity)' }));
    relatedAlerts(related, a, controller.signal);
    const left = h('div', { class: 'detail-main' },
      h('section', { class: 'panel' }, h('h2', { class: 'panel-title', text: 'Summary' }), about, facts),
      a.baseline ? baselinePanel(a.baseline) : null,
      related,
      a.contributing ? h('section', { class: 'panel flush', id: 'contributing-events', 'aria-label': 'Contributing events' },
        h('div', { class: 'panel-title-row pad' }, h('h2', { class: 'panel-title', text: 'Every contributing event' }), h('span', { class: 'muted small', 'data-testid': 'contributing-count', text: `${a.contributing.length} events${a.contributing_truncated ? ' (the first shown)' : ''}` })),
        alertEvents(a.contributing, rule.id, 'contributing-events-list')) : null,
      h('section', { class: 'panel flush', 'aria-label': 'Matching events' },
        h('div', { class: 'panel-title-row pad' }, h('h2', { class: 'panel-title', text: a.contributing ? 'Sample events' : 'Matching events' }), h('span', { class: 'muted small', text: `${(a.events || []).length} sample events` })),
        alertEvents(a.events || [], rule.id)));

    const triage = h('section', { class: 'panel', id: 'triage-panel', 'aria-label': 'Triage' }, h('h2', { class: 'panel-title', text: 'Triage' }));
    if (canWrite()) {
      const comment = h('textarea', { id: 'triage-comment', 'data-testid': 'triage-comment', rows: 3, placeholder: 'Comment (what you checked, what you decided)' });
      const buttons = h('div', { class: 'button-row' });
      const mk = (status, label, icon, cls, bid) => {
        const b = h('button', { type: 'button', class: `btn ${cls}`, id: bid, 'data-testid': bid, disabled: a.status === status }, h('span', { 'aria-hidden': 'true', text: icon + ' ' }), label);
        b.addEventListener('click', async () => {
          hideError();
          for (const x of buttons.querySelectorAll('button')) x.disabled = true;
          try {
            const updated = await api('POST', `/api/v1/alerts/${encodeURIComponent(a.id)}`, { status, comment: comment.value.trim() }, { signal: controller.signal });
            draw({ ...a, ...updated, events: updated.events || a.events });
            refreshOpenCount();
          } catch (err) {
            if (err.name === 'AbortError') return;
            showError(err, `Could not set alert #${a.id} to ${status}`);
            for (const x of buttons.querySelectorAll('button')) x.disabled = false;
          }
        });
        buttons.append(b);
      };
      mk('acknowledged', 'Acknowledge', '◐', 'btn-primary', 'ack-button');
      mk('closed', 'Close', '✓', 'btn-secondary', 'close-button');
      mk('open', 'Reopen', '●', 'btn-secondary', 'reopen-button');
      triage.append(h('label', { for: 'triage-comment', class: 'field-label', text: 'Comment' }), comment, buttons);
    } else {
      triage.append(h('p', { class: 'muted', text: 'Your role (viewer) can read alerts but not change them.' }));
    }
    const hist = h('ol', { class: 'history', id: 'alert-history', 'data-testid': 'alert-history' });
    for (const e of (a.history || []).slice().reverse()) {
      hist.append(h('li', { class: 'history-item' },
        h('div', { class: 'history-head' }, statusBadge(e.status), ' by ', h('strong', { text: e.by || '?' }), ' · ', timeEl(e.at)),
        e.comment ? h('p', { class: 'history-comment', text: e.comment }) : null));
    }
    if (!(a.history || []).length) hist.append(h('li', { class: 'muted', text: 'No history.' }));
    const exPanel = h('section', { class: 'panel', id: 'exceptions-panel', 'aria-label': 'Exceptions' }, h('h2', { class: 'panel-title', text: 'Exceptions of this rule' }));
    exceptionsPanel(exPanel, rule.id, a.group || {}, controller.signal);
    const casesPanel = h('section', { class: 'panel', id: 'alert-cases-panel', 'aria-label': 'Cases' }, h('h2', { class: 'panel-title', text: 'Cases' }));
    alertCasesPanel(casesPanel, a, controller.signal);
    const right = h('div', { class: 'detail-side' }, triage, casesPanel, exPanel, h('section', { class: 'panel' }, h('h2', { class: 'panel-title', text: 'History' }), hist));
    box.append(h('div', { class: 'detail-grid' }, left, right));
  }

  // A behaviour rule's reason: what was normal, over which period, from how much history,
  // and the value that broke it (alert.baseline, from vigil.alert.baseline.* fields).
  function baselinePanel(b) {
    const dl = h('dl', { class: 'facts' });
    const fact = (k, v) => dl.append(h('div', { class: 'fact' }, h('dt', { text: k }), h('dd', null, v)));
    const n = (x) => (typeof x === 'number' ? (Number.isInteger(x) ? fmtNum(x) : x.toFixed(2)) : '—');
    fact('Kind', h('span', { class: 'mono', text: b.kind || '—' }));
    fact('Value that broke it', h('strong', { class: 'mono', 'data-testid': 'baseline-observed', text: b.observed || '—' }));
    fact('Measured', h('span', { class: 'mono', text: b.metric || '—' }));
    if (b.median !== null && b.median !== undefined) {
      fact('Normal', h('span', { text: `median ${n(b.median)}, MAD ${n(b.mad)}; outlier above ${n(b.threshold)}` }));
    }
    if (b.peer_group) fact('Peer group', h('span', { class: 'mono', text: `${b.peer_group} (${n(b.entities)} peers)` }));
    if (b.windows !== null && b.windows !== undefined) fact(b.kind === 'new_terms' ? 'Tuples remembered' : 'Windows in baseline', fmtNum(b.windows));
    fact('Baseline period', h('span', null, timeEl(b.since), ' → ', timeEl(b.until)));
    return h('section', { class: 'panel', id: 'alert-baseline', 'data-testid': 'alert-baseline', 'aria-label': 'Why this alert' },
      h('h2', { class: 'panel-title', text: 'Why: the baseline and what broke it' }),
      h('p', { 'data-testid': 'baseline-summary', text: b.summary || '' }), dl);
  }

  function alertEvents(events, ruleId, listId = 'alert-events') {
    if (!events.length) return h('p', { class: 'muted pad', text: 'No sample events are stored for this alert.' });
    const keys = new Set();
    for (const e of events) for (const k of Object.keys(e)) keys.add(k);
    const lead = ['@timestamp', 'vigil.seq', 'message'].filter((k) => keys.has(k));
    const rest = [...keys].filter((k) => !lead.includes(k)).sort();
    const wrap = h('div', { class: 'alert-events', id: listId, 'data-testid': listId });
    for (const e of events) {
      const fields = h('table', { class: 'field-table' }, h('tbody', null, rest.filter((k) => e[k] !== null && e[k] !== undefined).map((k) =>
        h('tr', null, h('th', { scope: 'row', class: 'field-name mono', text: k }), h('td', { class: 'mono' }, entityValue(k, e[k]))))));
      const det = h('details', { class: 'alert-event', 'data-testid': 'alert-event' },
        h('summary', null, h('span', { class: 'mono muted', text: fmtTime(e['@timestamp']) }), ' ',
          e['vigil.seq'] !== undefined ? h('span', { class: 'mono muted small', text: `seq ${valueText(e['vigil.seq'])} ` }) : null,
          h('span', { class: 'event-message', text: eventSummary(e) })),
        fields);
      if (ruleId && e['vigil.seq'] !== undefined) det.append(traceButton(ruleId, e['vigil.seq'], 'Why did this match?'));
      wrap.append(det);
    }
    return wrap;
  }

  load();
  return { cleanup() { controller.abort(); } };
}

// ------------------------------------------------------------------ dashboards

const DASH_REFRESH_MS = 30000;

function renderDashboards(view) {
  const controller = new AbortController();
  let timer = null;
  let running = false;
  let stopped = false;
  const updated = h('span', { id: 'dash-updated', class: 'muted small', 'aria-live': 'polite' });
  const refreshBtn = h('button', { type: 'button', class: 'btn btn-secondary', id: 'dash-refresh' }, h('span', { 'aria-hidden': 'true', text: '↻ ' }), 'Refresh');
  view.append(pageHeader('Dashboards', updated, refreshBtn));

  const panel = (id, title, sub) => {
    const body = h('div', { class: 'panel-body' }, spinner());
    const width = () => body.clientWidth || 600;
    const sec = h('section', { class: `panel dash-panel`, id, 'data-testid': id, 'aria-label': title },
      h('div', { class: 'panel-title-row' }, h('h2', { class: 'panel-title', text: title }), h('span', { class: 'muted small', text: sub })), body);
    return { sec, body, width };
  };
  const p = {
    failed: panel('panel-failed-logins', 'Failed logins', 'last 24 h · 30 min buckets'),
    top: panel('panel-top-sources', 'Top source addresses of failures', 'last 24 h'),
    levels: panel('panel-alerts-by-level', 'Alerts by level', 'all statuses'),
    perSource: panel('panel-events-per-source', 'Events per source', 'last 24 h'),
    ingest: panel('panel-ingest-rate', 'Ingest rate', 'last hour · events per minute'),
    saved: panel('panel-saved', 'Your panels', 'saved searches put on the dashboard'),
  };
  view.append(h('div', { class: 'dash-grid' }, p.failed.sec, p.ingest.sec, p.top.sec, p.levels.sec, p.perSource.sec, p.saved.sec));

  const search = (query, from) => api('POST', '/api/v1/search', { query, from, to: 'now', limit: 1000 }, { signal: controller.signal });
  const toSearch = (q, from = '-24h') => { location.hash = `#/search?${new URLSearchParams({ q, from })}`; };

  /** One saved-search panel: a plain search shows its count, a pipeline its chart or table. */
  const savedPanel = async (sv) => {
    const plain = searchPart(sv.query) === sv.query.trim();
    const res = await api('POST', '/api/v1/search', { query: plain ? `${sv.query} | stats count` : sv.query, from: sv.from, to: sv.to, limit: 1000 }, { signal: controller.signal });
    const cols = res.columns || [];
    const rows = res.rows || [];
    const open = h('button', { type: 'button', class: 'link-button', text: sv.name, title: sv.query });
    open.addEventListener('click', () => { location.hash = `#/search?${new URLSearchParams({ q: sv.query, from: sv.from, ...(sv.to !== 'now' ? { to: sv.to } : {}) })}`; });
    const card = h('div', { class: 'saved-card', 'data-testid': 'saved-card', 'data-id': sv.id, 'data-name': sv.name }, h('h3', { class: 'small' }, open, sv.shared ? h('span', { class: 'badge', text: 'shared' }) : null));
    if (sv.editable) {
      const remove = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'saved-card-remove', 'aria-label': `Take ${sv.name} off the dashboard`, text: '✕' });
      remove.addEventListener('click', async () => {
        try { await api('POST', `/api/v1/saved-searches/${encodeURIComponent(sv.id)}`, { panel: false }); card.remove(); } catch (err) { showError(err, 'Dashboard'); }
      });
      card.firstChild.append(remove);
    }
    if (plain) {
      const n = Number(rows[0] && rows[0][cols.indexOf('count')]) || 0;
      card.append(h('div', { class: 'big-number' }, h('span', { 'data-testid': 'saved-card-count', 'data-count': n, text: fmtNum(n) }), h('span', { class: 'muted small', text: ' events' })));
    } else {
      card.append(resultChart(cols, rows, { width: p.saved.width() }) || statsTableLite(cols, rows));
    }
    return card;
  };

  const jobs = [
    [p.saved, async () => {
      const res = await api('GET', '/api/v1/saved-searches', undefined, { signal: controller.signal });
      const panels = (res.searches || []).filter((sv) => sv.panel).slice(0, 24);
      if (!panels.length) return h('p', { class: 'muted', text: 'No panels yet: on the Search page, save a search and choose “add to dashboard”.' });
      return Promise.all(panels.map((sv) => savedPanel(sv).catch((err) => { if (err.name === 'AbortError') throw err; return inlineError(err, sv.name); })));
    }],
    [p.failed, async () => {
      const res = await search('event.category=authentication event.outcome=failure | timechart span=30m count', '-24h');
      const now = Date.now();
      const pts = timechartPoints(res);
      const total = pts.reduce((a, x) => a + x.v, 0);
      return [h('div', { class: 'big-number' }, h('span', { text: fmtNum(total) }), h('span', { class: 'muted small', text: ' failed logins' })),
        timeBarChart(pts, { from: new Date(now - 86400e3), to: new Date(now), bucketMs: 1800e3, height: 170, width: p.failed.width(), label: 'failed logins', testid: 'chart-failed-logins',
          onBarClick: () => toSearch('event.category=authentication event.outcome=failure') })];
    }],
    [p.top, async () => {
      const res = await search('event.outcome=failure | stats count by source.ip | sort -count | head 10', '-24h');
      const cols = res.columns || [];
      const ki = cols.indexOf('source.ip');
      const ci = cols.indexOf('count');
      const items = (res.rows || []).map((r) => ({ label: valueText(r[ki < 0 ? 0 : ki]), value: Number(r[ci < 0 ? cols.length - 1 : ci]) || 0 }));
      if (!items.length) return h('p', { class: 'muted', text: 'No failures in the last 24 hours.' });
      return hBarChart(items, { label: 'failures', width: p.top.width(), testid: 'chart-top-sources', onClick: (it) => toSearch(`event.outcome=failure source.ip=${quoteValue(it.label)}`) });
    }],
    [p.levels, async () => {
      const res = await api('GET', '/api/v1/alerts?limit=10000', undefined, { signal: controller.signal });
      const counts = new Map(LEVELS.map((l) => [l, { all: 0, open: 0 }]));
      for (const a of res.alerts || []) {
        const l = String((a.rule && a.rule.level) || 'unknown').toLowerCase();
        if (!counts.has(l)) counts.set(l, { all: 0, open: 0 });
        counts.get(l).all++;
        if (a.status === 'open') counts.get(l).open++;
      }
      const items = [...counts.entries()].filter(([l, c]) => c.all > 0 || (l !== 'informational')).reverse()
        .map(([l, c]) => ({ label: l, value: c.all, cls: `level-bar level-${l}`, open: c.open }));
      return [hBarChart(items, { label: 'alerts', width: p.levels.width(), testid: 'chart-alerts-by-level', iconFor: (it) => LEVEL_ICON[it.label] || '?', onClick: (it) => { location.hash = `#/alerts?${new URLSearchParams({ level: it.label, status: '' })}`; } }),
        h('p', { class: 'muted small', text: `Open: ${items.map((i) => `${i.label} ${i.open}`).join(' · ')}` })];
    }],
    [p.perSource, async () => {
      const res = await search('* | stats count by vigil.source | sort -count', '-24h');
      const cols = res.columns || [];
      const ki = cols.indexOf('vigil.source');
      const ci = cols.indexOf('count');
      const items = (res.rows || []).map((r) => ({ label: valueText(r[ki < 0 ? 0 : ki]), value: Number(r[ci < 0 ? cols.length - 1 : ci]) || 0 }));
      if (!items.length) return h('p', { class: 'muted', text: 'No events in the last 24 hours.' });
      return hBarChart(items, { label: 'events', width: p.perSource.width(), testid: 'chart-events-per-source', onClick: (it) => toSearch(`vigil.source=${quoteValue(it.label)}`) });
    }],
    [p.ingest, async () => {
      const [res, src] = await Promise.all([
        search('* | timechart span=1m count', '-1h'),
        api('GET', '/api/v1/sources', undefined, { signal: controller.signal }).catch((e) => { if (e.name === 'AbortError') throw e; return null; }),
      ]);
      const now = Date.now();
      const pts = timechartPoints(res);
      const rate = src && Array.isArray(src.sources) ? src.sources.reduce((a, x) => a + (Number(x.per_minute) || 0), 0) : null;
      const total = pts.reduce((a, x) => a + x.v, 0);
      return [h('div', { class: 'big-number' },
        h('span', { id: 'ingest-rate-now', text: rate === null ? fmtNum(Math.round(total / 60)) : (Math.round(rate * 10) / 10).toLocaleString('en-US') }),
        h('span', { class: 'muted small', text: ' events/min now' }), h('span', { class: 'muted small', text: ` · ${fmtNum(total)} in the last hour` })),
      timeBarChart(pts, { from: new Date(now - 3600e3), to: new Date(now), bucketMs: 60e3, height: 170, width: p.ingest.width(), label: 'events', testid: 'chart-ingest-rate' })];
    }],
  ];

  async function refreshAll() {
    if (running || stopped) return; // never pile up: one round at a time
    running = true;
    clearTimeout(timer);
    refreshBtn.disabled = true;
    let failures = 0;
    await Promise.all(jobs.map(async ([pp, job]) => {
      try {
        const content = await job();
        if (stopped) return;
        clear(pp.body).append(...[content].flat());
        pp.sec.classList.remove('has-error');
      } catch (err) {
        if (err.name === 'AbortError' || stopped) return;
        failures++;
        pp.sec.classList.add('has-error');
        clear(pp.body).append(inlineError(err));
      }
    }));
    running = false;
    if (stopped) return;
    refreshBtn.disabled = false;
    updated.textContent = `Updated ${fmtTime(new Date())}${failures ? ` · ${failures} panel(s) failed` : ''} · refreshes every 30 s`;
    // schedule the next round only after this one finished
    timer = setTimeout(tick, DASH_REFRESH_MS);
  }
  function tick() {
    if (document.hidden) { timer = setTimeout(tick, DASH_REFRESH_MS); return; } // don't poll in a background tab
    refreshAll();
  }
  refreshBtn.addEventListener('click', () => { if (!running) refreshAll(); });
  refreshAll();
  return { cleanup() { stopped = true; clearTimeout(timer); controller.abort(); } };
}

// ------------------------------------------------------------------ integrity

function renderIntegrity(view) {
  const controller = new AbortController();
  const body = h('div', { id: 'integrity' }, spinner());
  view.append(pageHeader('Integrity'), body);

  async function load() {
    try {
      const st = await api('GET', '/api/v1/integrity', undefined, { signal: controller.signal });
      draw(st);
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(body).append(inlineError(err, 'Loading integrity state'));
      showError(err, 'Loading integrity state');
    }
  }

  function verificationBox(v) {
    const box = h('div', { id: 'last-verification', 'data-testid': 'last-verification', 'data-ok': v ? String(Boolean(v.ok)) : '' });
    if (!v) {
      box.append(h('p', { class: 'muted', text: 'No verification has run yet.' }));
      return box;
    }
    box.append(
      h('div', { class: `verify-result ${v.ok ? 'ok' : 'bad'}`, id: 'verify-result', 'data-testid': 'verify-result' },
        h('span', { class: 'verify-icon', 'aria-hidden': 'true', text: v.ok ? '✔' : '✘' }),
        h('span', { class: 'verify-word', text: v.ok ? 'Intact' : 'FAILED' }),
        h('span', { class: 'verify-sub', text: v.ok ? ' — the log verifies against the signed checkpoint' : ' — the log does not verify' })),
      h('dl', { class: 'facts' },
        h('div', { class: 'fact' }, h('dt', { text: 'Verified at' }), h('dd', { id: 'verify-time', 'data-testid': 'verify-time' }, timeEl(v.at), h('span', { class: 'muted small', text: ` (${fmtAgo(v.at)})` }))),
        h('div', { class: 'fact' }, h('dt', { text: 'By' }), h('dd', { text: v.by || '—' })),
        h('div', { class: 'fact' }, h('dt', { text: 'Events checked' }), h('dd', { text: fmtNum(v.events) })),
        h('div', { class: 'fact fact-wide' }, h('dt', { text: 'Message' }), h('dd', { id: 'verify-message', text: v.message || '—' }))));
    return box;
  }

  // How this server's run began: a previous run that did not stop cleanly may have lost
  // plain-syslog lines in flight (the ledger itself recovers and verifies).
  function runPanel(run) {
    const panel = h('section', { class: 'panel', 'aria-label': 'This server' }, h('h2', { class: 'panel-title', text: 'This server' }));
    if (!run) return panel;
    const previous = {
      none: 'none recorded (first start on this data directory)',
      clean: 'stopped cleanly',
      unclean: 'did NOT stop cleanly (crash or kill): syslog sent while it went down may be missing',
    }[run.previous_stop] || '—';
    panel.append(h('dl', { class: 'facts' },
      h('div', { class: 'fact' }, h('dt', { text: 'Running since' }), h('dd', null, timeEl(run.started))),
      h('div', { class: 'fact' }, h('dt', { text: 'Version' }), h('dd', { text: run.version || '—' })),
      h('div', { class: 'fact fact-wide' }, h('dt', { text: 'Previous run' }),
        h('dd', { id: 'previous-stop', 'data-testid': 'previous-stop', 'data-state': run.previous_stop || '', class: run.previous_stop === 'unclean' ? 'bad' : '', text: previous }))));
    panel.append(h('p', { class: 'muted small', text: 'Starts, stops and changed settings are audit events: search event.action=vigil_start OR event.action=vigil_stop OR event.action=config_changed.' }));
    return panel;
  }

  function draw(st) {
    clear(body);
    const ver = h('section', { class: 'panel', 'aria-label': 'Last verification' }, h('h2', { class: 'panel-title', text: 'Last verification' }));
    let vbox = verificationBox(st.last_verification);
    ver.append(vbox);
    if (canWrite()) {
      const btn = h('button', { type: 'button', class: 'btn btn-primary', id: 'verify-button', 'data-testid': 'verify-button' }, h('span', { 'aria-hidden': 'true', text: '✔ ' }), 'Verify now');
      const progress = h('span', { id: 'verify-progress', class: 'muted', hidden: true }, spinner('Verifying the whole log; this can take a while…'));
      btn.addEventListener('click', async () => {
        hideError();
        btn.disabled = true;
        progress.hidden = false;
        try {
          const v = await api('POST', '/api/v1/integrity/verify', {}, { signal: controller.signal });
          const nb = verificationBox(v);
          vbox.replaceWith(nb);
          vbox = nb;
        } catch (err) {
          if (err.name === 'AbortError') return;
          showError(err, 'Verification failed to run');
        } finally {
          btn.disabled = false;
          progress.hidden = true;
        }
      });
      ver.append(h('div', { class: 'button-row' }, btn, progress));
    }
    const cp = h('section', { class: 'panel', 'aria-label': 'Latest signed checkpoint' },
      h('h2', { class: 'panel-title', text: 'Latest signed checkpoint' }),
      h('dl', { class: 'facts' },
        h('div', { class: 'fact' }, h('dt', { text: 'Tree size' }), h('dd', { id: 'tree-size', text: st.tree_size === null || st.tree_size === undefined ? '—' : fmtNum(st.tree_size) })),
        h('div', { class: 'fact' }, h('dt', { text: 'Signed at' }), h('dd', null, timeEl(st.checkpoint_time)))),
      st.checkpoint ? h('pre', { class: 'code-block', id: 'checkpoint', 'data-testid': 'checkpoint', text: st.checkpoint })
        : h('p', { class: 'muted', id: 'checkpoint', 'data-testid': 'checkpoint', text: 'No checkpoint has been signed yet.' }));
    const key = h('section', { class: 'panel', 'aria-label': 'Verifier key' },
      h('h2', { class: 'panel-title', text: 'Verifier key' }),
      h('p', { class: 'muted small', text: 'Give this key to anyone who should check checkpoints independently.' }),
      h('pre', { class: 'code-block', id: 'verifier-key', 'data-testid': 'verifier-key', text: st.key || '—' }));
    if (st.key && navigator.clipboard) {
      const copy = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: 'copy-key' }, 'Copy key');
      copy.addEventListener('click', () => navigator.clipboard.writeText(st.key).then(() => { copy.textContent = 'Copied ✓'; }, (e) => showError(e, 'Copy failed')));
      key.append(copy);
    }
    body.append(h('div', { class: 'integrity-grid' }, ver, cp, key, runPanel(st.run)));
  }
  load();
  return { cleanup() { controller.abort(); } };
}

// ------------------------------------------------------------------ cluster

const CLUSTER_REFRESH_MS = 5000;

/** The detector's holder, or each detector partition's (`k: node`), as text. */
function detectorText(d) {
  if (!d) return 'none';
  if (Array.isArray(d.partitions)) {
    return d.partitions.map((p) => `${p.partition}: ${p.owner || 'none'}`).join(', ') || 'none';
  }
  return d.owner || 'none';
}

/** Cluster mode's health: nodes, shards and their owners, lag, the detector and witnesses. */
function renderCluster(view) {
  const controller = new AbortController();
  const body = h('div', { id: 'cluster', 'data-testid': 'cluster' }, spinner());
  const stamp = h('span', { class: 'muted small', id: 'cluster-updated' });
  view.append(pageHeader('Cluster', stamp), body);
  let timer = null;

  async function load() {
    try {
      const st = await api('GET', '/api/v1/cluster', undefined, { signal: controller.signal });
      draw(st);
      stamp.textContent = `updated ${fmtTime(new Date(), true)}`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(body).append(inlineError(err, 'Loading the cluster state'));
    }
    if (!controller.signal.aborted) timer = setTimeout(load, CLUSTER_REFRESH_MS);
  }

  const yesNo = (ok, yes, no) => h('span', { class: `badge status status-${ok ? 'loaded' : 'error'}`, 'data-ok': String(ok) },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true', text: ok ? '✓' : '✗' }), ' ', ok ? yes : no);

  function draw(st) {
    clear(body);
    if (st.mode !== 'cluster') {
      body.append(h('p', { class: 'muted', id: 'cluster-standalone', text: 'This server runs standalone: it is not a node of a cluster.' }));
      return;
    }
    const sync = st.sync_check && st.sync_check.verified
      ? `verified on ${st.sync_check.verified.servers} NATS server(s)`
      : 'unverified (no monitoring endpoint given)';
    body.append(h('section', { class: 'panel', 'aria-label': 'This node' },
      h('h2', { class: 'panel-title', text: 'This node' }),
      h('dl', { class: 'facts' },
        h('div', { class: 'fact' }, h('dt', { text: 'Node' }), h('dd', { id: 'cluster-node', class: 'mono', text: st.node })),
        h('div', { class: 'fact' }, h('dt', { text: 'Cluster' }), h('dd', { class: 'mono', text: st.cluster })),
        h('div', { class: 'fact' }, h('dt', { text: 'NATS' }), h('dd', null, yesNo(st.connected, 'connected', 'disconnected'))),
        h('div', { class: 'fact' }, h('dt', { text: 'fsync on every write' }), h('dd', { id: 'cluster-sync', text: sync })),
        h('div', { class: 'fact' }, h('dt', { text: 'Detector' }), h('dd', { class: 'mono', text: detectorText(st.detector) })))));
    body.append(h('section', { class: 'panel flush', 'aria-label': 'Nodes' },
      h('h2', { class: 'panel-title pad', text: 'Nodes' }),
      dataTable([
        { label: 'Node', cls: 'mono', key: 'node' },
        { label: 'State', render: (n) => yesNo(n.alive, 'alive', 'gone') },
        { label: 'HTTP', cls: 'mono small', render: (n) => n.http || '—' },
        { label: 'Started', cls: 'nowrap', render: (n) => timeEl(n.started) },
        { label: 'Version', cls: 'mono small', render: (n) => n.version || '—' },
      ], st.nodes || [], { id: 'cluster-nodes', testid: 'cluster-nodes', empty: 'No node has registered.',
        rowAttrs: (n) => ({ 'data-node': n.node, 'data-alive': String(n.alive) }) })));
    body.append(h('section', { class: 'panel flush', 'aria-label': 'Shards' },
      h('h2', { class: 'panel-title pad', text: 'Shards' }),
      dataTable([
        { label: 'Shard', cls: 'mono', key: 'shard' },
        { label: 'Owner', cls: 'mono', render: (s) => s.owner || h('span', { class: 'bad', text: 'no owner' }) },
        { label: 'Epoch', cls: 'num', render: (s) => fmtNum(s.epoch ?? null) },
        { label: 'Events', cls: 'num', render: (s) => fmtNum(s.events ?? null) },
        { label: 'Applied', cls: 'num', render: (s) => fmtNum(s.applied ?? null) },
        { label: 'Stream', cls: 'num', render: (s) => fmtNum(s.stream_last_seq) },
        { label: 'Lag', cls: 'num', render: (s) => (s.lag === null || s.lag === undefined ? '—' : h('span', { class: s.lag > 0 ? 'warn' : '', text: fmtNum(s.lag) })) },
      ], st.shards || [], { id: 'cluster-shards', testid: 'cluster-shards', empty: 'No shards.',
        rowAttrs: (s) => ({ 'data-shard': s.shard, 'data-owner': s.owner || '' }) })));
    body.append(h('section', { class: 'panel', 'aria-label': 'Witnesses' },
      h('h2', { class: 'panel-title', text: 'Witnesses' }),
      (st.witnesses || []).length
        ? h('pre', { class: 'code-block', id: 'cluster-witnesses', text: JSON.stringify(st.witnesses, null, 2) })
        : h('p', { class: 'muted', id: 'cluster-witnesses', text: 'No witness state reported.' })));
    if ((st.errors || []).length) {
      body.append(h('section', { class: 'panel', 'aria-label': 'Read errors' },
        h('h2', { class: 'panel-title', text: 'Could not read' }),
        h('ul', { id: 'cluster-errors' }, st.errors.map((e) => h('li', { text: e })))));
    }
  }
  load();
  return { cleanup() { controller.abort(); clearTimeout(timer); } };
}

// ------------------------------------------------------------------ rules

// A readable line for an event without a `message`: web access, Vigil's own audit, or
// whatever the event says of itself.
function eventSummary(e) {
  const v = (k) => valueText(e[k]);
  if (v('message')) return v('message');
  if (v('http.request.method') || v('url.original') || v('url.path')) {
    const status = v('http.response.status_code');
    return [v('source.ip'), v('http.request.method'), v('url.original') || v('url.path'), status ? `→ ${status}` : '', v('user_agent.original') ? `(${v('user_agent.original')})` : ''].filter(Boolean).join(' ');
  }
  if (v('event.dataset') === 'vigil.audit' || v('event.action')) {
    const who = v('user.name') || 'someone';
    const from = v('source.ip') ? ` from ${v('source.ip')}` : '';
    const outcome = v('event.outcome') ? ` (${v('event.outcome')})` : '';
    return `${who}: ${v('event.action') || v('event.dataset')}${outcome}${from}`;
  }
  return v('event.dataset') || v('event.original') || '(no message)';
}

// ATT&CK technique names for the ids Vigil's bundled rules and common SigmaHQ rules use.
const ATTACK_NAMES = {
  T1003: 'OS Credential Dumping', 'T1003.001': 'LSASS Memory', T1021: 'Remote Services', 'T1021.004': 'SSH',
  T1046: 'Network Service Discovery', T1059: 'Command and Scripting Interpreter', 'T1059.001': 'PowerShell', 'T1059.004': 'Unix Shell',
  T1070: 'Indicator Removal', T1078: 'Valid Accounts', T1083: 'File and Directory Discovery', T1087: 'Account Discovery',
  T1098: 'Account Manipulation', T1110: 'Brute Force', 'T1110.001': 'Password Guessing', 'T1110.003': 'Password Spraying',
  'T1110.004': 'Credential Stuffing', T1136: 'Create Account', T1190: 'Exploit Public-Facing Application', T1548: 'Abuse Elevation Control Mechanism',
  'T1548.003': 'Sudo and Sudo Caching', T1562: 'Impair Defenses', T1565: 'Data Manipulation', 'T1565.001': 'Stored Data Manipulation',
  T1595: 'Active Scanning', 'T1595.002': 'Vulnerability Scanning', T1068: 'Exploitation for Privilege Escalation',
};

// Tags as chips, once per fact: `attack.t1110.001` and `t1110.001` are one technique (named and
// linked to MITRE), `attack.credential_access` a tactic; other tags as they are.
function tagChips(tags) {
  const seen = new Set();
  const chips = [];
  for (const raw of tags) {
    const t = String(raw).toLowerCase().replace(/^attack\./, '');
    const tech = /^t\d{4}(\.\d{3})?$/.test(t) ? t.toUpperCase() : null;
    const key = tech || t.replace(/-/g, '_');
    if (seen.has(key)) continue;
    seen.add(key);
    if (tech) {
      const name = ATTACK_NAMES[tech];
      chips.push(h('a', { class: 'tag tag-attack', 'data-testid': 'attack-technique', href: `https://attack.mitre.org/techniques/${tech.replace('.', '/')}/`, target: '_blank', rel: 'noopener noreferrer', title: name || tech, text: name ? `${tech} ${name}` : tech }));
    } else if (String(raw).toLowerCase().startsWith('attack.')) {
      chips.push(h('span', { class: 'tag', 'data-testid': 'attack-tactic', text: t.replace(/[_-]/g, ' ') }));
    } else {
      chips.push(h('span', { class: 'tag', text: String(raw) }));
    }
  }
  return chips.length ? h('span', { class: 'tags' }, chips) : '—';
}

// Other alerts about the same entity: any alert whose group shares a field and value with
// this one's (the same address, user or host), newest first.
async function relatedAlerts(box, a, signal) {
  const pairs = Object.entries(a.group || {}).map(([k, v]) => [k, valueText(v)]);
  if (!pairs.length) { box.append(h('p', { class: 'muted', text: 'This alert has no entity.' })); return; }
  try {
    const res = await api('GET', '/api/v1/alerts?limit=10000', undefined, { signal });
    const rel = (res.alerts || []).filter((x) => x.id !== a.id && pairs.some(([k, v]) => x.group && valueText(x.group[k]) === v))
      .sort((x, y) => String(y.last_seen).localeCompare(String(x.last_seen))).slice(0, 50);
    if (!rel.length) { box.append(h('p', { class: 'muted', text: `No other alert for ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}.` })); return; }
    box.append(h('ul', { class: 'related-list', 'data-testid': 'related-alerts' }, rel.map((x) => h('li', { 'data-testid': 'related-alert' },
      h('a', { href: `#/alerts/${encodeURIComponent(x.id)}`, text: `#${x.id} ${(x.rule && x.rule.title) || ''}` }), ' ', levelBadge(x.rule && x.rule.level), ' ',
      h('span', { class: 'muted small', text: `${x.group_key || ''} · ${fmtTime(x.last_seen)}` })))));
  } catch (err) {
    if (err.name !== 'AbortError') box.append(inlineError(err, 'Loading related alerts'));
  }
}

// One rule exception in words: what it excludes or suppresses, why, by whom, until when.
function exceptionText(x) {
  const what = x.kind === 'exclude'
    ? `excludes events where ${(x.conditions || []).map((c) => `${c.field} ${c.op || 'equals'} "${c.value}"`).join(' and ')}`
    : `suppresses alerts for ${Object.entries(x.group || {}).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  const until = x.expires ? ` until ${fmtTime(x.expires)}` : '';
  return `${what} — ${x.reason} (${x.by}${until})${x.expired ? ' [expired]' : ''}`;
}

// The exceptions of a rule, and (for analysts) forms to add one and buttons to remove them.
async function exceptionsPanel(box, ruleId, group, signal) {
  const list = h('ul', { class: 'exception-list', 'data-testid': 'exceptions' });
  box.append(list);
  async function load() {
    clear(list);
    try {
      const res = await api('GET', `/api/v1/exceptions?${new URLSearchParams({ rule: ruleId })}`, undefined, { signal });
      const xs = res.exceptions || [];
      if (!xs.length) list.append(h('li', { class: 'muted', text: 'None.' }));
      for (const x of xs) {
        const li = h('li', { 'data-testid': 'exception', 'data-kind': x.kind, 'data-expired': String(!!x.expired) }, exceptionText(x));
        if (canWrite()) {
          const del = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'exception-remove', text: 'Remove' });
          del.addEventListener('click', async () => {
            try { await api('DELETE', `/api/v1/exceptions/${encodeURIComponent(x.id)}`); load(); } catch (err) { showError(err, 'Removing the exception'); }
          });
          li.append(' ', del);
        }
        list.append(li);
      }
    } catch (err) {
      if (err.name !== 'AbortError') list.append(h('li', null, inlineError(err, 'Loading exceptions')));
    }
  }
  load();
  if (!canWrite()) return;
  const reason = h('input', { type: 'text', id: 'exception-reason', 'data-testid': 'exception-reason', placeholder: 'Reason (required)', 'aria-label': 'Reason' });
  const days = h('input', { type: 'number', min: '1', id: 'exception-days', 'data-testid': 'exception-days', placeholder: 'Expires in days (empty: never)', 'aria-label': 'Expires in days' });
  const field = h('input', { type: 'text', 'data-testid': 'exception-field', placeholder: 'field, e.g. user.name', 'aria-label': 'Field' });
  const op = h('select', { 'data-testid': 'exception-op', 'aria-label': 'Comparison' }, ['equals', 'contains', 'startswith', 'endswith'].map((o) => h('option', { value: o, text: o })));
  const value = h('input', { type: 'text', 'data-testid': 'exception-value', placeholder: 'value', 'aria-label': 'Value' });
  const expires = () => (days.value ? new Date(Date.now() + Number(days.value) * 86400000).toISOString() : undefined);
  async function add(body) {
    try {
      await api('POST', '/api/v1/exceptions', { rule: ruleId, reason: reason.value.trim(), expires: expires(), ...body });
      reason.value = '';
      load();
    } catch (err) { showError(err, 'Adding the exception'); }
  }
  const exclude = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'exception-add-exclude', text: 'Exclude matching events' });
  exclude.addEventListener('click', () => add({ kind: 'exclude', conditions: [{ field: field.value.trim(), op: op.value, value: value.value }] }));
  const groupEntries = Object.entries(group).map(([k, v]) => [k, valueText(v)]);
  const suppress = groupEntries.length ? h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'exception-add-suppress', text: `Suppress alerts for ${groupEntries.map(([k, v]) => `${k}=${v}`).join(' ')}` }) : null;
  if (suppress) suppress.addEventListener('click', () => add({ kind: 'suppress', group: Object.fromEntries(groupEntries) }));
  box.append(h('div', { class: 'exception-form' }, reason, days, h('div', { class: 'button-row' }, field, op, value, exclude), suppress));
}

// A button that explains, in place, why a stored event matched (or not) a rule.
function traceButton(ruleId, seq, label) {
  const out = h('div', { class: 'trace-out' });
  const b = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'trace-button', text: label });
  b.addEventListener('click', () => runTrace(out, ruleId, seq));
  return h('div', { class: 'trace-wrap' }, b, out);
}

async function runTrace(out, rule, seq) {
  clear(out).append(spinner());
  try {
    const res = await api('POST', '/api/v1/rules/trace', { rule, seq });
    clear(out).append(traceView(res));
  } catch (err) {
    clear(out).append(inlineError(err, 'Explaining the match'));
  }
}

// The explanation of POST /api/v1/rules/trace: per detection rule, the summary sentence, the
// logsource, and each search identifier with each field entry marked as holding or not.
function traceView(res) {
  const box = h('div', { class: 'trace', 'data-testid': 'trace-result' });
  if (res.correlation) box.append(h('p', { class: 'muted small', text: `${res.correlation} is a correlation: its rules are explained one by one.` }));
  for (const t of res.traces || []) {
    const mark = (ok) => h('span', { class: ok ? 'trace-yes' : 'trace-no', 'aria-label': ok ? 'holds' : 'does not hold', text: ok ? '✓' : '✗' });
    const sec = h('div', { class: 'trace-rule', 'data-testid': 'trace-rule-result', 'data-matched': String(!!t.matched) },
      h('h3', { class: 'panel-subtitle' }, mark(t.matched), ' ', h('span', { text: t.title || t.id || '' })),
      h('p', { class: 'trace-summary', 'data-testid': 'trace-summary', text: t.summary || '' }),
      h('p', { class: 'small' }, mark(t.logsource && t.logsource.applies), ` logsource ${t.logsource ? t.logsource.logsource : ''} · condition `, h('code', { text: (t.condition || []).join(' | ') })));
    const rows = [];
    for (const srch of t.searches || []) {
      (srch.alternatives || []).forEach((alt, ai) => {
        for (const f of alt) {
          rows.push({ search: srch.name + ((srch.alternatives || []).length > 1 ? ` (${ai + 1})` : ''), held: srch.matched, ...f });
        }
      });
    }
    if (rows.length) {
      sec.append(dataTable([
        { label: 'Search', render: (r) => h('span', null, mark(r.held), ' ', h('span', { class: 'mono', text: r.search })) },
        { label: 'Field', cls: 'mono', render: (r) => `${r.field || 'keywords'}${r.event_field ? ` → ${r.event_field}` : ''}` },
        { label: 'Modifiers', cls: 'mono', render: (r) => (r.modifiers || []).join('|') || '—' },
        { label: 'Rule values', cls: 'mono', render: (r) => (r.values || []).join(', ') },
        { label: 'Event value', cls: 'mono', render: (r) => ((r.event_values || []).length ? r.event_values.join(', ') : h('span', { class: 'muted', text: '(absent)' })) },
        { label: 'Holds', render: (r) => (r.matched === null || r.matched === undefined ? h('span', { class: 'muted', text: r.note || '?' }) : mark(r.matched)) },
      ], rows, { testid: 'trace-table', rowAttrs: (r) => ({ 'data-testid': 'trace-entry', 'data-field': r.field || '', 'data-holds': String(r.matched) }) }));
    }
    if ((t.filters_held || []).length) sec.append(h('p', { class: 'small', text: `Dropped by filter: ${t.filters_held.join(', ')}` }));
    box.append(sec);
  }
  return box;
}

function renderRules(view) {
  const controller = new AbortController();
  const filter = h('input', { type: 'search', id: 'rules-filter', class: 'filter-input', placeholder: 'Filter rules…', 'aria-label': 'Filter rules' });
  const box = h('div', { class: 'panel flush', id: 'rules' }, h('div', { class: 'pad' }, spinner()));
  const summary = h('span', { class: 'muted small', id: 'rules-summary' });
  const ruleInput = h('input', { type: 'text', id: 'trace-rule', 'data-testid': 'trace-rule', class: 'filter-input', placeholder: 'Rule id or title', 'aria-label': 'Rule id or title', list: 'trace-rule-list' });
  const ruleList = h('datalist', { id: 'trace-rule-list' });
  const seqInput = h('input', { type: 'number', min: '0', id: 'trace-seq', 'data-testid': 'trace-seq', class: 'filter-input', placeholder: 'Event seq', 'aria-label': 'Event sequence number' });
  const traceOut = h('div', { id: 'trace-out' });
  const traceGo = h('button', { type: 'submit', class: 'btn btn-secondary', 'data-testid': 'trace-go', text: 'Explain' });
  const traceForm = h('form', { class: 'button-row', id: 'trace-form' }, ruleInput, ruleList, seqInput, traceGo);
  traceForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    runTrace(traceOut, ruleInput.value.trim(), Number(seqInput.value));
  });
  const tracePanel = h('section', { class: 'panel', id: 'trace-panel', 'aria-label': 'Explain a match' },
    h('h2', { class: 'panel-title', text: 'Why did (or didn’t) an event match a rule?' }),
    h('p', { class: 'muted small', text: 'Give a rule and the sequence number of a stored event (shown on alerts and search results): each selection, field and modifier is checked against the event.' }),
    traceForm, traceOut);
  view.append(pageHeader('Rules', summary, filter), tracePanel, box);
  let all = [];

  function draw() {
    const f = filter.value.trim().toLowerCase();
    const rows = all.filter((r) => !f || [r.id, r.title, r.source, r.level, ...(r.tags || []), r.status].some((x) => String(x || '').toLowerCase().includes(f)));
    clear(box).append(dataTable([
      { label: 'Status', render: (r) => statusBadge(r.status) },
      { label: 'Level', render: (r) => (r.level ? levelBadge(r.level) : '—') },
      { label: 'Title', render: (r) => h('span', { class: 'rule-title', text: r.title || '(untitled)' }) },
      { label: 'ID', cls: 'mono nowrap', key: 'id' },
      { label: 'Tags', render: (r) => h('span', { class: 'tags' }, (r.tags || []).map((t) => h('span', { class: 'tag', text: t }))) },
      { label: 'Last fired', cls: 'nowrap', render: (r) => (r.status === 'error' ? '—' : r.last_fired ? h('span', null, timeEl(r.last_fired), h('span', { class: 'muted small', text: ` ${fmtAgo(r.last_fired)}` })) : h('span', { class: 'muted', text: 'never' })) },
      { label: 'Exceptions', render: (r) => ((r.exceptions || []).length ? h('ul', { class: 'exception-list', 'data-testid': 'rule-exceptions' }, r.exceptions.map((x) => h('li', { 'data-testid': 'rule-exception', 'data-kind': x.kind }, exceptionText(x)))) : h('span', { class: 'muted', text: '—' })) },
      { label: 'File', cls: 'mono small', key: 'source' },
      { label: 'Errors / notes', render: (r) => h('div', null,
        r.reason ? h('div', { class: 'rule-error' }, h('span', { 'aria-hidden': 'true', text: '✗ ' }), `${r.kind ? r.kind + ': ' : ''}${r.reason}`) : null,
        (r.notes || []).map((n) => h('div', { class: 'rule-note' }, h('span', { 'aria-hidden': 'true', text: 'ℹ ' }), valueText(n)))) },
    ], rows, { id: 'rules-table', testid: 'rules-table', empty: f ? 'No rule matches the filter.' : 'No rules are loaded.',
      rowAttrs: (r) => ({ class: r.status === 'error' ? 'row-error' : '', 'data-testid': 'rule-row', 'data-rule-id': r.id || '' }) }));
  }
  filter.addEventListener('input', draw);

  api('GET', '/api/v1/rules', undefined, { signal: controller.signal }).then((res) => {
    const issues = (res.issues || []).map((i) => ({ ...i, status: 'error', tags: [], notes: [] }));
    all = [...issues, ...(res.rules || []).map((r) => ({ ...r, status: r.status || 'loaded' }))];
    summary.textContent = `${(res.rules || []).length} loaded · ${issues.length} with errors${res.loaded_at ? ` · loaded ${fmtTime(res.loaded_at)}` : ''}`;
    if (res.message) summary.textContent += ` · ${res.message}`;
    for (const r of res.rules || []) if (r.id) ruleList.append(h('option', { value: r.id, text: r.title || r.id }));
    const want = new URLSearchParams(location.hash.split('?')[1] || '');
    if (want.get('rule')) ruleInput.value = want.get('rule');
    if (want.get('seq')) seqInput.value = want.get('seq');
    if (want.get('rule') && want.get('seq')) runTrace(traceOut, ruleInput.value, Number(seqInput.value));
    draw();
  }).catch((err) => {
    if (err.name === 'AbortError') return;
    clear(box).append(inlineError(err, 'Loading rules'));
    showError(err, 'Loading rules');
  });
  return { cleanup() { controller.abort(); } };
}

// ------------------------------------------------------------------ sources

function renderSources(view) {
  const controller = new AbortController();
  const box = h('div', { class: 'panel flush', id: 'sources' }, h('div', { class: 'pad' }, spinner()));
  const refresh = h('button', { type: 'button', class: 'btn btn-secondary', id: 'sources-refresh' }, h('span', { 'aria-hidden': 'true', text: '↻ ' }), 'Refresh');
  const intel = intelPanel(controller);
  view.append(pageHeader('Sources', refresh), box, intel.box);
  async function load() {
    intel.load();
    try {
      const res = await api('GET', '/api/v1/sources', undefined, { signal: controller.signal });
      const rows = (res.sources || []).slice().sort((a, b) => String(a.source).localeCompare(String(b.source)));
      const STALE = 15 * 60e3;
      clear(box).append(dataTable([
        { label: 'Source', cls: 'mono', render: (r) => h('a', { href: `#/search?${new URLSearchParams({ q: `vigil.source=${quoteValue(valueText(r.source))}`, from: '-1h' })}`, text: valueText(r.source) }) },
        { label: 'State', render: (r) => {
          const d = toDate(r.last_seen);
          const stale = !d || Date.now() - d.getTime() > STALE;
          return h('span', { class: `badge ${stale ? 'status-stale' : 'status-live'}` }, h('span', { 'aria-hidden': 'true', text: stale ? '◌ ' : '● ' }), stale ? 'quiet' : 'receiving');
        } },
        { label: 'Last seen', cls: 'nowrap', render: (r) => h('span', null, timeEl(r.last_seen), h('span', { class: 'muted small', text: r.last_seen ? ` ${fmtAgo(r.last_seen)}` : '' })) },
        { label: 'Events/min', cls: 'num mono', render: (r) => (typeof r.per_minute === 'number' ? (Math.round(r.per_minute * 100) / 100).toLocaleString('en-US') : '—') },
        { label: 'Events total', cls: 'num mono', render: (r) => fmtNum(r.events) },
      ], rows, { id: 'sources-table', testid: 'sources-table', empty: 'No source has sent events yet.', rowAttrs: () => ({ 'data-testid': 'source-row' }) }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(box).append(inlineError(err, 'Loading sources'));
      showError(err, 'Loading sources');
    }
  }
  refresh.addEventListener('click', load);
  load();
  return { cleanup() { controller.abort(); } };
}

// Threat intelligence feeds, enrichment tables and GeoIP databases (GET /api/v1/intel): what
// is in force, from which file, how many entries, loaded when, and why a file was refused.
function intelPanel(controller) {
  const box = h('section', { class: 'panel flush', id: 'intel', 'data-testid': 'intel-panel' },
    h('h2', { class: 'pad', text: 'Threat intelligence and enrichment' }));
  const body = h('div', { class: 'pad' });
  box.append(body);
  async function load() {
    try {
      const res = await api('GET', '/api/v1/intel', undefined, { signal: controller.signal });
      clear(body);
      if (!res.enabled) {
        body.append(h('p', { class: 'muted', text: 'No feed, table or GeoIP database is configured ([intel] and [enrich] in vigil.toml; see docs/intel.md).' }));
        return;
      }
      const c = res.counters || {};
      body.append(h('p', { 'data-testid': 'intel-summary', text: `${fmtNum(res.indicators)} indicators in force; ${fmtNum(c.intel_matches)} events matched, ${fmtNum(c.table_joins)} joined with a table, ${fmtNum(c.geo_hits)} located since start.` }));
      body.append(dataTable([
        { label: 'File', cls: 'mono', render: (r) => valueText(r.path) },
        { label: 'Kind', render: (r) => `${valueText(r.role)} (${valueText(r.format) || '?'})` },
        { label: 'Entries', cls: 'num mono', render: (r) => fmtNum(r.count) },
        { label: 'Skipped', cls: 'num mono', render: (r) => fmtNum(r.skipped) },
        { label: 'Loaded', cls: 'nowrap', render: (r) => (r.loaded_at ? h('span', null, timeEl(r.loaded_at), h('span', { class: 'muted small', text: ` ${fmtAgo(r.loaded_at)}` })) : '—') },
        { label: 'File changed', cls: 'nowrap', render: (r) => (r.modified ? fmtAgo(r.modified) : '—') },
        { label: 'State', render: (r) => (r.error
          ? h('span', { class: 'badge status-stale', title: valueText(r.error), text: `refused: ${valueText(r.error)}` })
          : h('span', { class: 'badge status-live', text: 'in force' })) },
      ], res.sources || [], { id: 'intel-table', testid: 'intel-table', empty: 'Nothing loaded.', rowAttrs: () => ({ 'data-testid': 'intel-row' }) }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(body).append(inlineError(err, 'Loading threat intelligence'));
    }
  }
  return { box, load };
}

// ------------------------------------------------------------------ shared form helpers (account, admin)

const MIN_PASSWORD_CHARS = 12; // the server's policy (users::MIN_PASSWORD_CHARS)
const USER_NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;
const USER_ROLES = ['viewer', 'analyst', 'admin', 'ingest'];
const TOKEN_ROLES = ['ingest', 'bouncer', 'viewer', 'analyst', 'admin'];
const ROLE_HELP = {
  admin: 'admin: everything, including accounts and tokens',
  analyst: 'analyst: search and triage alerts',
  viewer: 'viewer: read only',
  ingest: 'ingest: send events only',
  bouncer: 'bouncer: read block decisions only',
};

/** Characters as the server counts them (Unicode scalar values, not UTF-16 units). */
const charCount = (str) => [...str].length;

/** A labelled form field: <label class="form-field"><span>Label</span>control<span hint></label>. */
function formField(label, control, hint) {
  return h('label', { class: 'form-field' }, h('span', { class: 'filter-label', text: label }), control,
    hint ? h('span', { class: 'muted small field-hint', id: control.id ? `${control.id}-hint` : null, text: hint }) : null);
}

/** An inline box for a form's message; show(kind, text) with kind 'error' | 'ok', or hide(). */
function formMessage(id) {
  const box = h('div', { id, 'data-testid': id, class: 'form-msg', hidden: true });
  return {
    box,
    show(kind, text) {
      box.className = `form-msg form-msg-${kind}`;
      box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
      clear(box).append(h('span', { 'aria-hidden': 'true', text: kind === 'error' ? '⚠ ' : '✓ ' }), h('span', { class: 'form-msg-text', text }));
      box.hidden = false;
    },
    hide() { box.hidden = true; clear(box); },
  };
}

/** The text of an API error for a form: the server's message, plus the status for odd cases. */
function apiErrorText(err) {
  const msg = err instanceof Error ? err.message : String(err);
  if (err && err.status === 429) return `${msg}${/again|retry/i.test(msg) ? '' : ' (too many attempts; wait a minute and try again)'}`;
  return msg;
}

/** Copy text to the clipboard: the async API where there is one (HTTPS, localhost), else select + execCommand. */
async function copyText(text, input) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch (_) { /* fall through */ }
  }
  if (input) {
    input.focus();
    input.select();
    try { return document.execCommand('copy'); } catch (_) { return false; }
  }
  return false;
}

/**
 * A secret shown exactly once (a generated password, a new API token): a warning, the value in a
 * read-only field, a Copy button and a "Done" button that removes it from the page.
 */
function secretBox({ id, title, lead, value, note, onDone }) {
  const input = h('input', { type: 'text', id: `${id}-value`, 'data-testid': `${id}-value`, class: 'secret-value mono', readonly: true, value, spellcheck: 'false', autocomplete: 'off', 'aria-label': title });
  input.addEventListener('focus', () => input.select());
  const copied = h('span', { class: 'copy-state small', role: 'status', 'aria-live': 'polite' });
  const copy = h('button', { type: 'button', class: 'btn btn-primary btn-small', id: `${id}-copy`, 'data-testid': `${id}-copy`, text: 'Copy' });
  const done = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: `${id}-done`, 'data-testid': `${id}-done`, text: 'Done, I have stored it' });
  const box = h('section', { class: 'secret-box', id, 'data-testid': id, role: 'region', 'aria-labelledby': `${id}-title`, tabindex: '-1' },
    h('h3', { class: 'secret-title', id: `${id}-title` }, h('span', { 'aria-hidden': 'true', text: '⚠ ' }), title),
    h('p', { class: 'secret-lead', text: lead }),
    h('p', { class: 'secret-warning', id: `${id}-warning`, 'data-testid': `${id}-warning` },
      h('strong', { text: 'Shown only now.' }), ' Vigil keeps only a hash of it: once you leave this page or press Done, it cannot be shown again.'),
    h('div', { class: 'secret-row' }, input, copy, done, copied),
    note ? h('p', { class: 'muted small', text: note }) : null);
  copy.addEventListener('click', async () => {
    const ok = await copyText(value, input);
    copied.textContent = ok ? 'Copied ✓' : 'Could not copy: select the text and copy it by hand.';
    copied.classList.toggle('copy-failed', !ok);
  });
  done.addEventListener('click', () => {
    input.value = '';
    box.remove();
    if (onDone) onDone();
  });
  return box;
}

/**
 * An inline "Delete X? Yes / No" in place of an action button (no window.confirm).
 * button: the action button (replaced while asking); onYes(): async, resolves true when done
 * (false: the question goes away and the button comes back; the caller reports the error).
 */
function inlineConfirm({ button, question, detail, yesLabel, testid, onYes }) {
  const no = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': `${testid}-no`, text: 'No' });
  const yes = h('button', { type: 'button', class: 'btn btn-danger btn-small', 'data-testid': `${testid}-yes`, text: yesLabel });
  const wrap = h('span', { class: 'confirm', role: 'group', 'aria-label': detail ? `${question} ${detail}` : question, 'data-testid': `${testid}-confirm` },
    h('span', { class: 'confirm-q', text: question }), ' ', yes, ' ', no,
    detail ? h('span', { class: 'confirm-detail muted small', text: detail }) : null);
  function cancel() {
    wrap.replaceWith(button);
    button.focus();
  }
  no.addEventListener('click', cancel);
  wrap.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.stopPropagation(); cancel(); } });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    yes.textContent = 'Working…';
    const ok = await onYes();
    if (!ok && wrap.isConnected) cancel();
  });
  button.replaceWith(wrap);
  no.focus();
}

function roleSelect(id, roles, selected) {
  return h('select', { id, 'data-testid': id }, roles.map((r) => h('option', { value: r, text: r, selected: r === selected, title: ROLE_HELP[r] })));
}

// ------------------------------------------------------------------ account (every logged-in user)

function renderAccount(view) {
  const controller = new AbortController();
  const current = h('input', { type: 'password', id: 'pw-current', 'data-testid': 'pw-current', autocomplete: 'current-password', required: true });
  const fresh = h('input', { type: 'password', id: 'pw-new', 'data-testid': 'pw-new', autocomplete: 'new-password', required: true, minlength: String(MIN_PASSWORD_CHARS), 'aria-describedby': 'pw-new-hint' });
  const repeat = h('input', { type: 'password', id: 'pw-repeat', 'data-testid': 'pw-repeat', autocomplete: 'new-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'pw-submit', 'data-testid': 'pw-submit', text: 'Change password' });
  const msg = formMessage('pw-message');
  const form = h('form', { id: 'password-form', 'data-testid': 'password-form', class: 'stack-form', novalidate: true, 'aria-labelledby': 'pw-title' },
    // for password managers: which account this password belongs to
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: session.user, readonly: true, hidden: true, tabindex: '-1', 'aria-hidden': 'true' }),
    formField('Current password', current),
    formField('New password', fresh, `At least ${MIN_PASSWORD_CHARS} characters. A long passphrase is best.`),
    formField('Repeat the new password', repeat),
    msg.box,
    h('div', { class: 'button-row' }, submit));

  const expires = h('dd', { id: 'account-expires' }, timeEl(session.expires));
  const facts = h('dl', { class: 'facts' },
    h('div', { class: 'fact' }, h('dt', { text: 'User name' }), h('dd', { id: 'account-user', 'data-testid': 'account-user', text: session.user })),
    h('div', { class: 'fact' }, h('dt', { text: 'Role' }), h('dd', { id: 'account-role', text: session.role }), h('dd', { class: 'muted small', text: ROLE_HELP[session.role] ? ROLE_HELP[session.role].replace(/^\w+: /, '') : '' })),
    h('div', { class: 'fact' }, h('dt', { text: 'This session ends' }), expires));

  view.append(pageHeader('Account'));
  if (session.mustChangePassword) {
    view.append(h('div', { class: 'panel notice', id: 'must-change-password', 'data-testid': 'must-change-password', role: 'status' },
      h('p', null, h('strong', { text: 'Choose your own password first.' }), ' You signed in with the password Vigil generated at its first start; the rest of Vigil opens once you change it (the generated password file is then removed).')));
  }
  view.append(
    h('div', { class: 'account-grid' },
      h('section', { class: 'panel', 'aria-labelledby': 'account-title' }, h('h2', { class: 'panel-title', id: 'account-title', text: 'Signed in as' }), facts),
      h('section', { class: 'panel', id: 'password-panel', 'aria-labelledby': 'pw-title' },
        h('h2', { class: 'panel-title', id: 'pw-title', text: 'Change your password' }),
        h('p', { class: 'muted small', text: 'Your other sessions (other browsers, other tabs signed in earlier) end when the password changes; this one continues.' }),
        form)));

  function invalid(...bad) {
    for (const el of [current, fresh, repeat]) {
      if (bad.includes(el)) el.setAttribute('aria-invalid', 'true');
      else el.removeAttribute('aria-invalid');
    }
    if (bad[0]) bad[0].focus();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.hide();
    if (!current.value) { msg.show('error', 'Enter your current password.'); invalid(current); return; }
    if (charCount(fresh.value) < MIN_PASSWORD_CHARS) {
      msg.show('error', `The new password is too short: use at least ${MIN_PASSWORD_CHARS} characters.`);
      invalid(fresh);
      return;
    }
    if (fresh.value !== repeat.value) { msg.show('error', 'The two new passwords differ.'); invalid(repeat); return; }
    invalid();
    submit.disabled = true;
    submit.textContent = 'Changing…';
    try {
      const res = await api('POST', '/api/v1/password', { current: current.value, new: fresh.value }, { signal: controller.signal });
      // The old session ended with the change: the response carries the new one's CSRF token
      // (its cookie came with the response's Set-Cookie).
      if (res && typeof res.csrf === 'string') session.csrf = res.csrf;
      if (res && res.expires) { session.expires = res.expires; clear(expires).append(timeEl(res.expires)); }
      form.reset();
      if (session.mustChangePassword) {
        session.mustChangePassword = false;
        const notice = $('must-change-password');
        if (notice) notice.remove();
        refreshOpenCount();
      }
      msg.show('ok', `Password changed at ${fmtTime(new Date())}. Your other sessions were signed out; you stay signed in here.`);
    } catch (err) {
      if (err.name === 'AbortError' || err.status === 401) return;
      msg.show('error', apiErrorText(err));
      if (err.status === 403) invalid(current);
      else if (err.status === 400) invalid(fresh);
      if (err.status === 0) showError(err, 'Changing the password');
    } finally {
      submit.disabled = false;
      submit.textContent = 'Change password';
    }
  });
  return { cleanup() { controller.abort(); } };
}

// ------------------------------------------------------------------ admin: accounts and API tokens

const isAdmin = () => session.role === 'admin';

function renderAdmin(view) {
  view.append(pageHeader('Admin'));
  if (!isAdmin()) {
    view.append(h('div', { class: 'panel notice', id: 'admin-denied', 'data-testid': 'admin-denied', role: 'status' },
      h('p', null, h('strong', { text: 'This page is for admins only.' }), ` You are signed in as ${session.user} with the role ${session.role || 'unknown'}; ask an admin to manage accounts and API tokens.`),
      h('p', null, h('a', { href: '#/account', text: 'Change your own password' }))));
    return { cleanup() {} };
  }
  const controller = new AbortController();
  const users = adminUsers(controller);
  const tokens = adminTokens(controller);
  view.append(h('div', { class: 'admin-grid' }, users.section, tokens.section));
  users.load();
  tokens.load();
  return { cleanup() { controller.abort(); } };
}

function adminUsers(controller) {
  const signal = controller.signal;
  const tableBox = h('div', { class: 'table-box', id: 'users' }, h('div', { class: 'pad' }, spinner()));
  const status = formMessage('users-status');
  const count = h('span', { class: 'muted small', id: 'users-count' });
  const secretSlot = h('div', { id: 'new-user-slot' });

  const name = h('input', { type: 'text', id: 'new-user-name', 'data-testid': 'new-user-name', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: '64', required: true, 'aria-describedby': 'new-user-name-hint' });
  const role = roleSelect('new-user-role', USER_ROLES, 'viewer');
  const password = h('input', { type: 'password', id: 'new-user-password', 'data-testid': 'new-user-password', autocomplete: 'new-password', placeholder: 'empty: generate one', 'aria-describedby': 'new-user-password-hint' });
  const add = h('button', { type: 'submit', class: 'btn btn-primary', id: 'add-user-button', 'data-testid': 'add-user-button' }, h('span', { 'aria-hidden': 'true', text: '+ ' }), 'Add account');
  const formMsg = formMessage('add-user-message');
  const form = h('form', { id: 'add-user-form', 'data-testid': 'add-user-form', class: 'inline-form', novalidate: true, 'aria-label': 'Add an account' },
    formField('User name', name, 'letters, digits, . _ - @'),
    formField('Role', role),
    formField('Password (optional)', password, `empty = generated; else ≥ ${MIN_PASSWORD_CHARS} characters`),
    h('div', { class: 'form-field form-submit' }, add));
  let highlight = '';

  const section = h('section', { class: 'panel flush', id: 'accounts-panel', 'data-testid': 'accounts-panel', 'aria-labelledby': 'accounts-title' },
    h('div', { class: 'panel-title-row pad' }, h('h2', { class: 'panel-title', id: 'accounts-title', text: 'Accounts' }), count),
    h('div', { class: 'pad form-area' }, h('h3', { class: 'sub-title', text: 'Add an account' }), form, formMsg.box, secretSlot),
    h('div', { class: 'pad status-area' }, status.box),
    tableBox);

  async function load() {
    try {
      const res = await api('GET', '/api/v1/users', undefined, { signal });
      draw((res.users || []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name))));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(tableBox).append(h('div', { class: 'pad' }, inlineError(err, 'Loading accounts')));
    }
  }

  function deleteButton(u) {
    const btn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'delete-user', 'aria-label': `Delete account ${u.name}` }, h('span', { 'aria-hidden': 'true', text: '✕ ' }), 'Delete');
    btn.addEventListener('click', () => inlineConfirm({
      button: btn,
      question: `Delete ${u.name}?`,
      detail: 'Their sessions end at once.',
      yesLabel: 'Yes, delete',
      testid: 'delete-user',
      async onYes() {
        status.hide();
        try {
          await api('DELETE', `/api/v1/users/${encodeURIComponent(u.name)}`, undefined, { signal });
          status.show('ok', `Account ${u.name} deleted; its sessions have ended.`);
          await load();
          return true;
        } catch (err) {
          if (err.name === 'AbortError') return true;
          status.show('error', `Deleting ${u.name}: ${apiErrorText(err)}`);
          return false;
        }
      },
    }));
    return btn;
  }

  function draw(list) {
    count.textContent = `${list.length} account${list.length === 1 ? '' : 's'}`;
    clear(tableBox).append(dataTable([
      { label: 'Name', render: (u) => h('span', { class: 'account-name' }, h('span', { class: 'mono', text: valueText(u.name) }), u.name === session.user ? h('span', { class: 'tag you-tag', text: 'you' }) : null) },
      { label: 'Role', render: (u) => h('span', { class: `role-badge role-${String(u.role).replace(/[^a-z]/g, '')}`, text: valueText(u.role) }) },
      { label: 'Created', cls: 'nowrap', render: (u) => timeEl(u.created) },
      { label: 'Changed', cls: 'nowrap', render: (u) => h('span', { title: 'password or role last changed' }, timeEl(u.changed)) },
      { label: 'Actions', cls: 'nowrap actions', render: (u) => (u.name === session.user
        ? h('span', { class: 'muted small', text: 'change yours under Account' })
        : deleteButton(u)) },
    ], list, { id: 'users-table', testid: 'users-table', caption: 'Accounts', empty: 'No accounts.',
      rowAttrs: (u) => ({ 'data-testid': 'user-row', 'data-user-name': u.name, 'data-role': u.role, class: u.name === highlight ? 'row-new' : null }) }));
  }

  function invalid(...bad) {
    for (const el of [name, password]) {
      if (bad.includes(el)) el.setAttribute('aria-invalid', 'true');
      else el.removeAttribute('aria-invalid');
    }
    if (bad[0]) bad[0].focus();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formMsg.hide();
    status.hide();
    const n = name.value.trim();
    if (!USER_NAME_RE.test(n)) {
      formMsg.show('error', 'The user name needs 1 to 64 letters, digits, ".", "_", "-" or "@" (no spaces).');
      invalid(name);
      return;
    }
    const pw = password.value;
    if (pw && charCount(pw) < MIN_PASSWORD_CHARS) {
      formMsg.show('error', `The password is too short: use at least ${MIN_PASSWORD_CHARS} characters, or leave it empty to generate one.`);
      invalid(password);
      return;
    }
    invalid();
    add.disabled = true;
    const body = { name: n, role: role.value };
    if (pw) body.password = pw;
    try {
      const res = await api('POST', '/api/v1/users', body, { signal });
      form.reset();
      role.value = 'viewer';
      clear(secretSlot);
      if (typeof res.password === 'string') {
        const box = secretBox({
          id: 'new-user-secret',
          title: `Generated password for ${res.name}`,
          lead: `Account ${res.name} (${res.role}) was created. Give ${res.name} this password over a safe channel; they can change it under Account after signing in.`,
          value: res.password,
        });
        secretSlot.append(box);
        box.focus();
      } else {
        formMsg.show('ok', `Account ${res.name} (${res.role}) created with the password you chose.`);
      }
      highlight = res.name;
      await load();
    } catch (err) {
      if (err.name === 'AbortError') return;
      formMsg.show('error', apiErrorText(err));
      if (err.status === 409 || (err.status === 400 && /name/i.test(err.message))) invalid(name);
      else if (err.status === 400 && /password/i.test(err.message)) invalid(password);
    } finally {
      add.disabled = false;
    }
  });

  return { section, load };
}

function adminTokens(controller) {
  const signal = controller.signal;
  const tableBox = h('div', { class: 'table-box', id: 'tokens' }, h('div', { class: 'pad' }, spinner()));
  const status = formMessage('tokens-status');
  const count = h('span', { class: 'muted small', id: 'tokens-count' });
  const secretSlot = h('div', { id: 'new-token-slot' });
  const name = h('input', { type: 'text', id: 'new-token-name', 'data-testid': 'new-token-name', autocomplete: 'off', spellcheck: 'false', maxlength: '128', required: true, placeholder: 'e.g. web-1 forwarder' });
  const role = roleSelect('new-token-role', TOKEN_ROLES, 'ingest');
  const add = h('button', { type: 'submit', class: 'btn btn-primary', id: 'add-token-button', 'data-testid': 'add-token-button' }, h('span', { 'aria-hidden': 'true', text: '+ ' }), 'Create token');
  const formMsg = formMessage('add-token-message');
  const form = h('form', { id: 'add-token-form', 'data-testid': 'add-token-form', class: 'inline-form', novalidate: true, 'aria-label': 'Create an API token' },
    formField('Name (what it is for)', name),
    formField('Role', role),
    h('div', { class: 'form-field form-submit' }, add));
  let highlight = '';

  const section = h('section', { class: 'panel flush', id: 'tokens-panel', 'data-testid': 'tokens-panel', 'aria-labelledby': 'tokens-title' },
    h('div', { class: 'panel-title-row pad' }, h('h2', { class: 'panel-title', id: 'tokens-title', text: 'API tokens' }), count),
    h('div', { class: 'pad form-area' }, h('h3', { class: 'sub-title', text: 'Create a token' }), form, formMsg.box, secretSlot),
    h('div', { class: 'pad status-area' }, status.box),
    tableBox);

  async function load() {
    try {
      const res = await api('GET', '/api/v1/tokens', undefined, { signal });
      const list = (res.tokens || []).slice();
      // active first, newest first within each group
      list.sort((a, b) => (Boolean(a.revoked) - Boolean(b.revoked)) || String(b.created || '').localeCompare(String(a.created || '')));
      draw(list);
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(tableBox).append(h('div', { class: 'pad' }, inlineError(err, 'Loading API tokens')));
    }
  }

  function revokeButton(t) {
    const label = `${t.name} (${t.id})`;
    const btn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'revoke-token', 'aria-label': `Revoke token ${label}` }, h('span', { 'aria-hidden': 'true', text: '⊘ ' }), 'Revoke');
    btn.addEventListener('click', () => inlineConfirm({
      button: btn,
      question: `Revoke ${t.id}?`,
      detail: 'Senders using it are refused at once.',
      yesLabel: 'Yes, revoke',
      testid: 'revoke-token',
      async onYes() {
        status.hide();
        try {
          await api('DELETE', `/api/v1/tokens/${encodeURIComponent(t.id)}`, undefined, { signal });
          status.show('ok', `Token ${label} revoked.`);
          highlight = t.id;
          await load();
          return true;
        } catch (err) {
          if (err.name === 'AbortError') return true;
          status.show('error', `Revoking ${label}: ${apiErrorText(err)}`);
          return false;
        }
      },
    }));
    return btn;
  }

  function draw(list) {
    const active = list.filter((t) => !t.revoked).length;
    count.textContent = `${active} active · ${list.length - active} revoked`;
    clear(tableBox).append(dataTable([
      { label: 'Status', cls: 'nowrap', render: (t) => (t.revoked
        ? h('span', { class: 'badge status status-revoked', 'data-status': 'revoked' }, h('span', { class: 'badge-icon', 'aria-hidden': 'true', text: '⊘' }), ' revoked')
        : h('span', { class: 'badge status status-active', 'data-status': 'active' }, h('span', { class: 'badge-icon', 'aria-hidden': 'true', text: '●' }), ' active')) },
      { label: 'ID', cls: 'mono nowrap', key: 'id' },
      { label: 'Name', render: (t) => h('span', { class: 'token-name', text: valueText(t.name) }) },
      { label: 'Role', render: (t) => h('span', { class: `role-badge role-${String(t.role).replace(/[^a-z]/g, '')}`, text: valueText(t.role) }) },
      { label: 'Created', cls: 'nowrap', render: (t) => timeEl(t.created) },
      { label: 'Last used', cls: 'nowrap', render: (t) => (t.last_used
        ? h('span', { 'data-testid': 'token-last-used' }, timeEl(t.last_used), h('span', { class: 'muted small', text: ` ${fmtAgo(t.last_used)}` }))
        : h('span', { class: 'muted', 'data-testid': 'token-last-used', text: 'never' })) },
      { label: 'Revoked / action', cls: 'nowrap actions', render: (t) => (t.revoked
        ? h('span', { class: 'revoked-at', 'data-testid': 'token-revoked-at' }, 'revoked ', timeEl(t.revoked))
        : revokeButton(t)) },
    ], list, { id: 'tokens-table', testid: 'tokens-table', caption: 'API tokens', empty: 'No API tokens yet.',
      rowAttrs: (t) => ({ 'data-testid': 'token-row', 'data-token-id': t.id, 'data-status': t.revoked ? 'revoked' : 'active',
        class: [t.revoked ? 'row-revoked' : '', t.id === highlight ? 'row-new' : ''].join(' ').trim() || null }) }));
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formMsg.hide();
    status.hide();
    const n = name.value.trim();
    if (!n || new TextEncoder().encode(n).length > 128) {
      formMsg.show('error', 'Give the token a name (1 to 128 bytes) saying who or what uses it.');
      name.setAttribute('aria-invalid', 'true');
      name.focus();
      return;
    }
    name.removeAttribute('aria-invalid');
    add.disabled = true;
    try {
      const res = await api('POST', '/api/v1/tokens', { name: n, role: role.value }, { signal });
      form.reset();
      role.value = 'ingest';
      clear(secretSlot);
      const box = secretBox({
        id: 'new-token-secret',
        title: `New ${res.role} token ${res.id}`,
        lead: `Token “${res.name}” was created. Put it into the sender's configuration now.`,
        value: res.token,
        note: 'Senders present it as "Authorization: Bearer <token>".',
      });
      secretSlot.append(box);
      box.focus();
      highlight = res.id;
      await load();
    } catch (err) {
      if (err.name === 'AbortError') return;
      formMsg.show('error', apiErrorText(err));
    } finally {
      add.disabled = false;
    }
  });

  return { section, load };
}

// ------------------------------------------------------------------ compliance

const FRAMEWORKS = [
  ['pci-dss', 'PCI DSS v4.0.1 — Requirement 10'],
  ['hipaa', 'HIPAA — §164.312(b) audit controls'],
  ['iso27001', 'ISO/IEC 27001:2022 — A.8.15, A.8.16'],
  ['soc2', 'SOC 2 — CC7.2, CC7.3'],
];

/** The Compliance page: a report per framework computed from the ledger, viewed here and
 * downloaded as signed HTML or JSON. */
function renderCompliance(view, params) {
  const controller = new AbortController();
  const framework = h('select', { id: 'report-framework', 'data-testid': 'report-framework', 'aria-label': 'Framework' },
    ...FRAMEWORKS.map(([id, label]) => h('option', { value: id, text: label })));
  framework.value = params.get('framework') || 'pci-dss';
  const from = h('input', { id: 'report-from', 'data-testid': 'report-from', type: 'text', value: params.get('from') || '-90d', 'aria-label': 'From', size: 24 });
  const to = h('input', { id: 'report-to', 'data-testid': 'report-to', type: 'text', value: params.get('to') || '', placeholder: 'now', 'aria-label': 'To', size: 24 });
  const generate = h('button', { type: 'submit', class: 'btn btn-primary', id: 'report-generate', 'data-testid': 'report-generate', text: 'Generate report' });
  const form = h('form', { class: 'toolbar', id: 'report-form' },
    h('label', null, 'Framework ', framework), h('label', null, ' From ', from), h('label', null, ' To ', to), generate);
  const body = h('div', { id: 'report', 'data-testid': 'report' },
    h('p', { class: 'muted', text: 'A report reads and verifies the whole ledger; on a large ledger it takes a while.' }));
  view.append(pageHeader('Compliance'), form, body);

  const query = (format) => {
    const q = new URLSearchParams({ format });
    if (from.value.trim()) q.set('from', from.value.trim());
    if (to.value.trim()) q.set('to', to.value.trim());
    return `/api/v1/report/${encodeURIComponent(framework.value)}?${q}`;
  };

  function draw(r) {
    clear(body);
    const counts = { met: 0, gap: 0, failed: 0 };
    for (const c of r.controls || []) counts[c.status] = (counts[c.status] || 0) + 1;
    body.append(
      h('p', { 'data-testid': 'report-summary' },
        `${r.name} ${r.version}: ${fmtNum(r.events)} events from ${fmtNum(r.sources)} sources, ${r.period.from} to ${r.period.to}. `,
        h('strong', { class: 'ok', text: `${counts.met} met` }), ', ',
        h('strong', { class: 'warn', text: `${counts.gap} gaps` }), ', ',
        h('strong', { class: 'bad', text: `${counts.failed} failed` }), '.'),
      h('p', null,
        h('a', { class: 'btn', id: 'report-download-html', 'data-testid': 'report-download-html', href: query('html'), download: `vigil-${r.framework}-report.html`, text: 'Download HTML (signed)' }), ' ',
        h('a', { class: 'btn', id: 'report-download-json', 'data-testid': 'report-download-json', href: query('json'), download: `vigil-${r.framework}-report.json`, text: 'Download JSON' })));
    const table = h('table', { class: 'table', id: 'report-controls', 'data-testid': 'report-controls' },
      h('thead', null, h('tr', null, ...['Control', 'Requirement', 'Status', 'Events', 'Alerts', 'Missing'].map((t) => h('th', { text: t })))));
    const tbody = h('tbody');
    for (const c of r.controls || []) {
      tbody.append(h('tr', { 'data-control': c.id, 'data-status': c.status },
        h('td', { text: c.id }), h('td', { text: c.title }),
        h('td', { class: c.status === 'met' ? 'ok' : c.status === 'failed' ? 'bad' : 'warn', text: c.status }),
        h('td', { text: fmtNum(c.events || 0) }), h('td', { text: fmtNum(c.alerts || 0) }),
        h('td', { text: ((c.sources && c.sources.missing) || []).join(', ') || '—' })));
    }
    table.append(tbody);
    body.append(table);
    const integ = r.integrity || {};
    body.append(h('p', { 'data-testid': 'report-integrity', 'data-ok': String(integ.verified === true), class: integ.verified ? 'ok' : 'bad',
      text: integ.verified ? 'The ledger verifies: every event is under a signed checkpoint.' : `The ledger does NOT verify: ${(integ.problems || []).join('; ')}` }));
    const silent = (r.failures && r.failures.silent_sources) || [];
    if (silent.length) {
      body.append(h('p', { class: 'bad', 'data-testid': 'report-silent', text: `Silent sources: ${silent.map((s) => `${s.source} (last seen ${s.last_seen})`).join(', ')}` }));
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    hideError();
    generate.disabled = true;
    clear(body).append(spinner('Reading and verifying the ledger…'));
    history.replaceState(null, '', `#/compliance?${new URLSearchParams({ framework: framework.value, from: from.value, to: to.value })}`);
    try {
      draw(await api('GET', query('json'), undefined, { signal: controller.signal }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(body).append(inlineError(err, 'Generating the report'));
      showError(err, 'Generating the report');
    } finally {
      generate.disabled = false;
    }
  });
  return { name: 'compliance', cleanup: () => controller.abort() };
}

// ------------------------------------------------------------------ entities, cases, ATT&CK coverage (issue 19)

// The fields that name an address, an account or a machine (the server's entity_fields):
// every such value in the UI links to its entity page.
const ENTITY_FIELDS = {
  ip: ['source.ip', 'destination.ip', 'client.ip', 'server.ip', 'host.ip', 'IpAddress'],
  user: ['user.name', 'user.target.name', 'source.user.name', 'destination.user.name', 'TargetUserName', 'SubjectUserName'],
  host: ['host.name', 'host.hostname', 'observer.hostname', 'Computer'],
};

function entityKind(field) {
  for (const [kind, fields] of Object.entries(ENTITY_FIELDS)) if (fields.includes(field)) return kind;
  return null;
}

const entityHref = (kind, value) => `#/entity/${kind}/${encodeURIComponent(value)}`;

// The value as a link to its entity page when the field names an entity, else as text.
function entityValue(field, value) {
  const v = valueText(value);
  const kind = entityKind(field);
  if (!kind || !v || v === '-' || v.length > 256) return h('span', { text: v });
  return h('a', { href: entityHref(kind, v), class: 'entity-link', 'data-testid': 'entity-link', 'data-kind': kind, title: `Everything Vigil knows of ${kind} ${v}`, text: v });
}

// A small "entity page" link beside a value (search results keep their filter buttons).
function entityJump(field, value) {
  const v = valueText(value);
  const kind = entityKind(field);
  if (!kind || !v || v.length > 256) return null;
  return h('a', { href: entityHref(kind, v), class: 'entity-jump small', 'data-testid': 'entity-link', 'aria-label': `Entity page of ${v}`, title: `Entity page of ${v}`, text: ' ↗' });
}

const CASE_STATUSES = [['open', '● Open'], ['in_progress', '◐ In progress'], ['closed', '✓ Closed']];
const caseStatusText = (s) => (CASE_STATUSES.find(([v]) => v === s) || [s, s])[1];
const caseStatusBadge = (s) => h('span', { class: `status status-${s === 'in_progress' ? 'acknowledged' : s}`, 'data-testid': 'case-status', 'data-status': s, text: caseStatusText(s) });

function severitySelect(id, selected) {
  return h('select', { id, 'data-testid': id }, LEVELS.map((l) => h('option', { value: l, text: `${LEVEL_ICON[l]} ${l}`, selected: l === selected })));
}

// ---- cases list

function renderCases(view, params) {
  const controller = new AbortController();
  const statusSel = h('select', { id: 'case-status-filter', 'data-testid': 'case-status-filter' },
    [['', 'Any status'], ...CASE_STATUSES].map(([v, t]) => h('option', { value: v, text: t, selected: (params.get('status') || '') === v })));
  const listBox = h('div', { id: 'cases-list', class: 'panel flush' });
  view.append(pageHeader('Cases'), h('div', { class: 'filter-bar' }, h('label', null, h('span', { class: 'filter-label', text: 'Status' }), statusSel)));
  if (canWrite()) view.append(newCaseForm([], controller.signal));
  view.append(listBox);
  statusSel.addEventListener('change', () => { history.replaceState(null, '', `#/cases${statusSel.value ? `?status=${statusSel.value}` : ''}`); load(); });

  async function load() {
    clear(listBox).append(h('div', { class: 'pad' }, spinner('Loading cases…')));
    try {
      const p = new URLSearchParams({ limit: '500' });
      if (statusSel.value) p.set('status', statusSel.value);
      const res = await api('GET', `/api/v1/cases?${p}`, undefined, { signal: controller.signal });
      clear(listBox).append(dataTable([
        { label: 'ID', cls: 'num mono', render: (c) => h('a', { href: `#/cases/${c.id}`, 'data-testid': 'case-link', text: `#${c.id}` }) },
        { label: 'Title', render: (c) => h('a', { href: `#/cases/${c.id}`, class: 'case-title', text: c.title }) },
        { label: 'Status', render: (c) => caseStatusBadge(c.status) },
        { label: 'Severity', render: (c) => levelBadge(c.severity) },
        { label: 'Assignee', render: (c) => c.assignee || '—' },
        { label: 'Alerts', cls: 'num', render: (c) => fmtNum((c.alerts || []).length) },
        { label: 'Events', cls: 'num', render: (c) => fmtNum((c.events || []).length) },
        { label: 'Updated', cls: 'mono nowrap', render: (c) => timeEl(c.updated) },
      ], res.cases || [], { id: 'cases-table', testid: 'cases-table', caption: 'Cases', empty: 'No cases.', rowAttrs: (c) => ({ 'data-testid': 'case-row', 'data-case-id': c.id }) }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(listBox).append(inlineError(err, 'Loading cases'));
    }
  }
  load();
  return { cleanup() { controller.abort(); } };
}

// A form opening a case (holding `alerts` from the start); goes to the new case.
function newCaseForm(alerts, signal) {
  const title = h('input', { id: 'new-case-title', 'data-testid': 'new-case-title', type: 'text', maxlength: 200, required: true, placeholder: 'What happened, e.g. SSH brute force against web1' });
  const sev = severitySelect('new-case-severity', 'medium');
  const assignee = h('input', { id: 'new-case-assignee', 'data-testid': 'new-case-assignee', type: 'text', maxlength: 64, value: session.user });
  const msg = formMessage('new-case-message');
  const form = h('form', { class: 'panel form-grid', id: 'new-case-form', 'data-testid': 'new-case-form', 'aria-label': 'Open a case' },
    h('h2', { class: 'panel-title', text: alerts.length ? `Open a case with alert #${alerts.join(', #')}` : 'Open a case' }),
    formField('Title', title), formField('Severity', sev), formField('Assignee', assignee),
    h('div', { class: 'button-row' }, h('button', { type: 'submit', class: 'btn btn-primary', id: 'new-case-submit', 'data-testid': 'new-case-submit', text: 'Open case' })), msg.box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const c = await api('POST', '/api/v1/cases', { title: title.value.trim(), severity: sev.value, assignee: assignee.value.trim(), alerts }, { signal });
      location.hash = `#/cases/${c.id}`;
    } catch (err) {
      if (err.name !== 'AbortError') msg.show('error', apiErrorText(err));
    }
  });
  return form;
}

// ---- one case

function renderCaseDetail(view, id) {
  const controller = new AbortController();
  const box = h('div', { id: 'case-detail', 'data-testid': 'case-detail' }, spinner('Loading case…'));
  view.append(h('p', { class: 'breadcrumb' }, h('a', { href: '#/cases', text: '← Cases' })), box);
  const post = (path, body) => api('POST', `/api/v1/cases/${encodeURIComponent(id)}${path}`, body, { signal: controller.signal });

  async function load() {
    try {
      draw(await api('GET', `/api/v1/cases/${encodeURIComponent(id)}`, undefined, { signal: controller.signal }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(box).append(inlineError(err, `Loading case #${id}`));
    }
  }

  async function change(p, body) {
    hideError();
    try { await post(p, body); await load(); } catch (err) { if (err.name !== 'AbortError') showError(err, `Could not change case #${id}`); }
  }

  function draw(c) {
    clear(box);
    box.append(h('div', { class: 'page-header' },
      h('h1', null, h('span', { class: 'muted', text: `#${c.id} ` }), h('span', { id: 'case-title', 'data-testid': 'case-title', text: c.title })),
      h('div', { class: 'page-actions' }, levelBadge(c.severity), caseStatusBadge(c.status))));
    const facts = h('dl', { class: 'facts' });
    const fact = (k, v) => facts.append(h('div', { class: 'fact' }, h('dt', { text: k }), h('dd', null, v)));
    fact('Assignee', h('span', { 'data-testid': 'case-assignee', text: c.assignee || '—' }));
    fact('Opened', h('span', null, timeEl(c.created), ` by ${c.created_by || '?'}`));
    fact('Updated', timeEl(c.updated));
    fact('Alerts', fmtNum((c.alerts || []).length));
    fact('Events', fmtNum((c.events || []).length));

    const alerts = dataTable([
      { label: 'ID', cls: 'num mono', render: (a) => h('a', { href: `#/alerts/${a.id}`, 'data-testid': 'case-alert-link', text: `#${a.id}` }) },
      { label: 'Rule', render: (a) => (a.missing ? h('span', { class: 'muted', text: 'not in the alert book' }) : h('span', { 'data-testid': 'case-alert-rule', text: (a.rule && a.rule.title) || '' })) },
      { label: 'Level', render: (a) => (a.rule ? levelBadge(a.rule.level) : '—') },
      { label: 'Status', render: (a) => (a.status ? statusBadge(a.status) : '—') },
      { label: 'Group', render: (a) => h('span', null, Object.entries(a.group || {}).map(([k, v], i) => [i ? ' ' : '', `${k}=`, entityValue(k, v)])) },
      { label: 'Events', cls: 'num', render: (a) => fmtNum(a.count) },
    ], c.alert_details || [], { id: 'case-alerts', testid: 'case-alerts', empty: 'No alerts in this case yet: add them from an alert’s page.', rowAttrs: (a) => ({ 'data-testid': 'case-alert-row', 'data-alert-id': a.id }) });

    const events = dataTable([
      { label: 'Time', cls: 'mono nowrap', render: (e) => timeEl(e['@timestamp']) },
      { label: 'Seq', cls: 'num mono', render: (e) => (e['vigil.shard'] ? `${e['vigil.shard']}:${valueText(e['vigil.seq'])}` : valueText(e['vigil.seq'])) },
      { label: 'Event', render: (e) => eventSummary(e) },
    ], c.event_details || [], { id: 'case-events', testid: 'case-events', empty: 'No events added.', rowAttrs: (e) => ({ 'data-testid': 'case-event-row', 'data-seq': e['vigil.seq'] }) });

    // An event without a message reads as its summary (web requests, audit events).
    const bySeq = new Map((c.event_details || []).map((e) => [e['vigil.seq'], e]));
    const lineText = (t) => (t.kind === 'event' && t.ref && bySeq.has(t.ref.seq) ? `event ${t.ref.seq}: ${eventSummary(bySeq.get(t.ref.seq))}` : t.text);
    const timeline = h('ol', { class: 'history', id: 'case-timeline', 'data-testid': 'case-timeline' },
      (c.combined_timeline || []).map((t) => h('li', { class: `history-item timeline-${t.kind}`, 'data-testid': 'case-timeline-item', 'data-kind': t.kind },
        h('div', { class: 'history-head' }, h('span', { class: 'tag', text: t.kind }), ' ', timeEl(t.at)), h('p', { class: 'history-comment', text: lineText(t) }))));

    const comments = h('ol', { class: 'history', id: 'case-comments', 'data-testid': 'case-comments' },
      (c.comments || []).map((m) => h('li', { class: 'history-item', 'data-testid': 'case-comment' },
        h('div', { class: 'history-head' }, h('strong', { text: m.by }), ' · ', timeEl(m.at)), h('p', { class: 'history-comment', text: m.text }))));
    if (!(c.comments || []).length) comments.append(h('li', { class: 'muted', text: 'No comments.' }));

    const side = h('div', { class: 'detail-side' });
    if (canWrite()) {
      const status = h('select', { id: 'case-status-select', 'data-testid': 'case-status-select' }, CASE_STATUSES.map(([v, t]) => h('option', { value: v, text: t, selected: v === c.status })));
      const sev = severitySelect('case-severity-select', c.severity);
      const assignee = h('input', { id: 'case-assignee-input', 'data-testid': 'case-assignee-input', type: 'text', maxlength: 64, value: c.assignee || '' });
      const save = h('button', { type: 'button', class: 'btn btn-primary', id: 'case-save', 'data-testid': 'case-save', text: 'Save' });
      save.addEventListener('click', () => {
        const body = {};
        if (status.value !== c.status) body.status = status.value;
        if (sev.value !== c.severity) body.severity = sev.value;
        if (assignee.value.trim() !== (c.assignee || '')) body.assignee = assignee.value.trim();
        if (Object.keys(body).length) change('', body);
      });
      const text = h('textarea', { id: 'case-comment-text', 'data-testid': 'case-comment-text', rows: 3, maxlength: 4096, placeholder: 'What you found, what you did' });
      const add = h('button', { type: 'button', class: 'btn btn-secondary', id: 'case-comment-add', 'data-testid': 'case-comment-add', text: 'Add comment' });
      add.addEventListener('click', () => { if (text.value.trim()) change('/comments', { text: text.value.trim() }); });
      // A number, or on a cluster node `shard:seq` (a search row's vigil.shard and vigil.seq).
      const seq = h('input', { id: 'case-event-seq', 'data-testid': 'case-event-seq', type: 'text', inputmode: 'numeric', placeholder: 'event seq (p3:17 in a cluster)' });
      const addEv = h('button', { type: 'button', class: 'btn btn-secondary', id: 'case-event-add', 'data-testid': 'case-event-add', text: 'Add event' });
      addEv.addEventListener('click', () => {
        const v = seq.value.trim();
        const inShard = /^([a-z0-9]{1,16}):(\d+)$/.exec(v);
        if (inShard) change('/events', { shard: inShard[1], seq: Number(inShard[2]) });
        else if (v !== '') change('/events', { seq: Number(v) });
      });
      side.append(h('section', { class: 'panel', 'aria-label': 'Change the case' }, h('h2', { class: 'panel-title', text: 'Work the case' }),
        formField('Status', status), formField('Severity', sev), formField('Assignee', assignee), h('div', { class: 'button-row' }, save),
        formField('Comment', text), h('div', { class: 'button-row' }, add),
        formField('Add a stored event (sequence number)', seq), h('div', { class: 'button-row' }, addEv)));
    } else {
      side.append(h('p', { class: 'muted', text: 'Your role (viewer) can read cases but not change them.' }));
    }
    side.append(h('section', { class: 'panel' }, h('h2', { class: 'panel-title', text: 'Comments' }), comments));
    const main = h('div', { class: 'detail-main' },
      h('section', { class: 'panel' }, h('h2', { class: 'panel-title', text: 'Summary' }), facts),
      h('section', { class: 'panel flush', 'aria-label': 'Alerts of the case' }, h('h2', { class: 'panel-title pad', text: 'Alerts' }), alerts),
      h('section', { class: 'panel flush', 'aria-label': 'Events of the case' }, h('h2', { class: 'panel-title pad', text: 'Events' }), events),
      h('section', { class: 'panel', 'aria-label': 'Timeline' }, h('h2', { class: 'panel-title', text: 'Timeline' }), timeline));
    box.append(h('div', { class: 'detail-grid' }, main, side));
  }
  load();
  return { cleanup() { controller.abort(); } };
}

// On an alert's page: the cases holding it, and (analysts) adding it to an open case or a new one.
async function alertCasesPanel(box, alert, signal) {
  try {
    const [mine, open] = await Promise.all([
      api('GET', `/api/v1/cases?alert=${encodeURIComponent(alert.id)}`, undefined, { signal }),
      canWrite() ? api('GET', '/api/v1/cases?limit=200', undefined, { signal }) : Promise.resolve({ cases: [] }),
    ]);
    const list = mine.cases || [];
    box.append(list.length
      ? h('ul', { class: 'related-list', 'data-testid': 'alert-cases' }, list.map((c) => h('li', null, h('a', { href: `#/cases/${c.id}`, 'data-testid': 'alert-case-link', text: `#${c.id} ${c.title}` }), ' ', caseStatusBadge(c.status))))
      : h('p', { class: 'muted', text: 'In no case yet.' }));
    if (!canWrite()) return;
    const choices = (open.cases || []).filter((c) => c.status !== 'closed' && !(c.alerts || []).includes(alert.id));
    if (choices.length) {
      const sel = h('select', { id: 'add-to-case-select', 'data-testid': 'add-to-case-select' }, choices.map((c) => h('option', { value: c.id, text: `#${c.id} ${c.title}` })));
      const btn = h('button', { type: 'button', class: 'btn btn-secondary', id: 'add-to-case', 'data-testid': 'add-to-case', text: 'Add to case' });
      btn.addEventListener('click', async () => {
        try {
          await api('POST', `/api/v1/cases/${encodeURIComponent(sel.value)}/alerts`, { alert: alert.id }, { signal });
          location.hash = `#/cases/${sel.value}`;
        } catch (err) { if (err.name !== 'AbortError') showError(err, 'Could not add the alert to the case'); }
      });
      box.append(h('div', { class: 'button-row' }, sel, btn));
    }
    const title = `${(alert.rule && alert.rule.title) || 'Alert'} ${alert.group_key || ''}`.trim().slice(0, 200);
    const form = newCaseForm([alert.id], signal);
    form.querySelector('#new-case-title').value = title;
    const sev = form.querySelector('#new-case-severity');
    if (alert.rule && LEVELS.includes(alert.rule.level)) sev.value = alert.rule.level;
    box.append(form);
  } catch (err) {
    if (err.name !== 'AbortError') box.append(inlineError(err, 'Loading cases'));
  }
}

// ---- entity pages

function renderEntity(view, kind, value, params) {
  const controller = new AbortController();
  const from = params.get('from') || '-7d';
  const box = h('div', { id: 'entity-detail', 'data-testid': 'entity-detail' }, spinner(`Looking up ${value}…`));
  view.append(pageHeader(`${{ ip: 'Address', user: 'User', host: 'Host' }[kind] || kind} ${value}`), box);
  (async () => {
    try {
      const p = new URLSearchParams({ from, limit: params.get('limit') || '200' });
      const e = await api('GET', `/api/v1/entity/${encodeURIComponent(kind)}/${encodeURIComponent(value)}?${p}`, undefined, { signal: controller.signal });
      clear(box);
      const facts = h('dl', { class: 'facts' });
      const fact = (k, v) => facts.append(h('div', { class: 'fact' }, h('dt', { text: k }), h('dd', null, v)));
      fact('First seen', h('span', { 'data-testid': 'entity-first-seen' }, e.first_seen ? timeEl(e.first_seen) : '—'));
      fact('Last seen', h('span', { 'data-testid': 'entity-last-seen' }, e.last_seen ? timeEl(e.last_seen) : '—'));
      fact('Events (all time)', h('span', { 'data-testid': 'entity-total', text: fmtNum(e.total_events) }));
      fact('Sources', h('span', { 'data-testid': 'entity-sources' }, (e.sources || []).map((s, i) => [i ? ', ' : '', `${s['event.dataset'] || '(no dataset)'}: ${fmtNum(s.count)}`])));
      fact('Search', h('a', { href: `#/search?${new URLSearchParams({ q: e.query, from })}`, text: 'Open in search' }));
      const events = dataTable([
        { label: 'Time', cls: 'mono nowrap', render: (x) => timeEl(x['@timestamp']) },
        { label: 'Source', render: (x) => valueText(x['event.dataset'] || x['vigil.parser'] || x['vigil.source']) },
        { label: 'Event', render: (x) => eventSummary(x) },
        { label: 'Seq', cls: 'num mono', render: (x) => valueText(x['vigil.seq']) },
      ], e.events || [], { id: 'entity-events', testid: 'entity-events', caption: `Timeline (${from} to now, newest first)`, empty: 'No events in this period.', rowAttrs: (x) => ({ 'data-testid': 'entity-event-row', 'data-seq': x['vigil.seq'], 'data-dataset': x['event.dataset'] || '' }) });
      const alerts = dataTable([
        { label: 'ID', cls: 'num mono', render: (a) => h('a', { href: `#/alerts/${a.id}`, 'data-testid': 'entity-alert-link', text: `#${a.id}` }) },
        { label: 'Rule', render: (a) => (a.rule && a.rule.title) || '' },
        { label: 'Level', render: (a) => levelBadge(a.rule && a.rule.level) },
        { label: 'Status', render: (a) => statusBadge(a.status) },
        { label: 'Last seen', cls: 'mono nowrap', render: (a) => timeEl(a.last_seen) },
      ], e.alerts || [], { id: 'entity-alerts', testid: 'entity-alerts', empty: 'No alerts.', rowAttrs: (a) => ({ 'data-testid': 'entity-alert-row', 'data-alert-id': a.id }) });
      const cases = h('ul', { class: 'related-list', 'data-testid': 'entity-cases' }, (e.cases || []).map((c) => h('li', null, h('a', { href: `#/cases/${c.id}`, text: `#${c.id} ${c.title}` }), ' ', caseStatusBadge(c.status))));
      if (!(e.cases || []).length) cases.append(h('li', { class: 'muted', text: 'In no case.' }));
      const bans = h('ul', { class: 'related-list', 'data-testid': 'entity-bans' }, (e.bans || []).map((d) => h('li', { 'data-testid': 'entity-ban' }, h('span', { class: 'mono', text: d.value }), ` until ${fmtTime(d.until)} — ${d.reason || ''}`)));
      if (!(e.bans || []).length) bans.append(h('li', { class: 'muted', text: kind === 'ip' ? 'Not banned.' : 'Bans apply to addresses only.' }));
      box.append(h('div', { class: 'detail-grid' },
        h('div', { class: 'detail-main' },
          h('section', { class: 'panel' }, h('h2', { class: 'panel-title', text: 'Summary' }), facts),
          h('section', { class: 'panel flush', 'aria-label': 'Timeline' }, h('h2', { class: 'panel-title pad', text: e.truncated ? `Timeline (the newest ${fmtNum((e.events || []).length)})` : 'Timeline' }), events)),
        h('div', { class: 'detail-side' },
          h('section', { class: 'panel flush', 'aria-label': 'Alerts' }, h('h2', { class: 'panel-title pad', text: 'Alerts' }), alerts),
          h('section', { class: 'panel', 'aria-label': 'Cases' }, h('h2', { class: 'panel-title', text: 'Cases' }), cases),
          h('section', { class: 'panel', 'aria-label': 'Bans' }, h('h2', { class: 'panel-title', text: 'Bans' }), bans))));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(box).append(inlineError(err, `Looking up ${value}`));
    }
  })();
  return { cleanup() { controller.abort(); } };
}

// ---- ATT&CK coverage

function renderCoverage(view, params) {
  const controller = new AbortController();
  const from = params.get('from') || '-7d';
  const box = h('div', { id: 'coverage', 'data-testid': 'coverage' }, spinner('Building the matrix…'));
  const layer = h('button', { type: 'button', class: 'btn btn-secondary', id: 'navigator-export', 'data-testid': 'navigator-export', text: '⇩ ATT&CK Navigator layer' });
  layer.addEventListener('click', async () => {
    try {
      const l = await api('GET', `/api/v1/coverage/navigator?from=${encodeURIComponent(from)}`, undefined, { signal: controller.signal });
      const a = h('a', { href: URL.createObjectURL(new Blob([JSON.stringify(l, null, 2)], { type: 'application/json' })), download: 'vigil-attack-layer.json' });
      document.body.append(a); a.click(); a.remove();
    } catch (err) { if (err.name !== 'AbortError') showError(err, 'Exporting the layer'); }
  });
  view.append(pageHeader('ATT&CK coverage', layer), box);
  (async () => {
    try {
      const c = await api('GET', `/api/v1/coverage?from=${encodeURIComponent(from)}`, undefined, { signal: controller.signal });
      clear(box).append(h('p', { class: 'muted', 'data-testid': 'coverage-summary', text: `${fmtNum(c.techniques_covered)} of ${fmtNum(c.techniques_named)} techniques named by ${fmtNum(c.rules)} enabled rules are covered by a rule whose log source sent events since ${from}; ${fmtNum(c.untagged_rules)} rules carry no ATT&CK technique. Grey cells: rules without data (they detect nothing).` }));
      const grid = h('div', { class: 'attack-matrix', 'data-testid': 'attack-matrix', role: 'table', 'aria-label': 'ATT&CK matrix' });
      for (const t of c.tactics || []) {
        const col = h('div', { class: 'attack-tactic', role: 'rowgroup', 'data-testid': 'attack-tactic', 'data-tactic': t.tactic },
          h('h3', { class: 'attack-tactic-name', text: `${t.name} (${(t.techniques || []).length})` }));
        for (const x of t.techniques || []) {
          const rules = [...(x.active || []), ...(x.idle || []).map((r) => `${r} — no data`)].join('\n');
          col.append(h('a', { class: `attack-cell ${x.rules > 0 ? 'covered' : 'idle'}`, role: 'row', href: x.url, target: '_blank', rel: 'noopener noreferrer', title: rules, 'data-testid': 'attack-cell', 'data-technique': x.id, 'data-rules': x.rules, 'data-idle': x.idle_rules },
            h('span', { class: 'mono', text: x.id }), ' ', h('span', { text: x.name }), h('span', { class: 'attack-count', text: ` ${x.rules}${x.idle_rules ? ` (+${x.idle_rules} idle)` : ''}` })));
        }
        grid.append(col);
      }
      box.append(grid);
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(box).append(inlineError(err, 'Loading coverage'));
    }
  })();
  return { cleanup() { controller.abort(); } };
}

// ------------------------------------------------------------------ router

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/search';
  const [path, query = ''] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean);
  return { parts, params: new URLSearchParams(query) };
}

function route() {
  const { parts, params } = parseHash();
  // A generated password (the first admin's) must be changed before anything else: the server
  // refuses every other request of this session, so the account page is the only page (and the
  // address says so, so that a link to another page works once the password is changed).
  if (session.mustChangePassword && parts[0] !== 'account') history.replaceState(null, '', '#/account');
  const name = session.mustChangePassword ? 'account' : (parts[0] || 'search');
  if (name === 'search' && parts.length === 1 && currentView && currentView.name === 'search' && currentView.update) {
    // same view, other search (Back/Forward or a link): keep the page, run the hash's search
    hideError();
    currentView.update(params);
    return;
  }
  if (currentView && currentView.cleanup) {
    try { currentView.cleanup(); } catch (_) { /* ignore */ }
  }
  currentView = null;
  hideError();
  const view = clear($('view'));
  view.dataset.view = name;
  for (const a of document.querySelectorAll('.topbar a[data-route]')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const titles = { cases: 'Cases', entity: 'Entity', coverage: 'ATT&CK coverage', search: 'Search', alerts: 'Alerts', dashboards: 'Dashboards', integrity: 'Integrity', compliance: 'Compliance', cluster: 'Cluster', rules: 'Rules', sources: 'Sources', account: 'Account', admin: 'Admin', drills: 'Drills' };
  document.title = `${titles[name] || 'Not found'} · Vigil`;
  switch (name) {
    case 'search': currentView = renderSearch(view, params); break;
    case 'alerts':
      currentView = parts[1] ? renderAlertDetail(view, decodeURIComponent(parts[1])) : renderAlerts(view, params);
      break;
    case 'cases':
      currentView = parts[1] ? renderCaseDetail(view, decodeURIComponent(parts[1])) : renderCases(view, params);
      break;
    case 'entity':
      if (parts.length === 3) currentView = renderEntity(view, parts[1], decodeURIComponent(parts[2]), params);
      else view.append(pageHeader('Not found'), h('p', { text: 'An entity page is #/entity/ip|user|host/VALUE.' }));
      break;
    case 'coverage': currentView = renderCoverage(view, params); break;
    case 'dashboards': currentView = renderDashboards(view); break;
    case 'integrity': currentView = renderIntegrity(view); break;
    case 'compliance': currentView = renderCompliance(view, params); break;
    case 'cluster': currentView = renderCluster(view); break;
    case 'rules': currentView = renderRules(view); break;
    case 'sources': currentView = renderSources(view); break;
    case 'account': currentView = renderAccount(view); break;
    case 'admin': currentView = renderAdmin(view); break;
    case 'drills': currentView = renderDrills(view); break;
    default:
      view.append(pageHeader('Not found'), h('p', null, 'There is no page here. ', h('a', { href: '#/search', text: 'Go to search' })));
  }
}

async function refreshOpenCount() {
  const badge = $('open-alerts-count');
  try {
    const res = await api('GET', '/api/v1/alerts?status=open&limit=1000');
    const n = (res.alerts || []).length;
    badge.textContent = String(n);
    badge.setAttribute('aria-label', `${n} open`);
    badge.hidden = n === 0;
  } catch (_) {
    badge.hidden = true;
  }
}

async function logout() {
  const btn = $('logout-button');
  btn.disabled = true;
  try {
    await api('POST', '/api/v1/logout', {});
    location.assign('/login');
  } catch (err) {
    btn.disabled = false;
    showError(err, 'Log out failed');
  }
}

async function start() {
  $('error-dismiss').addEventListener('click', hideError);
  $('logout-button').addEventListener('click', logout);
  try {
    const me = await api('GET', '/api/v1/session');
    session.user = me.user;
    session.role = me.role;
    session.csrf = me.csrf;
    session.expires = me.expires || '';
    session.mustChangePassword = me.must_change_password === true;
  } catch (err) {
    clear($('view'));
    showError(err, 'Could not load the session');
    return;
  }
  $('user-name').textContent = session.user;
  $('user-role').textContent = session.role;
  $('nav-account').setAttribute('aria-label', `Account settings for ${session.user}`);
  $('nav-admin').hidden = !isAdmin();
  // The Cluster page is offered on cluster nodes only.
  api('GET', '/api/v1/cluster').then((c) => { $('nav-cluster').hidden = c.mode !== 'cluster'; }, () => {});
  document.body.dataset.role = session.role;
  window.addEventListener('hashchange', route);
  route();
  if (!session.mustChangePassword) refreshOpenCount();
  setInterval(() => { if (!document.hidden && !session.mustChangePassword) refreshOpenCount(); }, 60000);
}

start();

// ------------------------------------------------------------------ drills

// Incident-response drills (GET/POST /api/v1/drills): the scenarios, a Run button for analysts
// and admins, and the reports — each step passed/failed/skipped with its latency and what was
// missed and why. Drill events and alerts are left out of every other page by default.
function renderDrills(view) {
  const controller = new AbortController();
  const refresh = h('button', { type: 'button', class: 'btn btn-secondary', id: 'drills-refresh' }, h('span', { 'aria-hidden': 'true', text: '↻ ' }), 'Refresh');
  const scenariosBox = h('section', { class: 'panel flush', id: 'drill-scenarios', 'data-testid': 'drill-scenarios' }, h('div', { class: 'pad' }, spinner()));
  const status = h('p', { class: 'muted small pad', id: 'drill-status', 'data-testid': 'drill-status', 'aria-live': 'polite' });
  const reportsBox = h('section', { class: 'panel flush', id: 'drill-reports', 'data-testid': 'drill-reports' }, h('div', { class: 'pad' }, spinner()));
  view.append(pageHeader('Drills', refresh),
    h('p', { class: 'muted' }, 'A drill sends an attack scenario through the real listeners, marked as a drill (never counted on other pages, never banning anyone), and measures every step of the response: stored, alerted, notified, banned, fetched by the bouncers.'),
    scenariosBox, status, reportsBox);
  const stepBadge = (st) => h('span', { class: `badge drill-${st}`, 'data-testid': 'drill-step-status' }, h('span', { 'aria-hidden': 'true', text: st === 'passed' ? '✓ ' : st === 'failed' ? '✗ ' : '– ' }), st);
  const reportEl = (r) => h('article', { class: 'pad drill-report', 'data-testid': 'drill-report', 'data-run': r.run },
    h('h3', null, `${r.title || r.scenario} `, h('span', { class: `badge ${r.passed ? 'drill-passed' : 'drill-failed'}`, 'data-testid': 'drill-outcome', text: r.passed ? 'passed' : 'FAILED' })),
    h('p', { class: 'muted small' }, `${r.run} · by ${r.by} · `, timeEl(r.started), r.seq !== null && r.seq !== undefined ? ` · in the ledger at seq ${r.seq}` : ''),
    dataTable([
      { label: 'Step', render: (s) => s.name },
      { label: 'Status', render: (s) => stepBadge(s.status) },
      { label: 'Latency', cls: 'num mono', render: (s) => (typeof s.latency_ms === 'number' ? `${s.latency_ms.toFixed(1)} ms` : '—') },
      { label: 'What happened', render: (s) => s.detail },
    ], r.steps || [], { testid: 'drill-steps', rowAttrs: () => ({ 'data-testid': 'drill-step' }) }),
    (r.missed || []).length ? h('div', { class: 'drill-missed' }, h('strong', { text: 'Missed: ' }), h('ul', null, r.missed.map((m) => h('li', { text: m })))) : '',
    h('p', { class: 'small' }, h('a', { href: `#/search?${new URLSearchParams({ q: `vigil.drill.run=${quoteValue(r.run)}`, from: '-24h' })}`, 'data-testid': 'drill-events-link', text: 'this drill\'s events, alerts, notifications and decisions' })));
  async function run(name, btn) {
    btn.disabled = true;
    status.textContent = `Running ${name}…`;
    try {
      const r = await api('POST', '/api/v1/drills', { scenario: name }, { signal: controller.signal });
      status.textContent = `${name}: ${r.passed ? 'passed' : 'failed'}`;
      await load();
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.textContent = '';
      showError(err, `Running drill ${name}`);
    } finally {
      btn.disabled = false;
    }
  }
  async function load() {
    try {
      const res = await api('GET', '/api/v1/drills', undefined, { signal: controller.signal });
      clear(scenariosBox).append(h('h2', { class: 'pad', text: 'Scenarios' }), dataTable([
        { label: 'Scenario', cls: 'mono', render: (s) => s.name },
        { label: 'What it plays', render: (s) => h('span', null, h('strong', { text: s.title }), h('br'), h('span', { class: 'muted small', text: s.description })) },
        { label: 'Events', cls: 'num mono', render: (s) => String(s.events) },
        { label: 'Via', render: (s) => (s.listeners || []).join(', ') },
        { label: '', render: (s) => {
          if (!canWrite()) return h('span', { class: 'muted small', text: 'analysts and admins run drills' });
          const btn = h('button', { type: 'button', class: 'btn', 'data-testid': 'drill-run', 'data-scenario': s.name, text: 'Run' });
          btn.addEventListener('click', () => run(s.name, btn));
          return btn;
        } },
      ], res.scenarios || [], { testid: 'drill-scenario-table', rowAttrs: (s) => ({ 'data-testid': 'drill-scenario', 'data-scenario': s.name }) }));
      const sched = res.schedule || {};
      if ((sched.scenarios || []).length) scenariosBox.append(h('p', { class: 'pad muted small', text: `Scheduled every ${sched.every}: ${sched.scenarios.join(', ')}` }));
      for (const issue of res.issues || []) scenariosBox.append(h('p', { class: 'pad error-text', text: issue }));
      const reports = res.reports || [];
      clear(reportsBox).append(h('h2', { class: 'pad', text: 'Reports' }));
      if (!reports.length) reportsBox.append(h('p', { class: 'pad muted', text: 'No drill has run since the server started. Every report is in the ledger: search event.dataset=vigil.drill.' }));
      for (const r of reports) reportsBox.append(reportEl(r));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(scenariosBox).append(inlineError(err, 'Loading drills'));
      showError(err, 'Loading drills');
    }
  }
  refresh.addEventListener('click', load);
  load();
  return { cleanup() { controller.abort(); } };
}
