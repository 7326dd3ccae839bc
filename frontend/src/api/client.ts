/**
 * The one place the dashboard talks HTTP.
 *
 * - Same origin by default (the static export is served by the API server);
 *   NEXT_PUBLIC_API_URL points `npm run dev` at another origin.
 * - The session is an httpOnly cookie: every call sends credentials and the
 *   `X-ML-Client: dashboard` header (the backend's CSRF guard for cookie
 *   sessions, and the marker that makes events' source "gui").
 * - Every failure becomes an ApiError whose `message` is the server's
 *   human-readable `error.message` (or the best we can say), never swallowed.
 * - A 401 runs the unauthorized handler (by default: go to /login/), except
 *   for calls that opt out (the login form itself).
 */

// Inlined at build time (next.config.mjs always defines it, '' = same origin).
export const API_URL: string = (process.env.NEXT_PUBLIC_API_URL || '').replace(/\/+$/, '');

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export type UnauthorizedHandler = (err: ApiError) => void;

function defaultUnauthorized(): void {
  if (typeof window === 'undefined') return;
  const here = window.location.pathname + window.location.hash;
  if (window.location.pathname.startsWith('/login')) return;
  const next = here && here !== '/' ? `?next=${encodeURIComponent(here)}` : '';
  window.location.replace(`/login/${next}`);
}

let onUnauthorized: UnauthorizedHandler = defaultUnauthorized;

/** Replace the 401 handler (tests; returns the previous one). */
export function setUnauthorizedHandler(h: UnauthorizedHandler): UnauthorizedHandler {
  const prev = onUnauthorized;
  onUnauthorized = h;
  return prev;
}

/** FastAPI's own validation errors: `{"detail": [{"loc": [...], "msg": "..."}]}`. */
function describeDetail(detail: unknown): string | null {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    const parts = detail
      .map((d) => {
        if (!d || typeof d !== 'object') return null;
        const o = d as { loc?: unknown; msg?: unknown };
        const loc = Array.isArray(o.loc) ? o.loc.filter((x) => x !== 'body').join('.') : '';
        const msg = typeof o.msg === 'string' ? o.msg : null;
        return msg ? (loc ? `${loc}: ${msg}` : msg) : null;
      })
      .filter(Boolean);
    return parts.length ? parts.join('; ') : null;
  }
  return null;
}

/** Server messages are lower-case sentences ("wrong username or password"); show them capitalised. */
function sentence(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Turn a failed answer (status + raw body text) into an ApiError. Pure, for tests. */
export function errorFromResponse(status: number, statusText: string, bodyText: string): ApiError {
  let body: unknown = null;
  try {
    body = bodyText ? JSON.parse(bodyText) : null;
  } catch {
    body = null;
  }
  const fallback = `${status >= 500 ? 'Server error' : statusText || 'Request failed'} (HTTP ${status})`;
  if (body && typeof body === 'object') {
    const err = (body as { error?: unknown }).error;
    if (err && typeof err === 'object') {
      const e = err as { code?: unknown; message?: unknown; details?: unknown };
      const message = typeof e.message === 'string' && e.message.trim() ? sentence(e.message) : fallback;
      const code = typeof e.code === 'string' ? e.code : `http_${status}`;
      return new ApiError(status, code, message, e.details);
    }
    if (typeof err === 'string' && err.trim()) return new ApiError(status, `http_${status}`, sentence(err));
    const detail = describeDetail((body as { detail?: unknown }).detail);
    if (detail) return new ApiError(status, `http_${status}`, sentence(detail), (body as { detail?: unknown }).detail);
  }
  return new ApiError(status, `http_${status}`, fallback);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  /** Multipart body (file uploads); the browser sets its Content-Type. */
  form?: FormData;
  query?: Record<string, string | number | boolean | undefined | null>;
  /** Default true: a 401 sends the user to the login page. */
  redirectOn401?: boolean;
  signal?: AbortSignal;
}

export function buildUrl(path: string, query?: RequestOptions['query']): string {
  let url = API_URL + path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.set(k, String(v));
    const s = qs.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  return url;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const { method = 'GET', body, form, query, redirectOn401 = true, signal } = opts;
  const headers: Record<string, string> = { Accept: 'application/json', 'X-ML-Client': 'dashboard' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: form ?? (body === undefined ? undefined : JSON.stringify(body)),
      credentials: 'include',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if ((e as { name?: string })?.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', 'Cannot reach the ML Service server. Check that it is running.');
  }
  if (!res.ok) {
    const err = errorFromResponse(res.status, res.statusText, await res.text().catch(() => ''));
    if (res.status === 401 && redirectOn401) onUnauthorized(err);
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'bad_response', `The server sent an answer that is not JSON (HTTP ${res.status}).`);
  }
}

/** The message to show for anything thrown by an API call. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error && e.message) return e.message;
  return 'Something went wrong.';
}
