"""Per-grammar runtime state, kept outside the frozen :class:`~corral.CompiledGrammar`.

A compiled grammar is immutable; what generating builds from it (the Earley recognizer's interned
signatures, the lazy mask caches) is created here on first use, once per grammar, and shared by
every matcher of that grammar. The state lives as long as the grammar (a weak-keyed registry),
and is never serialised: a grammar loaded from bytes or a cache starts with empty caches.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from corral.compiler.compiled import CompiledGrammar
from corral.compiler.earley_tables import EarleyTables
from corral.compiler.grammar_ir import Guard
from corral.compiler.program import DFAProgram, EarleyProgram
from corral.runtime.cfg_maskstore import CFGMaskStore
from corral.runtime.earley import Recognizer
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
    # for the run-time checks (corral.runtime.guards), empty when the grammar has none: the
    # productions of the rules they guard, with their check, and every object production with
    # its length (the chart is asked which of them a bracket opens or ends)
    checked: dict[int, Guard] = field(default_factory=dict)
    objects: dict[int, int] = field(default_factory=dict)


_ENGINES: weakref.WeakKeyDictionary[CompiledGrammar, DFAEngine | EarleyEngine] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _build(grammar: CompiledGrammar) -> DFAEngine | EarleyEngine:
    program = grammar.program
    if isinstance(program, DFAProgram):
        return DFAEngine(DFAMaskStore(program, grammar.vocab))
    checked, objects = _checked_productions(program)
    # signatures tell apart the productions the checks ask the chart about
    recognizer = Recognizer(program.tables, observed=frozenset(checked) | frozenset(objects))
    store = CFGMaskStore(program.tables, recognizer, grammar.vocab, max_bytes=program.mask_cache_bytes,
                         limits=program.limits)
    return EarleyEngine(recognizer, store, checked, objects)


def _checked_productions(program: EarleyProgram) -> tuple[dict[int, Guard], dict[int, int]]:
    """The fields ``checked`` and ``objects`` of :class:`EarleyEngine` (both empty when no
    production is checked)."""
    tables = program.tables
    index = {name: i for i, name in enumerate(tables.nonterminals)}
    checked: dict[int, Guard] = {}
    for name, check in program.ir.guards.items():
        nt = index.get(name)
        if nt is not None:
            for p in tables.prods_of[nt]:
                checked[p] = check
    if not checked:
        return {}, {}
    return checked, _object_productions(tables)


def _object_productions(tables: EarleyTables) -> dict[int, int]:
    """Every object production, with its length: ``"{" X "}"`` whose first and last symbols are
    terminals that read exactly those bytes (possibly after whitespace)."""

    rows = tables.trans[np.asarray(tables.term_start, dtype=np.int64)]  # [terminal, byte]: its first byte
    few = (rows >= 0).sum(axis=1) <= 5

    def reading(byte: int) -> np.ndarray:  # per terminal: it reads exactly ``byte`` (few first bytes)
        to = rows[:, byte]
        return few & (to >= 0) & tables.accepting[np.maximum(to, 0)]

    opens, closes = reading(0x7B), reading(0x7D)
    # over the flat bodies at once (a Python pass over every production cost ~0.8 ms of a
    # checked schema's first mask): terminal symbol t is written -2 - t
    flat, ptr = tables.rhs_flat, tables.rhs_ptr
    lengths = np.diff(ptr)
    cand = np.flatnonzero(lengths >= 2)
    first = flat[ptr[cand]].astype(np.int64)
    last = flat[ptr[cand + 1] - 1].astype(np.int64)
    ok = (first < 0) & (last < 0)
    cand, first, last = cand[ok], first[ok], last[ok]
    cand = cand[opens[-2 - first] & closes[-2 - last]]
    return dict(zip(cand.tolist(), lengths[cand].tolist()))


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
