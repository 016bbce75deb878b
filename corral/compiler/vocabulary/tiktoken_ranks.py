"""Adapter: tiktoken-style rank tables (``tiktoken.Encoding``).

A tiktoken encoding stores every ordinary token as its raw bytes (the mergeable ranks), so a
token's bytes are read as they are; special tokens (``<|endoftext|>``, ...) are not text. Mistral's
tekken is tiktoken-style too, but it offsets its ranks by its special tokens: the mistral-common
adapter reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.compiler.vocabulary.core import Vocabulary
from corral.compiler.vocabulary.encoding import TokenEncoding, default_eos

__all__ = ["TIKTOKEN", "from_tiktoken_encoding"]


def from_tiktoken_encoding(enc: Any, vocab_size: int | None, eos_override: Iterable[int] | None) -> Vocabulary:
    """The vocabulary of a ``tiktoken.Encoding``.

    Parameters
    ----------
    enc:
        The encoding. Ids below ``enc.n_vocab`` with no rank (holes) are not text.
    vocab_size, eos_override:
        As in :meth:`Vocabulary.from_hf`. By default the EOS ids are ``<|endoftext|>`` and the
        other end markers among the encoding's special tokens.

    Returns
    -------
    Vocabulary

    Raises
    ------
    VocabularyError
        If the sizes do not fit.
    """
    special_ids = {str(s): int(enc.encode_single_token(s)) for s in enc.special_tokens_set}
    special = set(special_ids.values())
    n = int(enc.n_vocab)
    tb: list[bytes | None] = []
    for i in range(n):
        if i in special:
            tb.append(None)
            continue
        try:
            b = enc.decode_single_token_bytes(i)
        except KeyError:  # a hole in the ranks
            b = None
        tb.append(bytes(b) if b else None)
    eos = set(eos_override) if eos_override is not None else default_eos(None, special_ids, special)
    return Vocabulary(
        tb,
        eos_token_ids=eos,
        size=vocab_size,
        special_token_ids=special,
        name=f"tiktoken:{getattr(enc, 'name', '')}",
    )


class _Tiktoken:
    name = "tiktoken"
    encodings = frozenset({TokenEncoding.TIKTOKEN})

    def detect(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is a ``tiktoken.Encoding``."""
        return (
            type(tokenizer).__module__.split(".")[0] == "tiktoken"
            and hasattr(tokenizer, "decode_single_token_bytes")
            and hasattr(tokenizer, "n_vocab")
        )

    def build(self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None) -> Vocabulary:
        """The vocabulary of ``tokenizer`` (see :meth:`Vocabulary.from_hf`)."""
        return from_tiktoken_encoding(tokenizer, vocab_size, eos_token_ids)


TIKTOKEN = _Tiktoken()
"""The tiktoken adapter."""
