"""Regex dialect, errors and limits. Oracle: ``re.fullmatch(pattern, text)``."""

from __future__ import annotations

import re
import time

import pytest

from corral import CompileLimitError, GrammarError
from corral.compiler.regex import RegexLimits, regex_to_dfa

DIALECT_CASES = [
    (r"\d{4}-\d{2}-\d{2}", ["2024-01-31", "2024-1-31", "١٢٣٤-01-31", "2024-01-311"]),
    (r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}", ["a.b@c.io", "a@b", "A@b.io", "x@y.z"]),
    (r"(?i)hello|wor[a-c]d", ["HeLLo", "WORBD", "worBd", "hellö", "ſ"]),
    (r"\w+\s\W", ["ab_1 !", "é x", "ab\t.", "ab\u00a0."]),
    (r".{2,3}", ["ab", "a\nb", "abc", "ab😀", "abcd", "😀😀"]),
    (r"(?s).{2}", ["a\n", "\n\n"]),
    (r"[^\"\\]*", ['abc', 'a"', "é€😀", "a\\"]),
    (r"[]a]+|[^]b]", ["]]a", "c", "]", "b"]),
    (r"a{}b|x{,2}y|z{2,}", ["a{}b", "y", "xxy", "xxxy", "zz", "z"]),
    (r"\u00e9|\U0001F600|\N{SNOWMAN}|\x41|\101", ["é", "😀", "☃", "A", "B"]),
    (r"^(ab|cd)*$", ["", "abcd", "abc"]),
    (r"\Aab\Z", ["ab", "abc"]),
    (r"(?a)\w+(?i:x)", ["abX", "abx", "éx"]),
    (r"\w+", ["héllo", "日本", "a_1", "٣", "a-b"]),
    (r"(?i)k|[a-c]+|σ|ß", ["K", "\u212a", "ABC", "Σ", "ς", "ẞ", "SS"]),
    (r"[\d\s-]+|[^\W\d]+", ["1 -2", "abc_", "a1"]),
    (r"[à-ÿ]{2}|[一-龥]+|[\U0001F300-\U0001F5FF]", ["éà", "中文", "🌍", "😀"]),
    (r"a*?b+?c??", ["aabbc", "b", "ac"]),
    (r"(?P<year>\d{4})(?:-(?P<m>\d\d))?", ["2024", "2024-05", "2024-5"]),
    (r"\.\*\+\?\(\)\[\]\{\}\|\\\^\$", [".*+?()[]{}|\\^$"]),
    (r"[\x00-\x1f\x7f]", ["\x00", "\x1f", "\x7f", " "]),
    (r"[^a]", ["b", "\n", "\U0010ffff", "a"]),
    # Unions of negated classes (interegular alone gets these wrong).
    (r"[\D\S]", ["0", " ", "a", "é"]),
    (r"[\W\d]+", ["0", " ", "a", "_", "é9"]),
    (r"[^\W\d]", ["0", "a", "_", " "]),
    # Cases where the `regex` module (once tried as an oracle) disagrees with re.
    (r"(?:(?:a)+?){2,}", ["a", "aa", "aaa", "aaaa\x00"]),
    (r"((?s:_)|(?is:a)|([^b]|a))", ["B", "b", "A", "_", "\n"]),
]


@pytest.mark.parametrize("pattern,texts", DIALECT_CASES)
def test_regex_dialect_matches_python_re(pattern: str, texts: list[str]) -> None:
    dfa = regex_to_dfa(pattern)
    for text in texts:
        expected = re.fullmatch(pattern, text) is not None
        assert dfa.matches(text.encode("utf-8")) == expected, (pattern, text)


def test_regex_half_characters_are_prefixes() -> None:
    dfa = regex_to_dfa("é+")
    data = "é".encode()
    assert dfa.run(data[:1]) >= 0  # the first byte of é can be completed
    assert not dfa.accepting[dfa.run(data[:1])]
    assert dfa.run(b"\xc3\xa8") == -1  # è is not é


def test_regex_rejects_invalid_utf8_and_surrogates() -> None:
    dfa = regex_to_dfa(".*")
    assert dfa.run(b"\xed\xa0\x80") == -1  # encoded surrogate
    assert dfa.run(b"\xc0\xaf") == -1  # overlong
    assert dfa.run(b"\xf4\x90") == -1  # above U+10FFFF
    assert dfa.run(b"\x80") == -1  # lone continuation byte


@pytest.mark.parametrize(
    "pattern,message",
    [
        (
            r"(a)\1",
            "backreference \\1 is not supported (it is not a regular construct) at line 1, column 4\n"
            "  (a)\\1\n"
            "     ^~",
        ),
        (
            r"ab(?=c)",
            "lookahead (?=...) is not supported (lookarounds are not regular on a token stream) at line 1, column 3\n"
            "  ab(?=c)\n"
            "    ^~~",
        ),
        (
            r"(?<!x)y",
            "negative lookbehind (?<!...) is not supported (lookarounds are not regular on a token stream) at line 1, column 1\n"
            "  (?<!x)y\n"
            "  ^~~",
        ),
        (
            r"(?P<n>a)(?P=n)",
            "backreference (?P=name) is not supported (it is not a regular construct) at line 1, column 9\n"
            "  (?P<n>a)(?P=n)\n"
            "          ^~~~",
        ),
        (
            r"\bword\b",
            "word boundary \\b is not supported at line 1, column 1\n  \\bword\\b\n  ^~",
        ),
        (
            r"a^b",
            "anchor ^ is only supported at the start of the pattern at line 1, column 2\n  a^b\n   ^",
        ),
        (
            r"a$|b",
            "anchor $ is only supported at the end of the pattern at line 1, column 2\n  a$|b\n   ^",
        ),
        (
            r"(?a:\w)",
            "scoped (?a:...) is not supported; put (?a) at the start of the pattern for ASCII classes at line 1, column 1\n"
            "  (?a:\\w)\n"
            "  ^~~~",
        ),
        (
            r"(?x) a b",
            "verbose mode (?x) is not supported; remove the flag and the layout at line 1, column 1\n"
            "  (?x) a b\n"
            "  ^~~~",
        ),
        (
            r"a*+",
            "possessive quantifier is not supported at line 1, column 2\n  a*+\n   ^~",
        ),
        (
            r"(?>ab)",
            "atomic group (?>...) is not supported at line 1, column 1\n  (?>ab)\n  ^~~",
        ),
        (
            r"ab[c",
            "invalid regex: unterminated character set at line 1, column 3\n  ab[c\n    ^",
        ),
        (
            r"a)",
            "invalid regex: unbalanced parenthesis at line 1, column 2\n  a)\n   ^",
        ),
        (
            r"[^\x00-\U0010ffff]",
            "the pattern matches no string at line 1, column 1\n"
            "  [^\\x00-\\U0010ffff]\n"
            "  ^~~~~~~~~~~~~~~~~~",
        ),
    ],
)
def test_error_message_names_feature_and_position(pattern: str, message: str) -> None:
    with pytest.raises(GrammarError) as info:
        regex_to_dfa(pattern)
    assert str(info.value) == message


def test_error_position_on_second_line() -> None:
    with pytest.raises(GrammarError) as info:
        regex_to_dfa("ab\ncd(?=x)")
    err = info.value
    assert (err.line, err.column) == (2, 3)
    assert str(err).endswith("  cd(?=x)\n    ^~~")


def test_grammar_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        regex_to_dfa("(")


def test_error_when_not_a_string() -> None:
    with pytest.raises(GrammarError, match="a regex must be a str, not bytes"):
        regex_to_dfa(b"abc")  # type: ignore[arg-type]


def test_error_when_state_limit_exceeded() -> None:
    with pytest.raises(CompileLimitError) as info:
        regex_to_dfa(r"[ab]*a[ab]{16}", RegexLimits(max_states=1000))
    assert info.value.limit == "max_states"
    assert "max_states=1000" in str(info.value)


def test_error_when_timeout_exceeded() -> None:
    t0 = time.monotonic()
    with pytest.raises(CompileLimitError) as info:
        regex_to_dfa(r"[ab]*a[ab]{22}", RegexLimits(max_states=10**9, timeout=0.5))
    assert info.value.limit == "timeout"
    assert time.monotonic() - t0 < 10


def test_error_when_repetition_is_huge() -> None:
    with pytest.raises(CompileLimitError) as info:
        regex_to_dfa(r"(abc){1000000}")
    assert info.value.limit == "max_nfa_states"


def test_catastrophic_backtracking_pattern_compiles_fast() -> None:
    # (a+)+b makes backtracking engines explode; an automaton does not care.
    dfa = regex_to_dfa(r"(a+)+b")
    assert dfa.matches(b"a" * 50 + b"b")
    assert not dfa.matches(b"a" * 50)


def test_minimisation_merges_equivalent_states() -> None:
    assert regex_to_dfa(r"(a|b)(a|b)(a|b)").n_states == 4
    assert regex_to_dfa(r"abc|xbc|ybc").n_states == 4


SINGLE_CHAR_ITEMS = [
    r"\d", r"\w", r"\s", r"\W", r"[\D\S]", r"(?a)\w", r"(?a)[^\W\d]", r".", r"(?s).", r"[^\"\\]",
    r"(?i)k", r"(?i)[a-z]", r"(?i)ß", r"(?i)[à-ÿ]", r"(?ai)k", r"(?i)[\U00010400-\U0001044F]",
    r"(?i)σ", r"(?i)[^a-z]", r"(?ai)[^k]", r"(?i)ǅ", r"(?i)İ", r"(?i)[^İ]", r"(?i)[ΐΰ]", r"(?i)[\wé]",
    r"(?i)[^\W\d_]", r"[\u0100-\u017f]",
]


@pytest.mark.parametrize("item", SINGLE_CHAR_ITEMS)
def test_single_character_items_match_exactly_what_re_matches(item: str) -> None:
    import random

    dfa = regex_to_dfa(item)
    rng = random.Random(item)
    points = set(rng.sample(range(0x110000), 20000)) | set(range(0x2200)) | set(range(0x10400, 0x10480))
    points |= {0x1C80, 0x1E9E, 0x212A, 0x2126, 0xFB00, 0xFB05, 0xFB06, 0x10FFFF}
    bad = [
        hex(c)
        for c in sorted(points)
        if not 0xD800 <= c <= 0xDFFF and dfa.matches(chr(c).encode()) != bool(re.fullmatch(item, chr(c)))
    ]
    assert not bad, bad[:10]


@pytest.mark.parametrize(
    "pattern",
    [r"(a|b)*a(a|b){3}", r"[^\"\\]{0,40}", r"(ab|a)*b?c{2,5}", r"\w{2,6}@\d+", r"(x|y|xy)*z(xy)*", r"(?i)(yes|no){1,3}"],
)
def test_hopcroft_equals_moore_to_convergence(pattern: str) -> None:
    import numpy as np

    from corral.compiler.automaton import ByteDFA, byte_columns, hopcroft_blocks, minimize, refine

    dfa = regex_to_dfa(pattern)
    n = dfa.n_states
    # A redundant automaton: two copies of every state, each copy moving into the other.
    t = dfa.trans
    doubled = np.vstack([np.where(t >= 0, t + n, -1), t]).astype(np.int32)
    big = ByteDFA(doubled, np.concatenate([dfa.accepting, dfa.accepting]), 0)
    compact, _ = byte_columns(big)
    hop, k = hopcroft_blocks(compact.astype(np.int64), big.accepting)
    moore, converged = refine(big.accepting.astype(np.int64), compact, 10_000)
    assert converged
    # The same partition up to renaming, and exactly the original states.
    assert len(set(zip(hop.tolist(), moore.tolist()))) == len(set(hop.tolist())) == len(set(moore.tolist())) == n
    assert all(hop[s] == hop[s + n] for s in range(n))
    assert minimize(big).n_states == n
