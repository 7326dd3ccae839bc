'use client';
import { Component, type ReactNode } from 'react';

/** Keeps a failing tab (e.g. its chunk could not load) from blanking the whole shell. */
export class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  state: { error: Error | null } = { error: null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  render() {
    if (this.state.error) {
      return (
        <div className="alert alert-error" role="alert">
          <strong>This tab failed to load: {this.state.error.message || 'unknown error'}.</strong>{' '}
          <button type="button" className="link-btn" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </div>
      );
    }
    return this.props.children;
  }
}
