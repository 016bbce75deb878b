"""Context-free grammars: Lark EBNF (and GBNF) -> grammar IR -> :class:`~corral.CompiledGrammar`.

Lark grammars are read with Lark's own loader (``%import``, templates, ``~ n..m``, ``?rule``,
priorities all handled by Lark), then lowered to :class:`~corral.compiler.grammar_ir.GrammarIR`:
Lark's expanded BNF rules and its terminals, each terminal's regex taken from Lark
(``pattern.to_regexp()``, flags included).

Semantics (documented in ``docs/grammars.md``): the language is *scannerless*. A terminal stands for
the strings its regex fully matches; ``%ignore``d terminals may appear between any two terminals
and at both ends. This is the language Lark's Earley parser recognises with
``lexer="dynamic_complete"``; priorities only choose among parse trees, so they do not change it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import Any

from corral.compiler.compiled import CompiledGrammar, CompileStats
from corral.compiler.diagnostics import Diagnostic
from corral.compiler.earley_tables import build_tables
from corral.compiler.grammar_ir import GrammarIR, TerminalDef, source_offset
from corral.compiler.lark_adapter import lark_error_class, load_bnf, unexpected_input_position
from corral.compiler.limits import DEFAULT_LIMITS, Limits, budget_scope, entry_limits
from corral.compiler.maskstore import DEFAULT_CFG_MASK_CACHE_BYTES, token_trie
from corral.compiler.program import EarleyProgram
from corral.compiler.regex import RegexLimits
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError, GrammarError

__all__ = ["compile_grammar", "compile_ir", "lark_to_ir", "DEFAULT_GRAMMAR_TIMEOUT"]

DEFAULT_GRAMMAR_TIMEOUT = DEFAULT_LIMITS.timeout
"""Default limit, in seconds, on compiling one grammar."""

# Lark's common.ESCAPED_STRING uses a lookbehind and lazy quantifiers; under full-match semantics
# it would also match text with inner unescaped quotes. This is the language Lark's lexer gives it.
_LARK_ESCAPED_STRING = r'".*?(?<!\\)(\\\\)*?"'
_EXACT_ESCAPED_STRING = r'"(?:[^"\\\n]|\\[^\n])*"'


_DEF_RE = re.compile(r"^[ \t]*[?!]?([A-Za-z_][A-Za-z_0-9]*)(?:\.-?\d+)?(?:\{[^}\n]*\})?[ \t]*(?::|::=)", re.M)


def _definition_positions(source: str) -> dict[str, tuple[int, int]]:
    """(line, column) of each rule or terminal definition, found in one pass over the source."""
    out: dict[str, tuple[int, int]] = {}
    line_starts = [0] + [i + 1 for i, ch in enumerate(source) if ch == "\n"]
    import bisect

    for m in _DEF_RE.finditer(source):
        name = m.group(1)
        if name in out:
            continue
        off = m.start(1) - (1 if source[m.start(1) - 1: m.start(1)] in ("?", "!") else 0)
        line = bisect.bisect_right(line_starts, off)
        out[name] = (line, off - line_starts[line - 1] + 1)
    return out


def _import_error(text: str, e: OSError) -> GrammarError:
    """A :class:`GrammarError` at the ``%import`` whose grammar file Lark could not read."""
    filename = str(e.filename or "")
    module = re.sub(r"\.lark$", "", filename.replace("\\", "/").rsplit("/", 1)[-1])
    msg = (
        f"%import: cannot read the grammar file {filename!r} ({e.strerror or e}); Lark imports its "
        "bundled grammars (common, lark, python, unicode) and .lark files in the working directory"
    )
    hit = re.search(rf"^[ \t]*%import[ \t]+[.\w]*?\b{re.escape(module)}\b", text, re.M) if module else None
    if hit:
        pos = hit.start() + len(hit.group(0)) - len(hit.group(0).lstrip())
        return GrammarError(msg, source=text, pos=pos, length=len(hit.group(0).strip()))
    return GrammarError(msg)


def _lark_error(text: str, e: Exception) -> GrammarError:
    at = unexpected_input_position(e)
    if at is not None:
        msg = re.sub(r",? at line \d+,? col(?:umn)? \d+\.?$", "", str(e).split("\n")[0].strip())
        return GrammarError(f"grammar syntax error: {msg}", source=text, pos=source_offset(text, *at))
    msg = str(e).strip().split("\n")[0]
    m = re.search(r"line (\d+),? col(?:umn)? (\d+)", msg)
    if m:
        msg = re.sub(r"[ ,]*(?:at)?[ ,]*$", "", msg[: m.start()]) or msg
        return GrammarError(msg, source=text, pos=source_offset(text, int(m.group(1)), int(m.group(2))))
    # name the symbol when Lark's message mentions one, and point at its first use
    m = (re.search(r"(?:NonTerminal|Terminal)\('([^']+)'\)", msg) or re.search(r"'([A-Za-z_][\w]*)'", msg)
         or re.search(r": ([A-Za-z_]\w*)$", msg))
    if m:
        name = m.group(1)
        msg = re.sub(r"(?:NonTerminal|Terminal)\('([^']+)'\)", r"'\1'", msg)
        hit = re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text)
        if hit:
            return GrammarError(msg, source=text, pos=hit.start(), length=len(name))
    return GrammarError(msg)


_JSON_DIRECTIVE = re.compile(r"^[ \t]*%json[ \t]+([a-z_][a-z_0-9]*)[ \t]*", re.M)


def _extract_json_rules(text: str) -> tuple[str, dict[str, tuple[Any, int]]]:
    """Replace each ``%json rule_name <JSON Schema>`` directive by a rule standing for a declared
    terminal (same number of lines, so positions elsewhere stay right); return the schemas by
    marker name."""
    out: dict[str, tuple[Any, int]] = {}
    pieces: list[str] = []
    pos = 0
    for n, m in enumerate(_JSON_DIRECTIVE.finditer(text)):
        if m.start() < pos:
            continue
        try:
            schema, end = json.JSONDecoder().raw_decode(text, m.end())
        except json.JSONDecodeError as e:
            raise GrammarError(f"%json {m.group(1)}: the schema is not valid JSON: {e.msg}", source=text, pos=e.pos) from None
        marker = f"CORRAL_JSON_{n}"
        out[marker] = (schema, m.start())
        span = text[m.start():end]
        pieces.append(text[pos:m.start()])
        pieces.append(f"{m.group(1)}: {marker}\n%declare {marker}" + "\n" * max(0, span.count("\n") - 1))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces), out


def _embed_schema(rules: dict[str, list[tuple[str, ...]]], terminals: dict[str, TerminalDef], marker: str,
                  schema: Any) -> None:
    """Compile an embedded schema and splice its rules in place of its marker symbol."""
    from corral.compiler.json_schema.compiler import SchemaOptions, schema_to_ir

    sub, _ = schema_to_ir(schema, SchemaOptions())
    if sub.guards:
        from corral.errors import UnsupportedSchemaError

        raise UnsupportedSchemaError([("", "uniqueItems", "not supported in a schema embedded in a grammar (%json): "
                                           "the check runs on JSON text alone")])
    prefix = marker.lower() + "__"
    rename = {name: prefix + name for name in list(sub.rules) + list(sub.terminals)}
    top = sub.rules[sub.start][0][0]  # the value itself, without the trailing whitespace
    for name, alts in sub.rules.items():
        if name != sub.start:
            rules[rename[name]] = [tuple(rename[x] for x in alt) for alt in alts]
    for name, t in sub.terminals.items():
        if name != "WS_END":
            terminals[rename[name]] = TerminalDef(rename[name], t.pattern, dfa=t.dfa)
    for alts in rules.values():
        for i, alt in enumerate(alts):
            if marker in alt:
                alts[i] = tuple(rename[top] if x == marker else x for x in alt)


def lark_to_ir(text: str, *, start: str = "start") -> GrammarIR:
    """Read a Lark grammar with Lark's loader and lower it to a :class:`GrammarIR`.

    Raises
    ------
    GrammarError
        Lark rejects the grammar (syntax, undefined symbols, ...), with line and column when known.
    """
    LarkError = lark_error_class()
    if not isinstance(text, str):
        raise GrammarError(f"a grammar must be a str, not {type(text).__name__}")
    original = text
    text, embedded = _extract_json_rules(text)
    try:
        bnf = load_bnf(text, start)
    except LarkError as e:
        raise _lark_error(text, e) from None
    except OSError as e:  # an %import of a grammar file that does not exist or cannot be read
        raise _import_error(text, e) from None
    except (re.error, ValueError, TypeError, KeyError, AttributeError, AssertionError, RecursionError) as e:
        raise GrammarError(f"invalid grammar: {type(e).__name__}: {e}") from None
    positions_of = _definition_positions(text)
    terminals: dict[str, TerminalDef] = {}
    for t_name, pattern in bnf.terminals:
        if pattern == _LARK_ESCAPED_STRING:
            pattern = _EXACT_ESCAPED_STRING
        where = positions_of.get(t_name)
        terminals[t_name] = TerminalDef(t_name, pattern, *(where or (None, None)))
    rules: dict[str, list[tuple[str, ...]]] = {}
    positions: dict[str, tuple[int, int]] = {}
    for name, expansion in bnf.rules:
        rules.setdefault(name, []).append(expansion)
        if name not in positions and name in positions_of:
            positions[name] = positions_of[name]
    for marker, (schema, _) in embedded.items():
        _embed_schema(rules, terminals, marker, schema)
    text = original
    if start not in rules:
        raise GrammarError(f"the grammar has no rule named {start!r} (choose the start rule with start=, or --start)")
    for name, alts in rules.items():
        for alt in alts:
            for sym in alt:
                if sym not in rules and sym not in terminals:
                    hit = re.search(rf"%declare\b[^\n]*\b{re.escape(sym)}\b", text)
                    raise GrammarError(
                        f"terminal {sym} is declared with %declare but has no definition; "
                        "corral needs the text a terminal matches",
                        source=text, pos=hit.start() if hit else 0, length=len(hit.group(0)) if hit else 1,
                    )
    return GrammarIR(
        start=start,
        rules=rules,
        terminals=terminals,
        ignore=bnf.ignore,
        source=text,
        rule_positions=positions,
    )


def compile_ir(
    ir: GrammarIR,
    vocab: Vocabulary,
    *,
    kind: str = "grammar",
    source: str | None = None,
    options: dict[str, Any] | None = None,
    warnings: Iterable[Diagnostic] = (),
    max_states: int | None = None,
    timeout: float | None = None,
    mask_cache_bytes: int = DEFAULT_CFG_MASK_CACHE_BYTES,
    limits: Limits | None = None,
) -> CompiledGrammar:
    """Compile a :class:`GrammarIR` against ``vocab`` (the step shared by every surface syntax).

    Runs under the active budget, or a new one from ``limits``, ``max_states`` and ``timeout``
    when given (see :func:`~corral.compiler.limits.budget_scope`).

    Parameters
    ----------
    ir:
        The grammar.
    vocab:
        The tokenizer's :class:`~corral.Vocabulary`.
    kind, source, options, warnings:
        Recorded on the result (``source`` defaults to the IR's).
    max_states, timeout, limits:
        See :func:`compile_grammar`.
    mask_cache_bytes:
        Memory budget of each of the runtime's two mask caches.

    Returns
    -------
    CompiledGrammar
        Holding an :class:`~corral.compiler.program.EarleyProgram`.

    Raises
    ------
    CorralError
        When ``vocab`` is not a :class:`~corral.Vocabulary`.
    GrammarError, CompileLimitError
        As :func:`compile_grammar`.
    """
    if not isinstance(vocab, Vocabulary):
        raise CorralError(
            f"vocab must be a corral.Vocabulary, not {type(vocab).__name__}; "
            "build one with corral.Vocabulary.from_hf(tokenizer)"
        )
    with budget_scope(entry_limits(limits, max_states=max_states, timeout=timeout)) as budget:
        return _compile_ir(ir, vocab, kind, source, options, tuple(warnings), budget.limits.max_states,
                           mask_cache_bytes)


def _compile_ir(
    ir: GrammarIR, vocab: Vocabulary, kind: str, source: str | None, options: dict[str, Any] | None,
    warnings: tuple[Diagnostic, ...], max_states: int, mask_cache_bytes: int,
) -> CompiledGrammar:
    t0 = time.perf_counter()
    limits = RegexLimits(max_states=max_states)
    tables = build_tables(ir, limits)
    t1 = time.perf_counter()
    token_trie(vocab)  # what the runtime's mask store walks, built once per vocabulary
    t2 = time.perf_counter()
    stats = CompileStats(
        states=tables.n_states,
        mask_classes=0,
        cached_states=0,  # grammar masks are computed and cached as generation visits them
        eager=False,
        mask_bytes=0,
        automaton_seconds=t1 - t0,
        mask_seconds=t2 - t1,
        productions=len(tables.rhs),
        terminals=len(tables.terminals),
    )
    program = EarleyProgram(ir, tables, int(mask_cache_bytes), limits)
    return CompiledGrammar(
        kind=kind, source=ir.source if source is None else source, vocab=vocab, program=program, stats=stats,
        options=options, warnings=warnings,
    )


def compile_grammar(
    text: str,
    vocab: Vocabulary,
    *,
    start: str | None = None,
    syntax: str = "lark",
    max_states: int | None = None,
    timeout: float | None = None,
    mask_cache_bytes: int = DEFAULT_CFG_MASK_CACHE_BYTES,
    limits: Limits | None = None,
) -> CompiledGrammar:
    """Compile a context-free grammar into token masks over ``vocab``.

    Parameters
    ----------
    text:
        The grammar: Lark EBNF (``syntax="lark"``) or llama.cpp GBNF (``syntax="gbnf"``).
    vocab:
        The tokenizer's :class:`~corral.Vocabulary`.
    start:
        The start rule (default ``"start"`` for Lark, ``"root"`` for GBNF).
    syntax:
        ``"lark"`` or ``"gbnf"``.
    max_states:
        Limit on each terminal's automaton; overrides ``limits.max_states`` (default 100,000).
    timeout:
        Limit, in seconds, on compiling; overrides ``limits.timeout`` (default 30).
    mask_cache_bytes:
        Memory budget of each of the mask store's two caches (LRU).
    limits:
        Every limit of the compile (time, estimated memory, states); see :class:`~corral.Limits`.

    Returns
    -------
    CompiledGrammar
        ``kind == "grammar"``; its :meth:`~corral.CompiledGrammar.matcher` has the same API as a
        regex's.

    Raises
    ------
    GrammarError
        Syntax errors, undefined symbols, invalid or non-regular terminal regexes, an empty
        language; the message names the problem and its line and column. One error carries every
        error the grammar's check finds (``.diagnostics``, the front end's first error first).
    CompileLimitError
        A limit (``max_states``, ``timeout``, ``max_memory_bytes``, ...) exceeded; the message
        names the limit, its value, the terminal and how to raise it.

    Examples
    --------
    >>> from corral import Vocabulary
    >>> vocab = Vocabulary([b"(", b")", b"()", None], eos_token_ids=[3])
    >>> m = compile_grammar('start: "(" start ")" | ', vocab).matcher()
    >>> m.accept_token(0), m.accept_token(2), m.accept_token(1), m.is_accepting()
    (True, True, True, True)
    """
    run_limits = entry_limits(limits, max_states=max_states, timeout=timeout)
    with budget_scope(run_limits):
        try:
            if syntax == "lark":
                ir = lark_to_ir(text, start=start or "start")
            elif syntax == "gbnf":
                from corral.compiler.gbnf import gbnf_to_ir

                ir = gbnf_to_ir(text, start=start or "root")
            else:
                raise CorralError(f"unknown grammar syntax {syntax!r}: expected 'lark' or 'gbnf'")
        except GrammarError as e:
            raise _with_every_error(e, text, syntax, start) from None
        options = {"start": start, "syntax": syntax, "limits": run_limits, "mask_cache_bytes": mask_cache_bytes}
        return compile_ir(ir, vocab, source=text, options=options, mask_cache_bytes=mask_cache_bytes)


def _with_every_error(first: GrammarError, text: str, syntax: str, start: str | None) -> GrammarError:
    """``first`` (the front end's error) carrying every other error the grammar's check finds.

    The check (:func:`~corral.compiler.grammar_check.check_lark` or ``check_gbnf``) runs only on
    this failure path; ``first`` comes back unchanged when it is the only error or the check fails.
    """
    from corral.compiler.grammar_check import check_gbnf, check_lark

    if not isinstance(text, str) or first.source is None or first.pos is None:
        return first
    try:
        check = check_lark if syntax == "lark" else check_gbnf
        issues = check(text, start=start or ("start" if syntax == "lark" else "root"))
    except CorralError:
        return first
    others = [
        GrammarError(i.message, source=text, pos=source_offset(text, i.line, i.column or 1), length=i.length)
        if i.line is not None else GrammarError(i.message)
        for i in issues
        if i.severity == "error" and (i.message, i.line, i.column) != (first.message, first.line, first.column)
    ]
    if not others:
        return first
    return GrammarError(first.message, source=first.source, pos=first.pos, length=first.length,
                        diagnostics=(first, *others))
