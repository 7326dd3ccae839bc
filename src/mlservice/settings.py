"""The one settings class: every knob is an ``ML_*`` environment variable or a line in ``.env``.

Names and defaults follow ml_service 0.11.2, the release this one replaces, so existing ``.env`` files keep
working; the README's settings table documents each one.
"""

from __future__ import annotations

import os
import re
import warnings
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LayerSizes = Annotated[tuple[int, ...], NoDecode]
StrList = Annotated[list[str], NoDecode]

# 0.11.2's settings that split SQLite into three files or artifacts into three folders. We keep one
# database URL and one artifacts root (bundles hold model, features and baseline together), so
# these are accepted for compatibility and reported as ignored instead of failing start-up.
IGNORED_0_11_SETTINGS = (
    "db_models_path",
    "db_users_path",
    "db_logs_path",
    "models_path",
    "features_path",
    "baselines_path",
)

SECRET_FIELDS = ("admin_api_token", "admin_password", "metrics_token")
# The longest password the login form and the API accept; ML_ADMIN_PASSWORD is held to it too.
MAX_PASSWORD_LENGTH = 1024


def _parse_layer_sizes(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not re.fullmatch(r"[\(\[]?\s*\d+(\s*,\s*\d+)*\s*,?\s*[\)\]]?", text):
        raise ValueError("expected layer sizes like (512, 256, 128)")
    return tuple(int(part) for part in re.findall(r"\d+", text))


API_WORKERS_HELP = "expected 'auto' (one API process per core) or a whole number of processes, 1 or more"


def parse_api_workers(value: Any) -> int | Literal["auto"]:
    """``ML_API_WORKERS`` / ``serve --workers``: 'auto' or a positive whole number."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if not text.isdigit() or int(text) < 1:
        raise ValueError(API_WORKERS_HELP)
    return int(text)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ML_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # Server
    service_host: str = "0.0.0.0"
    service_port: int = Field(8085, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # API processes sharing the port (`serve --workers N`); see the README's "Several API processes".
    api_workers: int | Literal["auto"] = 1
    cors_origins: StrList = ["http://localhost:6565", "http://127.0.0.1:6565"]
    max_body_mb: float = Field(200.0, gt=0)
    max_table_mb: float = Field(4096.0, gt=0)
    dashboard_dir: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_dir: Path | None = None
    log_max_mb: float = Field(10.0, gt=0)
    log_backups: int = Field(5, ge=0, le=1000)
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    # Storage
    data_dir: Path = Path("./data")
    database_url: str | None = None
    db_timeout: float = Field(60.0, gt=0)
    artifacts_root: Path | None = None
    db_models_path: str | None = None
    db_users_path: str | None = None
    db_logs_path: str | None = None
    models_path: str | None = None
    features_path: str | None = None
    baselines_path: str | None = None

    # Security
    admin_api_token: SecretStr | None = None
    token_expiry_days: int = Field(365, ge=1, le=3650)
    session_expiry_days: int = Field(30, ge=1, le=365)
    admin_username: str = "admin"
    admin_password: SecretStr | None = None
    allow_registration: bool = True
    password_min_length: int = Field(8, ge=6, le=128)
    use_https: bool = False
    ssl_cert_file: Path = Path("./ssl/cert.pem")
    ssl_key_file: Path = Path("./ssl/key.pem")
    trust_proxy: bool = False
    trusted_proxies: StrList = ["127.0.0.1", "::1"]

    # Drift detection and retraining
    drift_psi_threshold: float = Field(0.1, gt=0)
    drift_js_threshold: float = Field(0.2, gt=0, le=1)
    drift_min_samples: int = Field(100, ge=1)
    daily_drift_check_time: time = time(23, 0)
    timezone: str = "UTC"
    client_data_confidence_threshold: float = Field(0.8, ge=0, le=1)
    retraining_accuracy_drop_threshold: float = Field(-0.05, ge=-1, le=1)
    auto_retrain: bool = True
    retrain_cooldown_hours: float = Field(24.0, ge=0)
    # What a challenger learns from and what it is judged on (training.retrain).
    # On: with few labels back they won in every seed of bench/bench_monitoring.py; with every
    # label back each pseudo-label is replaced by its true label, so they change nothing.
    retrain_pseudo_labels: bool = True
    retrain_max_rows: int = Field(200_000, ge=100)
    retrain_recent_share: float = Field(0.2, gt=0, lt=1)
    retrain_recent_min_rows: int = Field(30, ge=1)

    # ML parameters
    hidden_layer_sizes: LayerSizes = (512, 256, 128)
    large_dataset_hidden_layers: LayerSizes = (1024, 512, 256, 128)
    large_dataset_threshold: int = Field(500_000, ge=1)
    activation: Literal["relu", "tanh", "logistic", "identity"] = "relu"
    solver: Literal["adam", "sgd", "lbfgs"] = "adam"
    max_iter: int = Field(5000, ge=1)
    batch_size: int | Literal["auto"] = "auto"
    learning_rate_init: float = Field(0.001, gt=0)
    alpha: float = Field(0.0001, ge=0)
    early_stopping: bool = True
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    # Predictions
    sync_predict_max_rows: int = Field(1000, ge=1, le=100_000)
    prediction_log_retention_days: int = Field(90, ge=1)

    # Events and security monitoring
    events_enabled: bool = True
    event_retention_days: int = Field(90, ge=1)
    login_max_failures: int = Field(10, ge=1)
    login_max_failures_per_ip: int = Field(50, ge=1)
    login_failure_window_s: int = Field(900, ge=1)
    login_lockout_s: int = Field(300, ge=1)
    suspicious_login_failures: int = Field(5, ge=1)
    suspicious_forbidden_count: int = Field(5, ge=1)
    suspicious_window_s: int = Field(600, ge=1)
    # Security signals (see the README's rule table): thresholds of the rules that combine
    # signals, so a browser update or a second device is an informational event, not an alert.
    # Failed logins for this many distinct usernames from one IP within
    # ML_LOGIN_FAILURE_WINDOW_S: credential stuffing.
    suspicious_login_usernames: int = Field(5, ge=2)
    # One token used from two distant networks (another /16, /48 for IPv6) this close together.
    suspicious_network_switch_s: int = Field(600, ge=1)
    burst_max_requests: int = Field(5000, ge=1)
    burst_window_s: int = Field(10, ge=1)
    rate_limit_storage: str = "memory://"
    rate_limit_expensive: str = "60/minute"
    rate_limit_sync_predict: str = "100000/minute"

    # Workers
    queue: Literal["local", "celery"] = "local"
    broker_url: str = "redis://127.0.0.1:6379/0"
    min_workers: int = Field(1, ge=1)
    max_workers_limit: int = Field(8, ge=1)
    worker_cpu_per_task: float = Field(0.5, gt=0)
    # A batch prediction of at least this many rows is split into chunks predicted in parallel
    # by the job's threads (its share of the cores); smaller ones run as one pass.
    batch_parallel_min_rows: int = Field(20_000, ge=1)
    # Distributed mode (ML_QUEUE=celery)
    broker_key_prefix: str = ""
    broker_wait_s: float = Field(0.0, ge=0)
    worker_queues: StrList = ["train", "predict", "drift", "default"]
    worker_concurrency: int = Field(0, ge=0)
    job_heartbeat_s: float = Field(10.0, gt=0)
    job_heartbeat_timeout_s: float = Field(60.0, gt=0)
    job_reconcile_s: float = Field(15.0, gt=0)
    retry_lost_jobs: bool = True
    job_max_attempts: int = Field(3, ge=1)
    broker_visibility_timeout_s: int = Field(3600, ge=10)

    # Live updates (WebSocket)
    pubsub: Literal["auto", "local", "redis"] = "auto"
    pubsub_url: str | None = None
    pubsub_channel: str = Field("mlservice:live", min_length=1)
    ws_queue_size: int = Field(256, ge=1, le=100_000)
    ws_heartbeat_s: float = Field(20.0, gt=0)
    ws_revalidate_s: float = Field(5.0, gt=0)

    @field_validator("hidden_layer_sizes", "large_dataset_hidden_layers", mode="before")
    @classmethod
    def _layers(cls, value: Any) -> Any:
        value = _parse_layer_sizes(value)
        if isinstance(value, (tuple, list)) and (not value or any(int(v) < 1 for v in value)):
            raise ValueError("every hidden layer needs at least one unit")
        return value

    @field_validator("batch_size", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or int(text) < 1:
            raise ValueError("expected 'auto' or a positive whole number")
        return int(text)

    @field_validator("api_workers", mode="before")
    @classmethod
    def _api_workers(cls, value: Any) -> Any:
        return parse_api_workers(value)

    @field_validator("cors_origins", "trusted_proxies", "worker_queues", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_expensive", "rate_limit_sync_predict")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse

        if value.strip().lower() not in ("off", "none", "0", ""):
            try:
                parse(value.strip().lower())
            except ValueError:
                raise ValueError("expected a rate like '60/minute' or '100/second', or 'off'") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        text = value.strip()
        if text in ("memory", "memory://"):
            return "memory://"
        if not text.startswith(("redis://", "rediss://")):
            raise ValueError("use 'memory' or a redis://host:port/db URL")
        return text

    @field_validator("admin_api_token", "metrics_token")
    @classmethod
    def _token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters long")
        return value

    @field_validator("admin_password", mode="before")
    @classmethod
    def _blank_password_means_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_password")
    @classmethod
    def _usable_admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        """Refused at start, before the database is touched: an admin created with a password
        nobody can type at the login form would be a half-created admin, locked out for good."""
        if value is None:
            return value
        text = value.get_secret_value()
        if len(text) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"must be at most {MAX_PASSWORD_LENGTH} characters long (the login form's limit)")
        if any(not ch.isprintable() for ch in text):
            raise ValueError("contains a control character (a newline or tab pasted from a file?): "
                             "use printable characters only")
        if text != text.strip():
            raise ValueError("starts or ends with a space (a quoting mistake in .env?): remove it")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError("use sqlite:///<path> or postgresql+psycopg://user@host/db")
        if value and value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("pubsub_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use redis://host:port/db (or rediss://, unix://)")
        return value or None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"train", "predict", "drift", "default"})
        if unknown or not value:
            raise ValueError("expected a comma-separated subset of train,predict,drift,default")
        return value

    @model_validator(mode="after")
    def _workers_bounds(self) -> Settings:
        if self.min_workers > self.max_workers_limit:
            raise ValueError("ML_MIN_WORKERS must not exceed ML_MAX_WORKERS_LIMIT")
        if self.job_heartbeat_timeout_s <= self.job_heartbeat_s:
            raise ValueError("ML_JOB_HEARTBEAT_TIMEOUT_S must exceed ML_JOB_HEARTBEAT_S")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'mlservice.db').resolve()}"

    @property
    def effective_api_workers(self) -> int:
        if self.api_workers == "auto":
            return os.cpu_count() or 1
        return self.api_workers

    @property
    def effective_artifacts_root(self) -> Path:
        return (self.artifacts_root or self.data_dir / "artifacts").resolve()

    @property
    def effective_pubsub(self) -> str:
        """``auto``: Redis when jobs run on Celery workers (other machines), else in-process."""
        if self.pubsub == "auto":
            return "redis" if self.queue == "celery" or self.pubsub_url else "local"
        return self.pubsub

    @property
    def effective_pubsub_url(self) -> str:
        return self.pubsub_url or self.broker_url

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_table_bytes(self) -> int:
        return int(self.max_table_mb * 1024 * 1024)

    def ignored_0_11_settings(self) -> list[str]:
        return [f"ML_{name.upper()}" for name in IGNORED_0_11_SETTINGS if getattr(self, name)]

    def masked(self) -> dict[str, Any]:
        """Effective settings for display, secrets replaced by a marker."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = "********" if value is not None else "(not set)"
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, time):
                value = value.strftime("%H:%M")
            shown[f"ML_{name.upper()}"] = value
        shown["(database url in use)"] = self.effective_database_url
        shown["(artifacts root in use)"] = str(self.effective_artifacts_root)
        return shown


class SettingsError(Exception):
    """Start-up settings are invalid; the message names each offending variable."""


def describe_validation_error(error: ValidationError) -> str:
    lines = []
    seen: set[str] = set()
    for issue in error.errors():
        field = str(issue["loc"][0]) if issue["loc"] else "settings"
        if field in seen:
            continue
        seen.add(field)
        variable = f"ML_{field.upper()}" if field in Settings.model_fields else field
        given = issue.get("input")
        hide = isinstance(given, dict) or field in SECRET_FIELDS
        given_text = "" if hide else f" (got {given!r})"
        message = issue["msg"].removeprefix("Value error, ")
        lines.append(f"Invalid setting {variable}: {message}{given_text}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    for variable in settings.ignored_0_11_settings():
        warnings.warn(
            f"{variable} is ignored: ML Service uses one ML_DATABASE_URL and one ML_ARTIFACTS_ROOT",
            stacklevel=2,
        )
    return settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
