/**
 * The re-authentication prompt. Some settings need a recent sign-in (the
 * second-factor settings always; changing the password or the email while a
 * second factor is on): the server answers 403 `reauth_required` when the
 * session proved a credential longer ago than `REAUTH_MAX_AGE`.
 *
 * `<ReauthProvider>` gives every `useAction()` below it a `Reauthenticate`
 * (src/hooks/useAction.ts): on that 403, `run()` calls it, this dialog asks
 * for the password (and a code when `mfa_enabled`), posts /reauth, and `run()`
 * retries the action once. Actions that hit the 403 together share one dialog.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { isProblem } from './api/problem';
import type { User } from './api/session';
import { useAuthState, useSession } from './auth';
import { ErrorMessage, errorsOf, Field } from './components/ui';
import { ReauthContext, useAction, type Reauthenticate } from './hooks/useAction';

export function ReauthProvider({ children }: { children: ReactNode }) {
  const session = useSession();
  const state = useAuthState();
  const waiting = useRef<((ok: boolean) => void)[]>([]);
  const [open, setOpen] = useState(false);

  const settle = useCallback((ok: boolean) => {
    const resolvers = waiting.current;
    waiting.current = [];
    setOpen(false);
    for (const resolve of resolvers) resolve(ok);
  }, []);

  const request: Reauthenticate = useCallback(
    () =>
      new Promise<boolean>((resolve) => {
        waiting.current.push(resolve);
        setOpen(true);
      }),
    [],
  );

  // Signed out (here or in another tab) while the dialog is up: the actions give up.
  useEffect(
    () =>
      session.subscribe(() => {
        if (session.getState().status !== 'authenticated' && waiting.current.length) settle(false);
      }),
    [session, settle],
  );

  return (
    <>
      <ReauthContext.Provider value={request}>{children}</ReauthContext.Provider>
      {open && state.status === 'authenticated' && <ReauthDialog user={state.user} onDone={settle} />}
    </>
  );
}

function ReauthDialog({ user, onDone }: { user: User; onDone: (ok: boolean) => void }) {
  const session = useSession();
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const { busy, failure, run } = useAction();
  const withCode = user.mfa_enabled === true;

  async function submit(event: FormEvent) {
    event.preventDefault();
    const done = await run(async () => {
      const outcome = await session.reauthenticate(password, withCode ? code.trim() : undefined);
      if (isProblem(outcome.error) && outcome.error.code === 'invalid_credentials') {
        return { ...outcome, error: { ...outcome.error, detail: 'That password is not correct.', errors: [{ field: 'password', message: 'This is not your password.' }] } };
      }
      if (isProblem(outcome.error) && outcome.error.code === 'invalid_code') {
        return { ...outcome, error: { ...outcome.error, detail: 'That code is not correct.', errors: [{ field: 'code', message: 'Enter the current code from your app, or an unused recovery code.' }] } };
      }
      return outcome;
    });
    if (done) onDone(true);
  }

  const fields = errorsOf(failure);
  return (
    <div className="modal-backdrop">
      <div className="card narrow modal" role="dialog" aria-modal="true" aria-labelledby="reauth-title" aria-describedby="reauth-why">
        <h2 id="reauth-title">Confirm it’s you</h2>
        <p className="hint" id="reauth-why">
          This change needs a recent sign-in. Enter your password{withCode ? ' and a code from your authenticator app' : ''} to continue.
        </p>
        <form onSubmit={submit} noValidate>
          <input type="email" name="username" autoComplete="username" value={user.email} readOnly hidden />
          <Field label="Your password" type="password" name="password" autoComplete="current-password" required autoFocus
            value={password} onChange={(e) => setPassword(e.target.value)} error={fields.password} />
          {withCode && (
            <Field label="Code from your authenticator app" name="code" autoComplete="one-time-code" required
              value={code} onChange={(e) => setCode(e.target.value)} error={fields.code}
              hint="Or one of your recovery codes." />
          )}
          <ErrorMessage failure={failure} />
          <div className="actions">
            <button type="submit" disabled={busy}>{busy ? 'Checking…' : 'Continue'}</button>
            <button type="button" className="secondary" disabled={busy} onClick={() => onDone(false)}>Cancel</button>
          </div>
        </form>
      </div>
    </div>
  );
}
