"""The backup's manifest: what a backup holds and how to tell it is whole.

``manifest.json`` is written last, so a backup without one never finished. It lists every file
with its size and SHA-256, the artifact paths the database refers to, and the database's row
counts, so a restore can check all of it before it writes anything."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlservice.errors import AppError

MANIFEST = "manifest.json"
ARTIFACTS_DIR = "artifacts"  # inside a backup, the files of ML_ARTIFACTS_ROOT
FORMAT = 1
CHUNK = 1024 * 1024


class BackupError(AppError):
    """A backup or restore that cannot go ahead; the message says why and what to do."""

    status_code = 409
    code = "backup"


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the backup's root, POSIX separators
    size: int
    sha256: str


@dataclass
class Manifest:
    mlservice_version: str
    alembic_revision: str | None
    created_at: str
    started_at: str
    database_kind: str  # "sqlite" or "postgresql"
    database_file: str
    tables: dict[str, int]  # row counts of the snapshot
    references: list[str]  # artifact paths (relative to the artifacts root) the database refers to
    files: list[FileEntry] = field(default_factory=list)
    # Referenced by the live database but absent from its artifacts when the backup was taken
    # (a dangling reference of the service itself, reported, not invented).
    missing_references: list[dict[str, str]] = field(default_factory=list)
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, backup: Path) -> Manifest:
        path = backup / MANIFEST
        if not backup.is_dir():
            raise BackupError(
                f"{backup} is not a directory: give the directory `mlservice backup` wrote"
            )
        if not path.is_file():
            raise BackupError(
                f"{backup} has no {MANIFEST}: it is not a backup, or one that never finished "
                "(the manifest is written last)"
            )
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise BackupError(
                    f"{path} is of format {data.get('format')!r}; this release reads format {FORMAT}"
                )
            data["files"] = [FileEntry(**entry) for entry in data["files"]]
            return cls(**data)
        except BackupError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(
                f"{path} is damaged and cannot be read ({exc}): the backup cannot be trusted"
            ) from None


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def copy_file(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` (parents made), fsynced; returns the copy's size and SHA-256,
    hashed from the bytes written, so what is recorded is what is stored."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def entry_for(root: Path, path: Path) -> FileEntry:
    size, sha256 = hash_file(path)
    return FileEntry(path.relative_to(root).as_posix(), size, sha256)


def verify(backup: Path, manifest: Manifest) -> None:
    """Every listed file present with its size and checksum, the database file among them, and
    every referenced artifact backed by a file; raises BackupError naming each problem."""
    problems: list[str] = []
    listed: set[str] = set()
    for entry in manifest.files:
        path = (backup / entry.path).resolve()
        listed.add(entry.path)
        if not path.is_relative_to(backup.resolve()):
            problems.append(f"{entry.path}: a path outside the backup")
        elif not path.is_file():
            problems.append(f"{entry.path}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(
                f"{entry.path}: {path.stat().st_size} bytes, the manifest says {entry.size}"
            )
        elif hash_file(path)[1] != entry.sha256:
            problems.append(f"{entry.path}: checksum mismatch (the file was changed or damaged)")
    if manifest.database_file not in listed:
        problems.append(f"{manifest.database_file}: the database snapshot is not listed")
    prefixes = {name.rsplit("/", i)[0] for name in listed for i in range(1, name.count("/") + 1)}
    for reference in manifest.references:
        stored = f"{ARTIFACTS_DIR}/{reference}"
        if stored not in listed and stored not in prefixes:
            problems.append(f"{stored}: referenced by the database but not in the backup")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BackupError(
            f"the backup at {backup} is incomplete or damaged; nothing was restored:\n  {shown}{more}"
        )
