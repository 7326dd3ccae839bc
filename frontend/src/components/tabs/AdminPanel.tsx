'use client';
/** Admin panel: the API reference (Swagger UI / ReDoc) embedded; the session cookie authenticates it. */
import { useState } from 'react';
import { API_URL } from '@/api/client';
import type { TabProps } from './registry';

const VIEWS = [
  { id: 'swagger', label: 'Swagger UI', path: '/docs' },
  { id: 'redoc', label: 'ReDoc', path: '/redoc' },
] as const;

export default function AdminPanel(_: TabProps) {
  const [view, setView] = useState<(typeof VIEWS)[number]['id']>('swagger');
  const current = VIEWS.find((v) => v.id === view)!;
  const src = `${API_URL}${current.path}`;
  return (
    <>
      <div className="toolbar" style={{ justifyContent: 'space-between' }}>
        <div className="segmented" role="tablist" aria-label="API reference view">
          {VIEWS.map((v) => (
            <button
              key={v.id}
              type="button"
              role="tab"
              id={`tab-${v.id}`}
              aria-selected={v.id === view}
              aria-controls="docs-panel"
              tabIndex={v.id === view ? 0 : -1}
              onClick={() => setView(v.id)}
              onKeyDown={(e) => {
                if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
                  const other = VIEWS.find((x) => x.id !== view)!;
                  setView(other.id);
                  document.getElementById(`tab-${other.id}`)?.focus();
                }
              }}
            >
              {v.label}
            </button>
          ))}
        </div>
        <a className="btn btn-sm" href={src} target="_blank" rel="noopener" style={{ marginBottom: '1rem' }}>
          Open {current.label} in a new tab
        </a>
      </div>
      <div id="docs-panel" role="tabpanel" aria-labelledby={`tab-${view}`}>
        <iframe key={view} className="docs-frame" src={src} title={`${current.label}: ML Service API reference`} />
      </div>
      <p className="hint">
        {current.label} is served by this server, so it works offline. The schema itself is at{' '}
        <a href={`${API_URL}/openapi.json`} target="_blank" rel="noopener">
          /openapi.json
        </a>
        .
      </p>
    </>
  );
}
