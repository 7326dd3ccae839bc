/**
 * The dashboard's tabs. Each tab's code is a separate chunk, loaded on demand
 * (React.lazy) when the tab is first shown or its link is hovered/focused.
 *
 * To add a tab (Models, Training, Predict, Jobs, Events — once their APIs
 * exist): write `tabs/XTab.tsx` with a default export taking TabProps, and
 * add an entry here. The hash (`/#models`) is the tab id; never a path, as
 * /models, /jobs… are API endpoints on the same origin.
 */
import type { ComponentType } from 'react';
import type { User } from '@/api/types';
import { isAdmin } from '@/lib/permissions';

export interface TabProps {
  user: User;
  /** Tell the shell the signed-in user changed (new username, …). */
  onUserChange: (user: User) => void;
}

export interface TabDef {
  id: string;
  label: string;
  /** SVG path data (24×24 viewBox, stroked). */
  icon: string;
  visible: (user: User) => boolean;
  load: () => Promise<{ default: ComponentType<TabProps> }>;
}

const everyone = () => true;

export const TABS: readonly TabDef[] = [
  {
    id: 'overview',
    label: 'Overview',
    icon: 'M3 13h8V3H3zM13 21h8V11h-8zM3 21h8v-6H3zM13 3v6h8V3z',
    visible: everyone,
    load: () => import('./OverviewTab'),
  },
  {
    id: 'training',
    label: 'Training',
    icon: 'M12 3v12M7 10l5 5 5-5M4 21h16',
    visible: everyone,
    load: () => import('./TrainingTab'),
  },
  {
    id: 'models',
    label: 'Models',
    icon: 'M12 2l9 5v10l-9 5-9-5V7zM12 22V12M21 7l-9 5-9-5',
    visible: everyone,
    load: () => import('./ModelsTab'),
  },
  {
    id: 'predict',
    label: 'Predict',
    icon: 'M13 2L3 14h9l-1 8 10-12h-9z',
    visible: everyone,
    load: () => import('./PredictTab'),
  },
  {
    id: 'jobs',
    label: 'Jobs',
    icon: 'M4 6h16M4 12h16M4 18h10',
    visible: everyone,
    load: () => import('./JobsTab'),
  },
  {
    id: 'events',
    label: 'Events',
    icon: 'M22 12h-4l-3 9L9 3l-3 9H2',
    visible: everyone,
    load: () => import('./EventsTab'),
  },
  {
    id: 'profile',
    label: 'Profile',
    icon: 'M20 21a8 8 0 0 0-16 0M12 13a4 4 0 1 0 0-8 4 4 0 0 0 0 8z',
    visible: everyone,
    load: () => import('./ProfileTab'),
  },
  {
    id: 'users',
    label: 'Users',
    icon: 'M17 21a6 6 0 0 0-12 0M11 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM23 21a6 6 0 0 0-4-5.6M16 3.1a4 4 0 0 1 0 7.8',
    visible: isAdmin,
    load: () => import('./UsersTab'),
  },
  {
    id: 'about',
    label: 'About',
    icon: 'M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 16v-4M12 8h.01',
    visible: everyone,
    load: () => import('./AboutTab'),
  },
  {
    id: 'admin',
    label: 'Admin panel',
    icon: 'M12 2l8 4v6c0 5-3.5 8.5-8 10-4.5-1.5-8-5-8-10V6zM9 12l2 2 4-4',
    visible: isAdmin,
    load: () => import('./AdminPanel'),
  },
];

export const DEFAULT_TAB = 'overview';

export function visibleTabs(user: User | null): TabDef[] {
  return user ? TABS.filter((t) => t.visible(user)) : [];
}

/** `#users` → the users tab if this user may see it, else the default tab. */
export function tabFromHash(hash: string, user: User | null): TabDef | undefined {
  const tabs = visibleTabs(user);
  const id = decodeURIComponent(hash.replace(/^#\/?/, '')).split(/[/?]/)[0].toLowerCase();
  return tabs.find((t) => t.id === id) ?? tabs.find((t) => t.id === DEFAULT_TAB);
}
