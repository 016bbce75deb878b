r"""Translate ECMA-262 patterns (JSON Schema ``pattern``, unanchored search) into corral's regex dialect.

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
exponential (``a.{20}b`` needs 2**20 states): past corral's regex limits
:func:`~corral.compiler.json_schema.json_strings.json_string_dfa` raises :class:`Inexpressible`
(the :class:`~corral.errors.CompileLimitError` is its cause).
Constraints no value satisfies (``a^b``, ``minLength`` above ``maxLength``, a pattern that needs
more characters than ``maxLength``) give the empty automaton, which the caller can test with
``dfa.accepting.any()``.
"""

from __future__ import annotations

from corral.compiler.json_schema.ecma_parser import (
    _ANY,
    _EPS,
    _Alt,
    _Anchor,
    _Chars,
    _EcmaParser,
    _Node,
    _Rep,
    _Seq,
)
from corral.compiler.json_schema.errors import Inexpressible
from corral.compiler.utf8 import CodePointSet, complement
from corral.errors import GrammarError

__all__ = ["MAX_TRANSLATION_CHARS", "ecma_to_python"]

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

