"""Byte automata: a Thompson-style NFA builder, subset construction, trimming and minimisation.

Every constraint is eventually run on bytes. :class:`ByteNFA` is built by the front ends (the regex
compiler lowers character classes to UTF-8 byte ranges); :func:`determinize` turns it into a
:class:`ByteDFA` whose every state can still reach an accepting state (dead states are removed, so
"a transition exists" means "the text can still be completed"), and :func:`minimize` merges
equivalent states.

Work here can explode on hostile input (``(a|b)*a(a|b){30}`` has 2**30 DFA states), so every
construction runs under the compile's :class:`~corral.compiler.limits.Budget`: the subset
construction stops at ``max_states``, NFAs at ``max_nfa_states``, and each table is charged to the
memory account before it is allocated; the clock is checked as states are added. Exceeding any of
them is a :class:`~corral.errors.CompileLimitError` naming the limit.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from corral.compiler.analysis import csr_of_edges
from corral.compiler.limits import DEFAULT_LIMITS, NFA_STATE_BYTES, TABLE_ROW_BYTES, budget_scope, current_budget
from corral.errors import CompileLimitError

__all__ = [
    "ByteNFA",
    "ByteDFA",
    "determinize",
    "minimize",
    "refine",
    "acyclic_blocks",
    "hopcroft_blocks",
    "byte_columns",
    "byte_partition",
    "frozen",
    "DEFAULT_MAX_STATES",
    "DEFAULT_TIMEOUT",
]

DEFAULT_MAX_STATES = DEFAULT_LIMITS.max_states
"""Default cap on DFA states for one constraint (:attr:`corral.Limits.max_states`)."""

DEFAULT_TIMEOUT = DEFAULT_LIMITS.timeout
"""Default cap, in seconds, on one compile (:attr:`corral.Limits.timeout`)."""

DEFAULT_MAX_NFA_STATES = DEFAULT_LIMITS.max_nfa_states
"""Default cap on NFA states (bounded repetitions are expanded copy by copy)."""


@dataclass
class ByteNFA:
    """A byte-level NFA under construction.

    ``edges[s]`` lists ``(lo, hi, t)``: from ``s`` on any byte in ``lo..hi`` go to ``t``;
    ``eps[s]`` lists epsilon successors.
    """

    edges: list[list[tuple[int, int, int]]] = field(default_factory=list)
    eps: list[list[int]] = field(default_factory=list)
    max_states: int | None = None  # default: the current budget's max_nfa_states

    def new_state(self) -> int:
        """Add a state and return its id.

        Raises
        ------
        CompileLimitError
            When the NFA grows past ``max_states``.
        """
        n = len(self.edges)
        if (n & 1023) == 0:
            budget = current_budget()
            budget.charge(1024 * NFA_STATE_BYTES, "the NFA")
            if self.max_states is None:
                self.max_states = budget.limits.max_nfa_states
        cap = self.max_states if self.max_states is not None else DEFAULT_MAX_NFA_STATES
        if n >= cap:
            raise CompileLimitError(
                f"the automaton needs more than max_nfa_states={cap} NFA states "
                "(large bounded repetitions such as x{1,100000} are expanded copy by copy)",
                limit="max_nfa_states",
                value=cap,
            )
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1

    def __len__(self) -> int:
        return len(self.edges)


@dataclass(frozen=True)
class ByteDFA:
    """A trimmed deterministic automaton over bytes.

    Attributes
    ----------
    trans:
        ``int32[n_states, 256]``; ``trans[s, b]`` is the next state or ``-1`` (no way to complete).
    accepting:
        ``bool[n_states]``.
    start:
        The initial state.
    """

    trans: np.ndarray
    accepting: np.ndarray
    start: int

    @property
    def n_states(self) -> int:
        """Number of states."""
        return int(self.trans.shape[0])

    def run(self, data: bytes, state: int | None = None) -> int:
        """State after reading ``data`` from ``state`` (default: start), or -1 if rejected."""
        s = self.start if state is None else state
        for b in data:
            s = int(self.trans[s, b])
            if s < 0:
                return -1
        return s

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` is in the language."""
        s = self.run(data)
        return s >= 0 and bool(self.accepting[s])


def _closure_fn(nfa: ByteNFA):  # type: ignore[no-untyped-def]
    memo: dict[int, frozenset[int]] = {}
    eps = nfa.eps

    def closure(s: int) -> frozenset[int]:
        got = memo.get(s)
        if got is not None:
            return got
        seen = {s}
        stack = [s]
        while stack:
            x = stack.pop()
            for y in eps[x]:
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        # Only states with byte edges or that are final matter for identity; keep all for safety.
        res = frozenset(seen)
        memo[s] = res
        return res

    return closure


def determinize(
    nfa: ByteNFA,
    start: int,
    final: int,
    *,
    max_states: int | None = None,
    timeout: float | None = None,
) -> ByteDFA:
    """Subset construction, then removal of states that cannot reach acceptance.

    Parameters
    ----------
    nfa, start, final:
        The NFA, its start state and its single accepting state.
    max_states:
        Limit on the DFA's states (default: the current budget's ``max_states``).
    timeout:
        A tighter limit, in seconds, for this construction alone (default: the current budget's
        deadline); each new state's row is charged to the budget's memory account first.

    Returns
    -------
    ByteDFA
        Trimmed; ``n_states == 0`` never happens: an empty language yields a single non-accepting
        start state with no transitions (callers decide whether that is an error).

    Raises
    ------
    CompileLimitError
        When ``max_states`` or ``timeout`` is exceeded.
    """
    if timeout is not None:
        with budget_scope(current_budget().limits.updated(timeout=timeout)):
            return determinize(nfa, start, final, max_states=max_states)
    budget = current_budget()
    if max_states is None:
        max_states = budget.limits.max_states
    closure = _closure_fn(nfa)
    # Keep only "important" NFA states in DFA keys: those with byte edges, or the final state.
    important = [bool(nfa.edges[s]) or s == final for s in range(len(nfa))]

    def key_of(states: set[int] | frozenset[int]) -> frozenset[int]:
        return frozenset(s for s in states if important[s])

    start_key = key_of(closure(start))
    index: dict[frozenset[int], int] = {start_key: 0}
    keys = [start_key]
    rows: list[np.ndarray] = []
    edges = nfa.edges
    i = 0
    while i < len(keys):
        if (i & 63) == 0:  # the next 64 rows and their keys, before they are made
            budget.charge(64 * (TABLE_ROW_BYTES + 8 * len(keys[i]) + 64), "the automaton's states")
        key = keys[i]
        row = np.full(256, -1, dtype=np.int32)
        all_edges = [e for s in key for e in edges[s]]
        if all_edges:
            points = sorted({e[0] for e in all_edges} | {e[1] + 1 for e in all_edges})
            buckets: list[set[int]] = [set() for _ in range(len(points))]
            for lo, hi, t in all_edges:
                a = bisect_right(points, lo) - 1
                b = bisect_right(points, hi) - 1
                for k in range(a, b + 1):
                    buckets[k].add(t)
            for k, targets in enumerate(buckets):
                if not targets:
                    continue
                closed: set[int] = set()
                for t in targets:
                    closed |= closure(t)
                nkey = key_of(closed)
                j = index.get(nkey)
                if j is None:
                    j = len(keys)
                    if j >= max_states:
                        raise CompileLimitError(
                            f"the automaton needs more than max_states={max_states} states; "
                            "simplify the constraint or raise the limit",
                            limit="max_states",
                            value=max_states,
                        )
                    index[nkey] = j
                    keys.append(nkey)
                lo_b = points[k]
                hi_b = points[k + 1] if k + 1 < len(points) else 256
                row[lo_b:hi_b] = j
        rows.append(row)
        i += 1
    trans = np.stack(rows) if rows else np.full((1, 256), -1, dtype=np.int32)
    accepting = np.array([final in k for k in keys], dtype=bool)
    return trim(ByteDFA(trans, accepting, 0))


@njit(cache=True, nogil=True)
def _live_bfs_order(trans, accepting, start):  # type: ignore[no-untyped-def]
    """States that can reach acceptance, in BFS order from ``start`` (empty if ``start`` cannot).

    Plain-Python equivalent: ``live`` = states with a path to an accepting state; ``order`` =
    breadth-first visit from ``start`` following transitions into live states only (each
    state's targets in byte order).

    One pass over the table lists each state's distinct targets in byte order; the reverse
    search and the BFS then walk those lists (three passes over the table took ~0.1 ms on the
    130-state key terminals of every object schema).
    """
    n = trans.shape[0]
    stamp = np.full(n, -1, np.int64)
    fwd_off = np.zeros(n + 1, np.int64)
    fwd = np.empty(4 * n + 256, np.int64)
    m = 0
    for s in range(n):
        if m + 256 > fwd.shape[0]:  # room for a whole row
            grown = np.empty(2 * fwd.shape[0], np.int64)
            grown[:m] = fwd[:m]
            fwd = grown
        for b in range(256):
            t = trans[s, b]
            if t >= 0 and stamp[t] != s:
                stamp[t] = s
                fwd[m] = t
                m += 1
        fwd_off[s + 1] = m
    own = np.empty(m, np.int64)  # the state each edge of fwd leaves
    for s in range(n):
        own[fwd_off[s]:fwd_off[s + 1]] = s
    cnt, src = csr_of_edges(fwd, own, m, n)  # reverse edges
    live = accepting.copy()
    stack = np.empty(n, np.int64)
    top = 0
    for s in range(n):
        if live[s]:
            stack[top] = s
            top += 1
    while top > 0:
        top -= 1
        t = stack[top]
        for k in range(cnt[t], cnt[t + 1]):
            s = src[k]
            if not live[s]:
                live[s] = True
                stack[top] = s
                top += 1
    order = np.empty(n, np.int64)
    if not live[start]:
        return order[:0], live
    seen = np.zeros(n, np.bool_)
    seen[start] = True
    order[0] = start
    head = 0
    tail = 1
    while head < tail:
        s = order[head]
        head += 1
        for k in range(fwd_off[s], fwd_off[s + 1]):
            t = fwd[k]
            if live[t] and not seen[t]:
                seen[t] = True
                order[tail] = t
                tail += 1
    return order[:tail], live


def trim(dfa: ByteDFA) -> ByteDFA:
    """Remove states that cannot reach an accepting state; renumber in BFS order from the start."""
    order, live = _live_bfs_order(dfa.trans, dfa.accepting, dfa.start)
    if order.shape[0] == 0:
        return ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.array([False]), 0)
    return ByteDFA(_renumbered(dfa.trans, order), dfa.accepting[order], 0)


@njit(cache=True, nogil=True)
def _renumbered(trans, order):  # type: ignore[no-untyped-def]
    """The rows ``order`` of ``trans`` with every target renumbered by its place in ``order``
    (targets outside it become -1): ``trim``'s table in one pass (numpy took four passes over
    the table, ~0.3 ms on the 130-state key terminals every object schema has)."""
    new_id = np.full(trans.shape[0], -1, np.int32)
    for i in range(order.shape[0]):
        new_id[order[i]] = i
    out = np.empty((order.shape[0], 256), np.int32)
    for i in range(order.shape[0]):
        row = trans[order[i]]
        for b in range(256):
            t = row[b]
            out[i, b] = new_id[t] if t >= 0 else -1
    return out


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (``a`` itself when it is read-only already).

    numba types a read-only array apart from a writable one, so a kernel called with both gets
    two machine-code versions, each loaded from the cache on its first call in a process
    (17-35 ms apiece). Automata cached for sharing are read-only (their tables must not change
    under other grammars); passing every table the kernels only read through this keeps one
    version per kernel. The view costs no copy."""
    if not a.flags.writeable:
        return a
    v = a.view()
    v.flags.writeable = False
    return v


@njit(cache=True, nogil=True)
def write_shifted(dst, base, src):  # type: ignore[no-untyped-def]
    """Write automaton table ``src`` into rows ``base:`` of ``dst`` with every target moved by
    ``base`` (-1 stays -1): how tables are stacked (a terminal's block in the grammar's table, a
    follower in the follow filter's, a body after a prefix). One pass; numpy's ``where`` per
    block cost ~0.1 ms each, thousands of times per compile."""
    for s in range(src.shape[0]):
        for b in range(256):
            t = src[s, b]
            dst[base + s, b] = t + base if t >= 0 else -1


def byte_partition(dfa: ByteDFA) -> tuple[np.ndarray, np.ndarray]:
    """``(reps, byte_class)``: the classes of bytes that behave alike in every state, numbered
    by their first byte (``reps``, ascending), and each byte's class."""
    t = frozen(dfa.trans)
    reps, members, start = _joint_classes(t, t[:0])
    byte_class = np.empty(256, dtype=np.int64)
    for c in range(reps.shape[0]):
        byte_class[members[start[c]:start[c + 1]]] = c
    return reps, byte_class


def byte_columns(dfa: ByteDFA) -> tuple[np.ndarray, np.ndarray]:
    """``(compact, byte_class)``: the transition table with one column per class of bytes that
    behave alike in every state (``compact[:, byte_class[b]] == trans[:, b]``;
    :func:`byte_partition`)."""
    reps, byte_class = byte_partition(dfa)
    return np.take(dfa.trans, reps, axis=1), byte_class  # (a contiguous copy; ~5x faster than fancy indexing)


def refine(initial: np.ndarray, compact: np.ndarray, max_rounds: int) -> tuple[np.ndarray, bool]:
    """Moore partition refinement: split classes until successors' classes agree.

    ``initial`` is a class id per state; ``compact[s, j]`` a successor state or -1 (a class of its
    own). After ``r`` rounds, two states share a class exactly when they agree on ``initial`` for
    every string of length at most ``r`` (and on which of those strings can be read). Returns the
    classes (numbered ``0..k-1``) and whether they stopped changing within ``max_rounds``.

    Each round combines the signature columns pairwise into exact 1-D keys (``np.unique`` on
    int64), which is much faster than ``np.unique(..., axis=0)`` on rows.
    """
    cls = np.unique(initial, return_inverse=True)[1].reshape(-1).astype(np.int64)
    k = int(cls.max()) + 1 if cls.shape[0] else 0
    for _ in range(max_rounds):
        key = cls
        width = k + 1
        for j in range(compact.shape[1]):
            col = compact[:, j]
            succ = np.where(col >= 0, cls[np.maximum(col, 0)], -1) + 1  # 0 means "no successor"
            key = np.unique(key * (k + 1) + succ, return_inverse=True)[1].reshape(-1).astype(np.int64)
            width = int(key.max()) + 1
        if width == k:
            return cls, True
        cls, k = key, width
    return cls, False


@njit(cache=True, nogil=True)
def acyclic_blocks(compact, accepting):  # type: ignore[no-untyped-def]
    """The blocks of :func:`hopcroft_blocks` for an automaton without cycles (a finite
    language: tries of keys and enum values), in O(n k): ``(block, n_blocks)``, or ``n_blocks``
    -1 when ``compact`` has a cycle (nothing else is meaningful then).

    Successors come before their states (a depth-first post-order, which also finds any cycle).
    A state that cannot reach acceptance joins the dead block; two live states are equivalent
    exactly when both accept or neither does and their successors on every symbol are
    equivalent (or both dead): with successors already numbered, each state is looked up by that
    signature in a hash table of representatives (Revuz's register, compared row by row). Hopcroft's
    worklist holds (block, symbol) pairs: on a 44k-state trie of property names with 63 byte
    classes the minimisation took 0.5 s with it, 0.12 s with this (25-35 ms of it here).
    """
    n = compact.shape[0]
    k = compact.shape[1]
    color = np.zeros(n, np.int8)  # 0 unvisited, 1 on the stack, 2 done
    order = np.empty(n, np.int64)
    n_order = 0
    stack_s = np.empty(n, np.int64)
    stack_c = np.empty(n, np.int64)
    block = np.empty(n, np.int64)
    for root in range(n):
        if color[root] != 0:
            continue
        stack_s[0] = root
        stack_c[0] = 0
        color[root] = 1
        top = 1
        while top > 0:
            s = stack_s[top - 1]
            c = stack_c[top - 1]
            if c < k:
                stack_c[top - 1] = c + 1
                t = compact[s, c]
                if t >= 0:
                    if color[t] == 1:
                        return block, -1
                    if color[t] == 0:
                        color[t] = 1
                        stack_s[top] = t
                        stack_c[top] = 0
                        top += 1
            else:
                color[s] = 2
                order[n_order] = s
                n_order += 1
                top -= 1
    canon = np.full(n, -1, np.int64)
    size = 1
    while size < 2 * n + 2:
        size *= 2
    table = np.full(size, -1, np.int64)
    n_blocks = 0
    for i in range(n):
        s = order[i]
        live = accepting[s]
        h = np.uint64(1469598103934665603) if accepting[s] else np.uint64(7809847782465536322)
        for c in range(k):
            t = compact[s, c]
            x = canon[t] if t >= 0 else -1
            if x >= 0:
                live = True
            h = (h ^ np.uint64(x + 2)) * np.uint64(1099511628211)
        if not live:
            continue
        slot = np.int64(h & np.uint64(size - 1))
        while True:
            r = table[slot]
            if r < 0:
                table[slot] = s
                canon[s] = n_blocks
                n_blocks += 1
                break
            same = accepting[r] == accepting[s]
            c = 0
            while same and c < k:
                a = compact[s, c]
                b = compact[r, c]
                if (canon[a] if a >= 0 else -1) != (canon[b] if b >= 0 else -1):
                    same = False
                c += 1
            if same:
                canon[s] = canon[r]
                break
            slot = (slot + 1) & (size - 1)
    for s in range(n):
        block[s] = canon[s] if canon[s] >= 0 else n_blocks
    return block, n_blocks + 1


@njit(cache=True, nogil=True)
def hopcroft_blocks(compact, accepting):  # type: ignore[no-untyped-def]
    """Hopcroft's partition refinement: the block (class of equivalent states) of each state.

    ``compact[s, j]`` is the successor of ``s`` on symbol ``j`` or -1 (a dead sink). Two states
    share a block exactly when they accept the same strings. Plain-Python reference: iterate
    :func:`refine` from the accepting/non-accepting split until it stops changing.
    O(k n log n) for n states and k symbols.
    """
    n = compact.shape[0]
    k = compact.shape[1]
    m = n + 1  # state n is the sink
    # Inverse transitions, CSR per symbol: pred[j][ptr[j, t]:ptr[j, t + 1]].
    ptr = np.zeros((k, m + 1), np.int64)
    for s in range(m):
        for j in range(k):
            t = compact[s, j] if s < n else -1
            if t < 0:
                t = n
            ptr[j, t + 1] += 1
    for j in range(k):
        for t in range(m):
            ptr[j, t + 1] += ptr[j, t]
    pred = np.empty((k, m), np.int64)
    fill = ptr[:, :m].copy()
    for s in range(m):
        for j in range(k):
            t = compact[s, j] if s < n else -1
            if t < 0:
                t = n
            pred[j, fill[j, t]] = s
            fill[j, t] += 1
    # Partition: elems ordered by block; block b spans first[b]:end[b].
    block = np.zeros(m, np.int64)
    elems = np.empty(m, np.int64)
    pos = np.empty(m, np.int64)
    first = np.zeros(m + 1, np.int64)
    end = np.zeros(m + 1, np.int64)
    marked = np.zeros(m + 1, np.int64)
    n_acc = 0
    for s in range(n):
        if accepting[s]:
            n_acc += 1
    i_acc = 0
    i_rej = n_acc
    for s in range(m):
        if s < n and accepting[s]:
            block[s] = 0
            elems[i_acc] = s
            pos[s] = i_acc
            i_acc += 1
        else:
            block[s] = 1
            elems[i_rej] = s
            pos[s] = i_rej
            i_rej += 1
    n_blocks = 2
    first[0], end[0] = 0, n_acc
    first[1], end[1] = n_acc, m
    if n_acc == 0:  # only the rejecting block
        for s in range(m):
            block[s] = 0
        first[0], end[0] = 0, m
        n_blocks = 1
    # Worklist of (block, symbol) splitters.
    work_b = np.empty(2 * m * k + 2 * k, np.int64)
    work_j = np.empty(2 * m * k + 2 * k, np.int64)
    in_work = np.zeros((m + 1, k), np.bool_)
    top = 0
    start_b = 0
    if n_blocks == 2 and (end[1] - first[1]) < (end[0] - first[0]):
        start_b = 1
    for j in range(k):
        work_b[top] = start_b
        work_j[top] = j
        in_work[start_b, j] = True
        top += 1
    touched = np.empty(m + 1, np.int64)
    splitter = np.empty(m, np.int64)
    while top > 0:
        top -= 1
        a = work_b[top]
        j = work_j[top]
        in_work[a, j] = False
        # Snapshot the splitter block (it may be split below).
        size_a = end[a] - first[a]
        for q in range(size_a):
            splitter[q] = elems[first[a] + q]
        n_touched = 0
        for q in range(size_a):
            t = splitter[q]
            for p_i in range(ptr[j, t], ptr[j, t + 1]):
                s = pred[j, p_i]
                b = block[s]
                # Move s into the marked prefix of its block.
                mpos = first[b] + marked[b]
                if pos[s] >= mpos:
                    other = elems[mpos]
                    elems[pos[s]] = other
                    pos[other] = pos[s]
                    elems[mpos] = s
                    pos[s] = mpos
                    if marked[b] == 0:
                        touched[n_touched] = b
                        n_touched += 1
                    marked[b] += 1
        for q in range(n_touched):
            b = touched[q]
            cnt = marked[b]
            marked[b] = 0
            if cnt == end[b] - first[b]:
                continue
            nb = n_blocks
            n_blocks += 1
            first[nb] = first[b]
            end[nb] = first[b] + cnt
            first[b] = first[b] + cnt
            for r in range(first[nb], end[nb]):
                block[elems[r]] = nb
            small = nb if end[nb] - first[nb] <= end[b] - first[b] else b
            for jj in range(k):
                if in_work[b, jj]:
                    work_b[top] = nb
                    work_j[top] = jj
                    in_work[nb, jj] = True
                    top += 1
                else:
                    work_b[top] = small
                    work_j[top] = jj
                    in_work[small, jj] = True
                    top += 1
    return block[:n].copy(), n_blocks


def minimize(dfa: ByteDFA, *, trimmed: bool = True) -> ByteDFA:
    """Merge equivalent states (Hopcroft's algorithm in a numba kernel).

    The output is trimmed and minimal. The input must be trimmed unless ``trimmed=False`` is
    passed, which gives ``minimize(trim(dfa))`` without trimming twice.
    """
    if trimmed and dfa.n_states <= 1:
        return dfa
    trans, order, merged = _minimized(dfa.trans, dfa.accepting, dfa.start, trimmed)
    if not merged:
        return dfa
    if order.shape[0] == 0:  # the empty language: trim's one dead state
        return ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.array([False]), 0)
    return ByteDFA(trans, dfa.accepting[order], 0)


@njit(cache=True, nogil=True)
def _minimized(trans, accepting, start, trimmed):  # type: ignore[no-untyped-def]
    """:func:`minimize` in one kernel: ``(table, order, merged)``. Bytes are grouped into
    classes (:func:`_joint_classes`), states into blocks (:func:`acyclic_blocks` for a
    finite language, else :func:`hopcroft_blocks`); each block
    takes its first state's row, and the merged table is trimmed (live states in breadth-first
    order from the start): ``table`` is its rows and ``order[i]`` an original state of block
    ``i``. ``merged`` is false when a ``trimmed`` input has no two equivalent states (nothing
    else is computed then). States that cannot reach acceptance share the dead sink's block,
    so an untrimmed input comes out trimmed too.
    numpy and Python glue around the kernels was most of a small automaton's minimisation."""
    n = trans.shape[0]
    rep, members, cstart = _joint_classes(trans, trans[:0])
    k = rep.shape[0]
    compact = np.empty((n, k), np.int64)
    for s in range(n):
        for c in range(k):
            compact[s, c] = trans[s, rep[c]]
    raw, found = acyclic_blocks(compact, accepting)
    if found < 0:
        raw, _ = hopcroft_blocks(compact, accepting)
    dense = np.full(n + 2, -1, np.int64)  # block ids renumbered 0.. by first state (the sink's left out)
    block = np.empty(n, np.int64)
    first = np.empty(n, np.int64)  # the first state of each block
    n_blocks = 0
    for s in range(n):
        if dense[raw[s]] < 0:
            dense[raw[s]] = n_blocks
            first[n_blocks] = s
            n_blocks += 1
        block[s] = dense[raw[s]]
    if trimmed and n_blocks == n:
        return trans[:0], rep[:0], False
    table = np.full((n_blocks, 256), -1, np.int32)
    acc = np.zeros(n_blocks, np.bool_)
    for j in range(n_blocks):
        r = first[j]
        acc[j] = accepting[r]
        for b in range(256):
            t = trans[r, b]
            if t >= 0:
                table[j, b] = block[t]
    order, _ = _live_bfs_order(table, acc, block[start])
    return _renumbered(table, order), first[order], True


def product(a: ByteDFA, b: ByteDFA, *, union: bool = False, max_states: int | None = None) -> ByteDFA:
    """The intersection (or, with ``union=True``, the union) of two DFAs' languages.

    Builds only the reachable pairs; the result is trimmed and minimised. ``max_states``
    defaults to the current budget's; the kernel's table (at most ``max_states`` rows) is charged
    to the budget's memory account before the kernel runs.

    Raises
    ------
    CompileLimitError
        When the product needs more than ``max_states`` states.
    """
    return _pairs(a, b, _UNION if union else _MEET, max_states)


_MEET, _UNION, _MINUS = 0, 1, 2  # what the pair automaton of :func:`_pairs` accepts


def _pairs(a: ByteDFA, b: ByteDFA, mode: int, max_states: int | None) -> ByteDFA:
    """The reachable pairs of ``a`` and ``b`` accepting as ``mode`` says (both, either, ``a``
    and not ``b``), trimmed and minimised; see :func:`product` for the limits."""
    # -1 stands for "dead" on either side (needed for the union and the difference, harmless for
    # the intersection). A pair (x, y) is coded as (x + 1) * width + (y + 1).
    budget = current_budget()
    if max_states is None:
        max_states = budget.limits.max_states
    width = b.n_states + 1
    # The kernel stops at ``cap`` rows: the state limit, or what the memory account can still pay
    # for (a row, its pair code and its index entry; the table doubles as it grows).
    row_bytes = 2 * (TABLE_ROW_BYTES + 48)
    affordable = max(0, budget.limits.max_memory_bytes - budget.used_bytes) // row_bytes
    cap = min(max_states, affordable)
    trans, codes, n = _product_kernel(frozen(a.trans), frozen(b.trans), a.start, b.start, mode, cap)
    if n < 0 and cap < max_states:
        budget.charge((cap + 1) * row_bytes, "a product of two automata")  # raises: past the memory limit
    if n < 0:
        raise CompileLimitError(
            f"combining two automata needs more than max_states={max_states} states",
            limit="max_states", value=max_states,
        )
    budget.charge(n * (TABLE_ROW_BYTES + 48), "a product of two automata")
    pairs = codes[:n]
    rows_arr = trans[:n]
    acc_a = np.append(a.accepting, False)  # index -1 -> False
    acc_b = np.append(b.accepting, False)
    pa, pb = pairs // width - 1, pairs % width - 1
    if mode == _UNION:
        accepting = acc_a[pa] | acc_b[pb]
    elif mode == _MINUS:
        accepting = acc_a[pa] & ~acc_b[pb]
    else:
        accepting = acc_a[pa] & acc_b[pb]
    return minimize(ByteDFA(rows_arr, accepting, 0), trimmed=False)


DENSE_PAIRS = 1 << 16
"""Products whose pair space ((states of a + 1) x (states of b + 1)) is at most this many pairs
index their pairs in an array; larger ones in a hash table."""


@njit(cache=True, nogil=True)
def _joint_classes(ta, tb):  # type: ignore[no-untyped-def]
    """Bytes that both tables read alike in every state: ``(rep, members, start)``, the
    classes' first bytes in byte order and, for class ``c``, its bytes
    ``members[start[c]:start[c + 1]]`` (ascending).

    Columns are grouped by a hash, then every byte is checked against its class's first byte
    row by row (reading a table by columns was most of the cost); should two columns collide,
    :func:`_classes_exact` groups them instead."""
    h = np.zeros(256, np.int64)  # wraps around: a hash
    for s in range(ta.shape[0]):
        row = ta[s]
        for b in range(256):
            h[b] = (h[b] ^ (row[b] + 2)) * 1099511628211
    for s in range(tb.shape[0]):
        row = tb[s]
        for b in range(256):
            h[b] = (h[b] ^ (row[b] + 2)) * 1099511628211
    cls = np.empty(256, np.int64)
    rep = np.empty(256, np.int64)
    slot_hash = np.empty(512, np.int64)  # open addressing: hash -> class
    slot_cls = np.full(512, -1, np.int64)
    k = 0
    for b in range(256):
        i = (h[b] ^ (h[b] >> 29)) & 511
        while slot_cls[i] >= 0 and slot_hash[i] != h[b]:
            i = (i + 1) & 511
        if slot_cls[i] < 0:
            slot_cls[i] = k
            slot_hash[i] = h[b]
            rep[k] = b
            k += 1
        cls[b] = slot_cls[i]
    like = np.empty(256, np.int64)  # the first byte of each byte's class
    for b in range(256):
        like[b] = rep[cls[b]]
    if not (_agrees(ta, like) and _agrees(tb, like)):
        return _classes_exact(ta, tb)
    return _members(cls, rep[:k].copy())


@njit(cache=True, nogil=True)
def _agrees(t, like):  # type: ignore[no-untyped-def]
    """Whether every byte ``b``'s column of ``t`` equals byte ``like[b]``'s (row by row)."""
    for s in range(t.shape[0]):
        row = t[s]
        for b in range(256):
            if row[b] != row[like[b]]:
                return False
    return True


@njit(cache=True, nogil=True)
def _same_column(t, r, b):  # type: ignore[no-untyped-def]
    """Whether bytes ``r`` and ``b`` have equal columns in ``t``."""
    for s in range(t.shape[0]):
        if t[s, r] != t[s, b]:
            return False
    return True


@njit(cache=True, nogil=True)
def _classes_exact(ta, tb):  # type: ignore[no-untyped-def]
    """:func:`_joint_classes` by comparing columns element by element (no hash)."""
    cls = np.empty(256, np.int64)
    rep = np.empty(256, np.int64)
    k = 0
    for b in range(256):
        c = -1
        for j in range(k):
            if _same_column(ta, rep[j], b) and _same_column(tb, rep[j], b):
                c = j
                break
        if c < 0:
            c = k
            rep[k] = b
            k += 1
        cls[b] = c
    return _members(cls, rep[:k].copy())


@njit(cache=True, nogil=True)
def _members(cls, rep):  # type: ignore[no-untyped-def]
    """``(rep, members, start)`` from a class per byte (see :func:`_joint_classes`)."""
    k = rep.shape[0]
    start = np.zeros(k + 1, np.int64)
    for b in range(256):
        start[cls[b] + 1] += 1
    for c in range(k):
        start[c + 1] += start[c]
    members = np.empty(256, np.int64)
    fill = start[:k].copy()
    for b in range(256):
        members[fill[cls[b]]] = b
        fill[cls[b]] += 1
    return rep, members, start


@njit(cache=True, nogil=True)
def _product_kernel(ta, tb, sa0, sb0, mode, max_states):  # type: ignore[no-untyped-def]
    """Breadth-first product of two transition tables: (rows, pair codes, count), count -1 when
    more than ``max_states`` pairs are reachable. A pair needs both sides alive (``mode`` 0,
    :data:`_MEET`), either (1, :data:`_UNION`), or the left one (2, :data:`_MINUS`).

    Bytes are read one class at a time (:func:`_joint_classes`: a JSON string automaton has
    ~35 classes, not 256), and pairs are found in an array when the pair space is small
    (:data:`DENSE_PAIRS`), else in a hash table (a numba dict lookup per byte was most of a
    product)."""
    width = tb.shape[0] + 1
    rep, members, cstart = _joint_classes(ta, tb)
    n_classes = rep.shape[0]
    space = (ta.shape[0] + 1) * width
    dense = space <= DENSE_PAIRS
    slots = np.full(space if dense else 1, -1, np.int32)
    index = dict()
    index[np.int64(-1)] = np.int64(-1)  # types the dict; code -1 never occurs
    cap = 64
    rows = np.full((cap, 256), -1, dtype=np.int32)
    codes = np.empty(cap, dtype=np.int64)
    start = (sa0 + 1) * width + (sb0 + 1)
    if dense:
        slots[start] = 0
    else:
        index[start] = 0
    codes[0] = start
    n = 1
    i = 0
    while i < n:
        sa = codes[i] // width - 1
        sb = codes[i] % width - 1
        for c in range(n_classes):
            byte = rep[c]
            x = ta[sa, byte] if sa >= 0 else -1
            y = tb[sb, byte] if sb >= 0 else -1
            if mode == 1:
                if x < 0 and y < 0:
                    continue
            elif x < 0 or (y < 0 and mode == 0):
                continue
            code = (x + 1) * width + (y + 1)
            j = slots[code] if dense else index.get(code, -1)
            if j < 0:
                if n >= max_states:
                    return rows, codes, -1
                if n >= cap:
                    cap *= 2
                    grown = np.full((cap, 256), -1, dtype=np.int32)
                    grown[:n] = rows[:n]
                    rows = grown
                    more = np.empty(cap, dtype=np.int64)
                    more[:n] = codes[:n]
                    codes = more
                j = n
                if dense:
                    slots[code] = j
                else:
                    index[code] = j
                codes[n] = code
                n += 1
            for k in range(cstart[c], cstart[c + 1]):
                rows[i, members[k]] = j
        i += 1
    return rows, codes, n


def meets(a: ByteDFA, b: ByteDFA, *, max_states: int | None = None) -> bool:
    """Whether some string is in both languages: :func:`product`'s question without its
    automaton. The walk over reachable pairs stops at the first pair both sides accept, builds no
    table and minimises nothing (``oneOf`` asks this of hundreds of pairs of key values).

    Raises
    ------
    CompileLimitError
        When the walk reaches more than ``max_states`` pairs (default: the current budget's)
        without an answer.
    """
    budget = current_budget()
    if max_states is None:
        max_states = budget.limits.max_states
    if not a.accepting.any() or not b.accepting.any():
        return False
    found = _meets_kernel(frozen(a.trans), frozen(b.trans), frozen(a.accepting), frozen(b.accepting),
                          a.start, b.start, max_states)
    if found < 0:
        raise CompileLimitError(
            f"combining two automata needs more than max_states={max_states} states",
            limit="max_states", value=max_states,
        )
    return found == 1


@njit(cache=True, nogil=True)
def _meets_kernel(ta, tb, acc_a, acc_b, sa0, sb0, max_states):  # type: ignore[no-untyped-def]
    """1 when a pair both accept is reachable from ``(sa0, sb0)`` over pairs alive on both sides,
    0 when none is, -1 when more than ``max_states`` pairs were reached first. Bytes are read a
    class at a time, as :func:`_product_kernel` reads them."""
    if acc_a[sa0] and acc_b[sb0]:
        return 1
    width = tb.shape[0]
    rep, _, _ = _joint_classes(ta, tb)
    space = ta.shape[0] * width
    dense = space <= DENSE_PAIRS
    slots = np.zeros(space if dense else 1, np.bool_)
    seen = dict()
    seen[np.int64(-1)] = True  # types the dict; code -1 never occurs
    queue = np.empty(64, dtype=np.int64)
    start = sa0 * width + sb0
    if dense:
        slots[start] = True
    else:
        seen[start] = True
    queue[0] = start
    n = 1
    i = 0
    while i < n:
        sa = queue[i] // width
        sb = queue[i] % width
        i += 1
        for c in range(rep.shape[0]):
            x = ta[sa, rep[c]]
            y = tb[sb, rep[c]]
            if x < 0 or y < 0:
                continue
            code = x * width + y
            if dense:
                if slots[code]:
                    continue
                slots[code] = True
            else:
                if code in seen:
                    continue
                seen[code] = True
            if acc_a[x] and acc_b[y]:
                return 1
            if n >= max_states:
                return -1
            if n >= queue.shape[0]:
                more = np.empty(2 * queue.shape[0], dtype=np.int64)
                more[:n] = queue[:n]
                queue = more
            queue[n] = code
            n += 1
    return 0


def complement(dfa: ByteDFA) -> ByteDFA:
    """The automaton of every byte string *not* in ``dfa``'s language (not trimmed to UTF-8)."""
    n = dfa.n_states
    trans = np.where(dfa.trans >= 0, dfa.trans, n).astype(np.int32)
    trans = np.vstack([trans, np.full((1, 256), n, dtype=np.int32)])
    accepting = np.append(~dfa.accepting, True)
    return minimize(ByteDFA(trans, accepting, dfa.start), trimmed=False)


def difference(a: ByteDFA, b: ByteDFA, *, max_states: int | None = None) -> ByteDFA:
    """Strings of ``a`` that are not in ``b``: the pairs of ``a`` and ``b`` where ``a`` is alive,
    accepting where ``a`` accepts and ``b`` does not (``b`` is never complemented on its own)."""
    return _pairs(a, b, _MINUS, max_states)


def concat(parts: list[ByteDFA], *, max_states: int | None = None, timeout: float | None = None) -> ByteDFA:
    """The concatenation of the automata's languages, in order."""
    from corral.compiler.earley_tables import dfa_into_nfa

    nfa = ByteNFA()
    entry = nfa.new_state()
    cur = entry
    for d in parts:
        s, f = dfa_into_nfa(nfa, d)
        nfa.eps[cur].append(s)
        cur = f
    return minimize(determinize(nfa, entry, cur, max_states=max_states, timeout=timeout))
