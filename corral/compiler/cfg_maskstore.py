"""Token masks for context-free grammars.

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
3. **Exact check of the candidates** by running the recognizer on their bytes from ``E``
   (candidates sorted, so shared prefixes are parsed once).

Finished masks are cached by the set's signature (equal signatures, equal futures; see
:mod:`corral.runtime.earley`), in an LRU bounded in bytes. Both caches report their size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numba import njit

from corral.compiler.automaton import ByteDFA
from corral.compiler.earley_tables import EarleyTables, union_of
from corral.compiler.maskstore import n_words, token_trie
from corral.compiler.regex import RegexLimits
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CompileLimitError
from corral.runtime.earley import ESet, Recognizer

__all__ = ["CFGMaskStore", "scan_state"]

DEFAULT_CFG_MASK_CACHE_BYTES = 64 * 1024 * 1024


@njit(cache=True, nogil=True)
def scan_state(trans, acc, g, ftrans, facc, fstart, has_follow, flat, offsets, first_order, first_ptr, out, cands):  # type: ignore[no-untyped-def]
    """Layers 1 and 2 for automaton state ``g`` (see the module docstring).

    Sets in ``out`` the bit of each token read entirely inside the terminal; writes to ``cands``
    the tokens that finish the terminal part-way and whose remainder the follow automaton
    (``ftrans`` from ``fstart``, trimmed, accepting ``facc``) does not reject: the remainder passes
    when it ends while the automaton is alive or once the automaton accepts.
    Returns the number of candidates.
    """
    nc = 0
    for b0 in range(256):
        if trans[g, b0] < 0:
            continue
        for k in range(first_ptr[b0], first_ptr[b0 + 1]):
            t = first_order[k]
            a = offsets[t]
            e = offsets[t + 1]
            s = g
            alive = True
            cand = False
            for i in range(a, e):
                s = trans[s, flat[i]]
                if s < 0:
                    alive = False
                    break
                if has_follow and not cand and acc[s] and i + 1 < e:
                    f = fstart
                    for j in range(i + 1, e):
                        f = ftrans[f, flat[j]]
                        if f < 0 or facc[f]:
                            break
                    if f >= 0:
                        cand = True
            if alive:
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            elif cand:
                cands[nc] = t
                nc += 1
    return nc


@dataclass(frozen=True)
class _StateEntry:
    inside: np.ndarray
    candidates: np.ndarray


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
        Limits for the follow automata (built lazily per terminal).
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
        self._flat = trie.flat
        self._offsets = trie.offsets
        firsts = np.full(vocab.size, 256, dtype=np.int64)
        lengths = np.diff(trie.offsets)
        has = np.flatnonzero(lengths > 0)
        firsts[has] = trie.flat[trie.offsets[has]]
        order = np.argsort(firsts, kind="stable").astype(np.int32)
        self._first_order = order
        self._first_ptr = np.searchsorted(firsts[order], np.arange(257)).astype(np.int64)
        self._token_bytes = vocab.token_bytes
        self._eos = [t for t in vocab.eos_token_ids if 0 <= t < vocab.size]
        self._cands_buf = np.empty(vocab.size, dtype=np.int32)
        self._follow: dict[int, tuple[np.ndarray, np.ndarray, int, bool]] = {}
        self._states: OrderedDict[int, _StateEntry] = OrderedDict()
        self._state_bytes = 0
        self._masks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._mask_bytes = 0
        self.zeros = np.zeros(self.n_words, dtype=np.uint32)
        self.zeros.setflags(write=False)
        self.hits = 0
        self.misses = 0

    # -- per-terminal follow automata -------------------------------------------------------------
    def _follow_dfa(self, term: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
        hit = self._follow.get(term)
        if hit is not None:
            return hit
        tb = self.tables
        followers = sorted(tb.follow[term])
        entry: tuple[np.ndarray, np.ndarray, int, bool]
        # A nullable follower's empty string adds nothing: FOLLOW already holds what comes after
        # it, and the kernel only looks at acceptance after at least one byte.
        if not followers:
            entry = (np.full((1, 256), -1, dtype=np.int32), np.zeros(1, dtype=bool), 0, False)
        else:
            try:
                dfa: ByteDFA = union_of([tb.term_dfas[f] for f in followers], self.limits)
                entry = (dfa.trans.astype(np.int32), dfa.accepting.astype(bool), int(dfa.start), True)
            except CompileLimitError:
                entry = (np.zeros((1, 256), dtype=np.int32), np.ones(1, dtype=bool), 0, True)
        self._follow[term] = entry
        return entry

    def _state(self, g: int) -> _StateEntry:
        hit = self._states.get(g)
        if hit is not None:
            self._states.move_to_end(g)
            return hit
        tb = self.tables
        ftrans, facc, fstart, has = self._follow_dfa(int(tb.term_of_state[g]))
        out = np.zeros(self.n_words, dtype=np.uint32)
        nc = scan_state(
            tb.trans, tb.accepting, g, ftrans, facc, fstart, has, self._flat, self._offsets,
            self._first_order, self._first_ptr, out, self._cands_buf,
        )
        out.setflags(write=False)
        entry = _StateEntry(out, self._cands_buf[:nc].copy())
        self._states[g] = entry
        self._state_bytes += out.nbytes + entry.candidates.nbytes
        while self._state_bytes > self.max_bytes and len(self._states) > 1:
            _, old = self._states.popitem(last=False)
            self._state_bytes -= old.inside.nbytes + old.candidates.nbytes
        return entry

    # -- masks ------------------------------------------------------------------------------------
    def mask(self, s: ESet) -> np.ndarray:
        """The read-only packed mask of tokens allowed after chart set ``s`` (EOS when accepting)."""
        sig = self.recognizer.signature(s)
        hit = self._masks.get(sig)
        if hit is not None:
            self._masks.move_to_end(sig)
            self.hits += 1
            return hit
        self.misses += 1
        out = self._compute(s)
        out.setflags(write=False)
        self._masks[sig] = out
        self._mask_bytes += out.nbytes
        while self._mask_bytes > self.max_bytes and len(self._masks) > 1:
            _, old = self._masks.popitem(last=False)
            self._mask_bytes -= old.nbytes
        return out

    def _compute(self, s: ESet) -> np.ndarray:
        entries = [self._state(g) for g in s.scan]
        out = entries[0].inside.copy() if entries else np.zeros(self.n_words, dtype=np.uint32)
        for e in entries[1:]:
            np.bitwise_or(out, e.inside, out=out)
        cand_lists = [e.candidates for e in entries if e.candidates.shape[0]]
        if cand_lists:
            cands = np.unique(np.concatenate(cand_lists)) if len(cand_lists) > 1 else cand_lists[0]
            bits = (out[cands >> 5] >> (cands & 31).astype(np.uint32)) & 1
            todo = cands[bits == 0]
            if todo.shape[0]:
                self._check(s, todo.tolist(), out)
        if s.accepting:
            for t in self._eos:
                out[t >> 5] |= np.uint32(1 << (t & 31))
        return out

    def _check(self, s: ESet, tokens: list[int], out: np.ndarray) -> None:
        """Layer 3: decide each candidate exactly.

        Candidates are sorted so that shared prefixes are parsed once. From a chart set, a
        candidate's rest is first tried inside each scanning item's terminal (an automaton walk,
        no parsing); only when no terminal can hold all of it does the recognizer take one byte.
        """
        tb = self._token_bytes
        rec = self.recognizer
        trans = self.tables.trans_rows
        toks = sorted(tokens, key=lambda t: tb[t])  # type: ignore[arg-type, return-value]
        path: list[ESet | None] = [s]  # path[i]: the set after the first i bytes of ``prev``
        prev = b""
        for t in toks:
            data = tb[t]
            assert data is not None
            n = len(data)
            common = 0
            limit = min(len(prev), n, len(path) - 1)
            while common < limit and prev[common] == data[common]:
                common += 1
            del path[common + 1:]
            cur = path[common]
            i = common
            ok = False
            while cur is not None:
                if i == n:
                    ok = True
                    break
                for g in cur.scan:
                    st = g
                    j = i
                    while j < n:
                        st = trans[st][data[j]]
                        if st < 0:
                            break
                        j += 1
                    if st >= 0:
                        ok = True
                        break
                if ok:
                    break
                cur = rec.step(cur, data[i])
                path.append(cur)
                i += 1
            if ok:
                out[t >> 5] |= np.uint32(1 << (t & 31))
            prev = data

    # -- reporting --------------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        """Bytes held by both caches now."""
        return self._state_bytes + self._mask_bytes

    @property
    def cached_states(self) -> int:
        """Automaton states whose layers are cached."""
        return len(self._states)

    @property
    def cached_masks(self) -> int:
        """Finished masks cached by signature."""
        return len(self._masks)
