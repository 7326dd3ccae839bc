'use client';
/**
 * Users (admins): list, create, change tier, activate/deactivate, delete.
 * The UI offers only what the rules allow (lib/permissions); the API checks
 * them again, and any refusal's message is shown.
 */
import { useMemo, useState, type FormEvent } from 'react';
import { users } from '@/api/endpoints';
import type { Tier, User } from '@/api/types';
import { formatDate } from '@/lib/format';
import { assignableTiers, TIER_LABEL, userActions } from '@/lib/permissions';
import { useAction, useApi } from '@/lib/useApi';
import { useConfirm } from '../ConfirmDialog';
import { Empty, ErrorBox, Loading, Notice } from '../Status';
import type { TabProps } from './registry';

const PAGE = 50;

function CreateUser({ actor, onCreated }: { actor: User; onCreated: (u: User) => void }) {
  const create = useAction(users.create);
  const tiers = assignableTiers(actor);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const username = String(f.get('username') ?? '').trim();
    const password = String(f.get('password') ?? '');
    const tier = String(f.get('tier') ?? 'user') as Tier;
    if (!username || !password) return;
    const r = await create.run(username, password, tier);
    if (r.ok) {
      form.reset();
      onCreated(r.value);
    }
  }
  return (
    <section className="card" aria-labelledby="create-user-h">
      <h2 id="create-user-h">Create a user</h2>
      <form onSubmit={onSubmit}>
        <ErrorBox message={create.error} />
        <div className="form-row">
          <div className="field">
            <label htmlFor="cu-username">Username</label>
            <input id="cu-username" name="username" type="text" autoComplete="off" autoCapitalize="none" spellCheck={false} required />
          </div>
          <div className="field">
            <label htmlFor="cu-password">Initial password</label>
            <input id="cu-password" name="password" type="password" autoComplete="new-password" required />
          </div>
          <div className="field" style={{ flex: '0 1 10rem' }}>
            <label htmlFor="cu-tier">Tier</label>
            <select id="cu-tier" name="tier" defaultValue="user">
              {tiers.map((t) => (
                <option key={t} value={t}>
                  {TIER_LABEL[t]}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" className="btn btn-primary" disabled={create.pending}>
            {create.pending ? 'Creating…' : 'Create user'}
          </button>
        </div>
      </form>
    </section>
  );
}

export default function UsersTab({ user: actor }: TabProps) {
  const [offset, setOffset] = useState(0);
  const list = useApi((signal) => users.list(PAGE, offset, signal), [offset]);
  const act = useAction(async (u: User, op: 'tier' | 'active' | 'delete', tier?: Tier) => {
    if (op === 'delete') return users.remove(u.id);
    if (op === 'tier') return users.update(u.id, { tier });
    return users.update(u.id, { is_active: !u.is_active });
  });
  const [notice, setNotice] = useState<string | null>(null);
  const confirm = useConfirm();

  const data = list.data;
  const items = data?.items ?? [];
  // The "last system admin" rule can be checked only when the whole list is here.
  const activeSystemAdmins = useMemo(
    () =>
      data && data.total <= data.items.length && data.offset === 0
        ? data.items.filter((u) => u.tier === 'system_admin' && u.is_active).length
        : null,
    [data],
  );

  async function run(u: User, op: 'tier' | 'active' | 'delete', tier?: Tier) {
    setNotice(null);
    if (op === 'delete') {
      const ok = await confirm.ask({
        title: `Delete ${u.username}?`,
        body: <p>The account is deactivated and hidden; its tokens stop working.</p>,
        confirmLabel: 'Delete user',
        danger: true,
      });
      if (!ok) return;
    } else if (op === 'tier') {
      // The select stays on the current tier until confirmed: arrowing through
      // its options with the keyboard must not change anyone's rights.
      const ok = await confirm.ask({
        title: `Change the tier of ${u.username}?`,
        body: (
          <p>
            {TIER_LABEL[u.tier]} → <strong>{TIER_LABEL[tier as Tier]}</strong>
          </p>
        ),
        confirmLabel: 'Change tier',
      });
      if (!ok) return;
    }
    const r = await act.run(u, op, tier);
    if (!r.ok) return;
    setNotice(
      op === 'delete'
        ? `${u.username} deleted.`
        : op === 'tier'
          ? `${u.username} is now ${TIER_LABEL[tier as Tier]}.`
          : `${u.username} ${u.is_active ? 'deactivated' : 'activated'}.`,
    );
    if (op === 'delete') list.reload();
    else if (r.value) list.setData((d) => (d ? { ...d, items: d.items.map((x) => (x.id === u.id ? (r.value as User) : x)) } : d!));
  }

  return (
    <>
      <CreateUser
        actor={actor}
        onCreated={(u) => {
          setNotice(`User ${u.username} created.`);
          list.reload();
        }}
      />
      <section className="card" aria-labelledby="users-h">
        <h2 id="users-h">
          <span>
            Users
            {data && (
              <span className="badge" aria-label={`${data.total} in total`}>
                {data.total}
              </span>
            )}
          </span>
          <button type="button" className="btn btn-sm" onClick={list.reload} disabled={list.loading}>
            Refresh
          </button>
        </h2>
        <Notice message={notice} />
        <ErrorBox message={act.error ?? list.error} onRetry={list.error ? list.reload : undefined} />
        {list.loading && !data ? (
          <Loading label="Loading users…" />
        ) : items.length === 0 && !list.error ? (
          <Empty>No users.</Empty>
        ) : items.length > 0 ? (
          <div className="table-wrap">
            <table>
              <caption className="sr-only">Users</caption>
              <thead>
                <tr>
                  <th scope="col">Username</th>
                  <th scope="col">Tier</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="hide-narrow">Created</th>
                  <th scope="col" className="hide-narrow">Last sign-in</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((u) => {
                  const can = userActions(actor, u, activeSystemAdmins);
                  return (
                    <tr key={u.id} data-testid="user-row" data-username={u.username}>
                      <th scope="row">
                        {u.username}
                        {u.id === actor.id && <span className="muted"> (you)</span>}
                      </th>
                      <td>
                        {can.canChangeTier ? (
                          <>
                            <label className="sr-only" htmlFor={`tier-${u.id}`}>
                              Tier of {u.username}
                            </label>
                            <select
                              id={`tier-${u.id}`}
                              className="inline"
                              value={u.tier}
                              disabled={act.pending}
                              onChange={(e) => run(u, 'tier', e.target.value as Tier)}
                            >
                              {can.tiers.map((t) => (
                                <option key={t} value={t}>
                                  {TIER_LABEL[t]}
                                </option>
                              ))}
                            </select>
                          </>
                        ) : (
                          <span title={can.locked ?? undefined}>{TIER_LABEL[u.tier]}</span>
                        )}
                      </td>
                      <td>
                        <span className={u.is_active ? 'badge badge-ok' : 'badge badge-bad'}>
                          {u.is_active ? 'active' : 'inactive'}
                        </span>
                      </td>
                      <td className="hide-narrow">{formatDate(u.created_at, '—')}</td>
                      <td className="hide-narrow">{formatDate(u.last_login_at)}</td>
                      <td className="actions">
                        {can.locked ? (
                          <span className="hint">{can.locked}</span>
                        ) : (
                          <>
                            <button
                              type="button"
                              className="btn btn-sm"
                              disabled={act.pending || !can.canToggleActive}
                              onClick={() => run(u, 'active')}
                              aria-label={`${u.is_active ? 'Deactivate' : 'Activate'} ${u.username}`}
                            >
                              {u.is_active ? 'Deactivate' : 'Activate'}
                            </button>
                            <button
                              type="button"
                              className="btn btn-sm btn-danger"
                              disabled={act.pending || !can.canDelete}
                              onClick={() => run(u, 'delete')}
                              aria-label={`Delete ${u.username}`}
                            >
                              Delete
                            </button>
                          </>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : null}
        {data && data.total > PAGE && (
          <div className="pager">
            <span className="hint">
              {data.offset + 1}–{data.offset + items.length} of {data.total}
            </span>
            <div className="toolbar">
              <button type="button" className="btn btn-sm" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                Previous
              </button>
              <button
                type="button"
                className="btn btn-sm"
                disabled={offset + PAGE >= data.total}
                onClick={() => setOffset(offset + PAGE)}
              >
                Next
              </button>
            </div>
          </div>
        )}
      </section>
      {confirm.dialog}
    </>
  );
}
