"""The ``corral`` command line: check constraints before they reach a model, sample, generate.

::

    corral check FILE... [--kind K] [--start RULE] [--format text|json] [--tokenizer PATH] [--examples PATH]
                         [--lenient]
    corral sample FILE [-n N] [--seed S] [--max-bytes L] [--max-depth D] [--start RULE] [--lenient]
    corral compile FILE --tokenizer PATH [--start RULE] [--lenient]
    corral generate (--regex PATTERN | --grammar FILE | --schema FILE) [--start RULE] [--model ID]
                    [--max-new-tokens N] PROMPT

Exit status: 0 when nothing is wrong (warnings and notes allowed), 1 when errors were found, 2 for
a usage error.

A ``.regex`` or ``.txt`` file holds one pattern; its trailing newlines are not part of it (write
``\\n`` for a newline the output must end with). ``.lark`` files hold Lark grammars (start rule
``start``) and ``.gbnf`` files llama.cpp grammars (start rule ``root``); ``--start`` picks another
start rule. ``.json`` files hold JSON Schemas.

For grammars, ``check`` reports every finding of :mod:`corral.compiler.grammar_check` (unreachable
rules, rules that can never finish, unused terminals, terminals whose regex does not compile,
left recursion as a note), or the loader's syntax error; with ``--tokenizer`` it also compiles the
grammar, prints its statistics and warns about terminals the vocabulary can never spell.
``compile`` stores grammars and schemas in the disk cache too (their parser tables, see
:mod:`corral.compiler.artifact`), so a later ``corral.Compiler(vocab, cache_dir=True)`` loads them
without compiling.

For JSON Schemas, ``check`` reports every finding of :mod:`corral.compiler.json_schema.check`, each
at its place in the file: JSON syntax errors, a malformed schema, every keyword corral cannot
enforce exactly (errors; ``--lenient`` relaxes them into warnings), unknown keywords and duplicate
keys (warnings), and a schema no value satisfies. With ``--tokenizer`` it compiles the schema and
prints the same statistics as for grammars. Examples for schemas are JSON instances: files, JSONL
lines ``{"text": "..."}``, or ``{"instance": <value>, "valid": ...}`` (checked as ``json.dumps``
writes the value). ``sample`` prints random instances, compact, one per line; ``generate --schema``
prints the parsed value as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from corral._optional import require
from corral.errors import CorralError

if TYPE_CHECKING:
    from corral.compiler.grammar_check import GrammarIssue
    from corral.compiler.grammar_ir import GrammarIR

__all__ = ["main", "Diagnostic"]

S = TypeVar("S")

KINDS = {".regex": "regex", ".txt": "regex", ".lark": "lark", ".gbnf": "gbnf", ".json": "json"}


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


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


def _kind_of(path: str, forced: str | None) -> str:
    if forced:
        return forced
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise UsageError(
            f"cannot tell what {path} holds from its extension; pass --kind regex|lark|gbnf|json"
        )
    return kind


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:  # permissions, a device, a name too long, ...
        raise UsageError(f"{path}: cannot be read ({e.strerror or e})") from None


def _read_pattern(path: str) -> str:
    return _read_text(path).rstrip("\r\n")


def _load_tokenizer(spec: str) -> Any:
    _transformers = require("transformers", "corral (loading a tokenizer or model)")
    AutoTokenizer = _transformers.AutoTokenizer

    if spec == "smollm2":
        from corral import CorralError
        from corral.integrations.packaged import load_smollm2_tokenizer

        try:
            return load_smollm2_tokenizer()
        except CorralError as e:
            raise UsageError(str(e)) from None
    try:
        return AutoTokenizer.from_pretrained(spec)
    except Exception as e:  # transformers raises many types for a bad path or id
        raise UsageError(f"cannot load tokenizer {spec!r}: {e}") from None


def _example_items(spec: str, *, instances: bool = False) -> list[tuple[str, str, bool]]:
    """(name, text, expected valid) from a JSONL file or a directory of files.

    With ``instances`` (JSON Schemas), a JSONL line may also be ``{"instance": <value>}``: the
    text is the value as :func:`json.dumps` writes it.
    """
    p = Path(spec)
    if p.is_dir():
        return [
            (str(f), _read_text(str(f)), not f.name.startswith("invalid"))
            for f in sorted(p.iterdir())
            if f.is_file()
        ]
    if not p.exists():
        raise UsageError(f"{spec}: no such file or directory")
    items = []
    for i, line in enumerate(_read_text(spec).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{spec}:{i}: not JSON ({e.msg})") from None
        if isinstance(obj, str):
            obj = {"text": obj}
        if instances and isinstance(obj, dict) and "instance" in obj and "text" not in obj:
            obj = {**obj, "text": json.dumps(obj["instance"], ensure_ascii=False)}
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            expected = '{"text": "...", "valid": true}' + (', {"instance": ..., "valid": true}' if instances else "")
            raise UsageError(f"{spec}:{i}: expected {expected} or a JSON string")
        items.append((f"{spec}:{i}", obj["text"], bool(obj.get("valid", True))))
    return items


def _line_col(text: str, char_index: int) -> tuple[int, int, str]:
    line = text.count("\n", 0, char_index) + 1
    start = text.rfind("\n", 0, char_index) + 1
    end = text.find("\n", char_index)
    return line, char_index - start + 1, text[start : end if end >= 0 else len(text)]


def _source_line(text: str, line: int | None) -> str:
    if line is None:
        return ""
    lines = text.split("\n")
    return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""


def _issue_diag(path: str, text: str, issue: GrammarIssue) -> Diagnostic:
    """A :class:`~corral.compiler.grammar_check.GrammarIssue` as a diagnostic with its source line."""
    return Diagnostic(
        path, issue.line or 1, issue.column or 1, issue.severity, issue.message,
        _source_line(text, issue.line), issue.length,
    )


def _error_diag(path: str, text: str, e: Exception) -> Diagnostic:
    """A corral error as a diagnostic: at its place for a located :class:`GrammarError`."""
    from corral import GrammarError

    if isinstance(e, GrammarError) and e.line is not None and e.source == text:
        return Diagnostic(path, e.line, e.column or 1, "error", e.message, _source_line(text, e.line), e.length)
    return Diagnostic(path, 1, 1, "error", e.message if isinstance(e, GrammarError) else str(e))


class Progress:
    """A one-line progress bar on a terminal (``stream``, default stderr); silent when piped.

    Use as ``for x in Progress(items, "checking"):``. The bar is erased when the loop ends, so
    what the command prints stays plain.
    """

    def __init__(self, items: Any, label: str, *, stream: TextIO | None = None, total: int | None = None) -> None:
        self.items = list(items)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.total = total if total is not None else len(self.items)
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) and self.total > 1

    def _draw(self, done: int) -> None:
        width = 24
        filled = width * done // max(1, self.total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{' ' * (width - filled)}] {done}/{self.total}")
        self.stream.flush()

    def __iter__(self) -> Any:
        for i, x in enumerate(self.items):
            if self.enabled:
                self._draw(i)
            yield x
        if self.enabled:
            self._draw(self.total)
            self.stream.write("\r" + " " * (len(self.label) + 40) + "\r")
            self.stream.flush()


def _check_examples(
    examples: str, initial: S, step: Callable[[S, int], S | None], accepting: Callable[[S], bool], what: str,
    *, instances: bool = False,
) -> list[Diagnostic]:
    """Run each example byte by byte: ``step(state, byte)`` gives the next state or ``None``.

    A valid example that is rejected is reported at its first offending character (or at its end
    when it stops short); an invalid one that is accepted is reported too. ``what`` names the
    constraint in messages; ``instances`` accepts JSON-instance lines (see :func:`_example_items`).
    """
    diags: list[Diagnostic] = []
    for name, text, valid in Progress(_example_items(examples, instances=instances), "examples"):
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
            line, col, src = _line_col(text, char_index)
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
    pattern = _read_pattern(path)
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
        stuck = [s for s in sorted(prefixes) if grammar.store.count(s) == 0]
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


def _load_grammar_ir(text: str, kind: str, start: str | None) -> tuple[GrammarIR, dict[str, frozenset[str]]]:
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
    assert grammar.cfg is not None  # grammars and schemas compile to a context-free result
    store = grammar.cfg.store
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
    from corral import CorralError, GrammarError
    from corral.compiler.grammar_check import (
        GrammarIssue,
        check_grammar,
        check_vocabulary,
        reachable_part,
    )

    text = _read_text(path)
    stats: dict[str, Any] = {"path": path, "kind": kind}
    try:
        full, refs = _load_grammar_ir(text, kind, start)
    except GrammarError as e:
        return [_issue_diag(path, text, GrammarIssue.from_error(e))], stats
    except CorralError as e:  # a GBNF repetition or nesting limit
        return [_error_diag(path, text, e)], stats
    diags = [_issue_diag(path, text, issue) for issue in check_grammar(full, terminal_refs=refs)]
    if any(d.severity == "error" for d in diags):
        return diags, stats
    ir = reachable_part(full)
    stats.update(rules=len(ir.rules), terminals=len(ir.terminals))
    tables = None
    if tokenizer is not None:
        from corral.compiler.cfg import compile_ir

        vocab, trie_seconds = _vocabulary_with_trie(tokenizer)
        t1 = time.perf_counter()
        try:
            grammar = compile_ir(ir, vocab, source=text)
        except CorralError as e:
            return diags + [_error_diag(path, text, e)], stats
        compile_ms = round((time.perf_counter() - t1) * 1000, 2)
        diags += [_issue_diag(path, text, issue) for issue in check_vocabulary(ir, vocab.token_bytes)]
        diags += _compiled_grammar_stats(path, grammar, vocab, trie_seconds, compile_ms, stats, "a sentence of the grammar")
        assert grammar.cfg is not None  # compile_ir always gives a grammar-kind result
        tables = grammar.cfg.tables
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
            return [_error_diag(path, text, e)]
    rec = Recognizer(tables)
    return _check_examples(examples, rec.initial(), rec.step, lambda s: bool(s.accepting), what, instances=instances)


def _schema_diags(path: str, text: str, *, lenient: bool, whitespace: str = "flexible") -> tuple[list[Diagnostic], Any]:
    """The findings of :func:`~corral.compiler.json_schema.check.check_schema` as diagnostics, and the IR.

    The IR is ``None`` when there are errors.
    """
    from corral.compiler.json_schema.check import check_schema

    found = check_schema(text, lenient=lenient, whitespace=whitespace)
    diags = [_issue_diag(path, text, issue) for issue in found.issues]
    return diags, None if any(d.severity == "error" for d in diags) else found.ir


def _check_schema_file(
    path: str, *, tokenizer: Any = None, examples: str | None = None, lenient: bool = False
) -> tuple[list[Diagnostic], dict[str, Any]]:
    from corral import CorralError
    from corral.compiler.cfg import compile_ir

    text = _read_text(path)
    stats: dict[str, Any] = {"path": path, "kind": "json"}
    diags, ir = _schema_diags(path, text, lenient=lenient)
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
            return diags + [_error_diag(path, text, e)], stats
        compile_ms = round((time.perf_counter() - t1) * 1000, 2)
        diags += _compiled_grammar_stats(path, grammar, vocab, trie_seconds, compile_ms, stats, "a value of the schema")
        assert grammar.cfg is not None
        tables = grammar.cfg.tables
    if examples is not None:
        diags += _examples_on_ir(path, text, ir, tables, examples, "schema", instances=True)
    return diags, stats


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    tokenizer = _load_tokenizer(args.tokenizer) if args.tokenizer else None
    all_diags: list[Diagnostic] = []
    all_stats = []
    for path in Progress(args.files, "checking"):
        diags, stats = check_file(
            path, _kind_of(path, args.kind), tokenizer=tokenizer, examples=args.examples, start=args.start,
            lenient=args.lenient,
        )
        all_diags += diags
        all_stats.append(stats)
    errors = sum(d.severity == "error" for d in all_diags)
    if args.format == "json":
        json.dump({"diagnostics": [asdict(d) for d in all_diags], "stats": all_stats, "errors": errors}, out, indent=2)
        out.write("\n")
    else:
        for d in all_diags:
            out.write(d.render() + "\n")
        for st in all_stats:
            if len(st) > 2:
                items = ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("path", "kind"))
                out.write(f"{st['path']}: {st['kind']}: {items}\n")
        warnings = sum(d.severity == "warning" for d in all_diags)
        out.write(f"{len(args.files)} file(s) checked: {errors} error(s), {warnings} warning(s)\n")
    return 1 if errors else 0


def _compile_grammar_file(path: str, kind: str, vocab: Any, start: str | None) -> Any:
    """Compile a ``.lark`` / ``.gbnf`` file against ``vocab``.

    Raises
    ------
    CorralError
        From the front end or the compiler.
    """
    from corral import compile_grammar

    return compile_grammar(_read_text(path), vocab, start=start, syntax=kind)


def _cmd_sample(args: argparse.Namespace, out: TextIO) -> int:
    from corral import CorralError
    from corral.compiler.regex import regex_to_dfa
    from corral.compiler.sentences import random_string

    kind = _kind_of(args.file, args.kind)
    if kind in ("lark", "gbnf"):
        return _sample_grammar(args, kind, out)
    if kind == "json":
        return _sample_schema(args, out)
    try:
        dfa = regex_to_dfa(_read_pattern(args.file))
    except CorralError as e:
        out.write(f"{args.file}: error: {e}\n")
        return 1
    rng = random.Random(args.seed)
    for _ in range(args.n):
        out.write(json.dumps(random_string(dfa, rng, args.max_bytes).decode("utf-8"), ensure_ascii=False) + "\n")
    return 0


def _sample_grammar(args: argparse.Namespace, kind: str, out: TextIO) -> int:
    from corral import CorralError
    from corral.compiler.earley_tables import build_tables
    from corral.compiler.grammar_check import reachable_part
    from corral.compiler.sentences import random_sentence

    text = _read_text(args.file)
    try:
        full, _ = _load_grammar_ir(text, kind, args.start)
        tables = build_tables(reachable_part(full))
    except CorralError as e:
        out.write(_error_diag(args.file, text, e).render() + "\n")
        return 1
    rng = random.Random(args.seed)
    for _ in range(args.n):
        sentence = random_sentence(tables, rng, max_depth=args.max_depth)
        out.write(json.dumps(sentence.decode("utf-8", errors="backslashreplace"), ensure_ascii=False) + "\n")
    return 0


def _sample_schema(args: argparse.Namespace, out: TextIO) -> int:
    """Random instances of a JSON Schema, compact (no optional whitespace), one per line."""
    from corral import CorralError
    from corral.compiler.earley_tables import build_tables
    from corral.compiler.sentences import random_sentence

    text = _read_text(args.file)
    diags, ir = _schema_diags(args.file, text, lenient=args.lenient, whitespace="compact")
    if ir is None:
        out.writelines(d.render() + "\n" for d in diags)
        return 1
    try:
        tables = build_tables(ir)
    except CorralError as e:
        out.write(_error_diag(args.file, text, e).render() + "\n")
        return 1
    rng = random.Random(args.seed)
    out.writelines(
        random_sentence(tables, rng, max_depth=args.max_depth).decode("utf-8", errors="backslashreplace") + "\n"
        for _ in range(args.n)
    )
    return 0


def _cmd_compile(args: argparse.Namespace, out: TextIO) -> int:
    from corral import Compiler, CorralError, Vocabulary
    from corral.compiler.cache import default_cache_dir

    kind = _kind_of(args.file, args.kind)
    if kind == "json":
        return _compile_schema(args, out)
    if kind != "regex":
        text = _read_text(args.file)
    vocab = Vocabulary.from_hf(_load_tokenizer(args.tokenizer))
    t0 = time.perf_counter()
    if kind != "regex":
        try:
            grammar = Compiler(vocab, cache_dir=True).grammar(text, syntax=kind, start=args.start)
        except CorralError as e:
            out.write(_error_diag(args.file, text, e).render() + "\n")
            return 1
        st = grammar.stats
        out.write(
            f"{args.file}: {st.states} states, {st.productions} productions, {st.terminals} terminals, "
            f"{st.cached_states} masks stored ({st.mask_bytes} bytes), "
            f"ready in {(time.perf_counter() - t0) * 1000:.1f} ms; cache: {default_cache_dir()}\n"
        )
        return 0
    try:
        grammar = Compiler(vocab, cache_dir=True).regex(_read_pattern(args.file))
    except CorralError as e:
        out.write(f"{args.file}: error: {e}\n")
        return 1
    st = grammar.stats
    out.write(
        f"{args.file}: {st.states} states, {st.cached_states} masks stored ({st.mask_bytes} bytes), "
        f"ready in {(time.perf_counter() - t0) * 1000:.1f} ms; cache: {default_cache_dir()}\n"
    )
    return 0


def _compile_schema(args: argparse.Namespace, out: TextIO) -> int:
    """``corral compile FILE.json``: check, then compile against the tokenizer and report."""
    from corral import Compiler, CorralError, Vocabulary
    from corral.compiler.cache import default_cache_dir

    text = _read_text(args.file)
    diags, ir = _schema_diags(args.file, text, lenient=args.lenient)
    out.writelines(d.render() + "\n" for d in diags)
    if ir is None:
        return 1
    vocab = Vocabulary.from_hf(_load_tokenizer(args.tokenizer))
    t0 = time.perf_counter()
    try:
        grammar = Compiler(vocab, cache_dir=True).json_schema(text, lenient=args.lenient)
    except CorralError as e:
        out.write(_error_diag(args.file, text, e).render() + "\n")
        return 1
    st = grammar.stats
    out.write(
        f"{args.file}: {st.states} states, {st.productions} productions, {st.terminals} terminals, "
        f"{st.cached_states} masks stored ({st.mask_bytes} bytes), "
        f"ready in {(time.perf_counter() - t0) * 1000:.1f} ms; cache: {default_cache_dir()}\n"
    )
    return 0


def _cmd_generate(args: argparse.Namespace, out: TextIO) -> int:
    import corral

    regex = args.regex
    kind = None
    schema: Any = None
    if args.schema is not None:
        text = _read_text(args.schema)
        diags, ir = _schema_diags(args.schema, text, lenient=False)
        if ir is None:  # checked before loading a model: every problem, at its place
            out.writelines(d.render() + "\n" for d in diags)
            return 1
        schema = json.loads(text)
    elif args.grammar is not None:
        kind = _kind_of(args.grammar, None)
        if kind == "regex":
            regex, kind = _read_pattern(args.grammar), None
        elif kind not in ("lark", "gbnf"):
            raise UsageError(f"generating with {kind} files is not supported by this version (only regexes and grammars)")
        else:
            text = _read_text(args.grammar)
    if args.model:
        _transformers = require("transformers", "corral (loading a tokenizer or model)")
        AutoModelForCausalLM = _transformers.AutoModelForCausalLM
        AutoTokenizer = _transformers.AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(args.model)
        tok = AutoTokenizer.from_pretrained(args.model)
    else:
        from corral.integrations.packaged import load_smollm2

        try:
            model, tok = load_smollm2()
        except corral.CorralError as e:
            raise UsageError(str(e)) from None
    constraint: dict[str, Any] = {"regex": regex}
    if schema is not None:
        constraint = {"schema": schema}
    elif kind is not None:
        # the vocabulary corral.generate builds for this model, so the grammar fits its logits
        width = getattr(getattr(model, "config", None), "vocab_size", None)
        vocab = corral.Vocabulary.from_hf(tok, vocab_size=width if width and width >= len(tok) else None)
        try:
            constraint = {"grammar": _compile_grammar_file(args.grammar, kind, vocab, args.start)}
        except corral.CorralError as e:
            out.write(_error_diag(args.grammar, text, e).render() + "\n")
            return 1
    try:
        result = corral.generate(model, tok, args.prompt, max_new_tokens=args.max_new_tokens, **constraint)
    except corral.CorralError as e:
        out.write(f"error: {e}\n")
        return 1
    if schema is not None:
        out.write(json.dumps(result.value, ensure_ascii=False) + "\n")
    else:
        out.write(result.text + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="corral", description="Check, sample and run corral constraints.")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="validate constraint files and report every problem")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--kind", choices=sorted(set(KINDS.values())))
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument("--tokenizer", help="compile against this tokenizer (path, hub id, or 'smollm2') and print statistics")
    c.add_argument("--examples", help="JSONL of {\"text\", \"valid\"} or a directory of example files")
    c.add_argument("--start", help="a grammar's start rule (default: start for Lark, root for GBNF)")
    c.add_argument("--lenient", action="store_true",
                   help="JSON Schemas: relax what cannot be enforced exactly (warnings instead of errors)")
    s = sub.add_parser("sample", help="print random strings of the constraint's language")
    s.add_argument("file", metavar="FILE")
    s.add_argument("-n", type=int, default=5)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--max-bytes", type=int, default=40, help="regexes: after this many bytes, head for the shortest completion")
    s.add_argument("--max-depth", type=int, default=12,
                   help="grammars and schemas: past this derivation depth, take the shortest way out")
    s.add_argument("--start", help="a grammar's start rule")
    s.add_argument("--kind", choices=sorted(set(KINDS.values())))
    s.add_argument("--lenient", action="store_true", help="JSON Schemas: relax what cannot be enforced exactly")
    k = sub.add_parser("compile", help="compile against a tokenizer (regexes: and store the result in the disk cache)")
    k.add_argument("file", metavar="FILE")
    k.add_argument("--tokenizer", required=True, help="path, hub id, or 'smollm2'")
    k.add_argument("--start", help="a grammar's start rule")
    k.add_argument("--kind", choices=sorted(set(KINDS.values())))
    k.add_argument("--lenient", action="store_true", help="JSON Schemas: relax what cannot be enforced exactly")
    g = sub.add_parser("generate", help="run a constrained generation")
    g.add_argument("prompt")
    which = g.add_mutually_exclusive_group(required=True)
    which.add_argument("--regex", help="the output must fully match this pattern")
    which.add_argument("--grammar", metavar="FILE", help="the output must be a sentence of this .lark or .gbnf grammar")
    which.add_argument("--schema", metavar="FILE", help="the output must be a JSON value this JSON Schema accepts")
    g.add_argument("--start", help="the grammar's start rule")
    g.add_argument("--model", default=None, help="hub id or path (default: the packaged SmolLM2-135M-Instruct)")
    g.add_argument("--max-new-tokens", type=int, default=64)
    return ap


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status.

    0 clean, 1 errors found, 2 usage error (a file that cannot be read included), 3 an internal
    error (reported in one line; ``CORRAL_TRACEBACK=1`` shows the traceback), 130 interrupted.
    Nothing is reported as a traceback.
    """
    out = sys.stdout if out is None else out
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage message
        return 0 if e.code == 0 else 2
    try:
        if args.command == "check":
            return _cmd_check(args, out)
        if args.command == "sample":
            return _cmd_sample(args, out)
        if args.command == "compile":
            return _cmd_compile(args, out)
        return _cmd_generate(args, out)
    except UsageError as e:
        sys.stderr.write(f"corral: error: {e}\n")
        return 2
    except CorralError as e:  # a command let one through: still a message, not a traceback
        sys.stderr.write(f"corral: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("corral: interrupted\n")
        return 130
    except Exception as e:  # noqa: BLE001 - a bug in corral: one readable line, the traceback on request
        if os.environ.get("CORRAL_TRACEBACK"):
            raise
        first = str(e).strip().split("\n")[0][:500]
        sys.stderr.write(
            f"corral: internal error: {type(e).__name__}: {first}\n"
            "  please report it; set CORRAL_TRACEBACK=1 to see the traceback\n"
        )
        return 3


def console_main() -> None:
    """Entry point of the ``corral`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
