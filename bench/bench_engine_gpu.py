"""GPU check: the PyTorch backend of AdaptiveMLPClassifier on CUDA vs on the CPU
(and scikit-learn on the CPU) on 50,000 × 100 synthetic rows, 10 classes,
layers (512, 256, 128), a few epochs; prints per-epoch times and the speed-up.

    python bench/bench_engine_gpu.py [--epochs 4]

Needs torch (extra ``gpu``); meant for the GPU machine (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mlservice.ml import AdaptiveMLPClassifier, gpu_info  # noqa: E402


def run(X, y, Xh, yh, epochs: int, **kw) -> dict:
    times = []
    m = AdaptiveMLPClassifier((512, 256, 128), adaptive=False, max_iter=epochs,
                              early_stopping=False, random_state=0, **kw)
    m.fit(X, y, on_epoch=lambda e: times.append(e.elapsed_s))
    per = np.diff([0.0, *times])
    return {"backend": m.backend_, "device": m.device_, "epoch_s": [round(float(t), 4) for t in per],
            "steady_epoch_s": float(np.median(per[1:])) if len(per) > 1 else float(per[0]),
            "accuracy": float((m.predict(Xh) == yh).mean()), "loss": m.loss_curve_[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--skip-sklearn", action="store_true")
    args = ap.parse_args()
    print(json.dumps(gpu_info()), flush=True)
    import torch

    print(f"torch {torch.__version__}, cuda available {torch.cuda.is_available()}, "
          f"CPU threads {torch.get_num_threads()}, cores {os.cpu_count()}", flush=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(55_000, 100)).astype(np.float32)
    y = (X @ rng.normal(size=(100, 10)) + rng.normal(scale=2.0, size=(55_000, 10))).argmax(1)
    X, Xh, y, yh = X[:50_000], X[50_000:], y[:50_000], y[50_000:]
    results = {}
    for bs in ("auto", 1024):
        if torch.cuda.is_available():
            results[f"torch-cuda batch {bs}"] = run(X, y, Xh, yh, args.epochs, device="cuda",
                                                    batch_size=bs)
        results[f"torch-cpu batch {bs}"] = run(X, y, Xh, yh, args.epochs, device="cpu",
                                               backend="torch", batch_size=bs)
        print({k: v for k, v in results.items()}, flush=True)
    if not args.skip_sklearn:
        results["sklearn-cpu batch auto"] = run(X, y, Xh, yh, args.epochs, device="cpu",
                                                backend="sklearn")
    print("\n## per-epoch time (median of epochs 2..n), 50,000 × 100, (512, 256, 128)")
    for k, v in results.items():
        print(f"  {k:26s} {v['steady_epoch_s']:.4f} s/epoch  epochs {v['epoch_s']}  "
              f"accuracy {v['accuracy']:.4f}")
    for bs in ("auto", 1024):
        g, c = results.get(f"torch-cuda batch {bs}"), results[f"torch-cpu batch {bs}"]
        if g:
            print(f"  speed-up CUDA vs torch CPU, batch {bs}: "
                  f"{c['steady_epoch_s'] / g['steady_epoch_s']:.1f}x")
    if "sklearn-cpu batch auto" in results and "torch-cuda batch auto" in results:
        print("  speed-up CUDA (batch auto) vs scikit-learn CPU: "
              f"{results['sklearn-cpu batch auto']['steady_epoch_s'] / results['torch-cuda batch auto']['steady_epoch_s']:.1f}x")


if __name__ == "__main__":
    main()
