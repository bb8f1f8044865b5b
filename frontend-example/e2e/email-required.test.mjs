// End-to-end: Latchkey with REQUIRE_VERIFIED_EMAIL=true. Registering answers
// 202 without a session, and signing in waits until the address is verified.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack, stopStack } from './harness.mjs';
import {
  assertTokenGone,
  errorsOf,
  freshPage,
  linkOfMail,
  login,
  newEmail,
  signInHeading,
  submitLogin,
  submitRegistration,
  tasksHeading,
  verifyBanner,
  visible,
} from './pages.mjs';

let stack;

before(async () => {
  stack = await startStack({ env: { REQUIRE_VERIFIED_EMAIL: 'true' } });
});

after(async () => {
  await stopStack(stack);
});

describe('REQUIRE_VERIFIED_EMAIL=true in Chromium', () => {
  test('register: check your inbox; sign in: not verified yet; the link verifies; then sign in works', async () => {
    const { context, page } = await freshPage(stack);
    const email = newEmail();
    await submitRegistration(page, email);
    await visible(page.getByRole('heading', { name: 'Check your inbox' }));
    await visible(page.getByText(`We sent a link to ${email}`, { exact: false }));
    const names = (await context.cookies()).map((c) => c.name);
    assert.ok(!names.includes('access_token') && !names.includes('refresh_token'), names.join(','));

    // signing in before verifying: a clear message and the way out
    await submitLogin(page, email);
    const alert = await visible(page.getByRole('alert'));
    assert.match(await alert.innerText(), /not verified yet/);
    assert.match(await alert.innerText(), /Forgot password\?/);
    assert.equal(await tasksHeading(page).count(), 0);

    // the link, opened while signed out
    const { link } = await linkOfMail(stack, email, '/verify-email');
    await page.goto(link);
    await visible(page.getByText('Your email address is verified.'));
    await assertTokenGone(page, link);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await visible(signInHeading(page));
    await login(page, email);
    assert.equal(await verifyBanner(page).count(), 0);
    assert.deepEqual(errorsOf(page), []);
    await context.close();
  });
});
