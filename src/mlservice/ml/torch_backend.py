"""PyTorch training backend (optional extra ``gpu``); imported lazily by
:mod:`mlservice.ml.model` only when the torch backend is chosen.

Same network and objective as scikit-learn's MLPClassifier: Glorot-uniform
initialisation, Adam (β 0.9/0.999, ε 1e-8), cross-entropy plus
``alpha / 2 · ‖W‖² / batch`` weight decay on the weights; the output layer
has one unit per class (softmax). Dense training data is moved to the device
once; sparse data is densified batch by batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

__all__ = ["TorchTrainer"]

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": nn.Identity}


class TorchTrainer:
    name = "torch"

    def __init__(
        self, est: Any, layers: tuple[int, ...], n_classes: int, n_samples: int, device: str
    ) -> None:
        from .model import _batch_size
        from .threads import thread_budget

        self.device = device
        self.dev = torch.device(device)
        if device == "cpu" and thread_budget():
            # torch may have been imported inside the caller's cpu_threads block, after it set
            # the count: apply the job's share now (torch otherwise takes every core)
            torch.set_num_threads(thread_budget())
        seed = est.random_state if est.random_state is not None else 0
        torch.manual_seed(seed)
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.batch = _batch_size(est.batch_size, n_samples, est.large_dataset_threshold)
        if est.batch_size == "auto" and device == "cuda":
            # small batches leave a GPU idle: "auto" means min(1024, n) there
            self.batch = max(1, min(1024, n_samples))
        self.alpha = float(est.alpha)
        sizes = [None, *layers, n_classes]  # input size filled at first epoch
        self.sizes = sizes
        self.activation = est.activation
        self.lr = est.learning_rate_init
        self.solver = est.solver
        self.model: nn.Sequential | None = None
        self._X_dev: Any = None
        self._X_key: int | None = None

    def _build(self, n_in: int) -> None:
        sizes = [n_in, *self.sizes[1:]]
        mods: list[nn.Module] = []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for i in range(len(sizes) - 1):
            lin = nn.Linear(sizes[i], sizes[i + 1])
            bound = math.sqrt(factor / (sizes[i] + sizes[i + 1]))
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-bound, bound)
            mods.append(lin)
            if i < len(sizes) - 2:
                mods.append(_ACT[self.activation]())
        self.model = nn.Sequential(*mods).to(self.dev)
        self.weights_only = [m.weight for m in self.model if isinstance(m, nn.Linear)]
        if self.solver == "sgd":
            self.opt = torch.optim.SGD(
                self.model.parameters(), lr=self.lr, momentum=0.9, nesterov=True
            )
        else:
            self.opt = torch.optim.Adam(
                self.model.parameters(),
                lr=self.lr,
                betas=(0.9, 0.999),
                eps=1e-8,
                fused=self.dev.type == "cuda",
            )
        self.loss_fn = nn.CrossEntropyLoss()

    def _rows(self, X: Any, idx: np.ndarray | slice) -> torch.Tensor:
        if sp.issparse(X):
            return torch.from_numpy(X[idx].toarray()).to(self.dev, non_blocking=True)
        if self._X_key == id(X) and self._X_dev is not None:
            if isinstance(idx, slice):
                return self._X_dev[idx]
            return self._X_dev[torch.as_tensor(idx, device=self.dev)]
        return torch.from_numpy(np.ascontiguousarray(X[idx])).to(self.dev)

    def epoch(self, X: Any, y: np.ndarray) -> float:
        n = X.shape[0]
        sparse = sp.issparse(X)
        if self.model is None:
            self._build(X.shape[1])
        if not sparse and self._X_key != id(X):
            self._X_dev = torch.from_numpy(np.ascontiguousarray(X)).to(self.dev)
            self._X_key = id(X)
        if getattr(self, "_y_key", None) != id(y):
            self._y_dev = torch.from_numpy(y.astype(np.int64)).to(self.dev)
            self._y_key = id(y)
        perm = torch.randperm(n, generator=self.gen)
        perm_dev = perm.to(self.dev)
        yp = self._y_dev.index_select(0, perm_dev)
        # one gather per epoch, then every batch is a view
        Xp = None if sparse else self._X_dev.index_select(0, perm_dev)
        perm_np = perm.numpy() if sparse else None
        self.model.train()
        losses, sizes = [], []
        decay = self.alpha
        for start in range(0, n, self.batch):
            stop = min(start + self.batch, n)
            if sparse:
                xb = torch.from_numpy(X[perm_np[start:stop]].toarray()).to(self.dev)
            else:
                xb = Xp[start:stop]
            loss = self.loss_fn(self.model(xb), yp[start:stop])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if decay:
                # gradient of alpha/2 * ||W||^2 / batch (scikit-learn's L2 term), fused
                torch._foreach_add_(
                    [w.grad for w in self.weights_only],
                    self.weights_only,
                    alpha=decay / (stop - start),
                )
            self.opt.step()
            losses.append(loss.detach())
            sizes.append(stop - start)
        with torch.no_grad():
            m = torch.tensor(sizes, dtype=torch.float32, device=self.dev)
            total = (torch.stack(losses) * m).sum()
            if decay:
                l2 = sum((w * w).sum() for w in self.weights_only)
                total = total + 0.5 * decay * l2 * len(sizes)
        return float(total.item() / n)

    @torch.no_grad()
    def predict_labels(self, X: Any) -> np.ndarray:
        self.model.eval()
        out = []
        step = 8192
        for start in range(0, X.shape[0], step):
            xb = self._rows(X, slice(start, start + step))
            out.append(self.model(xb).argmax(dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.empty(0, np.int64)

    @torch.no_grad()
    def weights(self) -> tuple[list[np.ndarray], list[np.ndarray], str]:
        lins = [m for m in self.model if isinstance(m, nn.Linear)]
        coefs = [m.weight.detach().T.contiguous().float().cpu().numpy() for m in lins]
        inter = [m.bias.detach().float().cpu().numpy().copy() for m in lins]
        return coefs, inter, "softmax"
