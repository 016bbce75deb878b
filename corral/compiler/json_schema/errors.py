"""The error the JSON Schema compilers raise for constraints they cannot compile exactly."""

from __future__ import annotations

from corral.errors import CorralError

__all__ = ["Inexpressible"]


class Inexpressible(CorralError):
    """A constraint cannot be compiled into an exact automaton within corral's limits.

    Raised for constructs that are not regular (a backreference or a lookaround in a ``pattern``)
    and for combinations whose exact automaton would exceed a named limit (a ``maxLength`` in the
    thousands combined with a ``pattern``, a numeric bound with too many digits). The message says
    which keyword or construct, why, and the limit. The JSON Schema compiler turns it into an
    :class:`~corral.errors.UnsupportedSchemaError` carrying the keyword's JSON pointer (or a warning
    under ``lenient=True``).
    """
