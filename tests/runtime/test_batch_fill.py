"""corral.fill_next_token_bitmask: each row equals its matcher's own next_token_mask().

Seeded random walks through a regex (eager table and lazy store), a Lark grammar, a GBNF grammar
and a JSON Schema under Llama-3 give matchers at many states. A reference grammar of each kind
gives the expected masks one sequence at a time; the batch is filled from *freshly compiled*
grammars whose caches are cold, so the rows are computed by the worker threads, several at once
and several for one grammar, not copied from a cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

import corral
from corral import CorralError, Vocabulary
from corral.runtime import batch
from corral.runtime.batch import default_threads

REGEX = r"(héllo|wörld|[a-z]{1,4})( (é|[0-9]{1,3}|\"[^\"]{0,5}\"))*"

LARK = r"""
start: expr
expr: term (("+" | "-") term)*
term: NUMBER | NAME | STRING | "(" expr ")"
NUMBER: /[0-9]+/
NAME: /[a-zé]+/
STRING: /"[^"]{0,6}"/
%ignore " "
"""

GBNF = r"""
root ::= "[" item ("," " "? item)* "]"
item ::= [0-9]+ | "\"" [a-zé ]* "\""
"""

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"enum": ["a", "bé"]}, "maxItems": 3},
    },
    "required": ["name"],
}

COMPILERS: dict[str, Callable[[Vocabulary], corral.CompiledGrammar]] = {
    "regex": lambda v: corral.compile_regex(REGEX, v),
    "regex-lazy": lambda v: corral.compile_regex(REGEX, v, mask_cache_bytes=1),
    "lark": lambda v: corral.compile_grammar(LARK, v),
    "gbnf": lambda v: corral.compile_grammar(GBNF, v, syntax="gbnf"),
    "schema": lambda v: corral.compile_json_schema(SCHEMA, v),
}
KINDS = sorted(COMPILERS)
SEEDS = range(4)
STEPS = 16


@pytest.fixture(scope="module")
def vocab(llama3: tuple[object, Vocabulary]) -> Vocabulary:
    return llama3[1]


_walks: dict[str, list[tuple[list[int], list[np.ndarray]]]] = {}


def walks(kind: str, vocab: Vocabulary) -> list[tuple[list[int], list[np.ndarray]]]:
    """Per seed, a random walk's tokens and the reference mask before each (reference grammar)."""
    if kind not in _walks:
        g = COMPILERS[kind](vocab)
        eos = np.array(sorted(vocab.eos_token_ids), dtype=np.int64)
        out = []
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            m = g.matcher()
            toks: list[int] = []
            masks = [m.next_token_mask().copy()]
            for _ in range(STEPS):
                allowed = np.flatnonzero(corral.bitmask_to_bool(masks[-1], vocab.size))
                allowed = allowed[~np.isin(allowed, eos)]
                if not allowed.shape[0]:
                    break
                short = [t for t in allowed[:4000].tolist() if len(vocab.token_bytes[t] or b"") == 1]
                t = int(rng.choice(short if short and rng.random() < 0.5 else allowed))
                assert m.accept_token(t)
                toks.append(t)
                masks.append(m.next_token_mask().copy())
            out.append((toks, masks))
        _walks[kind] = out
    return _walks[kind]


def matchers_at(grammar: corral.CompiledGrammar, kind: str, vocab: Vocabulary,
                rng: np.random.Generator, n: int) -> tuple[list[corral.Matcher], list[np.ndarray]]:
    """``n`` matchers of ``grammar`` at random steps of the walks, and their expected masks."""
    ms, want = [], []
    for _ in range(n):
        toks, masks = walks(kind, vocab)[int(rng.integers(len(SEEDS)))]
        k = int(rng.integers(len(masks)))
        m = grammar.matcher()
        assert m.accept_tokens(toks[:k])
        ms.append(m)
        want.append(masks[k])
    return ms, want


@pytest.fixture(autouse=True)
def _parallel_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker threads join every fill at once (not after the calling thread's first
    millisecond), so the threaded path is what these tests check."""
    monkeypatch.setattr(batch, "PARALLEL_AFTER_S", 0.0)


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_rows_equal_each_matchers_own_mask(vocab: Vocabulary, kind: str, threads: int) -> None:
    rng = np.random.default_rng(threads)
    grammar = COMPILERS[kind](vocab)  # cold caches: the rows are computed, not copied
    for _ in range(3):
        ms, want = matchers_at(grammar, kind, vocab, rng, 8)
        bm = corral.allocate_token_bitmask(len(ms), vocab.size)
        corral.fill_next_token_bitmask(ms, bm, threads=threads)
        for i, m in enumerate(ms):
            assert np.array_equal(bm[i], want[i]), (kind, i)
            assert np.array_equal(bm[i], m.next_token_mask())


def test_short_fills_stay_in_the_calling_thread(vocab: Vocabulary, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fill that ends within ``PARALLEL_AFTER_S`` never reaches the pool; one that runs past
    it hands the rest to the workers: the rows are the same either way."""
    rng = np.random.default_rng(11)
    grammar = COMPILERS["schema"](vocab)
    ms, want = matchers_at(grammar, "schema", vocab, rng, 8)
    used: list[str] = []
    real_pool = batch._pool

    def spy(workers: int) -> object:
        used.append("pool")
        return real_pool(workers)

    monkeypatch.setattr(batch, "_pool", spy)
    monkeypatch.setattr(batch, "PARALLEL_AFTER_S", 1e9)
    bm = corral.allocate_token_bitmask(len(ms), vocab.size)
    corral.fill_next_token_bitmask(ms, bm, threads=2)
    assert used == []
    assert all(np.array_equal(bm[i], want[i]) for i in range(len(ms)))
    grammar = COMPILERS["schema"](vocab)  # cold again: the rows are computed
    ms, want = matchers_at(grammar, "schema", vocab, rng, 8)
    monkeypatch.setattr(batch, "PARALLEL_AFTER_S", 0.0)
    bm = corral.allocate_token_bitmask(len(ms), vocab.size)
    corral.fill_next_token_bitmask(ms, bm, threads=2)
    assert used == ["pool"]
    assert all(np.array_equal(bm[i], want[i]) for i in range(len(ms)))


def test_rows_of_mixed_kinds_and_cold_grammars(vocab: Vocabulary) -> None:
    rng = np.random.default_rng(7)
    ms: list[corral.Matcher] = []
    want: list[np.ndarray] = []
    for kind in KINDS:
        grammar = COMPILERS[kind](vocab)
        a, b = matchers_at(grammar, kind, vocab, rng, 3)
        ms += a
        want += b
    order = rng.permutation(len(ms))
    ms = [ms[i] for i in order]
    want = [want[i] for i in order]
    bm = corral.allocate_token_bitmask(len(ms), vocab.size)
    corral.fill_next_token_bitmask(ms, bm, threads=2)
    for i in range(len(ms)):
        assert np.array_equal(bm[i], want[i])


def test_fills_from_several_threads_at_once(vocab: Vocabulary) -> None:
    rng = np.random.default_rng(11)
    grammar = COMPILERS["schema"](vocab)
    jobs = [matchers_at(grammar, "schema", vocab, rng, 6) for _ in range(4)]
    out = [corral.allocate_token_bitmask(6, vocab.size) for _ in jobs]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            corral.fill_next_token_bitmask(jobs[k][0], out[k], threads=2 + k)  # the pool grows meanwhile
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_, want), bm in zip(jobs, out):
        for i, w in enumerate(want):
            assert np.array_equal(bm[i], w)


@pytest.mark.parametrize("kind", KINDS)
def test_finished_matcher_gets_its_own_zero_row_and_accepting_gets_eos(vocab: Vocabulary, kind: str) -> None:
    grammar = COMPILERS[kind](vocab)
    complete = {"regex": "héllo 12", "regex-lazy": "wörld 1", "lark": "(ab+12)", "gbnf": '[1, "é"]',
                "schema": '{"name":"é"}'}[kind]
    done, accepting = grammar.matcher(), grammar.matcher()
    assert accepting.accept_bytes(complete.encode()) and accepting.is_accepting()
    assert done.accept_bytes(complete.encode())
    eos = min(vocab.eos_token_ids)
    assert done.accept_token(eos) and done.is_finished()
    bm = np.full((2, (vocab.size + 31) // 32), 0xDEADBEEF, dtype=np.uint32)
    corral.fill_next_token_bitmask([done, accepting], bm, threads=2)
    assert not bm[0].any()
    assert np.array_equal(bm[0], done.next_token_mask())
    assert np.array_equal(bm[1], accepting.next_token_mask())
    assert (int(bm[1][eos >> 5]) >> (eos & 31)) & 1


def test_indices_fill_only_those_rows(vocab: Vocabulary) -> None:
    rng = np.random.default_rng(3)
    grammar = COMPILERS["schema"](vocab)
    ms, want = matchers_at(grammar, "schema", vocab, rng, 6)
    bm = np.full((8, (vocab.size + 31) // 32), 0xDEADBEEF, dtype=np.uint32)
    corral.fill_next_token_bitmask(ms, bm, indices=np.array([4, 1, 4]), threads=2)
    for i in range(8):
        if i in (1, 4):
            assert np.array_equal(bm[i], want[i])
        else:
            assert (bm[i] == 0xDEADBEEF).all()
    corral.fill_next_token_bitmask(ms, bm, indices=[])
    assert (bm[0] == 0xDEADBEEF).all()


def test_int32_bitmask_is_filled_in_place(vocab: Vocabulary) -> None:
    grammar = COMPILERS["lark"](vocab)
    ms = [grammar.matcher(), grammar.matcher()]
    assert ms[1].accept_bytes(b"(12")
    bm = np.zeros((2, (vocab.size + 31) // 32), dtype=np.int32)
    corral.fill_next_token_bitmask(ms, bm)
    for i, m in enumerate(ms):
        assert np.array_equal(bm[i].view(np.uint32), m.next_token_mask())


def test_default_threads_is_positive() -> None:
    assert default_threads() >= 1


def test_empty_batch_is_a_no_op(vocab: Vocabulary) -> None:
    bm = corral.allocate_token_bitmask(2, vocab.size)
    corral.fill_next_token_bitmask([], bm)
    assert not bm.any()


def test_error_when_an_element_is_not_a_matcher(vocab: Vocabulary) -> None:
    m = COMPILERS["regex"](vocab).matcher()
    bm = corral.allocate_token_bitmask(2, vocab.size)
    with pytest.raises(CorralError, match=r"^matchers\[1\] is a str, not a corral.Matcher$"):
        corral.fill_next_token_bitmask([m, "m"], bm)  # type: ignore[list-item]
    with pytest.raises(CorralError, match="matchers must be a sequence of corral.Matcher, got RegexMatcher"):
        corral.fill_next_token_bitmask(m, bm)  # type: ignore[arg-type]


def test_error_when_vocabulary_sizes_differ(vocab: Vocabulary) -> None:
    small = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    a = COMPILERS["regex"](vocab).matcher()
    b = corral.compile_regex("a+", small).matcher()
    bm = corral.allocate_token_bitmask(2, vocab.size)
    with pytest.raises(CorralError, match=rf"^matchers\[1\] has a vocabulary of 3 ids but matchers\[0\] has {vocab.size}"):
        corral.fill_next_token_bitmask([a, b], bm)


def test_error_when_bitmask_shape_is_wrong(vocab: Vocabulary) -> None:
    m = COMPILERS["regex"](vocab).matcher()
    words = (vocab.size + 31) // 32
    with pytest.raises(CorralError, match=rf"^bitmask has {words + 1} words per row but a vocabulary of {vocab.size} ids needs {words}"):
        corral.fill_next_token_bitmask([m], np.zeros((1, words + 1), dtype=np.uint32))
    with pytest.raises(CorralError, match="^bitmask has 1 rows for 2 matchers$"):
        corral.fill_next_token_bitmask([m, m.fork()], np.zeros((1, words), dtype=np.uint32))
    with pytest.raises(CorralError, match=r"^bitmask must have shape \(batch, words\), got shape"):
        corral.fill_next_token_bitmask([m], np.zeros(words, dtype=np.uint32))
    with pytest.raises(CorralError, match="^bitmask must have dtype uint32 .or int32., got float32$"):
        corral.fill_next_token_bitmask([m], np.zeros((1, words), dtype=np.float32))
    ro = np.zeros((1, words), dtype=np.uint32)
    ro.setflags(write=False)
    with pytest.raises(CorralError, match="^bitmask is read-only"):
        corral.fill_next_token_bitmask([m], ro)
    with pytest.raises(CorralError, match="^bitmask must be a uint32 NumPy array"):
        corral.fill_next_token_bitmask([m], [[0] * words])


def test_error_when_index_or_threads_is_bad(vocab: Vocabulary) -> None:
    m = COMPILERS["regex"](vocab).matcher()
    bm = corral.allocate_token_bitmask(2, vocab.size)
    with pytest.raises(CorralError, match=r"^index 1 is outside 0 \.\. 0$"):
        corral.fill_next_token_bitmask([m], bm, indices=[1])
    with pytest.raises(CorralError, match=r"^index -1 is outside 0 \.\. 0$"):
        corral.fill_next_token_bitmask([m], bm, indices=[-1])
    with pytest.raises(CorralError, match="^an index must be an integer"):
        corral.fill_next_token_bitmask([m], bm, indices=["0"])  # type: ignore[list-item]
    with pytest.raises(CorralError, match="^an index must be an integer"):
        corral.fill_next_token_bitmask([m], bm, indices=[True])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(CorralError, match="^threads must be a positive integer or None"):
            corral.fill_next_token_bitmask([m], bm, threads=bad)  # type: ignore[arg-type]
