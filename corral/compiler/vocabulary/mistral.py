"""Adapter: mistral-common tokenizers (``MistralTokenizer``, ``Tekkenizer``, ``SentencePieceTokenizer``).

Recognised by their module (``mistral_common``). A ``MistralTokenizer`` is unwrapped to the
tokenizer inside it. Tekken is tiktoken-style: ids below ``num_special_tokens`` are special tokens,
every other id's raw bytes come from ``id_to_byte_piece``. A SentencePiece ``.model`` is read through
:func:`corral.compiler.vocabulary.spm.from_sentencepiece_model`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.compiler.vocabulary.core import Vocabulary
from corral.compiler.vocabulary.encoding import TokenEncoding
from corral.compiler.vocabulary.spm import from_sentencepiece_model
from corral.errors import VocabularyError

__all__ = ["MISTRAL_COMMON"]


def _from_tekken(inner: Any, vocab_size: int | None, eos_override: Iterable[int] | None) -> Vocabulary:
    n = inner.n_words
    n_special = inner.num_special_tokens
    tb: list[bytes | None] = [None] * n_special
    tb.extend(inner.id_to_byte_piece(i) or None for i in range(n_special, n))
    eos = set(eos_override) if eos_override is not None else {inner.eos_id}
    return Vocabulary(
        tb,
        eos_token_ids=eos,
        size=vocab_size,
        special_token_ids=range(n_special),
        name=f"tekken:{getattr(inner, 'file_path', '')}",
    )


def _from_spm(inner: Any, vocab_size: int | None, eos_override: Iterable[int] | None) -> Vocabulary:
    sp = inner._model

    class _Shim:
        eos_token_id = inner.eos_id
        name_or_path = f"mistral-spm:{getattr(inner, 'file_path', '')}"

        def __len__(self) -> int:
            return int(inner.n_words)

    return from_sentencepiece_model(sp, _Shim(), vocab_size, eos_override)


class _MistralCommon:
    name = "mistral-common"
    encodings = frozenset({TokenEncoding.SENTENCEPIECE, TokenEncoding.TIKTOKEN})

    def detect(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` comes from mistral-common."""
        return type(tokenizer).__module__.startswith("mistral_common")

    def build(self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None) -> Vocabulary:
        """The vocabulary of ``tokenizer`` (see :meth:`Vocabulary.from_hf`).

        Raises
        ------
        VocabularyError
            If the mistral-common tokenizer is neither tekken nor SentencePiece.
        """
        inner = tokenizer
        if hasattr(inner, "instruct_tokenizer"):
            inner = inner.instruct_tokenizer.tokenizer
        kind = type(inner).__name__
        if kind == "Tekkenizer":
            return _from_tekken(inner, vocab_size, eos_token_ids)
        if kind == "SentencePieceTokenizer":
            return _from_spm(inner, vocab_size, eos_token_ids)
        raise VocabularyError(f"unsupported mistral-common tokenizer type {kind}")


MISTRAL_COMMON = _MistralCommon()
"""The mistral-common adapter."""
