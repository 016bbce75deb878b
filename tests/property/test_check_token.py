"""``Matcher.check_token`` equals the mask, for every id, at every reachable state.

Small generated regexes over a few ASCII and multi-byte characters, and small generated
vocabularies whose tokens cut those characters anywhere (lone lead and continuation bytes), with a
special id, an EOS id and padding ids up to a wider mask. Every DFA state the vocabulary can reach
is visited (breadth first, one token path per state) and every id of the mask is checked, on an
eager store (stored rows) and on a store that keeps no mask (a walk of the token's bytes).
"""

from __future__ import annotations

import os
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corral
from corral import CorralError, Vocabulary
from corral.compiler.regex import regex_to_dfa

SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))

ATOMS = ["a", "b", "é", "中", "0", "[ab]", "[^a]", r"\d", ".", "[é中]", "[a-é]"]
PIECES = [b"a", b"b", b"0", b"1", b"x", "é".encode(), "中".encode(), b"\xc3", b"\xa9", b"\xe4", b"\xb8\xad",
          b"\xe4\xb8", b"\xad", b"\xff"]


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map("".join),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(" + "|".join(xs) + ")"),
        st.tuples(children, st.sampled_from(["*", "+", "?", "{2}", "{1,3}"])).map(lambda p: f"(?:{p[0]}){p[1]}"),
    )


patterns = st.recursive(st.sampled_from(ATOMS), _extend, max_leaves=6)

token = st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map(b"".join)


@st.composite
def vocabularies(draw: st.DrawFn) -> Vocabulary:
    text = draw(st.lists(token, min_size=3, max_size=14, unique=True))
    tokens: list[bytes | None] = [*text, None, None]
    n = len(tokens)
    return Vocabulary(tokens, eos_token_ids=[n - 2], special_token_ids=[n - 1],
                      size=n + draw(st.integers(0, 40)))


def reachable_paths(pattern: str, vocab: Vocabulary, limit: int = 400) -> list[list[int]]:
    """One token path to each DFA state the vocabulary's text tokens reach from the start."""
    dfa = regex_to_dfa(pattern)
    tb = vocab.token_bytes
    seen = {dfa.start: []}
    queue: deque[tuple[int, list[int]]] = deque([(dfa.start, [])])
    while queue and len(seen) < limit:
        s, path = queue.popleft()
        for t, b in enumerate(tb):
            if not b:
                continue
            s2 = dfa.run(b, s)
            if s2 >= 0 and s2 not in seen:
                seen[s2] = path + [t]
                queue.append((s2, path + [t]))
    return list(seen.values())


@settings(max_examples=80 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns, vocab=vocabularies())
def test_check_token_equals_mask_at_every_reachable_state(pattern: str, vocab: Vocabulary) -> None:
    eager = corral.compile_regex(pattern, vocab)
    lazy = corral.compile_regex(pattern, vocab, mask_cache_bytes=1)
    ids = range(vocab.size)
    for path in reachable_paths(pattern, vocab):
        for g in (eager, lazy):
            m = g.matcher()
            assert m.accept_tokens(path)
            got = [m.check_token(t) for t in ids]
            assert got == corral.bitmask_to_bool(m.next_token_mask(), vocab.size).tolist(), (pattern, path)
            assert m.num_tokens == len(path)
            for t in ids:
                assert m.fork().accept_token(t) == got[t], (pattern, path, t)
    # finished: nothing at all
    m = eager.matcher()
    for path in reachable_paths(pattern, vocab):
        m.reset()
        assert m.accept_tokens(path)
        if m.accept_token(min(vocab.eos_token_ids)):
            assert not any(m.check_token(t) for t in ids)
            break


def test_check_token_error_names_the_id_and_the_mask() -> None:
    vocab = Vocabulary([b"a", b"b", None], eos_token_ids=[2], size=40)
    m = corral.compile_regex("a+", vocab).matcher()
    with pytest.raises(CorralError, match=r"^token id 40 is outside the mask \(ids 0 to 39\)$"):
        m.check_token(40)
    with pytest.raises(CorralError, match=r"^a token id must be an integer, got float 0.0$"):
        m.check_token(0.0)  # type: ignore[arg-type]
    assert m.check_token(np.int64(0)) and not m.check_token(np.int32(39))
