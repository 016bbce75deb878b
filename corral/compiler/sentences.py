"""Random sentences of a compiled grammar: uniform over rule choices, with bounded depth.

Used by ``corral sample`` to show what a grammar really allows, and by the tests to derive
sentences from grammars. Terminals are filled in by a random walk on their byte automaton (which
only ever spells valid UTF-8, since the automata are built from code points).
"""

from __future__ import annotations

import random

from corral.compiler.automaton import ByteDFA
from corral.compiler.earley_tables import EarleyTables

__all__ = ["random_sentence", "random_terminal_text"]


def _heights(tables: EarleyTables) -> list[int]:
    """Per nonterminal, the least derivation-tree height (how deep it must go to finish)."""
    inf = 1 << 30
    h = [inf] * len(tables.nonterminals)
    changed = True
    while changed:
        changed = False
        for p, body in enumerate(tables.rhs):
            m = 0
            for s in body:
                if s >= 0:
                    m = max(m, h[s])
            if m + 1 < h[tables.lhs[p]]:
                h[tables.lhs[p]] = m + 1
                changed = True
    return h


def _finishing_distance(dfa: ByteDFA) -> list[int]:
    n = dfa.n_states
    dist = [0 if dfa.accepting[s] else 1 << 30 for s in range(n)]
    changed = True
    while changed:
        changed = False
        for s in range(n):
            row = dfa.trans[s]
            for b in range(256):
                t = int(row[b])
                if t >= 0 and dist[t] + 1 < dist[s]:
                    dist[s] = dist[t] + 1
                    changed = True
    return dist


def random_terminal_text(dfa: ByteDFA, rng: random.Random, *, mean_length: int = 6, max_length: int = 40) -> bytes:
    """A random string of the automaton's language (a random walk that heads home when long)."""
    dist = _finishing_distance(dfa)
    s = dfa.start
    out = bytearray()
    while True:
        if dfa.accepting[s] and (len(out) >= max_length or rng.random() < 1.0 / mean_length):
            return bytes(out)
        row = dfa.trans[s]
        options = [b for b in range(256) if row[b] >= 0]
        if not options:
            return bytes(out)
        if len(out) >= max_length:
            best = min(dist[int(row[b])] for b in options)
            options = [b for b in options if dist[int(row[b])] == best]
        b = rng.choice(options)
        out.append(b)
        s = int(row[b])


def random_sentence(tables: EarleyTables, rng: random.Random, *, max_depth: int = 12) -> bytes:
    """A random sentence of the grammar (UTF-8 bytes).

    Rule alternatives are chosen uniformly while the derivation is shallower than ``max_depth``;
    deeper, only alternatives of least height are used, so generation always ends.
    """
    heights = _heights(tables)
    out = bytearray()
    # explicit stack of (symbol, depth) to avoid recursion limits
    stack: list[tuple[int, int]] = [(0, 0)]
    while stack:
        sym, depth = stack.pop()
        if sym < 0:
            out += random_terminal_text(tables.term_dfas[-2 - sym], rng)
            continue
        prods = tables.prods_of[sym]
        if depth >= max_depth:
            def height(p: int) -> int:
                return max([heights[s] for s in tables.rhs[p] if s >= 0], default=0)

            least = min(height(p) for p in prods)
            prods = [p for p in prods if height(p) == least]
        p = rng.choice(prods)
        for s in reversed(tables.rhs[p]):
            stack.append((s, depth + 1))
    return bytes(out)
