"""A Boolean algebra of sets of JSON values, the core of the JSON Schema compiler.

JSON Schema combines constraints with ``allOf``, ``anyOf``, ``oneOf``, ``not``, ``if``/``then``/
``else`` and ``dependentSchemas``; to compile them exactly the compiler needs intersection, union
*and complement* of the sets of values schemas describe. This module provides them.

Expressions
-----------
An :data:`Expr` is a Boolean formula (:class:`And`, :class:`Or`, :class:`Not`, :class:`Const`) over
leaves: a :class:`Node` (a schema location, expanded lazily by the compiler) or an :class:`Atom`
(a set already in normal form). The smart constructors :func:`conj`, :func:`disj` and :func:`neg`
fold constants and flatten.

Normal form
-----------
A :class:`Flat` splits a set by JSON type: flags for ``null``, ``true`` and ``false``; a
:class:`DSet` (a byte automaton) for numbers and for strings; an :class:`ArrC` for arrays and an
:class:`ObjC` for objects (``True`` or ``False`` meaning all or none of that type). Each part is
closed under intersection, union and complement, so :class:`Flat` is too:

* **numbers and strings** are regular languages of their JSON spellings. Numbers under bounds are
  exact only on plain spellings (no exponent, see :mod:`.numbers`), so a :class:`DSet` records
  whether it is *complete* (every spelling of its values) and complements an incomplete one
  within plain spellings: the result never admits a value outside the set, it only loses
  exponent spellings.
* **arrays** are symbolic automata over the item sequence: each transition is guarded by an
  :data:`Expr` on the item, and the guards leaving a state partition all values, so the automaton
  is deterministic and complete and complement is flipping its accepting states.
* **objects** are a union of *terms*. A term is a symbolic automaton over the members (key class
  and value guard) together with a *cube*: keys that must be present and keys that must be absent.
  Key classes are the literal keys the schema names plus a partition of all other keys into
  regular languages. Every constraint JSON Schema puts on an object (property schemas, counts,
  ``required``, dependencies) is a function of the member multiset, so the automaton may read the
  members in any order.

Children (item and member values) stay :data:`Expr` guards; the compiler lowers each distinct guard
to one grammar rule, so recursive schemas stay finite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from collections.abc import Iterable, Sequence
from typing import Any, Union

from corral.compiler.automaton import ByteDFA, difference, meets, product
from corral.compiler.limits import current_budget
from corral.errors import CompileLimitError

__all__ = [
    "And", "ArrC", "Atom", "Const", "DSet", "Expr", "FALSE", "Flat", "KeySet", "Moves", "Node", "ObjC", "ObjDFA", "Not",
    "OneOf", "Or",
    "TRUE", "conj", "disj", "neg",
]

MAX_OBJECT_TERMS = 1024  # terms (cases) of one object set
MERGE_TERMS = 16  # an intersection that would exceed MAX_OBJECT_TERMS first merges sides this small
MAX_AUTOMATON_STATES = 20000  # states of one array or object automaton


# -- expressions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Const:
    """The set of every value (``True``) or of none."""

    value: bool


TRUE = Const(True)
FALSE = Const(False)


@dataclass(frozen=True)
class Node:
    """A schema location; ``key`` identifies it, ``payload`` is what the compiler needs to expand it."""

    key: tuple[Any, ...]
    payload: Any = field(compare=False, hash=False, repr=False, default=None)


@dataclass(frozen=True, eq=False)
class Atom:
    """A set already in normal form (compared by identity)."""

    flat: Flat
    label: str = ""


@dataclass(frozen=True)
class And:
    """Intersection (parts in the order given: it decides the order of object properties)."""

    parts: tuple[Any, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # formulas nest deeply: hash once, not per lookup
        object.__setattr__(self, "_hash", hash(('And', self.parts)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class Or:
    """Union."""

    parts: tuple[Any, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # formulas nest deeply: hash once, not per lookup
        object.__setattr__(self, "_hash", hash(('Or', self.parts)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class Not:
    """Complement (within all JSON values)."""

    inner: Any
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # formulas nest deeply: hash once, not per lookup
        object.__setattr__(self, "_hash", hash(('Not', self.inner)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class OneOf:
    """Values in exactly one of ``parts``. Kept whole so that, inside an intersection, the other
    parts can show the branches disjoint (then it is just their union)."""

    parts: tuple[Any, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # formulas nest deeply: hash once, not per lookup
        object.__setattr__(self, "_hash", hash(('OneOf', self.parts)))

    def __hash__(self) -> int:
        return self._hash

    def formula(self) -> Any:
        """The same set with union, intersection and complement only."""
        return disj(*(conj(x, *(neg(y) for j, y in enumerate(self.parts) if j != i)) for i, x in enumerate(self.parts)))


Expr = Union[Const, Node, Atom, And, Or, Not, OneOf]


def _combine(xs: tuple[Expr, ...], cls: type[And] | type[Or], zero: Const) -> Expr:
    """``xs`` under ``cls`` (intersection or union), whose absorbing constant is ``zero``: constants
    folded, nested ones flattened, repeats dropped, parts kept in order, ``x`` beside ``not x``
    giving ``zero``."""
    out: dict[Expr, None] = {}  # ordered and without repeats
    for x in xs:
        if isinstance(x, Const):
            if x == zero:
                return zero
            continue
        if isinstance(x, cls):
            out.update(dict.fromkeys(x.parts))
        else:
            out[x] = None
    for x in out:
        if isinstance(x, Not) and x.inner in out:
            return zero
    if not out:
        return neg(zero)
    if len(out) == 1:
        return next(iter(out))
    return cls(tuple(out))


def conj(*xs: Expr) -> Expr:
    """The intersection of ``xs`` (constants folded, nested intersections flattened)."""
    return _combine(xs, And, FALSE)


def disj(*xs: Expr) -> Expr:
    """The union of ``xs``."""
    return _combine(xs, Or, TRUE)


def neg(x: Expr) -> Expr:
    """The complement of ``x``."""
    if isinstance(x, Const):
        return FALSE if x.value else TRUE
    if isinstance(x, Not):
        return x.inner
    return Not(x)


# -- scalar parts -----------------------------------------------------------------------------------
ANY_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
PLAIN_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
PLAIN_STRING = r'"[^"\\\x00-\x1f]*"'


@lru_cache(maxsize=None)
def universe(kind: str, complete: bool) -> ByteDFA:
    """Every number (``kind="num"``) or string literal; ``complete=False``: plain spellings only."""
    from corral.compiler.json_schema.json_strings import json_string_dfa
    from corral.compiler.regex import regex_to_dfa

    if kind == "num":
        return regex_to_dfa(ANY_NUMBER if complete else PLAIN_NUMBER)
    return json_string_dfa(None) if complete else regex_to_dfa(PLAIN_STRING)


@dataclass(frozen=True, eq=False)
class DSet:
    """Numbers or strings as the automaton of their JSON spellings.

    ``complete``: the automaton accepts every spelling of its values. Otherwise it accepts every
    *plain* spelling of them (numbers: no exponent; strings: no escape) and possibly some others,
    never a spelling of a value outside the set.
    """

    dfa: ByteDFA
    complete: bool = True
    emit: ByteDFA | None = None  # what a model may write (a subset of ``dfa``), when narrower


Part = Union[bool, DSet]


def _nonempty(d: ByteDFA) -> bool:
    return bool(d.accepting.any())


def dset_meet(a: Part, b: Part) -> Part:
    """Intersection of two scalar parts."""
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    assert isinstance(a, DSet) and isinstance(b, DSet)
    if a is b and hasattr(a, "pieces"):
        return a
    if hasattr(a, "pieces") or hasattr(b, "pieces"):  # a long length bound (long_strings.LongStr)
        from corral.compiler.json_schema.long_strings import long_meet
        return long_meet(a, b)
    if a.dfa is b.dfa:  # x and x (the product would cost a copy of the automaton)
        return DSet(a.dfa, a.complete and b.complete)
    d = product(a.dfa, b.dfa)
    return DSet(d, a.complete and b.complete) if _nonempty(d) else False


def dset_meets(a: Part, b: Part) -> bool:
    """Whether two scalar parts share a value: ``dset_meet(a, b) is not False``, without building
    the intersection's automaton."""
    if a is False or b is False:
        return False
    if a is True or b is True:
        return True
    assert isinstance(a, DSet) and isinstance(b, DSet)
    if hasattr(a, "pieces") or hasattr(b, "pieces") or a.dfa is b.dfa:
        return dset_meet(a, b) is not False
    return meets(a.dfa, b.dfa)


def dset_join(a: Part, b: Part) -> Part:
    """Union of two scalar parts."""
    if a is False:
        return b
    if b is False:
        return a
    if a is True or b is True:
        return True
    assert isinstance(a, DSet) and isinstance(b, DSet)
    if a is b and hasattr(a, "pieces"):
        return a
    if hasattr(a, "pieces") or hasattr(b, "pieces"):
        from corral.compiler.json_schema.long_strings import long_join
        return long_join(a, b)
    if a.dfa is b.dfa:
        return DSet(a.dfa, a.complete and b.complete)
    return DSet(product(a.dfa, b.dfa, union=True), a.complete and b.complete)


def dset_not(a: Part, kind: str) -> Part:
    """Complement of a scalar part within all numbers or strings (plain ones if incomplete)."""
    if a is True:
        return False
    if a is False:
        return True
    assert isinstance(a, DSet)
    if hasattr(a, "pieces"):
        from corral.compiler.json_schema.long_strings import long_not
        return long_not(a)  # type: ignore[arg-type]
    d = difference(universe(kind, a.complete), a.dfa)
    return DSet(d, a.complete) if _nonempty(d) else False


# -- arrays -----------------------------------------------------------------------------------------
Moves = tuple[tuple[Any, int], ...]  # (guard, next state); guards partition all values


@dataclass(frozen=True, eq=False)
class ArrC:
    """A deterministic, complete symbolic automaton over an array's items.

    ``unique``: :data:`PLAIN` (the automaton's arrays), :data:`UNIQUE` (those of them whose items
    are pairwise distinct JSON values: ``uniqueItems``, checked by the matcher at run time, not by
    the automaton) or :data:`INEXPRESSIBLE` (a union or complement mixing the two, which no
    automaton with one flag describes; lowering such a set is an unsupported-keyword error).
    """

    start: int
    accepting: tuple[bool, ...]
    trans: tuple[Moves, ...]
    unique: int = 0

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.accepting)


PLAIN, UNIQUE, INEXPRESSIBLE = 0, 1, 2  # ArrC.unique


def _unique_meet(a: int, b: int) -> int:
    return max(a, b)  # unique(A) and B = unique(A and B); INEXPRESSIBLE stays so


def _unique_join(a: int, b: int) -> int:
    return a if a == b else INEXPRESSIBLE  # unique(A) or unique(B) = unique(A or B); mixed: none


def live_states(accepting: tuple[bool, ...], succ: Sequence[Iterable[int]]) -> set[int]:
    """States from which an accepting state can be reached (guards not checked)."""
    pred: list[list[int]] = [[] for _ in accepting]
    for s, ts in enumerate(succ):
        for t in ts:
            pred[t].append(s)
    live = {s for s, x in enumerate(accepting) if x}
    todo = list(live)
    while todo:
        t = todo.pop()
        for s in pred[t]:
            if s not in live:
                live.add(s)
                todo.append(s)
    return live


def _dead(accepting: tuple[bool, ...], succ: Sequence[Iterable[int]]) -> set[int]:
    """States from which no accepting state can be reached."""
    return set(range(len(accepting))) - live_states(accepting, succ)


def _pair_product(starts: tuple[int, int], rows_a: Any, rows_b: Any, n_classes: int, ma: list[int], mb: list[int],
                  acc_a: tuple[bool, ...], acc_b: tuple[bool, ...], dead_a: set[int], dead_b: set[int], union: bool,
                  what: str) -> tuple[tuple[bool, ...], list[tuple[Moves, ...]]]:
    """The reachable product of two guarded automata; pairs that cannot accept are one state.

    ``rows_x[state][class]`` are the moves; ``mx[c]`` maps a class of the product to x's class.
    """
    def is_dead(x: int, y: int) -> bool:
        return (x in dead_a and y in dead_b) if union else (x in dead_a or y in dead_b)

    DEAD = -1
    index: dict[tuple[int, int], int] = {}
    order: list[tuple[int, int]] = []

    def state(x: int, y: int) -> int:
        if is_dead(x, y):
            x, y = DEAD, DEAD
        key = (x, y)
        j = index.get(key)
        if j is None:
            if len(order) >= MAX_AUTOMATON_STATES:
                raise CompileLimitError(f"{what} needs more than {MAX_AUTOMATON_STATES} states (MAX_AUTOMATON_STATES)",
                                        limit="MAX_AUTOMATON_STATES", value=MAX_AUTOMATON_STATES)
            j = index[key] = len(order)
            order.append(key)
        return j

    state(*starts)
    trans: list[tuple[Moves, ...]] = []
    budget = current_budget()  # the compile's deadline and memory account
    i = 0
    while i < len(order):
        if i % 256 == 0:  # the next 256 states' moves, before they are made
            budget.charge(256 * (n_classes * 64 + 128), what)
        sa, sb = order[i]
        i += 1
        if sa == DEAD:
            trans.append(tuple(((TRUE, i - 1),) for _ in range(n_classes)))
            continue
        per_class = []
        for c in range(n_classes):
            moves: list[tuple[Any, int]] = []
            to_dead: list[Any] = []
            for p, qa in rows_a[sa][ma[c]]:
                for r, qb in rows_b[sb][mb[c]]:
                    g = conj(p, r)
                    if g == FALSE:
                        continue
                    if is_dead(qa, qb):
                        to_dead.append(g)
                    else:
                        moves.append((g, state(qa, qb)))
            if to_dead:
                moves.append((disj(*to_dead), state(DEAD, DEAD)))
            per_class.append(tuple(moves))
        trans.append(tuple(per_class))
    acc = tuple(False if x == DEAD else (acc_a[x] or acc_b[y]) if union else (acc_a[x] and acc_b[y]) for x, y in order)
    return acc, trans


def arr_product(a: ArrC, b: ArrC, union: bool = False) -> ArrC:
    """Intersection (or union) of two array automata."""
    dead_a = _dead(a.accepting, [{t for _, t in m} for m in a.trans])
    dead_b = _dead(b.accepting, [{t for _, t in m} for m in b.trans])
    acc, trans = _pair_product((a.start, b.start), [(m,) for m in a.trans], [(m,) for m in b.trans], 1, [0], [0],
                               a.accepting, b.accepting, dead_a, dead_b, union, "an array constraint")
    unique = _unique_join(a.unique, b.unique) if union else _unique_meet(a.unique, b.unique)
    return ArrC(0, acc, tuple(t[0] for t in trans), unique)


def arr_not(a: ArrC) -> ArrC:
    """Complement of an array automaton (the complement of a ``uniqueItems`` set, "some item
    repeats", is :data:`INEXPRESSIBLE`)."""
    return ArrC(a.start, tuple(not x for x in a.accepting), a.trans, INEXPRESSIBLE if a.unique else PLAIN)


def arr_is_empty(a: ArrC) -> bool:
    """No accepting state is reachable (guards are not checked: a sound "empty" only; never for
    an :data:`INEXPRESSIBLE` set, whose automaton does not describe it)."""
    if a.unique == INEXPRESSIBLE:
        return False
    seen = {a.start}
    todo = [a.start]
    while todo:
        s = todo.pop()
        if a.accepting[s]:
            return False
        for g, t in a.trans[s]:
            if t not in seen and g != FALSE:
                seen.add(t)
                todo.append(t)
    return True


# -- objects ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ObjDFA:
    """A deterministic, complete symbolic automaton over an object's members.

    Key classes are ``lits`` (one key each) followed by ``rests`` (:class:`KeySet` s: disjoint, none
    containing a literal, together covering every other key). ``trans[state][class]`` are the
    moves for a member whose key is in that class, guarded by the member's value.
    """

    lits: tuple[str, ...]
    rests: tuple[KeySet, ...]
    start: int
    accepting: tuple[bool, ...]
    trans: tuple[tuple[Moves, ...], ...]
    trivial: bool = False  # accepts every member sequence

    @property
    def n_classes(self) -> int:
        """Number of key classes."""
        return len(self.lits) + len(self.rests)


@dataclass(frozen=True, eq=False)
class KeySet:
    """The keys in ``base`` (an automaton of quoted keys, every spelling; ``None``: all keys) but
    not in ``minus``. Kept symbolic: most key classes are "every key but the named ones", and no
    automaton is built for them until one is written (see :func:`emitted_keys`)."""

    base: ByteDFA | None = None
    minus: frozenset[str] = frozenset()

    def __contains__(self, key: str) -> bool:
        return key not in self.minus and (self.base is None or self.base.matches(json.dumps(key).encode()))


_ALL_KEYS = KeySet()


def any_key() -> KeySet:
    """Every key."""
    return _ALL_KEYS


def obj_any() -> ObjDFA:
    """The automaton accepting every object."""
    moves: Moves = ((TRUE, 0),)
    return ObjDFA((), (_ALL_KEYS,), 0, (True,), ((moves,),), trivial=True)


@lru_cache(maxsize=4096)
def literal_keys_dfa(keys: frozenset[str]) -> ByteDFA:
    """Every spelling of the given keys."""
    from corral.compiler.json_schema.tries import json_string_literals_dfa

    return json_string_literals_dfa(keys)


def _class_of(d: ObjDFA, key: str) -> int:
    if key in d.lits:
        return d.lits.index(key)
    for j, r in enumerate(d.rests):
        if key in r:
            return len(d.lits) + j
    raise AssertionError(f"key {key!r} is in no class")  # rests cover every key


_base_products: dict[tuple[int, int], tuple[ByteDFA, ByteDFA, ByteDFA | None]] = {}


def _base_meet(a: ByteDFA, b: ByteDFA) -> ByteDFA | None:
    hit = _base_products.get((id(a), id(b)))
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    d = product(a, b)
    out = d if _nonempty(d) else None
    if len(_base_products) > 4096:
        _base_products.clear()
    _base_products[(id(a), id(b))] = (a, b, out)  # holding a and b keeps their ids from being reused
    return out


def key_meet(a: KeySet, b: KeySet, minus: frozenset[str] = frozenset()) -> KeySet | None:
    """The keys in both (and not in ``minus``); ``None`` when certainly none."""
    if a.base is None:
        base = b.base
    elif b.base is None or a.base is b.base:
        base = a.base
    else:
        base = _base_meet(a.base, b.base)
        if base is None:
            return None
    return KeySet(base, a.minus | b.minus | minus)


def key_split(a: KeySet, d: ByteDFA) -> tuple[KeySet | None, KeySet | None]:
    """The keys of ``a`` inside and outside the automaton ``d`` (``None``: certainly none)."""
    base = a.base if a.base is not None else universe("str", True)
    inside = product(base, d)
    outside = difference(base, d)
    return (KeySet(inside, a.minus) if _nonempty(inside) else None,
            KeySet(outside, a.minus) if _nonempty(outside) else None)


def _align(a: ObjDFA, b: ObjDFA) -> tuple[tuple[str, ...], tuple[KeySet, ...], list[int], list[int]]:
    lits = a.lits + tuple(k for k in b.lits if k not in a.lits)
    ma = [_class_of(a, k) for k in lits]
    mb = [_class_of(b, k) for k in lits]
    rests: list[KeySet] = []
    litset = frozenset(lits)
    for ja, ra in enumerate(a.rests):
        for jb, rb in enumerate(b.rests):
            r = key_meet(ra, rb, litset)
            if r is not None:
                rests.append(r)
                ma.append(len(a.lits) + ja)
                mb.append(len(b.lits) + jb)
    return lits, tuple(rests), ma, mb


def obj_product(a: ObjDFA, b: ObjDFA, union: bool = False) -> ObjDFA:
    """Intersection (or union) of two object automata."""
    if not union and a.trivial:
        return b
    if not union and b.trivial:
        return a
    lits, rests, ma, mb = _align(a, b)
    dead_a = _dead(a.accepting, [{t for m in row for _, t in m} for row in a.trans])
    dead_b = _dead(b.accepting, [{t for m in row for _, t in m} for row in b.trans])
    acc, trans = _pair_product((a.start, b.start), a.trans, b.trans, len(ma), ma, mb, a.accepting, b.accepting,
                               dead_a, dead_b, union, "an object constraint")
    return ObjDFA(lits, rests, 0, acc, tuple(trans), trivial=all(acc) and all(
        all(g == TRUE for g, _ in m) for row in trans for m in row))


def obj_dfa_not(a: ObjDFA) -> ObjDFA:
    """Complement of an object automaton (over member sequences)."""
    return ObjDFA(a.lits, a.rests, a.start, tuple(not x for x in a.accepting), a.trans)


@dataclass(frozen=True, eq=False)
class Term:
    """Objects accepted by ``dfa`` with every key of ``must`` present and none of ``absent``."""

    dfa: ObjDFA
    must: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class ObjC:
    """A set of objects: the union of its terms (no term: no object)."""

    terms: tuple[Term, ...]


def _term_meet(a: Term, b: Term) -> Term | None:
    must = a.must | b.must
    absent = a.absent | b.absent
    if must & absent:
        return None
    d = obj_product(a.dfa, b.dfa)
    if all(not x for x in d.accepting):
        return None
    return Term(d, must, absent)


def _folded(t: Term) -> ObjDFA:
    return t.dfa if not (t.must or t.absent) else obj_product(t.dfa, presence_dfa(t.must, t.absent))


def _merged(terms: tuple[Term, ...]) -> tuple[Term, ...]:
    """The union of ``terms`` as one term: cubes folded into one automaton."""
    if len(terms) <= 1:
        return terms
    d = _folded(terms[0])
    for t in terms[1:]:
        d = obj_product(d, _folded(t), union=True)
    return (Term(d),)


def _collapse(terms: list[Term]) -> tuple[Term, ...]:
    """``terms``, or :class:`CompileLimitError` when there are more than :data:`MAX_OBJECT_TERMS`."""
    if len(terms) > MAX_OBJECT_TERMS:
        raise CompileLimitError(f"an object constraint splits into more than {MAX_OBJECT_TERMS} cases "
                                "(MAX_OBJECT_TERMS)", limit="MAX_OBJECT_TERMS", value=MAX_OBJECT_TERMS)
    return tuple(terms)


def objc_meet(a: ObjC, b: ObjC) -> ObjC:
    """Intersection of two object sets.

    Terms distribute (m x n of them); when that would be too many, a side of at most
    :data:`MERGE_TERMS` terms is first merged into one automaton (a union of many automata can be
    exponentially large, so bigger sides are left as they are).
    """
    if len(a.terms) * len(b.terms) > MAX_OBJECT_TERMS:
        if len(a.terms) <= MERGE_TERMS:
            a = ObjC(_merged(a.terms))
        if len(b.terms) <= MERGE_TERMS and len(a.terms) * len(b.terms) > MAX_OBJECT_TERMS:
            b = ObjC(_merged(b.terms))
    out = []
    for x in a.terms:
        for y in b.terms:
            t = _term_meet(x, y)
            if t is not None:
                out.append(t)
    return ObjC(_collapse(out))


def objc_join(a: ObjC, b: ObjC) -> ObjC:
    """Union of two object sets."""
    return ObjC(_collapse(list(a.terms) + [t for t in b.terms if t not in a.terms]))


def rest_of(lits: tuple[str, ...]) -> KeySet:
    """Every key but ``lits``."""
    return KeySet(None, frozenset(lits))


def presence_dfa(must: frozenset[str], absent: frozenset[str]) -> ObjDFA:
    """Objects with every key of ``must`` and none of ``absent`` (the keys' presence as bits)."""
    keys = tuple(sorted(must | absent))
    need = sum(1 << i for i, k in enumerate(keys) if k in must)
    ban = sum(1 << i for i, k in enumerate(keys) if k in absent)
    states = range(1 << len(keys))
    trans = tuple(tuple(((TRUE, m | 1 << i),) for i in range(len(keys))) + (((TRUE, m),),) for m in states)
    acc = tuple(m & need == need and not m & ban for m in states)
    return ObjDFA(keys, (rest_of(keys),), 0, acc, trans)


def objc_not(a: ObjC) -> ObjC | bool:
    """Complement of an object set (``True``: every object, ``False``: none).

    Each term's cube is folded into its automaton (presence bits for its few keys), so the
    complement is one automaton: the product of the terms' complements.
    """
    acc: ObjDFA | None = None
    for t in a.terms:
        d = t.dfa if not (t.must or t.absent) else obj_product(t.dfa, presence_dfa(t.must, t.absent))
        nd = obj_dfa_not(d)
        acc = nd if acc is None else obj_product(acc, nd)
        if not any(acc.accepting):
            return False
    return True if acc is None else ObjC((Term(acc),))


# -- the normal form --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Flat:
    """A set of JSON values split by type (``True``/``False`` parts: every/no value of the type)."""

    null: bool = True
    true: bool = True
    false: bool = True
    num: Part = True
    str: Part = True
    arr: bool | ArrC = True
    obj: bool | ObjC = True

    def is_empty(self) -> bool:
        """Certainly no value (a sound test: array and object guards are not explored)."""
        if self.null or self.true or self.false or self.num is not False or self.str is not False:
            return False
        if self.arr is True or (isinstance(self.arr, ArrC) and not arr_is_empty(self.arr)):
            return False
        if self.obj is True or (isinstance(self.obj, ObjC) and self.obj.terms):
            return False
        return True


FLAT_ALL = Flat()
FLAT_NONE = Flat(False, False, False, False, False, False, False)


def only(**parts: Any) -> Flat:
    """A set with the given parts and nothing of the other types."""
    base = {"null": False, "true": False, "false": False, "num": False, "str": False, "arr": False, "obj": False}
    base.update(parts)
    return Flat(**base)


def _arr_meet(a: bool | ArrC, b: bool | ArrC) -> bool | ArrC:
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    assert isinstance(a, ArrC) and isinstance(b, ArrC)
    r = arr_product(a, b)
    return False if arr_is_empty(r) else r


def _arr_join(a: bool | ArrC, b: bool | ArrC) -> bool | ArrC:
    if a is False:
        return b
    if b is False:
        return a
    if a is True or b is True:
        return True
    assert isinstance(a, ArrC) and isinstance(b, ArrC)
    return arr_product(a, b, union=True)


def _obj_meet(a: bool | ObjC, b: bool | ObjC) -> bool | ObjC:
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    assert isinstance(a, ObjC) and isinstance(b, ObjC)
    r = objc_meet(a, b)
    return r if r.terms else False


def _obj_join(a: bool | ObjC, b: bool | ObjC) -> bool | ObjC:
    if a is False:
        return b
    if b is False:
        return a
    if a is True or b is True:
        return True
    assert isinstance(a, ObjC) and isinstance(b, ObjC)
    return objc_join(a, b)


def meet(a: Flat, b: Flat) -> Flat:
    """Intersection."""
    if a is FLAT_ALL:
        return b
    if b is FLAT_ALL:
        return a
    return Flat(a.null and b.null, a.true and b.true, a.false and b.false, dset_meet(a.num, b.num),
                dset_meet(a.str, b.str), _arr_meet(a.arr, b.arr), _obj_meet(a.obj, b.obj))


def join(a: Flat, b: Flat) -> Flat:
    """Union."""
    if a is FLAT_NONE:
        return b
    if b is FLAT_NONE:
        return a
    return Flat(a.null or b.null, a.true or b.true, a.false or b.false, dset_join(a.num, b.num),
                dset_join(a.str, b.str), _arr_join(a.arr, b.arr), _obj_join(a.obj, b.obj))


def complement(a: Flat) -> Flat:
    """Complement within all JSON values."""
    if a is FLAT_ALL:
        return FLAT_NONE
    if a is FLAT_NONE:
        return FLAT_ALL
    arr: bool | ArrC = (not a.arr) if isinstance(a.arr, bool) else arr_not(a.arr)
    obj: bool | ObjC = (not a.obj) if isinstance(a.obj, bool) else objc_not(a.obj)
    return Flat(not a.null, not a.true, not a.false, dset_not(a.num, "num"), dset_not(a.str, "str"), arr, obj)
