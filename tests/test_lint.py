"""The repository's static checks: ruff, the import-linter contracts, mypy on every package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "packages", "tests", "tools", "examples"],
        ["lint-imports"],
        ["mypy"],
    ],
    ids=["ruff", "import-linter", "mypy"],
)
def test_static_check(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
