"""What the run-time checks cost per step: ``uniqueItems`` and ``property_order="any"`` past 8 keys.

Each scenario walks one document token by token (the tokenizer's own encoding) over a fresh
matcher, twice per repetition: with the check and with the same schema without it (no
``uniqueItems``; ``property_order="schema"`` with the keys written in schema order). Masks are
computed cold on the first repetition and from the grammar's cache afterwards, so the numbers show
both the grammar's mask and the reader's extra work on top of it. Reported per scenario: mask
time median, p90, p99, max and mean (µs) over all steps of the warm repetitions, the first
repetition's mean, compile ms, and the ratio of the means.

    python benchmarks/bench_runtime_checks.py [--tokenizer DIR] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

# measure this checkout's corral (a worktree, say), not an installed or editable one
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral

DEFAULT_TOKENIZER = "../shared/tokenizers/llama3"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _walk(grammar: corral.CompiledGrammar, tokens: list[int]) -> list[float]:
    m = grammar.matcher()
    out = []
    for t in tokens:
        t0 = time.perf_counter()
        mask = m.next_token_mask()
        out.append((time.perf_counter() - t0) * 1e6)
        if not (int(mask[t >> 5]) >> (t & 31)) & 1 or not m.accept_token(t):
            raise SystemExit(f"the document is refused at token {t}")
    return out


def scenarios() -> list[tuple[str, dict[str, Any], dict[str, Any], Any, dict[str, Any]]]:
    """(name, schema with the check, the same without, document, compile options with the check)."""
    tags = {"type": "array", "items": {"type": "string"}}
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
             "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]
    objs = {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                       "version": {"type": "string"}}}}
    props = {f"field_{i}": {"type": "integer"} for i in range(40)}
    big = {"type": "object", "properties": props, "required": ["field_3", "field_30"], "additionalProperties": False}
    doc_big = {f"field_{i}": i for i in reversed(range(0, 40, 3))}
    return [
        ("unique strings, 20 items", dict(tags, uniqueItems=True), tags, words, {}),
        ("unique enum, 5 of 8", dict(tags, items={"enum": words[:8]}, uniqueItems=True),
         dict(tags, items={"enum": words[:8]}), words[:5], {}),
        ("unique objects, 10 items", dict(objs, uniqueItems=True), objs,
         [{"name": w, "version": f"1.{i}"} for i, w in enumerate(words[:10])], {}),
        ("40 keys any order (14 written)", big, big, doc_big, {"property_order": "any"}),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = corral.Vocabulary.from_hf(tok)
    print(f"# tokenizer {args.tokenizer} ({vocab.size} ids); {args.reps} repetitions; masks in µs")
    print("| scenario | check | compile ms | steps | cold mean | median | p90 | p99 | max | mean |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, with_check, without, doc, opts in scenarios():
        rows = {}
        for label, schema, o, text in [
            ("with", with_check, opts, json.dumps(doc, separators=(",", ":"))),
            ("without", without, {"property_order": "schema"}, json.dumps(doc if not isinstance(doc, dict) else dict(sorted(
                doc.items(), key=lambda kv: int(kv[0].split("_")[1]))), separators=(",", ":"))),
        ]:
            t0 = time.perf_counter()
            g = corral.compile_json_schema(schema, vocab, whitespace="compact", **o)
            compile_ms = (time.perf_counter() - t0) * 1e3
            tokens = tok.encode(text, add_special_tokens=False)
            cold = _walk(g, tokens)
            warm: list[float] = []
            for _ in range(args.reps - 1):
                warm += _walk(g, tokens)
            rows[label] = statistics.mean(warm)
            print(f"| {name} | {label} | {compile_ms:.0f} | {len(tokens)} | {statistics.mean(cold):.0f} | "
                  f"{statistics.median(warm):.1f} | {_pct(warm, 0.9):.1f} | {_pct(warm, 0.99):.1f} | {max(warm):.0f} | "
                  f"{statistics.mean(warm):.1f} |")
        print(f"| {name} | ratio of warm means | | | | | | | | {rows['with'] / rows['without']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
