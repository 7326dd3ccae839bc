'use client';
/**
 * Predict: pick a model (and version), paste JSON records or upload a file,
 * run the async job (POST /predict), follow its progress live, see the first
 * 100 results, export JSON/CSV, and send true labels back as feedback.
 */
import { useEffect, useState } from 'react';
import { models, predict } from '@/api/endpoints';
import type { PredictJob } from '@/api/types';
import { percent } from '@/lib/format';
import { useAction, useApi } from '@/lib/useApi';
import { useJob } from '@/lib/useJob';
import { FileDrop } from '../FileDrop';
import { JobView } from '../JobView';
import { Empty, ErrorBox, Loading, Notice } from '../Status';
import type { TabProps } from './registry';

/** Parse pasted records: a JSON list of objects, one object, or JSON Lines. */
export function parseRecords(text: string): Record<string, unknown>[] {
  const t = text.trim();
  if (!t) throw new Error('Paste at least one record.');
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    try {
      v = t.split(/\n+/).filter((l) => l.trim()).map((l) => JSON.parse(l));
    } catch {
      throw new Error('Not valid JSON: paste a list of objects, e.g. [{"age": 39, …}].');
    }
  }
  const list = Array.isArray(v) ? v : [v];
  if (!list.length || list.some((r) => !r || typeof r !== 'object' || Array.isArray(r))) throw new Error('Each record must be a JSON object.');
  return list as Record<string, unknown>[];
}

export default function PredictTab(_: TabProps) {
  const list = useApi((signal) => models.list(signal));
  const [modelKey, setModelKey] = useState('');
  const [version, setVersion] = useState('');
  const [mode, setMode] = useState<'file' | 'json'>('file');
  const [text, setText] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  const [inputError, setInputError] = useState<string | null>(null);
  const detail = useApi((signal) => (modelKey ? models.get(modelKey, signal) : Promise.resolve(null)), [modelKey]);
  const start = useAction(async () => {
    if (mode === 'file') {
      if (!file) throw new Error('Choose a file first.');
      return predict.startFile(modelKey, version || null, file);
    }
    return predict.start(modelKey, version || null, parseRecords(text));
  });
  const { job, live } = useJob(jobId);

  useEffect(() => {
    if (!modelKey && list.data?.items.length) setModelKey(list.data.items[0].model_key);
  }, [list.data, modelKey]);

  async function onRun() {
    setInputError(null);
    if (!modelKey) return setInputError('Choose a model.');
    const r = await start.run();
    if (r.ok) setJobId(r.value.job_id);
  }

  return (
    <>
      <section className="card" aria-labelledby="predict-h">
        <h2 id="predict-h">Predict</h2>
        <ErrorBox message={list.error} onRetry={list.reload} />
        {list.loading && !list.data ? (
          <Loading label="Loading models…" />
        ) : !list.data?.items.length ? (
          <Empty>
            No models yet. <a href="#training">Train one</a>.
          </Empty>
        ) : (
          <>
            <div className="form-row">
              <div className="field">
                <label htmlFor="pr-model">Model</label>
                <select id="pr-model" value={modelKey} onChange={(e) => (setModelKey(e.target.value), setVersion(''))}>
                  {list.data.items.map((m) => (
                    <option key={m.model_key}>{m.model_key}</option>
                  ))}
                </select>
              </div>
              <div className="field">
                <label htmlFor="pr-version">Version</label>
                <select id="pr-version" value={version} onChange={(e) => setVersion(e.target.value)}>
                  <option value="">Active version</option>
                  {detail.data?.versions.map((v) => (
                    <option key={v.version}>{v.version}</option>
                  ))}
                </select>
              </div>
              <fieldset className="field">
                <legend>Input</legend>
                <label>
                  <input type="radio" name="pr-mode" checked={mode === 'file'} onChange={() => setMode('file')} /> File
                </label>{' '}
                <label>
                  <input type="radio" name="pr-mode" checked={mode === 'json'} onChange={() => setMode('json')} /> JSON records
                </label>
              </fieldset>
            </div>
            {mode === 'file' ? (
              <FileDrop id="pr-file" label="File to predict" file={file} onFile={setFile} accept=".csv,.json,.jsonl,.parquet,.txt" />
            ) : (
              <div className="field">
                <label htmlFor="pr-json">Records (JSON list of objects)</label>
                <textarea id="pr-json" rows={6} value={text} onChange={(e) => setText(e.target.value)} placeholder='[{"age": 39, "workclass": "State-gov"}]' />
              </div>
            )}
            <ErrorBox message={inputError ?? start.error} />
            <button type="button" className="btn btn-primary" onClick={onRun} disabled={start.pending}>
              {start.pending ? 'Starting…' : 'Run prediction'}
            </button>
          </>
        )}
      </section>
      {jobId && (
        <section className="card" aria-labelledby="pr-job-h">
          <h2 id="pr-job-h">Prediction job</h2>
          <p className="muted">{live ? 'Live updates on.' : 'Live updates reconnecting; checking every 2 s.'}</p>
          {job ? <JobView job={job} /> : <Loading />}
          {job?.status === 'completed' && <Results jobId={jobId} />}
        </section>
      )}
    </>
  );
}

function Results({ jobId }: { jobId: string }) {
  const res = useApi((signal) => predict.get(jobId, signal), [jobId]);
  const [labels, setLabels] = useState<Record<number, string>>({});
  const fb = useAction(predict.feedback);
  const [notice, setNotice] = useState<string | null>(null);
  const data: PredictJob | undefined = res.data;
  if (res.error) return <ErrorBox message={res.error} onRetry={res.reload} />;
  if (!data) return <Loading label="Loading results…" />;
  const rows = data.results ?? [];
  const classes = [...new Set(rows.flatMap((r) => Object.keys(r.probabilities)))];
  async function send() {
    setNotice(null);
    const items = Object.entries(labels)
      .filter(([, l]) => l)
      .map(([row, label]) => ({ row: Number(row), label }));
    if (!items.length) return;
    const r = await fb.run(jobId, items);
    if (r.ok)
      setNotice(
        `${r.value.labelled_rows} labels saved${r.value.realised_accuracy !== null ? `; realised accuracy ${percent(r.value.realised_accuracy)}` : ''}.`,
      );
  }
  return (
    <>
      <p>
        {data.total ?? rows.length} rows predicted{rows.length < (data.total ?? 0) ? `; the first ${rows.length} are shown` : ''}.{' '}
        <a className="btn btn-sm" href={predict.exportUrl(jobId, 'csv')} download>
          Export CSV
        </a>{' '}
        <a className="btn btn-sm" href={predict.exportUrl(jobId, 'json')} download>
          Export JSON
        </a>
      </p>
      <div className="table-wrap">
        <table data-testid="predict-results">
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">Prediction</th>
              <th scope="col">Confidence</th>
              <th scope="col">True label (feedback)</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                <td>{i}</td>
                <td>{String(r.prediction)}</td>
                <td>{percent(r.confidence)}</td>
                <td>
                  <select aria-label={`True label of row ${i}`} value={labels[i] ?? ''} onChange={(e) => setLabels((l) => ({ ...l, [i]: e.target.value }))}>
                    <option value="">—</option>
                    {classes.map((c) => (
                      <option key={c}>{c}</option>
                    ))}
                  </select>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ErrorBox message={fb.error} />
      <Notice message={notice} />
      <button type="button" className="btn" onClick={send} disabled={fb.pending || !Object.values(labels).some(Boolean)}>
        Send feedback labels
      </button>
    </>
  );
}
