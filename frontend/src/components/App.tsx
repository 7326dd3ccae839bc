'use client';
/**
 * The app shell at `/`: checks the session, then Sidebar + top bar + the
 * current tab (from the URL hash, e.g. `/#profile`), each tab's code loaded
 * on demand. No session → the API client's 401 handler sends us to /login/.
 */
import {
  lazy,
  startTransition,
  Suspense,
  useCallback,
  useEffect,
  useMemo,
  useState,
  type ComponentType,
  type LazyExoticComponent,
} from 'react';
import { auth, health } from '@/api/endpoints';
import { messageOf } from '@/api/client';
import type { User } from '@/api/types';
import { TIER_LABEL } from '@/lib/permissions';
import { applyTheme, getPrefs } from '@/lib/prefs';
import { CookieConsent } from './CookieConsent';
import { ErrorBoundary } from './ErrorBoundary';
import { Sidebar } from './Sidebar';
import { ErrorBox, Loading } from './Status';
import { ThemeDropdown } from './ThemeDropdown';
import { TABS, tabFromHash, visibleTabs, type TabDef, type TabProps } from './tabs/registry';

/** Tabs whose code has arrived: rendered directly, without a suspend, a fallback commit and a retry render. */
const LOADED: Record<string, ComponentType<TabProps>> = {};
function loadTab(t: TabDef) {
  return t.load().then((m) => {
    LOADED[t.id] = m.default;
    return m;
  });
}
const LAZY: Record<string, LazyExoticComponent<ComponentType<TabProps>>> = Object.fromEntries(
  TABS.map((t) => [t.id, lazy(() => loadTab(t))]),
);
/** The component each tab renders with, fixed at its first render: switching would remount the tab. */
const CHOSEN: Record<string, ComponentType<TabProps>> = {};
function tabComponent(id: string): ComponentType<TabProps> {
  return (CHOSEN[id] ??= LOADED[id] ?? LAZY[id]);
}

function useHash(): string {
  const [hash, setHash] = useState('');
  useEffect(() => {
    const on = () => setHash(window.location.hash);
    on();
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

export function App() {
  const [user, setUser] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [version, setVersion] = useState<string | undefined>();
  const [loggingOut, setLoggingOut] = useState(false);
  const hash = useHash();

  useEffect(() => {
    applyTheme(getPrefs().theme);
    // Fetch the current tab's code while the session check is in flight.
    const id = window.location.hash.replace(/^#\/?/, '').toLowerCase();
    void loadTab(TABS.find((t) => t.id === id) ?? TABS[0]).catch(() => undefined);
  }, []);

  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    // Renders that follow a response are transitions: React renders them in
    // slices of a few ms, so the shell's first full render is no long task.
    auth
      .userInfo(ctl.signal)
      .then((u) => startTransition(() => setUser(u)))
      .catch((e) => {
        // 401 already redirected to /login/; anything else is shown.
        if (!ctl.signal.aborted && (e as { status?: number }).status !== 401) setError(messageOf(e));
      });
    health(ctl.signal)
      .then((h) => startTransition(() => setVersion(h.version)))
      .catch(() => undefined); // Overview shows health errors; the footer can do without.
    return () => ctl.abort();
  }, [attempt]);

  const tab = useMemo(() => tabFromHash(hash, user), [hash, user]);
  const tabs = useMemo(() => visibleTabs(user), [user]);

  useEffect(() => {
    document.title = tab ? `${tab.label} · ML Service` : 'ML Service';
  }, [tab]);

  const logout = useCallback(async () => {
    setLoggingOut(true);
    try {
      await auth.logout();
    } catch (e) {
      // The cookie may already be gone; a real failure is still shown on the login page's URL.
      if ((e as { status?: number }).status !== 401) {
        setError(messageOf(e));
        setLoggingOut(false);
        return;
      }
    }
    window.location.replace('/login/');
  }, []);

  // One tree for both states (only its parts differ), so the session's answer
  // fills the frame in instead of replacing it: no remount, no relayout of it.
  const Tab = user && tab ? tabComponent(tab.id) : null;
  return (
    <div className="shell">
      {user && (
        <a className="skip-link" href="#content">
          Skip to content
        </a>
      )}
      <Sidebar tabs={tabs} current={tab?.id} version={user ? version : undefined} />
      <div className="main">
        <header className="topbar">
          <h1>{tab?.label ?? 'ML Service'}</h1>
          {user && (
            <div className="topbar-right">
              <ThemeDropdown />
              <span className="whoami">
                <span data-testid="whoami">{user.username}</span>
                <span className="badge badge-accent name-extra">{TIER_LABEL[user.tier]}</span>
              </span>
              <button type="button" className="btn btn-sm" onClick={logout} disabled={loggingOut}>
                {loggingOut ? 'Signing out…' : 'Log out'}
              </button>
            </div>
          )}
        </header>
        {user ? (
          <main id="content" className="content" tabIndex={-1} key={tab?.id}>
            <ErrorBox message={error} />
            {Tab && (
              <ErrorBoundary>
                <Suspense fallback={<Loading />}>
                  <Tab user={user} onUserChange={setUser} />
                </Suspense>
              </ErrorBoundary>
            )}
          </main>
        ) : (
          <main id="content" className="content">
            {error ? (
              <>
                <ErrorBox message={error} onRetry={() => setAttempt((a) => a + 1)} />
                <a href="/login/">Go to sign in</a>
              </>
            ) : (
              <Loading label="Checking your session…" />
            )}
          </main>
        )}
      </div>
      <CookieConsent />
    </div>
  );
}
