import { useCallback, useState } from 'react';
import { failureOf, type Failure, type Outcome } from '../api/problem';

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

/** One run's state changes, apart from React (what `useAction().run` does; tested on its own). */
export async function runAction<T extends Outcome>(
  call: () => Promise<T>,
  options: RunOptions,
  setRunning: (label: string | null) => void,
  setFailure: (failure: Failure | null) => void,
): Promise<T | undefined> {
  setRunning(options.label ?? DEFAULT_LABEL);
  if (!options.keepFailure) setFailure(null);
  try {
    const outcome = await call();
    const failure = failureOf(outcome);
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
  const run: Run = useCallback((call, options = {}) => runAction(call, options, setRunning, setFailure), []);
  return { busy: running !== null, running, failure, setFailure, run };
}
