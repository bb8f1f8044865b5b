import type { components } from './schema';

export type Problem = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];

/**
 * What a call to the API came back with, as openapi-fetch returns it (and as
 * the session's `login`, `register` and `logoutAll` do): an `error` (the
 * parsed problem document, a string, or what was thrown) and the `response`,
 * when there was one.
 */
export interface Outcome {
  error?: unknown;
  response?: Response;
}

/** The outcome of a failed call: what `<ErrorMessage>` shows. */
export type Failure = Outcome;

/** The failure in `outcome`, or null when the call succeeded (no error, and a 2xx response if any). */
export function failureOf(outcome: Outcome): Failure | null {
  const { error, response } = outcome;
  return error !== undefined || (response !== undefined && !response.ok) ? { error, response } : null;
}

/** True when `value` looks like Latchkey's RFC 9457 problem document. */
export function isProblem(value: unknown): value is Problem {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Problem).status === 'number' &&
    typeof (value as Problem).code === 'string'
  );
}

/**
 * What went wrong, in words for the person using the page. `error` is what
 * openapi-fetch returned (the parsed problem document, or a string when the
 * body was not JSON, e.g. a proxy's 502 page); `response` gives the status.
 */
export function describeError(error: unknown, response?: Response): string {
  if (isProblem(error)) {
    return error.detail || error.title || `The request failed (${error.status}).`;
  }
  if (error instanceof TypeError) {
    return 'The server could not be reached. Check your connection and try again.';
  }
  if (error instanceof Error && error.message) {
    return error.message;
  }
  if (response) {
    if (response.status >= 500) {
      // not a problem document: a proxy's error page, or the API is not running
      return 'The server is unavailable right now. Please try again in a moment.';
    }
    return `The request failed (${response.status} ${response.statusText}).`.replace(' )', ')');
  }
  return 'Something went wrong. Please try again.';
}

/** The per-field messages of a 422, keyed by field name ('' for the whole body). */
export function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isProblem(error) && Array.isArray(error.errors)) {
    for (const e of error.errors) {
      out[e.field] = out[e.field] ? `${out[e.field]} ${e.message}` : e.message;
    }
  }
  return out;
}

/** Reads the problem `code` of a response without consuming it. */
export async function problemCode(response: Response): Promise<string | undefined> {
  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('json')) return undefined;
  try {
    const body: unknown = await response.clone().json();
    return isProblem(body) ? body.code : undefined;
  } catch {
    return undefined;
  }
}

/** The problem `code` of a failure (e.g. `invalid_token`), or undefined. */
export function codeOf(failure: Failure | null | undefined): string | undefined {
  return failure && isProblem(failure.error) ? failure.error.code : undefined;
}
