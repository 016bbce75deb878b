"""Token ids -> the exact bytes each token contributes to the text; one adapter per tokenizer source.

Layout
------
``core``
    :class:`Vocabulary`, the immutable product (token bytes, EOS ids, size, content hash) and its
    :meth:`Vocabulary.derived` cache for structures other modules build from it.
``encoding``
    :class:`TokenEncoding` (byte-level BPE, SentencePiece, tiktoken-style) and the decoding of each
    spelling to bytes.
``registry``
    The :class:`TokenizerAdapter` protocol and the ordered list of adapters
    :meth:`Vocabulary.from_hf` tries.
``hf``
    Reading ``tokenizers``-backed (fast) Hugging Face tokenizers, shared by the two adapters below,
    and the last-resort adapter that rejects fast tokenizers without fixed token bytes (WordPiece).
``mistral``, ``tiktoken_ranks``, ``byte_level``, ``spm``
    One adapter per tokenizer source.

Adapters, in the order :meth:`Vocabulary.from_hf` tries them
-------------------------------------------------------------
1. ``mistral-common`` (:mod:`.mistral`): ``MistralTokenizer``, ``Tekkenizer`` (tiktoken-style) and
   ``SentencePieceTokenizer``, recognised by their module.
2. ``tiktoken`` (:mod:`.tiktoken_ranks`): a ``tiktoken.Encoding``.
3. ``hf-byte-level-bpe`` (:mod:`.byte_level`): a fast tokenizer or bare ``tokenizers.Tokenizer``
   with a ``ByteLevel`` decoder (GPT-2, Llama-3, Qwen2, SmolLM2).
4. ``sentencepiece`` (:mod:`.spm`): a fast tokenizer whose decoder spells SentencePiece pieces, or a
   slow tokenizer with an ``sp_model``.
5. ``hf-unsupported`` (:mod:`.hf`): any other fast tokenizer; reading it raises a
   :class:`~corral.errors.VocabularyError` saying why (WordPiece, unknown decoder).

A tokenizer none of them recognises raises a :class:`~corral.errors.VocabularyError` naming the
adapters tried.

Adding a tokenizer kind
-----------------------
Write one module with an object that has ``name``, ``encodings`` (the :class:`TokenEncoding` values it
reads; add a member if it is a new spelling), ``detect(tokenizer) -> bool`` (cheap, never raises
for foreign objects) and ``build(tokenizer, vocab_size, eos_token_ids) -> Vocabulary``, then register
it below (or, from outside corral, call :func:`register_adapter`, with ``before=`` when it must be
asked before a built-in adapter that would also recognise the tokenizer).
"""

from __future__ import annotations

from corral.compiler.vocabulary.core import Vocabulary
from corral.compiler.vocabulary.encoding import TokenEncoding
from corral.compiler.vocabulary.registry import (
    TokenizerAdapter,
    adapter_for,
    adapters,
    register_adapter,
)

from corral.compiler.vocabulary.byte_level import BYTE_LEVEL_BPE
from corral.compiler.vocabulary.hf import HF_UNSUPPORTED
from corral.compiler.vocabulary.mistral import MISTRAL_COMMON
from corral.compiler.vocabulary.spm import SENTENCEPIECE
from corral.compiler.vocabulary.tiktoken_ranks import TIKTOKEN

__all__ = [
    "TokenEncoding",
    "TokenizerAdapter",
    "Vocabulary",
    "adapter_for",
    "adapters",
    "register_adapter",
]

for _adapter in (MISTRAL_COMMON, TIKTOKEN, BYTE_LEVEL_BPE, SENTENCEPIECE, HF_UNSUPPORTED):
    register_adapter(_adapter)
del _adapter
