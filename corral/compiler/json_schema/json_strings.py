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

The value constraint comes as a regex: a JSON Schema ``pattern`` translated by
:mod:`~corral.compiler.json_schema.ecma_regex`, or a ``format`` regex from
:mod:`~corral.compiler.json_schema.formats`. Finite sets of strings (``enum``, ``const``, property
names) are built directly as tries by :mod:`~corral.compiler.json_schema.tries`.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from corral.compiler.automaton import ByteDFA, minimize
from corral.compiler.json_schema.ecma_regex import _translate
from corral.compiler.json_schema.errors import Inexpressible
from corral.compiler.limits import TABLE_ROW_BYTES, current_budget, ends_compile
from corral.compiler.regex import regex_to_dfa
from corral.compiler.utf8 import MAX_CODE_POINT
from corral.errors import CompileLimitError, GrammarError

__all__ = ["Inexpressible", "LengthBoundsTooLarge", "json_string_dfa"]

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


def _value_dfa(value_pattern: str | None, ecma: bool, python: str | None) -> _CodePointDFA | None:
    """The code point DFA of the allowed values, or ``None`` when no value is allowed
    (``python``: the pattern in corral's dialect, ``None`` for an ECMA pattern that matches no
    string)."""
    if value_pattern is None:
        return _ANY_VALUE
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


# A translated pattern that is one character item under a quantifier, anchored at both ends
# (``^.{1,255}$`` becomes ``\A[^\u000a\u000d\u2028\u2029]{1,255}\Z``): a bracket class,
# ``(?s:.)``, one escaped character (``\u`` and ``\U`` escapes included) or one plain one.
_COUNTED_ITEM = re.compile(
    r"\\A(?P<item>\[(?:[^\\\]]|\\.)*\]|\(\?s:\.\)|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|\\[^AZbBdDsSwWuU0-9]"
    r"|[^\\\[\]()|*+?{}^$.])"
    r"(?:(?P<star>[*+?])|\{(?P<lo>\d*)(?P<comma>,?)(?P<hi>\d*)\})\\Z",
    re.DOTALL,
)


def _counted_class(python: str) -> tuple[_CodePointDFA, int, int | None] | None:
    """A pattern (translated to corral's dialect) that is one character class repeated
    ``m`` to ``n`` times, anchored at both ends, as ``(the class's one-state value automaton, m,
    n)`` (``n`` ``None``: unbounded); ``None`` for any other pattern.

    Exact: such a pattern is the strings of ``m`` to ``n`` code points of the class, which is
    the class's loop under the length bounds. The bounds are then woven in by the code point
    counter (:func:`_count_lengths`) instead of unrolled into ``n`` copies of the class in a
    byte automaton: ``^.{1,255}$`` took 0.25-0.5 s that way (``.`` spans four UTF-8 lengths,
    read back into code points and spelled), the counter 40 ms. Whether the item reads exactly
    one code point is checked on its automaton, not assumed from its syntax.
    """
    hit = _COUNTED_ITEM.fullmatch(python)
    if hit is None:
        return None
    star = hit.group("star")
    hi: int | None
    if star is not None:
        lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[star]
    else:
        lo = int(hit.group("lo") or 0)
        if not hit.group("comma"):
            if not hit.group("lo"):
                return None
            hi = lo
        else:
            hi = int(hit.group("hi")) if hit.group("hi") else None
        if hi is not None and hi < lo:
            return None  # the general path says what is wrong with it
    try:
        one = _code_point_dfa(regex_to_dfa(hit.group("item")))
    except (GrammarError, CompileLimitError):
        return None
    if len(one.moves) != 2 or one.accepting != [False, True] or one.moves[1] or \
            any(t != 1 for _, _, t in one.moves[0]):
        return None
    return _CodePointDFA([tuple((a, b, 0) for a, b, _ in one.moves[0])], [True], 0), lo, hi


def _json_string_dfa(
    value_pattern: str | None, min_length: int, max_length: int | None, ecma: bool, max_states: int
) -> ByteDFA:
    if max_length is not None and min_length > max_length:
        return _empty_dfa()
    python = _translate(value_pattern) if value_pattern is not None and ecma else value_pattern
    counted = _counted_class(python) if python is not None and ecma else None
    if counted is not None:
        value: _CodePointDFA | None = counted[0]
        min_length = max(min_length, counted[1])
        if counted[2] is not None:
            max_length = counted[2] if max_length is None else min(max_length, counted[2])
        if max_length is not None and min_length > max_length:
            return _empty_dfa()
    else:
        value = _value_dfa(value_pattern, ecma, python)
    if value is None:
        return _empty_dfa()
    speller = _Speller(value)
    trans = speller.table()
    if min_length == 0 and max_length is None:
        accepting = np.zeros(trans.shape[0], dtype=bool)
        accepting[speller.final] = True
        return minimize(ByteDFA(trans, accepting, speller.start), trimmed=False)
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
        ECMA-262 syntax, found *anywhere* in the value (see
        :func:`~corral.compiler.json_schema.ecma_regex.ecma_to_python`). With
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
    key = (value_pattern, min_length, max_length, bool(ecma), max_states)
    with _cache_lock:
        got = _cache.get(key)
        if got is not None:
            _cache.move_to_end(key)
            return got
    dfa = _json_string_dfa(*key)
    _remember(key, dfa)
    return dfa


CACHED_STRING_STATES = 1 << 15
"""How many automaton states (each a 1 KiB row) :func:`json_string_dfa` keeps for reuse in a
process, least recently used first out. The same string constraints recur across schemas
(``maxLength: 255``, an identifier pattern), and one can take 20-40 ms to build."""

_cache: OrderedDict[tuple[object, ...], ByteDFA] = OrderedDict()
_cache_states = 0
_cache_lock = threading.Lock()


def _remember(key: tuple[object, ...], dfa: ByteDFA) -> None:
    """Keep ``dfa`` for ``key`` (never one above a quarter of :data:`CACHED_STRING_STATES`)."""
    global _cache_states
    if dfa.n_states > CACHED_STRING_STATES // 4:
        return
    dfa.trans.setflags(write=False)  # shared from now on: callers get the same arrays
    dfa.accepting.setflags(write=False)
    with _cache_lock:
        if key in _cache:
            return
        _cache[key] = dfa
        _cache_states += dfa.n_states
        while _cache_states > CACHED_STRING_STATES:
            _, old = _cache.popitem(last=False)
            _cache_states -= old.n_states

