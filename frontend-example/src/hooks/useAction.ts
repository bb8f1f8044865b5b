import { createContext, useCallback, useContext, useState } from 'react';
import { codeOf, failureOf, type Failure, type Outcome } from '../api/problem';

/**
 * Busy state and error message for a screen's calls to the API: every screen
 * runs its calls through `useAction()` instead of keeping its own `busy` and
 * `failure` state and try/catch/finally.
 *
 * ```tsx
 * const { busy, failure, run } = useAction();
 * async function submit(event: FormEvent) {
 *   event.preventDefault();
 *   const created = await run(() => api.POST('/api/v1/tasks', { body }));
 *   if (created) setTitle(''); // only when the call succeeded
 * }
 * ...
 * <ErrorMessage failure={failure} />
 * <button type="submit" disabled={busy}>{busy ? 'Adding…' : 'Add task'}</button>
 * ```
 *
 * `run(call)` marks the action busy, clears the last failure, awaits `call`
 * and then records its failure: an `error`, a non-2xx `response`, or an
 * exception (e.g. the network is down). It resolves to the call's outcome when
 * the call succeeded and to `undefined` when it failed, so follow-up work goes
 * after it. Work that must finish while the action still counts as busy (say,
 * reloading a list before the buttons are enabled again) goes inside `call`.
 *
 * Re-authentication: when a call answers 403 `reauth_required` (a setting that
 * needs a recent sign-in), `run` asks the `ReauthContext` (src/reauth.tsx shows
 * a dialog for the password, and a code when a second factor is on) and, once
 * the person proved it is them, runs `call` once more. Cancelling leaves the
 * 403 as the failure. No screen needs to know about it.
 */
export interface Action {
  /** True while a call is under way. */
  busy: boolean;
  /** The label of the call under way (see `RunOptions.label`), or null. */
  running: string | null;
  /** Why the last call failed, for `<ErrorMessage>` and `errorsOf()`; null when it did not. */
  failure: Failure | null;
  /** Sets or clears the failure by hand, e.g. when a form is cancelled or checked locally. */
  setFailure: (failure: Failure | null) => void;
  run: Run;
}

export interface RunOptions {
  /**
   * Which call this is, e.g. 'save' or 'delete', so that the page can tell
   * which button to label "Saving…". Defaults to 'busy'.
   */
  label?: string;
  /**
   * Leave the last failure on screen until this call's outcome is known
   * (reloading a list), instead of clearing it as the call starts.
   */
  keepFailure?: boolean;
}

export type Run = <T extends Outcome>(call: () => Promise<T>, options?: RunOptions) => Promise<T | undefined>;

const DEFAULT_LABEL = 'busy';

/**
 * Asks the person to prove it is them again (POST /reauth): resolves to true
 * once the session counts as recently signed in, false when they cancelled.
 */
export type Reauthenticate = () => Promise<boolean>;

/** The re-authentication prompt for `useAction()`; null (the default) means a 403 `reauth_required` is just a failure. */
export const ReauthContext = createContext<Reauthenticate | null>(null);

/** True for the failure that a re-authentication can fix. */
export function needsReauth(failure: Failure | null): boolean {
  return failure?.response?.status === 403 && codeOf(failure) === 'reauth_required';
}

/** One run's state changes, apart from React (what `useAction().run` does; tested on its own). */
export async function runAction<T extends Outcome>(
  call: () => Promise<T>,
  options: RunOptions,
  setRunning: (label: string | null) => void,
  setFailure: (failure: Failure | null) => void,
  reauth: Reauthenticate | null = null,
): Promise<T | undefined> {
  setRunning(options.label ?? DEFAULT_LABEL);
  if (!options.keepFailure) setFailure(null);
  try {
    let outcome = await call();
    let failure = failureOf(outcome);
    // Once: a second 403 (or a cancelled prompt) is shown like any failure.
    if (reauth && needsReauth(failure) && (await reauth())) {
      outcome = await call();
      failure = failureOf(outcome);
    }
    setFailure(failure);
    return failure ? undefined : outcome;
  } catch (error) {
    setFailure({ error }); // e.g. a TypeError from fetch when the server cannot be reached
    return undefined;
  } finally {
    setRunning(null);
  }
}

/**
 * `runningAtFirst` is the label of a call that starts as soon as the component
 * mounts (a list that loads at once), so that the first render already shows
 * it as loading.
 */
export function useAction(runningAtFirst: string | null = null): Action {
  const [running, setRunning] = useState<string | null>(runningAtFirst);
  const [failure, setFailure] = useState<Failure | null>(null);
  const reauth = useContext(ReauthContext);
  const run: Run = useCallback((call, options = {}) => runAction(call, options, setRunning, setFailure, reauth), [reauth]);
  return { busy: running !== null, running, failure, setFailure, run };
}
