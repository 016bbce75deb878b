"""A byte-level Earley recognizer over regular terminals (the scannerless semantics of the IR).

A chart set (:class:`ESet`) is the parser's state after some prefix of bytes. Its items are
``(production, dot, origin)`` with ``origin`` the :class:`ESet` where the production started.
Items whose next symbol is a terminal are *scanning*: they are grouped by the global automaton
state ``g`` reached inside that terminal (``scan[g]``), so one byte advances a whole group with
one table lookup. When a terminal's automaton accepts, its items also move past it, and the usual
predict / complete closure runs (nullable symbols advanced at prediction, Aycock & Horspool).

Because the compiler removed every unproductive rule, every item can still complete: a set is
viable exactly when it has a scanning item or accepts, and :func:`step` returns ``None`` exactly
when a byte leaves no way to finish the text.

Signatures
----------
Two sets have the same future (the same language of continuations) when their *kernels* agree:
the items whose origin is an earlier set (items with origin in the set itself follow from the
kernel by closure), each with what happens when its production completes at its origin. That is
not the origin set itself but only its items waiting for the production's left-hand side, moved
past it (:meth:`Recognizer._future`): the second item of a JSON array and its third have different
origins whose waiting items, followed through the completions they lead to, are the same, so
their sets get one signature and share their masks. :meth:`Recognizer.signature` interns kernels
into integers (never reused), so masks can be cached by signature across sequences.
"""

from __future__ import annotations

import itertools
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from corral.compiler.earley_tables import EarleyTables

__all__ = ["ESet", "Recognizer"]

Item = tuple[int, int, "ESet"]


# How many futures :meth:`Recognizer._future` keeps pending (each waiting on further ones) before
# it enters the rest by their sets' signatures (exact either way: a set's signature stands for its futures;
# the cut only shares fewer ids between sets whose deep futures agree but whose kernels differ)
MAX_FUTURE_CHAIN = 64

_NO_ITEMS: frozenset[Any] = frozenset()  # an empty scanning group (its items are all predicted)


class ESet:
    """One chart set: the recognizer's state after a prefix (see the module docstring)."""

    __slots__ = ("scan", "waiting", "items", "predicted", "accepting", "sig", "fut", "tscan", "twaiting", "came",
                 "__weakref__")

    def __init__(self) -> None:
        self.scan: dict[int, AbstractSet[Item]] = {}  # groups are read-only once made (shared by sets)
        self.waiting: dict[int, list[Item]] = {}
        self.items: set[Item] = set()
        self.predicted: set[int] = set()
        self.accepting = False
        self.sig = -1
        self.fut: dict[int, int] | None = None  # per nonterminal: the id of what completing it here leads to
        # while unsigned: the move that reached it, ((signature, text), path or None: Recognizer.moved)
        self.came: tuple[tuple[int, bytes], tuple[int, tuple[int, ...], tuple[int, ...]] | None] | None = None
        # Predicted items (origin: this set) are kept as shared chunks of (production, dot) from
        # the recognizer's prediction templates, materialised only when a byte advances them or a
        # completion reaches them: most predictions never matter.
        self.tscan: dict[int, list[list[tuple[int, int]]]] = {}
        self.twaiting: dict[int, list[list[tuple[int, int]]]] = {}

    def group_items(self, g: int) -> AbstractSet[Item]:
        """All items of group ``g`` (explicit and predicted)."""
        group = self.scan.get(g, _NO_ITEMS)
        chunks = self.tscan.get(g)
        if not chunks:
            return group
        return group | {(p, d, self) for ch in chunks for p, d in ch}


class Recognizer:
    """The closure and scanning logic over one grammar's :class:`EarleyTables` (stateless, shared).

    Parameters
    ----------
    tables:
        The compiled grammar tables.
    max_signatures:
        Cap on interned kernels; past it the table is cleared (ids keep increasing, so cached masks
        keyed by old ids stay correct and merely stop being hit).
    observed:
        Productions whose completion a signature records even where it only passes the completion
        on (the run-time checks ask the chart which of them end; see :meth:`_future`).
    """

    def __init__(self, tables: EarleyTables, max_signatures: int = 200_000,
                 observed: frozenset[int] = frozenset()) -> None:
        self.tables = tables
        # next symbol after the dot, per production: indexed by dot; None when complete. Tuples
        # (and the rows below): tuples of ints leave the garbage collector's lists, so a process
        # holding many grammars does not walk millions of them in each full collection
        end: tuple[None] = (None,)
        self._next: list[tuple[int | None, ...]] = [body + end for body in tables.rhs]  # (2x (*body, None))
        self._lhs = tables.lhs
        self._prods_of = tables.prods_of
        self._nullable = tables.nullable
        self._tstart = tables.term_start
        self._tnull = tables.term_nullable
        # rows of the stacked automata as tuples (fast to index), made on first visit: most states
        # of a big grammar (long length counters) are never reached
        self._trans_np = tables.trans
        self._trans: list[tuple[int, ...] | None] = [None] * int(tables.trans.shape[0])
        self._acc = tables.accepting_list
        self._start_prod = tables.start_prod
        self._intern: dict[tuple[str, frozenset[Any]], int] = {}
        self._content: dict[int, frozenset[Any]] = {}  # a future's id -> its entries (to flatten it into others)
        # (signature of a set, nonterminal) -> the id of what completing it there leads to: a
        # function of the set's kernel, so sets of one signature share it (see _future)
        self._futures: dict[tuple[int, int], int] = {}
        # (signature of a set, text) -> the signature of the set after feeding it that text: a
        # function of the two (see feed), so a matcher's step to a known place costs no kernel
        self._moves: dict[tuple[int, bytes], int] = {}
        # (signature of a set, its scanning groups, where a text that ends no terminal took each)
        # -> the signature of the set after it (see moved)
        self._paths: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
        self._next_sig = 0
        self._max_sigs = max_signatures
        # the start production is always told apart: completing it accepts
        self._observed = observed | {tables.start_prod}
        ptr = tables.rhs_ptr
        self._width = (int(np.diff(ptr).max()) if ptr.shape[0] > 1 else 0) + 1  # (a pass over the bodies cost ~0.4 ms)
        self._poskeys: dict[int, int] = {}  # p * width + dot -> the key of that position (see _poskey)
        self._suffixes: dict[tuple[int | None, ...], int] = {}
        self._templates: dict[int, tuple[dict[int, list[tuple[int, int]]], dict[int, list[tuple[int, int]]], frozenset[int]]] = {}

    def _row(self, g: int) -> tuple[int, ...]:
        """Row ``g`` of the transition table as a tuple (made once; a race makes two equal ones)."""
        row = self._trans[g]
        if row is None:
            row = self._trans[g] = tuple(self._trans_np[g].tolist())
        return row

    # -- construction -------------------------------------------------------------------------------
    def _template(self, a: int) -> tuple[dict[int, list[tuple[int, int]]], dict[int, list[tuple[int, int]]], frozenset[int]]:
        """What predicting nonterminal ``a`` adds to a set (origin: the set itself), computed once:
        the items grouped by the terminal start state they scan and by the nonterminal they wait
        for, and the nonterminals predicted (nullable symbols already skipped)."""
        hit = self._templates.get(a)
        if hit is not None:
            return hit
        nxt = self._next
        items: set[tuple[int, int]] = set()
        predicted = {a}
        pending = [(p, 0) for p in self._prods_of[a]]
        items.update(pending)
        while pending:
            p, dot = pending.pop()
            sym = nxt[p][dot]
            if sym is None:
                continue
            if sym >= 0:
                if sym not in predicted:
                    predicted.add(sym)
                    for p3 in self._prods_of[sym]:
                        if (p3, 0) not in items:
                            items.add((p3, 0))
                            pending.append((p3, 0))
                if self._nullable[sym] and (p, dot + 1) not in items:
                    items.add((p, dot + 1))
                    pending.append((p, dot + 1))
            elif self._tnull[-2 - sym] and (p, dot + 1) not in items:
                items.add((p, dot + 1))
                pending.append((p, dot + 1))
        tscan: dict[int, list[tuple[int, int]]] = {}
        twait: dict[int, list[tuple[int, int]]] = {}
        for p, d in sorted(items):
            sym = nxt[p][d]
            if sym is None:
                continue
            if sym >= 0:
                twait.setdefault(sym, []).append((p, d))
            else:
                tscan.setdefault(self._tstart[-2 - sym], []).append((p, d))
        out = (tscan, twait, frozenset(predicted))
        self._templates[a] = out
        return out

    def initial(self) -> ESet:
        """The set before any byte."""
        root = ESet()
        self._close(root, [(self._start_prod, 0, root)])
        return root

    def _close(self, j: ESet, agenda: list[Item]) -> None:
        nxt = self._next
        items = j.items
        scan = j.scan
        waiting = j.waiting
        predicted = j.predicted
        nullable = self._nullable
        tstart = self._tstart
        tnull = self._tnull
        start_prod = self._start_prod
        tscan = j.tscan
        twaiting = j.twaiting
        owned: set[int] = set()  # the groups of scan made in this call (the others may be shared)
        pending = []
        for it in agenda:
            if it not in items:
                items.add(it)
                pending.append(it)
        while pending:
            it = pending.pop()
            p, dot, o = it
            sym = nxt[p][dot]
            if sym is None:
                if o is j:
                    if p == start_prod:
                        j.accepting = True
                    continue  # nullable completion: handled when the waiting item was added
                if p == start_prod:
                    j.accepting = True
                    continue
                lhs = self._lhs[p]
                for p2, d2, o2 in o.waiting.get(lhs, ()):
                    new = (p2, d2 + 1, o2)
                    if new not in items:
                        items.add(new)
                        pending.append(new)
                for chunk in o.twaiting.get(lhs, ()):
                    for p2, d2 in chunk:
                        new = (p2, d2 + 1, o)
                        if new not in items:
                            items.add(new)
                            pending.append(new)
            elif sym >= 0:
                w = waiting.get(sym)
                if w is None:
                    waiting[sym] = [it]
                else:
                    w.append(it)
                if sym not in predicted:
                    # the whole prediction closure of ``sym`` at once, as shared chunks
                    t_scan, t_wait, t_pred = self._template(sym)
                    predicted |= t_pred
                    for g3, chunk in t_scan.items():
                        lst = tscan.get(g3)
                        if lst is None:
                            tscan[g3] = [chunk]
                            if g3 not in scan:
                                scan[g3] = _NO_ITEMS
                        else:
                            lst.append(chunk)
                    for n3, chunk in t_wait.items():
                        lst = twaiting.get(n3)
                        if lst is None:
                            twaiting[n3] = [chunk]
                        else:
                            lst.append(chunk)
                if nullable[sym]:
                    new = (p, dot + 1, o)
                    if new not in items:
                        items.add(new)
                        pending.append(new)
            else:
                t = -2 - sym
                g = tstart[t]
                group = scan.get(g)
                if group is None:
                    scan[g] = {it}
                    owned.add(g)
                elif g in owned:
                    group.add(it)  # type: ignore[attr-defined]  # (made here: a set)
                elif it not in group:
                    # a group may be shared with earlier sets (step passes unchanged ones on):
                    # copied once before it grows, never changed in place
                    mine = set(group)
                    mine.add(it)
                    scan[g] = mine
                    owned.add(g)
                if tnull[t]:
                    new = (p, dot + 1, o)
                    if new not in items:
                        items.add(new)
                        pending.append(new)

    def step(self, s: ESet, byte: int) -> ESet | None:
        """The set after one more byte, or ``None`` if no text with this prefix is in the language."""
        trans = self._trans
        acc = self._acc
        new_scan: dict[int, AbstractSet[Item]] = {}
        agenda: list[Item] = []
        tscan = s.tscan
        for g, group in s.scan.items():
            row = trans[g]
            if row is None:
                row = self._row(g)
            g2 = row[byte]
            if g2 < 0:
                continue
            chunks = tscan.get(g)
            if chunks:
                group = group | {(p, d, s) for ch in chunks for p, d in ch}
            cur = new_scan.get(g2)
            # groups are never changed once made (see _close), so one that moves on unchanged is
            # shared, not copied: a string's bytes make no new group objects (they were most of a
            # long document's objects the collector walks)
            new_scan[g2] = group if cur is None else cur | group
            if acc[g2]:
                agenda.extend([(p, d + 1, o) for p, d, o in group])
        if not new_scan:
            return None
        j = ESet()
        j.scan = new_scan
        self._close(j, agenda)
        return j

    def exit_set(self, s: ESet, g: int) -> ESet:
        """The set reached when the terminal that ``s``'s group ``g`` is scanning ends.

        Only group ``g``'s items are moved past their terminal (and closed). Whatever bytes led
        there inside the terminal, the result is the same, so every token that leaves the terminal
        from ``g`` continues from this one set; other groups are other paths, checked on their own.
        """
        j = ESet()
        self._close(j, [(p, d + 1, o) for p, d, o in s.group_items(g)])
        return j

    def feed(self, s: ESet, data: bytes) -> ESet | None:
        """The set after ``data``, or ``None`` when it leaves the language's prefixes.

        When ``s`` has a signature, the new set takes the one that the same text gave from a set
        of that signature before (or signs it with it later, see :meth:`signature`): the kernel
        after a byte is a function of the kernel before it (items advance by their position keys,
        complete into their futures' entries, and the predicted ones follow from the kernel's
        next symbols, their futures from its signature), so equal signatures stay equal.
        """
        cur: ESet | None = s
        for b in data:
            cur = self.step(cur, b)  # type: ignore[arg-type]
            if cur is None:
                return None
        self.moved(s, cur, data)  # type: ignore[arg-type]
        return cur

    def moved(self, before: ESet, s: ESet, data: bytes) -> None:
        """Note that ``s`` was reached by feeding ``data`` to ``before``: when ``before`` has a
        signature, ``s`` takes the signature that move gave before, or gives its own to the move
        once signed.

        A move is known by its text, or, when no terminal can end inside ``data`` (no scanning
        group passes an accepting state on the way: the text of a string value, a key being
        typed), by where it takes each group (:meth:`_path`). With no terminal ending, no item
        advances or completes: the set after is the set before with each group's items moved to
        the group's new state (those of groups that die dropped, those of groups that meet
        merged), so its kernel is a function of the kernel before and that map. A new string's
        text then costs no kernel signature (~35 us a step: 40% of the steps of the first 300
        dev schemas were moves by texts not seen before)."""
        if data and before.sig >= 0 and s.sig < 0:
            move = (before.sig, data)
            hit = self._moves.get(move)
            if hit is not None:
                s.sig = hit
                return
            path = self._path(before, data)
            if path is not None:
                hit = self._paths.get(path)
                if hit is not None:
                    s.sig = hit
                    self._remember(self._moves, move, hit)
                    return
            s.came = (move, path)

    def _path(self, before: ESet, data: bytes) -> tuple[int, tuple[int, ...], tuple[int, ...]] | None:
        """``(signature of before, its scanning groups, the state each is in after data (-1: it
        died))``, or ``None`` when some group reaches an accepting state on the way (a terminal
        could end there, and items advance)."""
        row_of = self._row
        acc = self._acc
        groups = tuple(sorted(before.scan))
        ends = []
        for g in groups:
            h = g
            for b in data:
                h = row_of(h)[b]
                if h < 0:
                    break
                if acc[h]:
                    return None
            ends.append(h)
        return (before.sig, groups, tuple(ends))

    def viable(self, s: ESet, data: bytes) -> bool:
        """Whether ``feed(s, data)`` is not ``None`` (some sentence starts with the text so far
        and ``data``); ``s`` is not changed.

        Before each byte, the scanning groups' terminal automata try to read the rest of ``data``
        alone: if one survives to the end, the rest stays inside that terminal, and the grammar
        being productive and the automata trimmed, it can still finish. Only bytes that must leave
        a terminal are stepped through the recognizer (on new sets), so ``" name"`` costs one step
        for the space, not one closure per letter of the name.
        """
        trans = self._trans
        n = len(data)
        cur: ESet | None = s
        i = 0
        while True:
            assert cur is not None
            if i == n:
                return True
            for g in cur.scan:
                k = i
                while k < n:
                    row = trans[g]
                    if row is None:
                        row = self._row(g)
                    g = row[data[k]]
                    if g < 0:
                        break
                    k += 1
                else:
                    return True
            cur = self.step(cur, data[i])
            if cur is None:
                return False
            i += 1

    def next_bytes(self, s: ESet) -> list[int]:
        """The bytes that can come next (sorted)."""
        out: set[int] = set()
        for g in s.scan:
            row = self._row(g)
            out.update(b for b in range(256) if row[b] >= 0)
        return sorted(out)

    # -- signatures ---------------------------------------------------------------------------------
    def signature(self, s: ESet) -> int:
        """An integer equal for two sets only when their futures agree (see the module docstring):
        their kernels, each item with the id of what completing its production at its origin
        leads to (:meth:`_future`), are equal."""
        if s.sig >= 0:
            return s.sig
        # the usual case: every origin has its signature (so theirs have theirs, and so on)
        sig = self._kernel_signature(s, fast=True)
        if sig >= 0:
            s.sig = sig
            self._came(s)
            return sig
        # iterative post-order over the origins that still need a signature: a future that loops
        # back (see _future) is entered by its set's signature, so every set a future can reach
        # (an origin, transitively) has one first, and nothing recurses however deep the nesting
        stack = [s]
        while stack:
            top = stack[-1]
            missing = [o for o in self._origins(top) if o.sig < 0 and o is not top]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if top.sig < 0:
                top.sig = self._kernel_signature(top)
        self._came(s)
        return s.sig

    def _came(self, s: ESet) -> None:
        """Record the move that reached ``s`` (just signed) under its signature: by its text, and
        by its path when it has one (see :meth:`moved`)."""
        came = s.came
        if came is not None:
            s.came = None
            move, path = came
            self._remember(self._moves, move, s.sig)
            if path is not None:
                self._remember(self._paths, path, s.sig)

    def _remember(self, memo: dict[Any, int], key: Any, sig: int) -> None:
        if len(memo) >= self._max_sigs:
            memo.clear()
        memo[key] = sig

    def _kernel_signature(self, s: ESet, fast: bool = False) -> int:
        """The signature of ``s``, whose origins all have theirs; with ``fast``, ``-1`` as soon
        as an origin turns out to have none (nothing is interned for ``s`` then)."""
        lhs = self._lhs
        future = self._future
        poskey = self._poskey
        known = self._poskeys.get
        width = self._width
        kern: list[tuple[int, ...]] = [(-1,)] if s.accepting else []
        # scanning items with their group (an automaton state), waiting ones with group -1
        groups = itertools.chain(s.scan.items(), ((-1, w) for w in s.waiting.values()))
        for g, group in groups:
            for p, d, o in group:
                if o is not s:
                    if fast and o.sig < 0:
                        return -1
                    a = lhs[p]
                    memo = o.fut
                    f = memo.get(a) if memo is not None else None
                    k = known(p * width + d)
                    kern.append((k if k is not None else poskey(p, d), g, f if f is not None else future(o, a)))
        return self._interned("k", frozenset(kern))

    def _poskey(self, p: int, d: int) -> int:
        """The key of dot position ``d`` of production ``p`` in signatures: the symbols left to
        read (what an item there does next; what completing it does is its future's id), or,
        for an observed production, the position itself (odd keys)."""
        i = p * self._width + d
        k = self._poskeys.get(i)
        if k is None:
            if p in self._observed:
                k = 2 * i + 1
            else:
                rest = self._next[p][d:]
                sid = self._suffixes.get(rest)
                if sid is None:
                    sid = self._suffixes[rest] = len(self._suffixes)
                k = 2 * sid
            self._poskeys[i] = k
        return k

    def _interned(self, kind: str, content: frozenset[Any]) -> int:
        key = (kind, content)
        got = self._intern.get(key)
        if got is None:
            if len(self._intern) >= self._max_sigs:
                self._intern.clear()
                self._content.clear()
                self._futures.clear()
                self._moves.clear()
                self._paths.clear()
            got = self._next_sig
            self._next_sig += 1
            self._intern[key] = got
            if kind == "f":
                self._content[got] = content
        return got

    def _future(self, o: ESet, a: int) -> int:
        """The id of what completing nonterminal ``a`` with origin ``o`` leads to: the items of
        ``o`` waiting for ``a``, moved past it, as entries ``(position key, id of what
        completing the production at its origin leads to)`` (:meth:`_poskey`: the symbols left
        to read); an item this completes is replaced by the entries of its own completion (so
        the chains of completions that lists and unit rules make reach the same entries whatever
        their length), recorded as ``("done", p)`` when its production is observed, and as
        ``("accept",)`` for the start production.

        Exact: completing ``a`` at ``o`` adds exactly these items to a set (``_close``), and
        what an item then does is fixed by the symbols it has left to read and by what
        completing it leads to, so equal ids are equal futures. (The first item of a JSON array
        waits on ``a0f -> items . a0r`` and the next ones on ``a0r -> "," items . a0r``: the
        same symbols left, the same future.) A completion at ``o`` that loops back to one being
        computed (left recursion: ``items -> items . "," item``) is entered by that set's
        signature, which :meth:`signature` computed first (it stands for everything the set can
        lead to). Once :data:`MAX_FUTURE_CHAIN` futures are pending (a chain of futures each
        waiting on the next), a further one is entered by its set's signature, as a loop
        is: a long string's chunk counts (``A[j] -> A[j-1] CHUNK``, one per 64 code points of
        ``maxLength``, all waiting at the string's start) made one chain of 1,024 futures for
        ``maxLength: 65535``, ~30 ms in the first step inside the string; now 64 a chunk.
        Memoised per set and nonterminal (``ESet.fut``), and per signature and nonterminal
        across sets: the id is a function of the set's kernel (its items waiting for ``a`` are
        its kernel's, each with its position key and its future, and the predicted ones follow
        from the kernel's next symbols), so a set whose signature was seen before reuses its
        futures. Iterative, so deep nesting is no recursion."""
        hit = self._known_future(o, a)
        if hit is not None:
            return hit
        nxt, lhs, start, observed, content = self._next, self._lhs, self._start_prod, self._observed, self._content
        poskey = self._poskey
        stack: list[tuple[ESet, int]] = [(o, a)]
        busy: set[tuple[int, int]] = {(id(o), a)}
        while stack:
            so, sa = stack[-1]
            if so.fut is not None and sa in so.fut:
                stack.pop()
                continue
            moved = [(p2, d2 + 1, o2) for p2, d2, o2 in so.waiting.get(sa, ())]
            moved += [(p2, d2 + 1, so) for chunk in so.twaiting.get(sa, ()) for p2, d2 in chunk]
            todo: list[tuple[ESet, int]] = []
            deep = len(stack) >= MAX_FUTURE_CHAIN
            for p, d, o2 in moved:
                if p == start and nxt[p][d] is None:
                    continue
                b = lhs[p]
                if deep and o2.sig >= 0:
                    continue  # entered by o2's signature below, as a loop is
                if (id(o2), b) not in busy and self._known_future(o2, b) is None:
                    busy.add((id(o2), b))
                    todo.append((o2, b))
            if todo:
                stack.extend(todo)
                continue
            if len(moved) == 1:  # one item waits (a unit rule, a list's end): its completion's id, when it passes it on
                p, d, o2 = moved[0]
                m2 = o2.fut
                sub = m2.get(lhs[p]) if m2 is not None else None
                if sub is not None and nxt[p][d] is None and p not in observed and sub in content:
                    if so.fut is None:
                        so.fut = {}
                    so.fut[sa] = sub  # the same entries, so the same id
                    if so.sig >= 0:
                        self._share(so.sig, sa, sub)
                    stack.pop()
                    busy.discard((id(so), sa))
                    continue
            entries: set[Any] = set()
            for p, d, o2 in moved:
                complete = nxt[p][d] is None
                if complete and p == start:
                    entries.add(("accept",))
                    continue
                m2 = o2.fut
                sub = m2.get(lhs[p]) if m2 is not None else None
                ref: Any = sub if sub is not None else ("loop", o2.sig if o2.sig >= 0 else self.signature(o2), lhs[p])  # being computed: o2's signature stands for it
                if not complete:
                    entries.add((poskey(p, d), ref))
                    continue
                if p in observed:
                    entries.add(("done", p))
                inner = content.get(sub) if sub is not None else None
                if inner is None:
                    entries.add(("via", ref))
                else:
                    entries |= inner
            if so.fut is None:
                so.fut = {}
            fid = so.fut[sa] = self._interned("f", frozenset(entries))
            if so.sig >= 0:
                self._share(so.sig, sa, fid)
            stack.pop()
            busy.discard((id(so), sa))
        assert o.fut is not None
        return o.fut[a]

    def _known_future(self, o: ESet, a: int) -> int | None:
        """The id of what completing ``a`` at ``o`` leads to when it is known: memoised for ``o``,
        or for a set of ``o``'s signature (then memoised for ``o`` too); else ``None``."""
        memo = o.fut
        hit = memo.get(a) if memo is not None else None
        if hit is None and o.sig >= 0:
            hit = self._futures.get((o.sig, a))
            if hit is not None:
                if memo is None:
                    o.fut = memo = {}
                memo[a] = hit
        return hit

    def _share(self, sig: int, a: int, fid: int) -> None:
        """Record future ``fid`` for nonterminal ``a`` at every set of signature ``sig`` (bounded
        as the interned kernels are)."""
        shared = self._futures
        if len(shared) >= self._max_sigs:
            shared.clear()
        shared[(sig, a)] = fid

    @staticmethod
    def _origins(s: ESet) -> set[ESet]:
        out: set[ESet] = set()
        for group in s.scan.values():
            for _, _, o in group:
                out.add(o)
        for w in s.waiting.values():
            for _, _, o in w:
                out.add(o)
        return out

    @property
    def interned(self) -> int:
        """Number of kernels currently interned."""
        return len(self._intern)
