"""Batch mask benchmark: ``corral.fill_next_token_bitmask`` with 1 thread against N threads.

A serving step needs the masks of every sequence of the batch; this measures filling one
``(8, words)`` bitmask for 8 sequences whose masks are *not cached*, on the Llama-3 vocabulary:

* ``json 8 schemas``: 8 different JSONSchemaBench schemas (the first of ``--data`` that compile,
  in bench_jsonschema's interleaved order), each sequence part-way through one of its valid
  instances (a different schema per request, the common serving batch);
* ``json 1 schema``: 8 sequences of one schema (the first whose valid instances reach 200
  characters) at different points of its instances;
* ``sql`` / ``python`` / ``json grammar``: 8 documents of one bundled grammar, each part-way.

Each sequence is walked to a random step computing its masks on the way (so the per-state layers
of its grammar are warm, as while generating), then before every timed fill the grammar's cached
masks are dropped (``CFGMaskStore.clear()``; ``--cold`` also drops the per-state layers): every
row is a miss. The fill is timed ``--reps`` times per thread count, alternating, and the median
is reported with the speedup of N threads over one; the rows are checked against one-thread rows.

With ``--gil-share`` it also profiles the one-thread fills and prints the share of their time
spent in the numba kernels that release the GIL (``scan_state``, ``remainder_step``,
``follow_passes``, and layer 3's ``close_set``, ``groups_of``, ``resolve_exits``) and the 2-thread speedup that share allows (Amdahl): on a machine whose cores
are busy with other work, the wall-clock speedup says little, the share still holds.

Run from the repository root::

    python benchmarks/bench_batch.py
    python benchmarks/bench_batch.py --threads 2 --reps 9 --cold
    python benchmarks/bench_batch.py --gil-share
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO_ROOT, os.path.join(REPO_ROOT, "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

import corral
import corral.grammars
from corral.runtime.engine import mask_store_for

DEFAULT_DATA = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "jsonschemabench-dev"))
DEFAULT_TOKENIZER = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "tokenizers", "llama3"))
BATCH = 8


def place(grammar: corral.CompiledGrammar, ids: list[int], rng: np.random.Generator) -> corral.Matcher | None:
    """A matcher of ``grammar`` walked (masks computed) to a random step of ``ids`` past the first
    quarter, or None when the grammar refuses the text."""
    if len(ids) < 4:
        return None
    k = int(rng.integers(len(ids) // 4, len(ids)))
    m = grammar.matcher()
    for t in ids[:k]:
        m.next_token_mask()
        if not m.accept_token(t):
            return None
    return m


def json_sequences(tok: Any, vocab: corral.Vocabulary, data: str, rng: np.random.Generator,
                   one_schema: bool) -> list[corral.Matcher]:
    from bench_jsonschema import data_files, load_items, serialise

    out: list[corral.Matcher] = []
    for item in load_items(data_files(None, data), None):
        texts = [serialise(t["data"]) for t in item.tests if t.get("valid")]
        texts = [t for t in texts if 24 <= len(t) <= 4000]
        if not texts or (one_schema and max(len(t) for t in texts) < 200):
            continue
        try:
            g = corral.compile_json_schema(item.schema, vocab, whitespace="flexible", timeout=5.0)
        except corral.CorralError:
            continue
        if one_schema:
            mine = [place(g, tok.encode(texts[i % len(texts)], add_special_tokens=False), rng) for i in range(BATCH)]
            if all(m is not None for m in mine):
                return mine  # type: ignore[return-value]
            continue
        m = place(g, tok.encode(texts[0], add_special_tokens=False), rng)
        if m is not None:
            out.append(m)
        if len(out) >= BATCH:
            return out[:BATCH]
    raise SystemExit("not enough JSON schemas with valid instances in --data")


def grammar_sequences(tok: Any, vocab: corral.Vocabulary, name: str, rng: np.random.Generator) -> list[corral.Matcher]:
    from bench_cfg import documents

    g = corral.compile_grammar(corral.grammars.load(name), vocab)
    docs = documents(name)
    out: list[corral.Matcher] = []
    i = 0
    while len(out) < BATCH and i < 4 * BATCH:
        m = place(g, tok.encode(docs[i % len(docs)], add_special_tokens=False), rng)
        if m is not None:
            out.append(m)
        i += 1
    return out


def clear(matchers: list[corral.Matcher], cold: bool) -> None:
    for store in {id(s): s for s in (mask_store_for(m.grammar) for m in matchers)}.values():
        store.clear(states=cold)  # type: ignore[union-attr]


def measure(matchers: list[corral.Matcher], threads: int, reps: int, cold: bool) -> dict[str, float]:
    bm1 = corral.allocate_token_bitmask(len(matchers), matchers[0].grammar.vocab.size)
    bmn = bm1.copy()
    t1: list[float] = []
    tn: list[float] = []
    seq_sum: list[float] = []
    for _ in range(reps):
        clear(matchers, cold)
        # the same misses one at a time (per-row times: the sum is the serial cost)
        s = 0.0
        for m in matchers:
            a = time.perf_counter()
            m.next_token_mask()
            s += time.perf_counter() - a
        seq_sum.append(s)
        for n, out, bm in ((1, t1, bm1), (threads, tn, bmn)):
            clear(matchers, cold)
            a = time.perf_counter()
            corral.fill_next_token_bitmask(matchers, bm, threads=n)
            out.append(time.perf_counter() - a)
        if not np.array_equal(bm1, bmn):
            raise SystemExit("rows differ between 1 thread and N threads")
    one, many = statistics.median(t1), statistics.median(tn)
    return {"serial_ms": statistics.median(seq_sum) * 1e3, "t1_ms": one * 1e3, "tn_ms": many * 1e3,
            "speedup": one / many}


KERNELS = ("scan_state", "remainder_step", "follow_passes", "close_set", "groups_of", "resolve_exits")


def gil_share(matchers: list[corral.Matcher], reps: int, cold: bool) -> tuple[float, float]:
    """One-thread fill time (ms) and the share of it inside GIL-free kernels (cProfile)."""
    import cProfile
    import pstats

    bm = corral.allocate_token_bitmask(len(matchers), matchers[0].grammar.vocab.size)
    pr = cProfile.Profile()
    for _ in range(reps):
        clear(matchers, cold)
        pr.enable()
        corral.fill_next_token_bitmask(matchers, bm, threads=1)
        pr.disable()
    stats = pstats.Stats(pr).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    kernels = sum(v[2] for k, v in stats.items() if k[2] in KERNELS)
    return total / reps * 1e3, kernels / total if total else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--cold", action="store_true", help="also drop the per-state layers before each fill")
    ap.add_argument("--scenarios", default="json8,json1,sql,python,json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gil-share", action="store_true", help="also print the GIL-free share of a fill")
    args = ap.parse_args(argv)

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = corral.Vocabulary.from_hf(tok)
    rng = np.random.default_rng(args.seed)
    corral.compile_grammar('start: "warm up numba"', vocab).matcher().next_token_mask()
    builders = {
        "json8": ("json 8 schemas", lambda: json_sequences(tok, vocab, args.data, rng, one_schema=False)),
        "json1": ("json 1 schema", lambda: json_sequences(tok, vocab, args.data, rng, one_schema=True)),
        "sql": ("sql grammar", lambda: grammar_sequences(tok, vocab, "sql", rng)),
        "python": ("python grammar", lambda: grammar_sequences(tok, vocab, "python", rng)),
        "json": ("json grammar", lambda: grammar_sequences(tok, vocab, "json", rng)),
    }
    print(f"cpus available: {len(os.sched_getaffinity(0))}; batch {BATCH}; {args.reps} reps; "
          f"{'cold stores' if args.cold else 'mask cache dropped, per-state layers warm'}")
    header = f"{'scenario':16} {'serial ms':>10} {'1 thread ms':>12} {f'{args.threads} threads ms':>14} {'speedup':>8}"
    if args.gil_share:
        header += f" {'nogil share':>12} {'2-thread bound':>15}"
    print(header)
    print("-" * len(header))
    for key in args.scenarios.split(","):
        label, build = builders[key]
        ms = build()
        r = measure(ms, args.threads, args.reps, args.cold)
        line = f"{label:16} {r['serial_ms']:10.2f} {r['t1_ms']:12.2f} {r['tn_ms']:14.2f} {r['speedup']:7.2f}x"
        if args.gil_share:
            _, p = gil_share(ms, 3, args.cold)
            line += f" {p:12.1%} {1 / ((1 - p) + p / 2):14.2f}x"
        print(line)
    print("\nserial: the same misses as 8 next_token_mask() calls in a row; speedup: 1 thread / N threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
