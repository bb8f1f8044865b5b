/**
 * Two-step sign-in (TOTP) on the Account page: turn it on (a QR code and the
 * secret for typing by hand, then a first code from the app), the ten recovery
 * codes (shown once; copy or download them), turn it off, new recovery codes.
 *
 * These settings need a recent sign-in: a 403 `reauth_required` brings up the
 * re-authentication dialog by itself (src/reauth.tsx via useAction), and the
 * action is retried once the person has confirmed it is them.
 */
import { useState, type FormEvent } from 'react';
import { isProblem, type Outcome } from '../api/problem';
import type { TotpSetup, User } from '../api/session';
import { useSession } from '../auth';
import { Alert, ErrorMessage, errorsOf, Field, Notice } from '../components/ui';
import { useAction } from '../hooks/useAction';

/**
 * The QR code as an image: the server's SVG document, base64-encoded into a
 * data: URL. An <img> never runs scripts or loads anything an SVG may contain,
 * unlike putting the markup into the page.
 */
export function svgDataUrl(svg: string): string {
  const bytes = new TextEncoder().encode(svg);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}

/** The secret in groups of four, easier to type into an app. */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, '$1 ');
}

/** The text of the recovery codes file. */
export function recoveryCodesText(codes: string[], email: string): string {
  return [
    `Recovery codes for ${email} (Latchkey example)`,
    'Each code signs you in once, in place of a code from your authenticator app.',
    '',
    ...codes,
    '',
  ].join('\n');
}

/** A wrong code gets the page's words, next to the field. */
function explainCode<T extends Outcome>(outcome: T, field: string, recoveryToo: boolean): T {
  if (isProblem(outcome.error) && outcome.error.code === 'invalid_code') {
    const message = recoveryToo
      ? 'That code is not right. Enter the code your app shows now, or an unused recovery code.'
      : 'That code is not right. Enter the code your app shows now.';
    return { ...outcome, error: { ...outcome.error, detail: message, errors: [{ field, message }] } } as T;
  }
  return outcome;
}

type Stage =
  | { step: 'idle' }
  | { step: 'setup'; setup: TotpSetup }
  | { step: 'codes'; codes: string[]; fresh: 'enabled' | 'renewed' }
  | { step: 'disable' };

export function SecuritySection({ user }: { user: User }) {
  const session = useSession();
  const [stage, setStage] = useState<Stage>({ step: 'idle' });
  const [code, setCode] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, running, failure, setFailure, run } = useAction();
  const on = user.mfa_enabled === true;

  function go(next: Stage) {
    setStage(next);
    setCode('');
    setFailure(null);
  }

  async function begin() {
    setNotice(null);
    const outcome = await run(() => session.setupTotp(), { label: 'setup' });
    if (outcome?.data) go({ step: 'setup', setup: outcome.data });
  }

  async function enable(event: FormEvent) {
    event.preventDefault();
    const outcome = await run(async () => explainCode(await session.enableTotp(code.replace(/\s+/g, '')), 'code', false), { label: 'enable' });
    if (outcome?.data) go({ step: 'codes', codes: outcome.data, fresh: 'enabled' });
  }

  async function disable(event: FormEvent) {
    event.preventDefault();
    if (await run(async () => explainCode(await session.disableTotp(code.trim()), 'code', true), { label: 'disable' })) {
      go({ step: 'idle' });
      setNotice('Two-step sign-in is off. Your recovery codes no longer work.');
    }
  }

  async function renewCodes() {
    setNotice(null);
    const outcome = await run(() => session.newRecoveryCodes(), { label: 'codes' });
    if (outcome?.data) go({ step: 'codes', codes: outcome.data, fresh: 'renewed' });
  }

  const fields = errorsOf(failure);
  let body;
  if (stage.step === 'codes') {
    body = <RecoveryCodes codes={stage.codes} email={user.email} fresh={stage.fresh} onSaved={() => go({ step: 'idle' })} />;
  } else if (stage.step === 'setup' && !on) {
    const { setup } = stage;
    body = (
      <div className="steps">
        <p>1. Scan this QR code with your authenticator app (for example Google Authenticator, Aegis or 1Password).</p>
        <img className="qr" src={svgDataUrl(setup.qr_svg)} alt="QR code for your authenticator app" width={200} height={200} />
        <p>Cannot scan it? Enter this key in the app instead (time-based, 6 digits):</p>
        <p><code className="secret" data-testid="totp-secret" data-secret={setup.secret}>{groupSecret(setup.secret)}</code></p>
        <form onSubmit={enable} noValidate>
          <p>2. Enter the 6-digit code the app shows, to check that it works.</p>
          <Field label="Code from your authenticator app" name="code" autoComplete="one-time-code" inputMode="numeric" maxLength={6}
            required value={code} onChange={(e) => setCode(e.target.value)} error={fields.code} />
          <ErrorMessage failure={failure} />
          <div className="actions">
            <button type="submit" disabled={busy}>{running === 'enable' ? 'Turning on…' : 'Turn on'}</button>
            <button type="button" className="secondary" disabled={busy} onClick={() => go({ step: 'idle' })}>Cancel</button>
          </div>
        </form>
      </div>
    );
  } else if (stage.step === 'disable' && on) {
    body = (
      <form onSubmit={disable} noValidate>
        <p>Enter a code from your authenticator app, or one of your recovery codes, to turn two-step sign-in off.</p>
        <Field label="Code or recovery code" name="code" autoComplete="one-time-code" required autoFocus
          value={code} onChange={(e) => setCode(e.target.value)} error={fields.code} />
        <ErrorMessage failure={failure} />
        <div className="actions">
          <button type="submit" className="danger" disabled={busy}>{running === 'disable' ? 'Turning off…' : 'Turn off two-step sign-in'}</button>
          <button type="button" className="secondary" disabled={busy} onClick={() => go({ step: 'idle' })}>Cancel</button>
        </div>
      </form>
    );
  } else if (on) {
    body = (
      <>
        <ErrorMessage failure={failure} />
        <div className="actions">
          <button type="button" className="secondary" disabled={busy} onClick={renewCodes}>
            {running === 'codes' ? 'Making new codes…' : 'New recovery codes'}
          </button>
          <button type="button" className="danger" disabled={busy} onClick={() => go({ step: 'disable' })}>Turn off</button>
        </div>
      </>
    );
  } else if (user.email_verified === false) {
    // The server refuses (403 email_not_verified): the address is how the
    // account is recovered, so it must be the owner's before a factor is added.
    body = (
      <>
        <p data-testid="mfa-needs-verified-email">Verify your email address first: use the link we mailed you.</p>
        <button type="button" disabled>Turn on two-step sign-in</button>
      </>
    );
  } else {
    body = (
      <>
        <ErrorMessage failure={failure} />
        <button type="button" disabled={busy} onClick={begin}>{running === 'setup' ? 'Starting…' : 'Turn on two-step sign-in'}</button>
      </>
    );
  }

  return (
    <section className="card narrow" aria-labelledby="security-title">
      <h2 id="security-title">Two-step sign-in</h2>
      <p data-testid="mfa-status">
        {on ? (
          <><span className="badge">On</span> Signing in asks for a code from your authenticator app after your password.</>
        ) : (
          <><span className="badge warn">Off</span> Signing in needs only your password. Add a code from an authenticator app to protect your account.</>
        )}
      </p>
      {notice && <Notice>{notice}</Notice>}
      {body}
    </section>
  );
}

/** The recovery codes, shown once: copy, download, and "I saved them". */
function RecoveryCodes({ codes, email, fresh, onSaved }: { codes: string[]; email: string; fresh: 'enabled' | 'renewed'; onSaved: () => void }) {
  const [saved, setSaved] = useState(false);
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const text = recoveryCodesText(codes, email);

  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('yes');
    } catch {
      setCopied('failed'); // e.g. no clipboard access on plain HTTP: download them instead
    }
  }

  function download() {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'latchkey-recovery-codes.txt';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  return (
    <div>
      <Notice>
        {fresh === 'enabled'
          ? 'Two-step sign-in is on. Save these recovery codes now: they are shown only this once.'
          : 'Here are your new recovery codes; the old ones no longer work. They are shown only this once.'}
      </Notice>
      <p className="hint">If you lose your phone, each code signs you in once instead of a code from the app. Keep them somewhere safe.</p>
      <ul className="recovery-codes" aria-label="Recovery codes" data-testid="recovery-codes">
        {codes.map((c) => <li key={c}>{c}</li>)}
      </ul>
      <div className="actions">
        <button type="button" className="secondary" onClick={copy}>Copy</button>
        <button type="button" className="secondary" onClick={download}>Download as text</button>
      </div>
      {copied === 'yes' && <Notice>Copied.</Notice>}
      {copied === 'failed' && <Alert><p>The browser did not allow copying. Download them, or write them down.</p></Alert>}
      <label className="confirm">
        <input type="checkbox" checked={saved} onChange={(e) => setSaved(e.target.checked)} />
        I saved my recovery codes
      </label>
      <button type="button" disabled={!saved} onClick={onSaved}>Done</button>
    </div>
  );
}
