import { useCallback, useEffect, useState } from 'react';
import type { components } from '../api/schema';
import { useSession } from '../auth';
import { ErrorMessage, formatTime, Notice, Spinner } from '../components/ui';
import { useAction } from '../hooks/useAction';

type SessionInfo = components['schemas']['SessionInfo'];

/** A short, readable name for a User-Agent string. */
function deviceName(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown device';
  const browser = /Edg\//.test(userAgent) ? 'Edge'
    : /Firefox\//.test(userAgent) ? 'Firefox'
    : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome'
    : /Safari\//.test(userAgent) ? 'Safari'
    : null;
  const os = /Windows/.test(userAgent) ? 'Windows'
    : /Android/.test(userAgent) ? 'Android'
    : /iPhone|iPad/.test(userAgent) ? 'iOS'
    : /Mac OS X/.test(userAgent) ? 'macOS'
    : /Linux/.test(userAgent) ? 'Linux'
    : null;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? userAgent.slice(0, 60);
}

export function SessionsScreen() {
  const session = useSession();
  const api = session.api;
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const list = useAction('load'); // loads as it mounts
  const action = useAction(); // revoking a session, logging out everywhere
  const [notice, setNotice] = useState<string | null>(null);
  const { run: runLoad, setFailure: setLoadFailure } = list;
  // One message area: the failure of the last action, else that of the last load.
  const failure = action.failure ?? list.failure;

  const load = useCallback(async () => {
    // The last error stays on screen until this load has succeeded or failed.
    await runLoad(async () => {
      const result = await api.GET('/api/v1/auth/sessions');
      if (result.data) {
        setSessions([...result.data].sort((a, b) => Number(b.current) - Number(a.current))); // this browser first
      }
      return result;
    }, { label: 'load', keepFailure: true });
  }, [api, runLoad]);

  useEffect(() => {
    void load();
  }, [load]);

  async function revoke(target: SessionInfo) {
    if (target.current) {
      await session.logout();
      return;
    }
    setLoadFailure(null); // a new action replaces any message on screen
    setNotice(null);
    await action.run(async () => {
      const outcome = await api.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id: target.id } } });
      if (outcome.response.ok) {
        await load(); // the buttons stay disabled until the list is fresh
        setNotice(`Signed out ${deviceName(target.user_agent)}.`);
      }
      return outcome;
    }, { label: target.id });
  }

  async function logoutEverywhere() {
    setLoadFailure(null); // a new action replaces any message on screen
    await action.run(() => session.logoutAll(), { label: 'all' });
  }

  return (
    <section className="card" aria-labelledby="sessions-title">
      <div className="heading-row">
        <h1 id="sessions-title">Sessions</h1>
        <button type="button" className="danger" onClick={logoutEverywhere} disabled={action.busy}>
          {action.running === 'all' ? 'Signing out…' : 'Log out everywhere'}
        </button>
      </div>
      <p className="hint">Every browser or device where you are signed in. Sign out any you do not recognise.</p>
      {notice && <Notice>{notice}</Notice>}
      <ErrorMessage failure={failure} />
      {list.busy && !sessions && <Spinner label="Loading sessions…" />}
      {sessions && (
        <ul className="sessions" aria-busy={list.busy}>
          {sessions.map((s) => (
            <li key={s.id} className={s.current ? 'current' : undefined} data-session-id={s.id}>
              <div>
                <strong>{deviceName(s.user_agent)}</strong>
                {s.current && <span className="badge">This browser</span>}
                <p className="meta">
                  {s.ip ? `${s.ip} · ` : ''}signed in {formatTime(s.created_at)} · last active {formatTime(s.last_used_at)} · ends{' '}
                  {formatTime(s.expires_at)}
                </p>
              </div>
              <button type="button" className="secondary" onClick={() => revoke(s)} disabled={action.busy}>
                {action.running === s.id ? 'Revoking…' : s.current ? 'Log out' : 'Revoke'}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
