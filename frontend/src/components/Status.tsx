/** Small shared bits for loading, errors and empty lists. */
import type { ReactNode } from 'react';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function ErrorBox({ message, onRetry }: { message: string | null | undefined; onRetry?: () => void }) {
  if (!message) return null;
  return (
    <div className="alert alert-error" role="alert">
      <strong>{message}</strong>
      {onRetry && (
        <>
          {' '}
          <button type="button" className="link-btn" onClick={onRetry}>
            Try again
          </button>
        </>
      )}
    </div>
  );
}

export function Notice({ message }: { message: string | null | undefined }) {
  // Always rendered so screen readers announce changes (polite live region).
  return (
    <div role="status" aria-live="polite">
      {message ? <div className="alert alert-success">{message}</div> : null}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}
