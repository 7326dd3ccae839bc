/**
 * One drift report: its window, accuracy and each feature's PSI, JS, severity and
 * reference/current shares per bin. Events opens it from a report link; Models
 * shows the latest report of a model with it.
 */
import { drift } from '@/api/endpoints';
import type { DriftFeature } from '@/api/types';
import { formatDate, percent } from '@/lib/format';
import { realisedOf } from '@/lib/monitoring';
import { useApi } from '@/lib/useApi';
import { ErrorBox, Loading } from './Status';

const MAX_BINS = 8;

/** Reference and current share of each bin, the bin's label beside its pair of bars. */
export function FeatureBars({ f }: { f: DriftFeature }) {
  const ref = f.reference_shares ?? [];
  const cur = f.current_shares ?? [];
  const labels = f.bin_labels ?? [];
  const total = Math.max(ref.length, cur.length);
  const n = Math.min(MAX_BINS, total);
  if (!n) return null;
  const bins = Array.from({ length: n }, (_, i) => ({ label: labels[i] ?? `bin ${i + 1}`, ref: ref[i] ?? 0, cur: cur[i] ?? 0 }));
  const text = bins.map((b) => `${b.label}: reference ${percent(b.ref)}, current ${percent(b.cur)}`).join('; ');
  return (
    <div className="bars" role="img" aria-label={`Shares of ${f.name} per bin. ${text}${total > n ? `; ${total - n} more bins` : ''}`}>
      {bins.map((b, i) => (
        <div key={i} className="bar-row" title={`${b.label}: reference ${percent(b.ref)}, current ${percent(b.cur)}`}>
          <span className="bar-label">{b.label}</span>
          <span className="bar-pair">
            <span className="bar bar-ref" style={{ width: `${b.ref * 100}%` }} />
            <span className="bar bar-cur" style={{ width: `${b.cur * 100}%` }} />
          </span>
        </div>
      ))}
      {total > n && <span className="muted">+{total - n} more bins</span>}
    </div>
  );
}

export function BarsLegend() {
  return (
    <p className="legend">
      <span>
        <span className="swatch bar-ref" aria-hidden="true" /> reference
      </span>
      <span>
        <span className="swatch bar-cur" aria-hidden="true" /> current
      </span>
    </p>
  );
}

const num = (v: number | null | undefined) => (typeof v === 'number' ? v.toFixed(3) : '—');

export function DriftReportView({ id }: { id: number }) {
  const r = useApi((signal) => drift.report(id, signal), [id]);
  if (r.error) return <ErrorBox message={r.error} onRetry={r.reload} />;
  if (!r.data) return <Loading label="Loading the report…" />;
  const d = r.data;
  const features = d.features as unknown as DriftFeature[];
  const realised = realisedOf(d);
  return (
    <div data-testid="drift-report">
      <h3>
        Report #{d.id}: {d.model_key} {d.version} — {d.verdict}
      </h3>
      <p className="muted">
        {d.sample_size} rows, {percent(d.drifted_share)} of features drifted · {formatDate(d.window_start, '—')} → {formatDate(d.window_end, '—')} ·{' '}
        {d.trigger}
      </p>
      <p className="muted">
        Accuracy: holdout {percent(d.holdout_accuracy)} · estimated {percent(d.estimated_accuracy)}
        {d.estimated_accuracy_interval?.length === 2 && ` (${percent(d.estimated_accuracy_interval[0])}–${percent(d.estimated_accuracy_interval[1])})`} · realised{' '}
        {realised ? `${percent(realised.accuracy)} on ${realised.rows} labelled rows` : '— (no feedback)'}
        {d.performance?.dropped && <span className="badge badge-bad"> accuracy drop</span>}
      </p>
      <BarsLegend />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Feature</th>
              <th scope="col">Type</th>
              <th scope="col">PSI</th>
              <th scope="col">JS</th>
              <th scope="col">Severity</th>
              <th scope="col">Reference vs current</th>
            </tr>
          </thead>
          <tbody>
            {features.map((f) => (
              <tr key={f.name}>
                <td>{f.name}</td>
                <td>{f.type ?? ''}</td>
                <td>{num(f.psi)}</td>
                <td>{num(f.js)}</td>
                <td>{f.severity ?? 'none'}</td>
                <td>
                  <FeatureBars f={f} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
