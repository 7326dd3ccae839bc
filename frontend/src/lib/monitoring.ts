/**
 * Pure shaping of drift reports and version metrics for the Overview and Models
 * charts (tested in tests/unit/monitoring.test.ts).
 */
import type { DriftSummary } from '@/api/types';

export interface Point {
  x: number;
  y: number | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The realised accuracy of a report: {labelled_rows, accuracy} in the JSON, or null. */
export function realisedOf(r: Pick<DriftSummary, 'realised_accuracy'>): { accuracy: number; rows: number } | null {
  const ra = r.realised_accuracy;
  const accuracy = num(ra?.accuracy);
  return accuracy === null ? null : { accuracy, rows: num(ra?.labelled_rows) ?? 0 };
}

/** Reports oldest first, and the x of each in days (spans over 3 days) or hours since the first. */
export function timeAxis(reports: DriftSummary[]): { sorted: DriftSummary[]; xs: number[]; unit: 'hours' | 'days' } {
  const sorted = [...reports].sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id - b.id));
  const t = sorted.map((r) => new Date(r.created_at).getTime());
  const span = t.length ? (t[t.length - 1] - t[0]) / 3.6e6 : 0;
  const unit = span > 72 ? 'days' : 'hours';
  const per = unit === 'days' ? 8.64e7 : 3.6e6;
  return { sorted, xs: t.map((v) => (v - t[0]) / per), unit };
}

export interface AccuracySeries {
  estimated: Point[];
  realised: Point[];
  holdout: Point[];
  /** [low, high] of each estimate, for a band. */
  interval: { x: number; low: number; high: number }[];
  unit: 'hours' | 'days';
}

/**
 * Estimated and realised accuracy per report, and the checked version's holdout
 * accuracy as the reference (a step when a retrain changed the version). Reports
 * without a value leave a gap: the line does not bridge a check that had no predictions.
 */
export function accuracySeries(reports: DriftSummary[]): AccuracySeries {
  const { sorted, xs, unit } = timeAxis(reports);
  const interval: AccuracySeries['interval'] = [];
  sorted.forEach((r, i) => {
    const [low, high] = (r.estimated_accuracy_interval ?? []).map(num);
    if (low !== null && high !== null && low !== undefined && high !== undefined) interval.push({ x: xs[i], low, high });
  });
  return {
    estimated: sorted.map((r, i) => ({ x: xs[i], y: num(r.estimated_accuracy) })),
    realised: sorted.map((r, i) => ({ x: xs[i], y: realisedOf(r)?.accuracy ?? null })),
    holdout: sorted.map((r, i) => ({ x: xs[i], y: num(r.holdout_accuracy) })),
    interval,
    unit,
  };
}

export interface PsiSeries {
  features: { name: string; points: Point[]; latest: number | null; peak: number }[];
  threshold: number | null;
  unit: 'hours' | 'days';
  /** Features not drawn (only the `max` highest peaks are). */
  hidden: number;
}

/**
 * Each feature's PSI over the reports, the `max` features with the highest peak
 * first (a chart of 40 lines reads as noise), and the PSI threshold of the latest
 * report that states one.
 */
export function psiSeries(reports: DriftSummary[], max = 6): PsiSeries {
  const { sorted, xs, unit } = timeAxis(reports);
  const names = new Set<string>();
  for (const r of sorted) for (const n of Object.keys(r.feature_psi ?? {})) names.add(n);
  const all = [...names].map((name) => {
    const points = sorted.map((r, i) => ({ x: xs[i], y: num(r.feature_psi?.[name]) }));
    const ys = points.map((p) => p.y).filter((y): y is number => y !== null);
    return { name, points, latest: points[points.length - 1]?.y ?? null, peak: ys.length ? Math.max(...ys) : 0 };
  });
  all.sort((a, b) => b.peak - a.peak || a.name.localeCompare(b.name));
  let threshold: number | null = null;
  for (const r of sorted) threshold = num(r.psi_threshold) ?? threshold;
  return { features: all.slice(0, max), threshold, unit, hidden: Math.max(0, all.length - max) };
}

/**
 * A version's permutation importance ({feature: accuracy drop}) as rows, largest
 * drop first; `share` scales bars to the largest positive drop. Anything that is
 * not a {name: number} map gives no rows.
 */
export function importanceRows(value: unknown): { name: string; drop: number; share: number }[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const rows = Object.entries(value as Record<string, unknown>)
    .map(([name, v]) => ({ name, drop: num(v) }))
    .filter((r): r is { name: string; drop: number } => r.drop !== null)
    .sort((a, b) => b.drop - a.drop || a.name.localeCompare(b.name));
  const top = Math.max(0, ...rows.map((r) => r.drop));
  return rows.map((r) => ({ ...r, share: top > 0 ? Math.max(0, r.drop) / top : 0 }));
}
