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
  outlet.replaceChildren(node);
  if (!location.hash) window.scrollTo(0, 0);
  afterRender();
}
