import { renderToStaticMarkup } from 'react-dom/server';
import { createElement } from 'react';
import { describe, expect, it } from 'vitest';
import type { DriftSummary } from '@/api/types';
import { FeatureBars } from '@/components/DriftReportView';
import { bandPath, sparklinePath } from '@/lib/chart';
import { accuracySeries, importanceRows, psiSeries, realisedOf, timeAxis } from '@/lib/monitoring';

const report = (id: number, hoursAfter: number, extra: Partial<DriftSummary> = {}): DriftSummary => ({
  id,
  model_key: 'm',
  version: '1.0.0',
  created_at: new Date(Date.UTC(2025, 0, 1) + hoursAfter * 3.6e6).toISOString(),
  verdict: 'no_drift',
  drifted_share: 0,
  sample_size: 100,
  trigger: 'manual',
  job_id: null,
  ...extra,
});

describe('sparklinePath', () => {
  it('puts the largest count at the top and zero on the baseline, one point per hour', () => {
    expect(sparklinePath([0, 5, 10], 20, 10, 0)).toBe('M0.0 10.0L10.0 5.0L20.0 0.0');
  });
  it('draws all-zero activity as a flat line on the baseline, not through the middle', () => {
    expect(sparklinePath([0, 0], 10, 10, 1)).toBe('M1.0 9.0L9.0 9.0');
  });
  it('draws nothing without counts and a centred point for one count', () => {
    expect(sparklinePath([], 10, 10)).toBe('');
    expect(sparklinePath([3], 10, 10, 0)).toBe('M5.0 0.0');
  });
});

describe('bandPath', () => {
  it('runs along the highs and back along the lows, closed', () => {
    const id = (v: number) => v;
    expect(bandPath([{ x: 0, low: 1, high: 3 }, { x: 2, low: 2, high: 4 }], id, id)).toBe('M0.0 3.0L2.0 4.0L2.0 2.0L0.0 1.0Z');
    expect(bandPath([{ x: 0, low: 1, high: 3 }], id, id)).toBe('');
  });
});

describe('drift report series', () => {
  it('orders reports by time and measures x in hours, or in days past three days', () => {
    const hours = timeAxis([report(2, 6), report(1, 0)]);
    expect(hours.sorted.map((r) => r.id)).toEqual([1, 2]);
    expect(hours).toMatchObject({ xs: [0, 6], unit: 'hours' });
    expect(timeAxis([report(1, 0), report(2, 96)])).toMatchObject({ xs: [0, 4], unit: 'days' });
  });

  it('reads realised accuracy from the report JSON and ignores malformed values', () => {
    expect(realisedOf({ realised_accuracy: { labelled_rows: 40, accuracy: 0.8 } })).toEqual({ accuracy: 0.8, rows: 40 });
    expect(realisedOf({ realised_accuracy: null })).toBeNull();
    expect(realisedOf({ realised_accuracy: { labelled_rows: 3, accuracy: null } })).toBeNull();
    expect(realisedOf({})).toBeNull();
  });

  it('builds estimated, realised and holdout lines, with gaps where a report has no value', () => {
    const s = accuracySeries([
      report(1, 0, { estimated_accuracy: 0.82, estimated_accuracy_interval: [0.78, 0.86], holdout_accuracy: 0.84 }),
      report(2, 1, { estimated_accuracy: null, holdout_accuracy: 0.84 }),
      report(3, 2, { estimated_accuracy: 0.7, estimated_accuracy_interval: [0.65, 0.75], realised_accuracy: { labelled_rows: 50, accuracy: 0.68 }, holdout_accuracy: 0.9 }),
    ]);
    expect(s.estimated.map((p) => p.y)).toEqual([0.82, null, 0.7]);
    expect(s.realised.map((p) => p.y)).toEqual([null, null, 0.68]);
    expect(s.holdout.map((p) => p.y)).toEqual([0.84, 0.84, 0.9]); // a retrain moved the reference
    expect(s.interval).toEqual([
      { x: 0, low: 0.78, high: 0.86 },
      { x: 2, low: 0.65, high: 0.75 },
    ]);
  });

  it('draws the features with the highest PSI peak and keeps the latest threshold', () => {
    const s = psiSeries(
      [
        report(1, 0, { feature_psi: { age: 0.01, city: 0.3, job: 0.05 }, psi_threshold: 0.1 }),
        report(2, 1, { feature_psi: { age: 0.02, city: 0.02, job: null }, psi_threshold: 0.2 }),
        report(3, 2, {}),
      ],
      2,
    );
    expect(s.features.map((f) => f.name)).toEqual(['city', 'job']);
    expect(s.features[0].points.map((p) => p.y)).toEqual([0.3, 0.02, null]);
    expect(s.features[0].latest).toBeNull(); // the last report had no PSI: not carried forward
    expect(s.threshold).toBe(0.2);
    expect(s.hidden).toBe(1);
    expect(psiSeries([report(1, 0)]).threshold).toBeNull();
  });

  it('ranks permutation importance by accuracy drop and scales bars to the largest', () => {
    expect(importanceRows({ age: 0.02, city: 0.08, noise: -0.01, bad: 'x' })).toEqual([
      { name: 'city', drop: 0.08, share: 1 },
      { name: 'age', drop: 0.02, share: 0.25 },
      { name: 'noise', drop: -0.01, share: 0 },
    ]);
    expect(importanceRows(undefined)).toEqual([]);
    expect(importanceRows([0.1])).toEqual([]);
    expect(importanceRows({ a: 0 })).toEqual([{ name: 'a', drop: 0, share: 0 }]);
  });
});

describe('FeatureBars', () => {
  it('labels each bin with its name and says the shares in its accessible label', () => {
    const html = renderToStaticMarkup(
      createElement(FeatureBars, { f: { name: 'age', bin_labels: ['< 30', '≥ 30'], reference_shares: [0.6, 0.4], current_shares: [0.25, 0.75] } }),
    );
    expect(html).toContain('<span class="bar-label">&lt; 30</span>');
    expect(html).toContain('aria-label="Shares of age per bin. &lt; 30: reference 60.0%, current 25.0%; ≥ 30: reference 40.0%, current 75.0%"');
    expect(html).toContain('width:75%');
  });
});
