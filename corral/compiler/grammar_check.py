"""Static checks of a context-free grammar: every problem at once, for ``corral check``.

The front ends (:func:`~corral.compiler.cfg.lark_to_ir`, :func:`~corral.compiler.gbnf.gbnf_to_ir`)
raise on the first syntax error or undefined symbol. Once a grammar has loaded, this module looks
for everything else, and reports all of it rather than stopping at the first finding:

=========  ==================================================================================
severity   finding
=========  ==================================================================================
error      the start rule is not defined, or it can never finish (the language is empty)
error      a terminal's regex cannot be compiled (unsupported or malformed)
warning    a rule cannot be reached from the start rule
warning    a rule can never finish: it has no finite derivation (only the start rule's case
           is an error; other such rules merely drop out of the language)
warning    a terminal matches no string at all (rules that need it can never finish)
warning    a terminal is defined but never used (nor ignored with ``%ignore``)
info       a rule is left-recursive, directly or through a nullable prefix (corral's Earley
           parser handles it; LL-style tools would not)
=========  ==================================================================================

Lark's loader drops unreachable rules and unused terminals while it compiles a grammar, so for
Lark text :func:`check_lark` analyses a fuller lowering (every rule kept as a start symbol, every
terminal kept) and reads which terminals each terminal definition refers to (Lark inlines those).
Helper rules the loaders create (Lark's ``__start_star_0``, GBNF's ``root__1``, template
instances such as ``_sep{item}``) are never named in findings: only rules written in the source
are.

:func:`check_vocabulary` adds what depends on a tokenizer: terminals that no token can start.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from corral.compiler.analysis import (
    left_corner_graph,
    left_recursion_cycle,
    nullable_rules,
    productive_rules,
    reachable_rules,
)
from corral.compiler.grammar_ir import GrammarIR, TerminalDef, source_offset
from corral.compiler.lark_adapter import grammar_definitions
from corral.compiler.regex import regex_to_dfa
from corral.errors import CorralError, GrammarError

__all__ = [
    "GrammarIssue",
    "check_gbnf",
    "check_grammar",
    "check_lark",
    "check_vocabulary",
    "lark_check_ir",
    "issue_order",
    "load_for_check",
    "reachable_part",
]

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# A rule (or terminal) definition at the start of a line, in Lark (``?name.2{params}:``) or GBNF
# (``name ::=``) syntax. Only names defined this way are the user's; the rest are loader helpers.
_HEADER = re.compile(r"^[ \t]*[?!]?([A-Za-z_][\w-]*)(?:\.-?\d+)?(?:\{[^}\n]*\})?[ \t]*(?:::=|:)", re.MULTILINE)


@dataclass(frozen=True)
class GrammarIssue:
    """One finding of :func:`check_grammar`.

    Attributes
    ----------
    severity:
        ``"error"`` (the grammar cannot be used as written), ``"warning"`` (it can, but something
        in it is dead) or ``"info"``.
    message:
        What was found, naming the rule or terminal.
    line, column:
        1-based position in the grammar's source; ``None`` when unknown.
    length:
        Characters the finding spans from ``column`` (for the marker under the source line).
    """

    severity: str
    message: str
    line: int | None = None
    column: int | None = None
    length: int = 1

    @classmethod
    def from_error(cls, error: GrammarError) -> GrammarIssue:
        """The error a front end raised, as an ``"error"`` issue at the same place."""
        return cls("error", error.message, error.line, error.column, error.length)


def _q(name: str) -> str:
    """A name in quotes (Lark hands out ``Token`` objects, whose ``repr`` is not the name's)."""
    return "'" + str(name) + "'"


def _user_rules(ir: GrammarIR) -> set[str]:
    """The rules defined in the source text (loader helpers excluded)."""
    if ir.source:
        headers = set(_HEADER.findall(ir.source))
        return {a for a in ir.rules if str(a) in headers and not str(a).startswith("__")}
    return {a for a in ir.rules if not str(a).startswith("__")}


def _rule_issue(ir: GrammarIR, severity: str, name: str, message: str) -> GrammarIssue:
    where = ir.rule_positions.get(name)
    if where is None:
        return GrammarIssue(severity, message)
    return GrammarIssue(severity, message, where[0], where[1], len(str(name)))


def _terminal_label(t: TerminalDef) -> str:
    """How findings name a terminal: its name, or its pattern when the loader made the name up."""
    named = t.line is not None and not str(t.name).startswith("__")  # Lark names "x" X, GBNF __t0
    return str(t.name) if named else f"/{t.pattern}/"


def _terminal_position(ir: GrammarIR, t: TerminalDef, err: GrammarError | None = None) -> tuple[int | None, int | None, int]:
    """Where to point for a finding about terminal ``t``: into its pattern when the pattern is in
    the source as written (and at ``err``'s offset inside it), else at its definition."""
    source = ir.source
    begin = 0
    if t.line is not None and source:
        begin = source_offset(source, t.line, t.column or 1)
    found = source.find(t.pattern, begin, begin + 2000) if source and t.pattern else -1
    if found < 0 and t.line is None and source and t.pattern:
        found = source.find(t.pattern)  # an anonymous terminal: its pattern is its only trace
    if found >= 0 and err is not None:
        pos = found + (err.pos or 0)
        length = err.length
    elif t.line is not None:
        return t.line, t.column or 1, len(str(t.name))
    elif found >= 0:
        pos, length = found, len(t.pattern)
    else:
        return None, None, 1
    line = source.count("\n", 0, pos) + 1
    return line, pos - (source.rfind("\n", 0, pos) + 1) + 1, length


def check_grammar(ir: GrammarIR, *, terminal_refs: Mapping[str, Iterable[str]] | None = None) -> list[GrammarIssue]:
    """Every static problem of a loaded grammar (see the module docstring for the list).

    Parameters
    ----------
    ir:
        The grammar. For unreachable rules and unused terminals to be found it must still hold
        them: Lark's own lowering drops them, :func:`lark_check_ir` keeps them.
    terminal_refs:
        Terminal name -> the terminals its definition refers to (Lark's ``NUMBER: DIGIT+``
        inlines ``DIGIT``, so the IR no longer shows that ``DIGIT`` is used).

    Returns
    -------
    list[GrammarIssue]
        Sorted by position; findings without a position last.

    Raises
    ------
    Nothing: every problem is returned as an issue.

    Examples
    --------
    >>> from corral.compiler.cfg import lark_to_ir
    >>> [i.message for i in check_grammar(lark_to_ir('start: start "a" | "a"'))]
    ["rule 'start' is left-recursive (supported)"]
    """
    issues: list[GrammarIssue] = []
    if ir.start not in ir.rules:
        issues.append(GrammarIssue("error", f"the start rule {_q(ir.start)} is not defined"))
        return issues
    user = _user_rules(ir)

    # -- terminals: compile each one ----------------------------------------------------------
    nonempty: set[str] = set()  # terminals with a language, or that failed (no cascade)
    empty_ok: set[str] = set()  # terminals matching the empty string
    for name, t in ir.terminals.items():
        try:
            dfa = regex_to_dfa(t.pattern)
        except GrammarError as e:
            label = _terminal_label(t)
            if "matches no string" in e.message:
                line, col, length = _terminal_position(ir, t)
                issues.append(GrammarIssue(
                    "warning", f"terminal {label} matches no string: rules that need it can never finish",
                    line, col, length,
                ))
                continue
            line, col, length = _terminal_position(ir, t, e)
            issues.append(GrammarIssue("error", f"terminal {label}: {e.message}", line, col, length))
            nonempty.add(name)
            continue
        except CorralError as e:  # limits: too many states, timeout
            line, col, length = _terminal_position(ir, t)
            issues.append(GrammarIssue("error", f"terminal {_terminal_label(t)}: {e}", line, col, length))
            nonempty.add(name)
            continue
        nonempty.add(name)
        if dfa.accepting[dfa.start]:
            empty_ok.add(name)

    # -- rules --------------------------------------------------------------------------------
    reachable = reachable_rules(ir.rules, ir.start)
    for a in ir.rules:
        if a not in reachable and a in user:
            issues.append(_rule_issue(
                ir, "warning", a, f"rule {_q(a)} is never used: it cannot be reached from the start rule {_q(ir.start)}"
            ))
    productive = productive_rules(ir.rules, nonempty)
    if ir.start not in productive:
        issues.append(_rule_issue(
            ir, "error", ir.start,
            f"the grammar's language is empty: rule {_q(ir.start)} can never finish "
            "(every alternative needs a rule with no finite derivation)",
        ))
    for a in ir.rules:
        if a not in productive and a != ir.start and a in user:
            issues.append(_rule_issue(
                ir, "warning", a,
                f"rule {_q(a)} can never finish: every alternative needs a rule with no finite derivation, "
                "so it matches nothing",
            ))
    nullable = nullable_rules(ir.rules, empty_ok)
    graph = left_corner_graph(ir.rules, nullable)
    for a in ir.rules:
        if a not in user:
            continue
        cycle = left_recursion_cycle(graph, a)
        if cycle is None:
            continue
        through = [str(x) for x in cycle[:-1] if x in user and x != a]
        via = f" through {', '.join(_q(x) for x in dict.fromkeys(through))}" if through else ""
        issues.append(_rule_issue(ir, "info", a, f"rule {_q(a)} is left-recursive{via} (supported)"))

    # -- unused terminals -----------------------------------------------------------------------
    refs = terminal_refs or {}
    used = {s for alts in ir.rules.values() for alt in alts for s in alt if s in ir.terminals}
    used |= set(ir.ignore)
    queue = deque(used)
    while queue:
        t_name = queue.popleft()
        for r in refs.get(t_name, ()):
            if r not in used:
                used.add(r)
                queue.append(r)
    for name, t in ir.terminals.items():
        if name in used or str(name).startswith("__"):
            continue
        where = (t.line, t.column or 1, len(str(name))) if t.line is not None else (None, None, 1)
        issues.append(GrammarIssue("warning", f"terminal {name} is defined but never used", *where))

    return sorted(issues, key=issue_order)


def issue_order(i: GrammarIssue) -> tuple[bool, int, int, int]:
    """Findings in text order (unplaced ones last), errors first at one place."""
    return (i.line is None, i.line or 0, i.column or 0, _SEVERITY_ORDER.get(i.severity, 3))


def _merge_issues(load_errors: list[GrammarIssue], findings: list[GrammarIssue]) -> list[GrammarIssue]:
    """The loader's errors and :func:`check_grammar`'s findings, in text order."""
    return sorted(load_errors + findings, key=issue_order)


def lark_check_ir(text: str, *, start: str = "start") -> tuple[GrammarIR, dict[str, frozenset[str]]]:
    """A Lark grammar lowered with nothing dropped, and which terminals each terminal refers to.

    :func:`~corral.compiler.cfg.lark_to_ir` gives the grammar as compiled: Lark leaves out rules
    the start rule never reaches and terminals no rule uses. Here the text is lowered by the same
    function with one extra rule appended, a start rule naming every rule and terminal the text
    defines (so Lark keeps them all), which is then removed again. Positions come from Lark's
    parse of the text. :func:`reachable_part` of the result is the grammar
    :func:`~corral.compiler.cfg.lark_to_ir` gives.

    Returns
    -------
    tuple[GrammarIR, dict[str, frozenset[str]]]
        The IR and, per terminal defined in the text, the terminals its definition names.

    Raises
    ------
    GrammarError
        Exactly what :func:`~corral.compiler.cfg.lark_to_ir` raises for ``text``.
    """
    from corral.compiler.cfg import lark_to_ir

    if not isinstance(text, str):
        return lark_to_ir(text, start=start), {}
    rule_pos, term_pos, refs = grammar_definitions(text)
    if not rule_pos:  # Lark's parser unreachable: find the definitions in the text
        for m in _HEADER.finditer(text):
            name = m.group(1)
            line = text.count("\n", 0, m.start(1)) + 1
            where = (line, m.start(1) - (text.rfind("\n", 0, m.start(1)) + 1) + 1)
            (term_pos if name.lstrip("_")[:1].isupper() else rule_pos).setdefault(name, where)
    everything = sorted(rule_pos) + sorted(term_pos)
    if start not in rule_pos or not everything:
        return lark_to_ir(text, start=start), {}
    top = "corral_check_all"
    while top in text:
        top += "_"
    augmented = text + "\n" + top + ": " + " | ".join(everything) + "\n"
    try:
        full = lark_to_ir(augmented, start=top)
    except GrammarError:  # the text's own error (or a clash with the extra rule): the front end says
        return lark_to_ir(text, start=start), {}
    rules = {a: alts for a, alts in full.rules.items() if a != top}
    terminals = {}
    for name, t in full.terminals.items():
        at = term_pos.get(name)  # imported terminals: their %import
        terminals[name] = TerminalDef(t.name, t.pattern, *at) if at is not None else t
    ir = GrammarIR(
        start=start,
        rules=rules,
        terminals=terminals,
        ignore=full.ignore,
        source=text,
        rule_positions={n: rule_pos.get(n) or p for n, p in full.rule_positions.items() if n in rules},
    )
    return ir, refs


# Undefined symbols, the one load error a checker can step past: each is reported where it is first
# used, then defined as a stub at the end of the text and the load retried, so one run reports every
# undefined symbol and everything else the grammar holds. A rule stub derives the empty string and a
# terminal stub a NUL byte, so neither hides nor invents a finding about the rules that use them.
_UNDEFINED = {
    "lark": re.compile(r"^(?:Rule '([^']+)' used but not defined|Terminal used but not defined: (\S+))"),
    "gbnf": re.compile(r"^undefined rule '([^']+)'$"),
}
MAX_RECOVERED_ERRORS = 100
"""How many undefined symbols one check reports before it stops stepping past them."""


def _stub(syntax: str, name: str) -> str:
    if syntax == "gbnf":
        return f"\n{name} ::= \"\"\n"
    return f'\n{name}: "\\x00"\n' if name.lstrip("_")[:1].isupper() else f"\n{name}: \n"


def load_for_check(
    text: str, syntax: str, *, start: str | None = None
) -> tuple[GrammarIR | None, dict[str, frozenset[str]], list[GrammarIssue]]:
    """Load a grammar for checking, stepping past undefined symbols so that all are reported.

    Parameters
    ----------
    text:
        The grammar's source.
    syntax:
        ``"lark"`` or ``"gbnf"``.
    start:
        The start rule (default ``start`` for Lark, ``root`` for GBNF).

    Returns
    -------
    tuple[GrammarIR | None, dict[str, frozenset[str]], list[GrammarIssue]]
        The IR with nothing dropped (stub rules standing in for the undefined symbols; ``None``
        when an error other than an undefined symbol stops the load), the terminal references
        (see :func:`lark_check_ir`), and the load errors in text order: every undefined symbol at
        its first use, and the error that stopped the load, if any.

    Raises
    ------
    CompileLimitError
        The GBNF front end's repetition or nesting limits.

    Examples
    --------
    >>> ir, _, errors = load_for_check('start: a b\\nc: "c"', "lark")
    >>> [(e.line, e.column, e.message) for e in errors]
    [(1, 8, "Rule 'a' used but not defined (in rule start)"), (1, 10, "Rule 'b' used but not defined (in rule start)")]
    """
    from corral.compiler.gbnf import gbnf_to_ir

    start = start or ("root" if syntax == "gbnf" else "start")
    errors: list[GrammarIssue] = []
    stubs: list[str] = []
    refs: dict[str, frozenset[str]]
    while True:
        source = text + "".join(_stub(syntax, name) for name in stubs)
        try:
            if syntax == "gbnf":
                ir, refs = gbnf_to_ir(source, start=start), {}
            else:
                ir, refs = lark_check_ir(source, start=start)
        except GrammarError as e:
            errors.append(GrammarIssue.from_error(e))
            m = _UNDEFINED[syntax].match(e.message)
            name = next((g for g in m.groups() if g), None) if m else None
            if (name is None or name in stubs or e.pos is None or e.pos >= len(text)
                    or len(errors) >= MAX_RECOVERED_ERRORS):
                return None, {}, sorted(errors, key=issue_order)
            stubs.append(name)
            continue
        break
    if stubs:  # findings about the stubs themselves (past the text's end) are not the user's
        ir = GrammarIR(
            start=ir.start,
            rules=ir.rules,
            terminals={n: (t if n not in stubs else TerminalDef(t.name, t.pattern, dfa=t.dfa))
                       for n, t in ir.terminals.items()},
            ignore=ir.ignore,
            source=text,
            rule_positions={n: p for n, p in ir.rule_positions.items() if n not in stubs},
        )
    return ir, refs, sorted(errors, key=issue_order)


def reachable_part(ir: GrammarIR) -> GrammarIR:
    """``ir`` without the rules its start rule never reaches and the terminals no kept rule uses.

    Returns
    -------
    GrammarIR
        The same language; what compiling needs (a lowering from :func:`lark_check_ir` holds
        more).

    Raises
    ------
    Nothing.
    """
    keep = reachable_rules(ir.rules, ir.start)
    rules = {a: alts for a, alts in ir.rules.items() if a in keep}
    used = {s for alts in rules.values() for alt in alts for s in alt} | set(ir.ignore)
    return GrammarIR(
        start=ir.start,
        rules=rules,
        terminals={n: t for n, t in ir.terminals.items() if n in used},
        ignore=ir.ignore,
        source=ir.source,
        rule_positions={n: p for n, p in ir.rule_positions.items() if n in keep},
        guards={n: g for n, g in ir.guards.items() if n in keep},
    )


def check_lark(text: str, *, start: str = "start") -> list[GrammarIssue]:
    """Every problem of a Lark grammar: load errors, then :func:`check_grammar`'s findings.

    Parameters
    ----------
    text:
        Lark EBNF source.
    start:
        The start rule.

    Returns
    -------
    list[GrammarIssue]
        Every undefined symbol (see :func:`load_for_check`) and everything :func:`check_grammar`
        finds; a syntax error, which stops the load, ends the list.

    Raises
    ------
    CorralError
        Only when the ``lark`` package is missing.

    Examples
    --------
    >>> [(i.severity, i.message) for i in check_lark('start: "a"\\nB: "b"')]
    [('warning', 'terminal B is defined but never used')]
    """
    ir, refs, errors = load_for_check(text, "lark", start=start)
    return errors if ir is None else _merge_issues(errors, check_grammar(ir, terminal_refs=refs))


def check_gbnf(text: str, *, start: str = "root") -> list[GrammarIssue]:
    """Every problem of a GBNF grammar: the front end's error, or :func:`check_grammar`'s findings.

    Parameters
    ----------
    text:
        GBNF source.
    start:
        The start rule.

    Returns
    -------
    list[GrammarIssue]

    Raises
    ------
    CompileLimitError
        The grammar's repetitions or nesting exceed the GBNF front end's limits.

    Examples
    --------
    >>> [i.message for i in check_gbnf('root ::= "a"\\nextra ::= "b"')]
    ["rule 'extra' is never used: it cannot be reached from the start rule 'root'"]
    """
    ir, _, errors = load_for_check(text, "gbnf", start=start)
    return errors if ir is None else _merge_issues(errors, check_grammar(ir))


def check_vocabulary(ir: GrammarIR, token_bytes: Iterable[bytes | None]) -> list[GrammarIssue]:
    """Terminals a vocabulary can never spell: every byte they can start with is in no token.

    A byte that no token contains can never be produced, anywhere in the output; a terminal all of
    whose first bytes are such bytes can therefore never be produced either (unless as the empty
    string), and neither can anything that needs it.

    Parameters
    ----------
    ir:
        The grammar (ignored terminals are not checked: nothing needs them).
    token_bytes:
        Each token's bytes (``None`` for special tokens), e.g. ``Vocabulary.token_bytes``.

    Returns
    -------
    list[GrammarIssue]
        One warning per such terminal, at its definition when known.

    Raises
    ------
    Nothing: terminals whose regex does not compile are skipped (:func:`check_grammar` reports
    them).

    Examples
    --------
    >>> from corral.compiler.cfg import lark_to_ir
    >>> [i.message for i in check_vocabulary(lark_to_ir('start: "a" "é"'), [b"a", b"b"])]
    ['terminal /é/ can never be produced: no token of the vocabulary contains a byte it can start with (0xc3)']
    """
    present = np.zeros(256, dtype=bool)
    for b in token_bytes:
        if b:
            present[np.frombuffer(b, dtype=np.uint8)] = True
    issues = []
    ignored = set(ir.ignore)
    for name, t in ir.terminals.items():
        if name in ignored:
            continue
        try:
            dfa = regex_to_dfa(t.pattern)
        except CorralError:
            continue
        first = np.flatnonzero(dfa.trans[dfa.start] >= 0)
        if first.size == 0 or present[first].any():
            continue
        shown = ", ".join(f"{int(b):#04x}" for b in first[:6]) + (", ..." if first.size > 6 else "")
        line, col, length = _terminal_position(ir, t)
        issues.append(GrammarIssue(
            "warning",
            f"terminal {_terminal_label(t)} can never be produced: no token of the vocabulary contains a "
            f"byte it can start with ({shown})",
            line, col, length,
        ))
    return issues
