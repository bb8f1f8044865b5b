import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App, type OpenedLink } from './App';
import { createSession } from './api/session';
import { SessionProvider } from './auth';
import { takeFragmentToken } from './linkToken';
import { linkRouteOf } from './router';
import './styles.css';

// An email link (`/verify-email#token=…`): take the token out of the address
// bar before anything else runs; it stays in memory only (src/linkToken.ts).
const token = takeFragmentToken(window.location, window.history);
const linkRoute = linkRouteOf(window.location.pathname);
const link: OpenedLink | null = linkRoute ? { route: linkRoute, token } : null;

// One session per page: it owns the API client, the refresh logic and the
// cross-tab channel. GET /api/v1/auth/me tells whether someone is signed in.
const session = createSession();
void session.start();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider session={session}>
      <App link={link} />
    </SessionProvider>
  </StrictMode>,
);
