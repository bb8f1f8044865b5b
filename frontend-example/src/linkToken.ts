/**
 * The one-time token of an email link: `{APP_URL}/verify-email#token=…`,
 * `/reset-password#token=…`, `/confirm-email#token=…`.
 *
 * The token travels in the fragment, which browsers never send to a server
 * (not in the request, not in `Referer`). The page reads it once as it loads,
 * removes it from the address bar at once (history.replaceState, so it is not
 * left in the history, a bookmark or a shared screenshot) and keeps it only in
 * memory, until the person acts on it. It is never written to storage, so a
 * reload of the page loses it: the person asks for a new link.
 */

export interface LocationLike {
  pathname: string;
  search: string;
  hash: string;
}

export interface HistoryLike {
  readonly state: unknown;
  replaceState(data: unknown, unused: string, url?: string | URL | null): void;
}

/** The `token` parameter of a fragment like `#token=abc` or `#token=abc&x=1`, else null. */
export function tokenFromFragment(hash: string): string | null {
  const fragment = hash.replace(/^#/, '');
  for (const part of fragment.split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq) !== 'token') continue;
    let value: string;
    try {
      // Not URLSearchParams: it would turn a `+` of a base64 token into a space.
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      return null; // malformed %-escape
    }
    value = value.trim();
    return value === '' ? null : value;
  }
  return null;
}

/**
 * Takes the token out of the address: returns it and replaces the current
 * history entry with the same address without its fragment. Leaves the
 * address alone when the fragment has no token (e.g. a route like `#/tasks`).
 */
export function takeFragmentToken(location: LocationLike, history: HistoryLike): string | null {
  if (!/(^#|&)token=/.test(location.hash)) return null;
  const token = tokenFromFragment(location.hash);
  history.replaceState(history.state, '', `${location.pathname}${location.search}`);
  return token;
}
