"""Sets of Unicode code points and their UTF-8 byte-range encodings.

A character class such as ``[^"\\\\]`` is a set of code points. To run it on bytes, each code point
range is split into *byte-range sequences*: lists ``[(lo1, hi1), (lo2, hi2), ...]`` such that a byte
string matches the sequence when its i-th byte lies in ``lo_i..hi_i``. Every code point in the range
has exactly one encoding, and that encoding matches exactly one sequence. Surrogates (U+D800..U+DFFF)
cannot be encoded in UTF-8 and are left out of every set.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "MAX_CODE_POINT",
    "CodePointSet",
    "utf8_sequences",
]

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)

# A code point set: sorted, disjoint, non-adjacent closed intervals.
CodePointSet = tuple[tuple[int, int], ...]


def from_code_points(points: Iterable[int]) -> CodePointSet:
    """The set of the given code points as merged intervals (surrogates dropped)."""
    return from_intervals((p, p) for p in set(points))


def from_intervals(intervals: Iterable[tuple[int, int]]) -> CodePointSet:
    """Merge closed intervals (in any order, possibly overlapping); surrogates dropped."""
    out: list[list[int]] = []
    for a, b in sorted(intervals):
        if out and out[-1][1] + 1 >= a:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return _drop_surrogates(tuple((a, b) for a, b in out))


def complement(s: CodePointSet) -> CodePointSet:
    """All encodable code points not in ``s``."""
    out: list[tuple[int, int]] = []
    nxt = 0
    for a, b in s:
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return _drop_surrogates(tuple(out))


def _drop_surrogates(s: CodePointSet) -> CodePointSet:
    lo_s, hi_s = _SURROGATES
    out: list[tuple[int, int]] = []
    for a, b in s:
        if b < lo_s or a > hi_s:
            out.append((a, b))
            continue
        if a < lo_s:
            out.append((a, lo_s - 1))
        if b > hi_s:
            out.append((hi_s + 1, b))
    return tuple(out)


def _encoded_len(cp: int) -> int:
    if cp < 0x80:
        return 1
    if cp < 0x800:
        return 2
    if cp < 0x10000:
        return 3
    return 4


def _split_same_length(lo: int, hi: int, out: list[tuple[tuple[int, int], ...]]) -> None:
    """Append sequences for ``lo..hi``, both encoded with the same number of bytes."""
    if lo > hi:
        return
    n = _encoded_len(lo)
    for i in range(1, n):
        m = (1 << (6 * i)) - 1
        if (lo & ~m) != (hi & ~m):
            if lo & m:
                _split_same_length(lo, lo | m, out)
                _split_same_length((lo | m) + 1, hi, out)
                return
            if (hi & m) != m:
                _split_same_length(lo, (hi & ~m) - 1, out)
                _split_same_length(hi & ~m, hi, out)
                return
    a = chr(lo).encode("utf-8")
    b = chr(hi).encode("utf-8")
    out.append(tuple(zip(a, b)))


def utf8_sequences(s: CodePointSet) -> list[tuple[tuple[int, int], ...]]:
    """Byte-range sequences that together match exactly the UTF-8 encodings of ``s``.

    Examples
    --------
    >>> utf8_sequences(((0x41, 0x5A),))
    [((65, 90),)]
    >>> utf8_sequences(((0xE9, 0xE9),))
    [((195, 195), (169, 169))]
    """
    out: list[tuple[tuple[int, int], ...]] = []
    bounds = (0x7F, 0x7FF, 0xFFFF, MAX_CODE_POINT)
    for a, b in s:
        lo = a
        for edge in bounds:
            if lo > b:
                break
            if lo <= edge:
                hi = min(b, edge)
                _split_same_length(lo, hi, out)
                lo = hi + 1
    return out
