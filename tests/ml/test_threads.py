"""The caller's thread budget reaches every numeric backend, PyTorch's own count included."""

from __future__ import annotations

import numpy as np
import pytest

from mlservice.ml import AdaptiveMLPClassifier
from mlservice.ml.threads import cpu_threads


def test_the_torch_backend_trains_within_the_callers_thread_budget() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = AdaptiveMLPClassifier(
        hidden_layer_sizes=(4,),
        max_iter=2,
        backend="torch",
        device="cpu",
        early_stopping=False,
        random_state=0,
    )
    seen: list[int] = []
    with cpu_threads(1):
        est.fit(X, y, on_epoch=lambda _info: seen.append(torch.get_num_threads()))
    assert seen == [1, 1]
