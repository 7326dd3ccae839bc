/** Typed calls of the ML Service API (one function per endpoint the dashboard uses). */
import { buildUrl, request } from './client';
import type {
  Alert,
  ApiToken,
  ApiTokenCreated,
  Dataset,
  DriftReport,
  DriftSummary,
  EventDetail,
  EventItem,
  FeedbackResult,
  Health,
  Job,
  JobCreated,
  LoginResponse,
  ModelDetail,
  ModelSummary,
  Page,
  PredictJob,
  PredictionActivity,
  Tier,
  TrainBody,
  User,
  VersionDetail,
} from './types';

type Query = Record<string, string | number | boolean | undefined | null>;

let lastHealth: { at: number; value: Health } | null = null;

export const health = (signal?: AbortSignal) =>
  request<Health>('/health', { signal, redirectOn401: false }).then((h) => {
    lastHealth = { at: Date.now(), value: h };
    return h;
  });

/**
 * The last /health answer if it is younger than maxAgeMs: Overview opens with
 * the one the shell fetched on load (for its version) instead of asking again
 * and rendering placeholders meanwhile.
 */
export function recentHealth(maxAgeMs = 5_000): Health | undefined {
  return lastHealth && Date.now() - lastHealth.at <= maxAgeMs ? lastHealth.value : undefined;
}

export const auth = {
  /** 401 here means wrong credentials: show it, don't redirect. */
  login: (username: string, password: string) =>
    request<LoginResponse>('/auth/login', { method: 'POST', body: { username, password }, redirectOn401: false }),
  /** May answer 403 when the administrator disabled self-registration. */
  register: (username: string, password: string) =>
    request<User>('/auth/register', { method: 'POST', body: { username, password }, redirectOn401: false }),
  logout: () => request<void>('/auth/logout', { method: 'POST', redirectOn401: false }),
  userInfo: (signal?: AbortSignal) => request<User>('/auth/user-info', { signal }),
  profile: (signal?: AbortSignal) => request<User>('/auth/profile', { signal }),
  changePassword: (current_password: string, new_password: string) =>
    request<User>('/auth/profile/password', { method: 'PUT', body: { current_password, new_password } }),
  changeUsername: (username: string) => request<User>('/auth/profile/username', { method: 'PUT', body: { username } }),
  deleteProfile: (password: string) => request<void>('/auth/profile', { method: 'DELETE', body: { password } }),
};

export const users = {
  list: (limit = 100, offset = 0, signal?: AbortSignal) =>
    request<Page<User>>('/auth/users', { query: { limit, offset }, signal }),
  get: (id: number) => request<User>(`/auth/users/${id}`),
  create: (username: string, password: string, tier: Tier) =>
    request<User>('/auth/users', { method: 'POST', body: { username, password, tier } }),
  update: (id: number, patch: { tier?: Tier; is_active?: boolean }) =>
    request<User>(`/auth/users/${id}`, { method: 'PUT', body: patch }),
  remove: (id: number) => request<void>(`/auth/users/${id}`, { method: 'DELETE' }),
};

export const tokens = {
  list: (signal?: AbortSignal) => request<Page<ApiToken>>('/auth/tokens', { signal }),
  create: (name: string, expires_in_days?: number) =>
    request<ApiTokenCreated>('/auth/tokens', {
      method: 'POST',
      body: expires_in_days ? { name, expires_in_days } : { name },
    }),
  revoke: (id: number) => request<ApiToken>(`/auth/tokens/${id}/revoke`, { method: 'POST' }),
  remove: (id: number) => request<void>(`/auth/tokens/${id}`, { method: 'DELETE' }),
};

export const jobs = {
  list: (query: Query, signal?: AbortSignal) => request<Page<Job>>('/jobs', { query, signal }),
  get: (id: string, signal?: AbortSignal) => request<Job>(`/jobs/${encodeURIComponent(id)}`, { signal }),
  cancel: (id: string) => request<Job>(`/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
};

export const datasets = {
  upload: (file: File, name?: string) => {
    const form = new FormData();
    form.append('file', file);
    if (name) form.append('name', name);
    return request<Dataset>('/datasets', { method: 'POST', form });
  },
};

export const training = {
  start: (body: TrainBody) => request<JobCreated>('/train', { method: 'POST', body }),
};

const mk = (key: string) => `/models/${encodeURIComponent(key)}`;
export const models = {
  list: (signal?: AbortSignal) => request<Page<ModelSummary>>('/models', { query: { limit: 200 }, signal }),
  get: (key: string, signal?: AbortSignal) => request<ModelDetail>(mk(key), { signal }),
  version: (key: string, v: string, signal?: AbortSignal) =>
    request<VersionDetail>(`${mk(key)}/versions/${encodeURIComponent(v)}`, { signal }),
  promote: (key: string, v: string) =>
    request<unknown>(`${mk(key)}/versions/${encodeURIComponent(v)}/promote`, { method: 'POST' }),
  rollback: (key: string) => request<unknown>(`${mk(key)}/rollback`, { method: 'POST' }),
};

export const predict = {
  start: (model_key: string, version: string | null, data: Record<string, unknown>[]) =>
    request<JobCreated>('/predict', { method: 'POST', body: { model_key, version, data, dataset_id: null } }),
  startFile: (model_key: string, version: string | null, file: File) => {
    const form = new FormData();
    form.append('model_key', model_key);
    if (version) form.append('version', version);
    form.append('file', file);
    return request<JobCreated>('/predict', { method: 'POST', form });
  },
  get: (id: string, signal?: AbortSignal) =>
    request<PredictJob>(`/predict/${encodeURIComponent(id)}`, { query: { limit: 100 }, signal }),
  exportUrl: (id: string, format: 'csv' | 'json') => buildUrl(`/predict/${encodeURIComponent(id)}/export`, { format }),
  activity: (hours: number, signal?: AbortSignal) =>
    request<PredictionActivity>('/predictions/activity', { query: { hours }, signal }),
  feedback: (id: string, labels: { row: number; label: string }[]) =>
    request<FeedbackResult>(`/predict/${encodeURIComponent(id)}/feedback`, { method: 'POST', body: { labels } }),
};

export const drift = {
  check: (model_key: string) =>
    request<JobCreated>('/drift/check', { method: 'POST', body: { model_key, last_days: 1 } }),
  reports: (query: Query, signal?: AbortSignal) =>
    request<Page<DriftSummary>>('/drift/daily-reports', { query, signal }),
  report: (id: number, signal?: AbortSignal) => request<DriftReport>(`/drift/reports/${id}`, { signal }),
};

export const alerts = {
  list: (status: string, signal?: AbortSignal) => request<Page<Alert>>('/health/alerts', { query: { status }, signal }),
  ack: (id: number) => request<Alert>(`/health/alerts/${id}/ack`, { method: 'POST' }),
};

export const events = {
  list: (query: Query, signal?: AbortSignal) => request<Page<EventItem>>('/events', { query, signal }),
  byIp: (ip: string, query: Query, signal?: AbortSignal) =>
    request<Page<EventItem>>(`/events/by-ip/${encodeURIComponent(ip)}`, { query, signal }),
  get: (id: number, signal?: AbortSignal) => request<EventDetail>(`/events/${id}`, { signal }),
};
