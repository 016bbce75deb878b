"""Small pieces shared by the keyword groups' expansions: the evaluation record for
``unevaluatedProperties``/``unevaluatedItems`` (:class:`_Ev`), the cycle signal, JSON pointer escaping,
JSON value tests, and the object and array automata built from guards.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


from corral.compiler.json_schema.algebra import (
    FALSE, TRUE, ArrC, Expr, ObjDFA, KeySet, rest_of, neg, obj_product,
)


@dataclass(frozen=True)
class _Ev:
    """What a successful evaluation marks as evaluated (for unevaluatedProperties/Items)."""

    keys: frozenset[str] = frozenset()
    patterns: frozenset[str] = frozenset()
    all_keys: bool = False
    prefix: int = 0
    all_items: bool = False
    contains: frozenset[Any] = frozenset()

    def __or__(self, o: _Ev) -> _Ev:
        return _Ev(self.keys | o.keys, self.patterns | o.patterns, self.all_keys or o.all_keys,
                   max(self.prefix, o.prefix), self.all_items or o.all_items, self.contains | o.contains)


_EV0 = _Ev()


class _Cycle(Exception):
    pass


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _moves_ok(moves: tuple[tuple[Any, int], ...]) -> tuple[tuple[Any, int], ...]:
    return tuple((g, t) for g, t in moves if g != FALSE)


def _values_dfa(lits: tuple[str, ...], lit_guards: list[Expr], rests: tuple[KeySet, ...],
                rest_guards: list[Expr]) -> ObjDFA:
    """Objects whose every member's value satisfies its key class's guard."""
    guards = list(lit_guards) + list(rest_guards)
    ok = tuple(_moves_ok(((g, 0), (neg(g), 1))) for g in guards)
    sink = tuple(((TRUE, 1),) for _ in guards)
    trivial = all(g == TRUE for g in guards)
    return ObjDFA(lits, rests, 0, (True, False), (ok, sink), trivial=trivial)


def _with_lits(d: ObjDFA, keys: frozenset[str]) -> ObjDFA:
    """The same automaton with ``keys`` among its literal classes."""
    missing = tuple(sorted(k for k in keys if k not in d.lits))
    if not missing:
        return d
    if d.trivial:  # (a product would drop the literal classes of a trivial automaton)
        lits = d.lits + missing
        return _values_dfa(lits, [TRUE] * len(lits), (rest_of(lits),), [TRUE])
    extra = _values_dfa(missing, [TRUE] * len(missing), (rest_of(missing),), [TRUE])
    extra = ObjDFA(extra.lits, extra.rests, 0, (True,), (extra.trans[0],), trivial=False)
    return obj_product(d, extra)


def _counter(guard: Expr, lo: int, hi: int | None) -> ArrC:
    """Sequences with between ``lo`` and ``hi`` elements satisfying ``guard``."""
    top = hi + 1 if hi is not None else lo  # counts are clamped at ``top``
    trans = []
    for c in range(top + 1):
        up = min(c + 1, top)
        trans.append(_moves_ok(((guard, up), (neg(guard), c))) if up != c else ((TRUE, c),))
    acc = tuple(c >= lo and (hi is None or c <= hi) for c in range(top + 1))
    return ArrC(0, acc, tuple(trans))
