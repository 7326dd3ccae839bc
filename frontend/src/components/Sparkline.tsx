/** Predictions per hour as a tiny SVG line (Overview); the numbers are in its label. */
import { sparklinePath } from '@/lib/chart';

const W = 120;
const H = 28;

export function Sparkline({ counts, label }: { counts: number[]; label: string }) {
  return (
    <svg className="sparkline" viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={label} data-testid="sparkline">
      <line x1={0} x2={W} y1={H - 1} y2={H - 1} className="grid" />
      <path d={sparklinePath(counts, W, H, 2)} fill="none" stroke="var(--accent)" strokeWidth={1.5} />
    </svg>
  );
}
