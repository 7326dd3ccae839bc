"""The job pool's template and its workers under Ctrl-C (SIGINT to the whole process group):
they never raise KeyboardInterrupt, whichever thread started the template (a leader's take-over
starts it from another), and a Ctrl-C that comes while the template is being started still
reaches the server. Each case runs in a fresh interpreter: the template is one per process.
`serve` end to end: tests/reliability/test_interrupt.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")

POOL = """
import os, signal, sys, threading, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from mlservice.jobs.queue import start_template, worker_context

context = worker_context(())
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", POOL + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_template_started_off_the_main_thread_and_its_workers_ignore_ctrl_c() -> None:
    done = run("""
        starter = threading.Thread(target=start_template, args=(context,))
        starter.start(); starter.join()
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            worker = pool.submit(os.getpid).result()
            template = forkserver._forkserver._forkserver_pid
            busy = pool.submit(time.sleep, 1.5)  # a worker with a job running
            time.sleep(0.3)
            for pid in (template, worker):
                os.kill(pid, signal.SIGINT)
            busy.result()
            assert pool.submit(os.getpid).result() == worker  # the same worker, still there
            os.kill(template, 0)
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
    assert "KeyboardInterrupt" not in done.stderr, done.stderr


def test_a_ctrl_c_while_the_template_starts_still_reaches_the_server() -> None:
    done = run("""
        spawn = forkserver.ensure_running

        def interrupted_spawn():
            spawn()
            os.kill(os.getpid(), signal.SIGINT)  # in the very moment
            time.sleep(0.2)

        forkserver.ensure_running = interrupted_spawn
        try:
            start_template(context)
            time.sleep(0.5)
        except KeyboardInterrupt:
            print("interrupted")
    """)
    assert done.stdout.strip() == "interrupted", done.stdout + done.stderr
