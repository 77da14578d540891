// The sandbox dashboard's own script. It reads the admin JSON API under /__sandbox/, builds
// the tables with DOM calls (never innerHTML, so no value from a request can become markup),
// and refetches whenever the server's event stream (/__sandbox/ui/stream) reports a change.
'use strict';

const ADMIN = '/__sandbox';
const $ = (sel) => document.querySelector(sel);
// `picked`: someone chose a resource, so the page stops choosing for them.
const state = { tab: 'overview', info: null, pulse: null, refreshed: 0, seen: new Set(), picked: false };

// An element: h('td', {class: 'num'}, 'text', child, ...). `on*` attributes are listeners.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid !== undefined && kid !== null) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

async function api(path, options = {}) {
  const res = await fetch(ADMIN + path, { credentials: 'same-origin', ...options });
  const text = await res.text();
  let body;
  try { body = text ? JSON.parse(text) : {}; } catch { body = { detail: text }; }
  if (!res.ok) throw new Error(body.detail || body.title || `${res.status} ${res.statusText}`);
  return body;
}

function say(text, error) {
  const m = $('#message');
  m.textContent = text;
  m.className = error ? 'error' : 'ok';
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { m.textContent = ''; }, error ? 8000 : 3000);
}

// Runs a control; shows its error on the page instead of losing it.
async function act(run, done) {
  try {
    const result = await run();
    if (done) say(done(result));
    await refresh();
    return result;
  } catch (e) {
    say(e.message, true);
    return null;
  }
}

const time = (secs) => (secs === null || secs === undefined ? '' :
  new Date(secs * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
// The time of day, with the whole date on hover.
const clockTime = (secs) => h('span', { title: time(secs) }, time(secs).slice(11));
const pretty = (v) => {
  if (typeof v !== 'string') return JSON.stringify(v, null, 2);
  try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
};
const badge = (text, cls) => h('span', { class: `badge ${cls || ''}` }, text);
const statusBadge = (s) => badge(s, `s${String(s)[0]}`);

function fill(table, rows, empty) {
  const body = $(table).tBodies[0];
  const cols = $(table).tHead.rows[0].cells.length;
  body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: cols, class: 'empty' }, empty))]));
}

// Refills a <select>, keeping its choice.
function choices(select, values, first) {
  const el = $(select);
  const keep = el.value;
  el.replaceChildren(...(first ? [h('option', { value: '' }, first)] : []),
    ...values.map((v) => h('option', { value: v }, v)));
  if ([...el.options].some((o) => o.value === keep)) el.value = keep;
}

function openDetail(title, ...content) {
  $('#detail-title').textContent = title;
  $('#detail-body').replaceChildren(...content);
  if (!$('#detail').open) $('#detail').showModal();
}

// ---- Overview -------------------------------------------------------------------------

async function loadInfo() {
  const info = await api('/info');
  state.info = info;
  $('#meta').textContent = `${info.spec} · ${info.address ? 'http://' + info.address : ''} · ${info.operations} operations`;
  const tenants = info.tenants.map((t) => t.tenant);
  choices('#record-tenant', tenants, 'all tenants');
  choices('#journal-tenant', tenants, 'all tenants');
  choices('#reset-tenant', tenants);
  const withRecords = info.resources.filter((r) => info.tenants.some((t) => t.records[r]));
  choices('#record-resource', withRecords.length ? withRecords : info.resources);
  // Until someone picks one, show a resource with a lifecycle: the most to watch.
  const lively = withRecords.find((r) => info.lifecycles[r]);
  if (!state.picked && lively) $('#record-resource').value = lively;
}

function overview() {
  const info = state.info;
  const dl = $('#info');
  const rows = [['API', info.title], ['Spec', info.spec], ['Address', info.address ? `http://${info.address}` : '—'],
    ['Operations', info.operations], ['Mode', info.stateless ? 'stateless' : 'stateful'], ['Tenants', info.tenants.length]];
  dl.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const used = info.resources.filter((r) => info.tenants.some((t) => t.records[r]));
  if (!info.tenants.length) {
    $('#counts').replaceChildren(h('p', { class: 'hint' }, 'No records yet: each credential the API sees becomes a tenant.'));
    return;
  }
  $('#counts').replaceChildren(h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Records per tenant' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tenant'), used.map((r) => h('th', { scope: 'col' }, r)))),
    h('tbody', {}, info.tenants.map((t) => h('tr', {}, h('th', { scope: 'row' }, t.tenant),
      used.map((r) => h('td', { class: 'num' }, t.records[r] || 0))))))));
}

// ---- Records --------------------------------------------------------------------------

// A few telling members: plain values, not ids, times, URLs or tokens.
function summary(body) {
  const dull = /(^id$|_id$|_at$|_url$|token|secret|^key$)/;
  return Object.entries(body).filter(([k, v]) => v !== null && typeof v !== 'object' && !dull.test(k)).slice(0, 4)
    .map(([k, v]) => `${k}: ${v}`).join(' · ');
}

async function records() {
  const resource = $('#record-resource').value;
  if (!resource) return fill('#records-table', [], 'No resources.');
  const tenant = $('#record-tenant').value;
  const q = $('#record-search').value.trim().toLowerCase();
  const list = await api(`/resources/${encodeURIComponent(resource)}${tenant ? '?tenant=' + encodeURIComponent(tenant) : ''}`);
  const rows = list.records.filter((r) => !q || JSON.stringify(r).toLowerCase().includes(q)).map((r) =>
    h('tr', {},
      h('td', {}, h('button', { type: 'button', class: 'link mono', onclick: () => openRecord(resource, r.id, r.tenant) }, r.id)),
      h('td', {}, r.tenant),
      h('td', {}, r.state === null || r.state === undefined ? '' : badge(r.state, 'state')),
      h('td', {}, summary(r.body))));
  fill('#records-table', rows, q ? 'No record matches.' : 'No records of this type.');
}

async function openRecord(resource, id, tenant) {
  try {
    const r = await api(`/resources/${encodeURIComponent(resource)}/${encodeURIComponent(id)}?tenant=${encodeURIComponent(tenant)}`);
    const parts = [h('p', {}, `Tenant ${r.tenant}`, r.parent ? ` · child of ${r.parent.resource} ${r.parent.id}` : '')];
    const l = r.lifecycle;
    if (l) {
      parts.push(h('h3', {}, 'Lifecycle'), h('p', {}, `${l.field}: `, badge(l.state, 'state'),
        l.entered_at ? ` since ${time(l.entered_at)}` : '', l.held ? ' (timed transitions held)' : '',
        l.scenario ? ` · scenario ${l.scenario}` : ''));
      const next = l.next.map((t) => h('li', {}, `→ ${t.to} `,
        t.due_at ? `at ${time(t.due_at)}` : t.on ? `on ${t.on}` : t.after !== null ? `${t.after} s after entering` : ''));
      if (next.length) parts.push(h('ul', {}, next));
    }
    parts.push(h('h3', {}, 'JSON'), h('pre', {}, pretty(r.body)));
    parts.push(h('h3', {}, `Events (${r.events.length})`), r.events.length ? h('ul', {}, r.events.map((e) =>
      h('li', {}, h('details', {}, h('summary', {}, `${time(e.created)} ${e.type}`), h('pre', {}, pretty(e.data))))))
      : h('p', { class: 'hint' }, 'No events name this record.'));
    openDetail(`${resource} ${id}`, ...parts);
  } catch (e) { say(e.message, true); }
}

// ---- Journal --------------------------------------------------------------------------

function reasonText(entry) {
  const r = entry.reason;
  if (!r) return entry.verdict;
  if (!r.errors.length) return `${entry.verdict}: ${r.detail}`;
  // Messages often open with the field's name already; say it once.
  const plain = (e) => (e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message);
  return `${entry.verdict}: ` + r.errors.map((e) => `${e.location} ${e.field}: ${plain(e)}`).join('; ');
}

async function journal() {
  const params = new URLSearchParams({ order: 'newest', limit: '200' });
  for (const [name, sel] of [['status', '#journal-status'], ['tenant', '#journal-tenant'], ['path', '#journal-path']]) {
    if ($(sel).value.trim()) params.set(name, $(sel).value.trim());
  }
  const { requests } = await api(`/journal?${params}`);
  const first = state.seen.size === 0;
  const rows = requests.map((e) => {
    const fresh = !first && !state.seen.has(e.id);
    state.seen.add(e.id);
    return h('tr', { class: fresh ? 'fresh' : null },
      h('td', { class: 'mono' }, clockTime(e.at)),
      h('td', {}, e.method),
      h('td', { class: 'wrap' }, h('button', { type: 'button', class: 'link mono', onclick: () => openRequest(e.id) }, e.path)),
      h('td', {}, e.operation || '—'),
      h('td', {}, e.tenant),
      h('td', {}, statusBadge(e.status)),
      h('td', { class: 'num' }, `${e.latency_ms.toFixed(1)} ms`),
      h('td', { class: e.reason ? 'reason' : null }, reasonText(e)));
  });
  fill('#journal-table', rows, 'No request matches.');
}

function message(title, m) {
  const headers = h('table', { 'aria-label': `${title} headers` }, h('tbody', {},
    m.headers.map(([k, v]) => h('tr', {}, h('th', { scope: 'row', class: 'mono' }, k), h('td', { class: 'mono' }, v)))));
  const body = m.body === null ? h('p', { class: 'hint' }, m.body_bytes ? `${m.body_bytes} bytes, not text` : 'No body.')
    : h('pre', {}, pretty(m.body) + (m.truncated ? `\n… (${m.body_bytes} bytes in all)` : ''));
  return [h('h3', {}, title), headers, body];
}

async function openRequest(id) {
  try {
    const { entry: e, exchange: x } = await api(`/journal/${encodeURIComponent(id)}`);
    const parts = [h('p', {}, statusBadge(e.status), ` ${e.method} ${e.path}${x.query ? '?' + x.query : ''} · `,
      `${e.operation || 'no operation'} · tenant ${e.tenant} · ${e.latency_ms.toFixed(1)} ms · ${time(e.at)}`)];
    if (e.reason) {
      parts.push(h('h3', {}, 'Why it was refused'), h('p', { class: 'reason' }, e.reason.detail));
      if (e.reason.errors.length) {
        parts.push(h('table', { 'aria-label': 'Field errors' },
          h('thead', {}, h('tr', {}, ['Location', 'Field', 'Problem'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, e.reason.errors.map((f) => h('tr', {}, h('td', {}, f.location), h('td', { class: 'mono' }, f.field), h('td', {}, f.message))))));
      }
    }
    openDetail(`${e.method} ${e.path} (${e.id})`, ...parts, ...message('Request', x.request), ...message('Response', x.response));
  } catch (err) { say(err.message, true); }
}

// ---- Events and webhooks --------------------------------------------------------------

function objectId(data) {
  const o = (data && data.object) || {};
  return o.id || Object.entries(o).filter(([k]) => k.endsWith('_id')).map(([, v]) => v)[0] || '';
}

async function events() {
  const [{ events: list }, { deliveries }] = await Promise.all([api('/events'), api('/webhooks/deliveries')]);
  fill('#events-table', list.map((e, i) => h('tr', {},
    h('td', { class: 'num' }, i + 1), h('td', { class: 'mono' }, clockTime(e.created)),
    h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => openDetail(`${e.type} ${e.id}`, h('pre', {}, pretty(e))) }, e.type)),
    h('td', {}, e.tenant), h('td', { class: 'mono' }, objectId(e.data)))), 'No events yet.');
  fill('#deliveries-table', deliveries.map((d) => h('tr', {},
    h('td', {}, d.event_type, h('br'), h('span', { class: 'mono' }, d.event_id)), h('td', { class: 'mono wrap' }, d.url),
    h('td', {}, badge(d.status, d.status === 'delivered' ? 's2' : d.status === 'failed' ? 's5' : '')),
    h('td', { class: 'num' }, `${d.attempts}/${d.max_attempts}`), h('td', {}, d.response_code ?? '—'),
    h('td', {}, d.last_error || ''),
    h('td', {}, h('button', { type: 'button', onclick: () => act(() => api(`/webhooks/deliveries/${encodeURIComponent(d.id)}/replay`, { method: 'POST' }), () => `Replay of ${d.event_type} queued`) }, 'Replay')))),
  'No deliveries: register a webhook target to get some.');
}

// ---- Controls -------------------------------------------------------------------------

async function controls() {
  const s = await api('/scenarios');
  fill('#presets-table', s.presets.map((p) => h('tr', {}, h('td', { class: 'mono' }, p.name), h('td', {}, statusBadge(p.status)), h('td', {}, p.message))), 'No error presets.');
  fill('#branches-table', s.lifecycle_branches.map((b) => h('tr', {}, h('td', { class: 'mono' }, b.scenarios.join(', ')), h('td', {}, b.resource),
    h('td', {}, `${b.field}: ${b.from.join(', ')} → ${b.to}`))), 'No lifecycle branches.');
}

// ---- Clock ----------------------------------------------------------------------------

function showClock(c) {
  $('#clock-time').textContent = time(c.now);
  $('#clock-mode').textContent = c.frozen ? 'Frozen: time moves only when advanced.' : `Running at ×${c.scale}.`;
  $('#clock-freeze').disabled = c.frozen;
  $('#clock-resume').disabled = !c.frozen;
}

function showDue(due, seconds) {
  const items = due.changed.map((c) => h('li', {}, `${c.resource} `, h('span', { class: 'mono' }, c.id), `: ${c.field} `,
    c.from ? `${c.from} → ` : 'new, ', badge(c.to, 'state')));
  $('#due').replaceChildren(h('p', {}, `After +${seconds} s: ${due.changed.length} record(s) moved, ${due.events.length} event(s).`),
    items.length ? h('ul', {}, items) : '', due.events.length ? h('ul', {}, due.events.map((e) => h('li', {}, e.type))) : '');
}

async function advance(seconds) {
  const body = JSON.stringify({ seconds });
  const r = await act(() => api('/clock/advance', { method: 'POST', body }), () => `Advanced ${seconds} s`);
  if (r) { showClock(r); showDue(r.due, seconds); }
}

// ---- Refresh and live updates ---------------------------------------------------------

const views = { overview, records, journal, events, controls };

async function refresh() {
  state.refreshed = Date.now();
  try {
    await loadInfo();
    await views[state.tab]();
  } catch (e) { say(e.message, true); }
}

function selectTab(tab) {
  for (const t of document.querySelectorAll('[role=tab]')) {
    const on = t === tab;
    t.setAttribute('aria-selected', on);
    t.tabIndex = on ? 0 : -1;
    $('#' + t.getAttribute('aria-controls')).hidden = !on;
  }
  state.tab = tab.id.replace('tab-', '');
  history.replaceState(null, '', `#${state.tab}`);
  refresh();
}

function live() {
  const source = new EventSource(`${ADMIN}/ui/stream`);
  source.addEventListener('open', () => { $('#live').textContent = 'live'; $('#live').className = 'live on'; });
  source.addEventListener('error', () => { $('#live').textContent = 'reconnecting…'; $('#live').className = 'live'; });
  source.addEventListener('change', (ev) => {
    const p = JSON.parse(ev.data);
    const before = state.pulse;
    state.pulse = p;
    showClock(p.clock);
    // A running clock ticks every second; refetch on it only now and then.
    const data = !before || ['journal', 'events'].some((k) => before[k] !== p[k]) ||
      JSON.stringify(before.deliveries) !== JSON.stringify(p.deliveries) || before.clock.frozen !== p.clock.frozen;
    const moved = before && before.clock.frozen && before.clock.now !== p.clock.now;
    if (data || moved || Date.now() - state.refreshed > 5000) refresh();
  });
}

function wire() {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => selectTab(t));
    t.addEventListener('keydown', (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next);
    });
  });
  $('#record-resource').addEventListener('change', () => { state.picked = true; });
  for (const sel of ['#record-tenant', '#record-resource', '#journal-status', '#journal-tenant']) $(sel).addEventListener('change', refresh);
  for (const sel of ['#record-search', '#journal-path']) $(sel).addEventListener('input', refresh);
  for (const form of document.querySelectorAll('form.filters')) form.addEventListener('submit', (e) => e.preventDefault());
  $('#clock-freeze').addEventListener('click', () => act(() => api('/clock/freeze', { method: 'POST' }), () => 'Clock frozen'));
  $('#clock-resume').addEventListener('click', () => act(() => api('/clock/resume', { method: 'POST' }), () => 'Clock running'));
  for (const b of document.querySelectorAll('[data-advance]')) b.addEventListener('click', () => advance(Number(b.dataset.advance)));
  $('#advance-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('#advance-amount').value.trim();
    const n = Number(text);
    // Not a number: send it as typed, and the server's refusal is shown.
    advance(text !== '' && Number.isFinite(n) ? n * Number($('#advance-unit').value) : text);
  });
  $('#reset-all').addEventListener('click', () => {
    if (confirm('Forget every tenant\'s records?')) act(() => api('/reset', { method: 'POST' }), () => 'All state reset');
  });
  $('#reset-tenant-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('#reset-tenant').value;
    act(() => api(`/reset?tenant=${encodeURIComponent(t)}`, { method: 'POST' }), () => `Tenant ${t} reset`);
  });
  $('#import-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = $('#import-file').files[0];
    if (!file) return say('Choose a state file first.', true);
    const text = await file.text();
    act(() => api('/state', { method: 'PUT', body: text, headers: { 'content-type': 'application/json' } }), () => `Imported ${file.name}`);
  });
}

wire();
// A tab named in the URL (`/__sandbox/ui#journal`) opens first.
const linked = document.getElementById(`tab-${location.hash.slice(1)}`);
if (linked) selectTab(linked); else refresh();
live();
