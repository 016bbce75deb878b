"""Expansion of the object keywords (``properties``, ``required``, ``additionalProperties``,
``patternProperties``, ``propertyNames``, counts, dependencies) and of ``unevaluatedProperties``'s
evaluated properties.

The functions are methods of :class:`~corral.compiler.json_schema.compiler._Compiler`, which binds them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any


from corral.compiler.automaton import ByteDFA, product
from corral.compiler.json_schema.algebra import (
    FALSE, FLAT_ALL, TRUE, Atom, DSet, Expr, Flat, Node, ObjC, ObjDFA, KeySet, Term, key_split, rest_of, conj, obj_any, obj_product,
)
from corral.compiler.limits import ends_compile
from corral.errors import CompileLimitError, GrammarError
from corral.compiler.json_schema.keywords import MAX_COUNTED_PROPERTIES
from corral.compiler.json_schema.common import _Cycle, _Ev, _counter, _escape_pointer, _values_dfa
from corral.compiler.json_schema.tries import lone_surrogate

if TYPE_CHECKING:
    from corral.compiler.json_schema.compiler import _Compiler


def _dependent_schemas(self: _Compiler, n: Node) -> list[tuple[str, Any, str]]:
    schema, _, pointer, _ = n.payload
    out = []
    for kw in ("dependentSchemas", "dependencies"):
        deps = schema.get(kw)
        if deps is None or (kw == "dependentSchemas" and self.draft == "7"):
            continue
        if not isinstance(deps, dict):
            raise GrammarError(f"{pointer}/{kw}: must be an object")
        for k, v in deps.items():
            if isinstance(v, (dict, bool)):
                out.append((k, v, kw))
    return out


def _key_atom(self: _Compiler, key: str, present: bool) -> Expr:
    term = Term(obj_any(), must=frozenset([key])) if present else Term(obj_any(), absent=frozenset([key]))
    return Atom(Flat(obj=ObjC((term,))), f"{'has' if present else 'no'} {key}")


def _object(self: _Compiler, n: Node) -> Expr:
    from corral.compiler.json_schema.json_strings import json_string_dfa

    schema, _, pointer, _ = n.payload
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        raise GrammarError(f"{pointer}/properties: must be an object")
    pattern_props = schema.get("patternProperties", {})
    if not isinstance(pattern_props, dict):
        raise GrammarError(f"{pointer}/patternProperties: must be an object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise GrammarError(f"{pointer}/required: must be an array of strings")
    deps: dict[str, list[str]] = {}
    for kw in ("dependentRequired", "dependencies"):
        dv = schema.get(kw)
        if dv is None:
            continue
        if not isinstance(dv, dict):
            raise GrammarError(f"{pointer}/{kw}: must be an object")
        for a, v in dv.items():
            if isinstance(v, list):
                deps.setdefault(a, []).extend(x for x in v if x != a)
            elif kw == "dependentRequired":
                raise GrammarError(f"{pointer}/dependentRequired/{_escape_pointer(a)}: must be an array")
    lits = tuple(dict.fromkeys([*props, *required, *(x for a, bs in deps.items() for x in [a, *bs])]))
    has_additional = "additionalProperties" in schema
    additional = self.sub(n, schema["additionalProperties"], "additionalProperties") if has_additional else TRUE
    pats: list[tuple[str, ByteDFA, Expr]] = []
    try:
        for p, s in pattern_props.items():
            guard = self.sub(n, s, "patternProperties", p)
            d = json_string_dfa(p)  # built even when unused below: a bad pattern is still an error
            if guard is TRUE and additional is TRUE:
                # the keys it matches may hold anything, as the other keys may: splitting the keys
                # by it changes no guard (``"patternProperties": {"^.{1,255}$": {}}`` cost a
                # schema 150 ms of products). unevaluatedProperties reads the schema's patterns
                # itself, not this list.
                continue
            pats.append((p, d, guard))
    except GrammarError as e:
        raise GrammarError(f"{pointer}/patternProperties: {e.message}") from None
    except Exception as e:  # Inexpressible, CompileLimitError
        if isinstance(e, CompileLimitError) and ends_compile(e):
            raise
        self.problem(pointer, "patternProperties", str(e))
        return self.relaxed()
    names: Any = True
    if "propertyNames" in schema:
        try:
            names = self.flat(self.sub(n, schema["propertyNames"], "propertyNames")).str
        except _Cycle:
            raise GrammarError(f"{pointer}/propertyNames: refers to itself") from None
    # literal keys
    lit_guards: list[Expr] = []
    unwritable = [(k, why) for k in lits if (why := lone_surrogate(k, "the property name")) is not None]
    if unwritable:
        for k, why in unwritable:
            self.problem(pointer, "properties" if k in props else "required" if k in required else "dependentRequired", why)
        return self.relaxed()
    for key in lits:
        text = json.dumps(key, ensure_ascii=False).encode()
        gs = [self.sub(n, props[key], "properties", key)] if key in props else []
        gs += [g for _, d, g in pats if d.matches(text)]
        if key not in props and len(gs) == 0:
            gs.append(additional)
        if names is False or (isinstance(names, DSet) and not names.dfa.matches(text)):
            gs = [FALSE]
        lit_guards.append(conj(*gs))
    # the other keys, split by which patterns they match and by propertyNames
    classes: list[tuple[KeySet, frozenset[int]]] = [(rest_of(lits), frozenset())]
    for j, (_, d, _) in enumerate(pats):
        split = []
        for c, sig in classes:
            inside, outside = key_split(c, d)
            if inside is not None:
                split.append((inside, sig | {j}))
            if outside is not None:
                split.append((outside, sig))
        classes = split
    rests: list[KeySet] = []
    rest_guards: list[Expr] = []
    for c, sig in classes:
        g = conj(*(pats[j][2] for j in sorted(sig))) if sig else additional
        if names is False:
            rests.append(c)
            rest_guards.append(FALSE)
        elif isinstance(names, DSet):
            ok, bad = key_split(c, names.dfa)
            for part, guard in ((ok, g), (bad, FALSE)):
                if part is not None:
                    rests.append(part)
                    rest_guards.append(guard)
        else:
            rests.append(c)
            rest_guards.append(g)
    od = _values_dfa(lits, lit_guards, tuple(rests), rest_guards)
    lo = self._count(schema, "minProperties", pointer, 0, MAX_COUNTED_PROPERTIES)
    hi = self._count(schema, "maxProperties", pointer, None, MAX_COUNTED_PROPERTIES)
    if lo or hi is not None:
        cnt = _counter(TRUE, lo, hi)
        counter = ObjDFA(lits, tuple(rests), 0, cnt.accepting,
                         tuple(tuple(s for _ in range(len(lits) + len(rests))) for s in cnt.trans))
        od = obj_product(od, counter)
    objc = ObjC((Term(od, must=frozenset(required)),))
    from corral.compiler.json_schema.algebra import objc_meet

    for a, bs in deps.items():
        if bs:
            objc = objc_meet(objc, ObjC((Term(obj_any(), absent=frozenset([a])),
                                         Term(obj_any(), must=frozenset([a, *bs])))))
    return Atom(Flat(obj=objc if objc.terms else False), f"object {pointer}")


def _uneval_props(self: _Compiler, ev: _Ev, u: Expr) -> Flat:
    from corral.compiler.json_schema.json_strings import json_string_dfa

    if ev.all_keys:
        return FLAT_ALL
    lits = tuple(sorted(ev.keys))
    rest = rest_of(lits)
    if ev.patterns:
        m = None
        for p in sorted(ev.patterns):
            d = json_string_dfa(p)
            m = d if m is None else product(m, d, union=True)
        assert m is not None
        inside, outside = key_split(rest, m)
        parts = [(c, g) for c, g in ((inside, TRUE), (outside, u)) if c is not None]
    else:
        parts = [(rest, u)]
    od = _values_dfa(lits, [TRUE] * len(lits), tuple(c for c, _ in parts), [g for _, g in parts])
    return Flat(obj=ObjC((Term(od),)))
