// End-to-end: the email flows. Latchkey sends real mail over SMTP to MailDev;
// the tests read each mail from MailDev's REST API, take the link out of its
// text and open it in Chromium, like a person clicking it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack, stopStack } from './harness.mjs';
import {
  assertNoTokenInDocumentCookie,
  assertTokenGone,
  errorsOf,
  eventually,
  freshPage,
  hidden,
  linkOfMail,
  login,
  newEmail,
  PASSWORD,
  register,
  signInHeading,
  submitLogin,
  tasksHeading,
  verifyBanner,
  visible,
} from './pages.mjs';

const NEW_PASSWORD = 'N3w-password!';
let stack;

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stopStack(stack);
});

describe('email flows in Chromium, with mail through a real SMTP server', () => {
  test('register, the verification mail arrives, its link verifies the address and the banner goes', async () => {
    const { context, page } = await freshPage(stack);
    const email = await register(page);
    const banner = await visible(verifyBanner(page));
    assert.match(await banner.innerText(), new RegExp(email.replace(/[.+]/g, '\\$&')));

    const first = await linkOfMail(stack, email, '/verify-email');
    assert.match(first.mail.subject, /\S/);
    assert.match(first.mail.from[0].address, /latchkey@example\.com/);

    // resend: a new link (202 → "Sent")
    await banner.getByRole('button', { name: 'Resend verification email' }).click();
    await visible(banner.getByText('Sent. Check your inbox for the new link.'));
    const second = await linkOfMail(stack, email, '/verify-email', [first.mail.id]);

    // open the newest link, in the browser that is signed in
    await page.goto(second.link);
    await visible(page.getByRole('heading', { name: 'Verify your email address' }));
    await visible(page.getByText('Your email address is verified.'));
    await assertTokenGone(page, second.link);
    await hidden(verifyBanner(page));
    await page.getByRole('link', { name: 'Continue to your tasks' }).click();
    await visible(tasksHeading(page));
    assert.equal(await verifyBanner(page).count(), 0);
    // the server says so too: still no banner after a reload
    await page.reload();
    await visible(tasksHeading(page));
    assert.equal(await verifyBanner(page).count(), 0);

    // the same link a second time changes nothing and says why
    await page.goto(second.link);
    await visible(page.getByText('This link was already used: your email address is verified.'));
    await assertTokenGone(page, second.link);

    await assertNoTokenInDocumentCookie(page);
    assert.deepEqual(errorsOf(page), []);
    await context.close();
  });

  test('forgot password: the reset mail, a new password, every old session signed out, sign in with the new one', async () => {
    const { context: laptop, page: laptopPage } = await freshPage(stack);
    const email = await register(laptopPage);
    const { context: phone, page: phonePage } = await freshPage(stack);
    await login(phonePage, email);

    // a third browser, signed out, asks for a link from the sign-in page
    const { context: other, page } = await freshPage(stack);
    await page.goto('/#/login');
    await visible(signInHeading(page));
    await page.getByLabel('Email').fill(email);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await visible(page.getByRole('heading', { name: 'Forgot password?' }));
    assert.equal(await page.getByLabel('Email').inputValue(), email); // carried over from the sign-in form
    await page.getByRole('button', { name: 'Send reset link' }).click();
    const sent = await visible(page.getByRole('status').getByText(/^If an account exists for that address/));
    const answer = await sent.innerText();

    // an address without an account gets the very same answer (and no mail)
    const { context: stranger, page: strangerPage } = await freshPage(stack);
    await strangerPage.goto('/#/forgot-password');
    const nobody = newEmail('nobody');
    await strangerPage.getByLabel('Email').fill(nobody);
    await strangerPage.getByRole('button', { name: 'Send reset link' }).click();
    assert.equal(await (await visible(strangerPage.getByRole('status').getByText(/^If an account exists/))).innerText(), answer);
    await stranger.close();

    const { mail, link } = await linkOfMail(stack, email, '/reset-password');
    assert.match(mail.subject, /\S/);
    await page.goto(link);
    await visible(page.getByRole('heading', { name: 'Choose a new password' }));
    await assertTokenGone(page, link);

    // the two passwords differ: checked here, nothing sent
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('Repeat the new password').fill('Something-else1');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await visible(page.getByText('The two new passwords are not the same.'));
    // a weak password: the server's policy message next to the field (422)
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByLabel('Repeat the new password').fill('short');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await visible(page.locator('.field-error'));
    assert.equal(await page.getByLabel('New password', { exact: true }).getAttribute('aria-invalid'), 'true');

    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await visible(page.getByText(/Your password was changed/));

    // the sessions from before are over: each browser finds out on its next request
    for (const p of [laptopPage, phonePage]) {
      await p.getByRole('button', { name: 'Completed', exact: true }).click();
      await visible(signInHeading(p));
    }
    // the old password no longer works, the new one does
    await submitLogin(laptopPage, email, PASSWORD);
    await visible(laptopPage.getByRole('alert'));
    assert.equal(await tasksHeading(laptopPage).count(), 0);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await login(page, email, NEW_PASSWORD);

    // the link works once
    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill('An0ther-password');
    await page.getByLabel('Repeat the new password').fill('An0ther-password');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await visible(page.getByText('This reset link was already used or has expired.'));
    await visible(page.getByRole('link', { name: 'request a new link' }));

    await assertNoTokenInDocumentCookie(page);
    assert.deepEqual(errorsOf(page), []);
    for (const c of [laptop, phone, other]) await c.close();
  });

  test('a reset link opened in the browser that is signed in signs it out at once', async () => {
    const { context, page } = await freshPage(stack);
    const email = await register(page);
    await page.goto('/#/forgot-password');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    const { link } = await linkOfMail(stack, email, '/reset-password');

    await page.goto(link);
    await visible(page.getByRole('heading', { name: 'Choose a new password' }));
    await visible(page.getByRole('button', { name: 'Log out' })); // signed in, for now
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await visible(page.getByText(/Your password was changed/));
    await hidden(page.getByRole('button', { name: 'Log out' }));
    await page.getByRole('link', { name: 'Sign in' }).click();
    await login(page, email, NEW_PASSWORD);
    await context.close();
  });

  test('change email: the confirmation goes to the new address, and its link changes the address', async () => {
    const { context, page } = await freshPage(stack);
    const email = await register(page);
    const wanted = newEmail('moved');

    await page.getByRole('link', { name: 'Account' }).click();
    await visible(page.getByRole('heading', { name: 'Account' }));
    await visible(page.getByTestId('account-email').getByText(email));

    // a wrong current password
    await page.getByLabel('New email address').fill(wanted);
    await page.getByLabel('Current password').fill('Not-the-0ne');
    await page.getByRole('button', { name: 'Change email' }).click();
    await visible(page.getByRole('alert').getByText('Your current password is not correct.'));
    assert.equal(await signInHeading(page).count(), 0); // not a lost session

    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Change email' }).click();
    await visible(page.getByText(/^Check your new inbox to confirm/));
    // nothing changed yet
    await page.reload();
    await visible(page.getByTestId('account-email').getByText(email));

    const { link } = await linkOfMail(stack, wanted, '/confirm-email');
    await page.goto(link);
    await visible(page.getByRole('heading', { name: 'Confirm your new email address' }));
    await assertTokenGone(page, link);
    // opening the link changed nothing by itself
    assert.match(await page.getByTestId('signed-in-as').innerText(), new RegExp(email.replace(/[.+]/g, '\\$&')));
    await page.getByRole('button', { name: 'Confirm new email address' }).click();
    await visible(page.getByText(`Your email address is now ${wanted}.`));
    await eventually(async () => assert.match(await page.getByTestId('signed-in-as').innerText(), new RegExp(wanted.replace(/[.+]/g, '\\$&'))));

    await page.getByRole('link', { name: 'Continue to your tasks' }).click();
    await visible(tasksHeading(page));
    await page.getByRole('link', { name: 'Account' }).click();
    await visible(page.getByTestId('account-email').getByText(wanted));
    await visible(page.getByTestId('account-email').getByText('Verified'));
    assert.equal(await verifyBanner(page).count(), 0);

    // the link works once
    await page.goto(link);
    await page.getByRole('button', { name: 'Confirm new email address' }).click();
    await visible(page.getByText(/This confirmation link was already used or has expired/));

    // sign in with the new address
    await page.getByRole('button', { name: 'Log out' }).click();
    await visible(signInHeading(page));
    await login(page, wanted);
    assert.deepEqual(errorsOf(page), []);
    await context.close();
  });

  test('confirming an address that another account took meanwhile says so (409 email_taken)', async () => {
    const { context, page } = await freshPage(stack);
    await register(page);
    const wanted = newEmail('contested');
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByLabel('New email address').fill(wanted);
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Change email' }).click();
    await visible(page.getByText(/^Check your new inbox to confirm/));
    const { link } = await linkOfMail(stack, wanted, '/confirm-email');

    const { context: rival, page: rivalPage } = await freshPage(stack);
    await register(rivalPage, wanted);
    await rival.close();

    await page.goto(link);
    await page.getByRole('button', { name: 'Confirm new email address' }).click();
    await visible(page.getByText(/Another account uses that email address now/));
    await context.close();
  });
});
