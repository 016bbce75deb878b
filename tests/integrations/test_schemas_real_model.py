"""The real SmolLM2-135M-Instruct model constrained by 20 JSON Schemas: every output validates."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import corral
from tests.oracles import schema_validator

S = {"type": "string", "maxLength": 24}
SCHEMAS: dict[str, tuple[dict[str, Any], str]] = {
    "person": ({"type": "object", "properties": {"name": S, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
                "required": ["name", "age"], "additionalProperties": False}, "Describe a person."),
    "enum": ({"type": "string", "enum": ["red", "green", "blue"]}, "Pick a colour."),
    "bool": ({"type": "boolean"}, "Is water wet?"),
    "int_range": ({"type": "integer", "minimum": 10, "maximum": 20}, "A number between 10 and 20."),
    "number": ({"type": "number", "minimum": -5.5, "exclusiveMaximum": 3}, "A temperature."),
    "array": ({"type": "array", "items": S, "minItems": 1, "maxItems": 3}, "List some fruits."),
    "nested": ({"type": "object", "properties": {"city": S, "location": {
        "type": "object", "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                         "lon": {"type": "number", "minimum": -180, "maximum": 180}},
        "required": ["lat", "lon"], "additionalProperties": False}}, "required": ["city", "location"],
        "additionalProperties": False}, "Where is Paris?"),
    "optional": ({"type": "object", "properties": {"title": S, "year": {"type": "integer"}, "genre": S},
                  "required": ["title"], "additionalProperties": False}, "Name a film."),
    "date": ({"type": "string", "format": "date"}, "When did the Berlin wall fall?"),
    "pattern": ({"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"}, "Make up a licence plate."),
    "const": ({"type": "object", "properties": {"kind": {"const": "event"}, "name": S},
               "required": ["kind", "name"], "additionalProperties": False}, "An event."),
    "anyof": ({"anyOf": [{"type": "integer", "maximum": 100}, {"type": "string", "maxLength": 10}]}, "Your answer."),
    "oneof_tool": ({"oneOf": [
        {"type": "object", "properties": {"tool": {"const": "search"}, "query": S}, "required": ["tool", "query"],
         "additionalProperties": False},
        {"type": "object", "properties": {"tool": {"const": "calc"}, "expr": S}, "required": ["tool", "expr"],
         "additionalProperties": False}]}, "Compute 2+2 with a tool."),
    "ref": ({"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                              "required": ["x", "y"], "additionalProperties": False}},
             "type": "object", "properties": {"a": {"$ref": "#/$defs/pt"}, "b": {"$ref": "#/$defs/pt"}},
             "required": ["a", "b"], "additionalProperties": False}, "Two points."),
    "tuple": ({"type": "array", "prefixItems": [S, {"type": "integer"}], "items": False, "minItems": 2},
              "A name and a number."),
    "null_or": ({"type": ["string", "null"], "maxLength": 12}, "A nickname, if any."),
    "allof": ({"allOf": [{"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}}, "required": ["id"]},
                         {"properties": {"label": S}, "required": ["label"]}], "maxProperties": 2},
              "An item with id and label."),
    "multiple": ({"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100}, "A multiple of five."),
    "min_props": ({"type": "object", "properties": {"a": S, "b": S, "c": S}, "minProperties": 2,
                   "additionalProperties": False}, "Fill in two of a, b, c."),
}


class Review(BaseModel):
    """A Pydantic model: the 20th schema."""

    product: str = Field(max_length=20)
    stars: int = Field(ge=1, le=5)
    verdict: Literal["buy", "skip"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_constrained_output_validates(smollm2: tuple, name: str) -> None:  # noqa: F811
    model, tok = smollm2
    schema, prompt = SCHEMAS[name]
    result = corral.generate(model, tok, prompt + " Answer in JSON.", schema=schema, max_new_tokens=120)
    schema_validator(schema).validate(result.value)
    # the default whitespace mode lets nothing follow the value: generation stops at its last character
    assert result.text == result.text.rstrip(), repr(result.text)


def test_greedy_output_ends_at_the_value(smollm2: tuple) -> None:  # noqa: F811
    """The case that wasted 60 tokens of newlines under the wide whitespace setting (greedy)."""
    model, tok = smollm2
    schema = {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
              "required": ["lat", "lon"], "additionalProperties": False}
    prompt = "Give the coordinates of a city as JSON."
    result = corral.generate(model, tok, prompt, schema=schema, max_new_tokens=120)
    assert result.text.rstrip() == result.text and result.text.rstrip().endswith("}"), repr(result.text)
    assert set(result.value) == {"lat", "lon"}
    # every whitespace run the model wrote is one a pretty-printer writes
    import re

    inner = re.findall(r"[ \t\r\n]+", result.text.strip())
    assert all(re.fullmatch(r" |\r?\n(?: *|\t*)", w) for w in inner), inner


def test_pydantic_model_gives_an_instance(smollm2: tuple) -> None:  # noqa: F811
    model, tok = smollm2
    # the fields are named in the prompt: properties may come in any order (the default), extra ones
    # too (the model allows them), and shown no fields SmolLM2 starts with a "description" it never ends
    result = corral.generate(model, tok, "Review a coffee machine in JSON with its product, stars and verdict.",
                             schema=Review, max_new_tokens=80)
    assert isinstance(result.value, Review)
    assert 1 <= result.value.stars <= 5
