// Every record of the trace in time order, filterable by level, kind, service and text,
// each line linked to its span. Virtualised: 100,000 records cost what 60 cost.
import {debounce, h} from './dom.js';
import {fmtDuration, fmtOffset, inline} from './format.js';
import {isError, levelNo} from './model.js';
import {VirtualList} from './vlist.js';

const ROW = 24;
const KINDS = ['log', 'event', 'raw', 'span'];

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
  return h('span', {class: ['badge', e.kind, e.kind === 'span' && isError(e.r) && 'error']}, e.kind);
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
    this.selected = null;
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
      oninput: debounce(() => { this.text = this.textInput.value.trim().toLowerCase(); this.apply(); }, 150)});
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
    this.list = new VirtualList(this.body, {rowHeight: ROW, render: (i) => this.renderRow(i)});
  }

  destroy() {
    this.list.destroy();
  }

  setErrorsOnly(on) {
    this.errorsOnly = on;
    this.errorsBtn.classList.toggle('on', on);
    this.apply();
  }

  matches(e) {
    if (!this.kinds.has(e.kind)) return false;
    if (this.errorsOnly && !isError(e.r)) return false;
    if (this.minLevel && e.kind === 'log' && levelNo(e.r.level) < this.minLevel) return false;
    if (this.service && e.service !== this.service) return false;
    if (this.text) {
      if (e.search === undefined) {
        const r = e.r;
        e.search = `${recordText(e)} ${r.type || ''} ${r.code ? r.code.file : ''} ${inline(r.attrs)}`.toLowerCase();
      }
      if (!e.search.includes(this.text)) return false;
    }
    return true;
  }

  apply() {
    const all = this.model.records;
    this.view = all.filter((e) => this.matches(e));
    this.viewIndex = new Map(this.view.map((e, i) => [e, i]));
    const total = all.length;
    this.countLabel.textContent = this.view.length === total
      ? `${total.toLocaleString('en-US')}`
      : `${this.view.length.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
    this.body.style.setProperty('height', `${Math.min(Math.max(this.view.length, 3) * ROW + 2, Math.max(240, Math.min(window.innerHeight * 0.5, 560)))}px`);
    this.list.setCount(this.view.length);
  }

  renderRow(i) {
    const e = this.view[i];
    const r = e.r;
    const m = this.model;
    const level = (r.level || '').toLowerCase();
    const code = r.code;
    const row = h('div', {
      class: ['rl-row', `k-${e.kind}`, level && `lvl-${level}`, r.error && 'has-error', this.selected === e && 'selected'],
      'data-testid': 'record-row', 'data-kind': e.kind, 'data-record': e.kind === 'span' ? null : r.id,
      onclick: () => (e.kind === 'span' ? this.onSelectSpan(e.span) : this.onSelectRecord(e)),
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
    return row;
  }

  select(entry, {scroll = true} = {}) {
    const old = this.selected;
    this.selected = entry;
    for (const e of [old, entry]) {
      const i = e ? this.viewIndex.get(e) : undefined;
      if (i !== undefined) this.list.refreshRow(i);
    }
    if (entry && scroll) {
      const i = this.viewIndex.get(entry);
      if (i !== undefined) this.list.scrollTo(i);
    }
  }
}
