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
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from mlservice.ml import (  # noqa: E402
    AdaptiveMLPClassifier,
    FeaturePipeline,
    infer_schema,
    read_table,
    split_holdout,
    train,
    TrainingConfig,
)

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income",
]


def prepare(name: str):
    if name == "adult":
        df = read_table(ROOT / "datasets/adult/adult.data", format="csv",
                        column_names=ADULT_COLUMNS)
        target, features = "income", None
    else:
        df = read_table(ROOT / "datasets/ucla_courses/ucla_f18.csv")
        counts = df["subject"].value_counts()
        df = df[df["subject"].isin(counts[counts >= 2].index)].reset_index(drop=True)
        target, features = "subject", ["course"]
    train_df, hold = split_holdout(df, target, 0.15, 0)
    schema = infer_schema(df, target, features=features)
    fp = FeaturePipeline(schema).fit(train_df)
    return (df, target, features, fp.transform(train_df), train_df[target].to_numpy(),
            fp.transform(hold), hold[target].to_numpy())


def run_pair(X, y, Xh, yh, layers, repeat=1, **kw):
    """Fit ours and plain scikit-learn alternately ``repeat`` times; keep the
    fastest time of each (the machine may be shared)."""
    best = {}
    for _ in range(repeat):
        ours = AdaptiveMLPClassifier(hidden_layer_sizes=layers, adaptive=False, device="cpu",
                                     random_state=0, **kw)
        t = time.perf_counter()
        ours.fit(X, y)
        t_ours = time.perf_counter() - t
        plain = MLPClassifier(hidden_layer_sizes=layers, random_state=0,
                              early_stopping=kw.get("early_stopping", True),
                              max_iter=kw.get("max_iter", 5000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t = time.perf_counter()
            plain.fit(X, y)
            t_plain = time.perf_counter() - t
        best["ours_s"] = min(best.get("ours_s", np.inf), t_ours)
        best["plain_s"] = min(best.get("plain_s", np.inf), t_plain)
    best.update(
        ours_epochs=ours.n_iter_, ours_acc=float((ours.predict(Xh) == yh).mean()),
        plain_epochs=plain.n_iter_, plain_acc=float((plain.predict(Xh) == yh).mean()),
    )
    return best


def show(title: str, r: dict) -> None:
    po = r["ours_s"] / r["ours_epochs"]
    pp = r["plain_s"] / r["plain_epochs"]
    print(f"\n## {title}")
    print(f"  ours : {r['ours_s']:7.2f} s, {r['ours_epochs']:3d} epochs, {po:6.3f} s/epoch, "
          f"holdout accuracy {r['ours_acc']:.4f}")
    print(f"  plain: {r['plain_s']:7.2f} s, {r['plain_epochs']:3d} epochs, {pp:6.3f} s/epoch, "
          f"holdout accuracy {r['plain_acc']:.4f}")
    print(f"  time ratio ours/plain {r['ours_s'] / r['plain_s']:.2f}x; per epoch "
          f"{po / pp:.2f}x; accuracy difference {100 * (r['ours_acc'] - r['plain_acc']):+.2f} "
          "points")


def main() -> None:
    import os

    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the synthetic per-epoch run")
    ap.add_argument("--repeat", type=int, default=2, help="alternating repeats, fastest kept")
    args = ap.parse_args()
    for name, layers in (("adult", (256, 128, 64)), ("ucla", (128, 64))):
        df, target, features, X, y, Xh, yh = prepare(name)
        show(f"{name}: {X.shape[0]} × {X.shape[1]} ({'sparse' if hasattr(X, 'nnz') else 'dense'}),"
             f" layers {layers}, early stopping", run_pair(X, y, Xh, yh, layers, args.repeat))
        t = time.perf_counter()
        m = train(df, target, TrainingConfig(device="cpu"), features=features)
        print(f"  end-to-end train() (validate, profile, features, model, evaluate): "
              f"{time.perf_counter() - t:.2f} s, accuracy {m.metrics['accuracy']:.4f}, "
              f"stages {({k: round(v, 2) for k, v in m.info['stage_seconds'].items()})}")
    if not args.quick:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(55_000, 100)).astype(np.float32)
        w = rng.normal(size=(100, 10))
        y = (X @ w + rng.normal(scale=2.0, size=(55_000, 10))).argmax(axis=1)
        r = run_pair(X[:50_000], y[:50_000], X[50_000:], y[50_000:], (512, 256, 128),
                     args.repeat, max_iter=3, early_stopping=False)
        show("synthetic 50,000 × 100, 10 classes, (512, 256, 128), 3 epochs, no early stopping",
             r)


if __name__ == "__main__":
    main()
