"""The README's examples, run as written against a live server: every fenced block whose info
string ends with ``readme-test`` (```` ```bash readme-test ```` / ```` ```python readme-test ````),
in order, in one working directory holding ``data.csv``, with ``http://localhost:8085`` pointing
at the test's server and ``YOUR_TOKEN`` replaced by a real token. Doc examples must not rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import adult_sample
from tests.live_server import live_server

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(\w+) readme-test\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_marks_examples_of_every_kind() -> None:
    kinds = [kind for kind, _ in examples()]
    assert {"bash", "python"} <= set(kinds), kinds
    joined = "\n".join(code for _, code in examples())
    for command in ("mlservice train", "mlservice predict", "mlservice drift", "curl", "Client("):
        assert command in joined


def test_readme_examples_run_against_a_live_server(tmp_path: Path) -> None:
    adult_sample(300, seed=5).to_csv(tmp_path / "data.csv", index=False)
    with live_server(tmp_path) as server:
        token = server.admin_token()
        for number, (kind, code) in enumerate(examples(), 1):
            code = code.replace("http://localhost:8085", server.url).replace("YOUR_TOKEN", token)
            command = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
            result = subprocess.run(command, cwd=tmp_path, env=server.env, capture_output=True, text=True,
                                    timeout=300)
            assert result.returncode == 0, (
                f"README example {number} ({kind}) failed:\n{code}\n--- stdout\n{result.stdout}\n"
                f"--- stderr\n{result.stderr}"
            )
            if "curl" in code and "/auth/register" in code:
                assert '"username":"user1"' in result.stdout.replace(" ", "")
    assert (tmp_path / "out.csv").read_text().splitlines()[0].endswith("prediction,confidence")
