"""Per-grammar runtime state, kept outside the frozen :class:`~corral.CompiledGrammar`.

A compiled grammar is immutable; what generating builds from it (the Earley recognizer's interned
signatures, the lazy mask caches) is created here on first use, once per grammar, and shared by
every matcher of that grammar. The state lives as long as the grammar (a weak-keyed registry),
and is never serialised: a grammar loaded from bytes or a cache starts with empty caches.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from corral.compiler.compiled import CompiledGrammar
from corral.compiler.program import DFAProgram, EarleyProgram
from corral.runtime.cfg_maskstore import CFGMaskStore
from corral.runtime.earley import Recognizer, object_productions
from corral.runtime.maskstore import DFAMaskStore

__all__ = ["DFAEngine", "EarleyEngine", "engine_for", "dfa_engine", "earley_engine", "recognizer_for",
           "mask_store_for"]


@dataclass(frozen=True, eq=False)
class DFAEngine:
    """The runtime state of a regular constraint: its mask store."""

    store: DFAMaskStore


@dataclass(frozen=True, eq=False)
class EarleyEngine:
    """The runtime state of a grammar or JSON Schema: its recognizer and the mask store that
    caches masks by the recognizer's signatures (the two go together)."""

    recognizer: Recognizer
    store: CFGMaskStore


_ENGINES: weakref.WeakKeyDictionary[CompiledGrammar, DFAEngine | EarleyEngine] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _build(grammar: CompiledGrammar) -> DFAEngine | EarleyEngine:
    program = grammar.program
    if isinstance(program, DFAProgram):
        return DFAEngine(DFAMaskStore(program, grammar.vocab))
    recognizer = Recognizer(program.tables, observed=_checked_productions(program))
    store = CFGMaskStore(program.tables, recognizer, grammar.vocab, max_bytes=program.mask_cache_bytes,
                         limits=program.limits)
    return EarleyEngine(recognizer, store)


def _checked_productions(program: EarleyProgram) -> frozenset[int]:
    """The productions the run-time checks ask the chart about (:class:`~corral.runtime.guards.Guards`:
    which checked rules and which object rules a bracket opens or ends), for a grammar that has
    such checks: signatures tell these productions apart (``Recognizer(observed=...)``)."""
    guards = program.ir.guards
    if not guards:
        return frozenset()
    tables = program.tables
    index = {name: i for i, name in enumerate(tables.nonterminals)}
    checked = {p for name in guards if name in index for p in tables.prods_of[index[name]]}
    return frozenset(checked | set(object_productions(tables)))


def engine_for(grammar: CompiledGrammar) -> DFAEngine | EarleyEngine:
    """The runtime state of ``grammar``, created on its first use (thread-safe: one per grammar).

    Parameters
    ----------
    grammar:
        A compiled grammar.

    Returns
    -------
    DFAEngine or EarleyEngine
        By the grammar's program: :class:`DFAEngine` for a
        :class:`~corral.compiler.program.DFAProgram`, :class:`EarleyEngine` for an
        :class:`~corral.compiler.program.EarleyProgram`.
    """
    hit = _ENGINES.get(grammar)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _ENGINES.get(grammar)
        if hit is None:
            hit = _build(grammar)
            _ENGINES[grammar] = hit
        return hit


def dfa_engine(grammar: CompiledGrammar) -> DFAEngine:
    """:func:`engine_for` a regular constraint.

    Raises
    ------
    TypeError
        When ``grammar`` is a grammar or a JSON Schema.
    """
    engine = engine_for(grammar)
    if not isinstance(engine, DFAEngine):
        raise TypeError(f"a {grammar.kind} has no DFA mask store")
    return engine


def earley_engine(grammar: CompiledGrammar) -> EarleyEngine:
    """:func:`engine_for` a grammar or JSON Schema.

    Raises
    ------
    TypeError
        When ``grammar`` is a regular constraint.
    """
    engine = engine_for(grammar)
    if not isinstance(engine, EarleyEngine):
        raise TypeError(f"a {grammar.kind} has no Earley recognizer")
    return engine


def recognizer_for(grammar: CompiledGrammar) -> Recognizer:
    """The Earley recognizer shared by ``grammar``'s matchers (grammars and JSON Schemas).

    Raises
    ------
    TypeError
        When ``grammar`` is a regular constraint.
    """
    return earley_engine(grammar).recognizer


def mask_store_for(grammar: CompiledGrammar) -> DFAMaskStore | CFGMaskStore:
    """The mask store shared by ``grammar``'s matchers."""
    return engine_for(grammar).store
