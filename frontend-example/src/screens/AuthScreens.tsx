import { useState, type FormEvent } from 'react';
import { codeOf, isProblem } from '../api/problem';
import { useSession } from '../auth';
import { Alert, ErrorMessage, errorsOf, Field, Notice } from '../components/ui';
import { useAction } from '../hooks/useAction';
import { Link } from '../router';

const PASSWORD_HINT = '8 to 128 characters, with a lowercase letter, an uppercase letter and a digit.';

/**
 * `onForgot` is told the email typed so far when the person follows "Forgot
 * password?", so that the next screen can fill it in.
 *
 * Two steps when the account has a second factor: the password (POST /login
 * answers 202 and sets the httpOnly `mfa_ticket` cookie), then a code from the
 * authenticator app or a recovery code (POST /mfa/verify). When the ticket is
 * no longer good (five minutes, five tries), the person starts again here.
 */
export function LoginScreen({ notice, onForgot }: { notice?: string; onForgot?: (email: string) => void }) {
  const session = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [secondStep, setSecondStep] = useState(false);
  const [restart, setRestart] = useState<string | null>(null);
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setRestart(null);
    const result = await run(() => session.login({ email, password }));
    // signed_in: the session state changes and the app shows the tasks
    if (result?.kind === 'second_factor') {
      setPassword(''); // not needed again: the ticket cookie carries the first step
      setSecondStep(true);
    }
  }

  if (secondStep) {
    return (
      <SecondFactorStep
        onRestart={(message) => {
          setSecondStep(false);
          setRestart(message);
        }}
      />
    );
  }

  // 403 email_not_verified (the server runs with REQUIRE_VERIFIED_EMAIL=true).
  // Resending the verification email needs a session, which this account
  // cannot have yet; a password reset link can always be asked for, and
  // opening it verifies the address too.
  const unverified = codeOf(failure) === 'email_not_verified';
  const fields = errorsOf(failure);
  const forgot = <Link to="forgot-password" onClick={() => onForgot?.(email.trim())}>Forgot password?</Link>;
  return (
    <section className="card narrow" aria-labelledby="login-title">
      <h1 id="login-title">Sign in</h1>
      {notice && !restart && <Notice>{notice}</Notice>}
      {restart && <Alert><p>{restart}</p></Alert>}
      <form onSubmit={submit} noValidate>
        <Field label="Email" type="email" name="email" autoComplete="username" required value={email}
          onChange={(e) => setEmail(e.target.value)} error={fields.email} />
        <Field label="Password" type="password" name="password" autoComplete="current-password" required value={password}
          onChange={(e) => setPassword(e.target.value)} error={fields.password} />
        {unverified ? (
          <Alert>
            <p>Your email address is not verified yet. Open the link in the email we sent you when you registered, then sign in.</p>
            <p>Cannot find that email, or the link has expired? Use “Forgot password?” below: we email you a link to set a
              password, and opening it verifies your address too.</p>
          </Alert>
        ) : (
          <ErrorMessage failure={failure} />
        )}
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
      <p className="links">{forgot}</p>
      <p className="switch">No account yet? <Link to="register">Create one</Link></p>
    </section>
  );
}

export const TICKET_INVALID =
  'Your sign-in was not finished in time, or too many codes were tried. Please sign in again.';

/** The second step of a sign-in: a code from the app, or a recovery code. */
function SecondFactorStep({ onRestart }: { onRestart: (message: string) => void }) {
  const session = useSession();
  const [recovery, setRecovery] = useState(false);
  const [code, setCode] = useState('');
  const { busy, failure, setFailure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const value = code.trim();
    await run(async () => {
      const outcome = await session.verifyMfa(recovery ? { recovery_code: value } : { code: value.replace(/\s+/g, '') });
      if (codeOf(outcome) === 'mfa_ticket_invalid') onRestart(TICKET_INVALID);
      if (isProblem(outcome.error) && outcome.error.code === 'invalid_code') {
        setCode('');
        return {
          ...outcome,
          error: {
            ...outcome.error,
            detail: recovery
              ? 'That recovery code is not right, or it was used already.'
              : 'That code is not right. Enter the code your app shows now.',
          },
        };
      }
      return outcome;
    });
    // on success the session state changes and the app shows the tasks
  }

  function toggle() {
    setRecovery(!recovery);
    setCode('');
    setFailure(null);
  }

  return (
    <section className="card narrow" aria-labelledby="second-step-title">
      <h1 id="second-step-title">Two-step sign-in</h1>
      <p className="hint">
        {recovery
          ? 'Enter one of the recovery codes you saved when you turned on two-step sign-in. Each works once.'
          : 'Open your authenticator app and enter the 6-digit code it shows for this account.'}
      </p>
      <form onSubmit={submit} noValidate>
        {recovery ? (
          <Field key="recovery" label="Recovery code" name="recovery_code" autoComplete="off" autoCapitalize="none"
            spellCheck={false} required autoFocus value={code} onChange={(e) => setCode(e.target.value)} />
        ) : (
          <Field key="code" label="Code from your authenticator app" name="code" autoComplete="one-time-code" inputMode="numeric"
            pattern="[0-9]*" maxLength={6} required autoFocus value={code} onChange={(e) => setCode(e.target.value)} />
        )}
        <ErrorMessage failure={failure} />
        <button type="submit" disabled={busy}>{busy ? 'Checking…' : 'Verify'}</button>
      </form>
      <p className="links">
        <button type="button" className="link" onClick={toggle}>
          {recovery ? 'Use a code from your app instead' : 'Use a recovery code instead'}
        </button>
      </p>
      <p className="switch">
        <button type="button" className="link" onClick={() => onRestart('')}>Start again</button>
      </p>
    </section>
  );
}

export function RegisterScreen({ notice }: { notice?: string }) {
  const session = useSession();
  const [email, setEmail] = useState('');
  const [fullName, setFullName] = useState('');
  const [password, setPassword] = useState('');
  const [pending, setPending] = useState<string | null>(null); // the address to verify before signing in
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const name = fullName.trim();
    const outcome = await run(() => session.register({ email, password, ...(name ? { full_name: name } : {}) }));
    // Usually the session state changes and the app shows the tasks; when the
    // server requires a verified email (202), nobody is signed in yet.
    if (outcome?.verificationPending) {
      setPending(email.trim());
      setPassword('');
    }
  }

  if (pending !== null) {
    return (
      <section className="card narrow" aria-labelledby="register-title">
        <h1 id="register-title">Check your inbox</h1>
        <Notice>Your account was created. We sent a link to {pending || 'your email address'}: open it to verify your address, then sign in.</Notice>
        <p className="hint">No email after a few minutes? Look in your spam folder. The link works once and expires; to get a
          new one, use “Forgot password?” on the sign-in page (opening that link verifies your address too).</p>
        <p className="links"><Link to="login">Sign in</Link></p>
      </section>
    );
  }

  const fields = errorsOf(failure);
  return (
    <section className="card narrow" aria-labelledby="register-title">
      <h1 id="register-title">Create an account</h1>
      {notice && <Notice>{notice}</Notice>}
      <form onSubmit={submit} noValidate>
        <Field label="Email" type="email" name="email" autoComplete="username" required value={email}
          onChange={(e) => setEmail(e.target.value)} error={fields.email} />
        <Field label="Full name (optional)" name="full_name" autoComplete="name" value={fullName}
          onChange={(e) => setFullName(e.target.value)} error={fields.full_name} />
        <Field label="Password" type="password" name="password" autoComplete="new-password" required value={password}
          onChange={(e) => setPassword(e.target.value)} error={fields.password} hint={PASSWORD_HINT} />
        <ErrorMessage failure={failure} />
        <button type="submit" disabled={busy}>{busy ? 'Creating account…' : 'Create account'}</button>
      </form>
      <p className="switch">Already registered? <Link to="login">Sign in</Link></p>
    </section>
  );
}

export { PASSWORD_HINT };
