"""Adapter: Hugging Face byte-level BPE tokenizers (GPT-2, Llama-3, Qwen2, SmolLM2).

Recognised by a ``ByteLevel`` decoder (or, with no decoder, a ``ByteLevel`` pre-tokenizer) in the
``tokenizers`` config of a fast tokenizer or a bare ``tokenizers.Tokenizer``. Each token string is
decoded through the inverse of GPT-2's ``bytes_to_unicode`` table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.compiler.vocabulary.core import Vocabulary
from corral.compiler.vocabulary.encoding import TokenEncoding
from corral.compiler.vocabulary.hf import build_from_hf_config, hf_encoding

__all__ = ["BYTE_LEVEL_BPE"]


class _ByteLevelBPE:
    name = "hf-byte-level-bpe"
    encodings = frozenset({TokenEncoding.BYTE_LEVEL_BPE})

    def detect(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is ``tokenizers``-backed with a byte-level encoding."""
        return hf_encoding(tokenizer) is TokenEncoding.BYTE_LEVEL_BPE

    def build(self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None) -> Vocabulary:
        """The vocabulary of ``tokenizer`` (see :meth:`Vocabulary.from_hf`)."""
        return build_from_hf_config(tokenizer, TokenEncoding.BYTE_LEVEL_BPE, vocab_size, eos_token_ids)


BYTE_LEVEL_BPE = _ByteLevelBPE()
"""The byte-level BPE adapter."""
