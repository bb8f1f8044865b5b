/**
 * The screens of the email flows: forgot password, and the three pages that
 * links in emails open (`/reset-password`, `/verify-email`, `/confirm-email`,
 * each with `#token=…`), plus the banner that asks a signed-in person to
 * verify their address.
 *
 * The token reaches these screens as a prop: main.tsx took it out of the
 * address bar as the page loaded (src/linkToken.ts). It is kept in memory
 * only, and `onSpent` drops it once the server has used or refused it.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { codeOf } from '../api/problem';
import type { User } from '../api/session';
import { useAuthState, useSession } from '../auth';
import { Alert, ErrorMessage, errorsOf, Field, Notice, Spinner } from '../components/ui';
import { useAction } from '../hooks/useAction';
import { Link } from '../router';
import { PASSWORD_HINT } from './AuthScreens';

export const FORGOT_SENT = 'If an account exists for that address, we sent a link to reset the password. Check your inbox.';

interface LinkScreenProps {
  /** The token of the email link, or null when the address had none (or it was used already on this page). */
  token: string | null;
  /** Called once the token was sent and cannot be used again. */
  onSpent: () => void;
}

/** Where to go from an email-link page: the app when signed in, else sign-in. */
function Onwards() {
  const state = useAuthState();
  return (
    <p className="links">
      {state.status === 'authenticated' ? <Link to="tasks">Continue to your tasks</Link> : <Link to="login">Sign in</Link>}
    </p>
  );
}

function MissingToken({ what, again }: { what: string; again: ReactNode }) {
  return (
    <Alert>
      <p>This {what} link is incomplete, or the page was reloaded after it was opened (the link’s code is not kept). Open the link from the email again, or {again}.</p>
    </Alert>
  );
}

export function ForgotPasswordScreen({ initialEmail = '' }: { initialEmail?: string }) {
  const session = useSession();
  const state = useAuthState();
  const [email, setEmail] = useState(initialEmail);
  const [sent, setSent] = useState(false);
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setSent(false);
    // 202 whether or not there is such an account: the page says the same either way.
    if (await run(() => session.forgotPassword(email.trim()))) setSent(true);
  }

  const fields = errorsOf(failure);
  return (
    <section className="card narrow" aria-labelledby="forgot-title">
      <h1 id="forgot-title">Forgot password?</h1>
      <p className="hint">Enter the email address of your account. We will send you a link to choose a new password.</p>
      {sent && <Notice>{FORGOT_SENT}</Notice>}
      <form onSubmit={submit} noValidate>
        <Field label="Email" type="email" name="email" autoComplete="username" required value={email}
          onChange={(e) => setEmail(e.target.value)} error={fields.email} />
        <ErrorMessage failure={failure} />
        <button type="submit" disabled={busy}>{busy ? 'Sending…' : sent ? 'Send another link' : 'Send reset link'}</button>
      </form>
      <p className="switch">
        {state.status === 'authenticated' ? <Link to="tasks">Back to your tasks</Link> : <>Remembered it? <Link to="login">Sign in</Link></>}
      </p>
    </section>
  );
}

export function ResetPasswordScreen({ token, onSpent }: LinkScreenProps) {
  const session = useSession();
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [result, setResult] = useState<'done' | 'invalid' | null>(null);
  // The account has a second factor: the server answered 401 mfa_required, so ask for a code and send again.
  const [needCode, setNeedCode] = useState(false);
  const [code, setCode] = useState('');
  const { busy, failure, setFailure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!token) return;
    setFailure(null);
    if (next !== confirm) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    const outcome = await run(async () => {
      const outcome = await session.resetPassword(token, next, needCode ? code.trim() : undefined);
      const problem = codeOf(outcome);
      if (problem === 'invalid_token') {
        setResult('invalid');
        onSpent();
      }
      if (problem === 'mfa_required') setNeedCode(true); // the link stays usable
      if (problem === 'invalid_code') setCode('');
      return outcome;
    });
    if (outcome) {
      setResult('done');
      setNext('');
      setConfirm('');
      onSpent();
    }
  }

  const newLink = <Link to="forgot-password">request a new link</Link>;
  const fields = errorsOf(failure);
  let body;
  if (result === 'done') {
    body = (
      <>
        <Notice>Your password was changed, and every session of your account was signed out. Sign in with your new password.</Notice>
        <Onwards />
      </>
    );
  } else if (result === 'invalid') {
    body = (
      <Alert>
        <p>This reset link was already used or has expired. Please {newLink}.</p>
      </Alert>
    );
  } else if (!token) {
    body = <MissingToken what="reset" again={newLink} />;
  } else {
    body = (
      <form onSubmit={submit} noValidate>
        <Field label="New password" type="password" name="new_password" autoComplete="new-password" required
          value={next} onChange={(e) => setNext(e.target.value)} error={fields.new_password} hint={PASSWORD_HINT} />
        <Field label="Repeat the new password" type="password" name="confirm" autoComplete="new-password" required
          value={confirm} onChange={(e) => setConfirm(e.target.value)}
          error={mismatch ? 'The two new passwords are not the same.' : undefined} />
        {needCode && (
          <>
            <p className="hint">Your account has two-step sign-in: enter the code your authenticator app shows now, or one of your recovery codes.</p>
            <Field label="Code from your authenticator app" name="code" autoComplete="one-time-code" required autoFocus
              value={code} onChange={(e) => setCode(e.target.value)}
              error={codeOf(failure) === 'invalid_code' ? 'That code is not right. Enter the code your app shows now, or an unused recovery code.' : undefined}
              hint="Or one of your recovery codes." />
          </>
        )}
        <ErrorMessage failure={['invalid_token', 'mfa_required', 'invalid_code'].includes(codeOf(failure) ?? '') ? null : failure} />
        {codeOf(failure) === 'invalid_code' && <Alert><p>That code is not right. Your link still works: try again.</p></Alert>}
        <button type="submit" disabled={busy}>{busy ? 'Saving…' : 'Set new password'}</button>
      </form>
    );
  }
  return (
    <section className="card narrow" aria-labelledby="reset-title">
      <h1 id="reset-title">Choose a new password</h1>
      {result === null && token && (
        <p className="hint">Setting a new password signs out every session of your account, on every device.</p>
      )}
      {body}
    </section>
  );
}

export function VerifyEmailScreen({ token, onSpent }: LinkScreenProps) {
  const session = useSession();
  const state = useAuthState();
  const [done, setDone] = useState(false);
  const { busy, failure, run } = useAction(token ? 'verify' : null);
  const started = useRef(false);

  const verify = useCallback(async (value: string) => {
    const outcome = await run(async () => {
      const outcome = await session.verifyEmail(value);
      if (codeOf(outcome) === 'invalid_token') onSpent();
      return outcome;
    }, { label: 'verify' });
    if (outcome) {
      setDone(true);
      onSpent();
    }
  }, [run, session, onSpent]);

  // Verifying is harmless and what the person expects from opening the link,
  // so it starts at once (the other links wait for the person). Only once:
  // React's StrictMode runs effects twice in development, and a token works once.
  useEffect(() => {
    if (!token || started.current) return;
    started.current = true;
    void verify(token);
  }, [token, verify]);

  const code = codeOf(failure);
  const signedIn = state.status === 'authenticated';
  let body;
  if (done) {
    body = (
      <>
        <Notice>Your email address is verified. Thank you!</Notice>
        <Onwards />
      </>
    );
  } else if (busy) {
    body = <Spinner label="Verifying your email address…" />;
  } else if (code === 'invalid_token') {
    body = signedIn && state.user.email_verified === true ? (
      <>
        <Notice>This link was already used: your email address is verified.</Notice>
        <Onwards />
      </>
    ) : (
      <>
        <Alert>
          <p>This verification link was already used or has expired.</p>
          <p>{signedIn
            ? 'Use “Resend verification email” at the top of the page to get a new one.'
            : 'Sign in to have a new one sent, or use “Forgot password?”: opening a reset link verifies your address too.'}</p>
        </Alert>
        <Onwards />
      </>
    );
  } else if (failure && token) {
    body = (
      <>
        <ErrorMessage failure={failure} />
        <button type="button" onClick={() => void verify(token)}>Try again</button>
      </>
    );
  } else if (!token) {
    body = <MissingToken what="verification" again={signedIn ? 'use “Resend verification email”' : <Link to="login">sign in</Link>} />;
  }
  return (
    <section className="card narrow" aria-labelledby="verify-title">
      <h1 id="verify-title">Verify your email address</h1>
      {body}
    </section>
  );
}

export function ConfirmEmailScreen({ token, onSpent }: LinkScreenProps) {
  const session = useSession();
  const state = useAuthState();
  const [result, setResult] = useState<'done' | 'invalid' | 'taken' | null>(null);
  const { busy, failure, run } = useAction();

  // Changing the address is the person's decision: opening the link only shows this button.
  async function confirm() {
    if (!token) return;
    const outcome = await run(async () => {
      const outcome = await session.confirmEmail(token);
      const code = codeOf(outcome);
      if (code === 'invalid_token' || code === 'email_taken') {
        setResult(code === 'invalid_token' ? 'invalid' : 'taken');
        onSpent();
      }
      return outcome;
    });
    if (outcome) {
      setResult('done');
      onSpent();
    }
  }

  const account = state.status === 'authenticated' ? <Link to="account">your account page</Link> : 'your account page (after signing in)';
  let body;
  if (result === 'done') {
    body = (
      <>
        <Notice>
          {state.status === 'authenticated'
            ? `Your email address is now ${state.user.email}.`
            : 'Your email address was changed. Sign in with the new address.'}
        </Notice>
        <Onwards />
      </>
    );
  } else if (result === 'taken') {
    body = (
      <>
        <Alert>
          <p>Another account uses that email address now, so yours could not be changed. Your email address is as it was.</p>
        </Alert>
        <Onwards />
      </>
    );
  } else if (result === 'invalid') {
    body = (
      <>
        <Alert>
          <p>This confirmation link was already used or has expired. To change your address, start again from {account}.</p>
        </Alert>
        <Onwards />
      </>
    );
  } else if (!token) {
    body = <MissingToken what="confirmation" again={<>start again from {account}</>} />;
  } else {
    body = (
      <>
        <p>You asked to use this address for your account from now on. Confirm to change it; until then nothing changes.</p>
        <ErrorMessage failure={failure} />
        <button type="button" onClick={confirm} disabled={busy}>{busy ? 'Confirming…' : 'Confirm new email address'}</button>
      </>
    );
  }
  return (
    <section className="card narrow" aria-labelledby="confirm-title">
      <h1 id="confirm-title">Confirm your new email address</h1>
      {body}
    </section>
  );
}

/** Asks a signed-in person whose address is not verified to verify it, and resends the email. */
export function VerifyEmailBanner({ user }: { user: User }) {
  const session = useSession();
  const [sent, setSent] = useState(false);
  const { busy, failure, run } = useAction();

  async function resend() {
    setSent(false);
    if (await run(() => session.resendVerification())) setSent(true);
  }

  return (
    <section className="banner" aria-label="Email verification">
      <p>Please verify your email address <strong>{user.email}</strong>: open the link we emailed you.</p>
      {sent ? (
        <Notice>Sent. Check your inbox for the new link.</Notice>
      ) : (
        <button type="button" className="secondary" onClick={resend} disabled={busy}>
          {busy ? 'Sending…' : 'Resend verification email'}
        </button>
      )}
      <ErrorMessage failure={failure} />
    </section>
  );
}
