r"""Automata of finite sets of literals, built directly as tries (no regex, no subset construction).

:func:`words_dfa` accepts exactly a set of byte strings; :func:`json_string_literals_dfa` accepts
every JSON spelling (raw, short escapes, ``\uXXXX`` in either case, surrogate pairs) of exactly a
set of strings, the same language as :func:`~corral.compiler.json_schema.json_strings.json_string_dfa`
with an alternation of the values, without building it from a regex.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterable

import numpy as np
from numba import njit

from corral.compiler.automaton import ByteDFA, minimize
from corral.compiler.json_schema.errors import Inexpressible
from corral.compiler.json_schema.json_strings import _empty_dfa

__all__ = ["json_string_literals_dfa", "lone_surrogate", "words_dfa"]

_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone surrogate (see lone_surrogate)

_ESCAPE_LETTER = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}

# A spelling as a sequence of byte sets: a hex digit of a ``\uXXXX`` escape is one position
# with both cases (the same next state), so a character costs one path of the trie per escape
# instead of one per choice of cases (16 for "\u00e9", 256 for a surrogate pair).
_Spelling = tuple[bytes, ...]


def _hex_positions(v: int) -> _Spelling:
    return tuple(bytes(sorted({ord(h), ord(h.upper())})) for h in f"{v:04x}")


@functools.lru_cache(maxsize=4096)
def _spellings(ch: str) -> tuple[_Spelling, ...]:
    """Every JSON spelling of the character ``ch`` inside a string literal, as byte sets per
    position (each set's bytes lead to the same place). Kept per character: a big ``enum``
    asks for each character of each value (5,000 time zones: ~60k times, a quarter of its
    automaton's Python)."""
    cp = ord(ch)
    if cp >= 0x10000:
        hi, lo = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
        spellings = [(b"\\", b"u", *_hex_positions(hi), b"\\", b"u", *_hex_positions(lo))]
    else:
        spellings = [(b"\\", b"u", *_hex_positions(cp))]
    if cp >= 0x20 and ch not in '"\\':
        spellings.append(tuple(bytes([b]) for b in ch.encode("utf-8")))
    if ch in _ESCAPE_LETTER:
        spellings.append((b"\\", _ESCAPE_LETTER[ch].encode()))
    return tuple(spellings)


def lone_surrogate(text: str, what: str) -> str | None:
    """Why ``text`` (``what`` it is: "the value", "the property name") cannot be written, when it
    holds a lone surrogate (a Python string from ``"\\ud800"`` in JSON): it is not a Unicode
    scalar value, corral writes no string holding one (as
    :mod:`~corral.compiler.json_schema.json_strings` says), and it has no UTF-8 spelling.
    ``None`` for a string of scalar values."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (f"{what} {json.dumps(text)} holds a lone surrogate (U+{ord(found.group()):04X}), which is not a "
            "Unicode scalar value: corral writes no string holding one")



def json_string_literals_dfa(values: Iterable[str]) -> ByteDFA:
    r"""The automaton of every JSON spelling of exactly these strings (quotes included).

    The same language as ``json_string_dfa("^(?:v1|v2|...)$", ecma=False)`` (raw characters, short
    escapes, ``\uXXXX`` in either case, surrogate pairs for astral characters), built directly as
    a trie: the strings' characters form a trie, and below each of its nodes the spellings of the
    next characters form a trie over byte sets (a hex digit's two cases are one edge) whose
    leaves lead to the child nodes. No subset construction, so it is fast for a finite set.

    Deterministic: at any state the byte sets of the spellings read there are equal or
    disjoint (a raw byte is never ``\``; after ``\`` come ``u`` and the short-escape letters;
    after ``\u`` hex digits, each with both its cases), so one trie node per set is exact.
    """
    values = sorted(set(values))
    if not values:
        return _empty_dfa()
    for v in values:  # the schema compiler reports these at their keyword; this is the last guard
        why = lone_surrogate(v, "the string")
        if why is not None:
            raise Inexpressible(why)
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
                last = len(sp) - 1
                for i, group in enumerate(sp):
                    if i == last:
                        nxt = between[child]
                    else:
                        nxt = rows[cur].get(group[0], -1)
                        if nxt < 0:
                            nxt = len(rows)
                            rows.append({})
                    for b in group:
                        rows[cur][b] = nxt
                    cur = nxt
    return minimize(_table_dfa(rows, [1]), trimmed=False)


def _table_dfa(rows: list[dict[int, int]], final: Iterable[int]) -> ByteDFA:
    """The automaton with moves ``rows[state][byte] -> state``, start 0 and accepting ``final``."""
    trans = np.full((len(rows), 256), -1, dtype=np.int32)
    # one numpy assignment for all moves (an item at a time cost o359's 46 enums 7 ms)
    sizes = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    src = np.repeat(np.arange(len(rows), dtype=np.int64), sizes)
    count = int(sizes.sum())
    byte = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=count)
    dst = np.fromiter(itertools.chain.from_iterable(map(dict.values, rows)), dtype=np.int32, count=count)
    trans[src, byte] = dst
    accepting = np.zeros(len(rows), dtype=bool)
    accepting[list(final)] = True
    return ByteDFA(trans, accepting, 0)


def words_dfa(words: Iterable[bytes]) -> ByteDFA:
    """The automaton of exactly these byte strings (a trie, states numbered as the words are
    inserted)."""
    ws = [bytes(w) for w in words]
    joined = np.frombuffer(b"".join(ws), dtype=np.uint8)
    ends = np.cumsum(np.fromiter((len(w) for w in ws), dtype=np.int64, count=len(ws)))
    trans, accepting = _trie_table(joined, ends)
    return ByteDFA(trans, accepting, 0)


@njit(cache=True, nogil=True)
def _trie_table(joined, ends):  # type: ignore[no-untyped-def]
    """The table and accepting flags of the trie of the words ``joined[ends[i-1]:ends[i]]``
    (a Python trie of dicts and a numpy table cost ~30 us a key terminal, built for every key of
    every schema)."""
    # rows grow by doubling: a row per byte of the words up front was 128 MB of -1s to write for
    # a 5,000-value enum's 125k bytes, whose trie has a tenth of that
    cap = min(joined.shape[0] + 1, 1024)
    trans = np.full((cap, 256), -1, np.int32)
    accepting = np.zeros(cap, np.bool_)
    n = 1
    lo = 0
    for i in range(ends.shape[0]):
        cur = 0
        for k in range(lo, ends[i]):
            b = joined[k]
            nxt = trans[cur, b]
            if nxt < 0:
                if n == cap:
                    cap = min(2 * cap, joined.shape[0] + 1)
                    bigger = np.full((cap, 256), -1, np.int32)
                    bigger[:n] = trans[:n]
                    trans = bigger
                    more = np.zeros(cap, np.bool_)
                    more[:n] = accepting[:n]
                    accepting = more
                nxt = n
                trans[cur, b] = nxt
                n += 1
            cur = nxt
        accepting[cur] = True
        lo = ends[i]
    return trans[:n].copy(), accepting[:n].copy()
