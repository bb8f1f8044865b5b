import { describe, expect, it } from 'vitest';
import { hrefOf, linkRouteOf, routeOf } from './router';

describe('routes', () => {
  it('reads the email-link pages from the path, whatever the fragment', () => {
    expect(routeOf({ pathname: '/verify-email', hash: '#token=abc' })).toBe('verify-email');
    expect(routeOf({ pathname: '/reset-password', hash: '' })).toBe('reset-password');
    expect(routeOf({ pathname: '/confirm-email/', hash: '#/tasks' })).toBe('confirm-email');
  });

  it('reads the app screens from the hash', () => {
    expect(routeOf({ pathname: '/', hash: '#/tasks' })).toBe('tasks');
    expect(routeOf({ pathname: '/', hash: '#/forgot-password' })).toBe('forgot-password');
    expect(routeOf({ pathname: '/', hash: '#/account' })).toBe('account');
    expect(routeOf({ pathname: '/', hash: '#/nowhere' })).toBeNull();
    expect(routeOf({ pathname: '/', hash: '#token=abc' })).toBeNull();
  });

  it('respects the base path the app is served from', () => {
    expect(linkRouteOf('/app/verify-email', '/app/')).toBe('verify-email');
    expect(linkRouteOf('/verify-email', '/app/')).toBeNull();
    expect(linkRouteOf('/app/other', '/app/')).toBeNull();
    expect(hrefOf('reset-password', '/app/')).toBe('/app/reset-password');
    expect(hrefOf('login', '/app/')).toBe('/app/#/login');
  });

  it('links to every route from every page', () => {
    expect(hrefOf('tasks')).toBe('/#/tasks');
    expect(hrefOf('verify-email')).toBe('/verify-email');
  });
});
