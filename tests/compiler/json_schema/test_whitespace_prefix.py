"""The whitespace prefix put in front of every key and value terminal (``_ws_prefixed``) and the
follow filter's looser ``[ \\t\\n\\r]* body`` (``_ws_star``), both numba kernels, against brute
force on random bodies: every string of up to six bytes over a small alphabet with whitespace."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.compiler.automaton import ByteDFA, trim
from corral.compiler.json_schema import lower
from corral.compiler.json_schema.compiler import whitespace_pattern
from corral.compiler.regex import regex_to_dfa

BODY = b"ab"
WS = b" \n"
WORDS = [bytes(w) for n in range(7) for w in itertools.product(BODY + WS, repeat=n)]
MAX_WS = 2


@st.composite
def bodies(draw: st.DrawFn) -> ByteDFA:
    """Automata over a, b and, in some states (rarely the first), whitespace; mostly trimmed
    (as the compiler's are), sometimes not (the kernel then trims its result)."""
    n = draw(st.integers(1, 5))
    trans = np.full((n, 256), -1, dtype=np.int32)
    for s in range(n):
        for b in BODY + (WS if draw(st.integers(0, 3 if s else 6)) == 0 else b""):
            trans[s, b] = draw(st.integers(-1, n - 1))
    accepting = np.array([draw(st.booleans()) for _ in range(n)])
    d = ByteDFA(trans, accepting, 0)
    return trim(d) if draw(st.integers(0, 3)) else d


def split_ws(w: bytes) -> list[tuple[bytes, bytes]]:
    """Every way to cut ``w`` into a whitespace run and the rest."""
    return [(w[:i], w[i:]) for i in range(len(w) + 1) if all(c in WS for c in w[:i])]


@settings(max_examples=100, deadline=None)
@given(bodies(), st.sampled_from(["flexible", "pretty"]))
def test_prefixed_terminal_is_the_prefix_then_the_body(body: ByteDFA, mode: str) -> None:
    pattern = whitespace_pattern(mode, MAX_WS)
    pre = regex_to_dfa(pattern)
    prefixed = lower._ws_prefixed(SimpleNamespace(_ws_dfa=pre), body)
    prefix = regex_to_dfa(f"(?:{pattern})")
    for w in WORDS:
        want = any(prefix.matches(head) and body.matches(rest) for head, rest in split_ws(w))
        assert prefixed.matches(w) == want, (mode, w)
    assert trim(prefixed).n_states == prefixed.n_states  # every state reachable and live


@settings(max_examples=100, deadline=None)
@given(bodies())
def test_ws_star_is_any_whitespace_then_the_body(body: ByteDFA) -> None:
    star = lower._ws_star(body)
    if (body.trans[body.start, list(WS)] >= 0).any():
        assert star is None
        return
    assert star is not None
    for w in WORDS:
        want = any(body.matches(rest) for _, rest in split_ws(w))
        assert star.matches(w) == want, w


def _terminal(mode: str, pattern: str) -> object:
    """``lower._terminal`` as a compile in whitespace layout ``mode`` calls it."""
    ws = whitespace_pattern(mode, MAX_WS)
    ns = SimpleNamespace(_ws_dfa=regex_to_dfa(ws), _ws_pattern=ws)
    ns._ws_prefixed = lambda d: lower._ws_prefixed(ns, d)
    return lower._terminal(ns, "T_COMMA", pattern)  # type: ignore[arg-type]


def test_regex_terminals_are_shared_across_compiles_of_one_layout() -> None:
    """Schemas compiled one after another share a regex terminal's prefixed automata (built once,
    read-only); a compile in another whitespace layout gets its own, each the prefix of its
    layout then the body. Fails when the shared automata are keyed without the layout."""
    a, b = _terminal("flexible", ","), _terminal("flexible", ",")
    assert a.dfa is b.dfa and a.follow_dfa is b.follow_dfa  # type: ignore[attr-defined]
    assert not a.dfa.trans.flags.writeable  # type: ignore[attr-defined]
    c = _terminal("pretty", ",")
    words = [bytes(w) for n in range(7) for w in itertools.product(b"," + WS, repeat=n)]
    for mode, t in (("flexible", a), ("pretty", c)):
        prefix = regex_to_dfa(f"(?:{whitespace_pattern(mode, MAX_WS)})")
        for w in words:
            want = any(prefix.matches(head) and rest == b"," for head, rest in split_ws(w))
            assert t.dfa.matches(w) == want, (mode, w)  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(bodies(), bodies())
def test_shared_terminals_are_kept_by_content(first: ByteDFA, second: ByteDFA) -> None:
    """``dfa_term``'s sharing across schemas (``_shared_automata`` with a ``source``): a body of
    equal content, another object, gets the automata made for the first; a body that only shares
    the probe (start row and acceptance) gets its own, built from it. Fails when a probe alone
    decides a hit."""
    pattern = whitespace_pattern("flexible", MAX_WS)
    pre = regex_to_dfa(pattern)
    comp = SimpleNamespace(_ws_dfa=pre, _ws_pattern=pattern + "/test-shared")
    comp._ws_prefixed = lambda d: lower._ws_prefixed(comp, d)
    lower._SHARED.clear()
    lower._SHARED_STATES[0] = 0

    def probe(d: ByteDFA) -> tuple[object, ...]:
        return ("dfa", int(d.start), int(d.trans.shape[0]), d.accepting.tobytes(), d.trans[d.start].tobytes())

    def shared(d: ByteDFA) -> tuple[ByteDFA, ByteDFA | None]:
        return lower._shared_automata(comp, probe(d), lambda: d, source=d)  # type: ignore[arg-type]

    full, star = shared(first)
    copy = ByteDFA(first.trans.copy(), first.accepting.copy(), first.start)
    assert shared(copy)[0] is full
    # the second body with the first one's probe: rows after the start may differ
    clash = ByteDFA(second.trans.copy(), second.accepting.copy(), second.start)
    if clash.trans.shape == first.trans.shape and np.array_equal(clash.accepting, first.accepting):
        clash.trans[clash.start] = first.trans[first.start]
        clash = ByteDFA(clash.trans, clash.accepting, first.start)
    same = np.array_equal(clash.trans, first.trans) and np.array_equal(clash.accepting, first.accepting) \
        and clash.start == first.start
    got, _ = shared(clash)
    assert (got is full) == same
    want = lower._ws_prefixed(comp, clash)  # type: ignore[arg-type]
    for w in WORDS:
        assert got.matches(w) == want.matches(w)
    assert not full.trans.flags.writeable and (star is None or not star.trans.flags.writeable)
    lower._SHARED.clear()
    lower._SHARED_STATES[0] = 0


def test_a_schema_compiled_again_shares_its_product_terminals() -> None:
    """A string with a format and a length bound is a product, a new automaton in every compile:
    the second compile's terminals are the first one's automata (shared by content), and the
    grammar still reads what it should."""
    import corral
    from corral.runtime.engine import earley_engine

    vocab = corral.Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date", "maxLength": 12},
                                               "n": {"type": "integer", "minimum": 3, "maximum": 70}}}

    def terminals(g: corral.CompiledGrammar) -> list[ByteDFA]:
        return list(earley_engine(g).store.tables.term_dfas)

    first = terminals(corral.compile_json_schema(schema, vocab, whitespace="flexible"))
    again = corral.compile_json_schema(schema, vocab, whitespace="flexible")
    ids = {id(d) for d in first}
    assert all(id(d) in ids for d in terminals(again))
    for text, ok in ((b'{"d": "2024-02-29", "n": 70}', True), (b'{"d": "2024-02-30", "n": 70}', False),
                     (b'{"n": 2}', False), (b'{ "n" : 3 }', True), (b'{"n": 71}', False)):
        m = again.matcher()
        read = all(m.accept_token(b) for b in text)
        assert (read and m.is_accepting()) == ok, text
