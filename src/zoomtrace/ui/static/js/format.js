// Numbers and times for people.

export function fmtDuration(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return '–';
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${(ns / 1e3).toFixed(a < 1e4 ? 1 : 0)} µs`;
  if (a < 1e9) return `${(ns / 1e6).toFixed(a < 1e7 ? 2 : 1)} ms`;
  if (a < 60e9) return `${(ns / 1e9).toFixed(2)} s`;
  const m = Math.floor(a / 60e9);
  if (m < 60) return `${m}m ${Math.round((a - m * 60e9) / 1e9)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function fmtOffset(ns) {
  if (ns === null || ns === undefined) return '';
  return `+${fmtDuration(ns)}`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local wall-clock time with milliseconds. */
export function fmtTime(ns, withDate = true) {
  if (ns === null || ns === undefined) return '–';
  const d = new Date(ns / 1e6);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  if (!withDate) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

export function isoTime(ns) {
  if (ns === null || ns === undefined) return '';
  return new Date(ns / 1e6).toISOString();
}

export function fmtAgo(ns) {
  const s = (Date.now() - ns / 1e6) / 1000;
  if (s < 0) return 'just now';
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function fmtCount(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
}

/** The first characters of a span or trace id: random from the first one. */
export function shortId(id, n = 8) {
  return id ? String(id).slice(0, n) : '–';
}

/**
 * A record's (or node's) id, short: its last 12 characters, the random end of a UUIDv7 (its
 * start is its millisecond, the same for records of one moment), as `zoomtrace story` prints
 * it. Show the full id in a title; link with the full id.
 */
export function shortRecordId(id) {
  if (!id) return '–';
  const text = String(id);
  return text.length > 13 ? text.slice(-12) : text;
}

export function shortCommit(c) {
  return c ? String(c).slice(0, 8) : 'no commit';
}

/** Any JSON value as one line of text (for tables and list rows). */
export function inline(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  try { return JSON.stringify(value); } catch { return String(value); }
}

export function pretty(value) {
  if (typeof value === 'string') return value;
  try { return JSON.stringify(value, null, 2); } catch { return String(value); }
}
