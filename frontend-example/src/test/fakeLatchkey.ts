/**
 * A faithful in-memory double of Latchkey's HTTP behaviour (docs/SESSIONS.md
 * and openapi.yaml at the repository root) plus a browser cookie jar, for unit-testing the session logic
 * without a server. It implements the status codes, problem `code`s and the
 * cookie semantics the client depends on:
 *
 * - access_token: Path=/, Max-Age=ACCESS_TTL; refresh_token: Path=/api/v1/auth.
 *   Both HttpOnly, SameSite=Strict. The jar drops a cookie when its Max-Age
 *   has passed and only sends a cookie to paths under its Path.
 * - Cookies are only attached for `credentials: 'include'`, and `Set-Cookie`
 *   is stored by the jar and hidden from the page, like in a browser.
 * - Refresh tokens are single-use: reuse within the grace gets a new access
 *   cookie only; later it is 401 refresh_token_reused and revokes the session.
 */

export interface Clock {
  now: number; // milliseconds
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
  expiresAt: number;
  httpOnly: boolean;
}

/** A browser's cookie store for one origin. */
export class CookieJar {
  private cookies = new Map<string, StoredCookie>();
  constructor(private clock: Clock) {}

  private live(): StoredCookie[] {
    for (const [key, c] of this.cookies) {
      if (c.expiresAt <= this.clock.now) this.cookies.delete(key);
    }
    return [...this.cookies.values()];
  }

  /** The Cookie header a browser would send to `path`. */
  headerFor(path: string): string {
    return this.live()
      .filter((c) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  store(setCookie: string) {
    const [pair, ...attrs] = setCookie.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let maxAge = Number.POSITIVE_INFINITY;
    let httpOnly = false;
    for (const attr of attrs) {
      const [k, v] = attr.split('=');
      if (k.toLowerCase() === 'path') path = v;
      if (k.toLowerCase() === 'max-age') maxAge = Number(v);
      if (k.toLowerCase() === 'httponly') httpOnly = true;
    }
    const key = `${name};${path}`;
    if (maxAge <= 0) {
      this.cookies.delete(key);
      return;
    }
    this.cookies.set(key, { name, value, path, expiresAt: this.clock.now + maxAge * 1000, httpOnly });
  }

  /** What `document.cookie` would show: only cookies without HttpOnly. */
  documentCookie(): string {
    return this.live()
      .filter((c) => !c.httpOnly)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  get(name: string): StoredCookie | undefined {
    return this.live().find((c) => c.name === name);
  }
}

interface UserRow {
  id: string;
  email: string;
  password: string;
  full_name: string | null;
  created_at: string;
  disabled?: boolean;
}

interface SessionRow {
  id: string;
  userId: string;
  revoked: boolean;
  createdAt: number;
}

interface TokenRow {
  typ: 'access' | 'refresh';
  sid: string;
  exp: number;
  rotatedAt?: number;
}

interface TaskRow {
  id: number;
  user_id: string;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: string;
  updated_at: string;
}

export interface FakeOptions {
  accessTtl?: number; // seconds
  refreshTtl?: number;
  grace?: number;
  /** Max-Age of the access cookie; defaults to accessTtl like the real server. */
  accessCookieMaxAge?: number;
  /** Milliseconds each request takes, so concurrent requests interleave. */
  latency?: number;
}

export interface Call {
  method: string;
  path: string;
  status: number;
  code?: string;
  hadAccessCookie: boolean;
  hadRefreshCookie: boolean;
}

let counter = 0;
const id = (prefix: string) => `${prefix}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

export class FakeLatchkey {
  readonly users = new Map<string, UserRow>();
  readonly sessions = new Map<string, SessionRow>();
  readonly tokens = new Map<string, TokenRow>();
  readonly tasks: TaskRow[] = [];
  readonly calls: Call[] = [];
  /** When set, the next requests to these paths answer with this status and code. */
  readonly outages = new Map<string, { status: number; code: string }>();
  private accessTtl: number;
  private refreshTtl: number;
  private grace: number;
  private accessCookieMaxAge: number;
  private latency: number;

  constructor(
    readonly clock: Clock,
    options: FakeOptions = {},
  ) {
    this.accessTtl = options.accessTtl ?? 3;
    this.refreshTtl = options.refreshTtl ?? 7 * 86400;
    this.grace = options.grace ?? 10;
    this.accessCookieMaxAge = options.accessCookieMaxAge ?? this.accessTtl;
    this.latency = options.latency ?? 5;
  }

  count(method: string, path: string): number {
    return this.calls.filter((c) => c.method === method && c.path === path).length;
  }

  revokeAllSessions() {
    for (const s of this.sessions.values()) s.revoked = true;
  }

  /** A browser (one profile: one cookie jar) whose fetch talks to this server. */
  browser(jar = new CookieJar(this.clock)) {
    const fetch = async (request: Request): Promise<Response> => {
      const url = new URL(request.url);
      const headers = new Headers(request.headers);
      if (request.credentials === 'include') {
        const cookie = jar.headerFor(url.pathname);
        if (cookie) headers.set('Cookie', cookie);
      }
      const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.text();
      const response = await this.handle(request.method, url, headers, body);
      // The browser keeps Set-Cookie for itself; the page never sees it.
      const visible = new Headers();
      response.headers.forEach((value, key) => {
        if (key.toLowerCase() !== 'set-cookie') visible.set(key, value);
      });
      for (const c of response.headers.getSetCookie()) {
        if (request.credentials === 'include') jar.store(c);
      }
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers: visible });
    };
    return { jar, fetch };
  }

  private cookie(name: string, value: string, path: string, maxAge: number) {
    return `${name}=${value}; HttpOnly; SameSite=Strict; Path=${path}; Max-Age=${maxAge}`;
  }

  private issue(sid: string, withRefresh: boolean): string[] {
    const now = this.clock.now;
    const access = id('access');
    this.tokens.set(access, { typ: 'access', sid, exp: now + this.accessTtl * 1000 });
    const out = [this.cookie('access_token', access, '/', this.accessCookieMaxAge)];
    if (withRefresh) {
      const refresh = id('refresh');
      this.tokens.set(refresh, { typ: 'refresh', sid, exp: now + this.refreshTtl * 1000 });
      out.push(this.cookie('refresh_token', refresh, '/api/v1/auth', this.refreshTtl));
    }
    return out;
  }

  private clearCookies(): string[] {
    return [this.cookie('access_token', '', '/', 0), this.cookie('refresh_token', '', '/api/v1/auth', 0)];
  }

  private user(u: UserRow) {
    return {
      id: u.id,
      email: u.email,
      full_name: u.full_name,
      role: 'user' as const,
      is_active: true,
      created_at: u.created_at,
      updated_at: u.created_at,
      last_login_at: null,
    };
  }

  private sessionBody(u: UserRow) {
    const now = this.clock.now;
    return {
      user: this.user(u),
      access_expires_at: new Date(now + this.accessTtl * 1000).toISOString(),
      refresh_expires_at: new Date(now + this.refreshTtl * 1000).toISOString(),
    };
  }

  private json(status: number, body: unknown, setCookies: string[] = []): Response {
    const headers = new Headers({ 'Content-Type': 'application/json; charset=utf-8' });
    for (const c of setCookies) headers.append('Set-Cookie', c);
    return new Response(status === 204 ? null : JSON.stringify(body), { status, headers });
  }

  private empty(setCookies: string[] = []): Response {
    const headers = new Headers();
    for (const c of setCookies) headers.append('Set-Cookie', c);
    return new Response(null, { status: 204, headers });
  }

  private problem(
    status: number,
    code: string,
    detail: string,
    errors?: { field: string; message: string }[],
    setCookies: string[] = [],
  ): Response {
    const headers = new Headers({ 'Content-Type': 'application/problem+json' });
    for (const c of setCookies) headers.append('Set-Cookie', c);
    const body = { type: 'about:blank', title: code.replace(/_/g, ' '), status, detail, code, ...(errors ? { errors } : {}) };
    return new Response(JSON.stringify(body), { status, headers });
  }

  private cookiesOf(headers: Headers): Record<string, string> {
    const out: Record<string, string> = {};
    for (const part of (headers.get('Cookie') ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k && !(k in out)) out[k] = v.join('=');
    }
    return out;
  }

  /** The signed-in user of a protected request, or the 401 to answer. */
  private authenticate(headers: Headers): { user: UserRow; session: SessionRow } | Response {
    const token = this.cookiesOf(headers).access_token;
    if (!token) return this.problem(401, 'not_authenticated', 'Sign in to continue.');
    const row = this.tokens.get(token);
    if (!row || row.typ !== 'access') return this.problem(401, 'token_invalid', 'The access token is not valid.');
    if (row.exp <= this.clock.now) return this.problem(401, 'token_expired', 'The access token has expired.');
    const session = this.sessions.get(row.sid)!;
    if (session.revoked) return this.problem(401, 'session_revoked', 'This session was signed out.');
    const user = [...this.users.values()].find((u) => u.id === session.userId)!;
    if (user.disabled) return this.problem(403, 'account_disabled', 'This account is disabled.');
    return { user, session };
  }

  private validatePassword(field: string, password: unknown): { field: string; message: string }[] {
    const p = typeof password === 'string' ? password : '';
    if (p.length < 8 || p.length > 128 || !/[a-z]/.test(p) || !/[A-Z]/.test(p) || !/[0-9]/.test(p)) {
      return [{ field, message: 'Use 8 to 128 characters with a lowercase letter, an uppercase letter and a digit.' }];
    }
    return [];
  }

  async handle(method: string, url: URL, headers: Headers, body: string | undefined): Promise<Response> {
    await new Promise((r) => setTimeout(r, this.latency));
    const cookies = this.cookiesOf(headers);
    const response = this.route(method, url, headers, body);
    let code: string | undefined;
    if (response.headers.get('Content-Type') === 'application/problem+json') {
      code = (JSON.parse(await response.clone().text()) as { code: string }).code;
    }
    this.calls.push({
      method,
      path: url.pathname,
      status: response.status,
      code,
      hadAccessCookie: 'access_token' in cookies,
      hadRefreshCookie: 'refresh_token' in cookies,
    });
    return response;
  }

  private parse(body: string | undefined, headers: Headers): Record<string, unknown> | Response {
    if (!(headers.get('Content-Type') ?? '').includes('json')) {
      return this.problem(400, 'malformed_request', 'The request body must be JSON (Content-Type: application/json).');
    }
    try {
      return JSON.parse(body ?? '') as Record<string, unknown>;
    } catch {
      return this.problem(400, 'malformed_request', 'The request body is not valid JSON.');
    }
  }

  private route(method: string, url: URL, headers: Headers, rawBody: string | undefined): Response {
    const path = url.pathname;
    const outage = this.outages.get(path);
    if (outage) return this.problem(outage.status, outage.code, 'Unavailable.');
    const now = this.clock.now;
    const route = `${method} ${path}`;

    if (route === 'POST /api/v1/auth/register') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const email = String(body.email ?? '').trim().toLowerCase();
      const errors = [
        ...(/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) ? [] : [{ field: 'email', message: 'Enter a valid email address.' }]),
        ...this.validatePassword('password', body.password),
      ];
      if (errors.length) return this.problem(422, 'validation_failed', 'Some fields are not valid.', errors);
      if (this.users.has(email)) return this.problem(409, 'email_taken', 'An account with this email already exists.');
      const user: UserRow = {
        id: id('user'),
        email,
        password: String(body.password),
        full_name: typeof body.full_name === 'string' ? body.full_name : null,
        created_at: new Date(now).toISOString(),
      };
      this.users.set(email, user);
      const session: SessionRow = { id: id('sid'), userId: user.id, revoked: false, createdAt: now };
      this.sessions.set(session.id, session);
      return this.json(201, this.sessionBody(user), this.issue(session.id, true));
    }

    if (route === 'POST /api/v1/auth/login') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const user = this.users.get(String(body.email ?? '').trim().toLowerCase());
      if (!user || user.password !== body.password) {
        return this.problem(401, 'invalid_credentials', 'The email or password is incorrect.');
      }
      const session: SessionRow = { id: id('sid'), userId: user.id, revoked: false, createdAt: now };
      this.sessions.set(session.id, session);
      return this.json(200, this.sessionBody(user), this.issue(session.id, true));
    }

    if (route === 'POST /api/v1/auth/refresh') {
      const token = this.cookiesOf(headers).refresh_token;
      if (!token) return this.problem(401, 'refresh_token_missing', 'Sign in to continue.');
      const row = this.tokens.get(token);
      if (!row || row.typ !== 'refresh') return this.problem(401, 'refresh_token_invalid', 'The refresh token is not valid.');
      if (row.exp <= now) return this.problem(401, 'refresh_token_expired', 'The session has expired.');
      const session = this.sessions.get(row.sid)!;
      if (session.revoked) return this.problem(401, 'session_revoked', 'This session was signed out.');
      const user = [...this.users.values()].find((u) => u.id === session.userId)!;
      if (row.rotatedAt !== undefined) {
        if (now - row.rotatedAt <= this.grace * 1000) {
          // Two tabs raced: the loser gets an access cookie only and keeps the winner's refresh cookie.
          return this.json(200, this.sessionBody(user), this.issue(session.id, false));
        }
        session.revoked = true;
        return this.problem(401, 'refresh_token_reused', 'This sign-in was used twice; sign in again.');
      }
      row.rotatedAt = now;
      return this.json(200, this.sessionBody(user), this.issue(session.id, true));
    }

    if (route === 'POST /api/v1/auth/logout') {
      const c = this.cookiesOf(headers);
      const row = this.tokens.get(c.refresh_token ?? '') ?? this.tokens.get(c.access_token ?? '');
      if (row) this.sessions.get(row.sid)!.revoked = true;
      return this.empty(this.clearCookies());
    }

    const auth = this.authenticate(headers);
    if (auth instanceof Response) return auth;
    const { user, session } = auth;

    if (route === 'GET /api/v1/auth/me') return this.json(200, this.user(user));

    if (route === 'POST /api/v1/auth/logout-all') {
      for (const s of this.sessions.values()) if (s.userId === user.id) s.revoked = true;
      return this.empty(this.clearCookies());
    }

    if (route === 'PUT /api/v1/auth/password') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      if (body.current_password !== user.password) {
        return this.problem(401, 'invalid_credentials', 'The current password is incorrect.');
      }
      const errors = this.validatePassword('new_password', body.new_password);
      if (errors.length) return this.problem(422, 'validation_failed', 'Some fields are not valid.', errors);
      user.password = String(body.new_password);
      for (const s of this.sessions.values()) if (s.userId === user.id && s.id !== session.id) s.revoked = true;
      return this.empty();
    }

    const sessionMatch = /^\/api\/v1\/auth\/sessions\/([^/]+)$/.exec(path);
    if (method === 'DELETE' && sessionMatch) {
      const target = this.sessions.get(decodeURIComponent(sessionMatch[1]));
      if (!target || target.userId !== user.id) return this.problem(404, 'not_found', 'Not found.');
      target.revoked = true;
      return this.empty();
    }

    if (route === 'GET /api/v1/tasks') {
      const mine = this.tasks.filter((t) => t.user_id === user.id).reverse();
      const res = this.json(200, mine);
      res.headers.set('X-Total-Count', String(mine.length));
      return res;
    }

    if (route === 'POST /api/v1/tasks') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const title = String(body.title ?? '').trim();
      if (!title || title.length > 200) {
        return this.problem(422, 'validation_failed', 'Some fields are not valid.', [
          { field: 'title', message: 'Enter a title of 1 to 200 characters.' },
        ]);
      }
      const stamp = new Date(now).toISOString();
      const task: TaskRow = {
        id: this.tasks.length + 1,
        user_id: user.id,
        title,
        description: typeof body.description === 'string' ? body.description : null,
        completed: false,
        created_at: stamp,
        updated_at: stamp,
      };
      this.tasks.push(task);
      return this.json(201, task);
    }

    return this.problem(404, 'not_found', 'Not found.');
  }
}

/** The Web Locks API's exclusive mode, shared by the "tabs" of one test. */
export class FakeLocks {
  private tails = new Map<string, Promise<unknown>>();
  granted = 0;

  request<T>(name: string, callback: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const result = previous.then(() => {
      this.granted++;
      return callback();
    });
    this.tails.set(
      name,
      result.catch(() => undefined),
    );
    return result;
  }
}

/** localStorage shared by the "tabs" of one test. */
export class MemoryStorage {
  private map = new Map<string, string>();
  getItem(key: string) {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.map.set(key, value);
  }
}
