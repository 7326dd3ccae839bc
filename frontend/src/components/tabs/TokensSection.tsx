'use client';
/** API tokens: create (secret shown once, with copy), list with last use, revoke, delete. */
import { useRef, useState, type FormEvent } from 'react';
import { tokens } from '@/api/endpoints';
import type { ApiToken, ApiTokenCreated } from '@/api/types';
import { formatDate, tokenState } from '@/lib/format';
import { useAction, useApi } from '@/lib/useApi';
import { useConfirm } from '../ConfirmDialog';
import { Empty, ErrorBox, Loading, Notice } from '../Status';

const tokenName = (t: ApiToken) => t.name || `#${t.id}`;

const STATE_BADGE = { active: 'badge badge-ok', revoked: 'badge badge-bad', expired: 'badge badge-warn' } as const;

function NewToken({ created, onDone }: { created: ApiTokenCreated; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied('Copied to the clipboard.');
    } catch {
      // Clipboard API unavailable (plain http on another host): select it for Ctrl+C.
      inputRef.current?.select();
      setCopied('Selected: press Ctrl+C (⌘C) to copy.');
    }
  }
  return (
    <div className="alert alert-warning" role="alert" data-testid="new-token">
      <strong>Copy the token “{created.name}” now: it will not be shown again.</strong>
      <div className="secret">
        <label htmlFor="new-token-value" className="sr-only">
          New API token
        </label>
        <input
          ref={inputRef}
          id="new-token-value"
          type="text"
          readOnly
          value={created.token}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" className="btn btn-primary" onClick={copy}>
          Copy
        </button>
      </div>
      <p className="hint" role="status">
        {copied ?? `Use it as "Authorization: Bearer <token>". Expires ${formatDate(created.expires_at, 'never')}.`}
      </p>
      <button type="button" className="btn btn-sm" onClick={onDone}>
        I have saved it
      </button>
    </div>
  );
}

export function TokensSection() {
  const list = useApi((signal) => tokens.list(signal), []);
  const create = useAction(tokens.create);
  const act = useAction(async (kind: 'revoke' | 'delete', t: ApiToken) =>
    kind === 'revoke' ? tokens.revoke(t.id) : tokens.remove(t.id),
  );
  const [created, setCreated] = useState<ApiTokenCreated | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const confirm = useConfirm();

  async function onCreate(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setNotice(null);
    const form = e.currentTarget;
    const f = new FormData(form);
    const name = String(f.get('name') ?? '').trim();
    const days = Number(f.get('days') || 0);
    if (!name) return;
    const r = await create.run(name, days > 0 ? days : undefined);
    if (r.ok) {
      setCreated(r.value);
      form.reset();
      list.reload();
    }
  }

  async function onAction(kind: 'revoke' | 'delete', t: ApiToken) {
    setNotice(null);
    const name = tokenName(t);
    const ok = await confirm.ask(
      kind === 'revoke'
        ? {
            title: `Revoke “${name}”?`,
            body: <p>Clients using it are refused from now on. The token stays listed as revoked.</p>,
            confirmLabel: 'Revoke',
            danger: true,
          }
        : {
            title: `Delete “${name}”?`,
            body: <p>Clients using it are refused, and it disappears from this list.</p>,
            confirmLabel: 'Delete',
            danger: true,
          },
    );
    if (!ok) return;
    const r = await act.run(kind, t);
    if (r.ok) {
      setNotice(kind === 'revoke' ? `Token “${name}” revoked.` : `Token “${name}” deleted.`);
      list.reload();
    }
  }

  const items = list.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      <p className="muted">
        For scripts and client systems: send <code>Authorization: Bearer &lt;token&gt;</code>. A token acts as you.
      </p>
      <form onSubmit={onCreate}>
        <ErrorBox message={create.error} />
        <div className="form-row">
          <div className="field">
            <label htmlFor="token-name">Token name</label>
            <input id="token-name" name="name" type="text" placeholder="e.g. nightly-export" required maxLength={100} />
          </div>
          <div className="field" style={{ flex: '0 1 11rem' }}>
            <label htmlFor="token-days">Expires in (days)</label>
            <input id="token-days" name="days" type="number" min={1} max={3650} placeholder="default" inputMode="numeric" />
          </div>
          <button type="submit" className="btn btn-primary" disabled={create.pending}>
            {create.pending ? 'Creating…' : 'Create token'}
          </button>
        </div>
      </form>
      {created && <NewToken created={created} onDone={() => setCreated(null)} />}
      <Notice message={notice} />
      <ErrorBox message={act.error ?? list.error} onRetry={list.error ? list.reload : undefined} />
      {list.loading && !list.data ? (
        <Loading label="Loading tokens…" />
      ) : items.length === 0 && !list.error ? (
        <Empty>No API tokens yet.</Empty>
      ) : items.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Your API tokens</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col" className="hide-narrow">Created</th>
                <th scope="col" className="hide-narrow">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((t) => {
                const st = tokenState(t);
                return (
                  <tr key={t.id} data-testid="token-row">
                    <th scope="row">{tokenName(t)}</th>
                    <td>
                      <span className={STATE_BADGE[st]}>{st}</span>
                    </td>
                    <td className="hide-narrow">{formatDate(t.created_at, '—')}</td>
                    <td className="hide-narrow">{formatDate(t.expires_at)}</td>
                    <td>{formatDate(t.last_used_at)}</td>
                    <td className="actions">
                      {st === 'active' && (
                        <button
                          type="button"
                          className="btn btn-sm"
                          disabled={act.pending}
                          onClick={() => onAction('revoke', t)}
                          aria-label={`Revoke token ${tokenName(t)}`}
                        >
                          Revoke
                        </button>
                      )}
                      <button
                        type="button"
                        className="btn btn-sm btn-danger"
                        disabled={act.pending}
                        onClick={() => onAction('delete', t)}
                        aria-label={`Delete token ${tokenName(t)}`}
                      >
                        Delete
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      {list.data && list.data.total > items.length && (
        <p className="hint">
          Showing {items.length} of {list.data.total} tokens.
        </p>
      )}
      {confirm.dialog}
    </section>
  );
}
