"""Expansion of the scalar keywords: ``type``, ``enum``/``const`` and the number and string keywords.

Numbers and strings become normal-form sets of exact byte automata (:mod:`.numbers`,
:mod:`.json_strings`, :mod:`.formats`, :mod:`.tries`). The functions taking ``self`` are methods of
:class:`~corral.compiler.json_schema.compiler._Compiler`, which binds them.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any


from corral.compiler.automaton import ByteDFA, difference, product
from corral.compiler.diagnostics import Diagnostic
from corral.compiler.json_schema.algebra import (
    FALSE, FLAT_NONE, TRUE, ArrC, Atom, DSet, Expr, Flat, Moves, Node, ObjC, Term, rest_of, join, literal_keys_dfa, neg, only,
)
from corral.compiler.json_schema.tries import lone_surrogate, words_dfa
from corral.compiler.regex import regex_to_dfa
from corral.compiler.limits import current_budget, ends_compile
from corral.errors import CompileLimitError, GrammarError
from corral.compiler.json_schema.keywords import NUMBER_KW, SPEC_FORMATS, STRING_KW, TYPES
from corral.compiler.json_schema.common import _is_number, _values_dfa

if TYPE_CHECKING:
    from corral.compiler.json_schema.compiler import _Compiler


ANY_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'


ANY_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"


ANY_INTEGER = r"-?(?:0|[1-9][0-9]*)"


def _scalar_parts(self: _Compiler, n: Node) -> list[Expr]:
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


def _number_set(self: _Compiler, schema: dict[str, Any], integer: bool, pointer: str) -> Any:
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


def _string_set(self: _Compiler, schema: dict[str, Any], pointer: str) -> Any:
    from corral.compiler.json_schema.formats import format_pattern

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
            self.out.warnings.append(Diagnostic(
                pointer, "format", "warning",
                f"format {fmt!r} is not defined by JSON Schema: ignored, as the specification says for unknown formats",
                code="unknown-format",
            ))
    for k in ("minLength", "maxLength"):
        if k in kws and (not _is_number(kws[k]) or kws[k] < 0 or kws[k] != int(kws[k])):
            raise GrammarError(f"{pointer}/{k}: must be a non-negative integer")
    min_len = int(kws.get("minLength", 0))
    max_len = None if kws.get("maxLength") is None else int(kws["maxLength"])
    if pattern is None and not fmt_ok and not min_len and max_len is None:
        return True
    memo = self.__dict__.setdefault("_string_sets", {})  # one set (and terminal) per distinct constraint
    key = (pattern, fmt if fmt_ok else None, min_len, max_len)
    got = memo.get(key)
    if got is None:
        got, ok = _new_string_set(self, pattern, str(fmt) if fmt_ok else None, min_len, max_len, pointer)
        if ok:
            memo[key] = got
    return got


def _new_string_set(self: _Compiler, pattern: str | None, fmt: str | None, min_len: int, max_len: int | None,
                    pointer: str) -> tuple[Any, bool]:
    """The set of :func:`_string_set`, and whether it may be shared (no problem was reported)."""
    from corral.compiler.json_schema.errors import Inexpressible
    from corral.compiler.json_schema.json_strings import json_string_dfa

    long = _long_bounds(min_len, max_len)
    dfa = self._length_dfa(min_len, max_len, pointer) if (min_len or max_len is not None) and not long else None
    try:
        if pattern is not None:
            p = json_string_dfa(pattern)
            dfa = p if dfa is None else product(dfa, p)
        complete = True
        if fmt is not None:
            f = _format_dfa(fmt)
            complete = fmt != "hostname"  # host names only spelled plainly (see _format_dfa)
            dfa = f if dfa is None else product(dfa, f)
    except (Inexpressible, CompileLimitError) as e:
        if isinstance(e, CompileLimitError) and ends_compile(e):
            raise
        self.problem(pointer, "pattern" if pattern is not None else "format", str(e))
        return self.opt.lenient, False
    except GrammarError as e:
        raise GrammarError(f"{pointer}/pattern: {e.message}") from None
    if long:  # the bounds stay beside the automaton (long_strings)
        from corral.compiler.json_schema.algebra import universe
        from corral.compiler.json_schema.long_strings import LongStr, feasible, long_string_set

        d = dfa if dfa is not None else universe("str", True)
        with current_budget().at(pointer or "/"):
            got = long_string_set(d, complete, min_len, max_len)
            if not isinstance(got, LongStr) or feasible(got):
                return got, True
        # the pattern's automaton has too many states at chunk boundaries: unrolled, as before
        length = self._length_dfa(min_len, max_len, pointer)
        try:
            dfa = product(length, d)
        except CompileLimitError as e:
            if ends_compile(e):
                raise
            self.problem(pointer, "pattern" if pattern is not None else "format", str(e))
            return self.opt.lenient, False
    assert dfa is not None
    return (DSet(dfa, complete) if dfa.accepting.any() else False), True


def _long_bounds(min_len: int, max_len: int | None) -> bool:
    """Whether length bounds are kept beside the automaton rather than unrolled into it
    (:mod:`.long_strings`): above ``LONG_THRESHOLD`` code points (bounds the chunked form cannot
    take, above ``MAX_LONG_BOUND`` and not made moot by the pattern, are unrolled after all)."""
    from corral.compiler.json_schema.long_strings import LONG_THRESHOLD

    return min_len > LONG_THRESHOLD or (max_len is not None and max_len > LONG_THRESHOLD)


def _length_dfa(self: _Compiler, min_len: int, max_len: int | None, pointer: str) -> ByteDFA:
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


def values_flat(self: _Compiler, values: list[Any], pointer: str) -> Flat:
    """The set of exactly these JSON values (numbers by value, objects whatever their order)."""
    strings = [v for v in values if isinstance(v, str) and _writable(self, v, pointer)]
    f = FLAT_NONE
    if strings:
        f = only(str=_literal_strings(strings))
    for v in values:
        if not isinstance(v, str):
            f = join(f, self.value_flat(v, pointer))
    return f


def _writable(self: _Compiler, text: str, pointer: str) -> bool:
    """Whether the string value ``text`` (of the ``enum`` or ``const`` at ``pointer``) can be
    written; a lone surrogate in it is a problem at that keyword (under ``lenient``, a warning,
    and the value is left out: no instance can hold it as corral writes strings)."""
    why = lone_surrogate(text, "the value")
    if why is None:
        return True
    parent, _, keyword = pointer.rpartition("/")
    self.problem(parent, keyword, why)
    return False


def value_flat(self: _Compiler, value: Any, pointer: str) -> Flat:
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
        return only(str=_literal_strings([value])) if _writable(self, value, pointer) else FLAT_NONE
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
        if not all(_writable(self, k, pointer) for k in keys):
            return FLAT_NONE
        guards: list[Expr] = [Atom(self.value_flat(value[x], pointer), "const member") for x in keys]
        d = _values_dfa(keys, guards, (rest_of(keys),), [FALSE])
        return only(obj=ObjC((Term(d, must=frozenset(keys)),)))
    raise GrammarError(f"{pointer}: {value!r} is not a JSON value")


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


def _literal_strings(values: list[str]) -> DSet:
    """Exactly these strings: every spelling for the algebra, written as ``json.dumps`` writes
    them (with or without ``ensure_ascii``)."""
    dfa = literal_keys_dfa(frozenset(values))  # first: it refuses a string with no UTF-8 spelling
    spellings = sorted({json.dumps(v, ensure_ascii=a).encode() for v in values for a in (True, False)})
    return DSet(dfa, True, emit=words_dfa(spellings))


@functools.lru_cache(maxsize=4096)
def _number_dfa(integer: bool, args: tuple[tuple[str, Decimal | None], ...]) -> ByteDFA:
    from corral.compiler.json_schema.numbers import number_dfa

    return number_dfa(integer=integer, **dict(args))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _format_dfa(name: str) -> ByteDFA:
    """The automaton of JSON string literals whose value has format ``name``: the one shipped
    with corral (:mod:`.format_tables`) when it was built from the current pattern, else
    :func:`build_format_dfa`'s (once per process)."""
    from corral.compiler.json_schema.format_tables import load

    got = load(name)
    return got if got is not None else build_format_dfa(name)


def build_format_dfa(name: str) -> ByteDFA:
    """The automaton of JSON string literals whose value has format ``name``, built.

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
