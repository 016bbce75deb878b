"""AWRS benchmark: constraint checks and time per token against full-mask sampling.

Two parts, in one run:

1. **Synthetic logits at Llama-3 size.** The real Llama-3 tokenizer (``--tokenizer``, default
   ``../shared/tokenizers/llama3``), a JSON Schema compiled against it, and two parser states: a
   string body (most tokens allowed) and the start of an enum value (few allowed). At each state,
   logits are drawn so that the allowed tokens hold a chosen share of the mass (the model's
   *agreement* with the constraint: 0.999 to 0.01); the script then draws ``--steps`` tokens with
   :func:`corral.runtime.sampling.awrs_step` and with full-mask sampling (build the mask, restrict,
   renormalise, draw) and reports the mean checks per token and the time per token of each. The
   masks are those a fresh matcher computes; the script clears nothing, so a mask computed once is
   cached and the mask column is the warm cost (the cold cost shows in part 2).
2. **SmolLM2 on CPU.** :func:`corral.sample` with ``method="awrs"`` against ``method="masked"``
   on a JSON Schema, a regex, and the bundled SQL and Python grammars (fresh compiles, so masks are
   built as generation reaches them): checks per token, wall time per token, and the time per token
   spent outside the model (the model's calls are timed and subtracted).

Run: ``python benchmarks/bench_awrs.py [--steps 300] [--samples 4] [--tokenizer PATH]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# measure this checkout's corral (a worktree, say), not an installed or editable one
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral
from corral.runtime.sampling import awrs_step, draw_masked

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit", "kelvin"]}},
    "required": ["name", "unit"],
}
AGREEMENTS = (0.999, 0.99, 0.9, 0.5, 0.1, 0.01)


def synthetic(vocab: corral.Vocabulary, steps: int) -> None:
    """Part 1: checks and time per token on Llama-3-size logits."""
    grammar = corral.compile_json_schema(SCHEMA, vocab, whitespace="compact")
    states = {"string body": b'{"name":"Ada', "enum start": b'{"name":"Ada","unit":'}
    print(f"Part 1: synthetic logits over {vocab.size:,} tokens (Llama-3), {steps} draws per cell\n")
    header = f"{'state':<12} {'allowed':>8} {'agreement':>9} {'checks/tok':>10} {'AWRS µs':>9} {'mask µs':>9} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for label, prefix in states.items():
        matcher = grammar.matcher()
        assert matcher.accept_bytes(prefix)
        allowed = corral.bitmask_to_bool(matcher.next_token_mask(), vocab.size)
        for agreement in AGREEMENTS:
            logits = rng.gumbel(size=vocab.size) * 2.0
            p = np.exp(logits - logits.max())
            p[allowed] *= agreement / p[allowed].sum()
            p[~allowed] *= (1 - agreement) / p[~allowed].sum()
            lp = np.log(p)
            checks = 0
            t0 = time.perf_counter()
            for _ in range(steps):
                checks += awrs_step(lp, matcher, rng).checks
            t_awrs = (time.perf_counter() - t0) / steps
            t0 = time.perf_counter()
            for _ in range(steps):
                mask = corral.bitmask_to_bool(matcher.next_token_mask(), vocab.size)
                draw_masked(lp, mask, rng)
            t_mask = (time.perf_counter() - t0) / steps
            print(f"{label:<12} {int(allowed.sum()):>8,} {agreement:>9} {checks / steps:>10.2f} {t_awrs * 1e6:>9.0f} "
                  f"{t_mask * 1e6:>9.0f} {t_mask / t_awrs:>7.2f}x")
    print()


class TimedLM:
    """Wraps a language model and adds up the time of its calls."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.vocab_size = lm.vocab_size
        self.seconds = 0.0

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """The wrapped model's log-probabilities, timed."""
        t0 = time.perf_counter()
        try:
            return self.lm.next_token_logprobs(contexts)
        finally:
            self.seconds += time.perf_counter() - t0


def real(samples: int, max_tokens: int) -> None:
    """Part 2: SmolLM2 with each constraint, AWRS against masked sampling."""
    import torch

    from corral.integrations.packaged import load_smollm2
    from corral.integrations.transformers import HFLanguageModel

    torch.set_num_threads(1)
    model, tok = load_smollm2()
    tasks: dict[str, tuple[str, str, Any]] = {
        "json schema": ("Describe the weather in Paris as JSON.", "schema", SCHEMA),
        "regex": ("Invent an email address for Jane Doe.", "regex", r"[a-z]{2,10}\.[a-z]{2,10}@[a-z]{3,10}\.(com|org|net)"),
        "sql": ("Write a SQL query that lists the names of customers from Paris.", "grammar", corral.grammars.load("sql")),
        "python": ("Write a Python function that adds two numbers.", "grammar", corral.grammars.load("python")),
    }
    print(f"Part 2: SmolLM2-135M-Instruct on CPU (1 torch thread), {samples} samples per method, max_tokens {max_tokens}\n")
    header = f"{'task':<12} {'method':<7} {'tokens':>6} {'checks/tok':>10} {'ms/tok':>7} {'non-model ms/tok':>16}"
    print(header)
    print("-" * len(header))
    for name, (prompt, kind, source) in tasks.items():
        for method in ("masked", "awrs"):
            inner = HFLanguageModel(model, tok)
            vocab = inner.vocabulary
            grammar = (corral.compile_json_schema(source, vocab) if kind == "schema"
                       else corral.compile_regex(source, vocab) if kind == "regex" else corral.compile_grammar(source, vocab))
            lm = TimedLM(inner)
            out = corral.sample(lm, grammar, samples, prompt_ids=inner.encode(prompt), method=method, seed=0,
                                max_tokens=max_tokens, batch_size=samples)
            st = out.stats
            per = st.seconds / st.tokens * 1e3
            outside = (st.seconds - lm.seconds) / st.tokens * 1e3
            print(f"{name:<12} {method:<7} {st.tokens:>6} {st.constraint_checks / st.tokens:>10.2f} {per:>7.1f} {outside:>16.2f}")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run both parts."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", default=str(Path(__file__).resolve().parents[2] / "shared" / "tokenizers" / "llama3"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--part", choices=("1", "2", "both"), default="both")
    args = ap.parse_args(argv)
    if args.part in ("1", "both"):
        from transformers import AutoTokenizer

        synthetic(corral.Vocabulary.from_hf(AutoTokenizer.from_pretrained(args.tokenizer)), args.steps)
    if args.part in ("2", "both"):
        real(args.samples, args.max_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
