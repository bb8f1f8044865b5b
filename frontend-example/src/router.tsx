import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

/** Screens inside the app, addressed by the hash: `#/tasks`, `#/sessions`, ... (no server configuration needed). */
export type HashRoute =
  | 'login'
  | 'register'
  | 'forgot-password'
  | 'tasks'
  | 'sessions'
  | 'password'
  | 'account';

/**
 * Screens that links in emails open, addressed by the path: the server builds
 * `{APP_URL}/verify-email#token=…` and so on. The server (or `vite preview`)
 * must answer these paths with index.html, like any SPA fallback.
 */
export type LinkRoute = 'verify-email' | 'reset-password' | 'confirm-email';

export type Route = HashRoute | LinkRoute;

const HASH_ROUTES: HashRoute[] = ['login', 'register', 'forgot-password', 'tasks', 'sessions', 'password', 'account'];
export const LINK_ROUTES: LinkRoute[] = ['verify-email', 'reset-password', 'confirm-email'];

/** Where the SPA is served from ('/' unless Vite's `base` says otherwise). */
function basePath(): string {
  const base = import.meta.env.BASE_URL || '/';
  return base.endsWith('/') ? base : `${base}/`;
}

/** The email-link screen that `pathname` is, if any. */
export function linkRouteOf(pathname: string, base = basePath()): LinkRoute | null {
  const rest = pathname.startsWith(base) ? pathname.slice(base.length) : null;
  if (rest === null) return null;
  const name = rest.replace(/\/+$/, '');
  return (LINK_ROUTES as string[]).includes(name) ? (name as LinkRoute) : null;
}

/** The route of a location: an email-link path first, else the hash. */
export function routeOf(location: { pathname: string; hash: string }, base = basePath()): Route | null {
  const link = linkRouteOf(location.pathname, base);
  if (link) return link;
  const name = location.hash.replace(/^#\/?/, '');
  return (HASH_ROUTES as string[]).includes(name) ? (name as HashRoute) : null;
}

/** The address of a route: `/#/tasks` or `/verify-email`. */
export function hrefOf(route: Route, base = basePath()): string {
  return (LINK_ROUTES as string[]).includes(route) ? `${base}${route}` : `${base}#/${route}`;
}

function current(): Route | null {
  return routeOf(window.location);
}

/** Tells `useRoute()` that history.pushState changed the address (pushState fires no event of its own). */
const NAVIGATED = 'latchkey:navigate';

/** The current route; re-renders when the address changes. */
export function useRoute(): Route | null {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onChange = () => setRoute(current());
    window.addEventListener('hashchange', onChange);
    window.addEventListener('popstate', onChange);
    window.addEventListener(NAVIGATED, onChange);
    return () => {
      window.removeEventListener('hashchange', onChange);
      window.removeEventListener('popstate', onChange);
      window.removeEventListener(NAVIGATED, onChange);
    };
  }, []);
  return route;
}

/**
 * Shows `route`, without reloading the page: on the app's own page only the
 * hash changes; from an email-link page (`/verify-email`) the path changes
 * through history.pushState, so the state of the page (who is signed in, a
 * notice) is kept.
 */
export function navigate(route: Route) {
  const target = hrefOf(route);
  const here = window.location.pathname + window.location.hash;
  if (here === target) return;
  if (target.startsWith(`${window.location.pathname}#`)) {
    window.location.hash = target.slice(window.location.pathname.length);
    return;
  }
  window.history.pushState(null, '', target);
  window.dispatchEvent(new Event(NAVIGATED));
}

interface LinkProps extends Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> {
  to: Route;
}

/** A link to a route that works from every page, including the email-link pages. */
export function Link({ to, onClick, ...rest }: LinkProps) {
  function click(event: MouseEvent<HTMLAnchorElement>) {
    onClick?.(event);
    // let the browser handle new tabs and windows (ctrl/cmd/shift/middle click)
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  }
  return <a {...rest} href={hrefOf(to)} onClick={click} />;
}
