"""Which artifacts a database refers to: every column (and JSON key) that stores a path relative
to ML_ARTIFACTS_ROOT. tests/reliability/test_backup.py fails when a table gains a path column
that is listed in neither ARTIFACT_COLUMNS nor NOT_ARTIFACT_COLUMNS."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from mlservice.datasets.models import Dataset
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.predictions.service import results_path
from mlservice.registry.models import ModelVersion

ARTIFACT_COLUMNS = (
    "datasets.path",
    "model_versions.bundle_path",
    "model_versions.training_data_path",
)
ARTIFACT_JSON_KEYS = ("jobs.params.input_path",)  # a batch's or drift check's uploaded input
NOT_ARTIFACT_COLUMNS = {"events.path": "the URL path of the request an event records"}


@dataclass(frozen=True)
class Reference:
    path: str  # relative to the artifacts root: a file, or a directory (a model bundle)
    what: str  # for messages: which row refers to it


def artifact_references(connection: Connection) -> list[Reference]:
    """Read in the snapshot's own transaction, so the set matches the snapshot's rows."""
    found: list[Reference] = []
    for dataset_id, path in connection.execute(select(Dataset.id, Dataset.path)):
        found.append(Reference(path, f"dataset {dataset_id}"))
    versions = select(
        ModelVersion.model_key,
        ModelVersion.version,
        ModelVersion.bundle_path,
        ModelVersion.training_data_path,
    )
    for key, version, bundle, data in connection.execute(versions):
        found.append(Reference(bundle, f"model {key} {version} (bundle)"))
        if data:
            found.append(Reference(data, f"model {key} {version} (training data)"))
    for job_id, job_type, status, params in connection.execute(
        select(Job.id, Job.type, Job.status, Job.params)
    ):
        if (params or {}).get("input_path"):
            found.append(Reference(params["input_path"], f"job {job_id} (input)"))
        if job_type == JobType.predict.value and status == JobStatus.completed.value:
            found.append(Reference(results_path(job_id), f"job {job_id} (results)"))
    return found
