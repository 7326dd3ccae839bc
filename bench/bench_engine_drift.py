"""Drift benchmark: the engine's check_drift on 1,000,000 current rows × 15
columns (10 numeric, 5 categorical) against a profile of 50,000 reference
rows, and Evidently 0.7.23 ``Report([DataDriftPreset()])`` on the same data in
the same run as the reference.

    .venv/bin/python bench/bench_engine_drift.py [--rows 1000000] [--no-evidently]

Evidently 0.7.23 does not import with pandas 3, so it runs in its own
virtualenv, bench/.venv-evidently (created on first use with
``evidently==0.7.23 'pandas<3' pyarrow``), through a subprocess that reads the
same data from Parquet files; only its ``Report.run`` is timed, like only
``check_drift`` is timed here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mlservice.ml import build_profile, check_drift, infer_schema  # noqa: E402

EVIDENTLY_VENV = ROOT / "bench" / ".venv-evidently"
EVIDENTLY_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t = time.perf_counter()
snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
elapsed = time.perf_counter() - t
drifted = None
try:
    for m in snap.dict()["metrics"]:
        if "DriftedColumnsCount" in json.dumps(m, default=str):
            value = m.get("value")
            drifted = value.get("count") if isinstance(value, dict) else value
            break
except Exception as exc:
    drifted = repr(exc)
print(json.dumps({"seconds": elapsed, "drifted_columns": drifted}))
"""


def make_data(n: int, seed: int, shift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(10):
        loc = 0.3 if (shift and i < 3) else 0.0
        if i % 3 == 0:
            x = rng.normal(loc, 1.0, n)
        elif i % 3 == 1:
            x = rng.lognormal(loc, 0.7, n)
        else:
            x = rng.integers(0, 100, n).astype(np.float64) + loc * 30
        x[rng.random(n) < 0.02] = np.nan
        cols[f"num_{i}"] = x
    for j, k in enumerate((3, 8, 20, 50, 200)):
        cats = np.array([f"cat{j}_{v}" for v in range(k)], dtype=object)
        p = 1.0 / np.arange(1, k + 1)
        if shift and j == 0:
            p = p[::-1]
        codes = rng.choice(k, size=n, p=p / p.sum())
        s = pd.Series(cats[codes], dtype="str")
        s[rng.random(n) < 0.01] = np.nan
        cols[f"cat_{j}"] = s
    return pd.DataFrame(cols)


def ensure_evidently() -> Path | None:
    py = EVIDENTLY_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {EVIDENTLY_VENV} (evidently==0.7.23, pandas<3) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "evidently==0.7.23",
                            "pandas<3", "pyarrow"])
        if r.returncode != 0:
            return None
    return py


def run_evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> dict | None:
    """Evidently's DataDriftPreset on the same frames, in its own venv; None if it can't run."""
    py = ensure_evidently()
    if py is None:
        print("Evidently venv could not be created; no reference figure")
        return None
    with tempfile.TemporaryDirectory() as d:
        rp, cp = Path(d) / "ref.parquet", Path(d) / "cur.parquet"
        ref.to_parquet(rp)
        cur.to_parquet(cp)
        script = Path(d) / "ev.py"
        script.write_text(EVIDENTLY_SCRIPT)
        r = subprocess.run([str(py), str(script), str(rp), str(cp)], capture_output=True, text=True)
    if r.returncode != 0:
        print("Evidently failed:\n" + r.stderr[-3000:])
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reference-rows", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-evidently", action="store_true")
    args = ap.parse_args()

    ref = make_data(args.reference_rows, 1, shift=False)
    cur = make_data(args.rows, 2, shift=True)
    schema = infer_schema(ref)
    assert len(schema.numeric) == 10 and len(schema.categorical) == 5, schema.to_dict()
    t = time.perf_counter()
    profile = json.loads(json.dumps(build_profile(ref, schema)))
    print(f"profile of {len(ref):,} rows built in {time.perf_counter() - t:.3f} s "
          f"({len(json.dumps(profile)):,} bytes of JSON)")

    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        rep = check_drift(profile, cur)
        times.append(time.perf_counter() - t)
    ours = float(np.median(times))
    print(f"\n## check_drift: {len(cur):,} rows × {cur.shape[1]} columns vs a "
          f"{len(ref):,}-row profile")
    print(f"  median {ours:.3f} s, min {min(times):.3f} s over {args.repeat} runs "
          f"(target < 1 s); load average {os.getloadavg()[0]:.2f}")
    print(f"  verdict {rep['verdict']}, drifted {rep['drifted_features']}")

    if args.no_evidently:
        return
    ev = run_evidently(ref, cur)
    if ev is None:
        return
    print(f"\n## Evidently 0.7.23 Report([DataDriftPreset()]).run on the same data")
    print(f"  {ev['seconds']:.2f} s, drifted columns {ev['drifted_columns']}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"\n  ratio: Evidently / check_drift = {ev['seconds'] / ours:.1f}x")


if __name__ == "__main__":
    main()
