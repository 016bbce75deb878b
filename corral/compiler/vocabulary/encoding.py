"""How a tokenizer spells its tokens, and the decoding of each spelling to exact bytes.

Tokenizers store their tokens in one of a few encodings (:class:`TokenEncoding`). The adapters
(one module per tokenizer source) read a tokenizer's table and turn every token into the bytes it
adds to the decoded text with the functions here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from functools import lru_cache

from corral.errors import VocabularyError

__all__ = [
    "END_MARKERS",
    "TokenEncoding",
    "byte_level_bytes",
    "default_eos",
    "sentencepiece_bytes",
    "sentencepiece_byte_piece",
]


class TokenEncoding(enum.Enum):
    """The spelling of the tokens in a tokenizer's vocabulary table.

    Attributes
    ----------
    BYTE_LEVEL_BPE
        GPT-2's byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): every byte is written as one
        printable character (GPT-2's ``bytes_to_unicode`` table); decoded through the inverse table.
    SENTENCEPIECE
        SentencePiece (Llama-2, Mistral ``.model``): ``▁`` stands for a space, ``<0xNN>`` pieces
        are single raw bytes when the model has byte fallback, everything else is UTF-8.
    TIKTOKEN
        tiktoken-style rank tables (tiktoken encodings, Mistral's tekken): the table already holds
        raw bytes.

    Examples
    --------
    >>> TokenEncoding.SENTENCEPIECE.value
    'sentencepiece'
    """

    BYTE_LEVEL_BPE = "byte-level-bpe"
    SENTENCEPIECE = "sentencepiece"
    TIKTOKEN = "tiktoken"


# Names of end-of-turn / end-of-text special tokens that generation loops stop on. They are
# allowed as EOS in addition to the tokenizer's declared ``eos_token_id``.
END_MARKERS = (
    "</s>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "<|end|>",
)

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: printable character -> byte value."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def byte_level_bytes(token: str) -> bytes:
    """The bytes of a byte-level BPE token string.

    Parameters
    ----------
    token:
        The token as stored in the vocabulary (one printable character per byte).

    Returns
    -------
    bytes

    Raises
    ------
    VocabularyError
        If a character of ``token`` stands for no byte.

    Examples
    --------
    >>> byte_level_bytes("Ġhello")
    b' hello'
    """
    table = _byte_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError as e:
        raise VocabularyError(
            f"token {token!r} is not in byte-level encoding (character {e.args[0]!r} has no byte); "
            "the tokenizer's decoder says ByteLevel, so its vocabulary looks corrupted"
        ) from None


def sentencepiece_byte_piece(piece: str) -> bytes | None:
    """The byte of a ``<0xNN>`` byte-fallback piece, or ``None`` if ``piece`` is not one.

    Examples
    --------
    >>> sentencepiece_byte_piece("<0x0A>"), sentencepiece_byte_piece("▁a")
    (b'\\n', None)
    """
    m = _BYTE_PIECE.fullmatch(piece)
    return bytes([int(m.group(1), 16)]) if m else None


def sentencepiece_bytes(piece: str, byte_fallback: bool) -> bytes:
    """The bytes of a SentencePiece piece (``▁`` is a space; ``<0xNN>`` a byte with byte fallback).

    Parameters
    ----------
    piece:
        The piece as stored in the vocabulary.
    byte_fallback:
        Whether ``<0xNN>`` pieces are raw bytes (the model has byte fallback).

    Returns
    -------
    bytes

    Examples
    --------
    >>> sentencepiece_bytes("▁hello", False), sentencepiece_bytes("<0x41>", True)
    (b' hello', b'A')
    """
    if byte_fallback:
        b = sentencepiece_byte_piece(piece)
        if b is not None:
            return b
    return piece.replace("\u2581", " ").encode("utf-8")


def default_eos(eos_id: int | None, token_to_id: Mapping[str, int], special: set[int]) -> set[int]:
    """The default EOS ids: ``eos_id`` plus the special tokens named in :data:`END_MARKERS`.

    Parameters
    ----------
    eos_id:
        The tokenizer's declared EOS id, if any.
    token_to_id:
        Token string -> id.
    special:
        Ids of special tokens; an end marker counts only when it is special.

    Returns
    -------
    set of int
    """
    out: set[int] = set()
    if eos_id is not None:
        out.add(int(eos_id))
    for marker in END_MARKERS:
        i = token_to_id.get(marker)
        if i is not None and i in special:
            out.add(i)
    return out
