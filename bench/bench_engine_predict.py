"""Prediction latency: one-row predict from a dict with the engine's
``TrainedModel.predict_records`` (pandas-free fast path) against the
scikit-learn ``Pipeline(ColumnTransformer + MLPClassifier)`` design on a
one-row DataFrame (BENCH_NOTES.md), same network (512, 256, 128), UCI Adult,
measured in the same run; plus large-batch throughput of both.

    .venv/bin/python bench/bench_engine_predict.py
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlservice.ml import TrainingConfig, read_table, train
from harness import ADULT_COLUMNS  # noqa: E402



def timeit(fn, n: int) -> np.ndarray:
    for _ in range(min(50, n)):
        fn()
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out


def main() -> None:
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    df = read_table(ROOT / "datasets/adult/adult.data", format="csv", column_names=ADULT_COLUMNS)
    layers = (512, 256, 128)
    ours = train(
        df,
        "income",
        TrainingConfig(hidden_layer_sizes=layers, adaptive_architecture=False, max_iter=3),
    )
    X = df.drop(columns="income")
    num = [c for c in X.columns if X[c].dtype.kind in "if"]
    cat = [c for c in X.columns if c not in num]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                cat,
            ),
        ]
    )
    ref = Pipeline([("pre", pre), ("mlp", MLPClassifier(layers, max_iter=3, random_state=0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, df["income"])

    rec = X.iloc[[7]].to_dict("records")
    row = X.iloc[[7]]
    t_ours = timeit(lambda: ours.predict_records(rec), 3000)
    t_ref = timeit(lambda: ref.predict_proba(row), 300)
    print("\n## one row, UCI Adult, MLP (512, 256, 128)")
    print(
        f"  ours predict_records(dict): median {np.median(t_ours) * 1e6:7.1f} µs, "
        f"p99 {np.percentile(t_ours, 99) * 1e6:7.1f} µs"
    )
    print(
        f"  sklearn Pipeline 1-row DataFrame: median {np.median(t_ref) * 1e6:7.1f} µs, "
        f"p99 {np.percentile(t_ref, 99) * 1e6:7.1f} µs"
    )
    print(f"  speed-up {np.median(t_ref) / np.median(t_ours):.1f}x")

    big = pd.concat([X] * 4, ignore_index=True).iloc[:100_000]
    t = time.perf_counter()
    ours.predict_frame(big)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    ref.predict_proba(big)
    t2 = time.perf_counter() - t
    print("\n## 100,000 rows in one batch")
    print(
        f"  ours predict_frame: {100_000 / t1:,.0f} rows/s; sklearn Pipeline: "
        f"{100_000 / t2:,.0f} rows/s; ratio {t2 / t1:.2f}x"
    )


# --chunks: how a large batch is best split over the cores --------------------------------------


def _predict_chunk(frame: pd.DataFrame):
    return _FORKED_MODEL.predict_frame(frame)


_FORKED_MODEL = None


def main_chunks(rows: int, layers: tuple[int, ...], repeat: int) -> None:
    """One batch of ``rows`` Adult rows four ways, alternated ``repeat`` times (medians): one pass
    with one BLAS thread (773bfef's job), one pass with BLAS on every core, chunks on threads
    (``predict_in_chunks``, what a job does now), chunks on forked processes (frames and results
    pickled both ways)."""
    import multiprocessing
    import statistics
    from concurrent.futures import ProcessPoolExecutor

    from mlservice.ml.threads import available_cores, cpu_threads
    from mlservice.predictions.jobs import _chunk_rows, predict_in_chunks

    global _FORKED_MODEL
    df = read_table(ROOT / "datasets/adult/adult.data", format="csv", column_names=ADULT_COLUMNS)
    model = train(
        df,
        "income",
        TrainingConfig(hidden_layer_sizes=layers, adaptive_architecture=False, max_iter=1),
    )
    _FORKED_MODEL = model
    inputs = pd.concat([df.drop(columns="income")] * (rows // len(df) + 1), ignore_index=True).iloc[
        :rows
    ]
    cores = available_cores()
    chunk = _chunk_rows(rows, cores)
    pool = ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("fork"))

    def one_pass_1() -> None:
        with cpu_threads(1):
            model.predict_frame(inputs)

    def one_pass_all() -> None:
        with cpu_threads(cores):
            model.predict_frame(inputs)

    def threads() -> None:
        predict_in_chunks(model, inputs, workers=cores, chunk_rows=chunk)

    def processes() -> None:
        with cpu_threads(1):  # the forked children inherit the limit
            list(
                pool.map(
                    _predict_chunk, [inputs.iloc[i : i + chunk] for i in range(0, rows, chunk)]
                )
            )

    ways = {
        "one pass, 1 BLAS thread": one_pass_1,
        f"one pass, {cores} BLAS threads": one_pass_all,
        f"{cores} chunk threads": threads,
        f"{cores} chunk processes (fork)": processes,
    }
    processes()  # start the pool's workers outside the timings
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):
        for name, way in ways.items():
            t = time.perf_counter()
            way()
            times[name].append(time.perf_counter() - t)
    pool.shutdown()
    print(
        f"\n## {rows:,} Adult rows, MLP {layers}, chunks of {chunk:,} rows, medians of {repeat} "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    base = statistics.median(times["one pass, 1 BLAS thread"])
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"  {name:<28} {rows / median:9,.0f} rows/s  ({base / median:4.2f}x)")


if __name__ == "__main__":
    if "--chunks" in sys.argv:
        main_chunks(
            int(os.environ.get("ROWS", "100000")),
            (1024, 512, 256, 128) if "--large" in sys.argv else (512, 256, 128),
            int(os.environ.get("REPEAT", "3")),
        )
    else:
        main()
