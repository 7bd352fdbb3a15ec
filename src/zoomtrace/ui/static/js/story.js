// The story page: one trace as a waterfall, the chronological record list below it and the
// detail panel beside them. Selection is mirrored in the address (?span= / ?record=).
import {api, watchPulse} from './api.js';
import {Detail, nodePanel} from './detail.js';
import {h, link} from './dom.js';
import {fmtDuration, fmtTime, isoTime, shortCommit} from './format.js';
import {buildModel} from './model.js';
import {navigate, setQuery, traceHref} from './nav.js';
import {RecordList} from './records.js';
import {Waterfall} from './waterfall.js';

function stat(label, value, testid, bad = false) {
  return h('div', {class: ['stat', bad && 'bad'], 'data-testid': testid},
    h('div', {class: 'n'}, value.toLocaleString('en-US')), h('div', {class: 'l'}, label));
}

export function renderStory(main, traceId) {
  let view = null;
  let destroyed = false;
  let stale = false;
  const banner = h('div', {class: 'banner hidden', 'data-testid': 'story-updated'},
    'New records have arrived in the store since this story was loaded.',
    h('button', {class: 'btn small primary', type: 'button', onclick: () => load()}, 'Reload story'));

  const loading = h('p', {class: 'empty', 'data-testid': 'loading'}, 'Reading the story from the store…');
  main.replaceChildren(loading);
  const started = performance.now();
  const clock = setInterval(() => {
    loading.textContent = `Reading the story from the store… ${((performance.now() - started) / 1000).toFixed(0)} s`;
  }, 1000);

  async function load() {
    const params = new URLSearchParams(location.search);
    let story;
    try {
      story = await api(`/api/trace/${encodeURIComponent(traceId)}`);
      clearInterval(clock);
      if (!view) {
        loading.textContent = 'Laying out the story…';
        await new Promise((resolve) => { setTimeout(resolve, 0); }); // let the message paint
      }
    } catch (err) {
      clearInterval(clock);
      if (destroyed) return;
      main.replaceChildren(h('div', {class: 'error-box', 'data-testid': 'error'}, err.message),
        h('p', null, link('/', null, '← all traces')));
      return;
    }
    if (destroyed) return;
    if (view) view.destroy();
    stale = false;
    banner.classList.add('hidden');
    view = buildView(main, story, banner);
    view.applyQuery(params);
  }

  const stopPulse = watchPulse(() => {
    if (view && !stale) {
      stale = true;
      banner.classList.remove('hidden');
    }
  }, 3000);
  load();

  return {
    cleanup() {
      destroyed = true;
      clearInterval(clock);
      stopPulse();
      if (view) view.destroy();
    },
    onQuery(params) {
      if (view) view.applyQuery(params);
    },
  };
}

function buildView(main, story, banner) {
  const t = performance.now();
  const model = buildModel(story);
  const ctx = {model, traceId: story.trace_id};
  const detail = new Detail(ctx);
  let waterfall = null;
  let records = null;

  ctx.onSelectSpan = (n, {scroll = true, updateUrl = true} = {}) => {
    waterfall.select(n, {scroll});
    records.select(n.entry, {scroll});
    detail.showSpan(n);
    if (updateUrl) setQuery({span: n.id, record: null});
  };
  ctx.onSelectRecord = (e, {scroll = true, updateUrl = true} = {}) => {
    if (e.span) waterfall.select(e.span, {scroll, record: e});
    else waterfall.select(null, {scroll: false, record: e});
    records.select(e, {scroll});
    detail.showRecord(e);
    if (updateUrl) setQuery({record: e.r.id, span: null});
  };

  waterfall = new Waterfall(model, {onSelectSpan: (n) => ctx.onSelectSpan(n), onSelectRecord: (e) => ctx.onSelectRecord(e)});
  records = new RecordList(model, {onSelectSpan: (n) => ctx.onSelectSpan(n), onSelectRecord: (e) => ctx.onSelectRecord(e)});

  // -- header ----------------------------------------------------------------------------
  const root = model.roots.slice().sort((a, b) => (b.end - b.start) - (a.end - a.start))[0];
  const title = root ? root.s.name : '(no spans)';
  const c = model.counts;
  const nodes = story.nodes || [];
  const legend = h('div', {class: 'legend', 'data-testid': 'legend'}, model.services.map((svc) => {
    const runs = nodes.filter((n) => (n.service || '?') === svc);
    return h('span', {class: 'chip', title: runs.map((n) => `${n.host} pid ${n.pid} @${shortCommit(n.commit)}`).join('\n')},
      h('span', {class: 'dot', style: {background: model.colors.get(svc)}}), svc);
  }));
  const processes = h('div', {class: 'legend'}, h('span', {class: 'muted'}, 'Processes:'), nodes.map((n) => h('button', {
    class: 'chip linkish', type: 'button', 'data-testid': 'node-chip', title: 'Show this process',
    onclick: () => {
      detail.seq += 1;
      detail.el.replaceChildren(h('div', {class: 'd-title'}, h('span', {class: 'dot', style: {background: model.colors.get(n.service || '?')}}),
        h('span', {class: 'name'}, `${n.service} · pid ${n.pid}`)), h('h3', null, 'Process'), nodePanel(n),
      h('p', null, link('/nodes', null, 'All process runs →')));
    }}, h('span', {class: 'dot', style: {background: model.colors.get(n.service || '?')}}),
  `${n.service} · ${n.host} · pid ${n.pid} · ${shortCommit(n.commit)}${n.stop_cause ? ` · ${n.stop_cause}` : ''}`)));
  const copyBtn = h('button', {class: 'btn small', type: 'button', title: 'Copy the trace id', onclick: () => {
    navigator.clipboard?.writeText(story.trace_id).then(() => { copyBtn.textContent = 'Copied'; setTimeout(() => { copyBtn.textContent = 'Copy id'; }, 1200); }).catch(() => {});
  }}, 'Copy id');
  const head = h('div', {class: 'story-head'},
    h('div', {class: 'story-title'},
      h('div', null, link('/', {class: 'muted'}, '← Traces')),
      h('h1', {'data-testid': 'story-title'}, title),
      h('div', {class: 'tid'}, h('span', {class: 'mono', 'data-testid': 'trace-id'}, story.trace_id), ' ', copyBtn),
      h('div', {class: 'muted', title: isoTime(model.t0)}, `${fmtTime(model.t0)} · ${fmtDuration(model.t1 - model.t0)}`),
      legend, processes),
    h('div', {class: 'stats'},
      stat('spans', c.spans, 'stat-spans'), stat('logs', c.log, 'stat-logs'), stat('events', c.event, 'stat-events'),
      c.raw ? stat('raw', c.raw, 'stat-raw') : null, stat('errors', c.errors, 'stat-errors', c.errors > 0),
      stat('processes', nodes.length, 'stat-nodes')));

  const grid = h('div', {class: 'story-grid'},
    h('div', {class: 'story-left'}, waterfall.el, records.el),
    detail.el);
  main.replaceChildren(banner, head, grid);
  waterfall.list.update(true);
  records.list.update(true);
  main.dataset.renderMs = String(Math.round(performance.now() - t));
  main.dataset.ready = 'story';

  return {
    model,
    destroy() {
      waterfall.destroy();
      records.destroy();
      delete main.dataset.ready;
    },
    applyQuery(params) {
      const spanId = params.get('span');
      const recordId = params.get('record');
      if (recordId && model.recordById.has(recordId)) {
        ctx.onSelectRecord(model.recordById.get(recordId), {updateUrl: false});
      } else if (spanId && model.byId.has(spanId)) {
        ctx.onSelectSpan(model.byId.get(spanId), {updateUrl: false});
      } else if (root) {
        // Nothing asked for: show the root span without moving anything.
        waterfall.select(root, {scroll: false});
        detail.showSpan(root);
      }
    },
  };
}

/** A record's own page: records in a trace open in their story; others are shown alone. */
export function renderRecordPage(main, recordId) {
  let destroyed = false;
  main.replaceChildren(h('p', {class: 'empty'}, 'Loading the record…'));
  api(`/api/record/${encodeURIComponent(recordId)}`).then((r) => {
    if (destroyed) return;
    if (r.trace_id) {
      navigate(traceHref(r.trace_id, {record: r.id}), {replace: true});
      return;
    }
    const detail = new Detail({model: null, traceId: null, onSelectSpan: () => {}, onSelectRecord: () => {}});
    detail.showRecord({r, kind: r.kind, span: null, service: ''});
    main.replaceChildren(h('div', null, link('/', {class: 'muted'}, '← Traces')), h('h1', null, `${r.kind} ${r.type}`),
      h('p', {class: 'muted'}, 'This record belongs to no trace.'), h('div', {class: 'record-page'}, detail.el));
  }).catch((err) => {
    if (destroyed) return;
    main.replaceChildren(h('div', {class: 'error-box', 'data-testid': 'error'}, err.message), h('p', null, link('/', null, '← all traces')));
  });
  return () => { destroyed = true; };
}
