"""Static checks of a JSON Schema file, every finding placed in the file's text (for ``corral check``).

:func:`~corral.compiler.json_schema.compiler.schema_to_ir` speaks in JSON pointers: an unsupported
keyword is ``(pointer, keyword, reason)``, a malformed schema raises a :class:`GrammarError` whose
message starts with the pointer, and each warning is a :class:`~corral.compiler.diagnostics.Diagnostic`
with its pointer and keyword. :func:`schema_problems` collects them all. A linter must show *where in the
file* each one is, so this module indexes the JSON text (:func:`index_json`: the character span of
every value, and of its key for object members, by pointer) and places each finding there: the
caret goes under the keyword's key for keyword findings, under the value for malformed values.

=========  ==================================================================================
severity   finding
=========  ==================================================================================
error      the file is not JSON (at the decoder's line and column)
error      the schema is malformed (a ``type`` that is not a type, ``anyOf`` that is not an
           array, a ``pattern`` that does not compile, ...): each one, the check drops it and goes on
error      every keyword corral cannot enforce exactly (``format: idn-hostname``, ``not``, ``oneOf``
           whose branches may overlap, an unresolvable ``$ref`` ...); warnings with ``lenient``
error      no JSON value satisfies the schema
warning    an unknown keyword (ignored, as the spec says)
warning    a duplicate key in an object (JSON parsers keep the last one)
=========  ==================================================================================

:func:`check_schema` never raises: whatever the text, it returns findings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from json.decoder import scanstring  # type: ignore[attr-defined]  # absent from typeshed
from typing import Any

from corral.compiler.analysis import productive_rules
from corral.compiler.diagnostics import RELAXED, Diagnostic
from corral.compiler.grammar_check import GrammarIssue
from corral.compiler.grammar_ir import GrammarIR
from corral.errors import CorralError, GrammarError, UnsupportedSchemaError

__all__ = ["JsonSpan", "SchemaCheck", "SchemaProblems", "check_schema", "index_json", "schema_problems"]

_WS = " \t\n\r"
# the scalars json.loads accepts (NaN and the infinities included, as Python's decoder allows them)
_SCALAR = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null|NaN|Infinity|-Infinity"
)
# keys under these keywords are names (of properties, definitions), not keywords
_NAME_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
              "dependentRequired", "dependencies"}


@dataclass(frozen=True)
class JsonSpan:
    """Where one JSON value sits in its text (0-based character offsets, ``end`` exclusive).

    ``key_start``/``key_end`` span the member's key, quotes included, when the value is an object
    member; they are ``None`` for array items and for the root.
    """

    start: int
    end: int
    key_start: int | None = None
    key_end: int | None = None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass
class _Container:
    pointer: str
    start: int
    key_start: int | None
    key_end: int | None
    is_object: bool
    count: int = 0
    keys: set[str] = field(default_factory=set)


def index_json(text: str) -> tuple[dict[str, JsonSpan], list[tuple[str, str, JsonSpan]]]:
    """The span of every value of a JSON text, by JSON pointer, and the duplicate keys.

    The scanner is iterative (no recursion limit) and accepts what :func:`json.loads` accepts.
    Of duplicate keys the last wins, as in :func:`json.loads`.

    Parameters
    ----------
    text:
        A JSON document.

    Returns
    -------
    tuple[dict[str, JsonSpan], list[tuple[str, str, JsonSpan]]]
        Spans by pointer (``""`` is the root; object keys escaped with ``~0``/``~1``), and each
        repeated key as ``(object pointer, key, span of the repeated member)``.

    Raises
    ------
    ValueError
        The text is not JSON.

    Examples
    --------
    >>> spans, dups = index_json('{"a": [1, {"b": null}]}')
    >>> spans["/a/1/b"]
    JsonSpan(start=16, end=20, key_start=11, key_end=14)
    """
    spans: dict[str, JsonSpan] = {}
    duplicates: list[tuple[str, str, JsonSpan]] = []
    stack: list[_Container] = []
    n = len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in _WS:
            i += 1
        return i

    def fail(i: int) -> ValueError:
        return ValueError(f"not JSON at character {i}")

    def member_key(i: int, c: _Container) -> tuple[int, tuple[str, int | None, int | None]]:
        """Read ``"key" :`` at ``i``; return the offset of the value and its (pointer, key span)."""
        if i >= n or text[i] != '"':
            raise fail(i)
        key, j = scanstring(text, i + 1)
        pointer = f"{c.pointer}/{_escape(key)}"
        if key in c.keys:
            duplicates.append((c.pointer, key, JsonSpan(i, j, i, j)))
        c.keys.add(key)
        k = skip(j)
        if k >= n or text[k] != ":":
            raise fail(k)
        return skip(k + 1), (pointer, i, j)

    i = skip(0)
    pending: tuple[str, int | None, int | None] = ("", None, None)
    while True:
        # a value starts at i
        if i >= n:
            raise fail(i)
        pointer, key_start, key_end = pending
        ch = text[i]
        closed_empty = False
        if ch in "{[":
            c = _Container(pointer, i, key_start, key_end, ch == "{")
            stack.append(c)
            i = skip(i + 1)
            if i < n and text[i] == ("}" if c.is_object else "]"):
                closed_empty = True
            elif c.is_object:
                i, pending = member_key(i, c)
                continue
            else:
                pending = (f"{pointer}/0", None, None)
                continue
        elif ch == '"':
            _, end = scanstring(text, i + 1)
            spans[pointer] = JsonSpan(i, end, key_start, key_end)
            i = end
        else:
            m = _SCALAR.match(text, i)
            if m is None:
                raise fail(i)
            spans[pointer] = JsonSpan(i, m.end(), key_start, key_end)
            i = m.end()
        # after a value: close containers, or move on to the next member
        while True:
            if not closed_empty:
                i = skip(i)
                if not stack:
                    if i != n:
                        raise fail(i)
                    return spans, duplicates
            closed_empty = False
            c = stack[-1]
            if i >= n:
                raise fail(i)
            if text[i] == ",":
                c.count += 1
                i = skip(i + 1)
                if c.is_object:
                    i, pending = member_key(i, c)
                else:
                    pending = (f"{c.pointer}/{c.count}", None, None)
                break
            if text[i] != ("}" if c.is_object else "]"):
                raise fail(i)
            stack.pop()
            spans[c.pointer] = JsonSpan(c.start, i + 1, c.key_start, c.key_end)
            i += 1


@dataclass
class SchemaCheck:
    """What :func:`check_schema` found.

    Attributes
    ----------
    issues:
        Every finding, in the order of their places in the text.
    schema:
        The parsed schema (floats as :class:`~decimal.Decimal`); ``None`` when the text is not JSON.
    ir:
        The compiled grammar IR when the schema compiled (even with warnings); ``None`` otherwise.
    warnings:
        The compiler's warnings, each a :class:`~corral.compiler.diagnostics.Diagnostic`.
    """

    issues: list[GrammarIssue]
    schema: Any = None
    ir: GrammarIR | None = None
    warnings: list[Diagnostic] = field(default_factory=list)


class _Placer:
    """Turns JSON pointers (and keywords under them) into line, column and length."""

    def __init__(self, text: str, spans: dict[str, JsonSpan]) -> None:
        self.text = text
        self.spans = spans

    def _at(self, start: int, end: int) -> tuple[int, int, int]:
        line = self.text.count("\n", 0, start) + 1
        column = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return line, column, max(1, end - start)

    def value(self, pointer: str) -> tuple[int, int, int]:
        """The value at ``pointer`` (or at its nearest existing ancestor); containers by their bracket."""
        sp = self.spans.get(pointer)
        while sp is None and pointer:
            pointer = pointer.rsplit("/", 1)[0]
            sp = self.spans.get(pointer)
        if sp is None:
            return 1, 1, 1
        container = self.text[sp.start : sp.start + 1] in ("{", "[")
        return self._at(sp.start, sp.start + 1 if container else sp.end)

    def key(self, pointer: str, keyword: str) -> tuple[int, int, int]:
        """The key ``keyword`` of the schema at ``pointer``.

        The compiler reports some keywords at a pointer they are not directly under (``allOf``
        parts are merged into their parent, an ``anyOf``'s siblings are folded into each branch),
        so when the key is not there, the first such key below ``pointer`` is taken (keys that are
        property or definition names excepted), then one beside an ancestor, then the value.
        """
        esc = _escape(keyword)
        sp = self.spans.get(f"{pointer}/{esc}")
        if sp is None or sp.key_start is None:
            below = [
                s for p, s in self.spans.items()
                if p.startswith(pointer + "/") and p.endswith("/" + esc) and s.key_start is not None
                and p[: -len(esc) - 1].rsplit("/", 1)[-1] not in _NAME_MAPS
            ]
            sp = min(below, key=lambda s: s.start) if below else None
        up = pointer
        while (sp is None or sp.key_start is None) and up:
            up = up.rsplit("/", 1)[0]
            sp = self.spans.get(f"{up}/{esc}")
        if sp is None or sp.key_start is None or sp.key_end is None:
            return self.value(pointer)
        return self._at(sp.key_start, sp.key_end)


def _issue(severity: str, message: str, where: tuple[int, int, int]) -> GrammarIssue:
    line, column, length = where
    return GrammarIssue(severity, message, line, column, length)


def _warning_issue(placer: _Placer, warning: Diagnostic) -> GrammarIssue:
    """A compiler warning placed in the text: under its keyword's key when one is to blame."""
    if warning.location is None:
        return _issue(warning.severity, str(warning), placer.value(""))
    pointer, keyword = warning.location, warning.keyword
    if warning.code == RELAXED:
        assert keyword is not None
        # "/a/$ref: cannot resolve ...", not "/a/$ref: $ref: cannot resolve ..."
        where = pointer if pointer.endswith("/" + _escape(keyword)) else f"{pointer or '/'}: {keyword}"
        message = f"{where}: {warning.message} (relaxed by --lenient)"
        return _issue(warning.severity, message, placer.key(pointer, keyword))
    if warning.code == "unknown-keyword" and keyword is not None:
        return _issue(warning.severity, str(warning), placer.key(pointer, keyword))
    return _issue(warning.severity, str(warning), placer.value(pointer))


@dataclass
class SchemaProblems:
    """Every problem :func:`schema_problems` found in a schema, by JSON pointer (no text positions).

    Attributes
    ----------
    malformed:
        Each malformed keyword as ``(pointer, error)``, in the order found (the pointer ``""`` when
        the error names none).
    unsupported:
        What cannot be enforced exactly, as :attr:`~corral.errors.UnsupportedSchemaError.problems`.
    fatal:
        A failure that stopped the walk (a limit, a schema nested too deeply), or ``None``.
    stopped:
        Whether stepping past malformed keywords stopped before the rest of the schema was seen.
    warnings:
        The compiler's warnings (with ``warnings=True``; for unsupported schemas, those of a lenient
        walk, relaxations left out).
    ir:
        The grammar IR when the schema (what is left of it) compiled, else ``None``.
    """

    malformed: list[tuple[str, GrammarError]] = field(default_factory=list)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)
    fatal: str | None = None
    stopped: bool = False
    warnings: list[Diagnostic] = field(default_factory=list)
    ir: GrammarIR | None = None


def _exists(schema: Any, pointer: str) -> bool:
    node = schema
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _pointer_of(message: str, schema: Any) -> str:
    """The JSON pointer a malformed-schema message starts with (``"<pointer>: ..."``), or ``""``.

    The longest prefix before a ``": "`` that is a place in ``schema`` (a key may hold ``": "``).
    """
    if not message.startswith("/"):
        return ""
    cuts = [m.start() for m in re.finditer(": ", message)]
    if not cuts:
        return ""
    known = [c for c in cuts if message[:c] == "/" or _exists(schema, message[:c])]
    pointer = message[: known[-1] if known else cuts[0]]
    return "" if pointer == "/" and not _exists(schema, "/") else pointer


def schema_problems(schema: Any, options: Any, *, warnings: bool = False) -> SchemaProblems:
    """Every problem of a parsed schema, each with its JSON pointer; never raises.

    A malformed keyword stops the compiler: it is recorded, dropped from a copy of the schema and
    the schema compiled again, so one call finds every malformed keyword and then what else the rest
    holds (up to :data:`MAX_MALFORMED` of them). :func:`check_schema` places the findings in the text;
    :func:`~corral.compiler.json_schema.compiler.compile_json_schema` raises them as one error.

    Parameters
    ----------
    schema:
        The parsed schema.
    options:
        The :class:`~corral.compiler.json_schema.compiler.SchemaOptions` to compile with.
    warnings:
        Also collect the compiler's warnings (for an unsupported schema this takes one more walk).

    Returns
    -------
    SchemaProblems

    Examples
    --------
    >>> from corral.compiler.json_schema.compiler import SchemaOptions
    >>> found = schema_problems({"type": 3, "format": "idn-hostname"}, SchemaOptions())
    >>> [e.message for _, e in found.malformed], found.unsupported
    (['/type: must be a string or an array of strings'], [('', 'format', "format 'idn-hostname' is not supported")])
    """
    import dataclasses

    from corral.compiler.json_schema.compiler import schema_to_ir

    found = SchemaProblems()
    tried: list[str] = []
    while True:
        try:
            found.ir, found.warnings = schema_to_ir(schema, options)
            break
        except GrammarError as e:
            at = _pointer_of(e.message, schema)
            found.malformed.append((at, e))
            tried.append(at)
            schema = _without(schema, at, tried) if len(tried) < MAX_MALFORMED else None
            if schema is None:
                found.stopped = True
                break
        except UnsupportedSchemaError as e:
            found.unsupported = list(e.problems)
            if warnings:  # the warnings (unknown keywords) of the same walk: the lenient one visits the same nodes
                try:
                    _, lenient_warnings = schema_to_ir(schema, dataclasses.replace(options, lenient=True))
                    found.warnings = [w for w in lenient_warnings if w.code != RELAXED]
                except Exception:  # noqa: BLE001 - the errors above are what matters
                    found.warnings = []
            break
        except CorralError as e:
            found.fatal = str(e)
            break
        except RecursionError:
            found.fatal = "the schema is nested too deeply to compile"
            break
        except Exception as e:  # noqa: BLE001 - a checker reports, it does not crash
            found.fatal = f"internal error while compiling the schema ({type(e).__name__}: {e}); please report it"
            break
    return found


def _productive(ir: GrammarIR) -> bool:
    """Whether the start rule derives some sentence (every schema terminal matches something)."""
    term_ok = {t for t, d in ir.terminals.items() if d.dfa is None or bool(d.dfa.accepting.any())}
    return ir.start in productive_rules(ir.rules, term_ok)


def check_schema(text: str, *, lenient: bool = False, whitespace: str = "flexible") -> SchemaCheck:
    """Every problem of a JSON Schema file, placed in its text; never raises.

    Parameters
    ----------
    text:
        The file's text.
    lenient:
        Compile leniently: what cannot be enforced exactly is relaxed and reported as warnings.
    whitespace:
        The compiler's whitespace mode for the returned IR (``"flexible"`` or ``"compact"``).

    Returns
    -------
    SchemaCheck
        The findings (errors, then the compiler's warnings, in text order) and, when the schema
        compiled, its IR.

    Examples
    --------
    >>> found = check_schema('{"type": "string",\\n "format": "idn-hostname"}')
    >>> [(i.line, i.column, i.message) for i in found.issues]  # doctest: +NORMALIZE_WHITESPACE
    [(2, 2, "/: format: format 'idn-hostname' is not supported (--lenient relaxes it)")]
    """
    from corral.compiler.json_schema.compiler import SchemaOptions

    try:
        schema = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as e:
        return SchemaCheck([GrammarIssue("error", f"not valid JSON: {e.msg}", e.lineno, e.colno)])
    except RecursionError:
        return SchemaCheck([GrammarIssue("error", "not readable: the JSON is nested too deeply", 1, 1)])
    except ValueError as e:  # e.g. an integer literal past Python's digit limit
        return SchemaCheck([GrammarIssue("error", f"not valid JSON: {e}", 1, 1)])
    try:
        spans, duplicates = index_json(text)
    except (ValueError, IndexError):  # pragma: no cover - json.loads accepted it, so the scanner does
        spans, duplicates = {}, []
    placer = _Placer(text, spans)
    issues: list[GrammarIssue] = []
    for parent, key, sp in duplicates:
        assert sp.key_start is not None and sp.key_end is not None
        issues.append(_issue(
            "warning", f"{parent or '/'}: duplicate key {key!r}: only its last value counts",
            placer._at(sp.key_start, sp.key_end),
        ))
    result = SchemaCheck(issues, schema)
    found = schema_problems(schema, SchemaOptions(whitespace=whitespace, lenient=lenient), warnings=True)
    for at, bad in found.malformed:
        issues.append(_issue("error", bad.message, placer.value(at or "")))
    for pointer, keyword, why in found.unsupported:
        # "/a/$ref: cannot resolve ...", not "/a/$ref: $ref: cannot resolve ..."
        where = pointer if pointer.endswith("/" + _escape(keyword)) else f"{pointer or '/'}: {keyword}"
        issues.append(_issue("error", f"{where}: {why} (--lenient relaxes it)", placer.key(pointer, keyword)))
    if found.fatal is not None:
        issues.append(_issue("error", found.fatal, placer.value("")))
        return _done(result)
    if found.stopped:
        return _done(result)
    warnings, ir = found.warnings, found.ir
    seen: set[tuple[str, int | None, int | None]] = set()
    for w in warnings:
        issue = _warning_issue(placer, w)
        if (issue.message, issue.line, issue.column) not in seen:
            seen.add((issue.message, issue.line, issue.column))
            issues.append(issue)
    result.warnings = list(warnings)
    if ir is not None and not found.malformed:
        if _productive(ir):
            result.ir = ir
        else:
            issues.append(_issue("error", "the schema accepts no value at all", placer.value("")))
    return _done(result)


MAX_MALFORMED = 100
"""How many malformed keywords one check reports before it stops stepping past them."""


def _without(schema: Any, pointer: str, tried: list[str]) -> Any:
    """A copy of ``schema`` without the value at ``pointer`` (a malformed keyword), or ``None``.

    A member of an object is removed, an item of an array becomes ``true``. When the same pointer
    failed before (the stand-in did not help), the value one level up goes instead. ``None`` when
    nothing is left to remove (the root is malformed, or the pointer is not in the schema).
    """
    import copy

    while tried.count(pointer) > 1 and pointer:
        pointer = pointer.rsplit("/", 1)[0]
    if not pointer:
        return None
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    out = copy.deepcopy(schema)
    node = out
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = True
    else:
        return None
    return out


def _done(result: SchemaCheck) -> SchemaCheck:
    order = {"error": 0, "warning": 1, "info": 2}
    result.issues.sort(key=lambda i: (i.line or 0, i.column or 0, order.get(i.severity, 3), i.message))
    return result
