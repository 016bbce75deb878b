"""The seam where a sampler meets a language model: :class:`LanguageModel`.

A sampler only needs next-token log-probabilities for whole token sequences. Anything that
provides them is a language model to corral: a transformers model wrapped by
:class:`corral.integrations.transformers.HFLanguageModel`, a table of distributions in a test,
a remote server. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from corral.errors import CorralError

__all__ = ["LanguageModel", "check_logprobs", "logprobs_along"]


@runtime_checkable
class LanguageModel(Protocol):
    """What corral's samplers need from a model.

    Attributes
    ----------
    vocab_size:
        The width of the model's logits; equal to the vocabulary's ``size``.

    Examples
    --------
    A uniform model over four tokens:

    >>> import numpy as np
    >>> class Uniform:
    ...     vocab_size = 4
    ...     def next_token_logprobs(self, contexts):
    ...         return np.full((len(contexts), 4), np.log(0.25))
    >>> isinstance(Uniform(), LanguageModel)
    True
    """

    @property
    def vocab_size(self) -> int:
        """The width of the logits (the vocabulary's ``size``)."""
        ...

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """Natural-log probabilities of the next token after each context.

        Parameters
        ----------
        contexts:
            Whole token sequences (prompt included), one per row.

        Returns
        -------
        numpy.ndarray
            ``float`` array of shape ``(len(contexts), vocab_size)``; each row a log-distribution.
        """
        ...


def logprobs_along(lm: LanguageModel, context: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
    """Next-token log-probabilities after ``context + tokens[:i]`` for every ``i`` in ``0..len(tokens)``.

    Uses the model's own ``logprobs_along`` when it has one (one forward pass over the new
    tokens, as :class:`~corral.integrations.transformers.HFLanguageModel` does); otherwise asks
    :meth:`LanguageModel.next_token_logprobs` for all the prefixes in one batched call.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(tokens) + 1, vocab_size)``.
    """
    own = getattr(lm, "logprobs_along", None)
    if own is not None:
        return check_logprobs(own(context, tokens), len(tokens) + 1, lm.vocab_size)
    base = list(context)
    toks = list(tokens)
    contexts = [base + toks[:i] for i in range(len(toks) + 1)]
    return check_logprobs(lm.next_token_logprobs(contexts), len(contexts), lm.vocab_size)


def check_logprobs(out: object, rows: int, vocab_size: int) -> np.ndarray:
    """``out`` as a float64 array of shape ``(rows, vocab_size)``, or a :class:`CorralError` naming the mismatch."""
    arr = np.asarray(out, dtype=np.float64)
    if arr.shape != (rows, vocab_size):
        raise CorralError(
            f"the language model returned log-probabilities of shape {arr.shape}; "
            f"expected ({rows}, {vocab_size}) (one row per context, vocab_size columns)"
        )
    return arr
