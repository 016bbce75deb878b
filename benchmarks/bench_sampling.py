"""Sampling benchmark: masked decoding against grammar-aligned sampling (ASAp) on SmolLM2 (CPU).

Tasks like those of "Grammar-Aligned Decoding" (Park et al., 2024), each a prompt and a
constraint whose language the model only partly agrees with:

* ``sygus``: a SyGuS-style string-manipulation program (a small Lark grammar of ``str.++``,
  ``str.substr``, ``str.at``, variables and literals) for "first name, a space, last name";
* ``brackets``: a bracketed constituency parse of a short sentence (a Lark grammar);
* ``enum``: a JSON object whose ``language`` is an enum the model dislikes for the question
  ("What language do people speak in France?" with ``["Klingon", "Elvish", "Dothraki", "French
  Sign Language"]``).

For each task and method (``masked``, ``asap``) the script draws ``--samples`` samples with
:func:`corral.sample` (temperature 1, one :class:`~corral.integrations.transformers.HFLanguageModel`
per method so the key-value caches are not shared) and reports at 100, 500 and 1,000 samples
(those not above ``--samples``):

* **mean log-likelihood** of the outputs under the model (with EOS): higher means the sampler
  favours outputs the model itself finds likely;
* **KL estimate** ``KL(Q || P(· | valid)) ≈ mean(log Q(x) - log P(x)) + log Z`` over the last
  window of samples, where ``log Q`` is each sample's ``proposal_logprob`` (the exact probability
  the sampler drew it with) and ``Z = P(valid)`` is estimated without bias from the masked
  samples' importance weights ``P(x) / Q(x)``. It is 0 for an exact sampler of the conditional;
  an estimate, so small negative values are noise;
* **time per sample** and its ratio to masked decoding's, **forward passes** and the passes the
  ASAp trie saved (tokens drawn at prefixes whose distribution was already stored);
* the process's **peak RSS**.

Run: ``python benchmarks/bench_sampling.py [--samples 1000] [--tasks sygus,brackets,enum]``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from typing import Any

import numpy as np

# measure this checkout's corral (a worktree, say), not an installed or editable one
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral
from corral.integrations.packaged import load_smollm2
from corral.integrations.transformers import HFLanguageModel

SYGUS = r"""
start: s
s: "(str.++ " s " " s ")" | "(str.substr " s " " i " " i ")" | "(str.at " s " " i ")" | VAR | LIT
i: "0" | "1" | "2" | "(str.len " s ")" | "(+ " i " " i ")" | "(- " i " " i ")"
VAR: "firstname" | "lastname"
LIT: "\" \"" | "\".\""
"""

BRACKETS = r"""
start: "(S " np " " vp ")"
np: "(NP " det " " noun ")" | "(NP " noun ")"
vp: "(VP " verb " " np ")" | "(VP " verb ")"
det: "(DT the)" | "(DT a)"
noun: "(NN dog)" | "(NN cat)" | "(NN ball)"
verb: "(VB chased)" | "(VB saw)" | "(VB slept)"
"""

ENUM = {
    "type": "object",
    "properties": {"language": {"enum": ["Klingon", "Elvish", "Dothraki", "French Sign Language"]}},
    "required": ["language"],
    "additionalProperties": False,
}

TASKS: dict[str, tuple[str, str, Any]] = {
    "sygus": ("Write a SyGuS program over firstname and lastname that returns the first name, a space and the last name.", "grammar", SYGUS),
    "brackets": ("Give the bracketed constituency parse of: the dog chased a cat.", "grammar", BRACKETS),
    "enum": ("What language do people speak in France? Answer in JSON.", "schema", ENUM),
}
CHECKPOINTS = (100, 500, 1000)


def compile_task(kind: str, source: Any, vocab: corral.Vocabulary) -> corral.CompiledGrammar:
    """The task's constraint against ``vocab``."""
    if kind == "grammar":
        return corral.compile_grammar(source, vocab)
    return corral.compile_json_schema(source, vocab, whitespace="compact")


def log_z(masked: list[corral.Sample]) -> float:
    """log P(valid), estimated without bias from masked samples' weights P(x)/Q(x)."""
    lw = np.array([s.logprob - s.proposal_logprob for s in masked if s.complete])
    if lw.size == 0:
        return -math.inf
    m = float(lw.max())
    return m + math.log(float(np.exp(lw - m).sum()) / len(masked))


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its tables."""
    import torch

    torch.set_num_threads(args.threads)
    model, tok = load_smollm2()
    print(f"SmolLM2-135M-Instruct on CPU, {args.threads} torch thread(s); {args.samples} samples per task and method; "
          f"batch_size {args.batch_size}; max_tokens {args.max_tokens}\n")
    header = f"{'task':<9} {'method':<7} {'n':>5} {'mean logP':>10} {'KL est.':>8} {'s/sample':>9} {'ratio':>6} {'passes':>7} {'saved':>7}"
    print(header)
    print("-" * len(header))
    for name in args.tasks.split(","):
        prompt, kind, source = TASKS[name]
        results: dict[str, tuple[list[corral.Sample], list[tuple[int, float, int, int]]]] = {}
        for method in ("masked", "asap"):
            lm = HFLanguageModel(model, tok)
            grammar = compile_task(kind, source, lm.vocabulary)
            prompt_ids = lm.encode(prompt)
            samples: list[corral.Sample] = []
            marks: list[tuple[int, float, int, int]] = []  # (n, seconds, passes, tokens)
            sampler = corral.ASAp(lm, grammar, prompt_ids, max_tokens=args.max_tokens) if method == "asap" else None
            seconds = 0.0
            passes = tokens = 0
            seed = 0
            while len(samples) < args.samples:
                step = min(args.batch_size, args.samples - len(samples))
                started = time.perf_counter()
                if sampler is not None:
                    got = sampler.sample(step, seed=seed, batch_size=args.batch_size)
                else:
                    got = corral.sample(lm, grammar, step, prompt_ids=prompt_ids, seed=seed,
                                        max_tokens=args.max_tokens, batch_size=args.batch_size)
                seconds += time.perf_counter() - started
                passes += got.stats.forward_passes
                tokens += got.stats.tokens
                samples.extend(got)
                seed += 1
                if any(len(samples) - step < c <= len(samples) for c in CHECKPOINTS) or len(samples) == args.samples:
                    marks.append((len(samples), seconds, passes, tokens))
            results[method] = (samples, marks)
        z = log_z(results["masked"][0])
        masked_rate = results["masked"][1][-1][1] / results["masked"][1][-1][0]
        for method, (samples, marks) in results.items():
            prev = 0
            for n, secs, passes, tokens in marks:
                window = [s for s in samples[prev:n] if s.complete]
                prev = n
                mean_lp = float(np.mean([s.logprob for s in samples[:n] if s.complete]))
                kl = float(np.mean([s.proposal_logprob - s.logprob for s in window])) + z if window else math.nan
                per = secs / n
                saved = tokens - passes if method == "asap" else 0
                print(f"{name:<9} {method:<7} {n:>5} {mean_lp:>10.2f} {kl:>8.3f} {per:>9.3f} {per / masked_rate:>6.2f} {passes:>7} {saved:>7}")
        incomplete = {m: sum(not s.complete for s in r[0]) for m, r in results.items()}
        print(f"{'':<9} log Z = {z:.2f} (from masked weights); incomplete: {incomplete}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
