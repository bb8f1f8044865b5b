import { useCallback, useEffect, useState, type ReactNode } from 'react';
import type { AuthState } from './api/session';
import { useAuthState, useSession } from './auth';
import { Spinner } from './components/ui';
import { useAction } from './hooks/useAction';
import { ReauthProvider } from './reauth';
import { Link, navigate, useRoute, type LinkRoute, type Route } from './router';
import { AccountScreen } from './screens/AccountScreen';
import { LoginScreen, RegisterScreen } from './screens/AuthScreens';
import {
  ConfirmEmailScreen,
  ForgotPasswordScreen,
  ResetPasswordScreen,
  VerifyEmailBanner,
  VerifyEmailScreen,
} from './screens/EmailScreens';
import { PasswordScreen } from './screens/PasswordScreen';
import { SessionsScreen } from './screens/SessionsScreen';
import { TasksScreen } from './screens/TasksScreen';

/** Only for a signed-in person. */
const SIGNED_IN: Route[] = ['tasks', 'sessions', 'password', 'account'];
/** Only for someone signed out. */
const SIGNED_OUT: Route[] = ['login', 'register'];
// Everything else (forgot password and the email-link pages) is for both.

/** The email link this page was opened with: its screen and its token (see src/linkToken.ts). */
export interface OpenedLink {
  route: LinkRoute;
  token: string | null;
}

export function App({ link: openedWith = null }: { link?: OpenedLink | null }) {
  const state = useAuthState();
  const route = useRoute();
  // The link's token, in memory only, until its screen has sent it.
  const [link, setLink] = useState(openedWith);
  const spend = useCallback(() => setLink(null), []);
  const tokenFor = (r: LinkRoute) => (link?.route === r ? link.token : null);
  // What was typed on the sign-in page, for "Forgot password?".
  const [forgotEmail, setForgotEmail] = useState('');

  // Keep the address bar in step with what is shown.
  useEffect(() => {
    if (state.status === 'authenticated' && (route === null || SIGNED_OUT.includes(route))) navigate('tasks');
    if (state.status === 'anonymous' && (route === null || SIGNED_IN.includes(route))) navigate('login');
  }, [state.status, route]);

  if (state.status === 'loading') {
    return (
      <main className="center">
        <Spinner label="Checking your session…" />
      </main>
    );
  }

  let page: ReactNode;
  switch (route) {
    case 'verify-email':
      page = <VerifyEmailScreen token={tokenFor('verify-email')} onSpent={spend} />;
      break;
    case 'reset-password':
      page = <ResetPasswordScreen token={tokenFor('reset-password')} onSpent={spend} />;
      break;
    case 'confirm-email':
      page = <ConfirmEmailScreen token={tokenFor('confirm-email')} onSpent={spend} />;
      break;
    case 'forgot-password':
      page = <ForgotPasswordScreen initialEmail={forgotEmail} />;
      break;
    case 'register':
      page = <RegisterScreen notice={state.status === 'anonymous' ? state.notice : undefined} />;
      break;
    default:
      page = state.status === 'anonymous'
        ? <LoginScreen notice={state.notice} onForgot={setForgotEmail} />
        : signedInPage(route, state);
  }

  // The three parts keep their places, so that a screen keeps its state when
  // the person is signed in or out under it (e.g. resetting the password).
  // <ReauthProvider>: any action that gets 403 reauth_required asks for the
  // password (and a code) and is retried once (src/reauth.tsx).
  return (
    <ReauthProvider>
      {state.status === 'authenticated' ? (
        <Header email={state.user.email} name={state.user.full_name} route={route} />
      ) : (
        <header className="topbar">
          <span className="brand">Latchkey example</span>
        </header>
      )}
      {state.status === 'authenticated' && state.user.email_verified === false && route !== 'verify-email' ? (
        <VerifyEmailBanner user={state.user} />
      ) : null}
      <main>{page}</main>
    </ReauthProvider>
  );
}

function signedInPage(route: Route | null, state: Extract<AuthState, { status: 'authenticated' }>) {
  switch (route) {
    case 'sessions':
      return <SessionsScreen />;
    case 'password':
      return <PasswordScreen />;
    case 'account':
      return <AccountScreen user={state.user} />;
    default:
      return <TasksScreen />;
  }
}

function Header({ email, name, route }: { email: string; name?: string | null; route: Route | null }) {
  const session = useSession();
  const { busy: leaving, run } = useAction();
  const link = (to: Route, label: string) => (
    <Link to={to} aria-current={route === to ? 'page' : undefined}>{label}</Link>
  );
  return (
    <header className="topbar">
      <span className="brand">Latchkey example</span>
      <nav aria-label="Main">
        {link('tasks', 'Tasks')}
        {link('sessions', 'Sessions')}
        {link('password', 'Password')}
        {link('account', 'Account')}
      </nav>
      <span className="who" data-testid="signed-in-as" title={email}>{name ? `${name} (${email})` : email}</span>
      <button type="button" className="secondary" disabled={leaving} onClick={() => {
        // logout() cannot fail: it signs out here even when the server cannot be reached
        void run(async () => {
          await session.logout();
          navigate('login'); // also from the pages everyone may see (an email link's page)
          return {};
        });
      }}>{leaving ? 'Logging out…' : 'Log out'}</button>
    </header>
  );
}
