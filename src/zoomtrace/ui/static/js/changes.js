// The changes page: per service, each commit against the one that ran before it — slower locations, error rates,
// new errors — with the slowest traces before and after side by side (docs/changes.md). And, for a span's detail,
// the same location in every commit that ran it.
import {api, watchPulse} from './api.js';
import {h, link} from './dom.js';
import {fmtCount, fmtDuration, fmtTime, shortCommit} from './format.js';
import {commitChip, filters} from './errors.js';

const KINDS = {latency: 'slower', errors: 'more errors', new_error: 'new error', improved: 'improved'};

function version(side) {
  return side.dirty ? `${side.commit}-dirty` : side.commit;
}

function rate(side) {
  return side.error_rate === null || side.error_rate === undefined ? '–' : `${(side.error_rate * 100).toFixed(1)}%`;
}

function change(f) {
  if (f.kind === 'new_error') {
    const e = f.error || {};
    return h('div', null, h('div', {class: 'err-head'}, `${e.type || 'error log'}: ${e.template || ''}`),
      h('div', {class: 'faint'}, `line ${e.line} · ×${fmtCount(f.after.count)} in the later commit`));
  }
  const p = f.p_value === null ? '' : `p = ${Number(f.p_value).toPrecision(2)}`;
  if ((f.measure || f.kind) === 'latency') {
    return h('div', null, `p95 ${fmtDuration(f.before.p95_ns)} → ${fmtDuration(f.after.p95_ns)}`,
      h('div', {class: 'faint'}, `p50 ${fmtDuration(f.before.p50_ns)} → ${fmtDuration(f.after.p50_ns)} · ×${f.factor} · ${p}`));
  }
  return h('div', null, `errors ${rate(f.before)} → ${rate(f.after)}`, h('div', {class: 'faint'}, `of ${fmtCount(f.before.count)} → ${fmtCount(f.after.count)} spans · ${p}`));
}

function sampleList(title, spans) {
  return h('div', {class: 'sample-col'}, h('h4', null, title), spans.length
    ? h('ol', null, spans.map((s) => h('li', null, link(`/trace/${encodeURIComponent(s.trace_id)}?span=${encodeURIComponent(s.span_id)}`,
      {'data-testid': 'sample-trace'}, fmtDuration(s.duration_ns)), h('span', {class: 'faint'}, `  ${fmtTime(s.ts_ns)}${s.status === 'error' ? ' · error' : ''}`))))
    : h('p', {class: 'muted'}, 'none'));
}

function samplesButton(service, f) {
  const holder = h('div', {class: 'samples', 'data-testid': 'samples'});
  const button = h('button', {class: 'btn small', type: 'button', 'data-testid': 'show-samples', onclick: async () => {
    button.disabled = true;
    try {
      const data = await api('/api/location/samples', {service, span: f.location.span, file: f.location.file,
        function: f.location.function, before: version(f.before), after: version(f.after)});
      holder.replaceChildren(h('div', {class: 'sample-cols'},
        sampleList(`before · ${shortCommit(f.before.commit)}`, data.before), sampleList(`after · ${shortCommit(f.after.commit)}`, data.after)));
    } catch (err) {
      holder.replaceChildren(h('p', {class: 'muted'}, err.message));
    }
  }}, 'Slowest traces before and after');
  return [button, holder];
}

function serviceSection(s, thresholds) {
  const chain = s.commits.map((c, i) => [i ? ' → ' : '', h('span', {class: 'commit-card', 'data-testid': 'commit'},
    commitChip(c.commit, c.dirty), h('span', {class: 'faint'}, ` ${fmtCount(c.records)} records from ${fmtTime(c.first_seen_ns)}`))]);
  const rows = s.findings.map((f) => h('tr', {'data-testid': 'finding', 'data-kind': f.kind},
    h('td', null, h('span', {class: ['badge', f.kind === 'improved' ? 'clean' : 'error']}, KINDS[f.kind] || f.kind),
      f.measure ? h('div', {class: 'faint'}, f.measure) : null),
    h('td', {class: 'mono'}, h('div', {'data-testid': 'finding-span'}, f.location.span || '–'),
      h('div', {class: 'faint', 'data-testid': 'finding-where'}, `${f.location.file} · ${f.location.function}`)),
    h('td', null, commitChip(f.before.commit, f.before.dirty), ' → ', h('span', {'data-testid': 'finding-after'}, commitChip(f.after.commit, f.after.dirty))),
    h('td', null, change(f), f.kind === 'new_error' || !f.location.span ? null : samplesButton(s.service, f))));
  return h('section', {class: 'service-changes', 'data-testid': 'service-changes', 'data-service': s.service},
    h('h2', null, s.service), h('div', {class: 'commit-chain'}, chain),
    rows.length ? h('table', {class: 'grid changes-table'},
      h('thead', null, h('tr', null, ['What', 'Where', 'Commits', 'Change'].map((t) => h('th', null, t)))), h('tbody', null, rows))
      : h('p', {class: 'muted'}, s.commits.length > 1 ? 'No change found.' : 'One commit ran: nothing to compare.'),
    s.too_few_samples ? h('p', {class: 'faint'}, `${s.too_few_samples} location(s) not judged: fewer than ${thresholds.min_samples} spans on a side.`) : null);
}

export function renderChanges(main) {
  let destroyed = false;
  const error = h('div', {class: 'error-box hidden', 'data-testid': 'error'});
  const body = h('div', {'data-testid': 'changes'});
  const filter = filters(() => load());
  main.replaceChildren(h('div', {class: 'list-head'}, h('h1', null, 'Changes'),
    h('span', {class: 'muted'}, 'per service, each commit against the one before'), h('span', {class: 'spacer'}), filter.form), error, body);

  async function load() {
    let data;
    try {
      data = await api('/api/changes', filter.values());
    } catch (err) {
      if (destroyed) return;
      error.textContent = err.message;
      error.classList.remove('hidden');
      return;
    }
    if (destroyed) return;
    error.classList.add('hidden');
    body.replaceChildren(...(data.services.length ? data.services.map((s) => serviceSection(s, data.thresholds))
      : [h('p', {class: 'empty'}, 'No service ran with a known commit: run your services from a git repository.')]));
    main.dataset.ready = 'changes';
  }

  const stopPulse = watchPulse(() => load(), 4000);
  load();
  return () => { destroyed = true; stopPulse(); };
}

/** "This location in other commits": a span location's count, error rate and durations per version. */
export function locationHistory(span, service, current) {
  const holder = h('div', {'data-testid': 'location-history'}, h('p', {class: 'muted'}, 'Loading…'));
  const code = span.code || {};
  api('/api/location', {span: span.name ?? span.type, file: code.file, function: code.function, service}).then((versions) => {
    holder.replaceChildren(versions.length ? h('table', {class: 'grid small'},
      h('thead', null, h('tr', null, ['Commit', 'Spans', 'Errors', 'p50', 'p95'].map((t) => h('th', null, t)))),
      h('tbody', null, versions.map((v) => h('tr', {'data-testid': 'location-version', class: v.commit === current ? 'current' : null},
        h('td', null, commitChip(v.commit, v.dirty)), h('td', {class: 'num'}, fmtCount(v.count)), h('td', {class: 'num'}, rate(v)),
        h('td', {class: 'num'}, fmtDuration(v.p50_ns)), h('td', {class: 'num'}, fmtDuration(v.p95_ns))))))
      : h('p', {class: 'muted'}, 'Its process ran without a known commit.'));
  }).catch((err) => holder.replaceChildren(h('p', {class: 'muted'}, err.message)));
  return holder;
}
