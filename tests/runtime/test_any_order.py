"""``property_order="any"`` for objects naming any number of properties.

A simple object (no property counts, no key classes cut by patterns) gets one rule that takes
every named key at every place and the matcher's :class:`~corral.compiler.grammar_ir.ObjectKeys` check allows each at most once and the
closing brace once every required key is written. Other objects, up to ``MAX_ANY_ORDER`` named
properties, get a rule per subset of keys written (exact, and the oracle here: patched in with
``CHECK_KEYS_ABOVE``). The two must give the same mask at every prefix; documents with keys in random order must get ``jsonschema``'s verdict.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corral
import corral.compiler.json_schema.lower as lower_module

TOKENS = [bytes([b]) for b in b'{}[]",:abcxk01 '] + [b'"a"', b'"b":', b'"c', b'":', b',"', b'1,', b'1}', b'"x"', b'},{',
                                                    b'"ab"', b'a"', b'b"', b'c"']
EOS = len(TOKENS)
VOCAB = corral.Vocabulary(TOKENS + [None], eos_token_ids=[EOS])

SCHEMAS: dict[str, dict[str, Any]] = {
    "open": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                                              "ab": {"type": "integer"}}, "required": ["b"]},
    "closed": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                                                "ab": {"type": "integer"}, "c": {"type": "integer"}},
               "required": ["a"], "additionalProperties": False},
    "nested": {"type": "object", "properties": {"a": {"type": "object", "properties": {
        "b": {"type": "integer"}, "c": {"type": "integer"}}, "required": ["c"], "additionalProperties": False},
        "b": {"type": "array", "items": {"type": "integer"}}}, "required": ["a", "b"]},
    "cases": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                                               "c": {"type": "object", "maxProperties": 0}},
              "oneOf": [{"required": ["a"]}, {"required": ["b"], "properties": {"c": {"required": ["a"]}}}]},
    "unique": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "integer"},
                                                                          "b": {"type": "integer"}}},
               "uniqueItems": True},
}


def _allows(mask: np.ndarray, t: int) -> bool:
    return bool((int(mask[t >> 5]) >> (t & 31)) & 1)


def _compile(schema: dict[str, Any], checked: bool, monkeypatch: pytest.MonkeyPatch) -> corral.CompiledGrammar:
    with monkeypatch.context() as mp:
        mp.setattr(lower_module, "CHECK_KEYS_ABOVE", 0 if checked else 99)
        return corral.compile_json_schema(schema, VOCAB, whitespace="compact", property_order="any")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_same_masks_as_the_subset_grammar(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exact = _compile(SCHEMAS[name], False, monkeypatch)
    checked = _compile(SCHEMAS[name], True, monkeypatch)
    assert not exact.program.ir.guards or name == "unique"
    assert any(type(g).__name__ == "ObjectKeys" for g in checked.program.ir.guards.values())
    frontier = [(b"", exact.matcher(), checked.matcher())]
    compared = 0
    for _ in range(9):
        nxt = []
        for text, m1, m2 in frontier:
            a, b = m1.next_token_mask(), m2.next_token_mask()
            assert np.array_equal(a, b), (text, [TOKENS[t] if t < EOS else "EOS" for t in range(EOS + 1)
                                                 if _allows(a, t) != _allows(b, t)])
            for t in range(EOS):
                assert m2.check_token(t) == _allows(b, t), (text, TOKENS[t])
                if _allows(a, t):
                    f1, f2 = m1.fork(), m2.fork()
                    assert f1.accept_token(t) and f2.accept_token(t)
                    nxt.append((text + TOKENS[t], f1, f2))
            compared += 1
        nxt.sort(key=lambda x: x[0])
        frontier = nxt[:: max(1, len(nxt) // 25)]
    assert compared > 60


def test_large_objects_need_no_warning() -> None:
    props = {f"p{i}": {"type": "integer"} for i in range(40)}
    g = corral.compile_json_schema({"type": "object", "properties": props, "required": ["p3", "p30"],
                                    "additionalProperties": False}, VOCAB, property_order="any")
    assert not g.warnings
    counted = corral.compile_json_schema({"type": "object", "properties": props, "maxProperties": 5},
                                         VOCAB, property_order="any")
    assert any(w.code == "property-order" for w in counted.warnings)  # counts: schema order, said so


_N = 24
_BIG = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(_N)},
        "required": ["p1", "p20"]}


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.integers(0, _N + 2), max_size=8), closed=st.booleans())
def test_documents_in_any_order(keys: list[int], closed: bool) -> None:
    schema = dict(_BIG, additionalProperties=not closed)
    g = _grammars[closed]
    names = [f"p{k}" for k in keys if k < _N] + list(dict.fromkeys(f"x{k}" for k in keys if k >= _N))
    names.sort(key=lambda k: keys[len(k) % len(keys)] if keys else 0)  # interleave the other keys
    text = "{" + ",".join(f'"{k}":{i}' for i, k in enumerate(names)) + "}"
    m = g.matcher()
    accepted = m.accept_bytes(text.encode()) and m.is_accepting()
    valid = jsonschema.Draft202012Validator(schema).is_valid(json.loads(text)) and len(set(names)) == len(names)
    assert accepted == valid, text


_grammars = {closed: corral.compile_json_schema(dict(_BIG, additionalProperties=not closed), corral.Vocabulary(
    [bytes([b]) for b in range(256)] + [None], eos_token_ids=[256]), whitespace="compact", property_order="any")
    for closed in (False, True)}


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",))), st.booleans())
def test_a_keys_text_is_read_as_json_reads_it(key: str, ascii_only: bool) -> None:
    """The reader reads a key's literal without ``json.loads`` when it has no escape: the same
    string either way (raw UTF-8, escapes, control characters, quotes)."""
    from corral.runtime.guards import _string_of

    literal = json.dumps(key, ensure_ascii=ascii_only).encode("utf-8")
    assert _string_of(literal) == json.loads(literal)


def test_array_items_share_signatures_and_their_masks_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sets at one place of different items of an array have one signature (so one cached
    mask), checked closed objects included: every mask along the walk equals one computed
    afresh from the chart, the reader's filter with no memo included."""
    from corral.runtime.engine import earley_engine

    g = _compile({"type": "array", "items": SCHEMAS["closed"]}, True, monkeypatch)
    store = earley_engine(g).store
    m = g.matcher()
    text = '[{"a":1},{"a":2,"b":3},{"a":4,"c":5},{"b":6,"a":7},{"a":8}]'
    sigs: dict[int, int] = {}
    for i, ch in enumerate(text):
        got = m.next_token_mask()
        s = m._sets[-1]  # type: ignore[attr-defined]
        want = m._filter(store._compute(s), -1)  # type: ignore[attr-defined]
        assert np.array_equal(got, want), text[:i]
        sigs[i] = s.sig
        assert m.accept_bytes(ch.encode())
    after_a = [i for i in range(len(text)) if text[i - 4:i] == '{"a"']
    assert len(after_a) == 4 and len({sigs[i] for i in after_a}) == 1  # the first item's too
    assert m.is_accepting()
    # the items' key checks are one object (the reader's memos key a check by identity)
    items = {id(frames[1][1]) for _, frames in m._states if len(frames) > 1}  # type: ignore[attr-defined]
    assert len(items) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4095), max_size=80))
def test_set_bits_sets_exactly_the_ids(ids: list[int]) -> None:
    """The reader's vector step that sets many ids' bits at once (repeats and shared words
    included) sets the bits one at a time would."""
    from corral.runtime.guards import _set_bits

    got = np.zeros(128, dtype=np.uint32)
    _set_bits(got, ids)
    want = np.zeros(128, dtype=np.uint32)
    for t in ids:
        want[t >> 5] |= np.uint32(1 << (t & 31))
    assert np.array_equal(got, want)


def test_object_productions_are_the_braced_ones() -> None:
    """``_object_productions`` (read off the flat bodies at once) gives every production whose
    first and last symbols are terminals reading exactly ``{`` and ``}`` (after whitespace),
    with its length: the same as reading each production's body."""
    from corral.runtime.engine import _object_productions

    for schema in [*SCHEMAS.values(), {"type": "array", "items": {"type": "object", "properties": {
            "a": {"type": "object"}, "b": {"type": "array", "items": {"type": "object", "required": ["x"]}}}}}]:
        tables = corral.compile_json_schema(schema, VOCAB, whitespace="flexible").program.tables
        rows = tables.trans[np.asarray(tables.term_start, dtype=np.int64)]

        def reads_only(t: int, byte: int) -> bool:
            row = rows[t]
            to = int(row[byte])
            return bool((row >= 0).sum() <= 5 and to >= 0 and tables.accepting[to])

        want = {p: len(body) for p, body in enumerate(tables.rhs)
                if len(body) >= 2 and body[0] < 0 and body[-1] < 0
                and reads_only(-2 - body[0], 0x7B) and reads_only(-2 - body[-1], 0x7D)}
        assert want and _object_productions(tables) == want
