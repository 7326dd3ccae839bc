import { describe, expect, it } from 'vitest';
import { applyTheme, CONSENT_KEY, readPrefs, THEME_BOOT_SCRIPT, THEME_KEY, writePrefs, type KV } from '@/lib/prefs';

class MemKV implements KV {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.has(k) ? this.m.get(k)! : null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

describe('consent-gated preferences (GDPR)', () => {
  it('a first visit stores nothing and reads the defaults', () => {
    const kv = new MemKV();
    expect(readPrefs(kv)).toEqual({ consent: null, theme: 'system' });
    writePrefs(kv, { consent: null, theme: 'dark' });
    expect(kv.m.size).toBe(0);
  });

  it('without consent to preferences the theme is not persisted', () => {
    const kv = new MemKV();
    writePrefs(kv, { consent: 'necessary', theme: 'dark' });
    expect([...kv.m.keys()]).toEqual([CONSENT_KEY]);
    expect(readPrefs(kv)).toEqual({ consent: 'necessary', theme: 'system' });
  });

  it('after consent the theme is persisted and read back', () => {
    const kv = new MemKV();
    writePrefs(kv, { consent: 'all', theme: 'dark' });
    expect(kv.m.get(THEME_KEY)).toBe('dark');
    expect(readPrefs(kv)).toEqual({ consent: 'all', theme: 'dark' });
  });

  it('withdrawing consent deletes the stored theme', () => {
    const kv = new MemKV();
    writePrefs(kv, { consent: 'all', theme: 'light' });
    writePrefs(kv, { consent: 'necessary', theme: 'light' });
    expect(kv.m.has(THEME_KEY)).toBe(false);
  });

  it('a stored theme without consent (or garbage) is ignored', () => {
    const kv = new MemKV();
    kv.setItem(THEME_KEY, 'dark');
    expect(readPrefs(kv).theme).toBe('system');
    kv.setItem(CONSENT_KEY, 'all');
    kv.setItem(THEME_KEY, 'neon');
    expect(readPrefs(kv).theme).toBe('system');
  });

  it('storage that throws behaves as a first visit', () => {
    const broken: KV = {
      getItem() {
        throw new Error('denied');
      },
      setItem() {
        throw new Error('denied');
      },
      removeItem() {
        throw new Error('denied');
      },
    };
    expect(readPrefs(broken)).toEqual({ consent: null, theme: 'system' });
    expect(writePrefs(broken, { consent: 'all', theme: 'dark' })).toEqual({ consent: 'all', theme: 'dark' });
  });

  it('applyTheme sets or clears data-theme; the boot script agrees with readPrefs', () => {
    const root = { dataset: {} as DOMStringMap };
    applyTheme('dark', root);
    expect(root.dataset.theme).toBe('dark');
    applyTheme('system', root);
    expect(root.dataset.theme).toBeUndefined();

    const kv = new MemKV();
    writePrefs(kv, { consent: 'all', theme: 'dark' });
    const fakeDoc = () => {
      const classes = new Set<string>();
      return { classes, documentElement: { dataset: {} as DOMStringMap, classList: { add: (c: string) => classes.add(c) } } };
    };
    const boot = (store: KV) => {
      const doc = fakeDoc();
      new Function('localStorage', 'document', THEME_BOOT_SCRIPT)(store, doc);
      return doc;
    };
    const doc = boot(kv);
    expect(doc.documentElement.dataset.theme).toBe('dark');
    expect(doc.classes.has('consented')).toBe(true);
    writePrefs(kv, { consent: 'necessary', theme: 'dark' });
    const doc2 = boot(kv);
    expect(doc2.documentElement.dataset.theme).toBeUndefined();
    expect(doc2.classes.has('consented')).toBe(true);
    // First visit: the banner in the static HTML stays visible.
    expect(boot(new MemKV()).classes.has('consented')).toBe(false);
  });
});
