"""Grammar and automaton analyses, each written once.

Every analysis here works on a plain rules mapping, the shape of
:attr:`GrammarIR.rules <corral.compiler.grammar_ir.GrammarIR.rules>`: nonterminal -> list of
alternatives, each a sequence of symbols (the empty sequence is the empty string). A symbol is a
nonterminal when it is a key of the mapping, otherwise a terminal. Symbols may be any hashable
values: the front ends use names, :mod:`~corral.compiler.earley_tables` uses integer ids.

=======================================  ===============================================================
function                                 computes
=======================================  ===============================================================
:func:`deriving_rules`                   rules with a derivation made only of given terminals
:func:`productive_rules`                 rules with a finite derivation (the generating rules)
:func:`nullable_rules`                   rules that derive the empty string
:func:`reachable_rules`                  rules reachable from the start rule
:func:`first_sets`                       FIRST: terminals a rule's derivations can begin with
:func:`follow_sets`                      FOLLOW: terminals that can come right after each symbol
:func:`terminal_follow_sets`             FOLLOW of some terminals only (bitsets on the way)
:func:`nullable_nonterminals`            nullable rules of a grammar given as arrays (numba)
:func:`terminal_follow_matrix`           FOLLOW of every terminal of a grammar given as arrays (numba)
:func:`min_heights`                      least derivation-tree height of each rule
:func:`left_corner_graph`                ``a -> b`` when ``a`` can begin with ``b``
:func:`left_recursion_cycle`             a shortest left-recursive cycle through a rule
:func:`distance_to_accept`               per automaton state, bytes needed to reach acceptance
:func:`shortest_prefixes`                per automaton state, a shortest byte string reaching it
:func:`csr_of_edges`                     an edge list as compressed rows (numba; the kernels' graphs)
:func:`strongly_connected_components`    components of a graph, dependencies first (Tarjan, iterative)
=======================================  ===============================================================

:func:`nullable_nonterminals` and :func:`terminal_follow_matrix` take the integer form
:mod:`~corral.compiler.earley_tables` builds (productions as flat arrays; a nonterminal is its
index, terminal ``t`` is ``-2 - t``) and run in numba: they are what a compile spends on
analysis. :func:`deriving_rules` (so :func:`productive_rules` and :func:`nullable_rules`) writes
its rules in that form and runs the first; :func:`terminal_follow_sets`, in Python, is the
second's oracle in the tests.

Fixed points are least fixed points, so the results do not depend on the order rules are given
in. The long ones take an optional ``check`` callable, called every so often so that a compile's
:class:`~corral.compiler.limits.Budget` (``budget.check``) can stop them on time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from corral.compiler.automaton import ByteDFA

__all__ = [
    "UNREACHABLE",
    "csr_of_edges",
    "deriving_rules",
    "distance_to_accept",
    "first_sets",
    "follow_sets",
    "terminal_follow_sets",
    "left_corner_graph",
    "left_recursion_cycle",
    "min_heights",
    "nullable_nonterminals",
    "nullable_rules",
    "productive_rules",
    "reachable_rules",
    "shortest_prefixes",
    "strongly_connected_components",
    "terminal_follow_matrix",
]

S = TypeVar("S", bound=Hashable)

Rules = Mapping[S, Sequence[Sequence[S]]]
"""Nonterminal -> its alternatives (sequences of symbols)."""

UNREACHABLE = 1 << 30
"""The distance or height given to what can never finish (larger than any real one)."""


def deriving_rules(rules: Rules[S], holds: Collection[S], *, check: Callable[[], None] | None = None) -> set[S]:
    """The rules with a derivation whose terminals all satisfy ``holds``.

    A rule derives when some alternative has every symbol deriving: a terminal when it is in
    ``holds``, a rule recursively. With the terminals that match some string this is
    :func:`productive_rules`; with those that match the empty string, :func:`nullable_rules`.

    The rules are written as arrays (each symbol a rule's index, ``-2`` for a symbol in
    ``holds``, ``-3`` for one that never derives: a few C-level passes) and the fixed point is
    :func:`nullable_nonterminals`' worklist in numba, linear in the grammar's size (a
    pass-until-stable loop is quadratic on long rule chains; the worklist in Python was most of
    a compile's analysis).

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    holds:
        The terminals taken to derive. A symbol that is neither a rule nor in ``holds`` never
        derives.
    check:
        Called before and after (e.g. a budget's clock check); may raise to stop.

    Returns
    -------
    set
        The deriving rules.

    Raises
    ------
    Whatever ``check`` raises.

    Examples
    --------
    >>> sorted(deriving_rules({"a": [("b", "x")], "b": [("y",), ()], "c": [("c",)]}, {"x"}))
    ['a', 'b']
    """
    if check is not None:
        check()
    names = list(rules)
    code: dict[Any, int] = {a: i for i, a in enumerate(names)}
    code.update(dict.fromkeys(holds, -2))  # a symbol in ``holds`` holds, rule or not
    counts = [len(alts) for alts in rules.values()]
    bodies = [alt for alts in rules.values() for alt in alts]
    ptr = np.zeros(len(bodies) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.fromiter(map(len, bodies), dtype=np.int64, count=len(bodies)))
    flat = np.fromiter(map(code.get, chain.from_iterable(bodies), repeat(-3)), dtype=np.int32, count=int(ptr[-1]))
    lhs = np.repeat(np.arange(len(names), dtype=np.int32), counts)
    flags = nullable_nonterminals(lhs, flat, ptr, len(names), np.array([True, False]))
    if check is not None:
        check()
    return {a for a, ok in zip(names, flags.tolist()) if ok}


def productive_rules(
    rules: Rules[S], nonempty_terminals: Collection[S], *, check: Callable[[], None] | None = None
) -> set[S]:
    """The productive (generating) rules: those with a finite derivation to terminals.

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    nonempty_terminals:
        The terminals whose language is not empty.
    check:
        See :func:`deriving_rules`.

    Returns
    -------
    set
        The rules that derive at least one string; a grammar's language is empty exactly when
        its start rule is not among them.

    Raises
    ------
    Whatever ``check`` raises.

    Examples
    --------
    >>> sorted(productive_rules({"s": [("s", "A"), ("t",)], "t": [("t",)]}, {"A"}))
    []
    >>> sorted(productive_rules({"s": [("s", "A"), ()], "t": [("t",)]}, {"A"}))
    ['s']
    """
    return deriving_rules(rules, nonempty_terminals, check=check)


def nullable_rules(
    rules: Rules[S], nullable_terminals: Collection[S], *, check: Callable[[], None] | None = None
) -> set[S]:
    """The nullable rules: those that derive the empty string.

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    nullable_terminals:
        The terminals whose language contains the empty string.
    check:
        See :func:`deriving_rules`.

    Returns
    -------
    set
        The rules with a derivation of the empty string.

    Raises
    ------
    Whatever ``check`` raises.

    Examples
    --------
    >>> sorted(nullable_rules({"a": [("b", "b")], "b": [("A",), ()]}, set()))
    ['a', 'b']
    """
    return deriving_rules(rules, nullable_terminals, check=check)


def reachable_rules(rules: Rules[S], start: S) -> set[S]:
    """The rules reachable from ``start``, itself included (when it is a rule).

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    start:
        The start rule.

    Returns
    -------
    set
        Every rule some derivation from ``start`` can use; empty when ``start`` is not a rule.

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> sorted(reachable_rules({"s": [("a", "X")], "a": [()], "b": [("s",)]}, "s"))
    ['a', 's']
    """
    seen = {start} if start in rules else set()
    queue = deque(seen)
    while queue:
        a = queue.popleft()
        for alt in rules[a]:
            for s in alt:
                if s in rules and s not in seen:
                    seen.add(s)
                    queue.append(s)
    return seen


class _TerminalBits:
    """Terminals numbered as they are first met, and sets of them as Python-int bitsets (FIRST
    and FOLLOW use them: a union is one ``|``)."""

    def __init__(self) -> None:
        self.bit: dict[Hashable, int] = {}
        self.names: list[Hashable] = []

    def of(self, t: Hashable) -> int:
        """The bit of terminal ``t``."""
        b = self.bit.get(t)
        if b is None:
            b = self.bit[t] = 1 << len(self.names)
            self.names.append(t)
        return b

    def union(self, ts: Collection[Hashable]) -> int:
        """The bitset of the terminals ``ts``."""
        out = 0
        for t in ts:
            out |= self.of(t)
        return out

    def to_set(self, bits: int) -> set[Any]:
        """The terminals of the bitset ``bits``."""
        out = set()
        while bits:
            low = bits & -bits
            out.add(self.names[low.bit_length() - 1])
            bits ^= low
        return out


def strongly_connected_components(nodes: Iterable[S], succ: Mapping[S, Sequence[S]],
                                  check: Callable[[], None] | None = None) -> list[list[S]]:
    """The strongly connected components of the graph ``succ`` reachable from ``nodes``
    (Tarjan's algorithm, iterative: no recursion limit).

    Parameters
    ----------
    nodes:
        Where to start, in this order; a node missing from ``succ`` has no edges.
    succ:
        Node -> its successors.
    check:
        Called every 1024 nodes placed; may raise to stop.

    Returns
    -------
    list
        The components, each a list of nodes, **dependencies first**: a component comes after
        every component reachable from it.

    Raises
    ------
    Whatever ``check`` raises.

    Examples
    --------
    >>> strongly_connected_components(["a"], {"a": ["b"], "b": ["c", "a"], "c": []})
    [['c'], ['b', 'a']]
    """
    index: dict[S, int] = {}
    low: dict[S, int] = {}
    on_stack: set[S] = set()
    stack: list[S] = []
    out: list[list[S]] = []
    placed = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[S, int]] = [(root, 0)]
        while work:
            v, i = work[-1]
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            edges = succ.get(v, ())
            if i < len(edges):
                work[-1] = (v, i + 1)
                w = edges[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] != index[v]:
                continue
            members: list[S] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            out.append(members)
            placed += len(members)
            if check is not None and placed & 1023 < len(members):
                check()
    return out


def _reach_union(nodes: list[S], succ: Mapping[S, list[S]], base: Mapping[S, int],
                 check: Callable[[], None] | None = None) -> dict[S, int]:
    """Per node, the union (bitwise or) of ``base`` over every node reachable from it by ``succ``,
    itself included: each strongly connected component, dependencies first, is its members'
    bases and its successors' finished unions. Linear in nodes plus edges, where a
    pass-until-stable loop takes as many passes as the longest chain."""
    value: dict[S, int] = {}
    for members in strongly_connected_components(nodes, succ, check):
        bits = 0
        for m in members:
            bits |= base.get(m, 0)
            for w in succ.get(m, ()):
                bits |= value.get(w, 0)  # a member's own value is not set yet: 0
        for m in members:
            value[m] = bits
    return value


def first_sets(
    rules: Rules[S], nullable: Collection[S], *, check: Callable[[], None] | None = None
) -> dict[S, set[S]]:
    """FIRST: per rule, the terminals its derivations can begin with.

    Terminals may themselves be nullable (a terminal whose language holds the empty string): then
    the symbol after them counts as well.

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    nullable:
        The nullable symbols, rules (:func:`nullable_rules`) and terminals alike.
    check:
        Called every 1024 alternatives and every 1024 rules of the closure; may raise to stop.

    Returns
    -------
    dict
        Rule -> set of terminals, for every rule of ``rules``.

    Raises
    ------
    Whatever ``check`` raises.

    Examples
    --------
    >>> first = first_sets({"s": [("a", "B")], "a": [("A",), ()]}, {"a"})
    >>> sorted(first["s"]), sorted(first["a"])
    (['A', 'B'], ['A'])
    """
    terms = _TerminalBits()
    value = _first_bits(rules, nullable, terms, check)
    return {a: terms.to_set(value.get(a, 0)) for a in rules}


def _first_bits(rules: Rules[S], nullable: Collection[S], terms: _TerminalBits,
                check: Callable[[], None] | None) -> dict[S, int]:
    """:func:`first_sets` as bitsets over ``terms`` (rules with none may be missing)."""
    base: dict[S, int] = {}
    succ: dict[S, list[S]] = {}
    k = 0
    for a, alts in rules.items():
        b = 0
        edges: list[S] = []
        for body in alts:
            if check is not None and (k & 1023) == 0:
                check()
            k += 1
            for sym in body:
                if sym in rules:
                    edges.append(sym)
                else:
                    b |= terms.of(sym)
                if sym not in nullable:
                    break
        base[a] = b
        succ[a] = edges
    value = _reach_union(list(rules), succ, base, check)
    return value


def follow_sets(
    rules: Rules[S], nullable: Collection[S], first: Mapping[S, Collection[S]], *,
    check: Callable[[], None] | None = None,
) -> dict[S, set[S]]:
    """FOLLOW: per symbol, the terminals that can come right after it in a sentential form.

    Nothing is assumed to follow the start rule (add an end marker to the grammar for that).

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    nullable:
        The nullable symbols, rules and terminals alike.
    first:
        :func:`first_sets` of ``rules``.
    check:
        Called every 1024 alternatives and every 1024 symbols of the closure; may raise to stop.

    Returns
    -------
    dict
        Symbol -> set of terminals, for every rule and every symbol used in an alternative.

    Raises
    ------
    Whatever ``check`` raises.

    Examples
    --------
    >>> rules = {"s": [("a", "B")], "a": [("A", "a"), ()]}
    >>> follow = follow_sets(rules, {"a"}, first_sets(rules, {"a"}))
    >>> sorted(follow["a"]), sorted(follow["A"]), sorted(follow["s"])
    (['B'], ['A', 'B'], [])
    """
    terms = _TerminalBits()
    value = _follow_bits(rules, nullable, terms, {a: terms.union(f) for a, f in first.items()}, check)
    return {sym: terms.to_set(bits) for sym, bits in value.items()}


def _follow_bits(rules: Rules[S], nullable: Collection[S], terms: _TerminalBits, first_bits: dict[S, int],
                 check: Callable[[], None] | None) -> dict[S, int]:
    """:func:`follow_sets` as bitsets over ``terms``, from FIRST as bitsets (``first_bits``
    gains the terminals' own)."""
    local: dict[S, int] = {a: 0 for a in rules}
    succ: dict[S, list[S]] = {}  # sym -> the rules whose FOLLOW is part of sym's
    k = 0
    for a, alts in rules.items():
        for body in alts:
            if check is not None and (k & 1023) == 0:
                check()
            k += 1
            acc = 0  # FIRST of the rest of the body, right to left
            rest_nullable = True
            for sym in reversed(body):
                local[sym] = local.get(sym, 0) | acc
                if rest_nullable:
                    succ.setdefault(sym, []).append(a)
                f = first_bits.get(sym)
                if f is None:  # a terminal: its FIRST is itself
                    f = first_bits[sym] = terms.of(sym)
                if sym in nullable:
                    acc |= f
                else:
                    acc = f
                    rest_nullable = False
    value = _reach_union(list(local), succ, local, check)
    return {sym: value.get(sym, 0) for sym in local}


def terminal_follow_sets(
    rules: Rules[S], nullable: Collection[S], terminals: Iterable[S], *,
    check: Callable[[], None] | None = None,
) -> dict[S, set[S]]:
    """FOLLOW of the given terminals only: ``follow_sets(rules, nullable, first_sets(rules,
    nullable))`` restricted to ``terminals`` (a terminal used in no alternative gets an empty
    set), without writing out a set per rule on the way (FIRST and FOLLOW stay bitsets: the
    sets were most of a small grammar's analysis).

    Examples
    --------
    >>> rules = {"s": [("a", "B")], "a": [("A", "a"), ()]}
    >>> {t: sorted(f) for t, f in terminal_follow_sets(rules, {"a"}, ["A", "B"]).items()}
    {'A': ['A', 'B'], 'B': []}
    """
    terms = _TerminalBits()
    value = _follow_bits(rules, nullable, terms, dict(_first_bits(rules, nullable, terms, check)), check)
    return {t: terms.to_set(value.get(t, 0)) for t in terminals}


@njit(cache=True, nogil=True)
def nullable_nonterminals(lhs, rhs_flat, rhs_ptr, n_nonterminals, term_nullable):  # type: ignore[no-untyped-def]
    """:func:`nullable_rules` of a grammar in integer form: ``bool[n_nonterminals]``.

    Production ``p`` is ``lhs[p] -> rhs_flat[rhs_ptr[p]:rhs_ptr[p + 1]]``; a symbol ``s >= 0`` is
    nonterminal ``s``, ``s < 0`` is terminal ``-2 - s``, nullable when ``term_nullable`` says so.
    A worklist over "production waits for nonterminal" edges, linear in the grammar's size.

    Examples
    --------
    >>> import numpy as np
    >>> lhs = np.array([0, 1, 1], np.int32)  # 0 -> 1 1 ; 1 -> T0 ; 1 -> (empty)
    >>> flat, ptr = np.array([1, 1, -2], np.int32), np.array([0, 2, 3, 3], np.int64)
    >>> nullable_nonterminals(lhs, flat, ptr, 2, np.array([False])).tolist()
    [True, True]
    """
    n_p = lhs.shape[0]
    missing = np.zeros(n_p, np.int64)  # per production: uses of nonterminals not yet nullable
    dead = np.zeros(n_p, np.bool_)  # a terminal that is not nullable: never
    used = np.empty(rhs_flat.shape[0], np.int64)  # edges nonterminal -> a production using it, once per use
    user = np.empty(rhs_flat.shape[0], np.int64)
    n_e = 0
    for p in range(n_p):
        for i in range(rhs_ptr[p], rhs_ptr[p + 1]):
            s = rhs_flat[i]
            if s >= 0:
                used[n_e] = s
                user[n_e] = p
                n_e += 1
                missing[p] += 1
            elif not term_nullable[-2 - s]:
                dead[p] = True
    ptr, uses = csr_of_edges(used, user, n_e, n_nonterminals)
    nullable = np.zeros(n_nonterminals, np.bool_)
    stack = np.empty(n_nonterminals, np.int64)
    sp = 0
    for p in range(n_p):
        a = lhs[p]
        if missing[p] == 0 and not dead[p] and not nullable[a]:
            nullable[a] = True
            stack[sp] = a
            sp += 1
    while sp:
        sp -= 1
        b = stack[sp]
        for i in range(ptr[b], ptr[b + 1]):
            p = uses[i]
            missing[p] -= 1
            a = lhs[p]
            if missing[p] == 0 and not dead[p] and not nullable[a]:
                nullable[a] = True
                stack[sp] = a
                sp += 1
    return nullable


@njit(cache=True, nogil=True)
def csr_of_edges(src, dst, n_edges, n):  # type: ignore[no-untyped-def]
    """The first ``n_edges`` edges ``src[k] -> dst[k]`` over nodes ``range(n)`` as a graph in
    compressed rows: ``(ptr, adj)``, the successors of ``v`` being ``adj[ptr[v]:ptr[v + 1]]`` in
    the edges' order (a counting sort by source). A source outside ``range(n)`` is a
    ``ValueError`` (the kernel does not check its writes)."""
    ptr = np.zeros(n + 1, np.int64)
    for k in range(n_edges):
        if src[k] < 0 or src[k] >= n:
            raise ValueError("an edge's source outside range(n)")
        ptr[src[k] + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    adj = np.empty(n_edges, np.int64)
    fill = ptr[:-1].copy()
    for k in range(n_edges):
        adj[fill[src[k]]] = dst[k]
        fill[src[k]] += 1
    return ptr, adj


@njit(cache=True, nogil=True)
def _union_over_reach(ptr, adj, val):  # type: ignore[no-untyped-def]
    """In place: each row of ``val`` (bitsets, one per node) becomes the union of the rows of
    every node reachable from it by the graph ``adj[ptr[v]:ptr[v + 1]]``, itself included: the
    strongly connected components in Tarjan's order (dependencies first, iterative), each the
    union of its members' rows and its successors' finished ones (:func:`_reach_union`)."""
    n = ptr.shape[0] - 1
    w_words = val.shape[1]
    index = np.full(n, -1, np.int64)
    low = np.zeros(n, np.int64)
    on_stack = np.zeros(n, np.bool_)
    stack = np.empty(n, np.int64)
    work_v = np.empty(n, np.int64)
    work_i = np.empty(n, np.int64)
    acc = np.empty(w_words, np.uint64)
    sp = 0
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        wp = 0
        w = root  # the node to enter next, -1 none
        while True:
            if w >= 0:
                index[w] = counter
                low[w] = counter
                counter += 1
                stack[sp] = w
                sp += 1
                on_stack[w] = True
                work_v[wp] = w
                work_i[wp] = ptr[w]
                wp += 1
                w = -1
            if wp == 0:
                break
            v = work_v[wp - 1]
            i = work_i[wp - 1]
            if i < ptr[v + 1]:
                work_i[wp - 1] = i + 1
                u = adj[i]
                if index[u] < 0:
                    w = u
                elif on_stack[u] and index[u] < low[v]:
                    low[v] = index[u]
                continue
            wp -= 1
            if wp and low[v] < low[work_v[wp - 1]]:
                low[work_v[wp - 1]] = low[v]
            if low[v] != index[v]:
                continue
            k = sp - 1  # the component: stack[k:sp], v at its bottom
            while stack[k] != v:
                k -= 1
            acc[:] = 0
            for j in range(k, sp):
                m = stack[j]
                for x in range(w_words):
                    acc[x] |= val[m, x]
                for e in range(ptr[m], ptr[m + 1]):
                    u = adj[e]  # finished, or a member (its row is still its own: a part of acc)
                    for x in range(w_words):
                        acc[x] |= val[u, x]
            for j in range(k, sp):
                m = stack[j]
                on_stack[m] = False
                for x in range(w_words):
                    val[m, x] = acc[x]
            sp = k
    return val


@njit(cache=True, nogil=True)
def terminal_follow_matrix(lhs, rhs_flat, rhs_ptr, nullable, term_nullable):  # type: ignore[no-untyped-def]
    """:func:`terminal_follow_sets` of every terminal of a grammar in integer form (see
    :func:`nullable_nonterminals`; ``nullable`` is its result): ``uint64[n_terminals, words]``,
    bit ``u`` of row ``t`` set when terminal ``u`` can come right after terminal ``t``.

    FIRST of each nonterminal is a union over the graph "``a`` can begin with ``b``", FOLLOW of
    each symbol one over "FOLLOW(``a``) is part of FOLLOW(``x``)" (``x`` ends a production of
    ``a`` but for nullable symbols), both by :func:`_union_over_reach`: linear in the grammar's
    size times the words of a terminal set.

    Examples
    --------
    >>> import numpy as np
    >>> lhs = np.array([0, 1, 1], np.int32)  # 0 -> 1 T1 ; 1 -> T0 1 ; 1 -> (empty)
    >>> flat, ptr = np.array([1, -3, -2, 1], np.int32), np.array([0, 2, 4, 4], np.int64)
    >>> follow = terminal_follow_matrix(lhs, flat, ptr, np.array([False, True]), np.array([False, False]))
    >>> [[u for u in range(2) if row[0] >> u & 1] for row in follow]
    [[0, 1], []]
    """
    n_nt = nullable.shape[0]
    n_t = term_nullable.shape[0]
    w_words = max(1, (n_t + 63) // 64)
    n_p = lhs.shape[0]
    n_sym = rhs_ptr[n_p]
    # FIRST: edges a -> b along each production's nullable prefix
    first = np.zeros((n_nt, w_words), np.uint64)
    src = np.empty(n_sym, np.int64)  # edges, at most one per symbol occurrence
    dst = np.empty(n_sym, np.int64)
    n_e = 0
    for p in range(n_p):
        for i in range(rhs_ptr[p], rhs_ptr[p + 1]):
            s = rhs_flat[i]
            if s >= 0:
                src[n_e] = lhs[p]
                dst[n_e] = s
                n_e += 1
                if not nullable[s]:
                    break
            else:
                t = -2 - s
                first[lhs[p], t >> 6] |= np.uint64(1) << np.uint64(t & 63)
                if not term_nullable[t]:
                    break
    ptr, adj = csr_of_edges(src, dst, n_e, n_nt)
    _union_over_reach(ptr, adj, first)
    # FOLLOW over nodes: nonterminal a is a, terminal t is n_nt + t
    n_nodes = n_nt + n_t
    local = np.zeros((n_nodes, w_words), np.uint64)
    n_e = 0  # edges x -> a now
    rest = np.empty(w_words, np.uint64)
    for p in range(n_p):
        a = lhs[p]
        rest[:] = 0
        rest_nullable = True
        for i in range(rhs_ptr[p + 1] - 1, rhs_ptr[p] - 1, -1):
            s = rhs_flat[i]
            x = s if s >= 0 else n_nt + (-2 - s)
            for w in range(w_words):
                local[x, w] |= rest[w]
            if rest_nullable:
                src[n_e] = x
                dst[n_e] = a
                n_e += 1
            if s >= 0:
                if nullable[s]:
                    for w in range(w_words):
                        rest[w] |= first[s, w]
                else:
                    for w in range(w_words):
                        rest[w] = first[s, w]
                    rest_nullable = False
            else:
                t = -2 - s
                bit = np.uint64(1) << np.uint64(t & 63)
                if term_nullable[t]:
                    rest[t >> 6] |= bit
                else:
                    rest[:] = 0
                    rest[t >> 6] = bit
                    rest_nullable = False
    ptr, adj = csr_of_edges(src, dst, n_e, n_nodes)
    _union_over_reach(ptr, adj, local)
    return local[n_nt:].copy()


def min_heights(rules: Rules[S]) -> dict[S, int]:
    """Per rule, the least height of a derivation tree (how deep it must go to finish).

    A terminal has height 0; a rule 1 more than the tallest rule of its best alternative (so a
    rule with an all-terminal alternative has height 1).

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.

    Returns
    -------
    dict
        Rule -> height, :data:`UNREACHABLE` for rules that never finish.

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> min_heights({"s": [("s", "t"), ("t", "t")], "t": [("X",)], "u": [("u",)]})
    {'s': 2, 't': 1, 'u': 1073741824}
    """
    h = {a: UNREACHABLE for a in rules}
    changed = True
    while changed:
        changed = False
        for a, alts in rules.items():
            for body in alts:
                m = 0
                for s in body:
                    if s in h:
                        m = max(m, h[s])
                if m + 1 < h[a]:
                    h[a] = m + 1
                    changed = True
    return h


def left_corner_graph(rules: Rules[S], nullable: Collection[S]) -> dict[S, set[S]]:
    """``a -> b`` when some alternative of ``a`` starts with rule ``b`` after a nullable prefix.

    Parameters
    ----------
    rules:
        Nonterminal -> alternatives.
    nullable:
        The nullable symbols.

    Returns
    -------
    dict
        Rule -> the rules it can begin with; a rule is left-recursive when it lies on a cycle.

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> graph = left_corner_graph({"s": [("n", "s", "X")], "n": [()]}, {"n"})
    >>> sorted(graph["s"]), sorted(graph["n"])
    (['n', 's'], [])
    """
    graph: dict[S, set[S]] = {a: set() for a in rules}
    for a, alts in rules.items():
        for alt in alts:
            for s in alt:
                if s in rules:
                    graph[a].add(s)
                if s not in nullable:
                    break
    return graph


def left_recursion_cycle(graph: Mapping[S, Collection[S]], a: S) -> list[S] | None:
    """A shortest cycle ``a -> ... -> a`` in a :func:`left_corner_graph`, or ``None``.

    Ties are broken by visiting successors in order of their ``str``, so the answer is
    deterministic.

    Parameters
    ----------
    graph:
        Rule -> successors.
    a:
        The rule.

    Returns
    -------
    list or None
        The rules after ``a`` along the cycle, ending with ``a`` itself; ``None`` when ``a`` is
        not left-recursive.

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> left_recursion_cycle({"s": {"t"}, "t": {"s", "t"}}, "s")
    ['t', 's']
    """
    parent: dict[S, S] = {}
    queue = deque([a])
    seen = {a}
    while queue:
        x = queue.popleft()
        for y in sorted(graph[x], key=str):
            if y == a:
                path = [x]
                while path[-1] != a:
                    path.append(parent[path[-1]])
                path.reverse()
                return path[1:] + [a]
            if y not in seen:
                seen.add(y)
                parent[y] = x
                queue.append(y)
    return None


def distance_to_accept(dfa: ByteDFA) -> list[int]:
    """Per state of a byte automaton, the fewest bytes that lead to an accepting state.

    A breadth-first search backwards from the accepting states.

    Parameters
    ----------
    dfa:
        The automaton.

    Returns
    -------
    list[int]
        ``0`` for accepting states, :data:`UNREACHABLE` for states that can never accept (a
        trimmed automaton has none).

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> from corral.compiler.regex import regex_to_dfa
    >>> dfa = regex_to_dfa("abc")
    >>> distance_to_accept(dfa)[dfa.start]
    3
    """
    n = dfa.n_states
    dist = [UNREACHABLE] * n
    rev: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        for t in set(int(x) for x in dfa.trans[s] if x >= 0):
            rev[t].append(s)
    queue = deque(s for s in range(n) if dfa.accepting[s])
    for s in queue:
        dist[s] = 0
    while queue:
        t = queue.popleft()
        for s in rev[t]:
            if dist[s] > dist[t] + 1:
                dist[s] = dist[t] + 1
                queue.append(s)
    return dist


def shortest_prefixes(dfa: ByteDFA) -> dict[int, bytes]:
    """Per state reachable from the start, a shortest byte string that leads to it.

    A breadth-first search from the start, trying bytes in increasing order, so among the
    shortest strings the least one (bytewise) is found.

    Parameters
    ----------
    dfa:
        The automaton.

    Returns
    -------
    dict[int, bytes]
        State -> string, in breadth-first order of discovery (the start first, with ``b""``).

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> from corral.compiler.regex import regex_to_dfa
    >>> sorted(shortest_prefixes(regex_to_dfa("a[bc]d")).values())
    [b'', b'a', b'ab', b'abd']
    """
    seen = {dfa.start: b""}
    queue = deque([dfa.start])
    while queue:
        s = queue.popleft()
        row = dfa.trans[s]
        for b in np.flatnonzero(row >= 0):
            t = int(row[b])
            if t not in seen:
                seen[t] = seen[s] + bytes([int(b)])
                queue.append(t)
    return seen
