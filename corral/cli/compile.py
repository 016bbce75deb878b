"""``corral compile``: compile against a tokenizer and store the result in the disk cache."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, TextIO

from corral.cli.check import schema_diags
from corral.cli.diagnostics import error_diag
from corral.cli.files import kind_of, load_tokenizer, read_pattern, read_text

if TYPE_CHECKING:
    from corral import CompiledGrammar

__all__ = ["cmd_compile"]


def cmd_compile(args: argparse.Namespace, out: TextIO) -> int:
    from corral import Compiler, CorralError, Vocabulary
    from corral.compiler.cache import default_cache_dir

    kind = kind_of(args.file, args.kind)
    if kind == "json":
        return _compile_schema(args, out)
    if kind != "regex":
        text = read_text(args.file)
    vocab = Vocabulary.from_hf(load_tokenizer(args.tokenizer))
    t0 = time.perf_counter()
    if kind != "regex":
        try:
            grammar = Compiler(vocab, cache_dir=True).grammar(text, syntax=kind, start=args.start)
        except CorralError as e:
            out.write(error_diag(args.file, text, e).render() + "\n")
            return 1
        return _report_grammar(out, args.file, grammar, t0)
    try:
        grammar = Compiler(vocab, cache_dir=True).regex(read_pattern(args.file))
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

    text = read_text(args.file)
    diags, ir = schema_diags(args.file, text, lenient=args.lenient)
    out.writelines(d.render() + "\n" for d in diags)
    if ir is None:
        return 1
    vocab = Vocabulary.from_hf(load_tokenizer(args.tokenizer))
    t0 = time.perf_counter()
    try:
        grammar = Compiler(vocab, cache_dir=True).json_schema(text, lenient=args.lenient)
    except CorralError as e:
        out.write(error_diag(args.file, text, e).render() + "\n")
        return 1
    return _report_grammar(out, args.file, grammar, t0)


def _report_grammar(out: TextIO, path: str, grammar: CompiledGrammar, t0: float) -> int:
    """The one-line report of a grammar or schema put in the disk cache; exit status 0."""
    from corral.compiler.cache import default_cache_dir

    st = grammar.stats
    out.write(
        f"{path}: {st.states} states, {st.productions} productions, {st.terminals} terminals, "
        f"{st.cached_states} masks stored ({st.mask_bytes} bytes), "
        f"ready in {(time.perf_counter() - t0) * 1000:.1f} ms; cache: {default_cache_dir()}\n"
    )
    return 0
