"""``uniqueItems: true``, enforced by the matcher at run time (``corral/runtime/guards.py``).

Oracles:

* whole documents: the matcher (fed the bytes, and token by token through its masks) accepts
  exactly what ``jsonschema`` finds valid, for arrays whose items repeat under other spellings
  (``1``/``1.0``/``1e0``, reordered objects, escaped strings), drawn by hypothesis;
* every prefix of a small vocabulary's walk (brute force): each token the mask allows has a
  completion that ``jsonschema`` validates (no dead end), and each token the grammar allows but
  the mask refuses has none among the grammar's short completions (nothing valid is blocked);
* finite item sets: the mask equals, token for token, the one computed from the enumerated
  language (every sequence of distinct values);
* ``rollback`` and ``fork`` keep the items written so far right.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corral
from corral.runtime.engine import recognizer_for
from corral.runtime.guards import UniqueCFGMatcher

BYTES = [bytes([b]) for b in b'[]{}",:ab1.0-etrufalsn \\u62']
MULTI = [b'","', b'"a"', b'"b"', b'", "', b'true', b'null', b', ', b'"]', b'a"', b'1,', b'},{', b'"a":', b'[]', b'{}',
         b'"ab', b'\\u0061']
TOKENS = BYTES + MULTI
EOS = len(TOKENS)
VOCAB = corral.Vocabulary(TOKENS + [None], eos_token_ids=[EOS])


def _allows(mask: np.ndarray, t: int) -> bool:
    return bool((int(mask[t >> 5]) >> (t & 31)) & 1)


def _valid(schema: Any, text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def _accepts(grammar: corral.CompiledGrammar, text: str) -> bool:
    m = grammar.matcher()
    return m.accept_bytes(text.encode()) and m.is_accepting()


SCHEMAS: dict[str, dict[str, Any]] = {
    "strings": {"type": "array", "items": {"type": "string", "pattern": "^[ab]*$"}, "uniqueItems": True},
    "enum": {"type": "array", "items": {"enum": ["a", "b", "ab"]}, "uniqueItems": True, "minItems": 1},
    "literals": {"type": "array", "items": {"type": ["boolean", "null"]}, "uniqueItems": True},
    "anything": {"type": "array", "uniqueItems": True, "maxItems": 4},
    "numbers": {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
    "objects": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "integer"}},
                "uniqueItems": True},
    "nested": {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}, "uniqueItems": True},
    "inner": {"type": "object", "properties": {"a": {"type": "array", "items": {"enum": [True, False]},
                                                     "uniqueItems": True}}},
}


@pytest.fixture(scope="module")
def grammars() -> dict[str, corral.CompiledGrammar]:
    return {k: corral.compile_json_schema(s, VOCAB, whitespace="compact") for k, s in SCHEMAS.items()}


def test_the_matcher_enforces_it(grammars: dict[str, corral.CompiledGrammar]) -> None:
    g = grammars["strings"]
    assert isinstance(g.matcher(), UniqueCFGMatcher)
    assert _accepts(g, '["a","b","ab",""]')
    assert not _accepts(g, '["a","b","a"]')
    assert not _accepts(g, '["a","\\u0061"]')  # equal after decoding
    m = g.matcher()
    assert m.accept_bytes(b'["a",')
    assert m.accept_bytes(b'"a')
    assert not m.check_token(TOKENS.index(b'"'))  # the quote would close a second "a"
    assert m.check_token(TOKENS.index(b"b"))
    assert not _allows(m.next_token_mask(), TOKENS.index(b'"'))


@pytest.mark.parametrize(("name", "dup", "fine"), [
    ("numbers", "[1,1.0]", "[1,1.5]"),
    ("numbers", "[100,1e2]", "[100,1e3]"),
    ("numbers", "[0,-0]", "[0,-0.1]"),
    ("objects", '[{"a":1,"b":2},{"b":2,"a":1}]', '[{"a":1,"b":2},{"b":2}]'),
    ("anything", '[[1,{"a":"x"}],[1.0,{"a":"\\u0078"}]]', '[[1,{"a":"x"}],[1,{"a":"y"}]]'),
    ("anything", "[true,1,true]", "[true,1,false]"),
    ("anything", '[1,true,1e0]', '[1,true,"1"]'),
    ("nested", "[[true],[true]]", "[[true],[true,true]]"),
    ("inner", '{"a":[true,true]}', '{"a":[true,false]}'),
])
def test_equal_values_in_other_spellings(grammars: dict[str, corral.CompiledGrammar], name: str, dup: str,
                                         fine: str) -> None:
    g = grammars[name]
    assert _valid(SCHEMAS[name], fine) and _accepts(g, fine)
    assert not _valid(SCHEMAS[name], dup) and not _accepts(g, dup)


def test_finite_items_leave_no_dead_end(grammars: dict[str, corral.CompiledGrammar]) -> None:
    m = grammars["literals"].matcher()
    assert m.accept_bytes(b"[true,false,null")
    assert not m.check_token(TOKENS.index(b","))  # no fourth distinct value exists
    assert m.check_token(TOKENS.index(b"]"))
    m = grammars["enum"].matcher()
    assert m.accept_bytes(b'["ab","a",')
    assert not m.check_token(TOKENS.index(b'"a"'))
    assert m.accept_bytes(b'"')
    assert not m.check_token(TOKENS.index(b"a"))  # "a" and "ab" are written: only "b" is left
    assert m.check_token(TOKENS.index(b"b"))


def test_unsupported_items_are_named() -> None:
    for schema, why in [
        ({"type": "array", "items": {"type": "integer", "maximum": 5}, "uniqueItems": True}, "bounded"),
        ({"type": "array", "items": {"type": "object", "additionalProperties": False,
                                     "properties": {"a": {"type": "string"}}}, "uniqueItems": True}, "objects"),
        ({"anyOf": [{"type": "array", "uniqueItems": True}, {"type": "array", "items": {"type": "string"}}]},
         "combined"),
    ]:
        with pytest.raises(corral.UnsupportedSchemaError, match="uniqueItems") as e:
            corral.compile_json_schema(schema, VOCAB)
        assert why in str(e.value)
    with pytest.raises(corral.GrammarError):  # three items from two values
        corral.compile_json_schema({"type": "array", "items": {"type": "boolean"}, "minItems": 3,
                                    "uniqueItems": True}, VOCAB)


def test_rollback_and_fork_keep_the_items(grammars: dict[str, corral.CompiledGrammar]) -> None:
    g = grammars["strings"]
    m = g.matcher()
    for piece in [b'[', b'"a"', b',', b'"b"', b',']:
        assert m.accept_bytes(piece)
    f = m.fork()
    assert not m.accept_bytes(b'"b"')
    m.rollback(2)  # back to ["a",
    assert m.accept_bytes(b'"b"]')  # "b" is new again
    assert not f.accept_bytes(b'"a"')  # the fork still remembers "a" and "b"
    assert f.accept_bytes(b'"ab"]') and f.is_accepting()
    m.reset()
    assert m.accept_bytes(b'["b"]')


# -- brute force over the small vocabulary ------------------------------------------------------------
_PREFER = [b'"', b"]", b"}", b":", b"1", b"a", b"b", b"true"]


def _complete(m: corral.Matcher, budget: int) -> bytes | None:
    """Some completion of ``m`` (its bytes): iterative deepening through its masks, closing
    tokens first (``budget`` forks per depth limit)."""
    for limit in range(1, 13):
        got = _complete_within(m, [budget], limit)
        if got is not None:
            return got
    return None


def _complete_within(m: corral.Matcher, budget: list[int], limit: int) -> bytes | None:
    mask = m.next_token_mask()
    if _allows(mask, EOS):
        return b""
    if limit == 0 or budget[0] <= 0:
        return None
    allowed = [t for t in range(EOS) if _allows(mask, t)]
    order = sorted(allowed, key=lambda t: (_PREFER.index(TOKENS[t]) if TOKENS[t] in _PREFER else 99, t))
    for t in order:
        budget[0] -= 1
        f = m.fork()
        assert f.accept_token(t)
        rest = _complete_within(f, budget, limit - 1)
        if rest is not None:
            return TOKENS[t] + rest
    return None


def _grammar_completions(grammar: corral.CompiledGrammar, data: bytes, max_len: int = 4) -> list[bytes]:
    """Short completions of ``data`` under the grammar alone (no uniqueness), by breadth-first search."""
    rec = recognizer_for(grammar)
    start = rec.feed(rec.initial(), data)
    out: list[bytes] = []
    frontier = [(b"", start)]
    for _ in range(max_len + 1):
        nxt = []
        for text, s in frontier:
            if s.accepting:
                out.append(text)
            for b in rec.next_bytes(s):
                s2 = rec.step(s, b)
                if s2 is not None:
                    nxt.append((text + bytes([b]), s2))
        frontier = nxt[:600]
    return out


@pytest.mark.parametrize("name", ["strings", "enum", "literals", "nested", pytest.param("objects", marks=pytest.mark.slow)])
def test_masks_by_brute_force(grammars: dict[str, corral.CompiledGrammar], name: str) -> None:
    g = grammars[name]
    schema = SCHEMAS[name]
    rec = recognizer_for(g)
    seen = refused = 0
    frontier: list[tuple[bytes, corral.Matcher]] = [(b"", g.matcher())]
    for _ in range(7):
        nxt: list[tuple[bytes, corral.Matcher]] = []
        for text, m in frontier:
            mask = m.next_token_mask()
            assert _allows(mask, EOS) == _valid(schema, text.decode()), text
            s = rec.feed(rec.initial(), text)
            for t in range(EOS):
                data = TOKENS[t]
                grammar_ok = rec.feed(s, data) is not None
                if _allows(mask, t):
                    assert grammar_ok
                    f = m.fork()
                    assert f.accept_token(t)
                    rest = _complete(f, 60)
                    assert rest is not None, (text, data)  # no dead end
                    assert _valid(schema, (text + data + rest).decode()), (text, data, rest)
                    nxt.append((text + data, f))
                elif grammar_ok:
                    refused += 1
                    assert not m.check_token(t)
                    for rest in _grammar_completions(g, text + data):
                        assert not _valid(schema, (text + data + rest).decode()), (text, data, rest)
            seen += 1
        # keep the walk small: a deterministic spread of the next prefixes
        nxt.sort(key=lambda x: x[0])
        frontier = nxt[:: max(1, len(nxt) // 12)]
    assert seen > 20 and refused > 0  # the walk met tokens only the uniqueness check refuses


def test_finite_language_mask_is_exact(grammars: dict[str, corral.CompiledGrammar]) -> None:
    values = ["a", "b", "ab"]
    docs = {json.dumps(list(p), separators=(",", ":")).encode()
            for k in range(1, 4) for p in itertools.permutations(values, k)}
    prefixes = {d[:i] for d in docs for i in range(len(d) + 1)}
    g = grammars["enum"]
    for p in sorted(prefixes):
        m = g.matcher()
        assert m.accept_bytes(p)
        mask = m.next_token_mask()
        for t in range(EOS):
            assert _allows(mask, t) == (p + TOKENS[t] in prefixes), (p, TOKENS[t])
        assert _allows(mask, EOS) == (p in docs)


# -- whole documents against jsonschema (hypothesis) ----------------------------------------------------
_scalars = st.sampled_from([0, 1, 1.0, -0.0, 2.5, 10, "a", "b", "", "ab", True, False, None])


def _spell(v: Any, draw: Any, exponents: bool = True) -> str:
    """``v`` as JSON text, in one of several spellings of the same value (``exponents=False``:
    numbers without exponent, where an integer is required: a documented departure)."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)) and not exponents:
        return draw(st.sampled_from(sorted({json.dumps(v), f"{float(v)!r}"})))
    if isinstance(v, (int, float)):
        return draw(st.sampled_from(sorted({json.dumps(v), f"{float(v)!r}", f"{v}e0" if isinstance(v, int) else
                                             json.dumps(v), "10e-1" if v == 1 else json.dumps(v)})))
    if isinstance(v, str):
        if v and draw(st.booleans()):
            return '"' + "".join(f"\\u{ord(c):04x}" for c in v) + '"'
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ",".join(_spell(x, draw, exponents) for x in v) + "]"
    keys = list(v)
    keys = draw(st.permutations(keys))
    return "{" + ",".join(json.dumps(k) + ":" + _spell(v[k], draw, exponents) for k in keys) + "}"


_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=2)
                       | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2), max_leaves=4)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_documents_against_jsonschema(grammars: dict[str, corral.CompiledGrammar], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["anything", "numbers", "objects", "nested", "strings"]))
    pool = {
        "anything": _values,
        "numbers": st.sampled_from([0, 1, 1.0, -0.0, 2.5, 10, 100]),
        "objects": st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from([0, 1, 2]), max_size=2),
        "nested": st.lists(st.booleans(), max_size=2),
        "strings": st.sampled_from(["a", "b", "", "ab", "ba"]),
    }[name]
    items = data.draw(st.lists(pool, max_size=4))
    text = "[" + ",".join(_spell(v, data.draw, name != "objects") for v in items) + "]"
    assert _accepts(grammars[name], text) == _valid(SCHEMAS[name], text), text


def test_complements_and_mixed_unions_are_named_never_dropped() -> None:
    for schema in [{"not": {"type": "array", "uniqueItems": True}},
                   {"anyOf": [{"type": "string"}, {"type": "array", "not": {"uniqueItems": True}}]},
                   {"anyOf": [{"type": "array", "uniqueItems": True}, {"type": "array", "items": {"type": "string"}}]}]:
        with pytest.raises(corral.UnsupportedSchemaError, match="uniqueItems: arrays with unique items combined"):
            corral.compile_json_schema(schema, VOCAB)


def test_lenient_relaxes_to_a_looser_set() -> None:
    for schema, dup in [({"type": "array", "items": {"type": "integer", "maximum": 5}, "uniqueItems": True}, b"[1,1]"),
                        ({"not": {"type": "array", "uniqueItems": True}}, b"[1,1]")]:
        g = corral.compile_json_schema(schema, VOCAB, lenient=True, whitespace="compact")
        assert any(w.keyword == "uniqueItems" and w.code == "relaxed" for w in g.warnings)
        m = g.matcher()
        assert m.accept_bytes(dup) and m.is_accepting()


def test_overlapping_cases_open_one_array() -> None:
    # two object cases give "tags" different unique arrays (one only empty): the checks merge
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["x", "y"]},
                                                        "uniqueItems": True}},
              "oneOf": [{"required": ["a"], "properties": {"tags": {"maxItems": 0}}}, {"required": ["b"]}]}
    g = corral.compile_json_schema(schema, VOCAB, whitespace="compact", property_order="any")
    for text in ['{"tags":["x","y"],"b":1}', '{"tags":["x","x"],"b":1}', '{"tags":[],"a":1}', '{"tags":["x"],"a":1}']:
        assert _accepts(g, text) == _valid(schema, text), text


def test_the_check_survives_serialisation(grammars: dict[str, corral.CompiledGrammar]) -> None:
    for name in ("enum", "strings"):
        g = corral.CompiledGrammar.from_bytes(grammars[name].to_bytes(), VOCAB)
        assert g.program.ir.guards == grammars[name].program.ir.guards
        assert not _accepts(g, '["a","a"]') and _accepts(g, '["a","b"]')


def _reference_flags(data: bytes) -> list[bool]:
    """The reader's byte classes of one token, read the plain way (the order of ``_Classes``'s
    twelve classes); the oracle for the vectorised build."""
    from corral.runtime.guards import _LOWER, _NUM_BYTES, _closing_head
    q = data.count(0x22)
    nonnum = any(c not in _NUM_BYTES for c in data)
    flags = [q >= 1, q >= 2, 0x5D in data or 0x7D in data, 0x74 in data or 0x66 in data or 0x6E in data,
             nonnum, nonnum and any(c == 0x2D or 0x30 <= c <= 0x39 for c in data),
             any(c not in _LOWER for c in data), 0x2C in data, q >= 3, False, False, False]
    if q:
        first = data.index(0x22)
        after = data[first + 1:]
        flags[9] = 0x5D in after or 0x7D in after
        flags[10] = 0x2C in after
        flags[11] = _closing_head(data) is None and 0x5C in data[:first]
    return flags


def test_byte_classes_match_a_token_by_token_reading(llama3: tuple[object, corral.Vocabulary]) -> None:
    from corral.runtime.guards import _Classes, _closing_head
    vocab = llama3[1]
    c = _Classes(vocab)
    names = ("quote1", "quote2", "close", "letters", "nonnum", "number_end", "nonletter", "comma", "quote3",
             "quote_close", "quote_comma", "escape_quote")
    bits = np.stack([np.unpackbits(getattr(c, n).view(np.uint8), bitorder="little")[:vocab.size] for n in names])
    heads: dict[bytes, list[int]] = {}
    for t, data in enumerate(vocab.token_bytes):
        want = _reference_flags(data) if data else [False] * 12
        assert bits[:, t].astype(bool).tolist() == want, (t, data)
        if data and 0x22 in data and (head := _closing_head(data)) is not None:
            heads.setdefault(head, []).append(t)
    assert heads == c.before_quote
    assert bits.sum(axis=1).min() > 0  # every class has members in a real vocabulary


def test_plain_tokens_read_as_a_set_equal_reading_each(llama3: tuple[Any, corral.Vocabulary],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a closed object's key or a finite string item, tokens without a quote or backslash,
    and before a closed object's key, whitespace and a quote then such bytes, are judged by one
    set per miss (``_plain_verdicts``), and verdicts are kept per reader state across steps; the
    refusals must equal reading every token through the reader, at every step of real documents
    on Llama-3."""
    from corral.runtime import guards
    from tests.conftest import encode
    tok, vocab = llama3
    keys = ["alpha", "alpine", "beta", "gamma", "delta", "epsilon"]
    closed = {"type": "object", "properties": {k: {"type": "string"} for k in keys}, "additionalProperties": False}
    colours = {"type": "array", "items": {"enum": ["red", "green", "blue", "greenish", "cyan"]}, "uniqueItems": True}
    opened = {"type": "object", "properties": {k: {"type": "array", "items": {"type": "string"}} for k in keys},
              "required": ["beta"]}  # open (more keys allowed), any order: its keys are checked
    tags = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    quoted = {"type": "object", "additionalProperties": False,  # keys with escapes: a token may end inside one
              "properties": {k: {"type": "string"} for k in ['q"x', 'q"y', "q", "r1", "r2"]}}
    named = {"type": "object", "properties": {k: {"type": "string"} for k in ["id", "name", "type", "-", "x1", "x2"]},
             "required": ["id"]}  # keys that are whole Llama-3 tokens (' "id"'): refused once written
    rows = {"type": "array", "uniqueItems": True,  # each row's keys read again under another array state
            "items": {"type": "object", "properties": {k: {"type": "integer"} for k in ["a", "b", "c"]}, "required": ["a"]}}
    docs = [(rows, '[{"a": 1}, {"a": 1, "b": 2}, {"b": 2, "a": 3}, {"a": 1, "c": 2}, {"c": 5, "b": 6, "a": 7}]'),
            (named, '{"name": "x", "-": "},", "type": "y", "id": "1"}'),
            (closed, '{"alpha": "x", "alpine": "y", "beta": "z", "gamma": "w", "epsilon": "v"}'),
            (closed, '{"gamma": "x", "alpha": "y", "alpine": "z"}'),
            (closed, '{"alpha": "a\\"}]\\\\", "beta": "\\"", "delta": "]}"}'),
            (quoted, '{"q\\"x": "a", "q\\"y": "b", "q": "c"}'),
            (colours, '["green", "greenish", "blue", "red", "cyan"]'),
            (opened, '{"alpha": ["]", "\\"}"], "x\\"]": [], "beta": ["a", "\\\\"], "delta\\"": ["}"]}'),
            (tags, '["a", "]", "\\"]", "b\\"", "}, ", "a\\\\"]')]
    checked = [0, 0]  # steps where a set decided: inside a key or item, between values
    free = 0  # of which strings opened where nothing checks their text
    keys = 0  # of which before a checked key (whole keys judged against those written)
    for schema, text in docs:
        g = corral.compile_json_schema(schema, vocab)
        m = g.matcher()
        assert isinstance(m, UniqueCFGMatcher)
        for t in encode(tok, text):
            s = m._sets[-1]
            assert s is not None
            base = m._store.mask(s)
            fast = m._filter(base, -1)  # -1: no memo by chart set; verdicts kept per reader state
            with monkeypatch.context() as mp:
                mp.setattr(guards, "_plain_verdicts", lambda state, text: None)
                mp.setattr(m._guards, "verdicts", {})  # every token read afresh
                slow = m._filter(base, -1)
            assert np.array_equal(fast, slow), (text, m._text)
            plain = guards._plain_verdicts(m._states[-1], m._text)
            if plain is not None and plain.rule is not guards._plain_any:
                checked[m._states[-1][0] == guards.VAL] += 1
                free += plain.rule in (guards._free_open, guards._free_whole)
                keys += plain.rule in (guards._open_key, guards._closed_key)
            assert m.accept_token(t)
        assert m.is_accepting()
    assert checked[0] >= 4 and checked[1] >= 3 and free >= 10 and keys >= 4, (checked, free, keys)


def _spaced_docs() -> list[tuple[Any, str]]:
    """Schemas whose matchers read tokens, with documents written with whitespace between values
    (indented, spaced, tabs and CRLF), for the canonical-form tests below."""
    keys = ["alpha", "alpine", "beta", "gamma", "delta"]
    closed = {"type": "object", "properties": {k: {"type": "string"} for k in keys}, "additionalProperties": False}
    numbers = {"type": "array", "items": {"type": "number"}, "uniqueItems": True}  # "1 " ends an item; "1" does not
    rows = {"type": "array", "uniqueItems": True,
            "items": {"type": "object", "properties": {k: {"type": "integer"} for k in "abc"}, "required": ["a"]}}
    tags = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    flags = {"type": "array", "items": {"enum": [True, False, None, "x"]}, "uniqueItems": True}
    named = {"type": "object", "properties": {k: {"type": "string"} for k in ["id", "name", "type", "x1", "x2"]},
             "required": ["id"]}
    return [
        (closed, json.dumps({"alpha": "x", "beta": "y z", "gamma": "w"}, indent=2)),
        (closed, '{ "delta" : "a" ,\t"alpine":"b" }'),
        (numbers, "[123, 1234,  3,\n 11 , 12]"),  # at "123" of 1234, " " would repeat 123
        (rows, json.dumps([{"a": 1}, {"a": 1, "b": 2}, {"b": 2, "a": 3}], indent=1)),
        (tags, '[ "a" , "b",\r\n"c d" ,"e" ]'),
        (flags, "[ true , null,\"x\" , false ]"),
        (named, json.dumps({"name": "x", "type": "y", "id": "1"}, indent=4)),
    ]


def _spaced_steps(tok: Any, vocab: corral.Vocabulary) -> Iterator[tuple[UniqueCFGMatcher, Any]]:
    """The matcher and its chart set at every step of the spaced documents (each document's
    next token accepted after the caller's look, the document accepted at its end)."""
    from tests.conftest import encode
    for schema, text in _spaced_docs():
        m = corral.compile_json_schema(schema, vocab, whitespace="flexible").matcher()
        assert isinstance(m, UniqueCFGMatcher)
        for t in encode(tok, text):
            s = m._sets[-1]
            assert s is not None
            yield m, s
            assert m.accept_token(t)
        assert m.is_accepting()


def test_tokens_that_differ_in_whitespace_between_values_get_one_verdict(llama3: tuple[Any, corral.Vocabulary]) -> None:
    """``_canonical`` drops the whitespace the reader reads between values; at every step of
    spaced documents on Llama-3, every token the grammar allows must get the verdict of its
    canonical form (and need the chart exactly when it does). Fails if the whitespace that ends
    a number is dropped too (at ``123`` of ``[123, 1234``, ``" "`` would repeat 123)."""
    from corral.runtime import guards
    tok, vocab = llama3
    changed = refused = 0
    for m, s in _spaced_steps(tok, vocab):
        mode = m._states[-1][0]
        for u in np.flatnonzero(np.unpackbits(m._store.mask(s).view(np.uint8), bitorder="little")).tolist():
            data = vocab.token_bytes[u] if u < len(vocab.token_bytes) else None
            if not data:
                continue
            form = guards._canonical(mode, data)
            if form == data:
                continue
            changed += 1
            want = m._alone_verdict(data)
            assert m._alone_verdict(form) == want, (m._text, data, form)
            refused += want is False
    assert changed >= 2000 and refused >= 20, (changed, refused)


def test_reading_one_token_per_canonical_form_refuses_what_reading_each_does(
        llama3: tuple[Any, corral.Vocabulary], monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader miss reads one token per canonical form (``_refused``); its refusals must equal
    reading every token (``_canonical`` as the identity), at every step of the spaced documents."""
    from corral.runtime import guards
    tok, vocab = llama3
    for m, s in _spaced_steps(tok, vocab):
        base = m._store.mask(s)
        with monkeypatch.context() as mp:
            mp.setattr(m._guards, "verdicts", {})
            mp.setattr(m._classes, "canonical", tuple({} for _ in range(5)))
            grouped = m._filter(base, -1)
            mp.setattr(guards, "_canonical", lambda mode, data: data)
            mp.setattr(m._guards, "verdicts", {})
            mp.setattr(m._classes, "canonical", tuple({} for _ in range(5)))
            each = m._filter(base, -1)
        assert np.array_equal(grouped, each), m._text


def test_tokens_that_need_the_chart_read_as_feeding_them(llama3: tuple[Any, corral.Vocabulary]) -> None:
    """A token whose verdict needs the chart (it opens a container whose check matters, or
    closes an object opened by several rules) is read asking the chart only at its brackets, with
    the answers kept per (signature, bytes so far) (``_charted_verdict``); at every step of real
    documents on Llama-3, every such token the grammar allows must get the verdict of feeding it
    whole (``_feed``: the chart stepped over every byte), read afresh and from the kept answers."""
    from corral.runtime import guards
    from tests.conftest import encode
    tok, vocab = llama3
    five = {k: {"type": "integer"} for k in "abcde"}
    rows = {"type": "array", "uniqueItems": True,  # "{}" opens a checked object: a required key missing
            "items": {"type": "object", "properties": five, "required": ["a"]}}
    either = {"type": "array", "items": {"anyOf": [  # "}" ends one of two rules: the chart says which
        {"type": "object", "properties": five, "required": ["a"]},
        {"type": "object", "properties": {k: {"type": "integer"} for k in "abcdf"}, "required": ["b"]}]}}
    cases = {"type": "object", "properties": {k: {"type": "object", "properties": {"x": {"type": "integer"}},
                                                   "required": ["x"]} for k in "abcde"},
             "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}
    docs = [(rows, '[{"a": 1}, {"b": 2, "a": 1}, {"a": 2, "c": 3, "e": 4, "d": 5, "b": 6}]'),
            (either, '[{"a": 1, "c": 2, "d": 3, "e": 4, "b": 5}, {"b": 1}, {"f": 2, "b": 3}]'),
            (cases, '{"c": {"x": 1}, "b": {"x": 2}, "d": {"x": 3}, "e": {"x": 4}}')]
    seen = {True: 0, False: 0}
    for schema, text in docs:
        g = corral.compile_json_schema(schema, vocab)
        m = g.matcher()
        assert isinstance(m, UniqueCFGMatcher)
        kept: dict[Any, Any] = {}
        for t in encode(tok, text):
            s = m._sets[-1]
            assert s is not None
            base = m._store.mask(s)  # (signs s: the answers are kept by signature)
            for u in np.flatnonzero(np.unpackbits(base.view(np.uint8), bitorder="little")).tolist():
                data = vocab.token_bytes[u] if u < len(vocab.token_bytes) else None
                if not data:
                    continue
                try:
                    guards.advance(m._states[-1], data, m._text)
                    continue
                except guards._NeedChart:
                    pass
                want = m._feed(data) is not None
                m._guards.charted = {}
                assert m._charted_verdict(data) == want, (text, m._text, data)
                m._guards.charted = kept  # the answers kept over every token and step so far
                assert m._charted_verdict(data) == want, (text, m._text, data)
                seen[want] += 1
            assert m.accept_token(t)
        assert m.is_accepting()
    assert seen[True] >= 50 and seen[False] >= 50, seen


def test_plain_sets_judged_at_once_equal_judging_each_token(llama3: tuple[object, corral.Vocabulary]) -> None:
    """A mask miss judges the simplest tokens as sets (``_Classes.rule_sets`` in ``_judge_words``: plain tokens inside a
    string, whitespace and opening quotes between values, each against the pieces of keys or
    values not written yet); every verdict must equal the per-token rule's on every Llama-3 token
    (an empty token allowed, as the reader allows it), and ``None`` (read it) must be left out."""
    import json

    from corral.runtime.guards import (_FREE_OPEN, _FREE_WHOLE, _PLAIN_ANY, _before_key, _Classes, _closed_key,
                                       _judge_words, _open_key, _pieces, _plain_in, _PlainSet)
    from corral.compiler.automaton import frozen
    vocab = llama3[1]
    c = _Classes(vocab)
    keys = ["alpha", "alpine", "beta", 'q"x', "q\\y", "a b", "name", "é", " id", "", "id", "-", "},"]
    pool = tuple(sorted((json.dumps(k).encode(), k) for k in keys))
    written = frozenset({"beta", "a b", "id", "-", "},", ""})
    sets = [_PLAIN_ANY, _FREE_OPEN, _FREE_WHOLE, _PlainSet(_open_key, None, written), _PlainSet(_open_key, None, frozenset()),
            _PlainSet(_closed_key, _pieces(pool, b'"', written), written),
            _PlainSet(_before_key, _pieces(pool, b'"', written)), _PlainSet(_before_key, frozenset()),
            _PlainSet(_plain_in, _pieces(pool, b'"al', written)), _PlainSet(_plain_in, _pieces(pool, b'"', written)),
            _PlainSet(_plain_in, frozenset())]
    def ids(bits: np.ndarray) -> set[int]:
        return set(np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little")).tolist())

    for plain in sets:
        words = c.everything.shape[0]
        judged, bad = np.zeros(words, np.uint32), np.zeros(words, np.uint32)
        to_read = _judge_words(frozen(c.everything), c.everything, judged, bad, *c.rule_sets(plain, words))
        ok_ids, bad_ids = ids(judged & ~bad), ids(bad)
        assert ids(judged) | set(to_read.tolist()) == set(range(words * 32)) and not ids(judged) & set(to_read.tolist())
        for t, data in enumerate(vocab.token_bytes):
            want = plain(data) if data else True
            got = True if t in ok_ids else False if t in bad_ids else None
            assert got == want, (plain.rule.__name__, t, data)
        assert len(ok_ids) > 100  # not a vacuous pass


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_verdict_kernels_equal_their_reading_in_numpy(n: int, seed: int, n_out: int) -> None:
    """``_judge_words`` and ``_refusals`` (the filter's two passes over the packed masks) against
    what their docstrings say, written with numpy: judged and refused bits, the ids left to
    read, and the words to change with the bits to keep (ids refused on the chart's word too)."""
    from corral.compiler.automaton import frozen
    from corral.runtime.guards import _judge_words, _refusals

    rng = np.random.default_rng(seed)

    def words() -> np.ndarray:
        w = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        return w & rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)  # sparser

    base, union, judged, bad, allowed, checked, hits = (words() for _ in range(7))
    bad &= judged
    j0, b0 = judged.copy(), bad.copy()
    to_read = _judge_words(frozen(base), union, judged, bad, allowed, checked, hits)
    todo = base & union & ~j0
    ok = todo & (allowed | (checked & hits))
    no = todo & checked & ~hits
    assert np.array_equal(judged, j0 | ok | no) and np.array_equal(bad, b0 | no)
    left = todo & ~(ok | no)
    assert to_read.tolist() == [w * 32 + b for w in range(n) for b in range(32) if left[w] >> b & 1]

    ids = rng.permutation(to_read)
    cut = len(ids) // 2
    outs = rng.integers(0, 32 * n, n_out)
    words_, keep = _refusals(frozen(base), union, judged, bad, ids[:cut].astype(np.int64),
                             ids[cut:].astype(np.int64), outs.astype(np.int64))
    for t in ids[cut:]:
        assert bad[t >> 5] >> (t & 31) & 1
    extra = np.zeros(n, np.uint32)
    for t in outs.tolist():
        extra[t >> 5] |= np.uint32(1 << (t & 31))
    refused = (base & union & bad) | extra
    assert words_.tolist() == np.flatnonzero(refused).tolist()
    assert np.array_equal(keep, ~refused[words_])
