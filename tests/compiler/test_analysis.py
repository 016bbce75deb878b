"""corral.compiler.analysis: each analysis on small hand-written grammars and automata."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from corral.compiler.analysis import (
    UNREACHABLE,
    deriving_rules,
    distance_to_accept,
    first_sets,
    follow_sets,
    left_corner_graph,
    left_recursion_cycle,
    min_heights,
    nullable_rules,
    productive_rules,
    reachable_rules,
    shortest_prefixes,
    terminal_follow_sets,
)
from corral.compiler.automaton import ByteDFA
from corral.compiler.regex import regex_to_dfa

# The textbook expression grammar, with an end marker after the start rule.
EXPR = {
    "s": [("e", "$")],
    "e": [("t", "e2")],
    "e2": [("+", "t", "e2"), ()],
    "t": [("f", "t2")],
    "t2": [("*", "f", "t2"), ()],
    "f": [("(", "e", ")"), ("id",)],
}
EXPR_TERMINALS = {"$", "+", "*", "(", ")", "id"}


def test_nullable_chain() -> None:
    rules = {"a": [("b",)], "b": [("c", "c")], "c": [("X",), ()], "d": [("a", "E")], "g": [("a", "X")]}
    assert nullable_rules(rules, set()) == {"a", "b", "c"}
    assert nullable_rules(rules, {"E"}) == {"a", "b", "c", "d"}  # E a terminal matching ""


def test_nullable_needs_every_symbol() -> None:
    rules = {"a": [("b", "c")], "b": [()], "c": [("c",)]}
    assert nullable_rules(rules, set()) == {"b"}


def test_unproductive_cycle() -> None:
    rules = {"a": [("b", "X")], "b": [("a",)], "c": [("X",)], "d": [("c", "a"), ("c", "c")]}
    assert productive_rules(rules, {"X"}) == {"c", "d"}


def test_unproductive_when_a_terminal_is_empty() -> None:
    rules = {"a": [("NONE",)], "b": [("a",), ("Y",)], "c": [("a", "Y")]}
    assert productive_rules(rules, {"Y"}) == {"b"}


def test_productive_left_recursion_with_a_base_case() -> None:
    rules = {"s": [("s", "A"), ("A",)], "t": [("t", "A")]}
    assert productive_rules(rules, {"A"}) == {"s"}


def test_undefined_symbol_never_derives() -> None:
    assert deriving_rules({"a": [("missing",)], "b": [()]}, set()) == {"b"}


def test_long_chain_is_linear() -> None:
    n = 20_000
    rules = {f"r{i}": [(f"r{i + 1}",)] for i in range(n)}
    rules[f"r{n}"] = [("X",)]
    assert len(productive_rules(rules, {"X"})) == n + 1


def test_check_is_called_and_can_stop() -> None:
    rules = {f"r{i}": [(f"r{i + 1}",)] for i in range(3000)}
    calls = []
    productive_rules(rules, set(), check=lambda: calls.append(1))
    assert calls

    def stop() -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        nullable_rules(rules, set(), check=stop)
    with pytest.raises(TimeoutError):
        first_sets(EXPR, set(), check=stop)


def test_reachable_rules() -> None:
    rules = {"s": [("a", "X"), ()], "a": [("a", "b")], "b": [("Y",)], "c": [("s",)], "d": [("d",)]}
    assert reachable_rules(rules, "s") == {"s", "a", "b"}
    assert reachable_rules(rules, "c") == {"c", "s", "a", "b"}
    assert reachable_rules(rules, "nowhere") == set()


def test_first_and_follow_of_the_expression_grammar() -> None:
    nullable = nullable_rules(EXPR, set())
    assert nullable == {"e2", "t2"}
    first = first_sets(EXPR, nullable)
    assert first["e"] == first["t"] == first["f"] == {"(", "id"}
    assert first["e2"] == {"+"} and first["t2"] == {"*"}
    assert first["s"] == {"(", "id"}
    follow = follow_sets(EXPR, nullable, first)
    assert follow["e"] == follow["e2"] == {")", "$"}
    assert follow["t"] == follow["t2"] == {"+", ")", "$"}
    assert follow["f"] == {"+", "*", ")", "$"}
    assert follow["id"] == {"+", "*", ")", "$"}
    assert follow["s"] == set() and follow["$"] == set()


def test_first_and_follow_through_nullable_terminals() -> None:
    # W matches the empty string too: what comes after it is also a first / follow
    rules = {"s": [("W", "a", "B")], "a": [("W", "C"), ()]}
    nullable = nullable_rules(rules, {"W"}) | {"W"}
    assert nullable == {"a", "W"}
    first = first_sets(rules, nullable)
    assert first == {"s": {"W", "C", "B"}, "a": {"W", "C"}}
    follow = follow_sets(rules, nullable, first)
    assert follow["W"] == {"W", "C", "B"}
    assert follow["a"] == {"B"} and follow["C"] == {"B"}


def test_min_heights() -> None:
    rules = {"s": [("s", "a"), ("a", "a")], "a": [("b",), ("X",)], "b": [("X", "X")], "u": [("u",)]}
    assert min_heights(rules) == {"s": 2, "a": 1, "b": 1, "u": UNREACHABLE}
    assert min_heights({"e": [()]}) == {"e": 1}


def test_direct_left_recursion() -> None:
    rules = {"s": [("s", "A"), ("A",)], "r": [("A", "r"), ()]}
    graph = left_corner_graph(rules, nullable_rules(rules, set()))
    assert left_recursion_cycle(graph, "s") == ["s"]
    assert left_recursion_cycle(graph, "r") is None  # right recursion is not left recursion


def test_left_recursion_through_a_nullable_prefix() -> None:
    rules = {"s": [("n", "t")], "t": [("s", "B"), ("B",)], "n": [("A",), ()]}
    nullable = nullable_rules(rules, set())
    graph = left_corner_graph(rules, nullable)
    assert graph == {"s": {"n", "t"}, "t": {"s"}, "n": set()}
    assert left_recursion_cycle(graph, "s") == ["t", "s"]
    assert left_recursion_cycle(graph, "t") == ["s", "t"]
    assert left_recursion_cycle(graph, "n") is None
    # without the nullable prefix there is none
    assert left_recursion_cycle(left_corner_graph(rules, set()), "s") is None


def test_left_recursion_cycle_is_shortest_and_deterministic() -> None:
    graph = {"a": {"c", "b"}, "b": {"a"}, "c": {"d"}, "d": {"a"}}
    assert left_recursion_cycle(graph, "a") == ["b", "a"]


def test_distance_to_accept_and_shortest_prefixes() -> None:
    dfa = regex_to_dfa("ab(c|de)")
    dist = distance_to_accept(dfa)
    prefixes = shortest_prefixes(dfa)
    assert dist[dfa.start] == 3
    assert set(prefixes.values()) == {b"", b"a", b"ab", b"abd", b"abc"}
    for s, text in prefixes.items():
        assert dfa.run(text) == s
        assert dist[s] == min(len(w) - len(text) for w in (b"abc", b"abde") if w.startswith(text))


def test_distance_to_accept_of_a_dead_state() -> None:
    trans = np.full((3, 256), -1, dtype=np.int32)
    trans[0, ord("a")] = 1
    trans[0, ord("b")] = 2
    dfa = ByteDFA(trans, np.array([False, True, False]), 0)  # state 2 is dead (not trimmed)
    assert distance_to_accept(dfa) == [1, 0, UNREACHABLE]
    assert shortest_prefixes(dfa) == {0: b"", 1: b"a", 2: b"b"}


def test_shortest_prefixes_take_the_least_byte() -> None:
    dfa = regex_to_dfa("[xa][yb]")
    assert shortest_prefixes(dfa)[dfa.run(b"a")] == b"a"


def _naive_first(rules: dict, nullable: set) -> dict:
    first: dict = {a: set() for a in rules}
    changed = True
    while changed:
        changed = False
        for a, alts in rules.items():
            for body in alts:
                for sym in body:
                    add = first[sym] if sym in rules else {sym}
                    if not add <= first[a]:
                        first[a] |= add
                        changed = True
                    if sym not in nullable:
                        break
    return first


def _naive_deriving(rules: dict, holds: set) -> set:
    done: set = set()
    changed = True
    while changed:
        changed = False
        for a, alts in rules.items():
            if a not in done and any(all(s in holds or s in done for s in body) for body in alts):
                done.add(a)
                changed = True
    return done


def _naive_follow(rules: dict, nullable: set, first: dict) -> dict:
    follow: dict = {a: set() for a in rules}
    for alts in rules.values():
        for body in alts:
            for sym in body:
                follow.setdefault(sym, set())
    changed = True
    while changed:
        changed = False
        for a, alts in rules.items():
            for body in alts:
                for i, sym in enumerate(body):
                    acc: set = set()
                    for s2 in body[i + 1:]:
                        acc |= first[s2] if s2 in rules else {s2}
                        if s2 not in nullable:
                            break
                    else:
                        acc |= follow[a]
                    if not acc <= follow[sym]:
                        follow[sym] |= acc
                        changed = True
    return follow


_SYMS = ["r0", "r1", "r2", "r3", "r4", "A", "B", "C", "W"]


@given(st.lists(st.lists(st.lists(st.sampled_from(_SYMS), max_size=4), max_size=3), min_size=5, max_size=5))
@settings(max_examples=300, deadline=None)
def test_first_and_follow_equal_the_textbook_fixed_point(alts: list) -> None:
    # random grammars over five rules, cycles and nullable ones included; W is a nullable terminal
    rules = {f"r{i}": [tuple(b) for b in bodies] for i, bodies in enumerate(alts)}
    nullable = nullable_rules(rules, {"W"}) | {"W"}
    # a body may use a symbol twice: each use waits for it
    assert nullable - {"W"} == _naive_deriving(rules, {"W"})
    assert productive_rules(rules, {"A", "B", "W"}) == _naive_deriving(rules, {"A", "B", "W"})
    first = first_sets(rules, nullable)
    assert first == _naive_first(rules, nullable)
    naive = _naive_follow(rules, nullable, first)
    assert follow_sets(rules, nullable, first) == naive
    # the terminals' FOLLOW alone, as build_tables asks for it (C is used in no rule: empty)
    assert terminal_follow_sets(rules, nullable, ["A", "B", "C", "W"]) == {t: naive.get(t, set()) for t in "ABCW"}


def test_first_and_follow_of_a_long_chain_take_one_pass() -> None:
    # 20,000 rules, each FIRST waiting for the next rule's: a pass-until-stable loop in this order
    # needs a pass per rule (minutes); the closure by components takes one
    n = 20_000
    rules = {f"r{i}": [(f"r{i + 1}",), ("X",)] for i in range(n)}
    rules[f"r{n}"] = [("Y",)]
    rules["s"] = [("r0", "$")]
    nullable = nullable_rules(rules, set())
    first = first_sets(rules, nullable)
    assert first["s"] == first["r0"] == {"X", "Y"} and first[f"r{n}"] == {"Y"}
    follow = follow_sets(rules, nullable, first)
    assert follow[f"r{n}"] == follow["r0"] == {"$"} and follow["Y"] == {"$"}
