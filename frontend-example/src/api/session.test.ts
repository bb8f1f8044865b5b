import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeLatchkey, FakeLocks, MemoryStorage, type Clock } from '../test/fakeLatchkey';
import { createSession, type ChannelLike, type Session, type SessionOptions } from './session';

const ORIGIN = 'http://app.test';
const PASSWORD = 'Correct-horse1';

let open: { close(): void }[] = [];
let channelCounter = 0;

afterEach(() => {
  for (const o of open) o.close();
  open = [];
});

function world(options: ConstructorParameters<typeof FakeLatchkey>[1] = {}) {
  const clock: Clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const server = new FakeLatchkey(clock, { accessTtl: 3, ...options });
  return { clock, server };
}

/** A page of the SPA: one Session, talking to `server` through `browser` (a cookie jar). */
function tab(
  browser: { fetch: (r: Request) => Promise<Response> },
  extra: Omit<SessionOptions, 'fetch' | 'baseUrl'> & { channelName?: string } = {},
) {
  const requests: Request[] = [];
  const network = vi.fn(async (request: Request) => {
    requests.push(request);
    return browser.fetch(request);
  });
  const channel = extra.channelName ? (new BroadcastChannel(extra.channelName) as unknown as ChannelLike) : null;
  const session = createSession({
    baseUrl: ORIGIN,
    fetch: network,
    locks: extra.locks ?? null,
    storage: extra.storage ?? null,
    channel,
  });
  open.push(session);
  return { session, requests };
}

async function registered(session: Session, email = 'ada@example.com') {
  const result = await session.register({ email, password: PASSWORD, full_name: 'Ada' });
  expect(result.error).toBeUndefined();
  expect(session.getState()).toMatchObject({ status: 'authenticated', user: { email } });
}

const expireAccess = (clock: Clock) => {
  clock.now += 4_000; // past ACCESS_TOKEN_TTL=3s: the browser drops the access cookie
};

describe('requests', () => {
  it('sends every request with credentials: include, so the browser attaches the cookies', async () => {
    const { server } = world();
    const browser = server.browser();
    const { session, requests } = tab(browser);
    await registered(session);
    await session.api.GET('/api/v1/auth/me');
    await session.logout();
    expect(requests.map((r) => new URL(r.url).pathname)).toEqual([
      '/api/v1/auth/register',
      '/api/v1/auth/me',
      '/api/v1/auth/logout',
    ]);
    for (const r of requests) expect(r.credentials).toBe('include');
    // the server did receive the cookies, and logout revoked the session
    expect(server.calls[1]).toMatchObject({ path: '/api/v1/auth/me', status: 200, hadAccessCookie: true });
    expect([...server.sessions.values()].every((s) => s.revoked)).toBe(true);
  });

  it('shows no token to the page: the cookies are httpOnly and stay in the jar', async () => {
    const { server } = world();
    const browser = server.browser();
    const { session } = tab(browser);
    await registered(session);
    expect(browser.jar.get('access_token')).toBeDefined();
    expect(browser.jar.get('refresh_token')?.path).toBe('/api/v1/auth');
    expect(browser.jar.documentCookie()).toBe('');
    expect(JSON.stringify(session.getState())).not.toMatch(/access-|refresh-/);
  });
});

describe('refresh and retry', () => {
  it('renews an expired access token transparently and retries the request once', async () => {
    const { server, clock } = world();
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);

    const { data, response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(200);
    expect(data?.email).toBe('ada@example.com');
    expect(server.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'POST /api/v1/auth/register 201',
      'GET /api/v1/auth/me 401',
      'POST /api/v1/auth/refresh 200',
      'GET /api/v1/auth/me 200',
    ]);
    expect(session.getState().status).toBe('authenticated');
  });

  it('resends the same body on the retry, and the server acts on it once', async () => {
    const { server, clock } = world();
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);

    const { data, response } = await session.api.POST('/api/v1/tasks', { body: { title: 'Buy milk', description: 'two litres' } });
    expect(response.status).toBe(201);
    expect(data?.title).toBe('Buy milk');
    expect(server.tasks).toHaveLength(1);
    expect(server.tasks[0]).toMatchObject({ title: 'Buy milk', description: 'two litres' });
    expect(server.count('POST', '/api/v1/tasks')).toBe(2); // 401, then the retry
  });

  it('also refreshes on token_expired when the browser still sends an expired token', async () => {
    const { server, clock } = world({ accessCookieMaxAge: 60 });
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);
    const { response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(200);
    expect(server.calls.map((c) => c.code ?? c.status)).toEqual([201, 'token_expired', 200, 200]);
  });

  it('shares one refresh between concurrent requests (single flight)', async () => {
    const { server, clock } = world();
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);

    const results = await Promise.all(Array.from({ length: 5 }, () => session.api.GET('/api/v1/auth/me')));
    expect(results.map((r) => r.response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
    expect(session.getState().status).toBe('authenticated');
  });

  it('does not refresh again for a request that failed before an earlier refresh finished', async () => {
    const { server, clock } = world({ latency: 5 });
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);

    const first = session.api.GET('/api/v1/auth/me');
    // sent before the refresh, answered 401 after it has finished:
    const late = (async () => {
      await new Promise((r) => setTimeout(r, 1));
      return session.api.GET('/api/v1/auth/me');
    })();
    const [a, b] = await Promise.all([first, late]);
    expect([a.response.status, b.response.status]).toEqual([200, 200]);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
  });

  it('retries only once: a second 401 ends the session instead of looping', async () => {
    const { server, clock } = world();
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);
    // The refresh succeeds but the server still rejects the new access token.
    server.outages.set('/api/v1/auth/me', { status: 401, code: 'token_invalid' });

    const { response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(401);
    expect(server.count('GET', '/api/v1/auth/me')).toBe(2);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
    expect(session.getState()).toMatchObject({ status: 'anonymous', notice: expect.stringMatching(/session has ended/) });
  });

  it('logs the person out cleanly when the refresh fails', async () => {
    const { server, clock } = world();
    const { session } = tab(server.browser());
    await registered(session);
    server.revokeAllSessions(); // e.g. revoked from another device
    expireAccess(clock);

    const { error, response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(401);
    expect(error).toMatchObject({ code: 'not_authenticated' });
    expect(server.calls.at(-1)).toMatchObject({ path: '/api/v1/auth/refresh', status: 401, code: 'session_revoked' });
    expect(session.getState()).toMatchObject({ status: 'anonymous', notice: 'Your session has ended. Please sign in again.' });
    expect(server.count('GET', '/api/v1/auth/me')).toBe(1); // no retry after a failed refresh
  });

  it('ends the session at once on session_revoked, without trying to refresh', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    await registered(session);
    server.revokeAllSessions();

    const { response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(401);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(0);
    expect(session.getState().status).toBe('anonymous');
  });

  it('ends the session when an administrator disabled the account (403 account_disabled)', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    await registered(session);
    server.users.get('ada@example.com')!.disabled = true;

    const { response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(403);
    expect(session.getState()).toMatchObject({ status: 'anonymous', notice: expect.stringMatching(/disabled/) });
  });

  it('keeps the session when refresh is merely unavailable (503), returning the original 401', async () => {
    const { server, clock } = world();
    const { session } = tab(server.browser());
    await registered(session);
    expireAccess(clock);
    server.outages.set('/api/v1/auth/refresh', { status: 503, code: 'database_unavailable' });

    const { response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(401);
    expect(session.getState().status).toBe('authenticated');

    server.outages.clear();
    const again = await session.api.GET('/api/v1/auth/me');
    expect(again.response.status).toBe(200);
  });

  it('does not refresh or log out on a 401 that is about credentials (wrong current password)', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    await registered(session);
    const res = await session.api.PUT('/api/v1/auth/password', {
      body: { current_password: 'Wrong-password1', new_password: 'Another-pass2' },
    });
    expect(res.response.status).toBe(401);
    expect(res.error).toMatchObject({ code: 'invalid_credentials', detail: 'The current password is incorrect.' });
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(0);
    expect(session.getState().status).toBe('authenticated');
  });

  it('does not try to refresh for a visitor who is known to be signed out', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    await session.start(); // anonymous: one refresh attempt on load
    const { response } = await session.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(401);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
  });

  it('never retries the credential endpoints themselves', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    await session.start();
    const result = await session.login({ email: 'nobody@example.com', password: PASSWORD });
    expect(result.error).toMatchObject({ status: 401, code: 'invalid_credentials' });
    expect(server.count('POST', '/api/v1/auth/login')).toBe(1);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1); // only the one from start()
  });
});

describe('start (page load)', () => {
  it('is anonymous without a notice when nobody is signed in, after one refresh attempt', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    expect(session.getState().status).toBe('loading');
    await session.start();
    expect(session.getState()).toEqual({ status: 'anonymous', notice: undefined });
    expect(server.calls.map((c) => `${c.path} ${c.code}`)).toEqual([
      '/api/v1/auth/me not_authenticated',
      '/api/v1/auth/refresh refresh_token_missing',
    ]);
  });

  it('says so when the server cannot answer, instead of pretending nobody is signed in', async () => {
    const { server } = world();
    const { session } = tab(server.browser());
    server.outages.set('/api/v1/auth/me', { status: 503, code: 'database_unavailable' });
    await session.start();
    expect(session.getState()).toEqual({ status: 'anonymous', notice: 'Unavailable.' });
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(0);
  });

  it('explains a failure without a problem document (e.g. a proxy error page)', async () => {
    const session = createSession({
      baseUrl: ORIGIN,
      fetch: async () => new Response('Bad gateway', { status: 502, headers: { 'Content-Type': 'text/html' } }),
      locks: null,
      channel: null,
      storage: null,
    });
    await session.start();
    expect(session.getState()).toEqual({
      status: 'anonymous',
      notice: 'The server is unavailable right now. Please try again in a moment.',
    });
  });

  it('stays signed in across a reload, even after the access token expired', async () => {
    const { server, clock } = world();
    const browser = server.browser();
    await registered(tab(browser).session);
    expireAccess(clock);

    const reloaded = tab(browser).session; // a new page, same cookie jar
    await reloaded.start();
    expect(reloaded.getState()).toMatchObject({ status: 'authenticated', user: { email: 'ada@example.com' } });
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
  });
});

describe('several tabs', () => {
  it('two tabs racing a refresh under a Web Lock: one refresh, both requests succeed, nobody logged out', async () => {
    const { server, clock } = world();
    const browser = server.browser();
    const locks = new FakeLocks();
    const storage = new MemoryStorage();
    const a = tab(browser, { locks, storage }).session;
    const b = tab(browser, { locks, storage }).session;
    await registered(a);
    await b.start();
    expireAccess(clock);

    const [ra, rb] = await Promise.all([a.api.GET('/api/v1/auth/me'), b.api.GET('/api/v1/auth/me')]);
    expect([ra.response.status, rb.response.status]).toEqual([200, 200]);
    expect(locks.granted).toBe(2); // both asked; the second found the cookies renewed already
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
    expect([a.getState().status, b.getState().status]).toEqual(['authenticated', 'authenticated']);
    expect([...server.sessions.values()].some((s) => s.revoked)).toBe(false);
  });

  it('without Web Locks, racing tabs both refresh and the server grace keeps them signed in', async () => {
    const { server, clock } = world();
    const browser = server.browser();
    const a = tab(browser).session;
    const b = tab(browser).session;
    await registered(a);
    await b.start();
    expireAccess(clock);

    const [ra, rb] = await Promise.all([a.api.GET('/api/v1/auth/me'), b.api.GET('/api/v1/auth/me')]);
    expect([ra.response.status, rb.response.status]).toEqual([200, 200]);
    expect(server.calls.filter((c) => c.path === '/api/v1/auth/refresh').map((c) => c.status)).toEqual([200, 200]);
    expect([a.getState().status, b.getState().status]).toEqual(['authenticated', 'authenticated']);

    // and the session goes on: the jar kept the winner's refresh token
    clock.now += 20_000;
    const later = await a.api.GET('/api/v1/auth/me');
    expect(later.response.status).toBe(200);
  });

  it('a logout in one tab signs the other tabs out (BroadcastChannel)', async () => {
    const { server } = world();
    const browser = server.browser();
    const channelName = `test-auth-${++channelCounter}`;
    const a = tab(browser, { channelName }).session;
    const b = tab(browser, { channelName }).session;
    await registered(a);
    await b.start();
    expect(b.getState().status).toBe('authenticated');

    await a.logout();
    expect(a.getState()).toMatchObject({ status: 'anonymous', notice: 'You have signed out.' });
    await vi.waitFor(() => expect(b.getState()).toMatchObject({ status: 'anonymous', notice: 'You signed out in another tab.' }));
    expect(browser.jar.get('access_token')).toBeUndefined();
    expect(browser.jar.get('refresh_token')).toBeUndefined();
  });

  it('a sign-in in one tab signs the other tabs in', async () => {
    const { server } = world();
    const browser = server.browser();
    const channelName = `test-auth-${++channelCounter}`;
    const a = tab(browser, { channelName }).session;
    const b = tab(browser, { channelName }).session;
    await b.start();
    expect(b.getState().status).toBe('anonymous');
    await registered(a);
    await vi.waitFor(() => expect(b.getState()).toMatchObject({ status: 'authenticated', user: { email: 'ada@example.com' } }));
  });

  it('a failed refresh in one tab signs the other tabs out too', async () => {
    const { server, clock } = world();
    const browser = server.browser();
    const channelName = `test-auth-${++channelCounter}`;
    const a = tab(browser, { channelName }).session;
    const b = tab(browser, { channelName }).session;
    await registered(a);
    await b.start();
    server.revokeAllSessions();
    expireAccess(clock);
    await a.api.GET('/api/v1/auth/me');
    expect(a.getState().status).toBe('anonymous');
    await vi.waitFor(() => expect(b.getState()).toMatchObject({ status: 'anonymous', notice: expect.stringMatching(/session has ended/) }));
  });

  it('logout-all ends every session of the user', async () => {
    const { server } = world();
    const laptop = tab(server.browser()).session;
    const phone = tab(server.browser()).session; // another browser: its own cookie jar
    await registered(laptop);
    expect((await phone.login({ email: 'ada@example.com', password: PASSWORD })).error).toBeUndefined();

    const result = await laptop.logoutAll();
    expect(result.error).toBeUndefined();
    expect(laptop.getState()).toMatchObject({ status: 'anonymous', notice: 'You have signed out on every device.' });
    const { response } = await phone.api.GET('/api/v1/auth/me');
    expect(response.status).toBe(401);
    expect(phone.getState().status).toBe('anonymous');
  });
});
