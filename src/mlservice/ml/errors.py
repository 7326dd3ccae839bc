"""Exception classes of the ML engine.

Every problem caused by the caller's data or arguments raises a subclass of
:class:`DataError` (itself a :class:`ValueError`) whose message is meant for a
human and whose ``code`` is a stable machine-readable identifier, so the web
layer can turn it into a 4xx answer. Problems with stored model bundles raise
:class:`BundleError` subclasses; a cancelled training run raises
:class:`TrainingCancelled`.
"""

from __future__ import annotations

from typing import Any


class MLError(Exception):
    """Base class of every exception raised on purpose by ``mlservice.ml``."""

    code: str = "ml_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class DataError(MLError, ValueError):
    """The input data (file, records, target, columns) cannot be used; 4xx."""

    code = "bad_data"


class LimitExceeded(DataError):
    """More rows / columns / bytes than the configured limit; 413-like."""

    code = "limit_exceeded"


class MissingColumnsError(DataError):
    """Columns the model needs are absent from the prediction input."""

    code = "missing_columns"

    def __init__(self, missing: list[str], message: str | None = None) -> None:
        self.missing = list(missing)
        super().__init__(
            message
            or "missing required column(s): " + ", ".join(repr(c) for c in self.missing),
            missing=self.missing,
        )


class ConfigError(MLError, ValueError):
    """An invalid engine argument (unknown column type, bad parameter value)."""

    code = "bad_config"


class BackendUnavailable(MLError, RuntimeError):
    """The requested training backend/device (PyTorch, CUDA) is not available."""

    code = "backend_unavailable"


class TrainingCancelled(MLError):
    """Training stopped between epochs because ``should_stop()`` returned True."""

    code = "cancelled"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        super().__init__(f"training cancelled after epoch {epoch}", epoch=epoch)


class BundleError(MLError):
    """A model bundle cannot be saved or loaded."""

    code = "bundle_error"


class UntrustedBundleError(BundleError):
    """The bundle path lies outside the trusted root."""

    code = "bundle_untrusted"


class BundleIntegrityError(BundleError):
    """A bundle file is modified or its SHA-256 does not match (or it is missing:
    :class:`BundleMissingError`)."""

    code = "bundle_tampered"


class BundleMissingError(BundleIntegrityError):
    """The bundle directory, its manifest or a file it lists is not on disk.

    Not tampering: usually a file deleted by hand or an artifact store restored
    without it, which a backup or a retrain fixes. A subclass of
    :class:`BundleIntegrityError` so callers that refuse an incomplete bundle
    keep catching it; the web layer answers it apart (503 ``bundle_missing``)."""

    code = "bundle_missing"


class IncompatibleBundleError(BundleError):
    """The bundle was written by an incompatible format or library version."""

    code = "bundle_incompatible"
