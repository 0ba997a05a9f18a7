"""The code passes the project's lint (ruff, configured in pyproject.toml)."""

import sys

from conftest import REPO, run


def test_ruff_finds_nothing() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "--no-cache", REPO)
    assert result.returncode == 0, result.stdout + result.stderr
