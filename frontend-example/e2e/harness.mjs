// Starts a real SMTP server (MailDev, the npm package), the real Latchkey
// binary sending its mail there, `vite preview` (the built SPA, proxying /api
// to it) and headless Debian Chromium, for the end-to-end tests.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..');

export const ACCESS_TOKEN_TTL = 3; // seconds: short, so the tests can outlive it
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-gpu',
  '--no-first-run',
];

/** LATCHKEY_BIN, else the newer of ../target/release/latchkey and ../target/debug/latchkey. */
export function latchkeyBinary() {
  if (process.env.LATCHKEY_BIN) return resolve(process.env.LATCHKEY_BIN);
  const candidates = ['release', 'debug']
    .map((profile) => resolve(root, '..', 'target', profile, 'latchkey'))
    .filter((path) => existsSync(path))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!candidates.length) {
    throw new Error('No Latchkey binary: build it with `cargo build` in the repository root, or set LATCHKEY_BIN.');
  }
  return candidates[0];
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(url, child, output, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${what} exited with code ${child.exitCode} before it was ready:\n${output.join('')}`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${what} was not ready at ${url} after ${timeoutMs} ms:\n${output.join('')}`);
}

function start(command, args, options, what) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  const keep = (chunk) => {
    output.push(chunk.toString());
    if (output.length > 400) output.splice(0, output.length - 400);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return { child, output, what };
}

async function stop(proc) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The first link with a token in a mail's plain-text body: `{APP_URL}/verify-email#token=…`. */
export function linkInMail(mail) {
  const match = /https?:\/\/[^\s<>"']+#token=[A-Za-z0-9_\-%.~+/=]+/.exec(mail?.text ?? '');
  if (!match) throw new Error(`no link in the mail: ${JSON.stringify(mail?.text ?? mail)}`);
  return match[0];
}

const recipients = (mail) => [...(mail.to ?? []), ...(mail.envelope?.to ?? [])].map((r) => r.address.toLowerCase());

/**
 * Everything the tests need: `baseURL` of the SPA, `browser`, and `newPage()`
 * / `newContext()` helpers whose pages record cookie leaks and API responses;
 * `mails()` and `waitForMail()` read what Latchkey sent, from MailDev.
 * `env` adds to (or overrides) Latchkey's environment, e.g. REQUIRE_VERIFIED_EMAIL.
 */
export async function startStack({ env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-e2e-'));
  const apiPort = await freePort();
  const webPort = await freePort();
  const smtpPort = await freePort();
  const mailWebPort = await freePort();
  const binary = latchkeyBinary();
  const baseURL = `http://127.0.0.1:${webPort}`;
  const stack = { dir, processes: [] };
  try {
    // A real SMTP listener; its REST API (GET /email) lists the mails received.
    const maildev = start(
      process.execPath,
      [
        join(root, 'node_modules', 'maildev', 'bin', 'maildev'),
        '--smtp', String(smtpPort),
        '--web', String(mailWebPort),
        '--ip', '127.0.0.1',
        '--web-ip', '127.0.0.1',
        '--mail-directory', join(dir, 'mail'),
      ],
      { cwd: dir },
      'maildev',
    );
    stack.processes.push(maildev);
    const mailURL = `http://127.0.0.1:${mailWebPort}`;
    await waitFor(`${mailURL}/email`, maildev.child, maildev.output, maildev.what);
    stack.mailURL = mailURL;

    const api = start(
      binary,
      ['serve'],
      {
        cwd: dir, // no stray .env from the repository
        env: {
          ...process.env,
          APP_ENV: 'development',
          DATABASE_URL: `sqlite://${join(dir, 'e2e.db')}?mode=rwc`,
          COOKIE_SECURE: 'false',
          BCRYPT_COST: '4',
          ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL),
          BIND_ADDR: `127.0.0.1:${apiPort}`,
          LOGIN_RATE_PER_MINUTE: '1000',
          JWT_SECRET: 'e2e-secret-that-is-long-enough-0123456789',
          RUST_LOG: process.env.RUST_LOG ?? 'warn',
          // mail: to MailDev, with links to the SPA as vite preview serves it
          SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
          MAIL_FROM: 'latchkey@example.com',
          APP_URL: baseURL,
          EMAIL_RATE_PER_HOUR: '1000', // every request comes from 127.0.0.1
          MAIL_RETRY_BASE: '1s',
          ...env,
        },
      },
      `latchkey (${binary})`,
    );
    stack.processes.push(api);
    await waitFor(`http://127.0.0.1:${apiPort}/health`, api.child, api.output, api.what);

    if (!existsSync(join(root, 'dist', 'index.html'))) {
      throw new Error('dist/ is missing: run `npm run build` before the end-to-end tests.');
    }
    const web = start(
      process.execPath,
      [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'preview', '--host', '127.0.0.1', '--port', String(webPort), '--strictPort'],
      { cwd: root, env: { ...process.env, LATCHKEY_API: `http://127.0.0.1:${apiPort}` } },
      'vite preview',
    );
    stack.processes.push(web);
    await waitFor(`${baseURL}/`, web.child, web.output, web.what);
    await waitFor(`${baseURL}/health`, web.child, web.output, 'the /health proxy of vite preview');

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    stack.browser = browser;
    stack.baseURL = baseURL;
    stack.apiURL = `http://127.0.0.1:${apiPort}`;
    stack.logs = () => stack.processes.map((p) => `--- ${p.what}\n${p.output.join('')}`).join('\n');

    /** Every mail MailDev received, oldest first. */
    stack.mails = async () => {
      const response = await fetch(`${mailURL}/email`);
      if (!response.ok) throw new Error(`MailDev answered ${response.status}`);
      return response.json();
    };
    /**
     * The first mail to `to` for which `match(mail)` holds (e.g. its link goes to
     * /verify-email) and that is not in `seen` (mail ids), waiting for it to arrive.
     */
    stack.waitForMail = async (to, { match = () => true, seen = [], timeoutMs = 20_000 } = {}) => {
      const deadline = Date.now() + timeoutMs;
      const address = to.toLowerCase();
      for (;;) {
        const mails = await stack.mails();
        const mail = mails.find((m) => !seen.includes(m.id) && recipients(m).includes(address) && match(m));
        if (mail) return mail;
        if (Date.now() > deadline) {
          const summary = mails.map((m) => `${recipients(m).join(',')}: ${m.subject}`).join('\n');
          throw new Error(`no mail to ${to} after ${timeoutMs} ms; MailDev has:\n${summary}\n${stack.logs()}`);
        }
        await sleep(200);
      }
    };

    /** A new browser profile (its own cookies), whose pages are instrumented. */
    stack.newContext = async (options = {}) => {
      const context = await browser.newContext({ baseURL, ...options });
      // document.cookie must never show a token: check it continuously, not only when asked.
      await context.addInitScript(() => {
        const leaks = [];
        Object.defineProperty(window, '__cookieLeaks', { value: leaks });
        const check = () => {
          if (/(access|refresh)_token/.test(document.cookie)) leaks.push(document.cookie);
        };
        check();
        setInterval(check, 50);
      });
      if (options.withoutWebLocks) {
        await context.addInitScript(() => {
          Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });
        });
      }
      context.apiLog = [];
      // How many POST /api/v1/auth/refresh were in flight at once, at most (the Web Lock makes it 1).
      context.refreshes = { inFlight: 0, maxInFlight: 0 };
      const isRefresh = (request) => new URL(request.url()).pathname === '/api/v1/auth/refresh';
      context.on('request', (request) => {
        if (!isRefresh(request)) return;
        context.refreshes.inFlight++;
        context.refreshes.maxInFlight = Math.max(context.refreshes.maxInFlight, context.refreshes.inFlight);
      });
      const done = (request) => {
        if (isRefresh(request)) context.refreshes.inFlight--;
      };
      context.on('requestfinished', done);
      context.on('requestfailed', done);
      context.on('response', (response) => {
        const url = new URL(response.url());
        if (url.pathname.startsWith('/api/')) {
          context.apiLog.push({ method: response.request().method(), path: url.pathname, status: response.status() });
        }
      });
      return context;
    };
    return stack;
  } catch (error) {
    await stopStack(stack);
    throw error;
  }
}

export async function stopStack(stack) {
  if (!stack) return;
  try {
    await stack.browser?.close();
  } finally {
    for (const proc of [...stack.processes].reverse()) await stop(proc);
    rmSync(stack.dir, { recursive: true, force: true });
  }
}
