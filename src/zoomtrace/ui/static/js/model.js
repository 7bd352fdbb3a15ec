// A trace prepared for drawing from its outline (GET /api/trace/<id>/outline): every span with
// its depth, children, colour, follows-from links and critical path, as columns, so 200,000 spans
// cost a few typed arrays; a span gets an object only when something shows it. Records (logs,
// events) are not in the outline: they are loaded by page or by span, and entries are made for
// them here. Everything is iterative (no recursion), so a 20,000-deep chain of spans is fine.

export const PALETTE = [
  '#4c6ef5', '#12b886', '#f59f00', '#ae3ec9', '#15aabf', '#e8590c',
  '#5c940d', '#d6336c', '#7048e8', '#0b7285', '#a9770b', '#868e96',
];

/** A service's preferred colour, the same on every page. */
export function serviceColor(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** One distinct colour per service of a trace: its preferred one unless another service has it. */
export function assignColors(services) {
  const colors = new Map();
  const taken = new Set();
  for (const svc of services) {
    let i = PALETTE.indexOf(serviceColor(svc));
    for (let k = 0; k < PALETTE.length && taken.has(PALETTE[i]) && taken.size < PALETTE.length; k++) i = (i + 1) % PALETTE.length;
    taken.add(PALETTE[i]);
    colors.set(svc, PALETTE[i]);
  }
  return colors;
}

export const LEVELS = {DEBUG: 10, INFO: 20, WARNING: 30, WARN: 30, ERROR: 40, CRITICAL: 50, FATAL: 50};

export function levelNo(level) {
  return level ? (LEVELS[String(level).toUpperCase()] ?? 20) : 0;
}

/** True for a record or span that is an error: failed span, error attached, or level ERROR and above. */
export function isError(item) {
  return Boolean(item.error) || item.status === 'error' || levelNo(item.level) >= 40;
}

/** Shared by every span without links or loaded records until it gets its own array. */
const NONE = Object.freeze([]);

/** How many record entries stay findable by id (model.recordById); older ones are made again when needed. */
const MAX_ENTRIES = 50_000;

/** A Map that forgets its oldest entries beyond a size. */
class BoundedMap extends Map {
  constructor(limit) {
    super();
    this.limit = limit;
  }

  set(key, value) {
    super.set(key, value);
    if (this.size > this.limit) this.delete(this.keys().next().value);
    return this;
  }
}

/**
 * A span, as the waterfall's rows, the records and the detail panel use it. Made on first use
 * (model.span(i)) and then kept, so each span has one object; most spans of a big trace never
 * get one: the model's columns are what the overview, find and the critical path read.
 */
class Span {
  constructor(model, i) {
    this.model = model;
    this.index = i;
    this.id = model.spanIds[i];
    this.start = model.start[i];
    this.end = model.end[i];
    this.open = model.open[i] === 1;
    this.service = model.services[model.service[i]];
    this.error = model.error[i] === 1;
    this.depth = model.depth[i];
    this.records = NONE;      // its logs and events once loaded (SpanLoader)
    this.recordsTotal = null; // how many the server has for it once asked (records may hold fewer)
    this.loaded = false;      // s is complete (its own record was read)
    this.entry = null;        // its line in the records list (spanEntry)
    this.fields = null;
  }

  get parent() { return this.model.span(this.model.parent[this.index]); }
  get children() { return this.model.childrenOf(this.index).map((k) => this.model.span(k)); }
  get descendants() { return this.model.descendants[this.index]; }
  get crit() { return critSegments(this.model, this.index); }
  get linksOut() { return this.model.linksOut.get(this.index) || NONE; } // spans this one follows from
  get linksIn() { return this.model.linksIn.get(this.index) || NONE; }   // spans that follow from this one
  get external() { return this.model.external.get(this.index) || NONE; } // links to spans of other traces
  get nameKey() { return this.model.nameKey[this.index]; }
  get logs() { return this.model.logs[this.index]; }
  get events() { return this.model.events[this.index]; }
  get errors() { return this.model.errors[this.index]; }

  /**
   * The span as the detail panel reads it; completed from its record when it is selected (completeSpan),
   * which also gives it its record id (`id`): the outline has none.
   */
  get s() {
    if (!this.fields) {
      const {spans: col, strings} = this.model.outline;
      const i = this.index;
      const parent = this.parent;
      this.fields = {span_id: this.id, parent_span_id: parent ? parent.id : col.remote_parent[i],
        name: strings[col.name[i]] ?? '', service: this.service, node_id: strings[col.node_id[i]] ?? null,
        start_ns: this.start, end_ns: this.open ? null : this.end, duration_ns: this.open ? null : this.end - this.start,
        status: col.status[i] >= 0 ? strings[col.status[i]] : null};
    }
    return this.fields;
  }
}

/**
 * The outline as columns (one entry per span, in tree order: a row index is a span index), with
 * what drawing needs computed once: absolute times, a service per span, descendant counts,
 * follows-from links and the critical path.
 */
export function buildModel(outline) {
  const {strings, spans: col} = outline;
  const count = col.span_id.length;
  const t0 = outline.start_ns;
  const t1 = Math.max(outline.end_ns, t0 + 1000);
  const nodes = outline.nodes || [];
  const nodesById = new Map(nodes.map((n) => [n.node_id, n]));

  const start = new Float64Array(count);
  const end = new Float64Array(count);
  const open = new Uint8Array(count);
  const parent = Int32Array.from(col.parent);
  const descendants = new Int32Array(count);
  const firstChild = new Int32Array(count).fill(-1);
  const nextSibling = new Int32Array(count).fill(-1);
  for (let i = count - 1; i >= 0; i--) {
    start[i] = t0 + col.start[i];
    const duration = col.duration[i];
    open[i] = duration === null || duration === undefined ? 1 : 0;
    end[i] = open[i] ? Math.max(start[i], t1) : start[i] + duration;
    const p = parent[i];
    if (p >= 0) {
      descendants[p] += descendants[i] + 1; // reverse tree order visits children before parents
      nextSibling[i] = firstChild[p];
      firstChild[p] = i;
    }
  }

  // A span's service: its own, else its process's, else '?'; as an index into the sorted services.
  const names = new Map(); // (service, node) string keys -> name
  const serviceName = new Array(count);
  for (let i = 0; i < count; i++) {
    const key = (col.service[i] + 1) * (strings.length + 2) + col.node_id[i] + 1;
    let name = names.get(key);
    if (name === undefined) {
      name = (col.service[i] >= 0 && strings[col.service[i]]) || nodesById.get(strings[col.node_id[i]])?.service || '?';
      names.set(key, name);
    }
    serviceName[i] = name;
  }
  const services = [...new Set([...names.values(), ...nodes.map((n) => n.service || '?')])].sort();
  const serviceIndex = new Map(services.map((name, k) => [name, k]));
  const service = Uint16Array.from(serviceName, (name) => serviceIndex.get(name));

  const cache = new Array(count);
  let byId = null;
  const model = {
    traceId: outline.trace_id, outline, count, t0, t1, strings,
    spanIds: col.span_id, nameKey: col.name, depth: col.depth, error: col.error,
    logs: col.logs, events: col.events, errors: col.errors,
    start, end, open, parent, descendants, service, services, colors: assignColors(services),
    nodes, nodesById, counts: countsOf(outline.counts),
    linksOut: new Map(), linksIn: new Map(), external: new Map(), links: [], crit: null,
    recordById: new BoundedMap(MAX_ENTRIES),
    /** The span at row i (tree order), or null. */
    span(i) {
      if (i < 0 || i >= count) return null;
      return cache[i] ||= new Span(model, i);
    },
    /** The span with this id, or null (the first one when an id repeats). */
    spanById(id) {
      if (!byId) {
        byId = new Map();
        for (let i = count - 1; i >= 0; i--) byId.set(col.span_id[i], i);
      }
      const i = byId.get(id);
      return i === undefined ? null : model.span(i);
    },
    childrenOf(i) {
      const kids = [];
      for (let k = firstChild[i]; k >= 0; k = nextSibling[k]) kids.push(k);
      return kids;
    },
  };
  model.roots = [];
  for (let i = 0; i < count; i++) if (parent[i] < 0) model.roots.push(i);
  linkSpans(model, outline.links || []);
  criticalPath(model);
  return model;
}

function countsOf(c) {
  return {spans: c.spans, log: c.logs, event: c.events, raw: c.raw, errors: c.errors, records: c.records};
}

/** Follows-from links: arrows between spans of this trace, the others kept as links out of it. */
function linkSpans(model, links) {
  const add = (map, i, value) => {
    const list = map.get(i);
    if (list) list.push(value);
    else map.set(i, [value]);
  };
  for (const [row, traceId, spanId] of links) {
    const to = model.span(row);
    const from = (!traceId || traceId === model.traceId) ? model.spanById(spanId) : null;
    if (from) {
      model.links.push({from, to});
      add(model.linksOut, to.index, from);
      add(model.linksIn, from.index, to);
    } else {
      add(model.external, row, {trace_id: traceId, span_id: spanId});
    }
  }
}

/** A span's line in the records list. */
export function spanEntry(n) {
  n.entry ||= {kind: 'span', ts: n.start, span: n, r: n.s, service: n.service};
  return n.entry;
}

/** The entry of a record read from the server (a RecordView): its span and service resolved, findable by id. */
export function recordEntry(model, r) {
  if (r.kind === 'span') {
    const n = model.spanById(r.span_id);
    if (n) return spanEntry(n);
  }
  let entry = model.recordById.get(r.id);
  if (!entry) {
    const span = r.span_id ? model.spanById(r.span_id) : null;
    entry = {kind: r.kind, ts: r.ts_ns, span, r, service: model.nodesById.get(r.node_id)?.service || span?.service || '?'};
    model.recordById.set(r.id, entry);
  }
  return entry;
}

/** Set a span's loaded records (of `total`), or forget them (null). */
export function setSpanRecords(n, records, total) {
  n.records = records && records.length ? records : NONE;
  n.recordsTotal = records ? total : null;
}

/** Complete a span from its own record (its id, attributes, code, error, CPU time, thread, on_behalf_of). */
export function completeSpan(n, r) {
  Object.assign(n.s, {id: r.id, attrs: r.attrs, code: r.code, error: r.error, cpu_ns: r.cpu_ns, thread: r.thread,
    on_behalf_of: r.on_behalf_of, links: r.links});
  n.loaded = true;
}

/**
 * The critical path: walking back from the end of each root, the child that finished last
 * before the current point is what the parent was waiting for. Each span on the path gets the
 * segments of its own time that are on it, kept in flat arrays (no allocation per span):
 * critSegments(model, i) lists them, in time order.
 */
export function criticalPath(model) {
  const {count, start, end, parent} = model;
  // Children of each span in one array, grouped by parent; a group is sorted latest-finishing
  // first when the walk first reaches it.
  const first = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) if (parent[i] >= 0) first[parent[i] + 1] += 1;
  for (let i = 0; i < count; i++) first[i + 1] += first[i];
  const kids = new Int32Array(first[count]);
  const fill = first.slice(0, count);
  for (let i = 0; i < count; i++) if (parent[i] >= 0) kids[fill[parent[i]]++] = i;
  const sorted = new Uint8Array(count);
  const taken = first.slice(0, count); // the next child not taken yet, per span
  // Segments as a linked list per span, newest first: walking back in time makes that time order.
  const crit = {head: new Int32Array(count).fill(-1), next: new Int32Array(2 * count + 2),
    from: new Float64Array(2 * count + 2), to: new Float64Array(2 * count + 2), on: new Uint8Array(count)};
  let n = 0;
  const mark = (i, a, b) => {
    crit.on[i] = 1;
    if (b <= a) return;
    crit.from[n] = a;
    crit.to[n] = b;
    crit.next[n] = crit.head[i];
    crit.head[i] = n++;
  };
  for (const root of model.roots) {
    let cur = root;
    let cursor = end[root];
    let guard = count * 3 + 10;
    while (cur >= 0 && guard-- > 0) {
      if (!sorted[cur]) {
        kids.subarray(first[cur], first[cur + 1]).sort((a, b) => end[b] - end[a]);
        sorted[cur] = 1;
      }
      let p = taken[cur];
      // The latest-finishing child that started before the cursor and was not taken yet.
      while (p < first[cur + 1] && start[kids[p]] >= cursor) p++;
      if (p < first[cur + 1]) {
        const child = kids[p];
        taken[cur] = p + 1;
        const childEnd = Math.min(end[child], cursor);
        mark(cur, childEnd, cursor);
        cur = child;
        cursor = childEnd;
      } else {
        taken[cur] = p;
        mark(cur, start[cur], cursor);
        if (cur === root) break;
        cursor = Math.min(cursor, start[cur]);
        cur = parent[cur];
      }
    }
  }
  model.crit = crit;
}

/** A span's segments on the critical path, in time order ([[start, end], ...]), or null when it is not on it. */
export function critSegments(model, i) {
  const {crit} = model;
  if (!crit.on[i]) return null;
  const out = [];
  for (let k = crit.head[i]; k >= 0; k = crit.next[k]) out.push([crit.from[k], crit.to[k]]);
  return out;
}

/** The rows to draw: the rows (span indexes) whose ancestors are all expanded, in tree order. */
export function visibleRows(model, collapsed) {
  const rows = [];
  for (let i = 0; i < model.count; i++) {
    rows.push(i);
    if (collapsed.has(i)) i += model.descendants[i]; // tree order: descendants follow contiguously
  }
  return rows;
}

/** The rows (span indexes) whose name or service contains the text (case-insensitive), in tree order. */
export function findSpans(model, text) {
  const q = text.trim().toLowerCase();
  if (!q) return [];
  const name = model.strings.map((s) => typeof s === 'string' && s.toLowerCase().includes(q));
  const service = model.services.map((s) => s.toLowerCase().includes(q));
  const found = [];
  for (let i = 0; i < model.count; i++) if (name[model.nameKey[i]] || service[model.service[i]]) found.push(i);
  return found;
}
