"""The oracles the tests share: what decides, independently of the mask, what is right.

- :func:`lark_accepts`: Lark's own Earley parser (``lexer="dynamic_complete"``) on a grammar text.
- :func:`recognizer_accepts` / :func:`grammar_accepts`: corral's Earley recogniser fed a whole
  text (the reference the masks of grammars and schemas are checked against).
- :func:`brute_force_mask`: the mask by walking every token's bytes through the recogniser.
- :func:`schema_validator` / :func:`schema_valid`: ``jsonschema``'s verdict on an instance.

Checks that are deliberately separate implementations (the fixed points of
``tests/compiler/test_gbnf.py``, the brute force of ``tests/property/test_grammar_analysis.py``,
the regex derivative oracle of ``tests/property/test_regex_exactness.py``) stay in their tests.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
from lark import Lark
from lark.exceptions import LarkError

import corral
from corral.compiler.program import EarleyProgram
from corral.runtime.earley import Recognizer

__all__ = ["lark_parser", "lark_accepts", "recognizer_accepts", "grammar_accepts", "brute_force_mask",
           "schema_validator", "schema_valid"]


def lark_parser(grammar: str) -> Lark:
    """Lark's Earley parser for a Lark grammar text, with the lexer that tries every split
    (``dynamic_complete``): the reference for which texts a Lark grammar accepts."""
    return Lark(grammar, parser="earley", lexer="dynamic_complete")


def lark_accepts(grammar_or_parser: str | Lark, text: str) -> bool:
    """Does Lark parse ``text`` in full? ``grammar_or_parser``: a grammar text (a parser is built
    by :func:`lark_parser`) or a parser already built."""
    parser = lark_parser(grammar_or_parser) if isinstance(grammar_or_parser, str) else grammar_or_parser
    try:
        parser.parse(text)
    except LarkError:
        return False
    return True


def recognizer_accepts(rec: Recognizer, data: bytes) -> bool:
    """Does the Earley recogniser ``rec``, fed ``data`` from its initial state, survive and end in
    an accepting state?"""
    s = rec.feed(rec.initial(), data)
    return s is not None and s.accepting


def grammar_accepts(grammar: corral.CompiledGrammar, text: str) -> bool:
    """Does the compiled grammar or JSON Schema accept the whole of ``text`` (UTF-8)? Decided by
    a matcher fed the bytes at once (the runtime recogniser plus the run-time checks such as
    ``uniqueItems``), not by its masks; the grammar must hold an
    :class:`~corral.compiler.program.EarleyProgram`."""
    assert isinstance(grammar.program, EarleyProgram)
    m = grammar.matcher()
    return m.accept_bytes(text.encode("utf-8")) and m.is_accepting()


def brute_force_mask(rec: Recognizer, state: object, vocab: corral.Vocabulary) -> np.ndarray:
    """Bit per token: does the recognizer survive the token's bytes (EOS: is the state accepting)?

    Every text token of ``vocab`` is walked byte by byte from ``state`` (a dead prefix kills every
    extension; tokens with no bytes stay False); the result is a bool array of ``vocab.size``.
    """
    out = np.zeros(vocab.size, dtype=bool)
    memo: dict[bytes, object] = {}
    for t, data in enumerate(vocab.token_bytes):
        if not data:
            continue
        # prefix memo: a dead prefix kills every extension
        cur = state
        for i in range(1, len(data) + 1):
            key = data[:i]
            if key in memo:
                cur = memo[key]
            else:
                cur = rec.step(cur, data[i - 1]) if cur is not None else None  # type: ignore[arg-type]
                memo[key] = cur
            if cur is None:
                break
        out[t] = cur is not None
    for t in vocab.eos_token_ids:
        out[t] = bool(state.accepting)  # type: ignore[attr-defined]
    return out


def schema_validator(schema: Any, *, formats: bool = True) -> Any:
    """``jsonschema``'s validator for ``schema``: the dialect its ``$schema`` names (2020-12 when
    none), asserting ``format`` when ``formats`` (else ``format`` is an annotation only)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER) if formats else cls(schema)


def schema_valid(schema: Any, instance: Any, *, formats: bool = True) -> bool:
    """Is ``instance`` valid under ``schema``, by ``jsonschema`` (see :func:`schema_validator`)?"""
    return bool(schema_validator(schema, formats=formats).is_valid(instance))
