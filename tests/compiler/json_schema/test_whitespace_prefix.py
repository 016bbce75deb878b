"""The whitespace prefix put in front of every key and value terminal (``_ws_prefixed``) and the
follow filter's looser ``[ \\t\\n\\r]* body`` (``_ws_star``), both numba kernels, against brute
force on random bodies: every string of up to six bytes over a small alphabet with whitespace."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.compiler.automaton import ByteDFA, trim
from corral.compiler.earley_tables import MAX_FILTER_STATES, union_head
from corral.compiler.json_schema import lower
from corral.compiler.json_schema.compiler import whitespace_pattern
from corral.compiler.regex import regex_to_dfa

BODY = b"ab"
WS = b" \n"
WORDS = [bytes(w) for n in range(7) for w in itertools.product(BODY + WS, repeat=n)]
MAX_WS = 2


@st.composite
def bodies(draw: st.DrawFn) -> ByteDFA:
    """Automata over a, b and, in some states (rarely the first), whitespace; mostly trimmed
    (as the compiler's are), sometimes not (the kernel then trims its result)."""
    n = draw(st.integers(1, 5))
    trans = np.full((n, 256), -1, dtype=np.int32)
    for s in range(n):
        for b in BODY + (WS if draw(st.integers(0, 3 if s else 6)) == 0 else b""):
            trans[s, b] = draw(st.integers(-1, n - 1))
    accepting = np.array([draw(st.booleans()) for _ in range(n)])
    d = ByteDFA(trans, accepting, 0)
    return trim(d) if draw(st.integers(0, 3)) else d


def split_ws(w: bytes) -> list[tuple[bytes, bytes]]:
    """Every way to cut ``w`` into a whitespace run and the rest."""
    return [(w[:i], w[i:]) for i in range(len(w) + 1) if all(c in WS for c in w[:i])]


@settings(max_examples=100, deadline=None)
@given(bodies(), st.sampled_from(["flexible", "pretty"]))
def test_prefixed_terminal_is_the_prefix_then_the_body(body: ByteDFA, mode: str) -> None:
    pattern = whitespace_pattern(mode, MAX_WS)
    pre = regex_to_dfa(pattern)
    prefixed = lower._ws_prefixed(SimpleNamespace(_ws_dfa=pre), body)
    prefix = regex_to_dfa(f"(?:{pattern})")
    for w in WORDS:
        want = any(prefix.matches(head) and body.matches(rest) for head, rest in split_ws(w))
        assert prefixed.matches(w) == want, (mode, w)
    assert trim(prefixed).n_states == prefixed.n_states  # every state reachable and live


@settings(max_examples=100, deadline=None)
@given(bodies())
def test_ws_star_is_any_whitespace_then_the_body(body: ByteDFA) -> None:
    star = lower._ws_star(body)
    if (body.trans[body.start, list(WS)] >= 0).any():
        assert star is None
        return
    assert star is not None
    for w in WORDS:
        want = any(body.matches(rest) for _, rest in split_ws(w))
        assert star.matches(w) == want, w


def _terminal(mode: str, pattern: str) -> object:
    """``lower._terminal`` as a compile in whitespace layout ``mode`` calls it."""
    ws = whitespace_pattern(mode, MAX_WS)
    ns = SimpleNamespace(_ws_dfa=regex_to_dfa(ws), _ws_pattern=ws)
    ns._ws_prefixed = lambda d: lower._ws_prefixed(ns, d)
    return lower._terminal(ns, "T_COMMA", pattern)  # type: ignore[arg-type]


def test_regex_terminals_are_shared_across_compiles_of_one_layout() -> None:
    """Schemas compiled one after another share a regex terminal's prefixed automata (built once,
    read-only); a compile in another whitespace layout gets its own, each the prefix of its
    layout then the body. Fails when the shared automata are keyed without the layout."""
    a, b = _terminal("flexible", ","), _terminal("flexible", ",")
    assert a.dfa is b.dfa and a.follow_dfa is b.follow_dfa  # type: ignore[attr-defined]
    assert not a.dfa.trans.flags.writeable  # type: ignore[attr-defined]
    c = _terminal("pretty", ",")
    words = [bytes(w) for n in range(7) for w in itertools.product(b"," + WS, repeat=n)]
    for mode, t in (("flexible", a), ("pretty", c)):
        prefix = regex_to_dfa(f"(?:{whitespace_pattern(mode, MAX_WS)})")
        for w in words:
            want = any(prefix.matches(head) and rest == b"," for head, rest in split_ws(w))
            assert t.dfa.matches(w) == want, (mode, w)  # type: ignore[attr-defined]


@st.composite
def big_bodies(draw: st.DrawFn) -> ByteDFA:
    """Automata around :data:`MAX_FILTER_STATES` states (a chain over a few bytes with random
    back edges; the start reads whitespace now and then)."""
    n = draw(st.integers(MAX_FILTER_STATES - 3, MAX_FILTER_STATES + 3))
    trans = np.full((n, 256), -1, dtype=np.int32)
    for s in range(n - 1):
        trans[s, draw(st.sampled_from(list(BODY)))] = s + 1
        trans[s, 0x63] = draw(st.integers(-1, n - 1))
    for b in WS:
        if draw(st.integers(0, 4)) == 0:
            trans[0, b] = draw(st.integers(0, n - 1))
    accepting = np.zeros(n, dtype=np.bool_)
    accepting[-1] = True
    accepting[0] = draw(st.booleans())
    return ByteDFA(trans, accepting, 0)


@settings(max_examples=60, deadline=None)
@given(big_bodies())
def test_a_big_ws_star_is_the_head_the_mask_store_would_make_of_it(body: ByteDFA) -> None:
    """Past MAX_FILTER_STATES states the follow filter is made as its union head directly, which
    is what the mask store made of the whole automaton (``_coarse``): the same filter at run
    time, without the table's copy; below it, the whole automaton as before."""
    from corral.runtime.cfg_maskstore import _coarse

    star = lower._ws_star(body)
    table, accepting = lower._ws_star_table(body.trans, body.accepting, body.start)
    if table.shape[0] == 0:
        assert star is None
        return
    assert star is not None
    whole = ByteDFA(table, accepting, 0)
    want = _coarse(whole)
    assert np.array_equal(star.trans, want.trans) and np.array_equal(star.accepting, want.accepting)
    assert star.start == want.start
    assert (star.n_states == 2) == (whole.n_states > MAX_FILTER_STATES)
    assert union_head([star]).trans.tolist() == union_head([whole]).trans.tolist()  # in a FOLLOW set's head too
