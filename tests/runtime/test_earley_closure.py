"""Layer 3's Earley closures in numba equal the Python recogniser's, set for set.

:mod:`corral.runtime.earley_closure` rebuilds the sets reached when a terminal ends (what
``Recognizer.exit_set`` computes in Python) over array-encoded chart sets. Along the corpus
documents of the bundled grammars and instances of a JSON Schema, at every byte, every group's
exit set and the exit sets after those, three levels deep, must hold the same items, predict the
same nonterminals, scan the same groups and accept alike. The masks built on them are checked
against brute force in ``tests/grammars/test_bundled_masks.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corral
import corral.grammars
from corral import Vocabulary
from corral.runtime.earley import ESet, Recognizer
from corral.runtime.earley_closure import Arena, ClosureTables, close_set, closure_tables, encode_chart, exit_set
from corral.runtime.engine import earley_engine

from .test_cfg_follow_filter import SCHEMA

DEPTH = 3
BREADTH = 4  # exit sets followed per set below the first level


def documents(name: str, n: int) -> list[bytes]:
    """The first ``n`` documents of a bundled grammar's corpus."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "data" / "grammars" / name / "valid.txt").read_text(encoding="utf-8")
    docs = [d.strip() for d in text.split("\n----\n") if d.strip()]
    return [(d + "\n" if name == "python" else d).encode() for d in docs[:n]]


class Pair:
    """A Python set and its arena twin, with the map from Python sets to arena indices."""

    def __init__(self, ct: ClosureTables, arena: Arena) -> None:
        self.ct = ct
        self.arena = arena
        self.where: dict[int, int] = {}  # the Python sets built here (encoded sets know their index)

    def index(self, x: ESet) -> int:
        found = self.arena.where.get(id(x))
        return found if found is not None else self.where[id(x)]

    def check(self, py: ESet, j: int) -> None:
        """``py`` and arena set ``j`` are the same set."""
        ct, a = self.ct, self.arena
        self.where[id(py)] = j
        want = set()
        for group in list(py.scan.values()) + list(py.waiting.values()):
            for p, d, o in group:
                want.add((int(ct.pos_off[p]) + d, self.index(o)))
        got = {(int(a.item_pos[q]), int(a.item_org[q])) for q in range(int(a.lo[j]), int(a.hi[j]))}
        assert got == want
        predicted = a.plist[int(a.plo[j]):int(a.phi[j])].tolist()
        assert predicted == sorted(py.predicted)
        assert bool(a.accepting[j]) == py.accepting
        groups = a.groups(ct, j)
        assert groups.tolist() == sorted(py.scan)


def compare_exits(rec: Recognizer, ct: ClosureTables, s: ESet, owner: np.ndarray) -> int:
    """Compare every exit set of ``s`` (and those below, :data:`DEPTH` levels) in both
    implementations; returns how many sets were compared."""
    arena = encode_chart(ct, s, Arena(ct.n_nonterminals, 1024, 16384))
    pair = Pair(ct, arena)
    compared = 0
    for g in sorted(s.scan):
        items = s.group_items(g)
        ag_pos = np.array([ct.pos_off[p] + d + 1 for p, d, _ in items], dtype=np.int32)
        ag_org = np.array([arena.index(o) for _, _, o in items], dtype=np.int32)
        j = close_set(*ct.as_args(), *arena.as_args(), ag_pos, ag_org)
        assert j >= 0
        after = rec.exit_set(s, g)
        pair.check(after, j)
        compared += 1
        level = [(after, j)]
        for _ in range(DEPTH - 1):
            below = []
            for py, jj in level:
                for gs in sorted(py.scan)[:BREADTH]:
                    k = exit_set(*ct.as_args(), *arena.as_args(), jj, int(owner[gs]))
                    assert k >= 0
                    nxt = rec.exit_set(py, gs)
                    pair.check(nxt, k)
                    compared += 1
                    below.append((nxt, k))
            level = below
    return compared


def grammar_and_texts(kind: str, vocab: Vocabulary) -> tuple[corral.CompiledGrammar, list[bytes]]:
    if kind == "schema":
        instances = [{"name": "ab", "kind": "ab", "n": -3, "tags": [1, 2.5e3]}, {"tags": [], "name": ""}]
        return corral.compile_json_schema(SCHEMA, vocab), [json.dumps(x).encode() for x in instances]
    return corral.compile_grammar(corral.grammars.load(kind), vocab), documents(kind, 4)


@pytest.mark.parametrize("kind", ["sql", "python", "json", "arith", "schema"])
def test_exit_sets_equal_the_python_recognizer(llama3: tuple[object, Vocabulary], kind: str) -> None:
    g, texts = grammar_and_texts(kind, llama3[1])
    engine = earley_engine(g)
    rec = engine.recognizer
    ct = closure_tables(engine.store.tables)
    owner = engine.store.tables.term_of_state
    compared = 0
    for text in texts:
        s: ESet | None = rec.initial()
        for b in text:
            assert s is not None
            compared += compare_exits(rec, ct, s, owner)
            s = rec.step(s, b)
    assert compared > 200


def test_a_full_arena_is_reported_not_overrun(llama3: tuple[object, Vocabulary]) -> None:
    g = corral.compile_grammar(corral.grammars.load("sql"), llama3[1])
    engine = earley_engine(g)
    rec = engine.recognizer
    ct = closure_tables(engine.store.tables)
    s = rec.feed(rec.initial(), b"SELECT a FROM t WHERE ")
    assert s is not None
    arena = encode_chart(ct, s)
    g0 = sorted(s.scan)[0]
    items = s.group_items(g0)
    ag_pos = np.array([ct.pos_off[p] + d + 1 for p, d, _ in items], dtype=np.int32)
    ag_org = np.array([arena.index(o) for _, _, o in items], dtype=np.int32)
    results = [close_set(*ct.as_args(), *arena.as_args(), ag_pos, ag_org) for _ in range(arena.max_sets + 1)]
    assert results[-1] == -1


def test_threads_computing_misses_of_one_grammar_agree(llama3: tuple[object, Vocabulary]) -> None:
    """Layer 3 runs outside the store's lock, each thread in its own arena: four threads walking
    SQL documents through one cold grammar get the masks one thread gets alone."""
    import threading

    tok, vocab = llama3
    docs = [d.decode() for d in documents("sql", 4)]
    ids = [tok.encode(d, add_special_tokens=False) for d in docs]  # type: ignore[attr-defined]

    def walk(g: corral.CompiledGrammar, toks: list[int]) -> list[np.ndarray]:
        m = g.matcher()
        out = []
        for t in toks:
            out.append(m.next_token_mask().copy())
            assert m.accept_token(t)
        return out

    alone = corral.compile_grammar(corral.grammars.load("sql"), vocab)
    want = [walk(alone, t) for t in ids]
    shared = corral.compile_grammar(corral.grammars.load("sql"), vocab, mask_cache_bytes=1 << 16)
    got: list[list[np.ndarray] | None] = [None] * len(ids)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            got[k] = walk(shared, ids[k])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for w, g in zip(want, got):
        assert g is not None and len(g) == len(w)
        assert all(np.array_equal(a, b) for a, b in zip(w, g))


@pytest.mark.parametrize("kind,beside", [("sql", False), ("python", False), ("sql", True)])
def test_first_level_from_single_groups_equals_all_groups_at_once(llama3: tuple[object, Vocabulary], kind: str,
                                                                   beside: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store puts a first level together from each group's own level (cached per group) and
    walks candidates sorted by their next byte; against one unsorted pass over all the groups
    (:func:`remainder_step`) it must hold the same tokens and leave the same exits for the
    tokens no group holds. With ``beside``, every such level computes one group's part in the
    helper thread (``PARALLEL_LEVEL_PAIRS``), as big ones do."""
    import corral.runtime.cfg_maskstore as cm
    from corral.runtime.earley_closure import remainder_step

    forked = [0]
    if beside:
        pool = cm._helper()

        class Counting:
            def submit(self, *args: object) -> object:
                forked[0] += 1
                return pool.submit(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(cm, "PARALLEL_LEVEL_PAIRS", 1)
        monkeypatch.setattr(cm, "_may_fork", lambda: True)
        monkeypatch.setattr(cm, "_helper", lambda: Counting())
    g, texts = grammar_and_texts(kind, llama3[1])
    engine = earley_engine(g)
    store, rec = engine.store, engine.recognizer
    tb = store.tables
    seen: set[int] = set()
    for text in texts:
        s: ESet | None = rec.initial()
        for b in text:
            assert s is not None
            seen.update(s.scan)
            s = rec.step(s, b)
    states = sorted(seen)
    rng = np.random.default_rng(0)
    entries = [(h, store._state(h)) for h in states]
    crossing = sorted((e.candidates.shape[0], h) for h, e in entries if e.candidates.shape[0])
    picked = [h for _, h in crossing[-3:]] + [h for _, h in crossing[: -3: max(1, len(crossing) // 5)]]
    compared = 0
    for h in picked:
        e = store._state(h)
        for size in (1, 2, 5, 12, 30):
            groups = np.sort(rng.choice(np.array(states, dtype=np.int32), size=min(size, len(states)), replace=False))
            words, bits, ex_t, ex_s, ex_k = store._first_level(h, groups, e)
            held = np.zeros(store.n_words, dtype=np.uint32)
            held[words] = bits
            want = np.zeros(store.n_words, dtype=np.uint32)
            cap = 8 * e.candidates.shape[0] + 1024
            ep, eg, ek = (np.empty(cap, dtype=np.int32) for _ in range(3))
            n = remainder_step(tb.trans, tb.accepting, tb.term_of_state, store._follow_first, groups, store._flat,
                               store._offsets, e.candidates, e.ks, want, ep, eg, ek)
            assert n >= 0
            assert np.array_equal(held, want)
            open_ = ((held[ex_t >> 5] >> (ex_t & 31).astype(np.uint32)) & 1) == 0
            got_exits = set(zip(ex_t[open_].tolist(), ex_s[open_].tolist(), ex_k[open_].tolist()))
            want_exits = set(zip(e.candidates[ep[:n]].tolist(), groups[eg[:n]].tolist(), ek[:n].tolist()))
            assert got_exits == want_exits
            compared += 1
    assert compared >= 20
    assert forked[0] >= (5 if beside else 0)



BOUNDED = {
    "type": "object",
    "properties": {
        **{k: {"type": "string", "maxLength": 64} for k in ("city", "client", "os", "device", "region")},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}},
        "size": {"type": "integer"},
    },
}
BOUNDED_DOCS = [
    '{"city": "New York", "client": "Chrome on a laptop", "os": "Windows", "device": "desktop", "region": "NY"}',
    '{"city": "San Francisco, California", "client": "Thunderbird", "os": "Linux", "region": "CA", "size": 12}',
    '{"tags": ["a", "bc", "def", "ghij", "klmno", "pqrstu"], "city": "Paris", "size": 3}',
]


@pytest.mark.parametrize("kind", ["bounded", "sql", "python"])
def test_first_levels_keyed_by_their_candidates_equal_a_fresh_level(llama3: tuple[object, Vocabulary], kind: str) -> None:
    """States with the same crossing candidates share their first levels (``_level_key``: every
    position of a ``maxLength`` counter far from its bound closes the string with the same
    tokens). Along documents, every first level the store gives must equal one computed afresh
    for that state's own candidates, and the shared keys must save levels. Fails when the key
    leaves out part of what a level reads (the candidates' crossing points, say)."""
    from corral.runtime.cfg_maskstore import CONTENT_KEYED_LEVELS, CFGMaskStore, _level_key, _StateEntry

    tok, vocab = llama3
    if kind == "bounded":
        g = corral.compile_json_schema(BOUNDED, vocab, whitespace="flexible")
        texts = [d.encode() for d in BOUNDED_DOCS]
    else:
        g, texts = grammar_and_texts(kind, vocab)
    store = earley_engine(g).store
    calls: list[tuple[int, np.ndarray, object, tuple[np.ndarray, ...]]] = []
    first_level = CFGMaskStore._first_level

    def check(self: CFGMaskStore, h: int, groups: np.ndarray, e: object) -> tuple[np.ndarray, ...]:
        got = first_level(self, h, groups, e)  # type: ignore[arg-type]
        calls.append((h, groups.copy(), e, got))
        return got

    store._first_level = check.__get__(store)  # type: ignore[method-assign]
    for text in texts:
        m = g.matcher()
        for t in tok.encode(text.decode(), add_special_tokens=False):  # type: ignore[attr-defined]
            m.next_token_mask()
            assert m.accept_token(t)
    keys = {(_level_key(h, e), groups.tobytes()) for h, groups, e, _ in calls}  # type: ignore[arg-type]
    by_state = {(h, groups.tobytes()) for h, groups, _, _ in calls}
    assert len(keys) < len(by_state)  # some states shared a level
    # the key is the pairs: equal for a copy, another one when only a crossing point moves
    # (the level then differs), the state itself for a state with few pairs
    h, groups, e, _ = max(calls, key=lambda c: c[2].candidates.shape[0])  # type: ignore[attr-defined]
    copy = _StateEntry(e.inside, e.candidates.copy(), e.ks.copy(), e.b0_ptr)  # type: ignore[attr-defined]
    assert _level_key(-7, copy) == _level_key(h, e) != h  # type: ignore[arg-type]
    later = e.ks.copy()  # type: ignore[attr-defined]
    later[0] += 1
    assert _level_key(h, _StateEntry(e.inside, e.candidates, later, e.b0_ptr)) != _level_key(h, e)  # type: ignore[arg-type, attr-defined]
    few = min((c for c in calls if c[2].candidates.shape[0]), key=lambda c: c[2].candidates.shape[0])  # type: ignore[attr-defined]
    assert few[2].candidates.shape[0] >= CONTENT_KEYED_LEVELS or _level_key(few[0], few[2]) == few[0]  # type: ignore[arg-type, attr-defined]
    for h, groups, e, (words, bits, ex_t, ex_s, ex_k) in calls:
        held = np.zeros(store.n_words, dtype=np.uint32)
        held[words] = bits
        want = np.zeros(store.n_words, dtype=np.uint32)
        wt, ws, wk = store._level(groups, e, want)  # type: ignore[arg-type]
        assert np.array_equal(held, want)
        open_ = ((held[ex_t >> 5] >> (ex_t & 31).astype(np.uint32)) & 1) == 0
        got_exits = set(zip(ex_t[open_].tolist(), ex_s[open_].tolist(), ex_k[open_].tolist()))
        want_open = ((want[wt >> 5] >> (wt & 31).astype(np.uint32)) & 1) == 0
        assert got_exits == set(zip(wt[want_open].tolist(), ws[want_open].tolist(), wk[want_open].tolist()))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 40)), max_size=80))
def test_csr_kernels_equal_their_reading_in_numpy(n: int, pairs: list[tuple[int, int]]) -> None:
    """The closure tables' CSR kernels (a counting sort in numba) against numpy's stable argsort,
    bincount and unique: the values of each key in order of appearance, and each key's distinct
    values sorted, with equal offsets. Fails if the sort is not stable or a repeat is kept."""
    from corral.runtime.earley_closure import _csr, _distinct_csr

    keys = np.array([k % n for k, _ in pairs], dtype=np.int32)
    values = np.array([v for _, v in pairs], dtype=np.int32)
    off, out = _csr(keys, values, n)
    want_off = np.zeros(n + 1, dtype=np.int32)
    want_off[1:] = np.cumsum(np.bincount(keys, minlength=n))
    assert off.tolist() == want_off.tolist()
    assert out.tolist() == values[np.argsort(keys, kind="stable")].tolist()
    off, out = _distinct_csr(keys, values, n)
    uniq = np.unique(keys.astype(np.int64) * 64 + values)
    want_off = np.zeros(n + 1, dtype=np.int32)
    want_off[1:] = np.cumsum(np.bincount(uniq // 64, minlength=n))
    assert off.tolist() == want_off.tolist()
    assert out.tolist() == (uniq % 64).tolist()
    assert off.dtype == out.dtype == np.int32


def test_csr_refuses_a_key_outside_its_range() -> None:
    from corral.runtime.earley_closure import _csr

    with pytest.raises(ValueError):
        _csr(np.array([0, 3], dtype=np.int32), np.array([1, 2], dtype=np.int32), 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 95), st.integers(0, 5), st.integers(1, 9)), max_size=60),
       st.lists(st.integers(0, 95), max_size=30), st.integers(0, 7))
def test_open_exits_equal_their_reading_in_numpy(exits: list[tuple[int, int, int]], held: list[int], j: int) -> None:
    """``open_exits`` (layer 3's exits still to follow, one kernel) against its numpy reading:
    the exits whose token has no bit in the mask, in order, then stably sorted by group state,
    each with set ``j``; dtypes as ``resolve_exits`` takes them. Fails if a held token's exit is
    kept, or the sort is not stable (exits of one group keep their order: the pairs of a token
    stay in the order the level found them)."""
    from corral.runtime.earley_closure import open_exits

    toks = np.array([t for t, _, _ in exits], dtype=np.int32)
    states = np.array([100 + g for _, g, _ in exits], dtype=np.int32)
    ks = np.array([k for _, _, k in exits], dtype=np.int32)
    out = np.zeros(3, dtype=np.uint32)
    for t in held:
        out[t >> 5] |= np.uint32(1 << (t & 31))
    sets, groups, got_toks, got_ks = open_exits(out, j, toks, states, ks)
    open_ = np.array([not (int(out[t >> 5]) >> (t & 31)) & 1 for t in toks.tolist()], dtype=bool)
    order = np.flatnonzero(open_)[np.argsort(states[open_], kind="stable")]
    assert sets.tolist() == [j] * order.shape[0]
    assert groups.tolist() == states[order].tolist()
    assert got_toks.tolist() == toks[order].tolist()
    assert got_ks.tolist() == ks[order].tolist()
    assert (sets.dtype, groups.dtype, got_toks.dtype, got_ks.dtype) == (np.int64, np.int32, np.int32, np.int32)
