"""The grammar IR: what every surface syntax (Lark, GBNF, JSON Schema) lowers to.

A :class:`GrammarIR` is a context-free grammar whose terminals are regular languages over text:

- ``rules`` maps each nonterminal to its alternatives; an alternative is a tuple of symbol names
  (the empty tuple is the empty string). A name is a terminal when it is a key of ``terminals``,
  otherwise it must be a key of ``rules``.
- ``terminals`` maps a terminal's name to a :class:`TerminalDef` whose ``pattern`` is a regex in
  corral's dialect (``re.fullmatch`` semantics; see :mod:`corral.compiler.regex`).
- ``ignore`` names terminals that may appear between any two terminals and at both ends (Lark's
  ``%ignore``).

The language is scannerless: a text belongs to it when it splits into pieces, each piece in its
terminal's language, forming a derivation from ``start``. There is no longest-match lexer, so no
lexer conflict can change the language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.compiler.automaton import ByteDFA

__all__ = ["GrammarIR", "ObjectKeys", "TerminalDef", "UniqueItems", "source_offset"]


@dataclass(frozen=True)
class TerminalDef:
    """One terminal.

    Attributes
    ----------
    name:
        Its name (unique among terminals and rules).
    pattern:
        A regex in corral's dialect; the terminal's language is the strings it fully matches.
    line, column:
        Where it is defined in the grammar's source (1-based), when known; used in error messages.
    dfa:
        A ready byte automaton for the terminal (trimmed and minimised), when it was built
        directly rather than from a regex (JSON Schema strings and numbers); then ``pattern`` only
        describes it in messages.
    follow_dfa:
        Optionally, a simpler automaton accepting a *superset* of the terminal's language, used
        only to filter which tokens may cross into the terminal (e.g. with an unbounded
        whitespace prefix instead of a counted one, whose unions are far smaller).
    """

    name: str
    pattern: str
    line: int | None = None
    column: int | None = None
    dfa: ByteDFA | None = field(default=None, compare=False, repr=False)
    follow_dfa: ByteDFA | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class UniqueItems:
    """A run-time check attached to a rule deriving JSON arrays: their items must be pairwise
    distinct JSON values (``uniqueItems: true``). No grammar can say this; the matcher enforces it
    (``corral/runtime/guards.py``) and the compiler only describes the items.

    Attributes
    ----------
    strings:
        Every spelling (quotes included) of the items' string values, when they are finitely many:
        the matcher refuses a string item that can only end as a value already written. ``None``:
        infinitely many string values from every prefix, or none at all.
    n_values:
        How many values an item can take in all, when that is finite (the matcher refuses a
        separator once every one is written); ``None``: infinitely many.
    literals, numbers, strings_any, containers:
        Which kinds of values an item can be (``true``/``false``/``null``; numbers; strings;
        arrays or objects): the matcher only looks at tokens that can complete such an item.
    """

    strings: tuple[bytes, ...] | None = None
    n_values: int | None = None
    literals: bool = False
    numbers: bool = False
    strings_any: bool = False
    containers: bool = False


@dataclass(frozen=True)
class ObjectKeys:
    """A run-time check attached to a rule deriving JSON objects whose named properties may come
    in any order (``property_order="any"``): the grammar lets every named key come at every
    place, and the matcher (``corral/runtime/guards.py``) allows each named key at most once and
    the closing brace only once every required key is written, whatever the number of keys.

    Attributes
    ----------
    keys:
        The named keys the object may hold.
    must:
        The keys it must hold.
    spellings:
        Each named key's spellings (quotes included) with the key, when ``closed``: the matcher
        refuses a key prefix that only ends as keys written already.
    closed:
        No other key may appear (``additionalProperties: false`` and no pattern applies).
    """

    keys: tuple[str, ...]
    must: tuple[str, ...] = ()
    spellings: tuple[tuple[bytes, str], ...] = ()
    closed: bool = False


Guard = UniqueItems | ObjectKeys
"""A run-time check on the text a rule derives."""


@dataclass
class GrammarIR:
    """A context-free grammar over regular terminals (see the module docstring).

    Attributes
    ----------
    start:
        The start nonterminal.
    rules:
        Nonterminal name -> list of alternatives (tuples of symbol names).
    terminals:
        Terminal name -> :class:`TerminalDef`.
    ignore:
        Names of terminals allowed between any two terminals and at both ends.
    source:
        The grammar text it came from (for error messages).
    rule_positions:
        Nonterminal name -> (line, column) of its definition, when known.
    guards:
        Nonterminal name -> a run-time check on the text it derives (:class:`UniqueItems`,
        :class:`ObjectKeys`).
    """

    start: str
    rules: dict[str, list[tuple[str, ...]]]
    terminals: dict[str, TerminalDef]
    ignore: tuple[str, ...] = ()
    source: str = ""
    rule_positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    guards: dict[str, Guard] = field(default_factory=dict)


def source_offset(source: str, line: int, column: int) -> int:
    """The character offset of 1-based ``line``/``column`` in ``source``."""
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1
