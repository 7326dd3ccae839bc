'use client';
/**
 * The Login page's only client code: keep it tiny (the page's first-load JS
 * budget is 105 KB gzip and React + Next take ~101 KB). It imports nothing
 * but the API client core: not endpoints.ts nor format.ts, whose other
 * exports the app shell uses and webpack would then bundle here too.
 */
import { useRef, useState, type FormEvent } from 'react';
import { messageOf, request } from '@/api/client';
import { safeNext } from '@/lib/safeNext';
import { Logo } from './Logo';

export function LoginForm() {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const userRef = useRef<HTMLInputElement>(null);
  const register = mode === 'register';

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const username = String(form.get('username') ?? '').trim();
    const password = String(form.get('password') ?? '');
    if (!username || !password) {
      setError('Enter your username and password.');
      return;
    }
    setPending(true);
    setError(null);
    try {
      const body = { username, password };
      // A 401 here means wrong credentials: show it instead of redirecting.
      if (register) await request('/auth/register', { method: 'POST', body, redirectOn401: false });
      await request('/auth/login', { method: 'POST', body, redirectOn401: false });
      const next = new URLSearchParams(window.location.search).get('next');
      window.location.replace(safeNext(next));
    } catch (err) {
      setError(messageOf(err));
      setPending(false);
      userRef.current?.focus();
    }
  }

  return (
    <div className="login-card">
      <div className="brand">
        <Logo />
        <span>ML Service</span>
      </div>
      <h1>{register ? 'Create an account' : 'Sign in'}</h1>
      <p className="muted">
        {register ? 'Registration may be disabled by your administrator.' : 'Use your ML Service account.'}
      </p>
      <form onSubmit={onSubmit} noValidate aria-describedby={error ? 'login-error' : undefined}>
        {error && (
          <div id="login-error" className="alert alert-error" role="alert">
            {error}
          </div>
        )}
        <div className="field">
          <label htmlFor="username">Username</label>
          <input
            ref={userRef}
            id="username"
            name="username"
            type="text"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            required
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete={register ? 'new-password' : 'current-password'}
            required
          />
        </div>
        <button type="submit" className="btn btn-primary" disabled={pending}>
          {pending ? 'Please wait…' : register ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <p className="login-foot">
        {register ? 'Have an account? ' : 'No account? '}
        <button
          type="button"
          className="link-btn"
          onClick={() => {
            setMode(register ? 'login' : 'register');
            setError(null);
          }}
        >
          {register ? 'Sign in' : 'Create one'}
        </button>
      </p>
    </div>
  );
}
