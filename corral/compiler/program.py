"""The typed programs a :class:`~corral.CompiledGrammar` holds: what compiling produced, frozen.

A regular constraint compiles to a :class:`DFAProgram` (its byte automaton, its mask classes and,
when they fit the budget, every class's mask); a grammar or a JSON Schema compiles to an
:class:`EarleyProgram` (its IR, the Earley parser tables with the terminal automata and FOLLOW
sets). Everything the runtime builds from them while generating (the recognizer's signatures, the
lazy mask caches) is kept by the runtime, outside these objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.compiler.automaton import ByteDFA
from corral.compiler.earley_tables import EarleyTables
from corral.compiler.grammar_ir import GrammarIR
from corral.compiler.maskstore import DEFAULT_MASK_CACHE_BYTES, MaskTable, build_mask_table
from corral.compiler.regex import RegexLimits
from corral.compiler.vocabulary import Vocabulary

__all__ = ["DFAProgram", "EarleyProgram", "Program", "dfa_program"]


@dataclass(frozen=True, eq=False)
class DFAProgram:
    """A compiled regular constraint.

    Attributes
    ----------
    dfa:
        The trimmed byte automaton.
    classes:
        Read-only ``int64[dfa.n_states]``: the mask class of each state (states of one class have
        equal masks; see :func:`~corral.compiler.maskstore.mask_classes`).
    table:
        Every class's mask, when compiling computed them (they fit ``mask_cache_bytes``); ``None``
        when the runtime computes them on first use.
    mask_cache_bytes:
        Memory budget of the masks (the runtime's LRU when ``table`` is ``None``).
    """

    dfa: ByteDFA
    classes: np.ndarray
    table: MaskTable | None
    mask_cache_bytes: int

    @property
    def n_classes(self) -> int:
        """Number of distinct masks (mask classes)."""
        return int(self.classes.max()) + 1 if self.classes.shape[0] else 0

    @property
    def eager(self) -> bool:
        """Whether every mask was computed at compile time."""
        return self.table is not None


@dataclass(frozen=True, eq=False)
class EarleyProgram:
    """A compiled context-free grammar (a Lark or GBNF grammar, or a JSON Schema).

    Attributes
    ----------
    ir:
        The grammar IR it was built from (names, patterns, positions: what messages need).
    tables:
        The Earley parser tables: productions, the stacked terminal automata, FOLLOW sets and the
        follow-filter automata.
    mask_cache_bytes:
        Memory budget of each of the runtime's two mask caches (LRU).
    limits:
        Limits for the follow automata the runtime builds lazily per terminal.
    """

    ir: GrammarIR
    tables: EarleyTables
    mask_cache_bytes: int
    limits: RegexLimits


Program = DFAProgram | EarleyProgram
"""One typed artifact of a :class:`~corral.CompiledGrammar`."""


def dfa_program(
    dfa: ByteDFA,
    vocab: Vocabulary,
    *,
    max_bytes: int = DEFAULT_MASK_CACHE_BYTES,
    precomputed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> DFAProgram:
    """The :class:`DFAProgram` of ``dfa`` over ``vocab``: its mask classes, and their masks when
    they fit ``max_bytes`` (see :func:`~corral.compiler.maskstore.build_mask_table`).

    Parameters
    ----------
    dfa, vocab:
        The automaton and the vocabulary.
    max_bytes:
        Memory budget for stored masks.
    precomputed:
        ``(classes, masks, counts, single)`` from a disk cache.

    Returns
    -------
    DFAProgram
    """
    classes, table = build_mask_table(dfa, vocab, max_bytes=max_bytes, precomputed=precomputed)
    return DFAProgram(dfa, classes, table, int(max_bytes))
