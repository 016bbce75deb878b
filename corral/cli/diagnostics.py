"""Findings as data: the :class:`Diagnostic` type and its one renderer (text, or ``--format json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from corral.compiler.grammar_check import GrammarIssue

__all__ = ["Diagnostic", "error_diag", "issue_diag", "line_col", "source_line", "write_report"]


@dataclass
class Diagnostic:
    """One finding: where, how bad, what."""

    path: str
    line: int
    column: int
    severity: str  # "error", "warning" or "info"
    message: str
    source_line: str = ""
    length: int = 1

    def render(self) -> str:
        """``path:line:column: severity: message``, then the source line and a caret marker."""
        head = f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if not self.source_line:
            return head
        width = max(1, min(self.length, len(self.source_line) - self.column + 1))
        marker = " " * (self.column - 1) + "^" + "~" * (width - 1)
        return f"{head}\n  {self.source_line}\n  {marker}"


def line_col(text: str, char_index: int) -> tuple[int, int, str]:
    line = text.count("\n", 0, char_index) + 1
    start = text.rfind("\n", 0, char_index) + 1
    end = text.find("\n", char_index)
    return line, char_index - start + 1, text[start : end if end >= 0 else len(text)]


def source_line(text: str, line: int | None) -> str:
    if line is None:
        return ""
    lines = text.split("\n")
    return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""


def issue_diag(path: str, text: str, issue: GrammarIssue) -> Diagnostic:
    """A :class:`~corral.compiler.grammar_check.GrammarIssue` as a diagnostic with its source line."""
    return Diagnostic(
        path, issue.line or 1, issue.column or 1, issue.severity, issue.message,
        source_line(text, issue.line), issue.length,
    )


def error_diag(path: str, text: str, e: Exception) -> Diagnostic:
    """A corral error as a diagnostic: at its place for a located :class:`GrammarError`."""
    from corral import GrammarError

    if isinstance(e, GrammarError) and e.line is not None and e.source == text:
        return Diagnostic(path, e.line, e.column or 1, "error", e.message, source_line(text, e.line), e.length)
    return Diagnostic(path, 1, 1, "error", e.message if isinstance(e, GrammarError) else str(e))


def write_report(
    diags: list[Diagnostic], stats: list[dict[str, Any]], n_files: int, fmt: str, out: TextIO
) -> int:
    """Write ``corral check``'s report to ``out``; return the exit status (1 when there are errors).

    Parameters
    ----------
    diags:
        Every finding, in order.
    stats:
        One statistics dictionary per file (``path`` and ``kind``, then what was measured).
    n_files:
        How many files were checked.
    fmt:
        ``"text"`` (each diagnostic rendered, then the statistics and a summary line) or ``"json"``
        (one object: ``diagnostics``, ``stats``, ``errors``).
    out:
        Where to write.

    Returns
    -------
    int
        0 when no diagnostic is an error, else 1.
    """
    errors = sum(d.severity == "error" for d in diags)
    if fmt == "json":
        json.dump({"diagnostics": [asdict(d) for d in diags], "stats": stats, "errors": errors}, out, indent=2)
        out.write("\n")
    else:
        for d in diags:
            out.write(d.render() + "\n")
        for st in stats:
            if len(st) > 2:
                items = ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("path", "kind"))
                out.write(f"{st['path']}: {st['kind']}: {items}\n")
        warnings = sum(d.severity == "warning" for d in diags)
        out.write(f"{n_files} file(s) checked: {errors} error(s), {warnings} warning(s)\n")
    return 1 if errors else 0
