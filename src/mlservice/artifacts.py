"""The artifact store: files under ``ML_ARTIFACTS_ROOT`` (datasets, model bundles, prediction
results and logs). The database holds only paths relative to the root. Writes are atomic:
write a temporary file beside the target, fsync, rename."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

# ".<target name>.<uuid hex>.tmp", as atomic_file names them
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, relative: str) -> Path:
        resolved = (self.root / relative).resolve()
        if not resolved.is_relative_to(self.root):
            raise ValueError(f"artifact path {relative!r} escapes the artifacts root")
        return resolved

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    @contextmanager
    def atomic_file(self, relative: str) -> Iterator[Path]:
        """Yield a temporary path to write; on success it is fsynced and renamed into place."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            yield temporary
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            fsync_directory(target.parent)
        finally:
            temporary.unlink(missing_ok=True)

    def write_with(self, relative: str, writer: Callable[[Path], None]) -> Path:
        with self.atomic_file(relative) as temporary:
            writer(temporary)
        return self.path(relative)

    def delete(self, relative: str) -> None:
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def sweep_temporary(self, older_than_s: float) -> int:
        """Remove temporary files a crash left behind (atomic_file removes its own otherwise)."""
        found = (path for path in self.root.rglob(".*.tmp") if TEMPORARY_NAME.match(path.name) and path.is_file())
        return remove_stale(found, older_than_s)


def remove_stale(paths: Iterable[Path], older_than_s: float) -> int:
    """Remove those of the files not modified for ``older_than_s``: a younger leftover may belong
    to a write still running, here or on a worker. Returns how many went."""
    cutoff = time.time() - older_than_s
    removed = 0
    for path in paths:
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def get_artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
