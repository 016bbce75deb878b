"""Context-free grammars: the recognizer against Lark, masks against brute force, errors pinned."""

from __future__ import annotations

import random

import numpy as np
import pytest

import corral
from corral import GrammarError, compile_grammar
from corral.compiler.cfg import lark_to_ir
from corral.compiler.earley_tables import build_tables
from corral.compiler.sentences import random_sentence
from corral.runtime.earley import Recognizer
from corral.compiler.program import EarleyProgram
from corral.runtime.engine import mask_store_for, recognizer_for
from tests.conftest import encode, greedy_tokens
from tests.oracles import brute_force_mask, lark_accepts, lark_parser, recognizer_accepts

JSON = r"""
start: value
?value: object | array | STRING | NUMBER | "true" | "false" | "null"
object: "{" [pair ("," pair)*] "}"
array: "[" [value ("," value)*] "]"
pair: STRING ":" value
STRING: /"([^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/
NUMBER: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/
%ignore /[ \t\n\r]+/
"""

# left recursion, precedence levels, a function call, ignored spaces
ARITH = r"""
start: sum
sum: sum ("+" | "-") product | product
product: product ("*" | "/") atom | atom
atom: NUMBER | NAME | NAME "(" [sum ("," sum)*] ")" | "(" sum ")" | "-" atom
NUMBER: /[0-9]+(\.[0-9]+)?/
NAME: /[a-z_][a-z0-9_]*/
%ignore " "
"""

# ambiguous and nullable everywhere
AMBIGUOUS = r"""
start: e
e: e e | e "+" e | "a" | x
x: y y |
y: "b"? | "(" e ")"
"""

# balanced brackets, right recursion, nothing ignored
DYCK = r"""
start: item*
item: "(" start ")" | "[" start "]" | /[a-z]+/
"""

# case-insensitive keywords, a mandatory separator, strings with '' escapes
KEYWORDS = r"""
start: "SELECT"i _SP cols _SP "FROM"i _SP NAME (_SP "WHERE"i _SP cond)?
cols: NAME (_SP? "," _SP? NAME)*
cond: NAME _SP? "=" _SP? (NAME | STR)
NAME: /[a-z][a-z0-9]*/
STR: /'([^']|'')*'/
_SP: / +/
"""

GRAMMARS = {"json": JSON, "arith": ARITH, "ambiguous": AMBIGUOUS, "dyck": DYCK, "keywords": KEYWORDS}

SAMPLES = {
    "json": ['{"a": [1, 2.5e3, {"b": null}], "c": "x\\"y"}', "[]", ' { } ', '"\\u00e9t\\u00e9"', "-0.5"],
    "arith": ["1 + 2 * (3 - x)", "f(a, b * 2) / -3", "((((x))))", "a-b-c-d"],
    "ambiguous": ["a+a", "aa+a", "(a)b", "", "bb", "(bb)+a"],
    "dyck": ["", "(ab)[c]", "([([x])])", "abc"],
    "keywords": ["select a, b from t where a = 'it''s'", "SELECT x FROM y", "SeLeCt a FROM b WHERE c=d"],
}


def _rec(text: str) -> tuple[Recognizer, object]:
    tables = build_tables(lark_to_ir(text))
    rec = Recognizer(tables)
    return rec, tables


def _mutations(text: str, rng: random.Random, alphabet: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        s = list(text)
        for _ in range(rng.randint(1, 2)):
            op = rng.randrange(3)
            i = rng.randrange(len(s) + 1)
            if op == 0 and s:
                del s[min(i, len(s) - 1)]
            elif op == 1:
                s.insert(i, rng.choice(alphabet))
            elif s:
                s[min(i, len(s) - 1)] = rng.choice(alphabet)
        out.append("".join(s))
    return out


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_recognizer_agrees_with_lark_on_samples_derivations_and_mutations(name: str) -> None:
    rec, tables = _rec(GRAMMARS[name])
    parser = lark_parser(GRAMMARS[name])
    rng = random.Random(1234)
    texts = list(SAMPLES[name])
    texts += [random_sentence(tables, rng, max_depth=6).decode() for _ in range(40)]  # type: ignore[arg-type]
    alphabet = "".join(sorted(set("".join(texts)) | set("()[]{},:\"' +-*/ab1")))
    for text in list(texts):
        assert lark_accepts(parser, text), text
        assert recognizer_accepts(rec, text.encode()), text
        for mutant in _mutations(text, rng, alphabet, 8):
            assert recognizer_accepts(rec, mutant.encode()) == lark_accepts(parser, mutant), (text, mutant)


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_every_prefix_of_a_sentence_is_viable_and_dead_prefixes_are_dead(name: str) -> None:
    rec, tables = _rec(GRAMMARS[name])
    rng = random.Random(7)
    for _ in range(30):
        data = random_sentence(tables, rng, max_depth=6)  # type: ignore[arg-type]
        s = rec.initial()
        for b in data:
            s = rec.step(s, b)
            assert s is not None, data
        assert s.accepting


def _prefix_states(grammar: corral.CompiledGrammar, texts: list[str], tok: object, rng: random.Random, k: int) -> list[object]:
    """Matcher-reachable states at token boundaries and at random byte cuts of sentences."""
    assert isinstance(grammar.program, EarleyProgram)
    rec = recognizer_for(grammar)
    states = []
    for text in texts:
        data = text.encode()
        for _ in range(k):
            cut = rng.randint(0, len(data))
            s = rec.feed(rec.initial(), data[:cut])
            assert s is not None
            states.append(s)
        m = grammar.matcher()
        ids = greedy_tokens(grammar.vocab, data) if grammar.vocab.prepends_space else encode(tok, text)
        for t in ids:
            assert m.accept_token(t)
        states.append(m._sets[-1])  # type: ignore[attr-defined]
    return states


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "dyck" else n  # dyck ~23 s: CI's slow step
                                  for n in sorted(GRAMMARS)])
def test_masks_equal_brute_force_on_mistral_spm(name: str, mistral_spm: tuple[object, corral.Vocabulary]) -> None:
    tok, vocab = mistral_spm
    grammar = compile_grammar(GRAMMARS[name], vocab)
    assert isinstance(grammar.program, EarleyProgram)
    rng = random.Random(99)
    texts = SAMPLES[name][:3] + [random_sentence(grammar.program.tables, rng, max_depth=5).decode() for _ in range(3)]
    for s in _prefix_states(grammar, texts, tok, rng, 2):
        got = corral.bitmask_to_bool(mask_store_for(grammar).mask(s), vocab.size)  # type: ignore[arg-type]
        want = brute_force_mask(recognizer_for(grammar), s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]


@pytest.mark.parametrize("name", ["json", "keywords"])
def test_masks_equal_brute_force_on_llama3(name: str, llama3: tuple[object, corral.Vocabulary]) -> None:
    tok, vocab = llama3
    grammar = compile_grammar(GRAMMARS[name], vocab)
    assert isinstance(grammar.program, EarleyProgram)
    rng = random.Random(5)
    for s in _prefix_states(grammar, SAMPLES[name][:2], tok, rng, 2):
        got = corral.bitmask_to_bool(mask_store_for(grammar).mask(s), vocab.size)  # type: ignore[arg-type]
        want = brute_force_mask(recognizer_for(grammar), s, vocab)
        assert np.array_equal(got, want), [vocab.token_bytes[t] for t in np.flatnonzero(got != want)[:10]]


def test_cached_masks_equal_fresh_computation(llama3: tuple[object, corral.Vocabulary]) -> None:
    """A mask served from the signature cache equals one computed from scratch at that position."""
    tok, vocab = llama3
    grammar = compile_grammar(JSON, vocab)
    assert isinstance(grammar.program, EarleyProgram)
    store = mask_store_for(grammar)
    docs = ['{"a": [1, {"b": [2, 3]}], "c": {"d": "e"}}', '[{"k": 1}, {"k": 2}, {"k": [3, 4]}]']
    for doc in docs:
        m = grammar.matcher()
        for t in encode(tok, doc):
            cached = m.next_token_mask()
            fresh = store._compute(m._sets[-1])  # type: ignore[attr-defined]
            assert np.array_equal(cached, fresh)
            assert m.accept_token(t)
        assert m.is_accepting()
    assert store.hits > 0


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_sentences_are_accepted_token_by_token(name: str, tekken: tuple[object, corral.Vocabulary]) -> None:
    tok, vocab = tekken
    grammar = compile_grammar(GRAMMARS[name], vocab)
    assert isinstance(grammar.program, EarleyProgram)
    rng = random.Random(3)
    texts = SAMPLES[name] + [random_sentence(grammar.program.tables, rng, max_depth=6).decode() for _ in range(10)]
    for text in texts:
        m = grammar.matcher()
        for t in encode(tok, text):
            assert m.allows(t), (text, t)
            assert m.accept_token(t)
        assert m.is_accepting(), text
        assert m.accept_token(min(vocab.eos_token_ids))
        assert m.is_finished() and not m.accept_token(0)


def test_matcher_rollback_fork_and_forced_bytes() -> None:
    vocab = corral.Vocabulary([b"{", b"}", b'"a"', b":", b"1", b" ", None], eos_token_ids=[6])
    g = compile_grammar(JSON, vocab)
    m = g.matcher()
    assert m.accept_token(0) and m.accept_token(2)
    assert m.forced_bytes() == b""  # ':' or spaces
    f = m.fork()
    assert f.accept_token(3) and f.accept_token(4) and f.accept_token(1) and f.is_accepting()
    assert m.num_tokens == 2 and not m.is_accepting()
    f.rollback(3)
    assert f.num_tokens == 2 and f.allows(3) and not f.allows(1)
    f.reset()
    assert f.num_tokens == 0 and f.allows(0) and not f.allows(6)
    assert g.matcher().forced_bytes() == b""
    g2 = compile_grammar('start: "hello" " "? "world"', vocab)
    assert g2.matcher().forced_bytes() == b"hello"


@pytest.mark.parametrize(
    ("grammar", "message"),
    [
        (
            "start: a\n",
            "Rule 'a' used but not defined (in rule start) at line 1, column 8\n  start: a\n         ^",
        ),
        (
            'start: "a" B\nB: /(?<=a)b/\n',
            "terminal B: lookbehind (?<=...) is not supported (lookarounds are not regular on a token stream)"
            " at line 2, column 5\n  B: /(?<=a)b/\n      ^~~",
        ),
        (
            "%declare X\nstart: \"a\" X\n",
            "terminal X is declared with %declare but has no definition; corral needs the text a terminal "
            "matches at line 1, column 1\n  %declare X\n  ^~~~~~~~~~",
        ),
        ("", "the grammar has no rule named 'start' (choose the start rule with start=, or --start)"),
        (
            "start: A\nA: B\n",
            "Terminal used but not defined: B at line 2, column 4\n  A: B\n     ^",
        ),
        (
            'start: x\nx: "a" x\n',
            "the grammar's language is empty: rule 'start' can never finish "
            "(every alternative needs a rule with no finite derivation) at line 1, column 1\n  start: x\n  ^",
        ),
    ],
)
def test_grammar_errors_name_what_and_where(grammar: str, message: str) -> None:
    vocab = corral.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    with pytest.raises(GrammarError) as err:
        compile_grammar(grammar, vocab)
    assert str(err.value).startswith(message)


def test_lark_syntax_error_has_position() -> None:
    vocab = corral.Vocabulary([b"a", None], eos_token_ids=[1])
    with pytest.raises(GrammarError) as err:
        compile_grammar('start: "a"\n  | | )\n', vocab)
    assert err.value.line == 2


def test_escaped_string_from_common_is_exact() -> None:
    g = 'start: ESCAPED_STRING ":" ESCAPED_STRING\n%import common.ESCAPED_STRING\n'
    rec, _ = _rec(g)
    assert recognizer_accepts(rec, b'"a\\"b":"c"')
    assert not recognizer_accepts(rec, b'"a" : "b":"c"')  # full-match semantics would accept this
    assert not recognizer_accepts(rec, b'"a\\":"c"')


def test_compiled_grammar_pickles_and_threads() -> None:
    import pickle
    import threading

    vocab = corral.Vocabulary([b"[", b"]", b"x", b",", b"[x", None], eos_token_ids=[5])
    g = compile_grammar('start: "[" [start ("," start)*] "]" | "x"', vocab)
    g2 = pickle.loads(pickle.dumps(g))
    assert g2.kind == "grammar" and g2.matcher().accept_token(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(50):
                m = g.matcher()
                for t in (0, 4, 3, 2, 1, 1):
                    m.next_token_mask()
                    assert m.accept_token(t) == (t != 1 or m.num_tokens >= 4)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_json_schema_embedded_as_a_rule() -> None:
    """``%json name {schema}`` defines a rule matching exactly the schema's instances (tool calls)."""
    import json as _json

    grammar = (
        'start: "Thought: " /[a-z ]+/ "\\nAction: " call\n'
        '%json call {"type": "object", "properties": {"tool": {"enum": ["search", "calc"]},\n'
        '            "arg": {"type": "string", "maxLength": 8}}, "required": ["tool", "arg"],\n'
        '            "additionalProperties": false}\n'
        'call_unused: "x"\n'
    )
    vocab = corral.Vocabulary([bytes([b]) for b in range(128)] + [None], eos_token_ids=[128])
    rec, _ = _rec(grammar)
    ok = "Thought: easy\nAction: " + _json.dumps({"tool": "calc", "arg": "2+2"})
    assert recognizer_accepts(rec, ok.encode())
    for bad in ({"tool": "x", "arg": "1"}, {"tool": "calc"}, {"tool": "calc", "arg": "123456789"}):
        assert not recognizer_accepts(rec, ("Thought: easy\nAction: " + _json.dumps(bad)).encode())
    assert compile_grammar(grammar, vocab).matcher().accept_bytes(ok.encode())
    with pytest.raises(GrammarError, match="%json call: the schema is not valid JSON"):
        compile_grammar('start: call\n%json call {"type": }\n', vocab)
