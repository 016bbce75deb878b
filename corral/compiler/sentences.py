"""Random sentences of a compiled grammar: uniform over rule choices, with bounded depth.

Used by ``corral sample`` to show what a grammar really allows, and by the tests to derive
sentences from grammars. Terminals are filled in by a random walk on their byte automaton (which
only ever spells valid UTF-8, since the automata are built from code points).
"""

from __future__ import annotations

import random

import numpy as np

from corral.compiler.analysis import distance_to_accept, min_heights
from corral.compiler.automaton import ByteDFA
from corral.compiler.earley_tables import EarleyTables

__all__ = ["random_sentence", "random_string", "random_terminal_text"]


def _heights(tables: EarleyTables) -> list[int]:
    """Per nonterminal id, the least derivation-tree height (how deep it must go to finish)."""
    h = min_heights({a: [tables.rhs[p] for p in prods] for a, prods in enumerate(tables.prods_of)})
    return [h[a] for a in range(len(tables.nonterminals))]


def random_terminal_text(dfa: ByteDFA, rng: random.Random, *, mean_length: int = 6, max_length: int = 40) -> bytes:
    """A random string of the automaton's language (a random walk that heads home when long)."""
    dist = distance_to_accept(dfa)
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


def random_string(dfa: ByteDFA, rng: random.Random, max_bytes: int) -> bytes:
    """A random string of the automaton's language, for ``corral sample`` on a regex.

    A random walk: at each state it stops (when accepting) or moves on, uniformly over stopping
    and each distinct next state, then uniformly over the bytes leading there. Past ``max_bytes``
    it only takes steps that bring acceptance closer, so it always ends.

    Parameters
    ----------
    dfa:
        A trimmed automaton (every state can reach acceptance).
    rng:
        The source of randomness.
    max_bytes:
        Length after which the walk heads for the nearest accepting state.

    Returns
    -------
    bytes
        A string the automaton accepts.

    Raises
    ------
    Nothing.
    """
    dist = distance_to_accept(dfa)
    out = bytearray()
    s = dfa.start
    while True:
        row = dfa.trans[s]
        targets = sorted({int(t) for t in row if t >= 0})
        if len(out) >= max_bytes:
            if dfa.accepting[s]:
                return bytes(out)
            targets = [t for t in targets if dist[t] < dist[s]]
        choices: list[int | None] = list(targets)
        if dfa.accepting[s]:
            choices.append(None)
        pick = rng.choice(choices)
        if pick is None:
            return bytes(out)
        b = rng.choice([int(x) for x in np.flatnonzero(row == pick)])
        out.append(b)
        s = pick


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
