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
