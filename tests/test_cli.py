"""The ``corral`` command line: every diagnostic pinned, exit statuses, sampling."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corral.cli import main


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out)
    return code, out.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "bad.regex").write_text("\\d{4}-(?=x)\\d\n")
    (tmp_path / "two.regex").write_text("(a)b\ncd\\1\n")
    (tmp_path / "email.regex").write_text("[a-z]+@[a-z]+\\.com\n")
    (tmp_path / "g.lark").write_text('start: "a"\n')
    (tmp_path / "s.json").write_text('{"type": "string"}\n')
    (tmp_path / "ex.jsonl").write_text(
        '{"text": "ab@cd.com"}\n{"text": "ab@cd.co"}\n{"text": "ab@cd.com\\nAB"}\n{"text": "x@y.com", "valid": false}\n"q@r.com"\n'
    )
    return tmp_path


def test_check_reports_all_errors_with_carets(files: Path) -> None:
    code, out = run(["check", str(files / "bad.regex"), str(files / "two.regex"), str(files / "g.lark"), str(files / "s.json")])
    assert code == 1
    assert out == (
        f"{files}/bad.regex:1:7: error: lookahead (?=...) is not supported (lookarounds are not regular on a token stream)\n"
        "  \\d{4}-(?=x)\\d\n"
        "        ^~~\n"
        f"{files}/two.regex:2:3: error: backreference \\1 is not supported (it is not a regular construct)\n"
        "  cd\\1\n"
        "    ^~\n"
        f"{files}/g.lark:1:1: error: Lark grammars are not supported by this version of corral (only regexes)\n"
        f"{files}/s.json:1:1: error: JSON Schemas are not supported by this version of corral (only regexes)\n"
        "4 file(s) checked: 4 error(s), 0 warning(s)\n"
    )


def test_check_clean_file_exits_zero(files: Path) -> None:
    code, out = run(["check", str(files / "email.regex")])
    assert code == 0
    assert out == f"{files}/email.regex: regex: states=8\n1 file(s) checked: 0 error(s), 0 warning(s)\n"


def test_check_examples_shows_first_offending_position(files: Path) -> None:
    code, out = run(["check", str(files / "email.regex"), "--examples", str(files / "ex.jsonl")])
    assert code == 1
    ex = files / "ex.jsonl"
    assert out == (
        f"{ex}:2:1:9: error: example is incomplete: the text ends before the pattern is satisfied\n"
        "  ab@cd.co\n"
        "          ^\n"
        f"{ex}:3:1:10: error: example is rejected at '\\n'\n"
        "  ab@cd.com\n"
        "           ^\n"
        f"{ex}:4:1:1: error: example marked invalid is accepted\n"
        f"{files}/email.regex: regex: states=8\n"
        "1 file(s) checked: 3 error(s), 0 warning(s)\n"
    )


def test_check_examples_directory(files: Path) -> None:
    d = files / "examples"
    d.mkdir()
    (d / "ok.txt").write_text("a@b.com")
    (d / "invalid-1.txt").write_text("a@b.org")
    code, out = run(["check", str(files / "email.regex"), "--examples", str(d)])
    assert code == 0, out


def test_check_json_format(files: Path) -> None:
    code, out = run(["check", str(files / "bad.regex"), "--format", "json"])
    assert code == 1
    data = json.loads(out)
    assert data["errors"] == 1
    assert data["diagnostics"][0] == {
        "path": f"{files}/bad.regex",
        "line": 1,
        "column": 7,
        "severity": "error",
        "message": "lookahead (?=...) is not supported (lookarounds are not regular on a token stream)",
        "source_line": "\\d{4}-(?=x)\\d",
        "length": 3,
    }


def test_check_with_tokenizer_statistics_and_dead_end_warning(tmp_path: Path) -> None:
    # SmolLM2 has no token holding the byte 0xF1, so U+40000 (F1 80 80 80) can never be produced.
    (tmp_path / "p.regex").write_text("a(\U00040000|b)\n")
    (tmp_path / "q.regex").write_text("a\U00040000\n")
    code, out = run(["check", str(tmp_path / "p.regex"), str(tmp_path / "q.regex"), "--tokenizer", "smollm2"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        f"{tmp_path}/q.regex:1:1: warning: after 'a' no token of the vocabulary can continue: "
        "the model can never complete such text"
    )
    assert re.fullmatch(
        rf"{tmp_path}/p.regex: regex: states=\d+, vocabulary_trie_ms=[\d.]+, compile_ms=[\d.]+, cached_states=\d+, "
        r"eager=True, mask_store_bytes=\d+, vocabulary=\S+",
        lines[1],
    )
    assert lines[-1] == "2 file(s) checked: 0 error(s), 1 warning(s)"


def test_usage_errors_exit_two(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["check", str(files / "x.unknown")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"corral: error: cannot tell what {files}/x.unknown holds from its extension; pass --kind regex|lark|gbnf|json\n"
    )
    code, _ = run(["check", str(files / "missing.regex")])
    assert code == 2
    assert capsys.readouterr().err == f"corral: error: {files}/missing.regex: no such file\n"
    assert run(["frobnicate"])[0] == 2


def test_sample_strings_match(files: Path) -> None:
    code, out = run(["sample", str(files / "email.regex"), "-n", "20", "--seed", "3", "--max-bytes", "12"])
    assert code == 0
    samples = [json.loads(x) for x in out.splitlines()]
    assert len(samples) == 20
    for s in samples:
        assert re.fullmatch(r"[a-z]+@[a-z]+\.com", s), s
    assert len(set(samples)) > 10


def test_console_script_is_installed(files: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "corral.cli", "check", str(files / "email.regex")], capture_output=True, text=True)
    assert res.returncode == 0 and "0 error(s)" in res.stdout


def test_compile_warms_the_disk_cache(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(files / "cache"))
    code, out = run(["compile", str(files / "email.regex"), "--tokenizer", "smollm2"])
    assert code == 0
    assert re.fullmatch(
        rf"{files}/email.regex: 8 states, 8 masks stored \(\d+ bytes\), ready in [\d.]+ ms; cache: {files}/cache\n", out
    )
    assert len(list((files / "cache").glob("*.npz"))) == 1
