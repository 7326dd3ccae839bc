import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { health } from '@/api/endpoints';
import type { Health, User } from '@/api/types';
import { curlExamples } from '@/components/tabs/AboutTab';
import OverviewTab, { HealthCards } from '@/components/tabs/OverviewTab';
import { tabFromHash, TABS, visibleTabs } from '@/components/tabs/registry';
import { formatDate, formatMemory, formatUptime, percent, tokenState } from '@/lib/format';
import { safeNext } from '@/lib/safeNext';

const user = (tier: User['tier']): User => ({
  id: 1,
  username: 'ann',
  tier,
  is_active: true,
  created_at: '2025-01-01T00:00:00Z',
  last_login_at: null,
});

describe('tab registry and hash routing', () => {
  it('admins see Users and Admin panel; users do not', () => {
    expect(visibleTabs(user('admin')).map((t) => t.id)).toEqual(['overview', 'training', 'models', 'predict', 'jobs', 'events', 'profile', 'users', 'about', 'admin']);
    expect(visibleTabs(user('user')).map((t) => t.id)).toEqual(['overview', 'training', 'models', 'predict', 'jobs', 'events', 'profile', 'about']);
    expect(visibleTabs(null)).toEqual([]);
  });

  it('maps the hash to a tab, falling back to Overview for unknown or forbidden tabs', () => {
    expect(tabFromHash('#profile', user('user'))?.id).toBe('profile');
    expect(tabFromHash('#/users', user('admin'))?.id).toBe('users');
    expect(tabFromHash('#USERS', user('admin'))?.id).toBe('users');
    expect(tabFromHash('#users', user('user'))?.id).toBe('overview');
    expect(tabFromHash('#nope', user('user'))?.id).toBe('overview');
    expect(tabFromHash('', user('user'))?.id).toBe('overview');
    expect(tabFromHash('#events?report=3', user('user'))?.id).toBe('events');
  });

  it('tab ids are never API paths (tabs live in the hash, not in routes)', () => {
    for (const t of TABS) expect(t.id).toMatch(/^[a-z]+$/);
  });
});

describe('Overview health cards', () => {
  const base: Health = {
    status: 'ok',
    version: '0.12.0',
    uptime_s: 93784,
    database: { ok: true, backend: 'sqlite' },
    gpu: { available: true, name: 'NVIDIA H100', memory_mb: 81920 },
  };

  it('shows status, version, uptime, database and GPU', () => {
    const html = renderToStaticMarkup(<HealthCards h={base} />);
    expect(html).toContain('Operational');
    expect(html).toContain('0.12.0');
    expect(html).toContain('1d 2h 3m');
    expect(html).toContain('SQLite');
    expect(html).toContain('NVIDIA H100');
    expect(html).toContain('80 GB');
  });

  it('shows a degraded service, an unreachable database and no GPU', () => {
    const html = renderToStaticMarkup(
      <HealthCards
        h={{ ...base, status: 'degraded', database: { ok: false, backend: 'postgresql' }, gpu: { available: false, name: null, memory_mb: null } }}
      />,
    );
    expect(html).toContain('Degraded');
    expect(html).toContain('PostgreSQL');
    expect(html).toContain('Not reachable');
    expect(html).toContain('Training runs on the CPU');
  });

  it('copes with a server that does not report its GPU', () => {
    const { gpu: _, ...noGpu } = base;
    expect(renderToStaticMarkup(<HealthCards h={noGpu} />)).toContain('Unknown');
  });

  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("opens with the shell's recent /health answer instead of placeholders, and not with a stale one", async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(base), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await health();
    const render = () => renderToStaticMarkup(<OverviewTab user={user('user')} onUserChange={() => undefined} />);
    const fresh = render();
    expect(fresh).toContain('data-testid="card-status"');
    expect(fresh).not.toContain('Loading…');
    vi.useFakeTimers({ now: Date.now() + 60_000 });
    expect(render()).toContain('Loading…');
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('says the GPU is being checked while the first probe runs', () => {
    const html = renderToStaticMarkup(<HealthCards h={{ ...base, gpu: { available: null, name: null, memory_mb: null, source: 'probing' } }} />);
    expect(html).toContain('Checking…');
  });
});

describe('formatting and small logic', () => {
  it('formats uptime and memory', () => {
    expect(formatUptime(5)).toBe('5s');
    expect(formatUptime(125)).toBe('2m 5s');
    expect(formatUptime(3 * 3600 + 60)).toBe('3h 1m');
    expect(formatUptime(-1)).toBe('—');
    expect(formatMemory(512)).toBe('512 MB');
    expect(formatMemory(1536)).toBe('1.5 GB');
    expect(formatMemory(null)).toBe('');
  });

  it('formats every share as a percentage with one decimal', () => {
    expect(percent(0.123)).toBe('12.3%');
    expect(percent(1)).toBe('100.0%');
    expect(percent(0)).toBe('0.0%');
    expect(percent(null)).toBe('—');
    expect(percent(Number.NaN)).toBe('—');
  });

  it('formats dates as local YYYY-MM-DD HH:MM without Intl', () => {
    const d = new Date(2026, 0, 5, 7, 3); // local time
    expect(formatDate(d.toISOString())).toBe('2026-01-05 07:03');
    expect(formatDate(null)).toBe('never');
    expect(formatDate(undefined, '—')).toBe('—');
    expect(formatDate('garbage')).toBe('garbage');
  });

  it('derives a token state', () => {
    const now = Date.parse('2025-06-01T00:00:00Z');
    const t = { is_active: true, revoked_at: null, expires_at: '2026-01-01T00:00:00Z' };
    expect(tokenState(t, now)).toBe('active');
    expect(tokenState({ ...t, revoked_at: '2025-05-01T00:00:00Z', is_active: false }, now)).toBe('revoked');
    expect(tokenState({ ...t, expires_at: '2025-05-01T00:00:00Z' }, now)).toBe('expired');
  });

  it('only follows same-origin paths after login', () => {
    expect(safeNext('/#users')).toBe('/#users');
    expect(safeNext('//evil.example')).toBe('/');
    expect(safeNext('https://evil.example')).toBe('/');
    expect(safeNext('/\\evil')).toBe('/');
    expect(safeNext('/login/')).toBe('/');
    expect(safeNext(null)).toBe('/');
  });

  it('curl examples target the API origin (port 8085 by default)', () => {
    const ex = curlExamples('http://localhost:8085');
    expect(ex.map((e) => e.code).join('\n')).toContain('http://localhost:8085/auth/login');
    expect(ex.some((e) => e.code.includes('/auth/tokens'))).toBe(true);
  });
});
