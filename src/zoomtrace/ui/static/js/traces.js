// The traces page: newest first, filtered and paged by the server, refreshed as records arrive.
import {api, watchPulse} from './api.js';
import {debounce, h, link} from './dom.js';
import {fmtAgo, fmtCount, fmtDuration, fmtTime, isoTime} from './format.js';
import {serviceColor} from './model.js';
import {navigate, setQuery, traceHref} from './nav.js';

const PAGE = 50;
const FIELDS = ['service', 'env', 'min', 'max', 'since', 'until', 'text'];

export {serviceColor};

export function renderTraces(main) {
  const params = new URLSearchParams(location.search);
  const state = {offset: Number(params.get('offset')) || 0, errors: params.get('errors') === '1'};
  const inputs = {};
  let seen = null; // trace ids on screen before a live refresh
  let destroyed = false;
  let loading = 0;

  const field = (name, label, placeholder, cls = 'mid', listId = null) => {
    const input = h('input', {type: 'text', name, placeholder, class: cls, value: params.get(name) || '', list: listId,
      'data-testid': `filter-${name}`, oninput: debounce(() => { state.offset = 0; load(); }, 350)});
    inputs[name] = input;
    return h('label', {class: ['field', name === 'text' && 'grow']}, h('span', null, label), input);
  };
  const services = h('datalist', {id: 'zt-services'});
  const envs = h('datalist', {id: 'zt-envs'});
  const errorsBox = h('input', {type: 'checkbox', checked: state.errors, 'data-testid': 'filter-errors',
    onchange: () => { state.errors = errorsBox.checked; state.offset = 0; load(); }});
  const form = h('form', {class: 'panel filters', onsubmit: (e) => { e.preventDefault(); state.offset = 0; load(); }},
    field('text', 'Text in messages and attributes', 'e.g. declined, order_id', 'wide'),
    field('service', 'Service', 'any', 'mid', 'zt-services'),
    field('env', 'Env', 'any', 'short', 'zt-envs'),
    field('min', 'Min duration', '100ms', 'short'),
    field('max', 'Max duration', '5s', 'short'),
    field('since', 'Since', '15m or 2025-01-31T10:00', 'mid'),
    field('until', 'Until', 'now', 'mid'),
    h('label', {class: 'check field'}, h('span', null, '\u00a0'), h('span', null, errorsBox, ' Errors only')),
    h('div', {class: 'field'}, h('span', null, '\u00a0'), h('div', {class: 'toolbar'},
      h('button', {class: 'btn primary', type: 'submit'}, 'Search'),
      h('button', {class: 'btn', type: 'button', onclick: () => {
        for (const i of Object.values(inputs)) i.value = '';
        errorsBox.checked = state.errors = false;
        state.offset = 0;
        load();
      }}, 'Clear'))),
    services, envs);

  const status = h('span', {class: 'muted', 'data-testid': 'traces-status'});
  const newer = h('button', {class: 'btn small', type: 'button', onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); }}, '← Newer');
  const older = h('button', {class: 'btn small', type: 'button', onclick: () => { state.offset += PAGE; load(); }}, 'Older →');
  const banner = h('div', {class: 'banner hidden'}, 'New traces have arrived.',
    h('button', {class: 'btn small primary', type: 'button', onclick: () => { state.offset = 0; load(); }}, 'Show newest'));
  const error = h('div', {class: 'error-box hidden', 'data-testid': 'error'});
  const tbody = h('tbody', {'data-testid': 'traces'});
  const table = h('table', {class: 'grid'},
    h('thead', null, h('tr', null, h('th', null, 'Started'), h('th', null, 'Root span'), h('th', null, 'Services'),
      h('th', null, 'Spans · logs · events'), h('th', null, 'Duration'), h('th', null, 'Trace'))),
    tbody);
  const empty = h('p', {class: 'empty hidden'});

  main.replaceChildren(
    h('div', {class: 'list-head'}, h('h1', null, 'Traces'), h('span', {class: 'muted'}, 'newest first'), status,
      h('span', {class: 'spacer'}), newer, older),
    form, banner, error,
    h('div', {class: 'list-head'}),
    table, empty,
    h('div', {class: 'pager'}, h('span', {class: 'muted'}, 'Pages are read from the store on demand.'), newer.cloneNode(true), older.cloneNode(true)));
  // The bottom pager's buttons act like the top ones.
  const [bottomNewer, bottomOlder] = main.querySelectorAll('.pager .btn');
  bottomNewer.addEventListener('click', () => newer.click());
  bottomOlder.addEventListener('click', () => older.click());

  function query() {
    const q = {limit: PAGE, offset: state.offset, errors: state.errors};
    for (const name of FIELDS) q[name] = inputs[name].value.trim();
    return q;
  }

  async function load({live = false} = {}) {
    const q = query();
    setQuery({...q, limit: null, offset: q.offset || null});
    const ticket = ++loading;
    let data;
    try {
      data = await api('/api/traces', q);
    } catch (err) {
      if (destroyed || ticket !== loading) return;
      error.textContent = err.message;
      error.classList.remove('hidden');
      return;
    }
    if (destroyed || ticket !== loading) return;
    error.classList.add('hidden');
    banner.classList.add('hidden');
    render(data, live);
  }

  function render(data, live) {
    const rows = data.traces;
    const before = seen;
    seen = new Set(rows.map((t) => t.trace_id));
    const maxDur = Math.max(1, ...rows.map((t) => t.duration_ns || 0));
    const svcNames = new Set([...services.children].map((o) => o.value));
    const envNames = new Set([...envs.children].map((o) => o.value));
    tbody.replaceChildren(...rows.map((t) => {
      for (const s of t.services || []) if (!svcNames.has(s)) { svcNames.add(s); services.append(h('option', {value: s})); }
      for (const e of t.envs || []) if (!envNames.has(e)) { envNames.add(e); envs.append(h('option', {value: e})); }
      const href = traceHref(t.trace_id);
      return h('tr', {
        class: [t.error && 'err', live && before && !before.has(t.trace_id) && 'fresh'],
        'data-testid': 'trace-row', 'data-trace': t.trace_id, 'data-error': t.error ? '1' : '0',
        onclick: (e) => { if (!e.target.closest('a')) navigate(href); },
      },
      h('td', {class: 'nowrap', title: isoTime(t.start_ns)}, h('div', null, fmtTime(t.start_ns)), h('div', {class: 'faint'}, fmtAgo(t.start_ns))),
      h('td', null, t.error ? h('span', {class: 'err-mark', title: 'this trace has an error'}, '✗ ') : null,
        link(href, {class: 'root-name'}, t.root_name || '(no root span)'),
        t.root_service ? h('div', {class: 'faint'}, t.root_service) : null),
      h('td', null, h('div', {class: 'services'}, (t.services || []).map((s) => h('span', {class: 'chip'},
        h('span', {class: 'dot', style: {background: serviceColor(s)}}), s)))),
      h('td', {class: 'counts'}, h('b', null, fmtCount(t.span_count)), ' · ', h('b', null, fmtCount(t.log_count)), ' · ',
        h('b', null, fmtCount(t.event_count))),
      h('td', null, h('div', {class: 'durcell'}, h('span', {class: 'mono nowrap'}, fmtDuration(t.duration_ns)),
        h('div', {class: 'durbar', style: {width: `${Math.max(2, (t.duration_ns / maxDur) * 90)}px`}}))),
      h('td', {class: 'mono faint'}, t.trace_id.slice(0, 12)));
    }));
    const from = data.offset + 1;
    const to = data.offset + rows.length;
    status.textContent = rows.length ? `${from}–${to}${data.has_more ? '' : ' (end)'}` : '';
    for (const b of [newer, bottomNewer]) b.disabled = data.offset === 0;
    for (const b of [older, bottomOlder]) b.disabled = !data.has_more;
    const filtered = state.errors || FIELDS.some((n) => inputs[n].value.trim());
    empty.textContent = filtered ? 'No trace matches these filters.'
      : 'No traces yet. Run instrumented code (or `zoomtrace demo`): they appear here as they are recorded.';
    empty.classList.toggle('hidden', rows.length > 0);
    table.classList.toggle('hidden', rows.length === 0);
  }

  const stopPulse = watchPulse(() => {
    if (state.offset === 0) load({live: true});
    else banner.classList.remove('hidden');
  });
  load();

  return () => { destroyed = true; stopPulse(); };
}
