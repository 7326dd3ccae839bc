'use client';
/**
 * Models: every key with its active version; a model's versions with
 * metrics, a version's confusion matrix and permutation feature importance,
 * promote / rollback (admins), drift history (drifted share, accuracy and each
 * feature's PSI over time; ModelMonitoring, loaded on demand) and "Check drift now".
 * model.* and drift.report_ready messages refresh what is shown.
 */
import { lazy, Suspense, useState } from 'react';
import { drift, models } from '@/api/endpoints';
import type { DriftSummary, ModelDetail, User } from '@/api/types';
import { formatDate, percent } from '@/lib/format';
import { importanceRows } from '@/lib/monitoring';
import { useLive } from '@/lib/live';
import { isAdmin } from '@/lib/permissions';
import { useAction, useApi } from '@/lib/useApi';
import { useJob } from '@/lib/useJob';
import { useConfirm } from '../ConfirmDialog';
import { DriftReportTable } from '../DriftReportTable';
import { JobView } from '../JobView';
import { LineChart } from '../LineChart';
import { Empty, ErrorBox, Loading, Notice } from '../Status';
import type { TabProps } from './registry';

// The monitoring charts are a chunk of their own, fetched when a model with reports is shown.
const ModelMonitoring = lazy(() => import('../ModelMonitoring'));

export default function ModelsTab({ user }: TabProps) {
  const list = useApi((signal) => models.list(signal));
  const [key, setKey] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useLive((m) => {
    if (m.type.startsWith('model.') || m.type === 'drift.report_ready' || m.type === 'resync') {
      list.reload();
      setTick((t) => t + 1);
    }
  });
  const items = list.data?.items ?? [];
  const current = key ?? items[0]?.model_key ?? null;
  return (
    <>
      <section className="card" aria-labelledby="models-h">
        <h2 id="models-h">Models</h2>
        <ErrorBox message={list.error} onRetry={list.reload} />
        {list.loading && !list.data ? (
          <Loading label="Loading models…" />
        ) : items.length === 0 ? (
          <Empty>
            No models yet. <a href="#training">Train one</a>.
          </Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Active version</th>
                  <th scope="col">Accuracy</th>
                  <th scope="col">Macro F1</th>
                  <th scope="col">Versions</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {items.map((m) => (
                  <tr key={m.model_key} data-testid="model-row" data-model={m.model_key} aria-selected={m.model_key === current}>
                    <td>
                      <button type="button" className="link-btn" onClick={() => setKey(m.model_key)}>
                        {m.model_key}
                      </button>
                    </td>
                    <td>{m.active_version ?? '—'}</td>
                    <td>{percent(m.metrics?.accuracy)}</td>
                    <td>{percent(m.metrics?.f1_macro)}</td>
                    <td>{m.versions}</td>
                    <td>{formatDate(m.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {current && <ModelPanel key={current} modelKey={current} user={user} tick={tick} />}
    </>
  );
}

function ModelPanel({ modelKey, user, tick }: { modelKey: string; user: User; tick: number }) {
  const detail = useApi((signal) => models.get(modelKey, signal), [modelKey, tick]);
  const [version, setVersion] = useState<string | null>(null);
  const act = useAction(async (op: 'promote' | 'rollback', v?: string) =>
    op === 'promote' ? models.promote(modelKey, v as string) : models.rollback(modelKey),
  );
  const [notice, setNotice] = useState<string | null>(null);
  const confirm = useConfirm();
  const d: ModelDetail | undefined = detail.data;
  const shown = version ?? d?.active_version ?? d?.versions[0]?.version ?? null;
  const admin = isAdmin(user);

  async function run(op: 'promote' | 'rollback', v?: string) {
    setNotice(null);
    const ok = await confirm.ask({
      title: op === 'promote' ? `Promote ${modelKey} ${v}?` : `Roll back ${modelKey}?`,
      body: <p>{op === 'promote' ? 'This version will answer predictions.' : 'The previous active version answers again.'}</p>,
      confirmLabel: op === 'promote' ? 'Promote' : 'Roll back',
    });
    if (!ok) return;
    const r = await act.run(op, v);
    if (r.ok) {
      setNotice(op === 'promote' ? `${modelKey} ${v} is now active.` : `${modelKey} rolled back.`);
      detail.reload();
    }
  }

  return (
    <>
      <section className="card" aria-labelledby="model-h">
        <h2 id="model-h">{modelKey}</h2>
        <ErrorBox message={detail.error} onRetry={detail.reload} />
        <ErrorBox message={act.error} />
        <Notice message={notice} />
        {confirm.dialog}
        {!d ? (
          <Loading />
        ) : (
          <>
            <p className="muted">
              Target: {d.target ?? '—'} · {d.features.length} features · active {d.active_version ?? 'none'}
            </p>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Accuracy</th>
                    <th scope="col">Macro F1</th>
                    <th scope="col">Created</th>
                    <th scope="col">Parent</th>
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.versions.map((v) => (
                    <tr key={v.version} data-testid="version-row" aria-selected={v.version === shown}>
                      <td>
                        <button type="button" className="link-btn" onClick={() => setVersion(v.version)} aria-label={`Show version ${v.version}`}>
                          {v.version}
                        </button>{' '}
                        {v.active && <span className="badge badge-ok">active</span>}
                      </td>
                      <td data-testid="version-accuracy">{percent(v.metrics.accuracy)}</td>
                      <td>{percent(v.metrics.f1_macro)}</td>
                      <td>{formatDate(v.created_at)}</td>
                      <td>{v.parent_version ?? '—'}</td>
                      <td>
                        {admin && !v.active && (
                          <button type="button" className="btn btn-sm" disabled={act.pending} onClick={() => run('promote', v.version)}>
                            Promote {v.version}
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {admin && d.versions.length > 1 && (
              <button type="button" className="btn btn-sm" disabled={act.pending} onClick={() => run('rollback')}>
                Roll back
              </button>
            )}
            {shown && <VersionMatrix modelKey={modelKey} version={shown} />}
          </>
        )}
      </section>
      <DriftPanel modelKey={modelKey} tick={tick} />
    </>
  );
}

function VersionMatrix({ modelKey, version }: { modelKey: string; version: string }) {
  const v = useApi((signal) => models.version(modelKey, version, signal), [modelKey, version]);
  const cm = v.data?.full_metrics?.confusion_matrix as { labels: unknown[]; matrix: number[][] } | undefined;
  if (v.error) return <ErrorBox message={v.error} />;
  if (!v.data) return <Loading label="Loading the version…" />;
  const importance = <FeatureImportance version={version} value={v.data.full_metrics?.feature_importance} />;
  if (!cm?.labels?.length)
    return (
      <>
        <p className="muted">No confusion matrix for {version}.</p>
        {importance}
      </>
    );
  const max = Math.max(1, ...cm.matrix.flat());
  return (
    <>
    <div className="table-wrap">
      <table className="matrix" aria-label={`Confusion matrix of ${version}: rows are true classes, columns predicted`}>
        <caption>
          Confusion matrix, {version} (rows: true class, columns: predicted)
        </caption>
        <thead>
          <tr>
            <th scope="col">true \ predicted</th>
            {cm.labels.map((l) => (
              <th key={String(l)} scope="col">
                {String(l)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {cm.matrix.map((row, i) => (
            <tr key={i}>
              <th scope="row">{String(cm.labels[i])}</th>
              {row.map((n, j) => (
                <td
                  key={j}
                  style={{
                    background: `color-mix(in srgb, ${i === j ? 'var(--success)' : 'var(--danger)'} ${Math.round((n / max) * 45)}%, transparent)`,
                  }}
                >
                  {n}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {importance}
    </>
  );
}

/** Permutation importance measured at training: the holdout accuracy lost when a feature is shuffled. */
function FeatureImportance({ version, value }: { version: string; value: unknown }) {
  const rows = importanceRows(value);
  if (!rows.length) return <p className="muted">No feature importance for {version} (trained before 0.12).</p>;
  return (
    <>
      <h3 id={`fi-${version}`}>Feature importance, {version}</h3>
      <p className="muted">Accuracy lost on the holdout when the feature is shuffled (permutation importance).</p>
      <div className="importance" role="list" aria-labelledby={`fi-${version}`} data-testid="feature-importance">
        {rows.map((r) => (
          <div key={r.name} role="listitem" style={{ display: 'contents' }}>
            <span>{r.name}</span>
            <span className="num">{r.drop >= 0 ? '' : '−'}{Math.abs(r.drop * 100).toFixed(1)} pt</span>
            <span className="bar" style={{ width: `${r.share * 100}%` }} aria-hidden="true" />
          </div>
        ))}
      </div>
    </>
  );
}

function DriftPanel({ modelKey, tick }: { modelKey: string; tick: number }) {
  const reports = useApi((signal) => drift.reports({ model_key: modelKey, limit: 60 }, signal), [modelKey, tick]);
  const check = useAction(drift.check);
  const [jobId, setJobId] = useState<string | null>(null);
  const { job } = useJob(jobId);
  const items: DriftSummary[] = [...(reports.data?.items ?? [])].sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
  const t0 = items.length ? new Date(items[0].created_at).getTime() : 0;
  return (
    <section className="card" aria-labelledby="drift-h">
      <h2 id="drift-h">Drift of {modelKey}</h2>
      <ErrorBox message={reports.error} onRetry={reports.reload} />
      <ErrorBox message={check.error} />
      <button
        type="button"
        className="btn"
        disabled={check.pending || (!!job && !['completed', 'failed', 'cancelled'].includes(job.status))}
        onClick={async () => {
          const r = await check.run(modelKey);
          if (r.ok) setJobId(r.value.job_id);
        }}
      >
        Check drift now
      </button>
      {job && <JobView job={job} />}
      {items.length === 0 ? (
        <Empty>No drift reports yet.</Empty>
      ) : (
        <>
          <LineChart
            label={`Drifted share of features over ${items.length} reports`}
            xLabel="hours since first report"
            yDomain={[0, 1]}
            series={[
              {
                name: 'drifted share',
                color: 'var(--warning)',
                points: items.map((r) => ({ x: (new Date(r.created_at).getTime() - t0) / 3.6e6, y: r.drifted_share })),
              },
            ]}
          />
          <Suspense fallback={<Loading label="Loading the charts…" />}>
            <ModelMonitoring modelKey={modelKey} reports={items} />
          </Suspense>
          <DriftReportTable items={[...items].reverse()} />
        </>
      )}
    </section>
  );
}
