// The detail panel: everything about the selected span or record — attributes, payload,
// error with frames, on_behalf_of, the code that produced it (at its commit, or the
// snapshot of the dirty file), the process that ran it, and the lineage of data events.
import {api} from './api.js';
import {locationHistory} from './changes.js';
import {h, link, svg} from './dom.js';
import {fmtDuration, fmtOffset, fmtTime, inline, isoTime, pretty, shortCommit, shortId, shortRecordId} from './format.js';
import {isError} from './model.js';
import {navigate, traceHref} from './nav.js';
import {badge, recordText} from './records.js';

const MAX_PRETTY = 200_000;

function kv(rows) {
  const body = rows.filter((r) => r && r[1] !== undefined && r[1] !== null && r[1] !== '')
    .map(([k, v, props]) => h('tr', props, h('td', null, k), h('td', null, v instanceof Node ? v : inline(v))));
  return body.length ? h('table', {class: 'kv'}, h('tbody', null, body)) : null;
}

function attrsTable(attrs) {
  const entries = attrs && typeof attrs === 'object' ? Object.entries(attrs) : [];
  if (!entries.length) return null;
  return [h('h3', null, 'Attributes'), kv(entries.map(([k, v]) => [k, typeof v === 'string' ? v : inline(v)]))];
}

function prettyBlock(title, value, testid) {
  if (value === undefined || value === null) return null;
  let text = pretty(value);
  const pre = h('pre', {class: 'json', 'data-testid': testid});
  if (text.length > MAX_PRETTY) {
    pre.textContent = `${text.slice(0, MAX_PRETTY)}\n… (${text.length.toLocaleString('en-US')} characters)`;
    text = null;
  } else {
    pre.textContent = text;
  }
  return [h('h3', null, title), pre];
}

export class Detail {
  /** ctx: {model, traceId, onSelectSpan(n), onSelectRecord(entry)} — model is null on a record's own page. */
  constructor(ctx) {
    this.ctx = ctx;
    this.seq = 0;
    this.el = h('aside', {class: 'panel detail', 'data-testid': 'detail'});
    this.handle = null;
    this.showEmpty();
    // The story page puts the panel in its grid right after making it: the handle goes beside it.
    queueMicrotask(() => this.mountHandle());
  }

  /** A resize handle before the panel, once the panel is in the story's grid. */
  mountHandle() {
    const grid = this.el.parentElement;
    if (this.handle || !grid || !grid.classList.contains('story-grid')) return;
    this.handle = resizeHandle(grid, this.el);
    this.el.before(this.handle);
  }

  showEmpty() {
    this.mountHandle();
    this.seq += 1;
    this.el.replaceChildren(h('p', {class: 'empty'}, 'Select a span, a marker or a record to see its attributes, payload, error, code and process.'));
  }

  // -- span ------------------------------------------------------------------------------

  showSpan(n) {
    this.mountHandle();
    const seq = ++this.seq;
    const s = n.s;
    const m = this.ctx.model;
    const node = m.nodesById.get(s.node_id);
    const dur = n.end - n.start;
    const status = s.status || 'ok';
    const parts = [];
    parts.push(h('div', {class: 'd-title'},
      h('span', {class: 'dot', style: {background: m.colors.get(n.service)}}),
      h('span', {class: 'name', 'data-testid': 'detail-title'}, s.name),
      h('span', {class: ['badge', status === 'ok' ? 'clean' : status === 'error' ? 'error' : 'warning']}, status)));
    parts.push(h('div', {class: 'muted'}, `span in ${n.service} · ${fmtDuration(dur)}${n.open ? ' (still open)' : ''}`));
    const linkButtons = [
      ...n.linksOut.map((f) => h('button', {class: 'linkish', type: 'button', onclick: () => this.ctx.onSelectSpan(f)}, `follows from ${f.s.name} (${shortId(f.id)})`)),
      ...n.external.map((l) => link(traceHref(l.trace_id, {span: l.span_id}), {class: 'xlink'}, `follows from ${shortId(l.span_id)} in trace ${shortId(l.trace_id)}`)),
      ...n.linksIn.map((t) => h('button', {class: 'linkish', type: 'button', onclick: () => this.ctx.onSelectSpan(t)}, `followed by ${t.s.name} (${shortId(t.id)})`)),
    ];
    const onCrit = (n.crit || []).reduce((acc, [a, b]) => acc + (b - a), 0);
    parts.push(h('h3', null, 'Span'), kv([
      ['start', `${fmtTime(n.start)}  (${fmtOffset(n.start - m.t0)})`, {title: isoTime(n.start)}],
      ['duration', fmtDuration(dur)],
      ['cpu', cpuText(s.cpu_ns, dur), {'data-testid': 'span-cpu'}],
      ['critical path', onCrit > 0 ? `${fmtDuration(onCrit)} of its own time` : null],
      ['thread', s.thread],
      ['on_behalf_of', s.on_behalf_of ?? inheritedBehalf(n), {'data-testid': 'on-behalf-of'}],
      ['span_id', s.span_id],
      ['record', s.id ? link(`/record/${encodeURIComponent(s.id)}`, {title: s.id, 'data-testid': 'span-record-id'}, s.id) : null],
      ['parent', n.parent ? h('button', {class: 'linkish', type: 'button', onclick: () => this.ctx.onSelectSpan(n.parent)}, `${n.parent.s.name} (${shortId(n.parent.id)})`) : (s.parent_span_id ? `${s.parent_span_id} (not recorded)` : 'root')],
      ['links', linkButtons.length ? h('div', null, linkButtons.map((b) => h('div', null, b))) : null],
      ['records', n.records.length ? `${n.records.length} (logs, events) in this span` : null],
    ]));
    parts.push(this.errorSection(s.error, s.node_id, s.code));
    parts.push(attrsTable(s.attrs));
    parts.push(this.codeSection(s.code, s.node_id, 'Code'));
    parts.push(this.locationSection(s, n.service, node));
    parts.push(this.nodeSection(node, s.node_id));
    this.el.replaceChildren(...parts.flat().filter(Boolean));
    this.el.scrollTop = 0;
    return seq;
  }

  /** The span's location (name, file, function) in every commit its service ran it: counts and durations. */
  locationSection(s, service, node) {
    if (!s.code || !s.code.file) return null;
    return [h('h3', null, 'This location in other commits'), locationHistory(s, service, node && node.commit)];
  }

  // -- record ----------------------------------------------------------------------------

  /** entry: a model record entry ({r, span, kind, ...}), or a bare record on its own page. */
  showRecord(entry) {
    this.mountHandle();
    const seq = ++this.seq;
    const r = entry.r;
    const m = this.ctx.model;
    const span = entry.span || null;
    const node = m ? m.nodesById.get(r.node_id) : null;
    const service = entry.service || (node && node.service) || '';
    const parts = [];
    parts.push(h('div', {class: 'd-title'}, badge(entry),
      h('span', {class: 'name', 'data-testid': 'detail-title'}, r.kind === 'log' ? (r.type || 'log') : r.type)));
    if (r.kind === 'log') parts.push(h('div', {class: 'd-message', 'data-testid': 'detail-message'}, r.message ?? ''));
    else if (r.kind !== 'event') parts.push(h('div', {class: 'd-message', 'data-testid': 'detail-message'}, recordText(entry)));
    const sources = (r.sources || []).map((id) => {
      const e = m && m.recordById.get(id);
      return h('div', null, e
        ? h('button', {class: 'linkish', type: 'button', title: id, 'data-testid': 'source', onclick: () => this.ctx.onSelectRecord(e)}, `${e.r.type} (${shortRecordId(id)})`)
        : link(`/record/${encodeURIComponent(id)}`, {title: id, 'data-testid': 'source'}, shortRecordId(id)));
    });
    parts.push(h('h3', null, 'Record'), kv([
      ['time', m ? `${fmtTime(r.ts_ns)}  (${fmtOffset(r.ts_ns - m.t0)})` : fmtTime(r.ts_ns), {title: isoTime(r.ts_ns)}],
      ['service', service],
      ['level', r.level],
      ['span', span ? h('button', {class: 'linkish', type: 'button', onclick: () => this.ctx.onSelectSpan(span)}, `${span.s.name} (${shortId(span.id)})`)
        : (r.span_id ? r.span_id : 'none (outside any span)')],
      ['trace', !m && r.trace_id ? link(traceHref(r.trace_id, {record: r.id}), null, r.trace_id) : null],
      ['on_behalf_of', r.on_behalf_of ?? (span ? span.s.on_behalf_of ?? inheritedBehalf(span) : null), {'data-testid': 'on-behalf-of'}],
      ['template', r.template && r.template !== r.message ? r.template : null],
      ['sources', sources.length ? h('div', null, sources) : null],
      ['thread', r.thread],
      ['id', r.id],
    ]));
    if (r.kind === 'event' || r.payload !== undefined && r.payload !== null) parts.push(prettyBlock('Payload', r.payload, 'payload'));
    parts.push(this.errorSection(r.error, r.node_id, r.code));
    parts.push(attrsTable(r.attrs));
    parts.push(this.codeSection(r.code, r.node_id, 'Code'));
    if (r.kind === 'event' || r.kind === 'raw' || (r.sources && r.sources.length)) parts.push(this.lineageSection(r));
    parts.push(this.nodeSection(node, r.node_id));
    this.el.replaceChildren(...parts.flat().filter(Boolean));
    this.el.scrollTop = 0;
    return seq;
  }

  // -- node ------------------------------------------------------------------------------

  nodeSection(node, nodeId) {
    if (!node) return nodeId ? [h('h3', null, 'Process'), kv([['node_id', nodeId]])] : null;
    return [h('h3', null, 'Process'), nodePanel(node)];
  }

  // -- error -----------------------------------------------------------------------------

  errorSection(error, nodeId, code) {
    if (!error) return null;
    const frames = error.frames || [];
    const holder = h('div', {'data-testid': 'frame-code'});
    const list = h('ol', {class: 'frames', 'data-testid': 'frames'}, frames.map((f, i) => {
      const li = h('li', {title: 'Show this frame\'s code', onclick: () => {
        for (const x of list.children) x.classList.remove('current');
        li.classList.add('current');
        const sameFile = code && code.file === f.file;
        holder.replaceChildren(codePanel({file: f.file, line: f.line, function: f.function,
          commit: sameFile ? code.commit : undefined, dirty: sameFile ? code.dirty : undefined}, nodeId));
      }}, h('span', null, `${f.file}:${f.line}`), h('span', {class: 'fn'}, f.function));
      return li;
    }));
    return [h('h3', null, 'Error'), h('div', {class: 'err-head', 'data-testid': 'error'}, `${error.type}: ${error.message}`),
      frames.length ? list : null, holder];
  }

  // -- code ------------------------------------------------------------------------------

  codeSection(code, nodeId, title) {
    if (!code || !code.file) return null;
    return [h('h3', null, title), codePanel(code, nodeId)];
  }

  // -- lineage ---------------------------------------------------------------------------

  lineageSection(r) {
    const holder = h('div', {class: 'lineage-holder', 'data-testid': 'lineage'}, h('p', {class: 'muted'}, 'Loading lineage…'));
    const seq = this.seq;
    api(`/api/lineage/${encodeURIComponent(r.id)}`).then((data) => {
      if (seq !== this.seq) return;
      holder.replaceChildren(lineageGraph(data, this.ctx));
    }).catch((err) => {
      if (seq !== this.seq) return;
      holder.replaceChildren(h('p', {class: 'muted'}, `Lineage unavailable: ${err.message}`));
    });
    return [h('h3', null, 'Lineage'), holder];
  }
}

// -- resizing the panel ----------------------------------------------------------------------

const WIDTH_KEY = 'zoomtrace.detail.width';
const MIN_WIDTH = 320;
const MIN_STORY = 560; // what the timeline and the record list keep at least (the list's fixed columns)
const HANDLE = 14; // the handle's column in .story-grid
const STEP = 40;

function savedWidth() {
  try {
    const w = Number(localStorage.getItem(WIDTH_KEY));
    return Number.isFinite(w) && w > 0 ? w : null;
  } catch {
    return null; // storage disabled
  }
}

function saveWidth(w) {
  try {
    if (w === null) localStorage.removeItem(WIDTH_KEY);
    else localStorage.setItem(WIDTH_KEY, String(Math.round(w)));
  } catch {
    // storage disabled: the width lasts as long as the page
  }
}

/**
 * The bar between the story and the detail panel: drag it, or focus it and press ← (wider) or
 * → (narrower), Shift for bigger steps, Home / End for the widest / narrowest; a double-click or
 * Enter gives back the default width. The width is remembered in localStorage.
 */
function resizeHandle(grid, panel) {
  const handle = h('div', {class: 'detail-resize', role: 'separator', tabindex: '0', 'aria-orientation': 'vertical',
    'aria-label': 'Resize the detail panel', 'data-testid': 'detail-resize',
    title: 'Drag to resize the detail panel (or focus it and use ← →); double-click for the default width'});
  const limits = () => [MIN_WIDTH, Math.max(MIN_WIDTH, grid.clientWidth - HANDLE - MIN_STORY)];
  const current = () => panel.getBoundingClientRect().width;
  const show = () => {
    const [lo, hi] = limits();
    handle.setAttribute('aria-valuemin', String(lo));
    handle.setAttribute('aria-valuemax', String(hi));
    handle.setAttribute('aria-valuenow', String(Math.round(current())));
  };
  const apply = (w) => {
    if (w === null) {
      grid.style.removeProperty('--detail-w');
    } else {
      const [lo, hi] = limits();
      // The CSS keeps it within the window when the window narrows later.
      grid.style.setProperty('--detail-w', `clamp(${MIN_WIDTH}px, ${Math.round(Math.min(hi, Math.max(lo, w)))}px, calc(100% - ${MIN_STORY + HANDLE}px))`);
    }
    show();
  };
  const set = (w) => { apply(w); saveWidth(w === null ? null : current()); };

  let drag = null;
  handle.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    handle.setPointerCapture(event.pointerId);
    drag = {x: event.clientX, width: current()};
    document.body.classList.add('resizing');
  });
  handle.addEventListener('pointermove', (event) => {
    if (drag) apply(drag.width + (drag.x - event.clientX));
  });
  const stop = () => {
    if (!drag) return;
    drag = null;
    document.body.classList.remove('resizing');
    saveWidth(current());
  };
  handle.addEventListener('pointerup', stop);
  handle.addEventListener('pointercancel', stop);
  handle.addEventListener('lostpointercapture', stop);
  handle.addEventListener('dblclick', () => set(null));
  handle.addEventListener('keydown', (event) => {
    const step = event.shiftKey ? STEP * 4 : STEP;
    const [lo, hi] = limits();
    const w = {ArrowLeft: current() + step, ArrowRight: current() - step, Home: hi, End: lo, Enter: null}[event.key];
    if (w === undefined) return;
    event.preventDefault();
    set(w);
  });
  apply(savedWidth());
  return handle;
}

/** A span's CPU time, never claimed above its wall time (see cpu_ns in docs/record.md). */
export function cpuText(cpu, dur) {
  if (cpu === undefined || cpu === null) return null;
  if (!(dur > 0)) return fmtDuration(cpu);
  // Since the CPU clock is read within the wall-clock interval, cpu_ns <= duration. Spans
  // recorded before that (the CPU time included the span's own bookkeeping) can say more.
  if (cpu > dur) return `all of its wall time (recorded ${fmtDuration(cpu)}, measured around the span's own bookkeeping by an older zoomtrace)`;
  return `${fmtDuration(cpu)} (${Math.min(100, Math.round((cpu / dur) * 100))}% of wall time)`;
}

function inheritedBehalf(n) {
  for (let p = n.parent; p; p = p.parent) if (p.s.on_behalf_of) return `${p.s.on_behalf_of} (from ${p.s.name})`;
  return null;
}

export function nodePanel(node) {
  const known = new Set(['node_id', 'service', 'env', 'group', 'grp', 'version', 'host', 'pid', 'commit', 'started_ns', 'stopped_ns',
    'stop_cause', 'branch', 'repos', 'attrs', 'argv', 'stop_error', 'lost']);
  const extras = Object.entries(node).filter(([k, v]) => !known.has(k) && v !== null && v !== undefined && typeof v !== 'object');
  return h('div', {'data-testid': 'node-panel'}, kv([
    ['service', node.service],
    ['host', node.host],
    ['pid', node.pid],
    ['version', node.version],
    ['env', node.env],
    ['group', node.group ?? node.grp],
    ['commit', node.commit ? h('span', {class: 'commit', title: node.commit}, shortCommit(node.commit)) : 'unknown (not in a git repository)'],
    ['branch', node.branch],
    ['started', node.started_ns ? fmtTime(node.started_ns) : null],
    ['stopped', node.stopped_ns ? fmtTime(node.stopped_ns) : 'still running (or no stop recorded)'],
    ['stop cause', node.stop_cause ? h('span', {class: `cause-${node.stop_cause}`}, node.stop_cause) : null],
    ['stop error', node.stop_error ? `${node.stop_error.type}: ${node.stop_error.message}` : null],
    ['lost records', node.lost ? inline(node.lost) : null],
    ...extras,
    ['node_id', node.node_id],
  ]));
}

// -- the code panel ------------------------------------------------------------------------

/** The source lines around code.line as they ran: loaded from /api/code. */
export function codePanel(code, nodeId) {
  const params = {file: code.file, line: code.line, node: nodeId, context: 14};
  if (code.commit) params.commit = code.commit;
  if (code.dirty !== undefined && code.dirty !== null) params.dirty = code.dirty ? '1' : '0';
  const fileLabel = h('span', {class: 'code-file', 'data-testid': 'code-file'}, code.file);
  const lineLabel = h('span', {class: 'mono', 'data-testid': 'code-line'}, String(code.line));
  const commitLabel = h('span', {class: 'commit', 'data-testid': 'code-commit', title: code.commit || 'no commit recorded'}, shortCommit(code.commit));
  const dirtyLabel = code.dirty === undefined ? h('span') : h('span', {class: ['badge', code.dirty ? 'dirty' : 'clean'], 'data-testid': 'code-dirty',
    title: code.dirty ? 'The file differed from the commit when it ran' : 'The file was as committed'}, code.dirty ? 'dirty' : 'clean');
  const origin = h('span', {class: 'muted'});
  const head = h('div', {class: 'code-head'}, fileLabel, h('span', {class: 'muted'}, ':'), lineLabel,
    code.function ? h('span', {class: 'muted mono'}, `in ${code.function}`) : null, h('span', {class: 'spacer'}),
    commitLabel, dirtyLabel, origin);
  const body = h('div', {class: 'code-body'}, h('div', {class: 'code-problem'}, 'Loading source…'));
  const panel = h('div', {class: 'code', 'data-testid': 'code-panel'}, head, body);
  api('/api/code', params).then((src) => {
    if (src.commit && !code.commit) {
      commitLabel.textContent = shortCommit(src.commit);
      commitLabel.title = src.commit;
    }
    if (code.dirty === undefined && src.dirty !== undefined) {
      dirtyLabel.replaceWith(h('span', {class: ['badge', src.dirty ? 'dirty' : 'clean'], 'data-testid': 'code-dirty'}, src.dirty ? 'dirty' : 'clean'));
    }
    origin.textContent = {git: 'from git', snapshot: 'snapshot as it ran', installed: 'installed package'}[src.origin] || '';
    const nodes = [];
    if (src.problem && src.lines.length) nodes.push(h('div', {class: 'code-note'}, src.problem));
    if (!src.lines.length) {
      nodes.push(h('div', {class: 'code-problem', 'data-testid': 'code-problem'}, src.problem || 'No source available.'));
      body.replaceChildren(...nodes);
      return;
    }
    let hit = null;
    src.lines.forEach((text, i) => {
      const n = src.start + i;
      const row = h('div', {class: ['code-line', n === code.line && 'hit'], 'data-line': n}, h('span', {class: 'ln'}, String(n)), h('span', {class: 'src'}, text));
      if (n === code.line) hit = row;
      nodes.push(row);
    });
    body.replaceChildren(...nodes);
    if (hit) requestAnimationFrame(() => { body.scrollTop = Math.max(0, hit.offsetTop - body.clientHeight / 2); });
  }).catch((err) => {
    body.replaceChildren(h('div', {class: 'code-problem', 'data-testid': 'code-problem'}, `Source unavailable: ${err.message}`));
  });
  return panel;
}

// -- the lineage graph ---------------------------------------------------------------------

/** Upstream sources on the left, the record in the middle, derived records on the right. */
export function lineageGraph(data, ctx) {
  const center = data.record;
  const up = new Map((data.upstream || []).map((r) => [r.id, r]));
  const down = new Map((data.downstream || []).map((r) => [r.id, r]));
  const all = new Map([...up, ...down, [center.id, center]]);

  // Depths by walking sources backwards (upstream) and forwards (downstream).
  const upDepth = new Map([[center.id, 0]]);
  let frontier = [center];
  while (frontier.length) {
    const next = [];
    for (const r of frontier) {
      for (const s of r.sources || []) {
        if (up.has(s) && !upDepth.has(s)) { upDepth.set(s, upDepth.get(r.id) + 1); next.push(up.get(s)); }
      }
    }
    frontier = next;
  }
  for (const id of up.keys()) if (!upDepth.has(id)) upDepth.set(id, 1);
  const downDepth = new Map([[center.id, 0]]);
  let changed = true;
  while (changed) {
    changed = false;
    for (const r of down.values()) {
      if (downDepth.has(r.id)) continue;
      const d = Math.min(...(r.sources || []).filter((s) => downDepth.has(s)).map((s) => downDepth.get(s)));
      if (Number.isFinite(d)) { downDepth.set(r.id, d + 1); changed = true; }
    }
  }
  for (const id of down.keys()) if (!downDepth.has(id)) downDepth.set(id, 1);

  const columns = [];
  const maxUp = Math.max(0, ...[...up.keys()].map((id) => upDepth.get(id)));
  const maxDown = Math.max(0, ...[...down.keys()].map((id) => downDepth.get(id)));
  for (let d = maxUp; d >= 1; d--) columns.push([d === maxUp ? 'sources' : '', [...up.values()].filter((r) => upDepth.get(r.id) === d)]);
  columns.push(['this', [center]]);
  for (let d = 1; d <= maxDown; d++) columns.push([d === 1 ? 'derived' : '', [...down.values()].filter((r) => downDepth.get(r.id) === d)]);

  const container = h('div', {class: 'lineage'});
  const boxes = new Map();
  for (const [title, records] of columns) {
    container.append(h('div', {class: 'lin-col'}, h('h4', null, title || '\u00a0'), records.map((r) => {
      const box = h('button', {class: ['lin-node', r.id === center.id && 'center'], type: 'button', 'data-testid': 'lineage-node',
        'data-record': r.id, title: `${r.kind} ${r.type} · ${r.id}`, onclick: () => openRecord(r, ctx)},
      h('span', {class: 't'}, r.type), h('span', {class: 's'}, h('span', {class: 'svc'}, serviceOf(r, ctx)), h('span', {class: 'rid', 'data-testid': 'short-id'}, shortRecordId(r.id))));
      boxes.set(r.id, box);
      return box;
    })));
  }
  if (all.size === 1) {
    container.append(h('p', {class: 'muted'}, 'No sources and nothing derived from it yet.'));
    return container;
  }
  const edges = svg('svg', {class: 'lin-edges', 'aria-hidden': 'true'});
  container.prepend(edges);
  const draw = () => {
    if (!container.isConnected) return;
    // Measured without the edges themselves: drawn for a wider panel, they would keep it scrolling.
    edges.setAttribute('width', '0');
    edges.setAttribute('height', '0');
    const base = container.getBoundingClientRect();
    edges.setAttribute('width', String(container.scrollWidth));
    edges.setAttribute('height', String(container.scrollHeight));
    edges.replaceChildren();
    for (const r of all.values()) {
      for (const s of r.sources || []) {
        const a = boxes.get(s);
        const b = boxes.get(r.id);
        if (!a || !b) continue;
        const ra = a.getBoundingClientRect();
        const rb = b.getBoundingClientRect();
        const x1 = ra.right - base.left + container.scrollLeft;
        const y1 = ra.top + ra.height / 2 - base.top;
        const x2 = rb.left - base.left + container.scrollLeft;
        const y2 = rb.top + rb.height / 2 - base.top;
        const mid = (x1 + x2) / 2;
        edges.append(svg('path', {d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}));
      }
    }
  };
  requestAnimationFrame(() => requestAnimationFrame(draw));
  new ResizeObserver(draw).observe(container);
  return container;
}

function serviceOf(r, ctx) {
  const node = ctx.model && ctx.model.nodesById.get(r.node_id);
  return node ? `${node.service} ·` : '';
}

function openRecord(r, ctx) {
  const entry = ctx.model && r.trace_id === ctx.traceId ? ctx.model.recordById.get(r.id) : null;
  if (entry) ctx.onSelectRecord(entry);
  else if (r.trace_id) navigate(traceHref(r.trace_id, {record: r.id}));
  else navigate(`/record/${encodeURIComponent(r.id)}`);
}

export {isError};
