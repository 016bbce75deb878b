"""The README stands alone: every command it shows is run, by CI or here.

- The two one-line commands (install and run an example; install and run the tests) must stand in
  ``.ci/run`` verbatim, so CI runs exactly what a new user types.
- The ``corral`` commands of the "Command line" section run here, through the installed console
  script, on the files they name.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_shell_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced ``bash`` block of ``text``."""
    return [block.strip("\n").splitlines() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def one_line_commands() -> dict[str, str]:
    """The README's one-line blocks: the example command and the test command."""
    singles = [lines[0] for lines in fenced_shell_blocks(README) if len(lines) == 1]
    found = {"test": [c for c in singles if "pytest" in c], "example": [c for c in singles if "examples/" in c]}
    assert all(len(v) == 1 for v in found.values()), found
    return {k: v[0] for k, v in found.items()}


def ci_lines() -> list[str]:
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("which", ["test", "example"])
def test_ci_runs_the_readme_command_verbatim(which: str) -> None:
    command = one_line_commands()[which]
    assert command in ci_lines(), f"the README's {which} command is not a line of .ci/run: {command}"


def test_readme_commands_start_with_the_cpu_torch() -> None:
    # torch==2.13.0 first keeps pip on the CPU build on CPU machines
    for command in one_line_commands().values():
        assert command.startswith("pip install torch==2.13.0 && "), command


def cli_commands() -> list[str]:
    """The ``corral ...`` lines of the README's command-line section, comments removed."""
    section = README[README.index("## Command line"):]
    block = fenced_shell_blocks(section)[0]
    commands = [line.split("  #")[0].strip() for line in block]
    assert commands and all(c.startswith("corral ") for c in commands), commands
    return commands


@pytest.mark.slow
def test_readme_cli_commands_run(tmp_path: Path) -> None:
    exe = shutil.which("corral", path=os.path.dirname(sys.executable)) or shutil.which("corral")
    assert exe is not None, "the corral console script is not installed (pip install -e .)"
    (tmp_path / "date.regex").write_text(r"\d{4}-\d{2}-\d{2}" + "\n", encoding="utf-8")
    (tmp_path / "cases.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in [{"text": "2024-02-29", "valid": True}, {"text": "24-2-29", "valid": False}]),
        encoding="utf-8",
    )
    env = {**os.environ, "CORRAL_CACHE_DIR": str(tmp_path / "cache")}
    for command in cli_commands():
        res = subprocess.run([exe, *shlex.split(command)[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, (command, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr, (command, res.stderr)
        if command.startswith("corral sample"):
            samples = [json.loads(line) for line in res.stdout.splitlines()]  # JSON strings, one a line
            assert len(samples) == 5 and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", x) for x in samples), res.stdout
        if command.startswith("corral generate"):
            args = shlex.split(command)
            n = int(args[args.index("-n") + 1]) if "-n" in args else 1
            lines = res.stdout.splitlines()
            assert len(lines) == n and all(re.fullmatch(r"\d{4}", x) for x in lines), res.stdout
            assert "Warning" not in res.stderr, res.stderr
    assert list((tmp_path / "cache").iterdir()), "corral compile wrote nothing to the cache"
