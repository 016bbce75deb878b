"""Matcher API: masks, accept/refuse, EOS, rollback, fork, forced tokens, bitmask helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corral
from corral import CorralError, Vocabulary, compile_regex
from tests.conftest import encode

VOCAB = Vocabulary(
    [b"a", b"b", b"ab", b"-", b"1", b"12", b"\xc3", b"\xa9", b"x", None, None],
    eos_token_ids=[9],
    special_token_ids=[10],
    size=40,
)


def allowed(m: corral.Matcher) -> list[int]:
    return [int(t) for t in np.flatnonzero(corral.bitmask_to_bool(m.next_token_mask(), VOCAB.size))]


def test_mask_shape_and_dtype() -> None:
    m = compile_regex("a", VOCAB).matcher()
    mask = m.next_token_mask()
    assert mask.dtype == np.uint32 and mask.shape == (2,)


def test_accept_and_refuse_leave_state_consistent() -> None:
    m = compile_regex(r"ab-\d+", VOCAB).matcher()
    assert allowed(m) == [0, 2]
    assert not m.accept_token(1)
    assert m.num_tokens == 0 and allowed(m) == [0, 2]
    assert m.accept_token(2)
    assert allowed(m) == [3]
    assert m.accept_token(3) and m.accept_token(5)
    assert m.is_accepting()
    assert allowed(m) == [4, 5, 9]


@pytest.mark.parametrize("bad", [-1, 10, 11, 39, 40, 10**9])
def test_ids_outside_text_are_never_accepted(bad: int) -> None:
    m = compile_regex(".*", VOCAB).matcher()
    assert not m.accept_token(bad)
    assert not m.allows(bad)


def test_eos_only_when_complete_then_finished() -> None:
    m = compile_regex("ab", VOCAB).matcher()
    assert not m.accept_token(9)
    assert m.accept_token(0) and not m.is_accepting() and not m.accept_token(9)
    assert m.accept_token(1) and m.is_accepting()
    assert allowed(m) == [9]
    assert m.accept_token(9) and m.is_finished() and not m.is_accepting()
    assert allowed(m) == [] and not m.accept_token(9) and not m.accept_token(0)
    m.rollback(1)
    assert not m.is_finished() and m.is_accepting()


def test_half_characters() -> None:
    m = compile_regex("é", VOCAB).matcher()
    assert allowed(m) == [6]
    assert m.accept_token(6)
    assert allowed(m) == [7]


def test_rollback_and_errors() -> None:
    m = compile_regex(r"(ab)+", VOCAB).matcher()
    for t in [2, 0, 1, 2]:
        assert m.accept_token(t)
    assert m.num_tokens == 4
    m.rollback(2)
    assert m.num_tokens == 2 and allowed(m) == [1]
    m.rollback(1)
    assert m.num_tokens == 1 and allowed(m) == [0, 2, 9]
    with pytest.raises(CorralError, match="cannot roll back 2 tokens: 1 accepted"):
        m.rollback(2)
    m.reset()
    assert m.num_tokens == 0


def test_fork_is_independent() -> None:
    m = compile_regex(r"a+b", VOCAB).matcher()
    m.accept_token(0)
    f = m.fork()
    assert f.accept_token(1) and f.is_accepting()
    assert not m.is_accepting() and m.num_tokens == 1


def test_accept_tokens_is_all_or_nothing() -> None:
    m = compile_regex(r"ab-1", VOCAB).matcher()
    assert not m.accept_tokens([2, 3, 5])
    assert m.num_tokens == 0
    assert m.accept_tokens([2, 3, 4])


def test_accept_bytes_and_forced() -> None:
    m = compile_regex(r"ab-x(1|12)", VOCAB).matcher()
    assert m.forced_bytes() == b"ab-x1"
    assert m.forced_tokens() == []  # "a" and "ab" both allowed
    assert m.accept_token(2)
    assert m.forced_tokens() == [3, 8]
    assert m.accept_bytes(b"-x")
    assert m.forced_bytes() == b"1"
    assert not m.accept_bytes(b"3")
    assert m.accept_bytes(b"1") and m.is_accepting()
    # "12" could go on with "2", but no token spells it: EOS is the only choice.
    assert allowed(m) == [9] and m.forced_tokens() == []
    m2 = compile_regex("ab", VOCAB).matcher()
    m2.accept_token(2)
    assert m2.forced_tokens() == [] and allowed(m2) == [9]


def test_apply_token_bitmask_cpu() -> None:
    m = compile_regex(r"ab|1", VOCAB).matcher()
    logits = torch.zeros(45)
    corral.apply_token_bitmask_(logits, m.next_token_mask())
    finite = torch.isfinite(logits).nonzero().flatten().tolist()
    assert finite == [0, 2, 4]  # ids past the mask (40..44) are masked too
    batch = torch.randn(2, 40)
    masks = corral.allocate_token_bitmask(2, 40)
    m.fill_next_token_mask(masks[1])
    corral.apply_token_bitmask_(batch, masks)
    assert not torch.isfinite(batch[0]).any()
    assert torch.isfinite(batch[1]).nonzero().flatten().tolist() == [0, 2, 4]


def test_bitmask_to_bool_reference() -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 2**32, size=5, dtype=np.uint64).astype(np.uint32)
    got = corral.bitmask_to_bool(mask, 150)
    expected = [bool((int(mask[t >> 5]) >> (t & 31)) & 1) for t in range(150)]
    assert got.tolist() == expected


def test_real_tokenizer_walk_llama3(llama3: tuple) -> None:
    tok, vocab = llama3
    g = compile_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})", vocab)
    m = g.matcher()
    for t in encode(tok, "2024-11-22T03:27:59+01:00"):
        assert m.allows(t)
        assert m.accept_token(t)
    assert m.is_accepting()
    allowed_ids = np.flatnonzero(corral.bitmask_to_bool(m.next_token_mask(), vocab.size))
    assert set(allowed_ids.tolist()) == set(vocab.eos_token_ids)
    m2 = g.matcher()
    assert m2.accept_bytes(b"2024-11-22T03:27:59+01")
    assert m2.forced_bytes() == b":"


def test_grammar_pickles(llama3: tuple) -> None:
    import pickle

    _, vocab = llama3
    g = compile_regex(r"[a-z]+", vocab)
    g2 = pickle.loads(pickle.dumps(g))
    assert np.array_equal(g2.matcher().next_token_mask(), g.matcher().next_token_mask())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("width", [37, 64, 100])
def test_apply_bitmask_equals_reference(dtype: torch.dtype, width: int) -> None:
    rng = np.random.default_rng(width)
    masks = rng.integers(0, 2**32, size=(3, 2), dtype=np.uint64).astype(np.uint32)
    masks[1, 0] = 0xFFFFFFFF  # a fully allowed word
    logits = torch.randn(3, width).to(dtype)
    expected = logits.clone()
    for r in range(3):
        for t in range(width):
            w = t >> 5
            if w >= masks.shape[1] or not (int(masks[r, w]) >> (t & 31)) & 1:
                expected[r, t] = float("-inf")
    got = corral.apply_token_bitmask_(logits, masks)
    assert got is logits
    assert torch.equal(logits, expected)
    one = expected[0].clone()
    assert torch.equal(corral.apply_token_bitmask_(logits[0].clone(), masks[0]), one)
