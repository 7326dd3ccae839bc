"""Build hook: the wheel carries the dashboard's static export as package data.

Metadata lives in pyproject.toml; this file only adds one step to the build. The export
(``frontend/out``, built by ``make dashboard`` with Node) is copied into the *build* tree as
``mlservice/dashboard/`` while the wheel is assembled. Nothing is copied into ``src/``, so no
stale copy can shadow a fresh ``make dashboard`` in a checkout and nothing needs gitignoring.

``python -m build`` makes the sdist first and the wheel from it, so MANIFEST.in grafts
``frontend/out`` into the sdist; the wheel built from the sdist then finds it at the same place.
Without an export (no Node on the build machine) the wheel is still built, API only, with a
warning: ``mlservice serve`` then says so at ``/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
EXPORT = HERE / "frontend" / "out"


class BuildPyWithDashboard(build_py):
    def run(self) -> None:
        super().run()
        # An editable install serves the checkout's frontend/out directly (always the fresh one).
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "mlservice" / "dashboard"
        shutil.rmtree(target, ignore_errors=True)  # never mix a previous build's files in
        if not (EXPORT / "index.html").is_file():
            self.warn(f"no dashboard export at {EXPORT} (run `make dashboard`): "
                      "this build serves the API only")
            return
        shutil.copytree(EXPORT, target)


setup(cmdclass={"build_py": BuildPyWithDashboard})
