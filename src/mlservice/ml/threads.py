"""How many CPU threads the engine's numeric work may use, set by the caller around a piece of
work (a job). BLAS and OpenMP pools are bounded through threadpoolctl; PyTorch keeps its own
count, set here when it is loaded and again by the torch backend if it is loaded later."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["OtherWork", "available_cores", "busy_cores", "cpu_threads", "set_thread_budget", "thread_budget"]

_budget: int | None = None


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def busy_cores(samples: int = 5, interval_s: float = 0.002) -> int:
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


def _cpu_sample() -> tuple[float, float, float] | None:
    """(wall time, the machine's busy CPU seconds, this process's CPU seconds) or None where
    /proc/stat cannot be read."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    own = os.times()
    ticks = os.sysconf("SC_CLK_TCK")
    return time.monotonic(), (user + nice + system + irq + softirq + steal) / ticks, own.user + own.system


class OtherWork:
    """How many cores the rest of the machine kept busy since the last reading: the machine's
    busy CPU time (/proc/stat) minus this process's own (all its threads), per second of wall
    time. Read between a job's steps, where :func:`busy_cores` would count the job's own BLAS
    threads, which spin a while after each product before they sleep."""

    def __init__(self) -> None:
        self._mark = _cpu_sample()

    def window_s(self) -> float:
        """Seconds since the last reading."""
        return time.monotonic() - self._mark[0] if self._mark is not None else 0.0

    def cores(self) -> float | None:
        """Busy cores of other work since the last call (or creation); None if unknown."""
        now, before = _cpu_sample(), self._mark
        self._mark = now
        if now is None or before is None or now[0] - before[0] <= 0:
            return None
        return max(0.0, ((now[1] - before[1]) - (now[2] - before[2])) / (now[0] - before[0]))


def thread_budget() -> int | None:
    """The limit set by the innermost :func:`cpu_threads`, or None outside one."""
    return _budget


def _set_torch_threads(threads: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


_controller: tuple[int, object] | None = None


def _thread_pools():  # type: ignore[no-untyped-def]
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries. Finding them walks every loaded
    shared object (~2.5 ms, paid by every job and every batch's chunk pool when done per call),
    so the controller is kept until an import may have loaded another library."""
    from threadpoolctl import ThreadpoolController

    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1]


def set_thread_budget(threads: int) -> None:
    """Change the limit inside a :func:`cpu_threads` block (between a job's steps); the block's
    end restores what was there before it, as without the change."""
    global _budget
    if _budget is None:
        raise RuntimeError("set_thread_budget() outside a cpu_threads() block")
    _budget = max(1, int(threads))
    _set_torch_threads(_budget)
    _thread_pools().limit(limits=_budget)


@contextmanager
def cpu_threads(threads: int) -> Iterator[int]:
    """Bound every numeric thread pool of this process to ``threads`` inside the block."""
    global _budget
    threads = max(1, int(threads))
    previous = _budget
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    _budget = threads
    _set_torch_threads(threads)
    try:
        with _thread_pools().limit(limits=threads):
            yield threads
    finally:
        _budget = previous
        if "torch" in sys.modules:
            # torch loaded inside the block (first torch job) had no count before: the cores.
            _set_torch_threads(previous or torch_before or available_cores())
