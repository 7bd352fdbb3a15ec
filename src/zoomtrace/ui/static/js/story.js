// The story page: one trace as a waterfall, the chronological record list below it and the
// detail panel beside them. Selection is mirrored in the address (?span= / ?record=).
// The page reads the trace's outline (every span, no records) and draws the waterfall from it;
// records come by page as the record list scrolls and by span when a span is selected.
import {api, fetchOutline, watchPulse} from './api.js';
import {Detail, nodePanel} from './detail.js';
import {h, link} from './dom.js';
import {fmtDuration, fmtTime, isoTime, shortCommit} from './format.js';
import {buildModel, recordEntry, spanEntry} from './model.js';
import {navigate, setQuery, traceHref} from './nav.js';
import {Overview} from './overview.js';
import {RecordList} from './records.js';
import {SpanLoader} from './spanloader.js';
import {SpanRecords} from './spanrecords.js';
import {Waterfall} from './waterfall.js';

/** The overview's styles, in their own sheet (loaded once, with the first story). */
function overviewStyles() {
  if (document.querySelector('link[data-sheet=overview]')) return;
  document.head.append(h('link', {rel: 'stylesheet', href: '/static/overview.css', 'data-sheet': 'overview'}));
}

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

  overviewStyles();
  const loading = h('p', {class: 'empty', 'data-testid': 'loading'}, 'Reading the outline of the trace…');
  main.replaceChildren(loading);
  const started = performance.now();
  const clock = setInterval(() => {
    loading.textContent = `Reading the outline of the trace… ${((performance.now() - started) / 1000).toFixed(0)} s`;
  }, 1000);

  async function load() {
    const params = new URLSearchParams(location.search);
    let outline;
    try {
      outline = await fetchOutline(traceId);
      clearInterval(clock);
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
    view = buildView(main, outline, banner);
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

function buildView(main, outline, banner) {
  const t = performance.now();
  const model = buildModel(outline);
  const ctx = {model, traceId: model.traceId};
  const detail = new Detail(ctx);
  const loader = new SpanLoader(model);
  const spanRecords = new SpanRecords(model, {onSelectRecord: (e) => ctx.onSelectRecord(e)});
  let waterfall = null;
  let records = null;
  let selected = null; // the span, the record entry or the record id (while it is looked up) selected last

  /**
   * The span in the detail panel: at once from the outline, then its records as they arrive and the
   * whole panel again once its own record is read. Resolves when both are (or could not be).
   */
  function showSpan(n) {
    const hadRecords = n.recordsTotal !== null;
    const wasComplete = n.loaded;
    detail.showSpan(n);
    spanRecords.show(detail.el, n, {loading: !hadRecords});
    const listed = loader.records(n).then(() => {
      if (hadRecords || selected !== n) return;
      spanRecords.show(detail.el, n);
      waterfall.refresh(n);
    }, (err) => {
      if (err.name !== 'AbortError' && selected === n) spanRecords.show(detail.el, n, {error: err});
    });
    const own = loader.complete(n).then(() => {
      if (wasComplete || selected !== n) return;
      detail.showSpan(n);
      spanRecords.show(detail.el, n, {loading: n.recordsTotal === null});
    }, () => {}); // without it the panel keeps what the outline says
    return Promise.all([listed, own]);
  }

  ctx.onSelectSpan = (n, {scroll = true, updateUrl = true} = {}) => {
    selected = n;
    waterfall.select(n, {scroll});
    records.select(spanEntry(n), {scroll: false});
    // The record list scrolls to the span's line once the detail panel has what it waits for.
    showSpan(n).then(() => { if (scroll && selected === n) records.select(spanEntry(n)); });
    if (updateUrl) setQuery({span: n.id, record: null});
  };
  ctx.onSelectRecord = (e, {scroll = true, updateUrl = true, row = -1} = {}) => {
    selected = e;
    spanRecords.close();
    waterfall.select(e.span, {scroll: scroll && Boolean(e.span), record: e});
    records.select(e, {scroll, row});
    if (updateUrl) setQuery({record: e.r.id, span: null});
    if (!e.span) {
      detail.showRecord(e);
      return;
    }
    // Its span's records, to place it (and its neighbours) on the span's bar.
    loader.records(e.span).then(() => waterfall.refresh(e.span), () => {});
    // A record without on_behalf_of shows its span's: read the span's own record first.
    if (e.r.on_behalf_of || e.span.loaded) detail.showRecord(e);
    else {
      const show = () => { if (selected === e) detail.showRecord(e); };
      loader.complete(e.span).then(show, show);
    }
  };

  /** A record known only by its id (?record=, a link): found where the record list has it, else read alone. */
  async function selectRecordId(id) {
    const known = model.recordById.get(id);
    if (known) {
      ctx.onSelectRecord(known, {updateUrl: false});
      return;
    }
    selected = id;
    const row = await records.locate(id);
    let entry = model.recordById.get(id);
    try {
      if (!entry) entry = recordEntry(model, await api(`/api/record/${encodeURIComponent(id)}`));
    } catch (err) {
      if (selected === id) detail.el.replaceChildren(h('div', {class: 'error-box', 'data-testid': 'error'}, err.message));
      return;
    }
    if (selected !== id) return; // something else was selected meanwhile
    if (entry.kind === 'span') ctx.onSelectSpan(entry.span, {updateUrl: false});
    else ctx.onSelectRecord(entry, {updateUrl: false, row});
  }

  waterfall = new Waterfall(model, {onSelectSpan: (n) => ctx.onSelectSpan(n), onSelectRecord: (e) => ctx.onSelectRecord(e)});
  records = new RecordList(model, {onSelectSpan: (n) => ctx.onSelectSpan(n), onSelectRecord: (e, opts) => ctx.onSelectRecord(e, opts)});
  const overview = new Overview(model, waterfall);

  // -- header ----------------------------------------------------------------------------
  const root = model.span(longest(model, model.roots));
  const title = root ? root.s.name : '(no spans)';
  const c = model.counts;
  const nodes = model.nodes;
  const legend = h('div', {class: 'legend', 'data-testid': 'legend'}, model.services.map((svc) => {
    const runs = nodes.filter((n) => (n.service || '?') === svc);
    return h('span', {class: 'chip', title: runs.map((n) => `${n.host} pid ${n.pid} @${shortCommit(n.commit)}`).join('\n')},
      h('span', {class: 'dot', style: {background: model.colors.get(svc)}}), svc);
  }));
  const processes = h('div', {class: 'legend'}, h('span', {class: 'muted'}, 'Processes:'), nodes.map((n) => h('button', {
    class: 'chip linkish', type: 'button', 'data-testid': 'node-chip', title: 'Show this process',
    onclick: () => {
      selected = null;
      spanRecords.close();
      detail.seq += 1;
      detail.el.replaceChildren(h('div', {class: 'd-title'}, h('span', {class: 'dot', style: {background: model.colors.get(n.service || '?')}}),
        h('span', {class: 'name'}, `${n.service} · pid ${n.pid}`)), h('h3', null, 'Process'), nodePanel(n),
      h('p', null, link('/nodes', null, 'All process runs →')));
    }}, h('span', {class: 'dot', style: {background: model.colors.get(n.service || '?')}}),
  `${n.service} · ${n.host} · pid ${n.pid} · ${shortCommit(n.commit)}${n.stop_cause ? ` · ${n.stop_cause}` : ''}`)));
  const copyBtn = h('button', {class: 'btn small', type: 'button', title: 'Copy the trace id', onclick: () => {
    navigator.clipboard?.writeText(model.traceId).then(() => { copyBtn.textContent = 'Copied'; setTimeout(() => { copyBtn.textContent = 'Copy id'; }, 1200); }).catch(() => {});
  }}, 'Copy id');
  const head = h('div', {class: 'story-head'},
    h('div', {class: 'story-title'},
      h('div', null, link('/', {class: 'muted'}, '← Traces')),
      h('h1', {'data-testid': 'story-title'}, title),
      h('div', {class: 'tid'}, h('span', {class: 'mono', 'data-testid': 'trace-id'}, model.traceId), ' ', copyBtn),
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
      overview.destroy();
      loader.close();
      spanRecords.close();
      delete main.dataset.ready;
    },
    applyQuery(params) {
      const spanId = params.get('span');
      const recordId = params.get('record');
      if (recordId) {
        selectRecordId(recordId);
      } else if (spanId && model.spanById(spanId)) {
        ctx.onSelectSpan(model.spanById(spanId), {updateUrl: false});
      } else if (root) {
        // Nothing asked for: show the root span without moving anything.
        selected = root;
        waterfall.select(root, {scroll: false});
        showSpan(root);
      }
    },
  };
}

/** The longest of these rows' spans (-1 for none). */
function longest(model, rows) {
  let best = -1;
  for (const i of rows) if (best < 0 || model.end[i] - model.start[i] > model.end[best] - model.start[best]) best = i;
  return best;
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
