// Starts the real Latchkey binary, `vite preview` (the built SPA, proxying /api
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

/**
 * Everything the tests need: `baseURL` of the SPA, `browser`, and `newPage()`
 * / `newContext()` helpers whose pages record cookie leaks and API responses.
 */
export async function startStack() {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-e2e-'));
  const apiPort = await freePort();
  const webPort = await freePort();
  const binary = latchkeyBinary();
  const stack = { dir, processes: [] };
  try {
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
    const baseURL = `http://127.0.0.1:${webPort}`;
    await waitFor(`${baseURL}/`, web.child, web.output, web.what);
    await waitFor(`${baseURL}/health`, web.child, web.output, 'the /health proxy of vite preview');

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    stack.browser = browser;
    stack.baseURL = baseURL;
    stack.apiURL = `http://127.0.0.1:${apiPort}`;
    stack.logs = () => stack.processes.map((p) => `--- ${p.what}\n${p.output.join('')}`).join('\n');

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
