"""Grammar IR -> the tables the Earley runtime reads: productions, terminal byte automata, FOLLOW.

Lowering
--------
- Every terminal becomes a trimmed, minimised byte DFA. When the grammar has ``%ignore``
  terminals, each terminal ``T`` is compiled as ``IGNORE* T`` (``IGNORE`` the union of the ignored
  terminals), and the start rule is followed by a terminal ``IGNORE*``: exactly "ignored text may
  appear between any two terminals and at both ends", with no extra parser items at run time.
- All terminal DFAs are stacked into one transition table (``trans``, global state ids), so a
  scanning Earley item carries a single integer for "where it is inside its terminal".
- Symbols are numbered: nonterminals ``0..n_nonterminals-1``; in production bodies a terminal
  ``t`` is stored as ``-2 - t`` so that ``>= 0`` means nonterminal.
- Rules or alternatives that can never finish (unproductive) are removed, so every Earley item the
  runtime creates can still complete; this is what makes masks exact without lookahead.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from corral.compiler.analysis import nullable_nonterminals, productive_rules, terminal_follow_matrix
from corral.compiler.automaton import (
    ByteDFA,
    ByteNFA,
    determinize,
    frozen,
    minimize,
    write_shifted,
)
from corral.compiler.grammar_ir import GrammarIR, source_offset
from corral.compiler.limits import TABLE_ROW_BYTES, current_budget
from corral.compiler.regex import RegexLimits, regex_to_dfa
from corral.errors import GrammarError

__all__ = ["EarleyTables", "build_tables", "dfa_into_nfa"]

START = "$start"
TRAIL = "$trailing_ignored"


def dfa_into_nfa(nfa: ByteNFA, dfa: ByteDFA) -> tuple[int, int]:
    """Copy ``dfa`` into ``nfa``; return (entry, exit) states (exit reached by epsilon from accepts)."""
    base = len(nfa)
    for _ in range(dfa.n_states):
        nfa.new_state()
    final = nfa.new_state()
    trans = dfa.trans
    # runs of equal targets per row, found with numpy (rows are 256 wide, Python loops are slow)
    change = np.ones((trans.shape[0], 256), dtype=bool)
    change[:, 1:] = trans[:, 1:] != trans[:, :-1]
    rows, cols = np.nonzero(change)
    ends = np.empty_like(cols)
    ends[:-1] = cols[1:] - 1
    if ends.shape[0]:
        last_of_row = np.append(rows[1:] != rows[:-1], True)
        ends[last_of_row] = 255  # a row's last run ends at byte 255
    targets = trans[rows, cols]
    keep = targets >= 0
    for s, b, e, t in zip(rows[keep].tolist(), cols[keep].tolist(), ends[keep].tolist(), targets[keep].tolist()):
        nfa.edges[base + s].append((b, e, base + t))
    for s in np.flatnonzero(dfa.accepting).tolist():
        nfa.eps[base + s].append(final)
    return base + dfa.start, final


def _union_star_concat(parts: list[ByteDFA], tail: ByteDFA | None, limits: RegexLimits) -> ByteDFA:
    """DFA of ``(p1 | p2 | ...)* tail`` (``tail`` None: the empty string)."""
    nfa = ByteNFA()
    hub = nfa.new_state()
    for d in parts:
        s, f = dfa_into_nfa(nfa, d)
        nfa.eps[hub].append(s)
        nfa.eps[f].append(hub)
    if tail is None:
        final = nfa.new_state()
        nfa.eps[hub].append(final)
    else:
        s, final = dfa_into_nfa(nfa, tail)
        nfa.eps[hub].append(s)
    return minimize(determinize(nfa, hub, final, max_states=limits.max_states))


MAX_FILTER_STATES = 256
"""A terminal's follow filter (``EarleyTables.term_filters``) with more states than this is used
only through its :func:`union_head`: the mask store filters crossing candidates by its first
byte alone, and a compiler may give such a filter as that head directly."""


def union_head(dfas: list[ByteDFA]) -> ByteDFA:
    """One two-state superset of the union of ``dfas``, read off their start states: the start
    state reads a byte into itself when every automaton that reads it loops on it there (a
    whitespace prefix), and into acceptance when any of them moves on it; the start accepts when
    one of theirs does. The mask store filters a big follower by its own head, and a FOLLOW set
    of hundreds of followers (the keys of a big object) by theirs together: stacking each
    follower cost detekt's first mask an 18k-row table (30-60 ms of writes and page faults) and
    each candidate a walk per follower; the candidates the head lets through more are settled
    exactly by the mask's last layer."""
    return head_of_rows(np.stack([np.asarray(d.trans[d.start]) for d in dfas]),
                        np.array([int(d.start) for d in dfas], dtype=np.int64),
                        any(bool(d.accepting[d.start]) for d in dfas))


def head_of_rows(rows: np.ndarray, starts: np.ndarray, accepting: bool) -> ByteDFA:
    """:func:`union_head` of the automata whose start states ``starts`` have the rows ``rows``
    (``int32[k, 256]``), one of which accepts when ``accepting``: all the head reads of them (a
    compiler can give a big filter's head without building the filter)."""
    reads = rows >= 0
    moves = (reads & (rows != starts[:, None])).any(axis=0)
    head = np.where(moves, 1, np.where(reads.any(axis=0), 0, -1)).astype(np.int32)
    trans = np.vstack([head[None, :], np.full((1, 256), -1, dtype=np.int32)])
    return ByteDFA(trans, np.array([accepting, True]), 0)


def union_of(parts: list[ByteDFA], limits: RegexLimits) -> ByteDFA:
    """DFA of ``p1 | p2 | ...``."""
    nfa = ByteNFA()
    entry = nfa.new_state()
    final = nfa.new_state()
    for d in parts:
        s, f = dfa_into_nfa(nfa, d)
        nfa.eps[entry].append(s)
        nfa.eps[f].append(final)
    return minimize(determinize(nfa, entry, final, max_states=limits.max_states))


@dataclass
class EarleyTables:
    """Everything the Earley runtime needs, as plain Python lists (fast to index) and arrays.

    Attributes
    ----------
    nonterminals:
        Names, indexed by nonterminal id (``$start`` is id 0).
    terminals:
        Names, indexed by terminal id.
    lhs, rhs:
        Per production: its nonterminal id and its body (nonterminal ids ``>= 0``, terminal ``t``
        as ``-2 - t``).
    prods_of:
        Per nonterminal: its production ids.
    nullable:
        Per nonterminal: derives the empty string.
    start_prod:
        The production ``$start -> start [trailing ignored]``.
    trans, accepting:
        Stacked terminal automata over global state ids (``int32[n, 256]`` and ``bool[n]``).
        The runtime's interpreter turns the rows it visits into lists on first use: converting
        the whole table here cost seconds (and gigabytes) for long length counters.
    term_start, term_nullable, term_of_state:
        Per terminal: its DFA's start state, whether it matches the empty string; per global
        state: its terminal.
    term_dfas:
        Per terminal: its (folded) DFA.
    term_filters:
        Per terminal: an automaton of a superset of its language for follow-set filtering (its
        ``follow_dfa``, or its DFA).
    follow:
        Per terminal: ids of the terminals that can come right after it.
    rhs_flat, rhs_ptr:
        The bodies as arrays: production ``p``'s body is ``rhs_flat[rhs_ptr[p]:rhs_ptr[p + 1]]``
        (``int32``; ``rhs_ptr`` is ``int64``). Made once here: the runtime's array kernels
        (:func:`~corral.runtime.earley_closure.closure_tables`) would otherwise convert the
        tuples on a first mask (40 ms for a schema with 700k positions).
    """

    nonterminals: list[str]
    terminals: list[str]
    lhs: list[int]
    rhs: list[tuple[int, ...]]
    prods_of: list[list[int]]
    nullable: list[bool]
    start_prod: int
    trans: np.ndarray
    accepting: np.ndarray
    accepting_list: list[bool]
    term_start: list[int]
    term_nullable: list[bool]
    term_of_state: np.ndarray
    term_dfas: list[ByteDFA]
    term_filters: list[ByteDFA]
    follow: list[frozenset[int]]
    seconds: float
    rhs_flat: np.ndarray
    rhs_ptr: np.ndarray

    @property
    def n_states(self) -> int:
        """Total terminal-automaton states."""
        return int(self.trans.shape[0])


def _terminal_error(ir: GrammarIR, name: str, err: GrammarError) -> GrammarError:
    """Re-anchor a terminal's regex error in the grammar's source when the regex appears there."""
    t = ir.terminals[name]
    if t.line and ir.source:
        start = source_offset(ir.source, t.line, t.column or 1)
        found = ir.source.find(t.pattern, start, start + 2000)
        pos = found + (err.pos or 0) if found >= 0 else start
        length = err.length if found >= 0 else len(name)
        return GrammarError(f"terminal {name}: {err.message}", source=ir.source, pos=pos, length=length)
    return GrammarError(f"terminal {name}: {err.message}", source=t.pattern, pos=err.pos, length=err.length)


def build_tables(ir: GrammarIR, limits: RegexLimits = RegexLimits()) -> EarleyTables:
    """Lower a validated :class:`GrammarIR` to :class:`EarleyTables`, under the current budget.

    Raises
    ------
    GrammarError
        A terminal's regex is invalid, non-regular or empty; the language is empty.
    CompileLimitError
        An automaton exceeds ``limits``, or the budget (:func:`~corral.compiler.limits.current_budget`)
        runs out of time or memory; the message names the terminal being built.
    """
    t0 = time.perf_counter()
    budget = current_budget()
    check_time = budget.check

    # -- terminals ------------------------------------------------------------------------------
    raw: dict[str, ByteDFA] = {}
    for name, tdef in ir.terminals.items():
        check_time()
        if tdef.dfa is not None:
            if tdef.dfa.accepting.any():
                raw[name] = tdef.dfa
            continue
        try:
            with budget.at(_terminal_where(name, tdef)):
                raw[name] = regex_to_dfa(tdef.pattern, limits)
        except GrammarError as e:
            if "matches no string" in e.message:
                continue  # an empty terminal: rules using it are unproductive (reported below)
            raise _terminal_error(ir, name, e) from None
    ignored = [raw[n] for n in ir.ignore if n in raw]
    # the terminals the rules use, in order of first use (each distinct symbol once, in C)
    chained = itertools.chain.from_iterable(itertools.chain.from_iterable(ir.rules.values()))
    skip = frozenset(ir.ignore)
    used = [s for s in dict.fromkeys(chained) if s in ir.terminals and s not in skip]
    productive = productive_rules(ir.rules, raw, check=check_time)
    if ir.start not in productive:
        raise GrammarError(
            f"the grammar's language is empty: rule {ir.start!r} can never finish "
            "(every alternative needs a rule with no finite derivation)",
            source=ir.source,
            pos=_pos_offset(ir, ir.start),
        )
    terminals = [t for t in used if t in raw]
    term_id = {t: i for i, t in enumerate(terminals)}
    dfas: list[ByteDFA] = [raw[t] for t in terminals]
    if ignored:
        for i, t in enumerate(terminals):
            check_time()
            with budget.at(_terminal_where(t, ir.terminals[t])):
                dfas[i] = _union_star_concat(ignored, raw[t], limits)
        term_id[TRAIL] = len(terminals)
        terminals.append(TRAIL)
        dfas.append(_union_star_concat(ignored, None, limits))

    # -- productions ----------------------------------------------------------------------------
    nts = [START] + [a for a in ir.rules if a in productive]
    nt_id = {a: i for i, a in enumerate(nts)}
    lhs: list[int] = []
    rhs: list[tuple[int, ...]] = []
    prods_of: list[list[int]] = [[] for _ in nts]

    def add(a: int, body: tuple[int, ...]) -> int:
        prods_of[a].append(len(lhs))
        lhs.append(a)
        rhs.append(body)
        return len(lhs) - 1

    start_body = (nt_id[ir.start],) + ((-2 - term_id[TRAIL],) if ignored else ())
    start_prod = add(0, start_body)
    sym_id = {**{t: -2 - i for t, i in term_id.items()}, **nt_id}  # a rule's name wins over a terminal's
    for a, alts in ir.rules.items():
        if a not in productive:
            continue
        if (len(lhs) & 1023) == 0:
            check_time()
        for alt in alts:
            try:
                body = tuple(map(sym_id.__getitem__, alt))
            except KeyError:  # an unproductive or empty symbol: the alternative never finishes
                if not all(s in productive or s in raw for s in alt):
                    continue
                raise
            add(nt_id[a], body)

    # -- stacked automata -----------------------------------------------------------------------
    sizes = [d.n_states for d in dfas]
    total = sum(sizes)
    budget.require(total, "max_grammar_states", f"stacking the grammar's terminals ({total} automaton states)")
    # the stacked table, its row lists for the interpreter, and the per-state arrays
    budget.charge(total * (TABLE_ROW_BYTES + 256 * 8 + 64), f"the grammar's stacked automata ({total} states)")
    starts = [0]
    for n in sizes:
        starts.append(starts[-1] + n)
    trans = np.empty((total, 256), dtype=np.int32)
    for d, off in zip(dfas, starts):
        write_shifted(trans, off, frozen(d.trans))
    acc = np.concatenate([d.accepting for d in dfas]).astype(bool, copy=False) if dfas else np.zeros(0, dtype=bool)
    owner = np.repeat(np.arange(len(dfas), dtype=np.int32), sizes)
    term_start = [off + d.start for d, off in zip(dfas, starts)]
    term_nullable = [bool(acc[s]) for s in term_start]

    # -- nullable and FOLLOW ----------------------------------------------------------------------
    # (over the symbol ids: a nonterminal is its index, a terminal t is -2 - t; in numba, with
    # the mapping forms of corral.compiler.analysis as their oracle in the tests)
    rhs_flat, rhs_ptr = flat_bodies(rhs)
    n_t = len(terminals)
    words = max(1, (n_t + 63) // 64)
    budget.charge((len(nts) + 2 * n_t) * words * 8 + 40 * int(rhs_ptr[-1]), f"the grammar's FOLLOW sets ({n_t} terminals)")
    check_time()
    lhs_arr = np.asarray(lhs, dtype=np.int32)
    tnull = np.asarray(term_nullable, dtype=np.bool_)
    nullable_arr = nullable_nonterminals(lhs_arr, rhs_flat, rhs_ptr, len(nts), tnull)
    nullable = nullable_arr.tolist()
    follow_bits = np.unpackbits(terminal_follow_matrix(lhs_arr, rhs_flat, rhs_ptr, nullable_arr, tnull).view(np.uint8),
                                axis=1, count=n_t, bitorder="little")
    check_time()
    return EarleyTables(
        nonterminals=nts,
        terminals=terminals,
        lhs=lhs,
        rhs=rhs,
        prods_of=prods_of,
        nullable=nullable,
        start_prod=start_prod,
        trans=trans,
        accepting=acc,
        accepting_list=acc.tolist(),
        term_start=term_start,
        term_nullable=term_nullable,
        term_of_state=owner,
        term_dfas=dfas,
        term_filters=[_filter_of(ir, t, d, bool(ignored)) for t, d in zip(terminals, dfas)],
        follow=_follow_sets(follow_bits),
        seconds=time.perf_counter() - t0,
        rhs_flat=rhs_flat,
        rhs_ptr=rhs_ptr,
    )


def _follow_sets(bits: np.ndarray) -> list[frozenset[int]]:
    """Each row of the 0/1 matrix ``bits`` as the set of its columns holding 1: one ``nonzero``
    over the matrix, cut by row (a ``flatnonzero`` per row was ~50 us of a small grammar's
    tables, the ~15 terminals every object schema has)."""
    rows, cols = np.nonzero(bits)
    cuts = np.searchsorted(rows, np.arange(bits.shape[0] + 1)).tolist()
    found = cols.tolist()
    return [frozenset(found[cuts[i]:cuts[i + 1]]) for i in range(bits.shape[0])]


def flat_bodies(rhs: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Production bodies as (``int32`` symbols, ``int64`` offsets: ``len(rhs) + 1``)."""
    ptr = np.zeros(len(rhs) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.fromiter(map(len, rhs), dtype=np.int64, count=len(rhs)))
    flat = np.fromiter(itertools.chain.from_iterable(rhs), dtype=np.int32, count=int(ptr[-1]))
    return flat, ptr


def _terminal_where(name: str, tdef: Any) -> str:
    """Where a terminal is, for limit errors: ``terminal NAME at line L, column C`` when known."""
    line = getattr(tdef, "line", None)
    if line:
        return f"terminal {name} at line {line}, column {getattr(tdef, 'column', None) or 1}"
    return f"terminal {name}"


def _filter_of(ir: GrammarIR, name: str, dfa: ByteDFA, ignored: bool) -> ByteDFA:
    tdef = ir.terminals.get(name)
    if tdef is None or tdef.follow_dfa is None or ignored:
        return dfa
    return tdef.follow_dfa


def _pos_offset(ir: GrammarIR, rule: str) -> int:
    where = ir.rule_positions.get(rule)
    if where is None or not ir.source:
        return 0
    return source_offset(ir.source, *where)
