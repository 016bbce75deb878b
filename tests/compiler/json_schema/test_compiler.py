"""The JSON Schema compiler: verdicts against ``jsonschema`` on hand-picked schemas and instances,
layouts (json.dumps variants), errors and lenient mode."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import corral
from corral import UnsupportedSchemaError, compile_json_schema
from tests.oracles import grammar_accepts, schema_validator

VOCAB = corral.Vocabulary([bytes([b]) for b in range(128)] + [b'{"', b'":', b", ", b'"}', None], eos_token_ids=[132])

CASES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]},
     [{"a": 1}, {"a": 1, "b": "x"}, {"b": "x"}, {"a": "1"}, {"a": 1, "c": None}, {"a": 1, "b": "x", "c": [1, {}]}, [], 1]),
    ({"type": "object", "properties": {"a": {"type": "boolean"}}, "additionalProperties": False},
     [{}, {"a": True}, {"a": 1}, {"b": 1}, {"a": False, "b": 1}]),
    ({"type": "object", "additionalProperties": {"type": "number"}}, [{}, {"x": 1.5, "y": -2}, {"x": "1"}]),
    ({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False},
     [{"x-a": 1}, {"x-a": 1.5}, {"y": 1}, {}]),
    ({"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "minProperties": 2, "maxProperties": 2},
     [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}, {"b": 1, "z": 2}]),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}, [[], [1], [1, 2, 3], [1, 2, 3, 4], ["a"]]),
    ({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
     [[], ["a"], ["a", 1], ["a", 1, 2], [1, "a"]]),
    ({"enum": [1, "a", None, {"k": [1, 2]}, [True]]}, [1, 1.0, "a", None, {"k": [1, 2]}, [True], 2, "b", {"k": [2, 1]}]),
    ({"const": {"a": 1}}, [{"a": 1}, {"a": 2}, {}]),
    ({"type": ["string", "null"]}, ["x", None, 1]),
    ({"anyOf": [{"type": "integer", "minimum": 10}, {"type": "string"}]}, [10, 9, "s", None]),
    ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, [1, "x", None]),
    ({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
     [{"a": 1, "b": "x"}, {"a": 1}, {"b": "x"}]),
    ({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}},
                         "required": ["v"], "additionalProperties": False}}, "$ref": "#/$defs/node"},
     [{"v": 1}, {"v": 1, "next": {"v": 2, "next": {"v": 3}}}, {"v": 1, "next": {}}, {"next": {"v": 1}}]),
    ({"type": "integer", "minimum": -5, "exclusiveMaximum": 5, "multipleOf": 2}, [-4, 0, 4, 5, 6, 1, -6]),
    ({"type": "number", "minimum": 0.5, "maximum": 2.25}, [0.5, 2.25, 1, 0.49, 2.26]),
    (True, [1, "x", None, {"a": [1]}]),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", "a", "abcd", "é€"]),
    ({"type": "string", "pattern": "^[a-z]+\\d$"}, ["abc1", "abc", "1"]),
    ({"type": "string", "format": "date"}, ["2024-02-29", "2023-02-29", "2024-13-01", "x"]),
    ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": [{"type": "integer"}],
      "additionalItems": {"type": "string"}}, [[1], [1, "a"], [1, 2], ["a"]]),
    # a pattern allowing anything beside additionalProperties allowing anything splits no keys; with
    # another pattern, a count, unevaluatedProperties or additionalProperties false it still counts
    ({"type": "object", "patternProperties": {"^a": {}, "b": {"type": "integer"}}, "minProperties": 2},
     [{"a": "x"}, {"ab": "x", "c": 1}, {"ab": 1, "z": 2}, {"b": "s", "a": 1}, {"xb": 1, "c": []}, {"a": 1, "c": 2}]),
    ({"patternProperties": {"^a": {"description": "any"}}, "unevaluatedProperties": False},
     [{}, {"a1": [1]}, {"b": 1}, {"a": 1, "b": 2}]),
    ({"patternProperties": {"^a": True}, "additionalProperties": False}, [{"a": 1}, {"b": 1}, {"ab": {}, "a": None}]),
    ({"allOf": [{"patternProperties": {"^a": {}}}, {"properties": {"b": {}}}], "unevaluatedProperties": False},
     [{"a": 1, "b": 2}, {"c": 1}]),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_verdicts_equal_jsonschema(index: int) -> None:
    schema, instances = CASES[index]
    g = compile_json_schema(schema, VOCAB)
    validator = schema_validator(schema)
    for inst in instances:
        want = validator.is_valid(inst)
        for text in (json.dumps(inst), json.dumps(inst, indent=2), json.dumps(inst, separators=(",", ":")),
                     json.dumps(inst, ensure_ascii=False)):
            assert grammar_accepts(g, text) == want, (schema, text)


def test_compact_mode_refuses_whitespace() -> None:
    g = compile_json_schema({"type": "object"}, VOCAB, whitespace="compact")
    assert grammar_accepts(g, '{"a":1}') and not grammar_accepts(g, '{"a": 1}')


def test_whitespace_runs_are_bounded() -> None:
    g = compile_json_schema({"type": "array"}, VOCAB, whitespace="flexible", max_whitespace=4)
    assert grammar_accepts(g, "[    1]") and not grammar_accepts(g, "[     1]")
    assert grammar_accepts(g, "[1]\n\n  ") and not grammar_accepts(g, "[1]     ")  # the wide mode: after the value too


PRETTY_GAPS = ["", " ", "\n", "\r\n", "\n  ", "\n\t\t", "\r\n    "]
NOT_PRETTY_GAPS = ["  ", "\t", "\r", "\n\n", " \n", "\n \t", "\n     "]


@pytest.mark.parametrize("gap", PRETTY_GAPS + NOT_PRETTY_GAPS)
def test_pretty_whitespace_is_what_a_pretty_printer_writes(gap: str) -> None:
    g = compile_json_schema({"type": "object", "additionalProperties": {"type": "array"}}, VOCAB, max_whitespace=4)
    text = "{" + gap + '"a"' + gap + ":" + gap + "[" + gap + "1" + gap + "," + gap + "2" + gap + "]" + gap + "}"
    assert grammar_accepts(g, text) == (gap in PRETTY_GAPS), repr(text)


@pytest.mark.parametrize("after", [" ", "\n", "\r\n", "\t"])
def test_pretty_whitespace_lets_nothing_follow_the_value(after: str) -> None:
    for schema, value in [({"type": "object"}, "{}"), ({"type": "integer"}, "12"), ({"type": "string"}, '"a"')]:
        g = compile_json_schema(schema, VOCAB)
        assert grammar_accepts(g, value) and not grammar_accepts(g, value + after), (schema, after)
    # the token-level view: once the value is complete, EOS is the only allowed token
    m = compile_json_schema({"type": "object"}, VOCAB).matcher()
    assert m.accept_bytes(b"{ }")
    allowed = np.flatnonzero(corral.bitmask_to_bool(m.next_token_mask(), VOCAB.size))
    assert allowed.tolist() == sorted(VOCAB.eos_token_ids)


def test_pretty_whitespace_fits_json_dumps_layouts() -> None:
    value = {"a": [1, {"b": None, "c": "x"}], "d": {}}
    g = compile_json_schema({"type": "object"}, VOCAB)
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":")), json.dumps(value, indent=2),
                 json.dumps(value, indent=4), json.dumps(value, indent="\t")):
        assert grammar_accepts(g, text), text
    assert not grammar_accepts(g, json.dumps(value, indent=40))  # deeper than max_whitespace=64 columns


def test_error_when_whitespace_mode_is_unknown() -> None:
    with pytest.raises(corral.CorralError) as err:
        compile_json_schema({"type": "object"}, VOCAB, whitespace="loose")
    assert str(err.value) == ("unknown whitespace mode 'loose': expected one of 'pretty', 'flexible', "
                              "'compact', 'indent'")


@pytest.mark.parametrize("schema,where", [
    ({"enum": ["\ud800", "x"]}, "/: enum: the value"),
    ({"properties": {"a": {"const": ["ok", "a\udc00"]}}}, "/properties/a: const: the value"),
    ({"const": {"\udbff": 1}}, "/: const: the value"),
    ({"properties": {"\ud800": {}}}, "/: properties: the property name"),
    ({"required": ["x\ud800"]}, "/: required: the property name"),
    ({"propertyNames": {"enum": ["\ud801"]}}, "/propertyNames: enum: the value"),
])
def test_a_lone_surrogate_in_a_value_or_key_is_named_where_it_is(schema: dict, where: str) -> None:
    # a Python string from "\ud800" in JSON: no UTF-8 spelling, and corral writes no string
    # holding one; it was a UnicodeEncodeError from deep inside the compiler
    with pytest.raises(UnsupportedSchemaError, match="lone surrogate") as err:
        compile_json_schema(schema, VOCAB)
    assert where in str(err.value)
    g = compile_json_schema({"anyOf": [schema, {"type": "integer"}]}, VOCAB, lenient=True)
    assert any("lone surrogate" in str(w) for w in g.warnings)


def test_unsupported_keywords_are_listed_with_pointers() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "format": "idn-hostname"},
                                               "b": {"$ref": "https://example.com/b.json"}}}
    with pytest.raises(UnsupportedSchemaError) as err:
        compile_json_schema(schema, VOCAB)
    assert str(err.value) == (
        "the schema uses what corral cannot enforce exactly:\n"
        "  /properties/a: format: format 'idn-hostname' is not supported\n"
        "  /properties/b/$ref: $ref: cannot resolve 'https://example.com/b.json' (remote references are not "
        "fetched; pass the document in registry=)"
    )
    g = compile_json_schema(schema, VOCAB, lenient=True)
    assert any("format 'idn-hostname'" in str(w) for w in g.warnings)
    assert grammar_accepts(g, '{"a": "(["}')  # relaxed: not a valid regex, accepted all the same


def test_pydantic_model_and_json_text_inputs() -> None:
    from pydantic import BaseModel

    class Point(BaseModel):
        x: int
        y: int = 0

    g = compile_json_schema(Point, VOCAB)
    assert grammar_accepts(g, '{"x": 1, "y": 2}') and not grammar_accepts(g, '{"y": 2}')
    g2 = compile_json_schema('{"type": "integer", "maximum": 12345678901234567890.5}', VOCAB)
    assert grammar_accepts(g2, "12345678901234567890")


def test_malformed_schemas_are_grammar_errors() -> None:
    with pytest.raises(corral.GrammarError, match="/properties/a/type: unknown type 'strin'"):
        compile_json_schema({"properties": {"a": {"type": "strin"}}}, VOCAB)
    with pytest.raises(corral.GrammarError, match="not valid JSON"):
        compile_json_schema("{", VOCAB)
    with pytest.raises(corral.GrammarError, match="accepts no value"):
        compile_json_schema(False, VOCAB)
    with pytest.raises(corral.GrammarError, match="/patternProperties: "):  # a pattern allowing anything
        compile_json_schema({"patternProperties": {"(": {}}}, VOCAB)


def test_a_malformed_schema_raises_one_error_carrying_every_problem() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "strin"}, "b": {"type": "string", "format": "idn-hostname"},
                                               "c": {"$ref": "https://example.com/c.json"}}}
    with pytest.raises(corral.GrammarError) as err:
        compile_json_schema(schema, VOCAB)
    assert str(err.value) == (
        "/properties/a/type: unknown type 'strin'\n"
        "and 2 more problem(s):\n"
        "/properties/b: format: format 'idn-hostname' is not supported\n"
        "/properties/c/$ref: $ref: cannot resolve 'https://example.com/c.json' (remote references are not "
        "fetched; pass the document in registry=)"
    )
    first, *others = err.value.diagnostics
    assert first is err.value and first.message == "/properties/a/type: unknown type 'strin'"
    assert [d.message for d in others] == [str(err.value).split("\n")[i] for i in (2, 3)]
    with pytest.raises(corral.GrammarError) as alone:  # one problem: the message it always had
        compile_json_schema({"properties": {"a": {"type": "strin"}}}, VOCAB)
    assert str(alone.value) == "/properties/a/type: unknown type 'strin'" and len(alone.value.diagnostics) == 1


def test_warnings_are_diagnostics_worded_as_before() -> None:
    from corral.compiler.diagnostics import Diagnostic

    g = compile_json_schema({"type": "array", "foo": 1, "prefixItems": [{"type": "string", "format": "idn-hostname"}],
                             "items": {"type": "string", "format": "zzz"}}, VOCAB, lenient=True)
    assert all(isinstance(w, Diagnostic) for w in g.warnings)
    assert sorted((w.location, w.keyword, w.severity, w.code) for w in g.warnings) == [
        ("", "foo", "warning", "unknown-keyword"), ("/items", "format", "warning", "unknown-format"),
        ("/prefixItems/0", "format", "warning", "relaxed"),
    ]
    assert sorted(map(str, g.warnings)) == [
        "/: unknown keyword 'foo' ignored (as the spec says)",
        "/items: format 'zzz' is not defined by JSON Schema: ignored, as the specification says for unknown formats",
        "/prefixItems/0: format: format 'idn-hostname' is not supported (relaxed: lenient=True)",
    ]


def test_unique_items_compiles_exactly_without_warnings() -> None:
    # uniqueItems used to be refused (not context-free); the matcher now enforces it at run time
    g = compile_json_schema({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, VOCAB)
    assert list(g.warnings) == []
    assert grammar_accepts(g, '["a", "b"]') and not grammar_accepts(g, '["a", "a"]')


def test_oneof_is_exact_with_a_discriminator_and_with_overlapping_branches() -> None:
    tool = {"oneOf": [
        {"type": "object", "properties": {"name": {"const": "a"}, "x": {"type": "integer"}}, "required": ["name"]},
        {"type": "object", "properties": {"name": {"const": "b"}, "y": {"type": "string"}}, "required": ["name"]},
    ]}
    g = compile_json_schema(tool, VOCAB)
    assert grammar_accepts(g, '{"name": "a", "x": 1}') and grammar_accepts(g, '{"name": "b", "y": "s"}')
    assert not grammar_accepts(g, '{"name": "c"}')
    untyped = {"oneOf": [{"properties": {"k": {"const": 1}}, "required": ["k"]},
                         {"properties": {"k": {"const": 2}}, "required": ["k"]}]}
    g = compile_json_schema(untyped, VOCAB)
    assert grammar_accepts(g, '{"k": 1}') and grammar_accepts(g, '{"k": 2}')
    assert not grammar_accepts(g, '"x"')  # a string satisfies both branches: not exactly one
    assert not grammar_accepts(g, '{"k": 3}') and not grammar_accepts(g, "{}")


@pytest.mark.parametrize("schema", [
    {"type": "array", "contains": {"type": "integer", "minimum": 5}},
    {"type": "array", "items": {"type": "integer"}, "contains": {"minimum": 5}, "minContains": 2, "maxItems": 4},
    {"type": "array", "contains": {"const": "x"}, "minContains": 0},
    {"$schema": "http://json-schema.org/draft-07/schema#", "contains": {"type": "string"}},
])
def test_contains_and_min_contains(schema: dict[str, Any]) -> None:
    g = compile_json_schema(schema, VOCAB)
    v = schema_validator(schema, formats=False)
    for inst in ([], [1], [5], [5, 6], [1, 5, 2, 7], [5, 5, 5, 5, 5], ["x"], [1, "x"], [5, "a", 6]):
        assert grammar_accepts(g, json.dumps(inst)) == v.is_valid(inst), (schema, inst)


def test_dependent_required_in_any_order() -> None:
    schema = {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "dependentRequired": {"c": ["a"], "a": ["b"]}}
    g = compile_json_schema(schema, VOCAB)
    v = schema_validator(schema, formats=False)
    for inst in ({}, {"a": 1}, {"a": 1, "b": 2}, {"c": 1}, {"a": 1, "b": 2, "c": 3}, {"b": 2}, {"b": 1, "c": 2}, {"x": 1, "c": 1}):
        assert grammar_accepts(g, json.dumps(inst)) == v.is_valid(inst), inst


def test_anyof_with_sibling_keywords_keeps_every_branch() -> None:
    """Regression: branch schemas built on the fly must not share a memo entry (ids reused)."""
    branches = [{"properties": {k: {"type": "integer"}}, "additionalProperties": False} for k in "hkz"]
    schema = {"type": "object", "anyOf": branches}
    g = compile_json_schema(schema, VOCAB)
    for k in "hkz":
        assert grammar_accepts(g, json.dumps({k: 1})), k
    assert not grammar_accepts(g, json.dumps({"q": 1}))


def test_draft4_integers_have_no_fraction() -> None:
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"}
    g = compile_json_schema(schema, VOCAB)
    assert grammar_accepts(g, "12345") and not grammar_accepts(g, "12345.0")
    bounded = compile_json_schema({**schema, "minimum": 0}, VOCAB)
    assert grammar_accepts(bounded, "3") and not grammar_accepts(bounded, "3.0")
    assert grammar_accepts(compile_json_schema({"type": "integer"}, VOCAB), "3.0")  # 2020-12: 3.0 is an integer


# -- the Boolean algebra: negation, exactly-one, conditionals, annotations ---------------------------
ALGEBRA_CASES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"not": {"type": "integer"}}, [1, 1.5, "a", None, [], {}]),
    ({"not": {"type": "object", "properties": {"a": {"type": "string"}}}}, [{"a": 1}, {"a": "x"}, {}, 3]),
    ({"not": {"enum": ["a", 1, {"k": [1]}]}}, ["a", "b", 1, 1.0, 2, {"k": [1]}, {"k": [2]}]),
    ({"type": "array", "not": {"contains": {"const": 1}}}, [[], [1], [2, 3], [2, 1]]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 2.5, 3, 1.5]),
    ({"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 1}, {"a": 1, "b": 2}, {}]),
    # a discriminator required by the context (told apart without a product) next to a branch that
    # overlaps the first on "A" (the pair the product must settle)
    ({"type": "object", "required": ["type"], "allOf": [{"oneOf": [
        {"type": "object", "properties": {"type": {"enum": ["A"]}, "a": {"type": "integer"}}},
        {"type": "object", "properties": {"type": {"enum": ["B"]}, "b": {"type": "string"}}},
        {"type": "object", "properties": {"type": {"enum": ["C", "A"]}}}]}]},
     [{"type": "A"}, {"type": "A", "a": 1}, {"type": "B", "b": "x"}, {"type": "B", "b": 1}, {"type": "C"}, {}, {"type": "D"}]),
    ({"oneOf": [{"type": "object", "required": ["a"]}, {"type": "object", "properties": {"a": False}}]},
     [{"a": 1}, {}, {"b": 1}, 1, "x"]),
    ({"if": {"properties": {"k": {"const": "n"}}, "required": ["k"]},
      "then": {"properties": {"v": {"type": "number"}}}, "else": {"properties": {"v": {"type": "string"}}}},
     [{"k": "n", "v": 1}, {"k": "n", "v": "x"}, {"k": "s", "v": "x"}, {"k": "s", "v": 1}, {"v": 1}]),
    ({"dependentSchemas": {"card": {"required": ["billing"]}}}, [{}, {"card": 1}, {"card": 1, "billing": 2}, {"billing": 2}]),
    ({"patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 10}}},
     [{"ab": 12}, {"ab": 5}, {"ab": 12.5}, {"a": 1}, {"xb": 3}, {"xb": 30}]),
    ({"type": "array", "contains": {"type": "string"}, "minContains": 1, "maxContains": 2}, [[], ["a"], ["a", 1, "b"], ["a", "b", "c"]]),
    ({"allOf": [{"properties": {"a": {}}}], "unevaluatedProperties": False}, [{"a": 1}, {"a": 1, "b": 2}, {}]),
    ({"anyOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {}}, "required": ["b"]}],
      "unevaluatedProperties": False}, [{"a": 1}, {"b": 1}, {"a": "x", "b": 1}, {"a": 1, "b": 1}, {"a": 1, "c": 1}]),
    ({"prefixItems": [{"type": "string"}], "contains": {"type": "integer"}, "unevaluatedItems": False},
     [["a"], ["a", 1], ["a", 1, "b"], ["a", 2, 3]]),
    ({"$defs": {"a": {"type": "object", "properties": {"n": {"$ref": "#/$defs/a"}}, "not": {"required": ["x"]}}},
      "$ref": "#/$defs/a"}, [{}, {"n": {}}, {"n": {"x": 1}}, {"x": 1}, {"n": {"n": {"x": 1}}}]),
]


@pytest.mark.parametrize("index", range(len(ALGEBRA_CASES)))
def test_algebra_verdicts_equal_jsonschema(index: int) -> None:
    schema, instances = ALGEBRA_CASES[index]
    g = compile_json_schema(schema, VOCAB, property_order="any")
    v = schema_validator(schema, formats=False)
    for inst in instances:
        assert grammar_accepts(g, json.dumps(inst)) == v.is_valid(inst), (schema, inst)


def test_negation_is_exact_for_every_spelling() -> None:
    # "\u0061" spells "a": the complement must refuse it too (exact sets, narrower writing only)
    g = compile_json_schema({"not": {"const": "a"}}, VOCAB)
    assert not grammar_accepts(g, '"a"') and not grammar_accepts(g, '"\\u0061"') and grammar_accepts(g, '"b"')
    h = compile_json_schema({"const": "a"}, VOCAB)
    assert grammar_accepts(h, '"a"') and not grammar_accepts(h, '"\\u0061"')  # written as json.dumps writes it


def test_property_order_schema_or_any() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
    ordered = compile_json_schema(schema, VOCAB, property_order="schema")
    anyway = compile_json_schema(schema, VOCAB)  # "any" is the default
    assert grammar_accepts(ordered, '{"a": 1, "b": 2}') and not grammar_accepts(ordered, '{"b": 2, "a": 1}')
    assert grammar_accepts(anyway, '{"a": 1, "b": 2}') and grammar_accepts(anyway, '{"b": 2, "a": 1}')
    assert not grammar_accepts(anyway, '{"a": 1, "a": 2, "b": 3}')  # a named property at most once
    with pytest.raises(corral.CorralError, match="property_order"):
        compile_json_schema(schema, VOCAB, property_order="random")


def test_indent_layout_is_exactly_json_dumps_indent() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}, "b": {}}}
    for indent in (2, 4):
        g = compile_json_schema(schema, VOCAB, whitespace="indent", indent=indent)
        for inst in ({"a": [1, 2], "b": {"x": [], "y": {}}}, {}, {"a": []}, {"b": [[1], {"z": None}]}):
            assert grammar_accepts(g, json.dumps(inst, indent=indent)), inst
            assert not grammar_accepts(g, json.dumps(inst, indent=indent + 1)) or inst == {}
            assert not grammar_accepts(g, json.dumps(inst)) or inst in ({}, {"a": []})


def test_registry_documents_resolve_remote_refs() -> None:
    schema = {"$ref": "https://example.com/point.json"}
    registry = {"https://example.com/point.json": {"type": "object", "properties": {"x": {"$ref": "#/$defs/n"}},
                                                   "$defs": {"n": {"type": "integer"}}}}
    g = compile_json_schema(schema, VOCAB, registry=registry)
    assert grammar_accepts(g, '{"x": 1}') and not grammar_accepts(g, '{"x": "1"}')
    with pytest.raises(UnsupportedSchemaError, match="registry="):
        compile_json_schema(schema, VOCAB)


def test_dynamic_ref_follows_the_dynamic_scope() -> None:
    # a generic list whose items the outer schema fills in through $dynamicAnchor
    schema = {
        "$id": "https://example.com/strings", "$ref": "list", "$defs": {
            "items": {"$dynamicAnchor": "item", "type": "string"},
            "list": {"$id": "list", "type": "array", "items": {"$dynamicRef": "#item"},
                     "$defs": {"default": {"$dynamicAnchor": "item"}}},
        },
    }
    g = compile_json_schema(schema, VOCAB)
    assert grammar_accepts(g, '["a", "b"]') and not grammar_accepts(g, '["a", 1]')


def test_unknown_formats_are_annotations_and_known_inexpressible_ones_errors() -> None:
    g = compile_json_schema({"type": "integer", "format": "int32"}, VOCAB)
    assert grammar_accepts(g, "5") and any("int32" in str(w) for w in g.warnings)
    with pytest.raises(UnsupportedSchemaError, match="format 'idn-hostname'"):
        compile_json_schema({"type": "string", "format": "idn-hostname"}, VOCAB)


def test_self_reference_without_descent_is_a_grammar_error() -> None:
    with pytest.raises(corral.GrammarError, match="infinite loop"):
        compile_json_schema({"$ref": "#"}, VOCAB)


def test_object_case_explosion_is_a_named_limit() -> None:
    # ten pairwise-overlapping object branches under oneOf, each negated inside the others
    branches = [{"type": "object", "properties": {f"k{i}": {"type": "integer"}}, "minProperties": i % 3} for i in range(10)]
    try:
        g = compile_json_schema({"oneOf": branches}, VOCAB, timeout=20)
    except corral.CompileLimitError as e:
        assert e.limit in ("MAX_OBJECT_TERMS", "MAX_AUTOMATON_STATES", "timeout", "max_states")
    except UnsupportedSchemaError as e:
        assert "MAX_" in str(e)
    else:  # compiled: then it must be exact
        v = schema_validator({"oneOf": branches}, formats=False)
        for inst in ({}, {"k1": 1}, {"k1": "x"}, {"k1": 1, "k2": 2}):
            assert grammar_accepts(g, json.dumps(inst)) == v.is_valid(inst), inst
