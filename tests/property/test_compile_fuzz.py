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


# --- Only corral errors escape: every public entry point, hostile arguments ------------------------

NUMBERS = st.sampled_from([0, 1, 2, 3, -1, -2.5, 0.5, 1.5, 10**30, -(10**30), 1e-300, float("nan"), float("inf"), float("-inf"), True, None, "3", [1]])
SCHEMA_KEYWORDS = st.sampled_from(
    ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems",
     "maxItems", "minProperties", "maxProperties", "minContains", "maxContains", "const", "enum", "type", "pattern",
     "format", "items", "required", "$ref", "uniqueItems", "additionalProperties"]
)
TYPES = st.sampled_from(["number", "integer", "string", "array", "object", "boolean", "null", "nope", ["integer", "string"]])


def _schemas() -> st.SearchStrategy[object]:
    leaf = st.one_of(NUMBERS, TYPES, st.sampled_from(["a+", "(", "#/nope", "#", "date", {}, True, False]))
    return st.recursive(
        st.dictionaries(st.one_of(SCHEMA_KEYWORDS, st.sampled_from([1, "properties"])), leaf, max_size=4),
        lambda inner: st.one_of(
            st.dictionaries(st.one_of(SCHEMA_KEYWORDS, st.just("properties")), st.one_of(leaf, inner), max_size=4),
            st.dictionaries(st.text("ab", max_size=2), inner, max_size=3).map(lambda p: {"type": "object", "properties": p}),
            st.lists(inner, max_size=3).map(lambda xs: {"anyOf": xs}),
        ),
        max_leaves=8,
    )


def _only_corral_errors(f: object, *args: object, **kwargs: object) -> object:
    try:
        return f(*args, **kwargs)  # type: ignore[operator]
    except corral.CorralError as e:
        assert str(e)
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_schemas())
def test_compile_json_schema_raises_only_corral_errors(schema: object) -> None:
    g = _only_corral_errors(corral.compile_json_schema, schema, VOCAB, limits=corral.Limits(timeout=5.0))
    if g is not None:
        g.matcher().next_token_mask()  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(text=st.lists(st.sampled_from(
    ['start: "a"', "\n", " ", "%import common.WS", "%import nosuchmodule.FOO", "%import .rel.X", "%import common (A, B)",
     "%import /abs.X", "%ignore WS", "%declare X", "start: X", "FOO: /x/", "%override start: \"b\"", "%extend start: \"c\""]
), max_size=6).map("".join))
def test_compile_grammar_with_directives_raises_only_corral_errors(text: str) -> None:
    _only_corral_errors(corral.compile_grammar, text, VOCAB, limits=corral.Limits(timeout=5.0))


@settings(max_examples=60, deadline=None)
@given(name=st.one_of(st.text(max_size=12), st.sampled_from(["json", "../cli", "json.lark", "", ".", "/etc/passwd", "\x00"])))
def test_grammars_load_raises_only_corral_errors(name: str) -> None:
    _only_corral_errors(corral.grammars.load, name)


ARGS = st.sampled_from([None, "a", b"a", 1.5, -1, 10**20, [1, 2], (b"a", None), {"a": 1}, float("nan"), True, object()])


@settings(max_examples=100, deadline=None)
@given(tokens=st.one_of(ARGS, st.lists(st.one_of(ARGS, st.binary(max_size=3)), max_size=4)), eos=st.one_of(ARGS, st.lists(ARGS, max_size=2)),
       size=ARGS)
def test_vocabulary_raises_only_corral_errors(tokens: object, eos: object, size: object) -> None:
    _only_corral_errors(corral.Vocabulary, tokens, eos_token_ids=eos)
    _only_corral_errors(corral.Vocabulary, [b"a", None], eos_token_ids=[1], size=size)


_REGEX_GRAMMAR = corral.compile_regex("(ab|a)+", VOCAB)
_LARK_GRAMMAR = corral.compile_grammar('start: ("a" | "b")+', VOCAB)


@settings(max_examples=100, deadline=None)
@given(method=st.sampled_from(["accept_token", "check_token", "allows", "accept_bytes", "accept_tokens", "rollback"]), arg=ARGS,
       lark=st.booleans())
def test_matcher_methods_raise_only_corral_errors(method: str, arg: object, lark: bool) -> None:
    m = (_LARK_GRAMMAR if lark else _REGEX_GRAMMAR).matcher()
    m.accept_token(ord("a"))
    _only_corral_errors(getattr(m, method), arg)
    m.next_token_mask()
