"""The repository's pytest hooks: under CI=true a skip fails the run, unless marked for every machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = '''
import pytest

def test_skips():
    pytest.skip("no toolchain here")

@pytest.mark.skip_everywhere(reason="needs a GPU, which no machine of this project has")
def test_allowed():
    pytest.skip("needs a GPU")
'''


def run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_cases.py").write_text(CASES, encoding="utf-8")
    env = {**os.environ, "CI": ci}
    # the repository's root conftest.py, loaded as a plugin for a folder outside the repository
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_cases.py")],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)


def test_skip_fails_under_ci(tmp_path: Path) -> None:
    res = run(tmp_path, "true")
    assert res.returncode == 1, res.stdout
    assert "1 failed, 1 skipped" in res.stdout, res.stdout
    assert "skipped under CI=true, where every test must run: Skipped: no toolchain here" in res.stdout, res.stdout


def test_skip_is_a_skip_outside_ci(tmp_path: Path) -> None:
    res = run(tmp_path, "")
    assert res.returncode == 0, res.stdout
    assert "2 skipped" in res.stdout, res.stdout
