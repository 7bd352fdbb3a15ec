// A trace's records read page by page, for a virtual list sized by their total: only the pages
// around the rows in view are kept, one request at a time, the latest wish first.
import {fetchRecords} from './api.js';

export const PAGE = 200;
const KEEP = 8; // pages kept on each side of the rows in view

export class RecordPages {
  /**
   * @param {string} traceId
   * @param {object} filters  query parameters of /records (kind, level, service, text, errors)
   * @param {{toEntry: Function, onLoad: Function}} opts  toEntry(record) makes a list entry; onLoad(error) after
   *   each page (error set when it could not be read: scrolling asks again)
   */
  constructor(traceId, filters, {toEntry, onLoad}) {
    this.traceId = traceId;
    this.filters = filters;
    this.toEntry = toEntry;
    this.onLoad = onLoad;
    this.total = null;   // unknown until the first answer
    this.pages = new Map(); // page number -> array of entries
    this.read = new Set();  // pages read whole (an around= answer may fill part of one)
    this.wanted = [0, 0];
    this.busy = false;
    this.closed = false;
    this.controller = new AbortController();
  }

  /** The entry at row i, or undefined while its page is not loaded. */
  at(i) {
    const page = this.pages.get(Math.floor(i / PAGE));
    return page ? page[i % PAGE] : undefined;
  }

  /** The row of a loaded entry whose record has this id, or -1. */
  indexOf(id) {
    for (const [p, page] of this.pages) {
      const k = page.findIndex((e) => e && e.r.id === id);
      if (k >= 0) return p * PAGE + k;
    }
    return -1;
  }

  /** Rows first..last are in view: load their pages, forget the far ones. */
  want(first, last) {
    this.wanted = [Math.floor(Math.max(0, first) / PAGE), Math.floor(Math.max(0, last) / PAGE)];
    const [a, b] = this.wanted;
    for (const p of this.pages.keys()) {
      if (p < a - KEEP || p > b + KEEP) {
        this.pages.delete(p);
        this.read.delete(p);
      }
    }
    this.next();
  }

  /** The page (and the row) holding a record, read with around=; row -1 when the filters leave it out. */
  async locate(id) {
    const answer = await this.fetch({around: id, limit: PAGE});
    if (answer.offset % PAGE === 0) this.read.add(answer.offset / PAGE); // a whole page: no need to read it again
    this.store(answer);
    const k = answer.records.findIndex((r) => r.id === id);
    return k < 0 ? -1 : answer.offset + k;
  }

  close() {
    this.closed = true;
    this.controller.abort();
  }

  // -- loading -----------------------------------------------------------------------------

  /** The first page in view not read yet, or -1. */
  missing() {
    const [a, b] = this.wanted;
    const pages = this.total === null ? 1 : Math.ceil(this.total / PAGE);
    for (let p = a; p <= Math.min(b, pages - 1); p++) if (!this.read.has(p)) return p;
    return -1;
  }

  async next() {
    if (this.busy || this.closed) return;
    const p = this.missing();
    if (p < 0) return;
    this.busy = true;
    try {
      const answer = await this.fetch({offset: p * PAGE, limit: PAGE});
      this.read.add(p);
      this.store(answer);
    } catch (err) {
      if (err.name !== 'AbortError' && !this.closed) this.onLoad(err);
      return;
    } finally {
      this.busy = false;
    }
    this.next();
  }

  fetch(params) {
    return fetchRecords(this.traceId, {...this.filters, ...params}, {signal: this.controller.signal});
  }

  store({total, offset, records}) {
    if (this.closed) return;
    this.total = total;
    records.forEach((r, k) => {
      const i = offset + k;
      const p = Math.floor(i / PAGE);
      let page = this.pages.get(p);
      if (!page) {
        page = new Array(PAGE);
        this.pages.set(p, page);
      }
      page[i % PAGE] = this.toEntry(r);
    });
    this.onLoad(null);
  }
}
