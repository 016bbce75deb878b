"""JSON Schema -> :class:`~corral.compiler.grammar_ir.GrammarIR`.

Every schema node becomes a nonterminal; scalar constraints (strings, numbers) become terminals
with exact byte automata (:mod:`.strings`, :mod:`.numbers`); objects and arrays become rules.
What cannot be enforced exactly is collected, with its JSON pointer, and raised together as
:class:`~corral.errors.UnsupportedSchemaError` -- or, with ``lenient=True``, relaxed and returned as
warnings. Nothing is weakened silently.

Layout of the generated text
----------------------------
Object properties come in the schema's order (``properties`` first, in the order written; optional
ones may be skipped), then any additional or pattern properties. Whitespace between tokens follows
the ``whitespace`` mode: ``"flexible"`` allows up to ``max_whitespace`` JSON whitespace characters
at each place JSON allows them (so ``json.dumps`` output with ``", "`` / ``": "`` separators and
indented output both fit, but a model cannot loop on spaces); ``"compact"`` allows none.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urldefrag, urljoin

import numpy as np

from corral.compiler.automaton import ByteDFA, concat, difference, product
from corral.compiler.grammar_ir import GrammarIR, TerminalDef
from corral.compiler.regex import regex_to_dfa
from corral.errors import CompileLimitError, CorralError, GrammarError, UnsupportedSchemaError

__all__ = ["SchemaOptions", "schema_to_ir"]

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
MAX_COUNTED_ITEMS = 2000
ROOT_URI = "https://corral.invalid/root.json"  # base URI of a schema without $id


@dataclass(frozen=True)
class SchemaOptions:
    """How a schema is compiled (see :func:`corral.compile_json_schema`)."""

    whitespace: str = "flexible"
    max_whitespace: int = 64
    lenient: bool = False


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


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class _Compiler:
    def __init__(self, root: Any, options: SchemaOptions, draft: str) -> None:
        self.root = root
        self.opt = options
        self.draft = draft
        self.out = _Out()
        self._names: set[str] = set()
        self._memo: dict[tuple[int, str], str] = {}
        self._keepalive: list[Any] = []
        # draft 4 counts only numbers written without a fraction or exponent as integers
        self._draft4 = isinstance(root, dict) and isinstance(root.get("$schema"), str) and "draft-04" in root["$schema"]
        self._terms: dict[Any, str] = {}
        self._ids: dict[str, _Resource] = {}
        self._any: str | None = None
        ws = options.max_whitespace if options.whitespace == "flexible" else 0
        if options.whitespace not in ("flexible", "compact"):
            raise CorralError(f"unknown whitespace mode {options.whitespace!r}: expected 'flexible' or 'compact'")
        self._ws_pattern = f"[ \\t\\n\\r]{{0,{ws}}}" if ws else ""
        self._ws_dfa = regex_to_dfa(self._ws_pattern) if ws else None
        self._index(root, ROOT_URI, "")

    # -- problems ---------------------------------------------------------------------------------
    def problem(self, pointer: str, keyword: str, why: str) -> None:
        if self.opt.lenient:
            self.out.warnings.append(f"{pointer or '/'}: {keyword}: {why} (relaxed: lenient=True)")
        else:
            self.out.problems.append((pointer, keyword, why))

    # -- naming -----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        base = re.sub(r"[^a-z0-9_]", "_", base.lower())[:40] or "node"
        name = base
        i = 1
        while name in self._names:
            name = f"{base}_{i}"
            i += 1
        self._names.add(name)
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
            self.out.terminals[name] = TerminalDef(name, self._ws_pattern + re.escape(text))
            self._terms[key] = name
        return name

    def regex_term(self, pattern: str, base: str) -> str:
        key = ("re", pattern)
        name = self._terms.get(key)
        if name is None:
            name = self.fresh("T_" + base).upper()
            self.out.terminals[name] = TerminalDef(name, self._ws_pattern + f"(?:{pattern})")
            self._terms[key] = name
        return name

    def dfa_term(self, dfa: ByteDFA, key: Any, base: str, describe: str) -> str:
        name = self._terms.get(("dfa", key))
        if name is None:
            name = self.fresh("T_" + base).upper()
            full = concat([self._ws_dfa, dfa]) if self._ws_dfa is not None else dfa
            self.out.terminals[name] = TerminalDef(name, describe, dfa=full)
            self._terms[("dfa", key)] = name
        return name

    # -- $id / $anchor index and $ref resolution ------------------------------------------------------
    def _index(self, schema: Any, base: str, pointer: str) -> None:
        if isinstance(schema, dict):
            sid = schema.get("$id") if self.draft != "7" or "$ref" not in schema else None
            if isinstance(sid, str):
                base = urljoin(base, sid)
                self._ids[urldefrag(base)[0]] = _Resource(schema, pointer)
                frag = urldefrag(base)[1]
                if frag and not frag.startswith("/"):  # draft 7 "$id": "#foo" is an anchor
                    self._ids[urldefrag(base)[0] + "#" + frag] = _Resource(schema, pointer)
            elif pointer == "":
                self._ids[base] = _Resource(schema, pointer)
            anchor = schema.get("$anchor")
            if isinstance(anchor, str):
                self._ids[urldefrag(base)[0] + "#" + anchor] = _Resource(schema, pointer)
            for k, v in schema.items():
                if k in ("enum", "const", "default", "examples"):
                    continue
                if isinstance(v, (dict, list)):
                    self._index(v, urldefrag(base)[0] if k != "$id" else base, f"{pointer}/{_escape_pointer(k)}")
        elif isinstance(schema, list):
            for i, v in enumerate(schema):
                self._index(v, base, f"{pointer}/{i}")

    def resolve(self, ref: str, base: str, pointer: str) -> tuple[Any, str, str] | None:
        uri = urljoin(base, ref)
        doc, frag = urldefrag(uri)
        res = self._ids.get(uri) if frag and not frag.startswith("/") else None
        if res is not None:
            return res.schema, urldefrag(uri)[0], res.pointer
        res = self._ids.get(doc)
        if res is None:
            self.problem(pointer, "$ref", f"cannot resolve {ref!r} (remote references are not fetched)")
            return None
        node: Any = res.schema
        ptr = res.pointer
        if frag:
            for raw in frag.lstrip("/").split("/"):
                part = raw.replace("~1", "/").replace("~0", "~")
                part = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part)
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    self.problem(pointer, "$ref", f"{ref!r} points at nothing")
                    return None
                ptr += "/" + _escape_pointer(part)
        return node, doc, ptr

    # -- the generic JSON value -------------------------------------------------------------------
    def any_value(self) -> str:
        if self._any is None:
            self._any = self.fresh("json_value")
            v = self._any
            members = self.fresh("json_members")
            items = self.fresh("json_items")
            self.out.rules[v] = [
                (self.lit("{"), self.lit("}")),
                (self.lit("{"), members, self.lit("}")),
                (self.lit("["), self.lit("]")),
                (self.lit("["), items, self.lit("]")),
                (self.regex_term(ANY_STRING, "string"),),
                (self.regex_term(ANY_NUMBER, "number"),),
                (self.lit("true"),), (self.lit("false"),), (self.lit("null"),),
            ]
            member = (self.regex_term(ANY_STRING, "string"), self.lit(":"), v)
            self.out.rules[members] = [member, (members, self.lit(",")) + member]
            self.out.rules[items] = [(v,), (items, self.lit(","), v)]
        return self._any

    def never(self) -> str:
        return self.rule("never", [])

    # -- nodes ------------------------------------------------------------------------------------
    def node(self, schema: Any, base: str, pointer: str) -> str:
        if schema is True or schema == {}:
            return self.any_value()
        if schema is False:
            return self.never()
        if not isinstance(schema, dict):
            raise GrammarError(f"{pointer or '/'}: a schema must be an object or a boolean, not {type(schema).__name__}")
        key = (id(schema), base)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        self._keepalive.append(schema)  # ids key the memo: the schema must outlive the compile
        name = self.fresh(pointer.rsplit("/", 1)[-1] or "root")
        self._memo[key] = name
        self.out.rules[name] = []
        if isinstance(schema.get("$id"), str) and (self.draft != "7" or "$ref" not in schema):
            base = urljoin(base, schema["$id"])
        self.out.rules[name] = self._alternatives(schema, base, pointer)
        return name

    def _alternatives(self, schema: dict[str, Any], base: str, pointer: str) -> list[tuple[str, ...]]:
        for kw in schema:
            if kw not in KNOWN and not kw.startswith("x-"):
                self.out.warnings.append(f"{pointer or '/'}: unknown keyword {kw!r} ignored (as the spec says)")
        ref = schema.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                raise GrammarError(f"{pointer}/$ref: must be a string")
            target = self.resolve(ref, base, pointer + "/$ref")
            rest = {k: v for k, v in schema.items() if k not in ANNOTATIONS and k != "$ref"}
            if self.draft == "7":
                rest = {}  # draft 7: siblings of $ref are ignored
            if target is None:
                return [(self.any_value(),)] if self.opt.lenient else []
            tschema, tbase, tptr = target
            if not rest:
                return [(self.node(tschema, tbase, tptr),)]
            return self._alternatives({"allOf": [{"$ref": ref}, rest]} | {k: v for k, v in schema.items() if k in ANNOTATIONS}, base, pointer)
        for kw in ("$dynamicRef", "$recursiveRef"):
            if kw in schema:
                self.problem(pointer, kw, "dynamic references are not supported")
        for kw in ("unevaluatedProperties", "unevaluatedItems"):
            if kw in schema and schema[kw] not in (True, {}):
                near = [a for a in ("allOf", "anyOf", "oneOf", "$ref", "if", "dependentSchemas", "not") if a in schema]
                if near:
                    self.problem(pointer, kw, f"{kw} next to {', '.join(near)} is not supported")
        if "allOf" in schema:
            merged = self._merge_all(schema, base, pointer)
            if merged is None:
                return [(self.any_value(),)] if self.opt.lenient else []
            return self._alternatives(merged, base, pointer)
        for kw in ("anyOf", "oneOf"):
            if kw in schema:
                branches = schema[kw]
                if not isinstance(branches, list) or not branches:
                    raise GrammarError(f"{pointer}/{kw}: must be a non-empty array")
                rest = {k: v for k, v in schema.items() if k != kw}
                if kw == "oneOf" and not self._disjoint(branches, base):
                    self.problem(pointer, "oneOf", "branches may overlap, so 'exactly one' cannot be enforced")
                alts: list[tuple[str, ...]] = []
                for i, b in enumerate(branches):
                    sub = b if not _has_constraints(rest) else {"allOf": [rest, b]}
                    alts.append((self.node(sub, base, f"{pointer}/{kw}/{i}"),))
                return alts
        if "not" in schema:
            self.problem(pointer, "not", "negated schemas are not supported")
        if "if" in schema and ("then" in schema or "else" in schema):
            self.problem(pointer, "if", "if/then/else is not supported")
        if "enum" in schema or "const" in schema:
            return self._enum(schema, base, pointer)
        return self._typed(schema, base, pointer)

    # -- enum / const -----------------------------------------------------------------------------
    def _enum(self, schema: dict[str, Any], base: str, pointer: str) -> list[tuple[str, ...]]:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list):
            raise GrammarError(f"{pointer}/enum: must be an array")
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const") and k not in ANNOTATIONS}
        keep = values
        if rest:
            import jsonschema

            cls = jsonschema.Draft7Validator if self.draft == "7" else jsonschema.Draft202012Validator
            try:
                validator = cls({**rest, "$defs": {}}, format_checker=cls.FORMAT_CHECKER)
                keep = [v for v in values if validator.is_valid(v)]
            except Exception:  # refs inside rest cannot be resolved standalone: keep all
                keep = values
        if "const" in schema and "enum" in schema:
            keep = [v for v in keep if any(_json_equal(v, e) for e in schema["enum"])]
        return [(self.value_literal(v, pointer),) for v in keep]

    def value_literal(self, value: Any, pointer: str) -> str:
        """A nonterminal for exactly one JSON value (numbers by value, keys in the given order)."""
        if value is None:
            return self.rule("null", [(self.lit("null"),)])
        if isinstance(value, bool):
            return self.rule("bool", [(self.lit("true" if value else "false"),)])
        if isinstance(value, (int, float, Decimal)):
            return self.rule("num", [(self._number_term({"minimum": value, "maximum": value}, False, pointer),)])
        if isinstance(value, str):
            return self.rule("str", [(self._string_term({"const": value}, pointer),)])
        if isinstance(value, list):
            if not value:
                return self.rule("arr", [(self.lit("["), self.lit("]"))])
            body: tuple[str, ...] = (self.lit("["),)
            for i, v in enumerate(value):
                body += ((self.lit(","),) if i else ()) + (self.value_literal(v, pointer),)
            return self.rule("arr", [body + (self.lit("]"),)])
        if isinstance(value, dict):
            if not value:
                return self.rule("obj", [(self.lit("{"), self.lit("}"))])
            body = (self.lit("{"),)
            for i, (k, v) in enumerate(value.items()):
                body += ((self.lit(","),) if i else ()) + (self._key_term(k, pointer), self.lit(":"), self.value_literal(v, pointer))
            return self.rule("obj", [body + (self.lit("}"),)])
        raise GrammarError(f"{pointer}: {value!r} is not a JSON value")

    # -- types ------------------------------------------------------------------------------------
    def _typed(self, schema: dict[str, Any], base: str, pointer: str) -> list[tuple[str, ...]]:
        t = schema.get("type")
        if t is None:
            types = list(TYPES)
        elif isinstance(t, str):
            types = [t]
        elif isinstance(t, list):
            types = list(t)
        else:
            raise GrammarError(f"{pointer}/type: must be a string or an array of strings")
        for x in types:
            if x not in TYPES and x != "integer":
                raise GrammarError(f"{pointer}/type: unknown type {x!r}")
        if "number" in types and "integer" in types:
            types.remove("integer")
        alts: list[tuple[str, ...]] = []
        for x in types:
            if x == "null":
                alts.append((self.lit("null"),))
            elif x == "boolean":
                alts += [(self.lit("true"),), (self.lit("false"),)]
            elif x in ("number", "integer"):
                alts.append((self._number_term(schema, x == "integer", pointer),))
            elif x == "string":
                alts.append((self._string_term(schema, pointer),))
            elif x == "object":
                alts.append((self._object(schema, base, pointer),))
            elif x == "array":
                alts.append((self._array(schema, base, pointer),))
        return alts

    def _number_term(self, schema: dict[str, Any], integer: bool, pointer: str) -> str:
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
            return self.regex_term(ANY_NUMBER, "number")
        if integer and self._draft4 and not bounds:
            return self.regex_term(ANY_INTEGER, "integer")
        for k, v in bounds.items():
            if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
                raise GrammarError(f"{pointer}/{k}: must be a number")
        from corral.compiler.json_schema.errors import Inexpressible
        from corral.compiler.json_schema.numbers import number_dfa

        args = {
            "minimum": bounds.get("minimum"), "maximum": bounds.get("maximum"),
            "exclusive_minimum": bounds.get("exclusiveMinimum"), "exclusive_maximum": bounds.get("exclusiveMaximum"),
            "multiple_of": bounds.get("multipleOf"),
        }
        dec = {k: (v if isinstance(v, Decimal) else Decimal(str(v)) if v is not None else None) for k, v in args.items()}
        key = ("num", integer, tuple(sorted((k, str(v)) for k, v in dec.items())))
        if ("dfa", key) in self._terms:
            return self._terms[("dfa", key)]
        try:
            dfa = number_dfa(integer=integer, **dec)  # type: ignore[arg-type]
            if integer and self._draft4:
                dfa = product(dfa, regex_to_dfa(ANY_INTEGER))
        except Inexpressible as e:
            self.problem(pointer, next(iter(bounds)), str(e))
            return self.regex_term(ANY_INTEGER if integer else ANY_NUMBER, "number")
        if not dfa.accepting.any():
            return self.rule("never", [])  # no number satisfies the bounds
        return self.dfa_term(dfa, key, "integer" if integer else "number", f"number {json.dumps(args, default=str)}")

    def _string_term(self, schema: dict[str, Any], pointer: str) -> str:
        if "const" in schema:
            value = schema["const"]
            return self._exact_string(str(value), pointer)
        kws = {k: schema[k] for k in STRING_KW if k in schema}
        if not kws:
            return self.regex_term(ANY_STRING, "string")
        from corral.compiler.json_schema.errors import Inexpressible
        from corral.compiler.json_schema.strings import format_pattern, json_string_dfa

        patterns: list[str] = []
        if "pattern" in kws:
            if not isinstance(kws["pattern"], str):
                raise GrammarError(f"{pointer}/pattern: must be a string")
            patterns.append(kws["pattern"])
        extra = schema.get("__patterns", [])
        patterns += extra
        fmt = kws.get("format")
        fmt_pat = None
        if fmt is not None:
            fmt_pat = format_pattern(fmt) if isinstance(fmt, str) else None
            if fmt_pat is None:
                self.problem(pointer, "format", f"format {fmt!r} is not supported")
        for k in ("minLength", "maxLength"):
            if k in kws and (isinstance(kws[k], bool) or not isinstance(kws[k], (int, float, Decimal)) or kws[k] < 0):
                raise GrammarError(f"{pointer}/{k}: must be a non-negative integer")
        min_len = int(kws.get("minLength", 0))
        max_len = kws.get("maxLength")
        key = ("str", tuple(patterns), fmt_pat, min_len, max_len)
        if ("dfa", key) in self._terms:
            return self._terms[("dfa", key)]
        try:
            dfa = json_string_dfa(None, min_length=min_len, max_length=None if max_len is None else int(max_len))
            for p in patterns:
                dfa = product(dfa, json_string_dfa(p))
            if fmt_pat is not None:
                dfa = product(dfa, _format_dfa(str(fmt)))
        except (Inexpressible, CompileLimitError) as e:
            self.problem(pointer, "pattern" if patterns else "format" if fmt_pat else "maxLength", str(e))
            return self.regex_term(ANY_STRING, "string")
        except GrammarError as e:
            raise GrammarError(f"{pointer}/pattern: {e.message}") from None
        if not dfa.accepting.any():
            return self.rule("never", [])
        return self.dfa_term(dfa, key, "string", f"string {json.dumps(kws, default=str)}")

    def _exact_string(self, value: str, pointer: str) -> str:
        key = ("exact", value)
        if ("dfa", key) in self._terms:
            return self._terms[("dfa", key)]
        # Spelled as json.dumps spells it, with or without ensure_ascii: other escape spellings
        # (``"\u0061"`` for ``"a"``) are valid JSON too, but letting a model wander into them only
        # wastes tokens (a documented departure, stricter).
        spellings = {json.dumps(value), json.dumps(value, ensure_ascii=False)}
        dfa = regex_to_dfa("|".join(re.escape(x) for x in sorted(spellings)))
        return self.dfa_term(dfa, key, "str", f"the string {json.dumps(value)}")

    def _key_term(self, key: str, pointer: str) -> str:
        return self._exact_string(key, pointer)

    # -- objects ----------------------------------------------------------------------------------
    def _object(self, schema: dict[str, Any], base: str, pointer: str) -> str:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise GrammarError(f"{pointer}/properties: must be an object")
        required = schema.get("required", [])
        if not isinstance(required, list):
            raise GrammarError(f"{pointer}/required: must be an array")
        required_set = set(required)
        additional = schema.get("additionalProperties", True)
        if "unevaluatedProperties" in schema:
            if schema["unevaluatedProperties"] is False and "additionalProperties" not in schema:
                additional = False
            elif schema["unevaluatedProperties"] not in (True, {}):
                self.problem(pointer, "unevaluatedProperties", "only unevaluatedProperties: false is supported")
        pattern_props = schema.get("patternProperties", {})
        deps: dict[str, list[str]] = {}
        for kw in ("dependentRequired", "dependencies"):
            for a, v in (schema.get(kw) or {}).items():
                if isinstance(v, list):
                    deps.setdefault(a, []).extend(x for x in v if x != a)
                elif kw == "dependencies":
                    self.problem(pointer, "dependencies", "schema dependencies are not supported")
        if schema.get("dependentSchemas"):
            self.problem(pointer, "dependentSchemas", "property dependencies with schemas are not supported")
        names = list(props)
        for a, bs in deps.items():  # dependencies name properties that get their own places
            for x in [a, *bs]:
                if x not in names:
                    names.append(x)
        missing = [r for r in required if r not in props]
        # required properties without a schema of their own: described by additional/pattern props
        for r in missing:
            names.append(r)
        min_p = schema.get("minProperties", 0)
        max_p = schema.get("maxProperties")
        members: list[tuple[str, bool]] = []  # (member nonterminal, optional)
        ptr_props = pointer + "/properties"
        for n in names:
            if n in props:
                sub = props[n]
                matching = [p for p in pattern_props if _search(p, n)]
                if matching:
                    sub = {"allOf": [sub] + [pattern_props[p] for p in matching]}
                value = self.node(sub, base, f"{ptr_props}/{_escape_pointer(n)}")
            else:
                matching = [p for p in pattern_props if _search(p, n)]
                if matching:
                    sub = {"allOf": [pattern_props[p] for p in matching]} if len(matching) > 1 else pattern_props[matching[0]]
                    value = self.node(sub, base, f"{pointer}/patternProperties")
                elif additional is False:
                    value = self.never()
                else:
                    value = self.node(additional, base, f"{pointer}/additionalProperties")
            member = self.rule(f"m_{n}", [(self._key_term(n, pointer), self.lit(":"), value)])
            members.append((member, n not in required_set))
        extra = self._extra_members(names, additional, pattern_props, schema.get("propertyNames"), base, pointer)
        if "propertyNames" in schema and names:
            self._check_names(names, schema["propertyNames"], pointer)
        deps = {a: [b for b in bs] for a, bs in deps.items() if bs}
        if deps:
            if min_p or max_p is not None:
                self.problem(pointer, "dependentRequired", "dependencies together with min/maxProperties are not supported")
            elif len({x for a, bs in deps.items() for x in [a, *bs]}) > 8:
                self.problem(pointer, "dependentRequired", "dependencies among more than 8 properties are not supported")
            else:
                return self._dependent_object(members, names, extra, deps)
        if min_p or max_p is not None:
            return self._counted_object(members, extra, int(min_p), None if max_p is None else int(max_p), pointer)
        return self._object_rules(members, extra)

    def _dependent_object(self, members: list[tuple[str, bool]], names: list[str], extra: str | None,
                          deps: dict[str, list[str]]) -> str:
        """:meth:`_object_rules` that also tracks which properties named in dependencies were
        written, so that "if A is present then B is" holds exactly whatever their order."""
        relevant = sorted({x for a, bs in deps.items() for x in [a, *bs]})
        bit = {x: 1 << i for i, x in enumerate(relevant)}
        comma = self.lit(",")
        n = len(members)

        def satisfied(mask: int) -> bool:
            return all(not (mask & bit[a]) or all(mask & bit[b] for b in bs) for a, bs in deps.items())

        states: dict[tuple[int, bool, int], str] = {}

        def st(i: int, started: bool, mask: int) -> str:
            key = (i, started, mask)
            if key not in states:
                states[key] = self.fresh(f"d{i}{'r' if started else 'f'}{mask}")
            return states[key]

        tail_r = self.fresh("xtail")
        if extra is not None:
            self.out.rules[tail_r] = [(), (comma, extra, tail_r)]
        for i in range(n, -1, -1):
            for started in (False, True):
                for mask in range(1 << len(relevant)):
                    name = st(i, started, mask)
                    if i == n:
                        if not satisfied(mask):
                            self.out.rules[name] = []
                        elif extra is None:
                            self.out.rules[name] = [()]
                        else:
                            self.out.rules[name] = [(), ((comma,) if started else ()) + (extra, tail_r)]
                        continue
                    m, optional = members[i]
                    nm = names[i]
                    mask2 = mask | bit.get(nm, 0)
                    alts: list[tuple[str, ...]] = [((comma,) if started else ()) + (m, st(i + 1, True, mask2))]
                    if optional:
                        alts.append((st(i + 1, started, mask),))
                    self.out.rules[name] = alts
        return self.rule("object", [(self.lit("{"), st(0, False, 0), self.lit("}"))])

    def _check_names(self, names: list[str], prop_names: Any, pointer: str) -> None:
        import jsonschema

        cls = jsonschema.Draft7Validator if self.draft == "7" else jsonschema.Draft202012Validator
        try:
            v = cls(prop_names)
            bad = [n for n in names if not v.is_valid(n)]
        except Exception:
            return
        if bad:
            self.problem(pointer, "propertyNames", f"named properties {bad} violate propertyNames")

    def _extra_members(self, names: list[str], additional: Any, pattern_props: dict[str, Any], prop_names: Any,
                       base: str, pointer: str) -> str | None:
        """A nonterminal for one additional/pattern property (key not among ``names``), or None."""
        from corral.compiler.json_schema.errors import Inexpressible
        from corral.compiler.json_schema.strings import json_string_dfa

        alts: list[tuple[str, ...]] = []
        try:
            named = json_string_dfa("^(?:" + "|".join(re.escape(n) for n in names) + ")$", ecma=False) if names else None
            pat_dfas = [json_string_dfa(p) for p in pattern_props]
            name_filter = None
            if prop_names not in (None, True, {}):
                name_filter = self._property_names_dfa(prop_names, pointer)
            for i, p in enumerate(pattern_props):
                key = pat_dfas[i]
                for j in range(len(pat_dfas)):
                    if j != i:
                        if product(key, pat_dfas[j]).accepting.any():
                            self.problem(pointer, "patternProperties", f"patterns {p!r} and {list(pattern_props)[j]!r} overlap")
                if named is not None:
                    key = difference(key, named)
                if name_filter is not None:
                    key = product(key, name_filter)
                if key.accepting.any():
                    term = self.dfa_term(key, ("pp", id(pattern_props), p, tuple(names)), "key", f"a key matching {p!r}")
                    value = self.node(pattern_props[p], base, f"{pointer}/patternProperties/{_escape_pointer(p)}")
                    alts.append((term, self.lit(":"), value))
            if additional is not False:
                key = json_string_dfa(None)
                if named is not None:
                    key = difference(key, named)
                for d in pat_dfas:
                    key = difference(key, d)
                if name_filter is not None:
                    key = product(key, name_filter)
                if key.accepting.any():
                    term = self.dfa_term(key, ("ap", tuple(names), tuple(pattern_props), id(prop_names)), "key", "an additional key")
                    value = self.node(additional, base, f"{pointer}/additionalProperties")
                    alts.append((term, self.lit(":"), value))
        except (Inexpressible, CompileLimitError) as e:
            self.problem(pointer, "patternProperties" if pattern_props else "propertyNames", str(e))
            return None
        if not alts:
            return None
        return self.rule("extra", alts)

    def _property_names_dfa(self, prop_names: Any, pointer: str) -> ByteDFA | None:
        from corral.compiler.json_schema.strings import format_pattern, json_string_dfa

        if prop_names is False:
            return _EMPTY
        if not isinstance(prop_names, dict):
            return None
        unknown = [k for k in prop_names if k not in STRING_KW | ANNOTATIONS | {"type", "enum", "const"}]
        if unknown:
            self.problem(pointer, "propertyNames", f"keywords {sorted(unknown)} in propertyNames are not supported")
            return None
        dfa = json_string_dfa(None, min_length=int(prop_names.get("minLength", 0)),
                              max_length=prop_names.get("maxLength"))
        if "pattern" in prop_names:
            dfa = product(dfa, json_string_dfa(prop_names["pattern"]))
        if "format" in prop_names:
            fp = format_pattern(prop_names["format"])
            if fp is not None:
                dfa = product(dfa, json_string_dfa("^(?:" + fp + ")$", ecma=False))
        values = [prop_names["const"]] if "const" in prop_names else prop_names.get("enum")
        if values is not None:
            strs = [v for v in values if isinstance(v, str)]
            if not strs:
                return _EMPTY
            dfa = product(dfa, json_string_dfa("^(?:" + "|".join(re.escape(v) for v in strs) + ")$", ecma=False))
        return dfa

    def _object_rules(self, members: list[tuple[str, bool]], extra: str | None) -> str:
        """``{`` members in order (optional ones skippable), then extras, ``}``; commas exact."""
        comma = self.lit(",")
        n = len(members)
        first = [""] * (n + 1)  # first[i]: from member i on, nothing emitted yet
        rest = [""] * (n + 1)   # rest[i]: from member i on, something emitted already
        for i in range(n + 1):
            first[i] = self.fresh(f"o{i}f")
            rest[i] = self.fresh(f"o{i}r")
        for i in range(n + 1):
            if i == n:
                if extra is None:
                    self.out.rules[first[i]] = [()]
                    self.out.rules[rest[i]] = [()]
                else:
                    tail = self.fresh("xtail")
                    self.out.rules[tail] = [(), (comma, extra, tail)]
                    self.out.rules[first[i]] = [(), (extra, tail)]
                    self.out.rules[rest[i]] = [(), (comma, extra, tail)]
                continue
            m, optional = members[i]
            self.out.rules[first[i]] = [(m, rest[i + 1])] + ([(first[i + 1],)] if optional else [])
            self.out.rules[rest[i]] = [(comma, m, rest[i + 1])] + ([(rest[i + 1],)] if optional else [])
        return self.rule("object", [(self.lit("{"), first[0], self.lit("}"))])

    def _counted_object(self, members: list[tuple[str, bool]], extra: str | None, min_p: int, max_p: int | None,
                        pointer: str) -> str:
        """Like :meth:`_object_rules`, counting members so that min/maxProperties hold exactly."""
        cap = max(min_p, max_p if max_p is not None else 0)
        if cap > 64:
            self.problem(pointer, "maxProperties" if max_p is not None else "minProperties", "counts above 64 are not supported")
            return self._object_rules(members, extra)
        comma = self.lit(",")
        n = len(members)
        top = cap + 1  # counts are clamped at cap+1 ("more than cap") when there is no maximum

        def ok_end(c: int) -> bool:
            return c >= min_p and (max_p is None or c <= max_p)

        def nxt(c: int) -> int | None:
            c2 = c + 1
            if max_p is not None and c2 > max_p:
                return None
            return min(c2, top)

        names: dict[tuple[int, int], str] = {}

        def state(i: int, c: int) -> str:
            if (i, c) not in names:
                names[(i, c)] = self.fresh(f"o{i}c{c}")
            return names[(i, c)]

        tails: dict[int, str] = {}

        def tail(c: int) -> str:  # after the named members, with c members so far
            if c not in tails:
                tails[c] = self.fresh(f"x{c}")
                alts: list[tuple[str, ...]] = [()] if ok_end(c) else []
                c2 = nxt(c)
                if extra is not None and c2 is not None:
                    alts.append(((comma,) if c else ()) + (extra, tail(c2)))
                self.out.rules[tails[c]] = alts
            return tails[c]

        for i in range(n, -1, -1):
            for c in range(0, top + 1):
                if i == n:
                    self.out.rules[state(i, c)] = [(tail(c),)]
                    continue
                m, optional = members[i]
                alts2: list[tuple[str, ...]] = []
                c2 = nxt(c)
                if c2 is not None:
                    alts2.append(((comma,) if c else ()) + (m, state(i + 1, c2)))
                if optional:
                    alts2.append((state(i + 1, c),))
                self.out.rules[state(i, c)] = alts2
        return self.rule("object", [(self.lit("{"), state(0, 0), self.lit("}"))])

    # -- arrays -----------------------------------------------------------------------------------
    def _array(self, schema: dict[str, Any], base: str, pointer: str) -> str:
        if self.draft == "7":
            items = schema.get("items", True)
            if isinstance(items, list):
                prefix, rest_schema, rest_ptr = items, schema.get("additionalItems", True), "/additionalItems"
            else:
                prefix, rest_schema, rest_ptr = [], items, "/items"
        else:
            prefix = schema.get("prefixItems", [])
            rest_schema = schema.get("items", True)
            rest_ptr = "/items"
            if isinstance(rest_schema, list):  # draft-7 style array form under 2020-12
                prefix, rest_schema = rest_schema, schema.get("additionalItems", True)
        if schema.get("uniqueItems") is True:
            self.problem(pointer, "uniqueItems", "uniqueness is not a context-free constraint")
        need = 0
        contains_node = None
        if "contains" in schema:
            need = 1 if self.draft == "7" else int(schema.get("minContains", 1))
            if self.draft != "7" and "maxContains" in schema:
                self.problem(pointer, "maxContains", "maxContains needs the negation of the contains schema")
            elif need and prefix:
                self.problem(pointer, "contains", "contains together with prefixItems is not supported")
            elif need:
                both = schema["contains"] if rest_schema in (True, {}) else {"allOf": [rest_schema, schema["contains"]]}
                contains_node = self.node(both, base, pointer + "/contains")
        if "unevaluatedItems" in schema and schema["unevaluatedItems"] not in (True, {}):
            self.problem(pointer, "unevaluatedItems", "unevaluatedItems is not supported")
        min_i = int(schema.get("minItems", 0))
        max_i = schema.get("maxItems")
        max_i = None if max_i is None else int(max_i)
        k = len(prefix)
        elems = [self.node(p, base, f"{pointer}/{'prefixItems' if self.draft != '7' else 'items'}/{i}") for i, p in enumerate(prefix)]
        rest_node = None if rest_schema is False else self.node(rest_schema, base, pointer + rest_ptr)
        if rest_node is None:
            max_i = k if max_i is None else min(max_i, k)
        counted = max(min_i, k, max_i if max_i is not None else 0)
        if counted > MAX_COUNTED_ITEMS:
            self.problem(pointer, "maxItems" if max_i is not None and max_i > MAX_COUNTED_ITEMS else "minItems",
                         f"item counts above {MAX_COUNTED_ITEMS} are not supported")
            counted = MAX_COUNTED_ITEMS
            max_i = None
        comma = self.lit(",")
        if contains_node is not None and need > 64:
            self.problem(pointer, "minContains", "minContains above 64 is not supported")
            contains_node, need = None, 0
        # pos(j, c): j elements written, c of them (capped at ``need``) known to match ``contains``
        pos = {(j, c): self.fresh(f"a{j}_{c}") for j in range(counted + 2) for c in range(need + 1)}
        for (j, c), name in pos.items():
            alts: list[tuple[str, ...]] = []
            if j >= min_i and (max_i is None or j <= max_i) and c >= need:
                alts.append(())
            can_add = max_i is None or j < max_i
            elem = elems[j] if j < k else rest_node
            nxt_j = min(j + 1, counted + 1)
            lead = (comma,) if j else ()
            if can_add and elem is not None:
                alts.append(lead + (elem, pos[(nxt_j, c)]))
            if can_add and contains_node is not None and c < need:
                alts.append(lead + (contains_node, pos[(nxt_j, c + 1)]))
            self.out.rules[name] = alts
        return self.rule("array", [(self.lit("["), pos[(0, 0)], self.lit("]"))])

    # -- combinators ------------------------------------------------------------------------------
    def _merge_all(self, schema: dict[str, Any], base: str, pointer: str) -> dict[str, Any] | None:
        """``allOf`` folded into one schema, for the keywords whose intersection is expressible."""
        parts = [dict({k: v for k, v in schema.items() if k != "allOf"})]
        for i, b in enumerate(schema["allOf"]):
            b = self._deref(b, base, f"{pointer}/allOf/{i}")
            if b is None:
                return None
            if b is False:
                return {"type": []}  # nothing matches
            if b is True:
                continue
            if "allOf" in b:
                inner = self._merge_all(b, base, f"{pointer}/allOf/{i}")
                if inner is None:
                    return None
                b = inner
            parts.append(b)
        obj_kw = {"properties", "patternProperties", "additionalProperties", "unevaluatedProperties"}
        arr_kw = {"prefixItems", "items", "additionalItems", "unevaluatedItems", "contains"}
        obj_parts = [p for p in parts if obj_kw & p.keys()]
        if len(obj_parts) > 1 and any(
            p.get(k) not in (None, True, {}) for p in obj_parts for k in ("additionalProperties", "unevaluatedProperties")
        ):
            self.problem(pointer, "allOf", "additionalProperties/unevaluatedProperties only see their own part's "
                         "properties; combining such parts is not supported")
            return None
        arr_parts = [p for p in parts if arr_kw & p.keys()]
        if len(arr_parts) > 1 and not all(set(p.keys()) & arr_kw <= {"items"} for p in arr_parts):
            self.problem(pointer, "allOf", "items/prefixItems only see their own part; combining such parts is not supported")
            return None
        merged: dict[str, Any] = {}
        for p in parts:
            for k, v in p.items():
                if k in ANNOTATIONS or k.startswith("x-"):
                    continue
                if k not in merged:
                    merged[k] = v
                    continue
                m = self._merge_kw(k, merged[k], v, merged, pointer)
                if m is _FAIL:
                    self.problem(pointer, "allOf", f"cannot intersect two {k!r} constraints")
                    return None
                merged[k] = m
        return merged

    def _deref(self, b: Any, base: str, pointer: str) -> Any:
        seen = 0
        while isinstance(b, dict) and "$ref" in b and seen < 50:
            target = self.resolve(b["$ref"], base, pointer)
            if target is None:
                return None
            rest = {k: v for k, v in b.items() if k != "$ref"}
            b = target[0] if not _has_constraints(rest) else {"allOf": [target[0], rest]}
            seen += 1
        return b

    def _merge_kw(self, k: str, a: Any, b: Any, merged: dict[str, Any], pointer: str) -> Any:
        if _json_equal(a, b):
            return a
        if k == "type":
            ta = {a} if isinstance(a, str) else set(a)
            tb = {b} if isinstance(b, str) else set(b)
            both = ta & tb
            if "integer" in ta and "number" in tb or "integer" in tb and "number" in ta:
                both.add("integer")
            return sorted(both)
        if k == "required":
            return list(dict.fromkeys(list(a) + list(b)))
        if k == "properties":
            out = dict(a)
            for name, s in b.items():
                out[name] = {"allOf": [out[name], s]} if name in out else s
            return out
        if k in ("minimum", "minLength", "minItems", "minProperties", "exclusiveMinimum"):
            return max(a, b)
        if k in ("maximum", "maxLength", "maxItems", "maxProperties", "exclusiveMaximum"):
            return min(a, b)
        if k == "pattern":
            merged.setdefault("__patterns", []).append(b)
            return a
        if k == "enum":
            return [x for x in a if any(_json_equal(x, y) for y in b)]
        if k in ("items", "additionalProperties") and isinstance(a, (dict, bool)) and isinstance(b, (dict, bool)):
            if k == "additionalProperties" and ("properties" in merged):
                return _FAIL  # additionalProperties is relative to each branch's own properties
            return {"allOf": [a, b]}
        if k in ("anyOf", "oneOf"):
            return _FAIL
        return _FAIL

    def _disjoint(self, branches: list[Any], base: str) -> bool:
        """A sufficient test that no value matches two branches (so anyOf == oneOf).

        Two branches are disjoint when their types cannot meet, when their const/enum values
        differ, or, for objects, when a property both require has disjoint const/enum values
        there (a discriminator, as in tool calls), or one requires a property the other forbids.
        """
        infos = []
        for b in branches:
            b = self._deref(b, base, "")
            if b is None or b is True or not isinstance(b, dict):
                return False
            infos.append(b)
        for i in range(len(infos)):
            for j in range(i + 1, len(infos)):
                if not self._pair_disjoint(infos[i], infos[j], base):
                    return False
        return True

    def _values(self, b: dict[str, Any]) -> list[Any] | None:
        if "const" in b:
            return [b["const"]]
        if isinstance(b.get("enum"), list):
            return list(b["enum"])
        return None

    def _types(self, b: dict[str, Any]) -> set[str] | None:
        t = b.get("type")
        if t is None:
            vals = self._values(b)
            if vals is None:
                return None
            out: set[str] = set()
            for v in vals:
                out |= _type_of(v)
            return out
        ts = {t} if isinstance(t, str) else set(t)
        if "integer" in ts:
            ts.add("number")
        if "number" in ts:
            ts.add("integer")
        return ts

    def _pair_disjoint(self, a: dict[str, Any], b: dict[str, Any], base: str) -> bool:
        ta, tb = self._types(a), self._types(b)
        if ta is not None and tb is not None and not (ta & tb):
            return True
        va, vb = self._values(a), self._values(b)
        if va is not None and vb is not None:
            return not any(_json_equal(x, y) for x in va for y in vb)
        if va is not None and tb is not None and all(not (_type_of(v) & tb) for v in va):
            return True
        if vb is not None and ta is not None and all(not (_type_of(v) & ta) for v in vb):
            return True
        # objects told apart by a required property (a common value would have to be an object when
        # either side admits objects only; otherwise required/properties would not apply to it)
        if not ((ta is not None and ta <= {"object"}) or (tb is not None and tb <= {"object"})):
            return False
        ra, rb = set(a.get("required", [])), set(b.get("required", []))
        pa, pb = a.get("properties", {}), b.get("properties", {})
        if not isinstance(pa, dict) or not isinstance(pb, dict):
            return False
        for k in ra & rb:
            sa = self._deref(pa.get(k, True), base, "")
            sb = self._deref(pb.get(k, True), base, "")
            if isinstance(sa, dict) and isinstance(sb, dict):
                xa, xb = self._values(sa), self._values(sb)
                if xa is not None and xb is not None and not any(_json_equal(x, y) for x in xa for y in xb):
                    return True
        for req, other in ((ra, b), (rb, a)):
            if other.get("additionalProperties") is False and not other.get("patternProperties"):
                props = other.get("properties", {})
                if any(k not in props for k in req):
                    return True
        return False


_FAIL = object()
_EMPTY = ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.array([False]), 0)


def _type_of(v: Any) -> set[str]:
    if v is None:
        return {"null"}
    if isinstance(v, bool):
        return {"boolean"}
    if isinstance(v, int):
        return {"integer", "number"}
    if isinstance(v, (float, Decimal)):
        return {"number"} | ({"integer"} if v == int(v) else set())
    if isinstance(v, str):
        return {"string"}
    if isinstance(v, list):
        return {"array"}
    return {"object"}


@functools.lru_cache(maxsize=64)
def _format_dfa(name: str) -> ByteDFA:
    """The automaton of JSON string literals whose value has format ``name`` (built once).

    ``hostname`` is special: RFC 1123 also caps the whole name at 253 characters, and RFC 5891
    forbids ``--`` in a label's 3rd and 4th characters (which also rules out ``xn--`` A-labels,
    whose Punycode validity is not regular). Counting 253 characters through every JSON escape
    spelling is too big an automaton, so host names are accepted only spelled plainly (their
    characters are ASCII letters, digits, ``-`` and ``.``: ``json.dumps`` never escapes them).
    """
    from corral.compiler.json_schema.strings import format_pattern, json_string_dfa

    pattern = format_pattern(name)
    assert pattern is not None
    if name == "hostname":
        plain = regex_to_dfa('"(?:' + pattern + ')"')
        bad_label = regex_to_dfa(r'"(?:[^"]*\.)?[^."][^."]--[^"]*"')
        return product(difference(plain, bad_label), regex_to_dfa('"[!-~]{0,253}"'))
    return json_string_dfa("^(?:" + pattern + ")$", ecma=False)


def _has_constraints(schema: dict[str, Any]) -> bool:
    return any(k not in ANNOTATIONS for k in schema)


def _search(pattern: str, text: str) -> bool:
    from corral.compiler.json_schema.strings import ecma_to_python

    try:
        return re.search(ecma_to_python(pattern), text) is not None
    except Exception:
        return False


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
    """
    comp = _Compiler(schema, options, detect_draft(schema))
    top = comp.node(schema, ROOT_URI, "")
    if comp.out.problems:
        raise UnsupportedSchemaError(comp.out.problems)
    start = comp.fresh("start")
    trail = []
    if comp._ws_pattern:
        comp.out.terminals["WS_END"] = TerminalDef("WS_END", comp._ws_pattern)
        trail = ["WS_END"]
    comp.out.rules[start] = [(top, *trail)]
    ir = GrammarIR(start=start, rules=comp.out.rules, terminals=comp.out.terminals, source=json.dumps(schema, default=str)[:10000])
    return ir, comp.out.warnings


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
    whitespace: str = "flexible",
    max_whitespace: int = 64,
    lenient: bool = False,
    timeout: float = 30.0,
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
        ``"flexible"`` (up to ``max_whitespace`` JSON whitespace characters wherever JSON allows
        whitespace) or ``"compact"`` (none).
    lenient:
        Relax what cannot be enforced exactly instead of raising; the relaxations are in the
        result's ``warnings``.
    timeout:
        Limit, in seconds, on compiling.

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
        A malformed schema.

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

    parsed = _as_schema(schema)
    ir, warnings = schema_to_ir(parsed, SchemaOptions(whitespace=whitespace, max_whitespace=max_whitespace, lenient=lenient))
    options = {"whitespace": whitespace, "max_whitespace": max_whitespace, "lenient": lenient, "timeout": timeout}
    try:
        source = schema if isinstance(schema, str) else json.dumps(parsed)
        grammar = compile_ir(ir, vocab, kind="json_schema", source=source, options=options, timeout=timeout)
    except GrammarError as e:
        if "language is empty" in e.message:
            raise GrammarError("the schema accepts no value at all") from None
        raise
    grammar.warnings = warnings
    return grammar
