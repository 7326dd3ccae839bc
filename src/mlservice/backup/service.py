"""``mlservice backup`` and ``mlservice restore``.

Backup, while the service runs: snapshot the database (backup/database.py), copy every artifact
the *snapshot* refers to (so the files match its rows), copy the prediction log, and write the
manifest last. All of it goes into a hidden directory beside PATH that is renamed to PATH at the
end: a backup that stopped half-way never looks like one.

Restore, into an empty target: read and verify the whole backup first (every checksum, every
referenced artifact present, a migration revision this release knows), check the target is
empty, and only then write: artifacts into a hidden directory renamed into place, the database
(SQLite: a copy migrated beside its final name, then renamed; PostgreSQL: pg_restore in one
transaction, then the migrations). A failure on the way removes what it wrote."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from mlservice import __version__
from mlservice.artifacts import ArtifactStore, fsync_directory
from mlservice.backup import database as snapshots
from mlservice.backup.manifest import (
    ARTIFACTS_DIR,
    MANIFEST,
    BackupError,
    FileEntry,
    Manifest,
    copy_file,
    entry_for,
    verify,
)
from mlservice.backup.references import Reference
from mlservice.db import Database
from mlservice.db.migrate import MIGRATIONS_DIR, upgrade
from mlservice.predictions.log import LOG_DIR, read_stream
from mlservice.settings import Settings

log = logging.getLogger(__name__)

# A referenced file may vanish between the snapshot and its copy (a dataset deleted meanwhile);
# a fresh snapshot no longer refers to it. Still missing after this many: the live database
# itself refers to a missing file, which the manifest reports.
SNAPSHOT_ATTEMPTS = 3


@dataclass
class BackupSummary:
    path: Path
    manifest: Manifest

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.manifest.files)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _is_empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def _copy_tree(source: Path, work: Path, relative: str) -> list[FileEntry]:
    """A file or a directory of the artifacts root into the backup; [] if it is gone."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            return []
    else:
        files = [source]
    entries = []
    for path in files:
        name = relative if path == source else f"{relative}/{path.relative_to(source).as_posix()}"
        stored = f"{ARTIFACTS_DIR}/{name}"
        try:
            size, sha256 = copy_file(path, work / stored)
        except FileNotFoundError:
            return []
        entries.append(FileEntry(stored, size, sha256))
    return entries


def _copy_references(
    store: ArtifactStore, work: Path, references: list[Reference]
) -> tuple[list[FileEntry], list[Reference]]:
    entries: list[FileEntry] = []
    missing: list[Reference] = []
    done: set[str] = set()
    for reference in references:
        if reference.path in done:
            continue
        done.add(reference.path)
        copied = _copy_tree(store.path(reference.path), work, reference.path)
        if copied:
            entries.extend(copied)
        else:
            missing.append(reference)
    return entries, missing


def _copy_prediction_log(store: ArtifactStore, work: Path) -> list[FileEntry]:
    """Every logged prediction up to now. Closed files are copied as they are; a segment still
    being appended to (Arrow stream) is read up to its last complete batch — every acknowledged
    prediction, as the log flushes before it answers — and stored as Parquet, as compaction would."""
    root = store.path(LOG_DIR)
    entries: list[FileEntry] = []
    if not root.is_dir():
        return entries
    for day_dir in sorted(p for p in root.glob("*/*") if p.is_dir()):
        names = [p for p in day_dir.iterdir() if not p.name.startswith(".")]
        closed = {p.stem for p in names if p.suffix == ".parquet"}
        open_streams = {p.stem for p in names if p.suffix == ".arrows"} - closed
        for stem in sorted(closed | open_streams):
            relative = f"{store.relative(day_dir)}/{stem}.parquet"
            table = read_stream(day_dir / f"{stem}.arrows") if stem in open_streams else None
            if table is not None:
                target = work / ARTIFACTS_DIR / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, target, compression="zstd")
                entries.append(entry_for(work, target))
            elif (day_dir / f"{stem}.parquet").exists():  # closed, or compacted while we looked
                entries.extend(_copy_tree(day_dir / f"{stem}.parquet", work, relative))
    return entries


def _snapshot(settings: Settings, work: Path) -> snapshots.Snapshot:
    url = settings.effective_database_url
    if snapshots.kind_of(url) == "sqlite":
        return snapshots.snapshot_sqlite(url, work, settings.db_timeout)
    return snapshots.snapshot_postgres(url, work)


def create_backup(settings: Settings, path: Path) -> BackupSummary:
    target = path.resolve()
    if not _is_empty(target):
        raise BackupError(
            f"{target} already exists and is not empty: give a new path for the backup"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            started = _now()
            snapshot = _snapshot(settings, work)
            store = ArtifactStore(settings.effective_artifacts_root)  # after: it creates the root
            entries, missing = _copy_references(store, work, snapshot.references)
            if not missing or attempt == SNAPSHOT_ATTEMPTS:
                break
            log.warning(
                "%d referenced file(s) vanished during the backup (attempt %d); taking a new snapshot",
                len(missing),
                attempt,
            )
        entries.insert(0, entry_for(work, work / snapshot.file))
        entries.extend(_copy_prediction_log(store, work))
        absent = {reference.path for reference in missing}
        manifest = Manifest(
            mlservice_version=__version__,
            alembic_revision=snapshot.revision,
            created_at=_now(),
            started_at=started,
            database_kind=snapshot.kind,
            database_file=snapshot.file,
            tables=snapshot.tables,
            references=sorted({r.path for r in snapshot.references} - absent),
            files=entries,
            missing_references=[{"path": r.path, "what": r.what} for r in missing],
        )
        (work / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        fsync_directory(work)
        if target.exists():
            target.rmdir()  # empty, checked above; rename needs the name free
        os.rename(work, target)
        fsync_directory(target.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupSummary(target, manifest)


# Restore -------------------------------------------------------------------------------------


def _known_revision(revision: str | None, manifest: Manifest) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        ScriptDirectory.from_config(config).get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        raise BackupError(
            f"the backup's database is at migration {revision!r} (made by mlservice {manifest.mlservice_version}), "
            f"which mlservice {__version__} does not know: restore it with that release or a newer one"
        ) from None


def _check_target(settings: Settings, manifest: Manifest) -> None:
    url = settings.effective_database_url
    kind = snapshots.kind_of(url)
    if kind != manifest.database_kind:
        raise BackupError(
            f"the backup holds a {manifest.database_kind} database but the target ML_DATABASE_URL is {kind}: "
            "restore into the same kind of database"
        )
    root = settings.effective_artifacts_root
    if not _is_empty(root):
        raise BackupError(
            f"the target artifacts directory {root} is not empty: restore only into an empty "
            "data directory (set ML_DATA_DIR / ML_ARTIFACTS_ROOT to a new one)"
        )
    if kind == "sqlite":
        database = snapshots.sqlite_path(url)
        present = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
        if present:
            raise BackupError(
                f"the target database {present[0]} already exists: restore only into an empty "
                "data directory (set ML_DATA_DIR / ML_DATABASE_URL to a new one)"
            )
    else:
        tables = snapshots.postgres_tables(url)
        if tables:
            raise BackupError(
                f"the target database has {len(tables)} table(s) ({', '.join(tables[:5])}): "
                "restore only into an empty database (createdb a new one)"
            )


def _check_counts(restored: dict[str, int], manifest: Manifest) -> None:
    differ = {
        name: (restored.get(name), count)
        for name, count in manifest.tables.items()
        if restored.get(name) != count
    }
    if differ:
        shown = ", ".join(
            f"{name}: {got} rows, expected {want}" for name, (got, want) in sorted(differ.items())
        )
        raise BackupError(f"the restored database does not match the backup's row counts ({shown})")


def _restore_artifacts(backup: Path, manifest: Manifest, work: Path) -> None:
    """Into ``work``, a hidden directory beside the root that the caller renames into place."""
    work.mkdir(parents=True)
    prefix = f"{ARTIFACTS_DIR}/"
    for entry in manifest.files:
        if not entry.path.startswith(prefix):
            continue
        _, sha256 = copy_file(backup / entry.path, work / entry.path.removeprefix(prefix))
        if sha256 != entry.sha256:  # changed since it was verified
            raise BackupError(
                f"{entry.path} changed while it was restored (checksum mismatch); nothing was restored"
            )


def _restore_sqlite(backup: Path, manifest: Manifest, temporary: Path, timeout: float) -> None:
    """The snapshot copied to ``temporary`` (beside its final name) and migrated there."""
    temporary.parent.mkdir(parents=True, exist_ok=True)
    entry = next(e for e in manifest.files if e.path == manifest.database_file)
    if copy_file(backup / entry.path, temporary)[1] != entry.sha256:
        raise BackupError(
            f"{entry.path} changed while it was restored (checksum mismatch); nothing was restored"
        )
    with snapshots.read_only_sqlite(temporary) as connection:
        _check_counts(snapshots.describe(connection)[1], manifest)
    database = Database(f"sqlite:///{temporary}", timeout=timeout)
    try:
        upgrade(database)
    finally:
        database.dispose()
    # Fold the WAL back into the file so the rename carries every page.
    connection = sqlite3.connect(temporary)
    try:
        connection.execute("PRAGMA journal_mode=DELETE")
    finally:
        connection.close()


def restore_backup(settings: Settings, path: Path) -> Manifest:
    backup = path.resolve()
    manifest = Manifest.load(backup)
    verify(backup, manifest)
    _known_revision(manifest.alembic_revision, manifest)
    _check_target(settings, manifest)
    # Nothing was written up to here; from here a failure removes what was written.
    url = settings.effective_database_url
    root = settings.effective_artifacts_root
    places = [root.parent] + (
        [snapshots.sqlite_path(url).parent] if manifest.database_kind == "sqlite" else []
    )
    made = sorted(
        {p for place in places for p in (place, *place.parents) if not p.exists()}, reverse=True
    )
    artifacts_work: Path | None = None
    database_work: Path | None = None
    postgres_written = artifacts_placed = False
    try:
        artifacts_work = root.parent / f".{root.name}.restoring-{uuid.uuid4().hex[:12]}"
        _restore_artifacts(backup, manifest, artifacts_work)
        if manifest.database_kind == "sqlite":
            final = snapshots.sqlite_path(url)
            database_work = final.with_name(f".{final.name}.restoring-{uuid.uuid4().hex[:12]}")
            _restore_sqlite(backup, manifest, database_work, settings.db_timeout)
        else:
            postgres_written = True
            _check_counts(
                snapshots.restore_postgres(url, backup / manifest.database_file), manifest
            )
            database = Database(url, timeout=settings.db_timeout)
            try:
                upgrade(database)
            finally:
                database.dispose()
        if root.exists():
            root.rmdir()  # empty, checked above
        os.rename(artifacts_work, root)
        artifacts_work, artifacts_placed = None, True
        if database_work is not None:
            os.rename(database_work, snapshots.sqlite_path(url))
            fsync_directory(database_work.parent)
            database_work = None
    except BaseException:
        if artifacts_work is not None:
            shutil.rmtree(artifacts_work, ignore_errors=True)
        if artifacts_placed and database_work is not None:
            # the artifacts were in place, then the database's rename failed
            shutil.rmtree(root, ignore_errors=True)
        if database_work is not None:
            for leftover in database_work.parent.glob(f"{database_work.name}*"):
                leftover.unlink(missing_ok=True)
        if postgres_written:
            snapshots.empty_postgres(url)
        for directory in made:  # deepest first; the ones this restore created, if left empty
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise
    return manifest
