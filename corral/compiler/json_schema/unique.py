"""What the matcher needs to enforce ``uniqueItems: true`` exactly: a description of the items.

Uniqueness is not context-free, so the grammar derives the array as if items could repeat and
the matcher refuses, at run time, exactly the tokens after which the array can no longer end with
pairwise distinct items (``corral/runtime/guards.py``). A token can do that in two ways:

* it *completes* an item equal to an earlier one (a string's closing quote, the byte after a
  number, the first letter of ``true``/``false``/``null``, a container's closing bracket);
* it leaves an item, or the array, with no way to go on but duplicates: a prefix of a string all
  of whose completions were written already, or a separator when every value was written.

The second kind only arises where the items take finitely many values from some prefix on. The
matcher handles the finite cases this module can enumerate (literals, strings of a finite set);
for the others, :func:`describe_items` proves that every prefix of an item has infinitely many
completions (numbers of any value, strings whose automaton reaches a cycle from every state,
objects that can always take one more property, arrays that can always take one more item), so
the first kind is all there is. What it cannot prove either way is an
:class:`~corral.errors.UnsupportedSchemaError` naming ``uniqueItems``: never a weaker check.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from corral.compiler.automaton import ByteDFA
from corral.compiler.grammar_ir import UniqueItems
from corral.compiler.json_schema.algebra import FALSE, ArrC, DSet, Flat, ObjC, live_states

if TYPE_CHECKING:
    from corral.compiler.json_schema.algebra import KeySet

__all__ = ["MAX_ENUMERATED", "NotDescribable", "describe_items", "min_items"]

MAX_ENUMERATED = 4096  # spellings of a finite string set the matcher keeps for uniqueItems


class NotDescribable(Exception):
    """The items are not a kind :func:`describe_items` can enforce uniqueness on (the message says why)."""


def _live_graph(dfa: ByteDFA) -> tuple[set[int], dict[int, set[int]]]:
    trans = dfa.trans
    succ = {q: {int(x) for x in trans[q] if x >= 0} for q in range(dfa.n_states)}
    live = live_states(tuple(bool(x) for x in dfa.accepting), [succ[q] for q in range(dfa.n_states)])
    return live, {q: {t for t in succ[q] if t in live} for q in live}


def _reach_cycle(nodes: set[int], succ: dict[int, set[int]]) -> set[int]:
    """The nodes from which a cycle (within ``nodes``) is reachable."""
    # nodes on a cycle: repeatedly drop nodes with no successor left (what remains reaches a cycle)
    alive = set(nodes)
    changed = True
    while changed:
        changed = False
        for q in list(alive):
            if not (succ[q] & alive):
                alive.discard(q)
                changed = True
    # every node of ``alive`` reaches a cycle; so does whatever reaches ``alive``
    n = max(nodes, default=-1) + 1
    return live_states(tuple(q in alive for q in range(n)), [succ.get(q, ()) for q in range(n)])


def _strings(d: DSet) -> tuple[bytes, ...] | None:
    """The spellings of a finite string set, or ``None`` when every prefix has infinitely many
    completions (raises :class:`NotDescribable` for a set that is neither)."""
    if hasattr(d, "pieces"):  # long_strings.LongStr: a length bound in the hundreds or more
        raise NotDescribable("its strings have a long length bound (a string at its maxLength has one completion)")
    dfa = d.emit if d.emit is not None else d.dfa
    live, succ = _live_graph(dfa)
    if dfa.start not in live:
        return ()
    cyc = _reach_cycle(live, succ)
    # a state whose only continuations are finitely many (no cycle ahead) but that is not the
    # end of a spelling (after the closing quote nothing follows)
    finite_inner = [q for q in live if succ[q] and q not in cyc]
    if not finite_inner:
        return None
    if cyc:
        raise NotDescribable("its strings are finitely many from some prefixes on and infinitely many "
                             "from others (an enum or a length bound mixed with an open pattern)")
    out: list[bytes] = []
    stack: list[tuple[int, bytes]] = [(dfa.start, b"")]
    while stack:
        q, text = stack.pop()
        if dfa.accepting[q]:
            out.append(text)
            if len(out) > MAX_ENUMERATED:
                raise NotDescribable(f"its strings are finitely many but more than {MAX_ENUMERATED} spellings")
        row = dfa.trans[q]
        for b in range(255, -1, -1):
            t = int(row[b])
            if t >= 0 and t in live:
                stack.append((t, text + bytes([b])))
    return tuple(sorted(out))


def _keys_infinite(k: KeySet) -> bool:
    if k.base is None:
        return True
    live, succ = _live_graph(k.base)
    return bool(_reach_cycle(live, succ))


def _object_open(obj: ObjC) -> bool:
    """Every object of the set can take one more property, whatever it holds so far: from every
    live state of every case, a move on an infinite class of keys to a live state."""
    for t in obj.terms:
        d = t.dfa
        n_lits = len(d.lits)
        live = live_states(d.accepting, [[s for row in per for _, s in row] for per in d.trans])
        for q in live:
            if not any(g != FALSE and q2 in live and _keys_infinite(d.rests[c - n_lits])
                       for c in range(n_lits, d.n_classes) for g, q2 in d.trans[q][c]):
                return False
    return True


def _array_open(a: ArrC) -> bool:
    """Every array of the set can take one more item whatever it holds so far (an item set that
    repeats freely: not itself unique)."""
    if a.unique:
        return False
    succ = {q: {t for g, t in a.trans[q] if g != FALSE} for q in range(a.n_states)}
    live = live_states(a.accepting, [succ[q] for q in range(a.n_states)])
    return all(any(t in live for t in succ[q]) for q in live)


def describe_items(items: list[Flat]) -> UniqueItems:
    """The :class:`UniqueItems` check for an array whose item positions hold ``items`` (one
    :class:`Flat` per distinct item set).

    Raises
    ------
    NotDescribable
        When uniqueness cannot be enforced exactly on these items (the message says why).
    """
    lits = any(f.null or f.true or f.false for f in items)
    numbers = any(f.num is not False for f in items)
    strings_any = any(f.str is not False for f in items)
    containers = any(f.arr is not False or f.obj is not False for f in items)
    finite_strings: set[bytes] = set()
    spellings_of: dict[int, tuple[bytes, ...] | None] = {}  # per item set: its finite strings
    open_part = False
    for f in items:
        if isinstance(f.num, DSet):
            raise NotDescribable("its numbers are bounded (a bounded number can run out of distinct values before it "
                                 "ends: 5 then '5.' under maximum 5)")
        if f.num is True:
            open_part = True
        if f.str is True:
            open_part = True
        elif isinstance(f.str, DSet):
            spellings = spellings_of[id(f)] = _strings(f.str)
            if spellings is None:
                open_part = True
            else:
                finite_strings.update(spellings)
        if isinstance(f.arr, ArrC):
            if not _array_open(f.arr):
                raise NotDescribable("its items are arrays that can fill up (a maxItems, or themselves unique)")
            open_part = True
        elif f.arr is True:
            open_part = True
        if isinstance(f.obj, ObjC):
            if not _object_open(f.obj):
                raise NotDescribable("its items are objects that cannot always take one more property "
                                     "(additionalProperties: false, maxProperties)")
            open_part = True
        elif f.obj is True:
            open_part = True
    if len(items) > 1 and (finite_strings or not open_part) and len({_finite_key(f, spellings_of.get(id(f), ())) for f in items}) > 1:
        raise NotDescribable("its item positions differ (prefixItems, contains) and some run out of values")
    strings = tuple(sorted(finite_strings)) if finite_strings else None
    n_values: int | None = None
    if not open_part:
        values = {("s", json.loads(s)) for s in finite_strings}
        n_values = len(values) + sum(1 for x in ("null", "true", "false") if any(getattr(f, x) for f in items))
    return UniqueItems(strings=strings, n_values=n_values, literals=lits, numbers=numbers,
                       strings_any=strings_any, containers=containers)


def _finite_key(f: Flat, strings: tuple[bytes, ...] | None) -> object:
    """Equal for two item sets of the same finitely many values (literals and ``strings``, the
    spellings :func:`_strings` found for the set, ``()`` for none)."""
    if f.num is not False or f.arr is not False or f.obj is not False or f.str is True:
        return id(f)
    return (f.null, f.true, f.false, strings)


def min_items(a: ArrC) -> int:
    """The fewest items an array of ``a`` can have (guards assumed non-empty)."""
    seen = {a.start}
    frontier = [a.start]
    n = 0
    while frontier:
        if any(a.accepting[q] for q in frontier):
            return n
        n += 1
        nxt = []
        for q in frontier:
            for g, t in a.trans[q]:
                if g != FALSE and t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return n
