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

from corral.compiler.grammar_ir import GrammarIR, TerminalDef, source_offset
from corral.compiler.regex import regex_to_dfa
from corral.errors import CorralError, GrammarError

__all__ = [
    "GrammarIssue",
    "check_gbnf",
    "check_grammar",
    "check_lark",
    "check_vocabulary",
    "lark_check_ir",
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


def _reachable(ir: GrammarIR) -> set[str]:
    seen = {ir.start} if ir.start in ir.rules else set()
    queue = deque(seen)
    while queue:
        a = queue.popleft()
        for alt in ir.rules[a]:
            for s in alt:
                if s in ir.rules and s not in seen:
                    seen.add(s)
                    queue.append(s)
    return seen


def _derives(ir: GrammarIR, holds: set[str]) -> set[str]:
    """Rules with an alternative whose symbols all derive (terminals: those in ``holds``; rules:
    recursively). With the terminals that match something this is the productive rules; with the
    terminals that match the empty string, the nullable ones."""
    done: set[str] = set()
    changed = True
    while changed:
        changed = False
        for a, alts in ir.rules.items():
            if a not in done and any(all(s in done or s in holds for s in alt) for alt in alts):
                done.add(a)
                changed = True
    return done


def _left_graph(ir: GrammarIR, nullable: set[str]) -> dict[str, set[str]]:
    """``a -> b`` when some alternative of ``a`` starts with ``b`` after a nullable prefix."""
    graph: dict[str, set[str]] = {a: set() for a in ir.rules}
    for a, alts in ir.rules.items():
        for alt in alts:
            for s in alt:
                if s in ir.rules:
                    graph[a].add(s)
                if s not in nullable:
                    break
    return graph


def _cycle_through(graph: dict[str, set[str]], a: str) -> list[str] | None:
    """A shortest cycle ``a -> ... -> a`` in ``graph`` (the names after ``a``), or ``None``."""
    parent: dict[str, str] = {}
    queue = deque([a])
    seen = {a}
    while queue:
        x = queue.popleft()
        for y in sorted(graph[x], key=str):
            if y == a:
                path = [x]
                while path[-1] != a:
                    path.append(parent[path[-1]])
                path.reverse()
                return path[1:] + [a]
            if y not in seen:
                seen.add(y)
                parent[y] = x
                queue.append(y)
    return None


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
    reachable = _reachable(ir)
    for a in ir.rules:
        if a not in reachable and a in user:
            issues.append(_rule_issue(
                ir, "warning", a, f"rule {_q(a)} is never used: it cannot be reached from the start rule {_q(ir.start)}"
            ))
    productive = _derives(ir, nonempty)
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
    nullable = _derives(ir, empty_ok)
    graph = _left_graph(ir, nullable)
    for a in ir.rules:
        if a not in user:
            continue
        cycle = _cycle_through(graph, a)
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

    def key(i: GrammarIssue) -> tuple[bool, int, int, int]:
        return (i.line is None, i.line or 0, i.column or 0, _SEVERITY_ORDER.get(i.severity, 3))

    return sorted(issues, key=key)


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
    rule_pos, term_pos, refs = _lark_positions(text)
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


def _lark_positions(
    text: str,
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], dict[str, frozenset[str]]]:
    """From Lark's parse of ``text``: where each rule (templates excepted) and terminal is defined
    (an imported terminal: at its ``%import``), and the terminals each terminal definition names.
    Empty when Lark's parser is not reachable (it is a private function) or rejects the text."""
    rule_pos: dict[str, tuple[int, int]] = {}
    term_pos: dict[str, tuple[int, int]] = {}
    refs: dict[str, frozenset[str]] = {}
    try:
        from lark.lexer import Token
        from lark.load_grammar import _parse_grammar
        from lark.tree import Tree

        tree = _parse_grammar(text, "<grammar>")
    except Exception:  # noqa: BLE001 - positions are a nicety; the caller falls back to a text search
        return rule_pos, term_pos, refs
    imports: list[Tree] = []
    for stmt in tree.children:
        if not isinstance(stmt, Tree):
            continue
        if stmt.data in ("override", "extend") and stmt.children and isinstance(stmt.children[0], Tree):
            stmt = stmt.children[0]
        if stmt.data == "rule":
            params = [c for c in stmt.children if isinstance(c, Tree) and c.data == "template_params"]
            if params and params[0].children:
                continue  # a template: only its instances are rules
            for tok in stmt.children:
                if isinstance(tok, Token) and tok.type == "RULE":
                    rule_pos.setdefault(str(tok), (tok.line or 1, tok.column or 1))
                    break
        elif stmt.data == "term":
            head = stmt.children[0]
            if isinstance(head, Token):
                term_pos.setdefault(str(head), (head.line or 1, head.column or 1))
                named = {str(v.name) for v in stmt.scan_values(lambda v: getattr(v, "is_term", False) is True)}
                refs[str(head)] = frozenset(named - {str(head)})
        elif stmt.data == "import":
            imports.append(stmt)
    for stmt in imports:  # an imported terminal is positioned at its %import, unless defined here
        alias = [c for c in stmt.children if isinstance(c, Token)]  # %import a.B -> C names C
        toks = alias or list(stmt.scan_values(lambda v: isinstance(v, Token)))
        for tok in toks:
            if tok.type == "TERMINAL":
                term_pos.setdefault(str(tok), (tok.line or 1, tok.column or 1))
    return rule_pos, term_pos, refs


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
    keep = _reachable(ir)
    rules = {a: alts for a, alts in ir.rules.items() if a in keep}
    used = {s for alts in rules.values() for alt in alts for s in alt} | set(ir.ignore)
    return GrammarIR(
        start=ir.start,
        rules=rules,
        terminals={n: t for n, t in ir.terminals.items() if n in used},
        ignore=ir.ignore,
        source=ir.source,
        rule_positions={n: p for n, p in ir.rule_positions.items() if n in keep},
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
        A syntax error or undefined symbol (Lark stops at the first) is the single issue returned;
        otherwise everything :func:`check_grammar` finds.

    Raises
    ------
    CorralError
        Only when the ``lark`` package is missing.

    Examples
    --------
    >>> [(i.severity, i.message) for i in check_lark('start: "a"\\nB: "b"')]
    [('warning', 'terminal B is defined but never used')]
    """
    try:
        ir, refs = lark_check_ir(text, start=start)
    except GrammarError as e:
        return [GrammarIssue.from_error(e)]
    return check_grammar(ir, terminal_refs=refs)


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
    from corral.compiler.gbnf import gbnf_to_ir

    try:
        ir = gbnf_to_ir(text, start=start)
    except GrammarError as e:
        return [GrammarIssue.from_error(e)]
    return check_grammar(ir)


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
