import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { createSession } from './api/session';
import { SessionProvider } from './auth';
import './styles.css';

// One session per page: it owns the API client, the refresh logic and the
// cross-tab channel. GET /api/v1/auth/me tells whether someone is signed in.
const session = createSession();
void session.start();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider session={session}>
      <App />
    </SessionProvider>
  </StrictMode>,
);
