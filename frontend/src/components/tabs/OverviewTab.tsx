'use client';
/** Overview: service health cards from GET /health and the signed-in user. */
import { useEffect, type ReactNode } from 'react';
import { health, recentHealth } from '@/api/endpoints';
import type { Health } from '@/api/types';
import { formatDate, formatMemory, formatUptime } from '@/lib/format';
import { TIER_LABEL } from '@/lib/permissions';
import { useApi } from '@/lib/useApi';
import { ErrorBox } from '../Status';
import type { TabProps } from './registry';

const REFRESH_MS = 30_000;

function Card({ label, children, testid }: { label: string; children: ReactNode; testid?: string }) {
  return (
    <section className="card" aria-label={label} data-testid={testid}>
      <p className="stat-label">{label}</p>
      {children}
    </section>
  );
}

function dotClass(ok: boolean | undefined) {
  return ok === undefined ? 'dot' : ok ? 'dot dot-ok' : 'dot dot-bad';
}

const PLACEHOLDER_LABELS = ['Status', 'Version', 'Uptime', 'Database', 'GPU'];

/** Same cards, same size, before /health answers: nothing moves when it does. */
function PlaceholderCards() {
  return (
    <>
      {PLACEHOLDER_LABELS.map((label) => (
        <Card key={label} label={label}>
          <p className="stat-value" aria-hidden="true">
            …
          </p>
          <p className="muted">Loading…</p>
        </Card>
      ))}
    </>
  );
}

export function HealthCards({ h }: { h: Health }) {
  return (
    <>
      <Card label="Status" testid="card-status">
        <p className="stat-value">
          <span className={h.status === 'ok' ? 'dot dot-ok' : 'dot dot-warn'} aria-hidden="true" />
          {h.status === 'ok' ? 'Operational' : 'Degraded'}
        </p>
        <p className="muted">{h.status === 'ok' ? 'All checks pass.' : 'Some checks fail: see below.'}</p>
      </Card>
      <Card label="Version" testid="card-version">
        <p className="stat-value">{h.version}</p>
        <p className="muted">ML Service</p>
      </Card>
      <Card label="Uptime" testid="card-uptime">
        <p className="stat-value">{formatUptime(h.uptime_s)}</p>
        <p className="muted">since the last start</p>
      </Card>
      <Card label="Database" testid="card-database">
        <p className="stat-value">
          <span className={dotClass(h.database.ok)} aria-hidden="true" />
          {h.database.backend === 'postgresql' ? 'PostgreSQL' : 'SQLite'}
        </p>
        <p className="muted">{h.database.ok ? 'Reachable' : 'Not reachable'}</p>
      </Card>
      <Card label="GPU" testid="card-gpu">
        {h.gpu && h.gpu.available === null ? (
          <>
            <p className="stat-value">Checking…</p>
            <p className="muted">The server is probing its GPU.</p>
          </>
        ) : h.gpu ? (
          <>
            <p className="stat-value">
              <span className={h.gpu.available ? 'dot dot-ok' : 'dot'} aria-hidden="true" />
              {h.gpu.available ? (h.gpu.name ?? 'Available') : 'None'}
            </p>
            <p className="muted">
              {h.gpu.available ? formatMemory(h.gpu.memory_mb) || 'memory unknown' : 'Training runs on the CPU'}
            </p>
          </>
        ) : (
          <>
            <p className="stat-value">Unknown</p>
            <p className="muted">This server does not report its GPU.</p>
          </>
        )}
      </Card>
    </>
  );
}

export default function OverviewTab({ user }: TabProps) {
  // Opened right after sign-in, the shell's /health answer (for its version) is seconds old: show it.
  const h = useApi((signal) => health(signal), [], recentHealth());
  const { reload } = h;

  useEffect(() => {
    const id = window.setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, REFRESH_MS);
    return () => window.clearInterval(id);
  }, [reload]);

  return (
    <>
      <div className="toolbar" style={{ justifyContent: 'space-between', marginBottom: '1rem' }}>
        <h2 style={{ margin: 0 }}>Service health</h2>
        <button type="button" className="btn btn-sm" onClick={reload} disabled={h.loading}>
          {h.loading && h.data ? 'Refreshing…' : 'Refresh'}
        </button>
      </div>
      <ErrorBox message={h.error} onRetry={reload} />
      <div className="cards" aria-busy={!h.data && h.loading}>
        {h.data ? <HealthCards h={h.data} /> : <PlaceholderCards />}
        <Card label="Signed in as" testid="card-user">
          <p className="stat-value">{user.username}</p>
          <p className="muted">
            {TIER_LABEL[user.tier]} · last sign-in {formatDate(user.last_login_at)}
          </p>
        </Card>
      </div>
    </>
  );
}
