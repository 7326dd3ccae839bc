/**
 * A model's monitoring charts (Models tab, loaded on demand): estimated and realised
 * accuracy over its drift reports against the holdout accuracy, each feature's PSI
 * against the threshold, and the latest report's per-bin shares (opened on request).
 */
import { useState } from 'react';
import type { DriftSummary } from '@/api/types';
import { accuracySeries, psiSeries } from '@/lib/monitoring';
import { DriftReportView } from './DriftReportView';
import { LineChart } from './LineChart';

const COLORS = ['var(--accent)', 'var(--warning)', 'var(--success)', 'var(--danger)', 'var(--chart-5)', 'var(--chart-6)'];

export default function ModelMonitoring({ modelKey, reports }: { modelKey: string; reports: DriftSummary[] }) {
  const acc = accuracySeries(reports);
  const psi = psiSeries(reports, COLORS.length);
  const [open, setOpen] = useState(false);
  const latest = reports.reduce<DriftSummary | null>((a, r) => (!a || r.created_at > a.created_at ? r : a), null);
  const xLabel = `${acc.unit} since the first report`;
  const hasAccuracy = [...acc.estimated, ...acc.realised].some((p) => p.y !== null);
  const threshold = psi.threshold;
  return (
    <>
      <h3>Accuracy over time</h3>
      {hasAccuracy ? (
        <LineChart
          testid="accuracy-chart"
          label={`Estimated and realised accuracy of ${modelKey} over ${reports.length} drift reports, with the holdout accuracy as reference`}
          xLabel={xLabel}
          yDomain={[0, 1]}
          band={{ name: 'estimate interval', color: 'var(--accent)', points: acc.interval }}
          series={[
            { name: 'estimated', color: 'var(--accent)', points: acc.estimated },
            { name: 'realised', color: 'var(--success)', points: acc.realised },
            { name: 'holdout (reference)', color: 'var(--text-muted)', points: acc.holdout, dash: '6 4' },
          ]}
        />
      ) : (
        <p className="muted">No accuracy yet: the reports had no logged predictions.</p>
      )}
      <h3>Feature PSI over time</h3>
      {psi.features.length ? (
        <>
          <LineChart
            testid="psi-chart"
            label={`PSI of the ${psi.features.length} most drifted features of ${modelKey}${threshold !== null ? `, threshold ${threshold}` : ''}`}
            xLabel={xLabel}
            series={[
              ...psi.features.map((f, i) => ({ name: f.name, color: COLORS[i], points: f.points })),
              ...(threshold !== null && psi.features[0].points.length
                ? [{ name: `threshold ${threshold}`, color: 'var(--text-muted)', dash: '6 4', points: psi.features[0].points.map((p) => ({ x: p.x, y: threshold })) }]
                : []),
            ]}
          />
          {psi.hidden > 0 && <p className="muted">The {psi.features.length} features with the highest PSI are drawn; {psi.hidden} more are in each report.</p>}
        </>
      ) : (
        <p className="muted">No per-feature PSI in these reports.</p>
      )}
      {latest && (
        <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
          <summary>Per-feature distributions of the latest report (#{latest.id})</summary>
          {open && <DriftReportView id={latest.id} />}
        </details>
      )}
    </>
  );
}
