"""Adapter: SentencePiece tokenizers (Llama-2, Mistral ``.model``), slow or fast.

``▁`` stands for a space and ``<0xNN>`` pieces are single raw bytes (byte fallback); everything
else is UTF-8. Two forms are recognised:

* a ``tokenizers``-backed (fast) tokenizer whose config decodes SentencePiece pieces (a
  ``Metaspace`` or ``ByteFallback`` decoder, or a ``▁`` replacement);
* a slow tokenizer with no ``tokenizers`` backend and an ``sp_model`` (a
  ``sentencepiece.SentencePieceProcessor``), read through :func:`from_sentencepiece_model`, which
  the mistral-common adapter uses too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.compiler.vocabulary.core import Vocabulary
from corral.compiler.vocabulary.encoding import (
    TokenEncoding,
    default_eos,
    sentencepiece_byte_piece,
    sentencepiece_bytes,
)
from corral.compiler.vocabulary.hf import build_from_hf_config, hf_backend, hf_encoding
from corral.errors import VocabularyError

__all__ = ["SENTENCEPIECE", "from_sentencepiece_model"]


def from_sentencepiece_model(
    sp: Any, tokenizer: Any, vocab_size: int | None, eos_override: Iterable[int] | None
) -> Vocabulary:
    """The vocabulary of a ``SentencePieceProcessor``.

    Parameters
    ----------
    sp:
        The processor (control, unknown and unused pieces become special ids).
    tokenizer:
        Supplies ``len()`` (ids past the processor's pieces are holes), ``eos_token_id`` and
        ``name_or_path`` when it has them.
    vocab_size, eos_override:
        As in :meth:`Vocabulary.from_hf`.

    Returns
    -------
    Vocabulary

    Raises
    ------
    VocabularyError
        If a byte piece is malformed or the sizes do not fit.
    """
    n = sp.get_piece_size()
    tb: list[bytes | None] = []
    special: set[int] = set()
    token_to_id: dict[str, int] = {}
    for i in range(n):
        piece = sp.id_to_piece(i)
        token_to_id[piece] = i
        if sp.IsControl(i) or sp.IsUnknown(i) or sp.IsUnused(i):
            tb.append(None)
            special.add(i)
        elif sp.IsByte(i):
            b = sentencepiece_byte_piece(piece)
            if b is None:
                raise VocabularyError(f"SentencePiece byte piece {i} is {piece!r}, not <0xNN>")
            tb.append(b)
        else:
            tb.append(sentencepiece_bytes(piece, False) or None)
    total = len(tokenizer) if hasattr(tokenizer, "__len__") else n
    tb.extend([None] * max(0, total - n))
    if eos_override is not None:
        eos = set(eos_override)
    else:
        eos_id = getattr(tokenizer, "eos_token_id", None)
        if eos_id is None:
            eos_id = sp.eos_id() if sp.eos_id() >= 0 else None
        eos = default_eos(eos_id, token_to_id, special)
    return Vocabulary(
        tb,
        eos_token_ids=eos,
        size=vocab_size,
        special_token_ids=special,
        prepends_space=True,
        name=str(getattr(tokenizer, "name_or_path", "") or "sentencepiece"),
    )


class _SentencePiece:
    name = "sentencepiece"
    encodings = frozenset({TokenEncoding.SENTENCEPIECE})

    def detect(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is a fast SentencePiece tokenizer or a slow one with ``sp_model``."""
        if hf_backend(tokenizer) is None:
            return getattr(tokenizer, "sp_model", None) is not None
        return hf_encoding(tokenizer) is TokenEncoding.SENTENCEPIECE

    def build(self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None) -> Vocabulary:
        """The vocabulary of ``tokenizer`` (see :meth:`Vocabulary.from_hf`)."""
        if hf_backend(tokenizer) is None:
            return from_sentencepiece_model(tokenizer.sp_model, tokenizer, vocab_size, eos_token_ids)
        return build_from_hf_config(tokenizer, TokenEncoding.SENTENCEPIECE, vocab_size, eos_token_ids)


SENTENCEPIECE = _SentencePiece()
"""The SentencePiece adapter."""
