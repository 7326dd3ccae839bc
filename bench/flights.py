"""A real table of millions of rows for the large-data benchmarks (#19).

3,000,000 US domestic flights of January–June 2001 from the Bureau of Transportation Statistics'
on-time data, in time order, as published in the npm package vega-datasets 3.2.1
(`data/flights-3m.parquet`, BSD-3-Clause; the data is the US DOT's). It is fetched from the npm
registry on first use (`npm pack`, ~17 MB), checked against its SHA-256 and kept in
bench/.data/ (gitignored); the repository does not carry it.

Its columns: date (scheduled departure, minute resolution), delay (minutes), distance (miles),
origin and destination (229 and 228 airport codes). The classification task built from it:
is a flight more than 15 minutes late (``late``, 20 % of rows) from month, day of month,
weekday, departure hour, distance, origin and destination (5 numbers, 2 categories).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pandas as pd
from harness import REPO_ROOT

PACKAGE = "vega-datasets@3.2.1"
MEMBER = "package/data/flights-3m.parquet"
SHA256 = "dbeb920c90f59b6ccaff823dcc3d08f25a97fa1ce128d93f40be4e931f5900b0"
CACHE = REPO_ROOT / "bench" / ".data" / "flights-3m.parquet"
TARGET = "status"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parquet_path() -> Path:
    """The parquet file, fetched from the npm registry the first time."""
    if CACHE.exists() and _sha256(CACHE) == SHA256:
        return CACHE
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flights-") as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("vega-datasets-*.tgz")
        with tarfile.open(tarball) as archive:
            archive.extract(MEMBER, tmp, filter="data")
        fetched = Path(tmp) / MEMBER
        if _sha256(fetched) != SHA256:
            raise RuntimeError(f"{PACKAGE}'s {MEMBER} does not have the expected SHA-256 {SHA256}")
        shutil.move(fetched, CACHE)
    return CACHE


def flights(start: int, rows: int) -> pd.DataFrame:
    """Rows ``start`` to ``start + rows`` in time order, as the table a user would upload."""
    raw = pd.read_parquet(parquet_path()).iloc[start:start + rows]
    if len(raw) < rows:
        raise ValueError(f"the flights table has {len(raw) + start:,} rows, not {start + rows:,}")
    date = raw["date"].dt
    return pd.DataFrame({
        "month": date.month.to_numpy(),
        "day": date.day.to_numpy(),
        "weekday": date.weekday.to_numpy(),
        "hour": date.hour.to_numpy(),
        "distance": raw["distance"].to_numpy(),
        "origin": raw["origin"].to_numpy(),
        "destination": raw["destination"].to_numpy(),
        TARGET: (raw["delay"] > 15).map({True: "late", False: "on_time"}).to_numpy(),
    })
