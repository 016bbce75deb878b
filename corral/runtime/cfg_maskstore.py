"""Token masks for context-free grammars, computed while generating and cached per grammar.

For a chart set ``E`` the allowed tokens are found in three layers:

1. **Inside a terminal (context-independent, per automaton state).** For each state ``g`` some
   scanning item of ``E`` is at, every token the terminal's automaton reads from ``g`` without
   dying is allowed, whatever the stack below: the item survives and, the grammar being
   productive, can still finish. One numba pass over the vocabulary per state, cached per state
   and shared by every sequence (and, since terminal automata of equal grammars are equal, by
   every position with that state).
2. **Crossing a terminal's end (context-dependent candidates).** A token can also finish the
   terminal part-way (the automaton accepts after ``k < len`` bytes) and go on in whatever follows.
   The same pass keeps such tokens only when their remainder could start with a terminal from
   FOLLOW(T) (it is a prefix of one, or has one as a prefix): an over-approximation computed per
   terminal, so the candidates are few (for a JSON string: the tokens like ``",`` ``"}`` ``":``).
   The followers' automata are run side by side (only those that can read the remainder's first
   byte), never determinised into one union automaton: that subset construction, in Python, was
   the slowest step of big schemas (seconds for one mask; see ``docs/performance.md``).
3. **Exact check of the candidates**: each candidate's rest is followed into the set reached when
   its terminal ends, and from there through further terminal ends, until some terminal holds it
   to the end or it dies. The sets after terminal ends are Earley closures over array-encoded
   chart sets, in numba (:mod:`corral.runtime.earley_closure`); one set per (set, group) is
   shared by every candidate leaving there.

Layers 1 and 2 of a state depend only on what the automaton can do from it and on the follow
filter, so they are also kept tokenizer-wide, keyed by that content (:class:`SharedStates`): the
string bodies, numbers and whitespace of every grammar of one vocabulary share their scans. And
since a token's layers depend only on the state its first byte leads to, a wide state that reads
all but a few bytes as another does takes that state's layers and walks only the tokens starting
with those bytes (:meth:`CFGMaskStore._derive`).

Finished masks are cached by the set's signature (equal signatures, equal futures; see
:mod:`corral.runtime.earley`), in an LRU bounded in bytes. Both caches report their size.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from corral.compiler.automaton import ByteDFA, byte_partition, frozen, write_shifted
from corral.compiler.earley_tables import MAX_FILTER_STATES, EarleyTables, union_head
from corral.compiler.maskstore import DEFAULT_CFG_MASK_CACHE_BYTES, TokenTrie, n_words, token_trie, token_tries_by_length
from corral.compiler.regex import RegexLimits
from corral.compiler.vocabulary import Vocabulary
from corral.runtime.earley import ESet, Recognizer
from corral.runtime.earley_closure import (
    ClosureTables,
    close_set,
    closure_tables,
    encode_chart,
    open_exits,
    or_words,
    remainder_step_sorted,
    resolve_exits,
    sort_by_first_byte,
)

__all__ = ["DEFAULT_CFG_MASK_CACHE_BYTES", "CFGMaskStore", "SharedStates", "bounded_classes", "byte_classes", "follow_passes", "scan_state"]


MAX_FOLLOW_SET_ROWS = 4096  # FOLLOW sets whose filters are bigger than this are filtered by one union head (union_head)
FILTER_ROWS_AT_ONCE = 1 << 16  # a grammar's follower table is made this big at once, if it needs no more
MAX_SHARED_RESIDUAL = 128  # states whose residual automaton is bigger than this get a layered key, or none
SHORT_TOKEN_BYTES = 16  # a layered key covers the tokens up to this long; longer ones are walked per state
MAX_LAYERED_STATES = 4096  # states over all unrolled layers past which a state gets no layered key
MAX_LAYERED_TERMINAL = 1 << 15  # terminals bigger than this give their states no layered key (each key allocates two arrays of this many states)
MAX_GROUPED_TERMINAL = 8192  # terminals up to this big group their states by behaviour (bounded_classes: ~1.3 ms per 1,000 states, once)
GROUP_AFTER = 8  # ... once they have made this many layered codes state by state
CONTENT_KEYED_LEVELS = 16  # states with this many crossing candidates key their first levels by them (_level_key)
PER_GROUP_LEVELS = 4096  # states with this many crossing candidates get their first levels per group (see _first_level)
# a first level put together per group with this many candidate pairs computes one group's level
# in a helper thread beside the others (a long string's chunk end: 109k pairs, its next chunk and
# its tail, 10-25 ms a group, the slowest masks of the dev schemas)
PARALLEL_LEVEL_PAIRS = 32768
WIDE_STATE_BYTES = 64  # states reading fewer bytes than this are cheap to walk: no layered key, not derived
MAX_DERIVED_BYTES = 8  # a wide state reading at most this many bytes unlike its most common successor is derived from it


def _coarse(dfa: ByteDFA) -> ByteDFA:
    """``dfa`` itself, or for a big one its two-state superset
    (:func:`~corral.compiler.earley_tables.union_head` of it alone). The follow automaton only
    filters crossing candidates, so a superset is sound; it bounds the memory of the stacked
    filter table."""
    if dfa.n_states <= MAX_FILTER_STATES:
        return dfa
    return union_head([dfa])


def _coarse_states(dfa: ByteDFA) -> int:
    """The number of states of :func:`_coarse` of ``dfa``, without making it."""
    n = int(dfa.trans.shape[0])
    return n if n <= MAX_FILTER_STATES else 2


@njit(cache=True, nogil=True)
def follow_passes(ftrans, facc, fptr, fstarts, flat, a, e):  # type: ignore[no-untyped-def]
    """Whether the bytes ``flat[a:e]`` (``a < e``) pass some follower automaton.

    Plain-Python equivalent (each follower's automaton, trimmed, from its start state ``f0`` in
    the stacked table ``ftrans``; ``fstarts[fptr[b]:fptr[b + 1]]`` lists the starts that can read
    byte ``b`` first)::

        def passes(f0):
            f = f0
            for j in range(a, e):
                f = ftrans[f, flat[j]]
                if f < 0 or facc[f]:
                    break
            return f >= 0  # accepted a prefix, or still alive at the end

        return any(passes(f0) for f0 in fstarts[fptr[flat[a]]:fptr[flat[a] + 1]])

    This is exactly whether the union of the followers passes (it accepts at a position iff one
    of them does, and is alive iff one of them is), without building the union.
    """
    b0 = flat[a]
    for q in range(fptr[b0], fptr[b0 + 1]):
        f = fstarts[q]
        for j in range(a, e):
            f = ftrans[f, flat[j]]
            if f < 0 or facc[f]:
                break
        if f >= 0:
            return True
    return False


@njit(cache=True, nogil=True)
def scan_state(trans, acc, loops, g, ftrans, facc, fptr, fstarts, node_byte, node_depth, node_skip, below, tok_ptr, tok_ids, flat, offsets, max_depth, out, cands, cand_ks):  # type: ignore[no-untyped-def]
    """Layers 1 and 2 for automaton state ``g`` (see the module docstring).

    Sets in ``out`` the bit of each token read entirely inside the terminal; writes to
    ``cands``/``cand_ks`` the pairs (token, k) where the terminal accepts after the token's first
    ``k`` bytes (``0 < k < len``) and some follower automaton does not reject the rest
    (:func:`follow_passes`). Tokens read entirely inside are not listed.
    Returns the number of pairs, or -1 when the buffers are too small.

    Plain-Python equivalent, token by token (``tests/runtime/test_cfg_scan.py`` holds it as the
    oracle)::

        for t, b in enumerate(token_bytes):
            s, pairs = g, []
            for i, byte in enumerate(b):
                s = trans[s, byte]
                if s < 0:
                    break
                if has_follow and acc[s] and i + 1 < len(b) and passes(b[i + 1:]):
                    pairs.append((t, i + 1))
            if s >= 0 and b:
                out[t] = 1          # inside: its crossings are not needed
            else:
                cands += pairs

    The tokens are walked as the vocabulary's byte trie in preorder (``node_*``, ``tok_*``: see
    :class:`~corral.compiler.maskstore.TokenTrie`), so each shared prefix is read once (Llama-3:
    275k trie nodes for 831k token bytes) and a byte the automaton rejects skips its whole
    subtree. The accepting depths of the current path are kept on a stack: a dead subtree lists
    crossing pairs only when its path accepted somewhere above it.

    A subtree the automaton cannot leave is not walked either: when every byte below node ``i``
    (``below[i]``, 256 bits) loops on the state reached at ``i`` (``loops[s]``, its self-loop
    bytes), each token of the subtree ends in that state, so all are inside and none crosses.
    This is what makes a string body cheap: most of the vocabulary lies in subtrees whose bytes
    all loop on it. ``loops`` rows left at zero only turn the shortcut off.
    """
    return _scan_nodes(trans, acc, loops, g, ftrans, facc, fptr, fstarts, node_byte, node_depth, node_skip, below,
                       tok_ptr, tok_ids, flat, offsets, max_depth, out, cands, cand_ks, 0, node_byte.shape[0], 0)


@njit(cache=True, nogil=True)
def rescan_subtrees(trans, acc, loops, g, ftrans, facc, fptr, fstarts, node_byte, node_depth, node_skip, below, tok_ptr, tok_ids, flat, offsets, max_depth, roots, out, cands, cand_ks):  # type: ignore[no-untyped-def]
    """:func:`scan_state` of ``g`` over the subtrees of the trie's first-level nodes ``roots``
    only (the tokens starting with their bytes), after clearing those tokens' bits in ``out``.
    Returns the number of pairs written to ``cands``/``cand_ks``, or -1 when they are too small.
    What a state does on the other tokens, :meth:`CFGMaskStore._derive` takes from a state that
    reads their first bytes alike."""
    nc = 0
    for r in roots:
        end = node_skip[r]
        for q in range(tok_ptr[r], tok_ptr[end]):
            t = tok_ids[q]
            out[t >> 5] &= ~(np.uint32(1) << np.uint32(t & 31))
        nc = _scan_nodes(trans, acc, loops, g, ftrans, facc, fptr, fstarts, node_byte, node_depth, node_skip, below,
                         tok_ptr, tok_ids, flat, offsets, max_depth, out, cands, cand_ks, r, end, nc)
        if nc < 0:
            return -1
    return nc


@njit(cache=True, nogil=True)
def _scan_nodes(trans, acc, loops, g, ftrans, facc, fptr, fstarts, node_byte, node_depth, node_skip, below, tok_ptr, tok_ids, flat, offsets, max_depth, out, cands, cand_ks, i, n, nc):  # type: ignore[no-untyped-def]
    """The walk of :func:`scan_state` over trie nodes ``[i, n)`` (whole subtrees of first-level
    nodes), appending pairs after the first ``nc``; returns the new count, -1 when full."""
    has_follow = fstarts.shape[0] > 0
    stack = np.empty(max_depth + 1, np.int32)  # automaton state after d bytes of the path
    nacc = np.empty(max_depth + 1, np.int32)  # accepting depths among 1..d on the path
    accd = np.empty(max_depth + 1, np.int32)  # those depths, shallowest first
    stack[0] = g
    nacc[0] = 0
    while i < n:
        d = node_depth[i]
        s = trans[stack[d - 1], node_byte[i]]
        if s < 0:
            skip = node_skip[i]
            m = nacc[d - 1]
            if has_follow and m > 0:
                for q in range(tok_ptr[i], tok_ptr[skip]):
                    t = tok_ids[q]
                    a = offsets[t]
                    e = offsets[t + 1]
                    for r in range(m):
                        k = accd[r]
                        if follow_passes(ftrans, facc, fptr, fstarts, flat, a + k, e):
                            if nc >= cands.shape[0]:
                                return -1
                            cands[nc] = t
                            cand_ks[nc] = k
                            nc += 1
            i = skip
            continue
        nxt = node_skip[i]
        if nxt > i + 1 and (loops[s, 0] | loops[s, 1] | loops[s, 2] | loops[s, 3]) != 0:
            if ((below[i, 0] & ~loops[s, 0]) | (below[i, 1] & ~loops[s, 1])
                    | (below[i, 2] & ~loops[s, 2]) | (below[i, 3] & ~loops[s, 3])) == 0:
                for q in range(tok_ptr[i], tok_ptr[nxt]):
                    t = tok_ids[q]
                    out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
                i = nxt
                continue
        stack[d] = s
        if acc[s]:
            accd[nacc[d - 1]] = d
            nacc[d] = nacc[d - 1] + 1
        else:
            nacc[d] = nacc[d - 1]
        for q in range(tok_ptr[i], tok_ptr[i + 1]):
            t = tok_ids[q]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        i += 1
    return nc


@njit(cache=True, nogil=True)
def subtree_bytes(node_byte, node_skip):  # type: ignore[no-untyped-def]
    """Per trie node, the set of bytes on the edges strictly below it (``uint64[n_nodes, 4]``, bit
    ``b`` of the 256): a child's byte and everything below the child, children being ``i + 1``,
    then each one's ``node_skip``, up to ``node_skip[i]``."""
    n = node_byte.shape[0]
    below = np.zeros((n, 4), dtype=np.uint64)
    for i in range(n - 1, -1, -1):
        c = i + 1
        end = node_skip[i]
        while c < end:
            b = node_byte[c]
            below[i, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
            for w in range(4):
                below[i, w] |= below[c, w]
            c = node_skip[c]
    return below


@njit(cache=True, nogil=True)
def fill_self_loops(trans, lo, hi, loops):  # type: ignore[no-untyped-def]
    """Set in ``loops[s]`` (``uint64[n, 4]``, bit ``b`` of 256) the bytes that lead state ``s``
    back to itself, for the states ``lo`` to ``hi`` (one terminal's, filled once: numpy's compare,
    pack and copy cost ~30 µs for a 145-state key terminal, about 1% of schema mask time)."""
    for s in range(lo, hi):
        for b in range(256):
            if trans[s, b] == s:
                loops[s, b >> 6] |= np.uint64(1) << np.uint64(b & 63)


@njit(cache=True, nogil=True)
def residual_code(trans, acc, lo, hi, g, limit):  # type: ignore[no-untyped-def]
    """The automaton from state ``g`` on, relabelled canonically and written as ``int32`` runs.

    States are numbered breadth first from ``g`` (bytes in order), so the labels depend only on
    the byte strings that reach each state: two states with equal codes read every byte string
    alike. The code is the number of states, then per state its acceptance, its number of runs
    and each run of equal targets as (first byte, target label or -1). The states reachable from
    ``g`` lie in ``[lo, hi)`` (its terminal); more than ``limit`` of them give an empty code.
    """
    idx = np.full(hi - lo, -1, np.int32)
    queue = np.empty(min(hi - lo, limit), np.int32)
    idx[g - lo] = 0
    queue[0] = g
    m = 1
    head = 0
    while head < m:
        s = queue[head]
        head += 1
        for b in range(256):
            t = trans[s, b]
            if t >= 0 and idx[t - lo] < 0:
                if m >= limit:
                    return np.empty(0, np.int32)
                idx[t - lo] = m
                queue[m] = t
                m += 1
    code = np.empty(1 + m * (2 + 2 * 256), np.int32)
    code[0] = m
    n = 1
    for r in range(m):
        s = queue[r]
        code[n] = 1 if acc[s] else 0
        at = n + 1
        n += 2
        runs = 0
        prev = -2
        for b in range(256):
            t = trans[s, b]
            lab = idx[t - lo] if t >= 0 else -1
            if lab != prev:
                code[n] = b
                code[n + 1] = lab
                n += 2
                runs += 1
                prev = lab
        code[at] = runs
    return code[:n].copy()


def _digest(code: np.ndarray | bytes, *more: bytes) -> bytes:
    h = hashlib.blake2b(code.tobytes() if isinstance(code, np.ndarray) else code, digest_size=20)
    for m in more:
        h.update(m)
    return h.digest()


@njit(cache=True, nogil=True)
def derivable(trans, g, wide, most):  # type: ignore[no-untyped-def]
    """``(h, bytes)`` when state ``g`` has at least ``wide`` live bytes and reads all but at most
    ``most`` bytes (``bytes``, ascending) as its most common successor ``h`` (the smallest of
    the most common) does; ``(-1, [])`` otherwise (see :meth:`CFGMaskStore._base_of`)."""
    none = np.empty(0, np.int64)
    targets = np.empty(256, np.int64)
    n = 0
    for b in range(256):
        t = trans[g, b]
        if t >= 0:
            targets[n] = t
            n += 1
    if n < wide:
        return -1, none
    live = np.sort(targets[:n])
    h = -1
    best = 0
    i = 0
    while i < n:
        j = i
        while j < n and live[j] == live[i]:
            j += 1
        if j - i > best:
            best = j - i
            h = live[i]
        i = j
    if h == g:
        return -1, none
    differ = np.empty(256, np.int64)
    k = 0
    for b in range(256):
        if trans[h, b] != trans[g, b]:
            if k == most:
                return -1, none
            differ[k] = b
            k += 1
    return h, differ[:k].copy()


@njit(cache=True, nogil=True)
def layered_code(ctrans, lo, acc, g, depth, limit):  # type: ignore[no-untyped-def]
    """What the automaton does from state ``g`` on byte strings of at most ``depth`` bytes, as an
    ``int64`` code; empty past ``limit`` states.

    ``ctrans`` is the terminal's transition table with one column per byte class (bytes every
    state of the terminal treats alike; the caller adds the class partition to the key), its row
    ``i`` for state ``lo + i``. The automaton is unrolled into layers (layer ``k``: the states
    ``k`` bytes from ``g``); then, from the last layer up, the states of a layer are merged when
    they accept alike and go to merged states alike. The code lists, per layer, its merged states'
    rows (acceptance, then per byte class the merged successor or -1), so two states with equal
    codes are dead, alive and accepting alike after every string of at most ``depth`` bytes: all
    that a walk of tokens that short sees. Rows are numbered in the order of a hash of their
    content, so equal behaviours give equal codes (but for hash collisions, which only cost a
    cache miss: the code itself holds the rows). A length counter's states far from the bound
    merge into one code.
    """
    n_loc = ctrans.shape[0]
    ncls = ctrans.shape[1]
    empty = np.empty(0, np.int64)
    stamp = np.full(n_loc, -1, np.int64)
    pos = np.empty(n_loc, np.int64)
    states = np.empty(limit, np.int64)
    ptr = np.zeros(depth + 2, np.int64)
    states[0] = g
    ptr[1] = 1
    total = 1
    nl = 1
    for k in range(depth):
        start = total
        for i in range(ptr[k], ptr[k + 1]):
            s = states[i]
            for c in range(ncls):
                t = ctrans[s - lo, c]
                if t >= 0 and stamp[t - lo] != k + 1:
                    if total >= limit:
                        return empty
                    stamp[t - lo] = k + 1
                    states[total] = t
                    total += 1
        if total == start:
            break
        ptr[k + 2] = total
        nl += 1
    cls = np.empty(total, np.int64)
    hashes = np.empty(total, np.uint64)
    code = np.empty(3 + nl + total * (1 + ncls), np.int64)
    code[0] = depth
    code[1] = nl
    code[2] = ncls
    n = 3
    for k in range(nl - 1, -1, -1):
        a = ptr[k]
        b = ptr[k + 1]
        if k + 1 < nl:
            for i in range(ptr[k + 1], ptr[k + 2]):
                pos[states[i] - lo] = i
        for i in range(a, b):
            s = states[i]
            h = np.uint64(1469598103934665603) ^ np.uint64(1 if acc[s] else 0)
            for c in range(ncls):
                v = -1
                if k + 1 < nl:  # (no next layer: past the depth, or every byte dies)
                    t = ctrans[s - lo, c]
                    if t >= 0:
                        v = cls[pos[t - lo]]
                h = (h ^ np.uint64(v + 3)) * np.uint64(1099511628211)
                h ^= h >> np.uint64(29)
            hashes[i] = h
        order = np.argsort(hashes[a:b], kind="mergesort") + a
        # merge equal rows: walk in hash order; a row equal to the previous class's row joins it
        m = 0
        first = np.empty(b - a, np.int64)  # representative node of each class
        for r in range(b - a):
            i = order[r]
            same = -1
            # rows with the same hash sit together: compare with the classes of that run
            q = m - 1
            while q >= 0 and hashes[first[q]] == hashes[i]:
                j = first[q]
                eq = acc[states[i]] == acc[states[j]]
                if eq and k + 1 < nl:
                    for c in range(ncls):
                        ti = ctrans[states[i] - lo, c]
                        tj = ctrans[states[j] - lo, c]
                        vi = cls[pos[ti - lo]] if ti >= 0 else -1
                        vj = cls[pos[tj - lo]] if tj >= 0 else -1
                        if vi != vj:
                            eq = False
                            break
                if eq:
                    same = q
                    break
                q -= 1
            if same < 0:
                first[m] = i
                same = m
                m += 1
            cls[i] = same
        # this layer's rows, in class order
        code[n] = m
        n += 1
        for q in range(m):
            j = first[q]
            code[n] = 1 if acc[states[j]] else 0
            n += 1
            for c in range(ncls):
                v = -1
                if k + 1 < nl:
                    t = ctrans[states[j] - lo, c]
                    if t >= 0:
                        v = cls[pos[t - lo]]
                code[n] = v
                n += 1
    return code[:n].copy()


@njit(cache=True, nogil=True)
def bounded_classes(ctrans, lo, acc, depth):  # type: ignore[no-untyped-def]
    """Per state of one terminal (row ``i`` of ``ctrans``, as in :func:`layered_code`: state
    ``lo + i``), its class after ``depth`` rounds of Moore's refinement: two states share a class
    exactly when they are dead, alive and accepting alike after every string of at most ``depth``
    bytes, so that they have equal layered codes (but for :func:`layered_code`'s hash collisions,
    which give two codes for one behaviour: a cache miss). Class ids mean nothing outside this
    call; rounds stop early once no class splits.

    Each round gives a state the signature (its class, its successors' classes per byte class,
    -1 for none) and numbers the distinct signatures through an open-addressing table of their
    hashes, comparing rows exactly where hashes meet (sorting the hashes instead cost twice as
    much)."""
    n = ctrans.shape[0]
    m = ctrans.shape[1]
    cls = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        cls[i] = 1 if acc[lo + i] else 0
    if n:
        k = 1 + int(cls.max()) - int(cls.min())
    size = 16
    while size < 2 * n:
        size *= 2
    slot_h = np.empty(size, np.uint64)
    slot_c = np.empty(size, np.int64)  # class numbered in the slot, -1 empty
    nxt = np.empty(n, np.int64)
    reps = np.empty(n, np.int64)  # a state of each new class
    for _ in range(depth):
        slot_c[:] = -1
        nk = 0
        for i in range(n):
            x = (np.uint64(1469598103934665603) ^ np.uint64(cls[i] + 1)) * np.uint64(1099511628211)
            for c in range(m):
                t = ctrans[i, c]
                v = cls[t - lo] if t >= 0 else -1
                x = (x ^ np.uint64(v + 2)) * np.uint64(1099511628211)
                x ^= x >> np.uint64(31)
            q = np.int64(x & np.uint64(size - 1))
            same = -1
            while slot_c[q] >= 0:
                if slot_h[q] == x:
                    j = reps[slot_c[q]]
                    eq = cls[i] == cls[j]
                    if eq:
                        for c in range(m):
                            ti = ctrans[i, c]
                            tj = ctrans[j, c]
                            vi = cls[ti - lo] if ti >= 0 else -1
                            vj = cls[tj - lo] if tj >= 0 else -1
                            if vi != vj:
                                eq = False
                                break
                    if eq:
                        same = slot_c[q]
                        break
                q = (q + 1) & (size - 1)
            if same < 0:
                slot_h[q] = x
                slot_c[q] = nk
                reps[nk] = i
                same = nk
                nk += 1
            nxt[i] = same
        if nk == k:  # a refinement with as many classes is the same partition: stable
            break
        cls[:] = nxt
        k = nk
    return cls


def byte_classes(dfa: ByteDFA) -> tuple[bytes, np.ndarray]:
    """The bytes that every state of ``dfa`` reads alike, as classes numbered by their first
    byte (:func:`~corral.compiler.automaton.byte_partition`): (the class of each byte as
    ``int16`` bytes, the classes' first bytes, ascending)."""
    first, byte_class = byte_partition(dfa)
    return byte_class.astype(np.int16).tobytes(), first


class SharedStates:
    """Per-state layers kept for every grammar of one vocabulary, keyed by content (see the
    module docstring): what the automaton does from the state (:func:`residual_code`) and the
    followers' automata. An LRU bounded in bytes, thread-safe; the entries are read-only.
    ``CFGMaskStore`` gets it from ``vocab.derived``."""

    def __init__(self, max_bytes: int = DEFAULT_CFG_MASK_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, _StateEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: bytes) -> _StateEntry | None:
        """The layers stored under ``key``, or ``None``."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return hit

    def put(self, key: bytes, entry: _StateEntry) -> None:
        """Store ``entry`` under ``key`` (the least recently used entries go past the budget)."""
        with self._lock:
            if key not in self._entries:
                self._bytes = _put_bounded(self._entries, key, entry, self._bytes, self.max_bytes)

    @property
    def memory_bytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class _ScanInput(NamedTuple):
    """What :meth:`CFGMaskStore._scan` or :meth:`CFGMaskStore._derive` needs to compute one
    state's layers outside the lock (made by :meth:`CFGMaskStore._prepare` under it)."""

    follow: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # the terminal's follow filter
    key: bytes | None = None  # the tokenizer-wide key of the layers, when they have one
    layered: bool = False  # the key covers the tokens of at most SHORT_TOKEN_BYTES bytes only
    base: int = -1  # derive the layers from this state's (see CFGMaskStore._derive)
    roots: np.ndarray | None = None  # then: the first-level trie nodes of the bytes read unlike the base
    base_entry: _StateEntry | None = None  # the base's layers, when they were cached at planning


class _Facts:
    """What the mask store works out about one read-only automaton, for every grammar that uses
    it (:func:`_facts_of`): per state (numbered in the automaton), the content part of its
    tokenizer-wide key (:meth:`CFGMaskStore._content`); its self-loop rows; as a follow filter,
    its content key (:meth:`CFGMaskStore._filter_key`); its byte classes (:func:`byte_classes`);
    its states' classes on short strings with their layered keys (:class:`_Bounded`)."""

    __slots__ = ("dfa", "states", "loops", "filter_key", "classes", "bounded")

    def __init__(self, dfa: ByteDFA) -> None:
        self.dfa = dfa  # held: its id stays its own while it is kept here
        self.states: dict[int, tuple[bytes, bytes] | None] = {}
        self.loops: np.ndarray | None = None
        self.filter_key: bytes | None = None
        self.classes: tuple[bytes, np.ndarray] | None = None  # (partition, first bytes): byte_classes
        self.bounded: _Bounded | None = None  # its states' classes on short strings, for layered keys


class _Bounded:
    """A terminal's states grouped by what they do on strings of at most ``SHORT_TOKEN_BYTES``
    bytes (:func:`bounded_classes`), with the layered key content found so far per group: a
    length counter's states far from its bound are one group, whose :func:`layered_code` (a few
    hundred microseconds for a JSON string counter) is then made once, not once per state. The
    groups (~1.3 ms per 1,000 states) are found once the terminal has made ``GROUP_AFTER``
    layered codes state by state (``made``): most terminals never need that many."""

    __slots__ = ("of_state", "content", "made")

    def __init__(self) -> None:
        self.of_state: np.ndarray | None = None
        self.content: dict[int, tuple[bytes, bytes] | None] = {}
        self.made = 0


_UNSEEN: Any = object()
_FACTS: OrderedDict[int, _Facts] = OrderedDict()
_FACTS_LOCK = threading.Lock()
MAX_FACTS = 4096  # automata whose facts are kept (least recently used go first)


def _immutable(a: np.ndarray) -> bool:
    """Whether nothing can write ``a``'s elements: it is read-only, and so is the array it views,
    if any (:func:`~corral.compiler.automaton.frozen` makes read-only views of writable tables;
    arrays made in numba are based on its memory record, which no other array shares)."""
    if a.flags.writeable:
        return False
    base = a.base
    return not isinstance(base, np.ndarray) or not base.flags.writeable


def _facts_of(dfa: ByteDFA) -> _Facts | None:
    """The facts kept for ``dfa`` when its tables are immutable (:func:`_immutable`), else ``None``.

    The terminals and filters of JSON schemas are such automata, shared by the grammars compiled
    one after another in a layout (:func:`corral.compiler.json_schema.lower._shared_automata`,
    the string and format automata): a new grammar's states then find their keys, the expensive
    part of a new state that another grammar has scanned already (~20 us of residual code and
    digest), and their terminal's self-loop rows without recomputing them. Kept by identity,
    holding the automaton, so an id is never another automaton's; its content cannot change.
    Exact: every fact is a function of the automaton's content alone (states numbered in it,
    which the stacked table only shifts)."""
    if not (_immutable(dfa.trans) and _immutable(dfa.accepting)):
        return None
    key = id(dfa)
    with _FACTS_LOCK:
        facts = _FACTS.get(key)  # (it holds its automaton: an id kept here is never another's)
        if facts is not None:
            _FACTS.move_to_end(key)
            return facts
        facts = _FACTS[key] = _Facts(dfa)
        while len(_FACTS) > MAX_FACTS:
            _FACTS.popitem(last=False)
        return facts


def _roots_of(trie: TokenTrie, vocab: Vocabulary) -> np.ndarray:
    """Per byte, the trie's first-level node of the tokens starting with it (-1: none does)."""
    roots = np.full(256, -1, dtype=np.int64)
    first = np.flatnonzero(trie.node_depth == 1)
    roots[trie.node_byte[first]] = first
    return roots


def _below_of(trie: TokenTrie, vocab: Vocabulary) -> np.ndarray:
    """:func:`subtree_bytes` of ``trie`` (built once per vocabulary through ``vocab.derived``)."""
    return subtree_bytes(trie.node_byte, trie.node_skip)  # type: ignore[no-any-return]


def _entry(inside: np.ndarray, cands: np.ndarray, ks: np.ndarray, flat: np.ndarray, offsets: np.ndarray) -> _StateEntry:
    """A state's layers, its crossing candidates sorted by the first byte after their crossing
    point (:func:`~corral.runtime.earley_closure.remainder_step_sorted` then skips the pairs of
    the bytes no group reads)."""
    st, sk, ptr = sort_by_first_byte(cands, ks, flat, offsets)
    return _StateEntry(inside, st, sk, ptr)


def _merge(a: _StateEntry, b: _StateEntry, flat: np.ndarray, offsets: np.ndarray) -> _StateEntry:
    """The layers of two disjoint sets of tokens together."""
    if not b.candidates.shape[0] and not b.inside.any():
        return a
    inside = a.inside | b.inside
    inside.setflags(write=False)
    return _entry(inside, np.concatenate([a.candidates, b.candidates]), np.concatenate([a.ks, b.ks]), flat, offsets)


@dataclass(frozen=True)
class _StateEntry:
    inside: np.ndarray
    candidates: np.ndarray
    ks: np.ndarray
    b0_ptr: np.ndarray  # candidates[b0_ptr[b]:b0_ptr[b + 1]] go on with byte b after their crossing point
    content: bytes | None = None  # a digest of (candidates, ks), made when first needed (_level_key)

    @property
    def nbytes(self) -> int:
        return int(self.inside.nbytes + self.candidates.nbytes + self.ks.nbytes + self.b0_ptr.nbytes)


class CFGMaskStore:
    """Masks for chart sets of one grammar over one vocabulary (see the module docstring).

    Parameters
    ----------
    tables, recognizer:
        The grammar.
    vocab:
        The vocabulary.
    max_bytes:
        Memory budget of each of the two caches (per-state layers, finished masks).
    limits:
        Kept for callers; the follow filters no longer determinise (no state limit applies).
    """

    def __init__(
        self,
        tables: EarleyTables,
        recognizer: Recognizer,
        vocab: Vocabulary,
        *,
        max_bytes: int = DEFAULT_CFG_MASK_CACHE_BYTES,
        limits: RegexLimits = RegexLimits(),
    ) -> None:
        self.tables = tables
        self.recognizer = recognizer
        self.vocab = vocab
        self.max_bytes = max_bytes
        self.limits = limits
        self.n_words = n_words(vocab.size)
        trie = token_trie(vocab)
        self._trie = trie
        self._below = vocab.derived("cfg_maskstore.below", partial(_below_of, trie))
        self._roots = vocab.derived("cfg_maskstore.roots", partial(_roots_of, trie))
        # the tokens in two tries (up to SHORT_TOKEN_BYTES, longer), for states with a layered key
        self._parts: list[tuple[TokenTrie, np.ndarray]] = [
            (part, vocab.derived(f"cfg_maskstore.below{SHORT_TOKEN_BYTES}.{i}", partial(_below_of, part)))
            for i, part in enumerate(token_tries_by_length(vocab, SHORT_TOKEN_BYTES))
        ]
        self._byte_classes: dict[int, tuple[bytes, np.ndarray] | None] = {}
        self._bounded: dict[int, _Bounded] = {}  # (for automata without facts)
        # per automaton state, its self-loop bytes: filled a terminal at a time, on its first scan
        self._loops = np.zeros((tables.n_states, 4), dtype=np.uint64)
        # per-state layers of every grammar of this vocabulary, by content
        self._shared: SharedStates = vocab.derived("cfg_maskstore.shared", lambda v: SharedStates())
        self._trans_ro = frozen(tables.trans)  # (the kernels' one version: read-only)
        self._acc_ro = frozen(tables.accepting)
        self._follow_key: dict[int, bytes] = {}
        # per terminal, once its first state is prepared (its self-loop rows filled then): its
        # state range and facts
        self._term_setup: dict[int, tuple[int, int, _Facts | None]] = {}
        self._set_keys: dict[tuple[int, ...], bytes] = {}  # the same, per FOLLOW set
        self._filter_keys: dict[int, bytes] = {}
        self._flat = trie.flat
        self._offsets = trie.offsets
        self._token_bytes = vocab.token_bytes
        # per terminal, the bytes that can start a terminal of its FOLLOW set
        starts = tables.trans[np.asarray(tables.term_start, dtype=np.int64)] >= 0  # [terminal, byte]
        self._follow_first = np.zeros((len(tables.terminals), 256), dtype=np.bool_)
        having = [t for t, fol in enumerate(tables.follow) if fol]
        if having:  # one reduction over every terminal's followers (a numpy call per terminal was ~8 us)
            followers = [sorted(tables.follow[t]) for t in having]
            cuts = np.cumsum([0] + [len(f) for f in followers[:-1]])
            rows = starts[np.fromiter((u for f in followers for u in f), dtype=np.int64)].view(np.uint8)
            self._follow_first[having] = np.maximum.reduceat(rows, cuts, axis=0).view(np.bool_)
        self._eos = [t for t in vocab.eos_token_ids if 0 <= t < vocab.size]
        self._buffers = threading.local()  # per thread: the candidate buffers of scan_state
        # the follow filters: every follower automaton used so far, stacked in one table
        self._follow: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._follow_sets: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._fstart: dict[int, int] = {}  # a follower's (or a union head's, by negative id) start row
        self._union_keys: dict[tuple[int, ...], bytes] = {}  # FOLLOW sets filtered by one union head: its content key
        self._ftrans = np.full((64, 256), -1, dtype=np.int32)
        self._facc = np.zeros(64, dtype=np.bool_)
        self._fn = 0
        self._filter_rows: int | None = None  # rows of every terminal's filter (_coarse form)
        self._states: OrderedDict[int, _StateEntry] = OrderedDict()
        self._state_bytes = 0
        self._masks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._level1: OrderedDict[tuple[int, bytes], tuple[np.ndarray, ...]] = OrderedDict()
        # the grammar's productions as arrays, for layer 3, with the kernels' arguments from them
        self._closure: tuple[ClosureTables, tuple[np.ndarray | int, ...]] | None = None
        self._arenas = threading.local()  # per thread: layer 3's arena, reused; doubled when a mask needs more
        self._level_bytes = 0
        self._mask_bytes = 0
        self.zeros = np.zeros(self.n_words, dtype=np.uint32)
        self.zeros.setflags(write=False)
        self.hits = 0
        self.misses = 0
        self.state_scans = 0  # per-state layers computed (each one numba pass over the vocabulary)
        self.shared_states = 0  # per-state layers found in the tokenizer-wide cache instead
        self.derived_states = 0  # per-state layers derived from another state's (see _derive)
        self._lock = threading.RLock()

    # -- per-terminal follow automata -------------------------------------------------------------
    def _follow_dfa(self, term: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The follow filter of terminal ``term`` for :func:`follow_passes`: the stacked table of
        follower automata, its acceptance, and the followers' start states by first byte.

        Each follower's automaton (:func:`_coarse` of its filter) is stacked once per grammar, on
        first use; a terminal adds only its index of start states (equal FOLLOW sets share one).
        Called under the lock.
        """
        hit = self._follow.get(term)
        if hit is not None:
            return hit
        tb = self.tables
        followers = tuple(sorted(tb.follow[term]))
        entry = self._follow_sets.get(followers)
        if entry is None:
            # A nullable follower's empty string adds nothing: FOLLOW already holds what comes
            # after it, and the kernel only looks at acceptance after at least one byte.
            union = self._union_of(followers)
            if union is not None:  # one filter for the whole set: stacked under id -1 - (its index)
                uid = -1 - len(self._union_keys)
                self._union_keys[followers] = b"union" + union.trans.tobytes() + union.accepting.tobytes()
                self._reserve(int(union.n_states))
                self._stack_filter(uid, union)
                starts = np.array([self._fstart[uid]], dtype=np.int32)
            else:
                new = {f: _coarse(tb.term_filters[f]) for f in followers if f not in self._fstart}
                self._reserve(sum(int(d.n_states) for d in new.values()))  # grown once for them all
                for f, d in new.items():
                    self._stack_filter(f, d)
                starts = np.array([self._fstart[f] for f in followers], dtype=np.int32)
            ftrans = self._ftrans[: self._fn]
            if starts.shape[0]:
                can = ftrans[starts] >= 0  # [follower, first byte]
                byte_of, who = np.nonzero(can.T)  # sorted by byte
                fstarts = starts[who].astype(np.int32)
                fptr = np.searchsorted(byte_of, np.arange(257)).astype(np.int64)
            else:
                fstarts = np.zeros(0, dtype=np.int32)
                fptr = np.zeros(257, dtype=np.int64)
            entry = (fptr, fstarts)
            self._follow_sets[followers] = entry
        out = (self._ftrans[: self._fn], self._facc[: self._fn], entry[0], entry[1])
        self._follow[term] = out
        return out

    def _union_of(self, followers: tuple[int, ...]) -> ByteDFA | None:
        """The :func:`~corral.compiler.earley_tables.union_head` of a FOLLOW set whose filters have
        more than :data:`MAX_FOLLOW_SET_ROWS` rows; ``None`` for a smaller set (each of its
        followers is its own filter: SQL's keywords, a JSON object's few keys)."""
        filters = self.tables.term_filters
        if sum(_coarse_states(filters[f]) for f in followers) <= MAX_FOLLOW_SET_ROWS:
            return None
        return union_head([filters[f] for f in followers])

    def _stack_filter(self, f: int, d: ByteDFA) -> None:
        """Append terminal ``f``'s filter automaton ``d`` (its :func:`_coarse` form) to the stacked
        table, in room made by :meth:`_reserve`; ``_fstart[f]`` is then its start state's row."""
        base = self._fn
        need = base + int(d.n_states)
        write_shifted(self._ftrans, base, frozen(d.trans))
        self._facc[base:need] = np.asarray(d.accepting, dtype=np.bool_)
        self._fn = need
        self._fstart[f] = base + int(d.start)

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows in the stacked follower table. The first growth makes room
        for every terminal's filter at once when that is at most :data:`FILTER_ROWS_AT_ONCE` rows
        (untouched rows cost no memory), so the table is never copied again; larger grammars grow
        it at least twofold. (A copy of a follower table of 18k rows took 50+ ms of detekt's
        second mask; growing per follower copied the table 9 times on a first mask.)"""
        need = self._fn + extra
        if need > self._ftrans.shape[0]:
            if self._filter_rows is None:
                self._filter_rows = sum(_coarse_states(d) for d in self.tables.term_filters)
            every = self._filter_rows if self._filter_rows <= FILTER_ROWS_AT_ONCE else 0
            cap = max(need, every, 2 * self._ftrans.shape[0])
            grown = np.empty((cap, 256), dtype=np.int32)
            grown[: self._fn] = self._ftrans[: self._fn]
            acc = np.zeros(cap, dtype=np.bool_)
            acc[: self._fn] = self._facc[: self._fn]
            self._ftrans, self._facc = grown, acc

    def _state(self, g: int) -> _StateEntry:
        """The layers of state ``g``, computed on a miss (under the lock)."""
        hit = self._states.get(g)
        if hit is not None:
            self._states.move_to_end(g)
            return hit
        for h, e, how in self._run(self._plan([g])):  # g last, after its base
            hit = self._put_state(h, e, how)
        assert hit is not None
        return hit

    def _plan(self, states: list[int]) -> list[tuple[int, _ScanInput]]:
        """The states whose layers are to be computed for ``states`` (none of them cached), each
        with what its computation reads; a derived state's base comes before it when the base is
        not cached either. Under the lock."""
        plan: list[tuple[int, _ScanInput]] = []
        planned: set[int] = set()
        for g in states:
            if g in planned:
                continue
            p = self._prepare(g)
            if p.base >= 0 and p.base_entry is None and p.base not in planned:
                plan.append((p.base, self._prepare(p.base, derive=False)))
                planned.add(p.base)
            plan.append((g, p))
            planned.add(g)
        return plan

    def _run(self, plan: list[tuple[int, _ScanInput]]) -> list[tuple[int, _StateEntry, str]]:
        """The layers of a :meth:`_plan`'s states, in its order, each with how they were found
        (``"scanned"``, ``"shared"``, ``"derived"``). Touches none of the store's caches, so it
        runs outside the lock."""
        done: dict[int, _StateEntry] = {}
        out: list[tuple[int, _StateEntry, str]] = []
        for g, p in plan:
            if p.base >= 0:
                e, how = self._derive(g, p, p.base_entry if p.base_entry is not None else done[p.base]), "derived"
            else:
                e, scanned = self._scan(g, p)
                how = "scanned" if scanned else "shared"
            done[g] = e
            out.append((g, e, how))
        return out

    def _prepare(self, g: int, derive: bool = True) -> _ScanInput:
        """What a scan of state ``g`` reads besides the grammar: its terminal's follow filter
        and self-loop rows (filled here); the tokenizer-wide key of its layers, ``None`` when it
        has none; and whether that key is layered (it covers the tokens of at most
        ``SHORT_TOKEN_BYTES`` bytes: :func:`layered_code`) rather than whole (its residual
        automaton: :func:`residual_code`). A layered key is made only for wide states whose
        residual is too big, length counters mostly. Under the lock.

        With ``derive``, a wide state that reads all but a few bytes as its most common successor
        does gets that successor as its base instead (:meth:`_derive`), and no key."""
        tb = self.tables
        term = int(tb.term_of_state[g])
        known = self._term_setup.get(term)
        if known is None:  # the terminal's first state here
            lo, hi = self._term_range(term)
            known = self._term_setup[term] = (lo, hi, _facts_of(tb.term_dfas[term]))
            self._fill_loops(*known)
        lo, hi, facts = known
        follow = self._follow_dfa(term)
        if derive:
            got = self._base_of(g)
            if got is not None:
                return _ScanInput(follow, base=got[0], roots=got[1], base_entry=self._states.get(got[0]))
        fkey = self._follow_key.get(term)
        if fkey is None:
            followers = tuple(sorted(tb.follow[term]))
            fkey = self._union_keys.get(followers)  # the set's union head, when it is the filter
            if fkey is None:
                fkey = self._set_keys.get(followers)  # (an object's key terminals share one FOLLOW set)
                if fkey is None:
                    fkey = self._set_keys[followers] = b"".join(sorted({self._filter_key(f) for f in followers}))
            self._follow_key[term] = fkey
        content = facts.states.get(g - lo, _UNSEEN) if facts is not None else _UNSEEN
        if content is _UNSEEN:
            content = self._content(term, g, lo, hi)
            if facts is not None:
                facts.states[g - lo] = content
        if content is None:
            return _ScanInput(follow)
        kind, digest = content
        return _ScanInput(follow, _digest(digest, kind, fkey), kind == b"short")

    def _content(self, term: int, g: int, lo: int, hi: int) -> tuple[bytes, bytes] | None:
        """What state ``g`` (of terminal ``term``, states ``[lo, hi)``) reads, as the kind of its
        key and a digest of it: ``b"whole"`` and its residual automaton (:func:`residual_code`),
        or ``b"short"`` and its layered code with the terminal's byte classes (wide states with
        too big a residual); ``None`` when it gets no key. A function of the terminal's own
        automaton and ``g``'s place in it (what :func:`_facts_of` keeps). A layered code is made
        once per group of states that behave alike on strings of that length (:class:`_Bounded`):
        any state of the group describes them all. Under the lock."""
        tb = self.tables
        code = residual_code(self._trans_ro, self._acc_ro, lo, hi, g, MAX_SHARED_RESIDUAL)
        if code.shape[0]:
            return b"whole", _digest(code)
        if int((tb.trans[g] >= 0).sum()) < WIDE_STATE_BYTES:
            return None
        classes = self._classes_of(term)
        if classes is None:
            return None
        partition, ctrans = classes
        bounded = self._bounded_of(term, ctrans, lo) if hi - lo <= MAX_GROUPED_TERMINAL else None
        group = -1
        if bounded is not None and bounded.of_state is not None:
            group = int(bounded.of_state[g - lo])
            got = bounded.content.get(group, _UNSEEN)
            if got is not _UNSEEN:
                return got  # type: ignore[no-any-return]
        layered = layered_code(ctrans, lo, tb.accepting, g, SHORT_TOKEN_BYTES, MAX_LAYERED_STATES)
        got = (b"short", _digest(layered, partition)) if layered.shape[0] else None
        if bounded is not None:
            if group >= 0:
                bounded.content[group] = got
            else:
                bounded.made += 1
        return got

    def _bounded_of(self, term: int, ctrans: np.ndarray, lo: int) -> _Bounded:
        """Terminal ``term``'s :class:`_Bounded`, kept per automaton (:func:`_facts_of`) or, for
        an automaton without facts, in this store; its groups are found here once it has made
        ``GROUP_AFTER`` layered codes. Under the lock."""
        facts = _facts_of(self.tables.term_dfas[term])
        got = facts.bounded if facts is not None else self._bounded.get(term)
        if got is None:
            got = _Bounded()
            if facts is not None:
                facts.bounded = got
            else:
                self._bounded[term] = got
        if got.of_state is None and got.made >= GROUP_AFTER:
            got.of_state = bounded_classes(ctrans, lo, self._acc_ro, SHORT_TOKEN_BYTES)
        return got

    def _base_of(self, g: int) -> tuple[int, np.ndarray] | None:
        """``(h, roots)`` when state ``g`` is wide and reads all but at most
        :data:`MAX_DERIVED_BYTES` bytes as its most common successor ``h`` does: ``roots`` are
        the first-level trie nodes of the bytes read otherwise. A string body whose text is
        still tied to a few spellings (a key that is any string but a few names, a counter's
        early steps) is such a state: its successors are mostly the plain body."""
        h, differ = derivable(self._trans_ro, g, WIDE_STATE_BYTES, MAX_DERIVED_BYTES)
        if h < 0:
            return None
        roots = self._roots[differ]
        return h, roots[roots >= 0]

    def _term_range(self, term: int) -> tuple[int, int]:
        """The global state ids ``[lo, hi)`` of terminal ``term``'s automaton in the stacked table."""
        tb = self.tables
        lo = tb.term_start[term] - int(tb.term_dfas[term].start)
        return lo, lo + int(tb.term_dfas[term].n_states)

    def _classes_of(self, term: int) -> tuple[bytes, np.ndarray] | None:
        """Terminal ``term``'s byte classes (bytes all its states treat alike), numbered by first
        byte, as (the partition's bytes, its rows of the transition table with one column per
        class); ``None`` for terminals too big for layered keys. The partition is kept per
        automaton (:func:`_facts_of`): a length counter's automaton, shared by the grammars of a
        layout, is partitioned once. Under the lock."""
        if term in self._byte_classes:
            return self._byte_classes[term]
        tb = self.tables
        lo, hi = self._term_range(term)
        out: tuple[bytes, np.ndarray] | None = None
        if hi - lo <= MAX_LAYERED_TERMINAL:
            dfa = tb.term_dfas[term]
            facts = _facts_of(dfa)
            got = facts.classes if facts is not None else None
            if got is None:
                got = byte_classes(dfa)
                if facts is not None:
                    facts.classes = got
            partition, first = got
            # (np.take gathers columns ~5x faster than fancy indexing: ~1 ms -> 0.2 ms for a
            # 5,000-state length counter, paid on a step that meets the terminal)
            out = (partition, np.take(tb.trans[lo:hi], first, axis=1))
        self._byte_classes[term] = out
        return out

    def _filter_key(self, f: int) -> bytes:
        """Content key of terminal ``f``'s follow filter automaton (as :func:`_coarse` makes it)."""
        hit = self._filter_keys.get(f)
        if hit is None:
            filt = self.tables.term_filters[f]
            facts = _facts_of(filt)
            hit = facts.filter_key if facts is not None else None
            if hit is None:
                d = _coarse(filt)
                trans = frozen(np.asarray(d.trans, dtype=np.int32))
                code = residual_code(trans, frozen(np.asarray(d.accepting, dtype=np.bool_)), 0, trans.shape[0],
                                     int(d.start), trans.shape[0] + 1)
                hit = _digest(code)
                if facts is not None:
                    facts.filter_key = hit
            self._filter_keys[f] = hit
        return hit

    def _fill_loops(self, lo: int, hi: int, facts: _Facts | None) -> None:
        """Fill the rows ``[lo, hi)`` of a terminal (whose automaton's facts are ``facts``) in the
        self-loop table: once, by :meth:`_prepare` on the terminal's first state (under the lock,
        before its first scan; a scan in another thread that reads rows still at zero only walks
        more)."""
        if facts is not None and facts.loops is not None:
            self._loops[lo:hi] = facts.loops
        else:
            fill_self_loops(self.tables.trans, lo, hi, self._loops)
            if facts is not None:
                facts.loops = self._loops[lo:hi].copy()

    def _scan(self, g: int, prepared: _ScanInput) -> tuple[_StateEntry, bool]:
        """Layers 1 and 2 of state ``g`` (see :func:`scan_state`) and whether they were computed
        (``False``: found in the tokenizer-wide cache; with a layered key, the few long tokens
        are walked anyway). Touches none of the store's caches, so it runs outside the lock (the
        kernel releases the GIL), with this thread's buffers."""
        follow, key, layered = prepared.follow, prepared.key, prepared.layered
        if key is None:
            return self._scan_kernel(g, follow), True
        tr, below = self._parts[0] if layered else (self._trie, self._below)
        part = self._shared.get(key)
        scanned = part is None
        if part is None:
            part = self._walk(g, follow, tr, below)
            self._shared.put(key, part)
        if layered:  # the key covers the short tokens: the long ones are this state's own
            part = _merge(part, self._walk(g, follow, *self._parts[1]), self._flat, self._offsets)
        return part, scanned

    def _derive(self, g: int, p: _ScanInput, base: _StateEntry) -> _StateEntry:
        """Layers 1 and 2 of state ``g`` from those of its base ``p.base`` (:meth:`_base_of`).

        Exact: what a token does from a state depends only on the state its first byte leads
        to (the scan never looks at the state itself, only at the states after 1, 2, ... bytes),
        and ``g`` and the base lead to the same state on every byte but those of ``p.roots``.
        So the base's inside tokens and crossing pairs stand for every token starting with
        another byte, and only the subtrees of ``p.roots`` are walked from ``g``
        (:func:`rescan_subtrees`). Outside the lock."""
        tb = self.tables
        tr = self._trie
        ftrans, facc, fptr, fstarts = p.follow
        roots = p.roots
        assert roots is not None
        out = np.empty_like(base.inside)

        def fill(cands: np.ndarray, ks: np.ndarray) -> int:
            out[:] = base.inside
            return rescan_subtrees(
                tb.trans, tb.accepting, self._loops, g, ftrans, facc, fptr, fstarts, tr.node_byte,
                tr.node_depth, tr.node_skip, self._below, tr.tok_ptr, tr.tok_ids, self._flat,
                self._offsets, tr.max_depth, roots, out, cands, ks,
            )

        cands, ks = self._pairs(fill)
        out.setflags(write=False)
        redone = np.zeros(256, dtype=np.bool_)
        redone[tr.node_byte[roots]] = True
        keep = ~redone[self._flat[self._offsets[base.candidates]]]
        return _entry(out, np.concatenate([base.candidates[keep], cands]),
                      np.concatenate([base.ks[keep], ks]), self._flat, self._offsets)

    def _scan_kernel(self, g: int, follow: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> _StateEntry:
        """Layers 1 and 2 of state ``g`` by one walk of the vocabulary (see :func:`scan_state`)."""
        return self._walk(g, follow, self._trie, self._below)

    def _walk(self, g: int, follow: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tr: TokenTrie,
              below: np.ndarray) -> _StateEntry:
        """Layers 1 and 2 of state ``g`` over the tokens of trie ``tr`` (one :func:`scan_state`)."""
        tb = self.tables
        ftrans, facc, fptr, fstarts = follow
        out = np.empty(self.n_words, dtype=np.uint32)

        def fill(cands: np.ndarray, ks: np.ndarray) -> int:
            out[:] = 0
            return scan_state(
                tb.trans, tb.accepting, self._loops, g, ftrans, facc, fptr, fstarts, tr.node_byte,
                tr.node_depth, tr.node_skip, below, tr.tok_ptr, tr.tok_ids, self._flat,
                self._offsets, tr.max_depth, out, cands, ks,
            )

        cands, ks = self._pairs(fill)
        out.setflags(write=False)
        return _entry(out, cands, ks, self._flat, self._offsets)

    def _pairs(self, fill: Callable[[np.ndarray, np.ndarray], int]) -> tuple[np.ndarray, np.ndarray]:
        """The crossing pairs ``fill(cands, ks)`` writes into this thread's buffers (it returns
        their count, -1 when they are too small: they are doubled and it runs again)."""
        bufs = self._buffers
        if getattr(bufs, "cands", None) is None:
            bufs.cands = np.empty(self.vocab.size, dtype=np.int32)
            bufs.ks = np.empty(self.vocab.size, dtype=np.int32)
        while True:
            nc = fill(bufs.cands, bufs.ks)
            if nc >= 0:
                return bufs.cands[:nc], bufs.ks[:nc]
            bufs.cands = np.empty(2 * bufs.cands.shape[0], dtype=np.int32)
            bufs.ks = np.empty(2 * bufs.ks.shape[0], dtype=np.int32)

    def _put_state(self, g: int, entry: _StateEntry, how: str = "scanned") -> _StateEntry:
        """Cache ``entry`` as state ``g``'s layers (under the lock; the first one stays); ``how``
        they were found, for the counters: ``"scanned"`` here, ``"shared"`` in the
        tokenizer-wide cache, ``"derived"`` from another state's."""
        hit = self._states.get(g)
        if hit is not None:
            self._states.move_to_end(g)
            return hit
        if how == "scanned":
            self.state_scans += 1
        elif how == "shared":
            self.shared_states += 1
        else:
            self.derived_states += 1
        self._state_bytes = _put_bounded(self._states, g, entry, self._state_bytes, self.max_bytes)
        return entry

    # -- masks ------------------------------------------------------------------------------------
    def mask(self, s: ESet) -> np.ndarray:
        """The read-only packed mask of tokens allowed after chart set ``s`` (EOS when accepting).

        Thread-safe: one lock guards the caches (and the signature table), so matchers of one
        grammar may run in several threads. On a miss, the lock is held only to read and fill the
        caches: the per-state layers the set needs that are not cached yet (numba passes over the
        vocabulary) and layer 3 (numba closures, over an arena of this thread's) are computed
        outside it, so several threads compute misses of one grammar at once.
        """
        with self._lock:
            sig = self.recognizer.signature(s)
            hit = self._hit(sig)
            if hit is not None:
                return hit
            todo = self._plan([g for g in s.scan if g not in self._states])
        fresh = self._run(todo)
        with self._lock:
            for g, e, how in fresh:
                self._put_state(g, e, how)
            hit = self._hit(sig)
            if hit is not None:  # another thread finished it meanwhile
                return hit
            self.misses += 1
            entries = [(g, self._state(g)) for g in s.scan]
        out = self._combine(s, entries)
        out.setflags(write=False)
        with self._lock:
            hit = self._masks.get(sig)
            if hit is not None:
                return hit
            self._mask_bytes = _put_bounded(self._masks, sig, out, self._mask_bytes, self.max_bytes)
        return out

    def cached_mask(self, s: ESet) -> np.ndarray | None:
        """The mask of ``s`` when it is already cached (``s`` has a signature), else ``None``;
        never computes one."""
        if s.sig < 0:
            return None
        with self._lock:
            return self._masks.get(s.sig)

    def lookup(self, s: ESet) -> np.ndarray | None:
        """The mask of ``s`` when it is cached (giving ``s`` its signature first), else ``None``;
        never computes a mask. A hit counts as one."""
        with self._lock:
            return self._hit(self.recognizer.signature(s))

    def _hit(self, sig: int) -> np.ndarray | None:
        """The cached mask of signature ``sig`` (counted as a hit, made most recent), or ``None``.
        Under the lock."""
        hit = self._masks.get(sig)
        if hit is not None:
            self._masks.move_to_end(sig)
            self.hits += 1
        return hit

    def _compute(self, s: ESet) -> np.ndarray:
        """The mask of ``s`` computed afresh (not cached)."""
        with self._lock:
            entries = [(g, self._state(g)) for g in s.scan]
        return self._combine(s, entries)

    def _combine(self, s: ESet, entries: list[tuple[int, _StateEntry]]) -> np.ndarray:
        """The mask of ``s`` from the layers of its groups (layer 3 run here; no lock held)."""
        out = entries[0][1].inside.copy() if entries else np.zeros(self.n_words, dtype=np.uint32)
        for _, e in entries[1:]:
            np.bitwise_or(out, e.inside, out=out)
        crossing = [(g, e) for g, e in entries if e.candidates.shape[0]]
        if crossing:
            self._crossing(s, crossing, out)
        if s.accepting:
            for t in self._eos:
                out[t >> 5] |= np.uint32(1 << (t & 31))
        return out

    def _crossing(self, s: ESet, crossing: list[tuple[int, _StateEntry]], out: np.ndarray) -> None:
        """Layer 3: set the bits of the candidates that cross a terminal's end (of ``s``'s groups
        ``crossing``) and can go on in what follows, walking them through the sets after each
        terminal end in numba (:mod:`corral.runtime.earley_closure`).

        Every token leaving the terminal from group ``g`` continues from the same set: the items
        of group ``g`` moved past their terminal. Which candidates that set's terminals then hold
        to the end, and where they leave them, depends only on its groups: cached (``_level1``).
        """
        closure = self._closure
        if closure is None:  # (a race builds two equal ones)
            built = closure_tables(self.tables)
            closure = self._closure = (built, built.as_args())
        ct, cargs = closure
        pos_off = ct.pos_off
        while True:
            arena = self._arenas.arena = encode_chart(ct, s, getattr(self._arenas, "arena", None))
            seeds = []
            for g, _ in crossing:
                items = s.group_items(g)
                seeds.append((np.array([pos_off[p] + d + 1 for p, d, _ in items], dtype=np.int32),
                              np.array([arena.index(o) for _, _, o in items], dtype=np.int32)))
            aargs = arena.as_args()
            roots = [close_set(*cargs, *aargs, ag_pos, ag_org) for ag_pos, ag_org in seeds]  # type: ignore[call-arg]
            if min(roots) < 0:
                self._arenas.arena = arena.bigger()
                continue
            parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
            for (g, e), j in zip(crossing, roots):
                groups = arena.groups(ct, j)
                words, bits, ex_toks, ex_states, ex_ks = self._first_level(g, groups, e)
                or_words(out, words, bits)
                if ex_toks.shape[0]:
                    part = open_exits(out, j, ex_toks, ex_states, ex_ks)
                    if part[0].shape[0]:
                        parts.append(part)
            if not parts:
                return
            if len(parts) == 1:
                ex_set, ex_group, ex_tok, ex_k = parts[0]  # sorted by group already
            else:  # several groups' exits, sorted by (set, group) together
                ex_set, ex_group, ex_tok, ex_k = (np.concatenate([p[i] for p in parts]) for i in range(4))
                order = np.lexsort((ex_group, ex_set))
                ex_set, ex_group, ex_tok, ex_k = ex_set[order], ex_group[order], ex_tok[order], ex_k[order]
            tb = self.tables
            status = resolve_exits(*cargs, *aargs, tb.trans, tb.accepting, tb.term_of_state, self._follow_first,
                                   self._flat, self._offsets, ex_set, ex_group, ex_tok, ex_k, out)  # type: ignore[call-arg]
            if status >= 0:
                return
            self._arenas.arena = arena.bigger()

    def _first_level(self, g: int, groups: np.ndarray, e: _StateEntry) -> tuple[np.ndarray, ...]:
        """Layer 3's first level for the candidates of state ``g`` in the set with scanning groups
        ``groups`` after their terminal: the candidates held to the end there (as the nonzero words
        of their mask and those words), and the exits (tokens, group states, bytes consumed);
        cached by ``(g, groups)`` (by the candidates themselves instead of ``g`` when there are
        many: :func:`_level_key`).

        On a miss, for a state with many candidates (``PER_GROUP_LEVELS``), it is put together
        from the level of each group alone (cached by ``(g, h)``):
        group sets vary with the context, single groups recur (SQL's whitespace state has 48k
        candidates; an identifier's group holds most of them, and walking them for every new
        group set cost 4-9 ms a miss). Exact: a pair is held when some group holds it, and the
        exits of a pair held by another group are dropped by the caller (its token's bit is set).
        """
        if groups.shape[0] == 0:
            return _NO_LEVEL
        who = _level_key(g, e)
        if groups.shape[0] == 1:
            return self._one_level(groups, e, (who, int(groups[0])))
        key = (who, groups.tobytes())
        if e.candidates.shape[0] < PER_GROUP_LEVELS:  # few pairs: one pass over all groups is cheaper
            return self._one_level(groups, e, key)
        level = self._cached_level(key)
        if level is not None:
            return level
        hs = groups.tolist()
        beside: Future[tuple[np.ndarray, ...]] | None = None
        if e.candidates.shape[0] >= PARALLEL_LEVEL_PAIRS and len(hs) > 1 and _may_fork():
            # the last group's level in the helper thread, the others here (nogil kernels)
            h = hs[-1]
            if self._cached_level((who, h)) is None:
                beside = _helper().submit(self._one_level, np.array([h], dtype=np.int32), e, (who, h))
        parts = [self._one_level(np.array([h], dtype=np.int32), e, (who, h))
                 for h in (hs[:-1] if beside is not None else hs)]
        if beside is not None:
            parts.append(beside.result())
        tmp = np.zeros(self.n_words, dtype=np.uint32)
        for words, bits, _, _, _ in parts:
            or_words(tmp, words, bits)
        words = np.flatnonzero(tmp)
        level = (words, tmp[words], *(np.concatenate([p[i] for p in parts]) for i in (2, 3, 4)))
        self._put_level(key, level)
        return level

    def _cached_level(self, key: Any) -> tuple[np.ndarray, ...] | None:
        with self._lock:
            level = self._level1.get(key)
            if level is not None:
                self._level1.move_to_end(key)
            return level

    def _one_level(self, groups: np.ndarray, e: _StateEntry, key: Any) -> tuple[np.ndarray, ...]:
        """The first level of ``e``'s candidates in ``groups`` by one pass over them all (cached
        under ``key``)."""
        level = self._cached_level(key)
        if level is not None:
            return level
        tmp = np.zeros(self.n_words, dtype=np.uint32)
        ex_toks, ex_states, ex_ks = self._level(groups, e, tmp)
        words = np.flatnonzero(tmp)
        level = (words, tmp[words], ex_toks, ex_states, ex_ks)
        self._put_level(key, level)
        return level

    def _put_level(self, key: Any, level: tuple[np.ndarray, ...]) -> None:
        with self._lock:
            if key not in self._level1:
                self._level1[key] = level
                self._level_bytes += sum(a.nbytes for a in level) + 200
                while self._level_bytes > self.max_bytes and len(self._level1) > 1:
                    _, old = self._level1.popitem(last=False)
                    self._level_bytes -= sum(a.nbytes for a in old) + 200

    def _level(self, groups: np.ndarray, e: _StateEntry, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One level of layer 3 for the candidates of entry ``e`` (see :func:`remainder_step_sorted`):
        sets the bits of pairs held to the end by a group and returns the exits as (tokens, group
        states, bytes consumed)."""
        tb = self.tables
        toks = e.candidates
        cap = max(1024, 4 * toks.shape[0])
        while True:
            ex_pair = np.empty(cap, dtype=np.int32)
            ex_group = np.empty(cap, dtype=np.int32)
            ex_k = np.empty(cap, dtype=np.int32)
            nex = remainder_step_sorted(tb.trans, tb.accepting, tb.term_of_state, self._follow_first, groups,
                                        self._flat, self._offsets, toks, e.ks, e.b0_ptr, out, ex_pair, ex_group, ex_k)
            if nex >= 0:
                break
            cap *= 4
        return toks[ex_pair[:nex]], groups[ex_group[:nex]], ex_k[:nex].copy()

    def clear(self, *, states: bool = False) -> None:
        """Drop the finished masks (and the per-terminal-state layers when ``states``, the
        tokenizer-wide ones included), so that the next masks are computed again; for benchmarks
        that measure cache misses."""
        with self._lock:
            self._masks.clear()
            self._mask_bytes = 0
            self._level1.clear()
            self._level_bytes = 0
            if states:
                self._states.clear()
                self._state_bytes = 0
                self._shared.clear()

    # -- reporting --------------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        """Bytes held by the caches now."""
        return self._state_bytes + self._mask_bytes + self._level_bytes

    @property
    def cached_states(self) -> int:
        """Automaton states whose layers are cached."""
        return len(self._states)

    @property
    def cached_masks(self) -> int:
        """Finished masks cached by signature."""
        return len(self._masks)


_HELPER: list[ThreadPoolExecutor] = []
_HELPER_LOCK = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """The one worker thread that computes a big first level beside the thread asking for it
    (:data:`PARALLEL_LEVEL_PAIRS`); made on first use."""
    with _HELPER_LOCK:
        if not _HELPER:
            _HELPER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-level"))
        return _HELPER[0]


def _may_fork() -> bool:
    """Whether a mask may hand part of its work to the helper thread: not when this process may
    use one CPU only, and not from a worker thread (a batch fill's threads already use the
    cores; the helper's own tasks never fork)."""
    from corral.runtime.batch import default_threads  # (batch imports the matchers, which import this module)

    return default_threads() > 1 and not threading.current_thread().name.startswith("corral-")


def _level_key(g: int, e: _StateEntry) -> int | bytes:
    """What layer 3's first level of state ``g`` is cached by, besides its groups: ``g`` itself,
    or, for a state with at least :data:`CONTENT_KEYED_LEVELS` crossing candidates, a digest of
    its candidate pairs. A level reads only the pairs and the groups (:meth:`CFGMaskStore._level`),
    never the state, and states with equal pairs are common: every position of a length
    counter far from its bound (a string with ``maxLength: 64`` has ~1,400 candidates per
    position, the tokens closing it, and walking them again cost ~0.5 ms a position)."""
    if e.candidates.shape[0] < CONTENT_KEYED_LEVELS:
        return g
    key = e.content
    if key is None:
        key = _digest(e.candidates, e.ks.tobytes())
        object.__setattr__(e, "content", key)  # a cache of the frozen entry's own content
    return key


_NO_LEVEL = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32),
             np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))  # a set with no scanning group holds nothing


def _put_bounded(lru: OrderedDict[Any, Any], key: Any, value: Any, used: int, limit: int) -> int:
    """Store ``value`` (anything with ``nbytes``) under ``key`` in the LRU ``lru``, evict the least
    recently used entries while ``used`` passes ``limit`` (always keeping one), and return the new
    ``used``."""
    lru[key] = value
    used += value.nbytes
    while used > limit and len(lru) > 1:
        _, old = lru.popitem(last=False)
        used -= old.nbytes
    return used
