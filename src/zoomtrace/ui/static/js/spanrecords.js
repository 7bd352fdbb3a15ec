// The selected span's own logs and events, shown in the detail panel under the span's facts:
// a short virtualised list (a span may have thousands), each line opening its record.
import {h} from './dom.js';
import {fmtOffset} from './format.js';
import {recordEntry} from './model.js';
import {badge, recordText} from './records.js';
import {LIMIT} from './spanloader.js';
import {VirtualList} from './vlist.js';

const ROW = 22;
const SHOWN = 12; // rows in view before the list scrolls

export class SpanRecords {
  constructor(model, {onSelectRecord}) {
    this.model = model;
    this.onSelectRecord = onSelectRecord;
    this.list = null;
  }

  /** Put the span's records into the detail panel (after its first table), or say they are loading. */
  show(detailEl, n, {loading = false, error = null} = {}) {
    this.close();
    const count = loading || error ? null : h('span', {class: 'faint', 'data-testid': 'span-records-count'}, ` · ${n.recordsTotal.toLocaleString('en-US')}`);
    const section = h('div', {class: 'span-records', 'data-testid': 'span-records'}, h('h3', null, 'Logs and events', count));
    if (error) section.append(h('p', {class: 'muted'}, `Records unavailable: ${error.message}`));
    else if (loading) section.append(h('p', {class: 'muted', 'data-testid': 'span-records-loading'}, 'Loading the records of this span…'));
    else if (!n.records.length) section.append(h('p', {class: 'muted'}, 'None directly in this span.'));
    else section.append(...this.listOf(n).filter(Boolean));
    const after = detailEl.querySelector('table.kv');
    if (after) after.after(section);
    else detailEl.append(section);
  }

  listOf(n) {
    const records = n.records;
    const body = h('div', {class: 'vscroll sr-body', style: {height: `${Math.min(records.length, SHOWN) * ROW + 2}px`}});
    this.list = new VirtualList(body, {rowHeight: ROW, overscan: 6, render: (i) => this.renderRow(records[i])});
    this.list.setCount(records.length);
    const note = n.recordsTotal > records.length
      ? h('p', {class: 'muted'}, `The first ${LIMIT.toLocaleString('en-US')} of ${n.recordsTotal.toLocaleString('en-US')}, in time order.`)
      : null;
    return [body, note];
  }

  renderRow(r) {
    const entry = recordEntry(this.model, r);
    return h('div', {class: ['sr-row', r.error && 'has-error'], 'data-testid': 'span-record', 'data-record': r.id,
      title: recordText(entry), onclick: () => this.onSelectRecord(entry)},
    h('span', {class: 'rl-t'}, fmtOffset(r.ts_ns - this.model.t0)), badge(entry), h('span', {class: 'sr-msg'}, recordText(entry)));
  }

  close() {
    if (this.list) this.list.destroy();
    this.list = null;
  }
}
