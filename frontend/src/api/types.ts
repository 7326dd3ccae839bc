/**
 * Shapes of the ML Service HTTP API used by the dashboard.
 *
 * Hand-written from the backend contract; `contract.ts` checks them against
 * the OpenAPI schema generated from `mlservice openapi` (src/api/schema.d.ts),
 * so `tsc` fails when the dashboard relies on a field the backend dropped.
 */

export type Tier = 'system_admin' | 'admin' | 'user';

export interface User {
  id: number;
  username: string;
  tier: Tier;
  is_active: boolean;
  created_at: string;
  last_login_at: string | null;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface LoginResponse {
  token: string;
  token_type: 'bearer';
  expires_at: string;
  user: Pick<User, 'id' | 'username' | 'tier'>;
}

export interface Health {
  status: 'ok' | 'degraded';
  version: string;
  uptime_s: number;
  database: { ok: boolean; backend: 'sqlite' | 'postgresql' };
  /** In the API contract, but not sent by the backend yet (0.12.0): the Overview shows "unknown". */
  gpu?: { available: boolean; name: string | null; memory_mb: number | null };
}

export interface ApiTokenCreated {
  id: number;
  name: string;
  /** The secret: returned once, at creation, never again. */
  token: string;
  created_at: string;
  expires_at: string | null;
}

export interface ApiToken {
  id: number;
  name: string | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  is_active: boolean;
}

/** Body of every error answer: `{"error": {...}}`. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}
