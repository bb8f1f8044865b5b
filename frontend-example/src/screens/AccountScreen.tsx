import { useState, type FormEvent } from 'react';
import { isProblem } from '../api/problem';
import type { User } from '../api/session';
import { useSession } from '../auth';
import { ErrorMessage, errorsOf, Field, Notice } from '../components/ui';
import { useAction } from '../hooks/useAction';
import { SecuritySection } from './SecuritySection';

/** The signed-in person's profile, changing the email address, and two-step sign-in (SecuritySection). */
export function AccountScreen({ user }: { user: User }) {
  const session = useSession();
  const [newEmail, setNewEmail] = useState('');
  const [password, setPassword] = useState('');
  const [sentTo, setSentTo] = useState<string | null>(null);
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setSentTo(null);
    const address = newEmail.trim();
    const changed = await run(async () => {
      const outcome = await session.changeEmail(address, password);
      if (isProblem(outcome.error) && outcome.error.code === 'invalid_credentials') {
        // The server's words are about signing in; here only the current password can be wrong.
        return {
          ...outcome,
          error: { ...outcome.error, detail: 'Your current password is not correct.', errors: [{ field: 'current_password', message: 'This is not your current password.' }] },
        };
      }
      return outcome;
    });
    if (changed) {
      setSentTo(address);
      setNewEmail('');
      setPassword('');
    }
  }

  const fields = errorsOf(failure);
  return (
    <>
      <section className="card narrow" aria-labelledby="account-title">
        <h1 id="account-title">Account</h1>
        <dl className="profile">
          <dt>Email</dt>
          <dd data-testid="account-email">
            {user.email}
            {user.email_verified === true && <span className="badge">Verified</span>}
            {user.email_verified === false && <span className="badge warn">Not verified</span>}
          </dd>
          {user.full_name && (
            <>
              <dt>Name</dt>
              <dd>{user.full_name}</dd>
            </>
          )}
        </dl>

        <h2 id="change-email-title">Change email address</h2>
        <p className="hint">We send a link to the new address. Your address changes only when you open it.</p>
        {sentTo !== null && (
          <Notice>Check your new inbox to confirm: we sent a link to {sentTo}. Until you open it, your email address stays {user.email}.</Notice>
        )}
        <form onSubmit={submit} noValidate aria-labelledby="change-email-title">
          <Field label="New email address" type="email" name="new_email" autoComplete="email" required value={newEmail}
            onChange={(e) => setNewEmail(e.target.value)} error={fields.new_email ?? fields.email} />
          <Field label="Current password" type="password" name="current_password" autoComplete="current-password" required
            value={password} onChange={(e) => setPassword(e.target.value)} error={fields.current_password} />
          <ErrorMessage failure={failure} />
          <button type="submit" disabled={busy}>{busy ? 'Sending…' : 'Change email'}</button>
        </form>
      </section>
      <SecuritySection user={user} />
    </>
  );
}
