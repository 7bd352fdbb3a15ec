// The nodes page: every process run, newest first, on a shared timeline; which commits ran where.
import {api, watchPulse} from './api.js';
import {h} from './dom.js';
import {fmtCount, fmtDuration, fmtTime, isoTime, shortCommit, shortRecordId} from './format.js';
import {serviceColor} from './model.js';

const PAGE = 200;

/** The node's own repositories with the files that differed from their commit when it started. */
function dirtyRepos(n) {
  return (n.repos || []).filter((r) => r && Array.isArray(r.dirty) && r.dirty.length);
}

const SHOWN = 200;

/** Date and time, each kept whole: on a narrow page the time goes under the date. */
function when(ns) {
  const [date, time] = fmtTime(ns).split(' ');
  return [h('span', {class: 'nowrap'}, date), ' ', h('span', {class: 'nowrap'}, time)];
}

/** One line of a cell, cut with an ellipsis when too long: the whole value on hover. */
function oneLine(text, cls) {
  return h('div', {class: ['one-line', cls], title: text}, text);
}

/** "dirty N" for a run whose files differed from their commit, opening to the list of them; nothing for a clean run. */
function dirtyFiles(n) {
  const repos = dirtyRepos(n);
  if (!repos.length) return null;
  const several = repos.length > 1;
  const files = repos.flatMap((r) => r.dirty.map((f) => ({root: String(r.root), file: String(f)})));
  const label = (f) => (several ? `${f.root.split('/').pop()}: ${f.file}` : f.file);
  const hover = files.slice(0, 40).map(label).join('\n') + (files.length > 40 ? `\n… ${files.length - 40} more` : '');
  return h('details', {class: 'dirty-files', 'data-testid': 'node-dirty'},
    h('summary', {class: 'badge dirty', title: `Differed from the commit when this process started:\n${hover}`}, `dirty ${files.length}`),
    h('ul', null, files.slice(0, SHOWN).map((f) => h('li', {title: `${f.root}/${f.file}`}, label(f))),
      files.length > SHOWN ? h('li', {class: 'faint'}, `… ${files.length - SHOWN} more`) : null));
}

export function renderNodes(main) {
  let destroyed = false;
  let offset = 0;
  const error = h('div', {class: 'error-box hidden', 'data-testid': 'error'});
  const commits = h('div', {class: 'commits', 'data-testid': 'commits'});
  const tbody = h('tbody', {'data-testid': 'nodes'});
  const status = h('span', {class: 'muted'});
  const newer = h('button', {class: 'btn small', type: 'button', onclick: () => { offset = Math.max(0, offset - PAGE); load(); }}, '← Newer');
  const older = h('button', {class: 'btn small', type: 'button', onclick: () => { offset += PAGE; load(); }}, 'Older →');
  // Fixed column widths: however long a service, host, branch or version, the table fits the page.
  const columns = [['service', 'Service'], ['host', 'Host · pid'], ['commit', 'Commit'], ['version', 'Version · env'],
    ['started', 'Started'], ['stopped', 'Stopped · cause'], ['run', 'Run'], ['records', 'Records']];
  const table = h('table', {class: 'grid nodes-table'},
    h('colgroup', null, columns.map(([key]) => h('col', {class: `c-${key}`}))),
    h('thead', null, h('tr', null, columns.map(([, title]) => h('th', {title}, title)))), tbody);
  const empty = h('p', {class: 'empty hidden'}, 'No process has recorded anything yet.');
  main.replaceChildren(
    h('div', {class: 'list-head'}, h('h1', null, 'Nodes'), h('span', {class: 'muted'}, 'process runs, newest first'), status,
      h('span', {class: 'spacer'}), newer, older),
    error, h('h3', null, 'Commits and where they ran'), commits, table, empty);

  async function load() {
    let data;
    try {
      data = await api('/api/nodes', {limit: PAGE, offset});
    } catch (err) {
      if (destroyed) return;
      error.textContent = err.message;
      error.classList.remove('hidden');
      return;
    }
    if (destroyed) return;
    error.classList.add('hidden');
    render(data);
  }

  function render(data) {
    const nodes = data.nodes;
    const now = Date.now() * 1e6;
    const starts = nodes.map((n) => n.started_ns).filter(Boolean);
    const t0 = Math.min(...starts);
    const t1 = Math.max(...nodes.map((n) => n.stopped_ns || now));
    const span = Math.max(1, t1 - t0);

    // Which commits ran where.
    const byCommit = new Map();
    for (const n of nodes) {
      const key = n.commit || '';
      if (!byCommit.has(key)) byCommit.set(key, new Map());
      const where = byCommit.get(key);
      const label = `${n.service}@${n.host}${dirtyRepos(n).length ? ' (dirty)' : ''}`;
      where.set(label, (where.get(label) || 0) + 1);
    }
    commits.replaceChildren(...[...byCommit].map(([commit, where]) => h('div', {class: 'commit-card'},
      h('div', null, h('span', {class: 'commit', title: commit || 'no commit recorded'}, commit ? shortCommit(commit) : 'no commit')),
      h('div', {class: 'where'}, [...where].map(([label, count]) => `${label}${count > 1 ? ` ×${count}` : ''}`).join(', ')))));

    tbody.replaceChildren(...nodes.map((n) => {
      const start = n.started_ns || t0;
      const stop = n.stopped_ns || now;
      const cause = n.stop_cause || (n.stopped_ns ? 'stopped' : 'running');
      const counts = [['records', n.record_count], ['spans', n.span_count], ['logs', n.log_count], ['events', n.event_count],
        ['errors', n.error_count]].filter(([, v]) => v !== undefined && v !== null);
      const envGroup = [n.env, n.group ?? n.grp].filter(Boolean).join(' · ');
      return h('tr', {'data-testid': 'node-row', 'data-node': n.node_id},
        h('td', null, h('span', {class: 'chip', title: n.service}, h('span', {class: 'dot', style: {background: serviceColor(n.service)}}),
          h('span', {class: 'service'}, n.service)),
        h('div', {class: 'faint mono', title: n.node_id, 'data-testid': 'short-id'}, shortRecordId(n.node_id))),
        h('td', {class: 'mono'}, oneLine(n.host), oneLine(String(n.pid), 'faint')),
        h('td', null, h('span', {class: 'commit', title: n.commit || 'no commit recorded'}, shortCommit(n.commit)),
          ' ', dirtyFiles(n), n.branch ? oneLine(n.branch, 'faint') : null),
        h('td', null, oneLine(n.version || '–'), envGroup ? oneLine(envGroup, 'faint') : null),
        h('td', {title: isoTime(n.started_ns)}, when(n.started_ns)),
        h('td', {title: n.stopped_ns ? isoTime(n.stopped_ns) : null}, n.stopped_ns ? when(n.stopped_ns) : '–',
          oneLine(cause === 'exit' ? 'normal exit' : cause, `cause-${cause}`)),
        h('td', null, h('div', {class: 'tl', title: `${fmtDuration(stop - start)}`},
          h('div', {style: {left: `${((start - t0) / span) * 100}%`, width: `${Math.max(0.5, ((stop - start) / span) * 100)}%`,
            background: serviceColor(n.service)}})), h('div', {class: 'faint mono'}, fmtDuration(stop - start))),
        h('td', {class: 'counts'}, counts.length
          ? counts.map(([k, v], i) => [i ? ' · ' : '', h('span', {class: 'nowrap'}, h('b', null, fmtCount(v)), ` ${k}`)]) : '–'));
    }));
    status.textContent = nodes.length ? `${data.offset + 1}–${data.offset + nodes.length}` : '';
    newer.disabled = data.offset === 0;
    older.disabled = !data.has_more;
    empty.classList.toggle('hidden', nodes.length > 0);
    table.classList.toggle('hidden', nodes.length === 0);
  }

  const stopPulse = watchPulse(() => { if (offset === 0) load(); }, 4000);
  load();
  return () => { destroyed = true; stopPulse(); };
}
