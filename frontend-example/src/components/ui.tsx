import { useId, type InputHTMLAttributes, type ReactNode } from 'react';
import { describeError, fieldErrors, type Failure } from '../api/problem';

/** A failure's message for the person, or null when there is none. */
export function ErrorMessage({ failure }: { failure: Failure | null }) {
  if (!failure) return null;
  const fields = fieldErrors(failure.error);
  const hasFieldErrors = Object.keys(fields).some((f) => f !== '');
  const retryAfter = failure.response?.status === 429 ? Number(failure.response.headers.get('Retry-After')) : NaN;
  return (
    <div className="error" role="alert">
      <p>{describeError(failure.error, failure.response)}</p>
      {retryAfter > 0 && <p>Please wait {retryAfter} second{retryAfter === 1 ? '' : 's'} before trying again.</p>}
      {hasFieldErrors && <p className="hint">Please correct the fields marked below.</p>}
      {fields[''] && <p>{fields['']}</p>}
    </div>
  );
}

/** Field-level messages of a failure (the problem's `errors[]`). */
export function errorsOf(failure: Failure | null): Record<string, string> {
  return failure ? fieldErrors(failure.error) : {};
}

interface FieldProps extends InputHTMLAttributes<HTMLInputElement> {
  label: string;
  error?: string;
  hint?: ReactNode;
}

export function Field({ label, error, hint, ...input }: FieldProps) {
  const id = useId();
  const describedBy = error ? `${id}-error` : hint ? `${id}-hint` : undefined;
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...input} />
      {error ? (
        <p className="field-error" id={`${id}-error`}>
          {error}
        </p>
      ) : hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

/** A message of the page's own about a failure (instead of the server's words), e.g. for a used email link. */
export function Alert({ children }: { children: ReactNode }) {
  return (
    <div className="error" role="alert">
      {children}
    </div>
  );
}

export function Notice({ children }: { children: ReactNode }) {
  return (
    <p className="notice" role="status">
      {children}
    </p>
  );
}

export function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
