/** A small hand-written SVG line chart (a few series over x, optional dashed reference lines and a band). */
import { bandPath, extent, formatTick, linearScale, linePath, niceTicks } from '@/lib/chart';

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number | null }[];
  /** stroke-dasharray: reference lines (holdout accuracy, a threshold) are dashed. */
  dash?: string;
}

export interface Band {
  name: string;
  color: string;
  points: { x: number; low: number; high: number }[];
}

const W = 560;
const H = 200;
const M = { l: 44, r: 12, t: 10, b: 28 };

export function LineChart({
  series,
  label,
  xLabel,
  yDomain,
  band,
  testid,
}: {
  series: Series[];
  label: string;
  xLabel: string;
  yDomain?: [number, number];
  band?: Band;
  testid?: string;
}) {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y): y is number => y !== null);
  const [x0, x1] = extent(xs, [0, 1]);
  const [y0, y1] = yDomain ?? extent(ys, [0, 1]);
  const sx = linearScale([x0, x1], [M.l, W - M.r]);
  const sy = linearScale([y0, y1], [H - M.b, M.t]);
  const yt = niceTicks(y0, y1, 4);
  const xt = niceTicks(x0, x1, 6);
  return (
    <figure className="chart" data-testid={testid}>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} preserveAspectRatio="xMidYMid meet">
        {yt.map((t) => (
          <g key={`y${t}`}>
            <line x1={M.l} x2={W - M.r} y1={sy(t)} y2={sy(t)} className="grid" />
            <text x={M.l - 6} y={sy(t) + 4} textAnchor="end">
              {formatTick(t)}
            </text>
          </g>
        ))}
        {xt.map((t) => (
          <text key={`x${t}`} x={sx(t)} y={H - M.b + 16} textAnchor="middle">
            {formatTick(t)}
          </text>
        ))}
        <text x={W - M.r} y={H - 2} textAnchor="end" className="axis-label">
          {xLabel}
        </text>
        {band && <path d={bandPath(band.points, sx, sy)} fill={band.color} opacity={0.18} stroke="none" />}
        {series.map((s) => (
          <g key={s.name}>
            <path d={linePath(s.points, sx, sy)} fill="none" stroke={s.color} strokeWidth={2} strokeDasharray={s.dash} />
            {/* Isolated values (a single report, or gaps on both sides) are dots: a line needs two. */}
            {s.points.map((p, i) =>
              p.y !== null && (s.points[i - 1]?.y ?? null) === null && (s.points[i + 1]?.y ?? null) === null ? (
                <circle key={i} cx={sx(p.x)} cy={sy(p.y)} r={3} fill={s.color} />
              ) : null,
            )}
          </g>
        ))}
      </svg>
      <figcaption className="legend">
        {series.map((s) => (
          <span key={s.name}>
            <span className="swatch" style={{ background: s.color }} aria-hidden="true" /> {s.name}
          </span>
        ))}
        {band && band.points.length > 1 && (
          <span>
            <span className="swatch" style={{ background: band.color, opacity: 0.4 }} aria-hidden="true" /> {band.name}
          </span>
        )}
      </figcaption>
    </figure>
  );
}
