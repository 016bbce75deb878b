"""Reading Hugging Face ``tokenizers``-backed tokenizers (fast tokenizers and bare ``Tokenizer``).

The tokenizer's JSON config (``backend.to_str()``) says how tokens are spelled: a ``ByteLevel``
decoder means byte-level BPE, a ``Metaspace``/``ByteFallback`` decoder or a ``▁`` replacement means
SentencePiece. :func:`hf_encoding` classifies; :func:`build_from_hf_config` builds the vocabulary
for either encoding (the byte-level and SentencePiece adapters both call it). The adapter here,
:data:`HF_UNSUPPORTED`, is tried last: it recognises the fast tokenizers whose encoding has no fixed
token bytes (WordPiece, WordLevel, ...) and says why they cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from corral.compiler.vocabulary.core import Vocabulary
from corral.compiler.vocabulary.encoding import (
    TokenEncoding,
    byte_level_bytes,
    default_eos,
    sentencepiece_bytes,
)
from corral.compiler.vocabulary.registry import probe_memo
from corral.errors import VocabularyError

__all__ = ["HF_UNSUPPORTED", "build_from_hf_config", "hf_backend", "hf_config", "hf_encoding"]


def hf_backend(tokenizer: Any) -> Any | None:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (itself for a bare one), or ``None``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None and type(tokenizer).__name__ == "Tokenizer" and hasattr(tokenizer, "to_str"):
        backend = tokenizer  # a bare `tokenizers.Tokenizer`
    return backend


def hf_config(backend: Any) -> dict[str, Any]:
    """``backend``'s JSON config, parsed once per :meth:`Vocabulary.from_hf` call."""
    memo = probe_memo()
    key = ("hf-config", id(backend))
    if memo is not None:
        hit = memo.get(key)
        if hit is not None and hit[0] is backend:
            return hit[1]  # type: ignore[no-any-return]
    config: dict[str, Any] = json.loads(backend.to_str())
    if memo is not None:
        memo[key] = (backend, config)
    return config


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


def _classify(config: dict[str, Any]) -> TokenEncoding | None:
    steps = _decoder_types(config.get("decoder"))
    kinds = {s.get("type") for s in steps}
    pre = json.dumps(config.get("pre_tokenizer"))
    if "ByteLevel" in kinds or (not steps and '"ByteLevel"' in pre):
        return TokenEncoding.BYTE_LEVEL_BPE
    if "Metaspace" in kinds or "ByteFallback" in kinds or any(
        s.get("type") == "Replace" and "\u2581" in json.dumps(s.get("pattern")) for s in steps
    ):
        return TokenEncoding.SENTENCEPIECE
    return None


def hf_encoding(tokenizer: Any) -> TokenEncoding | None:
    """The encoding of a ``tokenizers``-backed tokenizer; ``None`` if it is not one or has none.

    Never raises for foreign objects.
    """
    backend = hf_backend(tokenizer)
    if backend is None:
        return None
    return _classify(hf_config(backend))


def build_from_hf_config(
    tokenizer: Any,
    encoding: TokenEncoding,
    vocab_size: int | None,
    eos_override: Iterable[int] | None,
) -> Vocabulary:
    """The vocabulary of a ``tokenizers``-backed tokenizer whose encoding is ``encoding``.

    Parameters
    ----------
    tokenizer:
        A fast tokenizer or a bare ``tokenizers.Tokenizer``.
    encoding:
        :attr:`TokenEncoding.BYTE_LEVEL_BPE` or :attr:`TokenEncoding.SENTENCEPIECE`.
    vocab_size, eos_override:
        As in :meth:`Vocabulary.from_hf`.

    Returns
    -------
    Vocabulary

    Raises
    ------
    VocabularyError
        If ``tokenizer`` has no ``tokenizers`` backend, a token is not spelled in ``encoding``, or
        the sizes do not fit.
    """
    backend = hf_backend(tokenizer)
    if backend is None:
        raise VocabularyError(f"{type(tokenizer).__name__} is not a tokenizers-backed (fast) tokenizer")
    config = hf_config(backend)
    model = config.get("model", {})
    steps = _decoder_types(config.get("decoder"))
    kinds = {s.get("type") for s in steps}
    byte_fallback = bool(model.get("byte_fallback")) or "ByteFallback" in kinds

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
        if encoding is TokenEncoding.BYTE_LEVEL_BPE:
            tb[i] = byte_level_bytes(tok)
        else:
            tb[i] = sentencepiece_bytes(tok, byte_fallback)
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
        eos = default_eos(eos_id, token_to_id, special)
    prepends = False
    if encoding is TokenEncoding.SENTENCEPIECE:
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


class _HFUnsupported:
    """A ``tokenizers``-backed tokenizer with no fixed token bytes: reading it raises."""

    name = "hf-unsupported"
    encodings: frozenset[TokenEncoding] = frozenset()

    def detect(self, tokenizer: Any) -> bool:
        backend = hf_backend(tokenizer)
        return backend is not None and _classify(hf_config(backend)) is None

    def build(self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None) -> Vocabulary:
        config = hf_config(hf_backend(tokenizer))
        model_type = config.get("model", {}).get("type")
        kinds = {s.get("type") for s in _decoder_types(config.get("decoder"))}
        if model_type == "WordPiece" or "WordPiece" in kinds:
            raise VocabularyError(
                "WordPiece tokenizers (BERT-style '##' pieces) are not supported: their decoded text "
                "depends on neighbouring tokens, so a token has no fixed bytes"
            )
        raise VocabularyError(
            f"unrecognised tokenizer encoding (model {model_type!r}, decoder steps {sorted(str(k) for k in kinds)}); "
            "corral supports byte-level BPE, SentencePiece and tiktoken-style vocabularies"
        )


HF_UNSUPPORTED = _HFUnsupported()
"""The adapter tried last: it recognises fast tokenizers no other adapter reads, and raises."""
