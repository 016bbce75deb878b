"""Fewer forward passes under a constraint: jump-forward over forced text and speculative drafting.

A forward pass of the target model costs milliseconds; a corral mask costs microseconds. So the
loop here lets a cheap *draft* guess the next few tokens, checks the guess against the constraint
(a forked :class:`~corral.Matcher`), and has the target score every guessed position in **one**
pass (:func:`corral.runtime.lm.logprobs_along`). The verification keeps the output exactly what
plain constrained decoding gives:

- **Greedy** (``temperature=0``): a drafted token is kept while it is the masked argmax of the
  target at its position; the first mismatch is replaced by the masked argmax, and when every
  drafted token is kept the pass also yields the next token (the bonus position). The output is
  token-for-token the output of masked greedy decoding (up to the model's own arithmetic: one
  pass over several positions may round differently from several one-position passes).
- **Sampling** (``temperature>0``): the speculative sampling rule on the tempered, masked,
  renormalised target distribution ``p``. Every draft here is deterministic (its proposal is a
  function of the context), so the rule is: keep the drafted ``x`` with probability ``p(x)``;
  otherwise draw from ``p`` with ``x`` removed (renormalised). Each emitted token is then
  distributed exactly as ``p``, so the sequence is distributed as constrained sampling from the
  target.

Drafts (:class:`Draft`): :class:`ForcedDraft` (jump-forward: the text the constraint forces,
spelled as the tokenizer spells it), :class:`PromptLookupDraft` (continuations of n-grams seen
in the prompt or the output), :class:`ModelDraft` (a smaller model with the same vocabulary,
greedy under the mask) and :class:`AutoDraft` (forced text spelled together with what followed
it before, mask-forced tokens, token lookup, alternating). Tokens the mask forces (one allowed
id) are taken without a pass, and a position where only EOS is allowed ends generation without
one.

Masks: a greedy decision checks the target's top-scoring tokens one at a time
(:meth:`Matcher.check_token`) and builds a mask only when none of them is allowed; sampling
builds the mask of each position it reaches (never past a rejection).

Which sampling methods compose: greedy and masked sampling at any temperature (both here,
exact). Top-k / top-p / min-p truncation compose the same way (the rule holds for any target
distribution computed position by position from the target's logits and the mask), but are not
implemented here. Methods that sample the exact conditional of the constrained language by
weighting whole sequences (importance sampling, SMC) are not a per-token rule on ``p``; a
deterministic draft would still save their passes (their proposals are masked samples), but
that is not implemented here.

Nothing here imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from corral.errors import CorralError
from corral.runtime.bitmask import bitmask_to_bool
from corral.runtime.lm import LanguageModel, check_logprobs, logprobs_along

if TYPE_CHECKING:
    from corral.compiler.compiled import CompiledGrammar
    from corral.compiler.vocabulary import Vocabulary
    from corral.runtime.matcher import Matcher

__all__ = [
    "AutoDraft",
    "Draft",
    "ForcedDraft",
    "ModelDraft",
    "PromptLookupDraft",
    "SpeculativeResult",
    "SpeculativeStats",
    "make_draft",
    "speculative_generate",
]

Encode = Callable[[str], Sequence[int]]
"""A tokenizer's own encoding of a text, without special tokens."""


@runtime_checkable
class Draft(Protocol):
    """A cheap guesser of the next tokens under a constraint.

    A draft must be deterministic (its proposal a function of ``context_ids`` and the matcher's
    state, never of a random draw): the sampling rule of :func:`speculative_generate` relies on
    it. Proposals that the constraint refuses are cut at the first refused token by the caller.

    Examples
    --------
    A draft that never guesses:

    >>> class Nothing:
    ...     def propose(self, context_ids, matcher, k):
    ...         return []
    >>> isinstance(Nothing(), Draft)
    True
    """

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        """Guess up to ``k`` next tokens.

        Parameters
        ----------
        context_ids:
            The whole sequence so far (prompt and the output generated so far).
        matcher:
            A fork of the generation's matcher at the end of ``context_ids``; the draft may advance
            it (and should: it tells which tokens are allowed after the guessed ones).
        k:
            The most tokens to propose (``k >= 1``).

        Returns
        -------
        list[int]
            At most ``k`` token ids, each allowed by the constraint after the ones before it.
        """
        ...


def _accept_prefix(matcher: Matcher, tokens: Sequence[int], k: int) -> list[int]:
    """Accept ``tokens`` on ``matcher`` up to the first refused one (at most ``k``); return those taken."""
    out: list[int] = []
    for t in tokens:
        if len(out) >= k or matcher.is_finished() or not matcher.accept_token(int(t)):
            break
        out.append(int(t))
    return out


def _single_tokens(vocab: Vocabulary) -> dict[bytes, int]:
    """``{bytes: id}`` for the vocabulary's text tokens (the lowest id when several spell the same bytes)."""

    def build(v: Vocabulary) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for i, b in enumerate(v.token_bytes):
            if b and b not in out:
                out[b] = i
        return out

    return vocab.derived("speculative.single_tokens", build)


class ForcedDraft:
    """Jump-forward: the tokens of the text the constraint forces from here.

    The forced text (:meth:`Matcher.forced_bytes`) is spelled with the tokenizer's own encoding
    (``encode``), so the draft proposes the split the model was trained on, never an odd split.
    Of those tokens the longest prefix is kept whose bytes stay within the forced text and which
    the matcher accepts. Where no forced text remains but the mask allows exactly one token
    (:meth:`Matcher.forced_tokens`), that token is proposed too. Alternates the two until ``k``
    tokens or no progress.

    Parameters
    ----------
    encode:
        The tokenizer's encoding of a text without special tokens, e.g.
        ``lambda text: tok.encode(text, add_special_tokens=False)`` for a transformers tokenizer.
        ``None``: only the tokens the mask forces (:meth:`Matcher.forced_tokens`).
    vocab:
        The vocabulary, for tokenizers that prepend a space to the text they encode
        (:attr:`Vocabulary.prepends_space`, SentencePiece): the first token's extra space is then
        dropped when the remaining bytes are one token. Default: the matcher's grammar's.

    Examples
    --------
    >>> from corral import Vocabulary, compile_regex
    >>> vocab = Vocabulary([b"a", b"b", b"ab", b"c", None], eos_token_ids=[4])
    >>> m = compile_regex("(abc|b)", vocab).matcher()
    >>> m.accept_token(0)
    True
    >>> ForcedDraft(lambda text: {"bc": [1, 3]}[text]).propose([0], m.fork(), 8)
    [1, 3]
    """

    def __init__(self, encode: Encode | None = None, vocab: Vocabulary | None = None) -> None:
        self.encode = encode
        self.vocab = vocab

    def _spell(self, text: bytes, matcher: Matcher, k: int, cut_last: bool = False) -> list[int]:
        """Tokens of a prefix of ``text`` (accepted on ``matcher``), from the tokenizer's encoding.

        ``cut_last``: ``text`` was cut at an arbitrary point, so its last token is not proposed
        (the tokenizer would spell the uncut text differently there).
        """
        if self.encode is None:
            return []
        cut = len(text)
        while cut > 0:  # encode whole UTF-8 characters only
            try:
                s = text[:cut].decode("utf-8")
                break
            except UnicodeDecodeError:
                cut -= 1
        else:
            return []
        vocab = self.vocab if self.vocab is not None else matcher.grammar.vocab
        tb = vocab.token_bytes
        tokens = [int(t) for t in self.encode(s)]
        if tokens and vocab.prepends_space and not text.startswith(b" "):
            first = tb[tokens[0]] if 0 <= tokens[0] < len(tb) else None
            if first is not None and first.startswith(b" "):
                alone = _single_tokens(vocab).get(first[1:])
                if alone is None:
                    return []
                tokens[0] = alone
        keep: list[int] = []
        pos = 0
        for t in tokens:
            b = tb[t] if 0 <= t < len(tb) else None
            if not b or text[pos : pos + len(b)] != b:
                break
            keep.append(t)
            pos += len(b)
        if cut_last:
            del keep[-1:]
        return _accept_prefix(matcher, keep, k)

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        """Up to ``k`` tokens of the forced text (see :meth:`Draft.propose`)."""
        out: list[int] = []
        while len(out) < k and not matcher.is_finished():
            got = self._spell(matcher.forced_bytes(), matcher, k - len(out))
            if not got:
                got = _accept_prefix(matcher, matcher.forced_tokens(), k - len(out))
            if not got:
                break
            out += got
        return out


class PromptLookupDraft:
    """Continuations of the last n-gram where it occurred before, in the prompt or the output.

    The last ``ngram`` tokens of the context are searched for earlier in the context (the most
    recent occurrence first); the tokens that followed are proposed, up to the first one the
    constraint refuses. When no occurrence continues with an allowed token, shorter n-grams are
    tried, down to ``min_ngram``.

    Parameters
    ----------
    ngram:
        The longest n-gram to look up.
    min_ngram:
        The shortest.
    max_matches:
        How many occurrences (most recent first) to try per n-gram length.

    Raises
    ------
    CorralError
        If ``1 <= min_ngram <= ngram`` does not hold.

    Examples
    --------
    >>> from corral import Vocabulary, compile_regex
    >>> vocab = Vocabulary([b"a", b"b", b"c", None], eos_token_ids=[3])
    >>> m = compile_regex("[abc]*", vocab).matcher()
    >>> PromptLookupDraft(ngram=2).propose([0, 1, 2, 0, 0, 1], m, 3)
    [2, 0, 0]
    """

    def __init__(self, ngram: int = 3, min_ngram: int = 1, max_matches: int = 4) -> None:
        if not 1 <= min_ngram <= ngram:
            raise CorralError(f"PromptLookupDraft needs 1 <= min_ngram <= ngram (got ngram={ngram}, min_ngram={min_ngram})")
        self.ngram = ngram
        self.min_ngram = min_ngram
        self.max_matches = max_matches

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        """Up to ``k`` tokens that followed the last n-gram before (see :meth:`Draft.propose`)."""
        ctx = np.asarray(context_ids, dtype=np.int64)
        n_ctx = ctx.shape[0]
        for n in range(min(self.ngram, n_ctx - 1), self.min_ngram - 1, -1):
            tail = ctx[n_ctx - n :]
            windows = np.lib.stride_tricks.sliding_window_view(ctx[: n_ctx - 1], n)
            starts = np.flatnonzero((windows == tail).all(axis=1))
            for start in starts[::-1][: self.max_matches]:
                follow = ctx[start + n : start + n + k].tolist()
                got = _accept_prefix(matcher, follow, k)
                if got:
                    return got
        return []


class ModelDraft:
    """A smaller model with the same vocabulary, decoding greedily under the mask.

    Deterministic (the draft model's masked argmax), so the sampling rule stays exact at any
    temperature. Each proposed token costs one call of the draft model's ``next_token_logprobs``;
    give it a model that reuses its KV cache for a context extending one it has seen (as
    :class:`~corral.integrations.hf_lm.HFLanguageModel` does). Greedy decisions check the top
    tokens one by one before building a mask, as the verification does.

    Parameters
    ----------
    lm:
        The draft :class:`~corral.runtime.lm.LanguageModel`; its ``vocab_size`` must equal the
        target's.

    Examples
    --------
    >>> import numpy as np
    >>> from corral import Vocabulary, compile_regex
    >>> class Prefers1:
    ...     vocab_size = 3
    ...     def next_token_logprobs(self, contexts):
    ...         return np.log(np.tile([0.2, 0.7, 0.1], (len(contexts), 1)))
    >>> vocab = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    >>> ModelDraft(Prefers1()).propose([], compile_regex("a?b*", vocab).matcher(), 3)
    [1, 1, 1]
    """

    def __init__(self, lm: LanguageModel) -> None:
        self.lm = lm
        self.calls = 0

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        """Up to ``k`` greedy tokens of the draft model under the mask (see :meth:`Draft.propose`)."""
        ctx = list(context_ids)
        out: list[int] = []
        eos = matcher.grammar.vocab.eos_token_ids
        while len(out) < k and not matcher.is_finished():
            lp = _score(self.lm, ctx, [])[0]
            self.calls += 1
            t = _greedy_choice(lp, matcher, None)
            if not matcher.accept_token(t):  # nothing is allowed
                break
            out.append(t)
            ctx.append(t)
            if t in eos:
                break
        return out


class AutoDraft:
    """Forced text, looked-up continuations, and mask-forced tokens, alternating.

    Each step, in order, until ``k`` tokens or no progress:

    1. the forced text (:meth:`Matcher.forced_bytes`) extended by the bytes that followed the
       same text earlier in the context (a lookup on the text, not the tokens: the longest tail
       of the text so far, of ``min_match`` to 32 bytes, that occurred before), spelled with
       the tokenizer's encoding. Spelling the forced text together with what is likely to follow
       proposes the token the tokenizer merges across the end of the forced text (``":`` in
       ``{"name": ``, not ``"`` then ``:``);
    2. else the tokens the mask forces (:meth:`Matcher.forced_tokens`);
    3. else a token-level :class:`PromptLookupDraft`.

    Parameters
    ----------
    encode:
        The tokenizer's encoding (see :class:`ForcedDraft`); ``None``: steps 2 and 3 only.
    ngram:
        The longest n-gram of the token lookup (see :class:`PromptLookupDraft`).
    vocab:
        See :class:`ForcedDraft`.
    lookahead:
        The most bytes of looked-up text appended to the forced text (0: none).
    min_match:
        The shortest text tail that counts as found earlier.

    Examples
    --------
    >>> from corral import Vocabulary, compile_regex
    >>> vocab = Vocabulary([b"a", b"b", b"-", None], eos_token_ids=[3])
    >>> m = compile_regex("[ab]+-a-b", vocab).matcher()
    >>> m.accept_token(0)
    True

    The prompt ``a-`` and the output ``a``: the lookup proposes ``-a`` (what followed ``a``
    in the prompt), then ``-b`` is forced:

    >>> encode = lambda text: [b"ab-".index(c) for c in text.encode()]
    >>> AutoDraft(encode).propose([0, 2, 0], m.fork(), 8)
    [2, 0, 2, 1]
    """

    def __init__(
        self,
        encode: Encode | None = None,
        ngram: int = 3,
        vocab: Vocabulary | None = None,
        lookahead: int = 32,
        min_match: int = 4,
    ) -> None:
        self.forced = ForcedDraft(encode, vocab)
        self.lookup = PromptLookupDraft(ngram)
        self.lookahead = lookahead
        self.min_match = min_match

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        """Up to ``k`` tokens: forced and looked-up ones (see :meth:`Draft.propose`)."""
        vocab = self.forced.vocab if self.forced.vocab is not None else matcher.grammar.vocab
        ctx = list(context_ids)
        text = vocab.decode_bytes(t for t in ctx if 0 <= t < len(vocab)) if self.lookahead else b""
        out: list[int] = []
        while len(out) < k and not matcher.is_finished():
            forced = matcher.forced_bytes()
            more = _continuation(text + forced, self.min_match, self.lookahead) if self.lookahead else b""
            got = self.forced._spell(forced + more, matcher, k - len(out), cut_last=bool(more)) if forced + more else []
            if not got:
                got = _accept_prefix(matcher, matcher.forced_tokens(), k - len(out))
            if not got:
                got = self.lookup.propose(ctx + out, matcher, k - len(out))
            if not got:
                break
            out += got
            text += vocab.decode_bytes(got)
        return out


def _continuation(text: bytes, min_match: int, most: int) -> bytes:
    """Up to ``most`` bytes that followed the longest tail of ``text`` (32 bytes down to ``min_match``) where it last occurred before."""
    size = 32
    while size >= min_match:
        if len(text) > size:
            pos = text.rfind(text[-size:], 0, len(text) - 1)
            if pos >= 0:
                return text[pos + size : pos + size + most]
        size //= 2
    return b""


def make_draft(draft: Draft | str | None, encode: Encode | None = None, vocab: Vocabulary | None = None) -> Draft | None:
    """The draft named by ``draft``.

    Parameters
    ----------
    draft:
        ``None`` (no drafting), ``"forced"`` (:class:`ForcedDraft`), ``"lookup"``
        (:class:`PromptLookupDraft`), ``"auto"`` (:class:`AutoDraft`), or a :class:`Draft`
        (returned as is).
    encode:
        The tokenizer's encoding for ``"forced"`` and ``"auto"``.
    vocab:
        See :class:`ForcedDraft`.

    Returns
    -------
    Draft or None

    Raises
    ------
    CorralError
        For another name or an object without ``propose``.

    Examples
    --------
    >>> type(make_draft("auto")).__name__, make_draft(None)
    ('AutoDraft', None)
    """
    if draft is None:
        return None
    if isinstance(draft, str):
        if draft == "forced":
            return ForcedDraft(encode, vocab)
        if draft == "lookup":
            return PromptLookupDraft()
        if draft == "auto":
            return AutoDraft(encode, vocab=vocab)
        raise CorralError(f"unknown draft {draft!r}; expected None, 'forced', 'lookup', 'auto' or a Draft object")
    if not callable(getattr(draft, "propose", None)):
        raise CorralError(f"draft= needs a propose(context_ids, matcher, k) method; {type(draft).__name__} has none")
    return draft


@dataclass
class SpeculativeStats:
    """Counters of one :func:`speculative_generate` call.

    Attributes
    ----------
    forward_passes:
        Calls of the target model.
    draft_proposed:
        Drafted tokens that reached verification (allowed by the constraint), and tokens the
        mask forced (taken without a pass when a draft is in use).
    draft_accepted:
        Of those, the ones kept (every mask-forced token is).
    seconds:
        Wall time of the call.
    """

    forward_passes: int = 0
    draft_proposed: int = 0
    draft_accepted: int = 0
    seconds: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        """``draft_accepted / draft_proposed`` (0 when nothing was proposed)."""
        return self.draft_accepted / self.draft_proposed if self.draft_proposed else 0.0


@dataclass
class SpeculativeResult:
    """What :func:`speculative_generate` returns.

    Attributes
    ----------
    token_ids:
        The generated tokens (EOS excluded).
    data:
        Their bytes.
    complete:
        Whether generation ended with EOS (the text is then a complete string of the constraint);
        ``False`` when ``max_tokens`` ran out first.
    stats:
        :class:`SpeculativeStats`.
    """

    token_ids: list[int]
    data: bytes
    complete: bool
    stats: SpeculativeStats = field(default_factory=SpeculativeStats)


def _score(lm: LanguageModel, context: list[int], tokens: list[int]) -> np.ndarray:
    """:func:`~corral.runtime.lm.logprobs_along`; with no tokens, one ``next_token_logprobs`` row.

    Returns
    -------
    numpy.ndarray
        ``(len(tokens) + 1, vocab_size)``.
    """
    if tokens:
        return logprobs_along(lm, context, tokens)
    return check_logprobs(lm.next_token_logprobs([context]), 1, lm.vocab_size)


def _masked_probs(logprobs: np.ndarray, allowed: np.ndarray, temperature: float) -> np.ndarray:
    """The tempered distribution of ``logprobs`` restricted to ``allowed`` and renormalised."""
    z = np.where(allowed, logprobs / temperature, -np.inf)
    top = z.max()
    if top == -np.inf:  # the model gives every allowed token probability 0: uniform over them
        return allowed / allowed.sum()
    z -= top
    p = np.exp(z)
    return p / p.sum()


def _draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """One draw from ``p`` (unnormalised weights allowed); never a zero-weight token."""
    cdf = np.cumsum(p)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))


def _sampled_verdict(p: np.ndarray, drafted: int, rng: np.random.Generator) -> tuple[bool, int]:
    """The speculative sampling rule for a deterministic draft.

    Keep ``drafted`` with probability ``p[drafted]``; otherwise draw from ``p`` without it. The
    token returned is then distributed exactly as ``p``.

    Returns
    -------
    tuple
        ``(kept, token)``.
    """
    if rng.random() < p[drafted]:
        return True, drafted
    rest = p.copy()
    rest[drafted] = 0.0
    return False, _draw(rest, rng)


def _verify(
    logprobs: np.ndarray,
    walker: Matcher,
    allowed0: np.ndarray,
    drafted: list[int],
    temperature: float,
    rng: np.random.Generator,
) -> tuple[int, int | None]:
    """Verify ``drafted`` against the target's ``logprobs`` (one row per position, and one more).

    ``walker`` is at the first position (whose allowed tokens are ``allowed0``) and is advanced
    over the kept tokens. Greedy decisions read single tokens (:meth:`Matcher.check_token`)
    before falling back to a mask; sampling builds the mask of each position it reaches.

    Returns
    -------
    tuple
        ``(kept, chosen)``: how many drafted tokens are kept, and the target's token at the first
        position not kept (``None`` when the kept draft ends with EOS: generation is over).
    """
    size = allowed0.shape[0]
    for i in range(len(drafted) + 1):
        allowed = allowed0 if i == 0 else None
        if temperature == 0.0:
            token = _greedy_choice(logprobs[i], walker, allowed)
            keep = i < len(drafted) and drafted[i] == token
        else:
            if allowed is None:
                allowed = bitmask_to_bool(walker.next_token_mask(), size)
            p = _masked_probs(logprobs[i], allowed, temperature)
            if i < len(drafted):
                keep, token = _sampled_verdict(p, drafted[i], rng)
            else:
                keep, token = False, _draw(p, rng)
        if not keep:
            return i, token
        walker.accept_token(token)
        if walker.is_finished():  # a kept EOS
            return i + 1, None
    raise AssertionError("unreachable")  # pragma: no cover


_CANDIDATES = 16  # greedy: the top tokens checked one by one before a mask is built


def _greedy_choice(logprobs: np.ndarray, matcher: Matcher, allowed: np.ndarray | None) -> int:
    """The masked argmax at ``matcher``'s position (ties: the lowest id).

    When ``allowed`` is not given, the highest-scoring tokens are checked one by one with
    :meth:`Matcher.check_token` in the order (score descending, id ascending): the first allowed
    one is the masked argmax. Only when none of them is allowed is the mask built.
    """
    if allowed is None:
        n = logprobs.shape[0]
        if n > _CANDIDATES:
            top = np.argpartition(-logprobs, _CANDIDATES)[:_CANDIDATES]
            cand = np.flatnonzero(logprobs >= logprobs[top].min())  # every tie at the boundary too
        else:
            cand = np.arange(n)
        if cand.shape[0] <= 4 * _CANDIDATES:
            for t in cand[np.lexsort((cand, -logprobs[cand]))]:
                if logprobs[t] == -np.inf:
                    break
                if matcher.check_token(int(t)):
                    return int(t)
        allowed = bitmask_to_bool(matcher.next_token_mask(), logprobs.shape[0])
    return _masked_argmax(logprobs, allowed)


def _masked_argmax(logprobs: np.ndarray, allowed: np.ndarray) -> int:
    """The allowed token of highest log-probability (ties: the lowest id; all ``-inf``: the lowest allowed id)."""
    z = np.where(allowed, logprobs, -np.inf)
    best = int(np.argmax(z))
    if z[best] == -np.inf:
        return int(np.argmax(allowed))
    return best


def speculative_generate(
    lm: LanguageModel,
    grammar: CompiledGrammar,
    prompt_ids: Sequence[int],
    *,
    draft: Draft | str | None = None,
    num_draft_tokens: int = 8,
    temperature: float = 0.0,
    max_tokens: int = 256,
    seed: int | None = None,
    encode: Encode | None = None,
) -> SpeculativeResult:
    """Constrained decoding with drafted tokens verified by the target model, several per pass.

    With ``draft=None`` this is plain masked decoding (one target pass per token). With a draft,
    each pass scores the drafted positions and the one after them at once, and tokens the mask
    forces (a single allowed id) are taken without a pass; the output is the same (greedy: token
    for token; sampling: in distribution), with fewer passes. In every mode a position where
    only EOS is allowed ends the generation without a pass.

    Parameters
    ----------
    lm:
        The target :class:`~corral.runtime.lm.LanguageModel`; ``vocab_size`` must equal
        ``grammar.vocab.size``.
    grammar:
        The constraint.
    prompt_ids:
        The prompt's tokens.
    draft:
        ``None``, ``"forced"``, ``"lookup"``, ``"auto"`` or a :class:`Draft` (see
        :func:`make_draft`).
    num_draft_tokens:
        The most tokens drafted per pass.
    temperature:
        0: greedy (the masked argmax; ties go to the lowest id). Otherwise sampling from the
        tempered, masked, renormalised distribution.
    max_tokens:
        The most tokens generated, EOS included (as transformers' ``max_new_tokens``).
    seed:
        Seed of :func:`numpy.random.default_rng` for sampling.
    encode:
        The tokenizer's encoding of a text without special tokens, for ``"forced"`` and
        ``"auto"`` (e.g. ``lambda s: tok.encode(s, add_special_tokens=False)``); without it they
        propose only the tokens the mask forces.

    Returns
    -------
    SpeculativeResult
        The tokens (EOS excluded), their bytes, whether EOS ended them, and the counters.

    Raises
    ------
    CorralError
        If the model's ``vocab_size`` differs from the vocabulary's size, ``num_draft_tokens`` or
        ``max_tokens`` is negative, ``temperature`` is negative, or ``draft`` is not a draft; also
        when the constraint allows no token at all (an empty language).

    Examples
    --------
    >>> import numpy as np
    >>> from corral import Vocabulary, compile_regex
    >>> class PrefersAB:
    ...     vocab_size = 4
    ...     def next_token_logprobs(self, contexts):
    ...         return np.log(np.tile([0.1, 0.1, 0.7, 0.1], (len(contexts), 1)))
    >>> vocab = Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
    >>> grammar = compile_regex("abab", vocab)
    >>> plain = speculative_generate(PrefersAB(), grammar, [])
    >>> fast = speculative_generate(PrefersAB(), grammar, [], draft="forced", encode=lambda s: [2] * (len(s) // 2))
    >>> plain.data, fast.data, plain.stats.forward_passes, fast.stats.forward_passes
    (b'abab', b'abab', 2, 1)
    """
    start = time.perf_counter()
    vocab = grammar.vocab
    size = vocab.size
    if int(lm.vocab_size) != size:
        raise CorralError(f"the model's vocab_size is {lm.vocab_size} but the grammar's vocabulary has size {size}")
    if num_draft_tokens < 0 or max_tokens < 0:
        raise CorralError(f"num_draft_tokens and max_tokens must be >= 0 (got {num_draft_tokens}, {max_tokens})")
    if temperature < 0:
        raise CorralError(f"temperature must be >= 0 (got {temperature})")
    drafter = make_draft(draft, encode, vocab)
    eos = vocab.eos_token_ids
    eos_only = np.zeros(size, dtype=bool)
    eos_only[sorted(eos)] = True
    rng = np.random.default_rng(seed)
    stats = SpeculativeStats()
    prompt = [int(t) for t in prompt_ids]
    out: list[int] = []
    matcher = grammar.matcher()
    complete = False

    while len(out) < max_tokens:
        if drafter is not None:
            # Tokens the mask forces need no pass: the target has no choice there.
            free = matcher.forced_tokens()[: max_tokens - len(out)]
            if free:
                matcher.accept_tokens(free)
                out += free
                stats.draft_proposed += len(free)
                stats.draft_accepted += len(free)
                continue
        allowed0 = bitmask_to_bool(matcher.next_token_mask(), size)
        if not allowed0.any():
            raise CorralError("the constraint allows no token here (its language is empty)")
        if not (allowed0 & ~eos_only).any():
            complete = True  # only EOS is possible: no pass needed
            break
        context = prompt + out
        drafted: list[int] = []
        k = min(num_draft_tokens, max_tokens - len(out) - 1)
        if drafter is not None and k > 0:
            drafted = [int(t) for t in drafter.propose(context, matcher.fork(), k)][:k]
        # Keep the drafted tokens the constraint allows (EOS ends a draft).
        walker = matcher.fork()
        for n, t in enumerate(drafted):
            if not walker.accept_token(t):
                del drafted[n:]
                break
            if t in eos:
                del drafted[n + 1 :]
                break
        walker.rollback(walker.num_tokens - matcher.num_tokens)
        stats.draft_proposed += len(drafted)

        logprobs = _score(lm, context, drafted)
        stats.forward_passes += 1
        # Walk the draft position by position; ``walker`` ends after the kept tokens.
        kept, chosen = _verify(logprobs, walker, allowed0, drafted, temperature, rng)
        stats.draft_accepted += kept
        matcher = walker
        out += drafted[:kept]
        if chosen is None:  # the draft's EOS was kept
            out.pop()
            complete = True
            break
        if chosen in eos:
            complete = True
            break
        if not matcher.accept_token(chosen):  # pragma: no cover - chosen is allowed by the mask
            raise CorralError(f"internal error: the matcher refused the allowed token {chosen}")
        out.append(chosen)

    stats.seconds = time.perf_counter() - start
    return SpeculativeResult(out, vocab.decode_bytes(out), complete, stats)
