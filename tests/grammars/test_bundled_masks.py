"""The bundled grammars compiled by corral: corpora token by token, masks against brute force,
mutations against real parsers, and JSON against Lark's LALR interactive parser."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import corral
from corral import grammars
from corral.compiler.sentences import random_sentence
from corral.compiler.program import EarleyProgram
from corral.runtime.engine import mask_store_for, recognizer_for
from tests.conftest import encode, tokenizer_and_vocab
from tests.oracles import brute_force_mask, grammar_accepts

DATA = Path(__file__).resolve().parents[1] / "data" / "grammars"
NEWLINE_TERMINATED = {"golike", "python"}


def sentences(name: str, kind: str = "valid") -> list[str]:
    """Corpus sentences (separated by ``----`` lines); whole-file grammars end each with a newline."""
    path = DATA / name / f"{kind}.txt"
    if not path.exists():
        return []
    out = []
    for chunk in path.read_text(encoding="utf-8").split("\n----\n"):
        chunk = chunk.strip("\n") if name not in NEWLINE_TERMINATED else chunk.strip("\n") + "\n"
        if chunk.strip():
            out.append(chunk)
    return out


@functools.lru_cache(maxsize=None)
def compiled(name: str, tokenizer: str) -> corral.CompiledGrammar:
    _, vocab = tokenizer_and_vocab(tokenizer)
    return corral.compile_grammar(grammars.load(name), vocab)


def walk(grammar: corral.CompiledGrammar, ids: list[int]) -> corral.Matcher:
    m = grammar.matcher()
    for i, t in enumerate(ids):
        assert m.allows(t), f"token {i} ({grammar.vocab.token_bytes[t]!r}) blocked"
        assert m.accept_token(t)
    return m


NAMES = grammars.names()
SLOW = {"python": 8, "sql": 20}  # corpus sample sizes for the token-by-token test
# CPython errors that depend on which names a program uses: no context-free grammar can rule them
# out (documented in python.lark)
NAME_DEPENDENT = ("nonlocal", "duplicate argument", "keyword argument repeated", "prior to global declaration",
                  "is parameter and global", "is parameter and nonlocal", "is assigned to before")


@pytest.mark.parametrize("tokenizer", ["llama3", "tekken"])
@pytest.mark.parametrize("name", NAMES)
def test_corpus_and_random_sentences_are_accepted_token_by_token(name: str, tokenizer: str) -> None:
    tok, _ = tokenizer_and_vocab(tokenizer)
    g = compiled(name, tokenizer)
    assert isinstance(g.program, EarleyProgram)
    rng = random.Random(11)
    corpus = sentences(name)
    if name in SLOW:  # big grammars: a fixed sample keeps CI fast (the whole corpus runs in test_bundled_corpora)
        corpus = rng.sample(corpus, SLOW[name])
    texts = corpus + [random_sentence(g.program.tables, rng, max_depth=8).decode() for _ in range(6 if name in SLOW else 15)]
    for text in texts:
        m = walk(g, encode(tok, text))
        assert m.is_accepting(), text
        assert m.allows(min(g.vocab.eos_token_ids))


@pytest.mark.parametrize("name", NAMES)
def test_invalid_corpus_is_rejected_by_the_end(name: str) -> None:
    g = compiled(name, "llama3")
    for text in sentences(name, "invalid"):
        assert not grammar_accepts(g, text), text


def _real_parser(name: str) -> Any:
    """The real language's parser for mutations: raises on invalid text (None: no such oracle)."""
    if name == "json":
        return lambda s: json.loads(s)
    if name == "python":
        return lambda s: compile(s, "<mutant>", "exec")
    if name == "arith":
        return lambda s: compile("(" + s + "\n)", "<mutant>", "eval")  # parentheses: leading spaces are fine
    return None


@pytest.mark.parametrize("name", ["json", "python", "arith"])
def test_mutations_accepted_by_corral_are_valid_in_the_real_language(name: str) -> None:
    """Soundness: corral never accepts a mutated sentence that the real parser rejects."""
    g = compiled(name, "llama3")
    parse = _real_parser(name)
    rng = random.Random(21)
    texts = sentences(name)
    alphabet = sorted(set("".join(texts)))
    accepted = 0
    for text in texts:
        for _ in range(10):
            s = list(text)
            for _ in range(rng.randint(1, 2)):
                if not s:
                    break
                i = rng.randrange(len(s))
                op = rng.randrange(3)
                if op == 0:
                    del s[i]
                elif op == 1:
                    s.insert(i, rng.choice(alphabet))
                else:
                    s[i] = rng.choice(alphabet)
            mutant = "".join(s)
            if grammar_accepts(g, mutant):
                accepted += 1
                try:
                    with __import__("warnings").catch_warnings():
                        __import__("warnings").simplefilter("ignore")
                        parse(mutant)
                except (ValueError, SyntaxError) as e:
                    if name == "python" and any(k in str(e) for k in NAME_DEPENDENT):
                        continue
                    raise AssertionError(f"corral accepts an invalid mutant of {text!r}: {mutant!r} ({e})") from None
    assert accepted > 0  # the test exercised the accepting direction too


def _prefix_sets(g: corral.CompiledGrammar, texts: list[str], rng: random.Random, per_text: int) -> list[Any]:
    assert isinstance(g.program, EarleyProgram)
    rec = recognizer_for(g)
    out = []
    for text in texts:
        data = text.encode()
        for _ in range(per_text):
            s = rec.feed(rec.initial(), data[: rng.randint(0, len(data))])
            assert s is not None
            out.append(s)
    return out


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "python" else n for n in NAMES])
def test_masks_equal_brute_force_on_mistral_spm(name: str) -> None:
    _, vocab = tokenizer_and_vocab("mistral-spm")
    g = compiled(name, "mistral-spm")
    assert isinstance(g.program, EarleyProgram)
    rng = random.Random(31)
    texts = rng.sample(sentences(name), 1 if name in SLOW or name == "golike" else 3)
    for s in _prefix_sets(g, texts, rng, 2):
        got = corral.bitmask_to_bool(mask_store_for(g).mask(s), vocab.size)
        want = brute_force_mask(recognizer_for(g), s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]


@pytest.mark.parametrize("name", ["json", pytest.param("sql", marks=pytest.mark.slow)])
def test_masks_equal_brute_force_on_llama3(name: str) -> None:
    assert name in NAMES, f"the bundled {name} grammar is missing"
    _, vocab = tokenizer_and_vocab("llama3")
    g = compiled(name, "llama3")
    assert isinstance(g.program, EarleyProgram)
    rng = random.Random(41)
    texts = rng.sample(sentences(name), 1 if name in SLOW else 2)
    for s in _prefix_sets(g, texts, rng, 2):
        got = corral.bitmask_to_bool(mask_store_for(g).mask(s), vocab.size)
        want = brute_force_mask(recognizer_for(g), s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]


def test_json_masks_agree_with_lark_lalr_interactive_parser() -> None:
    """At every lexeme boundary of real documents, a terminal is possible next for Lark's LALR
    parser exactly when corral allows a sample of that terminal's text next."""
    from lark import Lark

    text = grammars.load("json")
    lark = Lark(text, parser="lalr")
    g = compiled("json", "llama3")
    assert isinstance(g.program, EarleyProgram)
    rec = recognizer_for(g)
    samples = {"STRING": b'"s"', "NUMBER": b"1", "WS": b" "}
    for t in lark.terminals:
        if t.name not in samples and t.pattern.type == "str":
            samples[t.name] = t.pattern.value.encode()
    for doc in sentences("json")[:12]:
        ip = lark.parse_interactive(doc)
        pos = 0
        for token in ip.iter_parse():
            state = rec.feed(rec.initial(), doc[:pos].encode())
            assert state is not None
            expected = {n for n in ip.accepts() if n != "$END"}
            for name, sample in samples.items():
                if name == "WS":
                    continue
                # a space first, so the sample cannot extend the previous lexeme (as "1" extends "1")
                allowed = rec.feed(state, b" " + sample) is not None
                assert allowed == (name in expected), (doc[:pos], name, expected)
            pos = token.end_pos
