"""The exceptions corral raises.

Every failure corral reports derives from :class:`CorralError`. Errors that point into a constraint's
source text (a regex, a grammar) are :class:`GrammarError` and render their location the same way
everywhere::

    lookahead (?=...) is not supported at line 1, column 4
      ab(?=c)
        ^~~~~
"""

from __future__ import annotations

__all__ = ["CorralError", "CorralWarning", "MissingDependencyError", "GrammarError", "CompileLimitError", "VocabularyError", "IncompleteGenerationError"]


class CorralError(Exception):
    """Root of every error corral raises."""


class CorralWarning(UserWarning):
    """Root of every warning corral emits (e.g. a disk-cache entry rejected and recompiled).

    Silence them with ``warnings.simplefilter("ignore", corral.CorralWarning)``.
    """


class MissingDependencyError(CorralError, ImportError):
    """An optional dependency a helper needs is not installed; the message names the extra."""


class VocabularyError(CorralError, ValueError):
    """A tokenizer could not be turned into an exact :class:`~corral.Vocabulary`."""


class CompileLimitError(CorralError):
    """Compiling a constraint exceeded a named limit (time, memory, states).

    Attributes
    ----------
    limit:
        The name of the limit that was exceeded, e.g. ``"max_states"`` or ``"timeout"`` (a field
        of :class:`~corral.Limits` where the limit is one).
    value:
        The limit's value at the time.
    where:
        What was being compiled when the limit was hit (a JSON pointer, a terminal, a line and
        column), or ``None`` when unknown.
    parameter:
        How to raise the limit (``"limits=corral.Limits(timeout=...)"``), or ``None``.
    """

    def __init__(
        self, message: str, *, limit: str, value: float, where: str | None = None, parameter: str | None = None
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.where = where
        self.parameter = parameter


class UnsupportedSchemaError(CorralError):
    """A JSON Schema uses keywords corral cannot enforce exactly.

    The message lists every such keyword, sorted, each with its JSON pointer; ``problems`` holds
    them as ``(pointer, keyword, reason)``. Compile with ``lenient=True`` to relax them instead
    (the relaxations come back as warnings).
    """

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = sorted(problems)
        lines = [f"  {ptr or '/'}: {kw}: {why}" for ptr, kw, why in self.problems]
        super().__init__("the schema uses what corral cannot enforce exactly:\n" + "\n".join(lines))


class GrammarError(CorralError, ValueError):
    """A constraint's source (regex, grammar, schema) is malformed or uses an unsupported feature.

    Parameters
    ----------
    message:
        What is wrong, without the location.
    source:
        The full source text, when known.
    pos:
        0-based character offset of the problem in ``source``.
    length:
        Number of characters the problem spans (for the marker under the source line).
    diagnostics:
        Every error found in the source, this one first, each a located :class:`GrammarError`
        (compiling reports all the errors of a grammar at once). Default: this error alone.

    Attributes
    ----------
    message, source, pos, line, column, length:
        ``line`` and ``column`` are 1-based; they are ``None`` when no position is known.
    diagnostics:
        A tuple of :class:`GrammarError`, this one first; ``str(error)`` renders them all, the
        first exactly as it renders alone, then ``and N more problem(s):`` and the others.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        pos: int | None = None,
        length: int = 1,
        diagnostics: tuple[GrammarError, ...] = (),
    ) -> None:
        self.message = message
        self.source = source
        self.pos = pos
        self.length = max(1, length)
        self.line: int | None = None
        self.column: int | None = None
        if source is not None and pos is not None:
            pos = max(0, min(pos, len(source)))
            self.pos = pos
            self.line = source.count("\n", 0, pos) + 1
            self.column = pos - (source.rfind("\n", 0, pos) + 1) + 1
        self.diagnostics: tuple[GrammarError, ...] = (self, *diagnostics[1:]) if diagnostics else (self,)
        text = self.render()
        if len(self.diagnostics) > 1:
            more = len(self.diagnostics) - 1
            text += f"\nand {more} more problem(s):\n" + "\n".join(d.render() for d in self.diagnostics[1:])
        super().__init__(text)

    def render(self) -> str:
        """The message with its location and a caret marker under the source line."""
        if self.line is None or self.source is None or self.pos is None:
            return self.message
        start = self.source.rfind("\n", 0, self.pos) + 1
        end = self.source.find("\n", self.pos)
        text = self.source[start : end if end >= 0 else len(self.source)]
        col = self.column or 1
        width = max(1, min(self.length, len(text) - col + 1))
        marker = " " * (col - 1) + "^" + "~" * (width - 1)
        return f"{self.message} at line {self.line}, column {col}\n  {text}\n  {marker}"


class IncompleteGenerationError(CorralError):
    """Generation stopped (token budget spent) before the output satisfied the constraint.

    Attributes
    ----------
    text:
        The partial output (a prefix of some valid output).
    token_ids:
        Its token ids.
    """

    def __init__(self, message: str, *, text: str, token_ids: list[int]) -> None:
        super().__init__(message)
        self.text = text
        self.token_ids = token_ids
