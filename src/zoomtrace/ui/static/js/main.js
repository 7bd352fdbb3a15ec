// Routes the address bar to a page. Each page renders into <main> and returns its clean-up.
import {api} from './api.js';
import {renderChanges} from './changes.js';
import {h, fill} from './dom.js';
import {renderErrors} from './errors.js';
import {navigate} from './nav.js';
import {renderNodes} from './nodes.js';
import {renderRecordPage, renderStory} from './story.js';
import {renderTraces} from './traces.js';

const routes = [
  [/^\/(?:traces)?$/, 'traces', renderTraces],
  [/^\/nodes$/, 'nodes', renderNodes],
  [/^\/errors$/, 'errors', renderErrors],
  [/^\/changes$/, 'changes', renderChanges],
  [/^\/trace\/([^/]+)$/, 'traces', renderStory],
  [/^\/record\/([^/]+)$/, 'traces', renderRecordPage],
];

const main = document.getElementById('main');
let cleanup = null;
let current = null;

function route() {
  const path = location.pathname;
  // Same page, only the query changed (selection inside a story): let the page handle it.
  if (current && current.path === path && current.onQuery) {
    current.onQuery(new URLSearchParams(location.search));
    return;
  }
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } }
  cleanup = null;
  current = null;
  for (const [pattern, nav, render] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
    main.replaceChildren();
    const args = match.slice(1).map(decodeURIComponent);
    const page = render(main, ...args) || {};
    cleanup = typeof page === 'function' ? page : page.cleanup;
    current = {path, onQuery: page.onQuery};
    window.scrollTo(0, 0);
    return;
  }
  fill(main, h('p', {class: 'empty'}, 'No such page. ', h('a', {href: '/', 'data-link': true}, 'Back to the traces.')));
}

document.addEventListener('click', (event) => {
  const a = event.target.closest && event.target.closest('a[data-link]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});

window.addEventListener('popstate', route);
window.addEventListener('zt:navigate', route);

api('/api/about').then((about) => {
  const home = document.getElementById('home');
  home.textContent = about.home;
  home.title = `zoomtrace ${about.version} · store at ${about.home}`;
}).catch(() => {});

route();
