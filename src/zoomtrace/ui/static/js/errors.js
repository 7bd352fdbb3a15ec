// The errors page: error groups by exception type, innermost application line and message template, most recently
// seen first, with the commit each first appeared in (docs/changes.md). Every value is rendered as text.
import {api, watchPulse} from './api.js';
import {h, link} from './dom.js';
import {fmtCount, fmtTime, isoTime, shortCommit} from './format.js';

/** A version as a chip: short commit, marked when the run was dirty. */
export function commitChip(commit, dirty) {
  return h('span', {class: 'nowrap'}, h('span', {class: 'commit', title: commit || 'no commit recorded'}, shortCommit(commit)),
    dirty ? [' ', h('span', {class: 'badge dirty', title: 'uncommitted changes in this run'}, 'dirty')] : null);
}

function seen(s) {
  return h('div', null, h('div', {class: 'nowrap', title: isoTime(s.ts_ns)}, fmtTime(s.ts_ns)),
    h('div', null, commitChip(s.commit, s.dirty), s.trace_id ? [' · ', link(`/trace/${encodeURIComponent(s.trace_id)}`, {'data-testid': 'seen-trace'}, 'trace')] : null));
}

/** The service and since filters of the errors and changes pages, kept in the address bar. */
export function filters(onChange) {
  const params = new URLSearchParams(location.search);
  const service = h('input', {type: 'search', placeholder: 'service', value: params.get('service') || '', 'data-testid': 'filter-service'});
  const since = h('input', {type: 'search', placeholder: 'since (15m, 1d, ISO)', value: params.get('since') || '', 'data-testid': 'filter-since'});
  const form = h('form', {class: 'filters', onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (service.value.trim()) next.set('service', service.value.trim());
    if (since.value.trim()) next.set('since', since.value.trim());
    history.replaceState(null, '', `${location.pathname}${next.toString() ? `?${next}` : ''}`);
    onChange();
  }}, service, since, h('button', {class: 'btn small', type: 'submit'}, 'Apply'));
  return {form, values: () => ({service: service.value.trim(), since: since.value.trim()})};
}

export function renderErrors(main) {
  let destroyed = false;
  const error = h('div', {class: 'error-box hidden', 'data-testid': 'error'});
  const tbody = h('tbody', {'data-testid': 'error-groups'});
  const columns = [['count', 'Count'], ['error', 'Error'], ['where', 'Where'], ['first', 'First seen'], ['last', 'Last seen']];
  const table = h('table', {class: 'grid errors-table'},
    h('thead', null, h('tr', null, columns.map(([, title]) => h('th', null, title)))), tbody);
  const empty = h('p', {class: 'empty hidden'}, 'No errors recorded.');
  const filter = filters(() => load());
  main.replaceChildren(h('div', {class: 'list-head'}, h('h1', null, 'Errors'),
    h('span', {class: 'muted'}, 'grouped by exception type, line and message template; most recent first'),
    h('span', {class: 'spacer'}), filter.form), error, table, empty);

  async function load() {
    let groups;
    try {
      groups = await api('/api/errors', filter.values());
    } catch (err) {
      if (destroyed) return;
      error.textContent = err.message;
      error.classList.remove('hidden');
      return;
    }
    if (destroyed) return;
    error.classList.add('hidden');
    tbody.replaceChildren(...groups.map((g) => h('tr', {'data-testid': 'error-group'},
      h('td', {class: 'num'}, h('b', null, fmtCount(g.count))),
      h('td', null, h('div', {class: 'err-head', 'data-testid': 'group-title'}, `${g.type || 'error log'}: ${g.template || g.message || ''}`),
        g.message && g.message !== g.template ? h('div', {class: 'faint one-line', title: g.message}, g.message) : null,
        g.new_in_commit ? h('span', {class: 'badge error new-in', 'data-testid': 'new-in', title: g.new_in_commit}, `new in ${shortCommit(g.new_in_commit)}`) : null),
      h('td', {class: 'mono'}, h('div', {'data-testid': 'group-where'}, `${g.location.file}:${g.location.line}`),
        h('div', {class: 'faint'}, g.location.function), h('div', {class: 'faint'}, g.services.join(', '))),
      h('td', null, seen(g.first_seen)),
      h('td', null, seen(g.last_seen)))));
    empty.classList.toggle('hidden', groups.length > 0);
    table.classList.toggle('hidden', groups.length === 0);
    main.dataset.ready = 'errors';
  }

  const stopPulse = watchPulse(() => load(), 4000);
  load();
  return () => { destroyed = true; stopPulse(); };
}
