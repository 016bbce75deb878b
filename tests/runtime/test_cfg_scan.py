"""The grammar mask store's per-state scan walks the token trie and gives what a token-by-token scan gives.

:func:`corral.runtime.cfg_maskstore.scan_state` computes layers 1 and 2 of a mask (tokens read
inside a terminal from an automaton state; tokens that cross the terminal's end into a possible
follower) by walking the vocabulary's byte trie, sharing prefixes and skipping dead subtrees.
The oracle is the plain definition, one token at a time over the whole vocabulary (the store's
kernel before the trie walk), compiled here with numba only so that the whole Llama-3 vocabulary
can be checked for hundreds of states: the inside bits and the set of crossing pairs must be equal.

The layers are also shared by every grammar of one vocabulary, keyed by the state's content (its
residual automaton, or for a wide state with a big residual such as a length counter's, what it
does on strings of at most ``SHORT_TOKEN_BYTES`` bytes, and its terminal's followers): states with
one key, of one grammar or of different ones, must have equal layers (over the short tokens for the
second kind), computed afresh.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import corral
import corral.grammars
from corral import Vocabulary
from corral.compiler.maskstore import n_words
from corral.runtime.cfg_maskstore import _merge, fill_self_loops, follow_passes
from corral.runtime.engine import earley_engine
from tests.runtime.test_cfg_follow_filter import LARK
from tests.runtime.test_cfg_follow_filter import SCHEMA as FOLLOW_SCHEMA

# the follow filter's schema, with a number and a patterned string array besides
SCHEMA = {**FOLLOW_SCHEMA, "properties": {
    **FOLLOW_SCHEMA["properties"],
    "x": {"type": "number"},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+-[0-9]{2}$"}},
}}


@njit(cache=False)
def token_by_token(trans, acc, g, ftrans, facc, fptr, fstarts, flat, offsets, out, cands, cand_ks):  # type: ignore[no-untyped-def]
    """The reference: every token read from ``g`` on its own (see ``scan_state``'s docstring)."""
    has_follow = fstarts.shape[0] > 0
    nc = 0
    for t in range(offsets.shape[0] - 1):
        a = offsets[t]
        e = offsets[t + 1]
        if a == e:
            continue
        s = g
        first = nc
        for i in range(a, e):
            s = trans[s, flat[i]]
            if s < 0:
                break
            if has_follow and acc[s] and i + 1 < e and follow_passes(ftrans, facc, fptr, fstarts, flat, i + 1, e):
                cands[nc] = t
                cand_ks[nc] = i + 1 - a
                nc += 1
        if s >= 0:
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            nc = first
    return nc


def _grammar(kind: str, vocab: Vocabulary) -> corral.CompiledGrammar:
    if kind == "sql":
        return corral.compile_grammar(corral.grammars.load("sql"), vocab)
    if kind == "schema":
        return corral.compile_json_schema(SCHEMA, vocab)
    return corral.compile_grammar(LARK, vocab)


@pytest.mark.parametrize("kind", ["sql", "schema", "lark"])
def test_trie_scan_equals_token_by_token(llama3: tuple[object, Vocabulary], kind: str) -> None:
    vocab = llama3[1]
    store = earley_engine(_grammar(kind, vocab)).store
    tb = store.tables
    rng = np.random.default_rng(1)
    states = sorted(set(tb.term_start) | set(rng.choice(tb.n_states, size=min(tb.n_states, 150), replace=False).tolist()))
    size = len(vocab)
    cands = np.empty(8 * size, dtype=np.int32)
    ks = np.empty(8 * size, dtype=np.int32)
    seen_inside = seen_pairs = 0
    for g in states:
        ftrans, facc, fptr, fstarts = store._prepare(g).follow
        follow = (ftrans, facc, fptr, fstarts)
        entry = store._scan_kernel(g, follow)
        # the short and the long tokens' tries, walked apart, give the same together
        split = _merge(store._walk(g, follow, *store._parts[0]), store._walk(g, follow, *store._parts[1]), store._flat, store._offsets)
        assert np.array_equal(split.inside, entry.inside)
        assert sorted(zip(split.candidates.tolist(), split.ks.tolist())) == sorted(zip(entry.candidates.tolist(), entry.ks.tolist()))
        want = np.zeros(n_words(size), dtype=np.uint32)
        nc = token_by_token(tb.trans, tb.accepting, g, ftrans, facc, fptr, fstarts, store._flat, store._offsets,
                            want, cands, ks)
        assert np.array_equal(entry.inside, want), (kind, g, tb.terminals[int(tb.term_of_state[g])])
        got_pairs = sorted(zip(entry.candidates.tolist(), entry.ks.tolist()))
        want_pairs = sorted(zip(cands[:nc].tolist(), ks[:nc].tolist()))
        assert got_pairs == want_pairs, (kind, g, tb.terminals[int(tb.term_of_state[g])])
        seen_inside += int(np.unpackbits(want.view(np.uint8)).sum() > 0)
        seen_pairs += nc
    # the check means something: states with inside tokens and with crossing pairs were met
    assert seen_inside > len(states) // 2
    assert seen_pairs > 100


ANY_BUT = {"type": "object", "properties": {"name": {"type": "string"}, "namespace": {"type": "integer"},
                                          "tags": {"type": "array", "items": {"type": "string", "minLength": 2}}}}


@pytest.mark.parametrize("kind", ["sql", "schema", "any-but"])
def test_derived_layers_equal_token_by_token(llama3: tuple[object, Vocabulary], kind: str) -> None:
    """A wide state that reads all but a few bytes as its most common successor does (a key that
    is any string but a few names, a quoted name) gets its layers from that successor's, with
    only the subtrees of the other bytes walked: equal to reading every token from the state."""
    vocab = llama3[1]
    grammar = corral.compile_json_schema(ANY_BUT, vocab) if kind == "any-but" else _grammar(kind, vocab)
    store = earley_engine(grammar).store
    tb = store.tables
    size = len(vocab)
    cands = np.empty(8 * size, dtype=np.int32)
    ks = np.empty(8 * size, dtype=np.int32)
    derived = [g for g in range(tb.n_states) if store._base_of(g) is not None]
    assert derived
    for g in derived:
        p = store._prepare(g)
        assert p.base >= 0 and p.key is None and p.roots is not None and p.roots.shape[0] > 0
        entry = store._derive(g, p, store._scan_kernel(p.base, p.follow))
        want = np.zeros(n_words(size), dtype=np.uint32)
        nc = token_by_token(tb.trans, tb.accepting, g, *p.follow, store._flat, store._offsets, want, cands, ks)
        assert np.array_equal(entry.inside, want), (kind, g)
        assert sorted(zip(entry.candidates.tolist(), entry.ks.tolist())) == sorted(zip(cands[:nc].tolist(), ks[:nc].tolist()))
    # and through the store: a mask over such states equals the mask with every state scanned whole
    if kind == "any-but":
        matcher = grammar.matcher()
        assert matcher.accept_bytes(b'{"nam')
        got = matcher.next_token_mask().copy()
        assert store.derived_states > 0
        store.clear(states=True)
        store._base_of = lambda g: None  # type: ignore[method-assign]
        assert np.array_equal(matcher.next_token_mask(), got)


@pytest.mark.parametrize("kind", ["sql", "schema"])
def test_self_loop_rows_are_the_bytes_that_stay(llama3: tuple[object, Vocabulary], kind: str) -> None:
    """``fill_self_loops`` sets exactly the bytes ``b`` with ``trans[s, b] == s``, and only in the
    rows of the terminal asked for (a wrong bit would let the scan skip a subtree it must walk)."""
    store = earley_engine(_grammar(kind, llama3[1])).store
    tb = store.tables
    lo, hi = store._term_range(1)
    for a, b in ((0, tb.n_states), (lo, hi)):
        loops = np.zeros((tb.n_states, 4), dtype=np.uint64)
        fill_self_loops(tb.trans, a, b, loops)
        want = np.zeros((tb.n_states, 256), dtype=bool)
        want[a:b] = tb.trans[a:b] == np.arange(a, b)[:, None]
        got = np.unpackbits(loops.view(np.uint8), axis=1, bitorder="little").astype(bool)
        assert np.array_equal(got, want), (kind, a, b)
        assert want.any() or a > 0  # over the whole table, some state keeps a byte


OTHER = {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string", "maxLength": 100},
                                                                    "v": {"type": "number"}}}}


def test_states_with_one_content_key_have_equal_layers(llama3: tuple[object, Vocabulary]) -> None:
    vocab = llama3[1]
    by_key: dict[bytes, tuple[str, int, np.ndarray, list[tuple[int, int]]]] = {}
    grammars = {kind: _grammar(kind, vocab) for kind in ("sql", "schema", "lark")}
    grammars["other"] = corral.compile_json_schema(OTHER, vocab)
    grammars["other, closed"] = corral.compile_json_schema({**OTHER, "items": {**OTHER["items"], "additionalProperties": False}}, vocab)
    # a length counter whose automaton has more than 4,096 states (maxLength 255 is common in real schemas)
    grammars["long"] = corral.compile_json_schema({"type": "array", "items": {"type": "string", "maxLength": 250}}, vocab)
    shared_across = compared = counted = big = 0
    kinds = [0, 0]
    for kind, grammar in grammars.items():
        store = earley_engine(grammar).store
        tb = store.tables
        rng = np.random.default_rng(2)
        states = sorted(set(tb.term_start) | set(rng.choice(tb.n_states, size=min(tb.n_states, 120), replace=False).tolist()))
        for g in states:
            p = store._prepare(g, derive=False)
            follow, key, layered = p.follow, p.key, p.layered
            if key is None:
                continue
            # a layered key covers the short tokens (the long ones are walked per state)
            entry = store._walk(g, follow, *store._parts[0]) if layered else store._scan_kernel(g, follow)
            kinds[layered] += 1
            pairs = sorted(zip(entry.candidates.tolist(), entry.ks.tolist()))
            seen = by_key.get(key)
            if seen is None:
                by_key[key] = (kind, g, entry.inside, pairs)
                continue
            assert np.array_equal(seen[2], entry.inside), (seen[:2], kind, g)
            counted += layered
            lo, hi = store._term_range(int(tb.term_of_state[g]))
            big += hi - lo > 4096
            assert seen[3] == pairs, (seen[:2], kind, g)
            compared += 1
            shared_across += seen[0] != kind
    assert compared > 20 and shared_across > 5, (compared, shared_across)
    assert counted > 5, kinds  # a length counter's states: different states, one layered key
    assert big > 5, big  # and so do a long counter's (its byte classes are kept per automaton)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.data())
def test_byte_classes_group_exactly_the_bytes_read_alike(n: int, distinct: int, data: st.DataObject) -> None:
    """``byte_classes``: two bytes share a class exactly when every state reads them alike, and
    classes are numbered by their first byte (the layered keys of two automata compare these)."""
    from corral.compiler.automaton import ByteDFA
    from corral.runtime.cfg_maskstore import byte_classes
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    columns = rng.integers(-1, n, size=(distinct, n), dtype=np.int32)  # a few distinct columns, spread over 256 bytes
    trans = np.ascontiguousarray(columns[rng.integers(0, distinct, size=256)].T)
    dfa = ByteDFA(trans, rng.random(n) < 0.5, 0)
    partition, first = byte_classes(dfa)
    of_byte = np.frombuffer(partition, dtype=np.int16)
    for a in range(256):
        for b in range(a + 1, 256):
            assert (of_byte[a] == of_byte[b]) == np.array_equal(trans[:, a], trans[:, b]), (a, b)
    assert first.tolist() == sorted({int(np.flatnonzero(of_byte == c)[0]) for c in set(of_byte.tolist())})
    assert of_byte[first].tolist() == list(range(first.shape[0]))


def test_second_grammar_reuses_the_first_ones_string_body(llama3: tuple[object, Vocabulary]) -> None:
    vocab = llama3[1]
    # two grammars whose strings have the same body and the same followers (FOLLOW is grammar-wide)
    a = corral.compile_json_schema({"type": "array", "items": {"type": "string"}, "maxItems": 3}, vocab)
    b = corral.compile_json_schema({"type": "array", "items": {"type": "string"}, "minItems": 1}, vocab)
    ma = a.matcher()
    assert ma.accept_bytes(b'["hello')
    ma.next_token_mask()
    mb = b.matcher()
    assert mb.accept_bytes(b'["hello')
    store = earley_engine(b).store
    got = mb.next_token_mask().copy()
    assert store.shared_states > 0  # the string body's layers came from grammar a's scan
    store.clear(states=True)  # drops the tokenizer-wide layers too
    before = store.state_scans
    fresh = mb.next_token_mask()
    assert store.state_scans > before
    assert np.array_equal(got, fresh)


def test_the_recognizers_tables_leave_the_garbage_collector(llama3: tuple) -> None:
    # A serving process holds many grammars; each full collection walks every tracked container.
    # The recognizer's per-production successors and the rows it reads are tuples of ints, which
    # CPython stops tracking at a collection (as lists they were 200k objects over 100 schemas).
    import gc

    from corral.runtime.engine import earley_engine

    hf_tok, vocab = llama3
    grammar = corral.compile_json_schema(
        {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}, "b": {"type": "string"}}},
        vocab)
    matcher = grammar.matcher()
    for t in hf_tok.encode('{"a": [1, 22], "b": "x"}', add_special_tokens=False):
        matcher.next_token_mask()
        assert matcher.accept_token(t)
    rec = earley_engine(grammar).store.recognizer
    rows = [r for r in rec._trans if r is not None]
    assert rows and rec._next
    gc.collect()
    assert not any(gc.is_tracked(r) for r in rows) and not any(gc.is_tracked(n) for n in rec._next)


@settings(max_examples=400, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2**32 - 1), st.integers(0, 256), st.integers(0, 12), st.integers(0, 200),
       st.integers(0, 9))
def test_derivable_finds_the_most_common_successor(n_states: int, seed: int, loops: int, changed: int, wide: int,
                                                   most: int) -> None:
    """``derivable`` (the kernel behind ``CFGMaskStore._base_of``) against a numpy reading: a
    state with ``wide`` live bytes or more, whose row differs from its most common successor's
    (the smallest of the most common) on at most ``most`` bytes, gets that successor and the
    differing bytes; any other state gets ``-1``."""
    from corral.runtime.cfg_maskstore import derivable
    rng = np.random.default_rng(seed)
    trans = rng.integers(-1, n_states, (n_states, 256)).astype(np.int32)
    g, h = int(rng.integers(0, n_states)), int(rng.integers(0, n_states))
    trans[h, rng.choice(256, loops, replace=False)] = h  # h loops on many bytes (a string body), or few: ties
    trans[g] = trans[h]  # g reads like h but for a few bytes
    spots = rng.integers(0, 256, changed)
    trans[g, spots] = rng.integers(-1, n_states, changed)
    row = trans[g]
    live = row[row >= 0]
    want: tuple[int, list[int]] | None = None
    if live.shape[0] >= wide:
        top = int(live.min()) + int(np.bincount(live - live.min()).argmax())
        differ = np.flatnonzero(trans[top] != row)
        if top != g and differ.shape[0] <= most:
            want = (top, differ.tolist())
    got, where = derivable(trans, g, wide, most)
    assert (None if got < 0 else (int(got), where.tolist())) == want


def test_immutable_tables_only_are_kept_by_identity() -> None:
    """Facts are kept per automaton only when no one can write its tables: a read-only view of a
    writable table is not enough (the owner could change under the kept key)."""
    from corral.compiler.automaton import frozen
    from corral.runtime.cfg_maskstore import _immutable

    owner = np.zeros((2, 256), dtype=np.int32)
    assert not _immutable(owner)
    assert not _immutable(frozen(owner))
    owner.setflags(write=False)
    assert _immutable(owner) and _immutable(frozen(owner)) and _immutable(owner[1:])


def test_facts_from_an_earlier_grammar_equal_a_fresh_computation(llama3: tuple[object, Vocabulary],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A grammar whose terminals an earlier grammar used (the shared key and value automata of
    one layout) takes its states' key content, self-loop rows and filter keys from the facts kept
    for those automata (``_facts_of``); the same grammar compiled again with no facts at all
    computes them afresh: every key and every row must be equal. Fails when facts are kept by
    anything coarser than the automaton (e.g. its size: most key terminals have one)."""
    import corral.runtime.cfg_maskstore as cms

    vocab = llama3[1]
    later = {**OTHER["items"], "properties": {**OTHER["items"]["properties"], "name": {"type": "string"}, "ok": {"type": "boolean"}}}

    def keys(grammar: corral.CompiledGrammar) -> tuple[list[bytes | None], np.ndarray, int]:
        store = earley_engine(grammar).store
        tb = store.tables
        used = sum(1 for d in tb.term_dfas if (f := cms._facts_of(d)) is not None and f.states)
        out = [store._prepare(g, derive=False).key for g in range(tb.n_states)]
        return out, store._loops.copy(), used

    cms._FACTS.clear()
    keys(corral.compile_json_schema(OTHER, vocab))  # keeps facts of the shared terminals
    with_facts, loops, used = keys(corral.compile_json_schema(later, vocab))
    assert used > 3  # facts of the earlier grammar's automata were there to use
    monkeypatch.setattr(cms, "_facts_of", lambda dfa: None)
    fresh, fresh_loops, _ = keys(corral.compile_json_schema(later, vocab))
    assert with_facts == fresh
    assert np.array_equal(loops, fresh_loops)
    assert sum(k is not None for k in fresh) > 50


def test_coarse_states_counts_the_coarse_filter(llama3: tuple[object, Vocabulary]) -> None:
    """``_coarse_states`` (what the filter table reserves and the union decision add up) is the
    size of the filter ``_coarse`` makes, for small filters and for big ones alike."""
    from corral.runtime.cfg_maskstore import MAX_FILTER_STATES, _coarse, _coarse_states

    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 400}, "b": {"type": "integer"}}}
    filters = earley_engine(corral.compile_json_schema(schema, llama3[1])).store.tables.term_filters
    assert any(d.n_states > MAX_FILTER_STATES for d in filters) and any(d.n_states <= MAX_FILTER_STATES for d in filters)
    assert [_coarse_states(d) for d in filters] == [_coarse(d).n_states for d in filters]


def _behaviour(trans: np.ndarray, acc: np.ndarray, s: int, depth: int, alphabet: list[int]) -> tuple[int, ...]:
    """What state ``s`` does on every string over ``alphabet`` of at most ``depth`` bytes: per
    string in a fixed order, -1 dead, 1 accepting, 0 alive (the oracle of ``bounded_classes``)."""
    out = []
    layer = [s]
    for _ in range(depth + 1):
        out += [-1 if q < 0 else int(bool(acc[q])) for q in layer]
        layer = [trans[q, b] if q >= 0 else -1 for q in layer for b in alphabet]
    return tuple(out)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 14), st.integers(0, 4), st.data())
def test_bounded_classes_are_the_behaviours_on_short_strings(n: int, depth: int, data: st.DataObject) -> None:
    """``bounded_classes``: two states share a class exactly when they are dead, alive and
    accepting alike on every string of at most ``depth`` bytes (enumerated), in a table at an
    offset as the stacked one is."""
    from corral.runtime.cfg_maskstore import bounded_classes
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    lo = int(rng.integers(0, 5))
    m = int(rng.integers(1, 4))  # byte classes
    local = rng.integers(-1, n, size=(n, m))
    ctrans = np.where(local >= 0, local + lo, -1).astype(np.int32)
    acc = np.zeros(lo + n, dtype=np.bool_)
    acc[lo:] = rng.random(n) < 0.4
    got = bounded_classes(ctrans, lo, acc, depth)
    beh = [_behaviour(local, acc[lo:], i, depth, list(range(m))) for i in range(n)]
    for i in range(n):
        for j in range(n):
            assert (got[i] == got[j]) == (beh[i] == beh[j]), (i, j, depth)


@pytest.mark.parametrize("max_length", [40, 250])
def test_a_counters_states_group_by_their_layered_codes(llama3: tuple[object, Vocabulary], max_length: int) -> None:
    """A string counter's states in one ``bounded_classes`` group have one layered code (the key
    the store gives the whole group), and the states far from the bound are few groups."""
    from corral.runtime.cfg_maskstore import SHORT_TOKEN_BYTES, bounded_classes, layered_code
    grammar = corral.compile_json_schema({"type": "array", "items": {"type": "string", "maxLength": max_length}}, llama3[1])
    store = earley_engine(grammar).store
    tb = store.tables
    term = max(range(len(tb.terminals)), key=lambda t: tb.term_dfas[t].n_states)
    lo, hi = store._term_range(term)
    classes = store._classes_of(term)
    assert classes is not None
    ctrans = classes[1]
    group = bounded_classes(ctrans, lo, store._acc_ro, SHORT_TOKEN_BYTES)
    code_of: dict[int, bytes] = {}
    rng = np.random.default_rng(3)
    for i in rng.choice(hi - lo, size=min(300, hi - lo), replace=False).tolist():
        code = layered_code(ctrans, lo, tb.accepting, lo + i, SHORT_TOKEN_BYTES, 1 << 20).tobytes()
        assert code_of.setdefault(int(group[i]), code) == code, i
    assert len(set(group.tolist())) < (hi - lo) // 2
    assert len(set(code_of.values())) == len(code_of)  # and different groups, different codes
