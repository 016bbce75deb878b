"""``trim`` against brute force: same language, every state reachable and live, numbered in
breadth-first order (its kernels, ``_live_bfs_order`` and ``_renumbered``, are numba)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings

from corral.compiler.automaton import ByteDFA, trim
from tests.compiler.random_automata import dfas

ALPHABET = b"abc"


@settings(max_examples=300, deadline=None)
@given(dfas())
def test_trim_keeps_the_language_and_only_useful_states(d: ByteDFA) -> None:
    t = trim(d)
    for n in range(6):
        for w in itertools.product(ALPHABET, repeat=n):
            assert t.matches(bytes(w)) == d.matches(bytes(w)), bytes(w)
    if not t.accepting.any():  # the empty language: one dead state
        assert t.n_states == 1 and (t.trans == -1).all()
        return
    # breadth first from the start (targets in byte order): the states come out numbered 0, 1, ...
    order, seen = [0], {0}
    for s in order:
        for b in range(256):
            x = int(t.trans[s, b])
            if x >= 0 and x not in seen:
                seen.add(x)
                order.append(x)
    assert order == list(range(t.n_states))
    # every state reaches acceptance
    live = set(np.flatnonzero(t.accepting).tolist())
    while True:
        more = {s for s in range(t.n_states) if s not in live and any(int(x) in live for x in t.trans[s] if x >= 0)}
        if not more:
            break
        live |= more
    assert live == set(range(t.n_states))
