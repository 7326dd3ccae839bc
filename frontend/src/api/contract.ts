/**
 * Compile-time check of the hand-written API types (types.ts) against the
 * schema generated from the backend (schema.d.ts, `npm run gen:api`).
 *
 * For every field the dashboard's type declares, the backend must declare it
 * too (unless the dashboard marks it optional), and every value the backend
 * may send must fit the dashboard's type (string literal unions are compared
 * as strings). A violation is a tsc error naming the field, e.g.
 *   Type '"name"' does not satisfy the constraint 'never'.
 * Nothing here is emitted into the bundle.
 */
import type { components } from './schema';
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
  LoginResponse,
  ModelDetail,
  ModelSummary,
  Page,
  PredictJob,
  PredictionActivity,
  TrainBody,
  User,
  VersionDetail,
} from './types';

type S = components['schemas'];

type Widen<T> = T extends string ? string : T;
type IsObject<T> = [T] extends [object] ? ([T] extends [readonly unknown[]] ? false : true) : false;
type Elem<T> = T extends readonly (infer E)[] ? E : never;

/** Dotted names of the fields of T that the backend type G breaks. */
export type Problems<T, G, P extends string = ''> = {
  [K in keyof T & string]-?: K extends keyof G
    ? IsObject<NonNullable<T[K]>> extends true
      ? Problems<NonNullable<T[K]>, NonNullable<G[K]>, `${P}${K}.`> | (null extends G[K] ? (null extends T[K] ? never : `${P}${K}`) : never)
      : NonNullable<T[K]> extends readonly unknown[]
        ? Problems<Elem<NonNullable<T[K]>>, Elem<NonNullable<G[K]>>, `${P}${K}[].`>
        : [G[K]] extends [Widen<T[K]>]
          ? never
          : `${P}${K}`
    : {} extends Pick<T, K>
      ? never
      : `${P}${K} (missing in the backend)`;
}[keyof T & string];

/** Compiles only when P is never. */
type None<P extends never> = P;

export type Contract = [
  None<Problems<User, S['UserRead']>>,
  None<Problems<Page<User>, S['Page_UserRead_']>>,
  None<Problems<LoginResponse, S['LoginResponse']>>,
  None<Problems<Health, S['HealthRead']>>,
  None<Problems<ApiTokenCreated, S['TokenCreated']>>,
  None<Problems<ApiToken, S['TokenRead']>>,
  None<Problems<Page<ApiToken>, S['Page_TokenRead_']>>,
  None<Problems<Page<Job>, S['Page_JobRead_']>>,
  None<Problems<Dataset, S['DatasetRead']>>,
  None<Problems<Page<ModelSummary>, S['Page_ModelSummary_']>>,
  None<Problems<ModelDetail, S['ModelDetail']>>,
  None<Problems<VersionDetail, S['VersionDetail']>>,
  None<Problems<PredictJob, S['PredictJobRead']>>,
  None<Problems<FeedbackResult, S['FeedbackRead']>>,
  None<Problems<PredictionActivity, S['ActivityRead']>>,
  None<Problems<Page<DriftSummary>, S['Page_ReportSummary_']>>,
  None<Problems<DriftReport, S['ReportRead']>>,
  None<Problems<Page<Alert>, S['Page_AlertRead_']>>,
  None<Problems<Page<EventItem>, S['Page_EventRead_']>>,
  None<Problems<EventDetail, S['EventDetail']>>,
];

// Request bodies the dashboard sends must be accepted: each field it sends must exist there.
type Sends<Body, G> = Exclude<keyof Body, keyof G>;
export type Requests = [
  None<Sends<{ username: string; password: string }, S['LoginRequest']>>,
  None<Sends<{ username: string; password: string }, S['RegisterRequest']>>,
  None<Sends<{ current_password: string; new_password: string }, S['PasswordChange']>>,
  None<Sends<{ username: string }, S['UsernameChange']>>,
  None<Sends<{ password: string }, S['PasswordConfirmation']>>,
  None<Sends<{ username: string; password: string; tier: string }, S['UserCreate']>>,
  None<Sends<{ tier?: string; is_active?: boolean }, S['UserUpdate']>>,
  None<Sends<{ name: string; expires_in_days?: number }, S['TokenCreate']>>,
  None<Sends<TrainBody, S['TrainRequest']>>,
  None<Sends<NonNullable<TrainBody['params']>, S['TrainParams']>>,
  None<Sends<{ model_key: string; version: string | null; data: unknown[]; dataset_id: null }, S['PredictRequest']>>,
  None<Sends<{ labels: unknown[] }, S['FeedbackRequest']>>,
  None<Sends<{ model_key: string; last_days: number }, S['DriftCheckRequest']>>,
];
