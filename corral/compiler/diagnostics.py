"""Compile findings as data: the :class:`Diagnostic` the compilers emit (``CompiledGrammar.warnings``).

A diagnostic says *where* (a JSON pointer into a schema, or ``"line L, column C"`` of a source text),
*which keyword* (when one is to blame), *how bad* and *what*. Code that places or filters findings
(``corral check``) reads these fields; ``str(diagnostic)`` is the one wording for people.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RELAXED", "Diagnostic"]

RELAXED = "relaxed"
"""The ``code`` of a keyword relaxed under ``lenient=True`` (it would be an error otherwise)."""


@dataclass(frozen=True)
class Diagnostic:
    """One finding of a compiler.

    Attributes
    ----------
    location:
        A JSON pointer (``""`` is the schema's root, written ``"/"``), ``"line L, column C"``, or
        ``None`` when the finding has no single place.
    keyword:
        The JSON Schema keyword the finding is about, or ``None``.
    severity:
        ``"error"`` or ``"warning"``.
    message:
        What was found, without the location (and, for a relaxed keyword, without the keyword).
    code:
        What kind of finding it is, for code that must tell them apart: :data:`RELAXED`,
        ``"unknown-keyword"``, ``"unknown-format"``, ``"property-order"``, or ``""``.

    Examples
    --------
    >>> str(Diagnostic("/a", "format", "warning", "format 'idn-hostname' is not supported", code=RELAXED))
    "/a: format: format 'idn-hostname' is not supported (relaxed: lenient=True)"
    >>> str(Diagnostic("", "foo", "warning", "unknown keyword 'foo' ignored (as the spec says)"))
    "/: unknown keyword 'foo' ignored (as the spec says)"
    """

    location: str | None
    keyword: str | None
    severity: str
    message: str
    code: str = ""

    def __str__(self) -> str:
        text = self.message
        if self.code == RELAXED:
            text = f"{self.keyword}: {text} (relaxed: lenient=True)"
        if self.location is None:
            return text
        if self.location.startswith("line "):
            return f"{text} at {self.location}"
        return f"{self.location or '/'}: {text}"
