"""Random context-free grammars (hypothesis): the recognizer against a span-table oracle, and token
masks against brute force over a vocabulary of every short string, so that tokens cross several
terminal boundaries (the hard case of the mask store)."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import corral
from corral.compiler.earley_tables import build_tables
from corral.compiler.grammar_ir import GrammarIR, TerminalDef
from corral.compiler.program import EarleyProgram
from corral.errors import GrammarError
from corral.runtime.earley import Recognizer
from corral.runtime.engine import mask_store_for, recognizer_for
from tests.oracles import brute_force_mask

ALPHABET = "ab()"
TERMINALS = {
    "A": "a",
    "AS": "a+",
    "B": "b",
    "OPT_B": "b?",  # nullable terminal
    "L": r"\(",
    "R": r"\)",
    "AB": "ab|ba",
}
NONTERMINALS = ["s", "x", "y", "z"]
# CORRAL_PROPERTY_SCALE=10 multiplies the example budgets (a longer soak than CI's).
SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))


@st.composite
def grammars(draw: st.DrawFn) -> GrammarIR:
    symbols = NONTERMINALS + list(TERMINALS)
    rules: dict[str, list[tuple[str, ...]]] = {}
    for n in NONTERMINALS:
        alts = draw(st.lists(st.lists(st.sampled_from(symbols), max_size=3).map(tuple), min_size=1, max_size=3))
        rules[n] = alts
    ignore = ("SP",) if draw(st.booleans()) else ()
    terminals = {k: TerminalDef(k, v) for k, v in TERMINALS.items()}
    if ignore:
        terminals["SP"] = TerminalDef("SP", " ")
    return GrammarIR(start="s", rules=rules, terminals=terminals, ignore=ignore)


def oracle(ir: GrammarIR, text: str) -> bool:
    """Whether ``text`` is in the language: a fixpoint over span tables (no parser shared with corral)."""
    ign = [ir.terminals[i].pattern for i in ir.ignore]
    n = len(text)
    # ignorable stretches: spans made only of ignored terminals
    gap = [[i == j for j in range(n + 1)] for i in range(n + 1)]
    for length in range(1, n + 1):
        for i in range(n - length + 1):
            j = i + length
            gap[i][j] = any(gap[i][k] and any(re.fullmatch(p, text[k:j]) for p in ign) for k in range(i, j))

    def term(name: str, i: int, j: int) -> bool:
        # a terminal with ignored text before it (ignore folded in front, as corral does)
        pat = ir.terminals[name].pattern
        return any(gap[i][k] and re.fullmatch(pat, text[k:j]) is not None for k in range(i, j + 1))

    derives: dict[tuple[str, int, int], bool] = {}
    changed = True

    def seq(body: tuple[str, ...], i: int, j: int) -> bool:
        if not body:
            return i == j
        head, rest = body[0], body[1:]
        for k in range(i, j + 1):
            ok = term(head, i, k) if head in ir.terminals else derives.get((head, i, k), False)
            if ok and seq(rest, k, j):
                return True
        return False

    while changed:
        changed = False
        for a, alts in ir.rules.items():
            for i in range(n + 1):
                for j in range(i, n + 1):
                    if derives.get((a, i, j)):
                        continue
                    if any(seq(alt, i, j) for alt in alts):
                        derives[(a, i, j)] = True
                        changed = True
    return any(derives.get(("s", 0, k)) and gap[k][n] for k in range(n + 1))


def _recognizer(ir: GrammarIR) -> Recognizer | None:
    try:
        return Recognizer(build_tables(ir))
    except GrammarError:
        return None  # empty language


STRINGS = ["".join(p) for k in range(5) for p in itertools.product(ALPHABET + " ", repeat=k)]


@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grammars(), st.lists(st.sampled_from(STRINGS), min_size=10, max_size=25))
def test_recognizer_equals_span_oracle(ir: GrammarIR, texts: list[str]) -> None:
    rec = _recognizer(ir)
    if rec is None:
        assert not any(oracle(ir, t) for t in STRINGS[:50])
        return
    for text in texts:
        s = rec.feed(rec.initial(), text.encode())
        assert (s is not None and s.accepting) == oracle(ir, text), text


# every string of 1..3 characters over the alphabet is a token
VOCAB_STRINGS = [("".join(p)).encode() for k in range(1, 4) for p in itertools.product(ALPHABET + " ", repeat=k)]
VOCAB = corral.Vocabulary(VOCAB_STRINGS + [None], eos_token_ids=[len(VOCAB_STRINGS)])


@settings(max_examples=100 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grammars(), st.lists(st.sampled_from(STRINGS), min_size=3, max_size=8))
def test_masks_equal_brute_force_over_all_short_tokens(ir: GrammarIR, prefixes: list[str]) -> None:
    from corral.compiler.cfg import compile_ir

    try:
        g = compile_ir(ir, VOCAB)
    except GrammarError:
        return
    assert isinstance(g.program, EarleyProgram)
    rec = recognizer_for(g)
    for prefix in prefixes:
        s = rec.feed(rec.initial(), prefix.encode())
        if s is None:
            continue
        got = corral.bitmask_to_bool(mask_store_for(g).mask(s), VOCAB.size)
        want = brute_force_mask(rec, s, VOCAB)  # every token is text but the last, EOS
        assert np.array_equal(got, want), (prefix, [VOCAB_STRINGS[t] for t in np.flatnonzero(got[:-1] != want[:-1])])


SUFFIXES = ["".join(p) for k in range(4) for p in itertools.product(ALPHABET + " ", repeat=k)]


def _ir(rules: dict[str, list[tuple[str, ...]]]) -> GrammarIR:
    return GrammarIR(start="s", rules=rules, terminals={k: TerminalDef(k, v) for k, v in TERMINALS.items()})


def _future(rec: Recognizer, s: Any) -> tuple[int, ...]:
    """What every suffix up to 3 characters does after ``s``: dies, lives, or accepts."""
    out = []
    for w in SUFFIXES:
        t = rec.feed(s, w.encode())
        out.append(0 if t is None else 1 + t.accepting)
    return tuple(out)


@settings(max_examples=100 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grammars(), st.sampled_from(["after", "steps", "moves"]))
# completions passed on through unit rules to different items; a list's item in nested lists
@example(_ir({"s": [("y", "R"), ("L", "y")], "y": [("x",)], "x": [("A", "B")]}), "after")
@example(_ir({"s": [("L", "x", "R"), ("A",)], "x": [("x", "B", "s"), ("s",)], "y": [("A",)], "z": [("A",)]}), "after")
@example(_ir({"s": [("y", "R"), ("L", "y")], "y": [("x",)], "x": [("A", "B")]}), "steps")
@example(_ir({"s": [("L", "x", "R"), ("A",)], "x": [("x", "B", "s"), ("s",)], "y": [("A",)], "z": [("A",)]}), "steps")
@example(_ir({"s": [("L", "x", "R"), ("A",)], "x": [("x", "B", "s"), ("s",)], "y": [("A",)], "z": [("A",)]}), "moves")
def test_equal_signatures_have_equal_futures(ir: GrammarIR, mode: str) -> None:
    """Masks are cached by signature, so two sets with one signature must have one future. Over
    every prefix of up to 4 characters, each set whose signature an earlier one has is compared
    with it on every suffix up to 3 characters: the same ones keep it viable and make it accept.
    The signature keys an item by what completing it at its origin leads to, not by the origin
    set, so sets reached through different list positions or unit chains share one.

    Sets are signed when the prefix is read (``"after"``: their origins unsigned, the post-order
    over them), or as a matcher signs each set as it is made: byte by byte (``"steps"``: every
    origin signed, the short way), or token by token (``"moves"``: the prefix fed two bytes at a
    time, each set taking the signature the same text gave from a set of the same signature
    before, so most sets are never keyed by their own kernel). Fails when the short way keys the
    items without their futures, and when a move is remembered by its text alone."""
    rec = _recognizer(ir)
    if rec is None:
        return
    first: dict[int, tuple[str, tuple[int, ...]]] = {}
    for prefix in STRINGS:
        s: Any = rec.initial()
        if mode == "after":
            s = rec.feed(s, prefix.encode())
        else:
            rec.signature(s)
            data = prefix.encode()
            step = 1 if mode == "steps" else 2
            for k in range(0, len(data), step):
                s = rec.step(s, data[k]) if mode == "steps" else rec.feed(s, data[k:k + step])
                if s is None:
                    break
                rec.signature(s)
        if s is None:
            continue
        sig = rec.signature(s)
        if sig not in first:
            first[sig] = (prefix, ())
            continue
        if not first[sig][1]:
            p0 = first[sig][0]
            first[sig] = (p0, _future(rec, rec.feed(rec.initial(), p0.encode())))
        assert _future(rec, s) == first[sig][1], (first[sig][0], prefix)


def test_list_items_share_their_signatures() -> None:
    """The sets at one position of the first, second, third and fourth items of a list have one
    signature, though their items' origins differ (the first item's come through another
    production): completing an item leads, through the list's completions, to the same items.
    A signature keyed by origin sets gives four."""
    ir = GrammarIR(start="s", rules={"s": [("L", "items", "R")], "items": [("item",), ("items", "C", "item")],
                                     "item": [("A", "B")]},
                   terminals={"L": TerminalDef("L", r"\["), "R": TerminalDef("R", r"\]"), "C": TerminalDef("C", ","),
                              "A": TerminalDef("A", "a"), "B": TerminalDef("B", "b")})
    rec = Recognizer(build_tables(ir))
    sets = [rec.feed(rec.initial(), text.encode()) for text in ("[a", "[ab,a", "[ab,ab,a", "[ab,ab,ab,a")]
    assert all(s is not None for s in sets)
    origins = [{o for g in s.scan.values() for _, _, o in g} for s in sets]  # type: ignore[union-attr]
    assert all(a != b for a, b in itertools.combinations(origins, 2))
    assert len({rec.signature(s) for s in sets}) == 1  # type: ignore[arg-type]
    assert rec.signature(rec.feed(rec.initial(), b"[ab")) != rec.signature(sets[0])  # type: ignore[arg-type]


def test_signature_memos_stay_bounded_and_exact_past_their_cap() -> None:
    """With a small ``max_signatures``, the interned kernels, the futures shared by signature and
    the moves are all cleared when full (ids are never reused, so what was cached under old ids
    stays right): over every prefix of a list grammar fed token by token, no memo passes the cap
    and sets of one signature still have one future."""
    ir = _ir({"s": [("L", "x", "R"), ("A",)], "x": [("x", "B", "s"), ("s",)], "y": [("A",)], "z": [("A",)]})
    rec = Recognizer(build_tables(ir), max_signatures=8)
    first: dict[int, tuple[int, ...]] = {}
    for prefix in STRINGS:
        s: Any = rec.initial()
        rec.signature(s)
        data = prefix.encode()
        for k in range(0, len(data), 2):
            s = rec.feed(s, data[k:k + 2])
            if s is None:
                break
            sig = rec.signature(s)
            fut = first.setdefault(sig, _future(rec, s))
            assert fut == _future(rec, s), prefix
        assert max(rec.interned, len(rec._moves), len(rec._paths), len(rec._futures)) <= 8


class _CountingMemo(dict):  # type: ignore[type-arg]
    """A memo that counts the lookups it answers."""

    hits = 0

    def get(self, key: Any, default: Any = None) -> Any:
        got = super().get(key, default)
        self.hits += got is not None
        return got


def test_moves_known_by_their_path_keep_one_future_per_signature() -> None:
    """A set reached by a text that ends no terminal on the way takes the signature of the set
    that another text taking every scanning group to the same states gave (``Recognizer._path``).
    Nested lists of quoted strings and ``a`` runs, with or without commas between items (a
    string may end and the next begin inside one text: ``a""b`` from inside a string ends in the
    state ``ab`` does, with other items): from sets part-way through such lists, every text of up
    to 3 bytes is fed at once, and every set whose signature an earlier set has must have its
    future on every suffix of up to 2 bytes. Fails when a path may pass an accepting state, and
    when a path is known without the signature of the set it starts from."""
    alphabet = '[],"ab'
    ir = GrammarIR(start="s", rules={"s": [("L", "x", "R"), ("L", "R")], "x": [("x", "v"), ("x", "C", "v"), ("v",)],
                                     "v": [("Q",), ("AS",), ("s",)]},
                   terminals={"L": TerminalDef("L", r"\["), "R": TerminalDef("R", r"\]"), "C": TerminalDef("C", ","),
                              "Q": TerminalDef("Q", '"[ab]*"'), "AS": TerminalDef("AS", "a+")})
    rec = Recognizer(build_tables(ir))
    rec._paths = paths = _CountingMemo()
    texts = ["".join(p) for k in range(1, 4) for p in itertools.product(alphabet, repeat=k)]
    suffixes = [""] + ["".join(p) for k in range(1, 3) for p in itertools.product(alphabet, repeat=k)]

    def future(s: Any) -> tuple[int, ...]:
        out = []
        for w in suffixes:
            t = rec.feed(s, w.encode()) if w else s
            out.append(0 if t is None else 1 + t.accepting)
        return tuple(out)

    first: dict[int, tuple[int, ...]] = {}
    compared = 0
    for prefix in ['[', '["', '["a', '["ab"', '["ab",', '["ab","b', '[a', '[aa,"', '["a""b', '["",""', '[["', '[["a",',
                   '[[a,"b', '[[["']:
        before = rec.feed(rec.initial(), prefix.encode())
        assert before is not None, prefix
        rec.signature(before)
        for text in texts:
            s = rec.feed(before, text.encode())
            if s is None:
                continue
            sig = rec.signature(s)
            want = first.get(sig)
            if want is None:
                first[sig] = future(s)
            else:
                assert future(s) == want, (prefix, text)
                compared += 1
    assert paths.hits >= 30 and compared >= 300, (paths.hits, compared)
