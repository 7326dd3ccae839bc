'use client';
/**
 * Training: upload a dataset (POST /datasets), review the inferred schema,
 * choose target, column types, model key and a few parameters, start
 * POST /train, then watch stages, progress and the loss curve live.
 */
import { useState, type FormEvent } from 'react';
import { datasets, jobs, training } from '@/api/endpoints';
import type { ColumnType, Dataset } from '@/api/types';
import { isFinished } from '@/lib/liveState';
import { useAction } from '@/lib/useApi';
import { useJob } from '@/lib/useJob';
import { FileDrop } from '../FileDrop';
import { JobView } from '../JobView';
import { ErrorBox, Loading } from '../Status';
import type { TabProps } from './registry';

const TYPES: ColumnType[] = ['numeric', 'categorical', 'text', 'ignored'];

export function parseLayers(s: string): number[] | null {
  const parts = s.split(/[\s,]+/).filter(Boolean).map(Number);
  if (!parts.length || parts.some((n) => !Number.isInteger(n) || n < 1)) return null;
  return parts;
}

export default function TrainingTab(_: TabProps) {
  const [file, setFile] = useState<File | null>(null);
  const [ds, setDs] = useState<Dataset | null>(null);
  const [target, setTarget] = useState('');
  const [types, setTypes] = useState<Record<string, ColumnType>>({});
  const [jobId, setJobId] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const upload = useAction(datasets.upload);
  const start = useAction(training.start);
  const cancel = useAction(jobs.cancel);
  const { job, error: jobError, live } = useJob(jobId);

  async function onUpload() {
    if (!file) return;
    const r = await upload.run(file, file.name.replace(/\.[^.]+$/, ''));
    if (r.ok) {
      setDs(r.value);
      const cols = r.value.columns;
      setTarget(cols[cols.length - 1]?.name ?? '');
      setTypes({});
      setJobId(null);
    }
  }

  async function onTrain(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!ds) return;
    const f = new FormData(e.currentTarget);
    const modelKey = String(f.get('model_key') ?? '').trim();
    const layers = parseLayers(String(f.get('layers') ?? ''));
    const maxIter = Number(f.get('max_iter'));
    if (!modelKey) return setFormError('Give the model a key.');
    if (!target) return setFormError('Choose the target column.');
    if (!layers) return setFormError('Hidden layers: whole numbers separated by commas, e.g. 64, 32.');
    if (!Number.isInteger(maxIter) || maxIter < 1) return setFormError('Max iterations must be a whole number ≥ 1.');
    setFormError(null);
    const overrides = Object.fromEntries(Object.entries(types).filter(([c]) => c !== target));
    const r = await start.run({
      model_key: modelKey,
      target,
      dataset_id: ds.id,
      column_types: Object.keys(overrides).length ? overrides : undefined,
      params: { hidden_layer_sizes: layers, max_iter: maxIter },
    });
    if (r.ok) setJobId(r.value.job_id);
  }

  return (
    <>
      <section className="card" aria-labelledby="ds-h">
        <h2 id="ds-h">1. Dataset</h2>
        <FileDrop id="train-file" label="Training data file" file={file} onFile={setFile} accept=".csv,.json,.jsonl,.parquet,.txt" />
        <ErrorBox message={upload.error} />
        <button type="button" className="btn btn-primary" disabled={!file || upload.pending} onClick={onUpload}>
          {upload.pending ? 'Uploading…' : 'Upload dataset'}
        </button>
      </section>

      {ds && (
        <section className="card" aria-labelledby="schema-h">
          <h2 id="schema-h">2. Schema and training</h2>
          <p data-testid="dataset-info">
            <strong>{ds.name}</strong>: {ds.rows} rows, {ds.columns.length} columns
          </p>
          <form onSubmit={onTrain}>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Column</th>
                    <th scope="col">Inferred type</th>
                    <th scope="col">Why</th>
                    <th scope="col">Use as</th>
                  </tr>
                </thead>
                <tbody>
                  {ds.columns.map((c) => (
                    <tr key={c.name}>
                      <td>{c.name}</td>
                      <td>{c.type}</td>
                      <td className="muted">{c.reason ?? ''}</td>
                      <td>
                        {c.name === target ? (
                          <strong>target</strong>
                        ) : (
                          <select
                            aria-label={`Type of ${c.name}`}
                            value={types[c.name] ?? (TYPES.includes(c.type as ColumnType) ? c.type : 'categorical')}
                            onChange={(e) => setTypes((t) => ({ ...t, [c.name]: e.target.value as ColumnType }))}
                          >
                            {TYPES.map((t) => (
                              <option key={t}>{t}</option>
                            ))}
                          </select>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="form-row">
              <div className="field">
                <label htmlFor="train-target">Target column</label>
                <select id="train-target" value={target} onChange={(e) => setTarget(e.target.value)}>
                  {ds.columns.map((c) => (
                    <option key={c.name}>{c.name}</option>
                  ))}
                </select>
              </div>
              <div className="field">
                <label htmlFor="train-key">Model key</label>
                <input id="train-key" type="text" name="model_key" defaultValue={ds.name.replace(/[^A-Za-z0-9_.-]+/g, '_')} required />
              </div>
              <div className="field">
                <label htmlFor="train-layers">Hidden layers</label>
                <input id="train-layers" type="text" name="layers" defaultValue="64, 32" inputMode="numeric" />
              </div>
              <div className="field">
                <label htmlFor="train-iter">Max iterations</label>
                <input id="train-iter" name="max_iter" type="number" min={1} defaultValue={50} />
              </div>
            </div>
            <ErrorBox message={formError ?? start.error} />
            <button type="submit" className="btn btn-primary" disabled={start.pending}>
              {start.pending ? 'Starting…' : 'Start training'}
            </button>
          </form>
        </section>
      )}

      {jobId && (
        <section className="card" aria-labelledby="train-job-h" aria-live="polite">
          <h2 id="train-job-h">3. Training progress</h2>
          <p className="muted">{live ? 'Live updates on.' : 'Live updates reconnecting; checking every 2 s.'}</p>
          <ErrorBox message={jobError} />
          {job ? <JobView job={job} /> : <Loading label="Loading the job…" />}
          <ErrorBox message={cancel.error} />
          {job && !isFinished(job.status) && (
            <button type="button" className="btn btn-danger" disabled={cancel.pending || job.cancel_requested} onClick={() => cancel.run(job.id)}>
              {job.cancel_requested ? 'Cancelling at the next epoch…' : 'Cancel training'}
            </button>
          )}
          {job?.status === 'completed' && (
            <p>
              Done. <a href="#models">See the model in Models</a>.
            </p>
          )}
        </section>
      )}
    </>
  );
}
