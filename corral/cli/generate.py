"""``corral generate``: one constrained generation with a model (by default the packaged SmolLM2)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from corral._optional import require
from corral.cli.check import schema_diags
from corral.cli.diagnostics import error_diag
from corral.cli.files import UsageError, kind_of, read_pattern, read_text

__all__ = ["cmd_generate", "compile_grammar_file"]


def compile_grammar_file(path: str, kind: str, vocab: Any, start: str | None) -> Any:
    """Compile a ``.lark`` / ``.gbnf`` file against ``vocab``.

    Raises
    ------
    CorralError
        From the front end or the compiler.
    """
    from corral import compile_grammar

    return compile_grammar(read_text(path), vocab, start=start, syntax=kind)


def cmd_generate(args: argparse.Namespace, out: TextIO) -> int:
    import corral

    regex = args.regex
    kind = None
    schema: Any = None
    if args.schema is not None:
        text = read_text(args.schema)
        diags, ir = schema_diags(args.schema, text, lenient=False)
        if ir is None:  # checked before loading a model: every problem, at its place
            out.writelines(d.render() + "\n" for d in diags)
            return 1
        schema = json.loads(text)
    elif args.grammar is not None:
        kind = kind_of(args.grammar, None)
        if kind == "regex":
            regex, kind = read_pattern(args.grammar), None
        elif kind not in ("lark", "gbnf"):
            raise UsageError(f"generating with {kind} files is not supported by this version (only regexes and grammars)")
        else:
            text = read_text(args.grammar)
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
            constraint = {"grammar": compile_grammar_file(args.grammar, kind, vocab, args.start)}
        except corral.CorralError as e:
            out.write(error_diag(args.grammar, text, e).render() + "\n")
            return 1
    n = getattr(args, "num_samples", 1)
    if n < 1:
        raise UsageError(f"-n must be at least 1, not {n}")
    method = getattr(args, "method", "masked")
    temperature = getattr(args, "temperature", None)
    if temperature is None:
        temperature = 0.0 if method == "masked" and n == 1 else 1.0
    options: dict[str, Any] = {"method": method, "num_samples": n, "temperature": temperature,
                               "seed": getattr(args, "seed", None)}
    draft = getattr(args, "draft", "auto")
    options["draft"] = None if draft == "none" else draft
    try:
        got = corral.generate(model, tok, args.prompt, max_new_tokens=args.max_new_tokens, **options, **constraint)
    except corral.CorralError as e:
        out.write(f"error: {e}\n")
        return 1
    for result in got if isinstance(got, list) else [got]:
        if not result.complete:
            out.write(f"incomplete: {json.dumps(result.text, ensure_ascii=False)}\n")
        elif schema is not None:
            out.write(json.dumps(result.value, ensure_ascii=False) + "\n")
        else:
            out.write(result.text + "\n")
    return 0
