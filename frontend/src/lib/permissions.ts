/**
 * What the Users tab lets an admin do. The API enforces the same rules and
 * answers 4xx with a message, which the tab shows; these only keep the UI
 * from offering actions that would certainly fail.
 */
import type { Tier, User } from '@/api/types';

export const TIERS: readonly Tier[] = ['user', 'admin', 'system_admin'];

export const TIER_LABEL: Record<Tier, string> = {
  user: 'User',
  admin: 'Admin',
  system_admin: 'System admin',
};

export function tierRank(t: Tier): number {
  return TIERS.indexOf(t);
}

export function isAdmin(u: Pick<User, 'tier'> | null | undefined): boolean {
  return !!u && tierRank(u.tier) >= tierRank('admin');
}

/** Tiers the actor may give someone: never above their own. */
export function assignableTiers(actor: Pick<User, 'tier'>): Tier[] {
  return TIERS.filter((t) => tierRank(t) <= tierRank(actor.tier));
}

export interface UserActions {
  /** Why nothing can be changed, or null. */
  locked: string | null;
  canChangeTier: boolean;
  canToggleActive: boolean;
  canDelete: boolean;
  tiers: Tier[];
}

/**
 * @param activeSystemAdmins number of active system admins, or null if unknown
 *   (the list is paginated and not all loaded).
 */
export function userActions(actor: User, target: User, activeSystemAdmins: number | null): UserActions {
  const none = (locked: string): UserActions => ({
    locked,
    canChangeTier: false,
    canToggleActive: false,
    canDelete: false,
    tiers: [],
  });
  if (!isAdmin(actor)) return none('Only admins manage users.');
  if (actor.id === target.id) return none('This is you: manage your own account in Profile.');
  if (tierRank(target.tier) > tierRank(actor.tier)) return none('Only a system admin can change a system admin.');
  const lastSystemAdmin =
    target.tier === 'system_admin' && target.is_active && activeSystemAdmins !== null && activeSystemAdmins <= 1;
  if (lastSystemAdmin) {
    return { ...none('The last active system admin cannot be demoted, deactivated or deleted.') };
  }
  return {
    locked: null,
    canChangeTier: true,
    canToggleActive: true,
    canDelete: true,
    tiers: assignableTiers(actor),
  };
}
