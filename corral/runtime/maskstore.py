"""The runtime mask store of a regular constraint: the compiled table, or masks computed lazily.

A :class:`~corral.compiler.program.DFAProgram` carries every mask when they fit its budget (an
eager table, computed at compile time). Otherwise :class:`DFAMaskStore` computes a class's mask
on first use with the compiler's kernels and keeps the most recently used ones, within the budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from corral.compiler.automaton import ByteDFA
from corral.compiler.maskstore import (
    DEFAULT_MASK_CACHE_BYTES,
    TokenTrie,
    class_representatives,
    n_words,
    state_masks,
    token_trie,
)
from corral.compiler.program import DFAProgram, dfa_program
from corral.compiler.vocabulary import Vocabulary

__all__ = ["DFAMaskStore"]


class DFAMaskStore:
    """Masks of every state of a :class:`~corral.compiler.program.DFAProgram` over its vocabulary.

    States of one mask class share one mask. Each mask already contains the EOS ids when the state
    is accepting. With the program's eager table, a mask is a row of it; otherwise masks are
    computed on first use and the least recently used are dropped beyond the program's budget.
    Thread-safe.

    Parameters
    ----------
    program:
        The compiled regular constraint.
    vocab:
        The vocabulary it was compiled against.
    """

    def __init__(self, program: DFAProgram, vocab: Vocabulary) -> None:
        self.program = program
        self.dfa: ByteDFA = program.dfa
        self.vocab = vocab
        self.trie: TokenTrie = token_trie(vocab)
        self.n_words = n_words(vocab.size)
        self.max_bytes = program.mask_cache_bytes
        self.classes = program.classes
        self._rep = class_representatives(self.classes)
        n_cls = int(self._rep.shape[0])
        self._lock = threading.Lock()
        self._lru: OrderedDict[int, np.ndarray] = OrderedDict()
        self._max_rows = max(1, self.max_bytes // (self.n_words * 4))
        table = program.table
        self.eager = table is not None
        self._all: np.ndarray | None = None if table is None else table.masks
        if table is None:
            self._counts = np.full(n_cls, -1, dtype=np.int64)
            self._single = np.full(n_cls, -1, dtype=np.int64)
        else:
            self._counts = table.counts
            self._single = table.single
        # The all-zero mask, shared by every matcher for "finished" (index ``n_states`` of rows).
        self.zeros = np.zeros(self.n_words, dtype=np.uint32)
        self.zeros.setflags(write=False)
        # Eager stores also keep one read-only row view per state, then ``zeros`` for a finished
        # sequence: a list lookup is the whole per-token cost of a mask.
        self.rows: list[np.ndarray] | None = None
        if self._all is not None:
            per_class = list(self._all)
            self.rows = [per_class[c] for c in self.classes.tolist()] + [self.zeros]

    @classmethod
    def build(cls, dfa: ByteDFA, vocab: Vocabulary, *, max_bytes: int = DEFAULT_MASK_CACHE_BYTES) -> DFAMaskStore:
        """The store of ``dfa`` over ``vocab`` (eager when every mask fits ``max_bytes``).

        Parameters
        ----------
        dfa, vocab:
            The automaton and the vocabulary.
        max_bytes:
            Memory budget for stored masks.

        Returns
        -------
        DFAMaskStore
        """
        return cls(dfa_program(dfa, vocab, max_bytes=max_bytes), vocab)

    @property
    def n_classes(self) -> int:
        """Number of distinct masks (mask classes)."""
        return int(self._rep.shape[0])

    def mask(self, state: int) -> np.ndarray:
        """The read-only mask of ``state`` (EOS included when accepting)."""
        row = self.cached(state)
        if row is not None:
            return row
        c = int(self.classes[state])
        masks, counts, single = state_masks(self.dfa, self.vocab, self._rep[np.array([c], dtype=np.int64)])
        row = masks[0]
        row.setflags(write=False)
        with self._lock:
            self._counts[c] = counts[0]
            self._single[c] = single[0]
            self._lru[c] = row
            while len(self._lru) > self._max_rows:
                self._lru.popitem(last=False)
        return row

    def cached(self, state: int) -> np.ndarray | None:
        """The mask of ``state`` when it is stored now, else ``None`` (never computes one)."""
        c = int(self.classes[state])
        if self._all is not None:
            return self._all[c]  # type: ignore[no-any-return]
        with self._lock:
            row = self._lru.get(c)
            if row is not None:
                self._lru.move_to_end(c)
            return row

    def clear(self, *, states: bool = False) -> None:
        """Drop the lazily computed masks (an eager table stays); for benchmarks that measure
        cache misses. ``states`` is accepted for symmetry with the grammar store."""
        with self._lock:
            self._lru.clear()

    def count(self, state: int) -> int:
        """Number of allowed ids in ``state``'s mask (EOS included)."""
        c = int(self.classes[state])
        if self._counts[c] < 0:
            self.mask(state)
        return int(self._counts[c])

    def single_token(self, state: int) -> int:
        """The only allowed id of ``state`` when there is exactly one, else -1."""
        c = int(self.classes[state])
        if self._counts[c] < 0:
            self.mask(state)
        return int(self._single[c])

    @property
    def memory_bytes(self) -> int:
        """Bytes held by stored masks now."""
        if self._all is not None:
            return int(self._all.nbytes)
        return len(self._lru) * self.n_words * 4

    @property
    def cached_states(self) -> int:
        """Number of masks stored now (one per mask class; all of them when eager)."""
        if self._all is not None:
            return int(self._all.shape[0])
        return len(self._lru)
