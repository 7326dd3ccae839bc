from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from mlservice.settings import Settings, SettingsError, load_settings


def test_seed_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.service_port == 8085
    assert settings.hidden_layer_sizes == (512, 256, 128)
    assert settings.large_dataset_hidden_layers == (1024, 512, 256, 128)
    assert settings.large_dataset_threshold == 500_000
    assert settings.daily_drift_check_time == time(23, 0)
    assert settings.drift_psi_threshold == 0.1 and settings.drift_js_threshold == 0.2
    assert settings.retraining_accuracy_drop_threshold == -0.05
    assert settings.batch_size == "auto" and settings.early_stopping is True


def test_reads_seed_style_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_HIDDEN_LAYER_SIZES", "(64, 32)")
    monkeypatch.setenv("ML_BATCH_SIZE", "256")
    monkeypatch.setenv("ML_EARLY_STOPPING", "True")
    monkeypatch.setenv("ML_DAILY_DRIFT_CHECK_TIME", "06:30")
    monkeypatch.setenv("ML_CORS_ORIGINS", "http://a.example, http://b.example")
    settings = load_settings(_env_file=None)
    assert settings.hidden_layer_sizes == (64, 32)
    assert settings.batch_size == 256
    assert settings.daily_drift_check_time == time(6, 30)
    assert settings.cors_origins == ["http://a.example", "http://b.example"]


def test_reads_a_dotenv_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("ML_SERVICE_PORT=9000\nML_ALPHA=0.01\n")
    settings = Settings(_env_file=env)
    assert settings.service_port == 9000 and settings.alpha == 0.01


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ML_HIDDEN_LAYER_SIZES", "(512, x)", "Invalid setting ML_HIDDEN_LAYER_SIZES: expected layer sizes"),
        ("ML_SERVICE_PORT", "70000", "Invalid setting ML_SERVICE_PORT: Input should be less than or equal to 65535"),
        ("ML_ADMIN_API_TOKEN", "too-short", "Invalid setting ML_ADMIN_API_TOKEN: must be at least 32 characters"),
        ("ML_BATCH_SIZE", "lots", "Invalid setting ML_BATCH_SIZE: expected 'auto' or a positive whole number"),
        ("ML_VALIDATION_FRACTION", "1.5", "Invalid setting ML_VALIDATION_FRACTION"),
        ("ML_DATABASE_URL", "mysql://x", "Invalid setting ML_DATABASE_URL"),
        ("ML_TIMEZONE", "Mars/Olympus", "Invalid setting ML_TIMEZONE: unknown time zone"),
        # An admin nobody could log in as: refused before the database is touched.
        ("ML_ADMIN_PASSWORD", "secret\n", "Invalid setting ML_ADMIN_PASSWORD: contains a control character"),
        ("ML_ADMIN_PASSWORD", " secret", "Invalid setting ML_ADMIN_PASSWORD: starts or ends with a space"),
        ("ML_ADMIN_PASSWORD", "x" * 1025, "Invalid setting ML_ADMIN_PASSWORD: must be at most 1024 characters"),
    ],
)
def test_invalid_values_name_the_variable(monkeypatch, variable, value, message) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text  # one clear line
    if variable == "ML_ADMIN_API_TOKEN":
        assert value not in text  # secrets are never echoed


def test_serve_refuses_to_start_with_a_bad_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlservice", "serve"],
        env={"ML_HIDDEN_LAYER_SIZES": "(512, x)", "PATH": "/usr/bin:/bin", "ML_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Invalid setting ML_HIDDEN_LAYER_SIZES: expected layer sizes like (512, 256, 128) (got '(512, x)')"
    )


def test_masked_config_hides_secrets() -> None:
    settings = Settings(_env_file=None, admin_api_token="t" * 40, admin_password="hunter2-hunter2")
    shown = settings.masked()
    assert shown["ML_ADMIN_API_TOKEN"] == "********"
    assert shown["ML_ADMIN_PASSWORD"] == "********"
    assert "t" * 40 not in str(shown) and "hunter2" not in str(shown)
