'use client';
/**
 * Follow one job live: fetched once, then updated by the socket's job.*
 * messages (the loss history grows from job.progress); refetched when it
 * ends (result, full history) or after a resync. Polls (2 s) only while the
 * socket is down and the job still runs.
 */
import { useEffect, useState } from 'react';
import { jobs, models } from '@/api/endpoints';
import { messageOf } from '@/api/client';
import type { EpochPoint, Job } from '@/api/types';
import { useLive } from './live';
import { isFinished, patchJob } from './liveState';

export function useJob(id: string | null): { job: Job | null; error: string | null; live: boolean } {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  const live = useLive((m) => {
    if (!id) return;
    if (m.type === 'resync') setTick((t) => t + 1);
    else if (m.type.startsWith('job.') && m.data.job_id === id) {
      setJob((j) => (j ? patchJob(j, m) : j));
      if (isFinished(String(m.data.status ?? '')) || m.type === 'job.stage') setTick((t) => t + 1);
    }
  });

  useEffect(() => {
    if (!id) {
      setJob(null);
      return;
    }
    const ctl = new AbortController();
    jobs
      .get(id, ctl.signal)
      .then(async (j) => {
        // Progress is saved at most every 0.5 s, so a finished job's details may hold only
        // part of the loss curve; the version keeps all of it (training.info.history).
        if ((j.type === 'train' || j.type === 'retrain') && j.status === 'completed' && j.model_key && j.model_version) {
          const v = await models.version(j.model_key, j.model_version, ctl.signal).catch(() => null);
          const info = v?.training?.info as { history?: EpochPoint[] } | undefined;
          const full = info?.history ?? (v?.training?.history as EpochPoint[] | undefined);
          const have = (j.details?.history as EpochPoint[] | undefined) ?? [];
          if (Array.isArray(full) && full.length > have.length) j = { ...j, details: { ...j.details, history: full, epoch: full[full.length - 1]?.epoch } };
        }
        if (ctl.signal.aborted) return;
        setJob(j);
        setError(null);
      })
      .catch((e) => {
        if (!ctl.signal.aborted) setError(messageOf(e));
      });
    return () => ctl.abort();
  }, [id, tick]);

  const running = !!job && !isFinished(job.status);
  useEffect(() => {
    if (!id || live || !running) return;
    const t = setInterval(() => setTick((x) => x + 1), 2000);
    return () => clearInterval(t);
  }, [id, live, running]);

  return { job, error, live };
}
