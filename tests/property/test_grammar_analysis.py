"""corral.compiler.analysis against brute force: productive and nullable rules of random tiny
grammars agree with a bounded search over derivation trees."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.compiler.analysis import UNREACHABLE, min_heights, nullable_rules, productive_rules

RULES = ("a", "b", "c", "d")
TERMINALS = ("X", "E", "N")  # X matches something, E only "", N nothing


@st.composite
def grammars(draw: st.DrawFn) -> dict[str, list[tuple[str, ...]]]:
    names = RULES[: draw(st.integers(1, len(RULES)))]
    symbol = st.sampled_from(names + TERMINALS + ("undefined",))
    alternative = st.lists(symbol, max_size=3).map(tuple)
    return {n: draw(st.lists(alternative, max_size=3)) for n in names}


def _derives_within(rules: dict[str, list[tuple[str, ...]]], holds: set[str], a: str, height: int) -> bool:
    """Whether ``a`` has a derivation tree of height at most ``height`` whose leaves are all in
    ``holds`` (found by trying every tree, top down)."""
    if height <= 0:
        return False
    return any(
        all(s in holds or (s in rules and _derives_within(rules, holds, s, height - 1)) for s in alt)
        for alt in rules[a]
    )


def _brute(rules: dict[str, list[tuple[str, ...]]], holds: set[str]) -> set[str]:
    # a rule that derives at all has a tree of height at most the number of rules
    return {a for a in rules if _derives_within(rules, holds, a, len(rules))}


@settings(max_examples=300, deadline=None)
@given(grammars())
def test_productive_and_nullable_match_brute_force(rules: dict[str, list[tuple[str, ...]]]) -> None:
    assert productive_rules(rules, {"X", "E"}) == _brute(rules, {"X", "E"})
    assert nullable_rules(rules, {"E"}) == _brute(rules, {"E"})
    # nullable rules are productive
    assert nullable_rules(rules, {"E"}) <= productive_rules(rules, {"X", "E"})


@settings(max_examples=300, deadline=None)
@given(grammars())
def test_min_heights_match_brute_force(rules: dict[str, list[tuple[str, ...]]]) -> None:
    # min_heights counts every non-rule symbol as a finished leaf
    leaves = set(TERMINALS) | {"undefined"}
    heights = min_heights(rules)
    for a in rules:
        least = next((h for h in range(1, len(rules) + 1) if _derives_within(rules, leaves, a, h)), UNREACHABLE)
        assert heights[a] == least


@st.composite
def int_grammars(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, ...]], int, list[bool]]:
    """A grammar in :mod:`corral.compiler.earley_tables`' integer form: productions as (lhs,
    body), nonterminal ``a`` is ``a``, terminal ``t`` is ``-2 - t``. Sometimes more than 64
    terminals, so that a terminal set spans several words."""
    n_nt = draw(st.integers(1, 6))
    n_t = draw(st.sampled_from([1, 2, 3, 5, 70, 130]))
    symbol = st.one_of(st.integers(0, n_nt - 1), st.integers(0, n_t - 1).map(lambda t: -2 - t))
    prods = draw(st.lists(st.tuples(st.integers(0, n_nt - 1), st.lists(symbol, max_size=4).map(tuple)), max_size=12))
    term_nullable = draw(st.lists(st.booleans(), min_size=n_t, max_size=n_t))
    return [a for a, _ in prods], [b for _, b in prods], n_nt, term_nullable


@settings(max_examples=400, deadline=None)
@given(int_grammars())
def test_array_analyses_match_mapping_forms(g: tuple[list[int], list[tuple[int, ...]], int, list[bool]]) -> None:
    """The numba analyses ``build_tables`` runs equal their oracles: nullable rules the bounded
    search above, FOLLOW of every terminal the mapping form (in Python, checked in
    tests/compiler/test_analysis.py), also as the sets build_tables cuts from the matrix. Fails if a kernel cuts FIRST at a nullable symbol, misses an edge inside a
    cycle, or drops a word of a wide terminal set."""
    import numpy as np

    from corral.compiler.analysis import nullable_nonterminals, terminal_follow_matrix, terminal_follow_sets
    from corral.compiler.earley_tables import _follow_sets, flat_bodies

    lhs, rhs, n_nt, term_nullable = g
    rules: dict[int, list[tuple[int, ...]]] = {a: [] for a in range(n_nt)}
    for a, body in zip(lhs, rhs):
        rules[a].append(body)
    n_t = len(term_nullable)
    empty = {-2 - t for t in range(n_t) if term_nullable[t]}
    flat, ptr = flat_bodies(rhs)
    lhs_arr = np.asarray(lhs, dtype=np.int32)
    tnull = np.asarray(term_nullable, dtype=np.bool_)
    nullable = nullable_nonterminals(lhs_arr, flat, ptr, n_nt, tnull)
    expected = _brute(rules, empty)  # type: ignore[arg-type]
    assert {a for a in range(n_nt) if nullable[a]} == expected
    follow = terminal_follow_sets(rules, expected | empty, [-2 - t for t in range(n_t)])
    bits = np.unpackbits(terminal_follow_matrix(lhs_arr, flat, ptr, nullable, tnull).view(np.uint8), axis=1,
                         count=n_t, bitorder="little")
    sets = _follow_sets(bits)  # the FOLLOW sets build_tables keeps, cut from the matrix at once
    assert len(sets) == n_t
    for t in range(n_t):
        assert set(np.flatnonzero(bits[t]).tolist()) == {-2 - s for s in follow[-2 - t]}, t
        assert sets[t] == {-2 - s for s in follow[-2 - t]}, t


@settings(max_examples=300, deadline=None)
@given(grammars(), st.sets(st.sampled_from(RULES + TERMINALS + ("undefined",))))
def test_deriving_rules_match_brute_force_for_any_holds(rules: dict[str, list[tuple[str, ...]]], holds: set[str]) -> None:
    """``deriving_rules`` (its rules written as arrays, the nullable kernel in numba) against the
    bounded search, for any ``holds``: rule names in it hold as they are, undefined symbols never
    derive."""
    from corral.compiler.analysis import deriving_rules

    assert deriving_rules(rules, holds) == _brute(rules, holds)
