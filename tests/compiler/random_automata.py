"""Random byte automata for property tests of the automaton operations (``trim``, products,
minimisation): a few states over a small alphabet, any start, dead and unreachable states
included."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from corral.compiler.automaton import ByteDFA


@st.composite
def dfas(draw: st.DrawFn, alphabet: bytes = b"abc", max_states: int = 8) -> ByteDFA:
    """An automaton of 1 to ``max_states`` states whose moves read ``alphabet`` only."""
    n = draw(st.integers(1, max_states))
    trans = np.full((n, 256), -1, dtype=np.int32)
    for s in range(n):
        for b in alphabet:
            trans[s, b] = draw(st.integers(-1, n - 1))
    accepting = np.array([draw(st.booleans()) for _ in range(n)])
    return ByteDFA(trans, accepting, draw(st.integers(0, n - 1)))


@st.composite
def acyclic_dfas(draw: st.DrawFn, alphabet: bytes = b"abc", max_states: int = 10) -> ByteDFA:
    """An automaton without cycles (a finite language): every move goes to a later state in a
    random order of the states; any start, dead and unreachable states included."""
    n = draw(st.integers(1, max_states))
    rank = draw(st.permutations(range(n)))  # the order moves follow: state rank[i] before rank[j] for i < j
    trans = np.full((n, 256), -1, dtype=np.int32)
    for i, s in enumerate(rank):
        for b in alphabet:
            j = draw(st.integers(i, n))  # j == i: no move
            trans[s, b] = rank[j] if i < j < n else -1
    accepting = np.array([draw(st.booleans()) for _ in range(n)])
    return ByteDFA(trans, accepting, draw(st.integers(0, n - 1)))
