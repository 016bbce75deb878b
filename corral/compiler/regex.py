"""Regular expressions -> byte-level DFAs.

Dialect
-------
Python ``re`` syntax and semantics with *full-match* semantics: the whole output must match, as
decided by ``re.fullmatch(pattern, output)``. Every single-character item (a literal, an escape,
``.``, a class such as ``[^\\W\\d]``, under the flags in force) matches exactly the characters
Python's ``re`` matches: character sets are computed by Python's own engine, so ``\\d``, ``\\w``,
``\\s`` are Unicode classes and ``(?i)`` folds case the way ``re`` does (``(?i)k`` also matches
the Kelvin sign U+212A). ``(?a)`` at the start of the pattern selects ASCII classes, as
``re.ASCII`` does.

* Literals, escapes (``\\xNN``, ``\\uNNNN``, ``\\UNNNNNNNN``, ``\\N{NAME}``, octal), classes
  with ranges and negation, groups (capturing, named, non-capturing), alternation, greedy and lazy
  quantifiers ``* + ? {n} {n,} {,m} {n,m}``, inline flags ``(?i) (?s) (?m) (?a) (?u)`` and
  scoped ``(?i:...)``, ``(?-i:...)``.
* A leading ``^`` or ``\\A`` and a trailing ``$`` or ``\\Z`` are accepted (they are no-ops under
  full-match semantics).

Not regular, or not expressible on a token stream, hence rejected with a
:class:`~corral.errors.GrammarError` that names the feature and its position: backreferences
(``\\1``, ``(?P=name)``), lookarounds (``(?=`` ``(?!`` ``(?<=`` ``(?<!``), conditionals ``(?(``,
atomic groups ``(?>``, possessive quantifiers (``*+``), word boundaries ``\\b \\B``, anchors
anywhere but at the edges, verbose mode ``(?x)``, and scoped ``(?a:...)``.

Text is matched as UTF-8: each character set is lowered to byte ranges, so a token holding half of
a multi-byte character is allowed exactly when some completion of the character is.

Parsing is done by ``interegular`` (with a corrected union of negated classes); corral does its own
lowering to a byte NFA, subset construction (bounded by ``max_states`` and ``timeout``) and
minimisation.
"""

from __future__ import annotations

import functools
import re
import warnings
import unicodedata
from dataclasses import dataclass
from typing import Any

from interegular import patterns as _ip
from interegular.utils.simple_parser import nomatch as _nomatch

from corral.compiler.automaton import (
    ByteDFA,
    ByteNFA,
    determinize,
    minimize,
)
from corral.compiler.limits import Budget, budget_scope, current_budget
from corral.compiler.utf8 import (
    MAX_CODE_POINT,
    CodePointSet,
    complement,
    from_code_points,
    from_intervals,
    utf8_sequences,
)
from corral.errors import GrammarError

__all__ = ["regex_to_dfa", "RegexLimits"]


@dataclass(frozen=True)
class RegexLimits:
    """Limits on compiling one regex: DFA states and seconds.

    ``None`` (the default) takes the limit from the current budget
    (:func:`~corral.compiler.limits.current_budget`); a ``timeout`` given here tightens the
    budget's deadline for this regex alone.
    """

    max_states: int | None = None
    timeout: float | None = None


_QUANT_RE = re.compile(r"\{(\d*)(,(\d*))?\}")
_FLAG_GROUP_RE = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]+))?([:)])")


def _escape_literal(ch: str) -> str:
    """``ch`` written so that interegular reads it as a literal, inside or outside a class."""
    if ch.isalnum() or ord(ch) > 0x7F and not ch.isspace():
        return ch
    if ch in "\n\t\r\f\v ":
        return ch
    return "\\" + ch


def _preprocess(pattern: str) -> tuple[str, list[int], bool]:
    """Reject non-regular features with their position; rewrite the rest for interegular.

    Returns the rewritten pattern, for each of its characters the offset in ``pattern`` it came
    from, and whether ``(?a)`` (ASCII classes) is in force. ``pattern`` is known to compile with
    Python's ``re``.
    """
    out: list[str] = []
    where: list[int] = []
    ascii_mode = False

    def emit(text: str, at: int) -> None:
        out.append(text)
        where.extend([at] * len(text))

    def fail(msg: str, at: int, length: int = 1) -> None:
        raise GrammarError(msg, source=pattern, pos=at, length=length)

    n = len(pattern)
    i = 0
    in_class = False
    class_start = -1
    after_quantifier = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if nxt in ("u", "U", "N"):
                if nxt == "N":
                    end = pattern.index("}", i)
                    ch = unicodedata.lookup(pattern[i + 3 : end])
                else:
                    width = 4 if nxt == "u" else 8
                    end = i + 1 + width
                    ch = chr(int(pattern[i + 2 : end + 1], 16))
                emit(_escape_literal(ch), i)
                i = end + 1
                after_quantifier = False
                continue
            if not in_class:
                if nxt in "123456789":
                    octal = pattern[i + 1 : i + 4]
                    if not (len(octal) == 3 and all(d in "01234567" for d in octal) and nxt in "0123"):
                        m = re.match(r"\d{1,2}", pattern[i + 1 :])
                        length = 1 + len(m.group(0)) if m else 2
                        fail(
                            f"backreference \\{m.group(0) if m else nxt} is not supported "
                            "(it is not a regular construct)",
                            i,
                            length,
                        )
                if nxt in "bB":
                    fail(f"word boundary \\{nxt} is not supported", i, 2)
                if nxt == "A":
                    if i != 0:
                        fail("anchor \\A is only supported at the start of the pattern", i, 2)
                    i += 2
                    continue
                if nxt == "Z":
                    if i + 2 != n:
                        fail("anchor \\Z is only supported at the end of the pattern", i, 2)
                    i += 2
                    continue
            emit(pattern[i : i + 2], i)
            i += 2
            after_quantifier = False
            continue
        if in_class:
            if c == "]" and i > class_start:
                in_class = False
            emit(c, i)
            i += 1
            continue
        if c == "[":
            in_class = True
            emit(c, i)
            i += 1
            if i < n and pattern[i] == "^":
                emit("^", i)
                i += 1
            if i < n and pattern[i] == "]":  # a ']' first in a class is a literal
                emit("\\]", i)
                i += 1
            class_start = i
            after_quantifier = False
            continue
        if c == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2 : i + 4]
            if rest.startswith(("=", "!")) or rest in ("<=", "<!"):
                kind = {
                    "=": "lookahead (?=...)",
                    "!": "negative lookahead (?!...)",
                    "<=": "lookbehind (?<=...)",
                    "<!": "negative lookbehind (?<!...)",
                }[rest if rest in ("<=", "<!") else rest[0]]
                fail(f"{kind} is not supported (lookarounds are not regular on a token stream)", i, 3)
            if rest.startswith("P="):
                fail("backreference (?P=name) is not supported (it is not a regular construct)", i, 4)
            if rest.startswith("("):
                fail("conditional group (?(...)...) is not supported", i, 3)
            if rest.startswith(">"):
                fail("atomic group (?>...) is not supported", i, 3)
            m = _FLAG_GROUP_RE.match(pattern, i)
            if m:
                added, removed, closer = m.group(1), m.group(2) or "", m.group(3)
                for letter in added + removed:
                    if letter == "x":
                        fail("verbose mode (?x) is not supported; remove the flag and the layout", i, m.end() - i)
                    if letter == "L":
                        fail("locale flag (?L) is not supported", i, m.end() - i)
                    if letter in "au" and closer == ":":
                        fail(
                            f"scoped (?{letter}:...) is not supported; put (?a) at the start of the "
                            "pattern for ASCII classes",
                            i,
                            m.end() - i,
                        )
                if "a" in added:
                    ascii_mode = True
                added = added.replace("a", "").replace("u", "")
                removed = removed.replace("a", "").replace("u", "")
                if closer == ")" and not added and not removed:
                    i = m.end()  # e.g. (?a): nothing left to say
                    continue
                text = "(?" + added + ("-" + removed if removed else "") + closer
                emit(text, i)
                i = m.end()
                after_quantifier = False
                continue
        if c == "^":
            if i != 0:
                fail("anchor ^ is only supported at the start of the pattern", i)
            i += 1
            continue
        if c == "$":
            if i != n - 1:
                fail("anchor $ is only supported at the end of the pattern", i)
            i += 1
            continue
        if c == "{":
            m = _QUANT_RE.match(pattern, i)
            if m is None or m.group(0) == "{}":
                emit("\\{", i)
                i += 1
                after_quantifier = False
                continue
            emit(m.group(0), i)
            i = m.end()
            after_quantifier = True
            if i < n and pattern[i] == "+":
                fail("possessive quantifier is not supported", i - len(m.group(0)), len(m.group(0)) + 1)
            continue
        if c in "*+?" and not after_quantifier:
            emit(c, i)
            i += 1
            after_quantifier = True
            if i < n and pattern[i] == "+":
                fail("possessive quantifier is not supported", i - 1, 2)
            continue
        emit(c, i)
        after_quantifier = False
        i += 1
    return "".join(out), where, ascii_mode


def _union_char_groups(groups: list[Any], negate: bool) -> Any:
    """Union of character groups, then optionally negated.

    interegular 0.3.3 unions *negated* groups wrongly (``[\\D\\S]`` becomes "neither digit nor
    space" instead of "anything"): the complement of a union of complements is the
    *intersection* of the excluded sets.
    """
    pos = set().union(*(g.chars for g in groups if not g.negated))
    negs = [set(g.chars) for g in groups if g.negated]
    if negs:
        excluded = set.intersection(*negs) - pos
        return _ip._CharGroup(frozenset(excluded), not negate)
    return _ip._CharGroup(frozenset(pos), negate)


class _Leaf(_ip._Repeatable):
    """A single-character item with its Python source text (a literal, escape, ``.`` or class).

    ``base`` is interegular's reading of it; ``text`` lets corral ask Python's ``re`` which
    characters the item matches under the flags in force.
    """

    def __init__(self, text: str, base: Any, has_category: bool) -> None:
        self.text = text
        self.base = base
        self.has_category = has_category

    def to_fsm(self, alphabet: Any = None, prefix_postfix: Any = None, flags: Any = None) -> Any:  # pragma: no cover
        raise NotImplementedError("corral lowers leaves itself")

    def _get_alphabet(self, flags: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _get_prefix_postfix(self) -> tuple[int, int]:
        return 0, 0

    def _get_lengths(self) -> tuple[int, int]:
        return 1, 1

    def simplify(self) -> _Leaf:
        return self


_CATEGORIES = {id(g) for k, g in _ip._CHAR_GROUPS.items() if k in "dwsDWS"}


class _Parser(_ip._ParsePattern):
    """interegular's parser, keeping each single-character item's source text.

    Also unions negated classes inside ``[...]`` correctly.
    """

    budget: Budget

    def atom(self) -> Any:
        self.budget.check()  # parsing is linear, but a pattern can be megabytes long
        start = self.index
        if self.static_b("["):
            return self.repetition(self.chargroup())
        if self.static_b("\\"):
            g = self.escaped()
            return self.repetition(_Leaf(self.data[start : self.index], g, id(g) in _CATEGORIES))
        if self.static_b("."):
            return self.repetition(_Leaf(".", _ip._DOT, False))
        if self.static_b("$"):
            raise _ip.Unsupported("'$'")
        if self.static_b("^"):
            raise _ip.Unsupported("'^'")
        c = self.any_but(*self.SPECIAL_CHARS_STANDARD)
        return self.repetition(_Leaf(self.data[start : self.index], _ip._CharGroup(frozenset({c}), False), False))

    def chargroup(self) -> Any:
        start = self.index - 1
        negate = bool(self.static_b("^"))
        groups = []
        while True:
            try:
                groups.append(self.chargroup_inner())
            except _nomatch:
                break
        self.static("]")
        has_category = any(id(g) in _CATEGORIES for g in groups)
        if len(groups) == 1:
            g = groups[0]
            base = _ip._CharGroup(g.chars, negate ^ g.negated)
        else:
            base = _union_char_groups(groups, negate)
        return _Leaf(self.data[start : self.index], base, has_category)


def _parse(pattern: str) -> Any:
    parser = _Parser(pattern)
    parser.budget = current_budget()
    return parser.parse().simplify()


_ALL_CHARS: str | None = None


def _all_chars() -> str:
    """Every code point, in order (surrogates included, so position == code point)."""
    global _ALL_CHARS
    if _ALL_CHARS is None:
        _ALL_CHARS = "".join(map(chr, range(MAX_CODE_POINT + 1)))
    return _ALL_CHARS


@functools.lru_cache(maxsize=4096)
def python_char_set(item: str) -> CodePointSet:
    """The code points Python's ``re`` matches with the single-character pattern ``item``.

    ``item`` carries its flags, e.g. ``"(?i:[a-z])"``. Runs of consecutive matches over the string
    of all code points are exactly the set's intervals (about 10 ms, then memoised).
    """
    rx = re.compile(f"(?:{item})+")
    return from_intervals((m.start(), m.end() - 1) for m in rx.finditer(_all_chars()))


_CASED: frozenset[int] | None = None


def _cased_code_points() -> frozenset[int] | None:
    """Code points that have a case (``_sre.unicode_iscased``), or ``None`` if unavailable."""
    global _CASED
    if _CASED is None:
        try:
            import _sre

            iscased = _sre.unicode_iscased
        except (ImportError, AttributeError):  # pragma: no cover - other Python implementations
            return None
        _CASED = frozenset(c for c in range(MAX_CODE_POINT + 1) if iscased(c))
    return _CASED


@functools.lru_cache(maxsize=4096)
def _folded_char_set(item: str, chars: frozenset[str], negated: bool, ascii_mode: bool) -> CodePointSet:
    """Like :func:`python_char_set` for a case-insensitive item without categories, faster.

    Under ``(?i)`` a character outside the item's own characters can only match when it has a
    case (Python compares lowercased characters, and only cased characters lowercase to another
    character). So Python's ``re`` is asked about the item's characters and the ~2,900 cased
    code points only (ASCII letters under ``(?a)``); every other character gets the verdict of
    the item's negation.
    """
    cased = (
        frozenset(range(65, 91)) | frozenset(range(97, 123)) if ascii_mode else _cased_code_points()
    )
    if cased is None:  # pragma: no cover
        return python_char_set(item)
    candidates = sorted(cased | {ord(ch) for ch in chars})
    rx = re.compile(item)
    hits = [c for c in candidates if not 0xD800 <= c <= 0xDFFF and rx.fullmatch(chr(c))]
    if not negated:
        return from_code_points(hits)
    return complement(from_code_points(set(candidates) - set(hits)))


class _Lowerer:
    """Interegular's pattern tree -> byte NFA, with flags, caching char-class lowering."""

    def __init__(self, nfa: ByteNFA, ascii_mode: bool) -> None:
        self.nfa = nfa
        self.ascii = ascii_mode
        self._seq_cache: dict[tuple[Any, ...], list[tuple[tuple[int, int], ...]]] = {}

    def charset(self, leaf: _Leaf, flags: Any) -> CodePointSet:
        ci = bool(flags & _ip.REFlags.CASE_INSENSITIVE)
        dotall = bool(flags & _ip.REFlags.SINGLE_LINE)
        base = leaf.base
        if base is _ip._DOT:
            return ((0, MAX_CODE_POINT),) if dotall else complement(((10, 10),))
        plain = not leaf.has_category and (
            not ci or all(ch.isascii() and not ch.isalpha() for ch in base.chars)
        )
        if plain:
            # A set of characters, no case folding, no category: interegular's reading is exact.
            s = from_code_points(ord(ch) for ch in base.chars)
            return complement(s) if base.negated else s
        letters = ("a" if self.ascii else "") + ("i" if ci else "") + ("s" if dotall else "")
        item = f"(?{letters}:{leaf.text})" if letters else leaf.text
        if ci and not leaf.has_category and len(base.chars) <= 4096:
            return _folded_char_set(item, base.chars, base.negated, self.ascii)
        return python_char_set(item)

    def sequences(self, node: Any, flags: Any) -> list[tuple[tuple[int, int], ...]]:
        key = (id(node), int(flags.value))
        got = self._seq_cache.get(key)
        if got is None:
            got = utf8_sequences(self.charset(node, flags))
            self._seq_cache[key] = got
        return got

    def lower(self, node: Any, flags: Any) -> tuple[int, int]:
        nfa = self.nfa
        if node is _ip._EMPTY:
            s = nfa.new_state()
            return s, s
        if isinstance(node, _Leaf):
            s = nfa.new_state()
            e = nfa.new_state()
            trie: dict[tuple[tuple[int, int], ...], int] = {(): s}
            for seq in self.sequences(node, flags):
                cur = s
                for k, (lo, hi) in enumerate(seq):
                    if k == len(seq) - 1:
                        nfa.edges[cur].append((lo, hi, e))
                    else:
                        prefix = seq[: k + 1]
                        nxt = trie.get(prefix)
                        if nxt is None:
                            nxt = nfa.new_state()
                            trie[prefix] = nxt
                            nfa.edges[cur].append((lo, hi, nxt))
                        cur = nxt
            return s, e
        if isinstance(node, _ip._Concatenation):
            s = nfa.new_state()
            cur = s
            for part in node.parts:
                a, b = self.lower(part, flags)
                nfa.eps[cur].append(a)
                cur = b
            return s, cur
        if isinstance(node, _ip.Pattern):
            f = _ip._combine_flags(flags, node.added_flags, node.removed_flags)
            s = nfa.new_state()
            e = nfa.new_state()
            for opt in node.options:
                a, b = self.lower(opt, f)
                nfa.eps[s].append(a)
                nfa.eps[b].append(e)
            return s, e
        if isinstance(node, _ip._Repeated):
            n_min: int = node.min
            n_max: int | None = node.max
            s = nfa.new_state()
            cur = s
            for _ in range(n_min):
                a, b = self.lower(node.base, flags)
                nfa.eps[cur].append(a)
                cur = b
            if n_max is None:
                a, b = self.lower(node.base, flags)
                e = nfa.new_state()
                nfa.eps[cur].append(a)
                nfa.eps[cur].append(e)
                nfa.eps[b].append(a)
                nfa.eps[b].append(e)
                return s, e
            e = nfa.new_state()
            for _ in range(n_max - n_min):
                a, b = self.lower(node.base, flags)
                nfa.eps[cur].append(e)
                nfa.eps[cur].append(a)
                cur = b
            nfa.eps[cur].append(e)
            return s, e
        if isinstance(node, (_ip._CharGroup, type(_ip._DOT))):  # pragma: no cover - always wrapped
            raise GrammarError("internal error: a character item without its source text")
        if isinstance(node, _ip._NonCapturing):  # pragma: no cover - rejected by _preprocess
            raise GrammarError("lookarounds are not supported")
        raise GrammarError(f"unsupported regex construct {type(node).__name__}")  # pragma: no cover


def regex_to_dfa(pattern: str, limits: RegexLimits = RegexLimits()) -> ByteDFA:
    """Compile ``pattern`` (full-match semantics) to a trimmed, minimised byte DFA.

    Results are cached (by pattern and limits, :data:`REGEX_CACHE_SIZE` of them): grammars
    compiled one after another share most of their terminals. The returned automaton is shared,
    so its arrays are read-only.

    Parameters
    ----------
    pattern:
        A regular expression in the dialect described in this module's docstring.
    limits:
        State and time limits.

    Returns
    -------
    ByteDFA

    Raises
    ------
    GrammarError
        For a malformed pattern, an unsupported feature, or a pattern that matches nothing.
    CompileLimitError
        When the automaton exceeds ``limits``.
    """
    if not isinstance(pattern, str):
        raise GrammarError(f"a regex must be a str, not {type(pattern).__name__}")
    return _regex_to_dfa_cached(pattern, limits)


REGEX_CACHE_SIZE = 8192


@functools.lru_cache(maxsize=REGEX_CACHE_SIZE)
def _regex_to_dfa_cached(pattern: str, limits: RegexLimits) -> ByteDFA:
    dfa = _regex_to_dfa(pattern, limits)
    dfa.trans.flags.writeable = False
    dfa.accepting.flags.writeable = False
    return dfa


_PARSE_SECONDS_PER_CHAR = 2e-6


def _regex_to_dfa(pattern: str, limits: RegexLimits) -> ByteDFA:
    if limits.timeout is not None:
        with budget_scope(current_budget().limits.updated(timeout=limits.timeout)):
            return _regex_to_dfa(pattern, RegexLimits(max_states=limits.max_states))
    budget = current_budget()
    # Python's parser, corral's preprocessing and interegular's parse tree all hold the pattern
    # several times over: charge them before they are made.
    budget.charge(len(pattern) * 600, f"parsing a regex of {len(pattern)} characters")
    # Python's parser (the first check) and the preprocessing cannot be interrupted: about 2 µs a
    # character between them (3.6 on a loaded machine).
    budget.expect(len(pattern) * _PARSE_SECONDS_PER_CHAR, f"parsing a regex of {len(pattern)} characters")
    try:
        with warnings.catch_warnings():
            # Python warns about sets whose meaning may change in a future version ("Possible
            # nested set"); corral implements today's meaning exactly, so the warning is not ours
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as e:
        raise GrammarError(f"invalid regex: {e.msg}", source=pattern, pos=e.pos) from None
    except (OverflowError, RecursionError, ValueError) as e:
        raise GrammarError(f"invalid regex: {e}", source=pattern, pos=0) from None
    rewritten, where, ascii_mode = _preprocess(pattern)
    try:
        tree = _parse(rewritten)
    except (_ip.Unsupported, _ip.InvalidSyntax, ValueError) as e:
        idx = getattr(e, "index", None)
        pos = where[idx] if idx is not None and idx < len(where) else 0
        detail = str(e).split("\n")[0] or type(e).__name__
        raise GrammarError(f"unsupported regex syntax ({detail})", source=pattern, pos=pos) from None
    except RecursionError:
        raise GrammarError("regex is nested too deeply", source=pattern, pos=0) from None
    nfa = ByteNFA()
    lowerer = _Lowerer(nfa, ascii_mode)
    try:
        start, final = lowerer.lower(tree, _ip.REFlags(0))
    except RecursionError:
        raise GrammarError("regex is nested too deeply", source=pattern, pos=0) from None
    dfa = determinize(nfa, start, final, max_states=limits.max_states)
    if not dfa.accepting.any():
        raise GrammarError("the pattern matches no string", source=pattern, pos=0, length=len(pattern))
    return minimize(dfa)
