"""Everything corral uses from inside Lark, in one place.

corral reads Lark grammars with Lark's own loader, which is not all public API: the loader's
EBNF-to-BNF pass is swapped for a linear one, the grammar parser ``_parse_grammar`` gives the
definitions' positions, and terminals' regexes come from Lark's pattern objects. All of it is
here, behind small functions that hand back plain data, so that a Lark release that moves
something breaks this module (and ``tests/compiler/test_lark_adapter.py``) only.

Supported Lark versions: :data:`SUPPORTED_LARK` (also declared in ``pyproject.toml``). Lark is
imported when a function here is first called, not when this module is.

==================================  =============================================================
function                            job
==================================  =============================================================
:func:`lark_error_class`            Lark's root exception (``lark.exceptions.LarkError``)
:func:`unexpected_input_position`   (line, column) of a Lark parse error, when it has one
:func:`load_bnf`                    the loader and compile step: terminals, rules, ``%ignore``
:func:`grammar_definitions`         where each rule and terminal is defined, and what terminals
                                    each terminal definition names (Lark's grammar parser)
==================================  =============================================================
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from corral.errors import CorralError

__all__ = [
    "SUPPORTED_LARK",
    "LarkBNF",
    "grammar_definitions",
    "lark_error_class",
    "load_bnf",
    "unexpected_input_position",
]

SUPPORTED_LARK = ">=1.1.9,<2"
"""The Lark versions this adapter is written and tested for (as in ``pyproject.toml``)."""

_LARK_LOCK = threading.Lock()


def lark_error_class() -> type[Exception]:
    """Lark's root exception class, ``lark.exceptions.LarkError``.

    Returns
    -------
    type[Exception]
        Every error Lark raises for a bad grammar is an instance.

    Raises
    ------
    CorralError
        The ``lark`` package is not installed.

    Examples
    --------
    >>> lark_error_class().__name__
    'LarkError'
    """
    try:
        from lark.exceptions import LarkError
    except ImportError as e:  # pragma: no cover - lark is a dependency
        raise CorralError("compiling Lark grammars needs the 'lark' package") from e
    return LarkError  # type: ignore[no-any-return]


def unexpected_input_position(error: BaseException) -> tuple[int, Any] | None:
    """``(line, column)`` of a Lark parse error (``lark.exceptions.UnexpectedInput``).

    Parameters
    ----------
    error:
        An exception Lark raised.

    Returns
    -------
    tuple or None
        The error's 1-based line and its column when it is an ``UnexpectedInput`` with a known
        (positive, integer) line; ``None`` otherwise.

    Raises
    ------
    Nothing.

    Examples
    --------
    >>> unexpected_input_position(ValueError("x")) is None
    True
    """
    from lark.exceptions import UnexpectedInput

    line = getattr(error, "line", None)
    if isinstance(error, UnexpectedInput) and isinstance(line, int) and line > 0:
        return line, error.column
    return None


def _linear_ebnf_class() -> type:
    """A subclass of Lark's EBNF-to-BNF pass that keeps the grammar linear in size.

    Lark expands ``x?``, ``x*`` and ``[x]`` inline as "with or without x", then distributes
    alternatives over sequences, so a rule with n optional parts becomes 2**n alternatives (kept
    that way for tree shapes, which corral does not need). Here each such construct becomes one
    helper rule instead; the language is the same.
    """
    import lark.load_grammar as lg
    from lark.visitors import v_args

    @v_args(inline=True)
    class LinearEBNF(lg.EBNF_to_BNF):  # type: ignore[misc, valid-type]
        def _helper(self, kind: str, tree: Any) -> Any:
            key = ("corral", kind, tree)
            hit = self.rules_cache.get(key)
            if hit is not None:
                return hit
            return self._add_rule(key, self._name_rule(kind), tree)

        def expr(self, rule: Any, op: Any, *args: Any) -> Any:
            if op.value == "?":
                return self._optional(rule)
            if op.value == "*":
                return self._optional(self._add_recurse_rule("star", rule))
            if op.value == "~":
                return self._helper("repeat", lg.ST("expansions", [lg.ST("expansion", [super().expr(rule, op, *args)])]))
            return super().expr(rule, op, *args)

        def maybe(self, rule: Any) -> Any:
            return self._optional(rule)

        def _optional(self, rule: Any) -> Any:
            return self._helper("opt", lg.ST("expansions", [lg.ST("expansion", [rule]), lg.ST("expansion", [])]))

    return LinearEBNF


@dataclass(frozen=True)
class LarkBNF:
    """A Lark grammar after Lark's loader and compile step, as plain data.

    Attributes
    ----------
    terminals:
        ``(name, regex)`` per terminal Lark kept, in Lark's order; the regex is Lark's
        (``pattern.to_regexp()``, flags included).
    rules:
        ``(rule, expansion)`` per BNF alternative, in Lark's order; ``expansion`` holds the
        symbols' names. ``rule`` is the name as Lark gives it (a ``str``, possibly Lark's
        ``Token`` subclass).
    ignore:
        The ``%ignore``d terminals' names.
    """

    terminals: tuple[tuple[str, str], ...]
    rules: tuple[tuple[str, tuple[str, ...]], ...]
    ignore: tuple[str, ...]


def load_bnf(text: str, start: str) -> LarkBNF:
    """Run Lark's grammar loader and compile step on ``text``, with the linear EBNF pass.

    Lark's ``EBNF_to_BNF`` is replaced by :func:`_linear_ebnf_class` for the call only, under a
    lock (Lark reads it as a module global); the compile keeps what ``start`` reaches.

    Parameters
    ----------
    text:
        Lark EBNF source.
    start:
        The start rule.

    Returns
    -------
    LarkBNF
        Lark's terminals, BNF rules and ignored terminals.

    Raises
    ------
    lark.exceptions.LarkError
        Lark rejects the grammar (see :func:`lark_error_class`).
    OSError
        An ``%import`` names a grammar file that cannot be read.
    Exception
        Whatever else Lark's loader lets through on odd input (``re.error``, ``ValueError``,
        ``KeyError``, ``AssertionError``, ``RecursionError``, ...).

    Examples
    --------
    >>> bnf = load_bnf('start: "a" b?\\nb: /[0-9]+/', "start")
    >>> [(str(r), e) for r, e in bnf.rules]
    [('start', ('A', '__start_opt_0')), ('b', ('__ANON_0',)), ('__start_opt_0', ('b',)), ('__start_opt_0', ())]
    >>> bnf.terminals, bnf.ignore
    ((('A', 'a'), ('__ANON_0', '[0-9]+')), ())
    """
    import lark.load_grammar as lg

    with _LARK_LOCK:
        original = lg.EBNF_to_BNF
        setattr(lg, "EBNF_to_BNF", _linear_ebnf_class())  # noqa: B010 - swapped for this call only
        try:
            loaded, _ = lg.load_grammar(text, "<grammar>", [], True)
            lark_terminals, lark_rules, ignore = loaded.compile([start], set())
        finally:
            setattr(lg, "EBNF_to_BNF", original)  # noqa: B010
    terminals = tuple((t.name, t.pattern.to_regexp()) for t in lark_terminals)
    rules = []
    for r in lark_rules:
        name = r.origin.name
        rules.append((name if isinstance(name, str) else str(name), tuple(str(s.name) for s in r.expansion)))
    return LarkBNF(terminals, tuple(rules), tuple(ignore))


def grammar_definitions(
    text: str,
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], dict[str, frozenset[str]]]:
    """From Lark's parse of ``text`` (its private ``_parse_grammar``): the definitions.

    Parameters
    ----------
    text:
        Lark EBNF source.

    Returns
    -------
    tuple
        ``(rule_positions, terminal_positions, terminal_refs)``: (line, column) where each rule
        (templates excepted) and each terminal is defined (an imported terminal: at its
        ``%import``, unless defined in the text), and per terminal definition the other
        terminals it names. All empty when Lark's parser is not reachable or rejects the text.

    Raises
    ------
    Nothing: positions are a nicety; callers fall back to a text search.

    Examples
    --------
    >>> rules, terms, refs = grammar_definitions('start: NUM\\nNUM: DIGIT+\\nDIGIT: /[0-9]/')
    >>> rules, terms["NUM"], refs["NUM"]
    ({'start': (1, 1)}, (2, 1), frozenset({'DIGIT'}))
    """
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
