"""`Matcher`: the per-sequence state of a constraint during generation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from corral.compiler.automaton import frozen
from corral.compiler.maskstore import advance_token
from corral.errors import CorralError
from corral.runtime.arguments import byte_string, step_count, token_index, token_int, token_list
from corral.runtime.engine import dfa_engine

if TYPE_CHECKING:
    from corral.compiler.compiled import CompiledGrammar

__all__ = ["Matcher", "RegexMatcher"]

_MAX_FORCED = 4096


class Matcher:
    """Tracks one sequence through a :class:`~corral.CompiledGrammar` (regex or grammar alike).

    Mutable and cheap: create one per sequence with ``grammar.matcher()``, copy it with
    :meth:`fork`, undo tokens with :meth:`rollback`. Not thread-safe (one sequence, one thread);
    the grammar it reads from is.

    The text so far always stays a prefix of some string of the language: :meth:`accept_token`
    refuses any token that would break that, and :meth:`next_token_mask` allows exactly the tokens
    that keep it (and the EOS ids exactly when the text is a complete string of the language).
    After an EOS id has been accepted the matcher is finished and allows nothing.

    Examples
    --------
    >>> from corral import Vocabulary, compile_regex
    >>> vocab = Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
    >>> m = compile_regex("(ab)+", vocab).matcher()
    >>> [t for t in range(4) if m.allows(t)]
    [0, 2]
    >>> m.accept_token(2), m.is_accepting(), m.accept_token(3), m.is_finished()
    (True, True, True, True)
    """

    __slots__ = ()

    # -- the engine-specific core (each engine implements these) ----------------------------
    @property
    def grammar(self) -> CompiledGrammar:
        """The grammar this matcher runs."""
        raise NotImplementedError

    @property
    def num_tokens(self) -> int:
        """Number of tokens accepted so far (what :meth:`rollback` can undo)."""
        raise NotImplementedError

    def next_token_mask(self) -> np.ndarray:
        """The allowed next tokens, as a packed bitset.

        Returns
        -------
        numpy.ndarray
            Read-only ``uint32[ceil(vocab.size / 32)]``; bit ``t & 31`` of word ``t >> 5`` is set
            when token ``t`` is allowed. Copy it before modifying it. Convert with
            :func:`corral.bitmask_to_bool` or apply with :func:`corral.apply_token_bitmask_`.
        """
        raise NotImplementedError

    def is_accepting(self) -> bool:
        """Whether the text so far is a complete string of the language (EOS allowed)."""
        raise NotImplementedError

    def is_finished(self) -> bool:
        """Whether an EOS id has been accepted."""
        raise NotImplementedError

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token if it is allowed.

        Returns
        -------
        bool
            ``True`` if the token was accepted; ``False`` (state unchanged) if it is not allowed,
            including ids outside the vocabulary and any token after the matcher finished.
        """
        raise NotImplementedError

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw text (e.g. :meth:`forced_bytes`); counts as one step for :meth:`rollback`.

        Returns
        -------
        bool
            ``True`` if the text keeps the output completable; otherwise nothing changes.
        """
        raise NotImplementedError

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` accepted steps (tokens, or :meth:`accept_bytes` calls).

        Raises
        ------
        CorralError
            If ``n`` is negative or larger than :attr:`num_tokens`.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the start of the constraint."""
        raise NotImplementedError

    def fork(self) -> Matcher:
        """An independent copy (same grammar, same history)."""
        raise NotImplementedError

    def forced_bytes(self) -> bytes:
        """The text the constraint determines from here with no choice (may be empty).

        Stops where the text could end (accepting) or where two bytes are possible.
        """
        raise NotImplementedError

    def _mask_if_ready(self) -> np.ndarray | None:
        """:meth:`next_token_mask` when it is already known (stored, cached, or finished), else
        ``None``; never computes a mask. :func:`corral.fill_next_token_bitmask` copies these rows
        in the calling thread and sends only the others to its worker threads."""
        return None

    # -- shared -----------------------------------------------------------------------------
    def fill_next_token_mask(self, out: np.ndarray) -> None:
        """Write :meth:`next_token_mask` into ``out`` (e.g. a row of a batch bitmask).

        Raises
        ------
        ValueError
            If ``out`` does not have the mask's shape.
        """
        out[...] = self.next_token_mask()

    def check_token(self, token_id: int) -> bool:
        """Whether ``token_id`` is allowed next, decided without building the whole mask.

        Equal to bit ``token_id`` of :meth:`next_token_mask` for every id of the mask: text tokens
        whose bytes keep the text completable (also those that end inside a UTF-8 character, and
        byte-fallback tokens), EOS ids exactly when the text is complete, never special tokens or
        the padding ids between ``len(vocab)`` and ``vocab.size``, nothing once finished. The
        matcher does not change. This is the check rejection sampling makes on each drawn token;
        the engines walk the token's bytes from the current state (this fallback reads the mask).

        Parameters
        ----------
        token_id:
            An id of the mask, ``0 <= token_id < grammar.vocab.size`` (``int`` or NumPy integer).

        Returns
        -------
        bool
            ``True`` exactly when bit ``token_id`` of :meth:`next_token_mask` is set.

        Raises
        ------
        CorralError
            If ``token_id`` is not an integer or is outside ``0 .. vocab.size - 1``.

        Examples
        --------
        >>> from corral import Vocabulary, compile_regex
        >>> vocab = Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3], size=8)
        >>> m = compile_regex("(ab)+", vocab).matcher()
        >>> m.check_token(2), m.check_token(1), m.check_token(3), m.check_token(7)
        (True, False, False, False)
        >>> m.accept_token(2), m.check_token(3)
        (True, True)
        >>> m.check_token(8)
        Traceback (most recent call last):
        ...
        corral.errors.CorralError: token id 8 is outside the mask (ids 0 to 7)
        """
        t = token_index(token_id, self.grammar.vocab.size)
        return bool((int(self.next_token_mask()[t >> 5]) >> (t & 31)) & 1)

    def allows(self, token_id: int) -> bool:
        """Whether ``token_id`` is allowed next: :meth:`check_token`, but ``False`` for ids
        outside the mask instead of an error."""
        t = token_int(token_id)
        if not 0 <= t < self.grammar.vocab.size:
            return False
        return self.check_token(t)

    def accept_tokens(self, token_ids: list[int]) -> bool:
        """Accept several tokens; all or none.

        Returns
        -------
        bool
            ``True`` when every token was accepted; otherwise the state is unchanged.
        """
        n = 0
        for t in token_list(token_ids):
            if not self.accept_token(t):
                self.rollback(n)
                return False
            n += 1
        return True

    def forced_tokens(self) -> list[int]:
        """Text tokens the mask forces from here: while exactly one id is allowed, that id.

        EOS ids are never included (when the text is complete, look at :meth:`is_accepting`).
        The matcher is not advanced.
        """
        probe = self.fork()
        eos = set(self.grammar.vocab.eos_token_ids)
        out: list[int] = []
        while not probe.is_finished() and len(out) < _MAX_FORCED:
            mask = probe.next_token_mask()
            nz = np.flatnonzero(mask)
            if nz.shape[0] != 1:
                break
            word = int(mask[nz[0]])
            if word & (word - 1):
                break
            t = int(nz[0]) * 32 + word.bit_length() - 1
            if t in eos or not probe.accept_token(t):
                break
            out.append(t)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tokens={self.num_tokens}, accepting={self.is_accepting()}, finished={self.is_finished()})"


class RegexMatcher(Matcher):
    """A :class:`Matcher` over a regex's DFA (created by ``compile_regex(...).matcher()``)."""

    # State ids are DFA states; the extra id ``_fin`` (== number of DFA states) means "finished".
    __slots__ = ("_grammar", "_store", "_trans", "_flat", "_offsets", "_accepting", "_eos", "_states",
                 "_zeros", "_rows", "_fin", "_size")

    def __init__(self, grammar: CompiledGrammar) -> None:
        self._grammar = grammar
        store = dfa_engine(grammar).store
        self._store = store
        dfa = store.dfa
        self._trans = frozen(dfa.trans)  # one kernel signature (see frozen)
        self._flat = store.trie.flat
        self._offsets = store.trie.offsets
        self._fin = dfa.n_states
        self._accepting: list[bool] = dfa.accepting.tolist() + [False]
        self._eos = grammar.vocab.eos_token_ids
        self._states: list[int] = [dfa.start]
        self._zeros = store.zeros
        self._rows = store.rows  # shared, built once by the store (finished row included)
        self._size = grammar.vocab.size

    # -- queries ----------------------------------------------------------------------------
    @property
    def grammar(self) -> CompiledGrammar:
        """The grammar this matcher runs."""
        return self._grammar

    @property
    def num_tokens(self) -> int:
        """Number of tokens accepted so far (what :meth:`rollback` can undo)."""
        return len(self._states) - 1

    def next_token_mask(self) -> np.ndarray:
        """The allowed next tokens, as a packed bitset.

        Returns
        -------
        numpy.ndarray
            Read-only ``uint32[ceil(vocab.size / 32)]``; bit ``t & 31`` of word ``t >> 5`` is set
            when token ``t`` is allowed. Copy it before modifying it. Convert with
            :func:`corral.bitmask_to_bool` or apply with :func:`corral.apply_token_bitmask_`.
        """
        rows = self._rows
        if rows is not None:
            return rows[self._states[-1]]
        s = self._states[-1]
        if s == self._fin:
            return self._zeros
        return self._store.mask(s)

    def _mask_if_ready(self) -> np.ndarray | None:
        rows = self._rows
        if rows is not None:
            return rows[self._states[-1]]
        s = self._states[-1]
        if s == self._fin:
            return self._zeros
        return self._store.cached(s)

    def is_accepting(self) -> bool:
        """Whether the text so far is a complete string of the language (EOS allowed)."""
        return self._accepting[self._states[-1]]

    def is_finished(self) -> bool:
        """Whether an EOS id has been accepted."""
        return self._states[-1] == self._fin

    def check_token(self, token_id: int) -> bool:
        """Whether ``token_id`` is allowed next, without building the mask (see :meth:`Matcher.check_token`).

        An eager store's stored row answers with one bit test; otherwise the token's bytes are
        walked through the DFA from the current state (O(token length)).

        Raises
        ------
        CorralError
            If ``token_id`` is not an integer or is outside ``0 .. vocab.size - 1``.
        """
        t = token_index(token_id, self._size)
        s = self._states[-1]
        rows = self._rows
        if rows is not None:
            return bool((int(rows[s][t >> 5]) >> (t & 31)) & 1)
        if s == self._fin:
            return False
        if t in self._eos and self._accepting[s]:
            return True
        if t >= self._offsets.shape[0] - 1:
            return False  # padding up to the logits width
        return bool(advance_token(self._trans, s, self._flat, self._offsets, t) >= 0)

    # -- updates ----------------------------------------------------------------------------
    def accept_token(self, token_id: int) -> bool:
        """Advance by one token if it is allowed (see :meth:`Matcher.accept_token`)."""
        s = self._states[-1]
        if s == self._fin:
            return False
        t = token_int(token_id)
        if t in self._eos:
            if self._accepting[s]:
                self._states.append(self._fin)
                return True
            return False
        if not 0 <= t < self._offsets.shape[0] - 1:
            return False
        nxt = advance_token(self._trans, s, self._flat, self._offsets, t)
        if nxt < 0:
            return False
        self._states.append(int(nxt))
        return True

    def accept_tokens(self, token_ids: list[int]) -> bool:
        """Accept several tokens; all or none (see :meth:`Matcher.accept_tokens`)."""
        before = len(self._states)
        for t in token_list(token_ids):
            if not self.accept_token(t):
                del self._states[before:]
                return False
        return True

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw text (e.g. :meth:`forced_bytes`); counts as one step for :meth:`rollback`.

        Returns
        -------
        bool
            ``True`` if the text keeps the output completable; otherwise nothing changes.
        """
        s = self._states[-1]
        if s == self._fin:
            return False
        trans = self._trans
        for b in byte_string(data):
            s = int(trans[s, b])
            if s < 0:
                return False
        self._states.append(s)
        return True

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` accepted steps (tokens, or :meth:`accept_bytes` calls).

        Raises
        ------
        CorralError
            If ``n`` is negative or larger than :attr:`num_tokens`.
        """
        n = step_count(n)
        if n < 0 or n > len(self._states) - 1:
            raise CorralError(f"cannot roll back {n} tokens: {len(self._states) - 1} accepted")
        if n:
            del self._states[-n:]

    def reset(self) -> None:
        """Back to the start of the constraint."""
        del self._states[1:]

    def fork(self) -> RegexMatcher:
        """An independent copy (same grammar, same history)."""
        other = RegexMatcher.__new__(RegexMatcher)
        other._grammar = self._grammar
        other._store = self._store
        other._trans = self._trans
        other._flat = self._flat
        other._offsets = self._offsets
        other._accepting = self._accepting
        other._eos = self._eos
        other._states = list(self._states)
        other._zeros = self._zeros
        other._rows = self._rows
        other._fin = self._fin
        other._size = self._size
        return other

    # -- jump-forward -----------------------------------------------------------------------
    def forced_bytes(self) -> bytes:
        """The text the constraint determines from here with no choice (may be empty).

        Stops where the text could end (accepting) or where two bytes are possible.
        """
        s = self._states[-1]
        if s == self._fin:
            return b""
        out = bytearray()
        trans = self._trans
        while not self._accepting[s] and len(out) < (1 << 16):
            nz = np.flatnonzero(trans[s] >= 0)
            if nz.shape[0] != 1:
                break
            b = int(nz[0])
            out.append(b)
            s = int(trans[s, b])
        return bytes(out)

    def forced_tokens(self) -> list[int]:
        """Text tokens the mask forces from here: while exactly one id is allowed, that id.

        EOS ids are never included (when the text is complete, look at :meth:`is_accepting`).
        The matcher is not advanced.
        """
        s = self._states[-1]
        out: list[int] = []
        store = self._store
        while s != self._fin and len(out) < _MAX_FORCED:
            t = store.single_token(s)
            if t < 0 or t in self._eos:
                break
            out.append(t)
            s = int(advance_token(self._trans, s, self._flat, self._offsets, t))
        return out

