// Every record of the trace in time order, filterable by level, kind, service, text and errors,
// each line linked to its span. The server filters and pages (RecordPages); the list is
// virtualised and sized by the total, so 1,000,000 records cost what 60 cost.
import {debounce, h} from './dom.js';
import {fmtDuration, fmtOffset, inline} from './format.js';
import {isError, recordEntry} from './model.js';
import {RecordPages} from './pages.js';
import {VirtualList} from './vlist.js';

const ROW = 24;
const KINDS = ['log', 'event', 'raw', 'span'];
const LEVEL_NAMES = {10: 'DEBUG', 20: 'INFO', 30: 'WARNING', 40: 'ERROR'};

export function recordText(e) {
  const r = e.r;
  let text;
  if (e.kind === 'span') text = `${r.name} · ${fmtDuration((r.end_ns ?? r.start_ns) - r.start_ns)}${r.status && r.status !== 'ok' ? ` · ${r.status}` : ''}`;
  else if (e.kind === 'log') text = r.message ?? r.template ?? '';
  else if (e.kind === 'event') text = `${r.type} ${inline(r.payload)}`;
  else text = `${r.type} ${inline(r.attrs)}`;
  if (r.error) text += `  — ${r.error.type}: ${r.error.message}`;
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

export function badge(e) {
  if (e.kind === 'log') {
    const level = (e.r.level || 'log').toLowerCase();
    return h('span', {class: ['badge', level]}, level === 'warning' ? 'warn' : level);
  }
  const failed = e.kind === 'span' && (e.span ? e.span.error : isError(e.r));
  return h('span', {class: ['badge', e.kind, failed && 'error']}, e.kind);
}

/** The id a line is selected by: a record's id, or the span id of a span's line. */
export function entryKey(e) {
  return e.kind === 'span' ? `span:${e.span.id}` : e.r.id;
}

export class RecordList {
  constructor(model, {onSelectRecord, onSelectSpan}) {
    this.model = model;
    this.onSelectRecord = onSelectRecord;
    this.onSelectSpan = onSelectSpan;
    this.kinds = new Set(KINDS);
    this.minLevel = 0;
    this.service = '';
    this.text = '';
    this.errorsOnly = false;
    this.selected = null; // entryKey of the selected line
    this.pages = null;
    this.build();
    this.apply();
  }

  build() {
    const m = this.model;
    const kindCounts = {log: m.counts.log, event: m.counts.event, raw: m.counts.raw, span: m.counts.spans};
    this.kindBoxes = KINDS.map((kind) => {
      const box = h('input', {type: 'checkbox', checked: true, 'data-kind': kind, onchange: () => {
        if (box.checked) this.kinds.add(kind); else this.kinds.delete(kind);
        this.apply();
      }});
      return h('label', {class: 'check'}, box, `${kind} `, h('span', {class: 'faint'}, kindCounts[kind].toLocaleString('en-US')));
    });
    this.levelSelect = h('select', {'aria-label': 'Lowest log level', 'data-testid': 'level-filter', onchange: () => {
      this.minLevel = Number(this.levelSelect.value);
      this.apply();
    }}, h('option', {value: '0'}, 'All levels'), h('option', {value: '10'}, 'DEBUG and up'),
    h('option', {value: '20'}, 'INFO and up'), h('option', {value: '30'}, 'WARNING and up'), h('option', {value: '40'}, 'ERROR and up'));
    this.serviceSelect = h('select', {'aria-label': 'Service', onchange: () => { this.service = this.serviceSelect.value; this.apply(); }},
      h('option', {value: ''}, 'All services'), ...m.services.map((s) => h('option', {value: s}, s)));
    this.textInput = h('input', {type: 'search', placeholder: 'Filter text…', size: 14,
      oninput: debounce(() => { this.text = this.textInput.value.trim(); this.apply(); }, 250)});
    this.errorsBtn = h('button', {class: 'btn small', type: 'button', 'data-testid': 'errors-only',
      onclick: () => { this.setErrorsOnly(!this.errorsOnly); }}, 'Errors only');
    this.countLabel = h('span', {class: 'muted', 'data-testid': 'record-count'});
    const toolbar = h('div', {class: 'panel-head toolbar'},
      h('h2', null, 'Records'), this.countLabel, h('span', {class: 'spacer'}),
      ...this.kindBoxes, this.levelSelect, this.serviceSelect, this.textInput, this.errorsBtn);
    const head = h('div', {class: 'rl-head'}, h('span', {class: 'right'}, 'time'), h('span', null, 'service'),
      h('span', null, 'kind'), h('span', null, 'message'), h('span', null, 'code'), h('span', null, 'span'));
    this.body = h('div', {class: 'vscroll rl-body', tabindex: 0});
    this.el = h('section', {class: 'panel records', 'data-testid': 'records'}, toolbar, head, this.body);
    this.list = new VirtualList(this.body, {rowHeight: ROW, render: (i) => this.renderRow(i),
      onRange: (first, last) => this.pages && this.pages.want(first, last)});
  }

  destroy() {
    this.list.destroy();
    if (this.pages) this.pages.close();
  }

  setErrorsOnly(on) {
    this.errorsOnly = on;
    this.errorsBtn.classList.toggle('on', on);
    this.apply();
  }

  /** The panel's filters as the server's query parameters (docs/ui.md, "API for big traces"). */
  filters() {
    return {
      kind: this.kinds.size === KINDS.length ? null : KINDS.filter((k) => this.kinds.has(k)).join(','),
      level: LEVEL_NAMES[this.minLevel] || null,
      service: this.service || null,
      text: this.text || null,
      errors: this.errorsOnly,
    };
  }

  filtered() {
    const f = this.filters();
    return Boolean(f.kind || f.level || f.service || f.text || f.errors);
  }

  /** Filters changed: a new set of pages, the list sized by its total once the first page is read. */
  apply() {
    if (this.pages) this.pages.close();
    this.pages = null;
    this.body.scrollTop = 0;
    if (!this.kinds.size) {
      this.showCount(0);
      return;
    }
    const pages = new RecordPages(this.model.traceId, this.filters(), {
      toEntry: (r) => recordEntry(this.model, r),
      onLoad: (err) => this.loaded(pages, err),
    });
    this.pages = pages;
    if (this.filtered()) {
      this.countLabel.textContent = 'filtering…';
      pages.want(0, 0);
    } else {
      this.showCount(this.model.counts.records); // known from the outline: the list is sized at once
    }
  }

  loaded(pages, err) {
    if (pages !== this.pages) return;
    if (err) {
      this.countLabel.textContent = `records unavailable: ${err.message}`;
      return;
    }
    if (pages.total !== this.list.count) this.showCount(pages.total);
    else this.list.invalidate();
  }

  showCount(n) {
    const total = this.model.counts.records;
    this.countLabel.textContent = n === total && !this.filtered()
      ? `${total.toLocaleString('en-US')}`
      : `${n.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
    this.body.style.setProperty('height', `${Math.min(Math.max(n, 3) * ROW + 2, Math.max(240, Math.min(window.innerHeight * 0.5, 560)))}px`);
    this.list.setCount(n);
  }

  renderRow(i) {
    const e = this.pages && this.pages.at(i);
    if (!e) return h('div', {class: 'rl-row pending', 'data-testid': 'record-pending'}, h('span', {class: 'rl-t'}, '…'));
    const r = e.r;
    const m = this.model;
    const level = (r.level || '').toLowerCase();
    const code = r.code;
    return h('div', {
      class: ['rl-row', `k-${e.kind}`, level && `lvl-${level}`, r.error && 'has-error', this.selected === entryKey(e) && 'selected'],
      'data-testid': 'record-row', 'data-kind': e.kind, 'data-record': e.kind === 'span' ? null : r.id, 'data-row': i,
      onclick: () => (e.kind === 'span' ? this.onSelectSpan(e.span) : this.onSelectRecord(e, {row: i})),
    },
    h('span', {class: 'rl-t', title: `${fmtOffset(e.ts - m.t0)} after the trace started`}, fmtOffset(e.ts - m.t0)),
    h('span', {class: 'chip', title: e.service}, h('span', {class: 'dot', style: {background: m.colors.get(e.service) || '#999'}}), e.service),
    h('span', null, badge(e)),
    h('span', {class: 'rl-msg', title: recordText(e)}, recordText(e)),
    h('span', {class: 'rl-code', title: code ? `${code.file}:${code.line} in ${code.function}` : ''},
      code ? `${code.file}:${code.line}` : ''),
    h('span', {class: 'rl-span'}, e.span && e.kind !== 'span'
      ? h('button', {class: 'linkish', type: 'button', title: `span ${e.span.s.name}`,
        onclick: (ev) => { ev.stopPropagation(); this.onSelectSpan(e.span); }}, `↳ ${e.span.s.name}`)
      : ''));
  }

  /**
   * Mark a line selected and, with scroll, bring it into view: at `row` when known, else where the
   * server places it among the filtered records (around=).
   */
  async select(entry, {scroll = true, row = -1} = {}) {
    this.selected = entry ? entryKey(entry) : null;
    this.list.invalidate();
    if (!entry || !scroll || (entry.kind === 'span' && !this.kinds.has('span'))) return;
    const pages = this.pages;
    const i = row >= 0 ? row : await this.locate(entry.r.id);
    if (i >= 0 && pages === this.pages && this.selected === entryKey(entry)) this.list.scrollTo(i);
  }

  /** The row of a record among the filtered records (its page read when needed), or -1 when they leave it out. */
  async locate(id) {
    const pages = this.pages;
    if (!pages || id === undefined) return -1; // a span whose own record (and id) could not be read
    const known = pages.indexOf(id);
    if (known >= 0) return known;
    try {
      return await pages.locate(id);
    } catch {
      return -1; // closed by new filters, or unreadable: nothing moves
    }
  }
}
