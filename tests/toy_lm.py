"""Toy language models with exactly known distributions, for testing samplers.

:class:`RandomTableLM` gives every context its own fixed next-token distribution, drawn from a
Dirichlet with a seed derived from the context: a model nobody tuned for, whose probability of
any token sequence can be computed exactly. :func:`enumerate_language` lists the strings of a
small constraint with their exact model probabilities, from which the exact conditional and
masked-decoding distributions follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from corral import CompiledGrammar


class RandomTableLM:
    """A :class:`corral.LanguageModel` whose next-token distribution is a fixed function of the context.

    Parameters
    ----------
    vocab_size:
        Width of the distributions.
    seed:
        Selects the model.
    concentration:
        Dirichlet concentration (small: peaked distributions).
    overrides:
        ``{context_tail: probabilities}``: when a context ends with ``context_tail`` (the longest
        matching tail wins), use these probabilities instead.
    """

    def __init__(
        self,
        vocab_size: int,
        seed: int = 0,
        concentration: float = 0.5,
        overrides: dict[tuple[int, ...], Sequence[float]] | None = None,
    ) -> None:
        self.vocab_size = vocab_size
        self.seed = seed
        self.concentration = concentration
        self.overrides = {k: np.asarray(v, dtype=np.float64) / np.sum(v) for k, v in (overrides or {}).items()}
        self.calls = 0
        self.rows = 0

    def probs(self, context: Sequence[int]) -> np.ndarray:
        """The next-token probabilities after ``context``."""
        ctx = tuple(int(t) for t in context)
        for k in range(len(ctx), -1, -1):
            tail = ctx[len(ctx) - k :]
            if tail in self.overrides:
                return self.overrides[tail]
        digest = hashlib.sha256(repr((self.seed, ctx)).encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        p = rng.dirichlet(np.full(self.vocab_size, self.concentration))
        p = np.maximum(p, 1e-12)
        return p / p.sum()  # every token possible: no zero in the table but the overrides

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """Log-probabilities of the next token after each context."""
        self.calls += 1
        self.rows += len(contexts)
        if not contexts:
            return np.zeros((0, self.vocab_size))
        with np.errstate(divide="ignore"):
            return np.log(np.stack([self.probs(c) for c in contexts]))


def enumerate_language(
    lm: RandomTableLM, grammar: CompiledGrammar, prompt: Sequence[int] = (), max_tokens: int = 8, temperature: float = 1.0
) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float], float]:
    """Every token sequence the constraint allows to end within ``max_tokens`` tokens.

    Returns
    -------
    tuple
        ``(model, masked, total)``: ``model[seq]`` is the tempered model probability of ``seq``
        followed by EOS (unconstrained); ``masked[seq]`` the probability masked decoding gives
        ``seq``; ``total`` the model's probability of producing a valid sequence, i.e. the
        normaliser of the exact conditional ``model[seq] / total``. Masked decoding must not reach
        ``max_tokens`` with mass left over (checked).
    """
    vocab = grammar.vocab
    eos = sorted(vocab.eos_token_ids)
    model: dict[tuple[int, ...], float] = {}
    masked: dict[tuple[int, ...], float] = {}
    lost = 0.0

    def tempered(context: Sequence[int]) -> np.ndarray:
        lp = np.log(lm.probs(context)) / temperature
        lp -= lp.max()
        p = np.exp(lp)
        return p / p.sum()

    def walk(seq: tuple[int, ...], m, p_model: float, p_masked: float) -> None:
        nonlocal lost
        p = tempered(list(prompt) + list(seq))
        allowed = [t for t in range(vocab.size) if m.allows(t)]
        z = sum(p[t] for t in allowed)
        for t in allowed:
            if t in eos:
                model[seq] = model.get(seq, 0.0) + p_model * p[t]
                masked[seq] = masked.get(seq, 0.0) + p_masked * p[t] / z
                continue
            if len(seq) + 1 > max_tokens:
                lost += p_masked * p[t] / z
                continue
            child = m.fork()
            assert child.accept_token(t)
            walk(seq + (t,), child, p_model * p[t], p_masked * p[t] / z)

    walk((), grammar.matcher(), 1.0, 1.0)
    assert lost < 1e-12, f"masked decoding passes max_tokens={max_tokens} with probability {lost}"
    return model, masked, sum(model.values())
