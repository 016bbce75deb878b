"""corral.compiler.lark_adapter: the supported Lark range, and each adapter function on a small
grammar (a Lark release that moves an internal fails here first)."""

from __future__ import annotations

import re
from pathlib import Path

import lark
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from corral.compiler.lark_adapter import (
    SUPPORTED_LARK,
    LarkBNF,
    grammar_definitions,
    lark_error_class,
    load_bnf,
    unexpected_input_position,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

GRAMMAR = """\
start: item+ NUMBER?
item: "x" | NAME
NAME: LETTER (LETTER | DIGIT)*
LETTER: /[a-z]/
NUMBER: DIGIT+
%import common.DIGIT
%import common.WS
%ignore WS
"""


def _declared_lark() -> Requirement:
    """The ``lark`` requirement of pyproject.toml's dependencies (read without tomllib: 3.10)."""
    (line,) = re.findall(r'^\s*"(lark[^"]*)",?\s*$', PYPROJECT.read_text(encoding="utf-8"), re.M)
    return Requirement(line)


def test_installed_lark_is_in_the_declared_range() -> None:
    req = _declared_lark()
    assert str(req.specifier) == str(Requirement("lark" + SUPPORTED_LARK).specifier)
    assert Version(lark.__version__) in req.specifier, (lark.__version__, str(req.specifier))


def test_load_bnf_returns_plain_terminals_rules_and_ignore() -> None:
    bnf = load_bnf(GRAMMAR, "start")
    assert isinstance(bnf, LarkBNF)
    terminals = dict(bnf.terminals)
    assert re.fullmatch(terminals["NAME"], "ab1") and not re.fullmatch(terminals["NAME"], "1ab")
    assert re.fullmatch(terminals["NUMBER"], "123")
    assert bnf.ignore == ("WS",)
    rules = {str(r) for r, _ in bnf.rules}
    assert {"start", "item"} <= rules
    assert ("item", ("NAME",)) in [(str(r), e) for r, e in bnf.rules]
    assert all(isinstance(s, str) for _, e in bnf.rules for s in e)


def test_load_bnf_keeps_optional_parts_linear() -> None:
    # 12 optional parts: Lark's own pass would make 2**12 alternatives of start
    text = "start: " + " ".join(f'"{c}"?' for c in "abcdefghijkl")
    bnf = load_bnf(text, "start")
    assert len(bnf.rules) < 50


def test_load_bnf_leaves_lark_module_unchanged() -> None:
    import lark.load_grammar as lg

    before = lg.EBNF_to_BNF
    load_bnf(GRAMMAR, "start")
    with pytest.raises(lark_error_class()):
        load_bnf("start: undefined_rule", "start")
    assert lg.EBNF_to_BNF is before


def test_lark_error_class_is_larks_root_error() -> None:
    assert lark_error_class() is lark.exceptions.LarkError


def test_unexpected_input_position_of_a_syntax_error() -> None:
    with pytest.raises(lark_error_class()) as info:
        load_bnf('start: "a"\nitem: ( "b"\n', "start")
    assert unexpected_input_position(info.value) is not None
    line, column = unexpected_input_position(info.value)  # type: ignore[misc]
    assert line >= 2 and column >= 1


def test_unexpected_input_position_of_other_errors() -> None:
    assert unexpected_input_position(ValueError("no")) is None
    with pytest.raises(lark_error_class()) as info:
        load_bnf("start: missing", "start")
    assert unexpected_input_position(info.value) is None


def test_grammar_definitions_positions_and_references() -> None:
    rules, terms, refs = grammar_definitions(GRAMMAR)
    assert rules == {"start": (1, 1), "item": (2, 1)}
    assert terms["NAME"] == (3, 1) and terms["LETTER"] == (4, 1) and terms["NUMBER"] == (5, 1)
    assert terms["DIGIT"] == (6, 16) and terms["WS"] == (7, 16)  # imported: at the %import
    assert refs["NAME"] == frozenset({"LETTER", "DIGIT"})
    assert refs["NUMBER"] == frozenset({"DIGIT"}) and refs["LETTER"] == frozenset()


def test_grammar_definitions_skip_templates_and_follow_aliases() -> None:
    text = '_sep{x, sep}: x (sep x)*\nstart: _sep{"a", ","}\n%import common.INT -> N\n'
    rules, terms, _ = grammar_definitions(text)
    assert rules == {"start": (2, 1)}
    assert "N" in terms and "INT" not in terms


def test_grammar_definitions_empty_when_lark_rejects_the_text() -> None:
    assert grammar_definitions("start: (") == ({}, {}, {})
