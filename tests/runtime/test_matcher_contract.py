"""The Matcher contract, run over every constraint kind and real vocabularies.

Random walks (fixed seeds; many steps single punctuation bytes, so that they leave strings and
names) through a regex, a Lark grammar, a GBNF grammar and a JSON Schema, under Llama-3's
byte-level BPE and a SentencePiece vocabulary with byte fallback. At every step:

- ``check_token`` equals the mask bit for random ids, the allowed ids (all of them when there are
  at most ``MAX_ALLOWED``, else a sample of that many), every single-byte token
  (halves of UTF-8 characters, byte-fallback pieces), special and EOS ids and padding ids; it is
  asked of a matcher that has never built a mask for its state, so it really walks the token;
- ``accept_token(t)`` succeeds exactly when ``check_token(t)``;
- ``rollback(n)`` restores the exact mask of ``n`` steps ago; ``fork()`` is independent of its
  parent; a pickled and reloaded grammar gives the same masks.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import corral
from corral import CorralError, Vocabulary
from tests.conftest import greedy_tokens

REGEX = r"(héllo|wörld|[a-z]{1,4})( (é|[0-9]{1,3}|\"[^\"]{0,5}\"))*"

LARK = r"""
start: expr
expr: term (("+" | "-") term)*
term: NUMBER | NAME | STRING | "(" expr ")"
NUMBER: /[0-9]+/
NAME: /[a-zé]+/
STRING: /"[^"]{0,6}"/
%ignore " "
"""

GBNF = r"""
root ::= "[" item ("," " "? item)* "]"
item ::= [0-9]+ | "\"" [a-zé ]* "\""
"""

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"enum": ["a", "bé"]}, "maxItems": 3},
    },
    "required": ["name"],
}

# a complete text of each constraint
COMPLETE = {"regex": "héllo 12", "regex-lazy": "wörld \"é\"", "lark": "(ab+12)", "gbnf": '[1, "é"]',
            "schema": '{"name":"é"}'}

COMPILERS: dict[str, Callable[[Vocabulary], corral.CompiledGrammar]] = {
    "regex": lambda v: corral.compile_regex(REGEX, v),
    # a store too small to keep any mask: check_token walks the DFA instead of reading a row
    "regex-lazy": lambda v: corral.compile_regex(REGEX, v, mask_cache_bytes=1),
    "lark": lambda v: corral.compile_grammar(LARK, v),
    "gbnf": lambda v: corral.compile_grammar(GBNF, v, syntax="gbnf"),
    "schema": lambda v: corral.compile_json_schema(SCHEMA, v),
}
KINDS = sorted(COMPILERS)
VOCABS = ["llama3", "mistral_spm"]
STEPS = 24
N_RANDOM = 300
MAX_ALLOWED = 1500

_compiled: dict[tuple[str, str], corral.CompiledGrammar] = {}


@pytest.fixture(params=VOCABS)
def vocab(request: pytest.FixtureRequest) -> Vocabulary:
    v: Vocabulary = request.getfixturevalue(request.param)[1]
    return v


def compiled(kind: str, vocab: Vocabulary) -> corral.CompiledGrammar:
    key = (kind, vocab.hash)
    if key not in _compiled:
        _compiled[key] = COMPILERS[kind](vocab)
    return _compiled[key]


def mask_of(m: corral.Matcher) -> np.ndarray:
    return corral.bitmask_to_bool(m.next_token_mask(), m.grammar.vocab.size).copy()


def fixed_ids(vocab: Vocabulary) -> np.ndarray:
    """Ids worth asking at every step: single-byte tokens, special and EOS ids, padding."""
    special = sorted(vocab.special_token_ids)[:40] + sorted(vocab.eos_token_ids)
    padding = list(range(len(vocab), min(vocab.size, len(vocab) + 8)))
    return np.unique(np.concatenate([one_byte_ids(vocab), np.array(special + padding, dtype=np.int64)]))


_one_byte: dict[tuple[str, bool], np.ndarray] = {}


def one_byte_ids(vocab: Vocabulary, punctuation: bool = False) -> np.ndarray:
    """The single-byte text tokens (only ASCII punctuation ones with ``punctuation``)."""
    key = (vocab.hash, punctuation)
    if key not in _one_byte:
        _one_byte[key] = np.array(
            [t for t, b in enumerate(vocab.token_bytes)
             if b is not None and len(b) == 1 and (not punctuation or (b.isascii() and not b.isalnum()))],
            dtype=np.int64,
        )
    return _one_byte[key]


def walk(grammar: corral.CompiledGrammar, seed: int, steps: int = STEPS) -> tuple[list[int], list[np.ndarray]]:
    """A random walk through the allowed text tokens: the tokens and the mask before each."""
    rng = np.random.default_rng(seed)
    m = grammar.matcher()
    eos = sorted(grammar.vocab.eos_token_ids)
    tokens: list[int] = []
    masks = [mask_of(m)]
    for _ in range(steps):
        allowed = np.flatnonzero(masks[-1])
        allowed = allowed[~np.isin(allowed, eos)]
        if not allowed.shape[0]:
            break
        # often a single punctuation byte (quotes, brackets, separators: the walk leaves strings
        # and names instead of growing them forever), sometimes any single byte
        punct = allowed[np.isin(allowed, one_byte_ids(grammar.vocab, punctuation=True))]
        short = allowed[np.isin(allowed, one_byte_ids(grammar.vocab))]
        r = rng.random()
        pool = punct if punct.shape[0] and r < 0.4 else short if short.shape[0] and r < 0.6 else allowed
        t = int(rng.choice(pool))
        assert m.accept_token(t)
        tokens.append(t)
        masks.append(mask_of(m))
    return tokens, masks


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_check_token_and_accept_token_agree_with_mask(kind: str, vocab: Vocabulary, seed: int) -> None:
    g = compiled(kind, vocab)
    tokens, masks = walk(g, seed)
    rng = np.random.default_rng(100 + seed)
    always = fixed_ids(vocab)
    # ``probe`` replays the walk on chart sets of its own and never builds a mask, so every
    # check_token below decides by walking the token, not by reading a cached mask.
    probe = g.matcher()
    for step, mask in enumerate(masks):
        allowed = np.flatnonzero(mask)
        # every allowed id while they are few; a sample of them inside open strings and names
        some = allowed if allowed.shape[0] <= MAX_ALLOWED else rng.choice(allowed, MAX_ALLOWED, replace=False)
        ids = np.unique(np.concatenate([rng.integers(0, vocab.size, N_RANDOM), some, always]))
        got = np.array([probe.check_token(int(t)) for t in ids], dtype=bool)
        wrong = ids[got != mask[ids]]
        assert not wrong.shape[0], (
            f"step {step}: check_token disagrees with the mask on "
            f"{[(int(t), vocab.token_bytes[t] if t < len(vocab) else None, bool(mask[t])) for t in wrong[:10]]}"
        )
        rejected = ids[~mask[ids]]
        for t in np.concatenate([rng.choice(rejected, min(8, rejected.shape[0]), replace=False),
                                 rng.choice(allowed, min(8, allowed.shape[0]), replace=False)]):
            f = probe.fork()
            assert f.accept_token(int(t)) == bool(mask[t]), (step, int(t), vocab.token_bytes[t])
            assert f.num_tokens == probe.num_tokens + int(mask[t])
        assert probe.num_tokens == step
        if step < len(tokens):
            assert probe.accept_token(tokens[step])
    # once the mask of the state is built, the answers stay the same
    assert np.array_equal(mask_of(probe), masks[-1])
    ids = np.unique(np.concatenate([rng.integers(0, vocab.size, N_RANDOM), always]))
    assert [probe.check_token(int(t)) for t in ids] == masks[-1][ids].tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_check_token_on_eos_bad_ids_and_after_finishing(kind: str, vocab: Vocabulary) -> None:
    g = compiled(kind, vocab)
    m = g.matcher()
    eos = min(vocab.eos_token_ids)
    for bad in (-1, vocab.size, vocab.size + 31, 10**12):
        with pytest.raises(CorralError, match="outside the mask"):
            m.check_token(bad)
        assert not m.allows(bad)
    for bad in ("1", 1.0, None):
        with pytest.raises(CorralError, match="must be an integer"):
            m.check_token(bad)  # type: ignore[arg-type]
    tokens = greedy_tokens(vocab, COMPLETE[kind].encode())
    for t in tokens:
        assert m.check_token(eos) == m.check_token(np.int64(eos)) == m.is_accepting()
        assert m.check_token(t) and m.accept_token(t)
    assert m.is_accepting() and m.check_token(eos) and m.accept_token(eos) and m.is_finished()
    ids = np.random.default_rng(3).integers(0, vocab.size, 200).tolist() + sorted(vocab.eos_token_ids)
    assert not any(m.check_token(t) for t in ids + tokens)


@pytest.mark.parametrize("kind", KINDS)
def test_rollback_restores_exact_masks(kind: str, vocab: Vocabulary) -> None:
    g = compiled(kind, vocab)
    tokens, masks = walk(g, seed=4)
    m = g.matcher()
    assert m.accept_tokens(tokens)
    rng = np.random.default_rng(5)
    while m.num_tokens:
        n = int(rng.integers(1, min(4, m.num_tokens) + 1))
        m.rollback(n)
        assert np.array_equal(mask_of(m), masks[m.num_tokens]), (m.num_tokens, n)
        # and forward again along the walk for one token, then back
        assert m.accept_token(tokens[m.num_tokens])
        assert np.array_equal(mask_of(m), masks[m.num_tokens])
        m.rollback(1)
    with pytest.raises(CorralError):
        m.rollback(1)
    assert np.array_equal(mask_of(m), masks[0])


@pytest.mark.parametrize("kind", KINDS)
def test_fork_is_independent(kind: str, vocab: Vocabulary) -> None:
    g = compiled(kind, vocab)
    tokens, masks = walk(g, seed=6)
    half = len(tokens) // 2
    parent = g.matcher()
    assert parent.accept_tokens(tokens[:half])
    child = parent.fork()
    assert child.num_tokens == parent.num_tokens == half
    assert child.accept_tokens(tokens[half:])
    assert parent.num_tokens == half and np.array_equal(mask_of(parent), masks[half])
    assert np.array_equal(mask_of(child), masks[-1])
    # the parent goes its own way: the child does not see it
    other = [t for t in np.flatnonzero(masks[half]).tolist() if t not in vocab.eos_token_ids]
    alt = other[-1] if other[-1] != (tokens[half] if half < len(tokens) else -1) else other[0]
    assert parent.accept_token(alt)
    parent.rollback(parent.num_tokens)
    assert np.array_equal(mask_of(child), masks[-1]) and child.num_tokens == len(tokens)
    for t in np.flatnonzero(masks[-1])[:50].tolist():
        assert child.check_token(t)
    child.rollback(len(tokens) - half)
    assert np.array_equal(mask_of(child), masks[half])


@pytest.mark.parametrize("kind", KINDS)
def test_pickled_grammar_gives_the_same_masks(kind: str, vocab: Vocabulary) -> None:
    g = compiled(kind, vocab)
    tokens, masks = walk(g, seed=7)
    g2: Any = pickle.loads(pickle.dumps(g))
    m = g2.matcher()
    for step, mask in enumerate(masks):
        assert np.array_equal(mask_of(m), mask), step
        if step < len(tokens):
            assert m.check_token(tokens[step]) and m.accept_token(tokens[step])


PADDED = Vocabulary(
    [b"a", b"b", b"ab", b"1", b"\xc3", b"\xa9", b'"', b"[", b"]", b"{", b"}", b":", b",", b" ", None, None],
    eos_token_ids=[14],
    special_token_ids=[15],
    size=48,
)


@pytest.mark.parametrize("kind", KINDS)
def test_check_token_on_every_id_of_a_small_padded_vocabulary(kind: str) -> None:
    g = compiled(kind, PADDED)
    m = g.matcher()
    rng = np.random.default_rng(8)
    history: list[int] = []
    for _ in range(12):
        mask = mask_of(m)
        probe = g.matcher()  # never builds a mask: its check_token walks
        assert probe.accept_tokens(history)
        assert [probe.check_token(t) for t in range(PADDED.size)] == mask.tolist()
        assert [m.check_token(t) for t in range(PADDED.size)] == mask.tolist()
        text = np.flatnonzero(mask[:14])
        if not text.shape[0]:
            break
        history.append(int(rng.choice(text)))
        assert m.accept_token(history[-1])
