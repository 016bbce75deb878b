"""Lowering normal-form sets to grammar rules and terminals, with the whitespace layout.

Each distinct set becomes a nonterminal: scalars become terminals with exact byte automata,
arrays and objects rules walking their automata; whitespace is prefixed to terminals or written as
rules per the ``whitespace`` mode. The functions taking ``self`` are methods of
:class:`~corral.compiler.json_schema.compiler._Compiler`, which binds them.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from corral.compiler.automaton import (
    ByteDFA,
    _live_bfs_order,
    _renumbered,
    concat,
    difference,
    frozen,
    write_shifted,
)
from corral.compiler.diagnostics import Diagnostic
from corral.compiler.earley_tables import MAX_FILTER_STATES, head_of_rows
from corral.compiler.grammar_ir import ObjectKeys, TerminalDef
from corral.compiler.json_schema.algebra import (
    FALSE, INEXPRESSIBLE, TRUE, UNIQUE, ArrC, DSet, Expr, Flat, Node, ObjC, KeySet, Term, live_states, literal_keys_dfa,
)
from corral.compiler.json_schema.tries import words_dfa
from corral.compiler.regex import regex_to_dfa
from corral.compiler.limits import current_budget
from corral.errors import GrammarError
from corral.compiler.json_schema.common import _Cycle, _with_lits
from corral.compiler.json_schema.scalars import ANY_NUMBER, ANY_STRING, _canonical, _canonical_strings

if TYPE_CHECKING:
    from collections.abc import Callable

    from corral.compiler.json_schema.compiler import _Compiler


MAX_ANY_ORDER = 8  # property_order="any" by a rule per subset of keys, up to this many named properties
CHECK_KEYS_ABOVE = 4  # property_order="any" by the matcher's ObjectKeys check above this many (simple objects)


MAX_RULES = 200_000  # nonterminals in one compiled schema (the default of Limits.max_rules)


MAX_INDENT_DEPTH = 32  # containers nest at most this deep in the "indent" layout


def fresh(self: _Compiler, base: str) -> str:
    base = _clean_name(base)
    name = base
    i = self._next_suffix.get(base, 1)  # resume where this base's numbering stopped
    while name in self._names:
        name = f"{base}_{i}"
        i += 1
    self._next_suffix[base] = i
    self._names.add(name)
    if len(self._names) > MAX_RULES or (len(self._names) & 1023) == 0:
        current_budget().require(len(self._names), "max_rules", "the schema")
    return name


@functools.lru_cache(maxsize=4096)
def _clean_name(base: str) -> str:
    """``base`` as a rule name: lower case, ``[a-z0-9_]`` only, at most 40 characters."""
    return re.sub(r"[^a-z0-9_]", "_", base.lower())[:40] or "node"


def rule(self: _Compiler, base: str, alts: list[tuple[str, ...]]) -> str:
    name = self.fresh(base)
    self.out.rules[name] = alts
    return name


def lit(self: _Compiler, text: str) -> str:
    key = ("lit", text)
    name = self._terms.get(key)
    if name is None:
        name = self.fresh("T_" + (re.sub(r"\W", "", text) or "p")).upper()
        self.out.terminals[name] = self._terminal(name, re.escape(text))
        self._terms[key] = name
    return name


def regex_term(self: _Compiler, pattern: str, base: str) -> str:
    key = ("re", pattern)
    name = self._terms.get(key)
    if name is None:
        name = self.fresh("T_" + base).upper()
        self.out.terminals[name] = self._terminal(name, f"(?:{pattern})")
        self._terms[key] = name
    return name


def _terminal(self: _Compiler, name: str, pattern: str) -> TerminalDef:
    """A terminal for ``pattern`` with the whitespace prefix (its automaton built here, from a
    cached automaton of the bare pattern: the prefix would make every one a new regex)."""
    if self._ws_dfa is None:
        return TerminalDef(name, pattern)
    full, star = _shared_automata(self, ("re", pattern), lambda: regex_to_dfa(pattern))
    return TerminalDef(name, self._ws_pattern + pattern, dfa=full, follow_dfa=star)


# Terminals' automata with the whitespace prefix, shared by the schemas compiled one after another
# (most of their punctuation, literal, number and many key terminals are the same), by the layout's
# prefix pattern and what the terminal is; read-only. The least recently used go first once they
# hold more states than MAX_SHARED_STATES (a "flexible" terminal has ~70: its prefix's 65 and the body).
_SHARED: OrderedDict[tuple[str, str, str], tuple[ByteDFA, ByteDFA | None, int]] = OrderedDict()
_SHARED_STATES = [0]
_SHARED_LOCK = threading.Lock()
MAX_SHARED_STATES = 1 << 15  # ~32 MB of transition rows


def _shared_automata(self: _Compiler, what: tuple[str, str], build: Callable[[], ByteDFA]) -> tuple[ByteDFA, ByteDFA | None]:
    """The automaton of the terminal ``what`` (``("re", pattern)`` or ``("key", key)``; ``build``
    makes its body) with this layout's whitespace prefix, and its ``_ws_star`` for the follow
    filter: built once for all the schemas compiled in one layout (while it stays recent)."""
    key = (self._ws_pattern, *what)
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
        if hit is not None:
            _SHARED.move_to_end(key)
            return hit[0], hit[1]
    core = build()
    full, star = self._ws_prefixed(core), _ws_star(core)
    states = 0
    for d in (full, star):
        if d is not None:
            d.trans.flags.writeable = False
            d.accepting.flags.writeable = False
            states += d.n_states
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = (full, star, states)
            _SHARED_STATES[0] += states
            while _SHARED_STATES[0] > MAX_SHARED_STATES and len(_SHARED) > 1:
                _SHARED_STATES[0] -= _SHARED.popitem(last=False)[1][2]
    return full, star


def dfa_term(self: _Compiler, dfa: ByteDFA, base: str, describe: str) -> str:
    key = ("dfa", id(dfa))
    name = self._terms.get(key)
    if name is None:
        self._keepalive.append(dfa)
        name = self.fresh("T_" + base).upper()
        full = self._ws_prefixed(dfa) if self._ws_dfa is not None else dfa
        self.out.terminals[name] = TerminalDef(name, describe, dfa=full,
                                               follow_dfa=_ws_star(dfa) if self._ws_dfa is not None else None)
        self._terms[key] = name
    return name


def _ws_prefixed(self: _Compiler, dfa: ByteDFA) -> ByteDFA:
    """``dfa`` with the whitespace mode's prefix (:func:`whitespace_pattern`) in front.

    Every JSON value and key starts with a byte that is not whitespace, and the prefix reads
    only whitespace, so the two automata meet where the prefix can end: a complete prefix
    hands over to ``dfa`` at the first other byte. Built directly, no subset construction.
    """
    assert self._ws_dfa is not None
    ws = _WS_BYTES
    first = dfa.trans[dfa.start]
    if (first[ws] >= 0).any():
        return concat([self._ws_dfa, dfa])
    pre = self._ws_dfa
    table, accepting, start = _prefixed_trimmed(frozen(pre.trans), frozen(pre.accepting), pre.start,
                                                frozen(dfa.trans), frozen(dfa.accepting), dfa.start)
    if table.shape[0] == 0:  # the body's language is empty: trim's one dead state
        return ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.array([False]), 0)
    return ByteDFA(table, accepting, start)


@njit(cache=True, nogil=True)
def _prefixed_trimmed(pre, pre_accepting, pre_start, body, body_accepting, start):  # type: ignore[no-untyped-def]
    """The table, accepting flags and start of :func:`_ws_prefixed`, every state reachable and
    live.

    The prefix's rows come first (whitespace bytes as the prefix reads them; from a state where
    it may end, the other bytes as ``body``'s start state reads them), then ``body``'s rows,
    moved after the prefix. ``body``'s start row is left out when no row enters it (the prefix
    reads its bytes instead). The whitespace prefix is trimmed and may end somewhere, so with a
    trimmed body the table is trimmed too: every body state is reached through a copy of the
    start's row, and every prefix state reaches an end where the body starts. Only the body's
    rows are checked; any other body is trimmed as :func:`~corral.compiler.automaton.trim` does,
    over the whole table. (A table, a trim and the Python between them cost ~40-70 us per
    terminal, paid by every key and value terminal of every schema.)"""
    k = pre.shape[0]
    nb = body.shape[0]
    entered = False
    for s in range(nb):
        for b in range(256):
            if body[s, b] == start:
                entered = True
                break
        if entered:
            break
    moved = np.empty(nb, np.int64)  # body state -> its row (-1: left out)
    r = k
    for s in range(nb):
        if s == start and not entered:
            moved[s] = -1
        else:
            moved[s] = r
            r += 1
    table = np.empty((r, 256), np.int32)
    accepting = np.empty(r, np.bool_)
    head = np.empty(256, np.int32)  # the row of a state where the prefix may end
    for b in range(256):
        t = body[start, b]
        head[b] = moved[t] if t >= 0 else -1
    for s in range(k):
        ends = pre_accepting[s]
        accepting[s] = ends and body_accepting[start]
        if ends:
            table[s] = head
        else:
            table[s] = -1
        for b in (0x20, 0x09, 0x0A, 0x0D):
            table[s, b] = pre[s, b]
    for s in range(nb):
        i = moved[s]
        if i < 0:
            continue
        accepting[i] = body_accepting[s]
        for b in range(256):
            t = body[s, b]
            table[i, b] = moved[t] if t >= 0 else -1
    # a trimmed body behind a trimmed prefix gives a trimmed table: the body's rows are checked
    order, _ = _live_bfs_order(body, body_accepting, start)
    if order.shape[0] == nb:
        return table, accepting, pre_start
    order, _ = _live_bfs_order(table, accepting, pre_start)
    return _renumbered(table, order), accepting[order], 0


def lower(self: _Compiler, e: Expr, label: str = "v", depth: int = 0) -> str:
    """The nonterminal deriving the values of ``e`` (nested ``depth`` containers deep: only the
    ``"indent"`` layout depends on it)."""
    if self._indent is None:
        depth = 0
    name = self._lowered.get((e, depth))
    if name is not None:
        return name
    if e == TRUE:
        return self.any_value(depth)
    if isinstance(e, Node):
        label = e.payload[2].rsplit("/", 1)[-1] or "root"
    name = self.fresh(label)
    self._lowered[(e, depth)] = name
    self.out.rules[name] = []
    try:
        f = self.flat(e)
    except _Cycle:
        raise GrammarError(f"{_where(e)}: the schema refers to itself without descending into the value "
                           "(an infinite loop)") from None
    shared = self._flat_rules.get((id(f), depth))
    if shared is not None:
        self.out.rules[name] = [(shared,)]
        return name
    self._flat_rules[(id(f), depth)] = name
    self._keepalive.append(f)
    self._lowering_at = _where(e)
    self.out.rules[name] = self._alternatives(f, depth)
    return name


def _nl(self: _Compiler, depth: int) -> tuple[str, ...]:
    if self._indent is None:
        return ()
    return (self.lit("\n" + " " * (self._indent * depth)),)


def _open(self: _Compiler, depth: int) -> tuple[str, ...]:
    return self._nl(depth + 1)


def _sep(self: _Compiler, depth: int) -> tuple[str, ...]:
    return (self.lit(","),) + self._nl(depth + 1)


def _close(self: _Compiler, depth: int) -> tuple[str, ...]:
    return self._nl(depth)


def _colon(self: _Compiler) -> str:
    return self.lit(": " if self._indent is not None else ":")


def _alternatives(self: _Compiler, f: Flat, depth: int) -> list[tuple[str, ...]]:
    alts: list[tuple[str, ...]] = []
    if f.null:
        alts.append((self.lit("null"),))
    if f.true:
        alts.append((self.lit("true"),))
    if f.false:
        alts.append((self.lit("false"),))
    if f.num is True:
        alts.append((self.regex_term(ANY_NUMBER, "number"),))
    elif isinstance(f.num, DSet):
        alts.append((self.dfa_term(f.num.dfa, "number", "a number"),))
    if f.str is True:
        alts.append((self.regex_term(ANY_STRING, "string"),))
    elif hasattr(f.str, "pieces"):  # long length bounds (long_strings.LongStr)
        from corral.compiler.json_schema.long_strings import lower_long_string
        alts.append((lower_long_string(self, f.str),))
    elif isinstance(f.str, DSet):
        alts.append((self.dfa_term(f.str.emit if f.str.emit is not None else f.str.dfa, "string", "a string"),))
    if self._indent is not None and depth >= MAX_INDENT_DEPTH:
        if f.arr is not False or f.obj is not False:
            self.indent_cut = True  # told in the error if nothing is left (compile_json_schema)
        return alts  # the "indent" layout nests containers at most MAX_INDENT_DEPTH deep
    if f.arr is True:
        alts.append((self.any_kind("array", depth),))
    elif isinstance(f.arr, ArrC):
        alts.append((self._lower_array(f.arr, depth),))
    if f.obj is True:
        alts.append((self.any_kind("object", depth),))
    elif isinstance(f.obj, ObjC):
        for t in f.obj.terms:
            alts.append((self._lower_term(t, depth),))
    return alts


def _lower_array(self: _Compiler, a: ArrC, depth: int) -> str:
    where = self._lowering_at
    live = live_states(a.accepting, [[t for _, t in m] for m in a.trans])
    if a.unique == INEXPRESSIBLE:  # before anything else: the automaton alone says nothing here
        self.problem(where, "uniqueItems", "arrays with unique items combined with arrays without by anyOf, "
                     "oneOf, not or if/then/else: no single check describes the result")
        # relaxed (lenient): any array, looser than both a union and a complement of such sets
        return self.any_kind("array", depth) if self.opt.lenient else self.rule("never", [])
    if a.start not in live:
        return self.rule("never", [])
    first = {q: self.fresh(f"a{q}f") for q in live}
    rest = {q: self.fresh(f"a{q}r") for q in live}
    close = self.lit("]")
    opening, sep, closing = self._open(depth), self._sep(depth), self._close(depth) + (close,)
    for q in live:
        fa: list[tuple[str, ...]] = [(close,)] if a.accepting[q] else []
        ra: list[tuple[str, ...]] = [closing] if a.accepting[q] else []
        for g, t in a.trans[q]:
            if t in live and g != FALSE:
                v = self.lower(g, "item", depth + 1)
                fa.append(opening + (v, rest[t]))
                ra.append(sep + (v, rest[t]))
        self.out.rules[first[q]] = fa
        self.out.rules[rest[q]] = ra
    if a.unique == UNIQUE:
        return self._unique_array(a, live, where, first[a.start])
    return self.rule("array", [(self.lit("["), first[a.start])])


def _unique_array(self: _Compiler, a: ArrC, live: set[int], where: str, body: str) -> str:
    """The rule of a ``uniqueItems`` array, with its run-time check (:mod:`.unique`)."""
    from corral.compiler.json_schema.unique import NotDescribable, describe_items, min_items

    guards = list(dict.fromkeys(g for q in sorted(live) for g, t in a.trans[q] if t in live and g != FALSE))
    try:
        spec = describe_items(list({id(f): f for f in (self.flat(g) for g in guards)}.values()))
    except NotDescribable as e:
        self.problem(where, "uniqueItems", f"cannot be enforced exactly on these items: {e}")
        if self.opt.lenient:  # relaxed: items may repeat
            return self.rule("array", [(self.lit("["), body)])
        return self.rule("never", [])
    if spec.n_values is not None and spec.n_values < min_items(a):
        return self.rule("never", [])  # fewer distinct values than items required: no such array
    name = self.rule("unique_array", [(self.lit("["), body)])
    self.out.guards[name] = spec
    return name


def _lower_term(self: _Compiler, t: Term, depth: int) -> str:
    d = _with_lits(t.dfa, t.must | t.absent)
    n_lits = len(d.lits)
    live = live_states(d.accepting, [[s for row in per for _, s in row] for per in d.trans])
    if d.start not in live:
        return self.rule("never", [])
    colon = self._colon()
    opening, sep, closing = self._open(depth), self._sep(depth), self._close(depth)
    key_terms: dict[int, str] = {}

    def key_term(c: int) -> str:  # built when first written: many classes are never written
        if c not in key_terms:
            key_terms[c] = self._key_term(d.lits[c]) if c < n_lits else self._rest_term(d.rests[c - n_lits])
        return key_terms[c]

    must = {i for i, k in enumerate(d.lits) if k in t.must}
    order = range(n_lits)  # schema order: the automaton keeps the keys in the order named
    banned = {i for i, k in enumerate(d.lits) if k in t.absent}
    any_order = self.opt.property_order == "any"
    keys_check = None
    if any_order and n_lits > CHECK_KEYS_ABOVE:
        keys_check = _keys_check(d, live, must, banned)
    if keys_check is not None:
        any_order = False  # any order, each named key at most once: checked by the matcher (ObjectKeys)
    elif any_order and n_lits > MAX_ANY_ORDER:
        any_order = False
        self.out.warnings.append(Diagnostic(
            None, None, "warning",
            f"an object names {n_lits} properties (more than {MAX_ANY_ORDER}): they must come in schema order",
            code="property-order",
        ))
    names: dict[Any, str] = {}
    todo: list[Any] = []

    def st(key: Any) -> str:
        if key not in names:
            names[key] = self.fresh("o")
            todo.append(key)
        return names[key]

    def member(c: int, q: int, started: bool) -> list[tuple[tuple[str, ...], int]]:
        out = []
        for g, q2 in d.trans[q][c]:
            if q2 in live and g != FALSE:
                out.append(((sep if started else opening) + (key_term(c), colon, self.lower(g, "value", depth + 1)), q2))
        return out

    start = st((d.start, 0, False))
    while todo:
        key = todo.pop()
        q, pos, started = key
        alts: list[tuple[str, ...]] = []
        if any_order:
            seen = pos
            if d.accepting[q] and all(seen >> i & 1 for i in must):
                alts.append(closing if started else ())
            for c in range(d.n_classes):
                if c < n_lits and (seen >> c & 1 or c in banned):
                    continue
                bit = 1 << c if c < n_lits else 0
                for body, q2 in member(c, q, started):
                    alts.append(body + (st((q2, seen | bit, True)),))
        elif keys_check is not None:  # one state: every class at every place
            if d.accepting[q]:
                alts.append(closing if started else ())
            for c in range(d.n_classes):
                if c < n_lits and c in banned:
                    continue
                for body, q2 in member(c, q, started):
                    alts.append(body + (st((q2, 0, True)),))
        elif pos < n_lits:
            c = order[pos]
            if c not in must:
                alts.append((st((q, pos + 1, started)),))
            if c not in banned:
                for body, q2 in member(c, q, started):
                    alts.append(body + (st((q2, pos + 1, True)),))
        else:
            if d.accepting[q]:
                alts.append(closing if started else ())
            for c in range(n_lits, d.n_classes):
                for body, q2 in member(c, q, started):
                    alts.append(body + (st((q2, pos, True)),))
        self.out.rules[names[key]] = alts
    name = self.rule("object", [(self.lit("{"), start, self.lit("}"))])
    if keys_check is not None:
        self.out.guards[name] = keys_check
    return name


def _keys_check(d: Any, live: set[int], must: set[int], banned: set[int]) -> ObjectKeys | None:
    """The :class:`ObjectKeys` check that lets an object's named keys come in any order, or
    ``None`` when the object's automaton counts or orders something (``minProperties``,
    ``maxProperties``, key classes with patterns) that the check cannot follow."""
    if len(live) != 1:
        return None
    q = next(iter(live))
    n_lits = len(d.lits)
    keys = []
    for c in range(d.n_classes):
        moves = [(g, q2) for g, q2 in d.trans[q][c] if g != FALSE and q2 in live]
        if c >= n_lits:
            if moves and d.rests[c - n_lits].base is not None:
                return None  # a key class cut by a pattern: its keys may run out
        elif c not in banned and moves:
            keys.append(d.lits[c])
    closed = not any(g != FALSE and q2 in live for c in range(n_lits, d.n_classes) for g, q2 in d.trans[q][c])
    spellings: list[tuple[bytes, str]] = []
    if closed:
        for k in keys:
            for sp in sorted({json.dumps(k).encode(), json.dumps(k, ensure_ascii=False).encode()}):
                spellings.append((sp, k))
    return ObjectKeys(tuple(keys), tuple(d.lits[i] for i in sorted(must)), tuple(spellings), closed)


def _rest_term(self: _Compiler, r: KeySet) -> str:
    """The terminal of the keys of ``r``, written as a serializer writes them (no ``\\u`` escape
    of a printable ASCII character); every spelling of a named key is left out (those keys
    have their own classes)."""
    key = ("keys", id(r.base), r.minus)
    name = self._terms.get(key)
    if name is None:
        dfa = _canonical(r.base) if r.base is not None else _canonical_strings()
        if r.minus:
            dfa = difference(dfa, _canonical_spellings(r.minus))
        if r.base is not None:
            self._keepalive.append(r.base)
        name = self.dfa_term(dfa, "key", "a key")
        self._terms[key] = name
    return name


_PLAIN_KEY = re.compile(r"[\x20-\x7e]*")


def _canonical_spellings(keys: frozenset[str]) -> ByteDFA:
    """An automaton whose strings, among the canonical ones (:func:`_canonical_strings`), are
    exactly the spellings of ``keys``. A key of printable ASCII without ``/`` has one canonical
    spelling, ``json.dumps``'s: a ``\\u`` escape of printable ASCII is not canonical, ``"`` and
    ``\\`` have one short escape each and no raw form, and only ``/`` has two (``/``, ``\\/``).
    When every key is such, the words themselves: a trie a fraction of the size of
    :func:`literal_keys_dfa`'s (every spelling, escapes included), whose building and product
    with the canonical strings were ~20% of a big schema's compile."""
    if all(_PLAIN_KEY.fullmatch(k) and "/" not in k for k in keys):
        return words_dfa(sorted(json.dumps(k).encode() for k in keys))
    return literal_keys_dfa(keys)


def _key_term(self: _Compiler, key: str) -> str:
    # written as json.dumps writes it (with or without ensure_ascii): other spellings of the key
    # ("\u0061" for "a") belong to no key class, so they are refused (stricter, and a model
    # forced off its preferred key cannot wander into escapes)
    name = self._terms.get(("key", key))
    if name is None:
        spellings = sorted({json.dumps(key).encode(), json.dumps(key, ensure_ascii=False).encode()})
        describe = f"the key {json.dumps(key)}"
        if self._ws_dfa is None:
            name = self.dfa_term(words_dfa(spellings), "k_" + key, describe)
        else:  # common keys recur across schemas: their automata are shared
            full, star = _shared_automata(self, ("key", key), lambda: words_dfa(spellings))
            name = self.fresh("T_k_" + key).upper()
            self.out.terminals[name] = TerminalDef(name, describe, dfa=full, follow_dfa=star)
        self._terms[("key", key)] = name
    return name


def any_value(self: _Compiler, depth: int = 0) -> str:
    """Any JSON value (at ``depth``, for the ``"indent"`` layout)."""
    if self._indent is None:
        depth = 0
    if ("value", depth) not in self._any:
        v = self._any[("value", depth)] = self.fresh("json_value")
        arr = self._any[("array", depth)] = self.fresh("json_array")
        obj = self._any[("object", depth)] = self.fresh("json_object")
        alts: list[tuple[str, ...]] = [
            (self.regex_term(ANY_STRING, "string"),), (self.regex_term(ANY_NUMBER, "number"),),
            (self.lit("true"),), (self.lit("false"),), (self.lit("null"),),
        ]
        self.out.rules[v] = alts
        if self._indent is not None and depth >= MAX_INDENT_DEPTH:
            self.indent_cut = True
            return v
        self.out.rules[v] = [(obj,), (arr,)] + alts
        inner = self.any_value(depth + 1)
        members = self.fresh("json_members")
        items = self.fresh("json_items")
        opening, sep, closing = self._open(depth), self._sep(depth), self._close(depth)
        self.out.rules[obj] = [(self.lit("{"), self.lit("}")), (self.lit("{"),) + opening + (members,) + closing + (self.lit("}"),)]
        self.out.rules[arr] = [(self.lit("["), self.lit("]")), (self.lit("["),) + opening + (items,) + closing + (self.lit("]"),)]
        member = (self.regex_term(ANY_STRING, "string"), self._colon(), inner)
        self.out.rules[members] = [member, (members,) + sep + member]
        self.out.rules[items] = [(inner,), (items,) + sep + (inner,)]
    return self._any[("value", depth)]


def any_kind(self: _Compiler, kind: str, depth: int = 0) -> str:
    """Any JSON array or object (``kind``)."""
    self.any_value(depth)
    return self._any[(kind, 0 if self._indent is None else depth)]


_WS_BYTES = np.array([0x20, 0x09, 0x0A, 0x0D])


def _ws_star(dfa: ByteDFA) -> ByteDFA | None:
    """``[ \\t\\n\\r]* dfa`` when ``dfa`` starts with no whitespace byte (else ``None``): a superset
    of the terminal with a counted prefix, whose unions stay small (follow-set filtering only).

    When that automaton would have more than
    :data:`~corral.compiler.earley_tables.MAX_FILTER_STATES` states, its
    :func:`~corral.compiler.earley_tables.union_head` instead (the mask store uses a filter that
    big only through its head): whitespace loops, the start's other bytes lead to acceptance.
    Made from the start's row, without copying ``dfa``'s table (a big enum's or pattern's copy
    per terminal cost appsscript 28 ms of its compile)."""
    row = np.asarray(dfa.trans[dfa.start])
    if (row[_WS_BYTES] >= 0).any():
        return None
    if dfa.n_states + 1 > MAX_FILTER_STATES:
        first = np.where(row >= 0, row + 1, -1).astype(np.int32)  # the start's row _ws_star_table writes
        first[_WS_BYTES] = 0
        return head_of_rows(first[None, :], np.zeros(1, dtype=np.int64), bool(dfa.accepting[dfa.start]))
    table, accepting = _ws_star_table(frozen(dfa.trans), frozen(dfa.accepting), dfa.start)
    return ByteDFA(table, accepting, 0)


@njit(cache=True, nogil=True)
def _ws_star_table(trans, accepting, start):  # type: ignore[no-untyped-def]
    """The table and accepting flags of :func:`_ws_star` (no rows when ``start`` reads a
    whitespace byte): a new start state 0 that loops on whitespace and otherwise reads as
    ``start`` does, then ``trans`` moved up by one (numpy's version cost ~25 us a terminal)."""
    n = trans.shape[0]
    for b in (0x20, 0x09, 0x0A, 0x0D):
        if trans[start, b] >= 0:
            return np.empty((0, 256), np.int32), accepting[:0].copy()
    out = np.empty((n + 1, 256), np.int32)
    for b in range(256):
        t = trans[start, b]
        out[0, b] = t + 1 if t >= 0 else -1
    for b in (0x20, 0x09, 0x0A, 0x0D):
        out[0, b] = 0
    write_shifted(out, 1, trans)
    acc = np.empty(n + 1, np.bool_)
    acc[0] = accepting[start]
    acc[1:] = accepting
    return out, acc


def _where(e: Expr) -> str:
    if isinstance(e, Node):
        return e.payload[2] or "/"
    return "/"
