"""`CFGMatcher`: a :class:`~corral.Matcher` over a context-free grammar's Earley chart."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from corral.errors import CorralError
from corral.runtime.arguments import byte_string, step_count, token_index, token_int
from corral.runtime.earley import ESet
from corral.runtime.engine import earley_engine
from corral.runtime.matcher import Matcher

if TYPE_CHECKING:
    from corral.compiler.compiled import CompiledGrammar

__all__ = ["CFGMatcher"]

_FINISHED = None
_M = TypeVar("_M", bound="CFGMatcher")


class CFGMatcher(Matcher):
    """A :class:`Matcher` for ``compile_grammar(...)`` grammars (see :class:`Matcher` for the API).

    Keeps one chart set per accepted step; rolling back drops sets. Masks come from the grammar's
    shared mask store, cached by chart-set signature.
    """

    __slots__ = ("_grammar", "_rec", "_store", "_sets", "_eos", "_tokens", "_size")

    def __init__(self, grammar: CompiledGrammar) -> None:
        engine = earley_engine(grammar)
        self._grammar = grammar
        self._rec = engine.recognizer
        self._store = engine.store
        self._eos = frozenset(grammar.vocab.eos_token_ids)
        self._tokens = grammar.vocab.token_bytes
        self._size = grammar.vocab.size
        self._sets: list[ESet | None] = [engine.recognizer.initial()]

    @property
    def grammar(self) -> CompiledGrammar:
        """The grammar this matcher runs."""
        return self._grammar

    @property
    def num_tokens(self) -> int:
        """Number of tokens accepted so far (what :meth:`rollback` can undo)."""
        return len(self._sets) - 1

    def next_token_mask(self) -> np.ndarray:
        """The allowed next tokens, as a packed bitset (see :meth:`Matcher.next_token_mask`)."""
        s = self._sets[-1]
        if s is None:
            return self._store.zeros
        return self._store.mask(s)

    def _mask_if_ready(self) -> np.ndarray | None:
        s = self._sets[-1]
        if s is None:
            return self._store.zeros
        return self._store.lookup(s)

    def is_accepting(self) -> bool:
        """Whether the text so far is a complete sentence of the grammar (EOS allowed)."""
        s = self._sets[-1]
        return s is not None and s.accepting

    def is_finished(self) -> bool:
        """Whether an EOS id has been accepted."""
        return self._sets[-1] is None

    def check_token(self, token_id: int) -> bool:
        """Whether ``token_id`` is allowed next, without building the mask (see :meth:`Matcher.check_token`).

        A mask already cached for the current chart set answers with one bit test. Otherwise the
        token's bytes are read by the terminal automata of the set's scanning items (a token that
        stays inside a terminal, the common case, builds no chart set), and only a token that
        crosses a terminal's end runs the recogniser, on new sets: the matcher is unchanged.

        Raises
        ------
        CorralError
            If ``token_id`` is not an integer or is outside ``0 .. vocab.size - 1``.
        """
        t = token_index(token_id, self._size)
        s = self._sets[-1]
        if s is None:
            return False
        if s.sig >= 0:
            mask = self._store.cached_mask(s)
            if mask is not None:
                return bool((int(mask[t >> 5]) >> (t & 31)) & 1)
        if t in self._eos and s.accepting:
            return True
        if t >= len(self._tokens):
            return False  # padding up to the logits width
        data = self._tokens[t]
        if not data:
            return False
        return self._rec.viable(s, data)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token if it is allowed (see :meth:`Matcher.accept_token`)."""
        s = self._sets[-1]
        if s is None:
            return False
        t = token_int(token_id)
        if t in self._eos:
            if s.accepting:
                self._finish()
                return True
            return False
        if not 0 <= t < len(self._tokens):
            return False
        data = self._tokens[t]
        if not data:
            return False
        return self._advance(data)

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw text; one step for :meth:`rollback` (see :meth:`Matcher.accept_bytes`)."""
        if self._sets[-1] is None:
            return False
        return self._advance(byte_string(data))

    def _advance(self, data: bytes) -> bool:
        """One step by ``data`` (not finished), if the text stays a prefix of the language."""
        nxt = self._rec.feed(self._sets[-1], data)  # type: ignore[arg-type]
        if nxt is None:
            return False
        self._sets.append(nxt)
        return True

    def _finish(self) -> None:
        """One step by an EOS id (the text is a sentence)."""
        self._sets.append(_FINISHED)

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` steps (see :meth:`Matcher.rollback`)."""
        n = step_count(n)
        if n < 0 or n > len(self._sets) - 1:
            raise CorralError(f"cannot roll back {n} tokens: {len(self._sets) - 1} accepted")
        if n:
            del self._sets[-n:]

    def reset(self) -> None:
        """Back to the start of the grammar."""
        del self._sets[1:]

    def fork(self: _M) -> _M:
        """An independent copy (same grammar, same history; chart sets are shared, never mutated)."""
        other = type(self).__new__(type(self))
        self._fork_into(other)
        return other

    def _fork_into(self, other: CFGMatcher) -> None:
        """Copy this matcher's state into ``other`` (a new, empty instance of the same class)."""
        other._grammar = self._grammar
        other._rec = self._rec
        other._store = self._store
        other._eos = self._eos
        other._tokens = self._tokens
        other._size = self._size
        other._sets = list(self._sets)

    def forced_bytes(self) -> bytes:
        """The text the grammar determines from here with no choice (see :meth:`Matcher.forced_bytes`)."""
        s = self._sets[-1]
        out = bytearray()
        while s is not None and not s.accepting and len(out) < (1 << 16):
            nb = self._rec.next_bytes(s)
            if len(nb) != 1:
                break
            out.append(nb[0])
            s = self._rec.step(s, nb[0])
        return bytes(out)
