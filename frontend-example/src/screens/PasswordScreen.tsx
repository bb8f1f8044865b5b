import { useState, type FormEvent } from 'react';
import { isProblem } from '../api/problem';
import { useApi } from '../auth';
import { ErrorMessage, errorsOf, Field, Notice } from '../components/ui';
import { useAction } from '../hooks/useAction';
import { PASSWORD_HINT } from './AuthScreens';

export function PasswordScreen() {
  const api = useApi();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const { busy, failure, setFailure, run } = useAction();
  const [mismatch, setMismatch] = useState(false);
  const [done, setDone] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setDone(false);
    setFailure(null);
    if (next !== confirm) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    const changed = await run(async () => {
      const { error, response } = await api.PUT('/api/v1/auth/password', {
        body: { current_password: current, new_password: next },
      });
      if (isProblem(error) && error.code === 'invalid_credentials') {
        // The server's words are about signing in; here only the current password can be wrong.
        return {
          error: { ...error, detail: 'Your current password is not correct.', errors: [{ field: 'current_password', message: 'This is not your current password.' }] },
          response,
        };
      }
      return { error, response };
    });
    if (changed) {
      setDone(true);
      setCurrent('');
      setNext('');
      setConfirm('');
    }
  }

  const fields = errorsOf(failure);
  return (
    <section className="card narrow" aria-labelledby="password-title">
      <h1 id="password-title">Change password</h1>
      <p className="hint">Changing your password signs out every other device; this one stays signed in.</p>
      {done && <Notice>Your password was changed. Your other sessions were signed out.</Notice>}
      <form onSubmit={submit} noValidate>
        <Field label="Current password" type="password" name="current_password" autoComplete="current-password" required
          value={current} onChange={(e) => setCurrent(e.target.value)} error={fields.current_password} />
        <Field label="New password" type="password" name="new_password" autoComplete="new-password" required
          value={next} onChange={(e) => setNext(e.target.value)} error={fields.new_password} hint={PASSWORD_HINT} />
        <Field label="Repeat the new password" type="password" name="confirm" autoComplete="new-password" required
          value={confirm} onChange={(e) => setConfirm(e.target.value)}
          error={mismatch ? 'The two new passwords are not the same.' : undefined} />
        <ErrorMessage failure={failure} />
        <button type="submit" disabled={busy}>{busy ? 'Changing…' : 'Change password'}</button>
      </form>
    </section>
  );
}
