r"""JSON string literals whose decoded value satisfies ``pattern``, ``min/maxLength`` and ``format``.

:func:`json_string_dfa` builds the byte automaton of exactly the JSON string *literals* (the text
between and including the quotes, RFC 8259) whose decoded value satisfies the constraints. The
automaton is built at the level of Unicode code points and then *spelled*: wherever the value
automaton reads one code point from a set ``C``, the literal automaton reads any JSON spelling of a
member of ``C``:

* its raw UTF-8 bytes, unless it must be escaped (``"``, ``\`` and U+0000..U+001F);
* a short escape ``\" \\ \/ \b \f \n \r \t`` for the eight characters that have one;
* ``\uXXXX`` with hex digits in either case, for every code point of the BMP (printable ASCII and
  the characters with short escapes included);
* a surrogate pair ``\uD83D\uDE00`` (either case) for every code point above U+FFFF.

So text written by ``json.dumps(v)`` (``ensure_ascii=True``), by ``json.dumps(v, ensure_ascii=False)``
and by any other conforming serialiser is accepted. **Lone surrogates** (``"\uD800"``, a high
surrogate not followed by a low one, or a low one alone) are rejected: they are not Unicode scalar
values, RFC 8259 leaves their behaviour unpredictable, and ``json.loads`` would hand them to the
validator as unpaired surrogates that no other tool can encode.

Lengths count code points of the decoded value (RFC 8259 "characters"), not bytes or UTF-16 units.
A length bound is a counter over code points woven into the automaton, one copy of the spelled
automaton per count; the result must stay within ``max_states``
(:data:`~corral.compiler.automaton.DEFAULT_MAX_STATES`) or :class:`Inexpressible` is raised. A
plain string needs about 20 states per unit of ``maxLength`` (the states *inside* a spelling such
as ``\uD8`` must remember the count), so the default limit allows ``maxLength`` up to about 5,000;
pass a larger ``max_states`` for more.

``pattern`` (ECMA-262, JSON Schema semantics)
---------------------------------------------
:func:`ecma_to_python` translates a JSON Schema ``pattern`` into corral's regex dialect (Python
``re`` syntax, full-match semantics) such that ``re.fullmatch(ecma_to_python(p), s)`` and
``re.search(ecma_to_python(p), s)`` both hold exactly when the ECMA-262 search ``/p/.test(s)`` does:

* The search is **unanchored**: the pattern may match anywhere in the value. ``^`` and ``$`` (never
  multi-line: a schema cannot set flags) assert the start and end of the value wherever they occur,
  inside groups and alternatives included (``^a|b$``, ``(^|,)x``); the translation distributes
  them exactly, so no ``(?s:.)*`` wrapper is added on an anchored side.
* Classes are ECMA's, not Python's: ``\d`` is ``[0-9]``, ``\w`` is ``[A-Za-z0-9_]``, ``\s`` is
  ECMA's White_Space plus line terminators (``[\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029
  \u202f\u205f\u3000\ufeff]``), ``.`` is any code point except ``\n \r \u2028 \u2029``, ``[^]`` is
  any code point and ``[]`` none; ``$`` does not match before a trailing newline.
* Syntax is ECMA-262 without the ``u`` flag, with the Annex B (web compatibility) extensions that
  every engine accepts: identity escapes of any character (``\/``, ``\-``, ``\a``), ``\cX``, ``\xHH``,
  ``\uHHHH`` (``\u{...}`` is *not* a code point escape without the ``u`` flag: it is ``u``
  repeated), legacy octal escapes (``\0``, ``\12`` where ``12`` is not a group number), a ``{``,
  ``}`` or ``]`` that does not start a quantifier or class is a literal, ``a{,5}`` is literal text,
  a class escape at the end of a range makes the ``-`` literal (``[\d-z]``). Groups, named
  ``(?<name>...)`` included, are accepted; the translation has none (captures do not change
  which values match).
* Characters are **code points** (as with the ``u`` flag, which JSON Schema's test suite expects):
  ``.`` matches an astral character whole and ``^.$`` matches ``"😀"``; a surrogate pair written
  ``\uD83D\uDE00`` in a pattern is that one code point, in and out of classes; a lone surrogate
  escape matches nothing (decoded values have no lone surrogates).
* Unicode property escapes ``\p{...}``/``\P{...}`` (``u``-mode syntax, used by real schemas and the
  test suite) are supported for General_Category values under their short, long and alias names
  (``L``, ``Letter``, ``Lu``, ``Nd``, ``digit``, ``punct``, optionally ``gc=``/``General_Category=``)
  and ``Any``, ``ASCII``, ``Assigned``, computed from Python's ``unicodedata``; other properties
  (scripts, binary properties) raise :class:`Inexpressible`.

Not regular, hence :class:`Inexpressible` naming the construct and its position: backreferences
(``\1`` when group 1 exists, ``\k<name>``), lookarounds (``(?=`` ``(?!`` ``(?<=`` ``(?<!``) and word
boundaries (``\b`` ``\B``; regular in principle, not supported). Malformed patterns (nothing to
repeat, unterminated group or class, out-of-order range or quantifier, invalid group) raise
:class:`~corral.errors.GrammarError` with the position.

An unanchored search is a DFA of the subsets of pattern positions still open, which can be
exponential (``a.{20}b`` needs 2**20 states): past corral's regex limits :func:`json_string_dfa`
raises :class:`Inexpressible` (the :class:`~corral.errors.CompileLimitError` is its cause).
Constraints no value satisfies (``a^b``, ``minLength`` above ``maxLength``, a pattern that needs
more characters than ``maxLength``) give the empty automaton, which the caller can test with
``dfa.accepting.any()``.

Formats
-------
:data:`FORMATS` maps a ``format`` name to a regex in corral's dialect matched against the whole
decoded value (:func:`format_pattern` returns ``None`` for names without one: ``regex`` is not a
regular language, ``idn-hostname`` needs IDNA tables). Exact unless listed here:

* ``date`` (RFC 3339 full-date): exact, including 30/31-day months and Feb 29 in leap years only
  (divisible by 4, and not by 100 unless by 400; year ``0000`` is a leap year; Python's
  ``datetime`` rejects year 0 but RFC 3339's ``4DIGIT`` allows it).
* ``time`` / ``date-time`` (RFC 3339 full-time, ``T``/``Z`` in either case): exact except leap
  seconds. A leap second is valid only when the time is 23:59:60 UTC, i.e. local time and offset
  must agree (``15:59:60-08:00``); doing that exactly ties the hour and minute to the offset
  (1,440 combinations: the literal automaton of ``time`` grows from 196 to 66,100 states). So
  ``:60`` is accepted only as ``23:59:60`` with offset ``Z``, ``+00:00`` or ``-00:00`` — a
  subset: every accepted value is valid. ``date-time`` does not tie leap seconds to the dates
  that had one.
* ``duration``: the ISO 8601 subset of RFC 3339 Appendix A, exact (weeks alone, ``P1Y2D`` and
  fractions rejected, as the test suite expects).
* ``email``: RFC 5321 ``Mailbox``: Dot-string or Quoted-string local part, then a domain of LDH
  labels of at most 63 characters or an address literal ``[IPv4]`` / ``[IPv6:...]``. Not
  checked: the 64-octet local-part and 255-octet domain limits, general address literals
  (``[tag:...]``).
* ``idn-email`` (RFC 6531): as ``email`` with any non-ASCII code point allowed in atoms, quoted
  strings and domain labels (U-labels are not checked against IDNA2008).
* ``hostname`` (RFC 1123): LDH labels of 1 to 63 characters separated by dots, no trailing dot. Not
  checked: the 253-character total (crossed with the label counter it needs 178,000 states; pass
  ``max_length=253`` and a larger ``max_states`` to :func:`json_string_dfa` for it) and the
  validity of ``xn--`` A-labels (Punycode and IDNA2008 rules are not a practical regular
  language).
* ``ipv4``: dotted quad, 0-255, no leading zeros; exact. ``ipv6``: RFC 4291 / RFC 3986
  ``IPv6address``, all ``::`` forms and the embedded IPv4 form; exact (no zone id, no brackets).
* ``uri``, ``uri-reference`` (RFC 3986) and ``iri``, ``iri-reference`` (RFC 3987, ``iprivate``
  in queries only): the ABNF, exact; ``uri-template`` (RFC 6570 level 4): exact.
* ``uuid`` (RFC 4122 textual form, any version/variant), ``json-pointer`` (RFC 6901) and
  ``relative-json-pointer`` (draft-bhutton-relative-json-pointer-00, with the ``+``/``-`` index
  manipulation of draft 2020-12): exact.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from corral.compiler.automaton import ByteDFA, minimize, trim
from corral.compiler.limits import TABLE_ROW_BYTES, current_budget, ends_compile
from corral.compiler.json_schema.errors import Inexpressible
from corral.compiler.regex import regex_to_dfa
from corral.compiler.utf8 import (
    MAX_CODE_POINT,
    CodePointSet,
    complement,
    from_intervals,
)
from corral.errors import CompileLimitError, GrammarError

__all__ = [
    "FORMATS",
    "Inexpressible",
    "ecma_to_python",
    "format_pattern",
    "json_string_dfa",
]

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


# ---------------------------------------------------------------------------------------------------
# Anchors, the unanchored search, and Python syntax
# ---------------------------------------------------------------------------------------------------

def _seq(*parts: _Node | None) -> _Node | None:
    """Concatenation, simplified; ``None`` (no string) absorbs, ``x x*`` becomes ``x+``."""
    items: list[_Node] = []
    for p in parts:
        if p is None:
            return None
        for x in p.items if isinstance(p, _Seq) else (p,):
            if items and _rep_parts(items[-1])[0] == _rep_parts(x)[0]:
                item, lo1, hi1 = _rep_parts(items[-1])
                _, lo2, hi2 = _rep_parts(x)
                items[-1] = _Rep(item, lo1 + lo2, None if hi1 is None or hi2 is None else hi1 + hi2)
            else:
                items.append(x)
    return items[0] if len(items) == 1 else _Seq(tuple(items))


def _rep_parts(node: _Node) -> tuple[_Node, int, int | None]:
    """``node`` as ``item{lo,hi}`` (a plain node is ``node{1,1}``)."""
    if isinstance(node, _Rep):
        return node.item, node.lo, node.hi
    return node, 1, 1


def _alt(*options: _Node | None) -> _Node | None:
    """Alternation, simplified: ``None`` options dropped, duplicates removed, nesting flattened,
    ``(?:x{1,n})?`` becomes ``x{0,n}``."""
    out: list[_Node] = []
    for o in options:
        if o is None:
            continue
        for x in o.options if isinstance(o, _Alt) else (o,):
            if x not in out:
                out.append(x)
    if _EPS in out:
        ones = [x for x in out if isinstance(x, _Rep) and x.lo == 1]
        if ones:
            out.remove(_EPS)
            k = out.index(ones[0])
            out[k] = _Rep(ones[0].item, 0, ones[0].hi)
    if not out:
        return None
    return out[0] if len(out) == 1 else _Alt(tuple(out))


def _rep(item: _Node | None, lo: int, hi: int | None) -> _Node | None:
    if hi == 0 or item == _EPS:
        return _EPS
    if item is None:
        return _EPS if lo == 0 else None
    if lo == 1 and hi == 1:
        return item
    return _Rep(item, lo, hi)


def _prune(node: _Node) -> _Node | None:
    """Remove parts that match nothing (``[]``, a lone surrogate): ``None`` if nothing is left."""
    if isinstance(node, _Chars):
        return node if node.cps else None
    if isinstance(node, _Seq):
        return _seq(*(_prune(x) for x in node.items)) if node.items else _EPS
    if isinstance(node, _Alt):
        return _alt(*(_prune(x) for x in node.options))
    if isinstance(node, _Rep):
        return _rep(_prune(node.item), node.lo, node.hi)
    return node


class _AnchorRewriter:
    """Rewrites a tree with ``^``/``$`` anywhere into anchor-free trees, one per context.

    For a node ``r`` and a context ``(a, b)`` — "``r`` starts at the start of the value", "``r``
    ends at the end of the value" — :meth:`ctx` returns ``(N, E)``: an anchor-free tree of the
    *non-empty* strings ``r`` matches there, and whether it matches the empty string there. ``^``
    is ``(nothing, a)``, ``$`` is ``(nothing, b)``. For a concatenation ``x y`` the split point is
    at the start only if ``x`` matched nothing, and at the end only if ``y`` did::

        N_ab(x y) = N_a0(x) N_0b(y)  |  [E_a0(x)] N_ab(y)  |  N_ab(x) [E_0b(y)]
        E_ab(x y) = E_ab(x) and E_ab(y)

    and for a star, the first, middle and last non-empty iterations have contexts ``(a, 0)``,
    ``(0, 0)`` and ``(0, b)`` (empty iterations change no text). Bounded repetitions of a subtree
    with anchors are expanded. Anchor-free subtrees do not depend on the context.
    """

    MAX_EXPANSION = 16

    def __init__(self, source: str) -> None:
        self.source = source
        self._anchored: dict[int, tuple[_Node, bool]] = {}
        self._nullable: dict[int, tuple[_Node, bool]] = {}
        self._nonempty: dict[int, tuple[_Node, _Node | None]] = {}
        self._ctx: dict[tuple[int, int, bool, bool], tuple[object, tuple[_Node | None, bool]]] = {}

    def has_anchor(self, node: _Node) -> bool:
        got = self._anchored.get(id(node))
        if got is not None:
            return got[1]
        if isinstance(node, _Anchor):
            res = True
        elif isinstance(node, _Chars):
            res = False
        elif isinstance(node, _Seq):
            res = any(self.has_anchor(x) for x in node.items)
        elif isinstance(node, _Alt):
            res = any(self.has_anchor(x) for x in node.options)
        else:
            res = self.has_anchor(node.item)
        self._anchored[id(node)] = (node, res)
        return res

    def nullable(self, node: _Node) -> bool:
        """Whether an anchor-free ``node`` matches the empty string."""
        got = self._nullable.get(id(node))
        if got is not None:
            return got[1]
        if isinstance(node, _Chars):
            res = False
        elif isinstance(node, _Seq):
            res = all(self.nullable(x) for x in node.items)
        elif isinstance(node, _Alt):
            res = any(self.nullable(x) for x in node.options)
        elif isinstance(node, _Rep):
            res = node.lo == 0 or self.nullable(node.item)
        else:  # pragma: no cover - anchors are handled by ctx
            raise AssertionError("nullable() of an anchor")
        self._nullable[id(node)] = (node, res)
        return res

    def nonempty(self, node: _Node) -> _Node | None:
        """The non-empty strings an anchor-free ``node`` matches."""
        got = self._nonempty.get(id(node))
        if got is not None:
            return got[1]
        res: _Node | None
        if not self.nullable(node):
            res = node
        elif isinstance(node, _Seq):
            options: list[_Node | None] = []
            for k, part in enumerate(node.items):
                options.append(_seq(self.nonempty(part), *node.items[k + 1 :]))
                if not self.nullable(part):  # pragma: no cover - node is nullable, so all parts are
                    break
            res = _alt(*options)
        elif isinstance(node, _Alt):
            res = _alt(*(self.nonempty(x) for x in node.options))
        elif isinstance(node, _Rep):
            hi = None if node.hi is None else node.hi - 1
            res = _seq(self.nonempty(node.item), _rep(node.item, max(node.lo - 1, 0), hi))
        else:  # pragma: no cover
            raise AssertionError("nonempty() of an anchor")
        self._nonempty[id(node)] = (node, res)
        return res

    def ctx(self, node: _Node, a: bool, b: bool) -> tuple[_Node | None, bool]:
        if not self.has_anchor(node):
            return self.nonempty(node), self.nullable(node)
        key = (id(node), -1, a, b)
        got = self._ctx.get(key)
        if got is not None:
            return got[1]
        res: tuple[_Node | None, bool]
        if isinstance(node, _Anchor):
            res = (None, b if node.end else a)
        elif isinstance(node, _Alt):
            parts = [self.ctx(x, a, b) for x in node.options]
            res = (_alt(*(p[0] for p in parts)), any(p[1] for p in parts))
        elif isinstance(node, _Seq):
            res = self.seq_ctx(node, 0, a, b)
        else:
            assert isinstance(node, _Rep)
            res = self.rep_ctx(node, a, b)
        self._ctx[key] = (node, res)
        return res

    def seq_ctx(self, node: _Seq, k: int, a: bool, b: bool) -> tuple[_Node | None, bool]:
        """:meth:`ctx` of ``node.items[k:]``."""
        items = node.items
        if k == len(items):
            return None, True
        if k == len(items) - 1:
            return self.ctx(items[k], a, b)
        key = (id(node), k, a, b)
        got = self._ctx.get(key)
        if got is not None:
            return got[1]
        x = items[k]
        nx_a0, ex_a0 = self.ctx(x, a, False)
        nx_ab, ex_ab = self.ctx(x, a, b)
        nr_0b, er_0b = self.seq_ctx(node, k + 1, False, b)
        nr_ab, er_ab = self.seq_ctx(node, k + 1, a, b)
        res = (
            _alt(_seq(nx_a0, nr_0b), nr_ab if ex_a0 else None, nx_ab if er_0b else None),
            ex_ab and er_ab,
        )
        self._ctx[key] = (node, res)
        return res

    def rep_ctx(self, node: _Rep, a: bool, b: bool) -> tuple[_Node | None, bool]:
        item, lo, hi = node.item, node.lo, node.hi
        if lo == 0 and hi is None:
            n_ab = self.ctx(item, a, b)[0]
            n_a0 = self.ctx(item, a, False)[0]
            n_00 = self.ctx(item, False, False)[0]
            n_0b = self.ctx(item, False, b)[0]
            return _alt(n_ab, _seq(n_a0, _rep(n_00, 0, None), n_0b)), True
        if lo > self.MAX_EXPANSION or (hi is not None and hi > self.MAX_EXPANSION):
            raise Inexpressible(
                f"a group with an anchor (^ or $) repeated {{{lo},{'' if hi is None else hi}}} times is "
                f"not supported (at most {self.MAX_EXPANSION} repetitions) in the pattern {self.source!r}"
            )
        parts: list[_Node] = [item] * lo
        if hi is None:
            parts.append(_Rep(item, 0, None))
        else:
            parts.extend([_Alt((item, _EPS))] * (hi - lo))
        synthetic = _Seq(tuple(parts))
        result = self.seq_ctx(synthetic, 0, a, b) if parts else (None, True)
        self._ctx[(id(synthetic), -2, a, b)] = (synthetic, result)  # keep it alive (ids are keys)
        return result


def _search_form(source: str, tree: _Node) -> _Node | None:
    """An anchor-free tree whose full matches are the values in which ``tree`` matches somewhere."""
    node = _prune(tree)
    if node is None:
        return None
    any_star = _Rep(_Chars(_ANY), 0, None)
    any_plus = _Rep(_Chars(_ANY), 1, None)
    rw = _AnchorRewriter(source)
    if not rw.has_anchor(node):
        return _seq(any_star, node, any_star)
    m = {}
    for a in (True, False):
        for b in (True, False):
            n_ab, e_ab = rw.ctx(node, a, b)
            m[a, b] = _alt(n_ab, _EPS if e_ab else None)
    # value = prefix . match . suffix, with an empty prefix exactly when a, an empty suffix when b
    left = {}
    for b in (True, False):
        at_start, inside = m[True, b], m[False, b]
        left[b] = _seq(any_star, at_start) if at_start == inside else _alt(at_start, _seq(any_plus, inside))
    if left[True] == left[False]:
        return _seq(left[True], any_star)
    return _alt(left[True], _seq(left[False], any_plus))


def _py_char(cp: int) -> str:
    """``cp`` written for a Python pattern, inside or outside a class."""
    ch = chr(cp)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    if 0x21 <= cp <= 0x7E:
        return "\\" + ch
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _set_size(s: CodePointSet) -> int:
    return sum(hi - lo + 1 for lo, hi in s)


def _py_set(cps: CodePointSet) -> str:
    """A Python class for ``cps`` (the cheaper of the set and its negated complement)."""
    rest = complement(cps)
    if not rest:
        return "(?s:.)"
    if len(cps) == 1 and cps[0][0] == cps[0][1]:
        return _py_char(cps[0][0])
    negate = _set_size(rest) < _set_size(cps)
    body = "".join(
        _py_char(lo) if lo == hi else f"{_py_char(lo)}{'' if hi == lo + 1 else '-'}{_py_char(hi)}"
        for lo, hi in (rest if negate else cps)
    )
    return f"[{'^' if negate else ''}{body}]"


def _py_quantifier(lo: int, hi: int | None) -> str:
    if hi is None:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if (lo, hi) == (0, 1):
        return "?"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _py_pattern(node: _Node, level: int = 0) -> str:
    """Python syntax for an anchor-free tree. ``level``: 0 alternation, 1 sequence item, 2 atom."""
    if isinstance(node, _Chars):
        return _py_set(node.cps)
    if isinstance(node, _Seq):
        if not node.items:
            return "(?:)"
        text = "".join(_py_pattern(x, 1) for x in node.items)
        return f"(?:{text})" if level == 2 and len(node.items) > 1 else text
    if isinstance(node, _Alt):
        if _EPS in node.options:
            rest = _alt(*(x for x in node.options if x != _EPS))
            assert rest is not None
            return _py_pattern(_Rep(rest, 0, 1), level)
        text = "|".join(_py_pattern(x, 0) for x in node.options)
        return f"(?:{text})" if level >= 1 else text
    if isinstance(node, _Rep):
        text = _py_pattern(node.item, 2) + _py_quantifier(node.lo, node.hi)
        return f"(?:{text})" if level == 2 else text
    raise AssertionError("anchors are rewritten before emission")  # pragma: no cover


MAX_TRANSLATION_CHARS = 200_000
"""Longest translation :func:`ecma_to_python` produces (anchors deep inside groups multiply it)."""


def _ecma_search_tree(pattern: str) -> _Node | None:
    if not isinstance(pattern, str):
        raise GrammarError(f"a pattern must be a str, not {type(pattern).__name__}")
    return _search_form(pattern, _EcmaParser(pattern).parse())


def ecma_to_python(pattern: str) -> str:
    r"""Translate a JSON Schema ``pattern`` (ECMA-262, unanchored search) into corral's dialect.

    Parameters
    ----------
    pattern:
        An ECMA-262 regular expression as found in a schema's ``pattern`` or
        ``patternProperties`` (the module docstring lists the accepted syntax).

    Returns
    -------
    str
        A Python pattern ``P`` with ``re.fullmatch(P, s)`` (and equally ``re.search(P, s)``) true
        exactly when ECMA-262 finds ``pattern`` somewhere in ``s``; it is accepted by
        :func:`~corral.compiler.regex.regex_to_dfa`. Anchors are resolved (``\A`` and ``\Z`` frame
        the result), unanchored sides get ``(?s:.)*``.

    Raises
    ------
    GrammarError
        For a malformed pattern, or one that matches no string at all.
    Inexpressible
        For backreferences, lookarounds, word boundaries, unsupported Unicode properties, or
        anchors repeated by a large quantifier.

    Examples
    --------
    >>> ecma_to_python(r"^\d{3}$")
    '\\A[0-9]{3}\\Z'
    >>> ecma_to_python("a+")
    '\\A(?s:.)*a+(?s:.)*\\Z'
    """
    translated = _translate(pattern)
    if translated is None:
        raise GrammarError("the pattern matches no string", source=pattern, pos=0, length=len(pattern))
    return translated


def _translate(pattern: str) -> str | None:
    """:func:`ecma_to_python`, with ``None`` for a pattern that matches no string."""
    try:
        node = _ecma_search_tree(pattern)
        body = None if node is None else _py_pattern(node, 1)
    except RecursionError:
        raise GrammarError("invalid regex: nested too deeply", source=pattern, pos=0) from None
    if body is None:
        return None
    if len(body) > MAX_TRANSLATION_CHARS:
        raise Inexpressible(
            f"the pattern {pattern!r} translates to more than {MAX_TRANSLATION_CHARS} characters "
            "(anchors inside repeated or nested groups multiply it)"
        )
    return f"\\A{body}\\Z"


# ---------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------

def _build_formats() -> dict[str, str]:
    """The :data:`FORMATS` table; each constant says which RFC production it is."""
    hexdig = "[0-9A-Fa-f]"
    # RFC 3339 section 5.6, full-date with the day limits of Appendix C.
    leap_year = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
    month_day = (
        "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    )
    full_date = f"(?:[0-9]{{4}}-{month_day}|{leap_year}-02-29)"
    hour = "(?:[01][0-9]|2[0-3])"
    minute = "[0-5][0-9]"
    secfrac = r"(?:\.[0-9]+)?"
    offset = f"(?:[Zz]|[+-]{hour}:{minute})"
    # Leap seconds only at 23:59:60 UTC written with a zero offset (see the module docstring).
    full_time = f"(?:{hour}:{minute}:[0-5][0-9]{secfrac}{offset}|23:59:60{secfrac}(?:[Zz]|[+-]00:00))"
    # RFC 3339 Appendix A (ISO 8601 durations).
    n = "[0-9]+"
    dur_time = f"T(?:{n}H(?:{n}M(?:{n}S)?)?|{n}M(?:{n}S)?|{n}S)"
    dur_date = f"(?:{n}D|{n}M(?:{n}D)?|{n}Y(?:{n}M(?:{n}D)?)?)(?:{dur_time})?"
    duration = f"P(?:{dur_date}|{dur_time}|{n}W)"
    # RFC 3986 section 3.2.2.
    dec_octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ipv4 = rf"{dec_octet}(?:\.{dec_octet}){{3}}"
    h16 = f"{hexdig}{{1,4}}"
    ls32 = f"(?:{h16}:{h16}|{ipv4})"
    ipv6 = "(?:" + "|".join([
        f"(?:{h16}:){{6}}{ls32}",
        f"::(?:{h16}:){{5}}{ls32}",
        f"(?:{h16})?::(?:{h16}:){{4}}{ls32}",
        f"(?:(?:{h16}:){{0,1}}{h16})?::(?:{h16}:){{3}}{ls32}",
        f"(?:(?:{h16}:){{0,2}}{h16})?::(?:{h16}:){{2}}{ls32}",
        f"(?:(?:{h16}:){{0,3}}{h16})?::{h16}:{ls32}",
        f"(?:(?:{h16}:){{0,4}}{h16})?::{ls32}",
        f"(?:(?:{h16}:){{0,5}}{h16})?::{h16}",
        f"(?:(?:{h16}:){{0,6}}{h16})?::",
    ]) + ")"
    # RFC 1123 host names: LDH labels of 1..63 characters.
    label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    hostname = rf"{label}(?:\.{label})*"
    # RFC 5321 section 4.1.2 Mailbox; RFC 6531 adds UTF8-non-ascii to atext, qtext and labels.
    atext = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
    address_literal = rf"\[(?:{ipv4}|[Ii][Pp][Vv]6:{ipv6})\]"

    def mailbox(non_ascii: bool) -> str:
        extra = [(0x80, MAX_CODE_POINT)] if non_ascii else []
        atom = _py_set(from_intervals(_ranges_of(atext) + extra))
        qtext = _py_set(from_intervals([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)] + extra))
        letdig = _py_set(from_intervals(_ranges_of("A-Za-z0-9") + extra))
        ldh = _py_set(from_intervals(_ranges_of("A-Za-z0-9-") + extra))
        lab = f"{letdig}(?:{ldh}{{0,61}}{letdig})?"
        local = rf'(?:{atom}+(?:\.{atom}+)*|"(?:{qtext}|\\[ -~])*")'
        return rf"{local}@(?:{lab}(?:\.{lab})*|{address_literal})"

    uri, uri_reference = _uri_patterns(ipv4, ipv6, iri=False)
    iri, iri_reference = _uri_patterns(ipv4, ipv6, iri=True)
    # RFC 6901 and draft-bhutton-relative-json-pointer-00.
    json_pointer = "(?:/(?:[^~/]|~[01])*)*"
    relative_json_pointer = f"(?:0|[1-9][0-9]*)(?:[+-][1-9][0-9]*)?(?:#|{json_pointer})"
    return {
        "date": full_date,
        "time": full_time,
        "date-time": f"{full_date}[Tt]{full_time}",
        "duration": duration,
        "email": mailbox(non_ascii=False),
        "idn-email": mailbox(non_ascii=True),
        "hostname": hostname,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "uri": uri,
        "uri-reference": uri_reference,
        "iri": iri,
        "iri-reference": iri_reference,
        "uri-template": _uri_template_pattern(),
        "uuid": f"{hexdig}{{8}}-{hexdig}{{4}}-{hexdig}{{4}}-{hexdig}{{4}}-{hexdig}{{12}}",
        "json-pointer": json_pointer,
        "relative-json-pointer": relative_json_pointer,
    }


def _ranges_of(spec: str) -> list[tuple[int, int]]:
    """Code point ranges of a class body written with ``a-z`` ranges and ``\\`` escapes."""
    chars: list[tuple[str, bool]] = []  # (character, written as a plain '-')
    i = 0
    while i < len(spec):
        escaped = spec[i] == "\\"
        chars.append((spec[i + 1] if escaped else spec[i], spec[i] == "-"))
        i += 2 if escaped else 1
    out: list[tuple[int, int]] = []
    k = 0
    while k < len(chars):
        if k + 2 < len(chars) and chars[k + 1][1]:
            out.append((ord(chars[k][0]), ord(chars[k + 2][0])))
            k += 3
        else:
            out.append((ord(chars[k][0]), ord(chars[k][0])))
            k += 1
    return out


# RFC 3987 ucschar and iprivate.
_UCSCHAR = [(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF)] + [
    (p << 16, (p << 16) | 0xFFFD) for p in range(1, 14)
] + [(0xE1000, 0xEFFFD)]
_IPRIVATE = [(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]


def _uri_patterns(ipv4: str, ipv6: str, *, iri: bool) -> tuple[str, str]:
    """RFC 3986 ``URI`` and ``URI-reference`` (RFC 3987 ``IRI`` forms when ``iri``).

    Factored so that each character class occurs few times (the regex compiler pays per
    occurrence for the large IRI classes)::

        URI           = scheme ":" ("//" authority path-abempty / ["/"] [segment-nz *("/" segment)]) tail
        URI-reference = ( [scheme ":"] "//" authority path-abempty / [scheme ":"] path-absolute
                        / scheme ":" path-rootless / path-noscheme / scheme ":" / "" ) tail

    where ``["/"] [segment-nz *("/" segment)]`` is path-absolute / path-rootless / path-empty and
    ``tail = ["?" query] ["#" fragment]``.
    """
    unreserved = _ranges_of(r"A-Za-z0-9\-._~") + (_UCSCHAR if iri else [])
    sub_delims = _ranges_of("!$&'()*+,;=")
    pct = "%[0-9A-Fa-f]{2}"

    def cls(extra: str, private: bool = False) -> str:
        ranges = unreserved + sub_delims + _ranges_of(extra)
        return _py_set(from_intervals(ranges + (_IPRIVATE if private else [])))

    pchar = f"(?:{cls(':@')}|{pct})"
    scheme = r"[A-Za-z][A-Za-z0-9+\-.]*"
    userinfo = f"(?:{cls(':')}|{pct})*"
    ipvfuture = rf"[Vv][0-9A-Fa-f]+\.{cls(':')}+"
    host = rf"(?:\[(?:{ipv6}|{ipvfuture})\]|{ipv4}|(?:{cls('')}|{pct})*)"
    authority = f"(?:{userinfo}@)?{host}(?::[0-9]*)?"
    segments = f"(?:/{pchar}*)*"
    net_path = f"//{authority}{segments}"
    nz_path = f"{pchar}+{segments}"
    noscheme_path = f"(?:{cls('@')}|{pct})+{segments}"
    query = f"(?:{cls(':@/?', private=iri)}|{pct})*"
    fragment = f"(?:{cls(':@/?')}|{pct})*"
    tail = rf"(?:\?{query})?(?:#{fragment})?"
    absolute = f"{scheme}:(?:{net_path}|/?(?:{nz_path})?){tail}"
    reference = (
        f"(?:(?:{scheme}:)?{net_path}|(?:{scheme}:)?/(?:{nz_path})?|{scheme}:{nz_path}|{noscheme_path}|{scheme}:)?{tail}"
    )
    return absolute, reference


def _uri_template_pattern() -> str:
    """RFC 6570 section 2 ``URI-Template`` (level 4)."""
    literal_ranges = [(0x21, 0x21), (0x23, 0x24), (0x26, 0x26), (0x28, 0x3B), (0x3D, 0x3D), (0x3F, 0x5B),
                      (0x5D, 0x5D), (0x5F, 0x5F), (0x61, 0x7A), (0x7E, 0x7E)] + _UCSCHAR + _IPRIVATE
    literals = f"(?:{_py_set(from_intervals(literal_ranges))}|%[0-9A-Fa-f]{{2}})"
    varchar = "(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})"
    varname = rf"{varchar}(?:\.?{varchar})*"
    varspec = rf"{varname}(?::[1-9][0-9]{{0,3}}|\*)?"
    expression = rf"\{{[+#./;?&=,!@|]?{varspec}(?:,{varspec})*\}}"
    return f"(?:{literals}|{expression})*"


FORMATS: dict[str, str] = _build_formats()
"""``format`` name -> regex (corral's dialect, full match on the decoded value); see the module
docstring for what each one checks and every approximation."""


def format_pattern(name: str) -> str | None:
    """The value regex for the JSON Schema ``format`` ``name``, or ``None`` if corral has none.

    Parameters
    ----------
    name:
        A format name such as ``"date-time"``.

    Returns
    -------
    str or None
        A pattern for :func:`json_string_dfa` with ``ecma=False`` (full-match semantics); ``None``
        for formats that are not regular (``regex``) or not supported (``idn-hostname``, unknown
        names). The caller decides whether that is an error.

    Examples
    --------
    >>> import re
    >>> bool(re.fullmatch(format_pattern("date"), "2024-02-29"))
    True
    >>> format_pattern("regex") is None
    True
    """
    return FORMATS.get(name)


# ---------------------------------------------------------------------------------------------------
# Value automaton over code points
# ---------------------------------------------------------------------------------------------------

# A mapping from code points (or from digit-string values) to target states: sorted disjoint
# closed intervals (lo, hi, target).
_Mapping = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class _CodePointDFA:
    """A DFA over code points: ``moves[q]`` maps code points to successor states."""

    moves: list[_Mapping]
    accepting: list[bool]
    start: int


def _merge(pieces: list[tuple[int, int, int]]) -> _Mapping:
    """Sort intervals and merge touching ones with the same target."""
    out: list[list[int]] = []
    for lo, hi, t in sorted(pieces):
        if out and out[-1][2] == t and out[-1][1] + 1 == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi, t])
    return tuple((a, b, c) for a, b, c in out)


def _code_point_dfa(dfa: ByteDFA) -> _CodePointDFA:
    """Read a trimmed DFA over UTF-8 as a DFA over code points.

    The byte DFA's states at character boundaries become the code point DFA's states; the states
    inside a multi-byte character are folded into the transitions (memoised per state and number
    of continuation bytes left).
    """
    trans = dfa.trans
    memo: dict[tuple[int, int], list[tuple[int, int, int]]] = {}

    def cont(x: int, k: int) -> list[tuple[int, int, int]]:
        """Values of the remaining ``k`` continuation bytes (6 bits each) -> target, from ``x``."""
        got = memo.get((x, k))
        if got is not None:
            return got
        row = trans[x, 0x80:0xC0].tolist()
        out: list[tuple[int, int, int]] = []
        width = 1 << (6 * (k - 1))
        for j, y in enumerate(row):
            if y < 0:
                continue
            for lo, hi, t in ((0, 0, y),) if k == 1 else cont(y, k - 1):
                lo, hi = j * width + lo, j * width + hi
                if out and out[-1][2] == t and out[-1][1] + 1 == lo:
                    out[-1] = (out[-1][0], hi, t)
                else:
                    out.append((lo, hi, t))
        memo[(x, k)] = out
        return out

    index = {dfa.start: 0}
    order = [dfa.start]
    moves: list[_Mapping] = []
    i = 0
    while i < len(order):
        s = order[i]
        i += 1
        row = trans[s].tolist()
        pieces: list[tuple[int, int, int]] = [(b, b, row[b]) for b in range(0x80) if row[b] >= 0]
        for lead, first, k in ((0xC2, 0xDF, 1), (0xE0, 0xEF, 2), (0xF0, 0xF4, 3)):
            mask = (0x1F, 0x0F, 0x07)[k - 1]
            for b in range(lead, first + 1):
                y = row[b]
                if y >= 0:
                    base = (b & mask) << (6 * k)
                    pieces.extend((base + lo, base + hi, t) for lo, hi, t in cont(y, k))
        mapping = _merge(pieces)
        renamed = []
        for lo, hi, t in mapping:
            j = index.get(t)
            if j is None:
                j = index[t] = len(order)
                order.append(t)
            renamed.append((lo, hi, j))
        moves.append(_merge(renamed))
    accepting = [bool(dfa.accepting[s]) for s in order]
    return _CodePointDFA(moves, accepting, 0)


_ANY_VALUE = _CodePointDFA([((0, 0xD7FF, 0), (0xE000, MAX_CODE_POINT, 0))], [True], 0)


# ---------------------------------------------------------------------------------------------------
# Spelling: code point transitions -> JSON string literal bytes
# ---------------------------------------------------------------------------------------------------

_SHORT_ESCAPES = ((ord('"'), 0x22), (ord("\\"), 0x5C), (ord("/"), 0x2F), (ord("b"), 0x08),
                  (ord("f"), 0x0C), (ord("n"), 0x0A), (ord("r"), 0x0D), (ord("t"), 0x09))


def _clip(m: _Mapping, lo: int, hi: int, shift: int = 0) -> _Mapping:
    """The part of ``m`` inside ``lo..hi``, moved by ``-shift``."""
    return tuple((max(a, lo) - shift, min(b, hi) - shift, t) for a, b, t in m if b >= lo and a <= hi)


def _lookup(m: _Mapping, x: int) -> int:
    for a, b, t in m:
        if a <= x <= b:
            return t
    return -1


def _split_runs(m: _Mapping, width: int) -> list[tuple[int, int, _Mapping]]:
    """Cut ``m`` into blocks of ``width`` values: ``(first block, last block, block mapping)``.

    Consecutive blocks covered whole by one interval come as one run; block mappings are moved to
    start at 0. ``O(len(m))``.
    """
    full: list[tuple[int, int, _Mapping]] = []
    pieces: dict[int, list[tuple[int, int, int]]] = {}
    last = width - 1
    for lo, hi, t in m:
        jl, jh = lo // width, hi // width
        ol, oh = lo - jl * width, hi - jh * width
        if jl == jh:
            if ol == 0 and oh == last:
                full.append((jl, jl, ((0, last, t),)))
            else:
                pieces.setdefault(jl, []).append((ol, oh, t))
            continue
        first = jl
        if ol:
            pieces.setdefault(jl, []).append((ol, last, t))
            first = jl + 1
        final = jh
        if oh != last:
            pieces.setdefault(jh, []).append((0, oh, t))
            final = jh - 1
        if first <= final:
            full.append((first, final, ((0, last, t),)))
    runs = full + [(j, j, tuple(p)) for j, p in pieces.items()]
    runs.sort()
    return runs


class _Speller:
    """Builds the literal automaton of a :class:`_CodePointDFA`, sharing identical sub-tries.

    Node kinds (each memoised by its residual mapping, so equal residual languages share a state):
    ``cont(k, m)`` reads ``k`` UTF-8 continuation bytes; ``hexdigits(k, m)`` reads ``k`` hex digits
    of a ``\\u`` escape; ``escape(m)`` follows a backslash; ``low(m)`` expects the ``\\uDCxx`` half
    of a surrogate pair. Mapping targets are node ids; the code point DFA's states get their ids
    first (they are the targets of completed characters and form cycles).
    """

    def __init__(self, value: _CodePointDFA) -> None:
        self.rows: list[list[tuple[int, int, int]]] = []
        self.memo: dict[tuple[object, ...], int] = {}
        self.start = self.new()
        self.final = self.new()
        self.boundary = [self.new() for _ in value.moves]
        self.rows[self.start].append((0x22, 0x22, self.boundary[value.start]))
        for q, moves in enumerate(value.moves):
            m = tuple((lo, hi, self.boundary[t]) for lo, hi, t in moves)
            self.rows[self.boundary[q]] = self.raw_row(m, value.accepting[q])

    def new(self) -> int:
        self.rows.append([])
        return len(self.rows) - 1

    def node(self, key: tuple[object, ...], build: object) -> int:
        got = self.memo.get(key)
        if got is None:
            row = build()  # type: ignore[operator]
            got = self.new()
            self.rows[got] = row
            self.memo[key] = got
        return got

    def raw_row(self, m: _Mapping, accepting: bool) -> list[tuple[int, int, int]]:
        """A character boundary: raw UTF-8, a backslash, or the closing quote."""
        row: list[tuple[int, int, int]] = []
        for lo, hi, t in _clip(m, 0x20, 0x7F):
            for a, b in ((lo, hi),) if not (lo <= 0x22 <= hi or lo <= 0x5C <= hi) else _holes(lo, hi):
                row.append((a, b, t))
        for k, lead, region_lo, region_hi in ((1, 0xC0, 0x80, 0x7FF), (2, 0xE0, 0x800, 0xFFFF),
                                              (3, 0xF0, 0x10000, MAX_CODE_POINT)):
            width = 1 << (6 * k)
            for j0, j1, sub in _split_runs(_clip(m, region_lo, region_hi), width):
                row.append((lead + j0, lead + j1, self.cont(k, sub)))
        if m:
            row.append((0x5C, 0x5C, self.escape(m)))
        if accepting:
            row.append((0x22, 0x22, self.final))
        return row

    def cont(self, k: int, m: _Mapping) -> int:
        def build() -> list[tuple[int, int, int]]:
            if k == 1:
                return [(0x80 + lo, 0x80 + hi, t) for lo, hi, t in m]
            width = 1 << (6 * (k - 1))
            return [(0x80 + j0, 0x80 + j1, self.cont(k - 1, sub)) for j0, j1, sub in _split_runs(m, width)]

        return self.node(("c", k, m), build)

    def hexdigits(self, k: int, m: _Mapping) -> int:
        def build() -> list[tuple[int, int, int]]:
            if k == 1:
                runs = [(lo, hi, t) for lo, hi, t in m]
            else:
                width = 1 << (4 * (k - 1))
                runs = [(j0, j1, self.hexdigits(k - 1, sub)) for j0, j1, sub in _split_runs(m, width)]
            row: list[tuple[int, int, int]] = []
            for d0, d1, t in runs:
                if d0 <= 9:
                    row.append((0x30 + d0, 0x30 + min(d1, 9), t))
                if d1 >= 10:
                    a, b = max(d0, 10) - 10, d1 - 10
                    row.append((0x41 + a, 0x41 + b, t))
                    row.append((0x61 + a, 0x61 + b, t))
            return row

        return self.node(("h", k, m), build)

    def escape(self, m: _Mapping) -> int:
        def build() -> list[tuple[int, int, int]]:
            row = [(byte, byte, t) for byte, cp in _SHORT_ESCAPES if (t := _lookup(m, cp)) >= 0]
            units = list(_clip(m, 0, 0xD7FF))
            astral = _clip(m, 0x10000, MAX_CODE_POINT, shift=0x10000)
            for j0, j1, sub in _split_runs(astral, 0x400):
                units.append((0xD800 + j0, 0xD800 + j1, self.low(sub)))
            units.extend(_clip(m, 0xE000, 0xFFFF))
            row.append((ord("u"), ord("u"), self.hexdigits(4, tuple(units))))
            return row

        return self.node(("e", m), build)

    def low(self, m: _Mapping) -> int:
        """After a high surrogate: ``\\u`` and a low surrogate whose 10 bits ``m`` maps."""
        def after_u() -> list[tuple[int, int, int]]:
            return [(ord("u"), ord("u"), self.hexdigits(4, tuple((0xDC00 + a, 0xDC00 + b, t) for a, b, t in m)))]

        def build() -> list[tuple[int, int, int]]:
            return [(0x5C, 0x5C, self.node(("u", m), after_u))]

        return self.node(("l", m), build)

    def table(self) -> np.ndarray:
        trans = np.full((len(self.rows), 256), -1, dtype=np.int32)
        for s, row in enumerate(self.rows):
            for lo, hi, t in row:
                trans[s, lo : hi + 1] = t
        return trans


def _holes(lo: int, hi: int) -> list[tuple[int, int]]:
    """``lo..hi`` without ``"`` and ``\\`` (which must be escaped)."""
    out = []
    cur = lo
    for x in (0x22, 0x5C):
        if lo <= x <= hi:
            if cur <= x - 1:
                out.append((cur, x - 1))
            cur = x + 1
    if cur <= hi:
        out.append((cur, hi))
    return out


def _empty_dfa() -> ByteDFA:
    return ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.array([False]), 0)


class LengthBoundsTooLarge(Inexpressible):
    """Length bounds whose counter needs more than ``max_states`` states.

    Attributes
    ----------
    per:
        States the counter needs per character of the bound.
    max_states:
        The limit.
    """

    def __init__(self, per: int, max_states: int, message: str) -> None:
        super().__init__(message)
        self.per = per
        self.max_states = max_states


def _count_lengths(
    trans: np.ndarray, boundary: np.ndarray, start: int, final: int,
    min_length: int, max_length: int | None, max_states: int,
) -> ByteDFA:
    """Weave a code point counter into a spelled automaton: one copy ("layer") per count.

    A transition into a character-boundary state completes a character (except the opening
    quote) and moves to the next layer; the closing quote accepts only from layers
    ``min_length..max_length`` and leads to one shared final state. Without ``max_length`` the
    layer ``min_length`` repeats. Each layer holds only the states that are reachable in it
    (forward pass) and can still reach acceptance (backward pass), so the result is trimmed
    before it is minimised; layers with the same states are computed once.
    """
    n = trans.shape[0]
    completes = (trans >= 0) & boundary[np.maximum(trans, 0)]
    completes[start] = False
    within: list[list[int]] = []
    onward: list[list[int]] = []
    for s in range(n):
        row = trans[s]
        within.append(np.unique(row[(row >= 0) & ~completes[s]]).tolist())
        onward.append(np.unique(row[completes[s]]).tolist())
    pred_within: list[list[int]] = [[] for _ in range(n)]
    pred_onward: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        for t in within[s]:
            pred_within[t].append(s)
        for t in onward[s]:
            pred_onward[t].append(s)
    top = max_length if max_length is not None else min_length
    saturate = max_length is None

    forward: dict[frozenset[int], tuple[frozenset[int], frozenset[int]]] = {}

    def reach(entries: frozenset[int]) -> tuple[frozenset[int], frozenset[int]]:
        """States of a layer entered at ``entries``, and the entries of the next layer."""
        got = forward.get(entries)
        if got is None:
            seen = set(entries)
            stack = list(entries)
            nxt: set[int] = set()
            while stack:
                x = stack.pop()
                nxt.update(onward[x])
                for t in within[x]:
                    if t not in seen:
                        seen.add(t)
                        stack.append(t)
            got = forward[entries] = (frozenset(seen), frozenset(nxt))
        return got

    def too_many(per: int) -> Inexpressible:
        return LengthBoundsTooLarge(per, max_states,
            f"the length bounds (minLength={min_length}, maxLength={max_length}) need more than "
            f"max_states={max_states} states (up to {per} per character of the bound); use a "
            "smaller bound or raise max_states"
        )

    # The layers' entry sets follow ``entries -> reach(entries)[1]``, so once one repeats they
    # cycle. The loop never walks a bound the input controls: at the first repeat it either
    # stops (no layer of the cycle can accept: every later layer is dead) or counts the layers
    # that must each keep a live state and raises when they alone pass ``max_states``; below
    # that, ``top`` is within ``max_states`` plus the cycle's start and length.
    budget = current_budget()
    layers: list[frozenset[int]] = []
    entries = frozenset([start])
    first_seen: dict[frozenset[int], int] = {}
    cycle_checked = False
    k = 0
    while k <= top:
        if (k & 255) == 0:
            budget.charge(256 * (8 * n + 64), "the layers of a string length counter")
        if not cycle_checked and not (saturate and k == top):
            k0 = first_seen.setdefault(entries, k)
            if k0 < k:
                cycle_checked = True
                p = k - k0
                if not any(final in layers[j] for j in range(k0, k)):
                    break  # no layer from k0 on can accept
                # every layer j in [max(k0, min_length), top - p] reaches an accepting layer
                # within p more, at most top (and the saturated last layer accepts whatever the
                # cycle accepts, so every layer before it is live too)
                if saturate:
                    live = top - k0 + 1
                else:
                    live = top - p - max(k0, min_length) + 1
                if live + 1 > max_states:
                    raise too_many(max(len(x) for x in layers[k0:k]))
        states, nxt = reach(entries)
        if saturate and k == top:  # the last layer repeats: close it under completed characters
            while not nxt <= entries:
                entries = entries | nxt
                states, nxt = reach(entries)
        layers.append(states)
        if not nxt:
            break
        entries = nxt
        k += 1
    last = len(layers) - 1
    repeats = saturate and last == top

    backward: dict[tuple[frozenset[int], bool, frozenset[int]], frozenset[int]] = {}

    def live_in(states: frozenset[int], accepts: bool, next_live: frozenset[int], loop: bool) -> frozenset[int]:
        """States of a layer that reach acceptance: the final quote (``accepts``) or, by a
        completed character, a live state of the next layer (``next_live``; the layer itself
        when ``loop``)."""
        key = (states, accepts, next_live if not loop else frozenset([-1]))
        got = backward.get(key)
        if got is not None:
            return got
        live: set[int] = set()
        stack: list[int] = []

        def add(x: int) -> None:
            if x in states and x not in live:
                live.add(x)
                stack.append(x)

        if accepts and final in states:
            add(final)
        for t in next_live:
            for x in pred_onward[t]:
                add(x)
        while stack:
            t = stack.pop()
            for x in pred_within[t]:
                add(x)
            if loop:
                for x in pred_onward[t]:
                    add(x)
        got = backward[key] = frozenset(live)
        return got

    live_sets: list[frozenset[int]] = [frozenset()] * len(layers)
    for k in range(last, -1, -1):
        if (k & 255) == 0:
            budget.check()
        loop = repeats and k == last
        next_live = live_sets[k + 1] if k < last else frozenset()
        live_sets[k] = live_in(layers[k], k >= min_length, next_live, loop)
    kept = [np.array(sorted(x - {final}), dtype=np.int64) for x in live_sets]
    total = sum(len(x) for x in kept) + 1
    if total > max_states:
        raise too_many(max(len(x) for x in kept))
    budget.charge(total * TABLE_ROW_BYTES + len(kept) * (n + 1) * 8, "a string length counter")
    final_id = total - 1
    out = np.full((total, 256), -1, dtype=np.int32)
    accepting = np.zeros(total, dtype=bool)
    accepting[final_id] = True
    offsets = np.cumsum([0] + [len(x) for x in kept])
    ids: list[np.ndarray] = []
    for k, members in enumerate(kept):
        idx = np.full(n + 1, -1, dtype=np.int64)  # idx[n] == -1 stands for "no transition"
        idx[members] = offsets[k] + np.arange(len(members))
        if k >= min_length:
            idx[final] = final_id
        ids.append(idx)
    for k, members in enumerate(kept):
        if not len(members):
            continue
        nk = k + 1 if k < last else (k if repeats else -1)
        sub = trans[members]
        sub = np.where(sub >= 0, sub, n)
        rows = ids[k][sub]
        comp = completes[members]
        rows[comp] = ids[nk][sub[comp]] if nk >= 0 else -1
        out[offsets[k] : offsets[k + 1]] = rows
    start_id = int(ids[0][start])
    if start_id < 0:
        return _empty_dfa()
    return minimize(ByteDFA(out, accepting, start_id))


def _value_dfa(value_pattern: str | None, ecma: bool) -> _CodePointDFA | None:
    """The code point DFA of the allowed values, or ``None`` when no value is allowed."""
    if value_pattern is None:
        return _ANY_VALUE
    python = _translate(value_pattern) if ecma else value_pattern
    if python is None:
        return None
    try:
        dfa = regex_to_dfa(python)
    except GrammarError as e:
        if e.message == "the pattern matches no string":
            return None
        if ecma:  # the translation is valid Python; only limits of Python's re remain (x{99999999999})
            raise GrammarError(e.message, source=value_pattern, pos=0, length=len(value_pattern)) from None
        raise
    except CompileLimitError as e:
        if ends_compile(e):
            raise
        raise Inexpressible(f"the pattern {value_pattern!r} cannot be compiled within corral's limits: {e}") from e
    return _code_point_dfa(dfa)


def _json_string_dfa(
    value_pattern: str | None, min_length: int, max_length: int | None, ecma: bool, max_states: int
) -> ByteDFA:
    if max_length is not None and min_length > max_length:
        return _empty_dfa()
    value = _value_dfa(value_pattern, ecma)
    if value is None:
        return _empty_dfa()
    speller = _Speller(value)
    trans = speller.table()
    if min_length == 0 and max_length is None:
        accepting = np.zeros(trans.shape[0], dtype=bool)
        accepting[speller.final] = True
        return minimize(trim(ByteDFA(trans, accepting, speller.start)))
    boundary = np.zeros(trans.shape[0], dtype=bool)
    boundary[speller.boundary] = True
    return _count_lengths(trans, boundary, speller.start, speller.final, min_length, max_length, max_states)


def json_string_dfa(
    value_pattern: str | None = None,
    *,
    min_length: int = 0,
    max_length: int | None = None,
    ecma: bool = True,
    max_states: int | None = None,
) -> ByteDFA:
    r"""The automaton of the JSON string literals whose decoded value satisfies the constraints.

    Parameters
    ----------
    value_pattern:
        ``None`` for any value. With ``ecma=True`` (the default) a JSON Schema ``pattern``:
        ECMA-262 syntax, found *anywhere* in the value (see :func:`ecma_to_python`). With
        ``ecma=False`` a pattern in corral's regex dialect (Python syntax) that must match the
        *whole* value, e.g. ``"^(?:" + format_pattern("date") + ")$"``.
    min_length, max_length:
        Bounds on the value's length in code points (``maxLength`` ``None``: unbounded).
    ecma:
        Which dialect ``value_pattern`` is in.
    max_states:
        Limit on the automaton's states when length bounds are woven in (default: the current
        budget's, :data:`~corral.compiler.automaton.DEFAULT_MAX_STATES` unless raised).

    Returns
    -------
    ByteDFA
        Trimmed and minimal, over the literal's bytes including both quotes; every spelling of an
        allowed value is accepted (raw UTF-8, short escapes, ``\uXXXX`` in either case, surrogate
        pairs), lone surrogates are not. When no value satisfies the constraints (``min_length >
        max_length``, a pattern that matches nothing) the automaton is the empty one: a single
        non-accepting state without transitions.

    Raises
    ------
    GrammarError
        For a malformed ``value_pattern``, or bounds that are not non-negative integers.
    Inexpressible
        For a pattern that is not regular (backreferences, lookarounds, ...), a pattern whose
        automaton exceeds corral's regex limits (the unanchored search ``a.{20}b`` needs 2**20
        states; the message quotes the :class:`~corral.errors.CompileLimitError`, which is the
        ``__cause__``), or length bounds that need more than ``max_states`` states.

    Examples
    --------
    >>> dfa = json_string_dfa("^[a-z]+$", max_length=3)
    >>> dfa.matches(b'"abc"'), dfa.matches(b'"a\\u0062"'), dfa.matches(b'"abcd"')
    (True, True, False)
    """
    if max_states is None:
        max_states = current_budget().limits.max_states
    for name, value in (("min_length", min_length), ("max_length", max_length), ("max_states", max_states)):
        if value is None and name == "max_length":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GrammarError(f"{name} must be a non-negative integer, got {value!r}")
    if value_pattern is not None and not isinstance(value_pattern, str):
        raise GrammarError(f"a pattern must be a str, not {type(value_pattern).__name__}")
    return _json_string_dfa(value_pattern, min_length, max_length, bool(ecma), max_states)


_ESCAPE_LETTER = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


def _spellings(ch: str) -> list[bytes]:
    """Every JSON spelling of the character ``ch`` inside a string literal."""
    cp = ord(ch)

    def hexes(v: int) -> list[bytes]:
        out = [b""]
        for h in f"{v:04x}":
            out = [o + bytes([c]) for o in out for c in sorted({ord(h), ord(h.upper())})]
        return out

    if cp >= 0x10000:
        hi, lo = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
        spellings = [b"\\u" + a + b"\\u" + b for a in hexes(hi) for b in hexes(lo)]
    else:
        spellings = [b"\\u" + a for a in hexes(cp)]
    if cp >= 0x20 and ch not in '"\\':
        spellings.append(ch.encode("utf-8"))
    if ch in _ESCAPE_LETTER:
        spellings.append(b"\\" + _ESCAPE_LETTER[ch].encode())
    return spellings


def json_string_literals_dfa(values: Iterable[str]) -> ByteDFA:
    r"""The automaton of every JSON spelling of exactly these strings (quotes included).

    The same language as ``json_string_dfa("^(?:v1|v2|...)$", ecma=False)`` (raw characters, short
    escapes, ``\uXXXX`` in either case, surrogate pairs for astral characters), built directly as
    a trie: the strings' characters form a trie, and below each of its nodes the spellings of the
    next characters form a byte trie whose leaves lead to the child nodes. No subset construction,
    so it is fast for a finite set.
    """
    values = sorted(set(values))
    if not values:
        return _empty_dfa()
    # the character trie
    children: list[dict[str, int]] = [{}]
    ends: list[bool] = [False]
    for v in values:
        node = 0
        for ch in v:
            nxt = children[node].get(ch)
            if nxt is None:
                nxt = len(children)
                children[node][ch] = nxt
                children.append({})
                ends.append(False)
            node = nxt
        ends[node] = True
    # byte states: 0 = before the opening quote, 1 = after the closing quote, then one state per
    # character-trie node ("between characters") and per proper prefix of a spelling below it
    rows: list[dict[int, int]] = [{}, {}]
    between = [0] * len(children)
    for n in range(len(children)):
        between[n] = len(rows)
        rows.append({})
    rows[0][0x22] = between[0]
    for n in range(len(children)):
        if ends[n]:
            rows[between[n]][0x22] = 1
        for ch, child in children[n].items():
            for sp in _spellings(ch):
                cur = between[n]
                for i, b in enumerate(sp):
                    if i == len(sp) - 1:
                        rows[cur][b] = between[child]
                    else:
                        nxt = rows[cur].get(b)
                        if nxt is None:
                            nxt = len(rows)
                            rows[cur][b] = nxt
                            rows.append({})
                        cur = nxt
    return minimize(trim(_table_dfa(rows, [1])))


def _table_dfa(rows: list[dict[int, int]], final: Iterable[int]) -> ByteDFA:
    """The automaton with moves ``rows[state][byte] -> state``, start 0 and accepting ``final``."""
    trans = np.full((len(rows), 256), -1, dtype=np.int32)
    for i, row in enumerate(rows):
        for b, t in row.items():
            trans[i, b] = t
    accepting = np.zeros(len(rows), dtype=bool)
    accepting[list(final)] = True
    return ByteDFA(trans, accepting, 0)


def words_dfa(words: Iterable[bytes]) -> ByteDFA:
    """The automaton of exactly these byte strings (a trie)."""
    rows: list[dict[int, int]] = [{}]
    final: set[int] = set()
    for w in words:
        cur = 0
        for b in w:
            nxt = rows[cur].get(b)
            if nxt is None:
                nxt = len(rows)
                rows[cur][b] = nxt
                rows.append({})
            cur = nxt
        final.add(cur)
    return _table_dfa(rows, final)
