// End-to-end: two-step sign-in (TOTP) in Chromium against the real Latchkey,
// with real RFC 6238 codes computed here from the secret the setup screen
// shows. Latchkey runs with REAUTH_MAX_AGE=2s, so the re-authentication
// prompt can be reached by waiting a few seconds.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startStack, stopStack } from './harness.mjs';
import {
  PASSWORD,
  assertNoTokenInDocumentCookie,
  errorsOf,
  freshPage,
  linkOfMail,
  register,
  signInHeading,
  sleep,
  submitLogin,
  tasksHeading,
  visible,
} from './pages.mjs';

const REAUTH_MAX_AGE_SECONDS = 2;
const STEP_SECONDS = 30;

/** RFC 4648 base32 (the secret as apps take it), to bytes. */
export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const index = alphabet.indexOf(ch);
    if (index < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (HMAC-SHA1, 6 digits) of `secret` (bytes) at time step `step`. */
export function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(number).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);

/**
 * The authenticator app: the code of the current step, but never a step the
 * server took already (a code works once per user): when the current step was
 * used, wait for the next one (at most 30 s).
 */
function authenticator(base32) {
  const secret = base32Decode(base32);
  let lastStep = -1;
  return {
    async code() {
      const step = Math.max(stepNow(), lastStep + 1);
      while (stepNow() < step) await sleep(200);
      lastStep = step;
      return totp(secret, step);
    },
  };
}

let stack;

before(async () => {
  stack = await startStack({ env: { REAUTH_MAX_AGE: `${REAUTH_MAX_AGE_SECONDS}s` } });
});

after(async () => {
  await stopStack(stack);
});

const reauthDialog = (page) => page.getByRole('dialog', { name: 'Confirm it’s you' });
const security = (page) => page.getByRole('region', { name: 'Two-step sign-in' });

/**
 * Does `action` and waits for `result`; when the re-authentication prompt
 * comes first (REAUTH_MAX_AGE is 2 s here), answers it with the password (and
 * a code when `app` is given). Returns whether the prompt appeared.
 */
async function withReauth(page, action, result, app = null) {
  await action();
  const dialog = reauthDialog(page);
  await result.or(dialog).first().waitFor();
  if (!(await dialog.isVisible())) return false;
  await dialog.getByLabel('Your password').fill(PASSWORD);
  if (app) await dialog.getByLabel('Code from your authenticator app').fill(await app.code());
  await dialog.getByRole('button', { name: 'Continue' }).click();
  await visible(result);
  assert.equal(await dialog.count(), 0);
  return true;
}

async function logOut(page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await visible(signInHeading(page));
}

async function recoveryCodes(page) {
  const list = await visible(page.getByTestId('recovery-codes'));
  return (await list.getByRole('listitem').allInnerTexts()).map((c) => c.trim());
}

describe('two-step sign-in in Chromium (REAUTH_MAX_AGE=2s)', () => {
  let email;
  let app;
  let codes;

  test('turn it on from the account page: QR code and secret, a real code, ten recovery codes once', async () => {
    const { context, page } = await freshPage(stack);
    email = await register(page);
    await page.goto('/#/account');
    // not before the address is verified: it is how the account is recovered
    await visible(security(page).getByTestId('mfa-needs-verified-email'));
    assert.equal(await security(page).getByRole('button', { name: 'Turn on two-step sign-in' }).isDisabled(), true);
    const { link } = await linkOfMail(stack, email, '/verify-email');
    await page.goto(link);
    await visible(page.getByText('Your email address is verified.'));
    await page.goto('/#/account');
    const section = await visible(security(page));
    assert.match(await page.getByTestId('mfa-status').innerText(), /Off/);

    await withReauth(page, () => section.getByRole('button', { name: 'Turn on two-step sign-in' }).click(), page.getByTestId('totp-secret'));
    // the QR code is an image of the server's SVG (a data: URL), not markup in the page
    const qr = section.getByRole('img', { name: 'QR code for your authenticator app' });
    assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/);
    await page.waitForFunction(() => document.querySelector('img.qr')?.naturalWidth > 0);
    assert.equal(await section.locator('svg').count(), 0);
    const secret = (await page.getByTestId('totp-secret').innerText()).replace(/\s+/g, '');
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    app = authenticator(secret);

    // a wrong code first
    const wrong = totp(base32Decode(secret), stepNow()) === '000000' ? '111111' : '000000';
    await section.getByLabel('Code from your authenticator app').fill(wrong);
    await withReauth(page, () => section.getByRole('button', { name: 'Turn on' }).click(), section.getByRole('alert'));
    assert.match(await section.getByRole('alert').innerText(), /not right/);

    const code = await app.code();
    await section.getByLabel('Code from your authenticator app').fill(code);
    await withReauth(page, () => section.getByRole('button', { name: 'Turn on' }).click(), page.getByTestId('recovery-codes'));
    codes = await recoveryCodes(page);
    assert.equal(codes.length, 10);
    for (const c of codes) assert.match(c, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);

    // download them as text
    const [download] = await Promise.all([page.waitForEvent('download'), section.getByRole('button', { name: 'Download as text' }).click()]);
    assert.equal(download.suggestedFilename(), 'latchkey-recovery-codes.txt');
    const text = await readFile(await download.path(), 'utf8');
    for (const c of codes) assert.ok(text.includes(c), `${c} is in the file`);

    // shown once: "Done" only after "I saved them"
    const done = section.getByRole('button', { name: 'Done' });
    assert.equal(await done.isDisabled(), true);
    await section.getByLabel('I saved my recovery codes').check();
    await done.click();
    assert.equal(await page.getByTestId('recovery-codes').count(), 0);
    await page.getByText('Signing in asks for a code').waitFor();
    assert.match(await page.getByTestId('mfa-status').innerText(), /On/);
    assert.deepEqual(errorsOf(page), []);
    await assertNoTokenInDocumentCookie(page);
    await context.close();
  });

  test('sign in: password, then the second step with a real code', async () => {
    assert.ok(app, 'the first test turned it on');
    const { context, page } = await freshPage(stack);
    await submitLogin(page, email);
    await visible(page.getByRole('heading', { name: 'Two-step sign-in' }));
    const names = (await context.cookies()).map((c) => c.name);
    assert.ok(!names.includes('access_token') && !names.includes('refresh_token'), names.join(','));
    const ticket = (await context.cookies()).find((c) => c.name === 'mfa_ticket');
    assert.ok(ticket?.httpOnly, 'the ticket cookie is httpOnly');

    // a wrong code: a message, still on the second step
    const wrong = '000000';
    await page.getByLabel('Code from your authenticator app').fill(wrong);
    await page.getByRole('button', { name: 'Verify' }).click();
    assert.match(await (await visible(page.getByRole('alert'))).innerText(), /not right/);

    // the enabling code's time step is spent: this waits for the next step
    await page.getByLabel('Code from your authenticator app').fill(await app.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await visible(tasksHeading(page));
    await page.goto('/#/account');
    assert.match(await (await visible(page.getByTestId('mfa-status'))).innerText(), /On/);
    await logOut(page);
    assert.deepEqual(errorsOf(page), []);
    await assertNoTokenInDocumentCookie(page);
    await context.close();
  });

  test('sign in with a recovery code instead; a used one does not work again', async () => {
    const { context, page } = await freshPage(stack);
    await submitLogin(page, email);
    await visible(page.getByRole('heading', { name: 'Two-step sign-in' }));
    await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
    await page.getByLabel('Recovery code').fill(codes[0].toUpperCase());
    await page.getByRole('button', { name: 'Verify' }).click();
    await visible(tasksHeading(page));
    await logOut(page);

    await submitLogin(page, email);
    await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
    await page.getByLabel('Recovery code').fill(codes[0]);
    await page.getByRole('button', { name: 'Verify' }).click();
    assert.match(await (await visible(page.getByRole('alert'))).innerText(), /not right|used already/);
    await page.getByLabel('Recovery code').fill(codes[1]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await visible(tasksHeading(page));
    assert.deepEqual(errorsOf(page), []);
    await context.close();
  });

  test('an old sign-in: "New recovery codes" asks for the password and a code, then completes', async () => {
    const { context, page } = await freshPage(stack);
    await submitLogin(page, email);
    await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
    await page.getByLabel('Recovery code').fill(codes[2]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await visible(tasksHeading(page));
    await page.goto('/#/account');
    const section = await visible(security(page));

    await sleep((REAUTH_MAX_AGE_SECONDS + 1) * 1000); // the sign-in is no longer recent
    const prompted = await withReauth(page, () => section.getByRole('button', { name: 'New recovery codes' }).click(), page.getByTestId('recovery-codes'), app);
    assert.equal(prompted, true, 'the re-authentication prompt appeared');
    const fresh = await recoveryCodes(page);
    assert.equal(fresh.length, 10);
    for (const c of codes) assert.ok(!fresh.includes(c));
    codes = fresh;
    // (401s are the 3-second access token expiring meanwhile, refreshed and retried transparently)
    const log = context.apiLog
      .filter((e) => ['/api/v1/auth/mfa/recovery-codes', '/api/v1/auth/reauth'].includes(e.path) && e.status !== 401)
      .map((e) => `${e.path} ${e.status}`);
    assert.deepEqual(log, ['/api/v1/auth/mfa/recovery-codes 403', '/api/v1/auth/reauth 204', '/api/v1/auth/mfa/recovery-codes 200']);
    assert.deepEqual(errorsOf(page), []);
    await context.close();
  });

  test('turn it off with a recovery code; then signing in needs only the password', async () => {
    const { context, page } = await freshPage(stack);
    await submitLogin(page, email);
    await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
    await page.getByLabel('Recovery code').fill(codes[0]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await visible(tasksHeading(page));
    await page.goto('/#/account');
    const section = await visible(security(page));
    await section.getByRole('button', { name: 'Turn off' }).click();
    await section.getByLabel('Code or recovery code').fill(codes[1]);
    await withReauth(page, () => section.getByRole('button', { name: 'Turn off two-step sign-in' }).click(),
      page.getByText('Two-step sign-in is off.'), app);
    assert.match(await page.getByTestId('mfa-status').innerText(), /Off/);
    await logOut(page);
    await submitLogin(page, email);
    await visible(tasksHeading(page));
    assert.deepEqual(errorsOf(page), []);
    await context.close();
  });
});
