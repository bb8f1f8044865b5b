import { describe, expect, it } from 'vitest';
import { takeFragmentToken, tokenFromFragment, type HistoryLike } from './linkToken';

/** A page's location and history: replaceState changes the address like a browser does. */
function page(url: string, state: unknown = { from: 'app' }) {
  const address = new URL(url);
  const replaced: { state: unknown; url: string }[] = [];
  const location = {
    get pathname() {
      return address.pathname;
    },
    get search() {
      return address.search;
    },
    get hash() {
      return address.hash;
    },
  };
  const history: HistoryLike = {
    state,
    replaceState(data, _unused, next) {
      replaced.push({ state: data, url: String(next) });
      const to = new URL(String(next), address);
      address.pathname = to.pathname;
      address.search = to.search;
      address.hash = to.hash;
    },
  };
  return { location, history, replaced, href: () => address.href };
}

describe('tokenFromFragment', () => {
  it('reads the token of an email link', () => {
    expect(tokenFromFragment('#token=abc123')).toBe('abc123');
    expect(tokenFromFragment('#token=abc&lang=en')).toBe('abc');
    expect(tokenFromFragment('#lang=en&token=abc')).toBe('abc');
    expect(tokenFromFragment('token=abc')).toBe('abc');
  });

  it('keeps the token exactly: percent-escapes decoded, a + stays a +', () => {
    expect(tokenFromFragment('#token=a%2Bb%2Fc%3D')).toBe('a+b/c=');
    expect(tokenFromFragment('#token=a+b/c==')).toBe('a+b/c==');
    expect(tokenFromFragment('#token=Zm9v-YmFy_')).toBe('Zm9v-YmFy_');
  });

  it('finds no token in other fragments', () => {
    expect(tokenFromFragment('')).toBeNull();
    expect(tokenFromFragment('#')).toBeNull();
    expect(tokenFromFragment('#/tasks')).toBeNull();
    expect(tokenFromFragment('#token=')).toBeNull();
    expect(tokenFromFragment('#token=%20%20')).toBeNull();
    expect(tokenFromFragment('#notatoken=abc')).toBeNull();
    expect(tokenFromFragment('#token=%E0%A4%A')).toBeNull(); // a broken escape
  });
});

describe('takeFragmentToken', () => {
  it('returns the token and removes it from the address bar, keeping the path, the query and the history state', () => {
    const p = page('https://app.example.com/verify-email?utm=mail#token=s3cret');
    expect(takeFragmentToken(p.location, p.history)).toBe('s3cret');
    expect(p.href()).toBe('https://app.example.com/verify-email?utm=mail');
    expect(p.replaced).toEqual([{ state: { from: 'app' }, url: '/verify-email?utm=mail' }]);
    expect(p.href()).not.toContain('s3cret');
  });

  it('finds nothing the second time: the token is only in memory now', () => {
    const p = page('https://app.example.com/reset-password#token=once');
    expect(takeFragmentToken(p.location, p.history)).toBe('once');
    expect(takeFragmentToken(p.location, p.history)).toBeNull();
    expect(p.replaced).toHaveLength(1);
  });

  it('also clears a fragment whose token is empty or broken', () => {
    const p = page('https://app.example.com/confirm-email#token=');
    expect(takeFragmentToken(p.location, p.history)).toBeNull();
    expect(p.href()).toBe('https://app.example.com/confirm-email');
  });

  it('leaves other fragments (the hash routes) alone', () => {
    for (const url of ['https://app.example.com/#/tasks', 'https://app.example.com/', 'https://app.example.com/#mytoken=1']) {
      const p = page(url);
      expect(takeFragmentToken(p.location, p.history)).toBeNull();
      expect(p.replaced).toEqual([]);
      expect(p.href()).toBe(url);
    }
  });
});
