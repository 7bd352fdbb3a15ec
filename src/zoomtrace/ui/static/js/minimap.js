// The minimap: every row of the waterfall squeezed into a strip, time across (the whole trace),
// rows down, one colour per service and failed spans in red, with the part in view framed.
// A click centres the view there; dragging the frame (or anywhere) moves the view along.
import {h} from './dom.js';

const HEIGHT = 64;
const ERROR = '#d92d20';

export class Minimap {
  /** waterfall: the Waterfall it shows and moves (view(), centerRow(), setWindow()). */
  constructor(model, waterfall) {
    this.model = model;
    this.waterfall = waterfall;
    this.canvas = h('canvas', {class: 'mm-canvas', height: HEIGHT, 'aria-label': 'Overview of all spans: click or drag to move the view'});
    this.frame = h('div', {class: 'mm-frame'});
    this.el = h('div', {class: 'mm', 'data-testid': 'minimap', title: 'Click or drag to move the timeline there'}, this.canvas, this.frame);
    this.el.addEventListener('pointerdown', (e) => this.onDown(e));
    this.el.addEventListener('pointermove', (e) => { if (this.dragging) this.moveTo(e); });
    this.el.addEventListener('pointerup', (e) => this.onUp(e));
    this.el.addEventListener('pointercancel', (e) => this.onUp(e));
    this.width = 0;
    this.resize = new ResizeObserver(() => { if (this.width && this.width !== this.el.clientWidth) this.draw(); });
    this.resize.observe(this.el);
  }

  destroy() {
    this.resize.disconnect();
  }

  /** Draw all rows (after the rows or the size changed). */
  draw() {
    const width = this.el.clientWidth;
    this.width = width;
    if (!width) return;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(HEIGHT * ratio);
    this.canvas.style.setProperty('width', `${width}px`);
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, HEIGHT);
    const {t0, t1, start, end, service, error} = this.model;
    const rows = this.waterfall.rows;
    const dy = HEIGHT / Math.max(rows.length, 1);
    const barH = Math.max(1 / ratio, Math.min(dy, 6));
    const scale = width / (t1 - t0);
    // One path per service: a few fills however many spans there are; errors drawn last, on top.
    const paths = this.model.services.map(() => new Path2D());
    const errors = new Path2D();
    for (let i = 0; i < rows.length; i++) {
      const k = rows[i];
      const x = (start[k] - t0) * scale;
      const w = Math.max((end[k] - start[k]) * scale, 1 / ratio);
      paths[service[k]].rect(x, i * dy, w, barH);
      if (error[k]) errors.rect(x, i * dy, Math.max(w, 2), Math.max(barH, 2));
    }
    ctx.globalAlpha = 0.85;
    paths.forEach((path, k) => {
      ctx.fillStyle = this.model.colors.get(this.model.services[k]);
      ctx.fill(path);
    });
    ctx.globalAlpha = 1;
    ctx.fillStyle = ERROR;
    ctx.fill(errors);
    this.place();
  }

  /** Frame the part in view: its rows down, its time window across. */
  place() {
    const width = this.width;
    const {first, count, rows, w0, w1} = this.waterfall.view();
    const {t0, t1} = this.model;
    const x = (Math.max(w0, t0) - t0) / (t1 - t0) * width;
    const x1 = (Math.min(w1, t1) - t0) / (t1 - t0) * width;
    const y = first / Math.max(rows, 1) * HEIGHT;
    const y1 = Math.min(first + count, rows) / Math.max(rows, 1) * HEIGHT;
    this.frame.style.setProperty('left', `${x}px`);
    this.frame.style.setProperty('width', `${Math.max(4, x1 - x)}px`);
    this.frame.style.setProperty('top', `${y}px`);
    this.frame.style.setProperty('height', `${Math.max(4, y1 - y)}px`);
  }

  // -- moving the view -------------------------------------------------------------------

  onDown(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.dragging = true;
    this.el.setPointerCapture(e.pointerId);
    this.moveTo(e);
  }

  onUp(e) {
    this.dragging = false;
    if (this.el.hasPointerCapture(e.pointerId)) this.el.releasePointerCapture(e.pointerId);
  }

  /** Centre the view on the pointer: that row in the middle, and the time window there when zoomed in. */
  moveTo(e) {
    const box = this.el.getBoundingClientRect();
    const fx = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
    const fy = Math.min(1, Math.max(0, (e.clientY - box.top) / box.height));
    const {rows, w0, w1} = this.waterfall.view();
    const {t0, t1} = this.model;
    if (w1 - w0 < t1 - t0) {
      const half = (w1 - w0) / 2;
      const mid = Math.min(t1 - half, Math.max(t0 + half, t0 + fx * (t1 - t0)));
      this.waterfall.setWindow(mid - half, mid + half);
    }
    this.waterfall.centerRow(fy * rows);
  }
}
