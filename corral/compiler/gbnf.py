"""GBNF (llama.cpp's grammar format) -> :class:`~corral.compiler.grammar_ir.GrammarIR`.

Syntax
------
The format of llama.cpp's ``grammars/README.md``:

* Rules ``name ::= body``. Names are ASCII letters, digits, ``-`` and ``_``. A rule's body may
  span several lines: a new rule starts where a line begins with ``name ::=``. The start rule is
  ``root`` unless another is asked for.
* Bodies: alternatives ``a | b``, sequences ``a b``, groups ``( ... )``, postfix ``*``, ``+``,
  ``?`` and bounded repetition ``{m}``, ``{m,}``, ``{m,n}``, ``{,n}`` (postfix operators may be
  stacked: ``x+?`` is ``(x+)?``). An alternative may be empty (``ws ::= | " "``).
* Terminals: string literals ``"..."``, character classes ``[a-z0-9_]`` and negated classes
  ``[^"\\\\]``, and ``.``. Inside literals and classes the escapes are llama.cpp's: ``\\n \\r \\t
  \\\\ \\" \\[ \\] \\-``, ``\\xHH``, ``\\uHHHH`` and ``\\UHHHHHHHH`` (exactly that many hex digits);
  any other escape is an error. Any other character stands for itself, newlines included.
* Comments run from ``#`` to the end of the line. Space, tab, CR and LF separate items.

Semantics (all over Unicode code points, as in llama.cpp)
---------------------------------------------------------
* ``.`` matches any one code point, newline included (llama.cpp's ``CHAR_ANY`` matches every
  character); it is lowered to ``(?s:.)``.
* A class matches one code point in (or, negated, not in) its members; a range ``a-z`` is
  inclusive; ``-`` right before ``]`` and ``-`` first in the class are literal (``[a-]``,
  ``[-a]``), as in llama.cpp.

Departures from llama.cpp, each an error here where llama.cpp is silent
------------------------------------------------------------------------
* A rule defined twice is an error (llama.cpp silently keeps the last definition).
* An empty class ``[]`` or ``[^]`` is an error (llama.cpp reads it as the empty string), as are a
  reversed range ``[z-a]`` (llama.cpp: matches nothing), a class that matches no character, and a
  surrogate code point (``\\uD800``) outside a range: text is UTF-8, so none can ever match.
* Token constraints (``<[1000]>``, ``<think>``, ``!<...>``) are rejected: corral constrains text,
  and a grammar that names tokenizer tokens cannot be expressed as a language over text.
* Accepted beyond llama.cpp: rules continued on the next line (llama.cpp ends a rule at a newline
  outside parentheses unless it follows ``|``), ``{,n}``, and ``_`` in names (llama.cpp's
  README allows it; some versions' parsers do not).

Lowering
--------
Each literal and each class becomes one terminal (identical patterns share a terminal named
``__t0``, ``__t1``, ...; a one-character class and the same one-character literal share one).
The empty literal ``""`` is the empty string. Groups with several alternatives and repeated
sequences become helper rules named ``<rule>__<n>``; ``x*`` is the left-recursive
``S ::= | S x``, ``x+`` is ``x x*``, ``x{m,n}`` is ``m`` copies of ``x`` then a right-nested
chain of ``n - m`` optional copies. Helper and terminal names never collide with the grammar's
own names.

Errors
------
One error is reported: the first syntax error or duplicate definition in the text; else the
first reference to an undefined rule; else a missing start rule. Repetitions whose expansion would exceed
:data:`MAX_REPETITION_COPIES` symbol copies in total, and parentheses nested deeper than
:data:`MAX_NESTING`, raise :class:`~corral.errors.CompileLimitError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn, Union

from corral.compiler.grammar_ir import GrammarIR, TerminalDef
from corral.errors import CompileLimitError, GrammarError

__all__ = ["gbnf_to_ir", "MAX_REPETITION_COPIES", "MAX_NESTING"]

MAX_REPETITION_COPIES = 10_000
"""Most symbol copies that bounded repetitions (``{m,n}``, ``*``, ...) may add to a grammar."""

MAX_NESTING = 100
"""Deepest nesting of parentheses accepted (keeps the recursive parser off Python's stack limit)."""

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_SPACE = " \t\r\n"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_RULE_HEADER = re.compile(r"[A-Za-z0-9_-]+[ \t]*::=")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}
_ANY_CHAR = "(?s:.)"


# --- the syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    """A terminal: a regex matching one literal or one character."""

    pattern: str
    pos: int


@dataclass(frozen=True)
class _Ref:
    """A reference to a rule."""

    name: str
    pos: int


@dataclass(frozen=True)
class _Seq:
    """A sequence of items (the empty sequence is the empty string)."""

    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    """Alternatives (a rule's body or a parenthesised group)."""

    seqs: tuple[_Seq, ...]
    pos: int


@dataclass(frozen=True)
class _Rep:
    """``item{low,high}``; ``high`` is ``None`` when unbounded."""

    item: _Node
    low: int
    high: int | None
    pos: int  # the operator's offset
    text: str  # the operator as written
    item_pos: int  # the repeated item's offset


_Node = Union[_Term, _Ref, _Seq, _Alt, _Rep]


@dataclass(frozen=True)
class _Rule:
    """A rule definition; ``pos`` is the offset of its name."""

    name: str
    pos: int
    body: _Alt


def _line_column(text: str, pos: int) -> tuple[int, int]:
    """1-based (line, column) of offset ``pos`` in ``text``, as :class:`GrammarError` counts them."""
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


# --- escaping into corral's regex dialect -----------------------------------------------------


def _escape_char(ch: str) -> str:
    """``ch`` as a regex item matching exactly ``ch``, valid both inside and outside a class."""
    cp = ord(ch)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if cp < 0x80:
        return "\\" + ch
    if ch.isprintable():
        return ch
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _literal_pattern(text: str) -> str:
    """A regex matching exactly ``text``."""
    return "".join(_escape_char(ch) for ch in text)


def _class_pattern(intervals: list[tuple[int, int]], negated: bool) -> str:
    """A regex for one code point in (or, ``negated``, outside) the union of ``intervals``."""
    merged = _merge(intervals)
    if not negated and len(merged) == 1 and merged[0][0] == merged[0][1]:
        return _escape_char(chr(merged[0][0]))
    parts = []
    for lo, hi in merged:
        if lo == hi:
            parts.append(_escape_char(chr(lo)))
        elif lo + 1 == hi:
            parts.append(_escape_char(chr(lo)) + _escape_char(chr(hi)))
        else:
            parts.append(_escape_char(chr(lo)) + "-" + _escape_char(chr(hi)))
    return ("[^" if negated else "[") + "".join(parts) + "]"


def _matches_something(intervals: list[tuple[int, int]], negated: bool) -> bool:
    """Whether a class matches at least one Unicode scalar value (surrogates never occur in text)."""
    covered = 0
    for lo, hi in _merge(intervals):
        covered += hi - lo + 1
        s_lo, s_hi = max(lo, _SURROGATES[0]), min(hi, _SURROGATES[1])
        if s_lo <= s_hi:
            covered -= s_hi - s_lo + 1
    scalars = _MAX_CODE_POINT + 1 - (_SURROGATES[1] - _SURROGATES[0] + 1)
    return covered < scalars if negated else covered > 0


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-adjacent inclusive intervals covering the same code points."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


# --- parsing ----------------------------------------------------------------------------------


class _Parser:
    """Recursive-descent parser from GBNF text to :class:`_Rule` objects."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.refs: list[_Ref] = []

    def fail(self, message: str, pos: int, length: int = 1) -> NoReturn:
        raise GrammarError(message, source=self.text, pos=pos, length=length)

    def skip_space(self) -> None:
        text, n, i = self.text, self.n, self.pos
        while i < n:
            c = text[i]
            if c in _SPACE:
                i += 1
            elif c == "#":
                while i < n and text[i] not in "\r\n":
                    i += 1
            else:
                break
        self.pos = i

    def at_rule_header(self) -> bool:
        """Whether ``name ::=`` starts at ``pos`` and ``pos`` begins its line."""
        if _RULE_HEADER.match(self.text, self.pos) is None:
            return False
        line_start = max(self.text.rfind("\n", 0, self.pos), self.text.rfind("\r", 0, self.pos)) + 1
        return self.text[line_start : self.pos].strip(" \t") == ""

    # grammar := rule*
    def parse(self) -> list[_Rule]:
        rules: list[_Rule] = []
        seen: dict[str, int] = {}
        self.skip_space()
        while self.pos < self.n:
            start = self.pos
            name_match = _NAME.match(self.text, start)
            if name_match is None:
                self.fail(
                    f"unexpected character {self.text[start]!r}: expected a rule definition 'name ::= ...'",
                    start,
                )
            name = name_match.group()
            if not self.at_rule_header():
                after = name_match.end()
                while after < self.n and self.text[after] in " \t":
                    after += 1
                self.fail(f"expected '::=' after the rule name {name!r}", after)
            if name in seen:
                line, column = _line_column(self.text, seen[name])
                self.fail(
                    f"rule {name!r} is defined twice (first at line {line}, column {column})",
                    start,
                    len(name),
                )
            seen[name] = start
            self.pos = self.text.index("::=", name_match.end()) + 3
            body = self.parse_alternates(depth=0, pos=start)
            rules.append(_Rule(name, start, body))
        return rules

    # alternates := sequence ('|' sequence)*
    def parse_alternates(self, depth: int, pos: int) -> _Alt:
        seqs = [self.parse_sequence(depth)]
        while self.pos < self.n and self.text[self.pos] == "|":
            self.pos += 1
            seqs.append(self.parse_sequence(depth))
        return _Alt(tuple(seqs), pos)

    # sequence := (atom postfix*)*
    def parse_sequence(self, depth: int) -> _Seq:
        items: list[_Node] = []
        starts: list[int] = []  # offset of each item
        text = self.text
        while True:
            self.skip_space()
            if self.pos >= self.n or self.at_rule_header():
                break
            start = self.pos
            c = text[start]
            if c not in "*+?{":
                starts.append(start)
            if c == "|":
                break
            if c == ")":
                if depth > 0:
                    break
                self.fail("unbalanced parenthesis: ')' has no matching '('", start)
            if c == '"':
                items.append(self.parse_string())
            elif c == "[":
                items.append(self.parse_class())
            elif c == ".":
                self.pos += 1
                items.append(_Term(_ANY_CHAR, start))
            elif c in _NAME_CHARS:
                end = start
                while end < self.n and text[end] in _NAME_CHARS:
                    end += 1
                ref = _Ref(text[start:end], start)
                self.refs.append(ref)
                items.append(ref)
                self.pos = end
            elif c == "(":
                if depth >= MAX_NESTING:
                    _limit(
                        f"parentheses nested more than {MAX_NESTING} deep (limit max_nesting={MAX_NESTING})",
                        "max_nesting",
                        MAX_NESTING,
                        text,
                        start,
                    )
                self.pos += 1
                group = self.parse_alternates(depth + 1, start)
                if self.pos >= self.n or text[self.pos] != ")":
                    self.fail("unbalanced parenthesis: '(' is never closed", start)
                self.pos += 1
                items.append(group)
            elif c in "*+?{":
                low, high = self.parse_repetition()
                if not items:
                    self.fail(f"{text[start:self.pos]!r} must follow a symbol or a group", start, self.pos - start)
                items[-1] = _Rep(items[-1], low, high, start, text[start : self.pos], starts[-1])
            elif c in "<!":
                end = text.find(">", start)
                line_end = text.find("\n", start)
                length = end - start + 1 if end >= 0 and (line_end < 0 or end < line_end) else 1
                self.fail(
                    "token constraints ('<[id]>', '<token>', '!<...>') are not supported: corral "
                    "constrains text, so write the token's text as a string literal instead",
                    start,
                    length,
                )
            else:
                expected = "a string, a class, a rule name, '.', '(', '|'"
                if depth > 0:
                    expected += ", ')'"
                self.fail(f"unexpected character {c!r}: expected {expected} or a repetition operator", start)
        return _Seq(tuple(items))

    def parse_repetition(self) -> tuple[int, int | None]:
        """Parse ``*``, ``+``, ``?`` or ``{...}`` at ``pos``; return (low, high or None)."""
        text, start = self.text, self.pos
        c = text[start]
        self.pos += 1
        if c == "*":
            return 0, None
        if c == "+":
            return 1, None
        if c == "?":
            return 0, 1
        low = self.parse_int()
        self.skip_space()
        if self.pos < self.n and text[self.pos] == "}":
            if low is None:
                self.fail("expected a number in the repetition '{...}'", self.pos)
            self.pos += 1
            return low, low
        if self.pos >= self.n or text[self.pos] != ",":
            self.fail("expected a number, ',' or '}' in the repetition '{...}'", self.pos)
        self.pos += 1
        high = self.parse_int()
        self.skip_space()
        if self.pos >= self.n or text[self.pos] != "}":
            self.fail("expected a number or '}' in the repetition '{...}'", self.pos)
        self.pos += 1
        if low is None and high is None:
            self.fail("the repetition '{,}' has no bound: write '*' or give a bound", start, self.pos - start)
        if high is not None and high < (low or 0):
            self.fail(
                f"bad repetition bounds {text[start:self.pos]}: the maximum is below the minimum",
                start,
                self.pos - start,
            )
        return low or 0, high

    def parse_int(self) -> int | None:
        self.skip_space()
        start = self.pos
        while self.pos < self.n and self.text[self.pos] in "0123456789":
            self.pos += 1
        return int(self.text[start : self.pos]) if self.pos > start else None

    def parse_char(self, where: str) -> tuple[int, int]:
        """Read one (possibly escaped) character at ``pos``; return (code point, its offset)."""
        text, start = self.text, self.pos
        c = text[start]
        if c != "\\":
            self.pos += 1
            return ord(c), start
        if start + 1 >= self.n:
            self.fail(f"unterminated {where}", start)
        e = text[start + 1]
        if e in _SIMPLE_ESCAPES:
            self.pos += 2
            return ord(_SIMPLE_ESCAPES[e]), start
        if e in _HEX_WIDTH:
            width = _HEX_WIDTH[e]
            digits = text[start + 2 : start + 2 + width]
            if len(digits) < width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                self.fail(f"expected {width} hex digits after '\\{e}'", start, 2)
            value = int(digits, 16)
            if value > _MAX_CODE_POINT:
                self.fail(f"code point U+{value:X} is beyond U+10FFFF", start, 2 + width)
            self.pos += 2 + width
            return value, start
        self.fail(
            f"unknown escape '\\{e}' (expected one of \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\xHH \\uHHHH \\UHHHHHHHH)",
            start,
            2,
        )

    def check_not_surrogate(self, cp: int, pos: int) -> None:
        if _SURROGATES[0] <= cp <= _SURROGATES[1]:
            self.fail(f"surrogate code point U+{cp:04X} can never occur in text", pos, max(1, self.pos - pos))

    def parse_string(self) -> _Node:
        text, start = self.text, self.pos
        self.pos += 1
        chars: list[str] = []
        while True:
            if self.pos >= self.n:
                self.fail("unterminated string: no closing '\"'", start)
            if text[self.pos] == '"':
                self.pos += 1
                break
            cp, at = self.parse_char("string")
            self.check_not_surrogate(cp, at)
            chars.append(chr(cp))
        if not chars:
            return _Seq(())
        return _Term(_literal_pattern("".join(chars)), start)

    def parse_class(self) -> _Term:
        text, start = self.text, self.pos
        self.pos += 1
        negated = self.pos < self.n and text[self.pos] == "^"
        if negated:
            self.pos += 1
        intervals: list[tuple[int, int]] = []
        while True:
            if self.pos >= self.n:
                self.fail("unterminated character class: no closing ']'", start)
            if text[self.pos] == "]":
                self.pos += 1
                break
            lo, lo_at = self.parse_char("character class")
            if self.pos + 1 < self.n and text[self.pos] == "-" and text[self.pos + 1] != "]":
                self.pos += 1
                hi, _ = self.parse_char("character class")
                if hi < lo:
                    self.fail(
                        f"bad character range {text[lo_at:self.pos]!r}: U+{lo:04X} is after U+{hi:04X}",
                        lo_at,
                        self.pos - lo_at,
                    )
            else:
                self.check_not_surrogate(lo, lo_at)
                hi = lo
            intervals.append((lo, hi))
        if not intervals:
            self.fail(f"empty character class {text[start:self.pos]!r}", start, self.pos - start)
        if not _matches_something(intervals, negated):
            self.fail("this character class matches no character", start, self.pos - start)
        return _Term(_class_pattern(intervals, negated), start)


# --- lowering ---------------------------------------------------------------------------------


def _limit(message: str, limit: str, value: int, source: str, pos: int) -> NoReturn:
    line, column = _line_column(source, pos)
    raise CompileLimitError(f"{message} at line {line}, column {column}", limit=limit, value=value)


class _Lowering:
    """Turns parsed rules into a :class:`GrammarIR`."""

    def __init__(self, text: str, rules: list[_Rule], refs: list[_Ref]) -> None:
        self.text = text
        self.rules: dict[str, list[tuple[str, ...]]] = {}
        self.positions: dict[str, tuple[int, int]] = {}
        self.terminals: dict[str, TerminalDef] = {}
        self.by_pattern: dict[str, str] = {}
        self.used = {r.name for r in rules} | {r.name for r in refs}
        self.helpers: dict[tuple[object, ...], str] = {}
        self.counters: dict[str, int] = {}
        self.copies = 0
        self.owner = ""

    def where(self, pos: int) -> tuple[int, int]:
        return _line_column(self.text, pos)

    def fresh(self, base: str) -> str:
        k = self.counters.get(base, 0)
        while f"{base}{k}" in self.used:
            k += 1
        self.counters[base] = k + 1
        name = f"{base}{k}"
        self.used.add(name)
        return name

    def helper(self, key: tuple[object, ...], alternatives: list[tuple[str, ...]], pos: int) -> str:
        """A helper rule with ``alternatives``, shared among identical ``key`` s."""
        name = self.helpers.get(key)
        if name is None:
            name = self.fresh(f"{self.owner}__")
            self.helpers[key] = name
            self.rules[name] = alternatives
            self.positions[name] = self.where(pos)
        return name

    def terminal(self, term: _Term) -> str:
        name = self.by_pattern.get(term.pattern)
        if name is None:
            name = self.fresh("__t")
            line, column = self.where(term.pos)
            self.terminals[name] = TerminalDef(name, term.pattern, line, column)
            self.by_pattern[term.pattern] = name
        return name

    def rule(self, rule: _Rule) -> None:
        self.owner = rule.name
        self.rules[rule.name] = []
        self.positions[rule.name] = self.where(rule.pos)
        self.rules[rule.name] = [self.symbols(seq) for seq in rule.body.seqs]

    def symbols(self, node: _Node) -> tuple[str, ...]:
        """The symbols that stand for ``node`` inside an alternative."""
        if isinstance(node, _Term):
            return (self.terminal(node),)
        if isinstance(node, _Ref):
            return (node.name,)
        if isinstance(node, _Seq):
            out: tuple[str, ...] = ()
            for item in node.items:
                out += self.symbols(item)
            return out
        if isinstance(node, _Alt):
            alternatives = [self.symbols(seq) for seq in node.seqs]
            if len(alternatives) == 1:
                return alternatives[0]
            return (self.helper(("group", tuple(alternatives)), alternatives, node.pos),)
        return self.repetition(node)

    def repetition(self, node: _Rep) -> tuple[str, ...]:
        reps: list[_Rep] = []  # stacked operators, innermost last (x+? is Rep(Rep(x, +), ?))
        inner: _Node = node
        while isinstance(inner, _Rep):
            reps.append(inner)
            inner = inner.item
        result = self.symbols(inner)
        for rep in reversed(reps):
            result = self.repeat(result, rep)
        return result

    def repeat(self, unit: tuple[str, ...], rep: _Rep) -> tuple[str, ...]:
        if not unit:
            return ()
        cost = rep.low + (2 if rep.high is None else 2 * (rep.high - rep.low))
        self.copies += cost
        if self.copies > MAX_REPETITION_COPIES:
            _limit(
                f"repetition {rep.text} takes the grammar past {MAX_REPETITION_COPIES} repeated symbol "
                f"copies (limit max_repetition={MAX_REPETITION_COPIES}); lower the bounds",
                "max_repetition",
                MAX_REPETITION_COPIES,
                self.text,
                rep.pos,
            )
        if len(unit) == 1:
            x = unit[0]
        else:
            x = self.helper(("group", (unit,)), [unit], rep.item_pos)
        out = (x,) * rep.low
        if rep.high is None:
            star = self.helpers.get(("star", x))
            if star is None:
                star = self.helper(("star", x), [], rep.item_pos)
                self.rules[star] = [(), (star, x)]
            out += (star,)
        else:
            chain: str | None = None
            for k in range(1, rep.high - rep.low + 1):
                tail = (x,) if chain is None else (x, chain)
                chain = self.helper(("opt", x, k), [(), tail], rep.item_pos)
            if chain is not None:
                out += (chain,)
        return out


def gbnf_to_ir(text: str, *, start: str = "root") -> GrammarIR:
    """Parse a GBNF grammar (llama.cpp's format) and lower it to a :class:`GrammarIR`.

    Parameters
    ----------
    text:
        The grammar's source (see this module's docstring for the accepted syntax).
    start:
        The start rule; llama.cpp's is ``root``.

    Returns
    -------
    GrammarIR
        Rules in definition order followed by helper rules, terminals named ``__t<n>``, no
        ``ignore`` terminals, ``source`` set to ``text`` and 1-based ``rule_positions``.

    Raises
    ------
    GrammarError
        For the first syntax error in the text, else the first reference to an undefined rule,
        else a missing start rule. The error carries the position and renders a caret marker.
    CompileLimitError
        When repetitions would add more than :data:`MAX_REPETITION_COPIES` symbol copies
        (``limit="max_repetition"``) or parentheses nest deeper than :data:`MAX_NESTING`
        (``limit="max_nesting"``).

    Examples
    --------
    >>> ir = gbnf_to_ir('root ::= "a" [0-9]+')
    >>> ir.rules["root"]
    [('__t0', '__t1', 'root__0')]
    >>> ir.terminals["__t1"].pattern
    '[0-9]'
    """
    if not isinstance(text, str):
        raise GrammarError(f"a GBNF grammar must be a str, not {type(text).__name__}")
    parser = _Parser(text)
    rules = parser.parse()
    defined = {rule.name for rule in rules}
    for ref in parser.refs:
        if ref.name not in defined:
            raise GrammarError(f"undefined rule {ref.name!r}", source=text, pos=ref.pos, length=len(ref.name))
    if start not in defined:
        raise GrammarError(f"no rule named {start!r} (the start rule): define '{start} ::= ...'", source=text)
    lowering = _Lowering(text, rules, parser.refs)
    for rule in rules:
        lowering.rule(rule)
    return GrammarIR(
        start=start,
        rules=lowering.rules,
        terminals=lowering.terminals,
        ignore=(),
        source=text,
        rule_positions=lowering.positions,
    )
