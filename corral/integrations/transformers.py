"""Hugging Face transformers integration: a ``LogitsProcessor`` that enforces a corral grammar,
and :class:`HFLanguageModel` (from :mod:`corral.integrations.hf_lm`), a model as corral's
:class:`~corral.runtime.lm.LanguageModel` with key-value cache reuse.

Works with ``model.generate`` under greedy search, sampling, batches (left padding), beam search
and assisted generation. transformers calls a logits processor with the whole ``input_ids`` it is
scoring, and those rows do not always extend the previous call's rows (beams are reordered,
assisted generation scores draft tokens and then discards some, and the assistant model calls the
same processor with its own sequences). So the processor does not assume one call per step: it
re-synchronises each row with the tokens it is given, starting from the matcher whose history
shares the longest prefix with the row and rolling back to that prefix.

Only corral's public API is used here.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from corral._optional import require

if TYPE_CHECKING:
    import torch
    from transformers import LogitsProcessor as _HFLogitsProcessor
else:  # a clear error naming the extra when torch or transformers is missing
    torch = require("torch", "corral.integrations.transformers")
    _HFLogitsProcessor = require("transformers", "corral.integrations.transformers").LogitsProcessor

from corral.compiler.compiled import CompiledGrammar
from corral.errors import CorralError
from corral.integrations.hf_lm import HFLanguageModel
from corral.runtime.bitmask import allocate_token_bitmask, apply_token_bitmask_
from corral.runtime.matcher import Matcher

__all__ = ["HFLanguageModel", "LogitsProcessor", "cached_forward"]

_CACHE_ARG: dict[type, str] = {}


def cached_forward(model: Any, input_ids: torch.Tensor, cache: Any = None, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    """One forward pass of a causal LM that reuses and returns its key-value cache.

    transformers renamed the argument: ``cache=`` from version 5 (``past_key_values=`` is
    deprecated there, with a warning on every call), ``past_key_values=`` before. This passes
    whichever the model's ``forward`` takes, so loops written with it warn on no version.

    Parameters
    ----------
    model:
        A transformers causal language model.
    input_ids:
        ``(batch, new_tokens)`` token ids: the whole prompt on the first call, then only the
        tokens the cache has not seen.
    cache:
        The cache returned by the previous call, or ``None`` on the first.
    **kwargs:
        Further arguments for the model's ``forward`` (e.g. ``logits_to_keep=1``).

    Returns
    -------
    tuple
        ``(logits, cache)``: logits of shape ``(batch, new_tokens, vocab)``, and the cache to pass
        to the next call.
    """
    kind = type(model)
    name = _CACHE_ARG.get(kind)
    if name is None:
        params = inspect.signature(model.forward).parameters
        name = _CACHE_ARG[kind] = "cache" if "cache" in params else "past_key_values"
    out = model(input_ids=input_ids, use_cache=True, **{name: cache}, **kwargs)
    return out.logits, getattr(out, name)


class _Row:
    """One sequence: its matcher, the generated ids it has consumed, and whether it broke."""

    __slots__ = ("broken", "ids", "matcher")

    def __init__(self, matcher: Matcher, ids: list[int], broken: bool = False) -> None:
        self.matcher = matcher
        self.ids = ids
        self.broken = broken

    def fork(self) -> _Row:
        return _Row(self.matcher.fork(), list(self.ids), self.broken)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class LogitsProcessor(_HFLogitsProcessor):
    """Masks the logits of every row so that generation follows ``grammar``.

    Parameters
    ----------
    grammar:
        A :class:`~corral.CompiledGrammar` (e.g. from :func:`corral.compile_regex`) compiled
        against the model's tokenizer.
    tokenizer:
        Optional; when given, checked against the grammar's vocabulary size.

    Notes
    -----
    Use one processor per ``generate`` call (or call :meth:`reset` between calls). The first call
    fixes the prompt; a later call whose prompt part differs resets the processor, but a new
    prompt that merely extends the old one cannot be told apart from generated tokens. Rows that have finished (EOS
    accepted) or whose tokens the grammar refuses (draft tokens under assisted generation) get a
    mask that allows only EOS, so sampling never sees an all ``-inf`` row. Logits wider than the
    vocabulary (padded embeddings) are masked past it.

    Examples
    --------
    A tiny randomly initialised model (any causal LM works the same way): the mask alone makes
    the output three digits.

    >>> import re, torch, transformers, corral
    >>> from corral.integrations.packaged import load_smollm2_tokenizer
    >>> tok = load_smollm2_tokenizer()
    >>> config = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
    ...                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> model = transformers.LlamaForCausalLM(config).eval()
    >>> vocab = corral.Vocabulary.from_hf(tok, vocab_size=len(tok))
    >>> proc = LogitsProcessor(corral.compile_regex(r"[0-9]{3}", vocab))
    >>> ids = tok("Three digits:", return_tensors="pt").input_ids
    >>> out = model.generate(ids, attention_mask=torch.ones_like(ids), logits_processor=[proc], max_new_tokens=8,
    ...                      do_sample=False, eos_token_id=sorted(vocab.eos_token_ids), pad_token_id=0)
    >>> bool(re.fullmatch(r"[0-9]{3}", tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)))
    True
    """

    def __init__(self, grammar: CompiledGrammar, tokenizer: Any = None) -> None:
        if not isinstance(grammar, CompiledGrammar):
            raise CorralError(
                f"LogitsProcessor needs a corral.CompiledGrammar, not {type(grammar).__name__}; "
                "compile the constraint first, e.g. corral.compile_regex(pattern, vocab)"
            )
        if tokenizer is not None and len(tokenizer) > grammar.vocab.size:
            raise CorralError(
                f"the tokenizer has {len(tokenizer)} tokens but the grammar was compiled for a "
                f"vocabulary of {grammar.vocab.size}; build the Vocabulary from this tokenizer"
            )
        self.grammar = grammar
        self._eos_only = allocate_token_bitmask(1, grammar.vocab.size)[0]
        for e in grammar.vocab.eos_token_ids:
            self._eos_only[e >> 5] |= np.uint32(1 << (e & 31))
        self.reset()

    def reset(self) -> None:
        """Forget all rows; the next call starts a new generation."""
        self._prompt: torch.Tensor | None = None
        self._rows: list[_Row] = []

    @property
    def matchers(self) -> list[Matcher]:
        """The current matcher of each row (after the last call)."""
        return [r.matcher for r in self._rows]

    def _sync(self, input_ids: torch.Tensor) -> None:
        batch, length = input_ids.shape
        prompt = self._prompt
        if (
            prompt is None
            or prompt.shape[0] != batch
            or length < prompt.shape[1]
            or not torch.equal(input_ids[:, : prompt.shape[1]].cpu(), prompt)
        ):
            self._prompt = input_ids.detach().cpu().clone()
            self._rows = [_Row(self.grammar.matcher(), []) for _ in range(batch)]
            return
        generated = input_ids[:, prompt.shape[1] :].tolist()
        old = self._rows
        new_rows: list[_Row] = []
        for r, seq in enumerate(generated):
            row = old[r]
            k = _common_prefix(row.ids, seq)
            if k < len(row.ids):
                # Diverged (beam reorder, rejected drafts): start from the best-matching row.
                best, best_k = r, k
                for j, other in enumerate(old):
                    kj = _common_prefix(other.ids, seq)
                    if kj > best_k:
                        best, best_k = j, kj
                row = old[best].fork()
                k = best_k
                undo = len(row.ids) - k
                if row.broken:
                    # A broken row's matcher stopped early; replay from scratch.
                    row = _Row(self.grammar.matcher(), [])
                    k = 0
                else:
                    row.matcher.rollback(min(undo, row.matcher.num_tokens))
                    del row.ids[k:]
            for t in seq[k:]:
                row.ids.append(t)
                if row.broken:
                    continue
                if not row.matcher.accept_token(t):
                    row.broken = True
            new_rows.append(row)
        self._rows = new_rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask ``scores`` (``[batch, V]``) in place for the rows of ``input_ids``; return them."""
        if scores.shape[-1] < self.grammar.vocab.size and scores.shape[-1] < len(self.grammar.vocab):
            raise CorralError(
                f"logits have {scores.shape[-1]} columns but the vocabulary has "
                f"{len(self.grammar.vocab)} tokens"
            )
        self._sync(input_ids)
        masks = allocate_token_bitmask(len(self._rows), self.grammar.vocab.size)
        for i, row in enumerate(self._rows):
            m = row.matcher
            if row.broken or m.is_finished():
                masks[i] = self._eos_only
            else:
                masks[i] = m.next_token_mask()
        apply_token_bitmask_(scores, masks)
        return scores
