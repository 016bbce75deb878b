r"""Long length bounds on JSON strings, kept *beside* the automaton instead of inside it.

``minLength``/``maxLength`` above :data:`LONG_THRESHOLD` code points are not unrolled into the
string's byte automaton (about 5-20 states per unit of the bound, see
:mod:`.json_strings`). A :class:`LongStr` is a string set given by *pieces*: the code point
lengths ``0..`` are cut into consecutive intervals, and each interval carries an automaton ``D``
of JSON string literals (``None``: no string of those lengths). The set is

    { s : s in L(D_i) and len(s) in interval_i, for the interval i holding len(s) }.

This form is closed under intersection, union and complement exactly: refine both cuttings to
their common intervals and combine the automata interval by interval (complement: within the
strings of the piece's lengths). Where some other part of the compiler needs the set as one
plain automaton (``LongStr.dfa``, e.g. ``propertyNames``), the length bounds are unrolled as
before, and bounds too large for that are the same :class:`~corral.errors.CompileLimitError`
as before: nothing is weakened.

Lowering (:func:`lower_long_string`): the body of a literal of ``n`` code points, ``n`` in
``[lo, hi]``, splits uniquely into ``j`` chunks of exactly :data:`CHUNK` code points and a tail of
``r < CHUNK`` code points followed by the closing quote (``n = j*CHUNK + r``). Chunks and tails
are terminals whose automata count at most ``CHUNK`` code points (no whitespace prefix); the
chunks are counted by left-recursive nonterminals ``A[j, y]`` ("``j`` chunks read, ``D`` at the
character boundary ``y``"): ``A[j, y] -> A[j-1, x] CHUNK[x->y]`` and
``BODY -> A[j, y] TAIL[y, range(j)]``, so that every item inside the string starts where the
string does (constant chart sets, constant work to end the string). The state of ``D`` at chunk
boundaries comes from the product of ``D`` with the automaton of all literals, whose one boundary
state tells where a code point ends (raw UTF-8, escapes and surrogate pairs count one each).
Only live ``(y, j)`` pairs get a rule, so every rule is productive and useful, and the grammar is
unambiguous (a chunk terminal is dead after ``CHUNK`` code points, a tail one at its
``CHUNK``-th). ``minLength`` without ``maxLength`` loops on the first level from which every
tail length is allowed. When ``D`` has too many states at chunk boundaries for this (formats
such as ``email`` and ``uri``), the bounds are unrolled as before (and too large bounds are the
same limit error as before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from corral.compiler.automaton import (
    ByteDFA,
    _live_bfs_order,
    difference,
    minimize,
    product,
)
from corral.compiler.grammar_ir import TerminalDef
from corral.compiler.json_schema.algebra import DSet
from corral.compiler.limits import current_budget

if TYPE_CHECKING:
    from corral.compiler.json_schema.compiler import _Compiler

__all__ = ["CHUNK", "LONG_THRESHOLD", "MAX_LONG_BOUND", "LongStr", "long_join", "long_meet", "long_not",
           "long_string_set", "lower_long_string"]

LONG_THRESHOLD = 256  # length bounds above this many code points are kept beside the automaton
CHUNK = 64  # code points per chunk terminal
MAX_LONG_BOUND = 1_000_000  # larger bounds (that the pattern does not make moot) are unrolled (a limit error)
MAX_LONG_RULES = 150_000  # (automaton state, chunk count) rules of one long string set
MAX_SHAPE_STATES = 4000  # pattern automata larger than this are unrolled as before

Piece = tuple[int, ByteDFA | None]  # (first length of the interval, automaton or None)


# ---------------------------------------------------------------------------------------------------
# The set
# ---------------------------------------------------------------------------------------------------


class LongStr(DSet):
    """A string set cut by code point length (see the module docstring).

    ``pieces``: ``((lo_0 = 0, D_0), (lo_1, D_1), ...)`` with increasing ``lo``; piece ``i`` covers
    lengths ``lo_i .. lo_{i+1} - 1`` (the last one: all longer lengths). ``complete`` as for
    :class:`DSet`. ``dfa`` unrolls the bounds into one automaton (built on first use; a
    :class:`~corral.errors.CompileLimitError` when the bounds are too large for that).
    """

    def __init__(self, pieces: tuple[Piece, ...], complete: bool) -> None:
        object.__setattr__(self, "pieces", pieces)
        object.__setattr__(self, "complete", complete)
        object.__setattr__(self, "emit", None)
        object.__setattr__(self, "_unrolled", None)

    pieces: tuple[Piece, ...]
    _unrolled: ByteDFA | None

    @property  # type: ignore[override]
    def dfa(self) -> ByteDFA:  # the plain automaton, for callers that need one
        got = self._unrolled
        if got is None:
            got = _unroll(self.pieces)
            object.__setattr__(self, "_unrolled", got)
        return got

    def intervals(self) -> list[tuple[int, int | None, ByteDFA]]:
        """The non-empty pieces as ``(lo, hi or None, automaton)``."""
        out = []
        for i, (lo, d) in enumerate(self.pieces):
            if d is None:
                continue
            hi = self.pieces[i + 1][0] - 1 if i + 1 < len(self.pieces) else None
            out.append((lo, hi, d))
        return out

    def __repr__(self) -> str:
        return f"LongStr({[(lo, hi, d.n_states) for lo, hi, d in self.intervals()]}, complete={self.complete})"


def _length_dfa(lo: int, hi: int | None) -> ByteDFA:
    from corral.compiler.json_schema.json_strings import (
        LengthBoundsTooLarge,
        json_string_dfa,
    )

    budget = current_budget()
    try:
        return json_string_dfa(None, min_length=lo, max_length=hi, max_states=budget.limits.max_states)
    except LengthBoundsTooLarge as e:
        kw = f"maxLength={hi}" if hi is not None else f"minLength={lo}"
        raise budget.error(
            f"{kw} needs a length counter of more than max_states={e.max_states} states (about {e.per} "
            "per character of the bound) where the string set must be one automaton (propertyNames, or a "
            "pattern or format with too many states to count in chunks, such as email or uri)",
            "max_states", e.max_states,
        ) from None


def _unroll(pieces: tuple[Piece, ...]) -> ByteDFA:
    out: ByteDFA | None = None
    for i, (lo, d) in enumerate(pieces):
        if d is None:
            continue
        hi = pieces[i + 1][0] - 1 if i + 1 < len(pieces) else None
        lo, hi = _effective(d, lo, hi)
        part = d if (lo == 0 and hi is None) else product(d, _length_dfa(lo, hi))
        out = part if out is None else product(out, part, union=True)
    assert out is not None
    return out


def _effective(d: ByteDFA, lo: int, hi: int | None) -> tuple[int, int | None]:
    """The bounds that matter for ``d`` (see :meth:`_Shape.effective`)."""
    return _shape(d).effective(lo, hi) if d.n_states <= MAX_SHAPE_STATES else (lo, hi)


def _small(lo: int, hi: int | None) -> bool:
    return (hi is not None and hi <= LONG_THRESHOLD) or (hi is None and lo <= LONG_THRESHOLD)


def _make(pieces: list[Piece], complete: bool) -> Any:
    """The normal form of a cutting: empty pieces dropped, neighbours with the same automaton
    merged; ``False`` when empty, a plain :class:`DSet` when the bounds are all small."""
    cleaned: list[list[Any]] = []
    for i, (lo, d) in enumerate(pieces):
        hi = pieces[i + 1][0] - 1 if i + 1 < len(pieces) else None
        if d is not None and d.n_states <= MAX_SHAPE_STATES and not _shape(d).has_length(lo, hi):
            d = None  # (a larger automaton keeps the piece: lowered unrolled, where emptiness shows)
        if cleaned and cleaned[-1][1] is d:
            continue
        cleaned.append([lo, d])
    if all(d is None for _, d in cleaned):
        return False
    out = tuple((lo, d) for lo, d in cleaned)
    s = LongStr(out, complete)
    if all(_small(*_effective(d, lo, hi)) for lo, hi, d in s.intervals()):
        return DSet(s.dfa, complete)
    return s


def long_string_set(dfa: ByteDFA, complete: bool, min_len: int, max_len: int | None) -> Any:
    """The strings of ``dfa`` with ``min_len`` to ``max_len`` code points (``False`` when none)."""
    if max_len is not None and min_len > max_len:
        return False
    pieces: list[Piece] = [(0, None)] if min_len > 0 else []
    pieces.append((min_len, dfa))
    if max_len is not None:
        pieces.append((max_len + 1, None))
    return _make(pieces, complete)


def _as_pieces(a: DSet) -> tuple[Piece, ...]:
    return a.pieces if isinstance(a, LongStr) else ((0, a.dfa),)


def _combine(a: DSet, b: DSet, op: Any) -> list[Piece]:
    pa, pb = _as_pieces(a), _as_pieces(b)
    cuts = sorted({lo for lo, _ in pa} | {lo for lo, _ in pb})
    memo: dict[tuple[int, int], ByteDFA | None] = {}
    out: list[Piece] = []
    ia = ib = 0
    for lo in cuts:
        while ia + 1 < len(pa) and pa[ia + 1][0] <= lo:
            ia += 1
        while ib + 1 < len(pb) and pb[ib + 1][0] <= lo:
            ib += 1
        da, db = pa[ia][1], pb[ib][1]
        key = (id(da), id(db))
        if key not in memo:
            memo[key] = op(da, db)
        out.append((lo, memo[key]))
    return out


def _nonempty(d: ByteDFA | None) -> ByteDFA | None:
    return d if d is not None and bool(d.accepting.any()) else None


def long_meet(a: DSet, b: DSet) -> Any:
    """Intersection of two string sets, one of them a :class:`LongStr`."""
    def op(x: ByteDFA | None, y: ByteDFA | None) -> ByteDFA | None:
        if x is None or y is None:
            return None
        return _nonempty(x if x is y else product(x, y))

    return _make(_combine(a, b, op), a.complete and b.complete)


def long_join(a: DSet, b: DSet) -> Any:
    """Union of two string sets, one of them a :class:`LongStr`."""
    def op(x: ByteDFA | None, y: ByteDFA | None) -> ByteDFA | None:
        if x is None:
            return y
        if y is None or x is y:
            return x
        return product(x, y, union=True)

    return _make(_combine(a, b, op), a.complete and b.complete)


def long_not(a: LongStr) -> Any:
    """Complement of a :class:`LongStr` within all strings (plain ones if incomplete)."""
    from corral.compiler.json_schema.algebra import universe

    u = universe("str", a.complete)
    pieces: list[Piece] = [(lo, u if d is None else _nonempty(difference(u, d))) for lo, d in a.pieces]
    return _make(pieces, a.complete)


# ---------------------------------------------------------------------------------------------------
# The automaton with its character boundaries
# ---------------------------------------------------------------------------------------------------


class _Shape:
    """``D`` times the automaton of all literals, tracking where code points end.

    States are pairs; ``boundary[x]``: a character boundary inside the literal (after the opening
    quote and whole code points); ``final[x]``: after the closing quote. Dead pairs are cut.
    ``step[x]`` (boundary ``x``): the boundaries one code point on; ``closes[x]``: the closing
    quote may follow. ``p0``: the boundary after the opening quote (``-1`` if none).
    """

    def __init__(self, d: ByteDFA) -> None:
        from corral.compiler.json_schema.algebra import universe

        u = universe("str", True)
        nu = u.n_states
        ub = int(u.trans[u.start, 0x22])
        ids: dict[int, int] = {d.start * nu + u.start: 0}
        order = [d.start * nu + u.start]
        rows: list[np.ndarray] = []
        budget = current_budget()
        i = 0
        while i < len(order):
            if (i & 1023) == 0:
                budget.charge(1024 * 1200, "the character boundaries of a long string")
            a, b = divmod(order[i], nu)
            i += 1
            ta, tb = d.trans[a], u.trans[b]
            ok = (ta >= 0) & (tb >= 0)
            keys = np.where(ok, ta.astype(np.int64) * nu + tb, -1)
            row = np.full(256, -1, dtype=np.int32)
            for k in np.unique(keys[ok]).tolist():
                j = ids.get(k)
                if j is None:
                    j = ids[k] = len(order)
                    order.append(k)
                row[keys == k] = j
            rows.append(row)
        codes = np.array(order, dtype=np.int64)
        trans = np.vstack(rows)
        accepting = d.accepting[codes // nu] & u.accepting[codes % nu]
        # cut the pairs that cannot accept
        n = len(order)
        _, live = _live_bfs_order(trans, accepting, 0)
        trans = np.where((trans >= 0) & live[np.maximum(trans, 0)], trans, -1).astype(np.int32)
        self.n = n
        self.trans = trans
        self.live = live
        self.final = accepting
        self.boundary = (codes % nu == ub) & live
        self.p0 = int(trans[0, 0x22]) if live[0] else -1
        # step relation
        within: list[list[int]] = []
        for x in range(n):
            t = np.unique(trans[x][trans[x] >= 0])
            within.append(t.tolist())
        self.targets_ptr, self.targets_flat = _csr(within)  # each state's successors, flat (for _layered)
        memo: dict[int, frozenset[int]] = {}

        def ends(y: int) -> frozenset[int]:
            """Boundaries reached from the middle of a character at ``y``."""
            got = memo.get(y)
            if got is None:
                acc: set[int] = set()
                for z in within[y]:
                    if self.boundary[z]:
                        acc.add(z)
                    elif not self.final[z]:
                        acc |= ends(z)
                got = memo[y] = frozenset(acc)
            return got

        self.step: dict[int, frozenset[int]] = {}
        self.closes: dict[int, bool] = {}
        for x in np.flatnonzero(self.boundary).tolist():
            acc: set[int] = set()
            closes = False
            for z in within[x]:
                if self.boundary[z]:
                    acc.add(z)
                elif self.final[z]:
                    closes = True
                else:
                    acc |= ends(z)
            self.step[x] = frozenset(acc)
            self.closes[x] = closes
        self._chunk: dict[int, frozenset[int]] = {}
        self._tails: dict[int, int] = {}

    def chunk_ends(self, x: int) -> frozenset[int]:
        """Boundaries exactly :data:`CHUNK` code points after ``x``."""
        got = self._chunk.get(x)
        if got is None:
            cur = frozenset([x])
            for _ in range(CHUNK):
                cur = frozenset().union(*(self.step[y] for y in cur)) if cur else cur
            got = self._chunk[x] = cur
        return got

    def tail_bits(self, x: int) -> int:
        """Bit ``r`` set when ``r < CHUNK`` code points then the closing quote can follow ``x``."""
        got = self._tails.get(x)
        if got is None:
            got = 0
            cur = frozenset([x])
            for r in range(CHUNK):
                if any(self.closes[y] for y in cur):
                    got |= 1 << r
                cur = frozenset().union(*(self.step[y] for y in cur)) if cur else cur
                if not cur:
                    break
            self._tails[x] = got
        return got

    def lengths(self) -> tuple[int | None, int | None, bool]:
        """``(shortest, longest, finite)`` lengths of ``D``'s literals (``None``: none)."""
        got = getattr(self, "_lengths", None)
        if got is not None:
            return got  # type: ignore[no-any-return]
        shortest = longest = None
        finite = True
        cur = frozenset([self.p0]) if self.p0 >= 0 else frozenset()
        seen: dict[frozenset[int], int] = {}
        closing: list[bool] = []
        n = 0
        budget = current_budget()
        while cur:
            k = seen.get(cur)
            if k is not None:
                if any(closing[k:]):
                    finite = False
                break
            if n > MAX_LONG_BOUND:
                finite = False
                break
            seen[cur] = n
            c = any(self.closes[y] for y in cur)
            closing.append(c)
            if c:
                if shortest is None:
                    shortest = n
                longest = n
            if (n & 1023) == 0:
                budget.check()
            cur = frozenset().union(*(self.step[y] for y in cur))
            n += 1
        got = (shortest, longest, finite)
        self._lengths = got
        return got

    def effective(self, lo: int, hi: int | None) -> tuple[int, int | None]:
        """``lo``, ``hi`` with the bounds that hold for every literal of ``D`` dropped."""
        shortest, longest, finite = self.lengths()
        if shortest is not None and shortest >= lo:
            lo = 0
        if finite and hi is not None and (longest is None or longest <= hi):
            hi = None
        return lo, hi

    def has_length(self, lo: int, hi: int | None) -> bool:
        """Whether ``D`` accepts a literal of ``lo`` to ``hi`` code points."""
        if self.p0 < 0:
            return False
        cur = frozenset([self.p0])
        seen: dict[frozenset[int], int] = {}
        n = 0
        budget = current_budget()
        while cur and (hi is None or n <= hi):
            if n >= lo and any(self.closes[y] for y in cur):
                return True
            k = seen.get(cur)
            if k is not None:
                if k >= lo:
                    return False  # the sets cycle from k on, and no length of the cycle closes
                seen = {}
                if n < lo:  # they cycle with period n - k: jump to the last repeat before lo
                    n += (lo - n) // (n - k) * (n - k)
                    continue  # (the same set: check it at its new length)
            seen[cur] = n
            if (n & 1023) == 0:
                budget.check()
            cur = frozenset().union(*(self.step[y] for y in cur))
            n += 1
        return False


_shapes: dict[int, tuple[ByteDFA, _Shape]] = {}


def _shape(d: ByteDFA) -> _Shape:
    hit = _shapes.get(id(d))
    if hit is not None and hit[0] is d:
        return hit[1]
    s = _Shape(d)
    if len(_shapes) > 64:
        _shapes.clear()
    _shapes[id(d)] = (d, s)  # holding d keeps its id from being reused
    return s


# ---------------------------------------------------------------------------------------------------
# Chunk and tail automata
# ---------------------------------------------------------------------------------------------------


def _layered(sh: _Shape, x0: int, top: int, tail_lo: int | None) -> tuple[np.ndarray, list[np.ndarray], int]:
    """A counter of code points from boundary ``x0``: layers ``0..top`` (``top`` characters).

    Chunk mode (``tail_lo`` None): layer ``top`` holds only its boundary entries, without moves.
    Tail mode: no character past layer ``top``; the closing quote (to the one final state) from
    layers ``tail_lo..top`` only. Returns ``(table, ids per layer, final id or -1)``.

    Two numba passes (:func:`_layer_members`, :func:`_layer_table`) with the budget charged
    between them; the Python version, a loop per layer with a dozen numpy calls each, was a
    quarter of o359's compile (``tests/compiler/json_schema/test_long_strings.py`` keeps it as
    the oracle).
    """
    tail = -1 if tail_lo is None else tail_lo
    members, ptr = _layer_members(sh.targets_ptr, sh.targets_flat, sh.boundary, sh.final, x0, top, tail)
    total = int(ptr[-1]) + (1 if tail_lo is not None else 0)
    final_id = total - 1 if tail_lo is not None else -1
    current_budget().charge(total * 1100, "a long string's chunk automaton")
    out, ids = _layer_table(sh.trans, sh.boundary, sh.final, members, ptr, total, final_id, top, tail)
    return out, list(ids), final_id


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(t) for t in lists])
    flat = np.fromiter((z for t in lists for z in t), dtype=np.int64, count=int(ptr[-1]))
    return ptr, flat


@njit(cache=True, nogil=True)
def _layer_members(tptr, tflat, boundary, final, x0, top, tail):  # type: ignore[no-untyped-def]
    """The states of each layer of :func:`_layered`, sorted, as (members, layer offsets)."""
    n = boundary.shape[0]
    seen = np.full(n, -1, np.int64)  # the layer that last saw a state
    inxt = np.full(n, -1, np.int64)
    ptr = [0]
    parts = []
    entries = np.array([x0], np.int64)
    stack = np.empty(n + 1, np.int64)
    nxt = np.empty(n + 1, np.int64)
    got = np.empty(n + 1, np.int64)
    for i in range(top + 1):
        if tail < 0 and i == top:
            layer = np.sort(entries)
            parts.append(layer)
            ptr.append(ptr[-1] + layer.shape[0])
            break
        ns = 0
        ng = 0
        for x in entries:
            if seen[x] != i:
                seen[x] = i
                stack[ns] = x
                ns += 1
                got[ng] = x
                ng += 1
        nn = 0
        while ns:
            ns -= 1
            x = stack[ns]
            for k in range(tptr[x], tptr[x + 1]):
                z = tflat[k]
                if boundary[z]:
                    if inxt[z] != i:
                        inxt[z] = i
                        nxt[nn] = z
                        nn += 1
                elif not final[z] and seen[z] != i:
                    seen[z] = i
                    stack[ns] = z
                    ns += 1
                    got[ng] = z
                    ng += 1
        layer = np.sort(got[:ng])
        parts.append(layer)
        ptr.append(ptr[-1] + ng)
        if nn == 0 or i == top:
            break
        entries = nxt[:nn].copy()
    members = np.empty(ptr[-1], np.int64)
    for j in range(len(parts)):
        members[ptr[j]:ptr[j + 1]] = parts[j]
    return members, np.array(ptr, np.int64)


@njit(cache=True, nogil=True)
def _layer_table(trans, boundary, final, members, ptr, total, final_id, top, tail):  # type: ignore[no-untyped-def]
    """The table and the ids per layer (``ids[i, x]``: state ``x``'s row in layer ``i``, ``-1``
    when absent; column ``n`` is -1) of :func:`_layered`."""
    n = boundary.shape[0]
    nl = ptr.shape[0] - 1
    ids = np.full((nl, n + 1), -1, np.int64)
    for i in range(nl):
        for k in range(ptr[i], ptr[i + 1]):
            ids[i, members[k]] = k
    out = np.full((total, 256), -1, np.int32)
    for i in range(nl):
        if tail < 0 and i == top:
            continue  # chunk mode: the last layer's entries only, without moves
        last = i + 1 >= nl
        for k in range(ptr[i], ptr[i + 1]):
            m = members[k]
            for b in range(256):
                z = trans[m, b]
                if z < 0:
                    continue
                if final[z]:
                    out[k, b] = final_id if (tail >= 0 and i >= tail) else -1
                elif boundary[z]:
                    out[k, b] = -1 if last else ids[i + 1, z]
                else:
                    out[k, b] = ids[i, z]
    return out, ids


def _chunk_dfas(sh: _Shape, x: int) -> dict[int, ByteDFA]:
    """The chunk automata from ``x``, by the boundary they end at."""
    table, ids, _ = _layered(sh, x, CHUNK, None)
    out: dict[int, ByteDFA] = {}
    if len(ids) <= CHUNK:
        return out
    for y in sh.chunk_ends(x):
        assert ids[CHUNK][y] >= 0, "the chunk automaton disagrees with the boundary steps"
        acc = np.zeros(table.shape[0], dtype=bool)
        acc[int(ids[CHUNK][y])] = True
        d = minimize(ByteDFA(table, acc, int(ids[0][x])), trimmed=False)
        assert d.accepting.any(), "the chunk automaton disagrees with the boundary steps"
        out[y] = d
    return out


def _tail_dfa(sh: _Shape, x: int, rlo: int, rhi: int) -> ByteDFA:
    table, ids, final_id = _layered(sh, x, rhi, rlo)
    acc = np.zeros(table.shape[0], dtype=bool)
    acc[final_id] = True
    d = minimize(ByteDFA(table, acc, int(ids[0][x])), trimmed=False)
    assert d.accepting.any(), "the tail automaton disagrees with the boundary steps"
    return d


# ---------------------------------------------------------------------------------------------------
# Lowering
# ---------------------------------------------------------------------------------------------------


def _inner_term(self: _Compiler, key: tuple[Any, ...], build: Any, base: str, describe: str) -> str:
    """A terminal without the whitespace prefix (inside a string literal)."""
    name = self._terms.get(key)
    if name is None:
        dfa = build()
        self._keepalive.append(dfa)
        name = self.fresh("T_" + base).upper()
        self.out.terminals[name] = TerminalDef(name, describe, dfa=dfa)
        self._terms[key] = name
    return name


def lower_long_string(self: _Compiler, s: Any) -> str:
    """The nonterminal of the literals of the :class:`LongStr` ``s`` (with the whitespace prefix of
    a value)."""
    key = ("longstr", tuple((lo, id(d)) for lo, d in s.pieces), s.complete)  # equal sets share their rules
    name = self._terms.get(key)
    if name is not None:
        return name
    self._keepalive.append(s)
    if not feasible(s):  # too many pattern states at chunk boundaries: one unrolled automaton, as before
        with current_budget().at(getattr(self, "_lowering_at", None)):
            name = self.dfa_term(s.dfa, "string", "a string")
        self._terms[key] = name
        return name
    alts: list[tuple[str, ...]] = []
    for lo, hi, d in s.intervals():
        alt = _lower_piece(self, d, lo, hi)
        if alt is not None:
            alts.append((alt,))
    name = self.rule("long_string", alts)
    self._terms[key] = name
    return name


class _Plan:
    """The live ``(boundary, level)`` pairs of a piece (see :func:`_plan`): ``live[j]`` holds the
    boundaries ``y`` reachable after ``j`` chunks from which the string can still end in bounds."""

    def __init__(self, sh: _Shape, lo: int, hi: int | None, levels: list[set[int]], loop: int) -> None:
        self.sh, self.lo, self.hi, self.live, self.loop = sh, lo, hi, levels, loop

    def rng(self, j: int) -> tuple[int, int]:
        """The tail lengths allowed after ``j`` chunks."""
        k = CHUNK
        return max(0, self.lo - j * k), (k - 1 if self.hi is None else min(k - 1, self.hi - j * k))

    def tail_ok(self, x: int, j: int) -> bool:
        a, b = self.rng(j)
        if a > b:
            return False
        return bool(self.sh.tail_bits(x) >> a & ((1 << (b - a + 1)) - 1))

    def next_level(self, j: int) -> int:
        return j if j == self.loop else j + 1


class _TooBig(Exception):
    pass


MAX_CHUNK_STARTS = 24  # boundary states a chunk may start from (each one's chunk automata are built)
MAX_CHUNK_TERMS = 64  # chunk terminals of one piece


def _plan(d: ByteDFA, lo: int, hi: int | None) -> _Plan:
    """Which ``A[j, y]`` rules a piece needs; :class:`_TooBig` when its chunk terminals would be
    too many or too large (the caller then unrolls the bounds as before)."""
    if d.n_states > MAX_SHAPE_STATES:
        raise _TooBig
    sh = _shape(d)
    if len(sh.step) > 4 * MAX_CHUNK_STARTS + 64:
        raise _TooBig
    budget = current_budget()
    k = CHUNK
    if hi is not None:
        jmax = hi // k
        loop = -1
    else:
        jmax = max(1, -(-lo // k))  # from this level on every tail length is allowed: it repeats
        loop = jmax
    if jmax > MAX_LONG_BOUND // k + 1:
        raise _TooBig
    if sh.p0 < 0:
        return _Plan(sh, lo, hi, [set()], loop)
    starts: set[int] = set()
    levels: list[frozenset[int]] = [frozenset([sh.p0])]
    for j in range(jmax):
        if (j & 255) == 0:
            budget.check()
        starts |= levels[j]
        if len(starts) > MAX_CHUNK_STARTS:
            raise _TooBig
        nxt = frozenset().union(*(sh.chunk_ends(x) for x in levels[j])) if levels[j] else frozenset()
        levels.append(nxt)
    if loop >= 0:  # close the last level under chunks
        cur = set(levels[loop])
        todo = list(cur)
        while todo:
            x = todo.pop()
            for y in sh.chunk_ends(x):
                if y not in cur:
                    cur.add(y)
                    todo.append(y)
        levels[loop] = frozenset(cur)
    plan = _Plan(sh, lo, hi, [set() for _ in levels], loop)
    # backward: the live (boundary, level) pairs
    rules = 0
    live = plan.live
    for j in range(len(levels) - 1, -1, -1):
        if j == loop:
            lv = {x for x in levels[j] if plan.tail_ok(x, j)}
            changed = True
            while changed:
                changed = False
                for x in levels[j]:
                    if x not in lv and any(y in lv for y in sh.chunk_ends(x)):
                        lv.add(x)
                        changed = True
            live[j] = lv
        else:
            nl = live[j + 1] if j + 1 < len(levels) else set()
            live[j] = {x for x in levels[j] if plan.tail_ok(x, j) or any(y in nl for y in sh.chunk_ends(x))}
        rules += len(live[j])
        if rules > MAX_LONG_RULES:
            raise _TooBig
    chunks = {(x, y) for j, lv in enumerate(live) for x in lv for y in sh.chunk_ends(x)
              if plan.next_level(j) < len(live) and y in live[plan.next_level(j)]}
    if len(chunks) > MAX_CHUNK_TERMS or len({x for x, _ in chunks}) > MAX_CHUNK_STARTS:
        raise _TooBig
    return plan


_plans: dict[tuple[int, int, int | None], tuple[ByteDFA, _Plan | None]] = {}


def _cached_plan(d: ByteDFA, lo: int, hi: int | None) -> _Plan | None:
    """:func:`_plan`, ``None`` for too big (memoised)."""
    if d.n_states > MAX_SHAPE_STATES:
        return None
    lo, hi = _shape(d).effective(lo, hi)
    key = (id(d), lo, hi)
    hit = _plans.get(key)
    if hit is not None and hit[0] is d:
        return hit[1]
    try:
        plan: _Plan | None = _plan(d, lo, hi)
    except _TooBig:
        plan = None
    if len(_plans) > 64:
        _plans.clear()
    _plans[key] = (d, plan)
    return plan


def feasible(s: Any) -> bool:
    """Whether every piece of a :class:`LongStr` can be lowered in chunks."""
    return all(_cached_plan(d, lo, hi) is not None for lo, hi, d in s.intervals())


def _lower_piece(self: _Compiler, d: ByteDFA, lo: int, hi: int | None) -> str | None:
    """``'"' F`` with ``F -> A[j, y] TAIL[y, range(j)]`` and ``A[j, y] -> A[j-1, x] CHUNK[x->y]``.

    The count is left-recursive: every item inside the string starts where the string does, so a
    chart set holds a constant number of items and ending the string completes a constant number
    of rules, however many chunks were read.
    """
    plan = _cached_plan(d, lo, hi)
    assert plan is not None
    sh = plan.sh
    live = plan.live
    if sh.p0 < 0 or sh.p0 not in live[0]:
        return None
    self._keepalive.append(d)
    did = id(d)
    names: dict[tuple[int, int], str] = {}
    for j in range(1, len(live)):
        for y in sorted(live[j]):
            names[(y, j)] = self.fresh("ls")  # (one base: a name per level cost a cleaning each)
    chunk_cache: dict[int, dict[int, ByteDFA]] = {}

    def chunk(x: int, y: int) -> str:
        if x not in chunk_cache:
            chunk_cache[x] = _chunk_dfas(sh, x)
        return _inner_term(self, ("lschunk", did, x, y), lambda: chunk_cache[x][y],
                           "string_chunk", f"{CHUNK} characters of a long string")

    ends: list[tuple[str, ...]] = []
    for j in range(len(live)):
        for y in sorted(live[j]):
            if j >= 1:
                alts: list[tuple[str, ...]] = []
                sources = [(x, j - 1) for x in sorted(live[j - 1])]
                if j == plan.loop:
                    sources += [(x, j) for x in sorted(live[j])]
                for x, i in sources:
                    if y not in sh.chunk_ends(x):
                        continue
                    c = chunk(x, y)
                    alts.append((c,) if i == 0 else (names[(x, i)], c))
                self.out.rules[names[(y, j)]] = alts
            if plan.tail_ok(y, j):
                a, b = plan.rng(j)
                t = _inner_term(self, ("lstail", did, y, a, b), lambda y=y, a=a, b=b: _tail_dfa(sh, y, a, b),
                                "string_tail", "the end of a long string")
                ends.append((t,) if j == 0 else (names[(y, j)], t))
    body = self.rule("long_string_body", ends)
    return self.rule("long_string", [(self.lit('"'), body)])
