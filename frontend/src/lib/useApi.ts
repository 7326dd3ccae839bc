'use client';
/**
 * Data loading and actions for tabs, on top of the API client.
 * useApi: load on mount / when deps change, with loading, error and reload.
 * useAction: run a mutation, tracking pending and the error message.
 */
import { startTransition, useCallback, useEffect, useRef, useState, type DependencyList } from 'react';
import { messageOf } from '@/api/client';

export interface ApiState<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
  setData: (d: T | ((prev: T | undefined) => T)) => void;
}

/**
 * `initial`: data already at hand (fresh enough to show): rendered at once,
 * and the first load is skipped; reload() and changed deps load as usual.
 */
export function useApi<T>(load: (signal: AbortSignal) => Promise<T>, deps: DependencyList = [], initial?: T): ApiState<T> {
  const [data, setData] = useState<T | undefined>(initial);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(initial === undefined);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const skipFirst = useRef(initial !== undefined);

  useEffect(() => {
    if (skipFirst.current) {
      skipFirst.current = false;
      return;
    }
    const ctl = new AbortController();
    setLoading(true);
    loadRef
      .current(ctl.signal)
      // The answer's render is a transition: React renders it in slices of a
      // few ms (a long list or chart is no long task) and input stays first.
      .then((d) => {
        if (ctl.signal.aborted) return;
        startTransition(() => {
          setData(d);
          setError(null);
          setLoading(false);
        });
      })
      .catch((e: unknown) => {
        if (ctl.signal.aborted) return;
        startTransition(() => {
          setError(messageOf(e));
          setLoading(false);
        });
      });
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick, ...deps]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, setData: setData as ApiState<T>['setData'] };
}

export type Outcome<R> = { ok: true; value: R } | { ok: false };

export interface Action<A extends unknown[], R> {
  run: (...args: A) => Promise<Outcome<R>>;
  pending: boolean;
  error: string | null;
  clearError: () => void;
}

/** Wrap a mutation; `run` resolves to {ok:false} on failure (the message is in `error`). */
export function useAction<A extends unknown[], R>(fn: (...args: A) => Promise<R>): Action<A, R> {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const run = useCallback(async (...args: A): Promise<Outcome<R>> => {
    setPending(true);
    setError(null);
    try {
      return { ok: true, value: await fnRef.current(...args) };
    } catch (e) {
      setError(messageOf(e));
      return { ok: false };
    } finally {
      setPending(false);
    }
  }, []);
  const clearError = useCallback(() => setError(null), []);
  return { run, pending, error, clearError };
}
