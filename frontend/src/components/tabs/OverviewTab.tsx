'use client';
/**
 * Overview: a compact service-health strip (GET /health, the signed-in user), then
 * the models: active version, holdout / estimated / realised accuracy, the last
 * drift verdict, predictions per hour over 24 h, and the active alerts and running
 * jobs. Refreshed every 30 s while visible (no WebSocket: Overview opens first and
 * must stay light).
 */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { alerts, drift, health, jobs, models, predict, recentHealth } from '@/api/endpoints';
import type { DriftSummary, Health } from '@/api/types';
import { formatDate, formatMemory, formatUptime, percent } from '@/lib/format';
import { realisedOf } from '@/lib/monitoring';
import { TIER_LABEL } from '@/lib/permissions';
import { useApi } from '@/lib/useApi';
import { Sparkline } from '../Sparkline';
import { Empty, ErrorBox, Loading } from '../Status';
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

async function loadOverview(signal: AbortSignal) {
  const [list, activity, active, running] = await Promise.all([
    models.list(signal),
    predict.activity(24, signal),
    alerts.list('active', signal),
    jobs.list({ status: 'running', limit: 1 }, signal),
  ]);
  // The latest report of each model: one small call per model, exact whatever the others did.
  const latest = await Promise.all(
    list.items.map((m) => drift.reports({ model_key: m.model_key, limit: 1 }, signal).then((p) => p.items[0] as DriftSummary | undefined)),
  );
  return { items: list.items, latest, activity, alerts: active.total, running: running.total };
}

function Verdict({ r }: { r: DriftSummary | undefined }) {
  if (!r) return <span className="muted">never checked</span>;
  const bad = r.verdict === 'drift' || !!r.performance?.dropped;
  return (
    <>
      <span className={`badge ${bad ? 'badge-bad' : r.verdict === 'no_drift' ? 'badge-ok' : 'badge-warn'}`}>{r.verdict.replace(/_/g, ' ')}</span>
      {r.performance?.dropped && <span className="badge badge-bad">accuracy drop</span>}{' '}
      <a href={`#events?report=${r.id}`} className="muted" aria-label={`Drift report #${r.id} of ${formatDate(r.created_at)}`}>
        {formatDate(r.created_at)}
      </a>
    </>
  );
}

function ModelsOverview({ tick }: { tick: number }) {
  const o = useApi(loadOverview, [tick]);
  const d = o.data;
  return (
    <section className="card" aria-labelledby="ov-models-h" aria-busy={o.loading && !d}>
      <div className="toolbar" style={{ justifyContent: 'space-between' }}>
        <h2 id="ov-models-h" style={{ margin: 0 }}>
          Models
        </h2>
        {d && (
          <p className="ov-counts">
            <a href="#events" data-testid="ov-alerts" className={d.alerts ? 'badge badge-bad' : 'badge'}>
              {d.alerts} active alert{d.alerts === 1 ? '' : 's'}
            </a>{' '}
            <a href="#jobs" data-testid="ov-jobs" className={d.running ? 'badge badge-accent' : 'badge'}>
              {d.running} running job{d.running === 1 ? '' : 's'}
            </a>
          </p>
        )}
      </div>
      <ErrorBox message={o.error} onRetry={o.reload} />
      {!d ? (
        o.loading && <Loading label="Loading models…" />
      ) : d.items.length === 0 ? (
        <Empty>
          No models yet. <a href="#training">Train one</a>.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Each model with its active version, accuracy, last drift check and predictions</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Active version</th>
                <th scope="col">Holdout accuracy</th>
                <th scope="col">Estimated accuracy</th>
                <th scope="col">Realised accuracy</th>
                <th scope="col">Last drift check</th>
                <th scope="col">Predictions, 24 h</th>
              </tr>
            </thead>
            <tbody>
              {d.items.map((m, i) => {
                const r = d.latest[i];
                const realised = r ? realisedOf(r) : null;
                const counts = d.activity.models[m.model_key] ?? [];
                const total = counts.reduce((a, b) => a + b, 0);
                const iv = r?.estimated_accuracy_interval;
                return (
                  <tr key={m.model_key} data-testid="ov-model" data-model={m.model_key}>
                    <th scope="row">
                      <a href="#models">{m.model_key}</a>
                    </th>
                    <td data-testid="ov-version">{m.active_version ?? '—'}</td>
                    <td data-testid="ov-holdout">{percent(m.metrics?.accuracy)}</td>
                    <td data-testid="ov-estimated">
                      {percent(r?.estimated_accuracy)}
                      {iv?.length === 2 && (
                        <span className="muted small">
                          {' '}
                          {percent(iv[0])}–{percent(iv[1])}
                        </span>
                      )}
                    </td>
                    <td data-testid="ov-realised">
                      {realised ? percent(realised.accuracy) : '—'}
                      {realised && <span className="muted small"> {realised.rows} labelled</span>}
                    </td>
                    <td data-testid="ov-verdict">
                      <Verdict r={r} />
                    </td>
                    <td className="ov-activity">
                      <Sparkline counts={counts} label={`${total} predictions of ${m.model_key} in the last 24 hours, at most ${Math.max(0, ...counts)} in an hour`} />{' '}
                      <span data-testid="ov-predictions">{total}</span>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export default function OverviewTab({ user }: TabProps) {
  // Opened right after sign-in, the shell's /health answer (for its version) is seconds old: show it.
  const h = useApi((signal) => health(signal), [], recentHealth());
  const [tick, setTick] = useState(0);
  const { reload } = h;
  const refresh = useCallback(() => {
    reload();
    setTick((t) => t + 1);
  }, [reload]);

  useEffect(() => {
    const id = window.setInterval(() => {
      if (document.visibilityState === 'visible') refresh();
    }, REFRESH_MS);
    return () => window.clearInterval(id);
  }, [refresh]);

  return (
    <>
      <div className="toolbar" style={{ justifyContent: 'space-between', marginBottom: '0.5rem' }}>
        <h2 style={{ margin: 0 }}>Service health</h2>
        <button type="button" className="btn btn-sm" onClick={refresh} disabled={h.loading}>
          {h.loading && h.data ? 'Refreshing…' : 'Refresh'}
        </button>
      </div>
      <ErrorBox message={h.error} onRetry={reload} />
      <div className="cards health-strip" aria-busy={!h.data && h.loading}>
        {h.data ? <HealthCards h={h.data} /> : <PlaceholderCards />}
        <Card label="Signed in as" testid="card-user">
          <p className="stat-value">{user.username}</p>
          <p className="muted">
            {TIER_LABEL[user.tier]} · last sign-in {formatDate(user.last_login_at)}
          </p>
        </Card>
      </div>
      <ModelsOverview tick={tick} />
    </>
  );
}
