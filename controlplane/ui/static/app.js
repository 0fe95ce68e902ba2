// app.js: the dashboard's views. Each view fetches through the Connect API
// (see connect.js), renders into #view, and refreshes every REFRESH_MS while
// it is shown. Navigation is by URL hash (#graph, #routes, ...).
import { createClient } from './connect.js';
import { h, ms, pct, rate, num, when, enumName, short, message, errorBox, sparkline, seconds } from './dom.js';
import { renderGraph } from './graph.js';

const INTEL = 'omninode.bridge.v1.IntelligenceService';
const ADMIN = 'omninode.bridge.v1.AdminService';
const REFRESH_MS = 2500;
const TOKEN_KEY = 'omnibridge.token';
const TAP_MAX = 300;
const TAP_RETRY_MS = 3000;
const HISTORY = 40;

const api = createClient({ token: () => localStorage.getItem(TOKEN_KEY) || '' });
const viewEl = document.getElementById('view');
const statusEl = document.getElementById('status');

let current = null; // {name, timer, abort, cleanup}
const routeHistory = new Map(); // "service route" -> p99 seconds, oldest first

function setStatus(ok, text) {
  statusEl.textContent = text;
  statusEl.className = `status ${ok ? 'status-ok' : 'status-err'}`;
}

function toast(text, kind = 'ok') {
  const t = h('div', { class: `toast toast-${kind}`, role: 'status' }, text);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), 5000);
}

/** poll runs load now and every REFRESH_MS, rendering errors in place. */
function poll(box, load) {
  let busy = false;
  let first = true;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const node = await load();
      box.replaceChildren(node);
      setStatus(true, `updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      if (err.code === 'canceled') return;
      // Keep the last good content; show the error above it.
      const errEl = errorBox(err);
      errEl.classList.add('poll-error');
      box.querySelector('.poll-error')?.remove();
      if (first) box.replaceChildren(errEl); else box.prepend(errEl);
      setStatus(false, `error: ${err.code}`);
    } finally {
      busy = false;
      first = false;
    }
  };
  box.replaceChildren(message('loading', 'Loading…'));
  tick();
  const id = setInterval(tick, REFRESH_MS);
  const stop = () => clearInterval(id);
  stop.now = tick;
  return stop;
}

function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { class: x.num ? 'num' : '' }, x.label ?? x)))),
    h('tbody', {}, rows));
}

// ---------- views ----------

const views = {
  graph: {
    title: 'Service graph',
    render(box) {
      let windowSel = 'WINDOW_1M';
      let p = null;
      const controls = h('div', { class: 'controls' },
        h('label', {}, 'Window ', windowSelect((v) => { windowSel = v; p.now(); }, windowSel)));
      const body = h('div', {});
      box.replaceChildren(controls, body);
      p = poll(body, async () => {
        const res = await api.unary(INTEL, 'GetServiceGraph', { window: windowSel });
        const services = res.services || [];
        const edges = res.edges || [];
        if (!services.length && !edges.length) {
          return message('empty', 'No services seen yet.', 'Send traffic through a sidecar, or run omnibridge dev --demo.');
        }
        const hints = res.causalHints || [];
        return h('div', { class: 'graph-wrap' },
          h('div', { class: 'graph-box' }, renderGraph(services, edges, { onSelect: (n) => { location.hash = `#routes?service=${encodeURIComponent(n)}`; } })),
          h('div', { class: 'side' },
            h('h3', {}, 'Edges'),
            edges.length ? table(['From', 'To', { label: 'Rate', num: 1 }, { label: 'Errors', num: 1 }, { label: 'p50', num: 1 }, { label: 'p99', num: 1 }],
              edges.map((e) => h('tr', { class: Number(e.errorRate || 0) >= 0.05 ? 'row-bad' : '' },
                h('td', {}, e.source), h('td', {}, e.target), h('td', { class: 'num' }, rate(e.requestRate)),
                h('td', { class: 'num' }, pct(e.errorRate)), h('td', { class: 'num' }, ms(e.p50)), h('td', { class: 'num' }, ms(e.p99)))), { class: 'compact', id: 'edge-table' })
              : message('empty', 'No traffic in this window.'),
            hints.length ? h('div', {}, h('h3', {}, 'Causal hints'), h('ul', { class: 'hints' }, hints.map((c) =>
              h('li', {}, h('strong', {}, `${c.effectService} ← ${c.causeService}`), ` (${pct(c.confidence)} confidence) `, h('span', { class: 'muted' }, c.evidence))))) : null));
      });
      return p;
    },
  },

  routes: {
    title: 'Routes',
    render(box, params) {
      let windowSel = 'WINDOW_1M';
      const service = params.get('service') || '';
      let p = null;
      const filter = h('input', { type: 'search', placeholder: 'service', value: service, id: 'routes-service', onchange: () => p.now() });
      const controls = h('div', { class: 'controls' },
        h('label', {}, 'Service ', filter), h('label', {}, 'Window ', windowSelect((v) => { windowSel = v; p.now(); }, windowSel)),
        h('span', { class: 'muted' }, 'p99 sparkline: last polls, newest right'));
      const body = h('div', {});
      box.replaceChildren(controls, body);
      p = poll(body, async () => {
        const res = await api.unary(INTEL, 'ListRouteStats', { service: filter.value.trim(), window: windowSel, limit: 100 });
        const routes = res.routes || [];
        for (const r of routes) {
          const key = `${windowSel} ${r.service} ${r.route}`;
          const hist = routeHistory.get(key) || [];
          hist.push(seconds(r.p99));
          if (hist.length > HISTORY) hist.shift();
          routeHistory.set(key, hist);
        }
        if (!routes.length) return message('empty', 'No route statistics in this window.');
        return table(['Service', 'Route', { label: 'Requests', num: 1 }, { label: 'Rate', num: 1 }, { label: 'Errors', num: 1 },
          { label: 'p50', num: 1 }, { label: 'p90', num: 1 }, { label: 'p99', num: 1 }, { label: 'vs avg', num: 1 }, 'Trend', 'p99 history', 'Bottleneck'],
        routes.map((r) => h('tr', { class: r.anomalous ? 'row-bad' : '', dataset: { route: `${r.service} ${r.route}` } },
          h('td', {}, r.service), h('td', { class: 'mono' }, r.route), h('td', { class: 'num' }, num(r.requests)),
          h('td', { class: 'num' }, rate(r.requestRate)), h('td', { class: 'num' }, pct(r.errorRate)),
          h('td', { class: 'num' }, ms(r.p50)), h('td', { class: 'num' }, ms(r.p90)), h('td', { class: 'num' }, ms(r.p99)),
          h('td', { class: 'num' }, r.vsHistoricalAvg ? `${Number(r.vsHistoricalAvg).toFixed(2)}×` : '–'),
          h('td', {}, h('span', { class: `trend trend-${enumName(r.performanceTrend, 'PERFORMANCE_TREND_')}` }, enumName(r.performanceTrend, 'PERFORMANCE_TREND_')),
            r.anomalous ? h('span', { class: 'badge badge-bad', title: `anomaly score ${Number(r.anomalyScore || 0).toFixed(1)}` }, 'anomaly') : null),
          h('td', {}, sparkline(routeHistory.get(`${windowSel} ${r.service} ${r.route}`) || [])),
          h('td', {}, (r.bottlenecks || []).slice(0, 1).map((b) => `${b.name} ${pct(b.share)}`)))), { id: 'routes-table' });
      });
      return p;
    },
  },

  patterns: {
    title: 'Failure patterns',
    render(box) {
      return poll(box, async () => {
        const res = await api.unary(INTEL, 'ListPatterns', { limit: 50 });
        const ps = res.patterns || [];
        if (!ps.length) return message('empty', 'No failure patterns detected.', 'Patterns appear when failures share a message template.');
        return h('div', { class: 'cards' }, ps.map((p) => h('article', { class: 'card', dataset: { pattern: p.id } },
          h('div', { class: 'card-head' }, h('code', { class: 'template' }, p.template || '(no template)'),
            h('span', { class: 'badge' }, `${num(p.frequency)}×`)),
          h('dl', { class: 'kv' },
            h('dt', {}, 'Services'), h('dd', {}, (p.services || []).join(', ') || '–'),
            h('dt', {}, 'Routes'), h('dd', {}, (p.routes || []).join(', ') || '–'),
            h('dt', {}, 'Codes'), h('dd', {}, (p.codes || []).join(', ') || '–'),
            h('dt', {}, 'Root cause'), h('dd', {}, p.rootCauseService || '–'),
            h('dt', {}, 'Confidence'), h('dd', {}, pct(p.confidence)),
            h('dt', {}, 'Seen'), h('dd', {}, `${when(p.firstSeen)} → ${when(p.lastSeen)}`)),
          (p.examples || []).length ? h('details', {}, h('summary', {}, 'Examples'), h('ul', {}, p.examples.map((e) => h('li', { class: 'mono' }, e)))) : null)));
      });
    },
  },

  recommendations: {
    title: 'Recommendations',
    render(box) {
      const p = poll(box, async () => renderRecommendations(await api.unary(INTEL, 'ListRecommendations', {}), () => p.now()));
      return p;
    },
  },

  rollout: {
    title: 'Directive rollout',
    render(box) {
      return poll(box, async () => {
        const res = await api.unary(INTEL, 'GetStatus', {});
        const sc = res.sidecars || [];
        if (!sc.length) return message('empty', 'No sidecars connected.', 'Sidecars appear here once they open their directive stream.');
        const versions = Object.entries(res.versions || {}).sort();
        return h('div', {},
          versions.length ? h('p', { class: 'muted' }, 'Current snapshot: ', versions.map(([k, v]) => h('span', { class: 'badge' }, `${k} v${v}`))) : null,
          table(['Service', 'Instance', 'Pod', { label: 'Sent', num: 1 }, { label: 'Acked', num: 1 }, 'Rejected', 'State', 'Stream', 'Last seen'],
            sc.map((x) => h('tr', { dataset: { instance: x.instance } },
              h('td', {}, x.service), h('td', { class: 'mono' }, x.instance), h('td', {}, x.pod || '–'),
              h('td', { class: 'num' }, num(x.sentVersion)), h('td', { class: 'num' }, num(x.ackedVersion)),
              h('td', { title: x.rejectReason || '' }, x.rejectedVersion ? `${num(x.rejectedVersion)}: ${x.rejectReason}` : '–'),
              h('td', {}, h('span', { class: `badge sync-${(x.syncState || 'unknown').toLowerCase()}` }, x.syncState || 'UNKNOWN')),
              h('td', {}, x.connected ? 'connected' : h('span', { class: 'muted' }, 'disconnected')),
              h('td', {}, when(x.lastSeen)))), { id: 'status-table' }));
      });
    },
  },

  tools: {
    title: 'MCP tools',
    render(box) {
      return poll(box, async () => {
        const res = await api.unary(INTEL, 'ListTools', {});
        const tools = res.tools || [];
        if (!tools.length) return message('empty', 'No MCP tools registered.', 'Tools appear when a sidecar sees tools/list or tools/call.');
        return table(['Service', 'Tool', { label: 'Calls', num: 1 }, { label: 'Success', num: 1 }, { label: 'p50', num: 1 }, { label: 'p99', num: 1 }, 'Health', 'Schema'],
          tools.map((t) => {
            const hist = t.history || [];
            return h('tr', { class: t.degraded ? 'row-bad' : '', dataset: { tool: `${t.service}/${t.name}` } },
              h('td', {}, t.service), h('td', {}, h('strong', { class: 'mono' }, t.name), h('div', { class: 'muted small' }, t.description || '')),
              h('td', { class: 'num' }, num(t.calls)), h('td', { class: 'num' }, pct(t.successRate)),
              h('td', { class: 'num' }, ms(t.p50)), h('td', { class: 'num' }, ms(t.p99)),
              h('td', {}, t.degraded ? h('span', { class: 'badge badge-bad', title: t.degradedReason || '' }, 'degraded') : h('span', { class: 'badge badge-ok' }, 'ok'),
                t.degradedReason ? h('div', { class: 'small' }, t.degradedReason) : null),
              h('td', {}, hist.length > 1
                ? h('details', {}, h('summary', {}, h('span', { class: 'badge badge-warn' }, `drift: ${hist.length} versions`)),
                  h('ol', { class: 'history' }, hist.map((v) => h('li', {}, h('code', {}, (v.schemaHash || '').slice(0, 12)), ` ${when(v.seenAt)} `,
                    h('span', { class: 'muted' }, v.description || ''), h('pre', { class: 'schema' }, JSON.stringify(v.signature || {}, null, 1))))))
                : h('span', { class: 'muted' }, hist.length ? 'stable' : '–')));
          }), { id: 'tools-table' });
      });
    },
  },

  tap: { title: 'Live tap', render: renderTap },
};

function windowSelect(onChange, value) {
  const sel = h('select', { onchange: (e) => onChange(e.target.value) },
    [['WINDOW_1M', '1 min'], ['WINDOW_5M', '5 min'], ['WINDOW_1H', '1 hour']].map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
  return sel;
}

// ---------- recommendations ----------

const STATE_PREFIX = 'RECOMMENDATION_STATE_';

function specOf(d) {
  if (!d) return ['–', {}];
  for (const k of ['timeout', 'retry', 'circuitBreaker', 'rateLimit', 'concurrencyLimit', 'responseCache', 'trafficWeights', 'eventSampling']) {
    if (d[k]) return [k, d[k]];
  }
  return ['–', {}];
}

function renderRecommendations(res, reload) {
  const recs = res.recommendations || [];
  if (!recs.length) return message('empty', 'No recommendations yet.', 'The engine proposes directives once it has evidence.');
  return h('div', { class: 'recs', id: 'recs' }, recs.map((r) => recCard(r, reload)));
}

function recCard(r, reload) {
  const state = enumName(r.state, STATE_PREFIX);
  const [kind, spec] = specOf(r.directive);
  const scope = r.directive && r.directive.scope ? `${r.directive.scope.service}${r.directive.scope.route ? ` ${r.directive.scope.route}` : ''}` : '–';
  const act = async (btn, method, req, done) => {
    const card = btn.closest('.card');
    card.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      const out = await api.unary(ADMIN, method, { id: r.id, reason: 'from the dashboard', ...req });
      const nr = out.recommendation || r;
      toast(`${done}: ${kind} on ${scope} is now ${enumName(nr.state, STATE_PREFIX)}${out.version ? ` (snapshot v${out.version})` : ''}`);
      card.replaceWith(recCard(nr, reload));
      reload();
    } catch (err) {
      card.querySelector('.card-error')?.remove();
      card.append(h('div', { class: 'card-error' }, errorBox(err)));
      card.querySelectorAll('button').forEach((b) => { b.disabled = false; });
    }
  };
  const btn = (label, action, cls, fn) => h('button', { type: 'button', class: cls, dataset: { action }, onclick: (e) => fn(e.currentTarget) }, label);
  const buttons = [];
  if (r.state === 'RECOMMENDATION_STATE_PROPOSED') {
    buttons.push(btn('Apply', 'apply', 'primary', (b) => act(b, 'ApplyRecommendation', { mode: 'DIRECTIVE_MODE_ENFORCE' }, 'Applied')));
    buttons.push(btn('Dry-run', 'dry-run', '', (b) => act(b, 'ApplyRecommendation', { mode: 'DIRECTIVE_MODE_DRY_RUN' }, 'Dry-run started')));
    buttons.push(btn('Reject', 'reject', 'danger', (b) => act(b, 'RejectRecommendation', {}, 'Rejected')));
  } else if (r.state === 'RECOMMENDATION_STATE_DRY_RUN') {
    buttons.push(btn('Enforce', 'apply', 'primary', (b) => act(b, 'ApplyRecommendation', { mode: 'DIRECTIVE_MODE_ENFORCE' }, 'Applied')));
    buttons.push(btn('Rollback', 'rollback', 'danger', (b) => act(b, 'Rollback', {}, 'Rolled back')));
  } else if (r.state === 'RECOMMENDATION_STATE_ENFORCED' || r.state === 'RECOMMENDATION_STATE_KEPT') {
    buttons.push(btn('Rollback', 'rollback', 'danger', (b) => act(b, 'Rollback', {}, 'Rolled back')));
  }
  const evidence = Object.entries(r.evidence || {});
  const impact = Object.entries(r.expectedImpact || {});
  const eff = r.effectivenessScore;
  return h('article', { class: `card rec rec-${state.replaceAll(' ', '-')}`, dataset: { recId: r.id } },
    h('div', { class: 'card-head' },
      h('span', { class: 'rec-kind' }, enumName(r.kind, 'DIRECTIVE_KIND_')), h('span', { class: 'rec-scope mono' }, scope),
      h('span', { class: `badge rec-state state-${state.replaceAll(' ', '-')}` }, state),
      h('span', { class: 'muted small' }, `confidence ${pct(r.confidence)} · ${when(r.createdAt)}`),
      h('span', { class: 'grow' }), buttons),
    r.explanation ? h('p', { class: 'explain' }, r.explanation) : null,
    h('div', { class: 'rec-body' },
      h('div', {}, h('h4', {}, 'Directive'), h('pre', { class: 'spec' }, `${kind} ${JSON.stringify(spec, null, 1)}`)),
      h('div', {}, h('h4', {}, 'Evidence'), evidence.length ? h('dl', { class: 'kv' }, evidence.map(([k, v]) => [h('dt', {}, k), h('dd', {}, short(v))])) : h('span', { class: 'muted' }, 'none')),
      h('div', {}, h('h4', {}, 'Expected / measured'),
        impact.length ? h('dl', { class: 'kv' }, impact.map(([k, v]) => [h('dt', {}, k), h('dd', {}, short(v))])) : null,
        h('div', {}, 'Effectiveness: ', eff === undefined ? h('span', { class: 'muted' }, 'not measured yet') : h('strong', { class: eff >= 0 ? 'good' : 'bad' }, Number(eff).toFixed(2))),
        r.stateReason ? h('div', { class: 'small' }, 'Reason: ', r.stateReason) : null)));
}

// ---------- tap ----------

const TOPICS = ['hooks.service_lifecycle', 'hooks.execution_intelligence', 'proxy.communication_intelligence', 'tools.registration_events'];
const TOPIC_LABEL = {
  'hooks.service_lifecycle': 'lifecycle', 'hooks.execution_intelligence': 'execution',
  'proxy.communication_intelligence': 'communication', 'tools.registration_events': 'tool',
};

function describe(ev) {
  if (ev.communication) {
    const c = ev.communication; const rc = c.requestContext || {}; const pm = c.performanceMetrics || {};
    return { topic: 'proxy.communication_intelligence', at: c.envelope && c.envelope.occurredAt, service: pm.targetService || (c.envelope && c.envelope.source && c.envelope.source.service) || '?',
      text: `${rc.sourceService ? `${rc.sourceService} → ` : ''}${rc.method || ''} ${rc.route || rc.path || ''} ${pm.statusCode || ''} ${ms(pm.responseTime)}${pm.proxyError ? ` ${pm.proxyError}` : ''}`, ok: pm.success === true };
  }
  if (ev.execution) {
    const x = ev.execution; const pc = x.preContext || {}; const r = x.results || {};
    return { topic: 'hooks.execution_intelligence', at: x.envelope && x.envelope.occurredAt, service: pc.serviceName || '?',
      text: `${x.mcp ? `tool ${x.mcp.toolName}` : pc.operation || ''} ${ms(r.executionTime)}${r.error ? ` — ${r.error}` : ''}`, ok: r.success === true };
  }
  if (ev.lifecycle) {
    const l = ev.lifecycle;
    return { topic: 'hooks.service_lifecycle', at: l.envelope && l.envelope.occurredAt, service: (l.serviceInfo && l.serviceInfo.name) || '?',
      text: `${enumName(l.eventType, 'LIFECYCLE_EVENT_TYPE_')} ${l.health ? enumName(l.health, 'HEALTH_STATUS_') : ''}`, ok: l.health !== 'HEALTH_STATUS_UNHEALTHY' };
  }
  if (ev.tool) {
    const t = ev.tool; const ti = t.toolInfo || {};
    return { topic: 'tools.registration_events', at: t.envelope && t.envelope.occurredAt, service: ti.serviceSource || '?',
      text: `${enumName(t.eventType, 'TOOL_EVENT_TYPE_')} ${ti.name || ''}`, ok: true };
  }
  return { topic: '?', service: '?', text: JSON.stringify(ev), ok: true };
}

function renderTap(box) {
  const service = h('input', { type: 'search', placeholder: 'any service', id: 'tap-service' });
  const prefix = h('input', { type: 'search', placeholder: '/route prefix', id: 'tap-prefix' });
  const errors = h('input', { type: 'checkbox', id: 'tap-errors' });
  const topicBoxes = TOPICS.map((t) => h('input', { type: 'checkbox', value: t, checked: true }));
  const count = h('span', { class: 'muted', id: 'tap-count' }, '0 events');
  const state = h('span', { class: 'badge', id: 'tap-state' }, 'stopped');
  const list = h('ol', { class: 'tap', id: 'tap-list' });
  const errBox = h('div', {});
  let abort = null;
  let retry = null;
  let seen = 0;
  let dropped = 0;
  const start = async () => {
    stop();
    const ctl = new AbortController();
    abort = ctl;
    errBox.replaceChildren();
    list.replaceChildren(message('loading', 'Waiting for events…'));
    seen = 0; dropped = 0;
    const req = { service: service.value.trim(), errorsOnly: errors.checked, routePrefix: prefix.value.trim() };
    const topics = topicBoxes.filter((b) => b.checked).map((b) => b.value);
    if (topics.length !== TOPICS.length) req.topics = topics;
    state.textContent = 'live'; state.className = 'badge badge-ok';
    setStatus(true, 'tap open');
    try {
      for await (const msg of api.stream(INTEL, 'Tap', req, { signal: ctl.signal })) {
        if (seen === 0) list.replaceChildren();
        seen++;
        dropped += Number(msg.droppedBefore || 0);
        const d = describe(msg);
        list.prepend(h('li', { class: d.ok ? '' : 'tap-fail', dataset: { topic: d.topic } },
          h('span', { class: 'tap-time' }, d.at ? new Date(d.at).toLocaleTimeString() : ''),
          h('span', { class: 'tap-topic', title: d.topic }, TOPIC_LABEL[d.topic] || d.topic), h('span', { class: 'tap-svc' }, d.service),
          h('span', { class: 'mono' }, d.text)));
        while (list.childElementCount > TAP_MAX) list.lastElementChild.remove();
        count.textContent = `${seen} events${dropped ? `, ${dropped} dropped (client too slow)` : ''}`;
      }
      if (abort === ctl) { state.textContent = 'ended'; state.className = 'badge'; }
    } catch (err) {
      if (err.code === 'canceled' || ctl.signal.aborted) return;
      state.textContent = 'reconnecting'; state.className = 'badge badge-bad';
      setStatus(false, `error: ${err.code}`);
      errBox.replaceChildren(errorBox(err), message('loading', `Reconnecting in ${TAP_RETRY_MS / 1000} s…`));
      if (!seen) list.replaceChildren();
      // Keep the tap open across control-plane restarts.
      if (abort === ctl) retry = setTimeout(start, TAP_RETRY_MS);
    }
  };
  function stop() {
    clearTimeout(retry);
    if (abort) { abort.abort(); abort = null; }
    state.textContent = 'stopped'; state.className = 'badge';
  }
  const form = h('form', { class: 'controls', onsubmit: (e) => { e.preventDefault(); start(); } },
    h('label', {}, 'Service ', service), h('label', {}, 'Route ', prefix), h('label', {}, errors, ' errors only'),
    h('span', { class: 'topics' }, topicBoxes.map((b) => h('label', { title: b.value }, b, ` ${TOPIC_LABEL[b.value]}`))),
    h('button', { type: 'submit', class: 'primary', id: 'tap-start' }, 'Start'),
    h('button', { type: 'button', id: 'tap-stop', onclick: stop }, 'Stop'), state, count);
  box.replaceChildren(form, errBox, list);
  start();
  return stop;
}

// ---------- shell ----------

function route() {
  const [name, query] = (location.hash.slice(1) || 'graph').split('?');
  const view = views[name] ? name : 'graph';
  if (current && current.cleanup) current.cleanup();
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.view === view));
  document.getElementById('view-title').textContent = views[view].title;
  setStatus(true, 'loading…');
  const box = h('div', { class: `view view-${view}` });
  viewEl.replaceChildren(box);
  current = { name: view, cleanup: views[view].render(box, new URLSearchParams(query || '')) };
}

function initToken() {
  const input = document.getElementById('token');
  document.getElementById('token-form').addEventListener('submit', (e) => { e.preventDefault(); input.blur(); });
  input.value = localStorage.getItem(TOKEN_KEY) || '';
  input.addEventListener('change', () => {
    const v = input.value.trim();
    if (v) localStorage.setItem(TOKEN_KEY, v); else localStorage.removeItem(TOKEN_KEY);
    toast(v ? 'Token saved in this browser' : 'Token cleared');
    route();
  });
}

initToken();
window.addEventListener('hashchange', route);
route();
