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
