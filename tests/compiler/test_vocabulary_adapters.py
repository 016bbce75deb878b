"""The tokenizer adapter registry behind Vocabulary.from_hf, and Vocabulary.derived."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest

from corral import Vocabulary, VocabularyError
from corral.compiler.maskstore import token_trie
from corral.compiler.vocabulary import TokenEncoding, adapter_for, adapters, register_adapter, registry
from tests.conftest import LOADERS, SHARED, tokenizer_and_vocab

# Which adapter reads each tokenizer of the shared parametrisation.
EXPECTED_ADAPTER = {
    "llama3": "hf-byte-level-bpe",
    "smollm2": "hf-byte-level-bpe",
    "tekken": "mistral-common",
    "mistral-spm": "mistral-common",
    "shared-gpt2": "hf-byte-level-bpe",
    "shared-qwen2": "hf-byte-level-bpe",
    "shared-llama3": "hf-byte-level-bpe",
    "shared-llama2-spm": "sentencepiece",
}


def _tiktoken_encoding() -> Any:
    """A small tiktoken encoding built in memory: 256 bytes, a few merges, two specials, a hole."""
    import tiktoken

    ranks = {bytes([i]): i for i in range(256)}
    for merge in [b"he", b"ll", b"hell", b"hello", b" w", b"or", b" wor", b"ld", b" world"]:
        ranks[merge] = len(ranks)
    return tiktoken.Encoding(
        "corral-test",
        pat_str=r" ?\w+| ?[^\w\s]+|\s+",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 300, "<|fim_prefix|>": 301},
    )


def _wordpiece() -> Any:
    from tokenizers import Tokenizer, decoders, models

    tok = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    tok.decoder = decoders.WordPiece()
    return tok


def test_adapters_are_tried_in_the_documented_order() -> None:
    assert [a.name for a in adapters()] == [
        "mistral-common",
        "tiktoken",
        "hf-byte-level-bpe",
        "sentencepiece",
        "hf-unsupported",
    ]


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_each_adapter_detects_its_tokenizer_and_no_other(name: str) -> None:
    tok, _ = tokenizer_and_vocab(name)
    assert [a.name for a in adapters() if a.detect(tok)] == [EXPECTED_ADAPTER[name]]
    assert adapter_for(tok).name == EXPECTED_ADAPTER[name]
    if name == "shared-llama2-spm":  # the slow (sp_model) form of the same tokenizer
        from transformers import AutoTokenizer

        slow = AutoTokenizer.from_pretrained(str(SHARED / "llama2-spm"), use_fast=False)
        assert [a.name for a in adapters() if a.detect(slow)] == ["sentencepiece"]
        assert Vocabulary.from_hf(slow).hash == tokenizer_and_vocab(name)[1].hash


def test_bare_tokenizers_tokenizer_is_read_by_the_byte_level_adapter(llama3: tuple) -> None:
    tok, vocab = llama3
    backend = tok.backend_tokenizer
    assert [a.name for a in adapters() if a.detect(backend)] == ["hf-byte-level-bpe"]
    assert Vocabulary.from_hf(backend).hash == vocab.hash


def test_tiktoken_encoding_is_read_as_raw_bytes() -> None:
    enc = _tiktoken_encoding()
    assert [a.name for a in adapters() if a.detect(enc)] == ["tiktoken"]
    vocab = Vocabulary.from_hf(enc)
    assert len(vocab) == enc.n_vocab == 302
    assert vocab.eos_token_ids == frozenset({300})
    assert vocab.special_token_ids == frozenset({300, 301})
    assert vocab.token_bytes[300] is None and vocab.token_bytes[301] is None
    assert all(vocab.token_bytes[i] is None for i in range(265, 300))  # holes in the ranks
    assert vocab.name == "tiktoken:corral-test" and not vocab.prepends_space
    for text in ["hello world", "hello, wor ld!\n", "héllo 🎉 world"]:
        assert vocab.decode_bytes(enc.encode_ordinary(text)) == text.encode("utf-8")


def test_no_adapter_detects_foreign_objects() -> None:
    for obj in [object(), "gpt2", 42, None, {"model": {}}]:
        assert not any(a.detect(obj) for a in adapters())


def test_error_when_no_adapter_recognises_the_tokenizer() -> None:
    with pytest.raises(VocabularyError) as e:
        Vocabulary.from_hf(object())
    assert str(e.value) == (
        "cannot read the vocabulary of object: corral needs a fast (tokenizers-backed) Hugging Face "
        "tokenizer, a SentencePiece tokenizer with `sp_model`, a mistral-common tokenizer or a tiktoken "
        "encoding; load it with AutoTokenizer.from_pretrained(..., use_fast=True) (tokenizer adapters "
        "tried: mistral-common, tiktoken, hf-byte-level-bpe, sentencepiece, hf-unsupported)"
    )


def test_error_when_tokenizer_is_wordpiece() -> None:
    tok = _wordpiece()
    assert [a.name for a in adapters() if a.detect(tok)] == ["hf-unsupported"]
    with pytest.raises(VocabularyError) as e:
        Vocabulary.from_hf(tok)
    assert str(e.value) == (
        "WordPiece tokenizers (BERT-style '##' pieces) are not supported: their decoded text "
        "depends on neighbouring tokens, so a token has no fixed bytes"
    )


class _Letters:
    """A made-up tokenizer kind: one token per lowercase letter."""

    letters = "abcdefghijklmnopqrstuvwxyz"


class _LettersAdapter:
    name = "letters"
    encodings = frozenset({TokenEncoding.TIKTOKEN})

    def detect(self, tokenizer: Any) -> bool:
        return isinstance(tokenizer, _Letters)

    def build(self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None) -> Vocabulary:
        tb: list[bytes | None] = [c.encode() for c in tokenizer.letters] + [None]
        return Vocabulary(tb, eos_token_ids=eos_token_ids or [len(tb) - 1], size=vocab_size, name="letters")


def test_register_adapter_adds_a_tokenizer_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_ADAPTERS", list(adapters()))
    register_adapter(_LettersAdapter(), before="hf-unsupported")
    assert [a.name for a in adapters()][-2:] == ["letters", "hf-unsupported"]
    vocab = Vocabulary.from_hf(_Letters(), vocab_size=40)
    assert vocab.size == 40 and vocab.decode_bytes([7, 8]) == b"hi" and vocab.eos_token_ids == {26}
    register_adapter(_LettersAdapter())  # same name: replaced in place
    assert [a.name for a in adapters()][-2:] == ["letters", "hf-unsupported"]
    other = type("_Other", (_LettersAdapter,), {"name": "other"})()
    with pytest.raises(VocabularyError) as e:
        register_adapter(other, before="nope")
    assert str(e.value) == (
        "no tokenizer adapter named 'nope'; registered: mistral-common, tiktoken, hf-byte-level-bpe, "
        "sentencepiece, letters, hf-unsupported"
    )


# -- Vocabulary.derived ----------------------------------------------------------------------


def test_derived_is_built_once_under_concurrent_requests() -> None:
    vocab = Vocabulary([b"a", b"bc", None], eos_token_ids=[2])
    calls: list[int] = []
    start = threading.Barrier(4)

    def build(v: Vocabulary) -> list[int]:
        calls.append(1)
        time.sleep(0.05)  # keep the other threads waiting on the build in flight
        return [len(b or b"") for b in v.token_bytes]

    results: list[Any] = [None] * 4

    def ask(k: int) -> None:
        start.wait()
        results[k] = vocab.derived("lengths", build)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results[0] == [1, 2, 0] and all(r is results[0] for r in results)


def test_derived_keys_are_separate_and_nest() -> None:
    vocab = Vocabulary([b"a", None], eos_token_ids=[1])
    outer = vocab.derived("outer", lambda v: ("outer", v.derived("inner", lambda _: "inner")))
    assert outer == ("outer", "inner")
    assert vocab.derived("inner", lambda _: "other") == "inner"


def test_derived_keeps_nothing_when_build_raises() -> None:
    vocab = Vocabulary([b"a", None], eos_token_ids=[1])

    def fail(_: Vocabulary) -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        vocab.derived("x", fail)
    assert vocab.derived("x", lambda _: 3) == 3


def test_derived_leaves_hash_equality_and_pickling_alone() -> None:
    vocab = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    before = (vocab.hash, hash(vocab), pickle.dumps(vocab))
    trie = token_trie(vocab)
    assert vocab.derived("trie", lambda _: None) is trie and token_trie(vocab) is trie
    assert (vocab.hash, hash(vocab), pickle.dumps(vocab)) == before
    assert vocab.hash == "e539cf2cd0a630d432006c88272622156b6ab8e0a5e9dd9fbc50f63ab1d9d48d"
    copy = pickle.loads(pickle.dumps(vocab))
    assert copy == vocab and hash(copy) == hash(vocab)
    assert copy.derived("trie", lambda _: "rebuilt") == "rebuilt"  # derived structures are not pickled
    with pytest.raises(AttributeError):
        vocab._cache = {}  # type: ignore[attr-defined]
