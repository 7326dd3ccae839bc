"""Model bundles: one self-describing directory per model version.

Layout (no pickle anywhere: JSON, ``.npz`` read with ``allow_pickle=False``
and Parquet)::

    manifest.json     format, format_version, library versions, target,
                      classes, summary metrics and the SHA-256 + size of every
                      other file
    schema.json       column types and reasons
    features.json/.npz   fitted feature pipeline (constants, category maps,
                      TF-IDF vocabularies / hashing settings, idf vectors)
    network.json/.npz    MLP parameters, architecture, training curves and the
                      calibration temperature (format 1.1; 1.0 bundles load with 1.0)
    metrics.json      holdout metrics
    profile.json      baseline profile for drift checks
    training.json     training configuration and run information
    holdout.parquet   the holdout rows (features + target)

:func:`save_bundle` writes into a temporary sibling directory, fsyncs every
file and the directory, then renames it into place (atomic). :func:`load_bundle`
accepts only a directory inside the caller's trusted root, refuses a bundle of
an incompatible format or scikit-learn major version with a clear message,
and checks every file's SHA-256 against the manifest before parsing it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import (
    BundleError,
    BundleIntegrityError,
    BundleMissingError,
    IncompatibleBundleError,
    UntrustedBundleError,
)
from .evaluation import to_jsonable
from .features import FeatureConfig, FeaturePipeline
from .io import ReadLimits
from .model import AdaptiveMLPClassifier
from .profile import ProfileConfig
from .schema import Schema, SchemaConfig
from .training import TrainedModel, TrainingConfig

__all__ = ["save_bundle", "load_bundle", "library_versions", "BUNDLE_FORMAT", "FORMAT_VERSION"]

BUNDLE_FORMAT = "mlservice-model-bundle"
#: 1.1 adds the calibration temperature: an engine reading 1.0 only would serve uncalibrated
#: probabilities from a 1.1 bundle, so it refuses it; 1.0 bundles load with temperature 1.0
FORMAT_VERSION = "1.1"
MANIFEST = "manifest.json"


def library_versions() -> dict[str, str]:
    import pyarrow
    import scipy
    import sklearn

    from mlservice import __version__ as engine_version

    out = {
        "mlservice": engine_version,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
    }
    return out


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(to_jsonable(obj), ensure_ascii=False, allow_nan=False, indent=1).encode()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    df = frame.copy()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: None if v is None or v is pd.NA or
                              (isinstance(v, float) and v != v) else str(v))
    df.columns = [str(c) for c in df.columns]
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_bundle(trained: TrainedModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``trained`` as a bundle at ``directory`` (which must not exist);
    atomic: a crash leaves either no bundle or a complete one."""
    final = Path(directory)
    if final.exists():
        raise BundleError(f"a bundle already exists at {final}", code="bundle_exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    feat_meta, feat_arrays = trained.features.to_state()
    net_meta, net_arrays = trained.estimator.to_state()
    classes = to_jsonable(list(trained.estimator.classes_))
    files: dict[str, bytes] = {
        "schema.json": _json_bytes(trained.schema.to_dict()),
        "features.json": _json_bytes(feat_meta),
        "features.npz": _npz_bytes(feat_arrays),
        "network.json": _json_bytes({**net_meta, "classes": classes,
                                     "temperature": float(trained.temperature)}),
        "network.npz": _npz_bytes(net_arrays),
        "metrics.json": _json_bytes(trained.metrics),
        "profile.json": _json_bytes(trained.profile),
        "training.json": _json_bytes({"config": trained.config.to_dict(), "info": trained.info}),
        "holdout.parquet": _parquet_bytes(trained.holdout),
    }
    libs = library_versions()
    if trained.estimator.backend_ == "torch":
        try:
            import torch

            libs["torch"] = torch.__version__
        except ImportError:  # pragma: no cover
            pass
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "libraries": libs,
        "target": trained.target,
        "classes": classes,
        "features": trained.schema.features,
        "summary": {
            k: trained.metrics.get(k)
            for k in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece", "n_samples")
        },
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in files.items()
        },
    }
    files[MANIFEST] = _json_bytes(manifest)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    trained.bundle_path = final
    return final


def _major(v: str) -> int:
    try:
        return int(str(v).split(".")[0])
    except ValueError:
        return -1


def _check_compatible(manifest: dict[str, Any], path: Path) -> None:
    if manifest.get("format") != BUNDLE_FORMAT:
        raise IncompatibleBundleError(f"{path} is not an ML Service model bundle")
    fv = str(manifest.get("format_version", "?"))
    try:
        major, minor = (int(x) for x in fv.split(".")[:2])
    except ValueError:
        raise IncompatibleBundleError(f"the bundle at {path} has an invalid format version {fv!r}")
    our_major, our_minor = (int(x) for x in FORMAT_VERSION.split("."))
    if major != our_major or minor > our_minor:
        raise IncompatibleBundleError(
            f"the bundle at {path} has format version {fv}, but this engine reads format "
            f"{our_major}.0–{FORMAT_VERSION}; retrain the model or load it with a matching "
            "ML Service version",
            bundle_format_version=fv,
            supported_format_version=FORMAT_VERSION,
        )
    import sklearn

    made = str(manifest.get("libraries", {}).get("scikit-learn", "?"))
    if _major(made) != _major(sklearn.__version__):
        raise IncompatibleBundleError(
            f"the bundle at {path} was made with scikit-learn {made}, but scikit-learn "
            f"{sklearn.__version__} is installed (major versions differ, text features may "
            "not be reproduced); retrain the model or install a matching scikit-learn",
            library="scikit-learn",
            bundle_version=made,
            installed_version=sklearn.__version__,
        )


def _resolve_trusted(directory: str | os.PathLike[str], trusted_root: str | os.PathLike[str]
                     ) -> Path:
    try:
        root = Path(trusted_root).resolve(strict=True)
    except FileNotFoundError:
        raise UntrustedBundleError(f"the trusted root {trusted_root} does not exist") from None
    try:
        path = Path(directory).resolve(strict=True)
    except FileNotFoundError:
        raise BundleMissingError(f"no bundle at {directory}") from None
    if path == root or not path.is_relative_to(root):
        raise UntrustedBundleError(
            f"refusing to load a bundle from {path}: it is not inside the trusted root {root}"
        )
    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle directory", code="bundle_not_found")
    return path


def load_bundle(directory: str | os.PathLike[str], trusted_root: str | os.PathLike[str]
                ) -> TrainedModel:
    """Load a bundle saved by :func:`save_bundle` from ``directory``, which must lie
    inside ``trusted_root``. Every file is checked against the SHA-256 in the
    manifest before it is parsed; nothing is unpickled."""
    path = _resolve_trusted(directory, trusted_root)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleMissingError(f"{path} has no {MANIFEST}", file=MANIFEST)
    try:
        manifest = json.loads(mpath.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleIntegrityError(f"the manifest of {path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleIntegrityError(f"the manifest of {path} is not a JSON object")
    _check_compatible(manifest, path)
    blobs: dict[str, bytes] = {}
    for name, meta in manifest.get("files", {}).items():
        fp = (path / name).resolve()
        if fp.parent != path:  # a manifest naming a file elsewhere was written by someone else
            raise BundleIntegrityError(f"bundle file {name!r} lies outside {path}", file=name)
        if not fp.is_file():
            raise BundleMissingError(f"bundle file {name!r} is missing from {path}", file=name)
        data = fp.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != meta.get("sha256") or len(data) != meta.get("bytes"):
            raise BundleIntegrityError(
                f"bundle file {name!r} in {path} does not match its SHA-256 in the manifest "
                "(modified or corrupted); refusing to load it",
                file=name,
            )
        blobs[name] = data
    required = {"schema.json", "features.json", "features.npz", "network.json", "network.npz",
                "metrics.json", "profile.json", "training.json", "holdout.parquet"}
    if required - set(blobs):
        raise BundleIntegrityError(
            f"the manifest of {path} does not list: {', '.join(sorted(required - set(blobs)))}"
        )

    def js(name: str) -> Any:
        return json.loads(blobs[name])

    def npz(name: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(blobs[name]), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    try:
        schema = Schema.from_dict(js("schema.json"))
        features = FeaturePipeline.from_state(js("features.json"), npz("features.npz"), schema)
        net = js("network.json")
        estimator = AdaptiveMLPClassifier.from_state(net, npz("network.npz"), net["classes"])
        temperature = float(net.get("temperature", 1.0))
        if not 0.0 < temperature < float("inf"):
            raise ValueError(f"invalid calibration temperature {temperature!r}")
        training = js("training.json")
        holdout = pd.read_parquet(io.BytesIO(blobs["holdout.parquet"]))
        config = _config_from_dict(training.get("config", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleIntegrityError(f"the bundle at {path} is malformed: {exc}") from None
    model = TrainedModel(
        target=manifest["target"],
        schema=schema,
        features=features,
        estimator=estimator,
        metrics=js("metrics.json"),
        profile=js("profile.json"),
        holdout=holdout,
        config=config,
        info={**training.get("info", {}), "manifest": manifest},
        bundle_path=path,
        temperature=temperature,
    )
    return model


def _config_from_dict(d: dict[str, Any]) -> TrainingConfig:
    d = dict(d)
    nested = {
        "features": FeatureConfig,
        "schema": SchemaConfig,
        "profile": ProfileConfig,
        "limits": ReadLimits,
    }
    kw: dict[str, Any] = {}
    known = set(TrainingConfig.__dataclass_fields__)
    for k, v in d.items():
        if k not in known:
            continue
        if k in nested and isinstance(v, dict):
            cls = nested[k]
            fields = set(cls.__dataclass_fields__)
            v = cls(**{
                kk: (tuple(vv) if isinstance(vv, list) else vv)
                for kk, vv in v.items() if kk in fields
            })
        elif isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return TrainingConfig(**kw)
