"""JSON string literals under pattern / length / format constraints.

Oracles: ``json.loads`` (a literal is valid when it decodes strictly, as a whole, to a ``str`` that
is valid Unicode), ``re.fullmatch`` on :func:`ecma_to_python`'s translation, ``jsonschema`` (its
``pattern`` is Python's ``re.search``, equal to ECMA-262 on the pattern and string families used
here; its format checkers where installed), Python's ``datetime`` and ``ipaddress``, and cases
copied from the JSON Schema Test Suite (draft 2020-12, ``optional/format`` and
``optional/ecmascript-regex``).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import itertools
import json
import random
import re
import uuid
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corral.compiler.automaton import ByteDFA
from corral.compiler.json_schema.ecma_regex import ecma_to_python
from corral.compiler.json_schema.errors import Inexpressible
from corral.compiler.json_schema.formats import FORMATS, format_pattern
from corral.compiler.json_schema.json_strings import json_string_dfa
from corral.errors import GrammarError

cached_dfa = functools.lru_cache(maxsize=None)(json_string_dfa)
"""``json_string_dfa``, memoised for the property tests (compiling is the slow part)."""

SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _hex4(unit: int, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in f"{unit:04x}")


def respell(value: str, rng: random.Random) -> str:
    """A JSON literal of ``value`` with a random spelling for each character."""
    out = ['"']
    for ch in value:
        cp = ord(ch)
        choices = []
        if ch not in '"\\' and cp >= 0x20:
            choices.append(ch)
        if ch in SHORT:
            choices.append(SHORT[ch])
        if cp <= 0xFFFF:
            choices.append("\\u" + _hex4(cp, rng))
        else:
            v = cp - 0x10000
            choices.append("\\u" + _hex4(0xD800 + (v >> 10), rng) + "\\u" + _hex4(0xDC00 + (v & 0x3FF), rng))
        out.append(rng.choice(choices))
    out.append('"')
    return "".join(out)


def spellings(value: str, rng: random.Random) -> list[bytes]:
    return [
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False).encode(),
        respell(value, rng).encode(),
        respell(value, rng).encode(),
    ]


def decode_literal(data: bytes) -> str | None:
    """The value of a JSON string literal, or ``None`` when ``data`` is not exactly one valid one."""
    try:
        text = data.decode("utf-8")
        if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
            return None
        value = json.loads(text)
        value.encode("utf-8")  # lone surrogates are not valid Unicode
    except (UnicodeError, ValueError):
        return None
    return value if isinstance(value, str) else None


def check(dfa: ByteDFA, value: str, expected: bool, rng: random.Random) -> None:
    for lit in spellings(value, rng):
        assert dfa.matches(lit) == expected, (value, lit, expected)


# Characters chosen to hit every spelling and UTF-8 length, and the ECMA class boundaries.
ALPHABET = st.sampled_from(
    list("ab zAZ09_-/.\"\\\t\n\r\x00\x1f\x7f") + ["\u00a0", "é", "\u07c0", "\u2028", "€", "\ufeff", "中", "\uffff",
                                                 "😀", "\U0001f432", "\U0010ffff", "\u0800", "\u07ff"]
)
VALUES = st.one_of(st.text(ALPHABET, max_size=8), st.text(max_size=6))


# --- the plain string automaton ------------------------------------------------------------------

def test_plain_string_every_bmp_escape() -> None:
    dfa = json_string_dfa()
    for unit in range(0x10000):
        lit = f'"\\u{unit:04x}"'.encode()
        assert dfa.matches(lit) == (not 0xD800 <= unit <= 0xDFFF), hex(unit)
    assert dfa.matches(b'"\\uABCD\\uabcd\\uAbCd"')


def test_plain_string_surrogate_pairs() -> None:
    dfa = json_string_dfa()
    for high, low in [(0xD800, 0xDC00), (0xDBFF, 0xDFFF), (0xD83D, 0xDE00), (0xDAAA, 0xDD55)]:
        assert dfa.matches(f'"\\u{high:04x}\\u{low:04X}"'.encode())
        assert not dfa.matches(f'"\\u{low:04x}\\u{high:04x}"'.encode())
        assert not dfa.matches(f'"\\u{high:04x}"'.encode())
        assert not dfa.matches(f'"\\u{high:04x}a"'.encode())
        assert not dfa.matches(f'"\\u{high:04x}\\n"'.encode())
        assert not dfa.matches(f'"\\u{high:04x}\\u0041"'.encode())
        assert not dfa.matches(f'"\\u{high:04x}\\u{high:04x}\\u{low:04x}"'.encode())


@pytest.mark.parametrize(
    "literal,valid",
    [
        (b'""', True), (b'"abc"', True), (b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', True), (b'"\xc3\xa9\xe2\x82\xac"', True),
        (b'"\xf0\x9f\x98\x80"', True), (b'"\xf4\x8f\xbf\xbf"', True), (b'"\x7f"', True),
        (b'"', False), (b'"a', False), (b'a"', False), (b'"\x00"', False), (b'"\x1f"', False), (b'"\n"', False),
        (b'"\\x41"', False), (b'"\\a"', False), (b'"\\u12"', False), (b'"\\u12G4"', False), (b'"\\U0041"', False),
        (b'"\\"', False), (b'"a"b"', False), (b'"\xc0\x80"', False), (b'"\xed\xa0\x80"', False),
        (b'"\xf4\x90\x80\x80"', False), (b'"\xe2\x82"', False), (b'"\x80"', False), (b' "a"', False),
    ],
)
def test_plain_string_literals(literal: bytes, valid: bool) -> None:
    assert (decode_literal(literal) is not None) == valid  # the oracle agrees with the table
    assert json_string_dfa().matches(literal) == valid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, st.randoms(use_true_random=False))
def test_plain_string_accepts_every_spelling(value: str, rng: random.Random) -> None:
    check(cached_dfa(), value, True, rng)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.randoms(use_true_random=False), st.data())
def test_plain_string_mutations_match_json_loads(value: str, rng: random.Random, data: st.DataObject) -> None:
    lit = bytearray(respell(value, rng).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(lit)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(list(b'"\\u/bnxDdEe0a9 \x00\x80\xbf\xc3\xed\xf0\xff')))
        if op == "insert":
            lit[pos:pos] = bytes([byte])
        elif pos < len(lit):
            lit[pos : pos + 1] = b"" if op == "delete" else bytes([byte])
    assert cached_dfa().matches(bytes(lit)) == (decode_literal(bytes(lit)) is not None), bytes(lit)


# --- lengths -------------------------------------------------------------------------------------

@pytest.mark.parametrize("min_length,max_length", [(0, 0), (0, 3), (2, 2), (1, 4), (3, None), (0, 1), (5, 2)])
@settings(max_examples=60, deadline=None)
@given(value=VALUES, rng=st.randoms(use_true_random=False))
def test_length_bounds_count_code_points(min_length: int, max_length: int | None, value: str, rng: random.Random) -> None:
    dfa = cached_dfa(min_length=min_length, max_length=max_length)
    ok = min_length <= len(value) and (max_length is None or len(value) <= max_length)
    check(dfa, value, ok, rng)


def test_length_bounds_with_pattern() -> None:
    rng = random.Random(0)
    dfa = json_string_dfa("^[a-c]*x", min_length=2, max_length=4)
    for n in range(7):
        for value in ("a" * max(n - 1, 0) + "x", "x" * n, "é" * n, "ab" + "x" * n):
            ok = re.match("[a-c]*x", value) is not None and 2 <= len(value) <= 4
            check(dfa, value, ok, rng)


def test_min_length_with_pattern_repeats_the_last_layer() -> None:
    rng = random.Random(4)
    dfa = json_string_dfa("^[ab]*c", min_length=3)
    for value in ["c", "ac", "abc", "abbc", "bbbbbbc", "cab", "abcx", "ab", "abcabc"]:
        check(dfa, value, re.match("[ab]*c", value) is not None and len(value) >= 3, rng)


def test_max_states_raises_the_length_limit() -> None:
    dfa = json_string_dfa(max_length=6000, max_states=130_000)
    assert dfa.matches(json.dumps("😀" * 6000).encode()) and not dfa.matches(json.dumps("a" * 6001).encode())


def test_length_bounds_large() -> None:
    dfa = json_string_dfa(max_length=1000)
    assert dfa.matches(json.dumps("é" * 1000).encode())
    assert dfa.matches(json.dumps("😀" * 1000, ensure_ascii=False).encode())
    assert not dfa.matches(json.dumps("a" * 1001).encode())
    dfa = json_string_dfa(min_length=1000)
    assert dfa.matches(json.dumps("\n" * 1000).encode()) and not dfa.matches(json.dumps("a" * 999).encode())


def test_unsatisfiable_constraints_give_the_empty_automaton() -> None:
    for dfa in (json_string_dfa(min_length=3, max_length=2), json_string_dfa("a^b"), json_string_dfa("^x$", min_length=2),
                json_string_dfa("[^\\s\\S]", ecma=False)):
        assert dfa.n_states == 1 and not dfa.accepting.any() and (dfa.trans == -1).all()


def test_error_when_length_bounds_exceed_max_states() -> None:
    with pytest.raises(Inexpressible) as e:
        json_string_dfa(max_length=6000)
    assert str(e.value) == (
        "the length bounds (minLength=0, maxLength=6000) need more than max_states=100000 states "
        "(up to 21 per character of the bound); use a smaller bound or raise max_states"
    )
    assert json_string_dfa("^[a-z]*$", max_length=6000).n_states < 100_000


def test_error_when_bounds_are_not_integers() -> None:
    with pytest.raises(GrammarError, match=r"^max_length must be a non-negative integer, got -1$"):
        json_string_dfa(max_length=-1)
    with pytest.raises(GrammarError, match=r"^min_length must be a non-negative integer, got True$"):
        json_string_dfa(min_length=True)


# --- ECMA-262 patterns ---------------------------------------------------------------------------

# From the JSON Schema Test Suite (optional/ecmascript-regex.json, non-bmp-regex.json,
# pattern.json) and ECMA-262 semantics.
ECMA_CASES = [
    ("^abc$", [("abc", True), ("abc\n", False), ("xabc", False)]),
    ("^\\t$", [("\\t", False), ("\t", True)]),
    ("^\\cC$", [("\\cC", False), ("\x03", True)]),
    ("^\\cc$", [("\x03", True)]),
    ("^\\d$", [("0", True), ("\u07c0", False)]),
    ("^\\D$", [("0", False), ("\u07c0", True)]),
    ("^\\w$", [("a", True), ("é", False), ("_", True)]),
    ("^\\W$", [("a", False), ("é", True)]),
    ("^\\s$", [(" ", True), ("\t", True), ("\x0b", True), ("\f", True), ("\u00a0", True), ("\ufeff", True),
               ("\n", True), ("\u2029", True), ("\u2003", True), ("\x01", False), ("\u2013", False)]),
    ("^\\S$", [(" ", False), ("\u2003", False), ("\x01", True), ("\u2013", True)]),
    ("\\p{Letter}cole", [("l'école", True), ("l'ecole", True), ("L'ÉCOLE", False)]),
    ("\\wcole", [("l'école", False), ("l'ecole", True)]),
    ("^\\p{digit}+$", [("42", True), ("-%#", False), ("\u09ea\u09e8", True)]),
    ("^\\P{L}+$", [("42", True), ("a", False)]),
    ("^\ud83d\udc32*$", [("", True), ("\U0001f432", True), ("\U0001f432\U0001f432", True), ("\U0001f409", False), ("D", False)]),
    ("^\\ud83d\\udc32*$", [("\U0001f432\U0001f432", True), ("\U0001f409", False)]),
    ("^[\\ud83d\\udc32]$", [("\U0001f432", True), ("\U0001f409", False)]),
    ("^.$", [("\U0001f432", True), ("\n", False), ("\r", False), ("\u2028", False), ("\x00", True)]),
    ("^[^]$", [("\n", True), ("😀", True)]),
    ("[]", [("", False), ("a", False)]),
    ("a+", [("xxaayy", True), ("xy", False)]),
    ("^a|b$", [("ax", True), ("xb", True), ("xa", False), ("bx", False)]),
    ("(^|,)x", [("x", True), ("a,x", True), ("ax", False)]),
    ("^$", [("", True), (" ", False)]),
    ("a{,2}", [("a{,2}", True), ("aa", False)]),
    ("^a{2,}$", [("a", False), ("aa", True), ("aaaa", True)]),
    ("^[\\d-z]+$", [("1-z", True), ("y", False)]),
    ("^\\/\\-\\a$", [("/-a", True)]),
    ("^\\0\\x41\\u0042\\101$", [("\x00ABA", True)]),
    ("^\\8$", [("8", True)]),
    ("^\\u{2}$", [("uu", True), ("\x02", False)]),
    ("^[\\b]$", [("\b", True), ("b", False)]),
    ("^(?<year>\\d{4})$", [("2024", True), ("202", False)]),
    ("^x{1}}$", [("x}", True)]),
    ("]", [("]", True)]),
    ("^\\c$", [("\\c", True)]),
    ("^[\\c1]$", [("\x11", True)]),
]


@pytest.mark.parametrize("pattern,cases", ECMA_CASES)
def test_ecma_pattern_semantics(pattern: str, cases: list[tuple[str, bool]]) -> None:
    rng = random.Random(1)
    dfa = json_string_dfa(pattern)
    for value, expected in cases:
        try:
            translated = ecma_to_python(pattern)
        except GrammarError:
            translated = r"[^\s\S]"
        assert (re.fullmatch(translated, value) is not None) == expected, (pattern, value)
        assert (re.search(translated, value) is not None) == expected, (pattern, value)
        check(dfa, value, expected, rng)


def test_ecma_translation_examples() -> None:
    assert ecma_to_python(r"^\d{3}$") == r"\A[0-9]{3}\Z"
    assert ecma_to_python("a+") == r"\A(?s:.)*a+(?s:.)*\Z"
    assert ecma_to_python("^(?<y>a)b") == r"\Aab(?s:.)*\Z"
    assert ecma_to_python(r"^[^\W]\s$") == (
        r"\A[0-9A-Z_a-z][\u0009-\u000d\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]\Z"
    )
    assert ecma_to_python("^.$") == r"\A[^\u000a\u000d\u2028\u2029]\Z"


def _random_pattern(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(["a", "b", "c", "^", "$", "[ab]", "[^a]", ".", "\\w", "\\d"])
    k = rng.random()
    if k < 0.35:
        return _random_pattern(rng, depth - 1) + _random_pattern(rng, depth - 1)
    if k < 0.6:
        return "(" + _random_pattern(rng, depth - 1) + "|" + _random_pattern(rng, depth - 1) + ")"
    if k < 0.85:
        return "(?:" + _random_pattern(rng, depth - 1) + ")" + rng.choice(["*", "+", "?", "{2}", "{0,2}", "{1,}"])
    return "(" + _random_pattern(rng, depth - 1) + ")"


def test_ecma_patterns_against_jsonschema() -> None:
    """Random patterns with anchors anywhere, on strings where Python's re agrees with ECMA-262."""
    rng = random.Random(7)
    values = ["".join(p) for n in range(5) for p in itertools.product("abc", repeat=n)]
    for _ in range(150):
        pattern = _random_pattern(rng, 4)
        validator = jsonschema.Draft202012Validator({"pattern": pattern})
        dfa = json_string_dfa(pattern)
        for value in values:
            expected = validator.is_valid(value)
            assert dfa.matches(json.dumps(value).encode()) == expected, (pattern, value)
        try:
            translated = re.compile(ecma_to_python(pattern))
        except GrammarError:
            assert not any(validator.is_valid(v) for v in values)
            continue
        assert all((translated.search(v) is not None) == validator.is_valid(v) for v in values), pattern


@settings(max_examples=150, deadline=None)
@given(VALUES, st.randoms(use_true_random=False), st.sampled_from(
    ["^[^\"\\\\]*$", "\\s", "^\\S+$", "[^\\x00-\\x7f]", "^(.|\\n){2,3}$", "😀|\\u00e9", "^(?:\\\\|/)", "\\u0000",
     "[\\u2028-\\uffff]$", "^\\W*\\d", "[\\ud800-\\udfff]", "^[\\s\\S]{0,2}$"]))
def test_ecma_pattern_dfa_matches_translation(value: str, rng: random.Random, pattern: str) -> None:
    try:
        expected = re.fullmatch(ecma_to_python(pattern), value) is not None
    except GrammarError:  # the pattern matches no string (lone surrogates)
        expected = False
    check(cached_dfa(pattern), value, expected, rng)


COUNTED_ITEMS = [".", "[a-zé]", "[^a]", "\\d", "\\S", "é", "😀", "[😀a]", "\\w", "(?:[ab])", "[\\s\\S]", "\\u00e9", "\\.", "[^\\u0000-\\uffff]"]
COUNTED_QUANTIFIERS = ["{2}", "{0,3}", "{1,}", "*", "+", "?", "{2,2}", "{3,5}", "{0}"]


@pytest.mark.parametrize("item", COUNTED_ITEMS)
@pytest.mark.parametrize("quantifier", COUNTED_QUANTIFIERS)
@pytest.mark.parametrize("bounds", [(0, None), (1, 4), (4, 4)])
def test_a_counted_class_is_the_same_automaton_as_its_unrolled_pattern(
        item: str, quantifier: str, bounds: tuple[int, int | None], monkeypatch: pytest.MonkeyPatch) -> None:
    """``^C{m,n}$`` goes to the code point counter as C's loop with bounds m..n (met with
    min/maxLength); the unrolled byte automaton of the pattern is the reference, compared by
    difference both ways."""
    from corral.compiler.automaton import difference
    from corral.compiler.json_schema import json_strings

    pattern = "^" + item + quantifier + "$"
    lo, hi = bounds
    fast = json_strings._json_string_dfa(pattern, lo, hi, True, 100_000)
    translated = json_strings._translate(pattern)
    assert translated is not None
    shortcut = json_strings._counted_class(translated) is not None
    # every item here is one code point: the shortcut must take them (it is not silently idle),
    # but "{0}" (the empty string: translated as an empty group)
    assert shortcut == (quantifier != "{0}"), translated
    monkeypatch.setattr(json_strings, "_counted_class", lambda python: None)
    slow = json_strings._json_string_dfa(pattern, lo, hi, True, 100_000)
    assert not difference(fast, slow).accepting.any() and not difference(slow, fast).accepting.any(), pattern


@settings(max_examples=200, deadline=None)
@given(VALUES, st.randoms(use_true_random=False), st.sampled_from(COUNTED_ITEMS), st.sampled_from(COUNTED_QUANTIFIERS),
       st.integers(0, 3), st.one_of(st.none(), st.integers(0, 6)))
def test_counted_class_values_match_python_re(value: str, rng: random.Random, item: str, quantifier: str,
                                              min_length: int, max_length: int | None) -> None:
    pattern = "^" + item + quantifier + "$"
    expected = re.fullmatch(ecma_to_python(pattern), value) is not None and min_length <= len(value) and \
        (max_length is None or len(value) <= max_length)
    check(json_string_dfa(pattern, min_length=min_length, max_length=max_length), value, expected, rng)


@pytest.mark.parametrize(
    "pattern,message",
    [
        ("a**", "invalid regex: nothing to repeat (a quantifier cannot follow a quantifier) at line 1, column 3\n  a**\n    ^"),
        ("*a", "invalid regex: nothing to repeat at line 1, column 1\n  *a\n  ^"),
        ("^*", "invalid regex: nothing to repeat (the anchor ^ cannot be quantified) at line 1, column 2\n  ^*\n   ^"),
        ("(ab", "invalid regex: missing ), unterminated group at line 1, column 1\n  (ab\n  ^"),
        ("ab)", "invalid regex: unbalanced parenthesis ')' at line 1, column 3\n  ab)\n    ^"),
        ("[ab", "invalid regex: missing ], unterminated character class at line 1, column 1\n  [ab\n  ^"),
        ("[z-a]", "invalid regex: range out of order in character class at line 1, column 2\n  [z-a]\n   ^~~"),
        ("a{3,2}", "invalid regex: numbers out of order in {} quantifier at line 1, column 2\n  a{3,2}\n   ^~~~~"),
        ("(?x)", ("invalid regex: invalid group: (? must be followed by :, <name>, =, !, <= or <! "
                  "at line 1, column 1\n  (?x)\n  ^~")),
        ("a\\", "invalid regex: \\ at end of pattern at line 1, column 2\n  a\\\n   ^"),
        ("(?<1a>x)", "invalid regex: invalid group name at line 1, column 1\n  (?<1a>x)\n  ^~~~~~"),
        ("a^b", "the pattern matches no string at line 1, column 1\n  a^b\n  ^~~"),
    ],
)
def test_error_when_pattern_is_invalid(pattern: str, message: str) -> None:
    with pytest.raises(GrammarError) as e:
        ecma_to_python(pattern)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "pattern,message",
    [
        ("(a)\\1", ("backreference \\1 is not supported (backreferences are not regular) at line 1, column 4\n"
                    "  (a)\\1\n     ^~")),
        ("(?<n>a)\\k<n>", ("backreference \\k<name> is not supported (backreferences are not regular) at line 1, "
                           "column 8\n  (?<n>a)\\k<n>\n         ^~~~~")),
        ("a(?=b)", ("lookahead (?=...) is not supported (lookarounds are not regular) at line 1, column 2\n"
                    "  a(?=b)\n   ^~~")),
        ("(?<!b)a", ("negative lookbehind (?<!...) is not supported (lookarounds are not regular) at line 1, "
                     "column 1\n  (?<!b)a\n  ^~~~")),
        ("\\bx", "word boundary \\b is not supported at line 1, column 1\n  \\bx\n  ^~"),
        ("\\p{Script=Greek}", ("Unicode property \\p{Script=Greek} is not supported (supported: General_Category "
                               "values, Any, ASCII, Assigned) at line 1, column 1\n  \\p{Script=Greek}\n  ^~~~~~~~~~~~~~~~")),
    ],
)
def test_error_when_pattern_is_not_regular(pattern: str, message: str) -> None:
    with pytest.raises(Inexpressible) as e:
        json_string_dfa(pattern)
    assert str(e.value) == message


def test_error_when_pattern_exceeds_limits() -> None:
    with pytest.raises(Inexpressible) as e:
        json_string_dfa("a.{20}b")
    assert str(e.value) == (
        "the pattern 'a.{20}b' cannot be compiled within corral's limits: the automaton needs more than "
        "max_states=100000 states; simplify the constraint or raise the limit"
    )


def test_error_when_pattern_is_nested_too_deeply() -> None:
    with pytest.raises(GrammarError) as e:
        ecma_to_python("(" * 5000 + ")" * 5000)
    assert str(e.value).startswith("invalid regex: nested too deeply at line 1, column 1\n  (((")


def test_exact_strings_in_python_dialect() -> None:
    rng = random.Random(5)
    for value in ["a b", "x\ny", 'q"uote', "back\\slash", "é😀", "#tag", "", "a.b*c", "\x00\x1f"]:
        dfa = json_string_dfa("^" + re.escape(value) + "$", ecma=False)
        check(dfa, value, True, rng)
        check(dfa, value + "x", False, rng)


def test_error_when_python_pattern_is_invalid() -> None:
    with pytest.raises(GrammarError, match="^invalid regex: missing \\), unterminated subpattern"):
        json_string_dfa("(a", ecma=False)


# --- formats -------------------------------------------------------------------------------------

# A few cases per format from the JSON Schema Test Suite (draft 2020-12, optional/format), plus
# cases for the documented departures.
FORMAT_CASES: dict[str, list[tuple[str, bool]]] = {
    "date": [("1963-06-19", True), ("2020-01-32", False), ("2021-02-29", False), ("2020-02-29", True),
             ("0100-02-29", False), ("0400-02-29", True), ("2100-02-29", False), ("2020-04-31", False),
             ("1998-1-20", False), ("1963-06-1\u09ea", False), ("2020-01-01\n", False), ("0000-02-29", True)],
    "time": [("08:30:06Z", True), ("23:59:60Z", True), ("22:59:60Z", False), ("23:59:60+00:00", True),
             ("23:20:50.52Z", True), ("08:30:06z", True), ("24:00:00Z", False), ("01:02:03+24:00", False),
             ("12:00:00", False), ("08:30:06-8:000", False), ("01:01:01,1111", False),
             ("15:59:60-08:00", False)],  # a valid leap second outside the documented subset
    "date-time": [("1963-06-19T08:30:06.283185Z", True), ("1963-06-19t08:30:06.283185z", True),
                  ("1998-12-31T23:59:60Z", True), ("1990-02-31T15:59:59.123-08:00", False),
                  ("1985-04-12T23:20:50+01", False), ("1985-04-12T23:20:50Z\n", False), ("2013-350T01:01:01", False)],
    "duration": [("P4DT12H30M5S", True), ("PT1D", False), ("P", False), ("P1YT", False), ("P2W", True),
                 ("P1Y2W", False), ("P1Y2D", False), ("PT1H2S", False), ("PT0.5S", False), ("P1M2D", True)],
    "email": [("joe.bloggs@example.com", True), ("te~st@example.com", True), ('"joe bloggs"@example.com', True),
              ("joe.bloggs@[127.0.0.1]", True), ("joe.bloggs@[IPv6:::1]", True), (".test@example.com", False),
              ("te..st@example.com", False), ("joe.bloggs@[127.0.0.300]", False), ("2962", False),
              ("joe bloggs@example.com", False), ("joe.bloggs@invalid=domain.com", False)],
    "idn-email": [("실례@실례.테스트", True), ("2962", False), ('"δοκιμή"@example.com', True), ("\u0085@example.com", True),
                  ("user\uff20example.com", False), ("\U0001d54f@example.com", True)],
    "hostname": [("www.example.com", True), ("1host", True), ("-hostname", False), ("hostname-", False),
                 ("host_name", False), ("example.", False), ("a" * 63 + ".com", True), ("a" * 64 + ".com", False),
                 ("a--b.com", True), ("\u212aelvin.example.com", False), ("", False)],
    "ipv4": [("192.168.0.1", True), ("256.256.256.256", False), ("127.0", False), ("0x7f000001", False),
             ("087.10.0.1", False), ("0.0.0.0", True), ("255.255.255.255", True), ("192.168.0.1\n", False)],
    "ipv6": [("::1", True), ("12345::", False), ("::", True), ("d6::", True), (":2:3:4:5:6:7:8", False),
             ("1::d6::42", False), ("1::d6:192.168.0.1", True), ("1::2:192.168.256.1", False), ("1:2:3:4:5:6:7", False),
             ("1000:1000:1000:1000:1000:1000:255.255.255.255", True), ("fe80::a%eth1", False),
             ("::ffff:192.168.0.01", False), ("1:2:3:4:5:6:7:8", True)],
    "uri": [("http://foo.bar/?baz=qux#quux", True), ("http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com", True),
            ("ldap://[2001:db8::7]/c=GB?objectClass?one", True), ("urn:oasis:names:specification:docbook:dtd:xml:4.1.2", True),
            ("//foo.bar/?baz=qux#quux", False), ("abc", False), ("http:// shouldfail.com", False),
            ("https://example.org/foobar\u00ae.txt", False), ("http://example.com/%6G", False),
            ("http://example.com:abc/path", False), ("http://[::ffff:01.2.3.4]", False), ("http:/[::1]", False)],
    "uri-reference": [("//foo.bar/?baz=qux#quux", True), ("/abc", True), ("", True), ("#frag\\ment", False),
                      ("1:b", False), ("./this:that", True), ("//a@b@example.com/", False), ("?query=1", True)],
    "iri": [("http://ƒøø.ßår/?∂éœ=πîx#πîüx", True), ("http://[2001:0db8:85a3:0000:0000:8a2e:0370:7334]", True),
            ("/abc", False), ("http://a/\ue000", False), ("http://a/?\ue000", True)],
    "iri-reference": [("//ƒøø.ßår/?∂éœ=πîx#πîüx", True), ("#ƒrägmênt", True), ("\\\\WINDOWS\\filëßåré", False)],
    "uri-template": [("http://example.com/dictionary/{term:1}/{term}", True), ("http://example.com/dictionary/{term:1}/{term", False),
                     ("dictionary/{term:1}/{term}", True), ("{+path,x}/here{?x,y}", True), ("{a:0}", False)],
    "uuid": [("2EB8AA08-AA98-11EA-B4AA-73B441D16380", True), ("2eb8aa08-aa98-11ea-b4aa-73b441d1638", False),
             ("2eb8aa08aa9811eab4aa73b441d16380", False), ("2eb8aa08-aa98-11ea-b4ga-73b441d16380", False)],
    "json-pointer": [("/foo/bar~0/baz~1/%a", True), ("/foo/bar~", False), ("", True), ("/i\\j", True), ("#", False),
                     ("/~2", False), ("a/a", False), ("/foo\x00bar\n\tbaz", True), ("/foo/bar/\U0001f60e", True)],
    "relative-json-pointer": [("1", True), ("0/foo/bar", True), ("0#", True), ("/foo/bar", False), ("-1/foo/bar", False),
                              ("0##", False), ("01/a", False), ("", False), ("120/foo/bar", True), ("0+1/a", True),
                              ("1\n", False)],
    "regex": [("^[a-z]+$", True), ("(a|b)*c{2,3}?", True), ("[^-]", True),
              (r"\d+\.\d*", True), (r"[a-zA-Z0-9_\-]+", True), ("(?=a)*b", True), ("(?:x|y)+?", True), ("((((a))))", True),
              ("a{8,64}", True), ("[0-9A-Fa-f]{0,30}", True), ("", True), ("a|", True), (r"[\b]\b", True), ("\u00e9\n", True),
              ("a**", False), ("(", False), (")", False), ("[z-a]", False),
              ("a{3,2}", False), ("a{20,10}", False), ("(?<n>a)", False), ("(?P<n>a)", False), ("[]", False),
              ("a|*", False), ("^*", False), ("a{2}{3}", False), (r"\1", False), ("\\", False),
              ("[a", False), (r"\e", False), ("(?i)a", False), ("a{,3}", False),
              # valid, but left out (see corral.compiler.json_schema.formats): nesting, bounds, ranges
              ("(((((a)))))", False), ("a{10,20}", False), ("[b-d]", False)],
}


def test_format_table_covers_the_cases() -> None:
    assert sorted(FORMAT_CASES) == sorted(FORMATS)
    assert format_pattern("regex") is not None and format_pattern("idn-hostname") is None
    assert format_pattern("date") == FORMATS["date"]


@pytest.mark.parametrize("name", sorted(FORMAT_CASES))
def test_format_cases(name: str) -> None:
    rng = random.Random(2)
    dfa = json_string_dfa("^(?:" + FORMATS[name] + ")$", ecma=False)
    for value, expected in FORMAT_CASES[name]:
        assert (re.fullmatch(FORMATS[name], value) is not None) == expected, (name, value)
        check(dfa, value, expected, rng)


def test_format_date_exhaustive_against_datetime() -> None:
    pattern = re.compile(FORMATS["date"])
    for year in [1, 4, 100, 400, 1900, 1996, 2000, 2023, 2024, 2100, 2400, 9999]:
        for month in range(14):
            for day in range(33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    datetime.date(year, month, day)
                    valid = True
                except ValueError:
                    valid = False
                assert (pattern.fullmatch(text) is not None) == valid, text
    dfa = json_string_dfa("^(?:" + FORMATS["date"] + ")$", ecma=False)
    years = range(0, 10000, 37)
    assert sum(dfa.matches(f'"{y:04d}-02-29"'.encode()) for y in years) == sum(
        (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 for y in years
    )


def test_format_checkers_agree_with_jsonschema() -> None:
    rng = random.Random(3)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    # jsonschema checks date-time only when rfc3339-validator is installed (a test extra)
    assert not checker.conforms("not a date", "date-time"), "install rfc3339-validator (the test extras)"
    values: dict[str, list[str]] = {
        "ipv4": [".".join(str(rng.choice([0, 1, 9, 10, 99, 100, 199, 249, 250, 255, 256, 300])) for _ in range(k))
                 for k in (3, 4, 4, 4, 5) for _ in range(40)],
        "ipv6": [str(ipaddress.IPv6Address(rng.getrandbits(128) & rng.choice([(1 << 128) - 1, 0xFFFF, (1 << 64) - 1,
                                                                             ((1 << 32) - 1) << 64])))
                 for _ in range(100)] + ["::ffff:1.2.3.4", "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
                                       "1::2::3", "1:2:3:4:5:6:7:8:9", ":::", "1:::2", "0:0:0:0:0:0:0:0", "::1.2.3.4.5"],
        "uuid": [str(uuid.uuid4()) for _ in range(20)] + [str(uuid.uuid4()).upper(), "0" * 32, "x" * 36],
        "date": [f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in itertools.product([1, 1900, 2000, 2023], [1, 2, 12, 13], [0, 28, 29, 31])],
        "date-time": ["2024-02-29T12:30:00Z", "2023-02-29T12:30:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00.5+05:30",
                      "2024-01-01T00:00:00+5:30", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00"],
    }
    for name, items in values.items():
        dfa = json_string_dfa("^(?:" + FORMATS[name] + ")$", ecma=False)
        for value in items:
            expected = checker.conforms(value, name)
            assert dfa.matches(json.dumps(value).encode()) == expected, (name, value)


@pytest.mark.parametrize("name", ["date-time", "email", "uri-reference", "ipv6"])
@settings(max_examples=40, deadline=None)
@given(value=st.text(st.sampled_from(list("0123456789:.-+TZabf@[]/?#%v ")), max_size=24), rng=st.randoms(use_true_random=False))
def test_format_dfa_matches_format_regex(name: str, value: str, rng: random.Random) -> None:
    dfa = cached_dfa("^(?:" + FORMATS[name] + ")$", ecma=False)
    check(dfa, value, re.fullmatch(FORMATS[name], value) is not None, rng)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(['a', 'é', '\U0001F600', '"', '\\', '/', '\n', '\x01', '\u2028', 'Z']),
                        max_size=4), max_size=4))
def test_literals_dfa_is_every_spelling_of_exactly_those_strings(values: list[str]) -> None:
    from corral.compiler.automaton import difference
    from corral.compiler.json_schema.tries import json_string_literals_dfa

    fast = json_string_literals_dfa(values)
    if not values:
        assert not fast.accepting.any()
        return
    slow = json_string_dfa("^(?:" + "|".join(re.escape(v) for v in values) + ")$", ecma=False)
    assert not difference(fast, slow).accepting.any() and not difference(slow, fast).accepting.any()


@functools.lru_cache(maxsize=1)
def _regex_format_walker() -> tuple[ByteDFA, Any]:
    """The ``format: regex`` string automaton and, per state, its live bytes and the byte
    nearest to acceptance."""
    from corral.compiler.analysis import UNREACHABLE, distance_to_accept

    dfa = cached_dfa("^(?:" + FORMATS["regex"] + ")$", ecma=False)
    dist = np.asarray(distance_to_accept(dfa))

    @functools.lru_cache(maxsize=None)
    def moves_of(state: int) -> tuple[list[int], int]:
        row = dfa.trans[state]
        live = np.flatnonzero((row >= 0) & (dist[np.maximum(row, 0)] < UNREACHABLE))
        if not live.size:
            return [], -1
        return live.tolist(), int(live[np.argmin(dist[row[live]])])

    return dfa, moves_of


@settings(max_examples=100, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_format_regex_values_compile_in_python_without_warnings(rng: random.Random) -> None:
    # random walks over the format's automaton (JSON spellings included): every value it accepts
    # must be a regex jsonschema's check (Python's re) accepts, with no warning
    import warnings

    dfa, moves_of = _regex_format_walker()
    state, out = dfa.start, bytearray()
    limit = rng.randrange(4, 60)
    while True:
        if dfa.accepting[state] and (len(out) >= limit or rng.random() < 0.05):
            break
        moves, shortest = moves_of(state)
        if not moves:  # the closing quote
            break
        b = shortest if len(out) >= limit else rng.choice(moves)  # past the limit: head for the end
        out.append(b)
        state = int(dfa.trans[state, b])
    value = json.loads(out.decode("utf-8", "surrogatepass"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        re.compile(value)
    assert jsonschema.Draft202012Validator.FORMAT_CHECKER.conforms(value, "regex")


def test_string_automata_are_reused_within_a_bounded_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.compiler.json_schema import json_strings as js

    monkeypatch.setattr(js, "_cache", js.OrderedDict())
    monkeypatch.setattr(js, "_cache_states", 0)
    monkeypatch.setattr(js, "CACHED_STRING_STATES", 400)
    first = js.json_string_dfa("^[a-c]+$", max_length=5)
    again = js.json_string_dfa("^[a-c]+$", max_length=5)
    assert again is first  # the same constraints: built once
    assert not first.trans.flags.writeable and not first.accepting.flags.writeable  # shared: read-only
    fresh = js._json_string_dfa("^[a-c]+$", 0, 5, True, js.current_budget().limits.max_states)
    assert (fresh.trans == first.trans).all() and (fresh.accepting == first.accepting).all()
    for n in range(1, 30):  # many others: the cache keeps within its bound, oldest out first
        js.json_string_dfa(None, max_length=n % 7 + 1, min_length=n // 7)
        assert js._cache_states <= 400
        assert js._cache_states == sum(d.n_states for d in js._cache.values())
    assert js.json_string_dfa("^[a-c]+$", max_length=5) is not first


KEY_CHARS = list("ab~ /\"\\\x7f\x01é") + ["\u2028"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.frozensets(st.text(alphabet=st.sampled_from(KEY_CHARS), max_size=4), min_size=1, max_size=5))
@example(frozenset({"a/b", "ab"}))
@example(frozenset({"a\x7f"}))
@example(frozenset({'q"', "b"}))
@example(frozenset({"", "a\\b"}))
def test_rest_of_keys_from_their_canonical_spellings_equals_from_every_spelling(keys: frozenset[str]) -> None:
    """An object's other keys (canonical strings less the named keys) are built from the named
    keys' literal spellings when each key is plain printable ASCII: the same language as
    subtracting every spelling. Fails when a key with ``/`` (also spelled ``\\/``) or DEL (also
    ``\\u007f``) is taken as plain."""
    from corral.compiler.automaton import difference
    from corral.compiler.json_schema.algebra import literal_keys_dfa
    from corral.compiler.json_schema.lower import _canonical_spellings
    from corral.compiler.json_schema.scalars import _canonical_strings

    every = difference(_canonical_strings(), literal_keys_dfa(keys))
    fast = difference(_canonical_strings(), _canonical_spellings(keys))
    assert not difference(every, fast).accepting.any()
    assert not difference(fast, every).accepting.any()


def test_plain_keys_take_their_literal_spellings() -> None:
    from corral.compiler.json_schema.algebra import literal_keys_dfa
    from corral.compiler.json_schema.lower import _canonical_spellings

    keys = frozenset({"name", "id", "created_at"})
    assert _canonical_spellings(keys).n_states < literal_keys_dfa(keys).n_states
    odd = frozenset({"name", "a/b"})  # "a\/b" is canonical too: every spelling is needed
    assert _canonical_spellings(odd) is not None and _canonical_spellings(odd).n_states == literal_keys_dfa(odd).n_states
