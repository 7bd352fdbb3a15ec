// The waterfall: one row per span, nested by parent, a bar per span on a shared time axis,
// a colour per service, log/event markers on the bars, follows-from arrows and the
// critical path. Rows are virtualised, so a trace of 200,000 spans draws ~60 rows at a time.
// A span's markers are placed once its records are loaded (when it is selected); until then a
// dotted rug above its bar says it has records, red when some are errors.
import {debounce, h, svg} from './dom.js';
import {fmtDuration} from './format.js';
import {findSpans, isError, levelNo, recordEntry, visibleRows} from './model.js';
import {VirtualList} from './vlist.js';

const ROW = 24;
const MAX_INDENT = 40;
const MAX_MARKERS = 120;
const CRIT_GAP = 0.1; // percent of the axis

/**
 * A span's critical-path segments as drawn (percent of the axis): those in view, and those less
 * than CRIT_GAP apart merged, so a root waiting on 40,000 children in turn draws a few hundred.
 */
function critBars(crit, x) {
  const out = [];
  for (const [a, b] of crit || []) {
    const xa = Math.max(x(a), -1);
    const xb = Math.min(x(b), 101);
    if (xb < xa) continue;
    const last = out[out.length - 1];
    if (last && xa - last[1] < CRIT_GAP) last[1] = Math.max(last[1], xb);
    else out.push([xa, xb]);
  }
  return out;
}

export class Waterfall {
  constructor(model, {onSelectSpan, onSelectRecord}) {
    this.model = model;
    this.onSelectSpan = onSelectSpan;
    this.onSelectRecord = onSelectRecord;
    this.collapsed = new Set(); // rows (span indexes) whose subtree is folded
    this.selected = null;
    this.selectedRecord = null;
    this.matches = new Set(); // span indexes highlighted by find
    this.matchList = [];
    this.matchAt = -1;
    this.w0 = model.t0;
    this.w1 = model.t1;
    this.onView = null; // called with (rowsChanged) when the rows, the scroll position or the time window change
    this.build();
    this.setRows();
  }

  build() {
    const m = this.model;
    this.findInput = h('input', {type: 'search', placeholder: 'Find span or service…', class: 'wf-find', size: 22,
      oninput: debounce(() => this.find(this.findInput.value), 50),
      onkeydown: (e) => { if (e.key === 'Enter') { e.preventDefault(); this.nextMatch(e.shiftKey ? -1 : 1); } }});
    this.findCount = h('span', {class: 'muted'});
    this.critBtn = h('button', {class: 'btn small on', type: 'button', title: 'Highlight the critical path: what the trace waited for',
      onclick: () => this.toggleCrit()}, 'Critical path');
    this.zoomLabel = h('span', {class: 'muted mono'});
    this.resetZoomBtn = h('button', {class: 'btn small hidden', type: 'button', onclick: () => this.setWindow(m.t0, m.t1)}, 'Reset zoom');
    this.toolbar = h('div', {class: 'panel-head toolbar'},
      h('h2', null, 'Timeline'),
      h('span', {class: 'muted'}, `${m.count.toLocaleString('en-US')} spans · ${m.services.length} services`),
      h('span', {class: 'spacer'}),
      this.findInput, this.findCount,
      this.critBtn,
      h('button', {class: 'btn small', type: 'button', onclick: () => this.expandAll()}, 'Expand all'),
      h('button', {class: 'btn small', type: 'button', onclick: () => this.collapseAll()}, 'Collapse all'),
      this.zoomLabel, this.resetZoomBtn);
    this.ruler = h('div', {class: 'wf-ruler'});
    this.header = h('div', {class: 'wf-header'},
      h('div', {class: 'lh', title: 'Click a span for its details; double-click to zoom the time axis to it'}, 'Span · service'),
      this.ruler);
    this.body = h('div', {class: 'vscroll wf-body', tabindex: 0, onkeydown: (e) => this.onKey(e)});
    this.el = h('section', {class: 'panel wf', 'data-testid': 'waterfall'}, this.toolbar, this.header, this.body);
    this.list = new VirtualList(this.body, {rowHeight: ROW, render: (i) => this.renderRow(i),
      onRange: (a, b) => { this.drawLinks(a, b); this.viewChanged(false); }});
    this.list.spacer.append(h('div', {class: 'wf-grid'}));
    this.links = svg('svg', {class: 'wf-links', 'aria-hidden': 'true'});
    this.list.spacer.append(this.links);
    this.resize = new ResizeObserver(() => { this.alignRuler(); this.list.invalidate(); });
    this.resize.observe(this.body);
    this.drawRuler();
  }

  destroy() {
    this.list.destroy();
    this.resize.disconnect();
  }

  /** Add a tool: a button at the end of the toolbar and a panel between it and the rows. */
  attach(button, panel) {
    this.toolbar.append(button);
    this.header.before(panel);
  }

  viewChanged(rowsChanged) {
    if (this.onView) this.onView(rowsChanged);
  }

  /** What is in view: the rows (fractional indexes) and the time window. */
  view() {
    return {first: this.body.scrollTop / ROW, count: this.body.clientHeight / ROW, rows: this.rows.length, w0: this.w0, w1: this.w1};
  }

  /** Scroll so that row i (fractional) is in the middle of the view. */
  centerRow(i) {
    this.body.scrollTop = Math.max(0, i * ROW - this.body.clientHeight / 2);
  }

  // -- rows ------------------------------------------------------------------------------

  setRows() {
    this.rows = visibleRows(this.model, this.collapsed);
    // Short traces get a short timeline; long ones scroll inside a capped height.
    this.body.style.setProperty('height', `${Math.min(this.rows.length * ROW + 2, Math.max(240, Math.min(window.innerHeight * 0.62, 720)))}px`);
    this.rowOf = new Int32Array(this.model.count).fill(-1);
    this.rows.forEach((k, i) => { this.rowOf[k] = i; });
    this.list.setCount(this.rows.length);
    this.alignRuler();
    this.viewChanged(true);
  }

  /** The row of a span, or undefined when it is hidden under a collapsed parent. */
  rowIndex(n) {
    const i = this.rowOf[n.index];
    return i < 0 ? undefined : i;
  }

  /** Draw a span's row again (its records were loaded). */
  refresh(n) {
    const i = this.rowIndex(n);
    if (i !== undefined) this.list.refreshRow(i);
  }

  x(ns) {
    return ((ns - this.w0) / (this.w1 - this.w0)) * 100;
  }

  renderRow(i) {
    const m = this.model;
    const n = m.span(this.rows[i]);
    const color = m.colors.get(n.service);
    const collapsed = this.collapsed.has(n.index);
    const crit = n.crit;
    const row = h('div', {
      class: ['wf-row', n === this.selected && 'selected', n.error && 'error', n.s.status === 'interrupted' && 'interrupted',
        crit && crit.length && 'on-crit', this.matches.has(n.index) && 'match'],
      'data-span': n.id,
      'data-depth': n.depth,
      'data-testid': 'span-row',
      onclick: () => this.onSelectSpan(n),
      ondblclick: () => this.zoomTo(n),
    });
    const toggle = h('button', {
      class: ['wf-toggle', !n.descendants && 'leaf'], type: 'button', tabindex: -1,
      title: collapsed ? 'Expand' : 'Collapse', 'aria-expanded': String(!collapsed),
      onclick: (e) => { e.stopPropagation(); this.toggle(n); },
    }, collapsed ? '▸' : '▾');
    const label = h('div', {class: 'wf-label', style: {'padding-left': `${6 + Math.min(n.depth, MAX_INDENT) * 14}px`}},
      toggle,
      n.depth > MAX_INDENT ? h('span', {class: 'wf-depth', title: `nesting depth ${n.depth}`}, `${n.depth}`) : null,
      h('span', {class: 'dot', style: {background: color}}),
      h('span', {class: 'wf-name', title: n.s.name}, n.s.name),
      n.error ? h('span', {class: 'err-mark', title: n.s.status === 'error' ? 'failed' : 'has an error'}, '✗') : null,
      h('span', {class: 'wf-svc'}, n.service),
      n.external.length ? h('span', {class: 'xlink', title: 'follows from a span in another trace'}, '↪') : null,
      collapsed && n.descendants ? h('span', {class: 'wf-kids'}, `+${n.descendants}`) : null);
    const track = h('div', {class: 'wf-track'});
    const left = this.x(n.start);
    const width = Math.max(0, this.x(n.end) - left);
    track.append(h('div', {class: 'wf-bar', style: {left: `${left}%`, width: `${width}%`, background: color},
      title: `${n.s.name} · ${fmtDuration(n.end - n.start)}${n.s.status && n.s.status !== 'ok' ? ` · ${n.s.status}` : ''}`}));
    for (const [a, b] of critBars(crit, (ns) => this.x(ns))) {
      track.append(h('div', {class: 'wf-crit', style: {left: `${a}%`, width: `${Math.max(0, b - a)}%`}}));
    }
    this.renderMarkers(n, track);
    const right = left + width;
    const dur = h('span', {class: 'wf-dur'}, n.open ? `${fmtDuration(n.end - n.start)}+` : fmtDuration(n.end - n.start));
    if (right < 82) dur.style.setProperty('left', `calc(${Math.max(right, 0)}% + 6px)`);
    else if (left > 18) dur.style.setProperty('right', `calc(${100 - left}% + 6px)`);
    else {
      dur.classList.add('inside');
      dur.style.setProperty('left', `calc(${Math.max(left, 0)}% + 6px)`);
    }
    track.append(dur);
    row.append(label, track);
    return row;
  }

  renderMarkers(n, track) {
    const records = n.records;
    if (n.recordsTotal === null ? n.logs + n.events > 0 : records.length < n.recordsTotal) this.renderRug(n, track);
    if (!records.length) return;
    // At most one marker per 0.25% of the axis, the most severe one wins; capped per row.
    const buckets = new Map();
    for (const r of records) {
      const x = this.x(r.ts_ns);
      if (x < -1 || x > 101) continue;
      const key = Math.round(x * 4);
      const rank = (isError(r) ? 100 : 0) + levelNo(r.level) + (r.kind === 'event' ? 5 : 0);
      const prev = buckets.get(key);
      if (!prev || rank > prev.rank || (this.selectedRecord && r.id === this.selectedRecord.r.id)) buckets.set(key, {r, x, rank});
      if (buckets.size >= MAX_MARKERS) break;
    }
    for (const {r, x} of buckets.values()) {
      const level = (r.level || '').toLowerCase();
      const text = r.kind === 'log' ? `${r.level || 'LOG'} ${r.message ?? ''}` : `${r.kind} ${r.type}`;
      track.append(h('span', {
        class: ['wf-mark', `k-${r.kind}`, level && `lvl-${level}`, r.error && 'has-error',
          this.selectedRecord && this.selectedRecord.r.id === r.id && 'selected'],
        style: {left: `${x}%`}, title: text, 'data-record': r.id,
        onclick: (e) => { e.stopPropagation(); this.onSelectRecord(recordEntry(this.model, r)); },
      }));
    }
  }

  /** Records not placed yet: a dotted line above the bar, red when some of them are errors. */
  renderRug(n, track) {
    const left = Math.max(0, this.x(n.start));
    const right = Math.min(100, this.x(n.end));
    if (right < 0 || left > 100) return;
    const what = [n.logs && `${n.logs.toLocaleString('en-US')} logs`, n.events && `${n.events.toLocaleString('en-US')} events`,
      n.errors && `${n.errors.toLocaleString('en-US')} errors`].filter(Boolean).join(', ');
    track.append(h('div', {class: ['wf-rug', n.errors && 'has-error'], style: {left: `${left}%`, width: `${Math.max(0, right - left)}%`},
      title: `${what}: select the span to place them on its bar`}));
  }

  drawLinks(first, last) {
    const el = this.links;
    el.replaceChildren();
    if (!this.model.links.length) return;
    const labelW = this.labelWidth();
    const width = Math.max(10, this.body.clientWidth - labelW);
    el.setAttribute('width', String(width));
    el.setAttribute('height', String(this.rows.length * ROW));
    el.append(svg('defs', null, svg('marker', {id: 'zt-arrow', viewBox: '0 0 8 8', refX: '7', refY: '4', markerWidth: '7',
      markerHeight: '7', orient: 'auto-start-reverse'}, svg('path', {d: 'M0,0 L8,4 L0,8 z', fill: '#6d28d9'}))));
    const px = (ns) => (this.x(ns) / 100) * width;
    for (const {from, to} of this.model.links) {
      const a = this.rowIndex(from);
      const b = this.rowIndex(to);
      if (a === undefined || b === undefined) continue;
      if (Math.max(a, b) < first || Math.min(a, b) > last) continue;
      const x1 = px(from.end);
      const y1 = a * ROW + ROW / 2;
      const x2 = px(to.start);
      const y2 = b * ROW + ROW / 2;
      const bend = Math.max(18, Math.min(60, Math.abs(y2 - y1) / 2));
      const d = `M${x1.toFixed(1)},${y1} C${(x1 + bend).toFixed(1)},${y1} ${(x2 - bend).toFixed(1)},${y2} ${x2.toFixed(1)},${y2}`;
      el.append(svg('path', {d, 'marker-end': 'url(#zt-arrow)', 'data-from': from.id, 'data-to': to.id},
        svg('title', null, `${to.s.name} follows from ${from.s.name}`)));
    }
  }

  /** Keep the ruler over the bars when the rows have a scrollbar. */
  alignRuler() {
    this.header.style.setProperty('padding-right', `${Math.max(0, this.body.offsetWidth - this.body.clientWidth)}px`);
  }

  labelWidth() {
    const v = parseFloat(getComputedStyle(this.el).getPropertyValue('--label-w'));
    return Number.isFinite(v) ? v : 360;
  }

  drawRuler() {
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    const span = this.w1 - this.w0;
    this.ruler.replaceChildren(...ticks.map((f) => h('div', {class: ['wf-tick', f === 1 && 'last'],
      style: f === 1 ? {right: '0'} : {left: `${f * 100}%`}}, fmtDuration(this.w0 - this.model.t0 + f * span))));
    const zoomed = this.w0 !== this.model.t0 || this.w1 !== this.model.t1;
    this.resetZoomBtn.classList.toggle('hidden', !zoomed);
    this.zoomLabel.textContent = zoomed ? `window ${fmtDuration(span)}` : '';
  }

  // -- interaction -----------------------------------------------------------------------

  setWindow(a, b) {
    if (b <= a) b = a + 1000;
    this.w0 = a;
    this.w1 = b;
    this.drawRuler();
    this.list.invalidate();
    this.viewChanged(false);
  }

  zoomTo(n) {
    const pad = Math.max((n.end - n.start) * 0.05, 500);
    this.setWindow(n.start - pad, n.end + pad);
  }

  toggle(n) {
    if (this.collapsed.has(n.index)) this.collapsed.delete(n.index);
    else this.collapsed.add(n.index);
    this.setRows();
  }

  expandAll() {
    this.collapsed.clear();
    this.setRows();
  }

  collapseAll() {
    for (let i = 0; i < this.model.count; i++) if (this.model.descendants[i]) this.collapsed.add(i);
    this.setRows();
  }

  toggleCrit() {
    const on = !this.critBtn.classList.contains('on');
    this.critBtn.classList.toggle('on', on);
    this.el.classList.toggle('no-crit', !on);
  }

  /** Make n visible (expanding its ancestors) and scroll to it. */
  reveal(n) {
    let changed = false;
    for (let p = this.model.parent[n.index]; p >= 0; p = this.model.parent[p]) {
      if (this.collapsed.delete(p)) changed = true;
    }
    if (changed) this.setRows();
    const i = this.rowIndex(n);
    if (i !== undefined) this.list.scrollTo(i);
  }

  select(n, {scroll = true, record = null} = {}) {
    const old = this.selected;
    const oldRecord = this.selectedRecord;
    this.selected = n;
    this.selectedRecord = record;
    if (n && scroll) this.reveal(n);
    for (const s of new Set([old, n, oldRecord && oldRecord.span, record && record.span])) {
      if (s) this.refresh(s);
    }
  }

  /** Highlight the spans whose name or service contains text, and select the first one. */
  find(text) {
    const found = findSpans(this.model, text);
    this.highlight(found, text.trim() ? `${found.length.toLocaleString('en-US')} found` : '');
  }

  /** Highlight these spans (indexes, in this order for Enter / Shift+Enter) and select the first one. */
  highlight(spans, label) {
    this.matches = new Set(spans);
    this.matchList = spans;
    this.matchAt = -1;
    this.findCount.textContent = label;
    this.list.invalidate();
    if (this.matchList.length) this.nextMatch(1);
  }

  /** Show a search of the find box (as when typed) without running it. */
  setFindText(text) {
    this.findInput.value = text;
  }

  nextMatch(step) {
    if (!this.matchList.length) return;
    this.matchAt = (this.matchAt + step + this.matchList.length) % this.matchList.length;
    const n = this.model.span(this.matchList[this.matchAt]);
    this.reveal(n);
    this.onSelectSpan(n);
  }

  onKey(e) {
    if (!this.selected || !['ArrowDown', 'ArrowUp', 'ArrowLeft', 'ArrowRight'].includes(e.key)) return;
    e.preventDefault();
    const i = this.rowIndex(this.selected) ?? 0;
    if (e.key === 'ArrowDown' && i + 1 < this.rows.length) this.onSelectSpan(this.model.span(this.rows[i + 1]));
    else if (e.key === 'ArrowUp' && i > 0) this.onSelectSpan(this.model.span(this.rows[i - 1]));
    else if (e.key === 'ArrowLeft') {
      if (this.selected.descendants && !this.collapsed.has(this.selected.index)) this.toggle(this.selected);
      else if (this.selected.parent) this.onSelectSpan(this.selected.parent);
    } else if (e.key === 'ArrowRight' && this.collapsed.has(this.selected.index)) this.toggle(this.selected);
  }
}
