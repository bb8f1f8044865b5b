import { describe, expect, it } from 'vitest';
import { codeOf, describeError, fieldErrors, isProblem, problemCode } from './problem';

const problem = {
  type: 'about:blank',
  title: 'Unprocessable Entity',
  status: 422,
  detail: 'One or more fields are invalid.',
  code: 'validation_failed',
  errors: [
    { field: 'password', message: 'must be at least 8 characters' },
    { field: 'password', message: 'must contain a digit' },
    { field: 'email', message: 'is not a valid email address' },
  ],
};

describe('problem documents', () => {
  it('shows the detail to the person', () => {
    expect(describeError(problem)).toBe('One or more fields are invalid.');
    expect(describeError({ ...problem, detail: '' })).toBe('Unprocessable Entity');
  });

  it('collects every message of a field', () => {
    expect(fieldErrors(problem)).toEqual({
      password: 'must be at least 8 characters must contain a digit',
      email: 'is not a valid email address',
    });
    expect(fieldErrors('not a problem')).toEqual({});
  });

  it('explains failures that are not problem documents', () => {
    expect(describeError(new TypeError('Failed to fetch'))).toMatch(/could not be reached/);
    expect(describeError('<html>Bad gateway</html>', new Response(null, { status: 502 }))).toMatch(/unavailable/);
    expect(describeError(undefined, new Response(null, { status: 404, statusText: 'Not Found' }))).toBe(
      'The request failed (404 Not Found).',
    );
    expect(isProblem({ status: 401 })).toBe(false);
  });

  it('reads the code of a response without consuming its body', async () => {
    const response = new Response(JSON.stringify({ ...problem, status: 401, code: 'token_expired' }), {
      status: 401,
      headers: { 'Content-Type': 'application/problem+json' },
    });
    expect(await problemCode(response)).toBe('token_expired');
    expect((await response.json()).code).toBe('token_expired');
    expect(await problemCode(new Response('nope', { status: 401, headers: { 'Content-Type': 'text/plain' } }))).toBeUndefined();
  });

  it('tells the code of a failure', () => {
    expect(codeOf({ error: { ...problem, status: 400, code: 'invalid_token' } })).toBe('invalid_token');
    expect(codeOf({ error: 'Bad gateway', response: new Response(null, { status: 502 }) })).toBeUndefined();
    expect(codeOf(null)).toBeUndefined();
  });
});
