"""One leader per data directory, elected with an exclusive ``flock`` on ``<data dir>/leader.lock``.

The leader holds the lock for its whole life; the kernel drops it when the process ends in any
way (``kill -9`` included), so no lease, heartbeat or clean-up is needed: the followers try
again every ``RETRY_S`` and the first to get it takes over. Linux and macOS only (``fcntl``);
``serve`` keeps one API process where it is missing."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

RETRY_S = 1.0
# A dead leader's pool workers notice within jobs.runner.PARENT_POLL_S (0.25 s) and exit; the new
# leader waits a little longer before its recovery marks their jobs interrupted, so that no
# orphan is still writing to a job the new leader has already failed or requeued.
TAKEOVER_DELAY_S = 0.6
LOCK_NAME = "leader.lock"


def supported() -> bool:
    return fcntl is not None


def run_dir(data_dir: Path) -> Path:
    """Where the API processes of one data directory put their sockets. Under the temporary
    directory, not the data directory: a Unix socket path must stay under ~100 bytes."""
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"mlservice-{os.getuid()}-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class Leadership:
    """``start()`` tries the lock once, calling ``on_elected`` inline when it gets it (a single
    process starts exactly as before); otherwise a thread retries and calls it on take-over."""

    def __init__(
        self,
        lock_path: Path,
        on_elected: Callable[[], None],
        retry_s: float = RETRY_S,
        takeover_delay_s: float = TAKEOVER_DELAY_S,
    ) -> None:
        self.lock_path = lock_path
        self.on_elected = on_elected
        self.retry_s = retry_s
        self.takeover_delay_s = takeover_delay_s
        self.leading = False
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _try_lock(self) -> bool:
        if fcntl is None:  # one API process there (`serve` says so): it leads
            return True
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # For people and tests: who leads now (the lock, not this text, is what counts).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def start(self) -> bool:
        if self._try_lock():
            self._elected()
            return True
        log.info(
            "process %d follows: another process owns the job pool and the scheduler", os.getpid()
        )
        self._thread = threading.Thread(
            target=self._wait_for_turn, name="leader-election", daemon=True
        )
        self._thread.start()
        return False

    def _wait_for_turn(self) -> None:
        while not self._stop.wait(self.retry_s):
            if self._try_lock():
                if self._stop.wait(
                    self.takeover_delay_s
                ):  # stopping meanwhile: let another have it
                    self._release()
                    return
                self._elected()
                return

    def _elected(self) -> None:
        self.leading = True
        log.info(
            "process %d leads: it runs the job pool, the scheduler and the sweeps", os.getpid()
        )
        self.on_elected()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._release()
        self.leading = False
