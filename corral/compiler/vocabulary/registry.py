"""The tokenizer adapters :meth:`Vocabulary.from_hf` tries, in order.

An adapter is an object with a ``name``, the :class:`TokenEncoding` values it reads, a
``detect(tokenizer) -> bool`` that recognises the tokenizer objects it can read (cheaply, without
building anything) and a ``build(tokenizer, vocab_size, eos_token_ids) -> Vocabulary``.
:func:`adapter_for` asks each registered adapter in turn and returns the first that recognises the
tokenizer; when none does, it raises a :class:`VocabularyError` naming the adapters it tried.

During one :meth:`Vocabulary.from_hf` call, :func:`probe_memo` gives the adapters a dictionary in
which ``detect`` may leave what it computed (e.g. a parsed tokenizer config) for ``build``.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from corral.errors import VocabularyError

if TYPE_CHECKING:
    from corral.compiler.vocabulary.core import Vocabulary
    from corral.compiler.vocabulary.encoding import TokenEncoding

__all__ = ["TokenizerAdapter", "adapter_for", "adapters", "probe_memo", "register_adapter"]


class TokenizerAdapter(Protocol):
    """What :meth:`Vocabulary.from_hf` needs from one tokenizer source.

    Attributes
    ----------
    name:
        A short name used in messages (``"hf-byte-level-bpe"``).
    encodings:
        The token encodings this adapter reads (informational).
    """

    name: str
    encodings: frozenset[TokenEncoding]

    def detect(self, tokenizer: Any) -> bool:
        """Whether this adapter reads ``tokenizer``. Must not raise for foreign objects."""
        ...

    def build(
        self, tokenizer: Any, vocab_size: int | None, eos_token_ids: Iterable[int] | None
    ) -> Vocabulary:
        """The vocabulary of ``tokenizer`` (a tokenizer :meth:`detect` accepted).

        Raises
        ------
        VocabularyError
            If the tokenizer cannot be read or the sizes do not fit.
        """
        ...


_ADAPTERS: list[TokenizerAdapter] = []
_LOCK = threading.Lock()
_MEMO: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar("corral_vocab_probe", default=None)


def register_adapter(adapter: TokenizerAdapter, *, before: str | None = None) -> None:
    """Add ``adapter`` to the adapters :meth:`Vocabulary.from_hf` tries.

    Parameters
    ----------
    adapter:
        The adapter. Replaces a registered adapter of the same name (keeping its place).
    before:
        The name of a registered adapter to try it before; by default it is tried last.

    Raises
    ------
    VocabularyError
        If ``before`` names no registered adapter.
    """
    with _LOCK:
        names = [a.name for a in _ADAPTERS]
        if adapter.name in names:
            _ADAPTERS[names.index(adapter.name)] = adapter
            return
        if before is None:
            _ADAPTERS.append(adapter)
            return
        if before not in names:
            raise VocabularyError(f"no tokenizer adapter named {before!r}; registered: {', '.join(names)}")
        _ADAPTERS.insert(names.index(before), adapter)


def adapters() -> tuple[TokenizerAdapter, ...]:
    """The registered adapters, in the order they are tried.

    Examples
    --------
    >>> [a.name for a in adapters()]
    ['mistral-common', 'tiktoken', 'hf-byte-level-bpe', 'sentencepiece', 'hf-unsupported']
    """
    with _LOCK:
        return tuple(_ADAPTERS)


def adapter_for(tokenizer: Any) -> TokenizerAdapter:
    """The first registered adapter that recognises ``tokenizer``.

    Raises
    ------
    VocabularyError
        If no adapter recognises it; the message names the adapters tried.
    """
    tried = adapters()
    for adapter in tried:
        if adapter.detect(tokenizer):
            return adapter
    raise VocabularyError(
        f"cannot read the vocabulary of {type(tokenizer).__name__}: corral needs a fast "
        "(tokenizers-backed) Hugging Face tokenizer, a SentencePiece tokenizer with `sp_model`, "
        "a mistral-common tokenizer or a tiktoken encoding; load it with "
        "AutoTokenizer.from_pretrained(..., use_fast=True) "
        f"(tokenizer adapters tried: {', '.join(a.name for a in tried)})"
    )


@contextlib.contextmanager
def probe_scope() -> Iterator[None]:
    """Give the adapters a fresh :func:`probe_memo` for the duration of the block."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def probe_memo() -> dict[Any, Any] | None:
    """The memo of the current :meth:`Vocabulary.from_hf` call (``None`` outside one).

    Adapters key it by something that cannot collide with another adapter's keys, and keep the
    tokenizer object itself in the value so that a recycled ``id()`` never matches.
    """
    return _MEMO.get()
