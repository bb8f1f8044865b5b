// End-to-end: the built SPA in headless Chromium, through `vite preview`'s
// proxy, against the real Latchkey binary (ACCESS_TOKEN_TTL=3s).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ACCESS_TOKEN_TTL, startStack, stopStack } from './harness.mjs';

const PASSWORD = 'Corr3ct-horse';
let counter = 0;
const newEmail = () => `person-${Date.now().toString(36)}-${++counter}@example.com`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Long enough for the browser to drop the access cookie (Max-Age) and the token to expire. */
const outliveAccessToken = () => sleep(ACCESS_TOKEN_TTL * 1000 + 1500);

let stack;

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stopStack(stack);
});

const pageErrors = new WeakMap();

async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  pageErrors.set(page, []);
  page.on('pageerror', (error) => pageErrors.get(page).push(String(error)));
  return page;
}

/** Retries `check` (an assertion) until it passes or `timeoutMs` runs out. */
async function eventually(check, timeoutMs = 15_000) {
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

/** A fresh browser profile with one page. */
async function freshPage(options) {
  const context = await stack.newContext(options);
  const page = await newPage(context);
  return { context, page };
}

async function visible(locator) {
  await locator.first().waitFor({ state: 'visible' });
  return locator;
}

async function hidden(locator) {
  await locator.first().waitFor({ state: 'hidden' });
}

const tasksHeading = (page) => page.getByRole('heading', { name: 'Tasks', exact: true });
const signInHeading = (page) => page.getByRole('heading', { name: 'Sign in', exact: true });

async function register(page, email = newEmail(), password = PASSWORD) {
  await page.goto('/#/register');
  await visible(page.getByRole('heading', { name: 'Create an account' }));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Full name (optional)').fill('Ada Lovelace');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await visible(tasksHeading(page));
  return email;
}

async function login(page, email, password = PASSWORD) {
  await page.goto('/#/login');
  await visible(signInHeading(page));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await visible(tasksHeading(page));
}

async function addTask(page, title, description = '') {
  await page.getByLabel('New task').fill(title);
  if (description) await page.getByLabel('Description (optional)').first().fill(description);
  await page.getByRole('button', { name: 'Add task' }).click();
  await visible(page.locator('.task-title', { hasText: title }));
}

/** The page never saw a token in document.cookie (checked every 50 ms since it loaded). */
async function assertNoTokenInDocumentCookie(page) {
  const { leaks, now } = await page.evaluate(() => ({ leaks: [...window.__cookieLeaks], now: document.cookie }));
  assert.deepEqual(leaks, [], 'document.cookie showed a token');
  assert.doesNotMatch(now, /token/);
}

function calls(context) {
  return context.apiLog.map((c) => `${c.method} ${c.path} ${c.status}`);
}

/** Calls the API directly (not through the page) to learn what it says, e.g. an error's detail. */
async function apiProblem(path, body) {
  const response = await fetch(`${stack.apiURL}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.headers.get('content-type'), 'application/problem+json');
  return response.json();
}

describe('Latchkey example SPA in Chromium', () => {
  test('register, then create, complete, filter, edit and delete tasks', async () => {
    const { context, page } = await freshPage();
    await register(page);
    assert.match(await page.getByTestId('signed-in-as').innerText(), /Ada Lovelace/);

    const cookies = Object.fromEntries((await context.cookies()).map((c) => [c.name, c]));
    assert.deepEqual(
      { httpOnly: cookies.access_token.httpOnly, sameSite: cookies.access_token.sameSite, path: cookies.access_token.path },
      { httpOnly: true, sameSite: 'Strict', path: '/' },
    );
    assert.deepEqual(
      { httpOnly: cookies.refresh_token.httpOnly, sameSite: cookies.refresh_token.sameSite, path: cookies.refresh_token.path },
      { httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth' },
    );

    await visible(page.getByText('Nothing to do yet'));
    await addTask(page, 'Buy milk', 'Two litres');
    await addTask(page, 'Write report');
    await visible(page.getByText('Two litres'));
    await visible(page.getByText('2 tasks'));

    // complete
    await page.getByLabel('Mark "Buy milk" as done').click(); // checked once the server said so
    await visible(page.getByLabel('Mark "Buy milk" as not done'));
    assert.equal(await page.getByLabel('Mark "Buy milk" as not done').isChecked(), true);

    // filter by completed
    await page.getByRole('button', { name: 'Completed', exact: true }).click();
    await visible(page.getByText('1 task'));
    assert.deepEqual(await page.locator('.task-title').allInnerTexts(), ['Buy milk']);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await hidden(page.locator('.task-title', { hasText: 'Buy milk' }));
    assert.deepEqual(await page.locator('.task-title').allInnerTexts(), ['Write report']);
    await page.getByRole('button', { name: 'All', exact: true }).click();
    await visible(page.getByText('2 tasks'));
    assert.deepEqual(await page.locator('.task-title').allInnerTexts(), ['Write report', 'Buy milk']); // newest first

    // edit
    const report = page.locator('li.task', { hasText: 'Write report' });
    await report.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Title', { exact: true }).fill('Write the annual report');
    await page.getByRole('button', { name: 'Save' }).click();
    await visible(page.locator('.task-title', { hasText: 'Write the annual report' }));

    // a validation error from the server, in words, next to the field
    await page.getByRole('button', { name: 'Add task' }).click();
    const alert = await visible(page.locator('form.new-task [role="alert"]'));
    assert.ok((await alert.innerText()).trim().length > 0);
    await visible(page.locator('form.new-task .field-error'));

    // delete
    await page.locator('li.task', { hasText: 'Write the annual report' }).getByRole('button', { name: 'Delete' }).click();
    await hidden(page.locator('.task-title', { hasText: 'Write the annual report' }));
    await visible(page.getByText('1 task'));

    await assertNoTokenInDocumentCookie(page);
    assert.deepEqual(pageErrors.get(page), []);
    await context.close();
  });

  test('a reload keeps the person signed in, also after the access token expired', async () => {
    const { context, page } = await freshPage();
    await register(page);
    await addTask(page, 'Survive a reload');

    await page.reload();
    await visible(tasksHeading(page));
    await visible(page.locator('.task-title', { hasText: 'Survive a reload' }));

    await outliveAccessToken();
    context.apiLog.length = 0;
    await page.reload();
    await visible(page.locator('.task-title', { hasText: 'Survive a reload' }));
    await eventually(() => assert.ok(calls(context).includes('GET /api/v1/auth/me 200'), calls(context).join('\n')));
    assert.deepEqual(calls(context).slice(0, 2), ['GET /api/v1/auth/me 401', 'POST /api/v1/auth/refresh 200']);
    await assertNoTokenInDocumentCookie(page);
    await context.close();
  });

  test('past the access token lifetime a request succeeds through a transparent refresh', async () => {
    const { context, page } = await freshPage();
    await register(page);
    await outliveAccessToken();

    context.apiLog.length = 0;
    await addTask(page, 'Added after the token expired');
    assert.deepEqual(calls(context), [
      'POST /api/v1/tasks 401',
      'POST /api/v1/auth/refresh 200',
      'POST /api/v1/tasks 201',
      'GET /api/v1/tasks 200',
    ]);
    await visible(tasksHeading(page));
    // the task was created exactly once
    await page.reload();
    await visible(page.getByText('1 task'));
    await assertNoTokenInDocumentCookie(page);
    await context.close();
  });

  for (const locks of [true, false]) {
    test(`two tabs racing a refresh stay signed in (${locks ? 'Web Locks' : 'no Web Locks: server grace'})`, async (t) => {
      const { context, page: first } = await freshPage({ withoutWebLocks: !locks });
      await register(first);
      assert.equal(await first.evaluate(() => typeof navigator.locks), locks ? 'object' : 'undefined');
      await addTask(first, 'Shared task');
      const second = await newPage(context);
      await second.goto('/');
      await visible(second.locator('.task-title', { hasText: 'Shared task' }));

      for (let round = 0; round < 2; round++) {
        await outliveAccessToken();
        context.apiLog.length = 0;
        context.refreshes.maxInFlight = 0;
        // Both tabs hit the API at the same moment with an expired access token.
        await Promise.all(
          [first, second].map((page) => page.getByRole('button', { name: round === 0 ? 'Open' : 'All', exact: true }).click()),
        );
        // wait until both tabs got their list (after the refresh and the retry)
        await eventually(() =>
          assert.equal(context.apiLog.filter((c) => c.path === '/api/v1/tasks' && c.status === 200).length, 2, calls(context).join('\n')),
        );
        for (const page of [first, second]) {
          await visible(page.locator('.task-title', { hasText: 'Shared task' }));
          assert.equal(await signInHeading(page).count(), 0);
        }
        assert.ok(!context.apiLog.some((c) => c.path === '/api/v1/auth/logout'));
        const refreshes = context.apiLog.filter((c) => c.path === '/api/v1/auth/refresh');
        assert.ok(refreshes.length >= 1, calls(context).join('\n'));
        assert.ok(refreshes.every((c) => c.status === 200), calls(context).join('\n'));
        t.diagnostic(`round ${round}: ${refreshes.length} refresh(es), at most ${context.refreshes.maxInFlight} at once`);
        if (locks) {
          // Serialised by the lock; the tab that waited normally finds the cookies renewed and
          // skips its own refresh (a second, harmless rotation can happen if localStorage lags).
          assert.equal(context.refreshes.maxInFlight, 1, calls(context).join('\n'));
          assert.ok(refreshes.length <= 2, calls(context).join('\n'));
        }
      }
      for (const page of [first, second]) await assertNoTokenInDocumentCookie(page);
      await context.close();
    });
  }

  test('revoking a session from another browser signs that browser out', async () => {
    const { context: laptop, page: laptopPage } = await freshPage();
    const email = await register(laptopPage);
    const { context: phone, page: phonePage } = await freshPage();
    await login(phonePage, email);

    await phonePage.getByRole('link', { name: 'Sessions' }).click();
    await visible(phonePage.getByRole('heading', { name: 'Sessions' }));
    await visible(phonePage.locator('ul.sessions li'));
    assert.equal(await phonePage.locator('ul.sessions li').count(), 2);
    assert.equal(await phonePage.locator('ul.sessions li.current').count(), 1);
    await phonePage.locator('ul.sessions li:not(.current)').getByRole('button', { name: 'Revoke' }).click();
    await visible(phonePage.getByText(/^Signed out /));
    await eventually(async () => assert.equal(await phonePage.locator('ul.sessions li').count(), 1));

    // The laptop finds out on its next request.
    await laptopPage.getByRole('button', { name: 'Completed', exact: true }).click();
    await visible(signInHeading(laptopPage));
    await visible(laptopPage.getByText('Your session has ended. Please sign in again.'));
    // and stays signed out after a reload
    await laptopPage.reload();
    await visible(signInHeading(laptopPage));
    // the phone is unaffected
    await phonePage.getByRole('link', { name: 'Tasks' }).click();
    await visible(tasksHeading(phonePage));
    await laptop.close();
    await phone.close();
  });

  test('logout signs out every tab of the browser and clears the cookies', async () => {
    const { context, page: first } = await freshPage();
    await register(first);
    const second = await newPage(context);
    await second.goto('/');
    await visible(tasksHeading(second));

    await first.getByRole('button', { name: 'Log out' }).click();
    await visible(first.getByText('You have signed out.'));
    // the other tab follows without doing anything
    await visible(second.getByText('You signed out in another tab.'));
    await visible(signInHeading(second));
    const names = (await context.cookies()).map((c) => c.name);
    assert.ok(!names.includes('access_token') && !names.includes('refresh_token'), names.join(','));

    await second.reload();
    await visible(signInHeading(second));
    await assertNoTokenInDocumentCookie(first);
    await context.close();
  });

  test('log out everywhere ends the sessions of other browsers too', async () => {
    const { context: a, page: pageA } = await freshPage();
    const email = await register(pageA);
    const { context: b, page: pageB } = await freshPage();
    await login(pageB, email);

    await pageA.getByRole('link', { name: 'Sessions' }).click();
    await pageA.getByRole('button', { name: 'Log out everywhere' }).click();
    await visible(pageA.getByText('You have signed out on every device.'));

    await pageB.getByRole('button', { name: 'Completed', exact: true }).click();
    await visible(signInHeading(pageB));
    await a.close();
    await b.close();
  });

  test('API errors are shown in words: the problem detail and the per-field messages', async () => {
    const { context, page } = await freshPage();
    const email = await register(page);
    await page.getByRole('button', { name: 'Log out' }).click();
    await visible(signInHeading(page));

    // wrong password: the problem document's detail
    const wrong = await apiProblem('/api/v1/auth/login', { email, password: 'Wr0ng-password' });
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('Wr0ng-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await visible(page.getByRole('alert').getByText(wrong.detail));

    // taken email: 409 detail
    const taken = await apiProblem('/api/v1/auth/register', { email, password: PASSWORD });
    assert.equal(taken.code, 'email_taken');
    await page.getByRole('link', { name: 'Create one' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await visible(page.getByRole('alert').getByText(taken.detail));

    // weak password: 422 with a message for the field
    const weak = await apiProblem('/api/v1/auth/register', { email: newEmail(), password: 'short' });
    const message = weak.errors.find((e) => e.field === 'password').message;
    await page.getByLabel('Email').fill(newEmail());
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await visible(page.locator('.field-error', { hasText: message }));
    await visible(page.getByRole('alert').getByText(weak.detail));
    assert.equal(await page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid'), 'true');
    await context.close();
  });

  test('change password: wrong current password, then success signs out the other browsers', async () => {
    const { context: a, page } = await freshPage();
    const email = await register(page);
    const { context: b, page: other } = await freshPage();
    await login(other, email);

    await page.getByRole('link', { name: 'Password' }).click();
    await visible(page.getByRole('heading', { name: 'Change password' }));
    await page.getByLabel('Current password').fill('Not-the-0ne');
    await page.getByLabel('New password', { exact: true }).fill('N3w-password!');
    await page.getByLabel('Repeat the new password').fill('N3w-password!');
    await page.getByRole('button', { name: 'Change password' }).click();
    await visible(page.getByRole('alert').getByText('Your current password is not correct.'));
    await visible(page.locator('.field-error', { hasText: 'This is not your current password.' }));
    // a wrong current password is not a lost session
    assert.equal(await signInHeading(page).count(), 0);

    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await visible(page.getByText('Your password was changed.'));

    await other.getByRole('button', { name: 'Completed', exact: true }).click();
    await visible(signInHeading(other));

    // this browser stays signed in, and the new password works
    await page.reload();
    await visible(page.getByRole('heading', { name: 'Change password' }));
    await login(other, email, 'N3w-password!');
    await a.close();
    await b.close();
  });
});
