"""The code stays ruff- and sqlfluff-clean (what `make lint` runs), so CI fails on a lint regression too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=REPO, capture_output=True, text=True, check=False)


def test_python_is_ruff_clean():
    result = run("ruff", "check", "dags", "include", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dbt_models_are_sqlfluff_clean():
    result = run("sqlfluff", "lint", "dbt_project/models", "--dialect", "duckdb")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
