"""``words_dfa`` (a trie built by a numba kernel) against the language it names: every string of
up to five bytes over a small alphabet is accepted exactly when it is one of the words."""

from __future__ import annotations

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from corral.compiler.automaton import trim
from corral.compiler.json_schema.tries import words_dfa

ALPHABET = b"ab\""
STRINGS = [bytes(w) for n in range(6) for w in itertools.product(ALPHABET, repeat=n)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=5).map(lambda w: bytes(ALPHABET[b % 3] for b in w)), max_size=6))
@example([])
@example([b""])
@example([b'"a"', b'"a"', b'"ab"', b'"'])
def test_words_dfa_accepts_exactly_the_words(words: list[bytes]) -> None:
    dfa = words_dfa(words)
    for w in STRINGS:
        assert dfa.matches(w) == (w in words), w
    # a trie: one state per distinct prefix, every one reachable and (each ends a word) live
    assert dfa.n_states == len({w[:i] for w in words for i in range(len(w) + 1)}) or not words
    assert trim(dfa).n_states == dfa.n_states or not words


def test_a_trie_bigger_than_its_first_rows_grows() -> None:
    """The kernel starts with 1,024 rows and doubles them: 3,000 words of 8-12 bytes (tens of
    thousands of prefixes) give the same trie as the words read one by one would."""
    import random

    rng = random.Random(7)
    words = sorted({bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(8, 12))) for _ in range(3000)})
    dfa = words_dfa(words)
    assert dfa.n_states == len({w[:i] for w in words for i in range(len(w) + 1)}) > 4 * 1024
    for w in words[::7]:
        assert dfa.matches(w)
        assert not dfa.matches(w[:-1]) or w[:-1] in words
        assert not dfa.matches(w + b"a") or w + b"a" in words
    assert int(dfa.accepting.sum()) == len(words)
