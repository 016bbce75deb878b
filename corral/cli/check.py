"""``corral check``: every finding of a regex, grammar or schema file, its statistics, its examples."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from corral.cli.diagnostics import Diagnostic, error_diag, issue_diag, line_col, write_report
from corral.cli.files import Progress, example_items, kind_of, load_tokenizer, read_pattern, read_text

if TYPE_CHECKING:
    from corral.compiler.grammar_ir import GrammarIR

__all__ = ["check_file", "cmd_check", "load_grammar_ir", "schema_diags"]

S = TypeVar("S")


def _check_examples(
    examples: str, initial: S, step: Callable[[S, int], S | None], accepting: Callable[[S], bool], what: str,
    *, instances: bool = False,
) -> list[Diagnostic]:
    """Run each example byte by byte: ``step(state, byte)`` gives the next state or ``None``.

    A valid example that is rejected is reported at its first offending character (or at its end
    when it stops short); an invalid one that is accepted is reported too. ``what`` names the
    constraint in messages; ``instances`` accepts JSON-instance lines (see :func:`example_items`).
    """
    diags: list[Diagnostic] = []
    for name, text, valid in Progress(example_items(examples, instances=instances), "examples"):
        data = text.encode("utf-8")
        state = initial
        bad_at = None
        for i, b in enumerate(data):
            following = step(state, b)
            if following is None:
                bad_at = i
                break
            state = following
        accepted = bad_at is None and accepting(state)
        if accepted == valid:
            continue
        if valid:
            if bad_at is None:
                msg = f"example is incomplete: the text ends before the {what} is satisfied"
                char_index = len(text)
            else:
                char_index = len(data[:bad_at].decode("utf-8", errors="ignore"))
                msg = f"example is rejected at {text[char_index:char_index + 1]!r}"
            line, col, src = line_col(text, char_index)
            diags.append(Diagnostic(name, line, col, "error", msg, src))
        else:
            diags.append(Diagnostic(name, 1, 1, "error", "example marked invalid is accepted"))
    return diags


def check_file(
    path: str, kind: str, *, tokenizer: Any = None, examples: str | None = None, start: str | None = None,
    lenient: bool = False,
) -> tuple[list[Diagnostic], dict[str, Any]]:
    """Check one constraint file; return its diagnostics and statistics.

    Parameters
    ----------
    path:
        The file.
    kind:
        ``"regex"``, ``"lark"``, ``"gbnf"`` or ``"json"``.
    tokenizer:
        When given, compile against its vocabulary and report statistics and dead ends.
    examples:
        A JSONL file or a directory of examples to run through the constraint.
    start:
        A grammar's start rule (default ``start`` for Lark, ``root`` for GBNF).
    lenient:
        JSON Schemas: relax what cannot be enforced exactly (reported as warnings, not errors).

    Returns
    -------
    tuple[list[Diagnostic], dict[str, Any]]

    Raises
    ------
    UsageError
        The file (or the examples) cannot be read.
    """
    from corral.compiler.limits import DEFAULT_LIMITS, budget_scope

    with budget_scope(DEFAULT_LIMITS):  # each file gets its own budget: time and memory
        if kind in ("lark", "gbnf"):
            return _check_grammar_file(path, kind, tokenizer=tokenizer, examples=examples, start=start)
        if kind == "json":
            return _check_schema_file(path, tokenizer=tokenizer, examples=examples, lenient=lenient)
        return _check_regex_file(path, tokenizer=tokenizer, examples=examples)


def _check_regex_file(
    path: str, *, tokenizer: Any = None, examples: str | None = None
) -> tuple[list[Diagnostic], dict[str, Any]]:
    from corral import CorralError, GrammarError, Vocabulary, compile_regex
    from corral.compiler.analysis import shortest_prefixes
    from corral.compiler.regex import regex_to_dfa

    diags: list[Diagnostic] = []
    stats: dict[str, Any] = {"path": path, "kind": "regex"}
    pattern = read_pattern(path)
    try:
        dfa = regex_to_dfa(pattern)
    except GrammarError as e:
        line, col = e.line or 1, e.column or 1
        src = pattern.split("\n")[line - 1] if pattern else ""
        diags.append(Diagnostic(path, line, col, "error", e.message, src, e.length))
        return diags, stats
    except CorralError as e:
        diags.append(Diagnostic(path, 1, 1, "error", str(e)))
        return diags, stats
    stats["states"] = dfa.n_states
    if tokenizer is not None:
        from corral.compiler.maskstore import token_trie

        vocab = Vocabulary.from_hf(tokenizer)
        t0 = time.perf_counter()
        token_trie(vocab)  # per-vocabulary work, shared by every grammar: timed apart
        t1 = time.perf_counter()
        grammar = compile_regex(pattern, vocab)
        stats.update(
            vocabulary_trie_ms=round((t1 - t0) * 1000, 2),
            compile_ms=round((time.perf_counter() - t1) * 1000, 2),
            cached_states=grammar.stats.cached_states,
            eager=grammar.stats.eager,
            mask_store_bytes=grammar.stats.mask_bytes,
            vocabulary=vocab.name,
        )
        prefixes = shortest_prefixes(dfa)
        from corral.runtime.engine import dfa_engine

        store = dfa_engine(grammar).store
        stuck = [s for s in sorted(prefixes) if store.count(s) == 0]
        for s in stuck[:5]:
            example = prefixes[s].decode("utf-8", errors="backslashreplace")
            diags.append(
                Diagnostic(
                    path, 1, 1, "warning",
                    f"after {example!r} no token of the vocabulary can continue: the model can never "
                    "complete such text",
                )
            )
        if len(stuck) > 5:
            diags.append(Diagnostic(path, 1, 1, "warning", f"{len(stuck) - 5} more such dead ends"))
    if examples is not None:

        def step(s: int, b: int) -> int | None:
            t = int(dfa.trans[s, b])
            return t if t >= 0 else None

        diags += _check_examples(examples, dfa.start, step, lambda s: bool(dfa.accepting[s]), "pattern")
    return diags, stats


def load_grammar_ir(text: str, kind: str, start: str | None) -> tuple[GrammarIR, dict[str, frozenset[str]]]:
    """The grammar with nothing dropped (for checking) and its terminal references.

    Raises
    ------
    GrammarError, CompileLimitError
        From the front end.
    """
    if kind == "lark":
        from corral.compiler.grammar_check import lark_check_ir

        return lark_check_ir(text, start=start or "start")
    from corral.compiler.gbnf import gbnf_to_ir

    return gbnf_to_ir(text, start=start or "root"), {}


def _vocabulary_with_trie(tokenizer: Any) -> tuple[Any, float]:
    """The tokenizer's vocabulary and the seconds its token trie took (per-vocabulary work, timed apart)."""
    from corral import Vocabulary
    from corral.compiler.maskstore import token_trie

    vocab = Vocabulary.from_hf(tokenizer)
    t0 = time.perf_counter()
    token_trie(vocab)
    return vocab, time.perf_counter() - t0


def _compiled_grammar_stats(
    path: str, grammar: Any, vocab: Any, trie_seconds: float, compile_ms: float, stats: dict[str, Any], what: str
) -> list[Diagnostic]:
    """Add a compiled grammar's (or schema's) statistics to ``stats``; warn when no token can start.

    Computing the first mask is the check that some token can start ``what``; it also puts a first
    entry in the mask store.
    """
    diags = []
    if not grammar.matcher().next_token_mask().any():
        diags.append(Diagnostic(
            path, 1, 1, "warning", f"no token of the vocabulary can start {what}: the model can never produce one",
        ))
    from corral.runtime.engine import earley_engine

    store = earley_engine(grammar).store  # grammars and schemas compile to a context-free result
    stats.update(
        states=grammar.stats.states,
        productions=grammar.stats.productions,
        vocabulary_trie_ms=round(trie_seconds * 1000, 2),
        compile_ms=compile_ms,
        cached_states=store.cached_states,
        mask_store_bytes=store.memory_bytes,
        vocabulary=vocab.name,
    )
    return diags


def _check_grammar_file(
    path: str, kind: str, *, tokenizer: Any = None, examples: str | None = None, start: str | None = None
) -> tuple[list[Diagnostic], dict[str, Any]]:
    from corral import CorralError
    from corral.compiler.grammar_check import (
        check_grammar,
        check_vocabulary,
        issue_order,
        load_for_check,
        reachable_part,
    )

    text = read_text(path)
    stats: dict[str, Any] = {"path": path, "kind": kind}
    try:  # every undefined symbol, then (when the rest loads) every other finding
        full, refs, load_errors = load_for_check(text, kind, start=start)
    except CorralError as e:  # a GBNF repetition or nesting limit
        return [error_diag(path, text, e)], stats
    issues = load_errors if full is None else load_errors + check_grammar(full, terminal_refs=refs)
    issues.sort(key=issue_order)
    diags = [issue_diag(path, text, issue) for issue in issues]
    if full is None or any(d.severity == "error" for d in diags):
        return diags, stats
    ir = reachable_part(full)
    stats.update(rules=len(ir.rules), terminals=len(ir.terminals))
    tables = None
    if tokenizer is not None:
        from corral.compiler.cfg import compile_ir
        from corral.compiler.program import EarleyProgram

        vocab, trie_seconds = _vocabulary_with_trie(tokenizer)
        t1 = time.perf_counter()
        try:
            grammar = compile_ir(ir, vocab, source=text)
        except CorralError as e:
            return diags + [error_diag(path, text, e)], stats
        compile_ms = round((time.perf_counter() - t1) * 1000, 2)
        diags += [issue_diag(path, text, issue) for issue in check_vocabulary(ir, vocab.token_bytes)]
        diags += _compiled_grammar_stats(path, grammar, vocab, trie_seconds, compile_ms, stats, "a sentence of the grammar")
        assert isinstance(grammar.program, EarleyProgram)  # compile_ir always gives a grammar-kind result
        tables = grammar.program.tables
    if examples is not None:
        diags += _examples_on_ir(path, text, ir, tables, examples, "grammar")
    return diags, stats


def _examples_on_ir(path: str, text: str, ir: Any, tables: Any, examples: str, what: str, *,
                    instances: bool = False) -> list[Diagnostic]:
    """:func:`_check_examples` with the recognizer of ``ir`` (``tables`` when already built)."""
    from corral import CorralError
    from corral.compiler.earley_tables import build_tables
    from corral.runtime.earley import Recognizer

    if tables is None:
        try:
            tables = build_tables(ir)
        except CorralError as e:
            return [error_diag(path, text, e)]
    rec = Recognizer(tables)
    return _check_examples(examples, rec.initial(), rec.step, lambda s: bool(s.accepting), what, instances=instances)


def schema_diags(path: str, text: str, *, lenient: bool, whitespace: str = "flexible") -> tuple[list[Diagnostic], Any]:
    """The findings of :func:`~corral.compiler.json_schema.check.check_schema` as diagnostics, and the IR.

    The IR is ``None`` when there are errors.
    """
    from corral.compiler.json_schema.check import check_schema

    found = check_schema(text, lenient=lenient, whitespace=whitespace)
    diags = [issue_diag(path, text, issue) for issue in found.issues]
    return diags, None if any(d.severity == "error" for d in diags) else found.ir


def _check_schema_file(
    path: str, *, tokenizer: Any = None, examples: str | None = None, lenient: bool = False
) -> tuple[list[Diagnostic], dict[str, Any]]:
    from corral import CorralError
    from corral.compiler.cfg import compile_ir
    from corral.compiler.program import EarleyProgram

    text = read_text(path)
    stats: dict[str, Any] = {"path": path, "kind": "json"}
    diags, ir = schema_diags(path, text, lenient=lenient)
    if ir is None:
        return diags, stats
    stats.update(rules=len(ir.rules), terminals=len(ir.terminals))
    tables = None
    if tokenizer is not None:
        vocab, trie_seconds = _vocabulary_with_trie(tokenizer)
        t1 = time.perf_counter()
        try:  # the IR the check already built: the schema is not lowered twice
            grammar = compile_ir(ir, vocab, kind="json_schema", source=text, options={"lenient": lenient})
        except CorralError as e:
            return diags + [error_diag(path, text, e)], stats
        compile_ms = round((time.perf_counter() - t1) * 1000, 2)
        diags += _compiled_grammar_stats(path, grammar, vocab, trie_seconds, compile_ms, stats, "a value of the schema")
        assert isinstance(grammar.program, EarleyProgram)
        tables = grammar.program.tables
    if examples is not None:
        diags += _examples_on_ir(path, text, ir, tables, examples, "schema", instances=True)
    return diags, stats


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else None
    all_diags: list[Diagnostic] = []
    all_stats = []
    for path in Progress(args.files, "checking"):
        diags, stats = check_file(
            path, kind_of(path, args.kind), tokenizer=tokenizer, examples=args.examples, start=args.start,
            lenient=args.lenient,
        )
        all_diags += diags
        all_stats.append(stats)
    return write_report(all_diags, all_stats, len(args.files), args.format, out)
