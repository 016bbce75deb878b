"""JSON Schema benchmark: corral against llguidance and xgrammar on JSONSchemaBench (MaskBench method).

Data: JSON Lines files of ``{"id", "schema", "tests"}`` (default: every ``*.jsonl`` of
``../shared/data/jsonschemabench-dev/``, the development split of JSONSchemaBench). Each test is
``{"description", "valid", "data"}``: an instance and whether the schema accepts it (checked by the
dataset's authors with the Python and Rust ``jsonschema`` validators). Schemas are taken in a fixed
order that interleaves the files (one schema of each file in turn, files sorted by name, schemas in
file order), so ``--limit N`` gives a deterministic sample spread over every subset.

For each schema and each engine:

* **compile**: one compile from the schema dict, timed with ``time.perf_counter_ns``.

  - corral: ``corral.compile_json_schema(schema, vocab, whitespace="flexible",
    timeout=--compile-timeout)``; ``UnsupportedSchemaError`` counts as *unsupported*,
    ``CompileLimitError`` with ``limit == "timeout"`` (or a compile that returned after the
    timeout) as *timeout*, anything else (``GrammarError``, other errors) as *compile error*.
  - llguidance: ``LLMatcher.grammar_from_json_schema(schema, overrides={"whitespace_flexible":
    True})`` then ``LLMatcher(tokenizer, grammar, log_level=0)``; a matcher in the error state
    counts as *unsupported*. llguidance builds its lexer lazily, so part of its compile work moves
    into its first masks (see ``ttfm``).
  - xgrammar: ``GrammarCompiler(info, max_threads=1, cache_enabled=False).compile_json_schema(
    json.dumps(schema), any_whitespace=True, strict_mode=False)`` (MaskBench's "compliant" mode:
    any whitespace, additional properties and items allowed unless the schema forbids them; one
    compiling thread, as in MaskBench); an exception counts as *unsupported*. xgrammar compiles
    eagerly and cannot be interrupted, so it compiles in a child process (timed there) that is
    killed at ``--compile-timeout`` (plus 5 s for handing the result back); the compiled grammar
    comes back through ``serialize_json``/``deserialize_json``, untimed. What xgrammar prints while
    compiling (e.g. that it approximates ``oneOf`` by ``anyOf``) is collected and counted.

  llguidance compiles in a thread that is abandoned after ``--hard-timeout`` seconds (its own
  resource limits normally stop it long before). Any compile that returns but took longer than
  ``--compile-timeout`` counts as *timeout* and is not walked.

  Whitespace: all three allow JSON whitespace wherever JSON does (corral's ``"flexible"`` mode caps
  a run at ``max_whitespace=64`` characters; llguidance's and xgrammar's runs are unbounded). The
  instances below contain only single spaces, so the cap never decides a verdict.

* **instances**: each test instance is serialised exactly as MaskBench does
  (``maskbench/maskbench/runner.py`` in guidance-ai/jsonschemabench):
  ``json.dumps(data, indent=None, ensure_ascii=False)``, i.e. one line, separators ``", "`` and
  ``": "``, non-ASCII characters written as themselves; tokenized with the Hugging Face tokenizer
  (``add_special_tokens=False``). Instances over ``--max-tokens`` tokens are skipped and counted.
  Each instance is walked token by token over a fresh matcher of the one compiled grammar (corral:
  ``CompiledGrammar.matcher()``; llguidance: ``deep_copy()`` of the compiled matcher, as MaskBench
  does; xgrammar: ``GrammarMatcher(compiled)``). Each step times only producing the full packed
  bitmask of allowed tokens:

  - corral: ``Matcher.next_token_mask()``;
  - llguidance: ``LLMatcher.unsafe_compute_mask_ptr`` into a preallocated ``int32`` buffer;
  - xgrammar: ``GrammarMatcher.fill_next_token_bitmask`` into a preallocated bitmask;

  then (untimed) checks the instance's token is allowed by that mask and accepts it. After the last
  token the engine must be accepting (corral ``is_accepting``, llguidance ``is_accepting``, xgrammar
  ``is_completed``). As in MaskBench there is one mask per token of the instance (none after the
  last one). An engine whose accept call refuses a token its own mask allowed is counted as
  rejecting there and listed as a mask/accept disagreement.

Before the run each engine warms up, untimed: what a serving process does once at start-up
(corral: ``Compiler.warm_up()``, which its vLLM processor calls; the peers have nothing of the
kind; ``--no-serving-warm-up`` leaves it out), then one small schema compiled and walked, and a
second with a length counter and a run-time check. Without the first, the first schemas of a run
to use each of corral's numba kernels pay its load from numba's cache (17-19 ms apiece; seen as
10-400 ms steps of single schemas walked alone).

Verdicts per instance: a *valid* instance that is blocked (a token not allowed, or not accepting at
the end) is a **false negative**; an *invalid* instance whose every token is allowed and that ends
accepting is a **false positive**. (MaskBench itself does not check acceptance at the end: it also
fails an invalid instance whose tokens are all allowed but which is only a *prefix* of a valid
document, e.g. ``1`` under ``minimum: 10``. Those are counted apart, as "fp prefix".) A schema is
**passing** on an engine when it compiled and none of its instances was a false negative, a false
positive or an exception (schemas without instances pass when they compile, as in MaskBench).
Instances are also given a per-engine walking budget of ``--schema-budget`` seconds per schema;
the instances left when it runs out are counted as skipped.

Reported per engine: schemas, compiled, passing, unsupported, compile errors, timeouts, false
negatives, false positives, mask time mean/p50/p90/p99/max over all steps (µs), compile time p50/p99
(ms, over compiled schemas) and time to first mask (compile plus the first instance's first mask)
p50/p99; the ten slowest masks (schema, instance, step, cause) and the ten slowest times to first
mask (compile and first mask apart). Causes are corral's, read (untimed) from its mask store's
counters around each step: ``mask-store hit``, ``mask-store miss: N vocab scan(s)`` (per-state
layers computed, one numba pass over the vocabulary each), ``mask-store miss: earley +
candidates`` (only the closure and the crossing candidates), ``first mask: engine setup + N vocab
scan(s)``, prefixed with ``gc pause N ms`` when Python's garbage collector ran during the step; the
peers' are ``n/a``; passing per subset; corral's unsupported keywords (by keyword, schemas using it) and
compile errors (messages grouped with numbers and quoted names blanked); the peers' refusals
grouped the same way; corral's false negatives and false positives with the text around the token
that decided (and whether the peers got the same instance right).

Run from the repository root::

    python benchmarks/bench_jsonschema.py --limit 100
    python benchmarks/bench_jsonschema.py --files Github_easy,Kubernetes --engines corral,llguidance
    python benchmarks/bench_jsonschema.py --limit 500 --json out.json

The bar the numbers are read against: corral has zero false positives; corral passes more schemas
than llguidance; corral's mask p50 is no slower than llguidance's; corral's compile p50 is under
50 ms.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import glob
import heapq
import json
import os
import platform
import re
import sys
import threading
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral
from corral.runtime.engine import mask_store_for
from gc_pauses import GC_PAUSE_NS  # beside this script

DEFAULT_DATA = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "jsonschemabench-dev"))
DEFAULT_TOKENIZER = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "tokenizers", "llama3"))
ENGINE_NAMES = ("corral", "llguidance", "xgrammar")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass
class Item:
    """One schema of the benchmark with its test instances."""

    subset: str
    id: str
    schema: Any
    tests: list[dict[str, Any]]


def serialise(data: Any) -> str:
    """An instance as MaskBench writes it before tokenizing (one line, default separators)."""
    return json.dumps(data, indent=None, ensure_ascii=False)


def data_files(spec: str | None, data_dir: str) -> list[str]:
    """The ``.jsonl`` files to read: all of ``data_dir``, or the comma-separated names/paths in ``spec``."""
    if not spec:
        files = sorted(glob.glob(os.path.join(data_dir, "*.jsonl")))
        if not files:
            raise SystemExit(f"no .jsonl files in {data_dir}: pass --data DIR or --files")
        return files
    out = []
    for part in (s.strip() for s in spec.split(",")):
        if not part:
            continue
        cands = [part, os.path.join(data_dir, part), os.path.join(data_dir, part + ".jsonl")]
        path = next((c for c in cands if os.path.isfile(c)), None)
        if path is None:
            known = sorted(os.path.basename(f)[:-6] for f in glob.glob(os.path.join(data_dir, "*.jsonl")))
            raise SystemExit(f"--files: {part!r} not found; subsets in {data_dir}: {', '.join(known)}")
        out.append(path)
    return sorted(out)


def load_items(files: list[str], limit: int | None, offset: int = 0) -> list[Item]:
    """Schemas of ``files`` interleaved (one of each file in turn), ``limit`` of them after the
    first ``offset``."""
    per_file: list[list[Item]] = []
    for path in files:
        subset = os.path.basename(path).rsplit(".", 1)[0]
        rows = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    rows.append(Item(subset, str(d["id"]), d["schema"], d.get("tests") or []))
        per_file.append(rows)
    items: list[Item] = []
    for i in range(max((len(r) for r in per_file), default=0)):
        for rows in per_file:
            if i < len(rows):
                items.append(rows[i])
    items = items[offset:]
    return items[:limit] if limit is not None else items


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------

class CompileFailure(Exception):
    """A compile that did not produce a grammar: ``kind`` is unsupported, error or timeout."""

    def __init__(self, kind: str, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.problems = problems or []  # (keyword, reason) of each unsupported use (corral)


@dataclass
class Outcome:
    """How one instance's walk ended: accepted, incomplete (all tokens allowed, not accepting),
    rejected (at ``step``), or exception."""

    kind: str
    step: int | None = None
    message: str = ""
    disagreement: bool = False  # accept refused a token the engine's own mask allowed


def _bit(words: np.ndarray, t: int) -> bool:
    """Whether token ``t``'s bit is set in a packed 32-bit little-endian bitmask."""
    return bool((int(words[t >> 5]) >> (t & 31)) & 1)


class Engine:
    """Common interface: compile a schema, walk an instance's tokens timing each mask."""

    name = "?"
    runs_in_thread = False
    last_compile_ns: int | None = None  # set by engines that time their compile themselves
    last_log = ""  # what the engine printed while compiling (xgrammar's warnings)
    step_causes: list[str] | None = None  # filled by walk() when the engine can say why a step cost


    def compile(self, schema: Any) -> Any:
        """Compile ``schema`` (a dict); raises :class:`CompileFailure` when no grammar comes out."""
        raise NotImplementedError

    def walk(self, compiled: Any, tokens: list[int], samples: array) -> Outcome:
        """Walk ``tokens`` over a fresh matcher, appending each mask's nanoseconds to ``samples``."""
        raise NotImplementedError

    def warm_up(self) -> str | None:
        """What a serving process does once at start-up before its first request, untimed in the
        results; ``None`` for an engine that has nothing of the kind."""
        return None


def _counts(store: Any) -> tuple[int, int, int]:
    return (getattr(store, "hits", 0), getattr(store, "misses", 0), getattr(store, "state_scans", 0))


def step_cause(now: tuple[int, int, int], prev: tuple[int, int, int], first: bool) -> str:
    """A cause label for one corral mask from its store's (hits, misses, state scans) counters
    after and before it: a cache hit, a miss with the per-state vocabulary scans it needed, or
    one where only the Earley closure and the crossing candidates were computed."""
    hits, misses, scans = (a - b for a, b in zip(now, prev))
    if first:
        return f"first mask: engine setup + {scans} vocab scan(s)"
    if misses == 0:
        return "mask-store hit" if hits else "dfa row"
    if scans:
        return f"mask-store miss: {scans} vocab scan(s)"
    return "mask-store miss: earley + candidates"


class CorralEngine(Engine):
    """corral: ``compile_json_schema`` and ``Matcher.next_token_mask``."""

    name = "corral"

    def __init__(self, hf_tok: Any, timeout: float, property_order: str = "any") -> None:
        self.vocab = corral.Vocabulary.from_hf(hf_tok)
        self.timeout = timeout
        self.property_order = property_order
        self._walked: Any = None  # the grammar walked last (its store exists)

    def warm_up(self) -> str | None:
        """``Compiler.warm_up()``: loads the numba kernels a process's first requests would load
        (what corral's vLLM processor does at start-up)."""
        return f"Compiler.warm_up {corral.Compiler(self.vocab).warm_up() * 1000:.0f} ms"

    def compile(self, schema: Any) -> Any:
        try:
            return corral.compile_json_schema(schema, self.vocab, whitespace="flexible", timeout=self.timeout,
                                              property_order=self.property_order)
        except corral.UnsupportedSchemaError as e:
            problems = [(kw, why) for _, kw, why in getattr(e, "problems", [])]
            raise CompileFailure("unsupported", str(e), problems) from e
        except corral.CompileLimitError as e:
            kind = "timeout" if getattr(e, "limit", None) == "timeout" else "error"
            raise CompileFailure(kind, f"CompileLimitError: {e}") from e
        except Exception as e:  # GrammarError, CorralError, and bugs: all recorded as compile errors
            raise CompileFailure("error", f"{type(e).__name__}: {e}") from e

    def walk(self, compiled: Any, tokens: list[int], samples: array) -> Outcome:
        m = compiled.matcher()
        clock = time.perf_counter_ns
        causes: list[str] = []
        self.step_causes = causes
        # the grammar's runtime state is built by its first mask: before that, no store to read
        store = mask_store_for(compiled) if compiled is self._walked else None
        self._walked = compiled
        prev = (0, 0, 0) if store is None else _counts(store)
        for i, t in enumerate(tokens):
            gc0 = GC_PAUSE_NS[0]
            t0 = clock()
            mask = m.next_token_mask()
            t1 = clock()
            samples.append(t1 - t0)
            # untimed: why this step cost what it did, from the mask store's counters
            first = store is None
            if first:
                store = mask_store_for(compiled)
            now = _counts(store)
            why = step_cause(now, prev, first)
            if GC_PAUSE_NS[0] > gc0:
                why = f"gc pause {(GC_PAUSE_NS[0] - gc0) / 1e6:.0f} ms; {why}"
            causes.append(why)
            prev = now
            if not _bit(mask, t):
                return Outcome("rejected", i)
            if not m.accept_token(t):
                return Outcome("rejected", i, disagreement=True)
        return Outcome("accepted" if m.is_accepting() else "incomplete", len(tokens))


class LLGuidanceEngine(Engine):
    """llguidance: ``grammar_from_json_schema`` + ``LLMatcher``; ``unsafe_compute_mask_ptr``."""

    name = "llguidance"
    runs_in_thread = True

    def __init__(self, hf_tok: Any) -> None:
        import llguidance
        import llguidance.hf

        self.ll = llguidance
        self.tok = llguidance.hf.from_tokenizer(hf_tok)
        self.buf = np.zeros((self.tok.vocab_size + 31) // 32, dtype=np.int32)

    def compile(self, schema: Any) -> Any:
        try:
            grammar = self.ll.LLMatcher.grammar_from_json_schema(schema, overrides={"whitespace_flexible": True})
            m = self.ll.LLMatcher(self.tok, grammar, log_level=0)
        except Exception as e:
            raise CompileFailure("unsupported", f"{type(e).__name__}: {e}") from e
        if m.is_error():
            raise CompileFailure("unsupported", m.get_error())
        return m

    def walk(self, compiled: Any, tokens: list[int], samples: array) -> Outcome:
        m = compiled.deep_copy()
        buf = self.buf
        ptr, nbytes = buf.ctypes.data, buf.size * 4
        fill = m.unsafe_compute_mask_ptr
        clock = time.perf_counter_ns
        for i, t in enumerate(tokens):
            t0 = clock()
            fill(ptr, nbytes)
            t1 = clock()
            samples.append(t1 - t0)
            if m.is_error():
                return Outcome("rejected", i, message=m.get_error()[:200])
            if not _bit(buf, t):
                return Outcome("rejected", i)
            if not m.consume_token(t) or m.is_error():
                return Outcome("rejected", i, message=m.get_error()[:200], disagreement=True)
        return Outcome("accepted" if m.is_accepting() else "incomplete", len(tokens))


def _xgrammar_worker(conn: Any, info_json: str, log_path: str) -> None:
    """Child process of :class:`XGrammarEngine`: compiles schemas sent over ``conn``.

    Replies ``(status, compile_ns, payload, log)`` per schema: status ``"ok"`` with the compiled
    grammar's ``serialize_json()``, or ``"err"`` with the exception; ``log`` holds what xgrammar
    wrote to stderr meanwhile (its warnings about approximated keywords).
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    import xgrammar

    info = xgrammar.TokenizerInfo.deserialize_json(info_json)
    compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    clock = time.perf_counter_ns
    pos = 0
    conn.send("ready")
    with open(log_path, "rb") as log:
        while True:
            schema_text = conn.recv()
            if schema_text is None:
                return
            t0 = clock()
            try:
                compiled = compiler.compile_json_schema(schema_text, any_whitespace=True, strict_mode=False)
                ns = clock() - t0
                status, payload = "ok", compiled.serialize_json()
                del compiled
            except Exception as e:  # noqa: BLE001 - any refusal is reported to the parent
                ns = clock() - t0
                status, payload = "err", f"{type(e).__name__}: {e}"
            log.seek(pos)
            text = log.read()
            pos += len(text)
            conn.send((status, ns, payload, text.decode("utf-8", "replace")))


class XGrammarEngine(Engine):
    """xgrammar: ``GrammarCompiler.compile_json_schema`` and ``fill_next_token_bitmask``.

    Compiles run in a child process (timed there), so that one over the compile timeout can be
    killed; the compiled grammar comes back through ``serialize_json``/``deserialize_json``
    (untimed).
    """

    name = "xgrammar"

    def __init__(self, hf_tok: Any, timeout: float) -> None:
        import multiprocessing
        import tempfile

        import xgrammar

        self.xg = xgrammar
        self.timeout = timeout
        self.info = xgrammar.TokenizerInfo.from_huggingface(hf_tok)
        self.info_json = self.info.serialize_json()
        self.ctx = multiprocessing.get_context("spawn")
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="bench_jsonschema_"), "xgrammar.log")
        self.proc: Any = None
        self.conn: Any = None
        self.start_worker()
        self.bitmask = xgrammar.allocate_token_bitmask(1, self.info.vocab_size)
        self.words = self.bitmask.numpy()[0]  # shares memory with the tensor
        self.last_log = ""

    def start_worker(self) -> None:
        """(Re)start the compiling child process."""
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_xgrammar_worker, args=(child, self.info_json, self.log_path),
                                     daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        if not parent.poll(300.0) or parent.recv() != "ready":
            raise RuntimeError("the xgrammar compiling process did not start")

    def stop_worker(self) -> None:
        """Kill the child (after a timeout, or at the end)."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.proc = None

    def compile(self, schema: Any) -> Any:
        self.last_log = ""
        if self.proc is None or not self.proc.is_alive():
            self.start_worker()
        self.conn.send(json.dumps(schema))
        grace = 5.0  # for serialising a finished grammar; compile time itself is measured in the child
        if not self.conn.poll(self.timeout + grace):
            self.stop_worker()
            raise CompileFailure("timeout", f"killed after {self.timeout + grace:g} s")
        try:
            status, ns, payload, log = self.conn.recv()
        except EOFError as e:
            self.stop_worker()
            raise CompileFailure("error", "the compiling process died (crash or out of memory)") from e
        self.last_log = log
        self.last_compile_ns = ns
        if status != "ok":
            raise CompileFailure("unsupported", payload)
        if ns > self.timeout * 1e9:
            raise CompileFailure("timeout", f"compiled in {ns / 1e9:.1f} s")
        return self.xg.CompiledGrammar.deserialize_json(payload, self.info)

    def walk(self, compiled: Any, tokens: list[int], samples: array) -> Outcome:
        m = self.xg.GrammarMatcher(compiled)
        bitmask, words = self.bitmask, self.words
        fill = m.fill_next_token_bitmask
        clock = time.perf_counter_ns
        for i, t in enumerate(tokens):
            t0 = clock()
            fill(bitmask)
            t1 = clock()
            samples.append(t1 - t0)
            if not _bit(words, t):
                return Outcome("rejected", i)
            if not m.accept_token(t):
                return Outcome("rejected", i, disagreement=True)
        return Outcome("accepted" if m.is_completed() else "incomplete", len(tokens))


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

@dataclass
class Totals:
    """Everything counted for one engine over the run."""

    schemas: int = 0
    compiled: int = 0
    passing: int = 0
    unsupported: int = 0
    compile_errors: int = 0
    timeouts: int = 0
    instances: int = 0
    valid_instances: int = 0
    invalid_instances: int = 0
    false_negatives: int = 0
    false_positives: int = 0
    fp_prefix: int = 0
    walk_exceptions: int = 0
    disagreements: int = 0
    skipped_tokens: int = 0
    skipped_budget: int = 0
    mask_ns: array = field(default_factory=lambda: array("q"))
    compile_ns: list[int] = field(default_factory=list)
    ttfm_ns: list[int] = field(default_factory=list)
    slow_steps: list[tuple[int, str, int, int, str]] = field(default_factory=list)  # heap: ns, id, test, step, cause
    slow_ttfm: list[tuple[int, str, int, int, str]] = field(default_factory=list)  # heap: ns, id, compile, mask, cause
    passing_by_subset: Counter = field(default_factory=Counter)
    unsupported_keywords: Counter = field(default_factory=Counter)
    unsupported_reasons: Counter = field(default_factory=Counter)
    failure_messages: Counter = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)
    log_messages: Counter = field(default_factory=Counter)
    walk_seconds: float = 0.0


def normalise_message(msg: str) -> str:
    """A failure message with the parts that vary between schemas blanked, for grouping."""
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    if first.startswith("the schema uses what corral cannot") and len(lines) > 1:
        first = lines[1]
    first = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", first)
    first = re.sub(r"(/[^\s:,)]*)+", "/…", first)
    first = re.sub(r"\d+(\.\d+)?", "N", first)
    return first[:160]


def run_compile(engine: Engine, schema: Any, hard_timeout: float) -> tuple[Any, int]:
    """Compile with ``engine``; the product and the nanoseconds taken. Raises :class:`CompileFailure`."""
    clock = time.perf_counter_ns
    if not engine.runs_in_thread:
        engine.last_compile_ns = None
        t0 = clock()
        product = engine.compile(schema)
        ns = clock() - t0
        return product, engine.last_compile_ns if engine.last_compile_ns is not None else ns
    box: dict[str, Any] = {}

    def work() -> None:
        t0 = clock()
        try:
            box["product"] = engine.compile(schema)
        except Exception as e:  # noqa: BLE001 - handed to the caller
            box["exc"] = e
        box["ns"] = clock() - t0

    th = threading.Thread(target=work, daemon=True)
    th.start()
    th.join(hard_timeout)
    if th.is_alive():
        raise CompileFailure("timeout", f"still compiling after {hard_timeout:g} s (abandoned)")
    if "exc" in box:
        exc = box["exc"]
        if isinstance(exc, CompileFailure):
            raise exc
        raise CompileFailure("error", f"{type(exc).__name__}: {exc}") from exc
    return box["product"], box["ns"]


def snippet(hf_tok: Any, text: str, tokens: list[int], step: int | None, width: int = 60) -> str:
    """The instance text around token ``step`` (marked with ⟦⟧), or its end when ``step`` is None."""
    if step is None or step >= len(tokens):
        return ("…" if len(text) > width else "") + text[-width:] + "⟦end⟧"
    before = hf_tok.decode(tokens[:step])
    tok_text = hf_tok.decode(tokens[step:step + 1])
    after = text[len(before) + len(tok_text):] if text.startswith(before) else ""
    head = ("…" if len(before) > width else "") + before[-width:]
    tail = after[:20] + ("…" if len(after) > 20 else "")
    return f"{head}⟦{tok_text}⟧{tail}"


def note_log(engine: Engine, tot: Totals, item: Item, info: dict[str, Any]) -> None:
    """Count what the engine printed while compiling (xgrammar's warnings), once per schema and kind."""
    lines = [ln for ln in engine.last_log.splitlines() if ln.strip()]
    if not lines:
        return
    info["log"] = lines[:20]
    for key in sorted({normalise_message(re.sub(r"^\[[^]]*\]\s*\S+:\s*", "", ln)) for ln in lines}):
        tot.log_messages[key] += 1
        tot.failure_examples.setdefault("log: " + key, item.id)


def bench_item(item: Item, engines: list[Engine], hf_tok: Any, args: argparse.Namespace,
               totals: dict[str, Totals], failures: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Compile and walk one schema on every engine; updates ``totals``; the per-schema record."""
    prepared = []
    for ti, test in enumerate(item.tests):
        text = serialise(test.get("data"))
        toks = hf_tok.encode(text, add_special_tokens=False)
        prepared.append((ti, bool(test.get("valid")), text, toks))
    record: dict[str, Any] = {"id": item.id, "subset": item.subset, "tests": len(item.tests), "engines": {}}
    for engine in engines:
        tot = totals[engine.name]
        tot.schemas += 1
        info: dict[str, Any] = {}
        record["engines"][engine.name] = info
        engine.last_log = ""
        try:
            product, ns = run_compile(engine, item.schema, args.hard_timeout)
        except CompileFailure as e:
            note_log(engine, tot, item, info)
            info.update(status=e.kind, message=e.message[:2000])
            if e.kind == "unsupported":
                tot.unsupported += 1
                for kw in sorted({kw for kw, _ in e.problems}):
                    tot.unsupported_keywords[kw] += 1
                for key in sorted({f"{kw}: {normalise_message(why)}" for kw, why in e.problems}):
                    tot.unsupported_reasons[key] += 1
                    tot.failure_examples.setdefault("reason: " + key, item.id)
                if not e.problems:
                    key = normalise_message(e.message)
                    tot.failure_messages["unsupported: " + key] += 1
                    tot.failure_examples.setdefault("unsupported: " + key, item.id)
            elif e.kind == "timeout":
                tot.timeouts += 1
            else:
                tot.compile_errors += 1
                key = normalise_message(e.message)
                tot.failure_messages["error: " + key] += 1
                tot.failure_examples.setdefault("error: " + key, item.id)
            continue
        except Exception as e:  # noqa: BLE001 - never abort the run
            tot.compile_errors += 1
            info.update(status="error", message=f"{type(e).__name__}: {e}"[:2000])
            continue
        note_log(engine, tot, item, info)
        info["compile_ms"] = ns / 1e6
        if ns > args.compile_timeout * 1e9:
            tot.timeouts += 1
            info["status"] = "timeout"
            del product
            continue
        tot.compiled += 1
        tot.compile_ns.append(ns)
        info["status"] = "compiled"
        warnings = getattr(product, "warnings", None)
        if engine.name == "corral" and warnings:
            info["warnings"] = len(warnings)
        ok = True
        verdicts = []
        start = time.perf_counter()
        steps_before = len(tot.mask_ns)
        first = True
        for ti, valid, text, toks in prepared:
            if len(toks) > args.max_tokens:
                tot.skipped_tokens += 1
                verdicts.append({"test": ti, "valid": valid, "tokens": len(toks), "outcome": "skipped (tokens)"})
                continue
            if time.perf_counter() - start > args.schema_budget:
                tot.skipped_budget += 1
                verdicts.append({"test": ti, "valid": valid, "tokens": len(toks), "outcome": "skipped (budget)"})
                continue
            tot.instances += 1
            if valid:
                tot.valid_instances += 1
            else:
                tot.invalid_instances += 1
            before = len(tot.mask_ns)
            try:
                out = engine.walk(product, toks, tot.mask_ns)
            except Exception as e:  # noqa: BLE001 - recorded, never fatal
                out = Outcome("exception", message=f"{type(e).__name__}: {e}"[:300])
            causes = engine.step_causes
            if first and len(tot.mask_ns) > before:
                tot.ttfm_ns.append(ns + tot.mask_ns[before])
                first_ns = tot.mask_ns[before]
                why = "compile" if ns >= first_ns else (causes[0] if causes else "first mask")
                keep_slowest(tot.slow_ttfm, (ns + first_ns, item.id, ns, first_ns, why))
                first = False
            for j in range(before, len(tot.mask_ns)):
                step_ns = tot.mask_ns[j]
                if len(tot.slow_steps) < SLOWEST or step_ns > tot.slow_steps[0][0]:
                    k = j - before
                    why = causes[k] if causes is not None and k < len(causes) else "n/a"
                    keep_slowest(tot.slow_steps, (step_ns, item.id, ti, k, why))
            engine.step_causes = None
            v = {"test": ti, "valid": valid, "tokens": len(toks), "outcome": out.kind}
            if out.step is not None and out.kind == "rejected":
                v["step"] = out.step
            if out.message:
                v["message"] = out.message
            if out.disagreement:
                tot.disagreements += 1
                v["disagreement"] = True
            verdict = None
            if out.kind == "exception":
                tot.walk_exceptions += 1
                verdict = "exception"
            elif valid and out.kind != "accepted":
                tot.false_negatives += 1
                verdict = "false negative"
            elif not valid and out.kind == "accepted":
                tot.false_positives += 1
                verdict = "false positive"
            elif not valid and out.kind == "incomplete":
                tot.fp_prefix += 1
            if verdict:
                ok = False
                v["verdict"] = verdict
                failures[engine.name].append({
                    "id": item.id, "subset": item.subset, "test": ti, "valid": valid, "verdict": verdict,
                    "outcome": out.kind, "message": out.message,
                    "snippet": snippet(hf_tok, text, toks, out.step if out.kind == "rejected" else None),
                })
            verdicts.append(v)
        tot.walk_seconds += time.perf_counter() - start
        info["walk_ms"] = (time.perf_counter() - start) * 1000
        if len(tot.mask_ns) > steps_before:
            info["mask_max_us"] = max(tot.mask_ns[steps_before:]) / 1000
        info["instances"] = verdicts
        info["passing"] = ok
        if ok:
            tot.passing += 1
            tot.passing_by_subset[item.subset] += 1
        del product
    return record


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

SLOWEST = 10


def keep_slowest(heap: list[Any], entry: Any) -> None:
    """Keep the ``SLOWEST`` largest entries (by their first field) in the min-heap ``heap``."""
    if len(heap) < SLOWEST:
        heapq.heappush(heap, entry)
    elif entry[0] > heap[0][0]:
        heapq.heapreplace(heap, entry)


def pct(values: Any, q: float) -> float | None:
    """Percentile ``q`` of ``values`` (None when empty)."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summary(tot: Totals) -> dict[str, Any]:
    """The numbers of one engine's table column."""
    mask = np.frombuffer(tot.mask_ns, dtype=np.int64) if len(tot.mask_ns) else np.zeros(0)
    us = mask / 1000.0

    def ms(v: float | None) -> float | None:
        return None if v is None else v / 1e6

    return {
        "schemas": tot.schemas, "compiled": tot.compiled, "passing": tot.passing,
        "unsupported": tot.unsupported, "compile_errors": tot.compile_errors, "timeouts": tot.timeouts,
        "instances": tot.instances, "valid_instances": tot.valid_instances,
        "invalid_instances": tot.invalid_instances,
        "false_negatives": tot.false_negatives, "false_positives": tot.false_positives,
        "fp_prefix": tot.fp_prefix, "walk_exceptions": tot.walk_exceptions,
        "mask_accept_disagreements": tot.disagreements,
        "skipped_over_max_tokens": tot.skipped_tokens, "skipped_over_budget": tot.skipped_budget,
        "mask_steps": int(us.size),
        "mask_mean_us": float(us.mean()) if us.size else None,
        "mask_p50_us": pct(us, 50), "mask_p90_us": pct(us, 90), "mask_p99_us": pct(us, 99),
        "mask_max_us": float(us.max()) if us.size else None,
        "compile_p50_ms": ms(pct(tot.compile_ns, 50)), "compile_p99_ms": ms(pct(tot.compile_ns, 99)),
        "ttfm_p50_ms": ms(pct(tot.ttfm_ns, 50)), "ttfm_p99_ms": ms(pct(tot.ttfm_ns, 99)),
        "walk_seconds": tot.walk_seconds,
        "slowest_steps": [{"us": v / 1000, "schema": sid, "test": ti, "step": k, "cause": why}
                          for v, sid, ti, k, why in sorted(tot.slow_steps, reverse=True)],
        "slowest_ttfm": [{"ms": v / 1e6, "schema": sid, "compile_ms": c / 1e6, "first_mask_ms": f / 1e6,
                          "cause": why} for v, sid, c, f, why in sorted(tot.slow_ttfm, reverse=True)],
        "passing_by_subset": dict(tot.passing_by_subset),
        "unsupported_keywords": dict(tot.unsupported_keywords.most_common()),
        "unsupported_reasons": dict(tot.unsupported_reasons.most_common()),
        "failure_messages": dict(tot.failure_messages.most_common()),
        "compile_log_messages": dict(tot.log_messages.most_common()),
    }


def fmt(v: Any, digits: int = 1) -> str:
    """A table cell: a number with ``digits`` decimals, an int as is, or ``n/a``."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print an aligned text table (first column left-aligned, the others right-aligned)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def report(items: list[Item], engines: list[Engine], sums: dict[str, dict[str, Any]], totals: dict[str, Totals],
           failures: dict[str, list[dict[str, Any]]], records: list[dict[str, Any]], worst: int) -> None:
    """Print the tables, the bar, and the failure summaries."""
    names = [e.name for e in engines]
    rows_spec = [
        ("schemas", "schemas", 0), ("compiled", "compiled", 0), ("passing", "passing", 0),
        ("unsupported (refused)", "unsupported", 0), ("compile errors", "compile_errors", 0),
        ("timeouts", "timeouts", 0), ("instances walked", "instances", 0),
        ("  valid / invalid", None, 0),
        ("false negatives", "false_negatives", 0), ("false positives", "false_positives", 0),
        ("fp prefix (MaskBench would fail)", "fp_prefix", 0), ("walk exceptions", "walk_exceptions", 0),
        ("mask/accept disagreements", "mask_accept_disagreements", 0),
        ("skipped (> max tokens)", "skipped_over_max_tokens", 0),
        ("skipped (schema budget)", "skipped_over_budget", 0),
        ("mask steps", "mask_steps", 0),
        ("mask mean us", "mask_mean_us", 1), ("mask p50 us", "mask_p50_us", 1),
        ("mask p90 us", "mask_p90_us", 1), ("mask p99 us", "mask_p99_us", 1), ("mask max us", "mask_max_us", 0),
        ("compile p50 ms", "compile_p50_ms", 2), ("compile p99 ms", "compile_p99_ms", 1),
        ("ttfm p50 ms", "ttfm_p50_ms", 2), ("ttfm p99 ms", "ttfm_p99_ms", 1),
        ("walk s (total)", "walk_seconds", 1),
    ]
    rows = []
    for label, key, digits in rows_spec:
        if key is None:
            rows.append([label] + [f"{sums[n]['valid_instances']} / {sums[n]['invalid_instances']}" for n in names])
        else:
            rows.append([label] + [fmt(sums[n][key], digits) for n in names])
    print_table(["metric"] + names, rows)
    print("(passing: compiled and no false negative, false positive or exception on its instances; "
          "ttfm: compile + first mask;\n mask: per-token time to produce the full bitmask, over every step of every "
          "instance walked)")

    for n in names:
        if sums[n]["slowest_steps"]:
            print(f"\n{n}: the {SLOWEST} slowest masks (us, schema, instance, step, cause):")
            for r in sums[n]["slowest_steps"]:
                print(f"  {r['us']:12.0f}  {r['schema']:>10}  {r['test']:3d}  {r['step']:5d}  {r['cause']}")
        if sums[n]["slowest_ttfm"]:
            print(f"{n}: the {SLOWEST} slowest times to first mask (ms, schema, compile ms, first mask ms, cause):")
            for r in sums[n]["slowest_ttfm"]:
                print(f"  {r['ms']:12.1f}  {r['schema']:>10}  {r['compile_ms']:10.1f}  {r['first_mask_ms']:10.2f}  "
                      f"{r['cause']}")

    subsets = sorted({it.subset for it in items})
    per_subset = Counter(it.subset for it in items)
    print()
    print_table(["subset", "schemas"] + [f"{n} passing" for n in names],
                [[s, str(per_subset[s])] + [str(totals[n].passing_by_subset.get(s, 0)) for n in names]
                 for s in subsets])

    c = sums.get("corral")
    ll = sums.get("llguidance")
    print("\nbar:")
    if c is not None:
        print(f"  corral zero false positives: {'PASS' if c['false_positives'] == 0 else 'FAIL'} "
              f"({c['false_positives']})")
        if ll is not None:
            print(f"  corral passing > llguidance passing: {'PASS' if c['passing'] > ll['passing'] else 'FAIL'} "
                  f"({c['passing']} vs {ll['passing']})")
            cp, lp = c["mask_p50_us"], ll["mask_p50_us"]
            verdict = "n/a" if cp is None or lp is None else ("PASS" if cp <= lp else "FAIL")
            print(f"  corral mask p50 <= llguidance's: {verdict} ({fmt(cp, 1)} vs {fmt(lp, 1)} us)")
        else:
            print("  llguidance comparisons: n/a (llguidance not run)")
        cc = c["compile_p50_ms"]
        print(f"  corral compile p50 < 50 ms: {'n/a' if cc is None else ('PASS' if cc < 50 else 'FAIL')} "
              f"({fmt(cc, 2)} ms)")

    for n in names:
        tot = totals[n]
        if tot.unsupported_keywords:
            print(f"\n{n}: unsupported keywords (schemas refused that use it):")
            for kw, k in tot.unsupported_keywords.most_common(25):
                print(f"  {k:5d}  {kw}")
            print(f"\n{n}: unsupported, by keyword and reason (schemas, example schema, reason):")
            for key, k in tot.unsupported_reasons.most_common(20):
                print(f"  {k:5d}  {tot.failure_examples.get('reason: ' + key, ''):>8}  {key}")
        if tot.failure_messages:
            print(f"\n{n}: compile failures grouped (count, example schema, message):")
            for msg, k in tot.failure_messages.most_common(15 if n == "corral" else 8):
                print(f"  {k:5d}  {tot.failure_examples.get(msg, ''):>8}  {msg}")
        if tot.log_messages:
            print(f"\n{n}: warnings printed while compiling (schemas, example schema, message):")
            for msg, k in tot.log_messages.most_common(8):
                print(f"  {k:5d}  {tot.failure_examples.get('log: ' + msg, ''):>8}  {msg}")

    if "corral" in totals:
        by_id = {r["id"]: r for r in records}

        def peer_view(f: dict[str, Any]) -> str:
            out = []
            for n in names:
                if n == "corral":
                    continue
                info = by_id[f["id"]]["engines"].get(n, {})
                if info.get("status") != "compiled":
                    out.append(f"{n} {info.get('status', 'n/a')}")
                    continue
                v = next((x for x in info.get("instances", []) if x["test"] == f["test"]), None)
                if v is None:
                    out.append(f"{n} n/a")
                else:
                    out.append(f"{n} {'wrong too' if v.get('verdict') == f['verdict'] else 'right'}")
            return ", ".join(out)

        def top(key: str, k: int = 5) -> str:
            rows = [(r["engines"]["corral"].get(key), r["id"]) for r in records
                    if r["engines"].get("corral", {}).get(key) is not None]
            rows.sort(reverse=True)
            return ", ".join(f"{sid} {v:.0f}" for v, sid in rows[:k]) or "n/a"

        timeouts = [r["id"] for r in records if r["engines"].get("corral", {}).get("status") == "timeout"]
        if timeouts:
            print(f"\ncorral timeouts ({len(timeouts)}): {', '.join(timeouts[:20])}"
                  + (" ..." if len(timeouts) > 20 else ""))
        print(f"\ncorral slowest compiles (ms): {top('compile_ms')}")
        print(f"corral slowest single masks (us): {top('mask_max_us')}")
        print(f"corral slowest walks (ms, all instances of a schema): {top('walk_ms')}")

        for verdict in ("false positive", "false negative", "exception"):
            fs = [f for f in failures["corral"] if f["verdict"] == verdict]
            if not fs:
                continue
            per_schema = Counter(f["id"] for f in fs)
            print(f"\ncorral {verdict}s: {len(fs)} instance(s) in {len(per_schema)} schema(s); "
                  f"worst schemas first (id, subset, count, first instance):")
            shown = 0
            for sid, k in per_schema.most_common():
                f = next(x for x in fs if x["id"] == sid)
                extra = f" [{f['message'][:100]}]" if f.get("message") else ""
                print(f"  {sid:>8} {f['subset']:<15} x{k}  test #{f['test']}: {f['snippet']!r}{extra}  ({peer_view(f)})")
                shown += 1
                if shown >= worst:
                    break
            if len(per_schema) > shown:
                print(f"  ... {len(per_schema) - shown} more schema(s) in the --json output")


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="directory of .jsonl files (default: %(default)s)")
    p.add_argument("--files", default=None,
                   help="comma-separated subsets (file stems like Github_easy) or .jsonl paths (default: all)")
    p.add_argument("--limit", type=int, default=None, help="first N schemas of the interleaved order")
    p.add_argument("--offset", type=int, default=0,
                   help="skip the first N schemas of the interleaved order (another sample: --offset 300 --limit 300)")
    p.add_argument("--property-order", default="any", choices=("schema", "any"),
                   help="corral's property_order (default: %(default)s, corral's own default)")
    p.add_argument("--engines", default=",".join(ENGINE_NAMES), help="comma-separated (default: %(default)s)")
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="Hugging Face tokenizer directory")
    p.add_argument("--compile-timeout", type=float, default=10.0,
                   help="seconds; longer compiles count as timeouts (default %(default)s)")
    p.add_argument("--hard-timeout", type=float, default=60.0,
                   help="seconds after which a peer compile is abandoned (default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=2000,
                   help="skip instances with more tokens than this (default %(default)s)")
    p.add_argument("--schema-budget", type=float, default=60.0,
                   help="seconds of walking per schema and engine before its remaining instances are skipped "
                        "(default %(default)s)")
    p.add_argument("--worst", type=int, default=15, help="corral failures listed per kind (default %(default)s)")
    p.add_argument("--progress", type=int, default=50, help="print progress every N schemas to stderr (0: never)")
    p.add_argument("--no-serving-warm-up", dest="serving_warm_up", action="store_false",
                   help="skip each engine's start-up warm-up (corral: Compiler.warm_up(), as its vLLM processor "
                        "calls it), so that the first schemas of the run pay the kernel loads (17-19 ms each); the "
                        "benchmark's own warm-up schemas are compiled and walked either way")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write per-schema results to OUT")
    return p.parse_args(argv)


WARMUP_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "score": {"type": "number"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
        "ok": {"type": "boolean"},
    },
    "required": ["name"],
}
WARMUP_INSTANCE = {"name": "Zoë", "age": 42, "score": -1.5e3, "tags": ["a", "b"], "ok": True}
# walked after the first by each engine that compiles it: a length counter (layered keys) and a
# run-time check, whose numba kernels compile on first use in a fresh environment (seconds) and
# would otherwise land in some schema's step; an engine that refuses it is not warmed by it
WARMUP_EXTRA_SCHEMA = {
    "type": "object",
    "properties": {"note": {"type": "string", "maxLength": 200},
                   "ids": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
}
WARMUP_EXTRA_INSTANCE = {"note": "a short note", "ids": ["x1", "x2"]}


def _version(dist: str) -> str:
    """Installed version of a distribution, or ``?``."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and summaries, optionally write ``--json``."""
    args = parse_args(argv)
    wanted = [s.strip() for s in args.engines.split(",") if s.strip()]
    unknown = [w for w in wanted if w not in ENGINE_NAMES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}; known: {', '.join(ENGINE_NAMES)}")
    files = data_files(args.files, args.data)
    items = load_items(files, args.limit, args.offset)

    from transformers import AutoTokenizer

    wall0 = time.perf_counter()
    hf_tok = AutoTokenizer.from_pretrained(args.tokenizer)
    engines: list[Engine] = []
    setup: dict[str, float] = {}
    makers = {
        "corral": lambda: CorralEngine(hf_tok, args.compile_timeout, args.property_order),
        "llguidance": lambda: LLGuidanceEngine(hf_tok),
        "xgrammar": lambda: XGrammarEngine(hf_tok, args.compile_timeout),
    }
    notes = []
    for name in wanted:
        t0 = time.perf_counter()
        try:
            engines.append(makers[name]())
        except ImportError as exc:
            notes.append(f"{name} not installed ({exc}): skipped")
            continue
        setup[name] = time.perf_counter() - t0

    # Warm-up: corral's numba kernels and every engine's code paths, once, untimed in the results.
    warm_tokens = hf_tok.encode(serialise(WARMUP_INSTANCE), add_special_tokens=False)
    extra_tokens = hf_tok.encode(serialise(WARMUP_EXTRA_INSTANCE), add_special_tokens=False)
    warmup: dict[str, str] = {}
    for e in engines:
        t0 = time.perf_counter()
        try:
            served = e.warm_up() if args.serving_warm_up else None
            product = e.compile(WARMUP_SCHEMA)
            out = e.walk(product, warm_tokens, array("q"))
            warmup[e.name] = f"{(time.perf_counter() - t0) * 1000:.0f} ms ({out.kind}{', ' + served if served else ''})"
        except Exception as exc:  # noqa: BLE001 - reported; the run goes on
            warmup[e.name] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
            continue
        t0 = time.perf_counter()
        try:
            out = e.walk(e.compile(WARMUP_EXTRA_SCHEMA), extra_tokens, array("q"))
            warmup[e.name] += f", extra {(time.perf_counter() - t0) * 1000:.0f} ms ({out.kind})"
        except Exception as exc:  # noqa: BLE001 - an engine without these features is not warmed by them
            warmup[e.name] += f", extra not compiled ({type(exc).__name__})"
    gc.collect()
    gc.freeze()  # tokenizer and vocabulary structures out of the collector's way

    versions = {"corral": corral.__version__}
    for e in engines:
        if e.name != "corral":
            versions[e.name] = _version(e.name)
    print(f"# bench_jsonschema  {datetime.datetime.now().isoformat(timespec='seconds')}  {platform.platform()}  "
          f"cpus={os.cpu_count()}  python {platform.python_version()}")
    print(f"# data {', '.join(os.path.basename(f) for f in files)}: {len(items)} schemas"
          + (f" (--limit {args.limit}, interleaved)" if args.limit else "")
          + (f" (--offset {args.offset})" if args.offset else "")
          + f"; tokenizer {args.tokenizer}; versions {versions}")
    print("# setup: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in setup.items())
          + "; warm-up: " + ", ".join(f"{k} {v}" for k, v in warmup.items()))
    print(f"# compile timeout {args.compile_timeout:g} s (peers abandoned after {args.hard_timeout:g} s); "
          f"max tokens per instance {args.max_tokens}; walking budget {args.schema_budget:g} s per schema and engine")
    for n in notes:
        print("# " + n)
    print()

    totals = {e.name: Totals() for e in engines}
    failures: dict[str, list[dict[str, Any]]] = defaultdict(list)
    records: list[dict[str, Any]] = []
    for k, item in enumerate(items, 1):
        try:
            records.append(bench_item(item, engines, hf_tok, args, totals, failures))
        except Exception as exc:  # noqa: BLE001 - e.g. a tokenizer failure: recorded, not fatal
            records.append({"id": item.id, "subset": item.subset, "error": f"{type(exc).__name__}: {exc}"[:500],
                            "engines": {}})
            print(f"{item.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        gc.collect()
        if args.progress and k % args.progress == 0:
            parts = ", ".join(f"{n} {t.passing}/{t.schemas}" for n, t in totals.items())
            print(f"[{k}/{len(items)}  {time.perf_counter() - wall0:.0f} s]  passing: {parts}", file=sys.stderr)
    wall = time.perf_counter() - wall0
    for e in engines:
        if isinstance(e, XGrammarEngine):
            e.stop_worker()

    sums = {n: summary(t) for n, t in totals.items()}
    report(items, engines, sums, totals, failures, records, args.worst)
    print(f"\nwall time {wall:.0f} s")

    if args.json_out:
        payload = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "tokenizer": args.tokenizer, "files": files, "limit": args.limit, "offset": args.offset, "versions": versions,
            "options": {"compile_timeout": args.compile_timeout, "hard_timeout": args.hard_timeout,
                        "max_tokens": args.max_tokens, "schema_budget": args.schema_budget},
            "setup_seconds": setup, "warmup": warmup, "wall_seconds": wall,
            "summary": sums, "failures": failures, "schemas": records,
        }
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1, ensure_ascii=False)
        print(f"per-schema results written to {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
