/** Pure helpers for the hand-written SVG charts (tested). */

export type Scale = (v: number) => number;

/** Linear map of [d0, d1] onto [r0, r1]; a flat domain maps to the middle. */
export function linearScale([d0, d1]: [number, number], [r0, r1]: [number, number]): Scale {
  if (!Number.isFinite(d0) || !Number.isFinite(d1) || d1 === d0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** [min, max] of the finite values, or the fallback. */
export function extent(values: number[], fallback: [number, number] = [0, 1]): [number, number] {
  const v = values.filter(Number.isFinite);
  if (!v.length) return fallback;
  return [Math.min(...v), Math.max(...v)];
}

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^n). */
export function niceTicks(lo: number, hi: number, count = 4): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  if (lo > hi) [lo, hi] = [hi, lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

/** SVG path "M x y L x y …" through the points (non-finite y values break the line). */
export function linePath(points: { x: number; y: number | null }[], sx: Scale, sy: Scale): string {
  let d = '';
  let pen = false;
  for (const p of points) {
    if (p.y === null || !Number.isFinite(p.y)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${sx(p.x).toFixed(1)} ${sy(p.y).toFixed(1)}`;
    pen = true;
  }
  return d;
}

export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return Number(v.toPrecision(2)).toString();
}

/**
 * Sparkline path of counts (oldest first) in a width × height box: one point per
 * count, the baseline at the bottom, the largest count at the top. All zeros draw
 * a flat line on the baseline, not a line through the middle.
 */
export function sparklinePath(counts: number[], width: number, height: number, pad = 1): string {
  if (!counts.length) return '';
  const max = Math.max(0, ...counts.filter(Number.isFinite));
  const sx = counts.length === 1 ? () => width / 2 : linearScale([0, counts.length - 1], [pad, width - pad]);
  const sy = max > 0 ? linearScale([0, max], [height - pad, pad]) : () => height - pad;
  return linePath(
    counts.map((c, i) => ({ x: i, y: Number.isFinite(c) ? c : null })),
    sx,
    sy,
  );
}

/** Closed SVG path of a band: along the highs, back along the lows (an interval around a line). */
export function bandPath(points: { x: number; low: number; high: number }[], sx: Scale, sy: Scale): string {
  if (points.length < 2) return '';
  const top = points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)} ${sy(p.high).toFixed(1)}`);
  const bottom = [...points].reverse().map((p) => `L${sx(p.x).toFixed(1)} ${sy(p.low).toFixed(1)}`);
  return `${top.join('')}${bottom.join('')}Z`;
}
