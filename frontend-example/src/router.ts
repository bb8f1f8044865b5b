import { useEffect, useState } from 'react';

export type Route = 'login' | 'register' | 'tasks' | 'sessions' | 'password';
const ROUTES: Route[] = ['login', 'register', 'tasks', 'sessions', 'password'];

function current(): Route | null {
  const name = window.location.hash.replace(/^#\/?/, '');
  return (ROUTES as string[]).includes(name) ? (name as Route) : null;
}

/** A tiny hash router: `#/tasks`, `#/sessions`, ... (no server configuration needed). */
export function useRoute(): Route | null {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onChange = () => setRoute(current());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(route: Route) {
  window.location.hash = `#/${route}`;
}
