import { useState, type FormEvent } from 'react';
import { useSession } from '../auth';
import { ErrorMessage, errorsOf, Field, Notice } from '../components/ui';
import { useAction } from '../hooks/useAction';

const PASSWORD_HINT = '8 to 128 characters, with a lowercase letter, an uppercase letter and a digit.';

export function LoginScreen({ notice }: { notice?: string }) {
  const session = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    await run(() => session.login({ email, password }));
    // on success the session state changes and the app shows the tasks
  }

  const fields = errorsOf(failure);
  return (
    <section className="card narrow" aria-labelledby="login-title">
      <h1 id="login-title">Sign in</h1>
      {notice && <Notice>{notice}</Notice>}
      <form onSubmit={submit} noValidate>
        <Field label="Email" type="email" name="email" autoComplete="username" required value={email}
          onChange={(e) => setEmail(e.target.value)} error={fields.email} />
        <Field label="Password" type="password" name="password" autoComplete="current-password" required value={password}
          onChange={(e) => setPassword(e.target.value)} error={fields.password} />
        <ErrorMessage failure={failure} />
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
      <p className="switch">No account yet? <a href="#/register">Create one</a></p>
    </section>
  );
}

export function RegisterScreen({ notice }: { notice?: string }) {
  const session = useSession();
  const [email, setEmail] = useState('');
  const [fullName, setFullName] = useState('');
  const [password, setPassword] = useState('');
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const name = fullName.trim();
    await run(() => session.register({ email, password, ...(name ? { full_name: name } : {}) }));
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
      <p className="switch">Already registered? <a href="#/login">Sign in</a></p>
    </section>
  );
}

export { PASSWORD_HINT };
