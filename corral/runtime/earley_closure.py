"""Layer 3 of a grammar's mask in numba: Earley closures over chart sets encoded as arrays.

A token that leaves a terminal part-way continues in the set reached when that terminal ends
(:meth:`corral.runtime.earley.Recognizer.exit_set`), and from there maybe leaves another terminal,
and so on: one closure per distinct terminal path among the candidates, hundreds per mask on
grammars with many short terminals (Python, SQL). This module runs those closures, and the walk of
the candidates' remaining bytes through them, in one numba call, with the same semantics as the
Python recogniser (its closure is the reference of the tests).

Encoding
--------
An item ``(production, dot, origin)`` is a *position* (``pos_off[production] + dot``) and the
index of its origin set in an *arena* of sets. A set keeps:

- its *predicted* nonterminals, as a sorted range of one list (a dense row of flags per set
  costs sets x nonterminals bytes, hundreds of megabytes on big schemas): the items predicted in
  the set itself (origin: the set) are exactly the positions of these nonterminals' productions
  whose symbols before the dot are all nullable, so they are never stored;
- its other items whose dot is before a symbol (*explicit* items), as a range of the arena's item
  arrays;
- whether it accepts.

The Python chart sets the mask's set can reach through origins are encoded first (a few dozen for
the bundled grammars) and stay encoded from one mask to the next; the sets after terminal ends
are then built in the arena, and dropped when the next mask starts.

The closure of a set is a union of the closures of its agenda items, since with nullable symbols
advanced at prediction (Aycock and Horspool) an item only completes into an *earlier* set: a
completed item looks up its origin's explicit items and the predicted positions waiting for its
nonterminal there. Prediction follows the edges from a nonterminal to those right after the dot
of its predicted positions. Items are deduplicated in one hash table, keyed by (set, position,
origin), emptied per mask by a generation stamp.

Arrays run out of room rather than growing inside the kernels: a kernel then returns -1 and the
caller runs it again in a new arena (with twice the room, unless older sets were what filled it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from corral.compiler.analysis import csr_of_edges
from corral.compiler.earley_tables import EarleyTables
from corral.runtime.earley import ESet

__all__ = ["COMPLETE", "ClosureTables", "Arena", "closure_tables", "encode_chart", "close_set", "exit_set", "groups_of",
           "open_exits", "or_words", "remainder_step", "remainder_step_sorted", "resolve_exits", "sort_by_first_byte"]

COMPLETE = -1  # the next symbol of a position whose dot is at the end of its production
_GOLDEN = np.uint64(11400714819323198485)  # 2**64 / golden ratio: multiplicative hashing


@dataclass(frozen=True)
class ClosureTables:
    """One grammar's productions as flat arrays (built once per grammar by :func:`closure_tables`).

    Attributes
    ----------
    pos_off:
        Per production, its first position (``int32[n_productions + 1]``).
    pos_sym, pos_prod:
        Per position: the symbol after the dot (nonterminal ``>= 0``, terminal ``t`` as ``-2 - t``,
        :data:`COMPLETE` at the end) and its production.
    lhs, nullable, term_nullable, term_start:
        As in :class:`~corral.compiler.earley_tables.EarleyTables`, as arrays.
    pred_off, pred:
        Per nonterminal ``A``: the nonterminals right after the dot of ``A``'s predicted positions
        (predicting ``A`` predicts them, and what they predict).
    groups_off, groups:
        Per nonterminal ``X``: the start states of the terminals that ``X``'s predicted positions
        scan.
    wait_off, wait:
        Per nonterminal ``B``: the predicted positions whose next symbol is ``B``.
    term_pos_off, term_pos:
        Per terminal ``t``: the predicted positions whose next symbol is ``t``.
    start_prod:
        The production ``$start -> ...``; completing it makes a set accept.
    """

    pos_off: np.ndarray
    pos_sym: np.ndarray
    pos_prod: np.ndarray
    lhs: np.ndarray
    nullable: np.ndarray
    term_nullable: np.ndarray
    term_start: np.ndarray
    pred_off: np.ndarray
    pred: np.ndarray
    groups_off: np.ndarray
    groups: np.ndarray
    wait_off: np.ndarray
    wait: np.ndarray
    term_pos_off: np.ndarray
    term_pos: np.ndarray
    start_prod: int

    @property
    def n_nonterminals(self) -> int:
        """Number of nonterminals."""
        return int(self.nullable.shape[0])

    @property
    def n_positions(self) -> int:
        """Number of positions (items without their origin)."""
        return int(self.pos_sym.shape[0])

    def as_args(self) -> tuple[np.ndarray | int, ...]:
        """The arrays in the order the kernels take them."""
        return (self.pos_off, self.pos_sym, self.pos_prod, self.lhs, self.nullable, self.term_nullable,
                self.term_start, self.pred_off, self.pred, self.groups_off, self.groups, self.wait_off,
                self.wait, self.term_pos_off, self.term_pos, self.start_prod)


@njit(cache=True, nogil=True)
def _csr(keys, values, n):  # type: ignore[no-untyped-def]
    """Per key in ``range(n)``, its values (in order of appearance), as ``int32`` offsets and
    one ``int32`` array (the closure kernels' types): the counting sort of
    :func:`~corral.compiler.analysis.csr_of_edges` (numpy's argsort, bincount and cumsum per
    table were ~15-20 us each of a small grammar's first mask)."""
    off, out = csr_of_edges(keys, values, keys.shape[0], n)
    return off.astype(np.int32), out.astype(np.int32)


@njit(cache=True, nogil=True)
def _distinct_csr(keys, values, n):  # type: ignore[no-untyped-def]
    """:func:`_csr` of the distinct (key, value) pairs, each key's values sorted (values are
    non-negative). Repeats are dropped by a stamp per value before sorting: a big grammar's
    few nonterminals with 10^5 positions each repeat a few values (sorting them whole was 5x
    numpy's ``unique``)."""
    off, out = _csr(keys, values, n)
    top = 0
    for i in range(values.shape[0]):
        if values[i] < 0:
            raise ValueError("a negative value")
        top = max(top, values[i])
    stamp = np.zeros(top + 1, np.int32)
    kept = np.zeros(n + 1, np.int32)
    m = 0
    for k in range(n):
        first = m
        for i in range(off[k], off[k + 1]):  # (m <= i: the compacted values never pass the reads)
            v = out[i]
            if stamp[v] != k + 1:
                stamp[v] = k + 1
                out[m] = v
                m += 1
        out[first:m] = np.sort(out[first:m])
        kept[k + 1] = m
    return kept, out[:m].copy()


@njit(cache=True, nogil=True)
def _positions(rhs_flat, rhs_ptr, nullable, tnull):  # type: ignore[no-untyped-def]
    """Every position (production, dot) in one pass: its symbol (``COMPLETE`` after the body),
    its production, the productions' first positions, and the *predicted* positions (every
    symbol before the dot nullable) before a nonterminal and before a terminal."""
    n_p = rhs_ptr.shape[0] - 1
    n = rhs_flat.shape[0] + n_p
    pos_off = np.empty(n_p + 1, np.int32)
    pos_sym = np.empty(n, np.int32)
    pos_prod = np.empty(n, np.int32)
    nt_pos = np.empty(n, np.int32)
    t_pos = np.empty(n, np.int32)
    n_nt_pos = 0
    n_t_pos = 0
    k = 0
    for p in range(n_p):
        pos_off[p] = k
        direct = True
        for i in range(rhs_ptr[p], rhs_ptr[p + 1]):
            x = rhs_flat[i]
            pos_sym[k] = x
            pos_prod[k] = p
            if direct:
                if x >= 0:
                    nt_pos[n_nt_pos] = k
                    n_nt_pos += 1
                    direct = nullable[x]
                else:
                    t_pos[n_t_pos] = k
                    n_t_pos += 1
                    direct = tnull[-2 - x]
            k += 1
        pos_sym[k] = COMPLETE
        pos_prod[k] = p
        k += 1
    pos_off[n_p] = k
    return pos_off, pos_sym, pos_prod, nt_pos[:n_nt_pos].copy(), t_pos[:n_t_pos].copy()


def closure_tables(tables: EarleyTables) -> ClosureTables:
    """The :class:`ClosureTables` of a grammar (from the compiler's flat bodies, in numba and
    numpy: big schemas have 10^5 positions)."""
    n_nt = len(tables.nonterminals)
    n_t = len(tables.terminals)
    nullable = np.array(tables.nullable, dtype=np.bool_)
    tnull = np.array(tables.term_nullable, dtype=np.bool_)
    tstart = np.array(tables.term_start, dtype=np.int32)
    lhs = np.array(tables.lhs, dtype=np.int32)
    # a position is *predicted* (it can be an item whose origin is its own set) when every symbol
    # before its dot is nullable
    pos_off, pos_sym, pos_prod, nt_pos, t_pos = _positions(tables.rhs_flat, tables.rhs_ptr, nullable, tnull)
    pred_off, pred = _distinct_csr(lhs[pos_prod[nt_pos]], pos_sym[nt_pos], n_nt)
    groups_off, groups = _distinct_csr(lhs[pos_prod[t_pos]], tstart[-2 - pos_sym[t_pos]], n_nt)
    wait_off, wait = _csr(pos_sym[nt_pos], nt_pos, n_nt)
    term_pos_off, term_pos = _csr(-2 - pos_sym[t_pos], t_pos, n_t)
    return ClosureTables(
        pos_off=pos_off, pos_sym=pos_sym, pos_prod=pos_prod, lhs=lhs,
        nullable=nullable, term_nullable=tnull, term_start=tstart,
        pred_off=pred_off, pred=pred, groups_off=groups_off, groups=groups, wait_off=wait_off, wait=wait,
        term_pos_off=term_pos_off, term_pos=term_pos, start_prod=int(tables.start_prod))


class Arena:
    """Chart sets as arrays (see the module docstring), kept by a grammar's mask store from one
    mask to the next.

    The Python chart sets encoded so far stay (``where`` maps them to their indices, and ``kept``
    keeps them alive, so their ids are not reused), so a mask encodes only the sets that are new
    since the last one; the sets built after terminal ends are dropped when the next mask starts
    (:meth:`truncate`). An arena serves one thread at a time.

    ``counts`` holds the numbers of sets, items, hashed items and predicted entries in use, and
    the hash table's generation (a slot is empty unless its stamp is the generation, so emptying
    the table is one increment). The kernels append to the arrays and return -1 when one is full;
    the caller then makes a new arena.
    """

    __slots__ = ("pred", "lo", "hi", "plo", "phi", "accepting", "item_pos", "item_org", "plist", "keys", "stamps",
                 "counts", "st_pos", "st_org", "n_nt", "real", "where", "kept")

    def __init__(self, n_nt: int, max_sets: int, max_items: int) -> None:
        self.n_nt = n_nt
        self.where: dict[int, int] = {}  # id(Python set) -> index
        self.kept: list[ESet] = []
        self.real = (0, 0, 0)  # sets, items, predicted entries of the encoded Python sets
        self.pred = np.zeros(n_nt, dtype=np.uint8)  # flags of the set being closed (scratch)
        self.lo = np.zeros(max_sets, dtype=np.int32)
        self.hi = np.zeros(max_sets, dtype=np.int32)
        self.plo = np.zeros(max_sets, dtype=np.int32)
        self.phi = np.zeros(max_sets, dtype=np.int32)
        self.accepting = np.zeros(max_sets, dtype=np.bool_)
        self.item_pos = np.zeros(max_items, dtype=np.int32)
        self.item_org = np.zeros(max_items, dtype=np.int32)
        self.plist = np.zeros(max_items, dtype=np.int32)
        size = 1
        while size < 4 * max_items:
            size *= 2
        self.keys = np.zeros(size, dtype=np.int64)
        self.stamps = np.zeros(size, dtype=np.int32)
        self.counts = np.zeros(5, dtype=np.int64)  # sets, items, hashed items, predicted entries, generation
        self.counts[4] = 1
        self.st_pos = np.zeros(max_items, dtype=np.int32)  # the closure's agenda (scratch)
        self.st_org = np.zeros(max_items, dtype=np.int32)

    @property
    def max_sets(self) -> int:
        """Room for this many sets."""
        return int(self.lo.shape[0])

    @property
    def max_items(self) -> int:
        """Room for this many items (and predicted entries) over all sets."""
        return int(self.item_pos.shape[0])

    def index(self, x: ESet) -> int:
        """The index of Python chart set ``x``, encoded in this arena."""
        return self.where[id(x)]

    def truncate(self) -> None:
        """Drop every set but the encoded Python ones, and empty the hash table."""
        c = self.counts
        c[0], c[1], c[3] = self.real
        c[2] = 0
        c[4] += 1
        if c[4] >= 2**30:
            self.stamps[:] = 0
            c[4] = 1
        self.pred[:] = 0

    def groups(self, ct: ClosureTables, j: int) -> np.ndarray:
        """The scanning groups of set ``j`` (:func:`groups_of`)."""
        return groups_of(ct.pos_sym, ct.term_start, ct.groups_off, ct.groups, self.lo, self.hi,  # type: ignore[no-any-return]
                         self.plo, self.phi, self.item_pos, self.plist, j)

    def bigger(self) -> Arena:
        """An empty arena with twice the room."""
        return Arena(self.n_nt, 2 * self.max_sets, 2 * self.max_items)

    def as_args(self) -> tuple[np.ndarray, ...]:
        """The arrays in the order the kernels take them."""
        return (self.pred, self.lo, self.hi, self.plo, self.phi, self.accepting, self.item_pos, self.item_org,
                self.plist, self.keys, self.stamps, self.counts, self.st_pos, self.st_org)


def encode_chart(ct: ClosureTables, s: ESet, arena: Arena | None = None) -> Arena:
    """``arena`` (truncated; a new one when it is ``None`` or full) holding ``s`` and every Python
    chart set reachable from it through items' origins; :meth:`Arena.index` gives their indices.

    Only what a completion looks up is encoded: a set's predicted nonterminals and its items
    waiting for a nonterminal (scanning items of earlier sets can no longer move), and only for
    sets the arena does not hold yet. A set's origins come before it.
    """
    if arena is None:
        arena = Arena(ct.n_nonterminals, 128, 2048)  # ~140 KB; doubled when a mask needs more
    while True:
        arena.truncate()
        if _encode(ct, s, arena):
            return arena
        # full: start again in a fresh arena, bigger unless this one was full of older sets
        reused = arena.real[0] > 0
        arena = Arena(arena.n_nt, arena.max_sets, arena.max_items) if reused else arena.bigger()


def _encode(ct: ClosureTables, s: ESet, arena: Arena) -> bool:
    """Append the sets reachable from ``s`` that ``arena`` lacks; ``False`` when it is full."""
    where = arena.where
    order: list[ESet] = []
    seen: set[int] = set()
    roots = [s] + [o for group in s.scan.values() for _, _, o in group]
    for r in roots:
        if id(r) in seen or id(r) in where:
            continue
        # post-order walk over waiting items' origins (earlier sets: no cycles but self-origins)
        seen.add(id(r))
        stack: list[tuple[ESet, list[ESet]]] = [(r, [o for w in r.waiting.values() for _, _, o in w])]
        while stack:
            x, todo = stack[-1]
            while todo:
                o = todo.pop()
                if id(o) in seen or id(o) in where:
                    continue
                seen.add(id(o))
                stack.append((o, [y for w in o.waiting.values() for _, _, y in w]))
                break
            else:
                stack.pop()
                order.append(x)
    c = arena.counts
    j0, k0, kp0 = j, k, kp = int(c[0]), int(c[1]), int(c[3])
    if not order:
        return True
    pos_off = ct.pos_off
    # gathered in Python lists and written with one numpy assignment per array (a mask encodes
    # one or two new sets: per-set numpy calls cost more than the sets)
    plo: list[int] = []
    phi: list[int] = []
    lo: list[int] = []
    hi: list[int] = []
    acc: list[bool] = []
    plist: list[int] = []
    ipos: list[int] = []
    iorg: list[int] = []
    max_sets, max_items = arena.max_sets, arena.max_items
    for x in order:
        n_wait = sum(map(len, x.waiting.values()))
        if j >= max_sets or k + n_wait > max_items or kp + len(x.predicted) > max_items:
            return False  # the caller drops this arena
        where[id(x)] = j
        arena.kept.append(x)
        plo.append(kp)
        if x.predicted:
            plist += sorted(x.predicted)
            kp += len(x.predicted)
        phi.append(kp)
        lo.append(k)
        if n_wait:
            for w in x.waiting.values():
                for p, d, o in w:
                    ipos.append(pos_off[p] + d)
                    iorg.append(where[id(o)])
            k += n_wait
        hi.append(k)
        acc.append(x.accepting)
        j += 1
    arena.plo[j0:j] = plo
    arena.phi[j0:j] = phi
    arena.lo[j0:j] = lo
    arena.hi[j0:j] = hi
    arena.accepting[j0:j] = acc
    arena.plist[kp0:kp] = plist
    arena.item_pos[k0:k] = ipos
    arena.item_org[k0:k] = iorg
    c[0], c[1], c[3] = j, k, kp
    arena.real = (j, k, kp)
    return True


@njit(cache=True, nogil=True)
def _add(j, pos, org, n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top):  # type: ignore[no-untyped-def]
    """Push item (pos, org) of set ``j`` on the agenda unless it is already in the set.
    Returns the new agenda size, or -1 when the hash table or the agenda is full."""
    key = (np.int64(j) * n_pos + pos) * max_sets + org
    size = keys.shape[0]
    if 2 * (counts[2] + 1) > size or top >= st_pos.shape[0]:
        return -1
    gen = counts[4]
    h = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(33)) & (size - 1)
    while stamps[h] == gen:
        if keys[h] == key:
            return top
        h = (h + 1) & (size - 1)
    keys[h] = key
    stamps[h] = gen
    counts[2] += 1
    st_pos[top] = pos
    st_org[top] = org
    return top + 1


@njit(cache=True, nogil=True)
def _has(plist, lo, hi, x):  # type: ignore[no-untyped-def]
    """Whether ``x`` is in the sorted ``plist[lo:hi]`` (a set's predicted nonterminals)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        v = plist[mid]
        if v == x:
            return True
        if v < x:
            lo = mid + 1
        else:
            hi = mid
    return False


@njit(cache=True, nogil=True)
def close_set(pos_off, pos_sym, pos_prod, lhs, nullable, tnull, tstart, pred_off, pred, groups_off, groups,  # type: ignore[no-untyped-def]
              wait_off, wait, term_pos_off, term_pos, start_prod,
              spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, ag_pos, ag_org):
    """A new set of the arena: the closure of the agenda items ``(ag_pos[i], ag_org[i])``.
    Returns its index, or -1 when the arena is full."""
    n_pos = pos_sym.shape[0]
    max_sets = slo.shape[0]
    j = counts[0]
    if j >= max_sets:
        return -1
    counts[0] += 1
    top = 0
    for i in range(ag_pos.shape[0]):
        top = _add(j, ag_pos[i], ag_org[i], n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top)
        if top < 0:
            return -1
    return _close(pos_sym, pos_prod, lhs, nullable, tnull, pred_off, pred, wait_off, wait, start_prod,
                  spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, j, top)


@njit(cache=True, nogil=True)
def _close(pos_sym, pos_prod, lhs, nullable, tnull, pred_off, pred, wait_off, wait, start_prod,  # type: ignore[no-untyped-def]
           spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, j, top):
    """Close set ``j`` (the newest), whose agenda holds ``top`` items. Returns ``j``, or -1."""
    n_pos = pos_sym.shape[0]
    max_sets = slo.shape[0]
    sacc[j] = False
    cap = ipos.shape[0]
    k = counts[1]
    kp = counts[3]
    slo[j] = k
    plo[j] = kp
    while top > 0:
        top -= 1
        pos = st_pos[top]
        o = st_org[top]
        sym = pos_sym[pos]
        if sym == -1:
            p = pos_prod[pos]
            if p == start_prod:
                sacc[j] = True
                continue
            if o == j:
                continue
            b = lhs[p]
            for q in range(slo[o], shi[o]):
                if pos_sym[ipos[q]] == b:
                    top = _add(j, ipos[q] + 1, iorg[q], n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top)
                    if top < 0:
                        return -1
            for q in range(wait_off[b], wait_off[b + 1]):
                w = wait[q]
                if _has(plist, plo[o], phi[o], lhs[pos_prod[w]]):
                    top = _add(j, w + 1, o, n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top)
                    if top < 0:
                        return -1
            continue
        if k >= cap:
            return -1
        ipos[k] = pos
        iorg[k] = o
        k += 1
        if sym >= 0:
            if not spred[sym]:
                # predict sym and, breadth first, what it predicts; plist[first:kp] is the queue
                if kp >= cap:
                    return -1
                spred[sym] = 1
                plist[kp] = sym
                kp += 1
                first = kp - 1
                while first < kp:
                    x = plist[first]
                    first += 1
                    for q in range(pred_off[x], pred_off[x + 1]):
                        a = pred[q]
                        if not spred[a]:
                            if kp >= cap:
                                return -1
                            spred[a] = 1
                            plist[kp] = a
                            kp += 1
            skip = nullable[sym]
        else:
            skip = tnull[-2 - sym]
        if skip:
            top = _add(j, pos + 1, o, n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top)
            if top < 0:
                return -1
    shi[j] = k
    phi[j] = kp
    for q in range(plo[j], kp):
        spred[plist[q]] = 0
    plist[plo[j]:kp].sort()
    counts[1] = k
    counts[3] = kp
    return j


@njit(cache=True, nogil=True)
def groups_of(pos_sym, tstart, groups_off, groups, slo, shi, plo, phi, ipos, plist, j):  # type: ignore[no-untyped-def]
    """The scanning groups of set ``j`` (start states of the terminals it expects), sorted."""
    n = 0
    for q in range(slo[j], shi[j]):
        if pos_sym[ipos[q]] < -1:
            n += 1
    for q in range(plo[j], phi[j]):
        x = plist[q]
        n += groups_off[x + 1] - groups_off[x]
    out = np.empty(n, np.int32)
    n = 0
    for q in range(slo[j], shi[j]):
        sym = pos_sym[ipos[q]]
        if sym < -1:
            out[n] = tstart[-2 - sym]
            n += 1
    for q in range(plo[j], phi[j]):
        x = plist[q]
        for r in range(groups_off[x], groups_off[x + 1]):
            out[n] = groups[r]
            n += 1
    out.sort()  # then drop repeats in place (numba's np.unique builds Python lists: ~1 us a set)
    m = 0
    for q in range(n):
        if m == 0 or out[q] != out[m - 1]:
            out[m] = out[q]
            m += 1
    return out[:m]


@njit(cache=True, nogil=True)
def exit_set(pos_off, pos_sym, pos_prod, lhs, nullable, tnull, tstart, pred_off, pred, groups_off, groups,  # type: ignore[no-untyped-def]
             wait_off, wait, term_pos_off, term_pos, start_prod,
             spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, j, t):
    """A new set of the arena: set ``j``'s items scanning terminal ``t`` moved past it and closed
    (the set where a token continues when ``t`` ends). Returns its index, or -1 when full."""
    n_pos = pos_sym.shape[0]
    max_sets = slo.shape[0]
    k = counts[0]
    if k >= max_sets:
        return -1
    counts[0] += 1
    top = 0
    for q in range(slo[j], shi[j]):
        if pos_sym[ipos[q]] == -2 - t:
            top = _add(k, ipos[q] + 1, iorg[q], n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top)
            if top < 0:
                return -1
    for q in range(term_pos_off[t], term_pos_off[t + 1]):
        w = term_pos[q]
        if _has(plist, plo[j], phi[j], lhs[pos_prod[w]]):
            top = _add(k, w + 1, j, n_pos, max_sets, keys, stamps, counts, st_pos, st_org, top)
            if top < 0:
                return -1
    return _close(pos_sym, pos_prod, lhs, nullable, tnull, pred_off, pred, wait_off, wait, start_prod,
                  spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, k, top)


@njit(cache=True, nogil=True)
def _groups_by_byte(trans, groups, wanted):  # type: ignore[no-untyped-def]
    """The groups (indices into ``groups``) that accept each byte ``b`` with ``wanted[b]``, as
    offsets (``int64[257]``) and one array: a pair only tries the groups it can enter."""
    ng = groups.shape[0]
    counts = np.zeros(257, np.int64)
    for b in range(256):
        if wanted[b]:
            for gi in range(ng):
                if trans[groups[gi], b] >= 0:
                    counts[b + 1] += 1
    for b in range(256):
        counts[b + 1] += counts[b]
    by_byte = np.empty(counts[256], np.int32)
    for b in range(256):
        if wanted[b]:
            q = counts[b]
            for gi in range(ng):
                if trans[groups[gi], b] >= 0:
                    by_byte[q] = gi
                    q += 1
    return counts, by_byte


@njit(cache=True, nogil=True)
def _try_pair(trans, acc, owner, follow_first, groups, by_byte, q0, q1, flat, base, a, e, i,  # type: ignore[no-untyped-def]
              ex_pair, ex_group, ex_k, nex):
    """Pair ``i`` (the bytes ``flat[a:e]`` of the token at ``base``) in the groups
    ``by_byte[q0:q1]``: 1 when one reads it to the end, else 0 with its exits appended from
    ``nex``; returns (held, the new number of exits), or (0, -1) when the buffers are full."""
    cap = ex_pair.shape[0]
    for q in range(q0, q1):
        gi = by_byte[q]
        s = groups[gi]
        j = a
        while j < e:
            s = trans[s, flat[j]]
            if s < 0:
                break
            j += 1
            if acc[s] and j < e and follow_first[owner[s], flat[j]]:
                if nex >= cap:
                    return 0, -1
                ex_pair[nex] = i
                ex_group[nex] = gi
                ex_k[nex] = j - base
                nex += 1
        if s >= 0:
            return 1, nex
    return 0, nex


FEW_PAIRS = 16
"""At most this many pairs in a set of layer 3's deeper levels: each pair tries every group of
the set, instead of the groups that read its next byte (tables over the 256 bytes cost more than
they skip for the ~6 pairs a Python-grammar set holds)."""


@njit(cache=True, nogil=True)
def remainder_step(trans, acc, owner, follow_first, groups, flat, offsets, toks, ks, out, ex_pair, ex_group, ex_k):  # type: ignore[no-untyped-def]
    """One level of layer 3: try each pair's rest (token ``toks[i]`` from byte ``ks[i]``) inside
    each group state of one chart set.

    A pair whose rest some group reads to the end without dying is allowed: its bit is set in
    ``out``. For the others, every place where a group's terminal ends strictly inside the rest is
    written as ``(pair index, group index, bytes consumed)`` to ``ex_*``, for the caller to follow
    into the set after that terminal, unless the next byte cannot start any terminal of FOLLOW
    (``follow_first[terminal, byte]``, with ``owner`` mapping states to terminals). Pairs whose
    token is already allowed are skipped.
    Returns the number of such exits, or -1 when the exit buffers are too small.
    """
    nex = 0
    if toks.shape[0] <= FEW_PAIRS:  # every pair tries every group: cheaper than the byte tables
        every = np.arange(groups.shape[0], dtype=np.int32)
        return _pair_range(trans, acc, owner, follow_first, groups, every, 0, groups.shape[0], flat, offsets,
                           toks, ks, 0, toks.shape[0], out, ex_pair, ex_group, ex_k, nex)
    wanted = np.zeros(256, np.bool_)
    for i in range(toks.shape[0]):
        wanted[flat[offsets[toks[i]] + ks[i]]] = True
    counts, by_byte = _groups_by_byte(trans, groups, wanted)
    for i in range(toks.shape[0]):
        b0 = flat[offsets[toks[i]] + ks[i]]
        nex = _pair_range(trans, acc, owner, follow_first, groups, by_byte, counts[b0], counts[b0 + 1], flat, offsets,
                          toks, ks, i, i + 1, out, ex_pair, ex_group, ex_k, nex)
        if nex < 0:
            return -1
    return nex


@njit(cache=True, nogil=True)
def _pair_range(trans, acc, owner, follow_first, groups, by_byte, q0, q1, flat, offsets, toks, ks, lo, hi, out,  # type: ignore[no-untyped-def]
                ex_pair, ex_group, ex_k, nex):
    """Pairs ``lo`` to ``hi`` (token ``toks[i]`` from byte ``ks[i]``) in the groups
    ``by_byte[q0:q1]``, skipping tokens already allowed: a token's bit is set when a group holds
    its pair (that pair's exits dropped), else the pair's exits are kept from ``nex``. Returns the
    new number of exits, -1 when the buffers are full.

    One call per range, not per pair: a per-pair helper that took ``out`` and tested its bit
    made the level 5-6x slower in numba (85k pairs: 15 ms against 2.8 ms).
    """
    for i in range(lo, hi):
        t = toks[i]
        if (out[t >> 5] >> np.uint32(t & 31)) & np.uint32(1):
            continue
        base = offsets[t]
        held, n = _try_pair(trans, acc, owner, follow_first, groups, by_byte, q0, q1, flat, base, base + ks[i],
                            offsets[t + 1], i, ex_pair, ex_group, ex_k, nex)
        if n < 0:
            return -1
        if held:
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        else:
            nex = n
    return nex


@njit(cache=True, nogil=True)
def remainder_step_sorted(trans, acc, owner, follow_first, groups, flat, offsets, toks, ks, b0_ptr, out,  # type: ignore[no-untyped-def]
                          ex_pair, ex_group, ex_k):
    """:func:`remainder_step` for pairs sorted by the first byte of their rest (``b0_ptr[b]`` to
    ``b0_ptr[b + 1]`` start with byte ``b``): the pairs of a byte no group reads are never
    touched (a whitespace state's 48k candidates, of which a keyword's group enters ~1k, cost
    4-9 ms a level read one by one)."""
    wanted = np.zeros(256, np.bool_)
    for b in range(256):
        wanted[b] = b0_ptr[b + 1] > b0_ptr[b]
    counts, by_byte = _groups_by_byte(trans, groups, wanted)
    nex = 0
    for b in range(256):
        if counts[b] == counts[b + 1]:
            continue
        nex = _pair_range(trans, acc, owner, follow_first, groups, by_byte, counts[b], counts[b + 1], flat, offsets,
                          toks, ks, b0_ptr[b], b0_ptr[b + 1], out, ex_pair, ex_group, ex_k, nex)
        if nex < 0:
            return -1
    return nex


@njit(cache=True, nogil=True)
def or_words(out, words, bits):  # type: ignore[no-untyped-def]
    """``out[words] |= bits`` in place, without numpy's gather, temporary and scatter (a
    first level ORed into a mask: ~4% of schema mask time in numpy)."""
    for i in range(words.shape[0]):
        out[words[i]] |= bits[i]


@njit(cache=True, nogil=True)
def open_exits(out, j, toks, states, ks):  # type: ignore[no-untyped-def]
    """The exits of a first level from arena set ``j`` (token ``toks[i]`` leaves its terminal
    for group state ``states[i]`` after ``ks[i]`` bytes) whose token has no bit in ``out`` yet,
    sorted by group state (stably), as the arrays :func:`resolve_exits` takes: ``(sets, groups,
    tokens, bytes consumed)``. One kernel for what was a filter, a fill and five gathers and a
    two-key sort in numpy per miss (most misses cross from one group)."""
    keep = np.empty(toks.shape[0], np.int64)
    n = 0
    for i in range(toks.shape[0]):
        t = toks[i]
        if not (out[t >> 5] >> np.uint32(t & 31)) & np.uint32(1):
            keep[n] = i
            n += 1
    keep = keep[:n]
    idx = keep[np.argsort(states[keep], kind="mergesort")]
    return np.full(n, j, np.int64), states[idx], toks[idx], ks[idx]


@njit(cache=True, nogil=True)
def sort_by_first_byte(toks, ks, flat, offsets):  # type: ignore[no-untyped-def]
    """Pairs (token ``toks[i]`` from byte ``ks[i]``) sorted by the first byte of their rest
    (counting sort, stable): the sorted tokens, bytes consumed and ``int64[257]`` offsets per
    byte, for :func:`remainder_step_sorted`."""
    n = toks.shape[0]
    ptr = np.zeros(257, np.int64)
    first = np.empty(n, np.uint8)  # each pair's byte, read once (scattered reads: ~half the time)
    for i in range(n):
        b = flat[offsets[toks[i]] + ks[i]]
        first[i] = b
        ptr[b + 1] += 1
    for b in range(256):
        ptr[b + 1] += ptr[b]
    fill = ptr[:256].copy()
    st = np.empty(n, np.int32)
    sk = np.empty(n, np.int32)
    for i in range(n):
        b = first[i]
        j = fill[b]
        st[j] = toks[i]
        sk[j] = ks[i]
        fill[b] = j + 1
    return st, sk, ptr


@njit(cache=True, nogil=True)
def resolve_exits(pos_off, pos_sym, pos_prod, lhs, nullable, tnull, tstart, pred_off, pred, groups_off, groups,  # type: ignore[no-untyped-def]
                  wait_off, wait, term_pos_off, term_pos, start_prod,
                  spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org,
                  trans, acc, owner, follow_first, flat, offsets, ex_set, ex_group, ex_tok, ex_k, out):
    """Layer 3 past its first level: every pair (token ``ex_tok[i]``, bytes consumed ``ex_k[i]``)
    continues in the set where arena set ``ex_set[i]``'s group ``ex_group[i]`` (a terminal's
    start state) ends. A pair whose rest some terminal of that set holds to the end sets its
    token's bit in ``out``; a rest that leaves a terminal part-way goes on from the set after that
    terminal, one set per (set, group) shared by all its pairs, until it dies or is held.

    Pairs must come sorted by (``ex_set``, ``ex_group``). Returns 0, or -1 when the arena is full
    (the bits already set are right; run again with more room).
    """
    # a stack of (set, first pair, end) over pair arrays used as a stack too: the last work item
    # pushed owns the tail of the pair arrays
    cap = max(1024, 2 * ex_tok.shape[0])
    w_set = np.empty(64, np.int64)
    w_lo = np.empty(64, np.int64)
    w_hi = np.empty(64, np.int64)
    p_tok = np.empty(cap, np.int32)
    e_pair = np.empty(4096, np.int32)
    e_group = np.empty(4096, np.int32)
    e_k = np.empty(4096, np.int32)
    p_k = np.empty(cap, np.int32)
    nw = 0
    npairs = 0
    i = 0
    n = ex_tok.shape[0]
    while i < n:
        e = i
        while e < n and ex_set[e] == ex_set[i] and ex_group[e] == ex_group[i]:
            e += 1
        nxt = exit_set(pos_off, pos_sym, pos_prod, lhs, nullable, tnull, tstart, pred_off, pred, groups_off, groups,
                       wait_off, wait, term_pos_off, term_pos, start_prod,
                       spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, ex_set[i], owner[ex_group[i]])
        if nxt < 0:
            return -1
        if nw >= w_set.shape[0]:
            w_set = _grown(w_set, 2 * nw)
            w_lo = _grown(w_lo, 2 * nw)
            w_hi = _grown(w_hi, 2 * nw)
        w_set[nw] = nxt
        w_lo[nw] = npairs
        for q in range(i, e):
            p_tok[npairs] = ex_tok[q]
            p_k[npairs] = ex_k[q]
            npairs += 1
        w_hi[nw] = npairs
        nw += 1
        i = e
    while nw > 0:
        nw -= 1
        j = w_set[nw]
        lo = w_lo[nw]
        hi = w_hi[nw]
        toks = p_tok[lo:hi].copy()
        ks = p_k[lo:hi].copy()
        npairs = lo
        grp = groups_of(pos_sym, tstart, groups_off, groups, slo, shi, plo, phi, ipos, plist, j)
        if grp.shape[0] == 0:
            continue
        while True:  # the exit buffers are kept from set to set, grown when a set needs more
            nex = remainder_step(trans, acc, owner, follow_first, grp, flat, offsets, toks, ks, out, e_pair, e_group, e_k)
            if nex >= 0:
                break
            m = 4 * e_pair.shape[0]
            e_pair = np.empty(m, np.int32)
            e_group = np.empty(m, np.int32)
            e_k = np.empty(m, np.int32)
        if nex == 0:
            continue
        order = np.argsort(e_group[:nex], kind="mergesort")
        a = 0
        while a < nex:
            gi = e_group[order[a]]
            b = a
            while b < nex and e_group[order[b]] == gi:
                b += 1
            nxt = exit_set(pos_off, pos_sym, pos_prod, lhs, nullable, tnull, tstart, pred_off, pred, groups_off, groups,
                           wait_off, wait, term_pos_off, term_pos, start_prod,
                           spred, slo, shi, plo, phi, sacc, ipos, iorg, plist, keys, stamps, counts, st_pos, st_org, j, owner[grp[gi]])
            if nxt < 0:
                return -1
            if nw >= w_set.shape[0]:
                w_set = _grown(w_set, 2 * nw)
                w_lo = _grown(w_lo, 2 * nw)
                w_hi = _grown(w_hi, 2 * nw)
            if npairs + (b - a) > p_tok.shape[0]:
                p_tok = _grown(p_tok, 2 * (npairs + b - a))
                p_k = _grown(p_k, 2 * (npairs + b - a))
            w_set[nw] = nxt
            w_lo[nw] = npairs
            for q in range(a, b):
                p_tok[npairs] = toks[e_pair[order[q]]]
                p_k[npairs] = e_k[order[q]]
                npairs += 1
            w_hi[nw] = npairs
            nw += 1
            a = b
    return 0


@njit(cache=True, nogil=True)
def _grown(a, n):  # type: ignore[no-untyped-def]
    out = np.empty(n, a.dtype)
    out[:a.shape[0]] = a
    return out
