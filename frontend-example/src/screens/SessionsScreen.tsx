import { useCallback, useEffect, useState } from 'react';
import type { components } from '../api/schema';
import { useSession } from '../auth';
import { ErrorMessage, formatTime, Notice, Spinner, type Failure } from '../components/ui';

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
  const [loading, setLoading] = useState(true);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const { data, error, response } = await api.GET('/api/v1/auth/sessions');
      if (data) {
        setSessions([...data].sort((a, b) => Number(b.current) - Number(a.current))); // this browser first
        setFailure(null);
      } else {
        setFailure({ error, response });
      }
    } catch (error) {
      setFailure({ error });
    } finally {
      setLoading(false);
    }
  }, [api]);

  useEffect(() => {
    void load();
  }, [load]);

  async function revoke(target: SessionInfo) {
    if (target.current) {
      await session.logout();
      return;
    }
    setBusy(target.id);
    setFailure(null);
    setNotice(null);
    try {
      const { error, response } = await api.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id: target.id } } });
      if (response.ok) {
        await load();
        setNotice(`Signed out ${deviceName(target.user_agent)}.`);
      } else {
        setFailure({ error, response });
      }
    } catch (error) {
      setFailure({ error });
    } finally {
      setBusy(null);
    }
  }

  async function logoutEverywhere() {
    setBusy('all');
    setFailure(null);
    const result = await session.logoutAll();
    if (result.error !== undefined || (result.response && !result.response.ok)) setFailure(result);
    setBusy(null);
  }

  return (
    <section className="card" aria-labelledby="sessions-title">
      <div className="heading-row">
        <h1 id="sessions-title">Sessions</h1>
        <button type="button" className="danger" onClick={logoutEverywhere} disabled={busy !== null}>
          {busy === 'all' ? 'Signing out…' : 'Log out everywhere'}
        </button>
      </div>
      <p className="hint">Every browser or device where you are signed in. Sign out any you do not recognise.</p>
      {notice && <Notice>{notice}</Notice>}
      <ErrorMessage failure={failure} />
      {loading && !sessions && <Spinner label="Loading sessions…" />}
      {sessions && (
        <ul className="sessions" aria-busy={loading}>
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
              <button type="button" className="secondary" onClick={() => revoke(s)} disabled={busy !== null}>
                {busy === s.id ? 'Revoking…' : s.current ? 'Log out' : 'Revoke'}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
