/**
 * The browser side of a Latchkey cookie session, independent of React.
 *
 * - Tokens live only in httpOnly cookies: this code never sees them. Every
 *   request is sent with `credentials: 'include'` so the browser attaches them.
 * - A request that gets 401 because the access token expired (or, while we
 *   believe we are signed in, because it is missing or invalid) triggers ONE
 *   POST /api/v1/auth/refresh and is retried ONCE.
 * - Concurrent 401s share a single in-flight refresh; across tabs the refresh
 *   runs under the Web Lock `latchkey-refresh`, and a tab that waited for the
 *   lock skips its own refresh when another tab renewed the cookies meanwhile.
 *   Without Web Locks the server's refresh-reuse grace keeps racing tabs signed in.
 * - A failed refresh (401) ends the session cleanly; sign-in, sign-out and
 *   renewals are announced to other tabs on the BroadcastChannel `latchkey-auth`.
 * - The email flows (verify, forgot and reset password, change and confirm the
 *   address) are here too: the calls that carry a one-time token from an email
 *   link are credentials, never refreshed and retried; after one succeeds the
 *   signed-in user is reloaded, so `email_verified` and `email` are current.
 * - The second factor: `login` answers `second_factor` when the password was
 *   right but the account has TOTP on (202, an httpOnly `mfa_ticket` cookie,
 *   no session yet); `verifyMfa` finishes the sign-in with a code or a
 *   recovery code. `reauthenticate` (POST /reauth) makes the session count as
 *   recently signed in, which the second-factor settings need (403
 *   `reauth_required` otherwise; see src/reauth.tsx).
 */
import createClient, { type Client } from 'openapi-fetch';
import { describeError, isProblem, problemCode, type Outcome } from './problem';
import type { components, paths } from './schema';

export type User = components['schemas']['User'];
export type ApiClient = Client<paths>;

export type AuthState =
  | { status: 'loading' }
  | { status: 'anonymous'; notice?: string }
  | { status: 'authenticated'; user: User };

/** The part of the Web Locks API we use (`navigator.locks`). */
export interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** The part of BroadcastChannel we use. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

/** The part of localStorage we use (a random stamp that changes whenever the cookies are renewed). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface SessionOptions {
  /** Prefix for API paths; '' (the default) means this page's origin, which is what makes the cookies work. */
  baseUrl?: string;
  /** The network. Defaults to the global fetch. */
  fetch?: (request: Request) => Promise<Response>;
  /** Defaults to `navigator.locks`; null means no cross-tab lock. */
  locks?: LockManagerLike | null;
  /** Defaults to `new BroadcastChannel('latchkey-auth')`; null means no cross-tab messages. */
  channel?: ChannelLike | null;
  /** Defaults to `localStorage`; null means memory only. */
  storage?: StorageLike | null;
}

export const LOCK_NAME = 'latchkey-refresh';
export const CHANNEL_NAME = 'latchkey-auth';
export const STAMP_KEY = 'latchkey-session-stamp';

/** Codes that mean "the access token is not usable": refreshing may fix it. */
const REFRESHABLE = new Set(['token_expired', 'not_authenticated', 'token_invalid']);
/** Codes that mean the session itself is over: refreshing cannot help. */
const ENDED = new Set(['session_revoked', 'session_expired', 'refresh_token_reused']);
/** Endpoints that take credentials (a password, or an email link's token) rather than a session: never refreshed and retried. */
const CREDENTIAL_PATHS = [
  '/api/v1/auth/login',
  '/api/v1/auth/mfa/verify', // the mfa_ticket cookie, not a session: a 401 here is about the code or the ticket
  '/api/v1/auth/register',
  '/api/v1/auth/refresh',
  '/api/v1/auth/logout',
  '/api/v1/auth/password/forgot',
  '/api/v1/auth/password/reset',
  '/api/v1/auth/email/verify',
  '/api/v1/auth/email/confirm',
];

type Message =
  | { type: 'login'; user: User; stamp: string }
  | { type: 'refreshed'; user: User; stamp: string }
  | { type: 'user'; user: User }
  | { type: 'logout'; notice: string };

const SESSION_ENDED = 'Your session has ended. Please sign in again.';
export const PASSWORD_RESET_NOTICE = 'Your password was reset and every session was signed out. Sign in with your new password.';
const ACCOUNT_DISABLED = 'Your account has been disabled. Contact an administrator.';

function defaultLocks(): LockManagerLike | null {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  return nav?.locks ? (nav.locks as unknown as LockManagerLike) : null;
}

function defaultChannel(): ChannelLike | null {
  return typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL_NAME) : null;
}

function defaultStorage(): StorageLike | null {
  try {
    return (globalThis as { localStorage?: Storage }).localStorage ?? null;
  } catch {
    return null; // e.g. storage disabled by the browser's privacy settings
  }
}

function randomStamp(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function pathOf(url: string): string {
  try {
    return new URL(url, 'http://relative.invalid').pathname;
  } catch {
    return url;
  }
}

/** Every request carries the session cookies: `credentials: 'include'`. */
function withCredentials(request: Request): Request {
  return request.credentials === 'include' ? request : new Request(request, { credentials: 'include' });
}

export type RefreshOutcome = 'renewed' | 'ended' | 'unavailable';

/**
 * What signing in came back with (POST /login):
 * - `signed_in`: the session cookies are set and the state is `authenticated`;
 * - `second_factor`: the password was right, but the account has a second
 *   factor (202): no session yet, the browser holds an httpOnly `mfa_ticket`
 *   cookie for five minutes; finish with `verifyMfa()`;
 * - `failed`: `error` (a problem document, or what was thrown) and `response` tell why.
 * Every variant is an `Outcome`, so `useAction().run()` takes it as it is.
 */
export type LoginResult =
  | { kind: 'signed_in'; user: User; response: Response; error?: undefined }
  | { kind: 'second_factor'; methods: string[]; response: Response; error?: undefined }
  | { kind: 'failed'; error?: unknown; response?: Response };

/** What POST /mfa/verify takes: a 6-digit `code` from the app, or a `recovery_code`. */
export type SecondFactor = components['schemas']['MfaVerifyRequest'];
export type TotpSetup = components['schemas']['TotpSetup'];

/** An outcome that carries data on success (e.g. the TOTP setup, or recovery codes). */
export interface DataOutcome<T> extends Outcome {
  data?: T;
}

/** What registering came back with: `verificationPending` when the account must verify its email before signing in (202, no session). */
export interface RegisterOutcome extends Outcome {
  verificationPending?: boolean;
}

export interface Session {
  /** Typed client for every endpoint; refreshes and retries on an expired access token. */
  readonly api: ApiClient;
  getState(): AuthState;
  subscribe(listener: () => void): () => void;
  /** Asks the server who is signed in (GET /me, refreshing once on 401). */
  start(): Promise<void>;
  /** Signs in (POST /login): signed in, a second factor needed, or failed (see `LoginResult`). */
  login(body: components['schemas']['LoginRequest']): Promise<LoginResult>;
  /**
   * The second step of a sign-in (POST /mfa/verify, with the `mfa_ticket`
   * cookie): 200 signs in. 401 `invalid_code` (try again; five tries per
   * ticket) or `mfa_ticket_invalid` (expired, used or out of tries: sign in again).
   */
  verifyMfa(body: SecondFactor): Promise<Outcome>;
  /** POST /reauth: the password (and a code when a second factor is on); 204 makes this session recent. */
  reauthenticate(password: string, code?: string): Promise<Outcome>;
  /** POST /mfa/totp/setup: a new secret, its otpauth URI and QR code (SVG); nothing is on yet. */
  setupTotp(): Promise<DataOutcome<TotpSetup>>;
  /** POST /mfa/totp/enable with a first code: the ten recovery codes, shown once; reloads the user. */
  enableTotp(code: string): Promise<DataOutcome<string[]>>;
  /** DELETE /mfa/totp with a code or a recovery code; reloads the user. */
  disableTotp(code: string): Promise<Outcome>;
  /** POST /mfa/recovery-codes: ten new codes; the old ones stop working. */
  newRecoveryCodes(): Promise<DataOutcome<string[]>>;
  /**
   * Creates an account and signs in (POST /register); the outcome's `error`
   * tells why not. When the server requires a verified email it answers 202
   * without a session: `verificationPending` is true and nobody is signed in.
   */
  register(body: components['schemas']['RegisterRequest']): Promise<RegisterOutcome>;
  logout(): Promise<void>;
  logoutAll(): Promise<Outcome>;
  /** Asks GET /me again (e.g. after the email was verified or changed) and tells the other tabs. */
  reloadUser(): Promise<Outcome>;
  /** POST /password/forgot: 202 whether or not the account exists. */
  forgotPassword(email: string): Promise<Outcome>;
  /**
   * POST /password/reset with an email link's token; on 204 the server signed
   * out every session, and so does this page. With a second factor on, `code`
   * (from the app, or a recovery code) is needed: 401 `mfa_required` without
   * it, `invalid_code` when wrong (the link stays usable either way).
   */
  resetPassword(token: string, newPassword: string, code?: string): Promise<Outcome>;
  /** POST /email/verify with an email link's token; reloads the signed-in user on 204. */
  verifyEmail(token: string): Promise<Outcome>;
  /** POST /email/verify/resend for the signed-in user (202). */
  resendVerification(): Promise<Outcome>;
  /** PUT /email: 202 sends a confirmation link to the new address; nothing changes until it is opened. */
  changeEmail(newEmail: string, currentPassword: string): Promise<Outcome>;
  /** POST /email/confirm with an email link's token; reloads the signed-in user on 204. */
  confirmEmail(token: string): Promise<Outcome>;
  /** One shared refresh; `sentWith` is the stamp current when the failed request was sent. */
  refresh(sentWith?: string): Promise<RefreshOutcome>;
  /** Ends the session locally (and in other tabs), e.g. after the server said it is over. */
  end(notice?: string, othersNotice?: string): void;
  close(): void;
}

export function createSession(options: SessionOptions = {}): Session {
  const baseUrl = options.baseUrl ?? '';
  const network = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const locks = options.locks !== undefined ? options.locks : defaultLocks();
  const channel = options.channel !== undefined ? options.channel : defaultChannel();
  const storage = options.storage !== undefined ? options.storage : defaultStorage();

  let state: AuthState = { status: 'loading' };
  const listeners = new Set<() => void>();
  let inflight: Promise<RefreshOutcome> | null = null;
  let memoryStamp = randomStamp();

  const send = (request: Request) => network(withCredentials(request));

  // For the credential endpoints themselves: no refresh-and-retry.
  const raw = createClient<paths>({ baseUrl, fetch: send, credentials: 'include' });
  const api = createClient<paths>({ baseUrl, fetch: sessionFetch, credentials: 'include' });

  function setState(next: AuthState) {
    state = next;
    for (const listener of [...listeners]) listener();
  }

  function post(message: Message) {
    try {
      channel?.postMessage(message);
    } catch {
      // a closed channel: nothing to tell
    }
  }

  function currentStamp(): string {
    try {
      return storage?.getItem(STAMP_KEY) ?? memoryStamp;
    } catch {
      return memoryStamp;
    }
  }

  /** The cookies were just renewed (sign-in or refresh): requests sent before now may simply be retried. */
  function newStamp(): string {
    memoryStamp = randomStamp();
    try {
      storage?.setItem(STAMP_KEY, memoryStamp);
    } catch {
      // memory only
    }
    return memoryStamp;
  }

  function signedIn(user: User, type: 'login' | 'refreshed') {
    const stamp = newStamp();
    setState({ status: 'authenticated', user });
    post({ type, user, stamp });
  }

  /** `notice` is shown here; `othersNotice` in the other tabs. */
  function end(notice: string = SESSION_ENDED, othersNotice: string = notice) {
    const was = state.status;
    // On the first load there was no session to lose: no notice, nothing to tell other tabs.
    setState({ status: 'anonymous', notice: was === 'authenticated' ? notice : undefined });
    if (was === 'authenticated') post({ type: 'logout', notice: othersNotice });
  }

  channel?.addEventListener('message', (event) => {
    const message = event.data as Message;
    if (!message || typeof message !== 'object') return;
    switch (message.type) {
      case 'login':
      case 'refreshed':
        memoryStamp = message.stamp;
        setState({ status: 'authenticated', user: message.user });
        break;
      case 'user':
        if (state.status === 'authenticated') setState({ status: 'authenticated', user: message.user });
        break;
      case 'logout':
        if (state.status !== 'anonymous') {
          setState({ status: 'anonymous', notice: message.notice });
        }
        break;
    }
  });

  async function doRefresh(sentWith: string | undefined): Promise<RefreshOutcome> {
    // Another tab (or an earlier refresh here) renewed the cookies after the
    // failed request was sent: retrying is enough, and refreshing again would
    // only rotate the token once more.
    if (sentWith !== undefined && currentStamp() !== sentWith) return 'renewed';
    let result;
    try {
      result = await raw.POST('/api/v1/auth/refresh');
    } catch {
      return 'unavailable'; // network down: keep the session, the person can retry
    }
    if (result.data) {
      signedIn(result.data.user, 'refreshed');
      return 'renewed';
    }
    const code = isProblem(result.error) ? result.error.code : undefined;
    if (result.response.status === 401 || code === 'account_disabled') {
      end(code === 'account_disabled' ? ACCOUNT_DISABLED : SESSION_ENDED);
      return 'ended';
    }
    return 'unavailable'; // 429, 503: not the session's fault
  }

  function refresh(sentWith?: string): Promise<RefreshOutcome> {
    if (inflight) return inflight;
    const run = () => doRefresh(sentWith);
    let pending: Promise<RefreshOutcome>;
    if (locks) {
      pending = locks.request(LOCK_NAME, run).catch(run); // a lock failure must not cost the session
    } else {
      pending = run();
    }
    inflight = pending.finally(() => {
      inflight = null;
    });
    return inflight;
  }

  async function sessionFetch(input: Request): Promise<Response> {
    const request = withCredentials(input);
    if (CREDENTIAL_PATHS.includes(pathOf(request.url))) return network(request);
    const spare = request.clone(); // the body can only be sent once
    const sentWith = currentStamp();
    const first = await network(request);
    if (first.status === 403 && (await problemCode(first)) === 'account_disabled') {
      end(ACCOUNT_DISABLED);
      return first;
    }
    if (first.status !== 401) return first;

    const code = await problemCode(first);
    if (code && ENDED.has(code)) {
      end(SESSION_ENDED);
      return first;
    }
    const sessionExpected = state.status !== 'anonymous';
    const worthRefreshing = code === 'token_expired' || (code !== undefined && REFRESHABLE.has(code) && sessionExpected);
    if (!worthRefreshing) return first; // e.g. invalid_credentials from PUT /password

    const outcome = await refresh(sentWith);
    if (outcome !== 'renewed') return first;

    const second = await network(spare);
    if (second.status === 401) {
      const again = await problemCode(second);
      if (again && (REFRESHABLE.has(again) || ENDED.has(again))) end(SESSION_ENDED);
    }
    return second;
  }

  async function start() {
    try {
      const { data, error, response } = await api.GET('/api/v1/auth/me');
      if (data) {
        setState({ status: 'authenticated', user: data });
      } else if (response.status === 401) {
        if (state.status !== 'anonymous') setState({ status: 'anonymous' }); // nobody is signed in
      } else {
        setState({ status: 'anonymous', notice: describeError(error, response) }); // e.g. the server is down
      }
    } catch (error) {
      setState({ status: 'anonymous', notice: describeError(error) });
    }
  }

  /**
   * Sign-in and registration are one exchange: post the credentials (without
   * refresh-and-retry), and on success the server sets the session cookies and
   * answers with the user, which this tab and the others are told about.
   */
  async function login(body: components['schemas']['LoginRequest']): Promise<LoginResult> {
    try {
      const { data, error, response } = await raw.POST('/api/v1/auth/login', { body });
      if (data && 'mfa_required' in data) {
        // 202: the password was right; the second step finishes it (verifyMfa).
        return { kind: 'second_factor', methods: data.methods, response };
      }
      if (data) {
        signedIn(data.user, 'login');
        return { kind: 'signed_in', user: data.user, response };
      }
      return { kind: 'failed', error, response };
    } catch (error) {
      return { kind: 'failed', error };
    }
  }

  async function verifyMfa(body: SecondFactor): Promise<Outcome> {
    try {
      const { data, error, response } = await raw.POST('/api/v1/auth/mfa/verify', { body });
      if (data) {
        signedIn(data.user, 'login');
        return { response };
      }
      return { error, response };
    } catch (error) {
      return { error };
    }
  }

  async function register(body: components['schemas']['RegisterRequest']): Promise<RegisterOutcome> {
    try {
      const { data, error, response } = await raw.POST('/api/v1/auth/register', { body });
      // 202: the account exists but must verify its email first; no cookies were set.
      if (response.status === 202) return { response, verificationPending: true };
      if (data) {
        signedIn(data.user, 'login');
        return { response };
      }
      return { error, response };
    } catch (error) {
      return { error };
    }
  }

  function reauthenticate(password: string, code?: string) {
    return call(() => api.POST('/api/v1/auth/reauth', { body: { password, ...(code ? { code } : {}) } }));
  }

  async function setupTotp(): Promise<DataOutcome<TotpSetup>> {
    try {
      return await api.POST('/api/v1/auth/mfa/totp/setup');
    } catch (error) {
      return { error };
    }
  }

  /** The second factor went on or off: GET /me again, so `mfa_enabled` is current here and in other tabs. */
  async function afterMfaChange<T extends Outcome>(outcome: T): Promise<T> {
    if (outcome.response?.ok) await reloadUser();
    return outcome;
  }

  async function enableTotp(code: string): Promise<DataOutcome<string[]>> {
    try {
      const { data, error, response } = await api.POST('/api/v1/auth/mfa/totp/enable', { body: { code } });
      return afterMfaChange({ data: data?.recovery_codes, error, response });
    } catch (error) {
      return { error };
    }
  }

  async function disableTotp(code: string) {
    return afterMfaChange(await call(() => api.DELETE('/api/v1/auth/mfa/totp', { body: { code } })));
  }

  async function newRecoveryCodes(): Promise<DataOutcome<string[]>> {
    try {
      const { data, error, response } = await api.POST('/api/v1/auth/mfa/recovery-codes');
      return { data: data?.recovery_codes, error, response };
    } catch (error) {
      return { error };
    }
  }

  async function logout() {
    let notice = 'You have signed out.';
    try {
      await raw.POST('/api/v1/auth/logout');
    } catch {
      notice = 'You have signed out here, but the server could not be reached to end the session.';
    }
    end(notice, 'You signed out in another tab.');
  }

  async function logoutAll(): Promise<Outcome> {
    try {
      const { error, response } = await api.POST('/api/v1/auth/logout-all');
      if (response.ok) {
        end('You have signed out on every device.', 'You signed out on every device.');
        return { response };
      }
      return { error, response };
    } catch (error) {
      return { error };
    }
  }

  /** The status now (not as TypeScript narrowed it before an await). */
  const statusNow = (): AuthState['status'] => state.status;

  /** Runs a call of the email flows, turning an exception (network down) into an outcome. */
  async function call(send: () => Promise<{ error?: unknown; response: Response }>): Promise<Outcome> {
    try {
      const { error, response } = await send();
      return { error, response };
    } catch (error) {
      return { error };
    }
  }

  async function reloadUser(): Promise<Outcome> {
    try {
      const { data, error, response } = await api.GET('/api/v1/auth/me');
      if (data && state.status === 'authenticated') {
        setState({ status: 'authenticated', user: data });
        post({ type: 'user', user: data });
      }
      return { error, response };
    } catch (error) {
      return { error };
    }
  }

  /** After a token call succeeded: the signed-in user may have changed (verified, new address). */
  async function afterTokenCall(outcome: Outcome): Promise<Outcome> {
    // The token may belong to another account than the one signed in here: that
    // is fine, the reload just finds nothing new.
    if (outcome.response?.ok && state.status === 'authenticated') await reloadUser();
    return outcome;
  }

  function forgotPassword(email: string) {
    return call(() => raw.POST('/api/v1/auth/password/forgot', { body: { email } }));
  }

  async function resetPassword(token: string, newPassword: string, code?: string): Promise<Outcome> {
    const body = { token, new_password: newPassword, ...(code ? { code } : {}) };
    const outcome = await call(() => raw.POST('/api/v1/auth/password/reset', { body }));
    if (outcome.response?.ok && state.status === 'authenticated') {
      // The server revoked every session of that account. If it was the one
      // signed in here, GET /me now fails and the session ends (in every tab);
      // if the link was for another account, this session goes on.
      await reloadUser();
      if (statusNow() === 'anonymous') setState({ status: 'anonymous', notice: PASSWORD_RESET_NOTICE });
    }
    return outcome;
  }

  async function verifyEmail(token: string) {
    return afterTokenCall(await call(() => raw.POST('/api/v1/auth/email/verify', { body: { token } })));
  }

  function resendVerification() {
    return call(() => api.POST('/api/v1/auth/email/verify/resend'));
  }

  function changeEmail(newEmail: string, currentPassword: string) {
    return call(() => api.PUT('/api/v1/auth/email', { body: { new_email: newEmail, current_password: currentPassword } }));
  }

  async function confirmEmail(token: string) {
    return afterTokenCall(await call(() => raw.POST('/api/v1/auth/email/confirm', { body: { token } })));
  }

  return {
    api,
    getState: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start,
    login,
    verifyMfa,
    reauthenticate,
    setupTotp,
    enableTotp,
    disableTotp,
    newRecoveryCodes,
    register,
    logout,
    logoutAll,
    reloadUser,
    forgotPassword,
    resetPassword,
    verifyEmail,
    resendVerification,
    changeEmail,
    confirmEmail,
    refresh,
    end,
    close() {
      channel?.close();
      listeners.clear();
    },
  };
}
