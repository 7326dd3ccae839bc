/**
 * Consent and theme preferences (GDPR).
 *
 * Before consent the dashboard stores nothing but the httpOnly session cookie
 * (set by the server, strictly necessary). The theme choice is kept in memory
 * for the page's life; only after the user accepts "preferences" is it
 * written to localStorage. The consent record itself ("ml-consent") is the
 * one exception, as it must be remembered to stop asking — it holds only the
 * choice. Withdrawing consent deletes the stored theme.
 *
 * A tiny external store (no library): subscribe/getSnapshot for
 * useSyncExternalStore, shared by the banner, ThemeDropdown and the
 * privacy settings in About/Profile.
 */

export type Theme = 'light' | 'dark' | 'system';
export type Consent = 'all' | 'necessary' | null;

export const CONSENT_KEY = 'ml-consent';
export const THEME_KEY = 'ml-theme';

export interface Prefs {
  consent: Consent;
  theme: Theme;
}

/** Minimal Storage-like surface, so tests can pass a Map-backed fake. */
export interface KV {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function isTheme(v: unknown): v is Theme {
  return v === 'light' || v === 'dark' || v === 'system';
}

/** Read what may be read: the consent record, and the theme only if consented. */
export function readPrefs(kv: KV | null): Prefs {
  let consent: Consent = null;
  let theme: Theme = 'system';
  if (!kv) return { consent, theme };
  try {
    const c = kv.getItem(CONSENT_KEY);
    consent = c === 'all' || c === 'necessary' ? c : null;
    if (consent === 'all') {
      const t = kv.getItem(THEME_KEY);
      if (isTheme(t)) theme = t;
    }
  } catch {
    /* storage disabled: behave as a first visit */
  }
  return { consent, theme };
}

/** Persist a state change, writing only what consent allows. Returns the new prefs. */
export function writePrefs(kv: KV | null, next: Prefs): Prefs {
  if (!kv) return next;
  try {
    if (next.consent) kv.setItem(CONSENT_KEY, next.consent);
    else kv.removeItem(CONSENT_KEY);
    if (next.consent === 'all' && next.theme !== 'system') kv.setItem(THEME_KEY, next.theme);
    else kv.removeItem(THEME_KEY);
  } catch {
    /* quota or disabled storage: keep the in-memory value */
  }
  return next;
}

/**
 * The inline <head> script, before first paint: applies a consented stored
 * theme, and marks <html> "consented" once a choice exists so the banner,
 * present in the static HTML, stays hidden (no flash either way).
 */
export const THEME_BOOT_SCRIPT = `try{var c=localStorage.getItem('${CONSENT_KEY}'),d=document.documentElement;if(c)d.classList.add('consented');if(c==='all'){var t=localStorage.getItem('${THEME_KEY}');if(t==='light'||t==='dark')d.dataset.theme=t}}catch(e){}`;

export function applyTheme(theme: Theme, root: { dataset: DOMStringMap } | null = typeof document !== 'undefined' ? document.documentElement : null): void {
  if (!root) return;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}

// ---- the store -------------------------------------------------------------

// The static HTML carries the banner (consent unknown at build time); the boot
// script hides it for visitors who already chose.
const SERVER_PREFS: Prefs = { consent: null, theme: 'system' };
let state: Prefs | null = null;
const listeners = new Set<() => void>();

function storage(): KV | null {
  try {
    return typeof window !== 'undefined' ? window.localStorage : null;
  } catch {
    return null;
  }
}

export function getPrefs(): Prefs {
  if (state === null) state = readPrefs(storage());
  return state;
}

/** Prerender and hydration use this; the client value follows right after. */
export function getServerPrefs(): Prefs {
  return SERVER_PREFS;
}

export function subscribePrefs(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function set(next: Prefs): void {
  state = writePrefs(storage(), next);
  applyTheme(state.theme);
  listeners.forEach((l) => l());
}

export function setTheme(theme: Theme): void {
  set({ ...getPrefs(), theme });
}

export function setConsent(consent: Consent): void {
  set({ ...getPrefs(), consent });
}
