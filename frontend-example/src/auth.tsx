import { createContext, useContext, useSyncExternalStore, type ReactNode } from 'react';
import type { ApiClient, AuthState, Session } from './api/session';

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ session, children }: { session: Session; children: ReactNode }) {
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession() needs a <SessionProvider>');
  return session;
}

/** The current sign-in state; re-renders when it changes (in this tab or another). */
export function useAuthState(): AuthState {
  const session = useSession();
  return useSyncExternalStore(session.subscribe, session.getState, session.getState);
}

/** The generated, typed API client (refreshes the session by itself). */
export function useApi(): ApiClient {
  return useSession().api;
}
