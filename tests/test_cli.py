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
        f"{files}/g.lark: lark: rules=1, terminals=1\n"
        f"{files}/s.json: json: rules=2, terminals=2\n"
        "4 file(s) checked: 2 error(s), 0 warning(s)\n"
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


# --- grammars ---------------------------------------------------------------------------------

ALL_FINDINGS_LARK = r"""start: list | sum | loop | expr
list: list "," item | item
sum: opt sum "+" NUMBER | NUMBER
opt: | "-"
item: WORD | BAD | NOTHING
loop: "(" loop ")"
orphan: WORD
expr: term
term: expr "*" NUMBER | "x"
WORD: /[a-z]+/
NUMBER: DIGIT+
DIGIT: /[0-9]/
HEX: /0x[0-9a-f]+/
BAD: /a(?=b)/
NOTHING: /[^\s\S]/
%import common.LETTER
%ignore " "
"""

KV_LARK = r"""start: item+
item: WORD "=" value
value: value "," NUMBER | NUMBER
WORD: /[a-z]+/
NUMBER: /[0-9]+/
%ignore " "
"""


def test_check_lark_reports_every_finding_with_carets(tmp_path: Path) -> None:
    # DIGIT is used only inside NUMBER's definition (Lark inlines it): not reported as unused.
    g = tmp_path / "all.lark"
    g.write_text(ALL_FINDINGS_LARK)
    code, out = run(["check", str(g)])
    assert code == 1
    assert out == (
        f"{g}:2:1: info: rule 'list' is left-recursive (supported)\n"
        '  list: list "," item | item\n'
        "  ^~~~\n"
        f"{g}:3:1: info: rule 'sum' is left-recursive (supported)\n"
        '  sum: opt sum "+" NUMBER | NUMBER\n'
        "  ^~~\n"
        f"{g}:6:1: warning: rule 'loop' can never finish: every alternative needs a rule with no finite "
        "derivation, so it matches nothing\n"
        '  loop: "(" loop ")"\n'
        "  ^~~~\n"
        f"{g}:7:1: warning: rule 'orphan' is never used: it cannot be reached from the start rule 'start'\n"
        "  orphan: WORD\n"
        "  ^~~~~~\n"
        f"{g}:8:1: info: rule 'expr' is left-recursive through 'term' (supported)\n"
        "  expr: term\n"
        "  ^~~~\n"
        f"{g}:9:1: info: rule 'term' is left-recursive through 'expr' (supported)\n"
        '  term: expr "*" NUMBER | "x"\n'
        "  ^~~~\n"
        f"{g}:13:1: warning: terminal HEX is defined but never used\n"
        "  HEX: /0x[0-9a-f]+/\n"
        "  ^~~\n"
        f"{g}:14:8: error: terminal BAD: lookahead (?=...) is not supported (lookarounds are not regular on a "
        "token stream)\n"
        "  BAD: /a(?=b)/\n"
        "         ^~~\n"
        f"{g}:15:1: warning: terminal NOTHING matches no string: rules that need it can never finish\n"
        "  NOTHING: /[^\\s\\S]/\n"
        "  ^~~~~~~\n"
        f"{g}:16:16: warning: terminal LETTER is defined but never used\n"
        "  %import common.LETTER\n"
        "                 ^~~~~~\n"
        "1 file(s) checked: 1 error(s), 5 warning(s)\n"
    )


def test_check_gbnf_reports_findings_and_skips_helper_rules(tmp_path: Path) -> None:
    # item ::= [a-z]+ makes a left-recursive helper rule (item__0): never named in a finding
    g = tmp_path / "all.gbnf"
    g.write_text('root ::= list | y-rule\nlist ::= list "," item | item\nitem ::= [a-z]+\ndead ::= "(" dead ")"\n'
                 'y-rule ::= "y"\n')
    code, out = run(["check", str(g)])
    assert code == 0
    assert out == (
        f"{g}:2:1: info: rule 'list' is left-recursive (supported)\n"
        '  list ::= list "," item | item\n'
        "  ^~~~\n"
        f"{g}:4:1: warning: rule 'dead' is never used: it cannot be reached from the start rule 'root'\n"
        '  dead ::= "(" dead ")"\n'
        "  ^~~~\n"
        f"{g}:4:1: warning: rule 'dead' can never finish: every alternative needs a rule with no finite "
        "derivation, so it matches nothing\n"
        '  dead ::= "(" dead ")"\n'
        "  ^~~~\n"
        f"{g}: gbnf: rules=5, terminals=3\n"
        "1 file(s) checked: 0 error(s), 2 warning(s)\n"
    )


def test_check_grammar_empty_language_is_an_error(tmp_path: Path) -> None:
    g = tmp_path / "empty.lark"
    g.write_text('start: "a" start\n')
    code, out = run(["check", str(g)])
    assert code == 1
    assert out == (
        f"{g}:1:1: error: the grammar's language is empty: rule 'start' can never finish (every alternative "
        "needs a rule with no finite derivation)\n"
        '  start: "a" start\n'
        "  ^~~~~\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


def test_check_grammar_start_option(tmp_path: Path) -> None:
    g = tmp_path / "two.lark"
    g.write_text('start: "a"\nother: "b"\n')
    code, out = run(["check", str(g), "--start", "nothere"])
    assert code == 1
    assert out == (
        f"{g}:1:1: error: the grammar has no rule named 'nothere' (choose the start rule with start=, or --start)\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )
    code, out = run(["check", str(g), "--start", "other"])
    assert code == 0
    assert out == (
        f"{g}:1:1: warning: rule 'start' is never used: it cannot be reached from the start rule 'other'\n"
        '  start: "a"\n'
        "  ^~~~~\n"
        f"{g}: lark: rules=1, terminals=1\n"
        "1 file(s) checked: 0 error(s), 1 warning(s)\n"
    )


def test_check_grammar_load_errors_are_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "undef.lark").write_text('start: "a" b\n')
    (tmp_path / "syntax.lark").write_text('start: "a" (\n')
    (tmp_path / "class.gbnf").write_text('root ::= "a" [\n')
    (tmp_path / "undef.gbnf").write_text("root ::= item\n")
    code, out = run(["check", *(str(tmp_path / n) for n in ("undef.lark", "syntax.lark", "class.gbnf", "undef.gbnf"))])
    assert code == 1
    assert out == (
        f"{tmp_path}/undef.lark:1:12: error: Rule 'b' used but not defined (in rule start)\n"
        '  start: "a" b\n'
        "             ^\n"
        f"{tmp_path}/syntax.lark:1:13: error: Unclosed parenthesis\n"
        '  start: "a" (\n'
        "              ^\n"
        f"{tmp_path}/class.gbnf:1:14: error: unterminated character class: no closing ']'\n"
        '  root ::= "a" [\n'
        "               ^\n"
        f"{tmp_path}/undef.gbnf:1:10: error: undefined rule 'item'\n"
        "  root ::= item\n"
        "           ^~~~\n"
        "4 file(s) checked: 4 error(s), 0 warning(s)\n"
    )


def test_check_grammar_json_format(tmp_path: Path) -> None:
    g = tmp_path / "kv.lark"
    g.write_text(KV_LARK + "HEX: /0x[0-9a-f]+/\n")
    code, out = run(["check", str(g), "--format", "json"])
    assert code == 0
    assert json.loads(out) == {
        "diagnostics": [
            {
                "path": str(g), "line": 3, "column": 1, "severity": "info",
                "message": "rule 'value' is left-recursive (supported)",
                "source_line": 'value: value "," NUMBER | NUMBER', "length": 5,
            },
            {
                "path": str(g), "line": 7, "column": 1, "severity": "warning",
                "message": "terminal HEX is defined but never used",
                "source_line": "HEX: /0x[0-9a-f]+/", "length": 3,
            },
        ],
        "stats": [{"path": str(g), "kind": "lark", "rules": 4, "terminals": 5}],
        "errors": 0,
    }


def test_check_grammar_examples_show_first_offending_position(tmp_path: Path) -> None:
    g = tmp_path / "kv.lark"
    g.write_text(KV_LARK)
    ex = tmp_path / "ex.jsonl"
    ex.write_text(
        '{"text": "a=1,2 b=3"}\n{"text": "a=1,"}\n{"text": "a=1\\nb;2"}\n{"text": "a=", "valid": false}\n'
        '{"text": "x=1", "valid": false}\n'
    )
    code, out = run(["check", str(g), "--examples", str(ex)])
    assert code == 1
    assert out == (
        f"{g}:3:1: info: rule 'value' is left-recursive (supported)\n"
        '  value: value "," NUMBER | NUMBER\n'
        "  ^~~~~\n"
        f"{ex}:2:1:5: error: example is incomplete: the text ends before the grammar is satisfied\n"
        "  a=1,\n"
        "      ^\n"
        f"{ex}:3:1:4: error: example is rejected at '\\n'\n"
        "  a=1\n"
        "     ^\n"
        f"{ex}:5:1:1: error: example marked invalid is accepted\n"
        f"{g}: lark: rules=4, terminals=5\n"
        "1 file(s) checked: 3 error(s), 0 warning(s)\n"
    )


def test_check_gbnf_examples(tmp_path: Path) -> None:
    g = tmp_path / "ab.gbnf"
    g.write_text('root ::= "a" rest\nrest ::= "b"+\n')
    ex = tmp_path / "ex.jsonl"
    ex.write_text('"abbb"\n"abab"\n')
    code, out = run(["check", str(g), "--examples", str(ex)])
    assert code == 1
    assert out == (
        f"{ex}:2:1:3: error: example is rejected at 'a'\n"
        "  abab\n"
        "    ^\n"
        f"{g}: gbnf: rules=3, terminals=2\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


def test_check_grammar_with_tokenizer_statistics_and_unspellable_terminal(tmp_path: Path) -> None:
    # SmolLM2 has no token holding the byte 0xF1, so U+40000 (F1 80 80 80) can never be produced.
    (tmp_path / "kv.lark").write_text(KV_LARK)
    (tmp_path / "q.lark").write_text('start: "a" | Q\nQ: /\U00040000+/\n')
    code, out = run(["check", str(tmp_path / "kv.lark"), str(tmp_path / "q.lark"), "--tokenizer", "smollm2"])
    assert code == 0
    lines = out.splitlines()
    assert lines[3:6] == [
        (
            f"{tmp_path}/q.lark:2:1: warning: terminal Q can never be produced: no token of the vocabulary "
            "contains a byte it can start with (0xf1)"
        ),
        "  Q: /\U00040000+/",
        "  ^",
    ]
    assert re.fullmatch(
        rf"{tmp_path}/kv.lark: lark: rules=4, terminals=5, states=\d+, productions=7, vocabulary_trie_ms=[\d.]+, "
        r"compile_ms=[\d.]+, cached_states=[1-9]\d*, mask_store_bytes=[1-9]\d*, vocabulary=\S+",
        lines[6],
    )
    assert lines[-1] == "2 file(s) checked: 0 error(s), 1 warning(s)"


def test_sample_grammar_sentences_are_in_the_language(tmp_path: Path) -> None:
    from corral.compiler.cfg import lark_to_ir
    from corral.compiler.earley_tables import build_tables
    from corral.runtime.earley import Recognizer

    g = tmp_path / "kv.lark"
    g.write_text(KV_LARK)
    code, out = run(["sample", str(g), "-n", "20", "--seed", "3"])
    assert code == 0
    samples = [json.loads(x) for x in out.splitlines()]
    assert len(samples) == 20 and len(set(samples)) > 10
    rec = Recognizer(build_tables(lark_to_ir(KV_LARK)))
    for s in samples:
        end = rec.feed(rec.initial(), s.encode("utf-8"))
        assert end is not None and end.accepting, s
    assert run(["sample", str(g), "-n", "20", "--seed", "3"]) == (0, out)


def test_sample_gbnf_and_load_error(tmp_path: Path) -> None:
    g = tmp_path / "ab.gbnf"
    g.write_text('root ::= "a" "b"{2,3}\n')
    code, out = run(["sample", str(g), "-n", "10", "--seed", "1"])
    assert code == 0
    assert {json.loads(x) for x in out.splitlines()} <= {"abb", "abbb"}
    bad = tmp_path / "bad.lark"
    bad.write_text('start: "a" b\n')
    code, out = run(["sample", str(bad)])
    assert code == 1
    assert out == f"{bad}:1:12: error: Rule 'b' used but not defined (in rule start)\n" '  start: "a" b\n' "             ^\n"


def test_compile_grammar_with_tokenizer(tmp_path: Path) -> None:
    g = tmp_path / "kv.lark"
    g.write_text(KV_LARK)
    code, out = run(["compile", str(g), "--tokenizer", "smollm2"])
    assert code == 0
    assert re.fullmatch(
        rf"{g}: \d+ states, 7 productions, \d+ terminals, \d+ masks stored \(\d+ bytes\), ready in [\d.]+ ms; "
        r"cache: \S+\n",
        out,
    )


def test_generate_with_grammar_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import corral
    from corral.integrations import packaged
    from corral.integrations.generate import GenerationResult

    from .conftest import tokenizer_and_vocab

    tok = tokenizer_and_vocab("smollm2")[0]
    seen: dict[str, object] = {}

    def fake_generate(model: object, tokenizer: object, prompt: str, **kwargs: object) -> GenerationResult:
        seen.update(kwargs, prompt=prompt)
        return GenerationResult(text="a=1", token_ids=[])

    monkeypatch.setattr(packaged, "load_smollm2", lambda: (object(), tok))
    monkeypatch.setattr(corral, "generate", fake_generate)
    g = tmp_path / "kv.lark"
    g.write_text(KV_LARK)
    assert run(["generate", "--grammar", str(g), "--max-new-tokens", "9", "give one pair"]) == (0, "a=1\n")
    grammar = seen["grammar"]
    assert isinstance(grammar, corral.CompiledGrammar) and grammar.kind == "grammar"
    assert seen["prompt"] == "give one pair" and seen["max_new_tokens"] == 9 and "regex" not in seen
    assert grammar.matcher().accept_bytes(b"a=1")


def _bundled() -> list[str]:
    from corral import grammars

    return grammars.names()


@pytest.mark.parametrize("name", _bundled())
def test_check_bundled_grammar_has_no_errors(name: str, tmp_path: Path) -> None:
    from corral import grammars

    path = tmp_path / f"{name}.lark"
    path.write_text(grammars.load(name), encoding="utf-8")
    code, out = run(["check", str(path)])
    assert code == 0 and " error: " not in out, out  # warnings and notes are allowed


# --- JSON Schemas -----------------------------------------------------------------------------

OBJ_SCHEMA = (
    '{"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}, '
    '"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["name"]}\n'
)


def schema_file(tmp_path: Path, text: str, name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def counts_masked(out: str) -> str:
    """The output with the IR's sizes (which follow the schema compiler's lowering) replaced by N."""
    return re.sub(r": json: rules=\d+, terminals=\d+", ": json: rules=N, terminals=N", out)


def test_check_schema_clean(tmp_path: Path) -> None:
    s = schema_file(tmp_path, OBJ_SCHEMA)
    code, out = run(["check", str(s)])
    assert code == 0
    assert counts_masked(out) == f"{s}: json: rules=N, terminals=N\n1 file(s) checked: 0 error(s), 0 warning(s)\n"


def test_check_schema_json_syntax_error(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{\n  "type": "object",\n  "properties": {"a": 1,}\n}\n')
    code, out = run(["check", str(s)])
    assert code == 1
    assert out == (
        f"{s}:3:25: error: not valid JSON: Expecting property name enclosed in double quotes\n"
        '    "properties": {"a": 1,}\n'
        "                          ^\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


def test_check_schema_unsupported_keyword_at_its_key(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{\n  "type": "string",\n  "format": "idn-hostname"\n}\n')
    code, out = run(["check", str(s)])
    assert code == 1
    assert out == (
        f"{s}:3:3: error: /: format: format 'idn-hostname' is not supported (--lenient relaxes it)\n"
        '    "format": "idn-hostname"\n'
        "    ^~~~~~~~\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


TWO_PROBLEMS = """{
  "type": "object",
  "properties": {
    "kind": {"type": "string", "format": "idn-hostname"},
    "tags": {"$ref": "#/$defs/tags"},
    "next": {"$ref": "https://example.com/other.json"}
  },
  "$defs": {"tags": {"type": "array", "items": {"type": "string", "format": "idn-hostname"}}}
}
"""


def test_check_schema_reports_every_unsupported_keyword_in_order(tmp_path: Path) -> None:
    # the compiler reports them sorted by pointer (/$defs first); the file shows them in its order
    s = schema_file(tmp_path, TWO_PROBLEMS)
    code, out = run(["check", str(s)])
    assert code == 1
    assert out == (
        f"{s}:4:32: error: /properties/kind: format: format 'idn-hostname' is not supported (--lenient relaxes it)\n"
        '      "kind": {"type": "string", "format": "idn-hostname"},\n'
        "                                 ^~~~~~~~\n"
        f"{s}:6:14: error: /properties/next/$ref: cannot resolve 'https://example.com/other.json' (remote references "
        "are not fetched; pass the document in registry=) (--lenient relaxes it)\n"
        '      "next": {"$ref": "https://example.com/other.json"}\n'
        "               ^~~~~~\n"
        f"{s}:8:67: error: /$defs/tags/items: format: format 'idn-hostname' is not supported (--lenient relaxes it)\n"
        '    "$defs": {"tags": {"type": "array", "items": {"type": "string", "format": "idn-hostname"}}}\n'
        "                                                                    ^~~~~~~~\n"
        "1 file(s) checked: 3 error(s), 0 warning(s)\n"
    )


def test_check_schema_lenient_relaxations_are_warnings(tmp_path: Path) -> None:
    s = schema_file(tmp_path, TWO_PROBLEMS)
    code, out = run(["check", str(s), "--lenient"])
    assert code == 0
    assert out.splitlines()[0] == (
        f"{s}:4:32: warning: /properties/kind: format: format 'idn-hostname' is not supported (relaxed by --lenient)"
    )
    assert out.splitlines()[3] == (
        f"{s}:6:14: warning: /properties/next/$ref: cannot resolve 'https://example.com/other.json' (remote "
        "references are not fetched; pass the document in registry=) (relaxed by --lenient)"
    )
    assert counts_masked(out).splitlines()[6:] == [
        f"{s}:8:67: warning: /$defs/tags/items: format: format 'idn-hostname' is not supported (relaxed by --lenient)",
        '    "$defs": {"tags": {"type": "array", "items": {"type": "string", "format": "idn-hostname"}}}',
        "                                                                    ^~~~~~~~",
        f"{s}: json: rules=N, terminals=N",
        "1 file(s) checked: 0 error(s), 3 warning(s)",
    ]


def test_check_schema_keyword_inside_allof_is_placed_at_its_key(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{"allOf": [{"type": "string"}, {"format": "idn-hostname"}]}\n')
    code, out = run(["check", str(s)])
    assert code == 1
    assert out == (
        f"{s}:1:33: error: /allOf/1: format: format 'idn-hostname' is not supported (--lenient relaxes it)\n"
        '  {"allOf": [{"type": "string"}, {"format": "idn-hostname"}]}\n'
        "                                  ^~~~~~~~\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


def test_check_schema_malformed_type(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{\n  "type": "object",\n  "properties": {\n    "a": {"type": "strin"}\n  }\n}\n')
    code, out = run(["check", str(s)])
    assert code == 1
    assert out == (
        f"{s}:4:19: error: /properties/a/type: unknown type 'strin'\n"
        '      "a": {"type": "strin"}\n'
        "                    ^~~~~~~\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


def test_check_schema_that_is_not_a_schema(tmp_path: Path) -> None:
    s = schema_file(tmp_path, "[1, 2]\n")
    assert run(["check", str(s)]) == (1, (
        f"{s}:1:1: error: /: a schema must be an object or a boolean, not list\n"
        "  [1, 2]\n"
        "  ^\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    ))


def test_check_schema_unknown_keyword_and_duplicate_key_warnings(tmp_path: Path) -> None:
    # x- keywords are extensions: not reported
    s = schema_file(
        tmp_path,
        '{"type": "object", "properties": {"id": {"type": "integer"}, "id": {"type": "string"}},\n'
        ' "x-note": 1, "minimun": 3}\n',
    )
    code, out = run(["check", str(s)])
    assert code == 0
    assert counts_masked(out) == (
        f"{s}:1:62: warning: /properties: duplicate key 'id': only its last value counts\n"
        '  {"type": "object", "properties": {"id": {"type": "integer"}, "id": {"type": "string"}},\n'
        "                                                               ^~~~\n"
        f"{s}:2:15: warning: /: unknown keyword 'minimun' ignored (as the spec says)\n"
        '   "x-note": 1, "minimun": 3}\n'
        "                ^~~~~~~~~\n"
        f"{s}: json: rules=N, terminals=N\n"
        "1 file(s) checked: 0 error(s), 2 warning(s)\n"
    )


def test_check_schema_warnings_shown_beside_errors(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{"type": "string", "format": "idn-hostname", "foo": 1}\n')
    code, out = run(["check", str(s)])
    assert code == 1
    assert out == (
        f"{s}:1:20: error: /: format: format 'idn-hostname' is not supported (--lenient relaxes it)\n"
        '  {"type": "string", "format": "idn-hostname", "foo": 1}\n'
        "                     ^~~~~~~~\n"
        f"{s}:1:46: warning: /: unknown keyword 'foo' ignored (as the spec says)\n"
        '  {"type": "string", "format": "idn-hostname", "foo": 1}\n'
        "                                               ^~~~~\n"
        "1 file(s) checked: 1 error(s), 1 warning(s)\n"
    )


def test_check_schema_that_accepts_no_value(tmp_path: Path) -> None:
    f = schema_file(tmp_path, "false\n", "false.json")
    o = schema_file(tmp_path, '{"type": "object", "properties": {"a": false}, "required": ["a"]}\n', "o.json")
    code, out = run(["check", str(f), str(o)])
    assert code == 1
    assert out == (
        f"{f}:1:1: error: the schema accepts no value at all\n"
        "  false\n"
        "  ^~~~~\n"
        f"{o}:1:1: error: the schema accepts no value at all\n"
        '  {"type": "object", "properties": {"a": false}, "required": ["a"]}\n'
        "  ^\n"
        "2 file(s) checked: 2 error(s), 0 warning(s)\n"
    )


def test_check_schema_json_format(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{\n  "type": "string",\n  "format": "idn-hostname"\n}\n')
    code, out = run(["check", str(s), "--format", "json"])
    assert code == 1
    assert json.loads(out) == {
        "diagnostics": [{
            "path": str(s), "line": 3, "column": 3, "severity": "error",
            "message": "/: format: format 'idn-hostname' is not supported (--lenient relaxes it)",
            "source_line": '  "format": "idn-hostname"', "length": 8,
        }],
        "stats": [{"path": str(s), "kind": "json"}],
        "errors": 1,
    }
    code, out = run(["check", str(s), "--format", "json", "--lenient"])
    assert code == 0
    data = json.loads(out)
    assert data["errors"] == 0 and data["diagnostics"][0]["severity"] == "warning"
    assert data["stats"][0].keys() == {"path", "kind", "rules", "terminals"}


def test_check_schema_examples(tmp_path: Path) -> None:
    s = schema_file(tmp_path, OBJ_SCHEMA)
    ex = tmp_path / "ex.jsonl"
    ex.write_text(
        '{"instance": {"name": "ab", "n": 3}}\n'
        '{"instance": {"name": "abcd"}}\n'
        '{"instance": {"n": 1}, "valid": false}\n'
        '{"text": "{\\"name\\": \\"x\\",\\n \\"n\\": 12}"}\n'
        '{"text": "{\\"name\\": \\"x\\""}\n'
        '{"instance": {"name": "x", "n": -1}, "valid": false}\n'
        '{"instance": "x", "valid": true}\n'
    )
    code, out = run(["check", str(s), "--examples", str(ex)])
    assert code == 1
    assert counts_masked(out) == (
        f"{ex}:2:1:14: error: example is rejected at 'd'\n"
        '  {"name": "abcd"}\n'
        "               ^\n"
        f"{ex}:4:2:8: error: example is rejected at '2'\n"
        '   "n": 12}\n'
        "         ^\n"
        f"{ex}:5:1:13: error: example is incomplete: the text ends before the schema is satisfied\n"
        '  {"name": "x"\n'
        "              ^\n"
        f"{ex}:7:1:1: error: example is rejected at '\"'\n"
        '  "x"\n'
        "  ^\n"
        f"{s}: json: rules=N, terminals=N\n"
        "1 file(s) checked: 4 error(s), 0 warning(s)\n"
    )


def test_check_schema_examples_directory(tmp_path: Path) -> None:
    s = schema_file(tmp_path, OBJ_SCHEMA)
    d = tmp_path / "examples"
    d.mkdir()
    (d / "ok.json").write_text('{\n  "name": "abc",\n  "n": 0\n}\n')
    (d / "invalid-1.json").write_text('{"n": 0}\n')
    assert run(["check", str(s), "--examples", str(d)])[0] == 0


def test_sample_schema_instances_are_valid(tmp_path: Path) -> None:
    import jsonschema

    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 5},
            "size": {"enum": ["S", "M", "L"]},
            "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
            "score": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        },
        "required": ["name", "size"],
        "additionalProperties": False,
    }
    s = schema_file(tmp_path, json.dumps(schema))
    code, out = run(["sample", str(s), "-n", "30", "--seed", "5"])
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 30 and len(set(lines)) > 20
    for line in lines:
        jsonschema.validate(json.loads(line), schema)
    assert run(["sample", str(s), "-n", "30", "--seed", "5"]) == (0, out)


def test_sample_schema_reports_problems(tmp_path: Path) -> None:
    s = schema_file(tmp_path, '{"type": "string", "format": "idn-hostname"}\n')
    code, out = run(["sample", str(s)])
    assert code == 1
    assert out == (
        f"{s}:1:20: error: /: format: format 'idn-hostname' is not supported (--lenient relaxes it)\n"
        '  {"type": "string", "format": "idn-hostname"}\n'
        "                     ^~~~~~~~\n"
    )
    code, out = run(["sample", str(s), "--lenient", "-n", "5", "--seed", "1"])
    assert code == 0
    assert all(isinstance(json.loads(x), str) for x in out.splitlines())


def test_check_schema_with_tokenizer_statistics(tmp_path: Path) -> None:
    s = schema_file(tmp_path, OBJ_SCHEMA)
    code, out = run(["check", str(s), "--tokenizer", "smollm2"])
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(
        rf"{s}: json: rules=\d+, terminals=\d+, states=\d+, productions=\d+, vocabulary_trie_ms=[\d.]+, "
        r"compile_ms=[\d.]+, cached_states=[1-9]\d*, mask_store_bytes=[1-9]\d*, vocabulary=\S+",
        lines[0],
    )
    assert lines[1:] == ["1 file(s) checked: 0 error(s), 0 warning(s)"]


def test_compile_schema_with_tokenizer(tmp_path: Path) -> None:
    s = schema_file(tmp_path, OBJ_SCHEMA)
    code, out = run(["compile", str(s), "--tokenizer", "smollm2"])
    assert code == 0
    assert re.fullmatch(
        rf"{s}: \d+ states, \d+ productions, \d+ terminals, \d+ masks stored \(\d+ bytes\), ready in [\d.]+ ms; "
        r"cache: \S+\n",
        out,
    )
    bad = schema_file(tmp_path, '{"type": "string", "format": "idn-hostname"}\n', "bad.json")
    code, out = run(["compile", str(bad), "--tokenizer", "smollm2"])
    assert code == 1 and out.startswith(f"{bad}:1:20: error: /: format: format 'idn-hostname' is not supported")


def test_generate_with_schema_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import corral
    from corral.integrations import packaged
    from corral.integrations.generate import GenerationResult

    seen: dict[str, object] = {}
    loads = []

    def fake_generate(model: object, tokenizer: object, prompt: str, **kwargs: object) -> GenerationResult:
        seen.update(kwargs, prompt=prompt)
        return GenerationResult(text='{"name": "é", "n": 3}', token_ids=[], value={"name": "é", "n": 3})

    monkeypatch.setattr(packaged, "load_smollm2", lambda: loads.append(1) or (object(), object()))
    monkeypatch.setattr(corral, "generate", fake_generate)
    s = schema_file(tmp_path, OBJ_SCHEMA)
    assert run(["generate", "--schema", str(s), "a person"]) == (0, '{"name": "é", "n": 3}\n')
    assert seen["schema"] == json.loads(OBJ_SCHEMA) and seen["prompt"] == "a person"
    # a schema corral cannot enforce is reported before any model is loaded
    bad = schema_file(tmp_path, '{"type": "string", "format": "idn-hostname"}\n', "bad.json")
    loads.clear()
    code, out = run(["generate", "--schema", str(bad), "a list"])
    assert code == 1 and out.startswith(f"{bad}:1:20: error: /: format: format 'idn-hostname' is not supported") and not loads


ODD_SCHEMAS: list[str] = [
    "true", "false", "{}", "null", "42", '"string"', "[]", "[{}]", "{\"type\": []}", '{"type": 3}',
    '{"type": ["string", "strin"]}', '{"type": "integer", "minimum": "0"}', '{"minLength": "x", "type": "string"}',
    '{"enum": 3}', '{"enum": []}', '{"const": {"a": [1, 2.5e3, null]}}', '{"anyOf": []}', '{"anyOf": {}}',
    '{"oneOf": [{"type": "string"}, {"type": "number"}]}', '{"allOf": [true, false]}', '{"allOf": "x"}',
    '{"not": {}}', '{"if": {"type": "string"}, "then": {"minLength": 1}}', '{"$ref": "#"}',
    '{"$ref": "#/nowhere/deeper"}', '{"$ref": 5}', '{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}',
    '{"properties": []}', '{"properties": {"a": 5}}', '{"type": "object", "required": "a"}',
    '{"type": "object", "required": ["a"], "additionalProperties": false}',
    '{"type": "array", "items": [{"type": "string"}], "additionalItems": false}',
    '{"type": "array", "prefixItems": "x"}', '{"type": "array", "minItems": 3, "maxItems": 1}',
    '{"type": "array", "maxItems": 100000}', '{"type": "string", "pattern": "("}',
    '{"type": "string", "pattern": "(a)\\\\1"}', '{"type": "string", "format": "nonsense"}',
    '{"type": "number", "multipleOf": 0}', '{"type": "number", "minimum": 1e400}',
    '{"type": "number", "minimum": NaN}', '{"patternProperties": {"(": {}}}', '{"propertyNames": {"pattern": "["}}',
    '{"a/b~c": 1, "properties": {"x/y": {"type": "strin"}}}', '{"type": "object", "minProperties": 1000}',
    '{"dependentRequired": {"a": ["b"]}}', '{"unevaluatedProperties": {"type": "string"}, "allOf": [{}]}',
    '{"$schema": "http://json-schema.org/draft-07/schema#", "items": [{}, {}], "type": "array"}',
    '{"$dynamicRef": "#x"}', '{"type": "string", "maxLength": 5000, "pattern": "a+"}',
    '{"\\u00e9\\ud83d\\ude00": {"\\"": "\\\\"}, "type": "string"}', "\ufeff{}", "{\"a\": 1,}", "", "   ",
    '{"type": "object"' + ', "properties": {"a": {"type": "object"' * 60 + "}}" * 60 + "}",
    "[" * 3000 + "]" * 3000, '{"x": ' + "1" * 5000 + "}",
]


def test_check_schema_never_raises(tmp_path: Path) -> None:
    paths = []
    for i, text in enumerate(ODD_SCHEMAS):
        paths.append(str(schema_file(tmp_path, text, f"odd{i}.json")))
    code, out = run(["check", *paths, "--format", "json"])
    data = json.loads(out)
    assert code == 1 and len(data["stats"]) == len(ODD_SCHEMAS)
    by_path: dict[str, list[dict[str, object]]] = {}
    for d in data["diagnostics"]:
        by_path.setdefault(str(d["path"]), []).append(d)
        assert d["line"] >= 1 and d["column"] >= 1
    assert paths[0] not in by_path  # true: anything goes
    assert [d["message"] for d in by_path[paths[1]]] == ["the schema accepts no value at all"]  # false
    for i, text in enumerate(ODD_SCHEMAS):
        for lenient in ([], ["--lenient"]):
            code, out = run(["check", paths[i], *lenient])
            assert code in (0, 1) and out.endswith(" warning(s)\n"), (text[:80], out)


def test_index_json_spans_match_the_values() -> None:
    from corral.compiler.json_schema.check import _escape, index_json

    def walk(v: object, p: str, out: dict[str, object]) -> None:
        out[p] = v
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{p}/{_escape(k)}", out)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{p}/{i}", out)

    value = {"a~/b": [1, -2.5e-3, {"\"q\\": None, "é😀": True}], "": {}, "c": [[], [False, "x\\ny\u00e9"]]}
    for text in (
        json.dumps(value), json.dumps(value, indent=2), json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        "\r\n\t" + json.dumps(value, indent="\t") + "\n ",
    ):
        spans, dups = index_json(text)
        want: dict[str, object] = {}
        walk(json.loads(text), "", want)
        assert set(spans) == set(want) and not dups
        for p, sp in spans.items():
            assert json.loads(text[sp.start : sp.end]) == want[p]
            if p:
                key = p.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
                if sp.key_start is None:
                    assert key.isdigit()
                else:
                    assert json.loads(text[sp.key_start : sp.key_end]) == key
    for bad in ("{", "[1,]", '{"a" 1}', "", "1 2", '{"a": 1,}', "tru"):
        with pytest.raises(ValueError):
            index_json(bad)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only() -> None:
    from corral.cli import Progress

    tty = _Tty()
    assert list(Progress([1, 2, 3], "checking", stream=tty)) == [1, 2, 3]
    text = tty.getvalue()
    assert "\rchecking [" in text and "] 3/3" in text and text.endswith("\r")
    piped = io.StringIO()
    assert list(Progress([1, 2, 3], "checking", stream=piped)) == [1, 2, 3]
    assert piped.getvalue() == ""


@pytest.mark.parametrize("command", ["check", "sample", "compile"])
@pytest.mark.parametrize("kind", ["regex", "lark", "gbnf", "json"])
def test_directory_argument_is_a_usage_error(tmp_path: Path, command: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d").mkdir()
    argv = [command, "--kind", kind, str(tmp_path / "d")] + (["--tokenizer", "smollm2"] if command == "compile" else [])
    code, _ = run(argv)
    assert code == 2
    assert capsys.readouterr().err == f"corral: error: {tmp_path}/d: is a directory, not a file\n"


@pytest.mark.parametrize("name", ["b.regex", "b.lark", "b.gbnf", "b.json"])
def test_binary_file_argument_is_a_usage_error(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    for command in ("check", "sample"):
        code, _ = run([command, str(tmp_path / name)])
        assert code == 2
        assert capsys.readouterr().err == f"corral: error: {tmp_path}/{name}: not UTF-8 text (invalid start byte at byte 0)\n"


def test_binary_example_file_is_a_usage_error(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files / "bin.jsonl").write_bytes(b"\xff\xfe")
    code, _ = run(["check", str(files / "email.regex"), "--examples", str(files / "bin.jsonl")])
    assert code == 2
    assert capsys.readouterr().err == f"corral: error: {files}/bin.jsonl: not UTF-8 text (invalid start byte at byte 0)\n"


def test_missing_lark_import_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "imp.lark").write_text('start: "a"\n%import nosuchmodule.FOO\n')
    code, out = run(["check", str(tmp_path / "imp.lark")])
    assert code == 1
    assert out == (
        f"{tmp_path}/imp.lark:2:1: error: %import: cannot read the grammar file 'nosuchmodule.lark' (No such file or "
        "directory); Lark imports its bundled grammars (common, lark, python, unicode) and .lark files in the working directory\n"
        "  %import nosuchmodule.FOO\n"
        "  ^~~~~~~~~~~~~~~~~~~~\n"
        "1 file(s) checked: 1 error(s), 0 warning(s)\n"
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ('{"type": "number", "maximum": NaN}', "/maximum: NaN is not a JSON number (JSON has no NaN or infinities)"),
        ('{"type": "number", "minimum": -Infinity}', "/minimum: -Infinity is not a JSON number (JSON has no NaN or infinities)"),
        ('{"type": "number", "multipleOf": 0}', "multipleOf must be greater than 0, got 0"),
        ('{"type": "number", "multipleOf": -2.5}', "multipleOf must be greater than 0, got -2.5"),
    ],
)
def test_non_finite_and_non_positive_numbers_are_diagnostics(tmp_path: Path, schema: str, message: str) -> None:
    (tmp_path / "s.json").write_text(schema)
    for command in ("check", "sample"):
        code, out = run([command, str(tmp_path / "s.json")])
        assert code == 1
        assert f": error: {message}\n" in out
        assert "Traceback" not in out and "internal error" not in out


def test_an_unexpected_exception_is_one_line_not_a_traceback(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import corral.cli as cli

    def boom(*a: object, **k: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(cli, "_cmd_check", boom)
    code, _ = run(["check", str(files / "email.regex")])
    assert code == 3
    assert capsys.readouterr().err == (
        "corral: internal error: KeyError: 'oops'\n  please report it; set CORRAL_TRACEBACK=1 to see the traceback\n"
    )


# Every problem at once: a file with several independent problems reports all of them in one run.

SEVERAL_LARK = 'start: item+ missing\nitem: "a" | other\nunused: "u"\nB: "b"\nother: undefined_too\n'
SEVERAL_GBNF = 'root ::= item missing\nitem ::= "a" | other\nunused ::= "u"\nother ::= undefined-too\n'
SEVERAL_SCHEMA = (
    '{\n  "type": "object",\n  "properties": {\n    "a": {"type": "strin"},\n'
    '    "b": {"type": "string", "format": "idn-hostname"},\n    "c": {"minLength": -1}\n  },\n  "foo": 1\n}\n'
)


def test_check_reports_every_undefined_rule_and_the_other_findings_of_a_lark_grammar(tmp_path: Path) -> None:
    (tmp_path / "g.lark").write_text(SEVERAL_LARK)
    code, out = run(["check", str(tmp_path / "g.lark")])
    assert code == 1
    assert out == (
        f"{tmp_path}/g.lark:1:14: error: Rule 'missing' used but not defined (in rule start)\n"
        "  start: item+ missing\n"
        "               ^~~~~~~\n"
        f"{tmp_path}/g.lark:3:1: warning: rule 'unused' is never used: it cannot be reached from the start rule 'start'\n"
        '  unused: "u"\n'
        "  ^~~~~~\n"
        f"{tmp_path}/g.lark:4:1: warning: terminal B is defined but never used\n"
        '  B: "b"\n'
        "  ^\n"
        f"{tmp_path}/g.lark:5:8: error: Rule 'undefined_too' used but not defined (in rule other)\n"
        "  other: undefined_too\n"
        "         ^~~~~~~~~~~~~\n"
        "1 file(s) checked: 2 error(s), 2 warning(s)\n"
    )


def test_check_reports_every_undefined_rule_and_the_other_findings_of_a_gbnf_grammar(tmp_path: Path) -> None:
    (tmp_path / "g.gbnf").write_text(SEVERAL_GBNF)
    code, out = run(["check", str(tmp_path / "g.gbnf")])
    assert code == 1
    assert out == (
        f"{tmp_path}/g.gbnf:1:15: error: undefined rule 'missing'\n"
        "  root ::= item missing\n"
        "                ^~~~~~~\n"
        f"{tmp_path}/g.gbnf:3:1: warning: rule 'unused' is never used: it cannot be reached from the start rule 'root'\n"
        '  unused ::= "u"\n'
        "  ^~~~~~\n"
        f"{tmp_path}/g.gbnf:4:11: error: undefined rule 'undefined-too'\n"
        "  other ::= undefined-too\n"
        "            ^~~~~~~~~~~~~\n"
        "1 file(s) checked: 2 error(s), 1 warning(s)\n"
    )


def test_check_reports_every_malformed_and_unsupported_keyword_of_a_schema(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(SEVERAL_SCHEMA)
    code, out = run(["check", str(tmp_path / "s.json")])
    assert code == 1
    assert out == (
        f"{tmp_path}/s.json:4:19: error: /properties/a/type: unknown type 'strin'\n"
        '      "a": {"type": "strin"},\n'
        "                    ^~~~~~~\n"
        f"{tmp_path}/s.json:5:29: error: /properties/b: format: format 'idn-hostname' is not supported"
        " (--lenient relaxes it)\n"
        '      "b": {"type": "string", "format": "idn-hostname"},\n'
        "                              ^~~~~~~~\n"
        f"{tmp_path}/s.json:6:24: error: /properties/c/minLength: must be a non-negative integer\n"
        '      "c": {"minLength": -1}\n'
        "                         ^~\n"
        f"{tmp_path}/s.json:8:3: warning: /: unknown keyword 'foo' ignored (as the spec says)\n"
        '    "foo": 1\n'
        "    ^~~~~\n"
        "1 file(s) checked: 3 error(s), 1 warning(s)\n"
    )


@pytest.mark.parametrize(("syntax", "text"), [("lark", SEVERAL_LARK), ("gbnf", SEVERAL_GBNF)])
def test_compile_grammar_raises_one_error_carrying_every_error(syntax: str, text: str) -> None:
    from corral import GrammarError, Vocabulary, compile_grammar

    with pytest.raises(GrammarError) as info:
        compile_grammar(text, Vocabulary([b"a", None], eos_token_ids=[1]), syntax=syntax)
    first, second = info.value.diagnostics
    assert first is info.value and (first.line, second.line) == (1, 5 if syntax == "lark" else 4)
    assert str(info.value) == first.render() + "\nand 1 more problem(s):\n" + second.render()
    assert "missing" in first.message and "undefined" in second.message
