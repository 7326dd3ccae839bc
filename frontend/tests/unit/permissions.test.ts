import { describe, expect, it } from 'vitest';
import type { Tier, User } from '@/api/types';
import { assignableTiers, isAdmin, userActions } from '@/lib/permissions';

let nextId = 1;
const u = (tier: Tier, extra: Partial<User> = {}): User => ({
  id: nextId++,
  username: `${tier}${nextId}`,
  tier,
  is_active: true,
  created_at: '2025-01-01T00:00:00Z',
  last_login_at: null,
  ...extra,
});

describe('user management rules', () => {
  it('only admins and system admins manage users', () => {
    expect(isAdmin(u('user'))).toBe(false);
    expect(isAdmin(u('admin'))).toBe(true);
    expect(isAdmin(u('system_admin'))).toBe(true);
    expect(userActions(u('user'), u('user'), null).locked).toMatch(/Only admins/);
  });

  it('nobody can raise anyone above their own tier', () => {
    expect(assignableTiers(u('admin'))).toEqual(['user', 'admin']);
    expect(assignableTiers(u('system_admin'))).toEqual(['user', 'admin', 'system_admin']);
    expect(userActions(u('admin'), u('user'), null).tiers).toEqual(['user', 'admin']);
  });

  it('an admin cannot touch a system admin', () => {
    const a = userActions(u('admin'), u('system_admin'), 3);
    expect(a.locked).toMatch(/system admin/);
    expect(a.canChangeTier || a.canToggleActive || a.canDelete).toBe(false);
  });

  it('an admin can manage other admins and users', () => {
    const a = userActions(u('admin'), u('admin'), null);
    expect(a.locked).toBeNull();
    expect(a.canDelete && a.canToggleActive && a.canChangeTier).toBe(true);
  });

  it('nobody deletes or edits themself here', () => {
    const me = u('system_admin');
    const a = userActions(me, me, 2);
    expect(a.canDelete).toBe(false);
    expect(a.locked).toMatch(/Profile/);
  });

  it('the last active system admin cannot be demoted, deactivated or deleted', () => {
    const sa = u('system_admin');
    expect(userActions(u('system_admin'), sa, 1).locked).toMatch(/last active system admin/);
    expect(userActions(u('system_admin'), sa, 2).locked).toBeNull();
    // Count unknown (paginated): allowed in the UI, the API decides.
    expect(userActions(u('system_admin'), sa, null).locked).toBeNull();
    // An inactive system admin is not the last active one.
    expect(userActions(u('system_admin'), u('system_admin', { is_active: false }), 1).locked).toBeNull();
  });
});
