"""corral.runtime.speculative on toy table models with exact distributions.

- Greedy decoding gives the same tokens with and without every kind of draft (many models,
  prompts, constraints and draft lengths), and a draft that proposes junk changes nothing.
- Sampling: the distribution of sampled sequences equals masked sampling's exact distribution
  (:func:`tests.toy_lm.enumerate_language`), by a chi-square test at a fixed seed; the same test
  fails when the acceptance rule is deliberately wrong (always keep the drafted token).
- Drafts propose only allowed tokens; after a rejection neither the matcher handed to the draft
  nor the context passed to the model holds a rejected token.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import corral
from corral import CorralError, Vocabulary
from corral.runtime import speculative
from corral.runtime.matcher import Matcher
from corral.runtime.speculative import (
    AutoDraft,
    Draft,
    ForcedDraft,
    ModelDraft,
    PromptLookupDraft,
    make_draft,
    speculative_generate,
)
from tests.toy_lm import RandomTableLM, enumerate_language

TOKENS = [b"a", b"b", b"c", b"ab", b"bc", b"abc", b"{", b"}", b'{"', b'"', b"k", b'":', b":", b",", b'"}', b" ", b"-"]
VOCAB = Vocabulary(TOKENS + [None], eos_token_ids=[len(TOKENS)], size=len(TOKENS) + 3)
EOS = len(TOKENS)


def encode(text: str) -> list[int]:
    """The toy tokenizer: longest match first, left to right."""
    data = text.encode()
    out: list[int] = []
    pos = 0
    while pos < len(data):
        best = max((i for i, t in enumerate(TOKENS) if data.startswith(t, pos)), key=lambda i: len(TOKENS[i]))
        out.append(best)
        pos += len(TOKENS[best])
    return out


CONSTRAINTS = {
    "regex-record": lambda: corral.compile_regex(r'\{"k":(a|bc|abc)(,(a|b))*"\}', VOCAB),
    "regex-runs": lambda: corral.compile_regex(r"(ab|c)+-(abc)*", VOCAB),
    "grammar-list": lambda: corral.compile_grammar('start: "{" item ("," item)* "}"\nitem: "a" | "bc" | "\\"k\\":" item', VOCAB),
}
PROMPTS = ['{"k":abc,a"}', "ab-c abc", "{a,bc}", ""]


def drafts(lm_seed: int) -> dict[str, Draft | str | None]:
    return {
        "none": None,
        "forced": ForcedDraft(encode),
        "forced-mask-only": "forced",
        "lookup": PromptLookupDraft(ngram=3),
        "auto": AutoDraft(encode),
        "model-other": ModelDraft(RandomTableLM(VOCAB.size, seed=lm_seed + 1000, concentration=0.3)),
        "model-same": ModelDraft(RandomTableLM(VOCAB.size, seed=lm_seed, concentration=0.3)),
        "junk": JunkDraft(lm_seed),
    }


class JunkDraft:
    """Proposes random ids (most of them refused by the constraint, some out of range)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        return self.rng.integers(0, VOCAB.size + 2, size=k).tolist()


def reference_greedy(lm: RandomTableLM, grammar: corral.CompiledGrammar, prompt: list[int], max_tokens: int) -> tuple[list[int], bool]:
    """Masked greedy decoding written plainly: the whole mask, then the argmax, every step."""
    m = grammar.matcher()
    out: list[int] = []
    while len(out) < max_tokens:
        allowed = corral.bitmask_to_bool(m.next_token_mask(), VOCAB.size)
        t = int(np.argmax(np.where(allowed, np.log(lm.probs(prompt + out)), -np.inf)))
        if t == EOS:
            return out, True
        assert m.accept_token(t)
        out.append(t)
    return out, False


@pytest.mark.parametrize("candidates", [16, 1])
@pytest.mark.parametrize("constraint", sorted(CONSTRAINTS))
def test_greedy_equals_plain_masked_argmax(constraint: str, candidates: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # candidates=1: the top token is checked alone, so the mask fallback runs often
    monkeypatch.setattr(speculative, "_CANDIDATES", candidates)
    grammar = CONSTRAINTS[constraint]()
    for lm_seed in range(6):
        uniform = {(): [1.0] * VOCAB.size} if lm_seed == 0 else None  # exact ties: the lowest id wins
        for concentration in (0.3, 1.0):
            lm = RandomTableLM(VOCAB.size, seed=lm_seed, concentration=concentration, overrides=uniform)
            for prompt in PROMPTS:
                want = reference_greedy(lm, grammar, encode(prompt), 20)
                for draft in (None, AutoDraft(encode)):
                    got = speculative_generate(lm, grammar, encode(prompt), draft=draft, max_tokens=20, encode=encode)
                    assert (got.token_ids, got.complete) == want


@pytest.mark.parametrize("constraint", sorted(CONSTRAINTS))
def test_greedy_identical_with_every_draft(constraint: str) -> None:
    grammar = CONSTRAINTS[constraint]()
    runs = 0
    for lm_seed in range(6):
        lm = RandomTableLM(VOCAB.size, seed=lm_seed, concentration=0.3)
        for prompt in PROMPTS:
            ids = encode(prompt)
            want = speculative_generate(lm, grammar, ids, max_tokens=20)
            assert want.stats.forward_passes >= len(want.token_ids)
            for name, draft in drafts(lm_seed).items():
                for k in (1, 3, 8):
                    got = speculative_generate(lm, grammar, ids, draft=draft, num_draft_tokens=k, max_tokens=20,
                                               encode=encode)
                    assert (got.token_ids, got.complete) == (want.token_ids, want.complete), (name, k, prompt)
                    assert got.data == VOCAB.decode_bytes(got.token_ids)
                    assert got.stats.forward_passes <= want.stats.forward_passes, (name, k)
                    assert got.stats.draft_accepted <= got.stats.draft_proposed
                    runs += 1
    assert runs == 6 * len(PROMPTS) * 8 * 3


def test_drafts_save_passes_on_forced_text() -> None:
    grammar = CONSTRAINTS["regex-record"]()
    lm = RandomTableLM(VOCAB.size, seed=3, concentration=0.3)
    plain = speculative_generate(lm, grammar, [], max_tokens=30)
    auto = speculative_generate(lm, grammar, [], draft="auto", max_tokens=30, encode=encode)
    same = speculative_generate(lm, grammar, [], draft=ModelDraft(lm), max_tokens=30)
    assert auto.token_ids == plain.token_ids == same.token_ids
    assert auto.stats.forward_passes < plain.stats.forward_passes
    assert same.stats.draft_accepted == same.stats.draft_proposed > 0  # the target as its own draft
    assert same.stats.forward_passes <= -(-len(plain.token_ids) // 9) + 1
    assert plain.stats.draft_proposed == plain.stats.draft_accepted == 0


# -- sampling: the distribution is unchanged ----------------------------------------------------

SMALL = {
    # finite languages, few token sequences each, with forced text, splits and choices
    "record": (lambda: corral.compile_regex(r'\{"k":(a|bc)(,(a|b))?"\}', VOCAB), '{"k":a,b"}'),
    "runs": (lambda: corral.compile_regex(r"(ab|c){1,2}-(abc)?", VOCAB), "ab-abc c-"),
}


def chi_square_p(observed: Counter[tuple[int, ...]], expected: dict[tuple[int, ...], float], n: int) -> float:
    """p-value of Pearson's chi-square test of ``observed`` counts against probabilities ``expected``.

    Categories with an expected count under 5 are pooled into one. The p-value comes from scipy
    when installed, else from the Wilson-Hilferty approximation (good to about 1e-3 relative for
    the degrees of freedom here).
    """
    unseen = set(observed) - set(expected)
    assert not unseen, f"sequences outside the language: {sorted(unseen)[:3]}"
    stat, pooled_o, pooled_e, bins = 0.0, 0.0, 0.0, 0
    for seq, p in expected.items():
        e = n * p
        if e < 5:
            pooled_o += observed.get(seq, 0)
            pooled_e += e
            continue
        stat += (observed.get(seq, 0) - e) ** 2 / e
        bins += 1
    if pooled_e > 0:
        stat += (pooled_o - pooled_e) ** 2 / pooled_e
        bins += 1
    df = bins - 1
    assert df >= 3
    try:
        from scipy.stats import chi2

        return float(chi2.sf(stat, df))
    except ImportError:
        z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
        return 0.5 * math.erfc(z / math.sqrt(2))


def sample_counts(grammar: corral.CompiledGrammar, lm: Any, prompt: list[int], draft: Any, n: int,
                  temperature: float = 1.0) -> tuple[Counter[tuple[int, ...]], int, int]:
    counts: Counter[tuple[int, ...]] = Counter()
    proposed = accepted = 0
    for seed in range(n):
        r = speculative_generate(lm, grammar, prompt, draft=draft, temperature=temperature, seed=seed, max_tokens=12,
                                 encode=encode)
        assert r.complete
        counts[tuple(r.token_ids)] += 1
        proposed += r.stats.draft_proposed
        accepted += r.stats.draft_accepted
    return counts, proposed, accepted


N_SAMPLES = 1500


@pytest.mark.parametrize("draft_kind", ["none", "auto", "model"])
@pytest.mark.parametrize("case", sorted(SMALL))
def test_sampled_distribution_equals_masked_sampling(case: str, draft_kind: str) -> None:
    make, prompt_text = SMALL[case]
    grammar = make()
    lm = RandomTableLM(VOCAB.size, seed=7, concentration=1.0)
    temperature = 0.8 if draft_kind == "model" else 1.0
    _, masked, _ = enumerate_language(lm, grammar, encode(prompt_text), max_tokens=12, temperature=temperature)
    assert 6 <= len(masked) <= 200
    draft = {"none": None, "auto": AutoDraft(encode), "model": ModelDraft(RandomTableLM(VOCAB.size, seed=8))}[draft_kind]
    counts, proposed, accepted = sample_counts(grammar, lm, encode(prompt_text), draft, N_SAMPLES, temperature)
    if draft is not None:
        assert 0 < accepted < proposed  # both branches of the rule are exercised
    assert chi_square_p(counts, masked, N_SAMPLES) > 1e-3


def test_sampled_distribution_test_fails_with_a_wrong_acceptance_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    make, prompt_text = SMALL["record"]
    grammar = make()
    lm = RandomTableLM(VOCAB.size, seed=7, concentration=1.0)
    _, masked, _ = enumerate_language(lm, grammar, encode(prompt_text), max_tokens=12)

    def always(p: np.ndarray, drafted: int, rng: np.random.Generator) -> tuple[bool, int]:
        rng.random()
        return True, drafted

    monkeypatch.setattr(speculative, "_sampled_verdict", always)
    counts, _, _ = sample_counts(grammar, lm, encode(prompt_text), AutoDraft(encode), N_SAMPLES)
    assert chi_square_p(counts, masked, N_SAMPLES) < 1e-6


# -- drafts propose only allowed tokens; no stale state ----------------------------------------


def random_states(grammar: corral.CompiledGrammar, seed: int, count: int) -> list[tuple[list[int], Matcher]]:
    """Matchers after random walks of allowed tokens (with their tokens)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        m = grammar.matcher()
        toks: list[int] = []
        for _ in range(int(rng.integers(0, 10))):
            allowed = [t for t in np.flatnonzero(corral.bitmask_to_bool(m.next_token_mask(), VOCAB.size)) if t != EOS]
            if not allowed:
                break
            t = int(rng.choice(allowed))
            assert m.accept_token(t)
            toks.append(t)
        out.append((toks, m))
    return out


@pytest.mark.parametrize("constraint", sorted(CONSTRAINTS))
def test_drafts_propose_only_allowed_tokens(constraint: str) -> None:
    grammar = CONSTRAINTS[constraint]()
    lm = RandomTableLM(VOCAB.size, seed=1)
    kinds: list[Draft] = [ForcedDraft(encode), ForcedDraft(), PromptLookupDraft(2), AutoDraft(encode), ModelDraft(lm)]
    proposed = 0
    for toks, m in random_states(grammar, 0, 40):
        context = encode(PROMPTS[len(toks) % len(PROMPTS)]) + toks
        for draft in kinds:
            for k in (1, 4, 8):
                before = (m.num_tokens, m.next_token_mask().copy())
                got = draft.propose(context, m.fork(), k)
                assert (m.num_tokens, m.next_token_mask().tolist()) == (before[0], before[1].tolist())
                assert len(got) <= k
                assert m.fork().accept_tokens(got), (type(draft).__name__, got)
                proposed += len(got)
    assert proposed > 100


def test_forced_draft_spells_forced_text_with_the_tokenizer() -> None:
    grammar = corral.compile_regex(r'\{"k":(a|bc)\}', VOCAB)
    m = grammar.matcher()
    assert ForcedDraft(encode).propose([], m.fork(), 8) == encode('{"k":')  # '{"', 'k', '":'
    assert ForcedDraft(encode).propose([], m.fork(), 2) == encode('{"k')
    # several ids spell '{', so the mask forces no single token: without encode, no proposal
    assert ForcedDraft().propose([], m.fork(), 8) == []
    # an encoding that runs past the forced text is cut where it leaves it
    assert ForcedDraft(lambda s: encode(s + "a}")).propose([], m.fork(), 8) == encode('{"k":')
    # one that spells it differently from the text is cut at the first difference; then the
    # tokens the mask forces follow ('"' and 'k': after '{' no other token fits)
    wrong = ForcedDraft(lambda s: [TOKENS.index(b"{"), TOKENS.index(b"b")])
    assert wrong.propose([], m.fork(), 8) == [TOKENS.index(b"{"), TOKENS.index(b'"'), TOKENS.index(b"k")]


def test_forced_draft_uses_mask_forced_tokens() -> None:
    vocab = Vocabulary([b"x", b"y", b"xy", None], eos_token_ids=[3])
    grammar = corral.compile_regex("(xy)+", vocab)
    m = grammar.matcher()
    assert m.accept_token(0)  # "x": now only "y" is allowed
    assert ForcedDraft().propose([], m.fork(), 8) == [1]
    assert ForcedDraft(lambda s: []).propose([], m.fork(), 8) == [1]


def test_forced_draft_drops_sentencepiece_leading_space() -> None:
    vocab = Vocabulary([b" ab", b"ab", b" ", b"c", None], eos_token_ids=[4], prepends_space=True)
    grammar = corral.compile_regex("abc", vocab)
    sp_encode = {"abc": [0, 3]}.__getitem__  # SentencePiece spells "abc" as "▁ab", "c"
    assert ForcedDraft(sp_encode).propose([], grammar.matcher(), 8) == [1, 3]


def test_auto_draft_spells_forced_text_with_what_followed_it_before() -> None:
    grammar = corral.compile_regex(r'\{"k" ?:(a|bc)\}', VOCAB)
    m = grammar.matcher()
    assert m.accept_token(TOKENS.index(b"{"))
    context = encode('a {"k":bc}') + [TOKENS.index(b"{")]
    t = TOKENS.index
    # the forced text '"k"' alone ends in '"'; followed by what came after it in the prompt
    # (':bc}'), the tokenizer merges '":', and the looked-up text continues the draft
    assert ForcedDraft(encode).propose(context, m.fork(), 8) == [t(b'"'), t(b"k"), t(b'"')]
    assert AutoDraft(encode).propose(context, m.fork(), 8) == [t(b'"'), t(b"k"), t(b'":'), t(b"bc"), t(b"}")]
    # without an earlier occurrence, the forced text as the tokenizer spells it
    assert AutoDraft(encode).propose([t(b"{")], m.fork(), 8) == [t(b'"'), t(b"k"), t(b'"')]
    assert AutoDraft(encode, lookahead=0).propose(context, m.fork(), 8)[:3] == [t(b'"'), t(b"k"), t(b'"')]


def test_prompt_lookup_prefers_longest_ngram_and_skips_refused_continuations() -> None:
    grammar = corral.compile_regex("[abc]*", VOCAB)
    a, b, c = 0, 1, 2
    ctx = [a, b, c, c, b, a, b, b, a, b]
    # trigram (b, a, b) occurred at 4 -> followed by b, a, b
    assert PromptLookupDraft(ngram=3).propose(ctx, grammar.matcher(), 3) == [b, a, b]
    # bigram lookup: the most recent earlier (a, b) is at 5 -> b, a
    assert PromptLookupDraft(ngram=2).propose(ctx, grammar.matcher(), 2) == [b, a]
    # a constraint refusing 'c' cuts the continuation
    no_c = corral.compile_regex("[ab]*", VOCAB)
    assert PromptLookupDraft(ngram=2, min_ngram=2).propose([a, b, c, a, b], no_c.matcher(), 3) == []
    assert PromptLookupDraft(ngram=1).propose([], grammar.matcher(), 3) == []
    with pytest.raises(CorralError, match="min_ngram"):
        PromptLookupDraft(ngram=1, min_ngram=2)


class SpyDraft:
    """Wraps a draft; records the context and matcher state it is given."""

    def __init__(self, inner: Draft) -> None:
        self.inner = inner
        self.seen: list[tuple[list[int], int, list[int]]] = []

    def propose(self, context_ids: Sequence[int], matcher: Matcher, k: int) -> list[int]:
        self.seen.append((list(context_ids), matcher.num_tokens, matcher.next_token_mask().tolist()))
        return self.inner.propose(context_ids, matcher, k)


class RecordingLM(RandomTableLM):
    """A table model with its own ``logprobs_along`` simulating a KV cache cropped to the common prefix."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.along: list[tuple[list[int], list[int]]] = []
        self.cache: list[int] = []
        self.computed = 0

    def logprobs_along(self, context: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        seq = list(context) + list(tokens)
        keep = 0
        while keep < min(len(self.cache), len(seq) - 1) and self.cache[keep] == seq[keep]:
            keep += 1
        self.computed += len(seq) - keep
        self.cache = seq
        self.along.append((list(context), list(tokens)))
        return self.next_token_logprobs([seq[: len(context) + i] for i in range(len(tokens) + 1)])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_no_stale_state_after_rejection(temperature: float) -> None:
    grammar = CONSTRAINTS["grammar-list"]()
    prompt = encode("{a,bc,bc,a}")
    for seed in range(5):
        lm = RecordingLM(VOCAB.size, seed=seed, concentration=0.3)
        spy = SpyDraft(AutoDraft(encode))
        r = speculative_generate(lm, grammar, prompt, draft=spy, temperature=temperature, seed=seed, max_tokens=30,
                                 encode=encode)
        assert r.stats.draft_accepted < r.stats.draft_proposed  # there were rejections
        final = prompt + r.token_ids
        for context, tokens in lm.along:
            assert context == final[: len(context)]  # no rejected token in any context
        for context, n, mask in spy.seen:
            assert context == final[: len(context)]
            fresh = grammar.matcher()
            assert fresh.accept_tokens(context[len(prompt) :])
            assert (n, mask) == (fresh.num_tokens, fresh.next_token_mask().tolist())
        # each pass computes only the tokens past the cache's common prefix: the new ones
        assert lm.computed <= len(prompt) + len(r.token_ids) + r.stats.draft_proposed + r.stats.forward_passes


def test_budget_eos_and_counters() -> None:
    grammar = corral.compile_regex(r"(ab|c)+", VOCAB)
    lm = RandomTableLM(VOCAB.size, seed=0, concentration=0.3)
    full = speculative_generate(lm, grammar, [], max_tokens=40)
    cut = speculative_generate(lm, grammar, [], max_tokens=2)
    assert not cut.complete and cut.token_ids == full.token_ids[:2]
    assert speculative_generate(lm, grammar, [], max_tokens=0).token_ids == []
    # a constraint whose end is forced needs no pass for its EOS
    only = corral.compile_regex("abc", VOCAB)
    likes_abc = RandomTableLM(VOCAB.size, overrides={(): [1.0] * 5 + [9.0] + [1.0] * (VOCAB.size - 6)})
    r = speculative_generate(likes_abc, only, [], draft="forced", encode=encode)
    assert (r.token_ids, r.complete, r.stats.forward_passes, r.stats.draft_proposed) == ([5], True, 1, 1)
    # uniform: the target prefers the lowest id ('a'), so the draft 'abc' is refused
    uniform = RandomTableLM(VOCAB.size, overrides={(): [1.0] * VOCAB.size})
    r = speculative_generate(uniform, only, [], draft="forced", encode=encode)
    assert (r.token_ids, r.complete, r.stats.forward_passes) == ([0, 1, 2], True, 2)  # 'a', 'b' (lowest ids); 'c' forced: no pass


def test_errors() -> None:
    grammar = corral.compile_regex("a", VOCAB)
    with pytest.raises(CorralError, match="vocab_size is 5"):
        speculative_generate(RandomTableLM(5), grammar, [])
    lm = RandomTableLM(VOCAB.size)
    with pytest.raises(CorralError, match="unknown draft 'fast'"):
        speculative_generate(lm, grammar, [], draft="fast")
    with pytest.raises(CorralError, match="temperature"):
        speculative_generate(lm, grammar, [], temperature=-1)
    with pytest.raises(CorralError, match="propose"):
        make_draft(object())  # type: ignore[arg-type]
    assert isinstance(make_draft("lookup"), PromptLookupDraft)
