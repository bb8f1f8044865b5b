import { afterEach, describe, expect, it } from 'vitest';
import { tokenFromFragment } from '../linkToken';
import { FakeLatchkey, type Clock, type FakeOptions, type MailKind } from '../test/fakeLatchkey';
import { codeOf, fieldErrors } from './problem';
import { createSession, PASSWORD_RESET_NOTICE, type ChannelLike, type Session } from './session';

const ORIGIN = 'http://app.test';
const PASSWORD = 'Correct-horse1';
const NEW_PASSWORD = 'Battery-staple2';

let open: { close(): void }[] = [];
let channelCounter = 0;

afterEach(() => {
  for (const o of open) o.close();
  open = [];
});

function world(options: FakeOptions = {}) {
  const clock: Clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const server = new FakeLatchkey(clock, { accessTtl: 3, appUrl: ORIGIN, ...options });
  return { clock, server };
}

/** A page of the SPA in `browser` (one cookie jar); tabs with the same channelName hear each other. */
function tab(browser: { fetch: (r: Request) => Promise<Response> }, channelName?: string): Session {
  const session = createSession({
    baseUrl: ORIGIN,
    fetch: browser.fetch,
    locks: null,
    storage: null,
    channel: channelName ? (new BroadcastChannel(channelName) as unknown as ChannelLike) : null,
  });
  open.push(session);
  return session;
}

async function registered(session: Session, email = 'ada@example.com') {
  const outcome = await session.register({ email, password: PASSWORD, full_name: 'Ada' });
  expect(outcome.error).toBeUndefined();
  expect(session.getState()).toMatchObject({ status: 'authenticated', user: { email, email_verified: false } });
}

/** The token of the last `kind` mail to `address`, read from its link like the page does. */
function tokenOfMail(server: FakeLatchkey, address: string, kind: MailKind): string {
  const link = new URL(FakeLatchkey.linkIn(server.lastMail(address, kind)));
  const token = tokenFromFragment(link.hash);
  expect(token).toBeTruthy();
  return token!;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const refreshes = (server: FakeLatchkey) => server.count('POST', '/api/v1/auth/refresh');

describe('verify email', () => {
  it('registering sends a verification link to the SPA; opening it verifies the address of the signed-in user', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    const mail = server.lastMail('ada@example.com', 'verify');
    expect(FakeLatchkey.linkIn(mail)).toMatch(/^http:\/\/app\.test\/verify-email#token=/);

    const outcome = await session.verifyEmail(tokenOfMail(server, 'ada@example.com', 'verify'));
    expect(outcome.response?.status).toBe(204);
    expect(outcome.error).toBeUndefined();
    // the page's user was reloaded: the banner goes away without a reload
    expect(session.getState()).toMatchObject({ status: 'authenticated', user: { email_verified: true } });
  });

  it('tells the other tabs about the verified address', async () => {
    const { server } = world();
    const browser = server.browser();
    const channelName = `test-email-${++channelCounter}`;
    const a = tab(browser, channelName);
    const b = tab(browser, channelName);
    await registered(a);
    await b.start();
    expect(b.getState()).toMatchObject({ user: { email_verified: false } });

    await a.verifyEmail(tokenOfMail(server, 'ada@example.com', 'verify'));
    await wait(20);
    expect(b.getState()).toMatchObject({ status: 'authenticated', user: { email_verified: true } });
  });

  it('a used or unknown token is 400 invalid_token, and never a reason to refresh or sign out', async () => {
    const { server, clock } = world();
    const session = tab(server.browser());
    await registered(session);
    const token = tokenOfMail(server, 'ada@example.com', 'verify');
    await session.verifyEmail(token);
    clock.now += 4_000; // the access cookie is gone: a session request would refresh

    const again = await session.verifyEmail(token);
    expect(again.response?.status).toBe(400);
    expect(codeOf(again)).toBe('invalid_token');
    expect(codeOf(await session.verifyEmail('made-up'))).toBe('invalid_token');
    expect(refreshes(server)).toBe(0);
    expect(session.getState().status).toBe('authenticated');
  });

  it('works without being signed in (the link opened in another browser)', async () => {
    const { server } = world();
    await registered(tab(server.browser()));
    const elsewhere = tab(server.browser());
    await elsewhere.start();
    const outcome = await elsewhere.verifyEmail(tokenOfMail(server, 'ada@example.com', 'verify'));
    expect(outcome.response?.status).toBe(204);
    expect(elsewhere.getState()).toEqual({ status: 'anonymous' });
    expect(server.users.get('ada@example.com')?.email_verified).toBe(true);
  });

  it('an expired link is invalid_token', async () => {
    const { server, clock } = world({ linkTtl: 60 });
    const session = tab(server.browser());
    await registered(session);
    clock.now += 61_000;
    expect(codeOf(await session.verifyEmail(tokenOfMail(server, 'ada@example.com', 'verify')))).toBe('invalid_token');
  });

  it('resend (202) sends a new link, refreshing the session first when the access token expired', async () => {
    const { server, clock } = world();
    const session = tab(server.browser());
    await registered(session);
    clock.now += 4_000;

    const outcome = await session.resendVerification();
    expect(outcome.response?.status).toBe(202);
    expect(outcome.error).toBeUndefined();
    expect(refreshes(server)).toBe(1);
    expect(server.outbox.filter((m) => m.kind === 'verify')).toHaveLength(2);
  });

  it('resending too often is 429 rate_limited with Retry-After', async () => {
    const { server } = world({ mailsPerMinute: 2 });
    const session = tab(server.browser());
    await registered(session);
    expect((await session.resendVerification()).response?.status).toBe(202);
    expect((await session.resendVerification()).response?.status).toBe(202);
    const limited = await session.resendVerification();
    expect(limited.response?.status).toBe(429);
    expect(codeOf(limited)).toBe('rate_limited');
    expect(Number(limited.response?.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(session.getState().status).toBe('authenticated');
  });

  it('resend needs a session: 401 for someone signed out', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await session.start();
    const outcome = await session.resendVerification();
    expect(outcome.response?.status).toBe(401);
  });
});

describe('REQUIRE_VERIFIED_EMAIL', () => {
  it('register answers 202 without a session; login says email_not_verified until the link is opened', async () => {
    const { server } = world({ requireVerifiedEmail: true });
    const browser = server.browser();
    const session = tab(browser);
    await session.start();

    const outcome = await session.register({ email: 'ada@example.com', password: PASSWORD });
    expect(outcome.response?.status).toBe(202);
    expect(outcome.verificationPending).toBe(true);
    expect(outcome.error).toBeUndefined();
    expect(session.getState()).toEqual({ status: 'anonymous' });
    expect(browser.jar.get('access_token')).toBeUndefined();

    const refused = await session.login({ email: 'ada@example.com', password: PASSWORD });
    expect(refused.response?.status).toBe(403);
    expect(codeOf(refused)).toBe('email_not_verified');
    expect(session.getState().status).toBe('anonymous');

    expect((await session.verifyEmail(tokenOfMail(server, 'ada@example.com', 'verify'))).response?.status).toBe(204);
    const ok = await session.login({ email: 'ada@example.com', password: PASSWORD });
    expect(ok.error).toBeUndefined();
    expect(session.getState()).toMatchObject({ status: 'authenticated', user: { email_verified: true } });
  });

  it('a password reset verifies the address too (the way back for someone who lost the verification mail)', async () => {
    const { server } = world({ requireVerifiedEmail: true });
    const session = tab(server.browser());
    await session.register({ email: 'ada@example.com', password: PASSWORD });
    await session.forgotPassword('ada@example.com');
    const reset = await session.resetPassword(tokenOfMail(server, 'ada@example.com', 'reset'), NEW_PASSWORD);
    expect(reset.response?.status).toBe(204);
    const ok = await session.login({ email: 'ada@example.com', password: NEW_PASSWORD });
    expect(ok.error).toBeUndefined();
  });
});

describe('forgot and reset password', () => {
  it('forgot answers 202 the same way whether or not the account exists, and mails only an existing one', async () => {
    const { server } = world();
    await registered(tab(server.browser()));
    const session = tab(server.browser());
    await session.start();

    const known = await session.forgotPassword('ada@example.com');
    const unknown = await session.forgotPassword('nobody@example.com');
    expect([known.response?.status, unknown.response?.status]).toEqual([202, 202]);
    expect([known.error, unknown.error]).toEqual([undefined, undefined]);
    expect(server.lastMail('ada@example.com', 'reset')).toBeDefined();
    expect(server.lastMail('nobody@example.com')).toBeUndefined();
    expect(FakeLatchkey.linkIn(server.lastMail('ada@example.com', 'reset'))).toMatch(/^http:\/\/app\.test\/reset-password#token=/);
  });

  it('forgot: 422 for an address that is not one, 429 when asked too often', async () => {
    const { server } = world({ mailsPerMinute: 1 });
    const session = tab(server.browser());
    const invalid = await session.forgotPassword('not-an-address');
    expect(invalid.response?.status).toBe(422);
    expect(fieldErrors(invalid.error)).toHaveProperty('email');
    expect((await session.forgotPassword('x@example.com')).response?.status).toBe(202);
    const limited = await session.forgotPassword('x@example.com');
    expect(limited.response?.status).toBe(429);
    expect(codeOf(limited)).toBe('rate_limited');
  });

  it('reset sets the new password, signs out every session (this tab with a notice) and verifies the address', async () => {
    const { server } = world();
    const browser = server.browser();
    const channelName = `test-email-${++channelCounter}`;
    const here = tab(browser, channelName);
    const otherTab = tab(browser, channelName);
    await registered(here);
    await otherTab.start();
    const laptop = tab(server.browser());
    await laptop.login({ email: 'ada@example.com', password: PASSWORD });

    await here.forgotPassword('ada@example.com');
    const outcome = await here.resetPassword(tokenOfMail(server, 'ada@example.com', 'reset'), NEW_PASSWORD);
    expect(outcome.response?.status).toBe(204);
    expect(outcome.error).toBeUndefined();
    expect(here.getState()).toEqual({ status: 'anonymous', notice: PASSWORD_RESET_NOTICE });
    await wait(20);
    expect(otherTab.getState().status).toBe('anonymous');
    expect([...server.sessions.values()].every((s) => s.revoked)).toBe(true);
    // the other browser finds out on its next request
    await laptop.api.GET('/api/v1/auth/me');
    expect(laptop.getState().status).toBe('anonymous');

    expect(codeOf(await here.login({ email: 'ada@example.com', password: PASSWORD }))).toBe('invalid_credentials');
    expect((await here.login({ email: 'ada@example.com', password: NEW_PASSWORD })).error).toBeUndefined();
    expect(here.getState()).toMatchObject({ status: 'authenticated', user: { email_verified: true } });
  });

  it('a reset link works once: the second time it is 400 invalid_token', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    await session.forgotPassword('ada@example.com');
    const token = tokenOfMail(server, 'ada@example.com', 'reset');
    await session.resetPassword(token, NEW_PASSWORD);
    const again = await session.resetPassword(token, 'Another-one3');
    expect(again.response?.status).toBe(400);
    expect(codeOf(again)).toBe('invalid_token');
  });

  it('a weak new password is 422 with a message for new_password, and the link still works', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    await session.forgotPassword('ada@example.com');
    const token = tokenOfMail(server, 'ada@example.com', 'reset');
    const weak = await session.resetPassword(token, 'short');
    expect(weak.response?.status).toBe(422);
    expect(fieldErrors(weak.error)).toHaveProperty('new_password');
    expect(session.getState().status).toBe('authenticated'); // nothing happened
    expect((await session.resetPassword(token, NEW_PASSWORD)).response?.status).toBe(204);
  });

  it("resetting another account's password leaves the session of this browser alone", async () => {
    const { server } = world();
    const other = tab(server.browser());
    await registered(other, 'bob@example.com');
    const session = tab(server.browser());
    await registered(session, 'ada@example.com');
    await session.forgotPassword('bob@example.com');
    const outcome = await session.resetPassword(tokenOfMail(server, 'bob@example.com', 'reset'), NEW_PASSWORD);
    expect(outcome.response?.status).toBe(204);
    expect(session.getState()).toMatchObject({ status: 'authenticated', user: { email: 'ada@example.com' } });
  });

  it('the link endpoints never refresh and retry', async () => {
    const { server, clock } = world();
    const session = tab(server.browser());
    await registered(session);
    clock.now += 4_000;
    await session.forgotPassword('ada@example.com');
    await session.resetPassword('made-up', NEW_PASSWORD);
    await session.confirmEmail('made-up');
    expect(refreshes(server)).toBe(0);
    expect(server.calls.map((c) => `${c.path} ${c.status}`)).toEqual([
      '/api/v1/auth/register 201',
      '/api/v1/auth/password/forgot 202',
      '/api/v1/auth/password/reset 400',
      '/api/v1/auth/email/confirm 400',
    ]);
  });
});

describe('change email', () => {
  it('202 mails a link to the new address and changes nothing until it is confirmed', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);

    const outcome = await session.changeEmail('ada@new.example.com', PASSWORD);
    expect(outcome.response?.status).toBe(202);
    expect(outcome.error).toBeUndefined();
    expect(server.lastMail('ada@new.example.com', 'confirm')).toBeDefined();
    expect(server.lastMail('ada@example.com', 'confirm')).toBeUndefined();
    expect(FakeLatchkey.linkIn(server.lastMail('ada@new.example.com'))).toMatch(/^http:\/\/app\.test\/confirm-email#token=/);
    expect((await session.api.GET('/api/v1/auth/me')).data?.email).toBe('ada@example.com');

    const confirmed = await session.confirmEmail(tokenOfMail(server, 'ada@new.example.com', 'confirm'));
    expect(confirmed.response?.status).toBe(204);
    expect(session.getState()).toMatchObject({
      status: 'authenticated',
      user: { email: 'ada@new.example.com', email_verified: true },
    });
    // sign in with the new address
    const fresh = tab(server.browser());
    expect((await fresh.login({ email: 'ada@new.example.com', password: PASSWORD })).error).toBeUndefined();
    expect(codeOf(await fresh.login({ email: 'ada@example.com', password: PASSWORD }))).toBe('invalid_credentials');
  });

  it('a wrong current password is 401 invalid_credentials: no refresh, and the person stays signed in', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    const outcome = await session.changeEmail('ada@new.example.com', 'Wrong-password1');
    expect(outcome.response?.status).toBe(401);
    expect(codeOf(outcome)).toBe('invalid_credentials');
    expect(refreshes(server)).toBe(0);
    expect(session.getState().status).toBe('authenticated');
    expect(server.outbox.filter((m) => m.kind === 'confirm')).toEqual([]);
  });

  it('an invalid new address is 422 for new_email', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    const outcome = await session.changeEmail('nope', PASSWORD);
    expect(outcome.response?.status).toBe(422);
    expect(fieldErrors(outcome.error)).toHaveProperty('new_email');
  });

  it('confirming is 409 email_taken when someone took the address meanwhile, and the address stays', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    await session.changeEmail('wanted@example.com', PASSWORD);
    await registered(tab(server.browser()), 'wanted@example.com');

    const outcome = await session.confirmEmail(tokenOfMail(server, 'wanted@example.com', 'confirm'));
    expect(outcome.response?.status).toBe(409);
    expect(codeOf(outcome)).toBe('email_taken');
    expect(session.getState()).toMatchObject({ user: { email: 'ada@example.com' } });
  });

  it('an address that has an account gets no link, and the answer is the same 202', async () => {
    const { server } = world();
    await registered(tab(server.browser()), 'taken@example.com');
    const session = tab(server.browser());
    await registered(session);
    const outcome = await session.changeEmail('taken@example.com', PASSWORD);
    expect(outcome.response?.status).toBe(202);
    expect(server.lastMail('taken@example.com', 'confirm')).toBeUndefined();
  });

  it('a confirmation link works once', async () => {
    const { server } = world();
    const session = tab(server.browser());
    await registered(session);
    await session.changeEmail('ada@new.example.com', PASSWORD);
    const token = tokenOfMail(server, 'ada@new.example.com', 'confirm');
    await session.confirmEmail(token);
    expect(codeOf(await session.confirmEmail(token))).toBe('invalid_token');
  });
});
