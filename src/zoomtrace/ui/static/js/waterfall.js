// The waterfall: one row per span, nested by parent, a bar per span on a shared time axis,
// a colour per service, log/event markers on the bars, follows-from arrows and the
// critical path. Rows are virtualised, so a trace of 20,000 spans draws ~60 rows at a time.
import {debounce, h, svg} from './dom.js';
import {fmtDuration} from './format.js';
import {isError, levelNo, visibleRows} from './model.js';
import {VirtualList} from './vlist.js';

const ROW = 24;
const MAX_INDENT = 40;
const MAX_MARKERS = 120;

export class Waterfall {
  constructor(model, {onSelectSpan, onSelectRecord}) {
    this.model = model;
    this.onSelectSpan = onSelectSpan;
    this.onSelectRecord = onSelectRecord;
    this.collapsed = new Set();
    this.selected = null;
    this.selectedRecord = null;
    this.matches = new Set();
    this.matchList = [];
    this.matchAt = -1;
    this.w0 = model.t0;
    this.w1 = model.t1;
    this.build();
    this.setRows();
  }

  build() {
    const m = this.model;
    this.findInput = h('input', {type: 'search', placeholder: 'Find span or service…', class: 'wf-find', size: 22,
      oninput: debounce(() => this.find(this.findInput.value), 150),
      onkeydown: (e) => { if (e.key === 'Enter') { e.preventDefault(); this.nextMatch(e.shiftKey ? -1 : 1); } }});
    this.findCount = h('span', {class: 'muted'});
    this.critBtn = h('button', {class: 'btn small on', type: 'button', title: 'Highlight the critical path: what the trace waited for',
      onclick: () => this.toggleCrit()}, 'Critical path');
    this.zoomLabel = h('span', {class: 'muted mono'});
    this.resetZoomBtn = h('button', {class: 'btn small hidden', type: 'button', onclick: () => this.setWindow(m.t0, m.t1)}, 'Reset zoom');
    const toolbar = h('div', {class: 'panel-head toolbar'},
      h('h2', null, 'Timeline'),
      h('span', {class: 'muted'}, `${m.spans.length.toLocaleString('en-US')} spans · ${m.services.length} services`),
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
    this.el = h('section', {class: 'panel wf', 'data-testid': 'waterfall'}, toolbar, this.header, this.body);
    this.list = new VirtualList(this.body, {rowHeight: ROW, render: (i) => this.renderRow(i),
      onRange: (a, b) => this.drawLinks(a, b)});
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

  // -- rows ------------------------------------------------------------------------------

  setRows() {
    this.rows = visibleRows(this.model, this.collapsed);
    // Short traces get a short timeline; long ones scroll inside a capped height.
    this.body.style.setProperty('height', `${Math.min(this.rows.length * ROW + 2, Math.max(240, Math.min(window.innerHeight * 0.62, 720)))}px`);
    this.rowIndex = new Map();
    this.rows.forEach((n, i) => this.rowIndex.set(n, i));
    this.list.setCount(this.rows.length);
    this.alignRuler();
  }

  x(ns) {
    return ((ns - this.w0) / (this.w1 - this.w0)) * 100;
  }

  renderRow(i) {
    const n = this.rows[i];
    const m = this.model;
    const color = m.colors.get(n.service);
    const collapsed = this.collapsed.has(n.id);
    const row = h('div', {
      class: ['wf-row', n === this.selected && 'selected', n.error && 'error', n.s.status === 'interrupted' && 'interrupted',
        n.crit && n.crit.length && 'on-crit', this.matches.has(n) && 'match'],
      'data-span': n.id,
      'data-depth': n.depth,
      'data-testid': 'span-row',
      onclick: () => this.onSelectSpan(n),
      ondblclick: () => this.zoomTo(n),
    });
    const toggle = h('button', {
      class: ['wf-toggle', !n.children.length && 'leaf'], type: 'button', tabindex: -1,
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
    for (const [a, b] of n.crit || []) {
      const ca = this.x(a);
      track.append(h('div', {class: 'wf-crit', style: {left: `${ca}%`, width: `${Math.max(0, this.x(b) - ca)}%`}}));
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
        onclick: (e) => { e.stopPropagation(); const entry = this.model.recordById.get(r.id); if (entry) this.onSelectRecord(entry); },
      }));
    }
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
      const a = this.rowIndex.get(from);
      const b = this.rowIndex.get(to);
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
  }

  zoomTo(n) {
    const pad = Math.max((n.end - n.start) * 0.05, 500);
    this.setWindow(n.start - pad, n.end + pad);
  }

  toggle(n) {
    if (this.collapsed.has(n.id)) this.collapsed.delete(n.id);
    else this.collapsed.add(n.id);
    this.setRows();
  }

  expandAll() {
    this.collapsed.clear();
    this.setRows();
  }

  collapseAll() {
    for (const n of this.model.spans) if (n.children.length) this.collapsed.add(n.id);
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
    for (let p = n.parent; p; p = p.parent) {
      if (this.collapsed.delete(p.id)) changed = true;
    }
    if (changed) this.setRows();
    const i = this.rowIndex.get(n);
    if (i !== undefined) this.list.scrollTo(i);
  }

  select(n, {scroll = true, record = null} = {}) {
    const old = this.selected;
    const oldRecord = this.selectedRecord;
    this.selected = n;
    this.selectedRecord = record;
    if (n && scroll) this.reveal(n);
    for (const s of new Set([old, n, oldRecord && oldRecord.span])) {
      const i = s ? this.rowIndex.get(s) : undefined;
      if (i !== undefined) this.list.refreshRow(i);
    }
  }

  find(text) {
    const q = text.trim().toLowerCase();
    this.matches = new Set();
    this.matchList = [];
    this.matchAt = -1;
    if (q) {
      for (const n of this.model.spans) {
        if (String(n.s.name).toLowerCase().includes(q) || n.service.toLowerCase().includes(q)) {
          this.matches.add(n);
          this.matchList.push(n);
        }
      }
    }
    this.findCount.textContent = q ? `${this.matchList.length} found` : '';
    this.list.invalidate();
    if (this.matchList.length) this.nextMatch(1);
  }

  nextMatch(step) {
    if (!this.matchList.length) return;
    this.matchAt = (this.matchAt + step + this.matchList.length) % this.matchList.length;
    const n = this.matchList[this.matchAt];
    this.reveal(n);
    this.onSelectSpan(n);
  }

  onKey(e) {
    if (!this.selected || !['ArrowDown', 'ArrowUp', 'ArrowLeft', 'ArrowRight'].includes(e.key)) return;
    e.preventDefault();
    const i = this.rowIndex.get(this.selected) ?? 0;
    if (e.key === 'ArrowDown' && i + 1 < this.rows.length) this.onSelectSpan(this.rows[i + 1]);
    else if (e.key === 'ArrowUp' && i > 0) this.onSelectSpan(this.rows[i - 1]);
    else if (e.key === 'ArrowLeft') {
      if (this.selected.children.length && !this.collapsed.has(this.selected.id)) this.toggle(this.selected);
      else if (this.selected.parent) this.onSelectSpan(this.selected.parent);
    } else if (e.key === 'ArrowRight' && this.collapsed.has(this.selected.id)) this.toggle(this.selected);
  }
}
