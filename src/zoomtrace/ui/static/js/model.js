// The story of one trace, prepared for drawing: spans flattened with their depth, every
// record in time order, one colour per service, follows-from links and the critical path.
// Everything here is iterative (no recursion), so a 20,000-deep chain of spans is fine.

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

export function buildModel(story) {
  const nodesById = new Map((story.nodes || []).map((n) => [n.node_id, n]));
  const spans = [];
  const byId = new Map();

  // Depth-first, children in start order, iteratively.
  const roots = [...(story.spans || [])].sort(byStart);
  const stack = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push([roots[i], null, 0]);
  while (stack.length) {
    const [s, parent, depth] = stack.pop();
    const node = {
      id: s.span_id,
      s,
      parent,
      depth,
      index: spans.length,
      children: [],
      start: s.start_ns,
      end: s.end_ns ?? s.start_ns,
      open: s.end_ns === null || s.end_ns === undefined,
      service: s.service || nodesById.get(s.node_id)?.service || '?',
      error: isError(s),
      crit: null,
      records: s.records || [],
      linksOut: [],   // spans this one follows from (arrow from them to this)
      linksIn: [],    // spans that follow from this one
      external: [],   // follows-from links to spans outside this trace
      descendants: 0,
    };
    spans.push(node);
    if (!byId.has(node.id)) byId.set(node.id, node);
    if (parent) parent.children.push(node);
    const kids = [...(s.children || [])].sort(byStart);
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], node, depth + 1]);
  }
  // Descendant counts (reverse pre-order visits children before parents).
  for (let i = spans.length - 1; i >= 0; i--) {
    const n = spans[i];
    if (n.parent) n.parent.descendants += n.descendants + 1;
  }

  // Every record of the trace, in time order, with the span it belongs to.
  const records = [];
  for (const node of spans) {
    node.entry = {kind: 'span', ts: node.start, span: node, r: node.s, service: node.service};
    records.push(node.entry);
    for (const r of node.records) {
      records.push({kind: r.kind, ts: r.ts_ns, span: node, r, service: node.service});
    }
  }
  for (const r of story.records || []) {
    const span = r.span_id ? byId.get(r.span_id) || null : null;
    records.push({kind: r.kind, ts: r.ts_ns, span, r, service: nodesById.get(r.node_id)?.service || span?.service || '?'});
  }
  records.sort((a, b) => a.ts - b.ts);
  const recordById = new Map();
  records.forEach((entry, i) => {
    entry.index = i;
    if (entry.kind !== 'span' && entry.r.id) recordById.set(entry.r.id, entry);
  });

  // Time bounds.
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const n of spans) {
    if (n.start < t0) t0 = n.start;
    if (n.end > t1) t1 = n.end;
  }
  for (const e of records) {
    if (e.ts < t0) t0 = e.ts;
    if (e.ts > t1) t1 = e.ts;
  }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1; }
  if (t1 <= t0) t1 = t0 + 1000;
  for (const n of spans) if (n.open) n.end = Math.max(n.start, t1);

  // Follows-from links.
  const links = [];
  for (const n of spans) {
    for (const l of n.s.links || []) {
      const from = (!l.trace_id || l.trace_id === story.trace_id) ? byId.get(l.span_id) : null;
      if (from) {
        links.push({from, to: n});
        n.linksOut.push(from);
        from.linksIn.push(n);
      } else {
        n.external.push(l);
      }
    }
  }

  // One colour per service, stable for a given set of services.
  const services = [...new Set([...spans.map((n) => n.service), ...(story.nodes || []).map((n) => n.service || '?')])].sort();
  const colors = assignColors(services);

  const counts = {spans: spans.length, log: 0, event: 0, raw: 0, errors: 0, records: 0};
  for (const e of records) {
    if (e.kind !== 'span') {
      counts.records += 1;
      if (e.kind in counts) counts[e.kind] += 1;
    }
    if (isError(e.r)) counts.errors += 1;
  }

  const model = {story, spans, byId, roots: spans.filter((n) => !n.parent), records, recordById, links,
    nodesById, services, colors, counts, t0, t1};
  criticalPath(model);
  return model;
}

function byStart(a, b) {
  return (a.start_ns - b.start_ns) || String(a.span_id).localeCompare(String(b.span_id));
}

/**
 * The critical path: walking back from the end of each root, the child that finished last
 * before the current point is what the parent was waiting for. Each span on the path gets
 * the segments of its own time that are on it (node.crit = [[start, end], ...]).
 */
export function criticalPath(model) {
  const ends = new Map(); // node -> children sorted by end, latest first
  const pointer = new Map();
  const sortedKids = (n) => {
    let kids = ends.get(n);
    if (!kids) {
      kids = [...n.children].sort((a, b) => b.end - a.end);
      ends.set(n, kids);
      pointer.set(n, 0);
    }
    return kids;
  };
  const mark = (n, a, b) => {
    if (b > a) (n.crit ||= []).push([a, b]);
    else n.crit ||= [];
  };
  for (const root of model.roots) {
    let cur = root;
    let cursor = root.end;
    let guard = model.spans.length * 3 + 10;
    while (cur && guard-- > 0) {
      const kids = sortedKids(cur);
      let p = pointer.get(cur);
      // The latest-finishing child that started before the cursor and was not taken yet.
      while (p < kids.length && (kids[p].start >= cursor)) p++;
      if (p < kids.length) {
        const child = kids[p];
        pointer.set(cur, p + 1);
        const childEnd = Math.min(child.end, cursor);
        mark(cur, childEnd, cursor);
        cur = child;
        cursor = childEnd;
      } else {
        pointer.set(cur, kids.length);
        mark(cur, cur.start, cursor);
        if (cur === root) break;
        cursor = Math.min(cursor, cur.start);
        cur = cur.parent;
      }
    }
  }
}

/** The rows to draw: spans whose ancestors are all expanded, in tree order. */
export function visibleRows(model, collapsed) {
  if (!collapsed.size) return model.spans;
  const rows = [];
  const spans = model.spans;
  for (let i = 0; i < spans.length; i++) {
    const n = spans[i];
    rows.push(n);
    if (collapsed.has(n.id) && n.descendants) i += n.descendants; // pre-order: descendants follow contiguously
  }
  return rows;
}
