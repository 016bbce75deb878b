"""The follow filter of the grammar mask store: followers run side by side equal their union.

``follow_passes`` decides whether the rest of a token after a terminal's end could begin some
follower, running each follower's automaton from the stacked table. It must give exactly what
the determinised union of those automata gives (what the store built before, at a cost of
seconds for big schemas), checked here on every terminal of SQL, a JSON Schema and a Lark
grammar, over the bytes of many real tokens (and their tails).
"""

from __future__ import annotations

import numpy as np
import pytest

import corral
import corral.grammars
from corral import Vocabulary
from corral.compiler.earley_tables import union_of
from corral.compiler.regex import RegexLimits
from corral.errors import CompileLimitError
from corral.runtime import cfg_maskstore
from corral.runtime.cfg_maskstore import _coarse, follow_passes
from corral.runtime.engine import earley_engine

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "kind": {"enum": ["a", "b", "ab"]},
        "n": {"type": "integer", "minimum": -5},
        "tags": {"type": "array", "items": {"type": "number"}},
    },
    "required": ["name"],
}

LARK = r"""
start: expr
expr: term (("+" | "-" | "+=") term)*
term: NUMBER | NAME | STRING | "(" expr ")"
NUMBER: /[0-9]+(\.[0-9]+)?/
NAME: /[a-zé_]+/
STRING: /"[^"]{0,6}"/
%ignore " "
"""


def union_passes(trans: np.ndarray, acc: np.ndarray, start: int, data: bytes) -> bool:
    """The reference: the determinised union automaton read over ``data``."""
    f = start
    for b in data:
        f = int(trans[f, b])
        if f < 0 or acc[f]:
            break
    return f >= 0


@pytest.mark.parametrize("kind", ["sql", "schema", "lark"])
def test_followers_side_by_side_equal_their_union(llama3: tuple[object, Vocabulary], kind: str) -> None:
    vocab = llama3[1]
    if kind == "sql":
        g = corral.compile_grammar(corral.grammars.load("sql"), vocab)
    elif kind == "schema":
        g = corral.compile_json_schema(SCHEMA, vocab)
    else:
        g = corral.compile_grammar(LARK, vocab)
    store = earley_engine(g).store
    tb = store.tables
    rng = np.random.default_rng(0)
    sample = rng.choice(len(vocab), size=3000, replace=False)
    rests = sorted({b[k:] for t in sample.tolist() if (b := vocab.token_bytes[t]) for k in range(min(len(b), 3))})
    rests += [b"", b" ", b'"', b",", b"}", b" FROM", b"1", b"-", b"+=", b")"]
    checked = 0
    for term in range(len(tb.terminals)):
        followers = sorted(tb.follow[term])
        if not followers:
            continue
        try:
            u = union_of([_coarse(tb.term_filters[f]) for f in followers], RegexLimits())
        except CompileLimitError:
            continue
        ftrans, facc, fptr, fstarts = store._follow_dfa(term)
        flat = np.frombuffer(b"".join(rests), dtype=np.uint8)
        offs = np.cumsum([0] + [len(r) for r in rests])
        for i, r in enumerate(rests):
            if not r:
                continue
            want = union_passes(u.trans, u.accepting, int(u.start), r)
            got = follow_passes(ftrans, facc, fptr, fstarts, flat, int(offs[i]), int(offs[i + 1]))
            assert got == want, (kind, tb.terminals[term], r)
            checked += 1
    assert checked > 1000


def test_the_follower_table_is_made_once(llama3: tuple[object, Vocabulary]) -> None:
    # Every terminal's filter fits in the first growth: later masks that reach other terminals'
    # followers write into it, never copy it (a copy of 18k rows stalled a mask for 50+ ms).
    hf_tok, vocab = llama3
    schema = {"type": "object", "properties": {f"key_{i}": {"type": ["string", "integer"]} for i in range(40)}}
    grammar = corral.compile_json_schema(schema, vocab)
    matcher = grammar.matcher()
    matcher.next_token_mask()
    store = earley_engine(grammar).store
    table = store._ftrans
    assert store._filter_rows is not None and table.shape[0] >= store._filter_rows
    text = '{"key_3": "a", "key_7": 12, "key_39": "b"}'
    for t in hf_tok.encode(text, add_special_tokens=False):  # type: ignore[attr-defined]
        assert matcher.accept_token(t)
        matcher.next_token_mask()
    assert store._ftrans is table and store._fn <= table.shape[0]


BIG_OBJECT = {
    "type": "object",
    "properties": {f"{w}_{i}": {"type": ["string", "integer"]} for i in range(60) for w in ("key", "other")},
    "additionalProperties": {"type": "boolean"},
}


def test_a_big_follow_set_is_filtered_by_a_union_head_that_passes_whatever_a_follower_passes(
        llama3: tuple[object, Vocabulary], monkeypatch: pytest.MonkeyPatch) -> None:
    # 120 keys follow "{" and ",": their filters have more rows than MAX_FOLLOW_SET_ROWS (made
    # small here, so that a small schema is big), so one two-row head filters them; it passes
    # whatever a follower passes (layer 3 settles the rest)
    monkeypatch.setattr(cfg_maskstore, "MAX_FOLLOW_SET_ROWS", 500)
    vocab = llama3[1]
    grammar = corral.compile_json_schema(BIG_OBJECT, vocab, whitespace="flexible")
    store = earley_engine(grammar).store
    tb = store.tables
    big = [t for t in range(len(tb.terminals))
           if sum(_coarse(tb.term_filters[f]).n_states for f in tb.follow[t]) > cfg_maskstore.MAX_FOLLOW_SET_ROWS]
    assert big
    rests = [b'"key_1', b' "other_59"', b'"zz', b"\n\t\"k", b"}", b"  }", b'"', b" ", b"x", b"1", b'\\"']
    flat = np.frombuffer(b"".join(rests), dtype=np.uint8)
    offs = np.cumsum([0] + [len(r) for r in rests])
    for term in big:
        ftrans, facc, fptr, fstarts = store._follow_dfa(term)
        assert len(set(fstarts.tolist())) == 1  # one head, not a start per follower
        exact = union_of([_coarse(tb.term_filters[f]) for f in sorted(tb.follow[term])], RegexLimits())
        for i, r in enumerate(rests):
            if union_passes(exact.trans, exact.accepting, int(exact.start), r):
                assert follow_passes(ftrans, facc, fptr, fstarts, flat, int(offs[i]), int(offs[i + 1])), r
        assert not follow_passes(ftrans, facc, fptr, fstarts, flat, int(offs[8]), int(offs[9]))  # "x" starts no key


def test_masks_are_the_same_with_or_without_union_heads(llama3: tuple[object, Vocabulary],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    hf_tok, vocab = llama3
    text = '{"key_3": "a", "other_40": 12,\n  "zzz": true, "key_59": "b"}'
    tokens = hf_tok.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]

    def masks() -> tuple[list[bytes], bool]:
        grammar = corral.compile_json_schema(BIG_OBJECT, vocab, whitespace="flexible")
        matcher = grammar.matcher()
        out = []
        for t in tokens:
            out.append(matcher.next_token_mask().tobytes())
            assert matcher.accept_token(t)
        return out, bool(earley_engine(grammar).store._union_keys)

    monkeypatch.setattr(cfg_maskstore, "MAX_FOLLOW_SET_ROWS", 500)
    with_heads, used = masks()
    assert used
    monkeypatch.setattr(cfg_maskstore, "MAX_FOLLOW_SET_ROWS", 10**9)
    without, used = masks()
    assert not used and without == with_heads
