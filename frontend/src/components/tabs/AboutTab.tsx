'use client';
/** About: version, API docs links, a short usage guide with curl examples, privacy choice. */
import { useEffect, useState } from 'react';
import { API_URL } from '@/api/client';
import { health } from '@/api/endpoints';
import { useApi } from '@/lib/useApi';
import { PrivacySettings } from '../CookieConsent';
import { ErrorBox } from '../Status';
import type { TabProps } from './registry';

export function curlExamples(base: string): { title: string; code: string }[] {
  return [
    {
      title: 'Sign in (returns a session token)',
      code: `curl -X POST "${base}/auth/login" \\
  -H "Content-Type: application/json" \\
  -d '{"username": "user1", "password": "your-password"}'`,
    },
    {
      title: 'Create an API token (shown once: store it)',
      code: `curl -X POST "${base}/auth/tokens" \\
  -H "Authorization: Bearer YOUR_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{"name": "My API Token", "expires_in_days": 90}'`,
    },
    {
      title: 'Call the API with the token',
      code: `curl "${base}/auth/user-info" \\
  -H "Authorization: Bearer YOUR_TOKEN"`,
    },
    {
      title: 'List and revoke your tokens',
      code: `curl "${base}/auth/tokens" -H "Authorization: Bearer YOUR_TOKEN"
curl -X POST "${base}/auth/tokens/TOKEN_ID/revoke" -H "Authorization: Bearer YOUR_TOKEN"`,
    },
    {
      title: 'Service health (no sign-in needed)',
      code: `curl "${base}/health"`,
    },
  ];
}

export default function AboutTab(_: TabProps) {
  const h = useApi((signal) => health(signal), []);
  // The API's origin: same as the page's when served by `mlservice serve` (port 8085).
  const [base, setBase] = useState(API_URL || 'http://localhost:8085');
  useEffect(() => {
    if (!API_URL) setBase(window.location.origin);
  }, []);

  return (
    <>
      <section className="card" aria-labelledby="about-h">
        <h2 id="about-h">ML Service</h2>
        <p>
          A self-hosted ML platform for a small team: upload a table, train a classifier on it, serve predictions
          and watch the live data drift away from what the model learned, retraining when it does.
        </p>
        <ErrorBox message={h.error} onRetry={h.reload} />
        <p>
          <strong>Version:</strong> <span data-testid="about-version">{h.data?.version ?? (h.loading ? '…' : '—')}</span>
          {' · '}
          <strong>API:</strong> <code>{base}</code>
        </p>
        <p>
          API reference (needs you to be signed in):{' '}
          <a href={`${API_URL}/docs`} target="_blank" rel="noopener">
            Swagger UI (/docs)
          </a>
          {' · '}
          <a href={`${API_URL}/redoc`} target="_blank" rel="noopener">
            ReDoc (/redoc)
          </a>
          {' · '}
          <a href={`${API_URL}/openapi.json`} target="_blank" rel="noopener">
            OpenAPI schema
          </a>
        </p>
      </section>
      <section className="card" aria-labelledby="guide-h">
        <h2 id="guide-h">Using the API</h2>
        <p>
          Scripts and client systems authenticate with an API token: create one under{' '}
          <a href="#profile">Profile → API tokens</a> (or with the calls below) and send it as{' '}
          <code>Authorization: Bearer &lt;token&gt;</code>. The session token returned by <code>/auth/login</code>{' '}
          works the same way until it expires.
        </p>
        {curlExamples(base).map((ex) => (
          <div key={ex.title}>
            <h3>{ex.title}</h3>
            <pre tabIndex={0}>
              <code>{ex.code}</code>
            </pre>
          </div>
        ))}
        <p className="muted">
          Errors always come back as <code>{'{"error": {"code", "message", "details"}}'}</code> with an HTTP 4xx/5xx
          status.
        </p>
      </section>
      <PrivacySettings />
    </>
  );
}
