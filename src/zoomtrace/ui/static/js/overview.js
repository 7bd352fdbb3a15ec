// The overview above the timeline, for long traces: the minimap of every span and the durations
// by span name. Open at first for traces of OPEN_FROM spans or more; both are drawn after the
// timeline's first paint, in boxes of fixed height, so nothing moves when they appear.
import {h} from './dom.js';
import {Histogram} from './histogram.js';
import {Minimap} from './minimap.js';

const OPEN_FROM = 100; // spans

export class Overview {
  constructor(model, waterfall) {
    this.model = model;
    this.waterfall = waterfall;
    this.minimap = new Minimap(model, waterfall);
    this.histogram = null; // made when first shown
    this.histHolder = h('div', {class: 'ov-hist'});
    this.el = h('div', {class: 'ov', 'data-testid': 'overview'},
      h('div', {class: 'ov-map'}, h('div', {class: 'ov-side muted'}, 'All spans · click or drag to move'), this.minimap.el),
      this.histHolder);
    this.button = h('button', {class: 'btn small', type: 'button', 'data-testid': 'overview-toggle',
      title: 'A minimap of all spans and their durations by name', onclick: () => this.toggle()}, 'Overview');
    waterfall.onView = (rowsChanged) => {
      if (this.isOpen()) rowsChanged ? this.minimap.draw() : this.minimap.place();
    };
    waterfall.attach(this.button, this.el);
    this.toggle(model.count >= OPEN_FROM);
  }

  isOpen() {
    return !this.el.classList.contains('hidden');
  }

  toggle(open = !this.isOpen()) {
    this.el.classList.toggle('hidden', !open);
    this.button.classList.toggle('on', open);
    if (open) afterPaint(() => this.fill());
  }

  fill() {
    if (!this.isOpen()) return;
    if (!this.histogram) {
      this.histogram = new Histogram(this.model, {onPick: (stat) => this.pick(stat)});
      this.histHolder.replaceChildren(this.histogram.el);
    }
    this.minimap.draw();
  }

  /** A name picked in the histogram: its spans highlighted slowest first, the slowest selected. */
  pick(stat) {
    this.waterfall.setFindText(stat.name);
    this.waterfall.highlight(stat.spans, `${stat.count.toLocaleString('en-US')} × ${stat.name}, slowest first`);
  }

  destroy() {
    this.minimap.destroy();
  }
}

/** Run fn once the next frame has been painted. */
function afterPaint(fn) {
  requestAnimationFrame(() => setTimeout(fn, 0));
}
