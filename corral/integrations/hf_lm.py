"""A transformers causal LM as a corral :class:`~corral.runtime.lm.LanguageModel`, with KV-cache reuse.

Samplers ask for next-token log-probabilities of whole token sequences, most of which extend
sequences they asked about before (SMC particles grow by one token a step, speculative decoding
verifies a draft and continues from its accepted prefix). :class:`HFLanguageModel` keeps the
key-value caches of the sequences it has computed and feeds the model only the new tokens.

How the caches are kept
-----------------------
A *block* is one batched ``DynamicCache`` whose rows are token sequences of one length, with the
log-probabilities after each row. Every call builds new blocks and keeps them in a
least-recently-used store bounded by ``max_cache_bytes``:

* each context is matched against every stored row; the longest common prefix ``q`` (at most the
  context's length minus one, since the last position must be computed to get its logits) picks
  the source row, preferring the most recent block;
* contexts of one length whose sources are the same block and the same ``q`` form one batch: the
  source rows are selected (``batch_select_indices``; rows may repeat or be dropped), cropped to
  ``q`` and the ``len - q`` new tokens of every row run in one forward pass. When every context
  extends a row of the previous call by the same number of tokens (the sampler's usual step),
  that is one pass for the whole call;
* a context equal to a stored row costs no pass at all;
* :meth:`HFLanguageModel.logprobs_along` runs the draft on the cached context in one pass (when
  the context itself is stored, only the draft's tokens; else from its last position on).

Selecting and cropping works on a copy of the cache object whose layers share the stored
tensors: transformers' ``DynamicLayer`` rebinds its tensors on ``crop``, ``batch_select_indices``
and ``update`` (``torch.cat``), never writes into them, so a stored block is never changed by a
cache derived from it. Rows in one pass always have the same length and the same cached prefix,
so no padding and no attention mask are needed: positions follow from the cache length.
A sliding-window layer that has passed its window cannot be cropped (transformers raises); a
context that would need such a crop is computed from its first token instead.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from corral._optional import require
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError

if TYPE_CHECKING:
    import torch
else:
    torch = require("torch", "corral.integrations.transformers")

__all__ = ["HFLanguageModel"]


class _Block:
    """Rows of one length, their batched cache and the log-probabilities after each row."""

    __slots__ = ("arrays", "cache", "index", "last", "nbytes", "rows")

    def __init__(self, rows: list[tuple[int, ...]], cache: Any, last: np.ndarray) -> None:
        self.rows = rows
        self.arrays = [np.asarray(r, dtype=np.int64) for r in rows]
        self.index = {r: i for i, r in enumerate(rows)}
        self.cache = cache
        self.last = last
        self.nbytes = _cache_bytes(cache)

    @property
    def length(self) -> int:
        return len(self.rows[0])


def _cache_bytes(cache: Any) -> int:
    total = 0
    for layer in getattr(cache, "layers", ()):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def _derived(cache: Any, rows: list[int], keep: int, length: int) -> Any:
    """A new cache with ``rows`` of ``cache`` (repeats allowed) cropped to ``keep`` positions.

    The layers are shallow copies, so the stored cache is not touched: transformers' dynamic
    layers rebind their tensors when they select, crop or update, they do not write into them.
    """
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    if rows != list(range(len(rows))) or len(rows) != _batch_size(cache):
        out.batch_select_indices(torch.tensor(rows, dtype=torch.long, device=_cache_device(cache)))
    if keep < length:
        out.crop(keep - length)
    return out


def _batch_size(cache: Any) -> int:
    for layer in cache.layers:
        t = getattr(layer, "keys", None)
        if isinstance(t, torch.Tensor) and t.dim() == 4:
            return int(t.shape[0])
    return -1


def _cache_device(cache: Any) -> Any:
    for layer in cache.layers:
        t = getattr(layer, "keys", None)
        if isinstance(t, torch.Tensor):
            return t.device
    return None


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


class HFLanguageModel:
    """A transformers causal LM as a corral :class:`~corral.runtime.lm.LanguageModel`.

    Batched forward passes that reuse key-value caches: a context that extends one already
    computed costs only its new tokens (see the module docstring for how caches are kept).

    Parameters
    ----------
    model:
        A transformers causal language model (put it in ``eval()`` mode; passes run under
        ``torch.inference_mode``). Its caches must be ``DynamicCache`` (the default).
    tokenizer:
        The model's tokenizer.
    max_cache_bytes:
        Bound on the bytes of stored key and value tensors (default 512 MiB: about 11,000 token
        positions of SmolLM2-135M); least recently used caches are dropped first. Transient tensors of a pass in progress are not counted.
    vocab_size:
        The logits width; by default the larger of ``model.config.vocab_size`` and
        ``len(tokenizer)``. Logits narrower than this are padded with ``-inf``.

    Attributes
    ----------
    forward_passes:
        Model calls made so far.
    tokens_computed:
        Token positions fed to the model so far, summed over rows.

    Raises
    ------
    CorralError
        If ``max_cache_bytes`` is negative or ``vocab_size`` is smaller than the tokenizer.

    Notes
    -----
    Rows are batched only when they have the same length and the same cached prefix, so no
    padding is ever used. Repeated contexts in one call are computed once. A call of several
    contexts that all extend rows of one stored block replaces that block (rows no context
    continues are dropped, as finished or resampled-away particles are), and so does a call that
    extends every row of a block; a block that was only branched from, or one row of which a
    single context continues, stays until ``max_cache_bytes`` evicts it. Not thread-safe: use
    one instance per thread.

    Examples
    --------
    A tiny randomly initialised model (any causal LM works the same way). A batch that extends
    the previous call's rows costs one pass over the new tokens:

    >>> import transformers
    >>> from corral.integrations.packaged import load_smollm2_tokenizer
    >>> tok = load_smollm2_tokenizer()
    >>> config = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
    ...                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> lm = HFLanguageModel(transformers.LlamaForCausalLM(config).eval(), tok)
    >>> ids = lm.encode("Name a colour.")
    >>> lm.next_token_logprobs([ids]).shape
    (1, 49152)
    >>> rows = lm.next_token_logprobs([ids + [42], ids + [7], ids + [42]])
    >>> lm.forward_passes, lm.tokens_computed - len(ids)
    (2, 2)
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_cache_bytes: int = 512 << 20, vocab_size: int | None = None) -> None:
        if max_cache_bytes < 0:
            raise CorralError(f"max_cache_bytes must be >= 0, not {max_cache_bytes}")
        width = getattr(getattr(model, "config", None), "vocab_size", None)
        if vocab_size is None:
            vocab_size = max(int(width or 0), len(tokenizer))
        elif vocab_size < len(tokenizer):
            raise CorralError(
                f"vocab_size={vocab_size} is smaller than the tokenizer ({len(tokenizer)} tokens); "
                "pass the model's logits width or leave it out"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.max_cache_bytes = max_cache_bytes
        self._vocab_size = int(vocab_size)
        self._vocabulary: Vocabulary | None = None
        self.forward_passes = 0
        self.tokens_computed = 0
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._next_id = 0

    @property
    def vocab_size(self) -> int:
        """The width of the returned log-probabilities (the vocabulary's ``size``)."""
        return self._vocab_size

    @property
    def vocabulary(self) -> Vocabulary:
        """The corral :class:`~corral.Vocabulary` of the tokenizer at this width (built once).

        Raises
        ------
        VocabularyError
            If corral cannot read the tokenizer.
        """
        if self._vocabulary is None:
            self._vocabulary = Vocabulary.from_hf(self.tokenizer, vocab_size=self._vocab_size)
        return self._vocabulary

    @property
    def cache_bytes(self) -> int:
        """Bytes of key and value tensors held in the stored caches."""
        return sum(b.nbytes for b in self._blocks.values())

    def reset(self) -> None:
        """Drop every stored cache (the counters are kept)."""
        self._blocks.clear()

    def encode(self, prompt: str, chat: bool | None = None) -> list[int]:
        """Token ids of ``prompt``, ready to be a context.

        Parameters
        ----------
        prompt:
            The user's message (chat) or the raw prompt text.
        chat:
            ``True``: wrap it in the tokenizer's chat template as a user message followed by the
            generation prompt; ``False``: tokenize the text as is (with the tokenizer's special
            tokens, e.g. BOS); ``None``: chat when the tokenizer has a chat template.

        Returns
        -------
        list of int

        Raises
        ------
        CorralError
            If ``chat`` is true and the tokenizer has no chat template.
        """
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if chat is None:
            chat = has_template
        if chat:
            if not has_template:
                raise CorralError("chat=True but the tokenizer has no chat template; pass chat=False")
            enc = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
            )
            return [int(t) for t in enc["input_ids"]]
        return [int(t) for t in self.tokenizer(prompt, add_special_tokens=True)["input_ids"]]

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """Natural-log probabilities of the next token after each context.

        Parameters
        ----------
        contexts:
            Whole token sequences (prompt included), one per row; each non-empty.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``(len(contexts), vocab_size)``: ``log_softmax`` of the
            logits at each context's last position.

        Raises
        ------
        CorralError
            If a context is empty.
        """
        keys = [tuple(int(t) for t in c) for c in contexts]
        out = np.empty((len(keys), self._vocab_size), dtype=np.float32)
        if not keys:
            return out
        if any(len(k) == 0 for k in keys):
            raise CorralError("a context is empty; it needs at least one token (e.g. BOS or the prompt)")
        unique = list(dict.fromkeys(keys))
        results: dict[tuple[int, ...], np.ndarray] = {}
        # (length, kept prefix, source block id) -> [(context, source row)]
        buckets: dict[tuple[int, int, int | None], list[tuple[tuple[int, ...], int]]] = {}
        for key in unique:
            hit = self._exact(key)
            if hit is not None:
                results[key] = hit
                continue
            bid, row, keep = self._source(key, len(key) - 1)
            buckets.setdefault((len(key), keep, bid), []).append((key, row))
        used: set[int] = set()
        new_blocks: list[_Block] = []
        for (_, keep, bid), members in buckets.items():
            source = self._blocks[bid] if bid is not None else None
            if source is not None:
                used.add(id(source))
            block, logprobs = self._extend(source, [r for _, r in members], keep, [k for k, _ in members])
            for i, (k, _) in enumerate(members):
                results[k] = logprobs[i]
            new_blocks.append(block)
        self._store(new_blocks, used)
        for i, k in enumerate(keys):
            out[i] = results[k]
        return out

    def logprobs_along(self, context: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        """Next-token log-probabilities after ``context + tokens[:i]`` for every ``i``, in one pass.

        Runs ``tokens`` (and any part of ``context`` not cached) through the model once on top of
        the longest cached prefix, as speculative decoding needs to verify a draft. Afterwards the
        cache holds ``context + tokens``; a later context that keeps only part of ``tokens`` reuses
        it cropped to the common prefix.

        Parameters
        ----------
        context:
            The token sequence so far (non-empty).
        tokens:
            The tokens to score after it.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``(len(tokens) + 1, vocab_size)``.

        Raises
        ------
        CorralError
            If ``context`` is empty.
        """
        ctx = tuple(int(t) for t in context)
        toks = tuple(int(t) for t in tokens)
        if not ctx:
            raise CorralError("the context is empty; it needs at least one token (e.g. BOS or the prompt)")
        full = ctx + toks
        stored = self._exact(ctx)
        if stored is not None and not toks:
            return stored[None, :].copy()
        if stored is not None:
            # ``context`` itself is stored with its log-probabilities: run only ``tokens`` on it.
            bid, row, keep = self._source(full, len(ctx))
            positions = len(toks)
        else:
            bid, row, keep = self._source(full, len(ctx) - 1)
            positions = len(toks) + 1
        source = self._blocks[bid] if bid is not None else None
        block, logprobs = self._extend(source, [row], keep, [full], positions=positions)
        self._store([block], {id(source)} if source is not None else set())
        rows = logprobs[0].reshape(positions, -1)  # _extend drops the position axis when it is 1
        if keep == len(ctx):
            assert stored is not None  # keep == len(ctx) only when the context is stored
            return np.concatenate([stored[None, :], rows])
        return rows[-(len(toks) + 1) :]

    # -- internals -------------------------------------------------------------------------

    def _exact(self, key: tuple[int, ...]) -> np.ndarray | None:
        for bid in reversed(self._blocks):
            block = self._blocks[bid]
            row = block.index.get(key)
            if row is not None:
                self._blocks.move_to_end(bid)
                return block.last[row]
        return None

    def _source(self, key: tuple[int, ...], limit: int) -> tuple[int | None, int, int]:
        """``(block id, row, kept)``: the stored row sharing the longest prefix with ``key``,
        at most ``limit`` positions of it kept; ``(None, 0, 0)`` when none shares any."""
        best: tuple[int | None, int, int] = (None, 0, 0)
        if limit <= 0:
            return best
        # Cheap first: stored rows that are whole prefixes of the key (dictionary lookups).
        for bid in reversed(self._blocks):
            block = self._blocks[bid]
            if block.length <= len(key):
                row = block.index.get(key[: block.length])
                if row is not None:
                    kept = min(block.length, limit)
                    if kept == limit:
                        return bid, row, kept
                    if kept > best[2]:
                        best = (bid, row, kept)
        arr = np.asarray(key, dtype=np.int64)
        for bid in reversed(self._blocks):
            block = self._blocks[bid]
            for row, other in enumerate(block.arrays):
                kept = min(_common_prefix(arr, other), limit)
                if kept > best[2]:
                    best = (bid, row, kept)
                    if kept == limit:
                        return best
        return best

    def _extend(
        self, source: _Block | None, rows: list[int], keep: int, keys: list[tuple[int, ...]], positions: int = 1
    ) -> tuple[_Block, np.ndarray]:
        """Run ``keys[i][keep:]`` for every ``i`` on ``source``'s ``rows`` cropped to ``keep``.

        Returns the new block and the log-probabilities at the last ``positions`` positions
        (``(rows, vocab)`` when ``positions == 1``, else ``(rows, positions, vocab)``).
        """
        from corral.integrations.transformers import cached_forward

        extra = {"logits_to_keep": positions} if _takes_logits_to_keep(self.model) else {}
        with torch.inference_mode():
            cache = None
            if source is not None and keep > 0:
                self._blocks.move_to_end(self._id_of(source))
                try:
                    cache = _derived(source.cache, rows, keep, source.length)
                except (RuntimeError, ValueError):
                    # A sliding-window layer past its window cannot be cropped: start afresh.
                    cache, keep = None, 0
            ids = torch.tensor([k[keep:] for k in keys], dtype=torch.long, device=_model_device(self.model))
            logits, cache = cached_forward(self.model, ids, cache, **extra)
            logits = logits[:, -positions:, :].float()
            logprobs = torch.log_softmax(logits, dim=-1).cpu().numpy()
        self.forward_passes += 1
        self.tokens_computed += int(ids.numel())
        width = logprobs.shape[-1]
        if width > self._vocab_size:
            raise CorralError(
                f"the model's logits have {width} columns but vocab_size is {self._vocab_size}; "
                "leave vocab_size out or pass the logits width"
            )
        if width < self._vocab_size:
            pad = np.full(logprobs.shape[:-1] + (self._vocab_size - width,), -np.inf, dtype=np.float32)
            logprobs = np.concatenate([logprobs, pad], axis=-1)
        logprobs = np.ascontiguousarray(logprobs, dtype=np.float32)
        block = _Block(list(keys), cache, logprobs[:, -1, :].copy())
        return block, (logprobs[:, -1, :] if positions == 1 else logprobs)

    def _id_of(self, block: _Block) -> int:
        for bid, b in self._blocks.items():
            if b is block:
                return bid
        raise KeyError("block not stored")  # pragma: no cover - internal invariant

    def _store(self, new_blocks: list[_Block], used: set[int]) -> None:
        """Keep ``new_blocks``, drop the source blocks they supersede, evict down to the bound.

        A source block is superseded when every one of its rows is a prefix of (or equal to) a new row, or
        when a call with several new rows extends its rows only (the sampler moved on: each row
        is continued or abandoned, as particles are in SMC). A block only branched from (a draft
        cropped after rejection) or one row of which a single context continues is kept.
        """
        if new_blocks:
            new_rows = [r for b in new_blocks for r in b.rows]
            for bid in list(self._blocks):
                block = self._blocks[bid]
                if id(block) not in used:
                    continue
                n = block.length
                covered = {block.index.get(r[:n]) for r in new_rows if len(r) >= n}
                if len(covered - {None}) == len(block.rows) or (len(new_rows) > 1 and None not in covered
                                                                and all(len(r) > n for r in new_rows)):
                    del self._blocks[bid]
        for block in new_blocks:
            self._blocks[self._next_id] = block
            self._next_id += 1
        total = self.cache_bytes
        while total > self.max_cache_bytes and self._blocks:
            _, old = self._blocks.popitem(last=False)
            total -= old.nbytes


_LOGITS_TO_KEEP: dict[type, bool] = {}


def _takes_logits_to_keep(model: Any) -> bool:
    """Whether the model's ``forward`` can compute the logits of the last positions only."""
    kind = type(model)
    got = _LOGITS_TO_KEEP.get(kind)
    if got is None:
        try:
            got = "logits_to_keep" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):  # pragma: no cover - a forward without a signature
            got = False
        _LOGITS_TO_KEEP[kind] = got
    return got


def _model_device(model: Any) -> Any:
    device = getattr(model, "device", None)
    if device is not None:
        return device
    return next(model.parameters()).device
