// The viewer's only way to the server: read-only GETs of JSON.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, params = undefined, {signal, preloaded = false} = {}) {
  const url = new URL(path, location.origin);
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '' && v !== false) url.searchParams.set(k, v === true ? '1' : v);
    }
  }
  let response;
  try {
    // A request the page preloaded (a Link header) is answered from that preload only when it asks with the
    // same mode, credentials and headers: no header of its own then.
    const headers = preloaded ? undefined : {accept: 'application/json'};
    response = await fetch(url, {credentials: 'same-origin', headers, signal});
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'The viewer is not reachable (is `zoomtrace ui` still running?)');
  }
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const message = body && typeof body.error === 'string' ? body.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

/** A trace's outline: its spans as columns, with counts of their records (docs/ui.md, "API for big traces").
 * The story's page preloads it (app.py, `_page`), so it is asked for as the preload was. */
export function fetchOutline(traceId, options = {}) {
  return api(`/api/trace/${encodeURIComponent(traceId)}/outline`, undefined, {...options, preloaded: true});
}

/** A page of a trace's records in time order: {total, offset, records}; params as in docs/ui.md, "API for big traces". */
export function fetchRecords(traceId, params, options) {
  return api(`/api/trace/${encodeURIComponent(traceId)}/records`, params, options);
}

/** Polls the cheap /api/pulse endpoint; calls onChange(version) when the home gains data. */
export function watchPulse(onChange, intervalMs = 2000) {
  let last = null;
  let stopped = false;
  let timer = null;
  const live = document.getElementById('live');
  async function tick() {
    if (stopped) return;
    if (!document.hidden) {
      try {
        const {version} = await api('/api/pulse');
        live && live.classList.add('on');
        if (last !== null && version !== last) {
          live && live.classList.add('pulse');
          setTimeout(() => live && live.classList.remove('pulse'), 600);
          onChange(version);
        }
        last = version;
      } catch {
        live && live.classList.remove('on');
      }
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    live && live.classList.remove('on');
  };
}
