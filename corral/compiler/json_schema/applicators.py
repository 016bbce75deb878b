"""Expansion of the in-place applicators: ``oneOf`` (``anyOf``, ``allOf``, ``not`` and ``if`` are
:mod:`.algebra` connectives), inlining, emptiness, and the outcomes ``unevaluatedProperties``/
``unevaluatedItems`` are computed over.

The functions are methods of :class:`~corral.compiler.json_schema.compiler._Compiler`, which binds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


from corral.compiler.json_schema.algebra import (
    FALSE, FLAT_ALL, FLAT_NONE, TRUE, Atom, Expr, Flat, Node, ObjC, OneOf, Term, _class_of, dset_meets, live_states, conj,
    disj, join, meet, neg,
)
from corral.compiler.limits import ends_compile
from corral.errors import CompileLimitError, CorralError
from corral.compiler.json_schema.common import _Cycle, _EV0, _Ev, _with_lits

if TYPE_CHECKING:
    from corral.compiler.json_schema.compiler import _Compiler


MAX_CASES = 256  # ways the applicators next to unevaluatedProperties/Items can succeed


def _one_of(self: _Compiler, nodes: list[Expr]) -> Expr:
    if len(nodes) == 1:
        return nodes[0]
    return OneOf(tuple(nodes))  # resolved in flat(), where its context is known


def _one_of_flat(self: _Compiler, o: OneOf, context: Flat) -> Flat:
    """``o`` within ``context``: the union of its branches when no two can meet there (the
    usual discriminated union), else the exact formula."""
    ctx = Atom(context, "context")
    parts = o.parts
    pairs = [(i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))]
    within = _branch_flats(self, tuple(conj(ctx, p) for p in parts))
    alone = _branch_flats(self, parts) if within is not None else None
    if within is not None and alone is not None:  # pairs told apart by a discriminating key need no product
        values: dict[tuple[int, int, str], Flat | None] = {}
        pairs = [(i, j) for i, j in pairs if not _told_apart(self, within[i], alone[j], (i, j), values)]
    if all(self._disjoint(conj(ctx, parts[i]), parts[j]) for i, j in pairs):
        f = FLAT_NONE
        for p in parts:
            f = join(f, self.flat(p))
        return meet(context, f)
    return meet(context, self.flat(o.formula()))


def _branch_flats(self: _Compiler, parts: tuple[Expr, ...]) -> list[Flat] | None:
    """The value set of each branch, or ``None`` when one cannot be computed here (a branch
    being expanded, a limit: the pairwise test then decides alone)."""
    try:
        return [self.flat(p) for p in parts]
    except CompileLimitError as err:
        if ends_compile(err):
            raise
        return None
    except (_Cycle, CorralError):
        return None


def _told_apart(self: _Compiler, a: Flat, b: Flat, ij: tuple[int, int],
                values: dict[tuple[int, int, str], Flat | None]) -> bool:
    """Whether branch ``i`` (``a``: within the context) and branch ``j`` (``b``) certainly share
    no value, without their product: they share no type but objects, and every pair of their
    object cases has a key that one of them requires and whose values the two cannot agree on
    (``"kind": {"const": "a"}`` against ``"b"``, the key required by the context), or that the
    other forbids. Sound (``False`` may mean "not proven": the pairwise product decides then).
    For ``oneOf`` over tens of object types the pairwise products were most of a schema's
    compile (13 branches: 78 object products)."""
    i, j = ij
    if (a.null and b.null) or (a.true and b.true) or (a.false and b.false) or \
            (a.num is not False and b.num is not False) or (a.str is not False and b.str is not False) or \
            (a.arr is not False and b.arr is not False):
        return False
    if a.obj is False or b.obj is False:
        return True
    if not isinstance(a.obj, ObjC) or not isinstance(b.obj, ObjC):
        return False
    for x, ta in enumerate(a.obj.terms):
        for y, tb in enumerate(b.obj.terms):
            if not any(_key_clash(self, (i, x, ta), (-1 - j, y, tb), k, values) for k in sorted(ta.must | tb.must)):
                return False
    return True


def _key_clash(self: _Compiler, a: tuple[int, int, Term], b: tuple[int, int, Term], key: str,
               values: dict[tuple[int, int, str], Flat | None]) -> bool:
    """Whether no value of ``key`` is allowed by both object cases (``None`` values: the case
    allows no member ``key``)."""
    va = _key_values(self, a, key, values)
    vb = _key_values(self, b, key, values)
    if va is None or vb is None:
        return True
    if (va.null and vb.null) or (va.true and vb.true) or (va.false and vb.false) or \
            (va.arr is not False and vb.arr is not False) or (va.obj is not False and vb.obj is not False):
        return False
    return not dset_meets(va.num, vb.num) and not dset_meets(va.str, vb.str)


def _key_values(self: _Compiler, case: tuple[int, int, Term], key: str,
                values: dict[tuple[int, int, str], Flat | None]) -> Flat | None:
    """What a member ``key`` of an object in the case may hold: the union of the guards on its
    key class between states that can still accept (a superset); ``None`` when it may not be
    present at all (or, for a value set that cannot be computed here, any value).
    ``case`` is (branch: negative for one outside the context, term index, term)."""
    branch, index, t = case
    memo = (branch, index, key)
    if memo in values:
        return values[memo]
    out: Flat | None = None
    if key not in t.absent:
        d = t.dfa
        c = _class_of(d, key)
        live = live_states(d.accepting, [[s for row in per for _, s in row] for per in d.trans])
        guards = [g for q in live for g, q2 in d.trans[q][c] if q2 in live]
        if guards:
            flats = _branch_flats(self, tuple(guards))
            out = FLAT_ALL
            if flats is not None:
                out = FLAT_NONE
                for f in flats:
                    out = join(out, f)
    values[memo] = out
    return out


def _inline(self: _Compiler, x: Expr) -> Expr:
    """A subschema at the same instance location, expanded in place (so that its keywords meet
    their neighbours in one intersection), unless it is already being expanded."""
    if not isinstance(x, Node) or x in self._inlining:
        return x
    self._inlining.add(x)
    try:
        return self.expand(x)
    finally:
        self._inlining.discard(x)


def _disjoint(self: _Compiler, a: Expr, b: Expr) -> bool:
    """Whether no value satisfies both (a sound test: ``False`` may mean "not proven")."""
    return self._empty(conj(a, b), 2)


def _empty(self: _Compiler, e: Expr, depth: int) -> bool:
    try:
        f = self.flat(e)
    except CompileLimitError as err:
        if ends_compile(err):
            raise
        return False
    except (_Cycle, CorralError):
        return False
    if f.is_empty():
        return True
    if depth == 0 or f.null or f.true or f.false or f.num is not False or f.str is not False:
        return False
    if f.arr is not False or not isinstance(f.obj, ObjC):
        return False
    for t in f.obj.terms:
        # empty when some key it must have can only get values that are certainly impossible
        # (on the moves between states that can still accept)
        d = _with_lits(t.dfa, t.must)
        live = live_states(d.accepting, [[s for row in per for _, s in row] for per in d.trans])
        if not any(all(self._empty(g, depth - 1) for q in live for g, q2 in d.trans[q][d.lits.index(k)]
                       if q2 in live) for k in t.must):
            return False
    return True


def _unevaluated(self: _Compiler, n: Node, kw: str) -> Expr:
    schema, _, pointer, _ = n.payload
    u = self.sub(n, schema[kw], kw)
    try:
        cases = self._outcomes(n, own_uneval=False)
    except CompileLimitError as e:
        if ends_compile(e):
            raise
        self.problem(pointer, kw, str(e))
        return self.relaxed()
    out = []
    for cond, ev in cases:
        f = self._uneval_props(ev, u) if kw == "unevaluatedProperties" else self._uneval_items(ev, u)
        out.append(conj(cond, Atom(f, kw)))
    return disj(*out)


def _outcomes(self: _Compiler, n: Expr, own_uneval: bool = True) -> list[tuple[Expr, _Ev]]:
    """The ways ``n`` can succeed, each with what it evaluates (their union is ``n``)."""
    if not isinstance(n, Node):
        return [(n, _EV0)]
    schema, base, pointer, scope = n.payload
    key = (n, own_uneval)
    if key in self._outcomes_busy:
        return [(n, _EV0)]  # a cycle at one instance location: evaluates nothing more (stricter)
    self._outcomes_busy.add(key)
    try:
        own = _Ev()
        if isinstance(schema.get("properties"), dict):
            own |= _Ev(keys=frozenset(schema["properties"]))
        if isinstance(schema.get("patternProperties"), dict):
            own |= _Ev(patterns=frozenset(schema["patternProperties"]))
        if "additionalProperties" in schema or (own_uneval and "unevaluatedProperties" in schema):
            own |= _Ev(all_keys=True)
        pre = schema.get("prefixItems") if self.draft != "7" else None
        items = schema.get("items")
        if isinstance(items, list):
            pre, items = items, schema.get("additionalItems")
        if isinstance(pre, list):
            own |= _Ev(prefix=len(pre))
        if items is not None or (own_uneval and "unevaluatedItems" in schema):
            own |= _Ev(all_items=True)
        if "contains" in schema:
            own |= _Ev(contains=frozenset([self.sub(n, schema["contains"], "contains")]))
        # each case implies n itself (at the top, n's other keywords are intersected anyway)
        cases: list[tuple[Expr, _Ev]] = [(n if own_uneval else TRUE, own)]

        def combine(options: list[tuple[Expr, _Ev]]) -> None:
            nonlocal cases
            cases = [(conj(c1, c2), e1 | e2) for c1, e1 in cases for c2, e2 in options if conj(c1, c2) != FALSE]
            if len(cases) > MAX_CASES:
                raise CompileLimitError(f"the applicators can succeed in more than {MAX_CASES} ways (MAX_CASES)", limit="MAX_CASES", value=MAX_CASES)

        if "$ref" in schema:
            ref = self.expand_ref_target(n, "$ref")
            combine(self._outcomes(ref))
        if "$dynamicRef" in schema and self.draft != "7":
            combine(self._outcomes(self._dynamic_ref(n)))
        for i, b in enumerate(schema.get("allOf") or []):
            combine(self._outcomes(self.sub(n, b, "allOf", i)))
        if isinstance(schema.get("anyOf"), list):
            subs = [self.sub(n, b, "anyOf", i) for i, b in enumerate(schema["anyOf"])]
            for s in subs:
                combine(self._outcomes(s) + [(neg(s), _EV0)])
        if isinstance(schema.get("oneOf"), list):
            subs = [self.sub(n, b, "oneOf", i) for i, b in enumerate(schema["oneOf"])]
            opts = []
            for i, s in enumerate(subs):
                others = [neg(x) for j, x in enumerate(subs) if j != i]
                opts += [(conj(c, *others), e) for c, e in self._outcomes(s)]
            combine(opts)
        if "if" in schema:
            cond = self.sub(n, schema["if"], "if")
            then = self.sub(n, schema["then"], "then") if "then" in schema else TRUE
            other = self.sub(n, schema["else"], "else") if "else" in schema else TRUE
            opts = [(conj(c1, c2), e1 | e2) for c1, e1 in self._outcomes(cond) for c2, e2 in self._outcomes(then)]
            opts += [(conj(neg(cond), c), e) for c, e in self._outcomes(other)]
            combine(opts)
        for k, s, kw in self._dependent_schemas(n):
            opts = [(self._key_atom(k, False), _EV0)]
            opts += [(conj(self._key_atom(k, True), c), e) for c, e in self._outcomes(self.sub(n, s, kw, k))]
            combine(opts)
        return cases
    finally:
        self._outcomes_busy.discard(key)
