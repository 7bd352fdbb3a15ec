// A virtualised list: only the rows in view (plus a margin) exist in the DOM, so a list of
// 100,000 rows scrolls like a list of 50. Rows have one fixed height.

export class VirtualList {
  /**
   * @param {HTMLElement} scroller  element with a fixed height and overflow: auto
   * @param {{rowHeight: number, render: (i: number) => HTMLElement, overscan?: number, onRange?: Function}} opts
   */
  constructor(scroller, {rowHeight, render, overscan = 12, onRange = null}) {
    this.scroller = scroller;
    this.rowHeight = rowHeight;
    this.renderRow = render;
    this.overscan = overscan;
    this.onRange = onRange;
    this.count = 0;
    this.rows = new Map();
    this.spacer = document.createElement('div');
    this.spacer.className = 'vspacer';
    scroller.append(this.spacer);
    this.first = 0;
    this.last = -1;
    this.frame = 0;
    this.onScroll = () => {
      if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.update(); });
    };
    scroller.addEventListener('scroll', this.onScroll, {passive: true});
    this.resize = new ResizeObserver(() => this.update());
    this.resize.observe(scroller);
  }

  setCount(n) {
    this.count = n;
    this.spacer.style.height = `${n * this.rowHeight}px`;
    this.invalidate();
  }

  /** Drop every rendered row and render the visible ones again (data or selection changed). */
  invalidate() {
    for (const el of this.rows.values()) el.remove();
    this.rows.clear();
    this.update(true);
  }

  /** Re-render one row if it is on screen. */
  refreshRow(i) {
    const el = this.rows.get(i);
    if (!el) return;
    const fresh = this.make(i);
    el.replaceWith(fresh);
    this.rows.set(i, fresh);
  }

  make(i) {
    const el = this.renderRow(i);
    el.style.setProperty('top', `${i * this.rowHeight}px`);
    return el;
  }

  update(force = false) {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - this.overscan);
    const last = Math.min(this.count - 1, Math.ceil((top + height) / this.rowHeight) + this.overscan);
    if (!force && first === this.first && last === this.last) return;
    for (const [i, el] of this.rows) {
      if (i < first || i > last) { el.remove(); this.rows.delete(i); }
    }
    const fragment = document.createDocumentFragment();
    for (let i = first; i <= last; i++) {
      if (!this.rows.has(i)) {
        const el = this.make(i);
        this.rows.set(i, el);
        fragment.append(el);
      }
    }
    this.spacer.append(fragment);
    this.first = first;
    this.last = last;
    if (this.onRange) this.onRange(first, last);
  }

  /** Scroll so that row i is visible (centred when it was out of view). */
  scrollTo(i, {center = true} = {}) {
    const y = i * this.rowHeight;
    const {scrollTop, clientHeight} = this.scroller;
    if (y >= scrollTop && y + this.rowHeight <= scrollTop + clientHeight) return;
    this.scroller.scrollTop = center ? Math.max(0, y - clientHeight / 2 + this.rowHeight / 2) : y;
    this.update();
  }

  destroy() {
    this.scroller.removeEventListener('scroll', this.onScroll);
    this.resize.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}
