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
  /** Optional: older servers do not send it. `available` is null while the first probe runs. */
  gpu?: { available: boolean | null; name: string | null; memory_mb: number | null; source?: string };
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

// Jobs ---------------------------------------------------------------------

export type JobType = 'train' | 'predict' | 'quality' | 'drift' | 'retrain' | 'other';
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const JOB_TYPES: readonly JobType[] = ['train', 'predict', 'quality', 'drift', 'retrain', 'other'];
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

export interface JobStage {
  name: string;
  status: string;
  started_at?: string | null;
  finished_at?: string | null;
}

export interface EpochPoint {
  epoch: number;
  loss: number;
  validation_score: number | null;
}

export interface Job {
  id: string;
  type: string;
  status: string;
  stage: string | null;
  stages: JobStage[];
  progress: number;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_s: number | null;
  model_key: string | null;
  model_version: string | null;
  cancel_requested: boolean;
  error: string | null;
  result: Record<string, unknown> | null;
  /** train: {epoch, max_epochs, history: EpochPoint[]} */
  details: Record<string, unknown>;
  source: string;
  user_id: number | null;
}

export interface JobCreated {
  job_id: string;
}

// Datasets -----------------------------------------------------------------

export type ColumnType = 'numeric' | 'categorical' | 'text' | 'ignored';

export interface DatasetColumn {
  name: string;
  type: string;
  reason?: string | null;
  missing_share?: number | null;
}

export interface Dataset {
  id: string;
  name: string;
  rows: number;
  columns: DatasetColumn[];
  created_at: string;
  format: string;
  size_bytes: number;
}

export interface TrainParams {
  hidden_layer_sizes?: number[];
  max_iter?: number;
}

export interface TrainBody {
  model_key: string;
  target: string;
  dataset_id: string;
  column_types?: Record<string, ColumnType>;
  params?: TrainParams;
}

// Models -------------------------------------------------------------------

export interface ModelSummary {
  model_key: string;
  active_version: string | null;
  metrics: Record<string, unknown> | null;
  status: string;
  versions: number;
  updated_at: string;
}

export interface VersionSummary {
  version: string;
  active: boolean;
  created_at: string;
  metrics: Record<string, unknown>;
  job_id: string | null;
  dataset_id: string | null;
  parent_version: string | null;
}

export interface ModelChange {
  action: string;
  version: string | null;
  previous_version: string | null;
  created_at: string;
  user_id: number | null;
}

export interface ModelDetail {
  model_key: string;
  active_version: string | null;
  target: string | null;
  features: string[];
  versions: VersionSummary[];
  changes: ModelChange[];
}

export interface VersionDetail extends VersionSummary {
  /** {accuracy, f1_macro, per_class, confusion_matrix: {labels, matrix}} */
  full_metrics: Record<string, unknown>;
  classes: unknown[];
  target: string;
  /** {epochs, history: EpochPoint[], hidden_layers, …} */
  training: Record<string, unknown>;
}

// Predictions ---------------------------------------------------------------

export interface RowResult {
  prediction: unknown;
  confidence: number;
  probabilities: Record<string, number>;
}

export interface PredictJob {
  job_id: string;
  status: string;
  stage: string | null;
  progress: number;
  model_key: string | null;
  version: string | null;
  total: number | null;
  error: string | null;
  results: RowResult[] | null;
}

export interface PredictionActivity {
  hours: number;
  bucket_s: number;
  /** Start of the first bucket (a whole UTC hour); the last bucket is the current hour. */
  start: string;
  /** Predictions per bucket of every model, oldest first. */
  models: Record<string, number[]>;
}

export interface FeedbackResult {
  job_id: string;
  labelled_rows: number;
  realised_accuracy: number | null;
}

// Drift and alerts ----------------------------------------------------------

export interface DriftSummary {
  id: number;
  model_key: string;
  version: string;
  created_at: string;
  verdict: string;
  drifted_share: number;
  sample_size: number;
  trigger: string;
  job_id: string | null;
  /** {labelled_rows, accuracy} of the feedback for the window's rows; null without feedback. */
  realised_accuracy?: Record<string, unknown> | null;
  /** Mean calibrated confidence of the window's predictions (null without predictions). */
  estimated_accuracy?: number | null;
  estimated_accuracy_interval?: number[] | null;
  holdout_accuracy?: number | null;
  performance?: DriftPerformance | null;
  feature_psi?: Record<string, number | null>;
  psi_threshold?: number | null;
}

export interface DriftPerformance {
  reference: number | null;
  value: number | null;
  source: 'realised' | 'estimated' | null;
  change: number | null;
  threshold: number;
  dropped: boolean;
}

export interface DriftFeature {
  name: string;
  type?: string;
  psi?: number | null;
  js?: number | null;
  severity?: string | null;
  reference_shares?: number[];
  current_shares?: number[];
  bin_labels?: string[];
}

export interface DriftReport extends DriftSummary {
  drifted_features: string[];
  /** Free-form in the schema: read as DriftFeature. */
  features: Record<string, unknown>[];
  window_start: string | null;
  window_end: string | null;
}

export interface Alert {
  id: number;
  kind: string;
  severity: string;
  status: string;
  message: string;
  model_key: string | null;
  occurrences: number;
  first_seen_at: string;
  last_seen_at: string;
  link: Record<string, unknown>;
}

// Events --------------------------------------------------------------------

export interface EventItem {
  id: number;
  type: string;
  source: string;
  outcome: string;
  created_at: string;
  username: string | null;
  client_ip: string | null;
  method: string | null;
  path: string | null;
  status_code: number | null;
  suspicious: boolean;
  reasons: string[];
  message: string | null;
  job_id: string | null;
  model_key: string | null;
}

export interface EventDetail extends EventItem {
  input: Record<string, unknown> | null;
  output: Record<string, unknown> | null;
  user_agent: string | null;
}
