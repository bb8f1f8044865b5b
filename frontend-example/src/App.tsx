import { useEffect } from 'react';
import { useAuthState, useSession } from './auth';
import { Spinner } from './components/ui';
import { useAction } from './hooks/useAction';
import { navigate, useRoute, type Route } from './router';
import { LoginScreen, RegisterScreen } from './screens/AuthScreens';
import { PasswordScreen } from './screens/PasswordScreen';
import { SessionsScreen } from './screens/SessionsScreen';
import { TasksScreen } from './screens/TasksScreen';

const SIGNED_IN: Route[] = ['tasks', 'sessions', 'password'];

export function App() {
  const state = useAuthState();
  const route = useRoute();

  // Keep the address bar in step with what is shown.
  useEffect(() => {
    if (state.status === 'authenticated' && (route === null || !SIGNED_IN.includes(route))) navigate('tasks');
    if (state.status === 'anonymous' && route !== 'login' && route !== 'register') navigate('login');
  }, [state.status, route]);

  if (state.status === 'loading') {
    return (
      <main className="center">
        <Spinner label="Checking your session…" />
      </main>
    );
  }

  if (state.status === 'anonymous') {
    return (
      <>
        <header className="topbar">
          <span className="brand">Latchkey example</span>
        </header>
        <main>{route === 'register' ? <RegisterScreen notice={state.notice} /> : <LoginScreen notice={state.notice} />}</main>
      </>
    );
  }

  const page = route === 'sessions' ? <SessionsScreen /> : route === 'password' ? <PasswordScreen /> : <TasksScreen />;
  return (
    <>
      <Header email={state.user.email} name={state.user.full_name} route={route} />
      <main>{page}</main>
    </>
  );
}

function Header({ email, name, route }: { email: string; name?: string | null; route: Route | null }) {
  const session = useSession();
  const { busy: leaving, run } = useAction();
  const link = (to: Route, label: string) => (
    <a href={`#/${to}`} aria-current={route === to ? 'page' : undefined}>{label}</a>
  );
  return (
    <header className="topbar">
      <span className="brand">Latchkey example</span>
      <nav aria-label="Main">
        {link('tasks', 'Tasks')}
        {link('sessions', 'Sessions')}
        {link('password', 'Password')}
      </nav>
      <span className="who" data-testid="signed-in-as" title={email}>{name ? `${name} (${email})` : email}</span>
      <button type="button" className="secondary" disabled={leaving} onClick={() => {
        // logout() cannot fail: it signs out here even when the server cannot be reached
        void run(async () => {
          await session.logout();
          return {};
        });
      }}>{leaving ? 'Logging out…' : 'Log out'}</button>
    </header>
  );
}
