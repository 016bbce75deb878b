"""Token ids -> the exact bytes each token contributes to the text.

A constraint is enforced on bytes, so corral needs, for every token id, the bytes that appear in the
decoded text when the model emits that token. Tokenizers store tokens in several encodings:

* byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): every byte is mapped to a printable character
  (GPT-2's ``bytes_to_unicode`` table); the token string is decoded through the inverse table.
* SentencePiece (Llama-2, Mistral ``.model``): ``▁`` stands for a space and ``<0xNN>`` pieces are
  single raw bytes (byte fallback); everything else is UTF-8.
* tiktoken-style (Mistral's tekken): the vocabulary already stores raw bytes.

Special tokens (BOS, EOS, control tokens) are not text: they have no bytes and are only ever allowed
as end-of-sequence markers (the EOS ids). Ids past the tokenizer's length but inside the model's
logits (padded vocabularies) are never allowed.

SentencePiece tokenizers prepend a space to the first word of an encoded text ("hello" is encoded as
"▁hello"). The bytes recorded here are those the token contributes in the middle of a text, i.e. with
the space; :attr:`Vocabulary.prepends_space` tells whether the tokenizer adds one at the start.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from corral.errors import VocabularyError

__all__ = ["Vocabulary"]

# Names of end-of-turn / end-of-text special tokens that generation loops stop on. They are
# allowed as EOS in addition to the tokenizer's declared ``eos_token_id``.
_END_MARKERS = (
    "</s>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "<|end|>",
)

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")

# Vocabulary.from_hf results, per live tokenizer object (a tokenizer's vocabulary is built once).
_FROM_HF_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Vocabulary]] = weakref.WeakKeyDictionary()
_FROM_HF_LOCK = threading.Lock()


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


def _byte_level_bytes(token: str) -> bytes:
    table = _byte_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError as e:
        raise VocabularyError(
            f"token {token!r} is not in byte-level encoding (character {e.args[0]!r} has no byte); "
            "the tokenizer's decoder says ByteLevel, so its vocabulary looks corrupted"
        ) from None


def _spm_bytes(piece: str, byte_fallback: bool) -> bytes:
    if byte_fallback:
        m = _BYTE_PIECE.fullmatch(piece)
        if m:
            return bytes([int(m.group(1), 16)])
    return piece.replace("\u2581", " ").encode("utf-8")


def _decoder_types(decoder: Any) -> list[dict[str, Any]]:
    """Flatten a tokenizers decoder config (which may be a Sequence) into a list of steps."""
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        out: list[dict[str, Any]] = []
        for d in decoder.get("decoders", []):
            out.extend(_decoder_types(d))
        return out
    return [decoder]


def _token_bytes(token_bytes: Any) -> tuple[bytes | None, ...]:
    """``token_bytes`` as a tuple of ``bytes``/``None``, or a :class:`VocabularyError`."""
    if isinstance(token_bytes, (str, bytes)):
        raise VocabularyError(f"token_bytes must be a sequence of bytes (one per id), not a {type(token_bytes).__name__}")
    try:
        items = list(token_bytes)
    except TypeError:
        raise VocabularyError(f"token_bytes must be a sequence of bytes (one per id), not {type(token_bytes).__name__}") from None
    out: list[bytes | None] = []
    for i, b in enumerate(items):
        if b is not None and not isinstance(b, (bytes, bytearray, memoryview)):
            raise VocabularyError(f"token {i} is {type(b).__name__}, not bytes (token_bytes holds bytes, None for ids without text)")
        out.append(None if b is None else bytes(b))
    return tuple(out)


def _ids(what: str, values: Any) -> list[int]:
    """``values`` as a list of ints (token ids or a size), or a :class:`VocabularyError`."""
    try:
        return [operator.index(i) for i in values]
    except TypeError:
        raise VocabularyError(f"{what} must be integers, got {values!r}") from None


class Vocabulary:
    """An immutable map from token ids to the exact bytes each token adds to the text.

    Build one with :meth:`from_hf` (Hugging Face, ``tokenizers`` or mistral-common tokenizers) or
    directly from a list of byte strings. A vocabulary is hashable; its :attr:`hash` is a stable
    content hash (SHA-256) used as a cache key.

    Parameters
    ----------
    token_bytes:
        For each token id, its bytes, or ``None`` for ids that are not text (special tokens, holes).
    eos_token_ids:
        Ids that end a sequence. Allowed exactly when the constraint is complete.
    size:
        Width of the model's logits (the mask width). At least ``len(token_bytes)``; ids from
        ``len(token_bytes)`` to ``size - 1`` are never allowed.
    special_token_ids:
        Ids of special tokens (informational; they are never text).
    prepends_space:
        Whether the tokenizer adds a space before the first word it encodes (SentencePiece).
    name:
        A human-readable name for messages.

    Raises
    ------
    VocabularyError
        If ``size`` is smaller than the number of tokens or an EOS id is out of range.

    Examples
    --------
    >>> v = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    >>> v.token_bytes[0], v.size, sorted(v.eos_token_ids)
    (b'a', 3, [2])
    """

    __slots__ = (
        "_token_bytes",
        "_eos",
        "_special",
        "_size",
        "_prepends_space",
        "_name",
        "_hash",
        "_cache",
    )

    def __init__(
        self,
        token_bytes: Sequence[bytes | None],
        *,
        eos_token_ids: Iterable[int],
        size: int | None = None,
        special_token_ids: Iterable[int] = (),
        prepends_space: bool = False,
        name: str = "vocabulary",
    ) -> None:
        tb = _token_bytes(token_bytes)
        n = len(tb)
        try:
            size = n if size is None else operator.index(size)
        except TypeError:
            raise VocabularyError(f"size must be an int, not {type(size).__name__}") from None
        if size < n:
            raise VocabularyError(
                f"vocab_size={size} is smaller than the tokenizer's {n} tokens; "
                "pass the model's logits width (config.vocab_size) or leave it unset"
            )
        eos = frozenset(_ids("eos_token_ids", eos_token_ids))
        for i in eos:
            if not 0 <= i < n:
                raise VocabularyError(f"EOS id {i} is outside the vocabulary (0..{n - 1})")
        self._token_bytes = tb
        self._eos = eos
        self._special = frozenset(_ids("special_token_ids", special_token_ids)) | eos
        self._size = size
        self._prepends_space = bool(prepends_space)
        self._name = name
        h = hashlib.sha256()
        h.update(f"corral-vocab-v1|{size}|{n}|".encode())
        for b in tb:
            if b is None:
                h.update(b"\xff\xff\xff\xff")
            else:
                h.update(len(b).to_bytes(4, "little"))
                h.update(b)
        h.update(("|eos:" + ",".join(map(str, sorted(eos)))).encode())
        h.update(("|special:" + ",".join(map(str, sorted(self._special)))).encode())
        self._hash = h.hexdigest()
        # Derived, per-vocabulary structures (the token trie) are memoised here.
        self._cache: dict[str, Any] = {}

    # -- read-only views -------------------------------------------------------------------
    @property
    def token_bytes(self) -> tuple[bytes | None, ...]:
        """For each token id below ``len(self)``, its bytes, or ``None`` when it is not text."""
        return self._token_bytes

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """The ids that end a sequence."""
        return self._eos

    @property
    def special_token_ids(self) -> frozenset[int]:
        """Ids of special (non-text) tokens, EOS included."""
        return self._special

    @property
    def size(self) -> int:
        """Mask width: the model's logits size (``>= len(self)``)."""
        return self._size

    @property
    def prepends_space(self) -> bool:
        """Whether the tokenizer encodes a leading space before the first word (SentencePiece)."""
        return self._prepends_space

    @property
    def name(self) -> str:
        """A human-readable name."""
        return self._name

    @property
    def hash(self) -> str:
        """Stable SHA-256 hex digest of the vocabulary's content."""
        return self._hash

    def __len__(self) -> int:
        return len(self._token_bytes)

    def __hash__(self) -> int:
        return int(self._hash[:16], 16)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other._hash == self._hash

    def __repr__(self) -> str:
        return (
            f"Vocabulary(name={self._name!r}, tokens={len(self)}, size={self._size}, "
            f"eos={sorted(self._eos)})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                self._token_bytes,
                sorted(self._eos),
                self._size,
                sorted(self._special),
                self._prepends_space,
                self._name,
            ),
        )

    def decode_bytes(self, token_ids: Iterable[int]) -> bytes:
        """Join the bytes of ``token_ids``; special tokens contribute nothing.

        Raises
        ------
        IndexError
            If an id is not below ``len(self)``.
        """
        tb = self._token_bytes
        return b"".join(tb[i] or b"" for i in token_ids)

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_hf(
        cls,
        tokenizer: Any,
        vocab_size: int | None = None,
        *,
        eos_token_ids: Iterable[int] | None = None,
    ) -> Vocabulary:
        """Build the exact vocabulary of a tokenizer.

        Parameters
        ----------
        tokenizer:
            A Hugging Face fast tokenizer (``PreTrainedTokenizerFast``), a ``tokenizers.Tokenizer``,
            a slow SentencePiece tokenizer with ``sp_model``, or a mistral-common tokenizer
            (``MistralTokenizer``, ``Tekkenizer``, ``SentencePieceTokenizer``).
        vocab_size:
            The model's logits width when larger than the tokenizer (padded embeddings).
        eos_token_ids:
            Override the EOS ids. By default: the tokenizer's EOS id plus the end-of-turn special
            tokens it has among ``</s>``, ``<|endoftext|>``, ``<|end_of_text|>``, ``<|eot_id|>``,
            ``<|eom_id|>``, ``<|im_end|>``, ``<|end|>``.

        The result is memoised per tokenizer object (and arguments), so calling this per request
        costs a dictionary lookup.

        Returns
        -------
        Vocabulary

        Raises
        ------
        VocabularyError
            If the tokenizer's encoding is not one corral understands (e.g. WordPiece), or the
            sizes do not fit.

        Examples
        --------
        >>> from transformers import AutoTokenizer  # doctest: +SKIP
        >>> vocab = Vocabulary.from_hf(AutoTokenizer.from_pretrained("gpt2"))  # doctest: +SKIP
        """
        try:
            n_tokens = len(tokenizer)  # part of the key: add_tokens() changes the vocabulary
        except TypeError:
            n_tokens = -1
        key = (vocab_size, None if eos_token_ids is None else tuple(sorted(eos_token_ids)), n_tokens)
        try:
            with _FROM_HF_LOCK:
                cached = _FROM_HF_CACHE.get(tokenizer, {}).get(key)
        except TypeError:  # not weak-referenceable or not hashable: no caching
            cached = None
        if cached is not None:
            return cached
        module = type(tokenizer).__module__
        if module.startswith("mistral_common"):
            vocab = _from_mistral(tokenizer, vocab_size, key[1])
        else:
            vocab = _from_hf(tokenizer, vocab_size, key[1])
        try:
            with _FROM_HF_LOCK:
                _FROM_HF_CACHE.setdefault(tokenizer, {})[key] = vocab
        except TypeError:
            pass
        return vocab


def _rebuild(
    tb: tuple[bytes | None, ...],
    eos: list[int],
    size: int,
    special: list[int],
    prepends_space: bool,
    name: str,
) -> Vocabulary:
    return Vocabulary(
        tb,
        eos_token_ids=eos,
        size=size,
        special_token_ids=special,
        prepends_space=prepends_space,
        name=name,
    )


def _default_eos(
    eos_id: int | None, token_to_id: dict[str, int], special: set[int]
) -> set[int]:
    out: set[int] = set()
    if eos_id is not None:
        out.add(int(eos_id))
    for marker in _END_MARKERS:
        i = token_to_id.get(marker)
        if i is not None and i in special:
            out.add(i)
    return out


def _from_hf(tokenizer: Any, vocab_size: int | None, eos_override: Iterable[int] | None) -> Vocabulary:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None and type(tokenizer).__name__ == "Tokenizer" and hasattr(tokenizer, "to_str"):
        backend = tokenizer  # a bare `tokenizers.Tokenizer`
    if backend is None:
        sp = getattr(tokenizer, "sp_model", None)
        if sp is not None:
            return _from_sentencepiece(sp, tokenizer, vocab_size, eos_override)
        raise VocabularyError(
            f"cannot read the vocabulary of {type(tokenizer).__name__}: corral needs a fast "
            "(tokenizers-backed) Hugging Face tokenizer, a SentencePiece tokenizer with `sp_model`, "
            "or a mistral-common tokenizer; load it with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    config = json.loads(backend.to_str())
    model = config.get("model", {})
    model_type = model.get("type")
    steps = _decoder_types(config.get("decoder"))
    kinds = {s.get("type") for s in steps}
    byte_fallback = bool(model.get("byte_fallback")) or "ByteFallback" in kinds
    pre = json.dumps(config.get("pre_tokenizer"))
    if "ByteLevel" in kinds or (not steps and '"ByteLevel"' in pre):
        encoding = "byte-level"
    elif "Metaspace" in kinds or "ByteFallback" in kinds or any(
        s.get("type") == "Replace" and "\u2581" in json.dumps(s.get("pattern")) for s in steps
    ):
        encoding = "sentencepiece"
    elif model_type == "WordPiece" or "WordPiece" in kinds:
        raise VocabularyError(
            "WordPiece tokenizers (BERT-style '##' pieces) are not supported: their decoded text "
            "depends on neighbouring tokens, so a token has no fixed bytes"
        )
    else:
        raise VocabularyError(
            f"unrecognised tokenizer encoding (model {model_type!r}, decoder steps {sorted(str(k) for k in kinds)}); "
            "corral supports byte-level BPE, SentencePiece and tiktoken-style vocabularies"
        )

    token_to_id: dict[str, int] = {}
    raw_vocab = model.get("vocab", {})
    if isinstance(raw_vocab, dict):
        token_to_id.update(raw_vocab)
    elif isinstance(raw_vocab, list):  # Unigram: [[piece, score], ...]
        for i, entry in enumerate(raw_vocab):
            token_to_id[entry[0]] = i
    added = config.get("added_tokens", []) or []
    for a in added:
        token_to_id[a["content"]] = a["id"]

    if hasattr(tokenizer, "__len__") and backend is not tokenizer:
        n = len(tokenizer)
    else:
        n = backend.get_vocab_size(with_added_tokens=True)
    n = max(n, max(token_to_id.values(), default=-1) + 1)
    tb: list[bytes | None] = [None] * n
    for tok, i in token_to_id.items():
        if encoding == "byte-level":
            tb[i] = _byte_level_bytes(tok)
        else:
            tb[i] = _spm_bytes(tok, byte_fallback)
    special: set[int] = set()
    for a in added:
        if a.get("special", False):
            tb[a["id"]] = None
            special.add(a["id"])
        else:
            # A non-special added token is matched in the raw text and decodes to its content.
            tb[a["id"]] = a["content"].encode("utf-8")
    for i in getattr(tokenizer, "all_special_ids", []) or []:
        if 0 <= i < n:
            tb[i] = None
            special.add(i)
    unk = model.get("unk_token")
    if unk is not None and unk in token_to_id:
        tb[token_to_id[unk]] = None
        special.add(token_to_id[unk])
    for i, b in enumerate(tb):
        if b == b"":
            tb[i] = None

    if eos_override is not None:
        eos = set(eos_override)
    else:
        eos_id = getattr(tokenizer, "eos_token_id", None)
        eos = _default_eos(eos_id, token_to_id, special)
    prepends = False
    if encoding == "sentencepiece":
        pre_cfg = config.get("pre_tokenizer") or {}
        norm = json.dumps(config.get("normalizer"))
        prepends = (
            (pre_cfg.get("type") == "Metaspace" and pre_cfg.get("prepend_scheme", "always") != "never")
            or ('"Prepend"' in norm and "\u2581" in norm)
        )
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return Vocabulary(
        tb,
        eos_token_ids=eos,
        size=vocab_size,
        special_token_ids=special,
        prepends_space=prepends,
        name=str(name),
    )


def _from_sentencepiece(
    sp: Any, tokenizer: Any, vocab_size: int | None, eos_override: Iterable[int] | None
) -> Vocabulary:
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
            tb.append(bytes([int(_BYTE_PIECE.fullmatch(piece).group(1), 16)]))  # type: ignore[union-attr]
        else:
            tb.append(_spm_bytes(piece, False) or None)
    total = len(tokenizer) if hasattr(tokenizer, "__len__") else n
    tb.extend([None] * max(0, total - n))
    if eos_override is not None:
        eos = set(eos_override)
    else:
        eos_id = getattr(tokenizer, "eos_token_id", None)
        if eos_id is None:
            eos_id = sp.eos_id() if sp.eos_id() >= 0 else None
        eos = _default_eos(eos_id, token_to_id, special)
    return Vocabulary(
        tb,
        eos_token_ids=eos,
        size=vocab_size,
        special_token_ids=special,
        prepends_space=True,
        name=str(getattr(tokenizer, "name_or_path", "") or "sentencepiece"),
    )


def _from_mistral(tokenizer: Any, vocab_size: int | None, eos_override: Iterable[int] | None) -> Vocabulary:
    inner = tokenizer
    if hasattr(inner, "instruct_tokenizer"):
        inner = inner.instruct_tokenizer.tokenizer
    kind = type(inner).__name__
    if kind == "Tekkenizer":
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
    if kind == "SentencePieceTokenizer":
        sp = inner._model

        class _Shim:
            eos_token_id = inner.eos_id
            name_or_path = f"mistral-spm:{getattr(inner, 'file_path', '')}"

            def __len__(self) -> int:
                return int(inner.n_words)

        return _from_sentencepiece(sp, _Shim(), vocab_size, eos_override)
    raise VocabularyError(f"unsupported mistral-common tokenizer type {kind}")
