"""Generates ``python.lark``, the bundled Python-subset grammar. Run it to rewrite the file::

    python corral/grammars/_make_python.py

Python's indentation is not context-free, but a bounded version of it is: with an indentation unit
of exactly four spaces and at most eight levels, every line of a block at depth ``d`` starts with
``4*d`` spaces, and a block is a run of statements at one depth. The generator writes one copy of
the statement rules per depth (``stmt_3_f`` is a statement indented 12 spaces).

Each copy is also specialised by *context*, because some of CPython's compile-time checks are
context-free and a sentence the grammar accepts must compile:

* ``m`` module level, or a class body not inside a function: no ``return``, no ``nonlocal``;
* ``f`` a function body: ``return`` allowed;
* ``n`` a function nested in a function: ``return`` and ``nonlocal`` allowed;
* suffix ``l``: inside a loop body, where ``break`` and ``continue`` are allowed (a loop's
  ``else`` block keeps the enclosing context; ``def`` and ``class`` bodies leave the loop).

Expression rules come in two copies: ``_l`` on a logical line, where whitespace is spaces and tabs,
and ``_b`` inside brackets, where it may also hold newlines and comments (implicit line joining).

The module also provides :func:`name_regex`, used for the identifier terminals of ``python.lark``,
``golike.lark`` and ``sql.lark``: a plain regular expression for identifiers other than a list of
reserved words (scannerless grammars cannot rely on keyword priority; see those files' headers).
"""

from __future__ import annotations

import keyword
import re
import string
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["name_regex", "generate", "MAX_DEPTH", "RESERVED"]

MAX_DEPTH = 8
"""Deepest indentation level (8 levels of 4 spaces: 32 spaces)."""

RESERVED = sorted(set(keyword.kwlist) | {"__debug__", "__future__"})
"""Words the NAME terminal excludes: Python's keywords, ``__debug__`` (assigning it is a
SyntaxError) and ``__future__`` (a ``from __future__`` import is only valid at the top of a file,
where ``start`` allows ``from __future__ import annotations`` explicitly)."""

_FIRST = frozenset(string.ascii_letters + "_")
_REST = frozenset(string.ascii_letters + string.digits + "_")


def _char_class(chars: Iterable[str]) -> str:
    """A regex character class for ``chars`` (ASCII), with runs written as ranges."""
    codes = sorted({ord(c) for c in chars})
    if not codes:
        raise ValueError("empty character class")
    parts: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = chr(codes[i]), chr(codes[j])
        if j - i >= 2:
            parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            parts.extend(re.escape(chr(c)) for c in range(codes[i], codes[j] + 1))
        i = j + 1
    body = "".join(parts)
    return body if len(codes) == 1 and len(body) == 1 else f"[{body}]"


def name_regex(reserved: Iterable[str], *, case_insensitive: bool = False) -> str:
    """A regex for ASCII identifiers (``[A-Za-z_][A-Za-z0-9_]*``) other than the reserved words.

    The regex walks a trie of the reserved words: at each node it either follows a reserved word
    one more character, or leaves the trie with any other identifier character and then takes any
    identifier characters; it may stop at a node only when that node does not end a reserved word.
    No lookarounds, so it is a plain regular language; it also returns the longest identifier
    prefix under leftmost-first matching, which Lark's dynamic lexer relies on.

    Parameters
    ----------
    reserved:
        Words to exclude; each must itself be an identifier.
    case_insensitive:
        Exclude every upper/lower-case spelling of the words (SQL keywords). Letters are then
        written as two-case classes (``[Ss]``), never with the ``i`` flag, which would also fold
        non-ASCII characters such as the long s ``ſ`` into ``s``.

    Returns
    -------
    str
        The regex source.

    Raises
    ------
    ValueError
        When a reserved word is not an ASCII identifier.

    Examples
    --------
    >>> rx = re.compile(name_regex(["if", "in"]))
    >>> [bool(rx.fullmatch(w)) for w in ["if", "i", "ifx", "in", "x"]]
    [False, True, True, False, True]
    """
    words = {w.lower() if case_insensitive else w for w in reserved}
    trie: dict[str, dict] = {}
    for word in sorted(words):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word):
            raise ValueError(f"reserved word {word!r} is not an identifier")
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def fold(ch: str) -> set[str]:
        return {ch.lower(), ch.upper()} if case_insensitive else {ch}

    rest = _char_class(_REST) + "*"

    def walk(node: dict[str, dict], allowed: frozenset[str], optional: bool) -> str:
        kids = sorted(k for k in node if k)
        alts = [_char_class(fold(k)) + walk(node[k], _REST, "" not in node[k]) for k in kids]
        others = set(allowed).difference(*(fold(k) for k in kids))
        if others:
            alts.append(_char_class(others) + rest)
        body = "(?:" + "|".join(alts) + ")" if len(alts) > 1 or optional else alts[0]
        return body + "?" if optional else body

    return walk(trie, _FIRST, optional=False)


# --- terminals ---------------------------------------------------------------------------------

# Escapes of non-raw str literals that CPython accepts without a warning. Octal escapes start with
# 0-3, so that any 1-3 digits CPython reads stay <= 0o377; \U stays <= U+10FFFF; \N{...} is left out.
_ESC = r"\\(?:[\\'\"abfnrtv]|[0-3][0-7]{0,2}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U(?:000[0-9a-fA-F]|0010)[0-9a-fA-F]{4})"
_BYTES_ESC = r"\\(?:[\\'\"abfnrtv]|[0-3][0-7]{0,2}|x[0-9a-fA-F]{2})"


def _quoted(q: str, char: str, esc: str) -> str:
    return f"{q}(?:{char}|{esc})*{q}"


def _triple(q: str, char: str, esc: str) -> str:
    # A body character, or one or two quotes followed by a body character: never three quotes,
    # and never a quote just before the closing three.
    item = f"(?:{char}|{esc})"
    return f"{q * 3}(?:{item}|{q}{item}|{q * 2}{item})*{q * 3}"


def _string_regex() -> str:
    d, s = '"', "'"
    plain_d, plain_s = r'[^"\\\n\r\x00]', r"[^'\\\n\r\x00]"
    long_d, long_s = r'[^"\\\r\x00]', r"[^'\\\r\x00]"
    raw_esc, raw_long_esc = r"\\[^\n\r\x00]", r"\\[^\r\x00]"
    long_esc = f"(?:{_ESC}|\\\\\\n)"
    # Triple-quoted forms first: Lark's dynamic lexer takes the leftmost-first match, and `""` is
    # a prefix of `"""..."""`.
    raw = "|".join(
        [
            _triple(d, long_d, raw_long_esc),
            _triple(s, long_s, raw_long_esc),
            _quoted(d, plain_d, raw_esc),
            _quoted(s, plain_s, raw_esc),
        ]
    )
    cooked = "|".join(
        [
            _triple(d, long_d, long_esc),
            _triple(s, long_s, long_esc),
            _quoted(d, plain_d, _ESC),
            _quoted(s, plain_s, _ESC),
        ]
    )
    return f"[rR](?:{raw})|{cooked}"


def _bytes_regex() -> str:
    # Bytes literals hold ASCII only: printable characters and tab.
    char_d, char_s = r"[\t !#-\[\]-~]", r"[\t -&(-\[\]-~]"
    raw_esc = r"\\[\t -~]"
    raw = f"{_quoted(chr(34), char_d, raw_esc)}|{_quoted(chr(39), char_s, raw_esc)}"
    cooked = f"{_quoted(chr(34), char_d, _BYTES_ESC)}|{_quoted(chr(39), char_s, _BYTES_ESC)}"
    return f"(?:[bB][rR]|[rR][bB])(?:{raw})|[bB](?:{cooked})"


def _number_regex() -> str:
    digitpart = r"[0-9](?:_?[0-9])*"
    exponent = rf"[eE][+-]?{digitpart}"
    pointfloat = rf"(?:{digitpart})?\.{digitpart}|{digitpart}\."
    exponentfloat = rf"(?:{pointfloat}|{digitpart}){exponent}"
    floatnumber = rf"{exponentfloat}|{pointfloat}"
    imag = rf"(?:{floatnumber}|{digitpart})[jJ]"
    integer = (
        r"0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+"
        r"|[1-9](?:_?[0-9])*|0+(?:_?0)*"
    )
    # Longest alternatives first (leftmost-first matching, see _string_regex).
    return f"{imag}|{floatnumber}|{integer}"


_FTEXT_CHAR = {'"': r'[^"\\{}\n\r\x00]', "'": r"[^'\\{}\n\r\x00]"}

# --- rules ---------------------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def rule(self, name: str, *alternatives: str) -> None:
        # Optional whitespace goes through the nullable rules _w / _bw rather than `_W?`, which
        # Lark would expand into two copies of the alternative at every use (4x fewer rules,
        # 3x faster Earley parsing).
        alternatives = tuple(a.replace("_BW?", "_bw").replace("_W?", "_w") for a in alternatives)
        head = f"{name}: "
        self.lines.append(head + alternatives[0])
        pad = " " * (len(name) - 1) + "| "
        for alt in alternatives[1:]:
            self.lines.append(pad + alt)

    def blank(self, comment: str | None = None) -> None:
        self.lines.append("")
        if comment:
            self.lines.extend("// " + c if c else "//" for c in comment.split("\n"))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _expressions(w: _Writer, c: str) -> None:
    """Expression rules for context ``c``: ``l`` (one logical line) or ``b`` (inside brackets)."""
    S = "_W" if c == "l" else "_BW"  # mandatory whitespace: between words
    O = f"{S}?"  # optional whitespace: next to punctuation

    w.blank(f"Expressions ({'on one line' if c == 'l' else 'inside brackets'}).")
    w.rule(f"?test_{c}", f"or_test_{c}", f"or_test_{c} {S} \"if\" {S} or_test_{c} {S} \"else\" {S} test_{c} -> conditional", f"lambdef_{c}")
    w.rule(f"lambdef_{c}", f'"lambda" {O} ":" {O} test_{c}', f'"lambda" {S} lparams_{c} {O} ":" {O} test_{c}')
    w.rule(f"?or_test_{c}", f"and_test_{c}", f'or_test_{c} {S} "or" {S} and_test_{c} -> or_op')
    w.rule(f"?and_test_{c}", f"not_test_{c}", f'and_test_{c} {S} "and" {S} not_test_{c} -> and_op')
    w.rule(f"?not_test_{c}", f'"not" {S} not_test_{c} -> not_op', f"comparison_{c}")
    w.rule(f"?comparison_{c}", f"expr_{c}", f"comparison_{c} comp_op_{c} expr_{c} -> compare")
    w.rule(
        f"comp_op_{c}",
        *[f'{O} "{op}" {O}' for op in ("<", ">", "==", ">=", "<=", "!=")],
        f'{S} "in" {S}',
        f'{S} "not" {S} "in" {S}',
        f'{S} "is" {S}',
        f'{S} "is" {S} "not" {S}',
    )
    levels = [
        ("expr", "xor_expr", ["|"]),
        ("xor_expr", "and_expr", ["^"]),
        ("and_expr", "shift_expr", ["&"]),
        ("shift_expr", "arith_expr", ["<<", ">>"]),
        ("arith_expr", "term", ["+", "-"]),
        ("term", "factor", ["*", "/", "//", "%", "@"]),
    ]
    for name, sub, ops in levels:
        alts = [f"{sub}_{c}"] + [f'{name}_{c} {O} "{op}" {O} {sub}_{c} -> binop' for op in ops]
        w.rule(f"?{name}_{c}", *alts)
    w.rule(f"?factor_{c}", f"power_{c}", *[f'"{op}" {O} factor_{c} -> unary' for op in ("+", "-", "~")])
    w.rule(f"?power_{c}", f"primary_{c}", f'primary_{c} {O} "**" {O} factor_{c} -> pow')
    w.rule(f"?trailed_{c}", f"atom_{c}", f"trailed_{c} {O} trailer")
    w.rule(
        f"?primary_{c}",
        f"trailed_{c}",
        "NUMBER",
        '"None" -> const',
        '"True" -> const',
        '"False" -> const',
        '"..." -> const',
    )
    # Atoms that can take trailers. Numbers and constants cannot: `1.real` would read as `1.`
    # followed by a name.
    w.rule(
        f"?atom_{c}",
        "NAME",
        f"strings_{c}",
        '"(" _BW? ")" -> tuple',
        '"(" _BW? test_b _BW? ")"',
        '"(" _BW? tuple_b _BW? ")"',
        '"(" _BW? test_b _BW comp_for _BW? ")" -> genexp',
        '"[" _BW? "]" -> list',
        '"[" _BW? star_items _BW? "]" -> list',
        '"[" _BW? test_b _BW comp_for _BW? "]" -> listcomp',
        '"{" _BW? "}" -> dict',
        '"{" _BW? dict_items _BW? "}" -> dict',
        '"{" _BW? test_b _BW? ":" _BW? test_b _BW comp_for _BW? "}" -> dictcomp',
        '"{" _BW? star_items _BW? "}" -> set',
        '"{" _BW? test_b _BW comp_for _BW? "}" -> setcomp',
    )
    # Adjacent string literals concatenate; they need whitespace between them, or `""` followed
    # by `"x"` would read as the start of a triple-quoted string. str and bytes never mix.
    w.rule(f"strings_{c}", f"str_piece ({S} str_piece)*", f"BYTES ({S} BYTES)*")
    w.rule(f"lparams_{c}", f"_lparams_{c}_plain")
    _params(w, f"lparams_{c}", c, annotations=False)
    w.rule(f"_comma_{c}", f'{O} "," {O}')
    # Tuples: at least one comma; starred items allowed (`*a, b`).
    w.rule(f"tuple_{c}", f'star_or_test_{c} {O} "," ({O} star_or_test_{c} {O} ",")* [{O} star_or_test_{c}]')
    w.rule(f"?star_or_test_{c}", f"test_{c}", f'"*" {O} expr_{c} -> star')
    w.rule(f"?testlist_star_{c}", f"test_{c}", f"tuple_{c}")
    # Assignment targets: names, attributes, subscripts, and lists/tuples of them with at most one
    # starred name.
    w.rule(
        f"target_{c}",
        "NAME",
        f'trailed_{c} {O} "." NAME',
        f'trailed_{c} {O} "[" _BW? subscripts _BW? "]"',
        '"(" _BW? target_b _BW? ")"',
        '"(" _BW? targets_tuple_b _BW? ")"',
        '"[" _BW? target_b _BW? "]"',
        '"[" _BW? targets_tuple_b _BW? "]"',
    )
    w.rule(
        f"targets_tuple_{c}",
        f'target_{c} {O} "," ({O} target_{c} {O} ",")* [{O} target_{c}]',
        f'(target_{c} {O} "," {O})* "*" NAME ({O} "," {O} target_{c})+',
        f'(target_{c} {O} "," {O})+ "*" NAME',
    )
    w.rule(f"?targets_{c}", f"target_{c}", f"targets_tuple_{c}")


def _params(w: _Writer, name: str, c: str, annotations: bool) -> None:
    """Parameter lists: plain ones, then ones with defaults, then `*args` or a bare `*` with
    keyword-only ones, then `**kwargs`. A plain parameter never follows one with a default
    (CPython rejects that). Split into small rules so that Lark's expansion of optional parts
    stays small."""
    O = "_W?" if c == "l" else "_BW?"
    p = f"_{name}"
    cm = f"_comma_{c}"
    param = f"param_{c}" if annotations else "NAME"
    w.rule(f"{p}_plain", f"{param} ({cm} {param})* [{cm} {p}_default]", f"{p}_default")
    w.rule(f"{p}_default", f"{p}_with_default ({cm} {p}_with_default)* [{cm} {p}_star]", f"{p}_star")
    w.rule(
        f"{p}_star",
        f'"*" {O} {param} ({cm} {p}_kwonly)* [{cm} {p}_dstar]',
        f'"*" ({cm} {p}_kwonly)+ [{cm} {p}_dstar]',
        f"{p}_dstar",
    )
    w.rule(f"{p}_with_default", f'{param} {O} "=" {O} test_{c}')
    w.rule(f"{p}_kwonly", param, f"{p}_with_default")
    w.rule(f"{p}_dstar", f'"**" {O} {param}')


def _shared(w: _Writer) -> None:
    w.blank("Bracket contents (always the `_b` copy).")
    w.rule("star_items", 'star_or_test_b (_BW? "," _BW? star_or_test_b)* [_BW? ","]')
    w.rule(
        "dict_items",
        'dict_item (_BW? "," _BW? dict_item)* [_BW? ","]',
    )
    w.rule("dict_item", 'test_b _BW? ":" _BW? test_b', '"**" _BW? expr_b -> dict_unpack')
    # Comprehension clauses: `for targets in or_test` then any `if or_test`; no bare lambda or
    # conditional expression there, as in CPython.
    w.rule(
        "comp_for",
        '"for" _BW targets_b _BW "in" _BW or_test_b (_BW "if" _BW or_test_b)* [_BW comp_for]',
    )
    w.rule(
        "trailer",
        '"(" _BW? ")" -> call',
        '"(" _BW? arguments _BW? ")" -> call',
        '"(" _BW? test_b _BW comp_for _BW? ")" -> call',
        '"[" _BW? subscripts _BW? "]" -> subscript',
        '"." NAME -> attribute',
    )
    # Call arguments: positional and `*iterable` first, then `name=value` and `**mapping`.
    w.rule(
        "arguments",
        'pos_arg (_BW? "," _BW? pos_arg)* (_BW? "," _BW? kw_arg)* [_BW? ","]',
        'kw_arg (_BW? "," _BW? kw_arg)* [_BW? ","]',
    )
    w.rule("?pos_arg", "test_b", '"*" _BW? test_b -> star')
    w.rule("kw_arg", 'NAME _BW? "=" _BW? test_b', '"**" _BW? test_b -> dstar')
    w.rule("subscripts", 'subscript (_BW? "," _BW? subscript)* [_BW? ","]')
    w.rule(
        "?subscript",
        "test_b",
        '[test_b _BW?] ":" [_BW? test_b] [_BW? ":" [_BW? test_b]] -> slice',
    )
    w.rule("params", '_params_plain [_BW? ","]')
    w.rule("param_b", 'NAME [_BW? ":" _BW? test_b]')
    _params(w, "params", "b", annotations=True)
    w.blank("String literals. f-strings are parsed so that each replacement field holds a valid\n"
            "expression: a name with attributes, constant-free subscripts and calls, then an\n"
            "optional conversion and format spec.")
    w.rule("?str_piece", "STRING", "fstring")
    for q, tag in (('"', "D"), ("'", "S")):
        w.rule(f"fstring_{tag.lower()}", f'FSTRING_START_{tag} [FTEXT_{tag}] (ffield_{tag.lower()} [FTEXT_{tag}])* {_lit(q)}')
        w.rule(f"ffield_{tag.lower()}", f'"{{" fexpr ["!" FCONV] [":" [FSPEC_{tag}]] "}}"')
    w.rule("fstring", "fstring_d", "fstring_s")
    w.rule("fexpr", "NAME", 'fexpr "." NAME', 'fexpr "[" (NAME | DECINT) "]"', 'fexpr "(" [fexpr ("," " "? fexpr)*] ")"')


def _lit(q: str) -> str:
    return '"\\""' if q == '"' else '"\'"'


# Statement contexts: (name suffix, in a function (0 no, 1 yes, 2 nested), in a loop).
_CONTEXTS = {
    "m": (0, False),
    "ml": (0, True),
    "f": (1, False),
    "fl": (1, True),
    "n": (2, False),
    "nl": (2, True),
}


def _ctx(func: int, loop: bool) -> str:
    for name, value in _CONTEXTS.items():
        if value == (func, loop):
            return name
    raise AssertionError((func, loop))


def _simple_statements(w: _Writer) -> None:
    w.blank("Simple statements (one logical line; `;` separates several).")
    for ctx, (func, loop) in _CONTEXTS.items():
        extra = []
        if func:
            extra.append("return_stmt")
        if loop:
            extra += ['"break" -> break_stmt', '"continue" -> continue_stmt']
        if func == 2:
            extra.append("nonlocal_stmt")
        w.rule(f"simple_stmts_{ctx}", f'small_{ctx} (_W? ";" _W? small_{ctx})* [_W? ";"]')
        w.rule(f"?small_{ctx}", "small_stmt", *extra)
    w.rule(
        "?small_stmt",
        "expr_stmt",
        '"pass" -> pass_stmt',
        "del_stmt",
        "raise_stmt",
        "assert_stmt",
        "global_stmt",
        "import_stmt",
        "from_stmt",
    )
    w.rule(
        "expr_stmt",
        "testlist_star_l",
        '(targets_l _W? "=" _W?)+ testlist_star_l -> assign',
        "aug_target _W? AUGOP _W? testlist_star_l -> augassign",
        'aug_target _W? ":" _W? test_l [_W? "=" _W? testlist_star_l] -> annassign',
    )
    w.rule(
        "aug_target",
        "NAME",
        'trailed_l _W? "." NAME',
        'trailed_l _W? "[" _BW? subscripts _BW? "]"',
    )
    w.rule("return_stmt", '"return"', '"return" _W testlist_star_l')
    w.rule("raise_stmt", '"raise"', '"raise" _W test_l', '"raise" _W test_l _W "from" _W test_l')
    w.rule("assert_stmt", '"assert" _W test_l [_W? "," _W? test_l]')
    w.rule("global_stmt", '"global" _W NAME (_W? "," _W? NAME)*')
    w.rule("nonlocal_stmt", '"nonlocal" _W NAME (_W? "," _W? NAME)*')
    w.rule("del_stmt", '"del" _W del_targets_l')
    for c in ("l", "b"):
        O = "_W?" if c == "l" else "_BW?"
        w.rule(f"del_targets_{c}", f'del_target_{c} ({O} "," {O} del_target_{c})* [{O} ","]')
        w.rule(
            f"del_target_{c}",
            "NAME",
            f'trailed_{c} {O} "." NAME',
            f'trailed_{c} {O} "[" _BW? subscripts _BW? "]"',
            '"(" _BW? del_targets_b _BW? ")"',
            '"[" _BW? del_targets_b _BW? "]"',
        )
    w.rule("import_stmt", '"import" _W dotted_as (_W? "," _W? dotted_as)*')
    w.rule("dotted_as", 'dotted_name [_W "as" _W NAME]')
    w.rule("dotted_name", 'NAME ("." NAME)*')
    w.rule(
        "from_stmt",
        '"from" _W module _W "import" _W import_names',
        '"from" _W module _W "import" _W? "(" _BW? import_names_b _BW? ")"',
    )
    w.rule("module", "dotted_name", "DOTS", "DOTS dotted_name")
    w.rule("import_names", 'import_as (_W? "," _W? import_as)*')
    w.rule("import_names_b", 'import_as_b (_BW? "," _BW? import_as_b)* [_BW? ","]')
    w.rule("import_as", 'NAME [_W "as" _W NAME]')
    w.rule("import_as_b", 'NAME [_BW "as" _BW NAME]')


def _indent(depth: int) -> str:
    return f"_IND{depth} " if depth else ""


def _compound_statements(w: _Writer) -> None:
    """Statement rules for every reachable (depth, context)."""
    todo = [(0, "m")]  # a stack; children pushed in sorted order keep the output stable
    seen: set[tuple[int, str]] = set()
    bodies: set[tuple[int, str]] = set()
    while todo:
        d, ctx = todo.pop()
        if (d, ctx) in seen:
            continue
        seen.add((d, ctx))
        func, loop = _CONTEXTS[ctx]
        loop_ctx = _ctx(func, True)
        def_ctx = _ctx(1 if func == 0 else 2, False)
        class_ctx = "m"
        for child in sorted({ctx, loop_ctx, def_ctx, class_ctx}):
            if d + 1 <= MAX_DEPTH:
                todo.append((d + 1, child))
        k = f"{d}_{ctx}"
        ind = _indent(d)

        def body(child: str) -> str:
            return f"body_{d + 1}_{child}" if d + 1 <= MAX_DEPTH else f"inline_body_{child}"

        w.blank(f"Statements at depth {d} ({4 * d} spaces), context {ctx}.")
        w.rule(f"stmt_{k}", f"{ind}simple_stmts_{ctx} _NL", f"{ind}compound_{k}")
        if d + 1 <= MAX_DEPTH:
            bodies.update((d + 1, child) for child in (ctx, loop_ctx, def_ctx, class_ctx))
        w.rule(
            f"?compound_{k}",
            f"if_{k}",
            f"while_{k}",
            f"for_{k}",
            f"try_{k}",
            f"with_{k}",
            f"funcdef_{k}",
            f"classdef_{k}",
            f"decorated_{k}",
        )
        w.rule(f"if_{k}", f'"if" _W test_l _W? {body(ctx)} _elif_{k}* [_else_{k}]')
        w.rule(f"_elif_{k}", f'{ind}"elif" _W test_l _W? {body(ctx)}')
        w.rule(f"_else_{k}", f'{ind}"else" _W? {body(ctx)}')
        w.rule(f"while_{k}", f'"while" _W test_l _W? {body(loop_ctx)} [_else_{k}]')
        w.rule(
            f"for_{k}",
            f'"for" _W targets_l _W "in" _W testlist_star_l _W? {body(loop_ctx)} [_else_{k}]',
        )
        w.rule(
            f"try_{k}",
            f'"try" _W? {body(ctx)} _except_{k}+ [_bare_except_{k}] [_else_{k}] [_finally_{k}]',
            f'"try" _W? {body(ctx)} _bare_except_{k} [_else_{k}] [_finally_{k}]',
            f'"try" _W? {body(ctx)} _finally_{k}',
        )
        w.rule(f"_except_{k}", f'{ind}"except" _W test_l [_W "as" _W NAME] _W? {body(ctx)}')
        w.rule(f"_bare_except_{k}", f'{ind}"except" _W? {body(ctx)}')
        w.rule(f"_finally_{k}", f'{ind}"finally" _W? {body(ctx)}')
        w.rule(f"with_{k}", f'"with" _W with_item (_W? "," _W? with_item)* _W? {body(ctx)}')
        w.rule(f"funcdef_{k}", f'"def" _W NAME _W? signature _W? {body(def_ctx)}')
        w.rule(f"classdef_{k}", f"\"class\" _W NAME [_W? class_args] _W? {body(class_ctx)}")
        w.rule(f"decorated_{k}", f'("@" _W? test_l _NL {ind})+ (funcdef_{k} | classdef_{k})')
    w.blank("Suites: the rest of the header's line, or a block of statements one level deeper.")
    for d, ctx in sorted(bodies):
        w.rule(f"body_{d}_{ctx}", f"inline_body_{ctx}", f'":" _NL stmt_{d}_{ctx}+ -> block')
    w.blank("A suite on the header's own line: `if x: return y`.")
    for ctx in _CONTEXTS:
        w.rule(f"inline_body_{ctx}", f'":" _W? simple_stmts_{ctx} _NL')
    w.rule("with_item", 'test_l [_W "as" _W target_l]')
    w.rule("signature", '"(" _BW? [params _BW?] ")" [_W? "->" _W? test_l]')
    w.rule("class_args", '"(" _BW? [arguments _BW?] ")"')


HEADER = """\
// A Python subset with exact indentation. GENERATED by corral/grammars/_make_python.py: edit the
// generator and run it (`python corral/grammars/_make_python.py`); a test fails when this file is
// out of date.
//
// Every sentence is a whole source file whose lines end with "\\n", and compiles with CPython
// (3.10+) `compile(text, name, "exec")`. Covered: expression statements, assignment (chained,
// tuple/list targets with one starred name, augmented, annotated), pass, break, continue,
// return, raise [from], assert, del, global, nonlocal, import [as], from-import (relative,
// parenthesised), if/elif/else, while/else, for/else, try/except [as]/else/finally, with [as],
// def (annotations, defaults, *args, keyword-only, **kwargs, return annotation), decorators,
// class (bases, keywords), lambda, conditional expressions, the full operator precedence, calls
// with keyword and unpacked arguments, attributes, subscripts and slices, list/tuple/dict/set
// displays and comprehensions, generator expressions, string literals (single, double and
// triple quoted; prefixes r, b, rb, f), numbers (int, hex/octal/binary, float, imaginary,
// underscores), comments and blank lines. Not covered: async/await, yield, walrus, match,
// positional-only `/`, backslash continuations, tabs in indentation, `from m import *`,
// triple-quoted f-strings, \\N{...} escapes.
//
// Indentation: exactly 4 spaces per level, up to 8 levels (_IND1 .. _IND8). Rules are copied per
// depth and per context (module/class `m`, function `f`, nested function `n`; `l` inside a loop)
// so `return`, `break`, `continue` and `nonlocal` appear only where CPython allows them.
//
// Whitespace is explicit, never %ignore'd, because Python words must stay apart: with whitespace
// optional, "notx" would read as `not x` and "x innerlist" as `x in nerlist`. So:
//   _W    spaces/tabs within a logical line: mandatory between two words (keywords, names,
//         numbers, strings), optional (`_w`) next to punctuation;
//   _BW   inside brackets: also newlines and comments (implicit line joining); `_bw` optional;
//   _NL   the end of a logical line, with an optional trailing comment, plus any blank or
//         comment-only lines after it.
// Keywords are therefore always written with whitespace around them (`if(x)` and `x)or(y` are
// left out). NAME excludes every keyword (and __debug__, __future__), by construction of its
// regex (name_regex() in the generator), since a scannerless grammar has no keyword priority.
//
// Known gaps between this language and CPython's, all depending on which names a program uses
// (no context-free grammar can track them): repeated keyword arguments `f(a=1, a=2)`, repeated
// parameter names, `nonlocal x` without an enclosing binding, and global/nonlocal declarations
// that follow a use of the name.
//
// RESERVED: {reserved}
"""


def generate() -> str:
    """The text of ``python.lark``.

    Returns
    -------
    str
        The grammar source, ending with a newline.
    """
    w = _Writer()
    w.lines.extend(HEADER.replace("{reserved}", " ".join(RESERVED)).rstrip("\n").split("\n"))
    w.blank()
    w.rule(
        "start",
        "[_NL] stmt_0_m+",
        "[_NL] [STRING _NL] (future_import _NL)+ stmt_0_m*",
    )
    w.rule("future_import", '"from" _W "__future__" _W "import" _W "annotations"')
    _compound_statements(w)
    _simple_statements(w)
    for c in ("l", "b"):
        _expressions(w, c)
    _shared(w)

    w.blank("Optional whitespace.")
    w.lines.append("_w: _W?")
    w.lines.append("_bw: _BW?")
    w.blank("Terminals.")
    w.lines.append(f"NAME: /{name_regex(RESERVED)}/")
    w.lines.append(f"NUMBER: /{_number_regex()}/")
    w.lines.append("DECINT: /0|[1-9][0-9]*/")
    w.lines.append(f"STRING: /{_string_regex()}/")
    w.lines.append(f"BYTES: /{_bytes_regex()}/")
    for q, tag in (('"', "D"), ("'", "S")):
        text = f"(?:{_FTEXT_CHAR[q]}|{_ESC}|\\{{\\{{|\\}}\\}})+"
        w.lines.append(f"FSTRING_START_{tag}: /[fF]{q}/")
        w.lines.append(f"FTEXT_{tag}: /{text}/")
        w.lines.append(f"FSPEC_{tag}: /[^{{}}\"'\\\\\\n\\r\\x00]+/")
    w.lines.append("FCONV: /[rsa]/")
    w.lines.append('AUGOP: "+=" | "-=" | "*=" | "/=" | "//=" | "%=" | "@=" | "&=" | "|=" | "^=" | ">>=" | "<<=" | "**="')
    w.lines.append(r"DOTS: /\.+/")
    w.lines.append(r"_W: /[ \t]+/")
    w.lines.append(r"_BW: /(?:[ \t]|(?:#[^\n\r\x00]*)?\n)+/")
    w.lines.append(r"_NL: /[ \t]*(?:#[^\n\r\x00]*)?\n(?:[ \t]*(?:#[^\n\r\x00]*)?\n)*/")
    for d in range(1, MAX_DEPTH + 1):
        w.lines.append(f'_IND{d}: "{"    " * d}"')
    return w.text()


def main() -> None:
    """Rewrite ``python.lark`` beside this script."""
    path = Path(__file__).with_name("python.lark")
    path.write_text(generate(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
