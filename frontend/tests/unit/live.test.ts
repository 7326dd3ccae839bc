import { describe, expect, it } from 'vitest';
import type { Job } from '@/api/types';
import { progressPct, appendEpoch, applyJobMessage, backoffMs, mergeJobs, parseMessage, patchJob, resyncSince, type LiveMessage } from '@/lib/liveState';
import { extent, linearScale, linePath, niceTicks } from '@/lib/chart';
import { parseLayers } from '@/components/tabs/TrainingTab';
import { parseRecords } from '@/components/tabs/PredictTab';

const job = (id: string, created_at = '2026-01-01T00:00:00Z'): Job => ({
  id,
  type: 'train',
  status: 'queued',
  stage: null,
  stages: [],
  progress: 0,
  created_at,
  updated_at: created_at,
  started_at: null,
  finished_at: null,
  duration_s: null,
  model_key: 'm',
  model_version: null,
  cancel_requested: false,
  error: null,
  result: null,
  details: {},
  source: 'gui',
  user_id: 1,
});
const msg = (type: string, data: Record<string, unknown>, ts = '2026-01-01T00:00:05Z'): LiveMessage => ({ seq: 1, type, ts, topics: [], data });

describe('live messages', () => {
  it('parses messages and rejects junk', () => {
    expect(parseMessage('{"seq":3,"type":"job.stage","ts":"t","topics":["jobs"],"data":{"a":1}}')?.type).toBe('job.stage');
    expect(parseMessage('nope')).toBeNull();
    expect(parseMessage('{"x":1}')).toBeNull();
    expect(parseMessage(42)).toBeNull();
  });

  it('backs off 1 s, 2 s, 4 s … up to 30 s', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('resyncs from the last message time minus a margin', () => {
    expect(resyncSince('2026-01-01T00:00:10.000Z')).toBe('2026-01-01T00:00:08.000Z');
    expect(resyncSince(null)).toBeNull();
    expect(resyncSince('garbage')).toBeNull();
  });

  it('applies job messages to the matching job only', () => {
    const list = [job('a'), job('b')];
    const next = applyJobMessage(list, msg('job.stage', { job_id: 'b', status: 'running', stage: 'fit_model', progress: 0.4 }));
    expect(next?.[1]).toMatchObject({ status: 'running', stage: 'fit_model', progress: 0.4, updated_at: '2026-01-01T00:00:05Z' });
    expect(next?.[0]).toBe(list[0]);
    expect(list[1].status).toBe('queued');
    expect(applyJobMessage(list, msg('job.created', { job_id: 'zzz' }))).toBeNull();
  });

  it('grows the loss history from progress messages, once per epoch', () => {
    let j = job('a');
    j = patchJob(j, msg('job.progress', { job_id: 'a', progress: 0.5, details: { epoch: 1, last: { epoch: 1, loss: 0.7, validation_score: 0.8 } } }));
    j = patchJob(j, msg('job.progress', { job_id: 'a', progress: 0.6, details: { epoch: 1, last: { epoch: 1, loss: 0.7, validation_score: 0.8 } } }));
    j = patchJob(j, msg('job.progress', { job_id: 'a', progress: 0.7, details: { epoch: 2, last: { epoch: 2, loss: 0.5, validation_score: null } } }));
    expect((j.details.history as unknown[]).length).toBe(2);
    expect(j.details.epoch).toBe(2);
    expect('last' in j.details).toBe(false);
    expect(appendEpoch([], null)).toEqual([]);
  });

  it('cancel and failure are reflected', () => {
    const j = patchJob(job('a'), msg('job.cancel_requested', { job_id: 'a', status: 'running' }));
    expect(j.cancel_requested).toBe(true);
    expect(patchJob(j, msg('job.failed', { job_id: 'a', status: 'failed', error: 'boom' })).error).toBe('boom');
  });

  it('merges fetched jobs newest first, replacing same ids', () => {
    const a = job('a', '2026-01-01T00:00:00Z');
    const b = job('b', '2026-01-02T00:00:00Z');
    const a2 = { ...a, status: 'completed' };
    expect(mergeJobs([a], [b, a2]).map((j) => [j.id, j.status])).toEqual([
      ['b', 'queued'],
      ['a', 'completed'],
    ]);
  });
});

describe('progress', () => {
  it('is a 0-100 percentage from the API', () => {
    expect(progressPct(45.5)).toBe(46);
    expect(progressPct(100)).toBe(100);
    expect(progressPct(150)).toBe(100);
    expect(progressPct(-3)).toBe(0);
    expect(progressPct(NaN)).toBe(0);
  });
});

describe('chart helpers', () => {
  it('scales linearly, flat domains to the middle', () => {
    const s = linearScale([0, 10], [100, 0]);
    expect(s(0)).toBe(100);
    expect(s(5)).toBe(50);
    expect(linearScale([3, 3], [0, 10])(3)).toBe(5);
  });
  it('finds extents and nice ticks', () => {
    expect(extent([3, NaN, 1, 2])).toEqual([1, 3]);
    expect(extent([])).toEqual([0, 1]);
    expect(niceTicks(0, 1, 4)).toEqual([0, 0.5, 1]);
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 15, 6)).toEqual([5, 10, 15]);
    expect(niceTicks(2, 2)).toEqual([2]);
  });
  it('draws paths, breaking at missing values', () => {
    const id = (v: number) => v;
    expect(linePath([{ x: 0, y: 1 }, { x: 1, y: 2 }], id, id)).toBe('M0.0 1.0L1.0 2.0');
    expect(linePath([{ x: 0, y: 1 }, { x: 1, y: null }, { x: 2, y: 3 }], id, id)).toBe('M0.0 1.0M2.0 3.0');
  });
});

describe('form parsing', () => {
  it('parses hidden layers', () => {
    expect(parseLayers('64, 32')).toEqual([64, 32]);
    expect(parseLayers('16')).toEqual([16]);
    expect(parseLayers('a')).toBeNull();
    expect(parseLayers('')).toBeNull();
    expect(parseLayers('0')).toBeNull();
  });
  it('parses pasted records (list, object, JSON Lines)', () => {
    expect(parseRecords('[{"a":1},{"a":2}]')).toHaveLength(2);
    expect(parseRecords('{"a":1}')).toEqual([{ a: 1 }]);
    expect(parseRecords('{"a":1}\n{"a":2}')).toHaveLength(2);
    expect(() => parseRecords('')).toThrow(/at least one/);
    expect(() => parseRecords('[1,2]')).toThrow(/object/);
    expect(() => parseRecords('{bad')).toThrow(/valid JSON/);
  });
});
