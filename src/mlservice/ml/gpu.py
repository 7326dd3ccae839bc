"""GPU detection for ``/health``: never raises, never needs PyTorch."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from typing import Any

__all__ = ["gpu_info"]

_cache: dict[str, Any] | None = None


def _from_torch() -> dict[str, Any] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch

        info: dict[str, Any] = {"source": "torch", "torch_version": torch.__version__,
                                "cuda_available": bool(torch.cuda.is_available()), "devices": []}
        if info["cuda_available"]:
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                dev = {"index": i, "name": p.name,
                       "memory_total_mb": int(p.total_memory // 2**20)}
                try:
                    free, _total = torch.cuda.mem_get_info(i)
                    dev["memory_free_mb"] = int(free // 2**20)
                except Exception:
                    pass
                info["devices"].append(dev)
        return info
    except Exception as exc:  # broken CUDA installs must not break /health
        return {"source": "torch", "cuda_available": False, "devices": [], "error": str(exc)}


def _from_nvidia_smi() -> dict[str, Any]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"source": None, "cuda_available": False, "devices": []}
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout
        devices = []
        for line in out.strip().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 4:
                devices.append({"index": int(parts[0]), "name": parts[1],
                                "memory_total_mb": int(float(parts[2])),
                                "memory_free_mb": int(float(parts[3]))})
        return {"source": "nvidia-smi", "cuda_available": bool(devices), "devices": devices}
    except Exception as exc:
        return {"source": "nvidia-smi", "cuda_available": False, "devices": [], "error": str(exc)}


def gpu_info(refresh: bool = False) -> dict[str, Any]:
    """``{"cuda_available", "device_name", "memory_total_mb", "memory_free_mb",
    "devices": [...], "source": "torch" | "nvidia-smi" | None,
    "torch_installed", ...}``. PyTorch is asked when installed (it can train on
    the GPU), else ``nvidia-smi``; the first answer is cached (``refresh`` to
    ask again). Never raises."""
    global _cache
    if _cache is not None and not refresh:
        return dict(_cache)
    try:
        info = _from_torch()
        torch_installed = info is not None
        if info is None or (not info["cuda_available"] and "error" not in info):
            smi = _from_nvidia_smi()
            if info is None or smi["cuda_available"]:
                # the GPU exists but this torch build cannot use it
                if info is not None:
                    smi["torch_version"] = info.get("torch_version")
                    smi["torch_cuda_available"] = False
                info = smi
        info["torch_installed"] = torch_installed
        first = info["devices"][0] if info["devices"] else {}
        info["device_name"] = first.get("name")
        info["memory_total_mb"] = first.get("memory_total_mb")
        info["memory_free_mb"] = first.get("memory_free_mb")
    except Exception as exc:  # pragma: no cover - belt and braces
        info = {"source": None, "cuda_available": False, "devices": [], "device_name": None,
                "memory_total_mb": None, "memory_free_mb": None, "error": str(exc)}
    _cache = info
    return dict(info)
