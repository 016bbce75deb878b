"""A schema given as Python objects must be a JSON document before anything compiles it.

``compile_json_schema`` takes a dict as well as JSON text, and a dict can hold what JSON cannot:
keys that are not strings, ``float("nan")`` and infinities (which ``json.loads`` also accepts as an
extension), sets, arbitrary objects. Letting them through makes the compiler fail deep inside with
``AttributeError`` or ``ValueError``; :func:`check_document` refuses them up front with a
:class:`~corral.errors.GrammarError` that names the JSON pointer.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from corral.errors import GrammarError

__all__ = ["check_document"]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def check_document(schema: Any) -> None:
    """Raise unless ``schema`` is a JSON document.

    JSON values are ``dict`` (string keys), ``list`` or ``tuple``, ``str``, ``bool``, ``None``, ``int``
    and finite ``float`` or ``Decimal``. The walk is iterative, so nesting depth does not matter.

    Parameters
    ----------
    schema:
        The parsed schema.

    Raises
    ------
    GrammarError
        At a value that is not JSON, with its JSON pointer (``/`` for the root).

    Examples
    --------
    >>> check_document({"type": "number", "maximum": float("nan")})
    Traceback (most recent call last):
    ...
    corral.errors.GrammarError: /maximum: NaN is not a JSON number (JSON has no NaN or infinities)
    """
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        pointer, value = stack.pop()
        if value is None or isinstance(value, (str, bool, int)):
            continue
        if isinstance(value, (float, Decimal)):
            if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
                nan = value.is_nan() if isinstance(value, Decimal) else math.isnan(value)
                spelled = "NaN" if nan else "Infinity" if value > 0 else "-Infinity"
                raise GrammarError(f"{pointer or '/'}: {spelled} is not a JSON number (JSON has no NaN or infinities)")
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise GrammarError(f"{pointer or '/'}: the key {k!r} is not a string (JSON object keys are strings)")
                stack.append((f"{pointer}/{_escape(k)}", v))
            continue
        if isinstance(value, (list, tuple)):
            stack.extend((f"{pointer}/{i}", v) for i, v in enumerate(value))
            continue
        raise GrammarError(f"{pointer or '/'}: a {type(value).__name__} is not a JSON value")
