"""Vocabulary: exact token bytes for byte-level BPE, SentencePiece and tiktoken-style tokenizers."""

from __future__ import annotations

import pickle
import random

import pytest

import corral
from corral import Vocabulary, VocabularyError
from tests.conftest import LOADERS, encode, tokenizer_and_vocab

FIXED_TEXTS = [
    "Hello world",
    "",
    " ",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\tand\nnewlines\r\n\r\nand\u00a0nbsp",
    "1234567890 3.14159 -42 1e-9 0x1F",
    '{"name": "Ada", "age": 36, "tags": ["math", "code"], "ok": true, "none": null}',
    '[{"a":1},{"b":[2,3,{"c":"\\u00e9\\n"}]}]',
    "多语言テキスト、中文和日本語",
    "emoji 🎉🧪👩‍💻 and flags 🇫🇷",
    "ünïcödé çà et là — «guillemets» ‘quotes’",
    "Ελληνικά Кириллица עברית العربية हिन्दी",
    "def f(x):\n    return x ** 2  # comment\n",
    "SELECT a, COUNT(*) FROM t WHERE b > 10 GROUP BY a;",
    "<|not_special|> [INST] <<SYS>>",
    "\\ backslashes \\\\ and \"quotes\"",
    "    \n\n\n    \t\t  mixed   whitespace   runs",
]

_POOLS = [
    "abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " \t\n\r",
    "{}[]\":,.-+eE",
    "éàüßçñøå",
    "中文日本語한국어",
    "😀🎉🧪🚀",
    "!@#$%^&*()_=<>?/\\|`~'",
]


def _random_texts(n: int, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 4)
        pools = rng.sample(_POOLS, k)
        chars = "".join(pools)
        out.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 60))))
    return out


TEXTS = FIXED_TEXTS + _random_texts(300)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_vocabulary_bytes_join_to_the_encoded_text(name: str) -> None:
    tok, vocab = tokenizer_and_vocab(name)
    failures = []
    for text in TEXTS:
        ids = encode(tok, text)
        got = vocab.decode_bytes(ids)
        expected = text.encode("utf-8")
        if vocab.prepends_space and text:
            # SentencePiece adds a space before the first word; HF's Metaspace("first") does not
            # when the text already starts with one.
            ok = got == b" " + expected or (text.startswith(" ") and got == expected)
        else:
            ok = got == expected
        if not ok:
            failures.append((text, got))
    assert not failures, failures[:5]


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_vocabulary_special_tokens_are_not_text(name: str) -> None:
    tok, vocab = tokenizer_and_vocab(name)
    assert vocab.eos_token_ids
    for i in vocab.eos_token_ids | vocab.special_token_ids:
        assert vocab.token_bytes[i] is None
    # No token is an empty string: an empty token would let a model loop without progress.
    assert all(b is None or len(b) > 0 for b in vocab.token_bytes)


def test_vocabulary_byte_level_has_all_256_single_bytes(llama3: tuple) -> None:
    _, vocab = llama3
    singles = {b for b in vocab.token_bytes if b is not None and len(b) == 1}
    assert len(singles) == 256


def test_vocabulary_sentencepiece_byte_fallback(mistral_spm: tuple) -> None:
    _, vocab = mistral_spm
    singles = {b for b in vocab.token_bytes if b is not None and len(b) == 1}
    assert {bytes([i]) for i in range(256)} <= singles
    assert vocab.prepends_space


def test_vocabulary_llama3_eos_ids(llama3: tuple) -> None:
    tok, vocab = llama3
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert {tok.eos_token_id, eot} <= vocab.eos_token_ids
    assert len(vocab) == len(tok)


def test_vocabulary_padded_logits_width(llama3: tuple) -> None:
    tok, _ = llama3
    vocab = Vocabulary.from_hf(tok, vocab_size=len(tok) + 1000)
    assert vocab.size == len(tok) + 1000
    assert len(vocab) == len(tok)
    grammar = corral.compile_regex(".*", vocab)
    allowed = corral.bitmask_to_bool(grammar.matcher().next_token_mask(), vocab.size)
    assert not allowed[len(tok) :].any()
    assert allowed.sum() > 100_000


def test_error_when_vocab_size_is_smaller_than_tokenizer(llama3: tuple) -> None:
    tok, _ = llama3
    with pytest.raises(VocabularyError, match="smaller than the tokenizer's"):
        Vocabulary.from_hf(tok, vocab_size=1000)


def test_vocabulary_hash_is_stable_and_content_based() -> None:
    a = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    b = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    c = Vocabulary([b"a", b"c", None], eos_token_ids=[2])
    assert a.hash == b.hash and a == b and hash(a) == hash(b)
    assert a.hash != c.hash
    # Pinned: the hash keys on-disk caches, so it must not change between runs or versions.
    assert a.hash == "e539cf2cd0a630d432006c88272622156b6ab8e0a5e9dd9fbc50f63ab1d9d48d"
    assert pickle.loads(pickle.dumps(a)) == a


def test_vocabulary_is_immutable() -> None:
    v = Vocabulary([b"a", None], eos_token_ids=[1])
    with pytest.raises(AttributeError):
        v.size = 5  # type: ignore[misc]
    assert isinstance(v.token_bytes, tuple)


def test_error_when_eos_out_of_range() -> None:
    with pytest.raises(VocabularyError, match="EOS id 7 is outside the vocabulary"):
        Vocabulary([b"a"], eos_token_ids=[7])


def test_error_when_tokenizer_is_not_supported() -> None:
    with pytest.raises(VocabularyError, match="cannot read the vocabulary of object"):
        Vocabulary.from_hf(object())


def test_from_hf_is_memoised_per_tokenizer(llama3: tuple) -> None:
    tok, vocab = llama3
    assert Vocabulary.from_hf(tok) is vocab
    padded = Vocabulary.from_hf(tok, vocab_size=len(tok) + 8)
    assert padded is not vocab and padded.size == len(tok) + 8
    assert Vocabulary.from_hf(tok, vocab_size=len(tok) + 8) is padded
