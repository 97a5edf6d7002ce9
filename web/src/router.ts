// History-API routing. The Go server (internal/web) answers every app path
// with index.html, so deep links and reloads work; so does Vite's dev server.

export interface Route {
  params: Record<string, string>;
  query: URLSearchParams;
  /** Aborted when the user navigates away: pages pass it to their RPCs. */
  signal: AbortSignal;
}

export type Page = (route: Route) => Node;

interface Entry {
  pattern: RegExp;
  keys: string[];
  page: Page;
}

const routes: Entry[] = [];
let notFound: Page = () => document.createTextNode("Not found");
let current: AbortController | null = null;
let outlet: HTMLElement;
let afterRender: () => void = () => {};

/** Adds a route: "/listings/:id". */
export function route(path: string, page: Page): void {
  const keys: string[] = [];
  const src = path.replace(/:([a-z]+)/gi, (_, k: string) => {
    keys.push(k);
    return "([^/]+)";
  });
  routes.push({ pattern: new RegExp(`^${src}/?$`), keys, page });
}

export function fallback(page: Page): void {
  notFound = page;
}

export function start(el: HTMLElement, onRender: () => void): void {
  outlet = el;
  afterRender = onRender;
  window.addEventListener("popstate", render);
  // Same-origin links navigate in place.
  document.addEventListener("click", (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element).closest?.("a");
    if (!a || a.target || a.hasAttribute("download") || a.origin !== location.origin) return;
    e.preventDefault();
    navigate(a.pathname + a.search + a.hash);
  });
  render();
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  render();
}

/** Updates the query string without re-rendering (filters that the page already shows). */
export function setQuery(q: URLSearchParams): void {
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
}

/** Re-renders the current page (after sign in/out). */
export function refresh(): void {
  render();
}

function render(): void {
  current?.abort();
  current = new AbortController();
  const path = decodeURI(location.pathname);
  const query = new URLSearchParams(location.search);
  let node: Node | null = null;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (m) {
      const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]));
      node = r.page({ params, query, signal: current.signal });
      break;
    }
  }
  node ??= notFound({ params: {}, query, signal: current.signal });
  // Where the user was, before the page went: focus moves to the new page
  // only if they have not moved it themselves since.
  const before = document.activeElement;
  outlet.replaceChildren(node);
  if (!location.hash) window.scrollTo(0, 0);
  afterRender();
  // The first page of a visit starts at the top, as any page load does;
  // every later one moves focus to its heading, so that a screen reader
  // reads the new page and Tab continues from there.
  if (rendered++ > 0) focusHeading(outlet, current.signal, before);
}

let rendered = 0;

/**
 * Focuses root's main heading (its h1, made focusable with tabindex=-1),
 * or root itself when it has none. A page that loads its data first shows
 * the h1 later: it is waited for, until signal aborts, unless the user
 * moves focus meanwhile (before: what had focus when the wait began).
 */
export function focusHeading(root: HTMLElement, signal?: AbortSignal, before: Element | null = document.activeElement): void {
  const focus = (el: HTMLElement) => {
    if (!el.hasAttribute("tabindex")) el.tabIndex = -1;
    el.focus({ preventScroll: true });
  };
  const found = root.querySelector("h1");
  if (found || !signal) {
    focus(found ?? root);
    return;
  }
  const moved = () => document.activeElement !== before && document.activeElement !== document.body && document.activeElement !== null;
  const stop = () => {
    watcher.disconnect();
    clearTimeout(limit);
  };
  const watcher = new MutationObserver(() => {
    const h1 = root.querySelector("h1");
    if (!h1) return;
    stop();
    if (!moved()) focus(h1);
  });
  watcher.observe(root, { childList: true, subtree: true });
  // A page that never shows an h1 (an error): nothing to wait for.
  const limit = setTimeout(stop, 20_000);
  signal.addEventListener("abort", stop);
}
