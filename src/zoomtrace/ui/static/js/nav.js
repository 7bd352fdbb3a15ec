// Client-side navigation: pages call navigate(); main.js routes.

export function navigate(url, {replace = false} = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  window.dispatchEvent(new Event('zt:navigate'));
}

/** Update the query string without a new history entry or a re-render. */
export function setQuery(params) {
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) url.searchParams.delete(k);
    else url.searchParams.set(k, v === true ? '1' : v);
  }
  history.replaceState(null, '', url.pathname + url.search);
}

export function traceHref(traceId, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
  const qs = q.toString();
  return `/trace/${encodeURIComponent(traceId)}${qs ? `?${qs}` : ''}`;
}
