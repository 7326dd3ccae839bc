'use client';
/** Profile: own account (username, password, deletion), API tokens, privacy choice. */
import { useRef, useState, type FormEvent } from 'react';
import { auth } from '@/api/endpoints';
import { formatDate } from '@/lib/format';
import { TIER_LABEL } from '@/lib/permissions';
import { useAction } from '@/lib/useApi';
import { PrivacySettings } from '../CookieConsent';
import { useConfirm } from '../ConfirmDialog';
import { ErrorBox, Notice } from '../Status';
import { TokensSection } from './TokensSection';
import type { TabProps } from './registry';

function UsernameForm({ user, onUserChange }: TabProps) {
  const [notice, setNotice] = useState<string | null>(null);
  const save = useAction(auth.changeUsername);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setNotice(null);
    const username = String(new FormData(e.currentTarget).get('username') ?? '').trim();
    if (!username || username === user.username) return;
    const r = await save.run(username);
    if (r.ok) {
      onUserChange(r.value);
      setNotice(`Your username is now “${r.value.username}”.`);
    }
  }
  return (
    <section className="card" aria-labelledby="account-h">
      <h2 id="account-h">Account</h2>
      <p>
        <strong>{user.username}</strong> <span className="badge badge-accent">{TIER_LABEL[user.tier]}</span>
      </p>
      <p className="muted">
        Created {formatDate(user.created_at, '—')} · last sign-in {formatDate(user.last_login_at)}
      </p>
      <form onSubmit={onSubmit}>
        <ErrorBox message={save.error} />
        <Notice message={notice} />
        <div className="form-row">
          <div className="field">
            <label htmlFor="new-username">New username</label>
            <input
              id="new-username"
              name="username"
              type="text"
              defaultValue={user.username}
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              required
            />
          </div>
          <button type="submit" className="btn btn-primary" disabled={save.pending}>
            {save.pending ? 'Saving…' : 'Change username'}
          </button>
        </div>
      </form>
    </section>
  );
}

function PasswordForm() {
  const [notice, setNotice] = useState<string | null>(null);
  const [mismatch, setMismatch] = useState<string | null>(null);
  const save = useAction(auth.changePassword);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setNotice(null);
    const form = e.currentTarget;
    const f = new FormData(form);
    const current = String(f.get('current') ?? '');
    const next = String(f.get('new') ?? '');
    if (next !== String(f.get('confirm') ?? '')) {
      setMismatch('The new password and its confirmation differ.');
      return;
    }
    setMismatch(null);
    const r = await save.run(current, next);
    if (r.ok) {
      form.reset();
      setNotice('Password changed.');
    }
  }
  return (
    <section className="card" aria-labelledby="password-h">
      <h2 id="password-h">Password</h2>
      <form onSubmit={onSubmit}>
        <ErrorBox message={mismatch ?? save.error} />
        <Notice message={notice} />
        <input type="text" name="username" autoComplete="username" hidden readOnly />
        <div className="field">
          <label htmlFor="current-password">Current password</label>
          <input id="current-password" name="current" type="password" autoComplete="current-password" required />
        </div>
        <div className="field">
          <label htmlFor="new-password">New password</label>
          <input id="new-password" name="new" type="password" autoComplete="new-password" required />
        </div>
        <div className="field">
          <label htmlFor="confirm-password">Repeat the new password</label>
          <input id="confirm-password" name="confirm" type="password" autoComplete="new-password" required />
        </div>
        <button type="submit" className="btn btn-primary" disabled={save.pending}>
          {save.pending ? 'Saving…' : 'Change password'}
        </button>
      </form>
    </section>
  );
}

function DeleteAccount() {
  const del = useAction(auth.deleteProfile);
  const confirm = useConfirm();
  const pwRef = useRef<HTMLInputElement>(null);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const password = pwRef.current?.value ?? '';
    const ok = await confirm.ask({
      title: 'Delete your account?',
      body: <p>You will be signed out, and your API tokens stop working. This cannot be undone here.</p>,
      confirmLabel: 'Delete my account',
      danger: true,
    });
    if (!ok) return;
    const r = await del.run(password);
    if (r.ok) window.location.replace('/login/');
  }
  return (
    <section className="card" aria-labelledby="delete-h">
      <h2 id="delete-h">Delete account</h2>
      <form onSubmit={onSubmit}>
        <ErrorBox message={del.error} />
        <div className="form-row">
          <div className="field">
            <label htmlFor="delete-password">Your password</label>
            <input
              ref={pwRef}
              id="delete-password"
              name="password"
              type="password"
              autoComplete="current-password"
              required
            />
          </div>
          <button type="submit" className="btn btn-danger" disabled={del.pending}>
            {del.pending ? 'Deleting…' : 'Delete my account'}
          </button>
        </div>
      </form>
      {confirm.dialog}
    </section>
  );
}

export default function ProfileTab(props: TabProps) {
  return (
    <>
      <div className="grid-2">
        <UsernameForm {...props} />
        <PasswordForm />
      </div>
      <TokensSection />
      <PrivacySettings />
      <DeleteAccount />
    </>
  );
}
