// Helpers for driving the SPA in the email end-to-end tests (email*.test.mjs).
import assert from 'node:assert/strict';
import { linkInMail } from './harness.mjs';

export const PASSWORD = 'Corr3ct-horse';
let counter = 0;
export const newEmail = (prefix = 'person') => `${prefix}-${Date.now().toString(36)}-${++counter}@example.com`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const pageErrors = new WeakMap();

/** A fresh browser profile (its own cookies) with one page. */
export async function freshPage(stack, options) {
  const context = await stack.newContext(options);
  const page = await newPage(context);
  return { context, page };
}

export async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  pageErrors.set(page, []);
  page.on('pageerror', (error) => pageErrors.get(page).push(String(error)));
  return page;
}

export function errorsOf(page) {
  return pageErrors.get(page) ?? [];
}

export async function visible(locator) {
  await locator.first().waitFor({ state: 'visible' });
  return locator;
}

export async function hidden(locator) {
  await locator.first().waitFor({ state: 'hidden' });
}

/** Retries `check` (an assertion) until it passes or `timeoutMs` runs out. */
export async function eventually(check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

export const tasksHeading = (page) => page.getByRole('heading', { name: 'Tasks', exact: true });
export const signInHeading = (page) => page.getByRole('heading', { name: 'Sign in', exact: true });
export const verifyBanner = (page) => page.getByRole('region', { name: 'Email verification' });

/** Fills in the registration form and submits it (does not wait for what follows). */
export async function submitRegistration(page, email, password = PASSWORD) {
  await page.goto('/#/register');
  await visible(page.getByRole('heading', { name: 'Create an account' }));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Full name (optional)').fill('Ada Lovelace');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

export async function register(page, email = newEmail(), password = PASSWORD) {
  await submitRegistration(page, email, password);
  await visible(tasksHeading(page));
  return email;
}

/** Fills in the sign-in form and submits it (does not wait for what follows). */
export async function submitLogin(page, email, password = PASSWORD) {
  await page.goto('/#/login');
  await visible(signInHeading(page));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function login(page, email, password = PASSWORD) {
  await submitLogin(page, email, password);
  await visible(tasksHeading(page));
}

/** The link of the mail to `to` whose link goes to `path` (e.g. '/verify-email'), waiting for it. */
export async function linkOfMail(stack, to, path, seen = []) {
  const mail = await stack.waitForMail(to, { seen, match: (m) => /#token=/.test(m.text ?? '') && linkPathOf(m) === path });
  const link = linkInMail(mail);
  assert.equal(new URL(link).origin, stack.baseURL, 'mail links are built from APP_URL, the SPA origin');
  return { mail, link };
}

function linkPathOf(mail) {
  try {
    return new URL(linkInMail(mail)).pathname;
  } catch {
    return null;
  }
}

/**
 * Opening a link left no token behind: not in the address bar, the cookies
 * the page can see, or the page's storage.
 */
export async function assertTokenGone(page, link) {
  const token = new URL(link).hash.replace(/^#token=/, '');
  assert.ok(token.length > 10, link);
  assert.doesNotMatch(page.url(), /token=/);
  const seen = await page.evaluate(() => ({
    cookie: document.cookie,
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
    href: location.href,
  }));
  for (const [where, text] of Object.entries(seen)) assert.ok(!text.includes(token), `the token is in ${where}`);
}

/** The page never saw a session token in document.cookie (checked every 50 ms since it loaded). */
export async function assertNoTokenInDocumentCookie(page) {
  const { leaks, now } = await page.evaluate(() => ({ leaks: [...window.__cookieLeaks], now: document.cookie }));
  assert.deepEqual(leaks, [], 'document.cookie showed a token');
  assert.doesNotMatch(now, /token/);
}
