"""How many CPU threads the engine's numeric work may use, set by the caller around a piece of
work (a job). BLAS and OpenMP pools are bounded through threadpoolctl; PyTorch keeps its own
count, set here when it is loaded and again by the torch backend if it is loaded later."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["available_cores", "busy_cores", "cpu_threads", "thread_budget"]

_budget: int | None = None


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def busy_cores(samples: int = 5, interval_s: float = 0.01) -> int:
    """How many other threads are running or ready to run on the machine now: the median of a few
    reads of the kernel's runnable count (``/proc/loadavg``'s fourth field; this reader is one of
    them), not the load average, which lags a minute behind a job that just ended. 0 where it
    cannot be read."""
    counts = []
    for index in range(samples):
        try:
            with open("/proc/loadavg") as loadavg:
                counts.append(int(loadavg.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0
        if index + 1 < samples:
            time.sleep(interval_s)
    return max(0, sorted(counts)[len(counts) // 2])


def thread_budget() -> int | None:
    """The limit set by the innermost :func:`cpu_threads`, or None outside one."""
    return _budget


def _set_torch_threads(threads: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@contextmanager
def cpu_threads(threads: int) -> Iterator[int]:
    """Bound every numeric thread pool of this process to ``threads`` inside the block."""
    from threadpoolctl import threadpool_limits

    global _budget
    threads = max(1, int(threads))
    previous = _budget
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    _budget = threads
    _set_torch_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield threads
    finally:
        _budget = previous
        if "torch" in sys.modules:
            # torch loaded inside the block (first torch job) had no count before: the cores.
            _set_torch_threads(previous or torch_before or available_cores())
