"""Fuzzing the compile entry point: any input ends in a result or a typed corral error, quickly."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corral
from corral import Vocabulary

VOCAB = Vocabulary([bytes([b]) for b in range(256)] + [b"ab", b"\xc3\xa9", None], eos_token_ids=[258])

REGEX_CHARS = st.sampled_from(list("ab()[]{}|*+?.^$\\-,:=!<>PdwsDWSbBAZuxN0123456789é😀 \n") + ["(?", "(?i)", "(?P<", "\\1", "{2,3}", "[^"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.lists(REGEX_CHARS, max_size=20).map("".join))
def test_compile_regex_never_crashes(pattern: str) -> None:
    t0 = time.monotonic()
    try:
        g = corral.compile_regex(pattern, VOCAB, max_states=5000, timeout=5.0)
    except corral.CorralError as e:
        assert str(e)
    else:
        m = g.matcher()
        m.next_token_mask()
    assert time.monotonic() - t0 < 30


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(max_size=30))
def test_compile_regex_arbitrary_text(pattern: str) -> None:
    try:
        corral.compile_regex(pattern, VOCAB, max_states=5000, timeout=5.0)
    except corral.CorralError as e:
        assert str(e)


def test_deeply_nested_pattern_is_a_typed_error_or_works() -> None:
    for depth in (50, 5000):
        pattern = "(" * depth + "a" + ")" * depth
        try:
            g = corral.compile_regex(pattern, VOCAB)
        except corral.CorralError as e:
            assert "nested" in str(e) or "regex" in str(e)
        else:
            assert g.matcher().accept_token(ord("a"))


def test_huge_alternation_compiles() -> None:
    words = [f"w{i:05d}" for i in range(5000)]
    g = corral.compile_regex("|".join(words), VOCAB)
    m = g.matcher()
    assert m.accept_bytes(b"w04999") and m.is_accepting()


LARK_PIECES = st.sampled_from(
    ["start", ":", " ", "\n", "|", "a", "b", "A", "B", '"x"', '"y"i', "/[0-9]+/", "/(?<=x)y/", "(", ")", "[", "]",
     "?", "*", "+", "~", "2", "..", "3", "%ignore", "%import common.WS", "%declare", "->", "_", "{", "}", ",", ".2",
     "//c", "\"", "/", "!", "?x"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(LARK_PIECES, max_size=25).map("".join))
def test_compile_grammar_never_crashes(text: str) -> None:
    t0 = time.monotonic()
    try:
        g = corral.compile_grammar(text, VOCAB, max_states=5000, timeout=5.0)
    except corral.CorralError as e:
        assert str(e)
    else:
        m = g.matcher()
        m.next_token_mask()
    assert time.monotonic() - t0 < 30


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_compile_grammar_arbitrary_text(text: str) -> None:
    for syntax in ("lark", "gbnf"):
        try:
            corral.compile_grammar(text, VOCAB, syntax=syntax, timeout=5.0)
        except corral.CorralError as e:
            assert str(e)


def test_deep_nesting_at_run_time_is_fine() -> None:
    g = corral.compile_grammar('start: "[" start "]" | "x"', VOCAB)
    m = g.matcher()
    depth = 3000
    assert m.accept_bytes(b"[" * depth + b"x")
    assert m.next_token_mask() is not None
    assert m.accept_bytes(b"]" * depth) and m.is_accepting()
