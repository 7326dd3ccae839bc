'use client';
/**
 * Jobs: every job you may see (admins: all), filtered by type and status,
 * kept current by the socket (job.* messages; a resync refetches with
 * updated_since), with details and cancel.
 */
import { useCallback, useRef, useState } from 'react';
import { jobs } from '@/api/endpoints';
import { JOB_STATUSES, JOB_TYPES, type Job } from '@/api/types';
import { formatDate } from '@/lib/format';
import { useLive } from '@/lib/live';
import { applyJobMessage, isFinished, mergeJobs } from '@/lib/liveState';
import { useAction, useApi } from '@/lib/useApi';
import { useJob } from '@/lib/useJob';
import { JobView, Progress, StatusBadge } from '../JobView';
import { Empty, ErrorBox, Loading } from '../Status';
import type { TabProps } from './registry';

const LIMIT = 100;

export default function JobsTab(_: TabProps) {
  const [type, setType] = useState('');
  const [status, setStatus] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const list = useApi((signal) => jobs.list({ type: type || undefined, status: status || undefined, limit: LIMIT }, signal), [type, status]);
  const cancel = useAction(jobs.cancel);
  const { setData } = list;
  const items = list.data?.items ?? [];
  const itemsRef = useRef(items);
  itemsRef.current = items;

  const matches = useCallback((j: Job) => (!type || j.type === type) && (!status || j.status === status), [type, status]);

  const fetchOne = useCallback(
    (id: string) => {
      jobs
        .get(id)
        .then((j) => setData((prev) => (prev ? { ...prev, items: mergeJobs(prev.items, [j]).filter(matches) } : (prev as never))))
        .catch(() => undefined);
    },
    [matches, setData],
  );

  const live = useLive((m) => {
    if (m.type === 'resync') {
      const since = m.data.since as string | null;
      jobs
        .list({ type: type || undefined, status: status || undefined, limit: LIMIT, updated_since: since ?? undefined })
        .then((p) => setData((prev) => ({ ...(prev ?? p), items: mergeJobs(prev?.items ?? [], p.items).filter(matches) })))
        .catch(() => undefined);
      return;
    }
    if (!m.type.startsWith('job.')) return;
    const id = String(m.data.job_id ?? '');
    // Decided on the rendered list: state updaters may run later, so no flags out of them.
    const known = itemsRef.current.some((j) => j.id === id);
    if (known) setData((prev) => (prev ? { ...prev, items: (applyJobMessage(prev.items, m) ?? prev.items).filter(matches) } : (prev as never)));
    // A new job (the message lacks created_at…), or an ended one (result, duration): fetch it.
    if (!known || isFinished(String(m.data.status ?? ''))) fetchOne(id);
  });

  const current = items.find((j) => j.id === selected) ?? null;

  return (
    <>
      <section className="card" aria-labelledby="jobs-h">
        <h2 id="jobs-h">Jobs</h2>
        <div className="toolbar">
          <div className="field">
            <label htmlFor="jobs-type">Type</label>
            <select id="jobs-type" value={type} onChange={(e) => setType(e.target.value)}>
              <option value="">All types</option>
              {JOB_TYPES.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="jobs-status">Status</label>
            <select id="jobs-status" value={status} onChange={(e) => setStatus(e.target.value)}>
              <option value="">All statuses</option>
              {JOB_STATUSES.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </div>
          <button type="button" className="btn btn-sm" onClick={list.reload}>
            Refresh
          </button>
          <span className="muted" role="status">
            {live ? 'Live' : 'Live updates reconnecting…'}
          </span>
        </div>
        <ErrorBox message={list.error} onRetry={list.reload} />
        <ErrorBox message={cancel.error} />
        {list.loading && !list.data ? (
          <Loading label="Loading jobs…" />
        ) : items.length === 0 ? (
          <Empty>No jobs{type || status ? ' match these filters' : ' yet'}.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Type</th>
                  <th scope="col">Status</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Model</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((j) => (
                  <tr key={j.id} data-testid="job-row" data-job-type={j.type} data-status={j.status} aria-selected={j.id === selected}>
                    <td>
                      <button type="button" className="link-btn mono" onClick={() => setSelected(j.id)} aria-label={`Details of ${j.type} job ${j.id}`}>
                        {j.id.slice(0, 8)}
                      </button>
                    </td>
                    <td>{j.type}</td>
                    <td>
                      <StatusBadge status={j.status} />
                    </td>
                    <td style={{ minWidth: '8rem' }}>
                      <Progress value={j.progress} label={`Progress of ${j.type} job ${j.id.slice(0, 8)}`} />
                    </td>
                    <td>{j.model_key ? `${j.model_key}${j.model_version ? ` ${j.model_version}` : ''}` : '—'}</td>
                    <td>{formatDate(j.created_at)}</td>
                    <td>
                      {!isFinished(j.status) && (
                        <button
                          type="button"
                          className="btn btn-sm btn-danger"
                          disabled={cancel.pending || j.cancel_requested}
                          onClick={() => cancel.run(j.id).then((r) => r.ok && fetchOne(j.id))}
                        >
                          {j.cancel_requested ? 'Cancelling…' : 'Cancel'}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {current && (
        <section className="card" aria-labelledby="job-detail-h">
          <h2 id="job-detail-h">Job details</h2>
          <JobDetail job={current} />
        </section>
      )}
    </>
  );
}

/** The list row lacks the full loss history: follow the job itself (live). */
function JobDetail({ job }: { job: Job }) {
  const { job: full, error } = useJob(job.id);
  return (
    <>
      <ErrorBox message={error} />
      <JobView job={full && full.id === job.id ? full : job} />
    </>
  );
}
