"""Token trie, mask classes and the eager mask table (compile time), with the numba kernels that fill them.

The vocabulary is stored once as a byte trie in depth-first preorder (:class:`TokenTrie`). A DFA
state's mask is the set of tokens whose bytes the automaton can read from that state without dying
(the DFA is trimmed, so "not dead" means "still completable"). The kernel walks the trie in preorder
with a stack of DFA states, one per depth, and skips a whole subtree the moment a byte is rejected,
so a state that allows only digits touches a few hundred nodes, not 128k tokens.

Masks are packed bitsets: ``uint32`` words, bit ``t & 31`` of word ``t >> 5`` is token ``t``.

Threading layer (fork safety)
-----------------------------
The one parallel kernel (``_walk_many``, every mask of an eager store at once) runs on numba's
threading layer. numba's default picks GNU OpenMP on Linux when it is present, and a process that
forks after a parallel kernel ran is then *killed* ("fork() called from a process already using GNU
OpenMP") the next time it runs one: servers and data loaders fork. So this module sets
``numba.config.THREADING_LAYER = "forksafe"`` at import, before any parallel kernel is launched:
numba then uses TBB when the ``tbb`` package is installed (fork- and thread-safe), else its
built-in ``workqueue`` layer (fork-safe on every platform, but not thread-safe: two threads
launching parallel kernels at once abort the process). Launches therefore go through one process
wide lock, :data:`PARALLEL_LOCK` (re-created in a forked child, so a lock held by another parent
thread at fork time cannot deadlock the child). Masks of one store are still computed on all
cores; only two stores compiled at the same moment by two threads take turns. Measured on the
Llama-3 vocabulary, eager mask stores compile as fast with ``workqueue`` as with GNU OpenMP.

An explicit ``NUMBA_THREADING_LAYER`` in the environment is respected (its fork safety is then the
user's choice); so is a layer numba already started before corral was imported.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numba
from numba import njit, prange

from corral.compiler.automaton import ByteDFA, byte_columns, frozen, refine
from corral.compiler.vocabulary import Vocabulary

__all__ = [
    "TokenTrie",
    "token_trie",
    "token_tries_by_length",
    "MaskTable",
    "build_mask_table",
    "class_representatives",
    "state_masks",
    "mask_classes",
    "n_words",
    "walk_state_mask",
    "walk_state_mask_reference",
]

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"  # type: ignore[attr-defined]

PARALLEL_LOCK = threading.Lock()
"""Held while a parallel kernel runs (the ``workqueue`` layer must not be entered concurrently)."""


def _new_parallel_lock() -> None:
    global PARALLEL_LOCK
    PARALLEL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_parallel_lock)

DEFAULT_MASK_CACHE_BYTES = 128 * 1024 * 1024
"""Default memory budget of one regex's mask store (masks beyond it are recomputed, LRU)."""

DEFAULT_CFG_MASK_CACHE_BYTES = 64 * 1024 * 1024
"""Default memory budget of each of a grammar's two runtime mask caches (LRU)."""


def n_words(size: int) -> int:
    """Number of uint32 words in a bitset of ``size`` bits."""
    return (size + 31) // 32


@dataclass(frozen=True)
class TokenTrie:
    """The text tokens of a vocabulary as a byte trie in depth-first preorder.

    Attributes
    ----------
    node_byte:
        ``uint8[n_nodes]``: the byte on the edge into each node.
    node_depth:
        ``int32[n_nodes]``: 1 for children of the root.
    node_skip:
        ``int32[n_nodes]``: index of the first node after this node's subtree.
    tok_ptr, tok_ids:
        CSR lists of the token ids whose bytes end at each node.
    flat, offsets:
        All token bytes concatenated (``uint8``) and ``int64[len(vocab) + 1]`` offsets into it;
        empty for non-text ids.
    max_depth:
        Length of the longest token.
    """

    node_byte: np.ndarray
    node_depth: np.ndarray
    node_skip: np.ndarray
    tok_ptr: np.ndarray
    tok_ids: np.ndarray
    flat: np.ndarray
    offsets: np.ndarray
    max_depth: int

    @property
    def n_nodes(self) -> int:
        """Number of trie nodes (the root excluded)."""
        return int(self.node_byte.shape[0])


@njit(cache=True, nogil=True)
def _build_trie(flat, starts, lengths, order):  # type: ignore[no-untyped-def]
    """Build the preorder trie from token byte strings visited in sorted order."""
    total = 0
    for k in range(order.shape[0]):
        total += lengths[order[k]]
    node_byte = np.empty(total, np.uint8)
    node_depth = np.empty(total, np.int32)
    node_skip = np.empty(total, np.int32)
    pair_node = np.empty(order.shape[0], np.int32)
    max_len = 0
    for k in range(order.shape[0]):
        if lengths[order[k]] > max_len:
            max_len = lengths[order[k]]
    path = np.empty(max_len + 1, np.int32)
    depth = 0
    n = 0
    prev = -1
    for k in range(order.shape[0]):
        t = order[k]
        s = starts[t]
        ln = lengths[t]
        common = 0
        if prev >= 0:
            ps = starts[prev]
            pl = lengths[prev]
            while common < ln and common < pl and flat[ps + common] == flat[s + common]:
                common += 1
        while depth > common:
            node_skip[path[depth - 1]] = n
            depth -= 1
        for j in range(common, ln):
            node_byte[n] = flat[s + j]
            node_depth[n] = j + 1
            path[depth] = n
            depth += 1
            n += 1
        pair_node[k] = path[depth - 1]
        prev = t
    while depth > 0:
        node_skip[path[depth - 1]] = n
        depth -= 1
    return node_byte[:n].copy(), node_depth[:n].copy(), node_skip[:n].copy(), pair_node, max_len


def token_trie(vocab: Vocabulary) -> TokenTrie:
    """The (memoised) token trie of ``vocab``.

    Every id whose bytes are non-empty is in the trie; special tokens are not. Built once per
    vocabulary (``vocab.derived("trie", ...)``), whichever thread asks first.
    """
    return vocab.derived("trie", _build_token_trie)


def token_tries_by_length(vocab: Vocabulary, split: int) -> tuple[TokenTrie, TokenTrie]:
    """The (memoised) tries of ``vocab``'s text tokens of at most ``split`` bytes and of the
    longer ones; together they hold every token of :func:`token_trie` (same ``flat`` and
    ``offsets``)."""
    return vocab.derived(f"trie.split{split}", lambda v: _split_tries(v, split))


def _split_tries(vocab: Vocabulary, split: int) -> tuple[TokenTrie, TokenTrie]:
    lengths = [len(b) if b else 0 for b in vocab.token_bytes]
    return (_build_token_trie(vocab, lambda i: lengths[i] <= split),
            _build_token_trie(vocab, lambda i: lengths[i] > split))


def _build_token_trie(vocab: Vocabulary, keep: Callable[[int], bool] | None = None) -> TokenTrie:
    tb = vocab.token_bytes
    lengths = np.fromiter((len(b) if b else 0 for b in tb), dtype=np.int64, count=len(tb))
    offsets = np.zeros(len(tb) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.frombuffer(b"".join(b for b in tb if b), dtype=np.uint8).copy()
    text_ids = [i for i, b in enumerate(tb) if b and (keep is None or keep(i))]
    text_ids.sort(key=tb.__getitem__)  # type: ignore[arg-type]
    order = np.asarray(text_ids, dtype=np.int64)
    node_byte, node_depth, node_skip, pair_node, max_len = _build_trie(
        flat, offsets[:-1], lengths, order
    )
    n = node_byte.shape[0]
    counts = np.bincount(pair_node, minlength=n)
    tok_ptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=tok_ptr[1:])
    # pair_node is non-decreasing (see _build_trie), so ``order`` is already grouped by node.
    tok_ids = order.astype(np.int32)
    return TokenTrie(
        node_byte, node_depth, node_skip, tok_ptr, tok_ids, flat, offsets, int(max_len)
    )


@njit(cache=True, nogil=True)
def walk_state_mask(trans, state, node_byte, node_depth, node_skip, tok_ptr, tok_ids, max_depth, out):  # type: ignore[no-untyped-def]
    """Set in ``out`` the bit of every token the DFA can read from ``state`` without dying.

    Plain-Python equivalent (see :func:`walk_state_mask_reference`)::

        for t, b in enumerate(token_bytes):
            if b and dfa.run(b, state) >= 0:
                out[t >> 5] |= 1 << (t & 31)

    ``out`` must be zeroed by the caller. Returns ``(number of tokens set, last token set)``.
    """
    stack = np.empty(max_depth + 1, np.int32)
    stack[0] = state
    n = node_byte.shape[0]
    i = 0
    count = 0
    last = -1
    while i < n:
        d = node_depth[i]
        s = trans[stack[d - 1], node_byte[i]]
        if s < 0:
            i = node_skip[i]
            continue
        stack[d] = s
        for k in range(tok_ptr[i], tok_ptr[i + 1]):
            t = tok_ids[k]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            count += 1
            last = t
        i += 1
    return count, last


@njit(cache=True, nogil=True, parallel=True)
def _walk_many(trans, states, node_byte, node_depth, node_skip, tok_ptr, tok_ids, max_depth, out, counts, lasts):  # type: ignore[no-untyped-def]
    for j in prange(states.shape[0]):
        c, last = walk_state_mask(
            trans, states[j], node_byte, node_depth, node_skip, tok_ptr, tok_ids, max_depth, out[j]
        )
        counts[j] = c
        lasts[j] = last


@njit(cache=True, nogil=True)
def advance_token(trans, state, flat, offsets, token):  # type: ignore[no-untyped-def]
    """DFA state after reading the bytes of ``token`` from ``state``; -1 when rejected.

    Plain-Python equivalent: ``dfa.run(token_bytes[token], state)`` (an empty token gives -1).
    """
    a = offsets[token]
    b = offsets[token + 1]
    if a == b:
        return -1
    s = state
    for k in range(a, b):
        s = trans[s, flat[k]]
        if s < 0:
            return -1
    return s


def walk_state_mask_reference(dfa: ByteDFA, state: int, vocab: Vocabulary) -> np.ndarray:
    """Brute force over the vocabulary, in plain Python: the oracle for :func:`walk_state_mask`."""
    out = np.zeros(n_words(vocab.size), dtype=np.uint32)
    for t, b in enumerate(vocab.token_bytes):
        if b and dfa.run(b, state) >= 0:
            out[t >> 5] |= np.uint32(1 << (t & 31))
    return out


def mask_classes(dfa: ByteDFA, depth: int) -> np.ndarray:
    """Group states whose masks are necessarily equal; returns a class id per state.

    A state's mask depends only on whether it accepts (the EOS bit) and on which byte strings of
    length at most ``depth`` (the longest token) it can read without dying. Partition refinement
    on exactly that, for at most ``depth`` rounds, gives classes of states with equal masks:
    ``x{1,10000}`` has 10,001 states but about ``depth`` mask classes.
    """
    compact, _ = byte_columns(dfa)
    cls, _ = refine(dfa.accepting.astype(np.int64), compact, depth)
    return cls


@dataclass(frozen=True, eq=False)
class MaskTable:
    """Every mask of a DFA's mask classes, computed at compile time (an eager table).

    Attributes
    ----------
    masks:
        Read-only ``uint32[n_classes, n_words]``: row ``c`` is the mask of class ``c`` (EOS ids
        included when its states accept).
    counts:
        ``int64[n_classes]``: allowed ids per class (EOS included).
    single:
        ``int64[n_classes]``: the only allowed id of a class with exactly one, else -1.
    """

    masks: np.ndarray
    counts: np.ndarray
    single: np.ndarray


def class_representatives(classes: np.ndarray) -> np.ndarray:
    """The first state of each mask class (the one whose mask is computed for the class)."""
    n = classes.shape[0]
    n_cls = int(classes.max()) + 1 if n else 0
    rep = np.zeros(n_cls, dtype=np.int32)
    rep[classes[::-1]] = np.arange(n, dtype=np.int32)[::-1]
    return rep


def eos_bits(vocab: Vocabulary) -> np.ndarray:
    """The packed mask of ``vocab``'s EOS ids."""
    out = np.zeros(n_words(vocab.size), dtype=np.uint32)
    for e in vocab.eos_token_ids:
        out[e >> 5] |= np.uint32(1 << (e & 31))
    return out


def state_masks(dfa: ByteDFA, vocab: Vocabulary, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The masks of ``states`` (EOS included where they accept), with their counts and single ids.

    One state is walked in this thread; several are walked in parallel (under
    :data:`PARALLEL_LOCK`).

    Parameters
    ----------
    dfa, vocab:
        The automaton and the vocabulary.
    states:
        ``int`` array of DFA states.

    Returns
    -------
    tuple
        ``(masks uint32[len(states), n_words], counts int64[len(states)], single int64[len(states)])``:
        ``single`` is the only allowed id where ``counts == 1``, else -1.
    """
    t = token_trie(vocab)
    out = np.zeros((states.shape[0], n_words(vocab.size)), dtype=np.uint32)
    counts = np.zeros(states.shape[0], dtype=np.int64)
    lasts = np.zeros(states.shape[0], dtype=np.int64)
    if states.shape[0] == 1:  # lazy path: skip the parallel launch
        c, last = walk_state_mask(
            frozen(dfa.trans), int(states[0]), t.node_byte, t.node_depth, t.node_skip,
            t.tok_ptr, t.tok_ids, t.max_depth, out[0],
        )
        counts[0], lasts[0] = c, last
    else:
        with PARALLEL_LOCK:
            _walk_many(
                frozen(dfa.trans), states, t.node_byte, t.node_depth, t.node_skip,
                t.tok_ptr, t.tok_ids, t.max_depth, out, counts, lasts,
            )
    acc = dfa.accepting[states]
    out[acc] |= eos_bits(vocab)
    counts = counts + acc * len(vocab.eos_token_ids)
    single = np.where(counts == 1, np.where(acc, min(vocab.eos_token_ids, default=-1), lasts), -1).astype(np.int64)
    return out, counts, single


def build_mask_table(
    dfa: ByteDFA,
    vocab: Vocabulary,
    *,
    max_bytes: int = DEFAULT_MASK_CACHE_BYTES,
    precomputed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, MaskTable | None]:
    """The mask classes of ``dfa`` and, when every class's mask fits in ``max_bytes``, their table.

    States whose masks must be equal share one (see :func:`mask_classes`), so one mask per class is
    computed (in parallel). When the classes do not fit, no mask is computed here: the runtime
    computes them on first use (the runtime's ``DFAMaskStore``).

    Parameters
    ----------
    dfa, vocab:
        The automaton and the vocabulary.
    max_bytes:
        Memory budget for stored masks.
    precomputed:
        ``(classes, masks, counts, single)`` read from a disk cache; used when their shapes fit.

    Returns
    -------
    tuple
        ``(classes int64[n_states], table or None)``.
    """
    n = dfa.n_states
    if precomputed is not None and precomputed[0].shape == (n,):
        classes = np.asarray(precomputed[0], dtype=np.int64)
    else:
        precomputed = None
        classes = mask_classes(dfa, token_trie(vocab).max_depth)
    classes.setflags(write=False)
    n_cls = int(classes.max()) + 1 if n else 0
    max_rows = max(1, int(max_bytes) // (n_words(vocab.size) * 4))
    if n_cls > max_rows:
        return classes, None
    if precomputed is not None and precomputed[1].shape == (n_cls, n_words(vocab.size)):
        masks = np.array(precomputed[1], dtype=np.uint32)
        counts = np.array(precomputed[2], dtype=np.int64)
        single = np.array(precomputed[3], dtype=np.int64)
    else:
        masks, counts, single = state_masks(dfa, vocab, class_representatives(classes)[np.arange(n_cls)])
    for a in (masks, counts, single):
        a.setflags(write=False)
    return classes, MaskTable(masks, counts, single)
