/**
 * Pure parts of the live-update layer (tested): message shape, back-off,
 * and how a job.* message changes a list of jobs.
 */
import type { EpochPoint, Job } from '@/api/types';

export interface LiveMessage {
  seq: number;
  type: string;
  ts: string;
  topics: string[];
  data: Record<string, unknown>;
}

export function parseMessage(raw: unknown): LiveMessage | null {
  if (typeof raw !== 'string') return null;
  try {
    const m = JSON.parse(raw) as Partial<LiveMessage>;
    if (!m || typeof m.type !== 'string') return null;
    return { seq: Number(m.seq ?? 0), type: m.type, ts: String(m.ts ?? ''), topics: m.topics ?? [], data: m.data ?? {} };
  } catch {
    return null;
  }
}

/** Reconnect delay: 1 s, 2 s, 4 s, … capped at 30 s. */
export function backoffMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
}

/** `updated_since` for a resync: the last message's time minus a margin for clocks. */
export function resyncSince(lastTs: string | null, marginS = 2): string | null {
  if (!lastTs) return null;
  const t = new Date(lastTs).getTime();
  if (Number.isNaN(t)) return null;
  return new Date(t - marginS * 1000).toISOString();
}

export const isJobMessage = (m: LiveMessage) => m.type.startsWith('job.');

/** Apply a job.* message to one job (a copy); the job's own fields win where the message lacks them. */
export function patchJob(job: Job, m: LiveMessage): Job {
  const d = m.data;
  const next: Job = { ...job };
  if (typeof d.status === 'string') next.status = d.status;
  if (d.stage !== undefined) next.stage = (d.stage as string | null) ?? next.stage;
  if (typeof d.progress === 'number') next.progress = d.progress;
  if (typeof d.error === 'string') next.error = d.error;
  if (typeof d.model_version === 'string') next.model_version = d.model_version;
  if (m.type === 'job.cancel_requested') next.cancel_requested = true;
  if (m.ts) next.updated_at = m.ts;
  const det = d.details as Record<string, unknown> | undefined;
  if (det) {
    const history = appendEpoch((job.details?.history as EpochPoint[] | undefined) ?? [], det.last as EpochPoint);
    next.details = { ...job.details, ...det, history };
    delete (next.details as Record<string, unknown>).last;
  }
  return next;
}

/** Add an epoch point to a loss history, once per epoch, in order. */
export function appendEpoch(history: EpochPoint[], p: EpochPoint | undefined | null): EpochPoint[] {
  if (!p || typeof p.epoch !== 'number' || typeof p.loss !== 'number') return history;
  if (history.some((h) => h.epoch === p.epoch)) return history;
  return [...history, p].sort((a, b) => a.epoch - b.epoch);
}

/**
 * A job.* message applied to a list: the updated list, or null when the job
 * is not in it (the caller fetches it: the message has no created_at etc.).
 */
export function applyJobMessage(list: Job[], m: LiveMessage): Job[] | null {
  const id = m.data.job_id;
  const i = list.findIndex((j) => j.id === id);
  if (i < 0) return null;
  const copy = list.slice();
  copy[i] = patchJob(list[i], m);
  return copy;
}

/** Merge freshly fetched jobs into a list (newest first), replacing same ids. */
export function mergeJobs(list: Job[], fresh: Job[]): Job[] {
  const byId = new Map(list.map((j) => [j.id, j]));
  for (const j of fresh) byId.set(j.id, j);
  return [...byId.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
}

export const isFinished = (status: string) => status === 'completed' || status === 'failed' || status === 'cancelled';

/** A job's progress (0–100, as the API sends it) as a whole percentage for display. */
export function progressPct(v: number): number {
  return Number.isFinite(v) ? Math.round(Math.max(0, Math.min(100, v))) : 0;
}
