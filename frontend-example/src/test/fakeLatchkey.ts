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
 * - The email flows: every mail lands in `outbox`, with a link
 *   `{appUrl}/verify-email#token=…` (or /reset-password, /confirm-email) whose
 *   token works once and expires after `linkTtl`. POST /password/forgot
 *   answers 202 whether or not the account exists; a reset revokes every
 *   session and verifies the address (a weak password, 422, leaves the link
 *   working); PUT /email changes nothing until the link to the new address is
 *   confirmed (a taken address gets no link; 409 email_taken, the link left
 *   unused, if it was taken meanwhile). The mailing endpoints are rate-limited (429 rate_limited
 *   with Retry-After). With `requireVerifiedEmail`, register answers 202
 *   `{user}` without cookies and login of an unverified account 403
 *   email_not_verified, like REQUIRE_VERIFIED_EMAIL=true.
 * - The second factor (TOTP): login of an account with it on answers 202
 *   `{mfa_required, methods}` with an httpOnly `mfa_ticket` cookie
 *   (Path=/api/v1/auth/mfa, 5 minutes, 5 tries) and no session; POST
 *   /mfa/verify `{code}` or `{recovery_code}` signs in (401 invalid_code,
 *   401 mfa_ticket_invalid). The double's "authenticator app" is
 *   `FakeLatchkey.totp(secret, step)`: a deterministic 6-digit code per 30-second
 *   step (not RFC 6238; `codeFor()` gives the current one). Like the server, it
 *   accepts the step before and after too, and each step only once per user.
 *   Setup, enable, disable and new recovery codes need a recent sign-in
 *   (`reauthMaxAge`; 403 reauth_required), as do PUT /password and PUT /email
 *   while a second factor is on; POST /reauth makes the session recent. A reset
 *   with a second factor on needs `code` (401 mfa_required / invalid_code, the
 *   link left working).
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
  email_verified: boolean;
  disabled?: boolean;
  /** The TOTP secret: pending until enabled. */
  totp?: { secret: string; enabled: boolean; lastStep: number | null };
  /** Unused recovery codes. */
  recoveryCodes: string[];
}

interface TicketRow {
  userId: string;
  exp: number;
  tries: number;
  used: boolean;
}

const STEP_MS = 30_000;
const TICKET_TTL = 300;
const TICKET_TRIES = 5;

export type MailKind = 'verify' | 'reset' | 'confirm';

/** A mail the server sent. */
export interface Mail {
  to: string;
  kind: MailKind;
  subject: string;
  text: string;
}

interface LinkTokenRow {
  kind: MailKind;
  userId: string;
  exp: number;
  used: boolean;
  /** For 'confirm': the new address. */
  newEmail?: string;
}

const LINK_PATHS: Record<MailKind, string> = { verify: 'verify-email', reset: 'reset-password', confirm: 'confirm-email' };

interface SessionRow {
  id: string;
  userId: string;
  revoked: boolean;
  createdAt: number;
  /** When this session last proved a credential (sign-in, second factor, POST /reauth). */
  authAt: number;
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
  /** Like REQUIRE_VERIFIED_EMAIL=true: register answers 202 without cookies, login of an unverified account 403. */
  requireVerifiedEmail?: boolean;
  /** The SPA's origin, for the links in mails (APP_URL). */
  appUrl?: string;
  /** Seconds an email link works. */
  linkTtl?: number;
  /** Mails per address (or per user, for resend) and minute before 429 rate_limited. */
  mailsPerMinute?: number;
  /** Seconds a sign-in counts as recent (REAUTH_MAX_AGE). */
  reauthMaxAge?: number;
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
  /** Every mail sent, oldest first. */
  readonly outbox: Mail[] = [];
  readonly linkTokens = new Map<string, LinkTokenRow>();
  private mailTimes = new Map<string, number[]>();
  /** When set, the next requests to these paths answer with this status and code. */
  readonly outages = new Map<string, { status: number; code: string }>();
  private accessTtl: number;
  private refreshTtl: number;
  private grace: number;
  private accessCookieMaxAge: number;
  private latency: number;
  private requireVerifiedEmail: boolean;
  private appUrl: string;
  private linkTtl: number;
  private mailsPerMinute: number;
  private reauthMaxAge: number;
  readonly tickets = new Map<string, TicketRow>();

  constructor(
    readonly clock: Clock,
    options: FakeOptions = {},
  ) {
    this.accessTtl = options.accessTtl ?? 3;
    this.refreshTtl = options.refreshTtl ?? 7 * 86400;
    this.grace = options.grace ?? 10;
    this.accessCookieMaxAge = options.accessCookieMaxAge ?? this.accessTtl;
    this.latency = options.latency ?? 5;
    this.requireVerifiedEmail = options.requireVerifiedEmail ?? false;
    this.appUrl = options.appUrl ?? 'http://app.test';
    this.linkTtl = options.linkTtl ?? 3600;
    this.mailsPerMinute = options.mailsPerMinute ?? 3;
    this.reauthMaxAge = options.reauthMaxAge ?? 600;
  }

  /** The double's authenticator app: the 6-digit code of `secret` at 30-second `step`. */
  static totp(secret: string, step: number): string {
    let h = 2166136261;
    for (const ch of `${secret}:${step}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    return String(h % 1_000_000).padStart(6, '0');
  }

  /** The code the app of `email` shows now (`steps` later when given), for its enabled or pending secret. */
  codeFor(email: string, steps = 0): string {
    const secret = this.users.get(email)?.totp?.secret;
    if (!secret) throw new Error(`no TOTP secret for ${email}`);
    return FakeLatchkey.totp(secret, Math.floor(this.clock.now / STEP_MS) + steps);
  }

  /** A TOTP code of the user's secret (enabled, or pending when `pending`), each step once. */
  private acceptTotp(user: UserRow, code: string, pending = false): boolean {
    const t = user.totp;
    if (!t || t.enabled === pending || !/^\d{6}$/.test(code)) return false;
    const current = Math.floor(this.clock.now / STEP_MS);
    for (const step of [current - 1, current, current + 1]) {
      if (FakeLatchkey.totp(t.secret, step) === code) {
        if (t.lastStep !== null && step <= t.lastStep) return false; // replayed
        t.lastStep = step;
        return true;
      }
    }
    return false;
  }

  private static normalizeRecovery(code: string): string {
    return code.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
  }

  /** Six digits are a TOTP code; anything else a recovery code (spent when right). */
  private acceptProof(user: UserRow, input: unknown): boolean {
    const code = typeof input === 'string' ? input.trim() : '';
    if (!code) return false;
    if (/^\d{6}$/.test(code)) return this.acceptTotp(user, code);
    const wanted = FakeLatchkey.normalizeRecovery(code);
    const index = user.recoveryCodes.findIndex((c) => FakeLatchkey.normalizeRecovery(c) === wanted);
    if (index < 0) return false;
    user.recoveryCodes.splice(index, 1);
    return true;
  }

  private newRecoveryCodes(user: UserRow): string[] {
    const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
    user.recoveryCodes = Array.from({ length: 10 }, () => {
      const chars = Array.from({ length: 16 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
      return chars.match(/.{4}/g)!.join('-');
    });
    return [...user.recoveryCodes];
  }

  private recent(session: SessionRow): boolean {
    return this.clock.now - session.authAt <= this.reauthMaxAge * 1000;
  }

  private reauthRequired(): Response {
    return this.problem(403, 'reauth_required', 'Confirm it is you: sign in again or use POST /auth/reauth.');
  }

  private invalidCode(): Response {
    return this.problem(401, 'invalid_code', 'The code is not valid.');
  }

  private newSession(user: UserRow): SessionRow {
    const now = this.clock.now;
    const session: SessionRow = { id: id('sid'), userId: user.id, revoked: false, createdAt: now, authAt: now };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The last mail to `address` (of `kind`, if given). */
  lastMail(address: string, kind?: MailKind): Mail | undefined {
    return this.outbox.filter((m) => m.to === address && (!kind || m.kind === kind)).at(-1);
  }

  /** The link in a mail's text, like a person would click it. */
  static linkIn(mail: Mail | undefined): string {
    const match = mail && /https?:\/\/\S+#token=\S+/.exec(mail.text);
    if (!match) throw new Error(`no link in mail: ${JSON.stringify(mail)}`);
    return match[0];
  }

  private sendMail(user: UserRow, kind: MailKind, to = user.email, newEmail?: string) {
    // URL-safe base64 has `-` and `_`; a `+`/`/` token would work too (the SPA decodes the fragment exactly).
    const token = `${kind}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    this.linkTokens.set(token, { kind, userId: user.id, exp: this.clock.now + this.linkTtl * 1000, used: false, newEmail });
    const link = `${this.appUrl}/${LINK_PATHS[kind]}#token=${token}`;
    const subject = { verify: 'Verify your email address', reset: 'Reset your password', confirm: 'Confirm your new email address' }[kind];
    this.outbox.push({ to, kind, subject, text: `Hello,\n\nOpen this link:\n${link}\n\nIt works once.\n` });
  }

  /** Takes a link token of `kind`: the row, or null when it is unknown, used, expired or of another kind. */
  private takeLinkToken(token: unknown, kind: MailKind): LinkTokenRow | null {
    const row = typeof token === 'string' ? this.linkTokens.get(token) : undefined;
    if (!row || row.kind !== kind || row.used || row.exp <= this.clock.now) return null;
    row.used = true;
    return row;
  }

  /** A 429 when `key` has had its mails this minute, else null (and the mail counts). */
  private mailLimit(key: string): Response | null {
    const now = this.clock.now;
    const times = (this.mailTimes.get(key) ?? []).filter((t) => now - t < 60_000);
    if (times.length >= this.mailsPerMinute) {
      const response = this.problem(429, 'rate_limited', 'Too many requests. Try again later.');
      response.headers.set('Retry-After', String(Math.ceil((times[0] + 60_000 - now) / 1000)));
      return response;
    }
    times.push(now);
    this.mailTimes.set(key, times);
    return null;
  }

  private userById(userId: string): UserRow | undefined {
    return [...this.users.values()].find((u) => u.id === userId);
  }

  private static validEmail(email: string): boolean {
    return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email);
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
      email_verified: u.email_verified,
      full_name: u.full_name,
      mfa_enabled: u.totp?.enabled === true,
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

  /** 202 for the mailing endpoints: the same body whether or not a mail was sent. */
  private accepted(): Response {
    return this.json(202, { message: 'If the address can receive it, a mail is on its way.' });
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
        email_verified: false,
        recoveryCodes: [],
      };
      this.users.set(email, user);
      this.sendMail(user, 'verify');
      if (this.requireVerifiedEmail) return this.json(202, { user: this.user(user) });
      const session = this.newSession(user);
      return this.json(201, this.sessionBody(user), this.issue(session.id, true));
    }

    if (route === 'POST /api/v1/auth/login') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const user = this.users.get(String(body.email ?? '').trim().toLowerCase());
      if (!user || user.password !== body.password) {
        return this.problem(401, 'invalid_credentials', 'The email or password is incorrect.');
      }
      if (this.requireVerifiedEmail && !user.email_verified) {
        return this.problem(403, 'email_not_verified', 'Verify your email address before signing in.');
      }
      if (user.totp?.enabled) {
        // The password was right; the second step needs the ticket cookie.
        const ticket = id('ticket');
        this.tickets.set(ticket, { userId: user.id, exp: now + TICKET_TTL * 1000, tries: 0, used: false });
        return this.json(202, { mfa_required: true, methods: ['totp', 'recovery_code'] }, [
          this.cookie('mfa_ticket', ticket, '/api/v1/auth/mfa', TICKET_TTL),
        ]);
      }
      const session = this.newSession(user);
      return this.json(200, this.sessionBody(user), this.issue(session.id, true));
    }

    if (route === 'POST /api/v1/auth/mfa/verify') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const ticketId = this.cookiesOf(headers).mfa_ticket ?? '';
      const ticket = this.tickets.get(ticketId);
      if (!ticket || ticket.used || ticket.exp <= now || ticket.tries >= TICKET_TRIES) {
        return this.problem(401, 'mfa_ticket_invalid', 'Start the sign-in again.');
      }
      ticket.tries++;
      const user = this.userById(ticket.userId)!;
      const proof = typeof body.code === 'string' ? body.code : body.recovery_code;
      const right = typeof body.code === 'string'
        ? /^\d{6}$/.test(body.code.trim()) && this.acceptTotp(user, body.code.trim())
        : this.acceptProof(user, proof);
      if (!right) return this.invalidCode();
      ticket.used = true;
      const session = this.newSession(user);
      return this.json(200, this.sessionBody(user), [
        ...this.issue(session.id, true),
        this.cookie('mfa_ticket', '', '/api/v1/auth/mfa', 0),
      ]);
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

    if (route === 'POST /api/v1/auth/password/forgot') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const email = String(body.email ?? '').trim().toLowerCase();
      if (!FakeLatchkey.validEmail(email)) {
        return this.problem(422, 'validation_failed', 'Some fields are not valid.', [{ field: 'email', message: 'Enter a valid email address.' }]);
      }
      const limited = this.mailLimit(`forgot:${email}`);
      if (limited) return limited;
      const user = this.users.get(email);
      if (user && !user.disabled) this.sendMail(user, 'reset');
      return this.accepted(); // the same answer whether or not the account exists
    }

    if (route === 'POST /api/v1/auth/password/reset') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const errors = this.validatePassword('new_password', body.new_password);
      if (errors.length) return this.problem(422, 'validation_failed', 'Some fields are not valid.', errors);
      const peek = typeof body.token === 'string' ? this.linkTokens.get(body.token) : undefined;
      const holder = peek && peek.kind === 'reset' && !peek.used && peek.exp > now ? this.userById(peek.userId) : undefined;
      if (holder?.totp?.enabled) {
        // The link alone is not enough: the second factor too (the link stays usable).
        if (typeof body.code !== 'string' || !body.code.trim()) {
          return this.problem(401, 'mfa_required', 'This account has a second factor: send a code.');
        }
        if (!this.acceptProof(holder, body.code)) return this.invalidCode();
      }
      const row = this.takeLinkToken(body.token, 'reset');
      const user = row && this.userById(row.userId);
      if (!user) return this.problem(400, 'invalid_token', 'The link is invalid or has expired.');
      user.password = String(body.new_password);
      user.email_verified = true; // the reset mail reached the address
      for (const s of this.sessions.values()) if (s.userId === user.id) s.revoked = true;
      return this.empty();
    }

    if (route === 'POST /api/v1/auth/email/verify') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const row = this.takeLinkToken(body.token, 'verify');
      const user = row && this.userById(row.userId);
      if (!user) return this.problem(400, 'invalid_token', 'The link is invalid or has expired.');
      user.email_verified = true;
      return this.empty();
    }

    if (route === 'POST /api/v1/auth/email/confirm') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      const row = typeof body.token === 'string' ? this.linkTokens.get(body.token) : undefined;
      const holder = row?.newEmail ? this.users.get(row.newEmail) : undefined;
      if (row && !row.used && row.exp > now && holder && holder.id !== row.userId) {
        // the address got an account meanwhile; the link stays unused
        return this.problem(409, 'email_taken', 'An account with this email already exists.');
      }
      const taken = this.takeLinkToken(body.token, 'confirm');
      const user = taken && this.userById(taken.userId);
      if (!taken || !user || !taken.newEmail) return this.problem(400, 'invalid_token', 'The link is invalid or has expired.');
      this.users.delete(user.email);
      user.email = taken.newEmail;
      user.email_verified = true;
      this.users.set(user.email, user);
      return this.empty();
    }

    const auth = this.authenticate(headers);
    if (auth instanceof Response) return auth;
    const { user, session } = auth;

    if (route === 'GET /api/v1/auth/me') return this.json(200, this.user(user));

    if (route === 'POST /api/v1/auth/reauth') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      if (body.password !== user.password) return this.problem(401, 'invalid_credentials', 'The password is incorrect.');
      if (user.totp?.enabled && !this.acceptProof(user, body.code)) return this.invalidCode();
      session.authAt = now;
      return this.empty();
    }

    if (path.startsWith('/api/v1/auth/mfa/') || path === '/api/v1/auth/mfa/totp') {
      if (!this.recent(session)) return this.reauthRequired();
      const enabled = user.totp?.enabled === true;
      if (route === 'POST /api/v1/auth/mfa/totp/setup' || route === 'POST /api/v1/auth/mfa/totp/enable') {
        if (!user.email_verified) return this.problem(403, 'email_not_verified', 'Confirm your email address first.');
      }
      if (route === 'POST /api/v1/auth/mfa/totp/setup') {
        if (enabled) return this.problem(409, 'mfa_already_enabled', 'A second factor is on already.');
        const secret = Array.from({ length: 32 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[Math.floor(Math.random() * 32)]).join('');
        user.totp = { secret, enabled: false, lastStep: null };
        const uri = `otpauth://totp/Latchkey:${encodeURIComponent(user.email)}?secret=${secret}&issuer=Latchkey`;
        const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#fff"/></svg>';
        return this.json(200, { secret, otpauth_uri: uri, qr_svg: svg });
      }
      if (route === 'POST /api/v1/auth/mfa/totp/enable') {
        const body = this.parse(rawBody, headers);
        if (body instanceof Response) return body;
        if (enabled) return this.problem(409, 'mfa_already_enabled', 'A second factor is on already.');
        if (!user.totp) return this.problem(409, 'mfa_not_enabled', 'Start the setup first.');
        if (!this.acceptTotp(user, String(body.code ?? '').trim(), true)) return this.invalidCode();
        user.totp.enabled = true;
        return this.json(200, { recovery_codes: this.newRecoveryCodes(user) });
      }
      if (route === 'DELETE /api/v1/auth/mfa/totp') {
        const body = this.parse(rawBody, headers);
        if (body instanceof Response) return body;
        if (!enabled) return this.problem(409, 'mfa_not_enabled', 'No second factor is on.');
        if (!this.acceptProof(user, body.code)) return this.invalidCode();
        user.totp = undefined;
        user.recoveryCodes = [];
        return this.empty();
      }
      if (route === 'POST /api/v1/auth/mfa/recovery-codes') {
        if (!enabled) return this.problem(409, 'mfa_not_enabled', 'No second factor is on.');
        return this.json(200, { recovery_codes: this.newRecoveryCodes(user) });
      }
    }

    if ((route === 'PUT /api/v1/auth/password' || route === 'PUT /api/v1/auth/email') && user.totp?.enabled && !this.recent(session)) {
      return this.reauthRequired();
    }

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

    if (route === 'POST /api/v1/auth/email/verify/resend') {
      const limited = this.mailLimit(`resend:${user.id}`);
      if (limited) return limited;
      if (!user.email_verified) this.sendMail(user, 'verify');
      return this.accepted();
    }

    if (route === 'PUT /api/v1/auth/email') {
      const body = this.parse(rawBody, headers);
      if (body instanceof Response) return body;
      if (body.current_password !== user.password) {
        return this.problem(401, 'invalid_credentials', 'The current password is incorrect.');
      }
      const email = String(body.new_email ?? '').trim().toLowerCase();
      if (!FakeLatchkey.validEmail(email) || email === user.email) {
        return this.problem(422, 'validation_failed', 'Some fields are not valid.', [
          { field: 'new_email', message: email === user.email ? 'This is your current address.' : 'Enter a valid email address.' },
        ]);
      }
      const limited = this.mailLimit(`change:${user.id}`);
      if (limited) return limited;
      // When the address has an account, it gets no link (the real server sends a notice), and the answer is the same.
      if (!this.users.has(email)) this.sendMail(user, 'confirm', email, email);
      return this.accepted();
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
