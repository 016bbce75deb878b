"""Expansion of the array keywords (``items``, ``prefixItems``, ``contains``, counts) and of
``unevaluatedItems``'s evaluated items.

The functions are methods of :class:`~corral.compiler.json_schema.compiler._Compiler`, which binds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


from corral.compiler.json_schema.algebra import (
    FLAT_ALL, TRUE, UNIQUE, ArrC, Atom, Expr, Flat, Moves, Node, disj, neg,
)
from corral.errors import GrammarError
from corral.compiler.json_schema.keywords import MAX_COUNTED_ITEMS
from corral.compiler.json_schema.common import _Ev, _counter, _is_number, _moves_ok

if TYPE_CHECKING:
    from corral.compiler.json_schema.compiler import _Compiler


def _array(self: _Compiler, n: Node) -> Expr:
    schema, _, pointer, _ = n.payload
    if self.draft == "7":
        items = schema.get("items", True)
        if isinstance(items, list):
            prefix_kw, prefix, rest_kw, rest = "items", items, "additionalItems", schema.get("additionalItems", True)
        else:
            prefix_kw, prefix, rest_kw, rest = "items", [], "items", items
    else:
        prefix_kw, prefix = "prefixItems", schema.get("prefixItems", [])
        rest_kw, rest = "items", schema.get("items", True)
        if isinstance(rest, list):  # draft-7 style array form under 2020-12
            prefix_kw, prefix, rest_kw, rest = "items", rest, "additionalItems", schema.get("additionalItems", True)
    if not isinstance(prefix, list):
        raise GrammarError(f"{pointer}/{prefix_kw}: must be an array")
    parts: list[ArrC] = []
    if schema.get("uniqueItems") is True:
        # every array, its items pairwise distinct: the flag travels through the algebra and the
        # matcher enforces it at run time (see corral/runtime/guards.py)
        parts.append(ArrC(0, (True,), (((TRUE, 0),),), UNIQUE))
    k = len(prefix)
    guards = [self.sub(n, p, prefix_kw, i) for i, p in enumerate(prefix)]
    rest_g = self.sub(n, rest, rest_kw)
    if k or rest_g != TRUE:
        trans = [_moves_ok(((g, i + 1), (neg(g), k + 1))) for i, g in enumerate(guards)]
        trans.append(_moves_ok(((rest_g, k), (neg(rest_g), k + 1))))
        trans.append(((TRUE, k + 1),))
        parts.append(ArrC(0, tuple(i <= k for i in range(k + 2)), tuple(trans)))
    lo = self._count(schema, "minItems", pointer, 0, MAX_COUNTED_ITEMS)
    hi = self._count(schema, "maxItems", pointer, None, MAX_COUNTED_ITEMS)
    if lo or hi is not None:
        parts.append(_counter(TRUE, lo, hi))
    if "contains" in schema:
        c = self.sub(n, schema["contains"], "contains")
        if self.draft == "7":
            clo, chi = 1, None
        else:
            clo = self._count(schema, "minContains", pointer, 1, MAX_COUNTED_ITEMS)
            chi = self._count(schema, "maxContains", pointer, None, MAX_COUNTED_ITEMS)
        if clo or chi is not None:
            parts.append(_counter(c, clo, chi))
    if not parts:
        return TRUE
    a = parts[0]
    from corral.compiler.json_schema.algebra import arr_product

    for p in parts[1:]:
        a = arr_product(a, p)
    return Atom(Flat(arr=a), f"array {pointer}")


def _count(self: _Compiler, schema: dict[str, Any], kw: str, pointer: str, default: int | None, cap: int) -> Any:
    v = schema.get(kw)
    if v is None:
        return default
    if not _is_number(v) or v < 0 or v != int(v):
        raise GrammarError(f"{pointer}/{kw}: must be a non-negative integer")
    if v > cap:
        self.problem(pointer, kw, f"counts above {cap} are not supported")
        return default
    return int(v)


def _uneval_items(self: _Compiler, ev: _Ev, u: Expr) -> Flat:
    if ev.all_items:
        return FLAT_ALL
    k = ev.prefix
    g = disj(*ev.contains, u)
    trans: list[Moves] = [((TRUE, i + 1),) for i in range(k)]
    trans.append(_moves_ok(((g, k), (neg(g), k + 1))))
    trans.append(((TRUE, k + 1),))
    return Flat(arr=ArrC(0, tuple(i <= k for i in range(k + 2)), tuple(trans)))
