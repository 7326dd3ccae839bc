/**
 * The list of drift reports, as both Events and Models show it. A report's
 * number links to `#events?report=<id>`, which Events reads to open it, so
 * selecting a report is the same link from either tab.
 */
import type { DriftSummary } from '@/api/types';
import { formatDate, percent } from '@/lib/format';

const COLUMNS = ['Report', 'Model', 'Verdict', 'Drifted share', 'Rows', 'Trigger', 'Created'];

export function DriftReportTable({ items, selected = null }: { items: DriftSummary[]; selected?: number | null }) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            {COLUMNS.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {items.map((r) => (
            <tr key={r.id} aria-selected={r.id === selected} data-testid="drift-row">
              <td>
                {/* aria-label, not a visually hidden span: an absolutely positioned span widens the
                    link's box beyond its cell, and a click at its centre lands on another cell. */}
                <a href={`#events?report=${r.id}`} aria-label={`Drift report #${r.id}`}>
                  #{r.id}
                </a>
              </td>
              <td>
                {r.model_key} {r.version}
              </td>
              <td>{r.verdict}</td>
              <td>{percent(r.drifted_share)}</td>
              <td>{r.sample_size}</td>
              <td>{r.trigger}</td>
              <td>{formatDate(r.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
