"""JSON Schema -> :class:`~corral.compiler.grammar_ir.GrammarIR`.

How it works
------------
1. **Expand.** Each schema location becomes an expression (:mod:`.algebra`): the intersection of
   one normal-form set per keyword group (type and scalar keywords, ``enum``/``const``, array
   keywords, object keywords) and of the applicators: ``allOf`` is intersection, ``anyOf`` union,
   ``not`` complement, ``oneOf`` "this branch and no other", ``if``/``then``/``else``
   ``(if and then) or (not if and else)``, ``dependentSchemas`` "key absent, or key present and
   the subschema", ``$ref``/``$dynamicRef`` the target. ``unevaluatedProperties`` and
   ``unevaluatedItems`` are a union over the ways the in-place applicators can succeed, each with
   the properties (items) it evaluates.
2. **Normalise.** An expression's value set is computed in the normal form of :mod:`.algebra`
   (per type: automata for numbers and strings, symbolic automata for arrays and objects), which
   is closed under intersection, union and complement, so every combination above is exact.
3. **Lower.** Each distinct set becomes a nonterminal: scalars become terminals with exact byte
   automata (:mod:`.strings`, :mod:`.numbers`), arrays and objects rules walking their automata,
   whose item and member guards are lowered in turn (recursive schemas stay finite).

What cannot be enforced exactly is collected, with its JSON pointer, and raised together as
:class:`~corral.errors.UnsupportedSchemaError` -- or, with ``lenient=True``, relaxed and returned as
warnings. Nothing is weakened silently.

Layout of the generated text
----------------------------
With ``property_order="schema"`` (the default) the properties a schema names come in the order it
names them (optional ones may be skipped), then any other properties; with ``"any"`` the named
properties may come in any order (up to :data:`MAX_ANY_ORDER` of them; beyond that the schema
order is kept and a warning says so). Whitespace between tokens follows the ``whitespace`` mode
(:func:`whitespace_pattern`): by default (``"pretty"``) one space or a line break and indentation,
what a pretty-printer writes, and nothing after the value, so a model can neither loop on
whitespace nor trail it; ``"flexible"`` allows runs of up to ``max_whitespace`` characters (after
the value too); ``"compact"`` none; ``"indent"`` exactly ``json.dumps(indent=N)``'s layout.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urldefrag, urljoin

import numpy as np

from corral.compiler.automaton import ByteDFA, concat, difference, product, trim
from corral.compiler.grammar_ir import GrammarIR, TerminalDef
from corral.compiler.json_schema.algebra import (
    FALSE, FLAT_ALL, FLAT_NONE, TRUE, And, ArrC, Atom, Const, DSet, Expr, Flat, Moves, Node, Not, ObjC, ObjDFA, OneOf, Or,
    KeySet, Term, complement, key_split, live_states, rest_of, conj, disj, join, literal_keys_dfa, meet, neg, obj_any, obj_product, only,
)
from corral.compiler.json_schema.tries import words_dfa
from corral.compiler.regex import regex_to_dfa
from corral.compiler.limits import Limits, budget_scope, current_budget, ends_compile, entry_limits
from corral.errors import CompileLimitError, CorralError, GrammarError, UnsupportedSchemaError

__all__ = ["DEFAULT_WHITESPACE", "WHITESPACE_MODES", "SchemaOptions", "schema_to_ir", "whitespace_pattern"]

ANNOTATIONS = {
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$comment", "$defs", "definitions", "$vocabulary",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema", "$recursiveAnchor",
    "id",  # draft-04's $id (read as an annotation)
}
# keywords whose meaning corral knows; anything else that is not an annotation is ignored, as the
# spec says for unknown keywords (and reported as a warning)
TYPES = ("null", "boolean", "object", "array", "number", "string")
STRING_KW = {"minLength", "maxLength", "pattern", "format"}
NUMBER_KW = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
OBJECT_KW = {"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
             "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
             "unevaluatedProperties"}
ARRAY_KW = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "contains", "minContains",
            "maxContains", "uniqueItems", "unevaluatedItems"}
OTHER_KW = {"type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref",
            "$dynamicRef", "$recursiveRef"}
KNOWN = ANNOTATIONS | STRING_KW | NUMBER_KW | OBJECT_KW | ARRAY_KW | OTHER_KW

ANY_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
ANY_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
ANY_INTEGER = r"-?(?:0|[1-9][0-9]*)"
# the formats the specification defines (others are annotations: ignored, with a warning)
SPEC_FORMATS = {"date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4",
                "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
                "relative-json-pointer", "regex"}
MAX_COUNTED_ITEMS = 2000  # minItems/maxItems/minContains/maxContains above this are unsupported
MAX_COUNTED_PROPERTIES = 64  # likewise minProperties/maxProperties
MAX_ANY_ORDER = 8  # property_order="any" for objects naming at most this many properties
MAX_CASES = 256  # ways the applicators next to unevaluatedProperties/Items can succeed
MAX_RULES = 200_000  # nonterminals in one compiled schema (the default of Limits.max_rules)
MAX_INDENT_DEPTH = 32  # containers nest at most this deep in the "indent" layout
ROOT_URI = "https://corral.invalid/root.json"  # base URI of a schema without $id
WHITESPACE_MODES = ("pretty", "flexible", "compact", "indent")
DEFAULT_WHITESPACE = "pretty"


def whitespace_pattern(mode: str, max_whitespace: int) -> str:
    """The regular expression of what may be written wherever JSON allows whitespace.

    Why these: a model that may write any whitespace run can loop on newlines, and small ones do
    (each wasted token is a forward pass), so the default writes only what a pretty-printer
    writes.

    - ``"pretty"`` (default): nothing, one space, or a line break (``\\n`` or ``\\r\\n``) followed
      by an indentation of at most ``max_whitespace`` spaces or tabs. ``json.dumps`` output with
      either separators, with ``indent=N`` up to ``max_whitespace // N`` levels deep, and with
      tab indentation all fit. Nothing may follow the top-level value.
    - ``"flexible"``: any run of up to ``max_whitespace`` JSON whitespace characters, and such a
      run after the top-level value too (the wide setting).
    - ``"compact"`` and ``"indent"``: none here (``"indent"`` writes its own layout).

    Parameters
    ----------
    mode:
        One of :data:`WHITESPACE_MODES`.
    max_whitespace:
        The bound described above.

    Returns
    -------
    str
        The pattern (``""`` when no whitespace may be written).

    Examples
    --------
    >>> print(whitespace_pattern("pretty", 8))
    (?: |\\r?\\n(?: {0,8}|\\t{0,8}))?
    >>> whitespace_pattern("compact", 8)
    ''
    """
    if mode == "pretty":
        return f"(?: |\\r?\\n(?: {{0,{max_whitespace}}}|\\t{{0,{max_whitespace}}}))?"
    if mode == "flexible" and max_whitespace:
        return f"[ \\t\\n\\r]{{0,{max_whitespace}}}"
    return ""


@dataclass(frozen=True)
class SchemaOptions:
    """How a schema is compiled (see :func:`corral.compile_json_schema`)."""

    whitespace: str = DEFAULT_WHITESPACE
    max_whitespace: int = 64
    lenient: bool = False
    property_order: str = "schema"
    registry: Mapping[str, Any] | None = None
    indent: int = 2


@dataclass
class _Resource:
    schema: Any
    pointer: str


@dataclass
class _Out:
    rules: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    terminals: dict[str, TerminalDef] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Ev:
    """What a successful evaluation marks as evaluated (for unevaluatedProperties/Items)."""

    keys: frozenset[str] = frozenset()
    patterns: frozenset[str] = frozenset()
    all_keys: bool = False
    prefix: int = 0
    all_items: bool = False
    contains: frozenset[Any] = frozenset()

    def __or__(self, o: _Ev) -> _Ev:
        return _Ev(self.keys | o.keys, self.patterns | o.patterns, self.all_keys or o.all_keys,
                   max(self.prefix, o.prefix), self.all_items or o.all_items, self.contains | o.contains)


_EV0 = _Ev()


class _Cycle(Exception):
    pass


# where subschemas are (only these are searched for $id and anchors: an $id inside an unknown
# keyword is not an identifier)
_SUBSCHEMA = {"additionalProperties", "additionalItems", "contains", "propertyNames", "not", "if", "then", "else",
              "unevaluatedProperties", "unevaluatedItems"}
_SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
_SUBSCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _join(base: str, ref: str) -> str:
    """``ref`` resolved against ``base`` (also for URNs, which :func:`urljoin` leaves alone)."""
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", ref):
        return ref
    return urljoin(base, ref)


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _moves_ok(moves: tuple[tuple[Any, int], ...]) -> tuple[tuple[Any, int], ...]:
    return tuple((g, t) for g, t in moves if g != FALSE)


def _values_dfa(lits: tuple[str, ...], lit_guards: list[Expr], rests: tuple[KeySet, ...],
                rest_guards: list[Expr]) -> ObjDFA:
    """Objects whose every member's value satisfies its key class's guard."""
    guards = list(lit_guards) + list(rest_guards)
    ok = tuple(_moves_ok(((g, 0), (neg(g), 1))) for g in guards)
    sink = tuple(((TRUE, 1),) for _ in guards)
    trivial = all(g == TRUE for g in guards)
    return ObjDFA(lits, rests, 0, (True, False), (ok, sink), trivial=trivial)


def _with_lits(d: ObjDFA, keys: frozenset[str]) -> ObjDFA:
    """The same automaton with ``keys`` among its literal classes."""
    missing = tuple(sorted(k for k in keys if k not in d.lits))
    if not missing:
        return d
    if d.trivial:  # (a product would drop the literal classes of a trivial automaton)
        lits = d.lits + missing
        return _values_dfa(lits, [TRUE] * len(lits), (rest_of(lits),), [TRUE])
    extra = _values_dfa(missing, [TRUE] * len(missing), (rest_of(missing),), [TRUE])
    extra = ObjDFA(extra.lits, extra.rests, 0, (True,), (extra.trans[0],), trivial=False)
    return obj_product(d, extra)


class _Compiler:
    indent_cut = False  # the "indent" layout's depth limit removed containers somewhere

    def __init__(self, root: Any, options: SchemaOptions, draft: str) -> None:
        self.root = root
        self.opt = options
        self.draft = draft
        self.out = _Out()
        self._names: set[str] = set()
        self._next_suffix: dict[str, int] = {}
        self._keepalive: list[Any] = []
        # draft 4 counts only numbers written without a fraction or exponent as integers
        self._draft4 = isinstance(root, dict) and isinstance(root.get("$schema"), str) and "draft-04" in root["$schema"]
        self._terms: dict[Any, str] = {}
        self._ids: dict[str, _Resource] = {}
        self._dyn: dict[str, dict[str, _Resource]] = {}  # resource URI -> $dynamicAnchor name -> schema
        self._any: dict[tuple[str, int], str] = {}
        self._expanded: dict[Node, Expr] = {}
        self._flats: dict[Any, Flat] = {}
        self._in_flat: set[Any] = set()
        self._lowered: dict[Any, str] = {}
        self._flat_rules: dict[tuple[int, int], str] = {}
        self._outcomes_busy: set[Any] = set()
        self._inlining: set[Node] = set()
        if options.whitespace not in WHITESPACE_MODES:
            raise CorralError(f"unknown whitespace mode {options.whitespace!r}: expected one of "
                              + ", ".join(repr(m) for m in WHITESPACE_MODES))
        if isinstance(options.max_whitespace, bool) or not isinstance(options.max_whitespace, int) \
                or not 0 <= options.max_whitespace <= 1024:
            raise CorralError(f"max_whitespace must be an integer from 0 to 1024, not {options.max_whitespace!r}")
        if isinstance(options.indent, bool) or not isinstance(options.indent, int) or not 0 <= options.indent <= 16:
            raise CorralError(f"indent must be an integer from 0 to 16, not {options.indent!r}")
        self._indent = options.indent if options.whitespace == "indent" else None
        if options.property_order not in ("schema", "any"):
            raise CorralError(f"unknown property_order {options.property_order!r}: expected 'schema' or 'any'")
        self._ws_pattern = whitespace_pattern(options.whitespace, options.max_whitespace)
        self._ws_dfa = regex_to_dfa(self._ws_pattern) if self._ws_pattern else None
        for uri, doc in (options.registry or {}).items():
            self._keepalive.append(doc)
            self._ids[urldefrag(uri)[0]] = _Resource(doc, "")  # by the URI it was retrieved from
            self._index(doc, urldefrag(uri)[0], "", top=True)
        self._index(root, ROOT_URI, "", top=True)

    # -- problems ---------------------------------------------------------------------------------
    def problem(self, pointer: str, keyword: str, why: str) -> None:
        if self.opt.lenient:
            self.out.warnings.append(f"{pointer or '/'}: {keyword}: {why} (relaxed: lenient=True)")
        else:
            self.out.problems.append((pointer, keyword, why))

    def relaxed(self) -> Expr:
        """What a dropped constraint becomes: nothing in strict mode (the error is raised at the
        end anyway), everything under ``lenient``."""
        return TRUE if self.opt.lenient else FALSE

    # -- naming -----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        base = re.sub(r"[^a-z0-9_]", "_", base.lower())[:40] or "node"
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

    def rule(self, base: str, alts: list[tuple[str, ...]]) -> str:
        name = self.fresh(base)
        self.out.rules[name] = alts
        return name

    # -- terminals (whitespace folded in front) ---------------------------------------------------
    def lit(self, text: str) -> str:
        key = ("lit", text)
        name = self._terms.get(key)
        if name is None:
            name = self.fresh("T_" + (re.sub(r"\W", "", text) or "p")).upper()
            self.out.terminals[name] = self._terminal(name, re.escape(text))
            self._terms[key] = name
        return name

    def regex_term(self, pattern: str, base: str) -> str:
        key = ("re", pattern)
        name = self._terms.get(key)
        if name is None:
            name = self.fresh("T_" + base).upper()
            self.out.terminals[name] = self._terminal(name, f"(?:{pattern})")
            self._terms[key] = name
        return name

    def _terminal(self, name: str, pattern: str) -> TerminalDef:
        """A terminal for ``pattern`` with the whitespace prefix (its automaton built here, from a
        cached automaton of the bare pattern: the prefix would make every one a new regex)."""
        if self._ws_dfa is None:
            return TerminalDef(name, pattern)
        core = regex_to_dfa(pattern)
        return TerminalDef(name, self._ws_pattern + pattern, dfa=self._ws_prefixed(core), follow_dfa=_ws_star(core))

    def dfa_term(self, dfa: ByteDFA, base: str, describe: str) -> str:
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

    def _ws_prefixed(self, dfa: ByteDFA) -> ByteDFA:
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
        k = pre.n_states
        head = np.where(first >= 0, first + k, -1).astype(np.int32)
        rows = np.where(pre.accepting[:, None], head[None, :], -1).astype(np.int32)
        rows[:, ws] = pre.trans[:, ws]
        body = np.where(dfa.trans >= 0, dfa.trans + k, -1).astype(np.int32)
        accepting = np.concatenate([pre.accepting & bool(dfa.accepting[dfa.start]), dfa.accepting])
        return trim(ByteDFA(np.vstack([rows, body]), accepting, pre.start))

    # -- $id / $anchor index and $ref resolution --------------------------------------------------
    def _index(self, schema: Any, base: str, pointer: str, top: bool = False) -> None:
        if isinstance(schema, dict):
            sid = schema.get("$id") if self.draft != "7" or "$ref" not in schema else None
            if isinstance(sid, str):
                base = _join(base, sid)
                self._ids[urldefrag(base)[0]] = _Resource(schema, pointer)
                frag = urldefrag(base)[1]
                if frag and not frag.startswith("/"):  # draft 7 "$id": "#foo" is an anchor
                    self._ids[urldefrag(base)[0] + "#" + frag] = _Resource(schema, pointer)
            elif top:
                self._ids[base] = _Resource(schema, pointer)
            doc = urldefrag(base)[0]
            anchor = schema.get("$anchor")
            if isinstance(anchor, str):
                self._ids[doc + "#" + anchor] = _Resource(schema, pointer)
            dyn = schema.get("$dynamicAnchor")
            if isinstance(dyn, str) and self.draft != "7":
                self._ids.setdefault(doc + "#" + dyn, _Resource(schema, pointer))
                self._dyn.setdefault(doc, {})[dyn] = _Resource(schema, pointer)
            for k, v in schema.items():
                at = f"{pointer}/{_escape_pointer(k)}"
                if k in _SUBSCHEMA or (k == "items" and isinstance(v, dict)):
                    self._index(v, doc, at)
                elif k in _SUBSCHEMA_LISTS or (k == "items" and isinstance(v, list)):
                    for i, x in enumerate(v if isinstance(v, list) else []):
                        self._index(x, doc, f"{at}/{i}")
                elif k in _SUBSCHEMA_MAPS and isinstance(v, dict):
                    for name, x in v.items():
                        self._index(x, doc, f"{at}/{_escape_pointer(name)}")

    def resolve(self, ref: str, base: str, pointer: str, keyword: str = "$ref") -> tuple[Any, str, str] | None:
        uri = _join(base, ref)
        doc, frag = urldefrag(uri)
        res = self._ids.get(uri) if frag and not frag.startswith("/") else None
        if res is not None:
            return res.schema, doc, res.pointer
        res = self._ids.get(doc)
        if res is None:
            self.problem(pointer, keyword, f"cannot resolve {ref!r} (remote references are not fetched; "
                         "pass the document in registry=)")
            return None
        node: Any = res.schema
        ptr = res.pointer
        if frag:
            for raw in frag.lstrip("/").split("/"):
                if node is not res.schema and isinstance(node, dict) and isinstance(node.get("$id"), str) and (
                        self.draft != "7" or "$ref" not in node):
                    doc = urldefrag(_join(doc, node["$id"]))[0]  # the innermost resource holding the target
                part = raw.replace("~1", "/").replace("~0", "~")
                part = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part)
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    self.problem(pointer, keyword, f"{ref!r} points at nothing")
                    return None
                ptr += "/" + _escape_pointer(part)
        return node, doc, ptr

    def _enter(self, scope: tuple[str, ...], base: str) -> tuple[str, ...]:
        doc = urldefrag(base)[0]
        if doc in self._dyn and doc not in scope:
            return scope + (doc,)
        return scope

    # -- nodes ------------------------------------------------------------------------------------
    def node(self, schema: Any, base: str, pointer: str, scope: tuple[str, ...]) -> Expr:
        """The expression of the schema at ``pointer`` (lazy: expanded when first needed)."""
        if schema is True:
            return TRUE
        if schema is False:
            return FALSE
        if not isinstance(schema, dict):
            raise GrammarError(f"{pointer or '/'}: a schema must be an object or a boolean, not {type(schema).__name__}")
        if isinstance(schema.get("$id"), str) and (self.draft != "7" or "$ref" not in schema):
            base = _join(base, schema["$id"])
            scope = self._enter(scope, base)
        if not any(k not in ANNOTATIONS for k in schema):
            return TRUE
        return Node((id(schema), urldefrag(base)[0], scope), (schema, base, pointer, scope))

    def sub(self, parent: Node, schema: Any, *path: str | int) -> Expr:
        """The expression of a subschema of ``parent`` at ``path`` (keyword, then key/index)."""
        _, base, pointer, scope = parent.payload
        ptr = pointer + "".join("/" + _escape_pointer(str(p)) for p in path)
        return self.node(schema, base, ptr, scope)

    def expand(self, n: Node) -> Expr:
        hit = self._expanded.get(n)
        if hit is None:
            hit = self._expand(n)
            self._expanded[n] = hit
        return hit

    def _expand(self, n: Node) -> Expr:
        schema, base, pointer, scope = n.payload
        for kw in schema:
            if kw not in KNOWN and not kw.startswith("x-"):
                self.out.warnings.append(f"{pointer or '/'}: unknown keyword {kw!r} ignored (as the spec says)")
        parts: list[Expr] = []
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str):
                raise GrammarError(f"{pointer}/$ref: must be a string")
            target = self.resolve(ref, base, pointer + "/$ref")
            if target is None:
                parts.append(self.relaxed())
            else:
                parts.append(self._inline(self._target_node(target, scope)))
            if self.draft == "7":
                return parts[0]  # draft 7: siblings of $ref are ignored
        if "$dynamicRef" in schema and self.draft != "7":
            parts.append(self._dynamic_ref(n))
        if "$recursiveRef" in schema:
            self.problem(pointer, "$recursiveRef", "draft 2019-09 recursive references are not supported")
        parts += self._scalar_parts(n)
        if ARRAY_KW & schema.keys():
            parts.append(self._array(n))
        if OBJECT_KW & schema.keys():
            parts.append(self._object(n))
        for kw in ("allOf", "anyOf", "oneOf"):
            if kw in schema:
                branches = schema[kw]
                if not isinstance(branches, list) or not branches:
                    raise GrammarError(f"{pointer}/{kw}: must be a non-empty array")
                nodes = [self.sub(n, b, kw, i) for i, b in enumerate(branches)]
                if kw == "allOf":
                    parts += [self._inline(x) for x in nodes]
                elif kw == "anyOf":
                    parts.append(disj(*nodes))
                else:
                    parts.append(self._one_of(nodes))
        if "not" in schema:
            parts.append(neg(self.sub(n, schema["not"], "not")))
        if "if" in schema and ("then" in schema or "else" in schema):
            cond = self.sub(n, schema["if"], "if")
            then = self.sub(n, schema["then"], "then") if "then" in schema else TRUE
            other = self.sub(n, schema["else"], "else") if "else" in schema else TRUE
            parts.append(disj(conj(cond, then), conj(neg(cond), other)))
        for key, s, kw in self._dependent_schemas(n):
            parts.append(disj(self._key_atom(key, present=False), conj(self._key_atom(key, present=True), self.sub(n, s, kw, key))))
        if self.draft != "7":
            for kw in ("unevaluatedProperties", "unevaluatedItems"):
                if kw in schema and schema[kw] is not True and schema[kw] != {}:
                    parts.append(self._unevaluated(n, kw))
        return conj(*parts)

    def _dynamic_ref(self, n: Node) -> Expr:
        schema, base, pointer, scope = n.payload
        ref = schema["$dynamicRef"]
        if not isinstance(ref, str):
            raise GrammarError(f"{pointer}/$dynamicRef: must be a string")
        target = self.resolve(ref, base, pointer + "/$dynamicRef", "$dynamicRef")
        if target is None:
            return self.relaxed()
        tschema, tbase, tptr = target
        frag = urldefrag(ref)[1]
        if frag and not frag.startswith("/") and isinstance(tschema, dict) and tschema.get("$dynamicAnchor") == frag:
            for doc in scope:  # outermost first
                res = self._dyn.get(doc, {}).get(frag)
                if res is not None:
                    tschema, tbase, tptr = res.schema, doc, res.pointer
                    break
        return self._target_node((tschema, tbase, tptr), scope)

    def _target_node(self, target: tuple[Any, str, str], scope: tuple[str, ...]) -> Expr:
        """The node a reference leads to; evaluation enters the resource holding it (its own, if
        it has an ``$id``: :meth:`node` enters that one)."""
        tschema, tbase, tptr = target
        own = isinstance(tschema, dict) and isinstance(tschema.get("$id"), str)
        return self.node(tschema, tbase, tptr, scope if own else self._enter(scope, tbase))

    def _dependent_schemas(self, n: Node) -> list[tuple[str, Any, str]]:
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

    def _key_atom(self, key: str, present: bool) -> Expr:
        term = Term(obj_any(), must=frozenset([key])) if present else Term(obj_any(), absent=frozenset([key]))
        return Atom(Flat(obj=ObjC((term,))), f"{'has' if present else 'no'} {key}")

    def _one_of(self, nodes: list[Expr]) -> Expr:
        if len(nodes) == 1:
            return nodes[0]
        return OneOf(tuple(nodes))  # resolved in flat(), where its context is known

    def _one_of_flat(self, o: OneOf, context: Flat) -> Flat:
        """``o`` within ``context``: the union of its branches when no two can meet there (the
        usual discriminated union), else the exact formula."""
        ctx = Atom(context, "context")
        parts = o.parts
        if all(self._disjoint(conj(ctx, parts[i]), parts[j]) for i in range(len(parts)) for j in range(i + 1, len(parts))):
            f = FLAT_NONE
            for p in parts:
                f = join(f, self.flat(p))
            return meet(context, f)
        return meet(context, self.flat(o.formula()))

    def _inline(self, x: Expr) -> Expr:
        """A subschema at the same instance location, expanded in place (so that its keywords meet
        their neighbours in one intersection), unless it is already being expanded."""
        if not isinstance(x, Node) or x in self._inlining:
            return x
        self._inlining.add(x)
        try:
            return self.expand(x)
        finally:
            self._inlining.discard(x)

    def _disjoint(self, a: Expr, b: Expr) -> bool:
        """Whether no value satisfies both (a sound test: ``False`` may mean "not proven")."""
        return self._empty(conj(a, b), 2)

    def _empty(self, e: Expr, depth: int) -> bool:
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

    # -- type, numbers, strings, enum/const ---------------------------------------------------------
    def _scalar_parts(self, n: Node) -> list[Expr]:
        schema, _, pointer, _ = n.payload
        out: list[Expr] = []
        t = schema.get("type")
        types: set[str] | None = None
        if t is not None:
            tl = [t] if isinstance(t, str) else t
            if not isinstance(tl, list) or not all(isinstance(x, str) for x in tl):
                raise GrammarError(f"{pointer}/type: must be a string or an array of strings")
            for x in tl:
                if x not in TYPES and x != "integer":
                    raise GrammarError(f"{pointer}/type: unknown type {x!r}")
            types = set(tl)
        has_num = bool(NUMBER_KW & schema.keys())
        has_str = bool(STRING_KW & schema.keys())
        if types is not None or has_num or has_str:
            integer = types is not None and "integer" in types and "number" not in types
            num: Any = True
            if has_num or integer:
                num = self._number_set(schema, integer, pointer)
            st: Any = self._string_set(schema, pointer) if has_str else True
            if types is None:
                f = Flat(num=num, str=st)
            else:
                f = Flat("null" in types, "boolean" in types, "boolean" in types,
                         num if types & {"number", "integer"} else False,
                         st if "string" in types else False, "array" in types, "object" in types)
            out.append(Atom(f, f"type {pointer}"))
        if "const" in schema:
            out.append(Atom(self.value_flat(schema["const"], pointer + "/const"), "const"))
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list):
                raise GrammarError(f"{pointer}/enum: must be an array")
            out.append(Atom(self.values_flat(values, pointer + "/enum"), "enum"))
        return out

    def _number_set(self, schema: dict[str, Any], integer: bool, pointer: str) -> Any:
        bounds = {k: schema[k] for k in NUMBER_KW if k in schema}
        if self.draft == "7" or isinstance(schema.get("exclusiveMinimum"), bool) or isinstance(schema.get("exclusiveMaximum"), bool):
            # draft 4 style boolean exclusives (still seen in draft-7 era schemas)
            for side in ("Minimum", "Maximum"):
                ex = schema.get("exclusive" + side)
                if isinstance(ex, bool):
                    bounds.pop("exclusive" + side, None)
                    if ex and side.lower() in schema:
                        bounds["exclusive" + side] = schema[side.lower()]
                        bounds.pop(side.lower(), None)
        if not bounds and not integer:
            return True
        if integer and self._draft4 and not bounds:
            return DSet(regex_to_dfa(ANY_INTEGER), True)
        for k, v in bounds.items():
            if not _is_number(v):
                raise GrammarError(f"{pointer}/{k}: must be a number")
        from corral.compiler.json_schema.errors import Inexpressible

        dec = {
            "minimum": bounds.get("minimum"), "maximum": bounds.get("maximum"),
            "exclusive_minimum": bounds.get("exclusiveMinimum"), "exclusive_maximum": bounds.get("exclusiveMaximum"),
            "multiple_of": bounds.get("multipleOf"),
        }
        dec = {k: (v if isinstance(v, Decimal) or v is None else Decimal(str(v))) for k, v in dec.items()}
        try:
            dfa = _number_dfa(integer, tuple(sorted(dec.items())))
            if integer and self._draft4:
                dfa = product(dfa, regex_to_dfa(ANY_INTEGER))
        except Inexpressible as e:
            self.problem(pointer, next(iter(bounds)), str(e))
            return self.opt.lenient
        if not dfa.accepting.any():
            return False
        return DSet(dfa, complete=False)

    def _string_set(self, schema: dict[str, Any], pointer: str) -> Any:
        from corral.compiler.json_schema.errors import Inexpressible
        from corral.compiler.json_schema.formats import format_pattern
        from corral.compiler.json_schema.json_strings import json_string_dfa

        kws = {k: schema[k] for k in STRING_KW if k in schema}
        pattern = kws.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise GrammarError(f"{pointer}/pattern: must be a string")
        fmt = kws.get("format")
        fmt_ok = False
        if fmt is not None:
            if not isinstance(fmt, str):
                raise GrammarError(f"{pointer}/format: must be a string")
            fmt_ok = format_pattern(fmt) is not None
            if not fmt_ok and fmt in SPEC_FORMATS:
                self.problem(pointer, "format", f"format {fmt!r} is not supported")
            elif not fmt_ok:
                self.out.warnings.append(f"{pointer or '/'}: format {fmt!r} is not defined by JSON Schema: "
                                         "ignored, as the specification says for unknown formats")
        for k in ("minLength", "maxLength"):
            if k in kws and (not _is_number(kws[k]) or kws[k] < 0 or kws[k] != int(kws[k])):
                raise GrammarError(f"{pointer}/{k}: must be a non-negative integer")
        min_len = int(kws.get("minLength", 0))
        max_len = None if kws.get("maxLength") is None else int(kws["maxLength"])
        if pattern is None and not fmt_ok and not min_len and max_len is None:
            return True
        dfa = self._length_dfa(min_len, max_len, pointer) if (min_len or max_len is not None) else None
        try:
            if pattern is not None:
                p = json_string_dfa(pattern)
                dfa = p if dfa is None else product(dfa, p)
            complete = True
            if fmt_ok:
                f = _format_dfa(str(fmt))
                complete = fmt != "hostname"  # host names only spelled plainly (see _format_dfa)
                dfa = f if dfa is None else product(dfa, f)
        except (Inexpressible, CompileLimitError) as e:
            if isinstance(e, CompileLimitError) and ends_compile(e):
                raise
            self.problem(pointer, "pattern" if pattern is not None else "format", str(e))
            return self.opt.lenient
        except GrammarError as e:
            raise GrammarError(f"{pointer}/pattern: {e.message}") from None
        assert dfa is not None
        return DSet(dfa, complete) if dfa.accepting.any() else False

    def _length_dfa(self, min_len: int, max_len: int | None, pointer: str) -> ByteDFA:
        """The string literals of ``min_len`` to ``max_len`` characters; bounds whose counter
        passes ``max_states`` are a :class:`CompileLimitError` naming the keyword."""
        from corral.compiler.json_schema.json_strings import LengthBoundsTooLarge, json_string_dfa

        budget = current_budget()
        try:
            return json_string_dfa(None, min_length=min_len, max_length=max_len, max_states=budget.limits.max_states)
        except LengthBoundsTooLarge as e:
            kw = f"maxLength={max_len}" if max_len is not None else f"minLength={min_len}"
            with budget.at(pointer or "/"):
                raise budget.error(
                    f"{kw} needs a length counter of more than max_states={e.max_states} states (about {e.per} "
                    "per character of the bound)", "max_states", e.max_states,
                ) from None

    def values_flat(self, values: list[Any], pointer: str) -> Flat:
        """The set of exactly these JSON values (numbers by value, objects whatever their order)."""
        strings = [v for v in values if isinstance(v, str)]
        f = FLAT_NONE
        if strings:
            f = only(str=_literal_strings(strings))
        for v in values:
            if not isinstance(v, str):
                f = join(f, self.value_flat(v, pointer))
        return f

    def value_flat(self, value: Any, pointer: str) -> Flat:
        """The set holding exactly ``value``."""
        if value is None:
            return only(null=True)
        if isinstance(value, bool):
            return only(true=value, false=not value)
        if _is_number(value):
            dec = Decimal(str(value))
            if not dec.is_finite():
                raise GrammarError(f"{pointer}: {value!r} is not a JSON number")
            dfa = _number_dfa(False, tuple(sorted({"minimum": dec, "maximum": dec, "exclusive_minimum": None,
                                                   "exclusive_maximum": None, "multiple_of": None}.items())))
            return only(num=DSet(dfa, False))
        if isinstance(value, str):
            return only(str=_literal_strings([value]))
        if isinstance(value, list):
            k = len(value)
            trans: list[Moves] = []
            for i, v in enumerate(value):
                g = Atom(self.value_flat(v, pointer), "const item")
                trans.append(((g, i + 1), (neg(g), k + 1)))
            trans.append(((TRUE, k + 1),))
            trans.append(((TRUE, k + 1),))
            return only(arr=ArrC(0, tuple(i == k for i in range(k + 2)), tuple(trans)))
        if isinstance(value, dict):
            keys = tuple(value)
            guards: list[Expr] = [Atom(self.value_flat(value[x], pointer), "const member") for x in keys]
            d = _values_dfa(keys, guards, (rest_of(keys),), [FALSE])
            return only(obj=ObjC((Term(d, must=frozenset(keys)),)))
        raise GrammarError(f"{pointer}: {value!r} is not a JSON value")

    # -- arrays -----------------------------------------------------------------------------------
    def _array(self, n: Node) -> Expr:
        schema, _, pointer, _ = n.payload
        if self.draft == "7":
            items = schema.get("items", True)
            if isinstance(items, list):
                prefix_kw, prefix, rest_kw, rest = "items", items, "additionalItems", schema.get("additionalItems", True)
            else:
                prefix_kw, prefix, rest_kw, rest = "items", [], "items", items
        else:
            prefix_kw, prefix = "prefixItems", schema.get("prefixItems", [])
            rest_kw, rest = "items", schema.get("items", True)
            if isinstance(rest, list):  # draft-7 style array form under 2020-12
                prefix_kw, prefix, rest_kw, rest = "items", rest, "additionalItems", schema.get("additionalItems", True)
        if not isinstance(prefix, list):
            raise GrammarError(f"{pointer}/{prefix_kw}: must be an array")
        if schema.get("uniqueItems") is True:
            self.problem(pointer, "uniqueItems", "uniqueness is not a context-free constraint")
        parts: list[ArrC] = []
        k = len(prefix)
        guards = [self.sub(n, p, prefix_kw, i) for i, p in enumerate(prefix)]
        rest_g = self.sub(n, rest, rest_kw)
        if k or rest_g != TRUE:
            trans = [_moves_ok(((g, i + 1), (neg(g), k + 1))) for i, g in enumerate(guards)]
            trans.append(_moves_ok(((rest_g, k), (neg(rest_g), k + 1))))
            trans.append(((TRUE, k + 1),))
            parts.append(ArrC(0, tuple(i <= k for i in range(k + 2)), tuple(trans)))
        lo = self._count(schema, "minItems", pointer, 0, MAX_COUNTED_ITEMS)
        hi = self._count(schema, "maxItems", pointer, None, MAX_COUNTED_ITEMS)
        if lo or hi is not None:
            parts.append(_counter(TRUE, lo, hi))
        if "contains" in schema:
            c = self.sub(n, schema["contains"], "contains")
            if self.draft == "7":
                clo, chi = 1, None
            else:
                clo = self._count(schema, "minContains", pointer, 1, MAX_COUNTED_ITEMS)
                chi = self._count(schema, "maxContains", pointer, None, MAX_COUNTED_ITEMS)
            if clo or chi is not None:
                parts.append(_counter(c, clo, chi))
        if not parts:
            return TRUE
        a = parts[0]
        from corral.compiler.json_schema.algebra import arr_product

        for p in parts[1:]:
            a = arr_product(a, p)
        return Atom(Flat(arr=a), f"array {pointer}")

    def _count(self, schema: dict[str, Any], kw: str, pointer: str, default: int | None, cap: int) -> Any:
        v = schema.get(kw)
        if v is None:
            return default
        if not _is_number(v) or v < 0 or v != int(v):
            raise GrammarError(f"{pointer}/{kw}: must be a non-negative integer")
        if v > cap:
            self.problem(pointer, kw, f"counts above {cap} are not supported")
            return default
        return int(v)

    # -- objects ----------------------------------------------------------------------------------
    def _object(self, n: Node) -> Expr:
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
                pats.append((p, json_string_dfa(p), self.sub(n, s, "patternProperties", p)))
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

    # -- unevaluatedProperties / unevaluatedItems -------------------------------------------------------
    def _unevaluated(self, n: Node, kw: str) -> Expr:
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

    def _uneval_props(self, ev: _Ev, u: Expr) -> Flat:
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

    def _uneval_items(self, ev: _Ev, u: Expr) -> Flat:
        if ev.all_items:
            return FLAT_ALL
        k = ev.prefix
        g = disj(*ev.contains, u)
        trans: list[Moves] = [((TRUE, i + 1),) for i in range(k)]
        trans.append(_moves_ok(((g, k), (neg(g), k + 1))))
        trans.append(((TRUE, k + 1),))
        return Flat(arr=ArrC(0, tuple(i <= k for i in range(k + 2)), tuple(trans)))

    def _outcomes(self, n: Expr, own_uneval: bool = True) -> list[tuple[Expr, _Ev]]:
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

    def expand_ref_target(self, n: Node, kw: str) -> Expr:
        schema, base, pointer, scope = n.payload
        target = self.resolve(schema[kw], base, pointer + "/" + kw)
        if target is None:
            return self.relaxed()
        return self._target_node(target, scope)

    # -- normal form ------------------------------------------------------------------------------
    def flat(self, e: Expr) -> Flat:
        """The value set of ``e`` in normal form."""
        current_budget().check()
        if isinstance(e, Const):
            return FLAT_ALL if e.value else FLAT_NONE
        if isinstance(e, Atom):
            return e.flat
        hit = self._flats.get(e)
        if hit is not None:
            return hit
        if isinstance(e, Node):
            if e in self._in_flat:
                raise _Cycle()
            self._in_flat.add(e)
            try:
                try:
                    with current_budget().at(e.payload[2] or "/"):
                        f = self.flat(self.expand(e))
                except CompileLimitError as err:
                    if ends_compile(err):
                        raise
                    self.problem(e.payload[2], "schema", str(err))
                    f = FLAT_ALL if self.opt.lenient else FLAT_NONE
            finally:
                self._in_flat.discard(e)
        elif isinstance(e, And):
            f = FLAT_ALL
            for p in sorted(e.parts, key=_order):
                if not isinstance(p, OneOf):
                    f = meet(f, self.flat(p))
                    if f is FLAT_NONE:
                        break
            for p in e.parts:
                if isinstance(p, OneOf) and f is not FLAT_NONE:
                    f = self._one_of_flat(p, f)
        elif isinstance(e, OneOf):
            f = self._one_of_flat(e, FLAT_ALL)
        elif isinstance(e, Or):
            f = FLAT_NONE
            for p in sorted(e.parts, key=_order):
                f = join(f, self.flat(p))
        elif isinstance(e, Not):
            f = complement(self.flat(e.inner))
        else:  # pragma: no cover
            raise TypeError(e)
        self._flats[e] = f
        return f

    # -- lowering ---------------------------------------------------------------------------------
    def lower(self, e: Expr, label: str = "v", depth: int = 0) -> str:
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
        self.out.rules[name] = self._alternatives(f, depth)
        return name

    # -- layout: what comes after an opening bracket, between members, before a closing one --------
    def _nl(self, depth: int) -> tuple[str, ...]:
        if self._indent is None:
            return ()
        return (self.lit("\n" + " " * (self._indent * depth)),)

    def _open(self, depth: int) -> tuple[str, ...]:
        return self._nl(depth + 1)

    def _sep(self, depth: int) -> tuple[str, ...]:
        return (self.lit(","),) + self._nl(depth + 1)

    def _close(self, depth: int) -> tuple[str, ...]:
        return self._nl(depth)

    def _colon(self) -> str:
        return self.lit(": " if self._indent is not None else ":")

    def _alternatives(self, f: Flat, depth: int) -> list[tuple[str, ...]]:
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

    def _lower_array(self, a: ArrC, depth: int) -> str:
        live = live_states(a.accepting, [[t for _, t in m] for m in a.trans])
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
        return self.rule("array", [(self.lit("["), first[a.start])])

    def _lower_term(self, t: Term, depth: int) -> str:
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
        if any_order and n_lits > MAX_ANY_ORDER:
            any_order = False
            self.out.warnings.append(f"an object names {n_lits} properties (more than {MAX_ANY_ORDER}): "
                                     "they must come in schema order")
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
        return self.rule("object", [(self.lit("{"), start, self.lit("}"))])

    def _rest_term(self, r: KeySet) -> str:
        """The terminal of the keys of ``r``, written as a serializer writes them (no ``\\u`` escape
        of a printable ASCII character); every spelling of a named key is left out (those keys
        have their own classes)."""
        key = ("keys", id(r.base), r.minus)
        name = self._terms.get(key)
        if name is None:
            dfa = _canonical(r.base) if r.base is not None else _canonical_strings()
            if r.minus:
                dfa = difference(dfa, literal_keys_dfa(r.minus))
            if r.base is not None:
                self._keepalive.append(r.base)
            name = self.dfa_term(dfa, "key", "a key")
            self._terms[key] = name
        return name

    def _key_term(self, key: str) -> str:
        # written as json.dumps writes it (with or without ensure_ascii): other spellings of the key
        # ("\u0061" for "a") belong to no key class, so they are refused (stricter, and a model
        # forced off its preferred key cannot wander into escapes)
        name = self._terms.get(("key", key))
        if name is None:
            spellings = sorted({json.dumps(key).encode(), json.dumps(key, ensure_ascii=False).encode()})
            name = self.dfa_term(words_dfa(spellings), "k_" + key, f"the key {json.dumps(key)}")
            self._terms[("key", key)] = name
        return name

    # -- the generic JSON value -------------------------------------------------------------------
    def any_value(self, depth: int = 0) -> str:
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

    def any_kind(self, kind: str, depth: int = 0) -> str:
        """Any JSON array or object (``kind``)."""
        self.any_value(depth)
        return self._any[(kind, 0 if self._indent is None else depth)]


_CANONICAL = (r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:00[01][0-9a-fA-F]|007[fF]|00[89a-fA-F][0-9a-fA-F]'
              r'|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3}))*"')


_canonical_done: dict[int, tuple[ByteDFA, ByteDFA]] = {}


def _canonical(dfa: ByteDFA) -> ByteDFA:
    """The spellings in ``dfa`` that do not escape a printable ASCII character as ``\\uXXXX`` (no
    serializer writes ``"\\u0061"`` for ``"a"``; a model pushed off its preferred text could)."""
    hit = _canonical_done.get(id(dfa))
    if hit is not None and hit[0] is dfa:
        return hit[1]
    out = product(dfa, _canonical_strings())
    if len(_canonical_done) > 1024:
        _canonical_done.clear()
    _canonical_done[id(dfa)] = (dfa, out)  # holding dfa keeps its id from being reused
    return out


@functools.lru_cache(maxsize=1)
def _canonical_strings() -> ByteDFA:
    return regex_to_dfa(_CANONICAL)


_WS_BYTES = np.array([0x20, 0x09, 0x0A, 0x0D])


def _ws_star(dfa: ByteDFA) -> ByteDFA | None:
    """``[ \\t\\n\\r]* dfa`` when ``dfa`` starts with no whitespace byte (else ``None``): a superset
    of the terminal with a counted prefix, whose unions stay small (follow-set filtering only)."""
    first = dfa.trans[dfa.start]
    if (first[_WS_BYTES] >= 0).any():
        return None
    head = np.where(first >= 0, first + 1, -1).astype(np.int32)
    head[_WS_BYTES] = 0
    body = np.where(dfa.trans >= 0, dfa.trans + 1, -1).astype(np.int32)
    accepting = np.concatenate([[bool(dfa.accepting[dfa.start])], dfa.accepting])
    return ByteDFA(np.vstack([head[None, :], body]), accepting, 0)


def _literal_strings(values: list[str]) -> DSet:
    """Exactly these strings: every spelling for the algebra, written as ``json.dumps`` writes
    them (with or without ``ensure_ascii``)."""
    spellings = sorted({json.dumps(v, ensure_ascii=a).encode() for v in values for a in (True, False)})
    return DSet(literal_keys_dfa(frozenset(values)), True, emit=words_dfa(spellings))


def _where(e: Expr) -> str:
    if isinstance(e, Node):
        return e.payload[2] or "/"
    return "/"


def _order(e: Expr) -> int:
    # atoms first (cheap, and an empty intersection stops early), nodes next, then formulas
    return 0 if isinstance(e, Atom) else 1 if isinstance(e, Node) else 2


def _counter(guard: Expr, lo: int, hi: int | None) -> ArrC:
    """Sequences with between ``lo`` and ``hi`` elements satisfying ``guard``."""
    top = hi + 1 if hi is not None else lo  # counts are clamped at ``top``
    trans = []
    for c in range(top + 1):
        up = min(c + 1, top)
        trans.append(_moves_ok(((guard, up), (neg(guard), c))) if up != c else ((TRUE, c),))
    acc = tuple(c >= lo and (hi is None or c <= hi) for c in range(top + 1))
    return ArrC(0, acc, tuple(trans))


@functools.lru_cache(maxsize=4096)
def _number_dfa(integer: bool, args: tuple[tuple[str, Decimal | None], ...]) -> ByteDFA:
    from corral.compiler.json_schema.numbers import number_dfa

    return number_dfa(integer=integer, **dict(args))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _format_dfa(name: str) -> ByteDFA:
    """The automaton of JSON string literals whose value has format ``name`` (built once).

    ``hostname`` is special: RFC 1123 also caps the whole name at 253 characters, and RFC 5891
    forbids ``--`` in a label's 3rd and 4th characters (which also rules out ``xn--`` A-labels,
    whose Punycode validity is not regular). Counting 253 characters through every JSON escape
    spelling is too big an automaton, so host names are accepted only spelled plainly (their
    characters are ASCII letters, digits, ``-`` and ``.``: ``json.dumps`` never escapes them).
    """
    from corral.compiler.json_schema.formats import format_pattern
    from corral.compiler.json_schema.json_strings import json_string_dfa

    pattern = format_pattern(name)
    assert pattern is not None
    if name == "hostname":
        plain = regex_to_dfa('"(?:' + pattern + ')"')
        bad_label = regex_to_dfa(r'"(?:[^"]*\.)?[^."][^."]--[^"]*"')
        return product(difference(plain, bad_label), regex_to_dfa('"[!-~]{0,253}"'))
    return json_string_dfa("^(?:" + pattern + ")$", ecma=False)



def detect_draft(schema: Any) -> str:
    """``"7"`` for draft-07 (and older) ``$schema`` URIs, else ``"2020-12"``."""
    if isinstance(schema, dict):
        uri = schema.get("$schema", "")
        if isinstance(uri, str) and re.search(r"draft-0[4-7]", uri):
            return "7"
    return "2020-12"


def schema_to_ir(schema: Any, options: SchemaOptions = SchemaOptions()) -> tuple[GrammarIR, list[str]]:
    """Compile a JSON Schema (already parsed) to a :class:`GrammarIR` and the list of warnings.

    Raises
    ------
    UnsupportedSchemaError
        Keywords that cannot be enforced exactly (unless ``options.lenient``).
    GrammarError
        A malformed schema (with its JSON pointer).
    CompileLimitError
        A limit of the current budget was passed.
    """
    ir, warnings, _ = _schema_to_ir(schema, options)
    return ir, warnings


def _schema_to_ir(schema: Any, options: SchemaOptions) -> tuple[GrammarIR, list[str], _Compiler]:
    """Compile a JSON Schema (already parsed) to a :class:`GrammarIR` and the list of warnings.

    Raises
    ------
    UnsupportedSchemaError
        Keywords that cannot be enforced exactly (unless ``options.lenient``).
    GrammarError
        A malformed schema (with its JSON pointer).
    """
    from corral.compiler.json_schema.document import check_document

    check_document(schema)  # non-string keys, NaN, objects: refused here, with their pointer
    with budget_scope():  # the caller's budget, or the default limits
        comp = _Compiler(schema, options, detect_draft(schema))
        top = comp.lower(comp.node(schema, ROOT_URI, "", comp._enter((), ROOT_URI)), "root")
    if comp.out.problems:
        raise UnsupportedSchemaError(comp.out.problems)
    start = comp.fresh("start")
    trail = []
    if options.whitespace == "flexible":  # only the wide mode lets whitespace follow the value
        comp.out.terminals["WS_END"] = TerminalDef("WS_END", comp._ws_pattern)
        trail = ["WS_END"]
    comp.out.rules[start] = [(top, *trail)]
    ir = GrammarIR(start=start, rules=comp.out.rules, terminals=comp.out.terminals, source=json.dumps(schema, default=str)[:10000])
    return ir, comp.out.warnings, comp


def _as_schema(schema: Any) -> Any:
    if isinstance(schema, (dict, bool)):
        return schema
    if isinstance(schema, str):
        try:
            return json.loads(schema, parse_float=Decimal)  # bounds keep every digit
        except json.JSONDecodeError as e:
            raise GrammarError(f"the schema is not valid JSON: {e.msg}", source=schema, pos=e.pos) from None
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    raise CorralError(f"a schema must be a dict, a JSON string or a Pydantic model class, not {type(schema).__name__}")


def compile_json_schema(
    schema: Any,
    vocab: Any,
    *,
    whitespace: str = DEFAULT_WHITESPACE,
    max_whitespace: int = 64,
    lenient: bool = False,
    property_order: str = "schema",
    registry: Mapping[str, Any] | None = None,
    indent: int = 2,
    timeout: float | None = None,
    limits: Limits | None = None,
) -> Any:
    """Compile a JSON Schema into token masks over ``vocab``.

    Parameters
    ----------
    schema:
        A dict, a JSON string, or a Pydantic model class. ``$schema`` chooses the draft (2020-12
        unless it names draft 4-7).
    vocab:
        The tokenizer's :class:`~corral.Vocabulary`.
    whitespace:
        What may be written where JSON allows whitespace (the language accepted stays JSON's;
        only what a model may write narrows). ``"pretty"`` (default): nothing, one space, or a
        line break and up to ``max_whitespace`` spaces or tabs of indentation, and nothing after
        the value, so generation ends at the value's last character. ``"flexible"``: any run of
        up to ``max_whitespace`` JSON whitespace characters, also after the value.
        ``"compact"``: none. ``"indent"``: exactly the layout of
        ``json.dumps(value, indent=indent)`` (a newline and ``indent`` spaces per level inside
        non-empty containers, ``": "`` after keys; containers nest at most 32 deep).
    max_whitespace:
        The indentation bound of ``"pretty"``; the run bound of ``"flexible"``.
    indent:
        Spaces per level for ``whitespace="indent"``.
    lenient:
        Relax what cannot be enforced exactly instead of raising; the relaxations are in the
        result's ``warnings``.
    property_order:
        ``"schema"``: the properties a schema names come in the order it names them (then any
        others); ``"any"``: in any order (objects naming up to 8 properties; larger ones keep the
        schema order, with a warning).
    registry:
        Documents that ``$ref`` may point at, by URI (``{"https://example.com/a.json": {...}}``);
        nothing is ever fetched.
    timeout:
        Limit, in seconds, on compiling; overrides ``limits.timeout`` (default 30).
    limits:
        Every limit of the compile (time, estimated memory, automaton states, grammar rules);
        see :class:`~corral.Limits`.

    Returns
    -------
    CompiledGrammar
        ``kind == "json_schema"``; ``warnings`` lists ignored unknown keywords and (lenient)
        relaxations.

    Raises
    ------
    UnsupportedSchemaError
        Every keyword that cannot be enforced exactly, sorted, with its JSON pointer.
    GrammarError
        A malformed schema, or one that accepts no value.
    CompileLimitError
        A limit (``timeout``, ``max_memory_bytes``, ``max_states``, ...) passed; the message
        names the limit, its value, the JSON pointer being compiled and how to raise it.

    Examples
    --------
    >>> from corral import Vocabulary
    >>> vocab = Vocabulary([b'{"a":', b"1", b"}", b" ", None], eos_token_ids=[4])
    >>> m = compile_json_schema({"type": "object", "properties": {"a": {"type": "integer"}},
    ...                          "required": ["a"]}, vocab).matcher()
    >>> m.accept_token(0), m.accept_token(1), m.accept_token(2), m.is_accepting()
    (True, True, True, True)
    """
    from corral.compiler.cfg import compile_ir

    run_limits = entry_limits(limits, timeout=timeout)
    with budget_scope(run_limits):
        parsed = _as_schema(schema)
        ir, warnings, comp = _schema_to_ir(parsed, SchemaOptions(whitespace=whitespace, max_whitespace=max_whitespace,
                                                                 lenient=lenient, property_order=property_order,
                                                                 registry=registry, indent=indent))
        options = {"whitespace": whitespace, "max_whitespace": max_whitespace, "lenient": lenient,
                   "property_order": property_order, "indent": indent, "limits": run_limits}
        try:
            source = schema if isinstance(schema, str) else json.dumps(parsed)
            grammar = compile_ir(ir, vocab, kind="json_schema", source=source, options=options)
        except GrammarError as e:
            if "language is empty" in e.message:
                if comp.indent_cut:
                    raise GrammarError(
                        f"the schema accepts no value that nests at most {MAX_INDENT_DEPTH} containers deep, the "
                        'depth limit of whitespace="indent"; use another whitespace mode for deeper values'
                    ) from None
                raise GrammarError("the schema accepts no value at all") from None
            raise
    grammar.warnings = warnings
    return grammar
