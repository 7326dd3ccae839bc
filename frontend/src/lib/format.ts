/** Display helpers (pure; tested). */

export function formatUptime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * ISO timestamp → local "YYYY-MM-DD HH:MM"; null → the fallback ("never").
 * Deliberately not Intl/toLocaleString: Chrome's first Intl date format loads
 * ICU data, a 65 ms main-thread task (260 ms on Lighthouse's mobile CPU) on
 * the first render of every tab that shows a date.
 */
export function formatDate(iso: string | null | undefined, fallback = 'never'): string {
  if (!iso) return fallback;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * A share in [0, 1] → "12.3%"; anything not a finite number → "—". The one
 * percent format of the dashboard (metrics, confidences, drifted shares), so
 * the same value reads the same in every tab.
 */
export function percent(share: unknown): string {
  return typeof share === 'number' && Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : '—';
}

export function formatMemory(mb: number | null | undefined): string {
  if (mb === null || mb === undefined || !Number.isFinite(mb)) return '';
  return mb >= 1024 ? `${(mb / 1024).toFixed(mb % 1024 === 0 ? 0 : 1)} GB` : `${mb} MB`;
}

export type TokenState = 'active' | 'revoked' | 'expired';

export function tokenState(
  t: { is_active: boolean; revoked_at: string | null; expires_at: string | null },
  now: number = Date.now(),
): TokenState {
  if (t.revoked_at) return 'revoked';
  if (t.expires_at && new Date(t.expires_at).getTime() <= now) return 'expired';
  return t.is_active ? 'active' : 'revoked';
}
