"""Long ``minLength``/``maxLength`` (issue 20, item 2): bounds kept beside the automaton and
lowered as chunks of code points (:mod:`corral.compiler.json_schema.long_strings`).

Oracles: the unrolled automaton of :func:`json_string_dfa` (an independent construction, for
bounds it can still build), ``jsonschema``'s verdicts, and the brute-force mask over a real
tokenizer's vocabulary walked through the recogniser.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import numpy as np
import pytest

import corral
from corral.compiler.json_schema.json_strings import json_string_dfa
from corral.compiler.json_schema.long_strings import CHUNK, LongStr
from corral.errors import CompileLimitError
from corral.runtime.engine import mask_store_for, recognizer_for
from tests.compiler.json_schema.test_strings import respell
from tests.oracles import brute_force_mask, grammar_accepts, schema_valid

VOCAB = corral.Vocabulary([bytes([i]) for i in range(32, 127)] + [b"\n", None], eos_token_ids=[96])

_compiled: dict[str, Any] = {}


def compiled(schema: Any, vocab: corral.Vocabulary = VOCAB) -> Any:
    key = json.dumps(schema, sort_keys=True) + str(id(vocab))
    if key not in _compiled:
        _compiled[key] = corral.compile_json_schema(schema, vocab, whitespace="compact")
    return _compiled[key]


def _value(n: int, last: str, fill: str = "b") -> str:
    """``n`` code points: ``fill`` then ``last`` (the last allowed position)."""
    return fill * (n - 1) + last if n > 0 else ""


# --- boundaries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lo,hi", [(0, 100_000), (99_990, 100_000), (1000, None)])
def test_lengths_at_the_bounds_count_code_points(lo: int, hi: int | None) -> None:
    schema: dict[str, Any] = {"type": "string", "minLength": lo}
    if hi is not None:
        schema["maxLength"] = hi
    g = compiled(schema)
    top = hi if hi is not None else lo + 5
    rng = random.Random(lo)
    for n in sorted({max(lo - 1, 0), lo, top, top + 1}):
        ok = lo <= n and (hi is None or n <= hi)
        for last in ("a", "é", "€", "😀", "\n", '"'):
            v = _value(n, last)
            spellings = [json.dumps(v), json.dumps(v, ensure_ascii=False)]
            if last in ("😀", "€"):
                spellings.append(json.dumps(v[:-1], ensure_ascii=False)[:-1] + respell(last, rng)[1:])
            for text in spellings:
                assert grammar_accepts(g, text) == ok, (n, last, text[-20:])


def test_boundaries_with_a_pattern() -> None:
    schema = {"type": "string", "maxLength": 8192, "minLength": 300, "pattern": "^[a-z0-9-]*$"}
    g = compiled(schema)
    for n in (299, 300, 8191, 8192, 8193):
        for last in ("a", "-", "A", "é"):
            v = _value(n, last, "x")
            want = 300 <= n <= 8192 and last in "a-"
            assert want == schema_valid(schema, v)
            assert grammar_accepts(g, json.dumps(v)) == want, (n, last)
    v = "x" * 8191
    assert grammar_accepts(g, '"' + v + '\\u0061"')  # an escaped letter at the last position
    assert not grammar_accepts(g, '"' + v + '\\u0041"')
    assert not grammar_accepts(g, '"' + v + 'a\\u0061"')


def test_boundaries_with_formats() -> None:
    g = compiled({"type": "string", "format": "date", "maxLength": 10_000})
    assert grammar_accepts(g, '"2024-02-29"') and not grammar_accepts(g, '"2023-02-29"')
    g = compiled({"type": "string", "format": "date-time", "maxLength": 8192})
    base = "2024-01-31T12:00:00."
    for n in (8191, 8192, 8193):
        v = base + "1" * (n - len(base) - 1) + "Z"
        assert grammar_accepts(g, json.dumps(v)) == (n <= 8192), n
    assert not grammar_accepts(g, json.dumps(base + "1" * 100 + "Q"))


def test_agrees_with_the_unrolled_automaton() -> None:
    """Every prefix of random literals: the chunked grammar is viable exactly when the unrolled
    automaton is (bounds it can still build)."""
    rng = random.Random(7)
    alphabet = ["a", "b", "-", "é", "€", "😀", '"', "\\", "\n", "z"]
    for pattern, lo, hi in [(None, 0, 300), (None, 270, 330), ("^[a-z0-9-]*$", 0, 400), ("a", 100, 300),
                            ("^(ab)*c?$", 0, 333), (None, 300, None), ("^(?:[a-b]{3})*$", 258, 500)]:
        schema: dict[str, Any] = {"type": "string", "minLength": lo}
        if hi is not None:
            schema["maxLength"] = hi
        if pattern is not None:
            schema["pattern"] = pattern
        g = compiled(schema)
        rec = recognizer_for(g)
        dfa = json_string_dfa(pattern, min_length=lo, max_length=hi)
        for _ in range(12):
            n = rng.choice([lo - 1, lo, lo + 1, (hi or lo + 70) - 1, hi or lo + 70, (hi or lo + 70) + 1, rng.randint(0, 500)])
            n = max(n, 0)
            if pattern is not None and rng.random() < 0.7:
                unit = {"^[a-z0-9-]*$": "ab-9", "a": "ba", "^(ab)*c?$": "ab", "^(?:[a-b]{3})*$": "aba"}[pattern]
                v = (unit * n)[:n]
                if rng.random() < 0.5 and v:
                    v = v[:-1] + rng.choice(alphabet)
            else:
                v = "".join(rng.choice(alphabet) for _ in range(n))
            data = rng.choice([json.dumps(v), json.dumps(v, ensure_ascii=False), respell(v, rng)]).encode()
            s = rec.initial()
            q = dfa.start
            for i, b in enumerate(data):
                s = rec.step(s, b)
                q = int(dfa.trans[q, b]) if q >= 0 else -1
                assert (s is not None) == (q >= 0), (schema, data[: i + 1][-30:])
                if s is None:
                    break
            else:
                assert s.accepting == bool(dfa.accepting[q]), (schema, data[-30:])


# --- the algebra ----------------------------------------------------------------------------------

ALGEBRA = [
    {"type": "string", "not": {"maxLength": 1000}},
    {"type": "string", "anyOf": [{"maxLength": 300}, {"minLength": 2000}]},
    {"type": "string", "allOf": [{"maxLength": 5000}, {"minLength": 4990}]},
    {"type": "string", "oneOf": [{"maxLength": 1000}, {"pattern": "^a*$"}]},
    {"type": "string", "if": {"maxLength": 500}, "then": {"pattern": "^a"}, "else": {"pattern": "b$"}},
    {"type": "string", "allOf": [{"maxLength": 1000}, {"pattern": "^[ab]*$"}], "not": {"minLength": 700}},
    {"anyOf": [{"type": "string", "maxLength": 2000}, {"type": "null"}], "not": {"const": "ab"}},
    {"allOf": [{"maxLength": 1000}, {"enum": ["x", "y" * 999, "y" * 1001, 5]}]},
    {"type": "string", "not": {"anyOf": [{"maxLength": 400}, {"minLength": 600}]}},
]


@pytest.mark.parametrize("schema", ALGEBRA, ids=range(len(ALGEBRA)))
def test_combinations_agree_with_jsonschema(schema: dict[str, Any]) -> None:
    g = compiled(schema)
    cuts = [int(x) for x in json.dumps(schema).replace("}", " ").replace(",", " ").split() if x.isdigit()]
    values: list[Any] = [None, 5, "ab", "x", "y" * 999, "y" * 1001]
    for c in cuts + [0, 1]:
        for n in (c - 1, c, c + 1, c + 2):
            if n < 0:
                continue
            for fill, last in (("a", "a"), ("a", "b"), ("b", "b"), ("a", "😀")):
                values.append(_value(n, last, fill))
    for v in values:
        assert grammar_accepts(g, json.dumps(v)) == schema_valid(schema, v), (schema, v if not isinstance(v, str) else (len(v), v[-3:]))


def test_sets_stay_exact_and_small_bounds_unrolled() -> None:
    from corral.compiler.json_schema.algebra import (
        DSet,
        dset_join,
        dset_meet,
        dset_not,
        universe,
    )
    from corral.compiler.json_schema.long_strings import long_string_set

    def cuts(x: Any) -> list[tuple[int, int | None]]:
        return [(lo, hi) for lo, hi, _ in x.intervals()]

    u = universe("str", True)
    a = long_string_set(u, True, 0, 1000)
    b = long_string_set(u, True, 900, None)
    assert isinstance(a, LongStr) and isinstance(b, LongStr)
    assert cuts(dset_meet(a, b)) == [(900, 1000)]
    j = dset_join(a, b)  # every string: one plain automaton again
    assert type(j) is DSet and j.dfa.matches(b'"abc"')
    n = dset_not(a, "str")
    assert cuts(n) == [(1001, None)]
    assert cuts(dset_not(n, "str")) == [(0, 1000)]
    assert dset_meet(a, long_string_set(u, True, 2000, None)) is False
    # what is left of a long bound below the threshold is unrolled into the automaton
    small = dset_meet(a, dset_not(long_string_set(u, True, 200, None), "str"))
    assert type(small) is DSet and small.dfa.matches(b'"' + b"a" * 199 + b'"') and not small.dfa.matches(b'"' + b"a" * 200 + b'"')
    # a bound that every string of the automaton meets is dropped (dates have 10 characters)
    from corral.compiler.json_schema.scalars import _format_dfa

    d = long_string_set(_format_dfa("date"), True, 0, 10_000)
    assert type(d) is DSet and d.dfa is _format_dfa("date")


# --- compile time and masks -------------------------------------------------------------------------


def test_compile_time_is_bounded() -> None:
    for schema in ({"type": "string", "maxLength": 100_000}, {"type": "string", "minLength": 100_000},
                   {"type": "string", "maxLength": 32767, "pattern": "^[a-z0-9-]*$"},
                   {"type": "string", "maxLength": 1_000_000}):
        t0 = time.monotonic()
        g = corral.compile_json_schema(schema, VOCAB, whitespace="flexible")
        assert time.monotonic() - t0 < 20, schema
        m = g.matcher()
        assert m.accept_bytes(b' "ab')
        assert m.next_token_mask() is not None


def test_too_many_pattern_states_keep_the_limit_error() -> None:
    with pytest.raises(CompileLimitError) as e:
        corral.compile_json_schema({"type": "string", "format": "email", "maxLength": 100_000}, VOCAB)
    assert "maxLength=100000 needs a length counter" in str(e.value)
    with pytest.raises(CompileLimitError):
        corral.compile_json_schema({"type": "string", "maxLength": 10**9}, VOCAB)
    # the same combination met in the algebra (allOf) is unrolled at lowering, with the same error
    schema = {"type": "object", "properties": {"a": {"allOf": [{"maxLength": 10_000}, {"format": "email"}]}}}
    with pytest.raises(CompileLimitError) as e:
        corral.compile_json_schema(schema, VOCAB)
    assert "maxLength=10000 needs a length counter" in str(e.value) and " at /properties/a;" in str(e.value)


def test_huge_bounds_moot_for_the_pattern_compile() -> None:
    g = compiled({"type": "string", "pattern": "^(ab|c)$", "maxLength": 10**9, "minLength": 1})
    assert grammar_accepts(g, '"ab"') and grammar_accepts(g, '"c"') and not grammar_accepts(g, '""')
    g = compiled({"type": "string", "format": "date", "maxLength": 10**12})
    assert grammar_accepts(g, '"2024-02-29"')
    with pytest.raises(corral.GrammarError, match="accepts no value"):
        corral.compile_json_schema({"type": "string", "format": "date", "minLength": 11}, VOCAB)


def test_property_names_with_long_bounds_are_unrolled_or_refused() -> None:
    g = compiled({"type": "object", "propertyNames": {"maxLength": 1000}})
    assert grammar_accepts(g, json.dumps({"a" * 1000: 1}, separators=(",", ":")))
    assert not grammar_accepts(g, json.dumps({"a" * 1001: 1}, separators=(",", ":")))
    with pytest.raises(CompileLimitError):
        corral.compile_json_schema({"type": "object", "propertyNames": {"maxLength": 100_000}}, VOCAB)


def _states(rec: Any, texts: list[bytes]) -> list[Any]:
    out = []
    for t in texts:
        s = rec.feed(rec.initial(), t)
        assert s is not None, t[-20:]
        out.append(s)
    return out


def test_masks_equal_brute_force_on_llama3(llama3: tuple[Any, corral.Vocabulary]) -> None:
    _, vocab = llama3
    hi = 100_000
    g = corral.compile_json_schema({"type": "string", "maxLength": hi}, vocab, whitespace="compact")
    rec = recognizer_for(g)
    store = mask_store_for(g)
    a = b'"' + b"a" * (hi - 3)
    texts = [
        a,                                     # three to go
        b'"' + b"a" * (hi - 1),                # the last allowed position
        b'"' + b"a" * hi,                      # only the quote
        b'"' + b"a" * (hi - 1) + "😀".encode()[:2],  # inside the last character's UTF-8
        b'"' + b"a" * (hi - 1) + b"\\ud83d\\ude",  # inside its surrogate pair escape
        b'"' + b"a" * (hi - 2) + b"\\u00",     # inside a \\u escape of the second to last one
        b'"' + b"a" * (CHUNK * 7 - 2),         # two before a chunk boundary
        b'"' + b"a" * (CHUNK * 7) + "é".encode()[:1],  # a character straddling nothing, after one
        b'"' + b"a" * (CHUNK * 7 - 1) + "€".encode()[:2],  # the chunk's last character, mid-UTF-8
    ]
    for s in _states(rec, texts):
        got = corral.bitmask_to_bool(store.mask(s), vocab.size)
        want = brute_force_mask(rec, s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]


def test_masks_with_a_pattern_equal_brute_force_on_llama3(llama3: tuple[Any, corral.Vocabulary]) -> None:
    _, vocab = llama3
    g = corral.compile_json_schema({"type": "string", "maxLength": 8192, "minLength": 8000,
                                    "pattern": "^[a-z0-9-]*$"}, vocab, whitespace="compact")
    rec = recognizer_for(g)
    store = mask_store_for(g)
    texts = [b'"' + b"ab-" * 2666, b'"' + b"a" * 7999, b'"' + b"a" * 8000, b'"' + b"a" * 8190,
             b'"' + b"a" * 8191 + b"\\u00", b'"' + b"a" * (CHUNK * 5 - 1)]
    for s in _states(rec, texts):
        got = corral.bitmask_to_bool(store.mask(s), vocab.size)
        want = brute_force_mask(rec, s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]


def _random_schema(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    r = rng.random()
    if depth >= 2 or r < 0.4:
        s: dict[str, Any] = {}
        if rng.random() < 0.7:
            s["maxLength"] = rng.choice([257, 300, 400, 512, 700])
        if rng.random() < 0.5 or not s:
            s["minLength"] = rng.choice([0, 5, 258, 300, 450, 600])
        if rng.random() < 0.3:
            s["pattern"] = rng.choice(["^a*$", "b", "^[ab]*$"])
        return s
    kw = rng.choice(["allOf", "anyOf", "oneOf", "not"])
    if kw == "not":
        return {"not": _random_schema(rng, depth + 1)}
    return {kw: [_random_schema(rng, depth + 1) for _ in range(rng.randint(2, 3))]}


def test_random_boolean_combinations_agree_with_jsonschema() -> None:
    """Random allOf/anyOf/oneOf/not trees of long bounds: the verdict at every cut (and around it)
    is ``jsonschema``'s."""
    rng = random.Random(2020)
    for _ in range(25):
        schema = {"type": "string", **_random_schema(rng)}
        cuts = sorted({int(x) for x in json.dumps(schema).replace("}", " ").replace(",", " ").replace("]", " ").split()
                       if x.isdigit()} | {0})
        try:
            g = compiled(schema)
        except corral.GrammarError as e:  # a schema nothing satisfies
            assert "accepts no value" in str(e)
            assert not any(schema_valid(schema, _value(n, "a", f)) for c in cuts for n in (c, c + 1) for f in "ab")
            continue
        for c in cuts:
            for n in (c - 1, c, c + 1):
                if n < 0:
                    continue
                for fill, last in (("a", "a"), ("a", "b"), ("b", "a"), ("a", "é")):
                    v = _value(n, last, fill)
                    assert grammar_accepts(g, json.dumps(v)) == schema_valid(schema, v), (schema, n, fill, last)


def test_long_strings_inside_objects_in_every_layout() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 1000},
                                               "b": {"type": "string", "minLength": 300}},
              "required": ["a"]}
    for ws, dump in (("pretty", lambda v: json.dumps(v)), ("indent", lambda v: json.dumps(v, indent=2)),
                     ("compact", lambda v: json.dumps(v, separators=(",", ":"))),
                     ("flexible", lambda v: json.dumps(v, indent=1))):
        g = corral.compile_json_schema(schema, VOCAB, whitespace=ws)
        for v, ok in (({"a": "x" * 1000}, True), ({"a": "x" * 1001}, False), ({"a": "", "b": "y" * 300}, True),
                      ({"a": "", "b": "y" * 299}, False)):
            assert grammar_accepts(g, dump(v)) == ok, (ws, ok)


UNROLLED_CASES = [
    {"type": "string", "maxLength": 300, "not": {"minLength": 5, "pattern": "^a*$"}},
    {"type": "string", "maxLength": 400, "pattern": "^[a-c]*b[a-c]{2}$"},
    {"type": "string", "minLength": 270, "pattern": "^(ab|ba)*é?$"},
    {"type": "string", "anyOf": [{"maxLength": 280, "pattern": "^a"}, {"minLength": 330, "pattern": "b$"}]},
    {"type": "string", "maxLength": 500, "minLength": 258, "not": {"pattern": "ab"}},
    {"type": "string", "oneOf": [{"maxLength": 257}, {"minLength": 260, "pattern": "^[ab]*$"}]},
]


@pytest.mark.parametrize("schema", UNROLLED_CASES, ids=range(len(UNROLLED_CASES)))
def test_chunked_grammar_agrees_with_the_unrolled_one(schema: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same schema compiled with its bounds unrolled into the automata (the construction used
    below ``LONG_THRESHOLD``, and for every bound before): every prefix of random literals is
    viable in one exactly when it is in the other."""
    from corral.compiler.json_schema import long_strings

    new = recognizer_for(corral.compile_json_schema(schema, VOCAB, whitespace="compact"))
    monkeypatch.setattr(long_strings, "LONG_THRESHOLD", 10**30)  # every bound unrolled
    old = recognizer_for(corral.compile_json_schema(schema, VOCAB, whitespace="compact"))
    rng = random.Random(json.dumps(schema))
    alphabet = ["a", "b", "c", "é", "😀", '"', "\n"]
    for _ in range(30):
        n = rng.choice([0, 5, 63, 64, 65, 128, 256, 257, 258, 259, 260, 270, 280, 281, 300, 301, 329, 330, 400, 401,
                        499, 500, 501, rng.randint(0, 600)])
        unit = rng.choice(["a", "ab", "ba", "abc", "b"])
        v = (unit * n)[:n]
        for _ in range(rng.randint(0, 2)):
            if v:
                i = rng.randrange(len(v))
                v = v[:i] + rng.choice(alphabet) + v[i + 1:]
        data = rng.choice([json.dumps(v), json.dumps(v, ensure_ascii=False), respell(v, rng)]).encode()
        s, t = new.initial(), old.initial()
        for i, b in enumerate(data):
            s, t = new.step(s, b), old.step(t, b)
            assert (s is None) == (t is None), (schema, len(v), data[: i + 1][-30:])
            if s is None:
                break
        else:
            assert s.accepting == t.accepting, (schema, len(v), data[-30:])


def test_masks_with_several_pattern_states_equal_brute_force_on_llama3(llama3: tuple[Any, corral.Vocabulary]) -> None:
    """A pattern whose automaton is in different states at chunk boundaries (all ``a`` so far or
    not), around a boundary and at the last position."""
    _, vocab = llama3
    g = corral.compile_json_schema({"type": "string", "maxLength": 300, "not": {"minLength": 5, "pattern": "^a*$"}},
                                   vocab, whitespace="compact")
    rec = recognizer_for(g)
    store = mask_store_for(g)
    texts = [b'"' + b"a" * (CHUNK - 2), b'"' + b"a" * CHUNK, b'"' + b"a" * (CHUNK - 1) + b"b",
             b'"' + b"a" * 299, b'"' + b"a" * 298 + "é".encode()[:1]]
    for s in _states(rec, texts):
        got = corral.bitmask_to_bool(store.mask(s), vocab.size)
        want = brute_force_mask(rec, s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]
    # after 299 "a": only one more character, not an "a" (the value must not be all "a")
    ids = {b: t for t, b in enumerate(vocab.token_bytes) if b in (b'"', b"a", b"b", b'b"', b"ab", b"\\")}
    allowed = corral.bitmask_to_bool(store.mask(_states(rec, [b'"' + b"a" * 299])[0]), vocab.size)
    assert {b'"', b"a", b"b", b"ab"} <= ids.keys()
    assert not allowed[ids[b'"']] and not allowed[ids[b"a"]] and not allowed[ids[b"ab"]] and allowed[ids[b"b"]]
    for text in (b'b"', b"\\"):  # "\" starts an escape: one more character
        if text in ids:
            assert allowed[ids[text]], text


# The Python reading of ``long_strings._layered`` before its numba kernels: the oracle.
def _layered_py(sh: Any, x0: int, top: int, tail_lo: int | None) -> tuple[np.ndarray, list[np.ndarray], int]:
    """A counter of code points from boundary ``x0``: layers ``0..top`` (``top`` characters).

    Chunk mode (``tail_lo`` None): layer ``top`` holds only its boundary entries, without moves.
    Tail mode: no character past layer ``top``; the closing quote (to the one final state) from
    layers ``tail_lo..top`` only. Returns ``(table, ids per layer, final id or -1)``.
    """
    n = sh.n
    boundary, final, trans = sh.boundary, sh.final, sh.trans
    layers: list[list[int]] = []
    entries = {x0}
    for i in range(top + 1):
        if tail_lo is None and i == top:
            layers.append(sorted(entries))
            break
        seen = set(entries)
        stack = list(entries)
        nxt: set[int] = set()
        while stack:
            x = stack.pop()
            for z in np.unique(trans[x][trans[x] >= 0]).tolist():  # x's successors, from the table itself
                if boundary[z]:
                    nxt.add(z)
                elif not final[z] and z not in seen:
                    seen.add(z)
                    stack.append(z)
        layers.append(sorted(seen))
        if not nxt or i == top:
            break
        entries = nxt
    sizes = [len(m) for m in layers]
    total = sum(sizes) + (1 if tail_lo is not None else 0)
    final_id = total - 1 if tail_lo is not None else -1
    offsets = np.cumsum([0] + sizes)
    ids: list[np.ndarray] = []
    for i, members in enumerate(layers):
        idx = np.full(n + 1, -1, dtype=np.int64)  # idx[n]: no transition
        idx[members] = offsets[i] + np.arange(len(members))
        ids.append(idx)
    none = np.full(n + 1, -1, dtype=np.int64)
    out = np.full((total, 256), -1, dtype=np.int32)
    for i, members in enumerate(layers):
        if tail_lo is None and i == top:
            continue
        m = np.array(members, dtype=np.int64)
        sub = trans[m]
        sub = np.where(sub >= 0, sub, n)
        nextid = ids[i + 1] if i + 1 < len(ids) else none
        safe = np.minimum(sub, n - 1)
        comp = (sub < n) & boundary[safe]
        fin = (sub < n) & final[safe]
        rows = np.where(comp, nextid[sub], ids[i][sub])
        rows[fin] = final_id if (tail_lo is not None and i >= tail_lo) else -1
        out[offsets[i]:offsets[i + 1]] = rows
    return out, ids, final_id


@pytest.mark.parametrize("pattern", [None, "^[a-z]*$", "^(ab|é)*x?$", "^[^\\\\]*$"])
def test_layered_kernels_equal_the_python_reading(pattern: str | None) -> None:
    """Every boundary's chunk counter and tail counters (several bounds) built by the numba
    passes equal the per-layer Python reading: table, ids per layer and final state."""
    from corral.compiler.json_schema.long_strings import _layered, _Shape

    sh = _Shape(json_string_dfa(pattern))
    starts = np.flatnonzero(sh.boundary).tolist()[:12]
    assert starts
    for x in starts:
        for top, tail_lo in [(CHUNK, None), (3, None), (1, None), (CHUNK, 0), (40, 7), (5, 5), (2, 0)]:
            got = _layered(sh, x, top, tail_lo)
            want = _layered_py(sh, x, top, tail_lo)
            assert np.array_equal(got[0], want[0]), (x, top, tail_lo)
            assert len(got[1]) == len(want[1]) and all(np.array_equal(a, b) for a, b in zip(got[1], want[1]))
            assert got[2] == want[2]


# --- signing sets inside a long string ----------------------------------------------------------


def _futures_signed(rec: Any, s: Any) -> int:
    """How many futures and kernels signing ``s`` interned."""
    n0 = len(rec._intern)
    rec.signature(s)
    return len(rec._intern) - n0


def test_the_first_step_into_a_long_string_signs_a_bounded_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk counts of a long string all wait at its start (``A[j] -> A[j-1] CHUNK``), each
    future on the next: signing the first set inside a string with ``maxLength: 65535`` followed
    a chain of 1,024 futures (~30 ms of Python; ``maxLength: 1000000``, 15,625). The chain is
    followed :data:`~corral.runtime.earley.MAX_FUTURE_CHAIN` deep and entered by the start set's
    signature past that. Fails with the cut removed."""
    import corral.runtime.earley as earley

    def signed(cut: int, hi: int) -> int:
        monkeypatch.setattr(earley, "MAX_FUTURE_CHAIN", cut)
        g = corral.compile_json_schema({"type": "string", "maxLength": hi}, VOCAB, whitespace="compact")
        rec = recognizer_for(g)
        start = rec.feed(rec.initial(), b'"')
        rec.signature(start)
        return _futures_signed(rec, rec.feed(start, b"a"))

    assert signed(1 << 30, 65535) > 1000  # the whole chain: what the cut is for
    assert signed(64, 65535) <= 3 * 64
    assert signed(64, 65534) <= 3 * 64  # (and per chunk boundary further in: test below)


# single bytes, and tokens that close several containers at once or cross a chunk's end: their
# bits tell how deep the text is, so sets of one signature must agree beyond the next byte
_CLOSING: list[bytes | None] = [bytes([i]) for i in range(32, 127)] + [
    b"}}", b"}}}", b"]]", b"]]]", b"]],", b'"]', b'"]]', b'"]]]', b'"}', b'"}}', b'"}}}', b'"},', b'"],',
    b"a" * 16, b"x" * 24, b"c" * 40, b"b" * 63, b'"k":{', b'{"k":', None]
CLOSERS = corral.Vocabulary(_CLOSING, eos_token_ids=[len(_CLOSING) - 1])


@pytest.mark.parametrize("schema,doc", [
    ({"type": "string", "maxLength": 20_000}, json.dumps("ab\u00e9" * 70 + "\\n" + "c" * 60)),
    ({"type": "array", "items": {"type": "array", "items": {"type": "string", "maxLength": 300}}},
     json.dumps([["a" * 70, "b"], [], ["c" * 130, "\u20ac" * 3]], separators=(",", ":"))),
    ({"type": "object", "properties": {"k": {"$ref": "#"}, "v": {"type": "string", "minLength": 260}}},
     json.dumps({"k": {"k": {"v": "x" * 270}}}, separators=(",", ":"))),
], ids=["string", "nested-arrays", "recursive-objects"])
def test_masks_stay_exact_with_the_chain_cut_at_every_link(schema: dict[str, Any], doc: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Entering a future by its set's signature is exact: with every future entered so (the cut
    at one), every mask along a document (cached by signature, so two sets given one signature
    with different futures would share a wrong mask) equals the brute-force walk of the
    vocabulary, inside long strings across chunk boundaries and in nested containers."""
    import corral.runtime.earley as earley

    monkeypatch.setattr(earley, "MAX_FUTURE_CHAIN", 1)
    g = corral.compile_json_schema(schema, CLOSERS, whitespace="compact")
    rec = recognizer_for(g)
    store = mask_store_for(g)
    s = rec.initial()
    data = doc.encode()
    for i in range(len(data) + 1):
        got = corral.bitmask_to_bool(store.mask(s), CLOSERS.size)
        want = brute_force_mask(rec, s, CLOSERS)
        assert np.array_equal(got, want), (i, [CLOSERS.token_bytes[t] for t in np.flatnonzero(got != want)[:10]])
        if i < len(data):
            s = rec.step(s, data[i])
            assert s is not None, i
    assert s.accepting
