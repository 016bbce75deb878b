"""Products, differences and minimisation of byte automata against brute force.

``meets`` walks the pairs only until both sides accept, ``difference`` runs the pair automaton directly (the right side is never complemented on its
own), ``minimize`` groups bytes with a numba kernel (``byte_columns``): each is checked on every
string of up to five bytes over a small alphabet, on random automata."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import CompileLimitError
from corral.compiler.automaton import (
    DENSE_PAIRS,
    ByteDFA,
    acyclic_blocks,
    byte_columns,
    difference,
    hopcroft_blocks,
    meets,
    minimize,
    product,
    trim,
)
from corral.compiler.regex import regex_to_dfa
from tests.compiler.random_automata import acyclic_dfas, dfas

ALPHABET = b"abc"
WORDS = [bytes(w) for n in range(6) for w in itertools.product(ALPHABET, repeat=n)]


@settings(max_examples=300, deadline=None)
@given(dfas(max_states=7), dfas(max_states=7))
def test_products_and_difference_accept_what_their_definitions_say(a: ByteDFA, b: ByteDFA) -> None:
    meet, join, minus = product(a, b), product(a, b, union=True), difference(a, b)
    for w in WORDS:
        x, y = a.matches(w), b.matches(w)
        assert meet.matches(w) == (x and y), w
        assert join.matches(w) == (x or y), w
        assert minus.matches(w) == (x and not y), w


@settings(max_examples=300, deadline=None)
@given(dfas(max_states=7), dfas(max_states=7))
def test_meets_says_whether_the_product_accepts_anything(a: ByteDFA, b: ByteDFA) -> None:
    assert meets(a, b) == bool(product(a, b).accepting.any())


@pytest.mark.parametrize(("x", "y", "answer"), [
    ("[a-z]{300}", "[a-y]{299}z", True),  # the common string is 300 bytes away
    ("a{300}", "a{301}", False),  # 300 pairs walked, none accepting on both sides
    ("a*", "(aa)*a", True),
    ("(ab)*", "(ba)+", False),
])
def test_meets_on_pair_spaces_past_the_dense_index(x: str, y: str, answer: bool) -> None:
    a, b = regex_to_dfa(x), regex_to_dfa(y)
    big = (a.n_states * b.n_states) > DENSE_PAIRS
    assert big or x in ("a*", "(ab)*")
    assert meets(a, b) is answer is bool(product(a, b).accepting.any())


def test_meets_stops_at_its_state_limit() -> None:
    with pytest.raises(CompileLimitError) as e:
        meets(regex_to_dfa("a{300}"), regex_to_dfa("a{301}"), max_states=100)
    assert e.value.limit == "max_states"


@settings(max_examples=300, deadline=None)
@given(dfas(max_states=7))
def test_minimize_keeps_the_language_with_no_two_equivalent_states(d: ByteDFA) -> None:
    m = minimize(trim(d))
    for w in WORDS:
        assert m.matches(w) == d.matches(w), w
    # no two states accept the same strings (up to five bytes tells them apart here: <= 7 states)
    futures = [tuple(ByteDFA(m.trans, m.accepting, s).matches(w) for w in WORDS) for s in range(m.n_states)]
    assert len(set(futures)) == m.n_states or not m.accepting.any()
    # untrimmed input: the same automaton, state for state (both numbered breadth first)
    u = minimize(d, trimmed=False)
    assert (u.trans == m.trans).all() and (u.accepting == m.accepting).all() and u.start == m.start


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


def _has_cycle(compact: np.ndarray) -> bool:
    """Whether some state reaches itself (reachability by repeated squaring of the move relation)."""
    n = compact.shape[0]
    reach = np.zeros((n, n), dtype=bool)
    for s in range(n):
        for t in compact[s]:
            if t >= 0:
                reach[s, t] = True
    for _ in range(n.bit_length() + 1):
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    return bool(np.diagonal(reach).any())


@settings(max_examples=300, deadline=None)
@given(st.one_of(acyclic_dfas(), dfas(max_states=6)))
def test_acyclic_blocks_are_hopcroft_blocks_or_report_the_cycle(d: ByteDFA) -> None:
    compact, _ = byte_columns(d)
    compact = compact.astype(np.int64)
    blocks, found = acyclic_blocks(compact, d.accepting)
    if _has_cycle(compact):
        assert found == -1
        return
    hop, _ = hopcroft_blocks(compact, d.accepting)
    assert found >= 1 and _same_partition(blocks, hop[: d.n_states])
    m = minimize(d, trimmed=False)
    for w in WORDS:
        assert m.matches(w) == d.matches(w), w
    futures = [tuple(ByteDFA(m.trans, m.accepting, s).matches(w) for w in WORDS) for s in range(m.n_states)]
    assert len(set(futures)) == m.n_states or not m.accepting.any()


@settings(max_examples=300, deadline=None)
@given(dfas(max_states=7), st.lists(st.integers(0, 255), max_size=6))
def test_byte_columns_groups_exactly_the_bytes_with_equal_columns(d: ByteDFA, extra: list[int]) -> None:
    trans = d.trans.copy()
    for k, b in enumerate(extra):  # a few more bytes with columns of their own or copied ones
        trans[:, b] = trans[:, ALPHABET[k % 3]].copy() if k % 2 else (np.arange(d.n_states) + k) % d.n_states
    compact, byte_class = byte_columns(ByteDFA(trans, d.accepting, d.start))
    assert (compact[:, byte_class] == trans).all()
    first: dict[bytes, int] = {}  # column -> class, numbered by first appearance
    for b in range(256):
        first.setdefault(trans[:, b].tobytes(), len(first))
    assert [first[trans[:, b].tobytes()] for b in range(256)] == byte_class.tolist()
    assert compact.shape[1] == len(first)


def test_read_only_and_writable_tables_share_one_kernel_version() -> None:
    """Cached automata are read-only and fresh ones writable; numba compiles (and, in a new
    process, loads from its cache at 17-35 ms each) one machine-code version per kind. Kernels
    that only read tables get read-only views (``frozen``), so mixing the two adds no version."""
    from corral.compiler.automaton import _product_kernel, frozen
    from corral.compiler.json_schema.json_strings import json_string_dfa

    shared = json_string_dfa("^[a-c]+$")  # remembered by the string cache: read-only
    assert not shared.trans.flags.writeable
    fresh = minimize(ByteDFA(shared.trans.copy(), shared.accepting.copy(), shared.start))
    assert fresh.trans.flags.writeable
    for a, b in itertools.product((shared, fresh), repeat=2):
        assert product(a, b).n_states == shared.n_states
        assert difference(a, b).n_states == 1
    assert len(_product_kernel.signatures) == 1
    view = frozen(fresh.trans)
    assert not view.flags.writeable and fresh.trans.flags.writeable and np.shares_memory(view, fresh.trans)
