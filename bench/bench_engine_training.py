"""Training benchmark: the engine's AdaptiveMLPClassifier (per-epoch loop with
callbacks, cancellation and our own early stopping) against plain scikit-learn
MLPClassifier (its built-in early stopping) on the same prepared matrices and
the same architecture, measured in the same run.

    .venv/bin/python bench/bench_engine_training.py [--quick]

Prints time, epochs, time per epoch and holdout accuracy for both, and the
time ratio (ours / plain). Data: UCI Adult (dense, 107 features) and UCLA
course titles (sparse TF-IDF text), plus 50,000 × 100 synthetic rows with 10
classes and layers (512, 256, 128) for a per-epoch figure (BENCH_NOTES.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mlservice.ml import (
    AdaptiveMLPClassifier,
    FeaturePipeline,
    TrainingConfig,
    infer_schema,
    read_table,
    split_holdout,
    train,
)
from harness import ADULT_COLUMNS  # noqa: E402



def prepare(name: str):
    if name == "adult":
        df = read_table(
            ROOT / "datasets/adult/adult.data", format="csv", column_names=ADULT_COLUMNS
        )
        target, features = "income", None
    else:
        df = read_table(ROOT / "datasets/ucla_courses/ucla_f18.csv")
        counts = df["subject"].value_counts()
        df = df[df["subject"].isin(counts[counts >= 2].index)].reset_index(drop=True)
        target, features = "subject", ["course"]
    train_df, hold = split_holdout(df, target, 0.15, 0)
    schema = infer_schema(df, target, features=features)
    fp = FeaturePipeline(schema).fit(train_df)
    return (
        df,
        target,
        features,
        fp.transform(train_df),
        train_df[target].to_numpy(),
        fp.transform(hold),
        hold[target].to_numpy(),
    )


def run_pair(X, y, Xh, yh, layers, repeat=1, **kw):
    """Fit ours and plain scikit-learn alternately ``repeat`` times; keep the
    fastest time of each (the machine may be shared)."""
    best = {}
    for _ in range(repeat):
        ours = AdaptiveMLPClassifier(
            hidden_layer_sizes=layers, adaptive=False, device="cpu", random_state=0, **kw
        )
        t = time.perf_counter()
        ours.fit(X, y)
        t_ours = time.perf_counter() - t
        plain = MLPClassifier(
            hidden_layer_sizes=layers,
            random_state=0,
            early_stopping=kw.get("early_stopping", True),
            max_iter=kw.get("max_iter", 5000),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t = time.perf_counter()
            plain.fit(X, y)
            t_plain = time.perf_counter() - t
        best["ours_s"] = min(best.get("ours_s", np.inf), t_ours)
        best["plain_s"] = min(best.get("plain_s", np.inf), t_plain)
    best.update(
        ours_epochs=ours.n_iter_,
        ours_acc=float((ours.predict(Xh) == yh).mean()),
        plain_epochs=plain.n_iter_,
        plain_acc=float((plain.predict(Xh) == yh).mean()),
    )
    return best


def show(title: str, r: dict) -> None:
    po = r["ours_s"] / r["ours_epochs"]
    pp = r["plain_s"] / r["plain_epochs"]
    print(f"\n## {title}")
    print(
        f"  ours : {r['ours_s']:7.2f} s, {r['ours_epochs']:3d} epochs, {po:6.3f} s/epoch, "
        f"holdout accuracy {r['ours_acc']:.4f}"
    )
    print(
        f"  plain: {r['plain_s']:7.2f} s, {r['plain_epochs']:3d} epochs, {pp:6.3f} s/epoch, "
        f"holdout accuracy {r['plain_acc']:.4f}"
    )
    print(
        f"  time ratio ours/plain {r['ours_s'] / r['plain_s']:.2f}x; per epoch "
        f"{po / pp:.2f}x; accuracy difference {100 * (r['ours_acc'] - r['plain_acc']):+.2f} "
        "points"
    )


# --backend: the CPU backends against each other --------------------------------------------

BACKENDS = {  # name: (estimator backend, thread limit or None for every core)
    "sklearn-1thread": ("sklearn", 1),  # 773bfef: a job on this machine had one BLAS thread
    "torch-1thread": ("torch", 1),
    "sklearn": ("sklearn", None),
    "torch": ("torch", None),
}


def fit_backend(name: str, X, y, Xh, yh, layers, **kw) -> dict:
    from mlservice.ml.threads import available_cores, cpu_threads

    backend, limit = BACKENDS[name]
    est = AdaptiveMLPClassifier(
        hidden_layer_sizes=layers,
        adaptive=False,
        device="cpu",
        backend=backend,
        random_state=0,
        **kw,
    )
    with cpu_threads(limit or available_cores()):  # BLAS, OpenMP and torch's own count
        t = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - t
    return {
        "s": seconds,
        "epochs": est.n_iter_,
        "per_epoch": seconds / est.n_iter_,
        "acc": float((est.predict(Xh) == yh).mean()),
    }


def compare_backends(title: str, names: list[str], repeat: int, X, y, Xh, yh, layers, **kw) -> None:
    import statistics

    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(repeat):  # alternated A/B: the machine is shared, its load drifts
        for name in names:
            runs[name].append(fit_backend(name, X, y, Xh, yh, layers, **kw))
            print(f"  {name:<16} {runs[name][-1]}  (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\n## {title}")
    base = statistics.median(r["per_epoch"] for r in runs[names[0]])
    for name in names:
        per_epoch = statistics.median(r["per_epoch"] for r in runs[name])
        acc = statistics.median(r["acc"] for r in runs[name])
        epochs = statistics.median(r["epochs"] for r in runs[name])
        print(
            f"  {name:<16} median {per_epoch:8.3f} s/epoch ({base / per_epoch:4.2f}x {names[0]}), "
            f"{epochs:.0f} epochs, holdout accuracy {acc:.4f}"
        )


def large_flights(rows: int):
    """The first ``rows`` flights of the real flights table (bench/flights.py, time order) and,
    as the holdout, the 200,000 flights after them."""
    from flights import flights

    return flights(0, rows), flights(rows, 200_000)


def main_backends(args) -> None:
    names = args.backend.split(",")
    *_, X, y, Xh, yh = prepare("adult")
    compare_backends(
        f"adult: {X.shape[0]} × {X.shape[1]}, layers (256, 128, 64), early stopping",
        names,
        args.repeat,
        X,
        y,
        Xh,
        yh,
        (256, 128, 64),
    )
    if args.large_rows:
        from flights import TARGET

        big, hold = large_flights(args.large_rows)
        fp = FeaturePipeline(infer_schema(big, TARGET)).fit(big)
        Xb, yb = fp.transform(big), big[TARGET].to_numpy()
        compare_backends(
            f"large: {Xb.shape[0]:,} × {Xb.shape[1]} (real flights), layers (1024, 512, 256, 128), "
            f"{args.large_epochs} epoch(s), accuracy on the next 200,000 flights",
            names,
            args.repeat,
            Xb,
            yb,
            fp.transform(hold),
            hold[TARGET].to_numpy(),
            (1024, 512, 256, 128),
            max_iter=args.large_epochs,
            early_stopping=False,
        )


def main() -> None:
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the synthetic per-epoch run")
    ap.add_argument("--repeat", type=int, default=2, help="alternating repeats, fastest kept")
    ap.add_argument(
        "--backend",
        help="compare CPU backends instead, e.g. sklearn-1thread,sklearn,torch "
        "(torch: pip install 'mlservice[gpu]')",
    )
    ap.add_argument(
        "--large-rows", type=int, default=0, help="with --backend: also a table of this many rows"
    )
    ap.add_argument("--large-epochs", type=int, default=1)
    args = ap.parse_args()
    if args.backend:
        main_backends(args)
        return
    for name, layers in (("adult", (256, 128, 64)), ("ucla", (128, 64))):
        df, target, features, X, y, Xh, yh = prepare(name)
        show(
            f"{name}: {X.shape[0]} × {X.shape[1]} ({'sparse' if hasattr(X, 'nnz') else 'dense'}),"
            f" layers {layers}, early stopping",
            run_pair(X, y, Xh, yh, layers, args.repeat),
        )
        t = time.perf_counter()
        m = train(df, target, TrainingConfig(device="cpu"), features=features)
        print(
            f"  end-to-end train() (validate, profile, features, model, evaluate): "
            f"{time.perf_counter() - t:.2f} s, accuracy {m.metrics['accuracy']:.4f}, "
            f"stages { ({k: round(v, 2) for k, v in m.info['stage_seconds'].items()}) }"
        )
    if not args.quick:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(55_000, 100)).astype(np.float32)
        w = rng.normal(size=(100, 10))
        y = (X @ w + rng.normal(scale=2.0, size=(55_000, 10))).argmax(axis=1)
        r = run_pair(
            X[:50_000],
            y[:50_000],
            X[50_000:],
            y[50_000:],
            (512, 256, 128),
            args.repeat,
            max_iter=3,
            early_stopping=False,
        )
        show("synthetic 50,000 × 100, 10 classes, (512, 256, 128), 3 epochs, no early stopping", r)


if __name__ == "__main__":
    main()
