// graph.js: the service graph as SVG, laid out in layers by hand: each node's
// layer is its longest call depth from a node nobody calls, nodes within a
// layer are ordered to follow their callers (one barycenter pass), and edges
// are curves labelled with rate, error rate and p99.
import { s, pct, rate, ms, seconds } from './dom.js';

const NODE_W = 138;
const NODE_H = 46;

/** layout returns {nodes: Map(name -> {x, y, layer}), width, height}. */
export function layout(names, edges, width = 1000) {
  const all = new Set(names);
  for (const e of edges) { all.add(e.source); all.add(e.target); }
  const ids = [...all].sort((a, b) => (a === 'edge' ? -1 : b === 'edge' ? 1 : a.localeCompare(b)));
  const incoming = new Map(ids.map((n) => [n, []]));
  for (const e of edges) if (e.source !== e.target) incoming.get(e.target).push(e.source);
  // Longest-path layering; bounded passes so a cycle cannot loop forever.
  const layer = new Map(ids.map((n) => [n, 0]));
  for (let pass = 0; pass < ids.length; pass++) {
    let changed = false;
    for (const e of edges) {
      if (e.source === e.target) continue;
      const want = layer.get(e.source) + 1;
      if (want > layer.get(e.target) && want < ids.length) { layer.set(e.target, want); changed = true; }
    }
    if (!changed) break;
  }
  const layers = [];
  for (const n of ids) (layers[layer.get(n)] ||= []).push(n);
  const compact = layers.filter(Boolean);
  const rows = Math.max(1, ...compact.map((l) => l.length));
  const height = Math.max(300, rows * (NODE_H + 120) + 40);
  const nodes = new Map();
  const marginX = NODE_W / 2 + 16;
  compact.forEach((names, li) => {
    if (li > 0) {
      // Order by the mean position of callers so edges cross less.
      const bary = (n) => {
        const ys = incoming.get(n).map((p) => nodes.get(p)).filter(Boolean).map((p) => p.y);
        return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
      };
      names.sort((a, b) => bary(a) - bary(b) || a.localeCompare(b));
    }
    const x = compact.length === 1 ? width / 2 : marginX + (li * (width - 2 * marginX)) / (compact.length - 1);
    const gap = height / (names.length + 1);
    names.forEach((n, i) => nodes.set(n, { x, y: gap * (i + 1), layer: li }));
  });
  return { nodes, width, height };
}

// cubic returns the point at t of a cubic Bézier curve.
function cubic(t, p0, p1, p2, p3) {
  const u = 1 - t;
  const f = (i) => u * u * u * p0[i] + 3 * u * u * t * p1[i] + 3 * u * t * t * p2[i] + t * t * t * p3[i];
  return [f(0), f(1)];
}

function severity(errorRate) {
  if (errorRate >= 0.05) return 'bad';
  if (errorRate >= 0.01) return 'warn';
  return 'ok';
}

function health(h) {
  switch (h) {
    case 'HEALTH_STATUS_HEALTHY': return 'healthy';
    case 'HEALTH_STATUS_DEGRADED': return 'degraded';
    case 'HEALTH_STATUS_UNHEALTHY': return 'unhealthy';
    default: return 'unknown';
  }
}

/** renderGraph draws services and edges into a new SVG element. */
export function renderGraph(services, edges, { width = 1000, onSelect } = {}) {
  const byName = new Map(services.map((sv) => [sv.name, sv]));
  const { nodes, height } = layout(services.map((sv) => sv.name), edges, width);
  const svg = s('svg', { class: 'graph', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'service graph' });
  const defs = s('defs', {});
  for (const sev of ['ok', 'warn', 'bad']) {
    defs.append(s('marker', { id: `arrow-${sev}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: `arrow arrow-${sev}` })));
  }
  svg.append(defs);
  const edgeLayer = s('g', { class: 'edges' });
  const labelLayer = s('g', { class: 'edge-labels' });
  const placed = [...nodes.values()].map((p) => ({ x: p.x, y: p.y, w: NODE_W, h: NODE_H }));
  for (const e of edges) {
    const a = nodes.get(e.source);
    const b = nodes.get(e.target);
    if (!a || !b) continue;
    const sev = severity(Number(e.errorRate || 0));
    const r = Number(e.requestRate || 0);
    let d;
    let at; // t -> label centre
    if (b.layer > a.layer) {
      const x1 = a.x + NODE_W / 2; const x2 = b.x - NODE_W / 2;
      const c = (x2 - x1) / 2;
      d = `M ${x1} ${a.y} C ${x1 + c} ${a.y}, ${x2 - c} ${b.y}, ${x2} ${b.y}`;
      at = (t) => cubic(t, [x1, a.y], [x1 + c, a.y], [x2 - c, b.y], [x2, b.y]);
    } else {
      // Same layer or backwards: arc below both nodes.
      const y = Math.max(a.y, b.y) + NODE_H;
      const p0 = [a.x, a.y + NODE_H / 2]; const p3 = [b.x, b.y + NODE_H / 2];
      d = `M ${p0[0]} ${p0[1]} C ${a.x} ${y + 40}, ${b.x} ${y + 40}, ${p3[0]} ${p3[1]}`;
      at = (t) => cubic(t, p0, [a.x, y + 40], [b.x, y + 40], p3);
    }
    const title = `${e.source} → ${e.target}: ${rate(r)}, errors ${pct(e.errorRate)}, p50 ${ms(e.p50)}, p99 ${ms(e.p99)}`;
    edgeLayer.append(s('path', {
      d, class: `edge edge-${sev}`, 'stroke-width': (1.5 + Math.min(4, Math.log10(1 + r) * 2)).toFixed(1),
      'marker-end': `url(#arrow-${sev})`, dataset: { source: e.source, target: e.target },
    }, s('title', {}, title)));
    const line1 = `${rate(r)} · ${pct(e.errorRate)}`;
    const line2 = `p99 ${ms(e.p99)}`;
    const w = Math.max(line1.length, line2.length) * 6.2 + 10;
    // Keep the label on its own edge: try points along it until one clears
    // the labels and nodes already placed (crossing edges share a midpoint).
    const clear = ([x, y]) => !placed.some((p) => Math.abs(p.x - x) < (p.w + w) / 2 + 2 && Math.abs(p.y - y) < (p.h + 28) / 2 + 2);
    let [mx, my] = at(0.5);
    let found = false;
    for (const t of [0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85]) {
      const pt = at(t);
      if (clear(pt)) { [mx, my] = pt; found = true; break; }
    }
    // No clear point on the edge: move down from the middle until clear.
    for (let i = 0; !found && i < 10; i++) { my += 16; found = clear([mx, my]); }
    placed.push({ x: mx, y: my, w, h: 28 });
    labelLayer.append(s('g', { class: `edge-label edge-label-${sev}`, transform: `translate(${mx.toFixed(1)} ${my.toFixed(1)})` },
      s('title', {}, title),
      s('rect', { x: -w / 2, y: -14, width: w, height: 28, rx: 4 }),
      s('text', { 'text-anchor': 'middle', y: -2 }, line1),
      s('text', { 'text-anchor': 'middle', y: 10, class: 'edge-label-p99' }, line2)));
  }
  svg.append(edgeLayer);
  const nodeLayer = s('g', { class: 'nodes' });
  for (const [name, p] of nodes) {
    const sv = byName.get(name);
    const external = name === 'edge' && !sv;
    const sub = external ? 'outside the mesh'
      : sv ? [`${(sv.versions || []).join(', ') || 'v?'}`, `${sv.instances || 0} inst`].join(' · ') : 'not in catalog';
    const slow = edges.filter((e) => e.target === name).reduce((m, e) => Math.max(m, seconds(e.p99)), 0);
    const g = s('g', {
      class: `node node-${external ? 'external' : health(sv && sv.health)}`, transform: `translate(${p.x - NODE_W / 2} ${p.y - NODE_H / 2})`,
      tabindex: 0, role: 'button', dataset: { service: name },
      onclick: () => onSelect && onSelect(name),
      onkeydown: (ev) => { if (ev.key === 'Enter' && onSelect) onSelect(name); },
    },
    s('title', {}, `${name}${slow ? ` (slowest inbound p99 ${(slow * 1000).toFixed(0)} ms)` : ''}`),
    s('rect', { width: NODE_W, height: NODE_H, rx: 8 }),
    s('text', { x: NODE_W / 2, y: 19, 'text-anchor': 'middle', class: 'node-name' }, name),
    s('text', { x: NODE_W / 2, y: 35, 'text-anchor': 'middle', class: 'node-sub' }, sub));
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);
  svg.append(labelLayer);
  return svg;
}
