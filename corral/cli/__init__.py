"""The ``corral`` command line: check constraints before they reach a model, sample, generate.

::

    corral check FILE... [--kind K] [--start RULE] [--format text|json] [--tokenizer PATH] [--examples PATH]
                         [--lenient]
    corral sample FILE [-n N] [--seed S] [--max-bytes L] [--max-depth D] [--start RULE] [--lenient]
    corral compile FILE --tokenizer PATH [--start RULE] [--lenient]
    corral generate (--regex PATTERN | --grammar FILE | --schema FILE) [--start RULE] [--model ID]
                    [--max-new-tokens N] [--method masked|asap|awrs|smc] [-n N] [--temperature T]
                    [--seed S] [--draft auto|forced|lookup|none] PROMPT

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
import os
import sys
from typing import TextIO

from corral.cli.check import check_file
from corral.cli.check import cmd_check as _cmd_check  # looked up at each call (tests replace it)
from corral.cli.compile import cmd_compile as _cmd_compile
from corral.cli.diagnostics import Diagnostic
from corral.cli.files import KINDS, Progress, UsageError
from corral.cli.generate import cmd_generate as _cmd_generate
from corral.cli.sample import cmd_sample as _cmd_sample
from corral.errors import CorralError

__all__ = ["Diagnostic", "Progress", "UsageError", "check_file", "console_main", "main"]


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
    g.add_argument("--method", choices=("masked", "asap", "awrs", "smc"), default="masked",
                   help="masked decoding, or a sampler of the model conditioned on the constraint (docs/sampling.md)")
    g.add_argument("-n", "--num-samples", type=int, default=1,
                   help="outputs to print, one per line (smc: particles, one output drawn by weight)")
    g.add_argument("--temperature", type=float, default=None,
                   help="0 is greedy (default for masked with one output); the samplers default to 1")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--draft", choices=("auto", "forced", "lookup", "none"), default="auto",
                   help="speculative drafting (masked, one output): same output, fewer forward passes; "
                        "none: transformers' model.generate")
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
