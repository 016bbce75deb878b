"""Checking the arguments of matcher methods, so that misuse is a :class:`~corral.CorralError`.

Token ids may be ``int``, NumPy integers or anything else with ``__index__`` (a 0-d integer
tensor); floats, strings and ``None`` are refused rather than truncated by ``int()``. Text is
``bytes``-like; a ``str`` is refused (its encoding is the caller's choice, not corral's).
"""

from __future__ import annotations

import operator

from corral.errors import CorralError

__all__ = ["token_int", "token_index", "token_list", "byte_string", "step_count"]


def token_int(token_id: object) -> int:
    """``token_id`` as an ``int`` (any value: the caller decides what is in range).

    Raises
    ------
    CorralError
        If ``token_id`` is not an integer.

    Examples
    --------
    >>> token_int(3), token_int(-1)
    (3, -1)
    >>> token_int("3")
    Traceback (most recent call last):
    ...
    corral.errors.CorralError: a token id must be an integer, got str '3'
    """
    try:
        return operator.index(token_id)  # type: ignore[arg-type]
    except TypeError:
        raise CorralError(f"a token id must be an integer, got {type(token_id).__name__} {token_id!r}") from None


def token_index(token_id: object, size: int) -> int:
    """``token_id`` as an ``int`` in ``0 .. size - 1`` (the mask's width), or an error.

    Raises
    ------
    CorralError
        If ``token_id`` is not an integer (see :func:`token_int`) or lies outside the mask.

    Examples
    --------
    >>> token_index(3, 8)
    3
    >>> token_index(8, 8)
    Traceback (most recent call last):
    ...
    corral.errors.CorralError: token id 8 is outside the mask (ids 0 to 7)
    """
    t = token_int(token_id)
    if not 0 <= t < size:
        raise CorralError(f"token id {t} is outside the mask (ids 0 to {size - 1})")
    return t


def token_list(token_ids: object) -> list[int]:
    """``token_ids`` (any iterable of token ids) as a list of ``int``.

    Raises
    ------
    CorralError
        If ``token_ids`` is not iterable (or is ``str``/``bytes``) or holds a non-integer.
    """
    if isinstance(token_ids, (str, bytes, bytearray)):
        raise CorralError(f"token ids must be a sequence of integers, got {type(token_ids).__name__}")
    try:
        items = list(token_ids)  # type: ignore[call-overload]
    except TypeError:
        raise CorralError(f"token ids must be a sequence of integers, got {type(token_ids).__name__}") from None
    return [token_int(t) for t in items]


def byte_string(data: object) -> bytes:
    """``data`` (``bytes``, ``bytearray`` or ``memoryview``) as ``bytes``.

    Raises
    ------
    CorralError
        For anything else (a ``str`` included: encode it first, e.g. ``text.encode("utf-8")``).
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    hint = ' (encode it first: text.encode("utf-8"))' if isinstance(data, str) else ""
    raise CorralError(f"text must be bytes, got {type(data).__name__}{hint}")


def step_count(n: object) -> int:
    """``n`` (a number of steps, e.g. for ``rollback``) as an ``int``.

    Raises
    ------
    CorralError
        If ``n`` is not an integer.
    """
    try:
        return operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        raise CorralError(f"the number of steps must be an integer, got {type(n).__name__} {n!r}") from None
