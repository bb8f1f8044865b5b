import { afterEach, describe, expect, it, vi } from 'vitest';
import { runAction } from '../hooks/useAction';
import { FakeLatchkey, type Clock } from '../test/fakeLatchkey';
import { codeOf, type Failure } from './problem';
import { createSession, type Session } from './session';

const ORIGIN = 'http://app.test';
const PASSWORD = 'Correct-horse1';
const EMAIL = 'ada@example.com';

let open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open) o.close();
  open = [];
});

function world(options: ConstructorParameters<typeof FakeLatchkey>[1] = {}) {
  const clock: Clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const server = new FakeLatchkey(clock, { accessTtl: 3, ...options });
  return { clock, server };
}

function tab(server: FakeLatchkey, browser = server.browser()) {
  const network = vi.fn((request: Request) => browser.fetch(request));
  const session = createSession({ baseUrl: ORIGIN, fetch: network, locks: null, storage: null, channel: null });
  open.push(session);
  return { session, browser, network };
}

/** Registers, turns TOTP on with the current code, and returns the recovery codes. */
async function withTotp(session: Session, server: FakeLatchkey): Promise<string[]> {
  await session.register({ email: EMAIL, password: PASSWORD });
  server.users.get(EMAIL)!.email_verified = true; // as the verification link would
  const setup = await session.setupTotp();
  expect(setup.data?.secret).toMatch(/^[A-Z2-7]+$/);
  expect(setup.data?.qr_svg).toMatch(/^<svg/);
  const enabled = await session.enableTotp(server.codeFor(EMAIL));
  expect(enabled.data).toHaveLength(10);
  expect(session.getState()).toMatchObject({ status: 'authenticated', user: { mfa_enabled: true } });
  return enabled.data!;
}

describe('login with a second factor', () => {
  it('answers signed_in for an account without one', async () => {
    const { server } = world();
    const { session } = tab(server);
    await session.register({ email: EMAIL, password: PASSWORD });
    await session.logout();
    const result = await session.login({ email: EMAIL, password: PASSWORD });
    expect(result).toMatchObject({ kind: 'signed_in', user: { email: EMAIL, mfa_enabled: false } });
    expect(session.getState().status).toBe('authenticated');
  });

  it('answers second_factor (202) with a ticket cookie and no session; the code signs in', async () => {
    const { server } = world();
    const { session, browser } = tab(server);
    await withTotp(session, server);
    await session.logout();

    const result = await session.login({ email: EMAIL, password: PASSWORD });
    expect(result).toMatchObject({ kind: 'second_factor', methods: ['totp', 'recovery_code'] });
    expect(result.response?.status).toBe(202);
    expect(result.error).toBeUndefined();
    expect(session.getState().status).toBe('anonymous');
    expect(browser.jar.get('access_token')).toBeUndefined();
    expect(browser.jar.get('mfa_ticket')).toMatchObject({ path: '/api/v1/auth/mfa', httpOnly: true });
    expect(browser.jar.documentCookie()).toBe('');

    const wrong = await session.verifyMfa({ code: '000000' === server.codeFor(EMAIL, 1) ? '111111' : '000000' });
    expect(codeOf(wrong)).toBe('invalid_code');
    expect(session.getState().status).toBe('anonymous');

    const right = await session.verifyMfa({ code: server.codeFor(EMAIL, 1) }); // the enable code's step is spent
    expect(right.response?.status).toBe(200);
    expect(session.getState()).toMatchObject({ status: 'authenticated', user: { email: EMAIL, mfa_enabled: true } });
    expect(browser.jar.get('mfa_ticket')).toBeUndefined();
    // a 401 from /mfa/verify is about the code or the ticket: never a refresh
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(0);
  });

  it('does not take a code twice (the same time step)', async () => {
    const { server } = world();
    const { session } = tab(server);
    await withTotp(session, server);
    await session.logout();
    await session.login({ email: EMAIL, password: PASSWORD });
    expect(codeOf(await session.verifyMfa({ code: server.codeFor(EMAIL) }))).toBe('invalid_code'); // enable used it
  });

  it('signs in with a recovery code, once', async () => {
    const { server } = world();
    const { session } = tab(server);
    const codes = await withTotp(session, server);
    await session.logout();
    await session.login({ email: EMAIL, password: PASSWORD });
    expect((await session.verifyMfa({ recovery_code: codes[3].toUpperCase() })).response?.status).toBe(200);
    await session.logout();
    await session.login({ email: EMAIL, password: PASSWORD });
    expect(codeOf(await session.verifyMfa({ recovery_code: codes[3] }))).toBe('invalid_code');
    expect(session.getState().status).toBe('anonymous');
  });

  it('ends the ticket after five tries or five minutes: mfa_ticket_invalid', async () => {
    const { server, clock } = world();
    const { session } = tab(server);
    await withTotp(session, server);
    await session.logout();
    await session.login({ email: EMAIL, password: PASSWORD });
    for (let i = 0; i < 5; i++) expect(codeOf(await session.verifyMfa({ recovery_code: 'nope' }))).toBe('invalid_code');
    expect(codeOf(await session.verifyMfa({ code: server.codeFor(EMAIL, 1) }))).toBe('mfa_ticket_invalid');

    await session.login({ email: EMAIL, password: PASSWORD });
    clock.now += 301_000;
    expect(codeOf(await session.verifyMfa({ code: server.codeFor(EMAIL) }))).toBe('mfa_ticket_invalid');
    expect(session.getState().status).toBe('anonymous');
  });

  it('keeps the single-flight refresh after a second-factor sign-in', async () => {
    const { server, clock } = world();
    const { session } = tab(server);
    await withTotp(session, server);
    await session.logout();
    await session.login({ email: EMAIL, password: PASSWORD });
    await session.verifyMfa({ code: server.codeFor(EMAIL, 1) });
    clock.now += 4_000; // the access token expired
    const results = await Promise.all(Array.from({ length: 4 }, () => session.api.GET('/api/v1/auth/me')));
    expect(results.map((r) => r.response.status)).toEqual([200, 200, 200, 200]);
    expect(server.count('POST', '/api/v1/auth/refresh')).toBe(1);
    expect(session.getState().status).toBe('authenticated');
  });
});

describe('second-factor settings', () => {
  it('need a recent sign-in: 403 reauth_required, then POST /reauth with password and code', async () => {
    const { server, clock } = world({ reauthMaxAge: 60 });
    const { session } = tab(server);
    const codes = await withTotp(session, server);
    clock.now += 61_000;

    const refused = await session.newRecoveryCodes();
    expect(refused.response?.status).toBe(403);
    expect(codeOf(refused)).toBe('reauth_required');
    expect(codeOf(await session.reauthenticate('Wrong-horse1', server.codeFor(EMAIL)))).toBe('invalid_credentials');
    expect(codeOf(await session.reauthenticate(PASSWORD))).toBe('invalid_code');
    expect((await session.reauthenticate(PASSWORD, server.codeFor(EMAIL))).response?.status).toBe(204);

    const fresh = await session.newRecoveryCodes();
    expect(fresh.data).toHaveLength(10);
    expect(fresh.data).not.toContain(codes[0]);
  });

  it('PUT /password needs a recent sign-in only while a second factor is on', async () => {
    const { server, clock } = world({ reauthMaxAge: 60 });
    const { session } = tab(server);
    await session.register({ email: EMAIL, password: PASSWORD });
    clock.now += 61_000;
    const body = { current_password: PASSWORD, new_password: 'Another-one3' };
    expect((await session.api.PUT('/api/v1/auth/password', { body })).response.status).toBe(204);
  });

  it('turns off with a recovery code; the user reloads with mfa_enabled false', async () => {
    const { server } = world();
    const { session } = tab(server);
    const codes = await withTotp(session, server);
    expect(codeOf(await session.disableTotp('123'))).toBe('invalid_code');
    expect((await session.disableTotp(codes[0])).response?.status).toBe(204);
    expect(session.getState()).toMatchObject({ user: { mfa_enabled: false } });
    expect(codeOf(await session.disableTotp(codes[1]))).toBe('mfa_not_enabled');
  });

  it('refuses a second setup while on (409) and a wrong first code', async () => {
    const { server } = world();
    const { session } = tab(server);
    await session.register({ email: EMAIL, password: PASSWORD });
    expect(codeOf(await session.setupTotp())).toBe('email_not_verified');
    server.users.get(EMAIL)!.email_verified = true;
    await session.setupTotp();
    expect(codeOf(await session.enableTotp('000000' === server.codeFor(EMAIL) ? '111111' : '000000'))).toBe('invalid_code');
    expect(session.getState()).toMatchObject({ user: { mfa_enabled: false } });
    await session.enableTotp(server.codeFor(EMAIL));
    expect(codeOf(await session.setupTotp())).toBe('mfa_already_enabled');
  });
});

describe('reset password with a second factor', () => {
  it('asks for a code (mfa_required), refuses a wrong one (invalid_code), and the link still works', async () => {
    const { server } = world();
    const { session } = tab(server);
    await withTotp(session, server);
    await session.forgotPassword(EMAIL);
    const token = FakeLatchkey.linkIn(server.lastMail(EMAIL, 'reset')).split('#token=')[1];

    expect(codeOf(await session.resetPassword(token, 'Another-one3'))).toBe('mfa_required');
    expect(codeOf(await session.resetPassword(token, 'Another-one3', '999999' === server.codeFor(EMAIL, 1) ? '888888' : '999999'))).toBe('invalid_code');
    const done = await session.resetPassword(token, 'Another-one3', server.codeFor(EMAIL, 1));
    expect(done.response?.status).toBe(204);
    expect(session.getState().status).toBe('anonymous'); // every session was signed out
  });
});

describe('re-authentication and retry (useAction)', () => {
  function recorder() {
    const state = { running: null as string | null, failure: null as Failure | null };
    return {
      state,
      setRunning: (label: string | null) => {
        state.running = label;
      },
      setFailure: (failure: Failure | null) => {
        state.failure = failure;
      },
    };
  }

  it('prompts on 403 reauth_required, then retries the action once, against the double', async () => {
    const { server, clock } = world({ reauthMaxAge: 60 });
    const { session } = tab(server);
    await withTotp(session, server);
    clock.now += 61_000;
    const prompt = vi.fn(async () => (await session.reauthenticate(PASSWORD, server.codeFor(EMAIL))).response?.ok === true);
    const call = vi.fn(() => session.newRecoveryCodes());
    const r = recorder();

    const outcome = await runAction(call, {}, r.setRunning, r.setFailure, prompt);
    expect(prompt).toHaveBeenCalledTimes(1);
    expect(call).toHaveBeenCalledTimes(2);
    expect(outcome?.data).toHaveLength(10);
    expect(r.state).toEqual({ running: null, failure: null });
    // (the access token expired meanwhile: a 401, a transparent refresh and the 403)
    const statuses = server.calls.filter((c) => c.path === '/api/v1/auth/mfa/recovery-codes').map((c) => c.status);
    expect(statuses.filter((s) => s !== 401)).toEqual([403, 200]);
  });

  it('leaves the 403 as the failure when the prompt is cancelled', async () => {
    const { server, clock } = world({ reauthMaxAge: 60 });
    const { session } = tab(server);
    await withTotp(session, server);
    clock.now += 61_000;
    const call = vi.fn(() => session.newRecoveryCodes());
    const r = recorder();
    const outcome = await runAction(call, {}, r.setRunning, r.setFailure, async () => false);
    expect(outcome).toBeUndefined();
    expect(call).toHaveBeenCalledTimes(1);
    expect(codeOf(r.state.failure)).toBe('reauth_required');
  });

  it('retries only once, and prompts only for reauth_required', async () => {
    const forbidden = (code: string) => ({
      error: { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'No.', code },
      response: new Response(null, { status: 403 }),
    });
    const prompt = vi.fn(async () => true);

    const always = vi.fn(async () => forbidden('reauth_required'));
    const r = recorder();
    expect(await runAction(always, {}, r.setRunning, r.setFailure, prompt)).toBeUndefined();
    expect(always).toHaveBeenCalledTimes(2);
    expect(prompt).toHaveBeenCalledTimes(1);
    expect(codeOf(r.state.failure)).toBe('reauth_required');

    const other = vi.fn(async () => forbidden('forbidden'));
    await runAction(other, {}, r.setRunning, r.setFailure, prompt);
    expect(other).toHaveBeenCalledTimes(1);
    expect(prompt).toHaveBeenCalledTimes(1);

    // without a prompt (no <ReauthProvider>), the 403 is just a failure
    const alone = vi.fn(async () => forbidden('reauth_required'));
    await runAction(alone, {}, r.setRunning, r.setFailure);
    expect(alone).toHaveBeenCalledTimes(1);
  });
});
