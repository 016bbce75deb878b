"""Context-free grammar benchmark: corral against llguidance and xgrammar on the Llama-3 vocabulary.

For each bundled grammar (``corral.grammars``) and its corpus of real documents
(``tests/data/grammars/<name>/valid.txt``, documents separated by a ``----`` line):

* **compile time**: median over ``--compile-reps`` fresh compiles of the same grammar text.

  - corral: ``corral.compile_grammar(text, vocab)``; masks are computed lazily while walking.
  - llguidance: ``LLMatcher(tokenizer, LLMatcher.grammar_from_lark(text))`` (also lazy).
  - xgrammar: ``GrammarCompiler(info).compile_grammar(Grammar.from_lark(text))`` (eager mask cache).

* **per-token mask time**: each document is tokenized with the Hugging Face tokenizer
  (``add_special_tokens=False``; leading and trailing whitespace stripped so that peers that do not
  allow ignored text at the ends still take it) and walked token by token with a fresh matcher
  over *one* compiled grammar per engine (the serving situation: compile once, many requests).
  Each step times producing the full packed bitmask of allowed tokens, then advances by the
  document's token (untimed). Reported: mean, p50, p90, p99 and max in microseconds over all steps
  of all documents, for the first pass (``cold``: corral's signature cache starts empty) and for a second
  pass over the same documents (``warm``). The final step after the document is included.

  - corral: ``Matcher.next_token_mask()``;
  - llguidance: ``LLMatcher.unsafe_compute_mask_ptr`` into a preallocated buffer;
  - xgrammar: ``GrammarMatcher.fill_next_token_bitmask`` into a preallocated bitmask.

* **time to first mask** (``ttfm``): the median compile plus the first document's first mask.

* **the ten slowest masks** of the cold pass per engine: document, step, and for corral a cause
  read (untimed) from its mask store's counters around the step: ``mask-store hit``,
  ``mask-store miss: N vocab scan(s)`` (per-state layers computed, one numba pass over the
  vocabulary each), ``mask-store miss: earley + candidates``, ``first mask: engine setup + ...``,
  prefixed with ``gc pause N ms`` when Python's garbage collector ran during the step (a full
  collection walks every tracked object of the process: ~100 ms with torch and transformers loaded).

* **accepted**: documents whose every token was allowed and that ended accepting. A peer's
  grammar semantics can differ from corral's (llguidance lexes greedily with a longest-match lexer;
  xgrammar converts Lark to its own EBNF), so a document it rejects is counted, not hidden, and its
  steps after the rejection are not timed.

Run from the repository root::

    python benchmarks/bench_cfg.py
    python benchmarks/bench_cfg.py --grammars json,sql --json out.json
    python benchmarks/bench_cfg.py --tokenizer /path/to/llama3

The bar read against these numbers: corral's per-token mask p50 within 2x of llguidance's on the
JSON and SQL grammars (cold pass), and corral's compile time under 1 s for each bundled grammar.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# measure this checkout's corral (a worktree, say), not an installed or editable one
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral
import corral.grammars
from gc_pauses import GC_PAUSE_NS  # beside this script

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOKENIZER = ROOT.parent / "shared" / "tokenizers" / "llama3"


@dataclass
class Walk:
    """Timings of one engine over all documents of one grammar."""

    samples_ns: list[int] = field(default_factory=list)
    accepted: int = 0
    rejected: list[str] = field(default_factory=list)
    where: list[tuple[int, int]] = field(default_factory=list)  # (document, step) of each sample
    causes: list[str] = field(default_factory=list)  # corral only: why each step cost what it did
    doc: int = 0


def step_cause(now: tuple[int, int, int], prev: tuple[int, int, int], first: bool) -> str:
    """A cause label for one corral mask from its store's (hits, misses, state scans) counters."""
    hits, misses, scans = (a - b for a, b in zip(now, prev))
    if first:
        return f"first mask: engine setup + {scans} vocab scan(s)"
    if misses == 0:
        return "mask-store hit" if hits else "dfa row"
    if scans:
        return f"mask-store miss: {scans} vocab scan(s)"
    return "mask-store miss: earley + candidates"


def _counts(store: Any) -> tuple[int, int, int]:
    return (getattr(store, "hits", 0), getattr(store, "misses", 0), getattr(store, "state_scans", 0))


def documents(name: str) -> list[str]:
    """The corpus of ``name`` (stripped of surrounding whitespace)."""
    text = (ROOT / "tests" / "data" / "grammars" / name / "valid.txt").read_text(encoding="utf-8")
    docs = [d.strip() for d in text.split("\n----\n")]
    if name in ("python", "golike"):  # whole files: every line ends with a newline
        docs = [d + "\n" for d in docs]
    return [d for d in docs if d]


class Corral:
    name = "corral"

    def __init__(self, tok: Any) -> None:
        self.vocab = corral.Vocabulary.from_hf(tok)
        self._walked: Any = None  # the grammar walked last (its store exists)

    def compile(self, text: str) -> Any:
        return corral.compile_grammar(text, self.vocab)

    def warm_up(self, tok: Any) -> None:
        """Load corral's numba kernels from their cache, untimed (a serving process does it once;
        bench_jsonschema warms up too): compile a small grammar unlike the benchmarked ones and walk
        a text whose tokens cross its terminals' ends. Without it the first grammar's first masks
        carry the loading (50-60 ms each for SQL's first two)."""
        g = self.compile('start: "x" item+\nitem: "y;" | NUM\nNUM: /[0-9]+/\n%ignore " "')
        m = g.matcher()
        for t in tok.encode("x y; 12 y;y; 7", add_special_tokens=False):
            m.next_token_mask()
            if not m.accept_token(t):
                raise RuntimeError("the warm-up text does not fit its grammar")

    def walk(self, g: Any, ids: list[int], w: Walk) -> None:
        from corral.runtime.engine import mask_store_for

        m = g.matcher()
        clock = time.perf_counter_ns
        store = mask_store_for(g) if g is self._walked else None
        self._walked = g
        prev = (0, 0, 0) if store is None else _counts(store)
        for step in range(len(ids) + 1):
            gc0 = GC_PAUSE_NS[0]
            t0 = clock()
            m.next_token_mask()
            w.samples_ns.append(clock() - t0)
            w.where.append((w.doc, step))
            first = store is None
            if first:
                store = mask_store_for(g)
            now = _counts(store)
            why = step_cause(now, prev, first)
            if GC_PAUSE_NS[0] > gc0:
                why = f"gc pause {(GC_PAUSE_NS[0] - gc0) / 1e6:.0f} ms; {why}"
            w.causes.append(why)
            prev = now
            if step == len(ids):
                break
            if not m.accept_token(ids[step]):
                w.rejected.append(f"token {step}")
                return
        if m.is_accepting():
            w.accepted += 1
        else:
            w.rejected.append("not accepting at the end")


class LLGuidance:
    name = "llguidance"

    def __init__(self, tok: Any) -> None:
        import llguidance
        import llguidance.hf

        self.ll = llguidance
        self.tok = llguidance.hf.from_tokenizer(tok)
        self.buf = np.zeros((self.tok.vocab_size + 31) // 32, dtype=np.int32)

    def compile(self, text: str) -> Any:
        grammar = self.ll.LLMatcher.grammar_from_lark(text)
        m = self.ll.LLMatcher(self.tok, grammar, log_level=0)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return grammar

    def walk(self, g: Any, ids: list[int], w: Walk) -> None:
        m = self.ll.LLMatcher(self.tok, g, log_level=0)
        ptr, nbytes = self.buf.ctypes.data, self.buf.size * 4
        clock = time.perf_counter_ns
        for step in range(len(ids) + 1):
            t0 = clock()
            m.unsafe_compute_mask_ptr(ptr, nbytes)
            w.samples_ns.append(clock() - t0)
            w.where.append((w.doc, step))
            if step == len(ids):
                break
            if not m.consume_token(ids[step]) or m.is_error():
                w.rejected.append(f"token {step}: {m.get_error()[:80]}")
                return
        if m.is_accepting():
            w.accepted += 1
        else:
            w.rejected.append("not accepting at the end")


class XGrammar:
    name = "xgrammar"

    def __init__(self, tok: Any) -> None:
        import xgrammar

        self.xg = xgrammar
        self.info = xgrammar.TokenizerInfo.from_huggingface(tok)
        self.bitmask = xgrammar.allocate_token_bitmask(1, self.info.vocab_size)

    def compile(self, text: str) -> Any:
        compiler = self.xg.GrammarCompiler(self.info, cache_enabled=False)
        return compiler.compile_grammar(self.xg.Grammar.from_lark(text))

    def walk(self, g: Any, ids: list[int], w: Walk) -> None:
        m = self.xg.GrammarMatcher(g)
        clock = time.perf_counter_ns
        for step in range(len(ids) + 1):
            t0 = clock()
            m.fill_next_token_bitmask(self.bitmask)
            w.samples_ns.append(clock() - t0)
            w.where.append((w.doc, step))
            if step == len(ids):
                break
            if not m.accept_token(ids[step]):
                w.rejected.append(f"token {step}")
                return
        if any(m.accept_token(t) for t in self.info.stop_token_ids[:1]):
            w.accepted += 1
        else:
            w.rejected.append("not accepting at the end")


def pct(samples: list[int], q: float) -> float:
    """Percentile ``q`` of nanosecond samples, in microseconds."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q)) / 1000 if samples else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=str(DEFAULT_TOKENIZER))
    ap.add_argument("--grammars", default=",".join(corral.grammars.names()))
    ap.add_argument("--engines", default="corral,llguidance,xgrammar")
    ap.add_argument("--compile-reps", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    makers = {"corral": Corral, "llguidance": LLGuidance, "xgrammar": XGrammar}
    engines = []
    for name in args.engines.split(","):
        try:
            engines.append(makers[name](tok))
        except ImportError:
            print(f"{name}: not installed, skipped")
    for eng in engines:
        if isinstance(eng, Corral):
            eng.warm_up(tok)
    # as bench_jsonschema and a serving loop do: the tokenizer's, torch's and the vocabulary's
    # objects out of the collector's way (a full collection over them took 90-140 ms in a step)
    gc.collect()
    gc.freeze()

    results: list[dict[str, Any]] = []
    header = (f"{'grammar':8} {'engine':10} {'compile ms':>10} {'ttfm ms':>9} {'accepted':>9} "
              f"{'cold mean':>9} {'cold p50':>9} {'p90':>8} {'p99':>8} {'max':>9} {'warm p50':>9} {'p99':>8}")
    print(header)
    print("-" * len(header))
    for gname in args.grammars.split(","):
        text = corral.grammars.load(gname)
        docs = documents(gname)
        token_ids = [tok.encode(d, add_special_tokens=False) for d in docs]
        for eng in engines:
            row: dict[str, Any] = {"grammar": gname, "engine": eng.name, "documents": len(docs)}
            try:
                times = []
                compiled = None
                for _ in range(args.compile_reps):
                    compiled = None
                    gc.collect()
                    t0 = time.perf_counter()
                    compiled = eng.compile(text)
                    times.append(time.perf_counter() - t0)
                row["compile_ms"] = statistics.median(times) * 1000
            except Exception as e:  # a peer that cannot read the grammar: reported, not fatal
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
                print(f"{gname:8} {eng.name:10} compile failed: {row['error']}")
                results.append(row)
                continue
            cold, warm = Walk(), Walk()
            for d, ids in enumerate(token_ids):
                cold.doc = d
                eng.walk(compiled, ids, cold)
            for d, ids in enumerate(token_ids):
                warm.doc = d
                eng.walk(compiled, ids, warm)
            order = np.argsort(np.asarray(cold.samples_ns))[::-1][:10]
            row.update(
                accepted=cold.accepted, rejected=cold.rejected[:5],
                cold_mean_us=float(np.mean(cold.samples_ns)) / 1000,
                cold_p50_us=pct(cold.samples_ns, 50), cold_p90_us=pct(cold.samples_ns, 90),
                cold_p99_us=pct(cold.samples_ns, 99), cold_max_us=max(cold.samples_ns) / 1000,
                warm_p50_us=pct(warm.samples_ns, 50), warm_p99_us=pct(warm.samples_ns, 99),
                steps=len(cold.samples_ns),
                compile_max_ms=max(times) * 1000,
                ttfm_ms=row["compile_ms"] + cold.samples_ns[0] / 1e6,
                slowest=[{"us": cold.samples_ns[i] / 1000, "doc": cold.where[i][0], "step": cold.where[i][1],
                          "cause": cold.causes[i] if cold.causes else "n/a"} for i in order.tolist()],
            )
            results.append(row)
            print(f"{gname:8} {eng.name:10} {row['compile_ms']:10.1f} {row['ttfm_ms']:9.1f} "
                  f"{cold.accepted:>4}/{len(docs):<4} {row['cold_mean_us']:9.1f} "
                  f"{row['cold_p50_us']:9.1f} {row['cold_p90_us']:8.1f} {row['cold_p99_us']:8.1f} "
                  f"{row['cold_max_us']:9.0f} {row['warm_p50_us']:9.1f} {row['warm_p99_us']:8.1f}")
    print("\nmask times in microseconds; compile in milliseconds (median of", args.compile_reps, "compiles); "
          "ttfm: compile + the first document's first mask")
    for r in results:
        if r.get("slowest"):
            print(f"\n{r['grammar']} {r['engine']}: the 10 slowest masks of the cold pass (us, document, step, cause):")
            for x in r["slowest"]:
                print(f"  {x['us']:10.0f}  {x['doc']:4d}  {x['step']:5d}  {x['cause']}")
    by = {(r["grammar"], r["engine"]): r for r in results}
    print("\nbar: corral cold p50 within 2x of llguidance's (json, sql); corral compile < 1 s")
    for gname in args.grammars.split(","):
        c, ll = by.get((gname, "corral")), by.get((gname, "llguidance"))
        if c and "compile_ms" in c:
            verdict = []
            if ll and "cold_p50_us" in ll and "cold_p50_us" in c:
                ratio = c["cold_p50_us"] / ll["cold_p50_us"]
                verdict.append(f"p50 ratio corral/llguidance {ratio:.2f} ({'PASS' if ratio <= 2 else 'FAIL'})")
            verdict.append(f"compile {c['compile_ms']:.0f} ms ({'PASS' if c['compile_ms'] < 1000 else 'FAIL'})")
            print(f"  {gname:8} " + "; ".join(verdict))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
