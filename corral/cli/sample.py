"""``corral sample``: random strings of a regex, sentences of a grammar, instances of a schema."""

from __future__ import annotations

import argparse
import json
import random
from typing import TextIO

from corral.cli.check import load_grammar_ir, schema_diags
from corral.cli.diagnostics import error_diag
from corral.cli.files import kind_of, read_pattern, read_text

__all__ = ["cmd_sample"]


def cmd_sample(args: argparse.Namespace, out: TextIO) -> int:
    from corral import CorralError
    from corral.compiler.regex import regex_to_dfa
    from corral.compiler.sentences import random_string

    kind = kind_of(args.file, args.kind)
    if kind in ("lark", "gbnf"):
        return _sample_grammar(args, kind, out)
    if kind == "json":
        return _sample_schema(args, out)
    try:
        dfa = regex_to_dfa(read_pattern(args.file))
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

    text = read_text(args.file)
    try:
        full, _ = load_grammar_ir(text, kind, args.start)
        tables = build_tables(reachable_part(full))
    except CorralError as e:
        out.write(error_diag(args.file, text, e).render() + "\n")
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

    text = read_text(args.file)
    diags, ir = schema_diags(args.file, text, lenient=args.lenient, whitespace="compact")
    if ir is None:
        out.writelines(d.render() + "\n" for d in diags)
        return 1
    try:
        tables = build_tables(ir)
    except CorralError as e:
        out.write(error_diag(args.file, text, e).render() + "\n")
        return 1
    rng = random.Random(args.seed)
    out.writelines(
        random_sentence(tables, rng, max_depth=args.max_depth).decode("utf-8", errors="backslashreplace") + "\n"
        for _ in range(args.n)
    )
    return 0
