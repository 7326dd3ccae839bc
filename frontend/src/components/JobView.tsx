/** One job: status, stages, progress bar, error, result (shared by Jobs and Training). */
import type { EpochPoint, Job } from '@/api/types';
import { formatDate } from '@/lib/format';
import { progressPct } from '@/lib/liveState';
import { LineChart } from './LineChart';

export function StatusBadge({ status }: { status: string }) {
  const cls =
    status === 'completed' ? 'badge-ok' : status === 'failed' ? 'badge-bad' : status === 'cancelled' ? 'badge-warn' : 'badge-accent';
  return <span className={`badge ${cls}`}>{status}</span>;
}

/** Job progress is a percentage, 0–100. */
export function Progress({ value, label }: { value: number; label: string }) {
  const pct = progressPct(value);
  return (
    <div className="progress-row">
      <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
        <div style={{ width: `${pct}%` }} />
      </div>
      <span className="muted">{pct}%</span>
    </div>
  );
}

export function LossChart({ history }: { history: EpochPoint[] }) {
  if (!history.length) return <p className="muted">The loss curve appears with the first epoch.</p>;
  const hasVal = history.some((h) => typeof h.validation_score === 'number');
  return (
    <LineChart
      label={`Training loss over ${history.length} epochs`}
      xLabel="epoch"
      series={[
        { name: 'loss', color: 'var(--accent)', points: history.map((h) => ({ x: h.epoch, y: h.loss })) },
        ...(hasVal
          ? [{ name: 'validation score', color: 'var(--success)', points: history.map((h) => ({ x: h.epoch, y: h.validation_score })) }]
          : []),
      ]}
    />
  );
}

export function JobView({ job }: { job: Job }) {
  const history = (job.details?.history as EpochPoint[] | undefined) ?? [];
  const epoch = job.details?.epoch as number | undefined;
  const maxEpochs = job.details?.max_epochs as number | undefined;
  // e.g. a training's classes too rare for the holdout: learned, but their accuracy is not measured
  const warnings = (job.result?.warnings as string[] | undefined) ?? [];
  return (
    <div className="job-view" data-testid="job-view" data-status={job.status}>
      <p>
        <StatusBadge status={job.status} /> <strong>{job.type}</strong> <code>{job.id}</code>
        {job.model_key && (
          <>
            {' '}
            · {job.model_key}
            {job.model_version ? ` ${job.model_version}` : ''}
          </>
        )}
      </p>
      <Progress value={job.progress} label={`Progress of job ${job.id}`} />
      <p className="muted">
        Stage: {job.stage ?? '—'}
        {epoch !== undefined && ` · epoch ${epoch}${maxEpochs ? ` of ${maxEpochs}` : ''}`} · created {formatDate(job.created_at)}
        {job.duration_s !== null && ` · ${job.duration_s.toFixed(1)} s`}
        {job.cancel_requested && job.status === 'running' && ' · cancel requested'}
      </p>
      {job.stages.length > 0 && (
        <ol className="stages" aria-label="Stages">
          {job.stages.map((s) => (
            <li key={s.name} className={`stage stage-${s.status}`}>
              {s.name} <span className="sr-only">({s.status})</span>
            </li>
          ))}
        </ol>
      )}
      {job.error && (
        <div className="alert alert-error" role="alert">
          {job.error}
        </div>
      )}
      {warnings.map((warning) => (
        <div key={warning} className="alert alert-warning" data-testid="job-warning">
          {warning}
        </div>
      ))}
      {(job.type === 'train' || job.type === 'retrain') && <LossChart history={history} />}
      {job.result && (
        <details>
          <summary>Result</summary>
          <pre className="json">{JSON.stringify(job.result, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
