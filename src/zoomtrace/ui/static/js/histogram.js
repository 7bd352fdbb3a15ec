// Durations by span name: for each name its count, median, 95th percentile and longest
// duration, with a small histogram of its durations on a log scale shared by all names.
// Clicking a name highlights its spans, slowest first, and selects the slowest.
import {h} from './dom.js';
import {fmtDuration} from './format.js';

const BUCKETS = 24;
const SHOWN = 200; // names listed; the rest are counted
const COLUMNS = [['count', 'spans'], ['p50', 'p50'], ['p95', 'p95'], ['max', 'max']];

/** Per name: {name, count, p50, p95, max, spans (rows, slowest first), buckets}; computed once, from the outline. */
export function durationsByName(model) {
  const {count, start, end, nameKey} = model;
  const duration = new Float64Array(count);
  const groups = new Map();
  let lo = Infinity;
  let hi = 0;
  for (let i = 0; i < count; i++) {
    const d = duration[i] = end[i] - start[i];
    if (d > 0 && d < lo) lo = d;
    if (d > hi) hi = d;
    let g = groups.get(nameKey[i]);
    if (!g) groups.set(nameKey[i], g = []);
    g.push(i);
  }
  const logLo = Math.log(Number.isFinite(lo) ? lo : 1);
  const width = Math.max(Math.log(Math.max(hi, 1)) - logLo, 1e-9) / BUCKETS;
  const stats = [];
  for (const [key, rows] of groups) {
    const spans = Int32Array.from(rows).sort((a, b) => duration[b] - duration[a]);
    const at = (q) => duration[spans[Math.min(spans.length - 1, Math.floor((1 - q) * spans.length))]];
    const buckets = new Uint32Array(BUCKETS);
    for (const i of spans) {
      const d = duration[i];
      buckets[d > 0 ? Math.min(BUCKETS - 1, Math.floor((Math.log(d) - logLo) / width)) : 0] += 1;
    }
    stats.push({name: model.strings[key] ?? '', count: spans.length, p50: at(0.5), p95: at(0.95), max: duration[spans[0]],
      spans, buckets});
  }
  return stats;
}

export class Histogram {
  /** onPick(stat): a name was clicked. */
  constructor(model, {onPick}) {
    this.stats = durationsByName(model);
    this.onPick = onPick;
    this.sortBy = 'max';
    this.body = h('tbody');
    this.heads = COLUMNS.map(([key, label]) => h('th', {class: 'right'},
      h('button', {class: 'linkish', type: 'button', title: `Sort by ${label}`, onclick: () => this.sort(key)}, label)));
    this.note = h('p', {class: 'muted hg-note'});
    this.el = h('div', {class: 'hg', 'data-testid': 'histogram'},
      h('table', {class: 'hg-table'}, h('thead', null, h('tr', null, h('th', null, 'Span name'), ...this.heads,
        h('th', null, 'durations (log scale)'))), this.body), this.note);
    this.sort(this.sortBy);
  }

  sort(key) {
    this.sortBy = key;
    COLUMNS.forEach(([k], i) => this.heads[i].classList.toggle('sorted', k === key));
    const stats = [...this.stats].sort((a, b) => (b[key] - a[key]) || a.name.localeCompare(b.name));
    this.body.replaceChildren(...stats.slice(0, SHOWN).map((s) => this.renderRow(s)));
    this.note.textContent = stats.length > SHOWN ? `${(stats.length - SHOWN).toLocaleString('en-US')} more names not listed` : '';
  }

  renderRow(s) {
    return h('tr', {'data-testid': 'histogram-row', 'data-name': s.name, title: `Highlight the ${s.count.toLocaleString('en-US')} spans named ${s.name}, slowest first`,
      onclick: () => this.onPick(s)},
    h('td', {class: 'hg-name'}, s.name),
    h('td', {class: 'right'}, s.count.toLocaleString('en-US')),
    h('td', {class: 'right'}, fmtDuration(s.p50)),
    h('td', {class: 'right'}, fmtDuration(s.p95)),
    h('td', {class: 'right'}, fmtDuration(s.max)),
    h('td', null, bars(s.buckets)));
  }
}

function bars(buckets) {
  const top = Math.max(...buckets, 1);
  return h('div', {class: 'hg-bars'}, [...buckets].map((c) => h('span', {style: {height: `${c ? Math.max(8, (c / top) * 100) : 0}%`}})));
}
