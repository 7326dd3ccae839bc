"""What a type of job is, in one place: its stages, the function a worker runs, what start-up
recovery does with it, and the Celery queue that carries it.

Each domain declares its kinds in its own ``jobs.py``; the application registers them
(``mlservice.wiring.register_job_kinds``) in every process that creates or runs jobs. This
package never imports a domain: it only knows the kinds it was given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.db import Database
from mlservice.jobs.models import Job, JobType
from mlservice.settings import Settings

if TYPE_CHECKING:
    from mlservice.jobs.reporter import JobReporter


@dataclass
class JobOutcome:
    result: dict[str, Any]
    model_version: str | None = None
    follow_up: list[str] = field(default_factory=list)  # queued job ids this job created


@dataclass
class WorkerContext:
    """What a worker process gives every job it runs (see jobs.runner.init_worker)."""

    settings: Settings
    database: Database
    artifacts: ArtifactStore
    cache: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[WorkerContext, Job, "JobReporter"], JobOutcome]
# Run at start-up for a job its process left running: the outcome it had already committed
# (result, model_version), so the job is completed; or None after undoing what would outlive a
# failed job. Without one, such a job simply fails.
Recovery = Callable[[Session, ArtifactStore, Job], "tuple[dict[str, Any], str | None] | None"]


@dataclass(frozen=True)
class JobKind:
    type: JobType
    stages: tuple[str, ...]
    handler: Handler | None = None  # None: nothing runs it (the job fails with a reason)
    recovery: Recovery | None = None
    queue: str = "default"  # the Celery queue (distributed mode): a worker may take only some


# Jobs' own kind: a job with no domain behind it (tests, manual bookkeeping).
OTHER = JobKind(JobType.other, stages=("run",))

_kinds: dict[str, JobKind] = {OTHER.type.value: OTHER}


def register(*kinds: JobKind) -> None:
    """Idempotent: every app and worker of one process registers the same kinds."""
    for kind in kinds:
        known = _kinds.get(kind.type.value)
        if known is not None and known != kind:
            raise ValueError(f"job type {kind.type.value!r} is already registered as {known}")
        _kinds[kind.type.value] = kind


def registered() -> tuple[JobKind, ...]:
    """Every kind this process knows, e.g. to hand on to a worker process it spawns."""
    return tuple(_kinds.values())


def kind_for(job_type: str | JobType) -> JobKind:
    name = job_type.value if isinstance(job_type, JobType) else job_type
    kind = _kinds.get(name)
    if kind is None:
        raise LookupError(f"no kind registered for jobs of type {name!r} (see mlservice.wiring)")
    return kind
