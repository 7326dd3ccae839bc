"""The README is the contract for new users: keep it true."""

from __future__ import annotations

import re
from pathlib import Path

from mlservice.cli import build_parser
from mlservice.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
CI_SCRIPT = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [f"ML_{name.upper()}" for name in Settings.model_fields if f"`ML_{name.upper()}`" not in README]
    assert missing == []


def test_every_command_is_documented() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in subparsers.choices:
        assert f"mlservice {name}" in README


def test_ci_runs_the_readme_test_command() -> None:
    command = re.search(r"^(make \w+)\s+# installs test dependencies", README, re.MULTILINE).group(1)
    assert command == "make test"
    assert re.search(rf"^{command}$", CI_SCRIPT, re.MULTILINE)
