"""Random JSON Schemas (hypothesis) against the ``jsonschema`` package as oracle.

Each example is a small draft 2020-12 schema (nesting depth at most 3) drawn from a menu of
keywords, and a handful of instances for it. The schema is compiled with
``compile_json_schema(schema, vocab, whitespace="compact", property_order="any")``; each instance is
written with ``json.dumps(v, separators=(",", ":"))`` and fed at once to a matcher (the byte-level
recognizer plus the run-time checks, ``uniqueItems`` among them, which is generated too; as
``tests/json_schema/conformance.py`` does), and it must accept exactly the instances
``Draft202012Validator`` finds valid. A schema corral cannot enforce exactly
(``UnsupportedSchemaError``) is passed over; one it says "accepts no value" must have no valid
instance.

Schemas are drawn top-down; each place has a flavour (any, object, array or scalar) that biases
its keywords towards what applies to the instance there, so that object keywords, ``allOf``/
``anyOf``/``oneOf``/``not``/``if`` branches and ``unevaluatedProperties`` often meet on one object
(and likewise for arrays), which is where annotation bugs live.

The instances are biased towards valid ones: besides random small JSON values they come from the
schema's own ``const``/``enum`` values (also with object keys reordered) and from a generator that
follows the schema's structure (``properties``, ``prefixItems``, ``items``, the branches of
``allOf``/``anyOf``/``oneOf``, ``$ref``), picking scalars that ``jsonschema`` says are valid at that
place.

Documented departures (``docs/json_schema.md``) are kept out of the generators rather than
special-cased: no number is written with an exponent (the floats used are exact binary fractions
that ``json.dumps`` writes plainly), no object repeats a key, and ``format`` is not generated.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import corral
from tests.oracles import grammar_accepts, schema_valid, schema_validator

# CORRAL_PROPERTY_SCALE=10 multiplies the example budgets (a longer soak than CI's).
SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))
# Byte-level: only the recognizer is used, so any vocabulary would do; a small one compiles fast.
VOCAB = corral.Vocabulary([bytes([b]) for b in range(128)] + [None], eos_token_ids=[128])
OPTIONS: dict[str, Any] = {"whitespace": "compact", "property_order": "any"}

MAX_DEPTH = 3  # the root is depth 0; below depth 3 only boolean schemas
TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
KEYS = ["a", "b", "c", "d"]  # property names in schemas
INSTANCE_KEYS = KEYS + ["ab"]  # "ab" is longer than 1 and matches both key patterns "^a" and "b"
STRINGS = ["", "a", "b", "ab", "ba", "x", "xx", "1", "a1", "c"]
FLOATS = [0.5, 2.5, -1.25, 1.0, 0.25, 3.75]  # exact in binary; json.dumps writes no exponent
BOUNDS = [-2, -1, 0, 1, 2, 3, 5, 0.5, 1.5, 2.5]
MULTIPLES = [1, 2, 3, 0.5, 0.25, 1.5]
PATTERNS = ["^a", "b$", "[0-9]", "^x+$", "a|b", "^[ab]*$", "^.$", "x"]
KEY_PATTERNS = ["^a", "b", "^[cd]$"]
PROPERTY_NAMES = [{"maxLength": 1}, {"pattern": "^[ab]"}]
# A recursive definition ($ref under an applicator, so every instance is finite to validate).
RECURSIVE_DEF = {
    "anyOf": [
        {"type": "integer"},
        {"type": "array", "prefixItems": [{"type": "string"}], "items": {"$ref": "#/$defs/r"}, "maxItems": 3},
    ]
}

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 12), st.sampled_from(FLOATS), st.sampled_from(STRINGS)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(INSTANCE_KEYS), inner, max_size=4)
    ),
    max_leaves=8,
)
SMALL_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)
    ),
    max_leaves=3,
)
SCALAR_POOL: list[Any] = [None, False, True, *range(-3, 13), *FLOATS, *STRINGS]


# -- schemas ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ctx:
    """Where a subschema is drawn: its depth, the ``$defs`` it may refer to, and its flavour.

    The flavour (``any``, ``object``, ``array`` or ``scalar``) biases the keyword groups towards
    what applies to the instance at that place: the branches of ``allOf``/``anyOf``/``oneOf``,
    ``not``, ``if``/``then``/``else`` and ``dependentSchemas`` see the same instance as their
    parent, so they keep its flavour, and keywords meeting on one object or array is where
    annotations (``unevaluated*``) and dependencies get interesting.
    """

    depth: int
    refs: tuple[str, ...]
    flavor: str

    def child(self, flavor: str | None = None) -> Ctx:
        return Ctx(self.depth + 1, self.refs, self.flavor if flavor is None else flavor)


def _sub(draw: st.DrawFn, ctx: Ctx, flavor: str | None = None) -> Any:
    """A subschema one level down; ``flavor`` None keeps the parent's (same instance)."""
    return draw(schemas(ctx.child(flavor)))


def _type(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"type": draw(st.sampled_from(TYPES))}
    return {"type": draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True))}


def _enum(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    return {"enum": draw(st.lists(SMALL_VALUES, min_size=1, max_size=4))}


def _const(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    return {"const": draw(SMALL_VALUES)}


def _number(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kw in draw(st.lists(st.sampled_from(
            ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]),
            min_size=1, max_size=3, unique=True)):
        out[kw] = draw(st.sampled_from(MULTIPLES if kw == "multipleOf" else BOUNDS))
    if draw(st.booleans()):
        out["type"] = draw(st.sampled_from(["integer", "number"]))
    return out


def _string(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kw in draw(st.lists(st.sampled_from(["minLength", "maxLength", "pattern"]), min_size=1, unique=True)):
        out[kw] = draw(st.sampled_from(PATTERNS) if kw == "pattern" else st.integers(0, 3))
    if draw(st.booleans()):
        out["type"] = "string"
    return out


def _key_subset(draw: st.DrawFn, min_size: int = 0, max_size: int = 3) -> list[str]:
    return draw(st.lists(st.sampled_from(KEYS), min_size=min_size, max_size=max_size, unique=True))


def _object(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keywords = ["properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                "minProperties", "maxProperties", "dependentRequired", "dependentSchemas"]
    for kw in draw(st.lists(st.sampled_from(keywords), min_size=1, max_size=3, unique=True)):
        if kw == "properties":
            out[kw] = {k: _sub(draw, ctx, "any") for k in _key_subset(draw, 1)}
        elif kw == "required":
            out[kw] = _key_subset(draw)
        elif kw == "additionalProperties":
            out[kw] = draw(st.booleans()) if draw(st.booleans()) else _sub(draw, ctx, "any")
        elif kw == "patternProperties":
            pats = draw(st.lists(st.sampled_from(KEY_PATTERNS), min_size=1, max_size=2, unique=True))
            out[kw] = {p: _sub(draw, ctx, "any") for p in pats}
        elif kw == "propertyNames":
            out[kw] = draw(st.sampled_from(PROPERTY_NAMES))
        elif kw in ("minProperties", "maxProperties"):
            out[kw] = draw(st.integers(0, 3))
        elif kw == "dependentRequired":
            out[kw] = {k: _key_subset(draw, 1) for k in _key_subset(draw, 1, 2)}
        else:
            out[kw] = {k: _sub(draw, ctx, "object") for k in _key_subset(draw, 1, 2)}
    if draw(st.booleans()):
        out["type"] = "object"
    return out


def _array(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keywords = ["prefixItems", "items", "contains", "minItems", "maxItems", "uniqueItems"]
    for kw in draw(st.lists(st.sampled_from(keywords), min_size=1, max_size=3, unique=True)):
        if kw == "uniqueItems":
            out[kw] = draw(st.booleans())
        elif kw == "prefixItems":
            out[kw] = [_sub(draw, ctx, "any") for _ in range(draw(st.integers(1, 3)))]
        elif kw == "items":
            out[kw] = _sub(draw, ctx, "any")
        elif kw == "contains":
            out[kw] = _sub(draw, ctx, "any")
            for bound in ("minContains", "maxContains"):
                if draw(st.booleans()):
                    out[bound] = draw(st.integers(0, 2))
        else:
            out[kw] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        out["type"] = "array"
    return out


def _combinator(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    kw = draw(st.sampled_from(["allOf", "anyOf", "oneOf"]))
    return {kw: [_sub(draw, ctx) for _ in range(draw(st.integers(2, 3)))]}


def _not(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    return {"not": _sub(draw, ctx)}


def _conditional(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    out = {"if": _sub(draw, ctx)}
    for kw in draw(st.lists(st.sampled_from(["then", "else"]), min_size=1, unique=True)):
        out[kw] = _sub(draw, ctx)
    return out


def _unevaluated(draw: st.DrawFn, ctx: Ctx) -> dict[str, Any]:
    kws = {"object": ["unevaluatedProperties"], "array": ["unevaluatedItems"]}.get(
        ctx.flavor, ["unevaluatedProperties", "unevaluatedItems"])
    return {kw: False if draw(st.booleans()) else _sub(draw, ctx, "any")
            for kw in draw(st.lists(st.sampled_from(kws), min_size=1, unique=True))}


Group = Callable[[st.DrawFn, Ctx], dict[str, Any]]
LEAF_GROUPS: dict[str, list[Group]] = {
    "any": [_type, _enum, _const, _number, _string],
    "object": [_object, _type, _const, _enum],  # _object at a leaf: its subschemas are booleans
    "array": [_array, _type, _const, _enum],
    "scalar": [_type, _enum, _const, _number, _string],
}
APPLICATORS: list[Group] = [_combinator, _combinator, _not, _conditional]
# Groups with subschemas come more than once: they are what the test is mostly about.
INNER_GROUPS: dict[str, list[Group]] = {
    "any": [_type, _enum, _const, _number, _string, _object, _object, _array, _array, _unevaluated, *APPLICATORS],
    "object": [_object, _object, _object, _type, _const, _enum, _unevaluated, _unevaluated, *APPLICATORS],
    "array": [_array, _array, _array, _type, _const, _enum, _unevaluated, _unevaluated, *APPLICATORS],
    "scalar": [_type, _enum, _const, _number, _number, _string, _string, *APPLICATORS],
}


@st.composite
def schemas(draw: st.DrawFn, ctx: Ctx) -> Any:
    """A schema: a boolean, a ``$ref`` to one of ``ctx.refs``, or 1-3 keyword groups merged."""
    # hypothesis favours (and shrinks towards) small choices: 0 is the common case, a keyword schema
    pick = draw(st.integers(0, 23))
    if pick == 21 and ctx.refs:
        return {"$ref": f"#/$defs/{draw(st.sampled_from(ctx.refs))}"}
    if pick == 22 or (pick < 21 and ctx.depth > MAX_DEPTH):
        return True
    if pick == 23:
        return False
    groups = (INNER_GROUPS if ctx.depth < MAX_DEPTH else LEAF_GROUPS)[ctx.flavor]
    # mostly one group at depth: every group added is another chance that nothing is valid
    n = draw(st.sampled_from([1, 2, 2, 3] if ctx.depth == 0 else [1, 1, 1, 2]))
    out: dict[str, Any] = {}
    for group in draw(st.lists(st.sampled_from(groups), min_size=n, max_size=n)):
        out.update(group(draw, ctx))
    return out


@st.composite
def root_schemas(draw: st.DrawFn) -> Any:
    """A root schema, sometimes with ``$defs`` (``x``: a plain subschema, ``r``: recursive)."""
    defs: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 3:
        defs["x"] = draw(schemas(Ctx(2, (), "any")))
    if draw(st.integers(0, 7)) == 7:
        defs["r"] = RECURSIVE_DEF
    flavor = draw(st.sampled_from(["any", "object", "array", "scalar"]))
    root = draw(schemas(Ctx(0, tuple(defs), flavor)))
    if defs:
        if not isinstance(root, dict):
            root = {"allOf": [root]}
        root = {"$defs": defs, **root}
    return root


# -- instances ----------------------------------------------------------------------------------------
def _constants(schema: Any, out: list[Any]) -> list[Any]:
    """Every ``const`` and ``enum`` value anywhere in ``schema``."""
    if isinstance(schema, dict):
        for kw, v in schema.items():
            if kw == "const":
                out.append(v)
            elif kw == "enum":
                out.extend(v)
            else:
                _constants(v, out)
    elif isinstance(schema, list):
        for v in schema:
            _constants(v, out)
    return out


@st.composite
def reordered(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with the keys of every object in a drawn order (equal as JSON)."""
    if isinstance(value, dict):
        keys = draw(st.permutations(list(value)))
        return {k: draw(reordered(value[k])) for k in keys}
    if isinstance(value, list):
        return [draw(reordered(v)) for v in value]
    return value


def _resolve(root: Any, ref: str) -> Any:
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _guess_types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if t is not None:
        return [t] if isinstance(t, str) else list(t) or TYPES
    if any(k in schema for k in ("properties", "required", "patternProperties", "additionalProperties",
                                 "dependentSchemas", "dependentRequired", "unevaluatedProperties")):
        return ["object"]
    if any(k in schema for k in ("prefixItems", "items", "contains", "minItems", "unevaluatedItems")):
        return ["array"]
    return TYPES


@st.composite
def guided(draw: st.DrawFn, schema: Any, validator: Any, depth: int = 0) -> Any:
    """A value shaped after ``schema`` (often valid; ``jsonschema`` decides in the test)."""
    if depth > 4 or not isinstance(schema, dict):
        return draw(JSON_VALUES)
    if "$ref" in schema and draw(st.booleans()):
        return draw(guided(_resolve(validator.schema, schema["$ref"]), validator, depth + 1))
    if "const" in schema and draw(st.integers(0, 3)):
        return draw(reordered(schema["const"]))
    if schema.get("enum") and draw(st.integers(0, 3)):
        return draw(reordered(draw(st.sampled_from(schema["enum"]))))
    branches = [b for kw in ("allOf", "anyOf", "oneOf") for b in schema.get(kw, [])]
    branches += [schema[kw] for kw in ("then", "else") if kw in schema]
    if draw(st.booleans()) and branches:
        return draw(guided(draw(st.sampled_from(branches)), validator, depth + 1))
    kind = draw(st.sampled_from(_guess_types(schema)))
    if kind == "object":
        props = schema.get("properties", {})
        keys = set(schema.get("required", []) if isinstance(schema.get("required"), list) else [])
        keys |= set(draw(st.lists(st.sampled_from(INSTANCE_KEYS), max_size=3)))
        keys |= {k for k in props if draw(st.booleans())}
        out = {}
        for k in draw(st.permutations(sorted(keys))):
            sub = props.get(k)
            if sub is None:
                sub = next((s for p, s in schema.get("patternProperties", {}).items() if re.search(p, k)),
                           schema.get("additionalProperties", True))
            out[k] = draw(guided(sub, validator, depth + 1))
        return out
    if kind == "array":
        prefix = schema.get("prefixItems", [])
        lo = schema.get("minItems", 0)
        n = draw(st.integers(lo, max(lo, min(schema.get("maxItems", 4), 4))))
        out_list = [draw(guided(prefix[i] if i < len(prefix) else schema.get("items", True), validator, depth + 1))
                    for i in range(n)]
        if draw(st.booleans()) and "contains" in schema and out_list:
            i = draw(st.integers(0, len(out_list) - 1))
            out_list[i] = draw(guided(schema["contains"], validator, depth + 1))
        return out_list
    # A scalar: one that jsonschema finds valid here, when there is one.
    here = validator.evolve(schema=schema)
    pool = [v for v in SCALAR_POOL if here.is_valid(v)]
    return draw(st.sampled_from(pool)) if pool else draw(SCALARS)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    """A root schema and 4-10 instances for it."""
    schema = draw(root_schemas())
    validator = schema_validator(schema, formats=False)
    sources = [JSON_VALUES, guided(schema, validator), guided(schema, validator)]
    consts = _constants(schema, [])
    if consts:
        sources.append(st.sampled_from(consts).flatmap(reordered))
    instances = draw(st.lists(st.one_of(sources), min_size=4, max_size=10))
    return schema, instances


# -- the check ----------------------------------------------------------------------------------------
EMPTY = object()  # compile said the schema accepts no value
UNSUPPORTED = object()  # corral cannot enforce the schema exactly


def _compile(schema: Any) -> Any:
    """The compiled grammar, or EMPTY or UNSUPPORTED."""
    try:
        return corral.compile_json_schema(schema, VOCAB, **OPTIONS)
    except corral.UnsupportedSchemaError:
        return UNSUPPORTED
    except corral.GrammarError as e:
        if "accepts no value" in str(e):
            return EMPTY
        raise


def _event(name: str) -> None:
    """Count ``name`` in hypothesis's statistics (``--hypothesis-show-statistics``)."""
    if currently_in_test_context():
        event(name)


def check(schema: Any, instances: list[Any]) -> bool:
    """Assert corral's verdict equals jsonschema's on every instance; False if the schema is unsupported."""
    grammar = _compile(schema)
    if grammar is UNSUPPORTED:
        _event("unsupported")
        return False
    _event("accepts no value" if grammar is EMPTY else "compiled")
    validator = schema_validator(schema, formats=False)
    for instance in instances:
        text = json.dumps(instance, separators=(",", ":"))
        valid = validator.is_valid(instance)
        accepted = grammar is not EMPTY and grammar_accepts(grammar, text)
        _event("valid instance" if valid else "invalid instance")
        assert accepted == valid, (
            f"corral {'accepts' if accepted else 'rejects'} an instance jsonschema finds "
            f"{'valid' if valid else 'invalid'}"
            f"{' (compile said the schema accepts no value)' if grammar is EMPTY else ''}\n"
            f"  schema:   {json.dumps(schema)}\n  instance: {text}\n"
            f"  corral: {accepted}, jsonschema: {valid}"
        )
    return True


@settings(max_examples=250 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_compiled_schema_agrees_with_jsonschema(case: tuple[Any, list[Any]]) -> None:
    schema, instances = case
    check(schema, instances)


# Hand-written cases for the keywords the random schemas reach least often: (schema, instance, valid).
EXPLICIT: list[tuple[Any, Any, bool]] = [
    ({"not": {"type": "string"}}, "a", False),
    ({"type": "integer", "not": {"const": 2}}, 3, True),
    ({"type": "integer", "not": {"const": 2}}, 2, False),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, 3, False),  # both branches
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, 2.5, True),
    ({"oneOf": [{"pattern": "^a"}, {"pattern": "b$"}, {"maxLength": 1}]}, "xb", True),
    ({"oneOf": [{"pattern": "^a"}, {"pattern": "b$"}, {"maxLength": 1}]}, "a", False),
    ({"if": {"type": "integer"}, "then": {"minimum": 3}, "else": {"type": "string"}}, 2, False),
    ({"if": {"type": "integer"}, "then": {"minimum": 3}, "else": {"type": "string"}}, "a", True),
    ({"if": {"type": "integer"}, "then": {"minimum": 3}, "else": {"type": "string"}}, 2.5, False),
    ({"dependentSchemas": {"a": {"required": ["b"]}}}, {"a": 1}, False),
    ({"dependentSchemas": {"a": {"required": ["b"]}}}, {"b": 1}, True),
    ({"properties": {"a": {"type": "integer"}}, "dependentSchemas": {"a": {"properties": {"b": {"type": "string"}}}}},
     {"b": 1, "a": 1}, False),
    ({"allOf": [{"properties": {"a": True}}], "unevaluatedProperties": False}, {"a": 1}, True),
    ({"allOf": [{"properties": {"a": True}}], "unevaluatedProperties": False}, {"a": 1, "b": 2}, False),
    # only the second branch holds, so "a" is not evaluated
    ({"anyOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": True}, "required": ["b"]}], "unevaluatedProperties": False},
     {"a": "x", "b": 1}, False),
    ({"anyOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": True}, "required": ["b"]}], "unevaluatedProperties": False},
     {"b": 1, "a": 1}, True),
    ({"properties": {"a": True}, "unevaluatedProperties": {"type": "integer"}}, {"a": "x", "b": 1}, True),
    ({"prefixItems": [{"type": "string"}], "unevaluatedItems": False}, ["a", 1], False),
    ({"allOf": [{"prefixItems": [True, True]}], "unevaluatedItems": {"type": "integer"}}, ["a", "b", 1], True),
    ({"allOf": [{"prefixItems": [True, True]}], "unevaluatedItems": {"type": "integer"}}, ["a", "b", "c"], False),
    ({"contains": {"type": "string"}, "unevaluatedItems": False}, ["a", "b"], True),
    # a failed "if" evaluates nothing, and its "then" does not apply
    ({"if": {"required": ["b"]}, "then": {"additionalProperties": True}, "unevaluatedProperties": False},
     {"a": 1}, False),
    ({"if": {"prefixItems": [{"type": "string"}]}, "then": {"items": True}, "unevaluatedItems": False}, [1], False),
    ({"if": {"prefixItems": [{"type": "string"}]}, "then": {"items": True}, "unevaluatedItems": False}, ["a", 1], True),
    ({"contains": {"type": "integer"}, "maxContains": 2}, [1, 2, 3], False),
    ({"contains": {"type": "integer"}, "maxContains": 2}, [1, "a", 2], True),
    ({"contains": {"const": 1}, "minContains": 0, "maxContains": 1}, [], True),
    ({"patternProperties": {"^a": {"type": "integer"}, "b": {"minimum": 2}}, "additionalProperties": False},
     {"ab": 1}, False),
    ({"patternProperties": {"^a": {"type": "integer"}, "b": {"minimum": 2}}, "additionalProperties": False},
     {"b": "x", "ab": 2}, True),
    ({"properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a", "b"]},
     {"b": "x", "a": 1}, True),  # any property order
    ({"const": {"c": 3, "d": "a"}}, {"d": "a", "c": 3}, True),  # const objects too
    # the complement of a small object constraint (found by the property test)
    ({"not": {"oneOf": [{"if": {"enum": [{"a": 2.5}]}, "else": {"enum": [{"c": ""}]}}, True]}}, {"c": ""}, True),
]


@pytest.mark.parametrize(("schema", "instance", "valid"), EXPLICIT,
                         ids=[f"{json.dumps(s)}-{json.dumps(i)}" for s, i, _ in EXPLICIT])
def test_explicit_case_agrees_with_jsonschema(schema: Any, instance: Any, valid: bool) -> None:
    assert schema_valid(schema, instance, formats=False) == valid  # the table itself is right
    assert check(schema, [instance]), "corral refused the schema (UnsupportedSchemaError)"
