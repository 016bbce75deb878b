r"""Parse an ECMA-262 pattern (a JSON Schema ``pattern``) into a small regex tree over code points.

:class:`_EcmaParser` reads the syntax that :mod:`~corral.compiler.json_schema.ecma_regex` documents
(ECMA-262 without the ``u`` flag, Annex B extensions, ``\p{...}`` General_Category escapes) into
the nodes :class:`_Chars`, :class:`_Seq`, :class:`_Alt`, :class:`_Rep` and :class:`_Anchor`;
:mod:`~corral.compiler.json_schema.ecma_regex` rewrites the anchors and writes the tree in corral's dialect.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import NoReturn

from corral.compiler.json_schema.errors import Inexpressible
from corral.compiler.utf8 import MAX_CODE_POINT, CodePointSet, complement, from_intervals
from corral.errors import GrammarError

# ---------------------------------------------------------------------------------------------------
# ECMA-262 patterns -> a small regex tree
# ---------------------------------------------------------------------------------------------------

_ANY: CodePointSet = ((0, 0xD7FF), (0xE000, MAX_CODE_POINT))
"""Every Unicode scalar value (surrogates are not characters of a decoded value)."""

_ECMA_DOT = complement(((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)))
_ECMA_DIGIT: CodePointSet = ((0x30, 0x39),)
_ECMA_WORD: CodePointSet = from_intervals([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
# ECMA-262 WhiteSpace (TAB VT FF SP NBSP ZWNBSP and Zs) plus LineTerminator (LF CR LS PS).
_ECMA_SPACE = from_intervals(
    [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
     (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
)
_CLASS_ESCAPES = {
    "d": _ECMA_DIGIT, "D": complement(_ECMA_DIGIT),
    "w": _ECMA_WORD, "W": complement(_ECMA_WORD),
    "s": _ECMA_SPACE, "S": complement(_ECMA_SPACE),
}
_CONTROL_ESCAPES = {"f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_QUANT_RE = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}")


@dataclass(frozen=True)
class _Chars:
    """One code point from ``cps``."""

    cps: CodePointSet


@dataclass(frozen=True)
class _Seq:
    """Concatenation (``items == ()`` is the empty string)."""

    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    """Alternation."""

    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Rep:
    """``item{lo,hi}``; ``hi is None`` for no upper bound."""

    item: _Node
    lo: int
    hi: int | None


@dataclass(frozen=True)
class _Anchor:
    """``^`` (``end=False``) or ``$`` (``end=True``)."""

    end: bool


_Node = _Chars | _Seq | _Alt | _Rep | _Anchor
_EPS = _Seq(())


def _located(message: str, source: str, pos: int, length: int = 1) -> str:
    """``message`` with corral's location format (as :class:`GrammarError` renders it)."""
    return GrammarError(message, source=source, pos=pos, length=length).render()


@functools.lru_cache(maxsize=1)
def _general_categories() -> dict[str, CodePointSet]:
    """Code points of each two-letter General_Category, from ``unicodedata`` (computed once)."""
    runs: dict[str, list[tuple[int, int]]] = {}
    start = 0
    current = unicodedata.category("\x00")
    for cp in range(1, MAX_CODE_POINT + 2):
        cat = unicodedata.category(chr(cp)) if cp <= MAX_CODE_POINT else ""
        if cat != current:
            runs.setdefault(current, []).append((start, cp - 1))
            start, current = cp, cat
    return {k: from_intervals(v) for k, v in runs.items()}


_GC_NAMES: dict[str, tuple[str, ...]] = {
    "C": ("Other",), "Cc": ("Control", "cntrl"), "Cf": ("Format",), "Cn": ("Unassigned",),
    "Co": ("Private_Use",), "Cs": ("Surrogate",),
    "L": ("Letter",), "LC": ("Cased_Letter",), "Ll": ("Lowercase_Letter",), "Lm": ("Modifier_Letter",),
    "Lo": ("Other_Letter",), "Lt": ("Titlecase_Letter",), "Lu": ("Uppercase_Letter",),
    "M": ("Mark", "Combining_Mark"), "Mc": ("Spacing_Mark",), "Me": ("Enclosing_Mark",),
    "Mn": ("Nonspacing_Mark",),
    "N": ("Number",), "Nd": ("Decimal_Number", "digit"), "Nl": ("Letter_Number",), "No": ("Other_Number",),
    "P": ("Punctuation", "punct"), "Pc": ("Connector_Punctuation",), "Pd": ("Dash_Punctuation",),
    "Pe": ("Close_Punctuation",), "Pf": ("Final_Punctuation",), "Pi": ("Initial_Punctuation",),
    "Po": ("Other_Punctuation",), "Ps": ("Open_Punctuation",),
    "S": ("Symbol",), "Sc": ("Currency_Symbol",), "Sk": ("Modifier_Symbol",), "Sm": ("Math_Symbol",),
    "So": ("Other_Symbol",),
    "Z": ("Separator",), "Zl": ("Line_Separator",), "Zp": ("Paragraph_Separator",), "Zs": ("Space_Separator",),
}
_GC_BY_NAME = {alias: short for short, names in _GC_NAMES.items() for alias in (short, *names)}


def _property_set(name: str) -> CodePointSet | None:
    """The code points of ``\\p{name}``, or ``None`` when corral does not support the property."""
    if name in ("Any",):
        return _ANY
    if name == "ASCII":
        return ((0, 0x7F),)
    cats = _general_categories()
    if name == "Assigned":
        return complement(cats.get("Cn", ()))
    for prefix in ("General_Category=", "gc="):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    short = _GC_BY_NAME.get(name)
    if short is None:
        return None
    if short == "LC":
        members = ["Lu", "Ll", "Lt"]
    elif len(short) == 1:
        members = [k for k in cats if k.startswith(short)]
    else:
        members = [short]
    return from_intervals(iv for k in members for iv in cats.get(k, ()))


def _count_groups(source: str) -> tuple[int, bool]:
    """Number of capturing groups in ``source`` and whether any is named (for ``\\N`` and ``\\k``)."""
    count = 0
    named = False
    i = 0
    in_class = False
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            if not source.startswith("(?", i):
                count += 1
            elif source.startswith("(?<", i) and source[i + 3 : i + 4] not in ("=", "!"):
                count += 1
                named = True
        i += 1
    return count, named


class _EcmaParser:
    """Recursive-descent parser for ECMA-262 patterns (no flags, Annex B syntax, code points)."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.n = len(source)
        self.i = 0
        self.n_groups, self.has_names = _count_groups(source)
        self.names: dict[str, int] = {}

    # -- errors ------------------------------------------------------------------------------------
    def fail(self, message: str, pos: int, length: int = 1) -> NoReturn:
        raise GrammarError(f"invalid regex: {message}", source=self.src, pos=pos, length=length)

    def unsupported(self, message: str, pos: int, length: int = 1) -> NoReturn:
        raise Inexpressible(_located(message, self.src, pos, length))

    # -- structure ---------------------------------------------------------------------------------
    def parse(self) -> _Node:
        node = self.disjunction()
        if self.i < self.n:  # only a ')' stops a disjunction early
            self.fail("unbalanced parenthesis ')'", self.i)
        return node

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.src[j] if j < self.n else ""

    def disjunction(self) -> _Node:
        options = [self.alternative()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.alternative())
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def alternative(self) -> _Node:
        items: list[_Node] = []
        while self.i < self.n and self.peek() not in ("|", ")"):
            items.append(self.term())
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def quantifier_at(self, j: int) -> re.Match[str] | str | None:
        """The quantifier starting at ``j``: ``"*" "+" "?"``, a ``{...}`` match, or ``None``."""
        c = self.src[j] if j < self.n else ""
        if c in ("*", "+", "?"):
            return c
        if c == "{":
            return _QUANT_RE.match(self.src, j)
        return None

    def term(self) -> _Node:
        start = self.i
        c = self.peek()
        if c in ("^", "$"):
            self.i += 1
            if self.quantifier_at(self.i) is not None:
                self.fail(f"nothing to repeat (the anchor {c} cannot be quantified)", self.i)
            return _Anchor(c == "$")
        if c == "\\" and self.peek(1) in ("b", "B"):
            self.unsupported(f"word boundary \\{self.peek(1)} is not supported", start, 2)
        for opener, kind in (
            ("(?<=", "lookbehind (?<=...)"), ("(?<!", "negative lookbehind (?<!...)"),
            ("(?=", "lookahead (?=...)"), ("(?!", "negative lookahead (?!...)"),
        ):
            if self.src.startswith(opener, start):
                self.unsupported(f"{kind} is not supported (lookarounds are not regular)", start, len(opener))
        atom = self.atom()
        q = self.quantifier_at(self.i)
        if q is None:
            return atom
        q_start = self.i
        if isinstance(q, str):
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[q]
            self.i += 1
        else:
            lo = int(q.group(1))
            hi = lo if q.group(2) is None else (int(q.group(3)) if q.group(3) else None)
            self.i = q.end()
            if hi is not None and hi < lo:
                self.fail("numbers out of order in {} quantifier", q_start, self.i - q_start)
        if self.peek() == "?":  # lazy: same language
            self.i += 1
        if self.quantifier_at(self.i) is not None:
            self.fail("nothing to repeat (a quantifier cannot follow a quantifier)", self.i)
        return _Rep(atom, lo, hi)

    def atom(self) -> _Node:
        start = self.i
        c = self.peek()
        if c == ".":
            self.i += 1
            return _Chars(_ECMA_DOT)
        if c == "(":
            return self.group()
        if c == "[":
            return _Chars(self.char_class())
        if c == "\\":
            return self.atom_escape()
        if c in ("*", "+", "?") or (c == "{" and _QUANT_RE.match(self.src, start)):
            self.fail("nothing to repeat", start)
        return _Chars(self.literal())

    def literal(self) -> CodePointSet:
        """The source character at ``i`` (a surrogate pair in the source is one code point)."""
        cp = ord(self.src[self.i])
        self.i += 1
        cp = self.join_surrogates(cp)
        return from_intervals([(cp, cp)])

    def join_surrogates(self, cp: int) -> int:
        """Combine a high surrogate with a following low surrogate (raw or ``\\uDCxx``)."""
        if not 0xD800 <= cp <= 0xDBFF:
            return cp
        j = self.i
        low = -1
        if j < self.n and 0xDC00 <= ord(self.src[j]) <= 0xDFFF:
            low, end = ord(self.src[j]), j + 1
        elif self.src.startswith("\\u", j) and all(ch in _HEX_DIGITS for ch in self.src[j + 2 : j + 6]) \
                and len(self.src[j + 2 : j + 6]) == 4:
            unit = int(self.src[j + 2 : j + 6], 16)
            if 0xDC00 <= unit <= 0xDFFF:
                low, end = unit, j + 6
        if low < 0:
            return cp
        self.i = end
        return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)

    def group(self) -> _Node:
        start = self.i
        self.i += 1
        if self.src.startswith("?:", self.i):
            self.i += 2
        elif self.src.startswith("?<", self.i):
            end = self.src.find(">", self.i)
            name = self.src[self.i + 2 : end] if end >= 0 else ""
            if end < 0 or not (name.replace("$", "_").isidentifier()):
                self.fail("invalid group name", start, max(1, (end if end >= 0 else self.n) - start + 1))
            if name in self.names:
                self.fail(f"duplicate group name {name!r}", start, end - start + 1)
            self.names[name] = start
            self.i = end + 1
        elif self.peek() == "?":
            self.fail("invalid group: (? must be followed by :, <name>, =, !, <= or <!", start, 2)
        body = self.disjunction()
        if self.peek() != ")":
            self.fail("missing ), unterminated group", start)
        self.i += 1
        return body

    def atom_escape(self) -> _Node:
        start = self.i
        self.i += 1  # the backslash
        e = self.peek()
        if e == "":
            self.fail("\\ at end of pattern", start)
        if e in _CLASS_ESCAPES:
            self.i += 1
            return _Chars(_CLASS_ESCAPES[e])
        if e in ("p", "P") and self.peek(1) == "{":
            return _Chars(self.property_escape(start))
        if e in "123456789":
            m = re.match(r"[0-9]+", self.src[self.i :])
            assert m is not None
            number = int(m.group(0))
            if number <= self.n_groups:
                self.unsupported(
                    f"backreference \\{number} is not supported (backreferences are not regular)",
                    start, 1 + len(m.group(0)),
                )
            return _Chars(self.point(self.legacy_octal()))
        if e == "k" and self.has_names:
            end = self.src.find(">", self.i)
            length = (end - start + 1) if end >= 0 and self.peek(1) == "<" else 2
            self.unsupported(
                "backreference \\k<name> is not supported (backreferences are not regular)", start, length
            )
        if e == "c" and not (self.peek(1).isascii() and self.peek(1).isalpha()):
            return _Chars(self.point(0x5C))  # Annex B: "\c" not before a letter is a backslash
        return _Chars(self.point(self.char_escape()))

    @staticmethod
    def point(cp: int) -> CodePointSet:
        return from_intervals([(cp, cp)])

    def legacy_octal(self) -> int:
        """Annex B legacy octal escape at ``i`` (``\\8`` and ``\\9`` are identity escapes)."""
        c = self.peek()
        if c in ("8", "9"):
            self.i += 1
            return ord(c)
        digits = c
        limit = 3 if c in "0123" else 2
        self.i += 1
        while len(digits) < limit and self.peek() and self.peek() in "01234567":
            digits += self.peek()
            self.i += 1
        return int(digits, 8)

    def char_escape(self) -> int:
        """A CharacterEscape after the backslash (``i`` at the escape letter); Annex B identity."""
        e = self.peek()
        if e in _CONTROL_ESCAPES:
            self.i += 1
            return _CONTROL_ESCAPES[e]
        if e == "c":
            self.i += 2
            return ord(self.src[self.i - 1]) % 32
        if e == "0":
            if self.peek(1) in "0123456789" and self.peek(1):
                return self.legacy_octal()
            self.i += 1
            return 0
        if e == "x":
            h = self.src[self.i + 1 : self.i + 3]
            if len(h) == 2 and all(ch in _HEX_DIGITS for ch in h):
                self.i += 3
                return int(h, 16)
        if e == "u":
            h = self.src[self.i + 1 : self.i + 5]
            if len(h) == 4 and all(ch in _HEX_DIGITS for ch in h):
                self.i += 5
                return self.join_surrogates(int(h, 16))
        self.i += 1  # identity escape
        return self.join_surrogates(ord(e))

    def property_escape(self, start: int) -> CodePointSet:
        negate = self.peek() == "P"
        end = self.src.find("}", self.i)
        if end < 0:
            self.fail("missing } in Unicode property escape", start, self.n - start)
        name = self.src[self.i + 2 : end]
        self.i = end + 1
        cps = _property_set(name)
        if cps is None:
            self.unsupported(
                f"Unicode property \\{'P' if negate else 'p'}{{{name}}} is not supported (supported: "
                "General_Category values, Any, ASCII, Assigned)",
                start, end - start + 1,
            )
        return complement(cps) if negate else cps

    def char_class(self) -> CodePointSet:
        start = self.i
        self.i += 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        parts: list[tuple[int, int]] = []
        while True:
            if self.i >= self.n:
                self.fail("missing ], unterminated character class", start)
            if self.peek() == "]":
                self.i += 1
                break
            a_pos = self.i
            a = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                b = self.class_atom()
                if isinstance(a, int) and isinstance(b, int):
                    if a > b:
                        self.fail("range out of order in character class", a_pos, self.i - a_pos)
                    parts.append((a, b))
                    continue
                parts.extend(self.as_ranges(a) + [(0x2D, 0x2D)] + self.as_ranges(b))  # Annex B
                continue
            parts.extend(self.as_ranges(a))
        s = from_intervals(parts)
        return complement(s) if negate else s

    @staticmethod
    def as_ranges(atom: int | CodePointSet) -> list[tuple[int, int]]:
        return [(atom, atom)] if isinstance(atom, int) else list(atom)

    def class_atom(self) -> int | CodePointSet:
        c = self.peek()
        if c != "\\":
            self.i += 1
            return self.join_surrogates(ord(c))
        start = self.i
        self.i += 1
        e = self.peek()
        if e == "":
            self.fail("\\ at end of pattern", start)
        if e == "b":
            self.i += 1
            return 0x08
        if e == "-":
            self.i += 1
            return 0x2D
        if e in _CLASS_ESCAPES:
            self.i += 1
            return _CLASS_ESCAPES[e]
        if e in ("p", "P") and self.peek(1) == "{":
            return self.property_escape(start)
        if e == "c":
            nxt = self.peek(1)
            if nxt.isascii() and (nxt.isalnum() or nxt == "_"):
                self.i += 2
                return ord(nxt) % 32
            return 0x5C  # Annex B: the backslash stands for itself
        if e in "123456789":
            return self.legacy_octal()
        return self.char_escape()

