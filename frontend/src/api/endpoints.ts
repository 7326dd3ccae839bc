/** Typed calls of the ML Service API (one function per endpoint the dashboard uses). */
import { request } from './client';
import type { ApiToken, ApiTokenCreated, Health, LoginResponse, Page, Tier, User } from './types';

export const health = (signal?: AbortSignal) => request<Health>('/health', { signal, redirectOn401: false });

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
