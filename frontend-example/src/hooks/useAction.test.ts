import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { failureOf, type Failure } from '../api/problem';
import { runAction, useAction, type Action, type RunOptions } from './useAction';

const problem = { type: 'about:blank', title: 'Conflict', status: 409, detail: 'That email is taken.', code: 'email_taken' };

function problemResponse(status: number) {
  return new Response(JSON.stringify({ ...problem, status }), {
    status,
    headers: { 'Content-Type': 'application/problem+json' },
  });
}

/**
 * Runs `call` the way useAction().run does, after an earlier failure, recording
 * every state change in order (`call` sees those made before it).
 */
async function recorded<T extends { error?: unknown; response?: Response }>(
  call: (changesSoFar: readonly string[]) => Promise<T>,
  options: RunOptions = {},
) {
  const changes: string[] = [];
  const state = { running: null as string | null, failure: { error: 'an earlier failure' } as Failure | null };
  const result = await runAction(
    () => call([...changes]),
    options,
    (label) => {
      state.running = label;
      changes.push(`running ${label}`);
    },
    (failure) => {
      state.failure = failure;
      changes.push(failure ? 'failure' : 'failure cleared');
    },
  );
  return { result, changes, state };
}

describe('failureOf', () => {
  it('is null for a successful call, with or without a response', () => {
    expect(failureOf({ response: new Response(null, { status: 204 }) })).toBeNull();
    expect(failureOf({})).toBeNull();
  });

  it('keeps the error and the response of a failed call', () => {
    const response = problemResponse(409);
    expect(failureOf({ error: problem, response })).toEqual({ error: problem, response });
    expect(failureOf({ error: new TypeError('Failed to fetch') })).toEqual({ error: new TypeError('Failed to fetch'), response: undefined });
    const bare = new Response(null, { status: 502 });
    expect(failureOf({ response: bare })).toEqual({ error: undefined, response: bare }); // a non-2xx without a body
  });
});

describe('running an action', () => {
  it('is busy while the call runs, clears the last failure first and returns the outcome on success', async () => {
    let beforeTheCall: readonly string[] = [];
    const response = new Response('{}', { status: 200 });
    const { result, changes, state } = await recorded(async (changesSoFar) => {
      beforeTheCall = changesSoFar;
      return { data: { id: 1 }, response };
    });
    expect(beforeTheCall).toEqual(['running busy', 'failure cleared']);
    expect(result).toEqual({ data: { id: 1 }, response });
    expect(changes).toEqual(['running busy', 'failure cleared', 'failure cleared', 'running null']);
    expect(state).toEqual({ running: null, failure: null });
  });

  it('records the failure of a call that got a problem document, and resolves to undefined', async () => {
    const response = problemResponse(409);
    const { result, state } = await recorded(async () => ({ error: problem, response }), { label: 'save' });
    expect(result).toBeUndefined();
    expect(state).toEqual({ running: null, failure: { error: problem, response } });
  });

  it('records a call that threw (e.g. the network is down) as a failure, and is not busy afterwards', async () => {
    const error = new TypeError('Failed to fetch');
    const { result, changes, state } = await recorded(async () => {
      throw error;
    });
    expect(result).toBeUndefined();
    expect(state).toEqual({ running: null, failure: { error } });
    expect(changes.at(-1)).toBe('running null');
  });

  it('names the running call by its label', async () => {
    const { changes } = await recorded(async () => ({ response: new Response(null, { status: 204 }) }), { label: 'delete' });
    expect(changes[0]).toBe('running delete');
  });

  it('with keepFailure, leaves the last failure until the outcome is known (reloading a list)', async () => {
    const kept = await recorded(async () => ({ data: [], response: new Response('[]') }), { keepFailure: true });
    expect(kept.changes).toEqual(['running busy', 'failure cleared', 'running null']);
    expect(kept.state.failure).toBeNull();

    const response = problemResponse(503);
    const failedAgain = await recorded(async () => ({ error: problem, response }), { keepFailure: true });
    expect(failedAgain.changes).toEqual(['running busy', 'failure', 'running null']);
  });
});

describe('useAction', () => {
  function Probe({ runningAtFirst }: { runningAtFirst?: string }) {
    const action: Action = useAction(runningAtFirst);
    return createElement('pre', null, JSON.stringify({ busy: action.busy, running: action.running, failure: action.failure }));
  }

  const firstRender = (runningAtFirst?: string) =>
    JSON.parse(renderToStaticMarkup(createElement(Probe, { runningAtFirst })).replace(/^<pre>|<\/pre>$/g, '').replaceAll('&quot;', '"'));

  it('starts idle, without a failure', () => {
    expect(firstRender()).toEqual({ busy: false, running: null, failure: null });
  });

  it('starts busy when told that a call starts as the component mounts', () => {
    expect(firstRender('load')).toEqual({ busy: true, running: 'load', failure: null });
  });
});
