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
   automata (:mod:`.json_strings`, :mod:`.formats`, :mod:`.tries`, :mod:`.numbers`), arrays and objects rules walking their automata,
   whose item and member guards are lowered in turn (recursive schemas stay finite).

What cannot be enforced exactly is collected, with its JSON pointer, and raised together as
:class:`~corral.errors.UnsupportedSchemaError` -- or, with ``lenient=True``, relaxed and returned as
warnings. Nothing is weakened silently.

Layout of the generated text
----------------------------
With ``property_order="any"`` (the default) the properties a schema names may come in any order,
each at most once, with every required one present, as JSON Schema itself allows. Plain objects
(no property counts, no key class cut by a pattern) take this at any size: small ones by a rule per
subset of keys, larger ones by one rule and the matcher's run-time key check
(:class:`~corral.compiler.grammar_ir.ObjectKeys`); other objects up to
:data:`~.lower.MAX_ANY_ORDER` named properties, beyond which the schema order is kept and a warning
says so. With ``"schema"`` they come in the order the schema names them (optional ones may be
skipped), then any other properties: cheaper masks, and what a model prompted with the schema
usually writes anyway. Whitespace between tokens follows the ``whitespace`` mode
(:func:`whitespace_pattern`): by default (``"pretty"``) one space or a line break and indentation,
what a pretty-printer writes, and nothing after the value, so a model can neither loop on
whitespace nor trail it; ``"flexible"`` allows runs of up to ``max_whitespace`` characters (after
the value too); ``"compact"`` none; ``"indent"`` exactly ``json.dumps(indent=N)``'s layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urldefrag

from corral.compiler.diagnostics import RELAXED, Diagnostic
from corral.compiler.grammar_ir import Guard, GrammarIR, TerminalDef
from corral.compiler.json_schema.algebra import (
    FALSE, FLAT_ALL, FLAT_NONE, TRUE, And, Atom, Const, Expr, Flat, Node, Not, OneOf, Or,
    complement, conj, disj, join, meet, neg,
)
from corral.compiler.json_schema import applicators as _applicators
from corral.compiler.json_schema import arrays as _arrays
from corral.compiler.json_schema import lower as _lower
from corral.compiler.json_schema import objects as _objects
from corral.compiler.json_schema import refs as _refs
from corral.compiler.json_schema import scalars as _scalars
from corral.compiler.json_schema.common import _Cycle, _escape_pointer
from corral.compiler.json_schema.keywords import ANNOTATIONS, ARRAY_KW, KNOWN, OBJECT_KW
from corral.compiler.json_schema.lower import MAX_INDENT_DEPTH
from corral.compiler.json_schema.refs import ROOT_URI, _join, _Resource
from corral.compiler.regex import regex_to_dfa
from corral.compiler.limits import Limits, budget_scope, current_budget, ends_compile, entry_limits
from corral.errors import CompileLimitError, CorralError, GrammarError, UnsupportedSchemaError

__all__ = ["DEFAULT_WHITESPACE", "WHITESPACE_MODES", "SchemaOptions", "schema_to_ir", "whitespace_pattern"]


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
    property_order: str = "any"
    registry: Mapping[str, Any] | None = None
    indent: int = 2


@dataclass
class _Out:
    rules: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    terminals: dict[str, TerminalDef] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    guards: dict[str, Guard] = field(default_factory=dict)


class _Compiler:
    indent_cut = False  # the "indent" layout's depth limit removed containers somewhere
    _lowering_at = "/"  # the JSON pointer of the set being lowered (for messages from lowering)

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
            self.out.warnings.append(Diagnostic(pointer, keyword, "warning", why, code=RELAXED))
        else:
            self.out.problems.append((pointer, keyword, why))

    def relaxed(self) -> Expr:
        """What a dropped constraint becomes: nothing in strict mode (the error is raised at the
        end anyway), everything under ``lenient``."""
        return TRUE if self.opt.lenient else FALSE

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
                self.out.warnings.append(Diagnostic(pointer, kw, "warning", f"unknown keyword {kw!r} ignored (as the spec says)",
                                                    code="unknown-keyword"))
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

    # The methods below are defined in the modules named, one per concern, and bound here.
    # -- $id / $anchor index, $ref / $dynamicRef resolution, dynamic scope (refs.py) ---------------
    _index = _refs._index
    resolve = _refs.resolve
    _enter = _refs._enter
    _dynamic_ref = _refs._dynamic_ref
    _target_node = _refs._target_node
    expand_ref_target = _refs.expand_ref_target

    # -- type, numbers, strings, enum/const (scalars.py) -------------------------------------------
    _scalar_parts = _scalars._scalar_parts
    _number_set = _scalars._number_set
    _string_set = _scalars._string_set
    _length_dfa = _scalars._length_dfa
    values_flat = _scalars.values_flat
    value_flat = _scalars.value_flat

    # -- arrays (arrays.py) ------------------------------------------------------------------------
    _array = _arrays._array
    _count = _arrays._count
    _uneval_items = _arrays._uneval_items

    # -- objects (objects.py) ----------------------------------------------------------------------
    _dependent_schemas = _objects._dependent_schemas
    _key_atom = _objects._key_atom
    _object = _objects._object
    _uneval_props = _objects._uneval_props

    # -- oneOf, inlining, emptiness, unevaluatedProperties/Items (applicators.py) ------------------
    _one_of = _applicators._one_of
    _one_of_flat = _applicators._one_of_flat
    _inline = _applicators._inline
    _disjoint = _applicators._disjoint
    _empty = _applicators._empty
    _unevaluated = _applicators._unevaluated
    _outcomes = _applicators._outcomes

    # -- naming, terminals, lowering and layout (lower.py) -----------------------------------------
    fresh = _lower.fresh
    rule = _lower.rule
    lit = _lower.lit
    regex_term = _lower.regex_term
    _terminal = _lower._terminal
    dfa_term = _lower.dfa_term
    _ws_prefixed = _lower._ws_prefixed
    lower = _lower.lower
    _nl = _lower._nl
    _open = _lower._open
    _sep = _lower._sep
    _close = _lower._close
    _colon = _lower._colon
    _alternatives = _lower._alternatives
    _lower_array = _lower._lower_array
    _unique_array = _lower._unique_array
    _lower_term = _lower._lower_term
    _rest_term = _lower._rest_term
    _key_term = _lower._key_term
    any_value = _lower.any_value
    any_kind = _lower.any_kind


def _order(e: Expr) -> int:
    # atoms first (cheap, and an empty intersection stops early), nodes next, then formulas
    return 0 if isinstance(e, Atom) else 1 if isinstance(e, Node) else 2


def detect_draft(schema: Any) -> str:
    """``"7"`` for draft-07 (and older) ``$schema`` URIs, else ``"2020-12"``."""
    if isinstance(schema, dict):
        uri = schema.get("$schema", "")
        if isinstance(uri, str) and re.search(r"draft-0[4-7]", uri):
            return "7"
    return "2020-12"


def schema_to_ir(schema: Any, options: SchemaOptions = SchemaOptions()) -> tuple[GrammarIR, list[Diagnostic]]:
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


def _schema_to_ir(schema: Any, options: SchemaOptions) -> tuple[GrammarIR, list[Diagnostic], _Compiler]:
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
    ir = GrammarIR(start=start, rules=comp.out.rules, terminals=comp.out.terminals, source=json.dumps(schema, default=str)[:10000],
                   guards=comp.out.guards)
    return ir, comp.out.warnings, comp


def _with_every_problem(first: GrammarError, schema: Any, options: SchemaOptions) -> GrammarError:
    """``first`` (a malformed keyword) carrying every other problem of the schema.

    :func:`~corral.compiler.json_schema.check.schema_problems` (``corral check``'s walk, which steps
    past each malformed keyword) runs only on this failure path; ``first`` comes back unchanged when
    it is the only problem. The others are the further malformed keywords, then each keyword that
    cannot be enforced exactly (worded as in :class:`~corral.errors.UnsupportedSchemaError`).
    """
    from corral.compiler.json_schema.check import schema_problems

    found = schema_problems(schema, options)
    if not found.malformed or found.malformed[0][1].message != first.message:
        return first  # pragma: no cover - the walk is deterministic
    others = [e for _, e in found.malformed[1:]]
    others += [GrammarError(f"{ptr or '/'}: {kw}: {why}") for ptr, kw, why in found.unsupported]
    if not others:
        return first
    return GrammarError(first.message, source=first.source, pos=first.pos, length=first.length,
                        diagnostics=(first, *others))


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
    property_order: str = "any",
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
        ``"any"`` (default): the properties a schema names may come in any order, each at most
        once (plain objects of any size; objects with property counts or patterned key classes up
        to 8 named properties, larger ones keep the schema order, with a warning). ``"schema"``:
        in the order the schema names them (then any others).
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
        A malformed schema, or one that accepts no value. For a malformed schema the error's
        ``diagnostics`` hold every problem found (each malformed keyword, then each keyword that
        cannot be enforced exactly), the first as it is raised alone.
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
        schema_options = SchemaOptions(whitespace=whitespace, max_whitespace=max_whitespace, lenient=lenient,
                                       property_order=property_order, registry=registry, indent=indent)
        try:
            ir, warnings, comp = _schema_to_ir(parsed, schema_options)
        except GrammarError as e:
            raise _with_every_problem(e, parsed, schema_options) from None
        options = {"whitespace": whitespace, "max_whitespace": max_whitespace, "lenient": lenient,
                   "property_order": property_order, "indent": indent, "limits": run_limits}
        try:
            source = schema if isinstance(schema, str) else json.dumps(parsed)
            grammar = compile_ir(ir, vocab, kind="json_schema", source=source, options=options, warnings=warnings)
        except GrammarError as e:
            if "language is empty" in e.message:
                if comp.indent_cut:
                    raise GrammarError(
                        f"the schema accepts no value that nests at most {MAX_INDENT_DEPTH} containers deep, the "
                        'depth limit of whitespace="indent"; use another whitespace mode for deeper values'
                    ) from None
                raise GrammarError("the schema accepts no value at all") from None
            raise
    return grammar
