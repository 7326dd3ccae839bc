'use client';
/**
 * GDPR consent. Until the user chooses, only the strictly necessary session
 * cookie exists. "Accept" allows remembering preferences (the theme) in
 * localStorage; "Necessary only" keeps them for this page's life only.
 * The choice can be changed later from About or Profile (PrivacySettings).
 */
import { setConsent } from '@/lib/prefs';
import { usePrefs } from '@/lib/usePrefs';

export function CookieConsent() {
  const { consent } = usePrefs();
  if (consent) return null;
  return (
    <section className="consent" role="region" aria-label="Cookie consent">
      <p>
        ML Service uses one strictly necessary cookie to keep you signed in. May it also remember your preferences
        (the theme) in this browser? You can change this later under About or Profile.
      </p>
      <div className="toolbar">
        <button type="button" className="btn" onClick={() => setConsent('necessary')}>
          Necessary only
        </button>
        <button type="button" className="btn btn-primary" onClick={() => setConsent('all')}>
          Accept
        </button>
      </div>
    </section>
  );
}

export function PrivacySettings() {
  const { consent } = usePrefs();
  const label =
    consent === 'all'
      ? 'Preferences are remembered in this browser (local storage).'
      : consent === 'necessary'
        ? 'Only the necessary session cookie is used; preferences are forgotten when you leave.'
        : 'You have not chosen yet.';
  return (
    <section className="card" aria-labelledby="privacy-h">
      <h2 id="privacy-h">Privacy and cookies</h2>
      <p>
        The session cookie <code>ml_session</code> (httpOnly, strictly necessary) keeps you signed in. With your
        consent, the theme is stored in this browser&apos;s local storage.
      </p>
      <p>
        <strong>Current choice:</strong> <span data-testid="consent-state">{label}</span>
      </p>
      <div className="toolbar">
        <button
          type="button"
          className="btn"
          onClick={() => setConsent('all')}
          disabled={consent === 'all'}
        >
          Allow preferences
        </button>
        <button
          type="button"
          className="btn"
          onClick={() => setConsent('necessary')}
          disabled={consent === 'necessary'}
        >
          Necessary only
        </button>
      </div>
    </section>
  );
}
