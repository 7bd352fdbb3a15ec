// A span's details beyond the outline, read when it is selected: its logs and events (the first
// LIMIT, in time order) and its own record (its id, attributes, code, error, CPU time, thread), asked for in
// that order so that the records, what the page shows first, come first. The last KEEP spans read
// keep their records; older ones give them back, so memory stays bounded.
import {api, fetchRecords} from './api.js';
import {completeSpan, recordEntry, setSpanRecords} from './model.js';

export const LIMIT = 2000;
const KEEP = 50;

export class SpanLoader {
  constructor(model) {
    this.model = model;
    this.kept = [];
    this.pending = new Map(); // `${what}:${span index}` -> promise
    this.controller = new AbortController();
  }

  /** Resolves once the span's records are loaded (at once when they are). */
  records(n) {
    if (n.recordsTotal !== null) this.keep(n);
    return this.once(`records:${n.index}`, n.recordsTotal !== null, () =>
      fetchRecords(this.model.traceId, {span: n.id, limit: LIMIT}, {signal: this.controller.signal}).then((page) => {
        for (const r of page.records) recordEntry(this.model, r); // findable by id from markers and the detail
        setSpanRecords(n, page.records, page.total);
        this.keep(n);
      }));
  }

  /** Resolves once the span is complete: its own record read (at once when it was). */
  complete(n) {
    return this.once(`span:${n.index}`, n.loaded, () =>
      api(`/api/trace/${encodeURIComponent(this.model.traceId)}/span/${encodeURIComponent(n.id)}`, undefined,
        {signal: this.controller.signal})
        .then((own) => completeSpan(n, own)));
  }

  once(key, done, read) {
    if (done) return Promise.resolve();
    let pending = this.pending.get(key);
    if (!pending) {
      pending = read().finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  keep(n) {
    const at = this.kept.indexOf(n);
    if (at >= 0) this.kept.splice(at, 1);
    this.kept.push(n);
    while (this.kept.length > KEEP) setSpanRecords(this.kept.shift(), null);
  }

  close() {
    this.controller.abort();
  }
}
