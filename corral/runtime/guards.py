"""Run-time checks that no grammar can express: ``uniqueItems`` (pairwise distinct array items).

The compiled grammar derives a ``uniqueItems`` array as if its items could repeat, and marks the
array's rule with a :class:`~corral.compiler.grammar_ir.UniqueItems` description of the items.
:class:`UniqueCFGMatcher` runs the grammar as :class:`~corral.runtime.cfg_matcher.CFGMatcher`
does and, beside the chart, a small JSON reader over the text so far (:func:`advance`): a stack of
open containers and, for each checked array, the values of the items completed so far.

A token is refused exactly when, after it, the array can no longer end with distinct items:

* it completes an item equal, as a JSON value, to an earlier one (``1`` and ``1.0`` are equal;
  objects whatever their key order; strings after decoding their escapes): at a string's closing
  quote, the byte after a number, the first letter of ``true``/``false``/``null``, or a
  container's closing bracket;
* for items with finitely many values (:mod:`corral.compiler.json_schema.unique` proves every
  other item set has infinitely many completions from every prefix): a string prefix that only
  ends as values written already, or a separator once every value is written.

Whether a ``[`` opens a checked array is read off the chart: the set after it holds the checked
rule's production with its dot past the bracket. Masks: the grammar's mask (cached by the chart
set, shared) is computed as usual, and only its tokens that *can* complete an item here (a
closing quote inside a string item, a non-number byte after a number, ...; bitsets per
vocabulary) are read through the JSON reader, in Python. An array with no item yet reads only
tokens with a comma (two items in one token). The check's cost per step is measured in
``docs/json_schema.md``.

Assumption (stated, tested on the conformance suite): a ``[`` is either a checked array on every
parse of the text or on none. The JSON Schema lowering gives each set of values one rule, so two
parses of one text differ only where the schema's own cases overlap.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numba import njit

from corral.compiler.automaton import frozen
from corral.compiler.grammar_ir import Guard, ObjectKeys, UniqueItems
from corral.compiler.maskstore import token_trie
from corral.runtime.arguments import token_index
from corral.runtime.cfg_matcher import CFGMatcher
from corral.runtime.earley import ESet
from corral.runtime.engine import earley_engine

if TYPE_CHECKING:
    from corral.compiler.compiled import CompiledGrammar
    from corral.compiler.vocabulary import Vocabulary

__all__ = ["UniqueCFGMatcher", "advance", "canonical_value", "guards_of"]

# reader modes: between values, in a string, after a backslash in one, in a number, in a literal
VAL, STR, ESC, NUM, LIT = range(5)
_NUM_BYTES = frozenset(b"0123456789+-.eE")
_LOWER = frozenset(range(0x61, 0x7B))
_UNKNOWN: Any = object()  # a container opened inside a token being tried: whether it is checked is not known
_KEY = -3  # an object frame's "start" before a key (after "{" or ",")


class _NeedChart(Exception):
    """A tried token opened an array and completed two items in it: the chart must say whether it is checked."""


class _GrammarRefuses(Exception):
    """The chart, stepped over a tried token's bytes to answer the reader, died: the grammar
    refuses the token (its callers ask of tokens the grammar allows, so this is a safeguard)."""


# A frame: (is_array, check (UniqueItems, None or _UNKNOWN), values so far, start of the item in
# progress: its offset in the text, -1 none, -2 a literal already counted).
Frame = tuple[bool, Any, frozenset, int]
State = tuple[int, tuple[Frame, ...]]
START: State = (VAL, ())


def _freeze(v: Any) -> Any:
    if v is None:
        return ("z",)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, Decimal):
        return ("n", v)  # Decimal equality and hash are by value: 1 == 1.0 == 10e-1
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, list):
        return ("a", tuple(_freeze(x) for x in v))
    return ("o", frozenset((k, _freeze(x)) for k, x in v.items()))


def canonical_value(text: bytes) -> Any:
    """A hashable key of the JSON value ``text``, equal for values the JSON Schema spec calls equal.

    Examples
    --------
    >>> canonical_value(b"1") == canonical_value(b"1.0e0")
    True
    >>> canonical_value(b'{"a": 1, "b": [true]}') == canonical_value(b'{"b":[true],"a":1.00}')
    True
    >>> canonical_value(b"1") == canonical_value(b"true"), canonical_value(b'"\\\\u0061"') == canonical_value(b'"a"')
    (False, True)
    """
    return _freeze(json.loads(text, parse_float=Decimal, parse_int=Decimal))


_LITERAL = {0x74: ("b", True), 0x66: ("b", False), 0x6E: ("z",)}


def _text(text: bytearray | bytes, data: bytes, base: int, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of the text so far (``text``) followed by ``data`` (which starts at ``base``)."""
    if start >= base:
        return data[start - base:end - base]
    return bytes(text[start:base]) + data[:end - base]


_PLAIN_STRING = re.compile(rb'"[^"\\\x00-\x1f]*"')


def _string_of(literal: bytes) -> str:
    """The string a JSON string literal (quotes included) spells; without escapes, its UTF-8
    text (``json.loads`` cost ~8 us a key, most of a reader's step between members)."""
    if _PLAIN_STRING.fullmatch(literal):
        return literal[1:-1].decode("utf-8")
    return json.loads(literal)  # type: ignore[no-any-return]


def _pool(check: UniqueItems) -> tuple[tuple[bytes, Any], ...]:
    pool = _POOLS.get(check)
    if pool is None:
        pool = _POOLS[check] = tuple(sorted((s, canonical_value(s)) for s in check.strings or ()))
    return pool


_POOLS: dict[UniqueItems, tuple[tuple[bytes, Any], ...]] = {}


def advance(state: State, data: bytes, text: bytearray | bytes, opener: Any = _UNKNOWN,
            closer: Any = None) -> State | None:
    """The reader's state after ``data``, or ``None`` when ``data`` makes a checked array's items
    impossible to keep distinct (see the module docstring).

    Parameters
    ----------
    state:
        The state after ``text``.
    data:
        The new bytes (already accepted by the grammar: the reader trusts the JSON syntax).
    text:
        Everything before ``data`` (item values are read from it).
    opener:
        A function of the offset of ``data``'s ``[`` and ``{`` bytes returning that container's
        check (or ``None``); by default such containers are of unknown kind, and a check that
        needs to know raises :class:`_NeedChart`.
    closer:
        A function of the offset of ``data``'s ``}`` bytes returning the object rules the chart
        ends there (:meth:`Guards.ended`); by default an object opened by several rules raises
        :class:`_NeedChart` at its ``}``.
    """
    mode, frozen = state
    frames = list(frozen)
    base = len(text)
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if mode == STR:
            if b == 0x5C:
                mode = ESC
            elif b == 0x22:
                mode = VAL
                if not _end(frames, text, data, base, base + i + 1):
                    return None
            i += 1
            continue
        if mode == ESC:
            mode = STR
            i += 1
            continue
        if mode == NUM:
            if b in _NUM_BYTES:
                i += 1
                continue
            mode = VAL
            if not _end(frames, text, data, base, base + i):
                return None
            continue  # the byte is read again between values
        if mode == LIT:
            if b in _LOWER:
                i += 1
                continue
            mode = VAL
            _end(frames, text, data, base, base + i)
            continue
        # between values
        if b == 0x22:
            mode = STR
            if frames and not frames[-1][0] and frames[-1][1] is not None and frames[-1][3] == _KEY:
                arr, check, keys, _ = frames[-1]
                frames[-1] = (arr, check, keys, base + i)  # a key of a checked object begins
            else:
                _start(frames, base + i)
        elif b == 0x2D or 0x30 <= b <= 0x39:
            mode = NUM
            _start(frames, base + i)
        elif b in _LITERAL:
            mode = LIT
            if frames and frames[-1][0] and frames[-1][1] is not None:
                arr, check, values, _ = frames[-1]
                v = _LITERAL[b]
                if v in values:
                    if check is _UNKNOWN:
                        raise _NeedChart()
                    return None
                frames[-1] = (arr, check, values | {v}, -2)
        elif b == 0x5B or b == 0x7B:
            _start(frames, base + i)
            check = opener(base + i) if callable(opener) else opener
            frames.append((b == 0x5B, check, frozenset(), -1 if b == 0x5B else _KEY))
        elif b == 0x5D or b == 0x7D:
            if frames:
                arr, check, keys, _ = frames.pop()
                if not arr and check is not None:
                    if check is _UNKNOWN:
                        raise _NeedChart()
                    if check.must is not None:
                        if not keys.issuperset(check.must):
                            return None  # a required key is missing
                    else:
                        if closer is None:
                            raise _NeedChart()
                        ended = closer(base + i)
                        if not any(c is None or keys.issuperset(c.must) for c in ended):
                            return None  # every rule ending here misses a required key
            if not _end(frames, text, data, base, base + i + 1):
                return None
        elif b == 0x2C and frames:
            arr, check, values, _ = frames[-1]
            if check is not None:
                if check is _UNKNOWN:
                    if values:
                        raise _NeedChart()
                elif arr:
                    if check.n_values is not None and len(values) >= check.n_values:
                        return None  # every value is written: no further item can be new
                else:
                    if check.closed and len(values) >= len(check.keys):
                        return None  # every key is written: no further member can come
                    frames[-1] = (arr, check, values, _KEY)
        i += 1
    if mode == STR and frames:
        arr, check, values, start = frames[-1]
        if not arr and check is not None and start >= 0 and values:  # inside a key
            if check is _UNKNOWN:
                raise _NeedChart()
            if check.closed:
                prefix = _text(text, data, base, start, base + n)
                if not _open_prefix(check.spellings, prefix, values):
                    return None
        elif arr and check is not None and start >= 0 and values:
            if check is _UNKNOWN:
                raise _NeedChart()
            if check.strings is not None:
                prefix = _text(text, data, base, start, base + n)
                if not _open_prefix(_pool(check), prefix, values):
                    return None
    return (mode, tuple(frames))


def _spelled_from(pool: tuple[tuple[bytes, Any], ...], prefix: bytes) -> Iterator[tuple[bytes, Any]]:
    """The (spelling, value) pairs of ``pool`` (sorted by spelling) whose spelling starts with
    ``prefix``."""
    i = bisect.bisect_left(pool, (prefix,))
    while i < len(pool) and pool[i][0].startswith(prefix):
        yield pool[i]
        i += 1


def _open_prefix(pool: tuple[tuple[bytes, Any], ...], prefix: bytes, values: frozenset) -> bool:
    """Whether some spelling in ``pool`` (sorted by spelling) starts with ``prefix`` and spells a
    value not in ``values``."""
    return any(value not in values for _, value in _spelled_from(pool, prefix))


def _plain_verdicts(state: State, text: bytearray | bytes) -> _PlainSet | None:
    """What :func:`advance` says of the simplest tokens, without reading them: a function of a
    token's bytes giving ``True`` (allowed), ``False`` (refused) or ``None`` (read it); ``None``
    when nothing here applies (read every token). Exact: each case below is what the reader does.

    * **Inside a string**, a *plain* token (every quote in it escaped, not ending inside an
      escape: :func:`_plain`) changes nothing but the string's text, and the reader's only check
      at its end is that the text so far, as a prefix of a closed object's key or of a finite
      string item, can still end as a key or value not written yet (:func:`_open_prefix`, on the
      raw bytes). So the plain tokens allowed are the pieces, after the text so far, of the
      spellings that start with it and spell a new key or value (every plain token, where no
      such check applies).
    * **Between values**, whitespace changes nothing, and whitespace then a quote then plain
      bytes only opens a string: before a key of a closed object with keys written, or an item
      of a checked array of finitely many strings with items written, it is judged as above from
      the quote; anywhere else it is allowed (a key of an open object, a value of an object, an
      unchecked item: the reader checks no prefix of those).

    One set per mask miss instead of one reading per token (``docs/performance.md``, cause 12).
    """
    mode, frames = state
    if mode not in (STR, VAL):
        return None
    if not frames:
        return _PLAIN_ANY if mode == STR else _FREE_OPEN
    arr, check, values, start = frames[-1]
    if mode == VAL:
        if check is _UNKNOWN:
            return None
        if not arr:
            if start != _KEY or check is None:
                return _FREE_WHOLE  # an object's value (or an unchecked key): its text is not checked
            if values and check.closed:
                return _PlainSet(_closed_key, _pieces(check.spellings, b'"', values), values)
            return _PlainSet(_open_key, None, values)  # a key of a checked object: a whole one must be new
        if check is not None and values and check.strings is not None:
            return _PlainSet(_before_key, _pieces(_pool(check), b'"', values))
        return _FREE_OPEN
    if check is None or start < 0 or not values:
        return _PLAIN_ANY
    if check is _UNKNOWN:
        return None
    if not arr:
        if not check.closed:
            return _PLAIN_ANY
        pool: tuple[tuple[bytes, Any], ...] = check.spellings
    else:
        if check.strings is None:
            return _PLAIN_ANY
        pool = _pool(check)
    return _PlainSet(_plain_in, _pieces(pool, bytes(text[start:]), values))


def _pieces(pool: tuple[tuple[bytes, Any], ...], head: bytes, values: frozenset) -> frozenset[bytes]:
    """Every non-empty piece that follows ``head`` in a spelling of ``pool`` (sorted) that starts
    with ``head`` and spells a value not in ``values``. Kept per (pool, head, values): the same
    key prefix recurs under other reader states (each object of a list, each enclosing frame)."""
    key = (id(pool), head, values)
    hit = _PIECES.get(key)
    if hit is not None and hit[0] is pool:
        return hit[1]
    cut = len(head)
    got = frozenset(spelling[cut:j] for spelling, value in _spelled_from(pool, head) if value not in values
                    for j in range(cut + 1, len(spelling) + 1))
    if len(_PIECES) >= _MAX_PIECES:
        _PIECES.clear()
    _PIECES[key] = (pool, got)  # (holding the pool keeps its id from being reused)
    return got


_PIECES: dict[tuple[int, bytes, frozenset], tuple[tuple[tuple[bytes, Any], ...], frozenset[bytes]]] = {}
_MAX_PIECES = 4096


def _plain(data: bytes) -> bool:
    """Whether ``data``, read inside a string, stays inside it (every quote escaped) and does not
    end inside an escape: it then only adds to the string's text."""
    if 0x5C not in data:
        return 0x22 not in data
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x5C:
            if i + 1 >= n:
                return False  # ends inside an escape: the reader skips its end-of-token check
            i += 2
            continue
        if b == 0x22:
            return False
        i += 1
    return True


def _plain_any(data: bytes) -> bool | None:
    return True if _plain(data) else None


def _plain_in(pieces: frozenset[bytes], data: bytes) -> bool | None:
    return data in pieces if _plain(data) else None


_WHITESPACE = b" \t\n\r"


def _free_open(data: bytes) -> bool | None:
    """Between values where a string opened now is not checked: whitespace changes nothing, and
    whitespace, a quote, then bytes that stay inside the string only open it."""
    rest = data.lstrip(_WHITESPACE)
    if not rest:
        return True
    if rest[0] != 0x22 or not _plain(rest[1:]):
        return None
    return True


def _before_key(pieces: frozenset[bytes], data: bytes) -> bool | None:
    rest = data.lstrip(_WHITESPACE)
    if not rest:
        return True
    if rest[0] != 0x22 or not _plain(rest[1:]):
        return None
    return bool(pieces) if len(rest) == 1 else rest[1:] in pieces


_WHOLE = re.compile(rb'[ \t\n\r]*"([^"\\\x00-\x1f]*)"[ \t\n\r]*')


def _whole(data: bytes) -> str | None:
    """The text of the whole string ``data`` holds when it is whitespace, a quote, bytes without
    quote, backslash or control byte, a quote and whitespace (``' "id"'``, ``'"},"'``: most of
    the tokens the reader read between an object's members), decoded; else ``None``."""
    m = _WHOLE.fullmatch(data)
    if m is None:
        return None
    try:
        return m.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _free_whole(data: bytes) -> bool | None:
    """Between an object's members where no key is checked (before a value, or a key of an
    unchecked object): :func:`_free_open`, and a whole string in one token only writes it."""
    return True if _whole(data) is not None else _free_open(data)


def _open_key(values: frozenset, data: bytes) -> bool | None:
    """Before a key of a checked object (``values``: its keys written): :func:`_free_open`, and a
    whole key in one token is allowed unless written already."""
    key = _whole(data)
    return _free_open(data) if key is None else key not in values


def _closed_key(pieces: frozenset[bytes], values: frozenset, data: bytes) -> bool | None:
    """Before a key of a closed object with keys written: :func:`_before_key`, and a whole key in
    one token is allowed unless written already (the grammar allows only its keys)."""
    key = _whole(data)
    return _before_key(pieces, data) if key is None else key not in values


class _PlainSet(NamedTuple):
    """What :func:`_plain_verdicts` found: the verdict ``rule`` of one token's bytes (one of
    :func:`_plain_any`, :func:`_free_open`, :func:`_free_whole`, :func:`_open_key`,
    :func:`_closed_key`, :func:`_plain_in`, :func:`_before_key`), the ``pieces`` the last three
    check against and the keys written (``values``) the key rules check against. Calling it
    judges one token; a mask miss judges all its tokens at once from :meth:`_Classes.rule_sets`
    (:func:`_judge_words`), which says the same (tested token by token on Llama-3)."""

    rule: Callable[..., bool | None]
    pieces: frozenset[bytes] | None = None
    values: frozenset | None = None  # for the key rules: the keys written

    def __call__(self, data: bytes) -> bool | None:
        return self.rule(*(a for a in (self.pieces, self.values) if a is not None), data)


_PLAIN_ANY = _PlainSet(_plain_any)
_FREE_OPEN = _PlainSet(_free_open)
_FREE_WHOLE = _PlainSet(_free_whole)


def _start(frames: list[Frame], at: int) -> None:
    if frames:
        arr, check, values, _ = frames[-1]
        if arr and check is not None:
            frames[-1] = (arr, check, values, at)


def _end(frames: list[Frame], text: bytearray | bytes, data: bytes, base: int, end: int) -> bool:
    """A value directly inside ``frames[-1]`` ended at ``end``: count it; ``False`` for a repeat."""
    if not frames:
        return True
    arr, check, values, start = frames[-1]
    if check is None or start < 0 and start != -2:
        return True
    if not arr:  # the key of a checked object ended
        key: str | None = _string_of(_text(text, data, base, start, end))
        if check is _UNKNOWN:
            if values:
                raise _NeedChart()
        elif key in values:
            return False
        elif key not in check.keys:
            key = None  # another key (the grammar says which): not counted
        frames[-1] = (arr, check, values if key is None else values | {key}, -1)
        return True
    if start == -2:  # a literal, counted at its first letter
        frames[-1] = (arr, check, values, -1)
        return True
    v = canonical_value(_text(text, data, base, start, end))
    if v in values:
        if check is _UNKNOWN:
            raise _NeedChart()
        return False
    frames[-1] = (arr, check, values | {v}, -1)
    return True


_SPACE_BYTES = frozenset(b" \t\n\r")


def _canonical(mode: int, data: bytes) -> bytes:
    """``data`` without the whitespace bytes :func:`advance` would read between values from
    ``mode``: those change nothing there (no branch of ``advance`` reads them), so from any
    reader state whose mode is ``mode`` the two byte strings get the same verdict, and one that
    needs the chart (:class:`_NeedChart`) needs it for both. Whitespace that ends a number or a
    literal is kept (it ends the value, which the next byte would otherwise continue), as is
    whitespace inside strings. The item texts :func:`_end` reads can lose whitespace inside a
    container item, which :func:`canonical_value` ignores (JSON whitespace); a key's text runs
    from its quote to its quote. The chart is never stepped over a canonical form: its
    whitespace rules are not the reader's.

    Examples
    --------
    >>> _canonical(STR, b'"},\\n  "'), _canonical(VAL, b' " x" ,'), _canonical(NUM, b"1 ]\\n")
    (b'"},"', b'" x",', b'1 ]')
    """
    if not _SPACE_BYTES.intersection(data):
        return data
    out = bytearray()
    for b in data:
        if mode == STR:
            if b == 0x5C:
                mode = ESC
            elif b == 0x22:
                mode = VAL
        elif mode == ESC:
            mode = STR
        elif mode == NUM or mode == LIT:
            if b not in (_NUM_BYTES if mode == NUM else _LOWER):
                mode = VAL  # this byte ends the value (kept), then is read between values
                if b not in _SPACE_BYTES:
                    mode = _after_value(b)
        elif b in _SPACE_BYTES:
            continue  # between values: read by no branch of advance
        else:
            mode = _after_value(b)
        out.append(b)
    return bytes(out)


def _after_value(b: int) -> int:
    """The mode :func:`advance` is in after reading byte ``b`` between values."""
    if b == 0x22:
        return STR
    if b == 0x2D or 0x30 <= b <= 0x39:
        return NUM
    if b in _LITERAL:
        return LIT
    return VAL


# -- per-vocabulary byte classes -------------------------------------------------------------------
def _closing_head(data: bytes) -> bytes | None:
    """The decoded text (UTF-8) ``data`` adds to a string before its first unescaped quote, read
    from inside a string; ``None`` when no quote closes it or its escapes cannot be read alone."""
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x22:
            try:
                return json.loads(b'"' + data[:i] + b'"').encode("utf-8")
            except (ValueError, UnicodeError):
                return None
        if b == 0x5C:
            i += 2
            continue
        i += 1
    return None


class _Classes:
    """Bitsets over a vocabulary (one bit per token, the masks' layout) of tokens by the bytes they hold."""

    def __init__(self, vocab: Vocabulary) -> None:
        size = vocab.size
        words = (size + 31) // 32
        flags = np.zeros((17, words * 32), dtype=bool)
        self.before_quote: dict[bytes, list[int]] = {}
        # counts per token of the bytes of each kind, over all token bytes at once (a Python loop
        # over 128k tokens took 1.7 s, paid by the first checked schema of a process)
        trie = token_trie(vocab)
        lengths = np.diff(trie.offsets)
        n = lengths.shape[0]
        owner = np.repeat(np.arange(n), lengths)
        flat = trie.flat

        def count(table: np.ndarray) -> np.ndarray:
            return np.bincount(owner, weights=table[flat], minlength=n)[:size]

        def kinds(members: Iterable[int], invert: bool = False) -> np.ndarray:
            table = np.zeros(256, dtype=np.float64)
            table[list(members)] = 1.0
            return 1.0 - table if invert else table

        q = count(kinds([0x22]))
        flags[0, :size] = q >= 1
        flags[1, :size] = q >= 2
        flags[2, :size] = count(kinds([0x5D, 0x7D])) > 0
        flags[3, :size] = count(kinds([0x74, 0x66, 0x6E])) > 0
        nonnum = count(kinds(_NUM_BYTES, invert=True)) > 0
        flags[4, :size] = nonnum
        flags[5, :size] = nonnum & (count(kinds([0x2D, *range(0x30, 0x3A)])) > 0)
        flags[6, :size] = count(kinds(_LOWER, invert=True)) > 0
        flags[7, :size] = count(kinds([0x2C])) > 0
        flags[8, :size] = q >= 3
        # for the plain verdicts (_PlainSet): tokens that only add to an open string, whitespace,
        # and whitespace then a quote then such bytes; empty tokens (the reader allows them)
        length = count(kinds(range(256)))
        blank = (length > 0) & (count(kinds(_WHITESPACE, invert=True)) == 0)
        escapes = count(kinds([0x5C])) > 0
        flags[12, :size] = (length > 0) & (q == 0) & ~escapes
        flags[13, :size] = blank
        flags[15, :size] = length == 0
        tokens = vocab.token_bytes
        for t in np.flatnonzero(escapes).tolist():
            flags[12, t] = _plain(tokens[t] or b"")
        self.after_quote: dict[bytes, list[int]] = {}  # the opening tokens by their bytes after the quote
        self.whole_ids: dict[str, list[int]] = {}  # the whole-string tokens by their text (_whole)
        for t in np.flatnonzero(q >= 1).tolist():
            data = tokens[t]
            assert data is not None
            first = data.index(0x22)
            head = _closing_head(data)
            if head is not None:
                self.before_quote.setdefault(head, []).append(t)
            elif 0x5C in data[:first]:
                flags[11, t] = True  # an escape we cannot read alone: read the token each time
            after = data[first + 1:]
            flags[9, t] = 0x5D in after or 0x7D in after
            flags[10, t] = 0x2C in after
            if not data[:first].strip(_WHITESPACE) and _plain(after):
                flags[14, t] = True
                self.after_quote.setdefault(after, []).append(t)
            key = _whole(data)
            if key is not None:
                flags[16, t] = True
                self.whole_ids.setdefault(key, []).append(t)
        packed = np.packbits(flags, axis=1, bitorder="little")
        bits = np.ascontiguousarray(packed).view(np.uint32)
        self.quote1, self.quote2, self.close, self.letters, self.nonnum, self.number_end, self.nonletter, \
            self.comma, self.quote3, self.quote_close, self.quote_comma, self.escape_quote, \
            self.plain, self.blank, self.opens, self.empty, self.wholes = (bits[k] for k in range(17))
        self.empty_or_plain = self.empty | self.plain
        self.empty_or_blank = self.empty | self.blank
        self.empty_blank_or_opens = self.empty | self.blank | self.opens
        self.empty_blank_opens_or_wholes = self.empty_blank_or_opens | self.wholes
        self.opens_or_wholes = self.opens | self.wholes
        self._trie = trie  # (the tokens spelling given pieces are looked up in it: _trie_ids)
        self.everything = np.full(words, 0xFFFFFFFF, dtype=np.uint32)
        self.nothing = np.zeros(words, dtype=np.uint32)
        self._unions: dict[frozenset, np.ndarray] = {}
        self._rules: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # see rule_sets
        # per reader mode, token id -> its bytes' _canonical form (filled as tokens are read)
        self.canonical: tuple[dict[int, bytes], ...] = tuple({} for _ in range(5))

    def rule_sets(self, plain: _PlainSet | None, words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``plain`` as three packed masks ``(allowed, checked, hits)``: a token is allowed when
        it is in ``allowed``, or in ``checked`` and ``hits``; refused when in ``checked`` but not
        ``hits``; read otherwise. An empty token is always allowed (the reader allows it). Equal
        to calling ``plain`` on each token's bytes (tested on every Llama-3 token)."""
        nothing = self.nothing[:words]
        if plain is None:
            return self.empty[:words], nothing, nothing
        rule = plain.rule
        if rule is _plain_any:
            return self.empty_or_plain[:words], nothing, nothing
        if rule is _free_open:
            return self.empty_blank_or_opens[:words], nothing, nothing
        if rule is _free_whole:
            return self.empty_blank_opens_or_wholes[:words], nothing, nothing
        # the other rules' masks are a function of their pieces and keys written, which recur
        # across reader states (the same key prefix inside other containers): kept, a few
        # hundred of them (three packed masks each, 48 KB on Llama-3)
        key = (rule, plain.pieces, plain.values, words)
        hit = self._rules.get(key)
        if hit is None:
            hit = self._rule_sets(plain, words)
            if len(self._rules) >= _MAX_RULE_SETS:
                self._rules.clear()
            self._rules[key] = hit
        return hit

    def _rule_sets(self, plain: _PlainSet, words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`rule_sets` of the rules that read pieces or keys written."""
        rule = plain.rule
        if rule is _open_key:
            assert plain.values is not None
            return self.empty_blank_or_opens[:words], self.wholes[:words], self._new_keys(plain.values, words)
        pieces = plain.pieces
        assert pieces is not None
        if rule is _plain_in:
            hit = np.zeros(words, dtype=np.uint32)
            if pieces:
                joined = np.frombuffer(b"".join(pieces), dtype=np.uint8)
                ends = np.cumsum(np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces)))
                tr = self._trie
                _set_bits(hit, _trie_ids(tr.node_byte, tr.node_skip, tr.tok_ptr, tr.tok_ids, joined, ends).tolist())
            return self.empty[:words], self.plain[:words], hit
        assert rule is _before_key or rule is _closed_key
        hit = _ids_of(self.after_quote, pieces, words)
        if pieces:
            _set_bits(hit, self.after_quote.get(b"", []))  # a quote alone opens a key that can still be new
        if rule is _before_key:
            return self.empty_or_blank[:words], self.opens[:words], hit
        assert plain.values is not None
        return self.empty_or_blank[:words], self.opens_or_wholes[:words], hit | self._new_keys(plain.values, words)

    def _new_keys(self, written: frozenset, words: int) -> np.ndarray:
        """The whole-key tokens (:func:`_whole`) whose key is not in ``written``, packed."""
        old = np.zeros(words, dtype=np.uint32)
        _set_bits(old, [t for k in written if isinstance(k, str) for t in self.whole_ids.get(k, ())])
        return self.wholes[:words] & ~old

    def union(self, names: frozenset) -> np.ndarray:
        """The union of the named classes (each cut to tokens with a comma when its flag is set)."""
        hit = self._unions.get(names)
        if hit is None:
            hit = self.nothing.copy()
            for name, cut in names:
                bits = getattr(self, name)
                hit |= (bits & self.comma) if cut else bits
            if len(self._unions) > 256:
                self._unions.clear()
            self._unions[names] = hit
        return hit


def _ids_of(table: dict[bytes, list[int]], pieces: frozenset[bytes], words: int) -> np.ndarray:
    """The ids ``table`` gives for ``pieces``, as a packed mask of ``words`` words."""
    out = np.zeros(words, dtype=np.uint32)
    _set_bits(out, [t for p in pieces for t in table.get(p, ())])
    return out


_MAX_RULE_SETS = 256  # plain rules' masks kept per vocabulary (_Classes.rule_sets)
_CLASSES: dict[Any, _Classes] = {}  # by vocabulary (hashable, immutable); the last few kept
_CLASSES_LOCK = threading.Lock()
_MAX_VOCABULARIES = 4


def _classes(vocab: Vocabulary) -> _Classes:
    with _CLASSES_LOCK:
        hit = _CLASSES.pop(vocab, None)
        if hit is None:
            hit = _Classes(vocab)
            while len(_CLASSES) >= _MAX_VOCABULARIES:
                del _CLASSES[next(iter(_CLASSES))]
        _CLASSES[vocab] = hit
        return hit


def _partial_string(text: bytearray | bytes, start: int) -> str | None:
    """The decoded content of the string begun at ``start`` (still open), when it has no escape."""
    raw = bytes(text[start + 1:])
    if 0x5C in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None  # a character split by the token boundary


def _endings(values: frozenset, text: bytearray | bytes, start: int, tag: str | None) -> list[bytes] | None:
    """How the string begun at ``start`` (still open) would end equal to one of ``values``: the
    plain bytes of each remaining suffix (``values`` as ``(tag, s)`` pairs, or plain strings when
    ``tag`` is ``None``); ``None`` when the string so far has an escape or a split character."""
    part = _partial_string(text, start)
    if part is None:
        return None
    out = []
    for v in values:
        if tag is None:
            if isinstance(v, str) and v.startswith(part):
                out.append(v[len(part):].encode("utf-8"))
        elif v[0] == tag and v[1].startswith(part):
            out.append(v[1][len(part):].encode("utf-8"))
    return out


def _ending_tokens(c: _Classes, endings: list[bytes]) -> list[int]:
    """The tokens that could end a string as one of ``endings`` (its suffix, then the quote)."""
    out: list[int] = []
    for e in endings:
        out.extend(c.before_quote.get(e, ()))
    return out


_EVERYTHING = ("everything", False)


def _candidates(state: State, c: _Classes, text: bytearray | bytes) -> tuple[frozenset, list[int]] | None:
    """The tokens the reader must try in ``state``: names of byte classes (each with whether it
    is cut to tokens holding a comma) and single ids; ``None`` when no token can be refused."""
    mode, frames = state
    names: set[tuple[str, bool]] = set()
    ids: list[int] = []
    active = False
    last = len(frames) - 1
    in_string = mode in (STR, ESC)
    for k, (arr, check, values, start) in enumerate(frames):
        if check is None:
            continue
        if not arr:  # a checked object
            missing = check.must is None or not values.issuperset(check.must)
            if not (values or missing):
                continue
            active = True
            if k < last:
                names.add(("quote_close" if in_string else "close", False))  # a value in progress
            elif check.closed and values and (start >= 0 and in_string or start == _KEY):
                return frozenset([_EVERYTHING]), []  # at or inside a key of a closed object
            elif in_string and start >= 0:  # inside a key: it ends at the quote
                ends = _endings(values, text, start, None) if values else []
                if missing:
                    names.add(("quote_close", False))
                if ends is None:
                    names.add(("quote1", False))
                else:
                    ids += _ending_tokens(c, ends)
                    names.add(("escape_quote", False))
            else:
                # between members, or inside a value string (its quote comes first): a closing
                # brace (required keys), a whole key (repeated), a comma (no key left)
                if missing:
                    names.add(("quote_close" if in_string else "close", False))
                if values:
                    names.add(("quote3" if in_string else "quote2", False))
                    if check.closed:
                        names.add(("quote_comma" if in_string else "comma", False))
            continue
        active = True
        cut = not values  # nothing written yet: only a token holding two items can repeat one
        if k < last:  # the item is a container in progress: it ends at a closing bracket
            names.add(("quote_close" if in_string else "close", cut))
        elif values and (check.strings is not None or check.n_values is not None):
            return frozenset([_EVERYTHING]), []  # finitely many values: every prefix matters
        elif in_string:
            ends = _endings(values, text, start, "s") if values and start >= 0 else None
            if ends is None:
                names.add(("quote1", cut))
            else:  # this item ending as an earlier one, or a whole next item in the same token
                ids += _ending_tokens(c, ends)
                names.add(("escape_quote", False))
                names.add(("quote3", False))
        elif mode == NUM:
            names.add(("nonnum", cut))
        elif mode == LIT:
            names.add(("nonletter", cut))
        else:
            if check.strings_any:
                names.add(("quote2", cut))
            if check.literals:
                names.add(("letters", cut))
            if check.numbers:
                names.add(("number_end", cut))
            if check.containers:
                names.add(("close", cut))
    return (frozenset(names), ids) if active else None


_NOTHING: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.intp), np.zeros(0, np.uint32))


def _set_bits(bits: np.ndarray, ids: list[int]) -> None:
    """Set the bits of ``ids`` in the packed mask ``bits``, in one vector step."""
    if ids:
        arr = np.sort(np.asarray(ids, dtype=np.int64))  # (np.bitwise_or.at is ~10x slower)
        of = arr >> 5
        first = np.flatnonzero(np.concatenate(([True], of[1:] != of[:-1])))  # each word's first id
        bits[of[first]] |= np.bitwise_or.reduceat(np.uint32(1) << (arr & 31).astype(np.uint32), first)


@njit(cache=True, nogil=True)
def _trie_ids(node_byte, node_skip, tok_ptr, tok_ids, joined, ends):  # type: ignore[no-untyped-def]
    """The ids of the tokens spelling exactly one of the byte strings ``joined[ends[i-1]:ends[i]]``,
    found in the vocabulary's preorder trie (a node's children follow it; ``node_skip`` jumps
    past a subtree). A dictionary of all token spellings cost ~40 ms to build, a stall in the
    first mask that needed it."""
    out = np.empty(16, np.int64)
    n_out = 0
    n_nodes = node_byte.shape[0]
    start = 0
    for i in range(ends.shape[0]):
        stop = ends[i]
        node = -1
        lo = 0  # the current node's children: [lo, hi)
        hi = n_nodes
        for k in range(start, stop):
            b = joined[k]
            j = lo
            node = -1
            while j < hi:
                if node_byte[j] == b:
                    node = j
                    break
                j = node_skip[j]
            if node < 0:
                break
            lo = node + 1
            hi = node_skip[node]
        if node >= 0 and stop > start:
            for q in range(tok_ptr[node], tok_ptr[node + 1]):
                if n_out == out.shape[0]:
                    grown = np.empty(2 * n_out, np.int64)
                    grown[:n_out] = out
                    out = grown
                out[n_out] = tok_ids[q]
                n_out += 1
        start = stop
    return out[:n_out].copy()


@njit(cache=True, nogil=True)
def _judge_words(base, union, judged, bad, allowed, checked, hits):  # type: ignore[no-untyped-def]
    """The candidates (``base & union``) not judged yet in this reader state, judged by the
    plain rule (``allowed``, ``checked``, ``hits``: :meth:`_Classes.rule_sets`) in place in
    ``judged`` and ``bad``; returns the ids left to read, ascending. One pass over the words,
    without numpy temporaries (a filter miss made ~20 of them, most of its cost); the ids are
    then read off the few words that hold some."""
    n = base.shape[0]
    at = np.empty(n, np.int32)  # the words with ids left to read, and those ids' bits
    rest = np.empty(n, np.uint32)
    m = 0
    count = 0
    for w in range(n):
        todo = base[w] & union[w]
        if todo:
            todo &= ~judged[w]
        if todo:
            ok = todo & (allowed[w] | (checked[w] & hits[w]))
            no = todo & checked[w] & ~hits[w]
            judged[w] |= ok | no
            bad[w] |= no
            r = todo & ~(ok | no)
            if r:
                at[m] = w
                rest[m] = r
                m += 1
                while r:
                    r &= r - np.uint32(1)
                    count += 1
    ids = np.empty(count, np.int64)
    k = 0
    for i in range(m):
        w = at[i]
        r = rest[i]
        b = 0
        while r:
            if r & np.uint32(1):
                ids[k] = w * 32 + b
                k += 1
            r >>= np.uint32(1)
            b += 1
    return ids


@njit(cache=True, nogil=True)
def _refusals(base, union, judged, bad, ok_ids, bad_ids, out_ids):  # type: ignore[no-untyped-def]
    """Record the reader's verdicts (``ok_ids``, ``bad_ids``: of this reader state; ``out_ids``:
    refused on the chart's word, not recorded) and return the candidates refused, as the words
    of the mask to change and the bits to keep in each: ``mask[words] &= keep`` clears them all
    in one vector step."""
    for t in ok_ids:
        judged[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    for t in bad_ids:
        judged[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        bad[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    n = base.shape[0]
    has_extra = out_ids.shape[0] > 0
    extra = np.zeros(n if has_extra else 0, np.uint32)  # refused on the chart's word, by word
    for t in out_ids:
        extra[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    words = np.empty(n, np.intp)
    keep = np.empty(n, np.uint32)
    k = 0
    for w in range(n):
        r = base[w] & union[w] & bad[w]
        if has_extra:
            r |= extra[w]
        if r:
            words[k] = w
            keep[k] = ~r
            k += 1
    return words[:k].copy(), keep[:k].copy()


# -- the guard table of a grammar ------------------------------------------------------------------
@dataclass(frozen=True)
class _Keys:
    """The key check of one open object: the merge of the :class:`ObjectKeys` of the object rules
    that opened at its ``{``. ``must`` is the required keys when exactly one rule opened there
    (and it is checked); otherwise ``None``: at ``}`` the chart says which rules end there, and
    the brace is allowed when one of them is unchecked or has its required keys."""

    keys: frozenset[str]
    spellings: tuple[tuple[bytes, str], ...]
    closed: bool
    must: tuple[str, ...] | None


class _Verdicts(NamedTuple):
    """What :meth:`UniqueCFGMatcher._verdicts` keeps per reader state (packed masks over the
    vocabulary): tokens ``judged`` so far and those of them refused (``bad``), the plain rule's
    ``(allowed, checked, hits)`` (:meth:`_Classes.rule_sets`) and the candidates (``union``)."""

    judged: np.ndarray
    bad: np.ndarray
    rules: tuple[np.ndarray, np.ndarray, np.ndarray]
    union: np.ndarray


_UNSEEN_STATE: Any = object()


class Guards:
    """The checked productions of one compiled grammar (each checked rule's production, with its
    :class:`UniqueItems` or :class:`ObjectKeys`), and every object production (checked or not:
    ``objects`` maps each to its length)."""

    def __init__(self, by_production: dict[int, Guard], objects: dict[int, int]) -> None:
        self.by_production = by_production
        self.objects = objects
        self.refused: dict[Any, tuple[np.ndarray, np.ndarray]] = {}  # see UniqueCFGMatcher._filter
        # per reader state: (judged, refused) packed masks of single-token verdicts, the plain
        # rule's three masks and the candidates' mask (see UniqueCFGMatcher._verdicts); or
        # None where the reader can refuse nothing
        self.verdicts: dict[Any, _Verdicts | None] = {}
        # per (chart signature, a token's bytes up to a bracket): what the chart says there, the
        # check a "[" or "{" opens or the rules a "}" ends (see UniqueCFGMatcher._charted_verdict)
        self.charted: dict[tuple[int, bytes], Any] = {}
        # what opened answers, per (the ids of the checks found, whether a plain object opened
        # too): one object per answer, kept here for the table's life, so that the ids the
        # reader's memos hold are never another object's (the checks found are the table's own)
        self._opened: dict[tuple[tuple[int, ...], bool], Any] = {}
        # the verdict masks are read and written by numba kernels that release the GIL: one
        # matcher at a time updates them (threads filling a batch share a grammar's guards)
        self.lock = threading.Lock()

    def opened(self, s: ESet) -> Any:
        """The check of the container whose ``[`` or ``{`` the last byte read, per chart set ``s``.

        Several parses can open checked containers at one bracket (a schema's cases overlap, say
        an object case that only allows ``[]`` there and one that allows a list). Arrays: the
        checks are merged so that a token one of them allows is allowed (each case's own items
        are still the grammar's to decide). Objects: see :class:`_Keys`."""
        found: list[Guard] = []
        plain_object = False
        for p, d, _ in s.items:
            if d == 1:
                hit = self.by_production.get(p)
                if hit is not None:
                    found.append(hit)
                elif p in self.objects:
                    plain_object = True
        if not found:
            return None
        # one object per distinct answer: the reader's memos key frames by their check's
        # identity (hashing a check's fields, its keys' spellings, on every step cost ~5% of a
        # checked schema's mask time)
        key = (tuple(sorted(map(id, found))), plain_object)
        got = self._opened.get(key)
        if got is None:
            # the first one stored wins, so a thread racing another gets the kept object too:
            # one it made and dropped could die and its id come back as another check's
            got = self._opened.setdefault(key, self._opening(found, plain_object))
        return got

    def _opening(self, found: list[Guard], plain_object: bool) -> Any:
        """:meth:`opened`'s answer made from the checks ``found`` (in any order)."""
        if isinstance(found[0], ObjectKeys):
            objs = [c for c in found if isinstance(c, ObjectKeys)]
            single = len(objs) == 1 and not plain_object
            return _Keys(frozenset(k for c in objs for k in c.keys), tuple(sorted(set(x for c in objs for x in c.spellings))),
                         all(c.closed for c in objs) and not plain_object, objs[0].must if single else None)
        if len(found) == 1:
            return found[0]
        return _merge(found)

    def ended(self, s: ESet) -> list[ObjectKeys | None]:
        """The object rules the ``}`` the last byte read ends (per chart set ``s``): each one's
        :class:`ObjectKeys`, ``None`` for an unchecked one."""
        out: list[ObjectKeys | None] = []
        objects = self.objects
        for p, d, _ in s.items:
            if d >= 2 and objects.get(p) == d:
                hit = self.by_production.get(p)
                out.append(hit if isinstance(hit, ObjectKeys) else None)
        return out


def _merge(checks: list[Guard]) -> UniqueItems:
    items = [c for c in checks if isinstance(c, UniqueItems)]
    open_strings = any(c.strings_any and c.strings is None for c in items)
    pools = sorted({s for c in items for s in (c.strings or ())})
    return UniqueItems(
        strings=None if open_strings or not pools else tuple(pools),
        n_values=None if any(c.n_values is None for c in items) else sum(c.n_values or 0 for c in items),
        literals=any(c.literals for c in items), numbers=any(c.numbers for c in items),
        strings_any=any(c.strings_any for c in items), containers=any(c.containers for c in items),
    )


_MAX_REFUSED = 100_000  # memoised reader verdicts per grammar (the words of a few refused ids each)
_MAX_CHARTED = 65_536  # chart answers kept per grammar (a check or a short list each)
_MAX_VERDICT_STATES = 1024  # reader states whose verdicts are memoised per grammar (2-3 masks each: 32-48 KB on Llama-3)


_GUARDS: weakref.WeakKeyDictionary[Any, Guards | None] = weakref.WeakKeyDictionary()


def guards_of(grammar: CompiledGrammar) -> Guards | None:
    """The :class:`Guards` of ``grammar`` (made once per grammar), or ``None`` when it checks
    nothing at run time."""
    try:
        return _GUARDS[grammar]
    except KeyError:
        pass
    made = _make_guards(grammar)
    _GUARDS[grammar] = made
    return made


def _make_guards(grammar: CompiledGrammar) -> Guards | None:
    from corral.compiler.program import EarleyProgram

    program = grammar.program
    if not isinstance(program, EarleyProgram) or not program.ir.guards:
        return None
    engine = earley_engine(grammar)  # it found the checked and object productions (its signatures need them)
    if not engine.checked:
        return None
    return Guards(engine.checked, engine.objects)


# -- the matcher -----------------------------------------------------------------------------------
class UniqueCFGMatcher(CFGMatcher):
    """A :class:`~corral.runtime.cfg_matcher.CFGMatcher` that also enforces ``uniqueItems`` (see the
    module docstring); what :meth:`CompiledGrammar.matcher <corral.CompiledGrammar.matcher>` gives
    for a JSON Schema using it."""

    __slots__ = ("_guards", "_classes", "_states", "_text", "_ends")

    def __init__(self, grammar: CompiledGrammar, guards: Guards) -> None:
        super().__init__(grammar)
        self._guards = guards
        self._classes = _classes(grammar.vocab)
        self._states: list[State] = [START]
        self._text = bytearray()
        self._ends: list[int] = [0]

    # -- reading -------------------------------------------------------------------------------
    def _feed(self, data: bytes) -> tuple[ESet, State] | None:
        """Chart set and reader state after ``data`` (the chart says which arrays are checked)."""
        s = self._sets[-1]
        assert s is not None
        base = len(self._text)
        opened: dict[int, Any] = {}
        ended: dict[int, list[ObjectKeys | None]] = {}
        cur: ESet | None = s
        for i, b in enumerate(data):
            cur = self._rec.step(cur, b)  # type: ignore[arg-type]
            if cur is None:
                return None
            if b == 0x5B or b == 0x7B:
                opened[base + i] = self._guards.opened(cur)
            elif b == 0x7D:
                ended[base + i] = self._guards.ended(cur)
        if cur is None:
            return None
        state = advance(self._states[-1], data, self._text, lambda at: opened.get(at), lambda at: ended.get(at, []))
        if state is None:
            return None
        self._rec.moved(s, cur, data)
        return cur, state

    def _allowed_by_reader(self, data: bytes) -> bool:
        """Whether the reader lets ``data`` through (``data`` already allowed by the grammar)."""
        return self._reader_verdict(data)[0]

    def _reader_verdict(self, data: bytes) -> tuple[bool, bool]:
        """:meth:`_allowed_by_reader`, and whether the verdict depends on the reader's state alone
        (``False`` when the chart had to say which containers the token opens)."""
        ok = self._alone_verdict(data)
        if ok is None:
            return self._charted_verdict(data), False
        return ok, True

    def _alone_verdict(self, data: bytes) -> bool | None:
        """Whether the reader lets ``data`` through, from its state alone; ``None`` when the
        chart must say which containers ``data`` opens or closes (:class:`_NeedChart`)."""
        if not data:
            return True
        try:
            return advance(self._states[-1], data, self._text) is not None
        except _NeedChart:
            return None

    def _charted_verdict(self, data: bytes) -> bool:
        """Whether the reader lets ``data`` through (the grammar allowing it), asking the chart
        only what the reader needs: the check of each bracket ``data`` opens and the rules each
        brace ends, from the set after ``data``'s bytes up to there, stepped only that far.

        Each answer is a function of the chart set's signature and those bytes (the signature
        tells the checked and object productions apart, as the refused-ids memo relies on), so
        answers are kept per grammar: the candidates ``{}``, ``{},``, ``{}\\n`` ... of one set step
        the chart over ``{`` once, for every reader state met at that set. Reading a token
        through :meth:`_feed` instead stepped the chart over each of its bytes (~70 us a token,
        1 s over the first 300 dev schemas)."""
        s = self._sets[-1]
        assert s is not None
        sig = s.sig
        base = len(self._text)
        answers = self._guards.charted
        sets = [s]  # sets[k]: the set after data[:k]

        def ask(at: int, opening: bool) -> Any:
            k = at - base + 1
            key = (sig, data[:k])
            if sig >= 0:
                hit = answers.get(key, _UNSEEN_STATE)
                if hit is not _UNSEEN_STATE:
                    return hit
            while len(sets) <= k:
                nxt = self._rec.step(sets[-1], data[len(sets) - 1])
                if nxt is None:
                    raise _GrammarRefuses()
                sets.append(nxt)
            got = self._guards.opened(sets[k]) if opening else self._guards.ended(sets[k])
            if sig >= 0:
                if len(answers) >= _MAX_CHARTED:
                    answers.clear()
                answers[key] = got
            return got

        try:
            return advance(self._states[-1], data, self._text, lambda at: ask(at, True),
                           lambda at: ask(at, False)) is not None
        except _GrammarRefuses:
            return False

    def _filter(self, base: np.ndarray, sig: int) -> np.ndarray:
        state = self._states[-1]
        # what the reader refuses depends on the chart set (its signature) and on the reader's
        # state with each open item or key's text: memoised per grammar, as the refused ids
        # (the memo is read first: which tokens to try is a function of that state too); a
        # frame's check by identity: Guards.opened gives one object per answer
        reader = (state[0], tuple((arr, id(check), values, start if start < 0 else bytes(self._text[start:]))
                                  for arr, check, values, start in state[1]))
        key = (sig, reader)
        guards = self._guards
        refused = guards.refused.get(key) if sig >= 0 else None
        if refused is None:
            with guards.lock:
                refused = self._refused(base, state, reader)
            if sig >= 0:
                self._remember(key, refused)
        if refused is _NOTHING:
            return base
        words, keep = refused
        out = base.copy()
        out[words] &= keep
        return out

    def _verdicts(self, state: State, reader: Any, words: int) -> _Verdicts | None:
        """The verdict memo of reader state ``state`` (``reader``: its key), made on first use:
        ``None`` when the reader can refuse no token there. What is kept is a function of the
        reader state alone: which tokens are candidates (:func:`_candidates`, as a packed mask),
        what the plain rule says of them (:meth:`_Classes.rule_sets`), and the single-token
        verdicts found so far. Under the guards' lock."""
        verdicts = self._guards.verdicts
        known = verdicts.get(reader, _UNSEEN_STATE)
        if known is not _UNSEEN_STATE:
            return known  # type: ignore[return-value]
        found = _candidates(state, self._classes, self._text)
        if found is None:
            known = None
        else:
            names, extra = found
            union = self._classes.union(names)[:words]
            if extra:
                union = union.copy()
                _set_bits(union, extra)
            # the simplest tokens are judged as sets (see _plain_verdicts), a function of the
            # reader state too (a closed object's pieces cost a set of every remaining
            # spelling's prefixes)
            known = _Verdicts(np.zeros(words, np.uint32), np.zeros(words, np.uint32),
                              self._classes.rule_sets(_plain_verdicts(state, self._text), words), union)
        if len(verdicts) >= _MAX_VERDICT_STATES:
            verdicts.clear()
        verdicts[reader] = known
        return known

    def _refused(self, base: np.ndarray, state: State, reader: Any) -> tuple[np.ndarray, np.ndarray]:
        """The candidates of ``base`` the reader refuses in ``state`` (see :meth:`_filter`), as
        the words to change and the bits to keep in each; under the guards' lock."""
        known = self._verdicts(state, reader, base.shape[0])
        if known is None:
            return _NOTHING
        judged, bad, rules, union = known
        tokens = self._tokens
        n_tokens = len(tokens)
        # a token's verdict is a function of the reader's state (its open items' texts included)
        # unless the chart had to be asked: memoised per reader state as two packed masks
        # (judged, refused), so a new chart set in a reader state seen before reads only the
        # tokens it has not judged, and the judged ones cost no Python step
        ro = frozen(base)  # (one numba version: the store's masks are read-only)
        to_read = _judge_words(ro, union, judged, bad, *rules)
        newly_ok: list[int] = []
        newly_bad: list[int] = []
        out_ids: list[int] = []  # refused on the chart's word: not memoised
        # tokens that differ only in whitespace between values get one verdict (_canonical):
        # inside a string, '"},', '"},\n' and '"},\n\n' are one reading, not three (about half
        # the tokens read)
        canonical = self._classes.canonical[state[0]]
        read: dict[bytes, bool | None] = {}
        alone = self._alone_verdict
        for t in to_read.tolist():
            if t >= n_tokens:
                continue
            data = tokens[t] or b""
            form = canonical.get(t)
            if form is None:
                form = canonical[t] = _canonical(state[0], data)
            ok = read.get(form, _UNSEEN_STATE)
            if ok is _UNSEEN_STATE:
                ok = read[form] = alone(form)
            if ok is None:  # the chart must be asked: with this token's own bytes
                if not self._charted_verdict(data):
                    out_ids.append(t)
            else:
                (newly_ok if ok else newly_bad).append(t)
        got = _refusals(ro, union, judged, bad, np.array(newly_ok, np.int64), np.array(newly_bad, np.int64),
                        np.array(out_ids, np.int64))
        return got if got[0].shape[0] else _NOTHING

    def _remember(self, key: Any, refused: tuple[np.ndarray, np.ndarray]) -> None:
        cache = self._guards.refused
        if len(cache) >= _MAX_REFUSED:
            cache.clear()
        cache[key] = refused

    # -- the Matcher API -----------------------------------------------------------------------
    def next_token_mask(self) -> np.ndarray:
        """The allowed next tokens: the grammar's, less those that would repeat an item."""
        s = self._sets[-1]
        if s is None:
            return self._store.zeros
        base = self._store.mask(s)
        return self._filter(base, s.sig)

    def _mask_if_ready(self) -> np.ndarray | None:
        s = self._sets[-1]
        if s is None:
            return self._store.zeros
        if _candidates(self._states[-1], self._classes, self._text) is not None:
            return None
        return self._store.lookup(s)

    def check_token(self, token_id: int) -> bool:
        """Whether ``token_id`` is allowed next (see :meth:`CFGMatcher.check_token`)."""
        t = token_index(token_id, self._size)
        if not super().check_token(t):
            return False
        if t in self._eos or t >= len(self._tokens):
            return True
        data = self._tokens[t]
        if not data:
            return False
        return self._allowed_by_reader(data)

    def _advance(self, data: bytes) -> bool:
        """One step by ``data``, if both the grammar and the reader allow it."""
        if not data:
            self._push(self._sets[-1], self._states[-1], b"")
            return True
        got = self._feed(data)
        if got is None:
            return False
        self._push(got[0], got[1], data)
        return True

    def _finish(self) -> None:
        self._push(None, self._states[-1], b"")

    def _push(self, s: ESet | None, state: State, data: bytes) -> None:
        self._sets.append(s)
        self._states.append(state)
        self._text += data
        self._ends.append(len(self._text))

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` steps (see :meth:`Matcher.rollback`)."""
        super().rollback(n)
        if n:
            del self._states[-n:]
            del self._ends[-n:]
            del self._text[self._ends[-1]:]

    def reset(self) -> None:
        """Back to the start of the grammar."""
        super().reset()
        del self._states[1:]
        del self._ends[1:]
        self._text.clear()

    def _fork_into(self, other: CFGMatcher) -> None:
        super()._fork_into(other)
        assert isinstance(other, UniqueCFGMatcher)
        other._guards = self._guards
        other._classes = self._classes
        other._states = list(self._states)
        other._text = bytearray(self._text)
        other._ends = list(self._ends)
