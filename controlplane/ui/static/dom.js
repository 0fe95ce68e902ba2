// dom.js: a tiny element builder and the formatters the views share. Text is
// always set as text (never as HTML), so data from the API cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && !(el instanceof SVGElement)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h builds an HTML element: h('td', {class: 'num'}, 'text', child...). */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

/** s builds an SVG element. */
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

/** seconds parses a protojson Duration ("1.5s") into seconds; 0 when absent. */
export function seconds(d) {
  if (!d) return 0;
  const v = parseFloat(String(d));
  return Number.isFinite(v) ? v : 0;
}

/** ms formats a Duration as milliseconds or seconds. */
export function ms(d) {
  const sec = seconds(d);
  if (!sec) return '–';
  if (sec >= 1) return `${sec.toFixed(2)} s`;
  const m = sec * 1000;
  return m >= 10 ? `${m.toFixed(0)} ms` : `${m.toFixed(1)} ms`;
}

/** pct formats a 0..1 share. */
export function pct(v) {
  const n = Number(v || 0);
  if (n === 0) return '0%';
  if (n < 0.001) return '<0.1%';
  return `${(n * 100).toFixed(n < 0.1 ? 1 : 0)}%`;
}

/** rate formats requests per second. */
export function rate(v) {
  const n = Number(v || 0);
  return n >= 100 ? `${n.toFixed(0)}/s` : `${n.toFixed(1)}/s`;
}

/** num formats a count (protojson sends 64-bit integers as strings). */
export function num(v) {
  return Number(v || 0).toLocaleString('en-US');
}

/** when formats a Timestamp as a local time, or "ago" when recent. */
export function when(ts) {
  if (!ts) return '–';
  const t = new Date(ts);
  if (Number.isNaN(t.getTime())) return '–';
  const ago = (Date.now() - t.getTime()) / 1000;
  if (ago >= 0 && ago < 90) return `${Math.round(ago)} s ago`;
  if (ago >= 0 && ago < 3600) return `${Math.round(ago / 60)} min ago`;
  return t.toLocaleString();
}

/** enumName strips an enum's prefix and lowercases: ("RECOMMENDATION_STATE_DRY_RUN", "RECOMMENDATION_STATE_") -> "dry run". */
export function enumName(v, prefix) {
  if (!v) return 'unspecified';
  return String(v).replace(prefix, '').toLowerCase().replaceAll('_', ' ');
}

/** short renders any JSON value on one line. */
export function short(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** message renders a state box: loading, empty or error. */
export function message(kind, text, detail) {
  return h('div', { class: `msg msg-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('strong', {}, text), detail ? h('span', {}, ' ', detail) : null);
}

/** errorBox renders a ConnectError with its code. */
export function errorBox(err) {
  const code = err && err.code ? err.code : 'unknown';
  const msg = err && (err.rawMessage || err.message) ? (err.rawMessage || err.message) : String(err);
  return h('div', { class: 'msg msg-error', role: 'alert' },
    h('strong', {}, 'Request failed '), h('code', { class: 'err-code' }, code), h('span', {}, ': ', msg));
}

/** sparkline draws values as a small SVG line (with the last value dotted). */
export function sparkline(values, { width = 120, height = 26, cls = 'spark' } = {}) {
  const svg = s('svg', { class: cls, width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  if (values.length) svg.append(s('title', {}, `p99 from ${(Math.min(...values) * 1000).toFixed(0)} to ${(Math.max(...values) * 1000).toFixed(0)} ms over the last ${values.length} polls`));
  if (values.length < 2) {
    svg.append(s('line', { x1: 0, y1: height - 2, x2: width, y2: height - 2, class: 'spark-empty' }));
    return svg;
  }
  // Scale between the smallest and largest value so changes show; an
  // all-zero series sits in the middle.
  // The span is at least a fifth of the top value, so jitter stays small.
  const hi = Math.max(...values);
  const span = Math.max(hi - Math.min(...values), hi * 0.2);
  const lo = hi - span;
  const step = width / (values.length - 1);
  const y = (v) => (span ? height - 3 - ((v - lo) / span) * (height - 6) : height / 2);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`);
  svg.append(s('polyline', { points: pts.join(' '), class: 'spark-line' }));
  const [lx, ly] = pts[pts.length - 1].split(',');
  svg.append(s('circle', { cx: lx, cy: ly, r: 2, class: 'spark-dot' }));
  return svg;
}
