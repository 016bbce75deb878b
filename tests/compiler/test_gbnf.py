"""GBNF -> GrammarIR: lowering checked by language membership, errors pinned, fuzzing.

Oracle for the lowering: a small Earley recognizer over the IR (terminals matched with
``re.fullmatch``), compared with hand-written regexes (for the regular cases) and with
hand-written accept / reject lists.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import CompileLimitError, GrammarError
from corral.compiler.gbnf import MAX_NESTING, MAX_REPETITION_COPIES, gbnf_to_ir
from corral.compiler.grammar_ir import GrammarIR
from corral.compiler.regex import regex_to_dfa

# --- a brute-force recognizer over the IR ----------------------------------------------------


def _nullable(ir: GrammarIR) -> set[str]:
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, alternatives in ir.rules.items():
            if name not in nullable and any(all(s in nullable for s in alt) for alt in alternatives):
                nullable.add(name)
                changed = True
    return nullable


def accepts(ir: GrammarIR, text: str) -> bool:
    """Whether ``text`` is in the IR's language (scannerless Earley, Aycock-Horspool nullables)."""
    for alternatives in ir.rules.values():
        for alt in alternatives:
            for sym in alt:
                assert sym in ir.rules or sym in ir.terminals, sym
    nullable = _nullable(ir)
    n = len(text)
    chart: list[set[tuple[str, int, int, int]]] = [set() for _ in range(n + 1)]
    chart[0] = {(ir.start, a, 0, 0) for a in range(len(ir.rules[ir.start]))}
    scans: dict[tuple[str, int], list[int]] = {}
    for k in range(n + 1):
        agenda = list(chart[k])
        while agenda:
            lhs, a, dot, origin = agenda.pop()
            alt = ir.rules[lhs][a]
            new: list[tuple[str, int, int, int]] = []
            if dot == len(alt):
                for lhs2, a2, dot2, origin2 in list(chart[origin]):
                    alt2 = ir.rules[lhs2][a2]
                    if dot2 < len(alt2) and alt2[dot2] == lhs:
                        new.append((lhs2, a2, dot2 + 1, origin2))
            elif alt[dot] in ir.terminals:
                key = (alt[dot], k)
                if key not in scans:
                    pattern = ir.terminals[alt[dot]].pattern
                    scans[key] = [j for j in range(k, n + 1) if re.fullmatch(pattern, text[k:j])]
                for j in scans[key]:
                    item = (lhs, a, dot + 1, origin)
                    if j == k:
                        new.append(item)
                    else:
                        chart[j].add(item)
            else:
                sym = alt[dot]
                new.extend((sym, b, 0, k) for b in range(len(ir.rules[sym])))
                if sym in nullable:
                    new.append((lhs, a, dot + 1, origin))
            for item in new:
                if item not in chart[k]:
                    chart[k].add(item)
                    agenda.append(item)
    return any((ir.start, a, len(alt), 0) in chart[n] for a, alt in enumerate(ir.rules[ir.start]))


def strings(alphabet: str, max_len: int) -> list[str]:
    return ["".join(p) for n in range(max_len + 1) for p in itertools.product(alphabet, repeat=n)]


# --- lowering, checked against regexes --------------------------------------------------------

REGULAR_CASES = [
    # (grammar, equivalent Python regex, alphabet, max length)
    ('root ::= "ab" | "c"', r"ab|c", "abc", 4),
    ('root ::= "a" "b" "c"', r"abc", "abc", 4),
    ('root ::= ""', r"", "ab", 2),
    ('root ::= | "a"', r"a?", "ab", 2),
    ("root ::= [a-c]", r"[a-c]", "abcd", 2),
    ("root ::= [^a]", r"[^a]", "ab\n", 2),
    ("root ::= [a-]", r"[a\-]", "a-b", 2),
    ("root ::= [-a]+", r"[a\-]+", "a-b", 3),
    (r"root ::= [\]\-\[\\]", r"[\]\-\[\\]", "[]-\\a", 2),
    (r'root ::= [\x41\u00e9\U0001F600-\U0001F601]', r"[Aé😀😁]", "Aé😀😁😂a", 2),
    ("root ::= .", r"(?s:.)", "a\n😀", 2),
    ("root ::= . .", r"(?s:..)", "a\n", 3),
    ('root ::= "a"* "b"+ "c"?', r"a*b+c?", "abc", 5),
    ('root ::= ("a" | "b")* "c"', r"[ab]*c", "abc", 5),
    ('root ::= ("ab" "c"?){2}', r"(abc?){2}", "abc", 7),
    ('root ::= "a"{2}', r"a{2}", "ab", 4),
    ('root ::= "a"{2,}', r"a{2,}", "ab", 5),
    ('root ::= "a"{1,3}', r"a{1,3}", "ab", 5),
    ('root ::= "a"{,2} "b"', r"a{0,2}b", "ab", 5),
    ('root ::= "a"{0} "b"', r"b", "ab", 3),
    ('root ::= "a"{ 1 , 2 }', r"a{1,2}", "a", 4),
    ('root ::= "ab"{0,2}', r"(ab){0,2}", "ab", 6),
    ('root ::= "a"+?', r"a*", "ab", 4),
    ('root ::= "a"?*', r"a*", "ab", 4),
    ('root ::= ("a"{2}){2,3}', r"a{4}|a{6}", "a", 7),
    ('root ::= ("a" | "b" "c")? "d"', r"(a|bc)?d", "abcd", 4),
    ('root ::= ()"a"()', r"a", "a", 2),
    ('root ::= ""* "a"', r"a", "a", 2),
    (r'root ::= "\n\t\r\\\"\[\]\-"', r'\n\t\r\\"\[\]-', "\n\t\r\\\"[]-", 1),
    ('root ::= "é😀"', r"é😀", "é😀", 3),
    # several lines, comments, references, names with digits, '-' and '_'
    (
        "# header comment\n"
        "root ::= part-1 # trailing\n"
        "  | part_2\n"
        "  (part-1)\n"
        "part-1 ::=\n"
        '  "x"\n'
        '\tpart_2 ::= "y"+\n',
        r"x|y+x",
        "xy",
        4,
    ),
]


@pytest.mark.parametrize("grammar,oracle,alphabet,max_len", REGULAR_CASES)
def test_lowering_matches_regex_oracle(grammar: str, oracle: str, alphabet: str, max_len: int) -> None:
    ir = gbnf_to_ir(grammar)
    for text in strings(alphabet, max_len):
        assert accepts(ir, text) == (re.fullmatch(oracle, text) is not None), (grammar, text)


def test_lowering_recursive_rules() -> None:
    ir = gbnf_to_ir('root ::= "(" root ")" root | ""')
    for text in strings("()", 6):
        depth, ok = 0, True
        for ch in text:
            depth += 1 if ch == "(" else -1
            ok = ok and depth >= 0
        assert accepts(ir, text) == (ok and depth == 0), text


def test_lowering_start_other_than_root() -> None:
    ir = gbnf_to_ir('root ::= "a"\nother ::= "b" root', start="other")
    assert ir.start == "other"
    assert accepts(ir, "ba") and not accepts(ir, "a")


# --- llama.cpp's example grammars -------------------------------------------------------------

JSON_GBNF = r"""# Grammar for subset of JSON - doesn't support full string or number syntax

root  ::= object
value ::= object | array | string | number | boolean

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}"

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]"

string  ::=
  "\"" (
    [\x20\x21\x23-\x5b\x5d-\U0010FFFF] | # any code point except " (\x22) and \ (\x5c)
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F]) # escapes
  )* "\""

# Only plain integers currently
number  ::= "-"? [0-9]+ ws
boolean ::= ("true" | "false") ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= ([ \t\n] ws)?
"""

JSON_ARR_GBNF = r"""# This is the same as json.gbnf but we restrict whitespaces at the end of the root array
# Useful for generating JSON arrays

root   ::= arr
value  ::= object | array | string | number | ("true" | "false" | "null") ws

arr  ::=
  "[\n" ws (
            value
    (",\n" ws value)*
  )? "]"

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F]) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]*)) ("." [0-9]+)? ([eE] [-+]? [0-9]+)? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= ([ \t\n] ws)?
"""

ARITHMETIC_GBNF = r"""root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
"""

LIST_GBNF = r"""root ::= item+

# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
"""

CHESS_GBNF = r"""root    ::= "1. " move " " move "\n" ([1-9] [0-9]? ". " move " " move "\n")+
move    ::= (pawn | nonpawn | castle) [+#]?
nonpawn ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
pawn    ::= ([a-h] "x")? [a-h] [1-8] ("=" [NBKQR])?
castle  ::= "O-O" "-O"?
"""

JAPANESE_GBNF = """# A probably incorrect grammar for Japanese
root        ::= jp-char+ ([ \\t\\n] jp-char+)*
jp-char     ::= hiragana | katakana | punctuation | cjk
hiragana    ::= [ぁ-ゟ]
katakana    ::= [ァ-ヿ]
punctuation ::= [、-〾]
cjk         ::= [一-鿿]
"""

# The grammar llama.cpp's README shows for a JSON schema (uses {m,n} and an empty alternative).
SCHEMA_GBNF = r"""char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
item ::= "{" space item-name-kv "," space item-age-kv "}" space
item-age ::= ([0-9] | ([1-8] [0-9] | [9] [0-9]) | "1" ([0-4] [0-9] | [5] "0")) space
item-age-kv ::= "\"age\"" space ":" space item-age
item-name ::= "\"" char{1,100} "\"" space
item-name-kv ::= "\"name\"" space ":" space item-name
root ::= "[" space item ("," space item){9,99} "]" space
space ::= | " " | "\n" [ \t]{0,20}
"""

EXAMPLES = [
    (
        JSON_GBNF,
        ['{"a": [1, -2, {"b": "c\\n\\u00e9"}], "d": true}', "{}", '{ "é😀": false }'],
        ["[1]", '{"a": 1.5}', '{"a" 1}', '{"a": "\x01"}', '{"a": nul}', "{} "],
    ),
    (
        JSON_ARR_GBNF,
        ['[\n{"a": [1.5e3, null]},\n"x"]', "[\n]", '[\n"tab\there"]'],
        ["[]", '[\n01]', "[\n1,2]", "[\n1] "],
    ),
    (ARITHMETIC_GBNF, ["x1 = 2\n", "(a +b_2)*3= 4\ny=z\n"], ["x = \n", "1 + 2 = 3", "X = 1\n"]),
    (LIST_GBNF, ["- milk\n- eggs\n", "- é\n"], ["", "- \n", "- a\u2028b\n", "-a\n"]),
    (CHESS_GBNF, ["1. e4 e5\n2. Nf3 Nc6\n", "1. O-O-O Qxd8+\n10. exd8=Q# a1\n"], ["1. e4 e5\n", "1. e9 e5\n2. a1 a2\n"]),
    (JAPANESE_GBNF, ["ひらがな カタカナ、漢字"], ["", "ひらがな  カタカナ", "abc"]),
]


@pytest.mark.parametrize("grammar,good,bad", EXAMPLES)
def test_llama_cpp_example_grammars(grammar: str, good: list[str], bad: list[str]) -> None:
    ir = gbnf_to_ir(grammar)
    assert ir.ignore == () and ir.source == grammar
    for text in good:
        assert accepts(ir, text), text
    for text in bad:
        assert not accepts(ir, text), text


def test_llama_cpp_schema_grammar_bounded_repetitions() -> None:
    ir = gbnf_to_ir(SCHEMA_GBNF)
    people = [{"name": f"p{i}", "age": 20 + i} for i in range(10)]
    assert accepts(ir, json.dumps(people, separators=(",", ":")))
    assert not accepts(ir, json.dumps(people[:9], separators=(",", ":")))  # fewer than 10 items
    assert not accepts(ir, json.dumps(people[:9] + [{"name": "x", "age": 151}], separators=(",", ":")))


def test_terminal_patterns_compile_in_corrals_regex_dialect() -> None:
    samples = ["a", "\n", '"', "\\", "é", "😀", "\x7f", "\u2028", "-", "]", " ", "ab"]
    for grammar in [JSON_GBNF, JSON_ARR_GBNF, ARITHMETIC_GBNF, LIST_GBNF, CHESS_GBNF, JAPANESE_GBNF, SCHEMA_GBNF]:
        for term in gbnf_to_ir(grammar).terminals.values():
            dfa = regex_to_dfa(term.pattern)
            for text in samples:
                assert dfa.matches(text.encode()) == (re.fullmatch(term.pattern, text) is not None), term


@pytest.mark.parametrize("cp", [*range(0x80), 0x85, 0xA0, 0xAD, 0x2028, 0xFEFF, 0xFFFF, 0x1F600, 0x10FFFF])
def test_every_character_is_escaped_exactly(cp: int) -> None:
    ch = chr(cp)
    esc = f"\\U{cp:08X}"
    ir = gbnf_to_ir(f'root ::= "{esc}" [{esc}] [^{esc}]')
    literal, cls, negated = (ir.terminals[s].pattern for s in ir.rules["root"][0])
    assert literal == cls  # one-character classes share the literal's terminal
    assert re.fullmatch(literal, ch) and not re.fullmatch(literal, "x" if ch != "x" else "y")
    assert not re.fullmatch(negated, ch) and re.fullmatch(negated, "x" if ch != "x" else "y")
    for pattern in (literal, negated):
        dfa = regex_to_dfa(pattern)
        for text in (ch, "x", "\n", ch + ch):
            assert dfa.matches(text.encode()) == (re.fullmatch(pattern, text) is not None)


# --- the shape of the IR ----------------------------------------------------------------------


def test_ir_shape_terminals_helpers_and_positions() -> None:
    ir = gbnf_to_ir('\nroot ::= "a" [a] x*\n  x ::= ("b" | "c")+ "a"\n')
    assert ir.start == "root"
    assert ir.terminals["__t0"].pattern == "a"
    assert (ir.terminals["__t0"].line, ir.terminals["__t0"].column) == (2, 10)
    assert ir.rules["root"] == [("__t0", "__t0", "root__0")]
    assert ir.rules["root__0"] == [(), ("root__0", "x")]  # left-recursive x*
    assert ir.rules["x"] == [("x__0", "x__1", "__t0")]
    assert ir.rules["x__0"] == [("__t1",), ("__t2",)]
    assert ir.rules["x__1"] == [(), ("x__1", "x__0")]
    assert ir.rule_positions == {"root": (2, 1), "root__0": (2, 18), "x": (3, 3), "x__0": (3, 9), "x__1": (3, 9)}
    assert list(ir.rules) == ["root", "root__0", "x", "x__0", "x__1"]


def test_ir_bounded_repetition_is_a_chain_of_optionals() -> None:
    ir = gbnf_to_ir('root ::= "a"{2,4}')
    assert ir.rules == {
        "root": [("__t0", "__t0", "root__1")],
        "root__0": [(), ("__t0",)],
        "root__1": [(), ("__t0", "root__0")],
    }


def test_ir_generated_names_never_collide_with_rule_names() -> None:
    ir = gbnf_to_ir('root ::= __t0 ("x" | "y")*\n__t0 ::= root__0 "z"\nroot__0 ::= "w"?')
    assert set(ir.rules) & set(ir.terminals) == set()
    assert ir.rules["__t0"] == [("root__0", "__t3")]
    assert accepts(ir, "wzxy") and accepts(ir, "z") and not accepts(ir, "wz__t0")


def test_ir_identical_groups_and_repetitions_are_shared() -> None:
    ir = gbnf_to_ir('root ::= ("a" | "b") [0-9]* ("a" | "b") [0-9]*')
    assert len(ir.rules) == 3 and len(ir.terminals) == 3


# --- errors -----------------------------------------------------------------------------------

ERROR_CASES = [
    (
        '"a"',
        "unexpected character '\"': expected a rule definition 'name ::= ...' at line 1, column 1\n"
        '  "a"\n'
        "  ^",
    ),
    (
        'root = "a"',
        "expected '::=' after the rule name 'root' at line 1, column 6\n"
        '  root = "a"\n'
        "       ^",
    ),
    (
        'root ::= "a" @ "b"',
        "unexpected character '@': expected a string, a class, a rule name, '.', '(', '|' or a "
        "repetition operator at line 1, column 14\n"
        '  root ::= "a" @ "b"\n'
        "               ^",
    ),
    (
        'root ::= ("a" ;)',
        "unexpected character ';': expected a string, a class, a rule name, '.', '(', '|', ')' or a "
        "repetition operator at line 1, column 15\n"
        '  root ::= ("a" ;)\n'
        "                ^",
    ),
    (
        'root ::= a ::= "b"\na ::= "c"',
        "unexpected character ':': expected a string, a class, a rule name, '.', '(', '|' or a "
        "repetition operator at line 1, column 12\n"
        '  root ::= a ::= "b"\n'
        "             ^",
    ),
    (
        # string literals may hold raw newlines (as in llama.cpp): this one ends on line 2
        'root ::= "abc\nx ::= "d"',
        "unterminated string: no closing '\"' at line 2, column 9\n"
        '  x ::= "d"\n'
        "          ^",
    ),
    (
        'root ::= "abc',
        "unterminated string: no closing '\"' at line 1, column 10\n"
        '  root ::= "abc\n'
        "           ^",
    ),
    (
        "root ::= [a-z",
        "unterminated character class: no closing ']' at line 1, column 10\n"
        "  root ::= [a-z\n"
        "           ^",
    ),
    (
        'root ::= ("a" "b"\nx ::= "c"',
        "unbalanced parenthesis: '(' is never closed at line 1, column 10\n"
        '  root ::= ("a" "b"\n'
        "           ^",
    ),
    (
        'root ::= "a")',
        "unbalanced parenthesis: ')' has no matching '(' at line 1, column 13\n"
        '  root ::= "a")\n'
        "              ^",
    ),
    (
        r'root ::= "a\qb"',
        "unknown escape '\\q' (expected one of \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\xHH \\uHHHH \\UHHHHHHHH) "
        "at line 1, column 12\n"
        '  root ::= "a\\qb"\n'
        "             ^~",
    ),
    (
        r'root ::= "\x4"',
        "expected 2 hex digits after '\\x' at line 1, column 11\n"
        '  root ::= "\\x4"\n'
        "            ^~",
    ),
    (
        r"root ::= [\u12G4]",
        "expected 4 hex digits after '\\u' at line 1, column 11\n"
        "  root ::= [\\u12G4]\n"
        "            ^~",
    ),
    (
        r'root ::= "\UFFFFFFFF"',
        "code point U+FFFFFFFF is beyond U+10FFFF at line 1, column 11\n"
        '  root ::= "\\UFFFFFFFF"\n'
        "            ^~~~~~~~~~",
    ),
    (
        r'root ::= "\uD800"',
        "surrogate code point U+D800 can never occur in text at line 1, column 11\n"
        '  root ::= "\\uD800"\n'
        "            ^~~~~~",
    ),
    (
        'root ::= "a"{3,1}',
        "bad repetition bounds {3,1}: the maximum is below the minimum at line 1, column 13\n"
        '  root ::= "a"{3,1}\n'
        "              ^~~~~",
    ),
    (
        'root ::= "a"{,}',
        "the repetition '{,}' has no bound: write '*' or give a bound at line 1, column 13\n"
        '  root ::= "a"{,}\n'
        "              ^~~",
    ),
    (
        'root ::= "a"{x}',
        "expected a number, ',' or '}' in the repetition '{...}' at line 1, column 14\n"
        '  root ::= "a"{x}\n'
        "               ^",
    ),
    (
        'root ::= "a"{}',
        "expected a number in the repetition '{...}' at line 1, column 14\n"
        '  root ::= "a"{}\n'
        "               ^",
    ),
    (
        'root ::= "a"{1,x}',
        "expected a number or '}' in the repetition '{...}' at line 1, column 16\n"
        '  root ::= "a"{1,x}\n'
        "                 ^",
    ),
    (
        'root ::= "a" | *"b"',
        "'*' must follow a symbol or a group at line 1, column 16\n"
        '  root ::= "a" | *"b"\n'
        "                 ^",
    ),
    (
        'root ::= ({2} "b")',
        "'{2}' must follow a symbol or a group at line 1, column 11\n"
        '  root ::= ({2} "b")\n'
        "            ^~~",
    ),
    (
        "root ::= [] | [^]",
        "empty character class '[]' at line 1, column 10\n"
        "  root ::= [] | [^]\n"
        "           ^~",
    ),
    (
        "root ::= [^]",
        "empty character class '[^]' at line 1, column 10\n"
        "  root ::= [^]\n"
        "           ^~~",
    ),
    (
        "root ::= [a-cz-x]",
        "bad character range 'z-x': U+007A is after U+0078 at line 1, column 14\n"
        "  root ::= [a-cz-x]\n"
        "               ^~~",
    ),
    (
        r"root ::= [^\x00-\U0010FFFF]",
        "this character class matches no character at line 1, column 10\n"
        "  root ::= [^\\x00-\\U0010FFFF]\n"
        "           ^~~~~~~~~~~~~~~~~~",
    ),
    (
        r"root ::= [\uD800-\uDFFF]",
        "this character class matches no character at line 1, column 10\n"
        "  root ::= [\\uD800-\\uDFFF]\n"
        "           ^~~~~~~~~~~~~~~",
    ),
    (
        "root ::= <think> x </think>",
        "token constraints ('<[id]>', '<token>', '!<...>') are not supported: corral constrains "
        "text, so write the token's text as a string literal instead at line 1, column 10\n"
        "  root ::= <think> x </think>\n"
        "           ^~~~~~~",
    ),
    (
        "root ::= !<[1000]>*",
        "token constraints ('<[id]>', '<token>', '!<...>') are not supported: corral constrains "
        "text, so write the token's text as a string literal instead at line 1, column 10\n"
        "  root ::= !<[1000]>*\n"
        "           ^~~~~~~~~",
    ),
    (
        'root ::= item "," items\nitem ::= [0-9]+\n',
        "undefined rule 'items' at line 1, column 19\n"
        '  root ::= item "," items\n'
        "                    ^~~~~",
    ),
    (
        'root ::= a\na ::= "x"\n  a ::= "y"',
        "rule 'a' is defined twice (first at line 2, column 1) at line 3, column 3\n"
        '    a ::= "y"\n'
        "    ^",
    ),
    ('start ::= "a"', "no rule named 'root' (the start rule): define 'root ::= ...'"),
    ("# only a comment\n", "no rule named 'root' (the start rule): define 'root ::= ...'"),
    (
        # the first error in the text wins over an undefined rule before it
        'root ::= undefined\nx ::= "a" "b\n',
        "unterminated string: no closing '\"' at line 2, column 11\n"
        '  x ::= "a" "b\n'
        "            ^",
    ),
]


@pytest.mark.parametrize("grammar,message", ERROR_CASES)
def test_error_messages_are_pinned(grammar: str, message: str) -> None:
    with pytest.raises(GrammarError) as info:
        gbnf_to_ir(grammar)
    assert str(info.value) == message


def test_error_position_attributes() -> None:
    with pytest.raises(GrammarError) as info:
        gbnf_to_ir('root ::= x\n\n  x ::= "a" y')
    err = info.value
    assert (err.line, err.column, err.pos, err.length, err.message) == (3, 13, 24, 1, "undefined rule 'y'")
    assert isinstance(err, ValueError)


def test_error_when_repetition_exceeds_the_limit() -> None:
    with pytest.raises(CompileLimitError) as info:
        gbnf_to_ir('root ::= "a"{3000} "b"{0,4000}')
    assert info.value.limit == "max_repetition"
    assert info.value.value == MAX_REPETITION_COPIES
    assert str(info.value) == (
        "repetition {0,4000} takes the grammar past 10000 repeated symbol copies "
        "(limit max_repetition=10000); lower the bounds at line 1, column 23"
    )


def test_error_when_huge_bounds_are_given() -> None:
    with pytest.raises(CompileLimitError) as info:
        gbnf_to_ir('root ::= "a"{99999999999999999999,}')
    assert info.value.limit == "max_repetition"


def test_repetition_limit_is_not_hit_by_nesting() -> None:
    # Nested repetitions go through helper rules: the IR grows with the sum of the bounds.
    ir = gbnf_to_ir('root ::= (("a"{50}){50}){50}')
    assert sum(len(alt) for alts in ir.rules.values() for alt in alts) < 200


def test_error_when_parentheses_nest_too_deep() -> None:
    ok = "root ::= " + "(" * MAX_NESTING + '"a"' + ")" * MAX_NESTING
    assert accepts(gbnf_to_ir(ok), "a")
    with pytest.raises(CompileLimitError) as info:
        gbnf_to_ir("root ::= " + "(" * (MAX_NESTING + 1) + '"a"' + ")" * (MAX_NESTING + 1))
    assert info.value.limit == "max_nesting"
    assert str(info.value) == "parentheses nested more than 100 deep (limit max_nesting=100) at line 1, column 110"


def test_error_when_text_is_not_a_str() -> None:
    with pytest.raises(GrammarError, match="a GBNF grammar must be a str, not bytes"):
        gbnf_to_ir(b'root ::= "a"')  # type: ignore[arg-type]


# --- random regular grammars against Python's re ---------------------------------------------

# Each node renders as (GBNF text, equivalent Python regex); sub-expressions may become rules.
_LEAVES = st.one_of(
    st.text(alphabet="ab\n", max_size=2).map(
        lambda s: ('"' + s.replace("\n", "\\n") + '"', "(?:" + re.escape(s) + ")")
    ),
    st.tuples(st.booleans(), st.sets(st.sampled_from("ab-\n"), min_size=1, max_size=3)).map(
        lambda t: (
            "[" + ("^" if t[0] else "") + "".join(sorted(t[1], key="-ab\n".index)).replace("\n", "\\n") + "]",
            "[" + ("^" if t[0] else "") + "".join(re.escape(c) for c in sorted(t[1])) + "]",
        )
    ),
    st.just((".", "(?s:.)")),
)
_REPS = st.sampled_from(["*", "+", "?", "{2}", "{1,}", "{0,2}", "{1,2}", "{,1}", "{0}"])


def _py_rep(op: str) -> str:
    return op.replace("{,", "{0,")


def _combine(children: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[tuple[str, str]]:
    seq = st.lists(children, min_size=2, max_size=3).map(
        lambda xs: (" ".join("(" + g + ")" for g, _ in xs), "".join("(?:" + r + ")" for _, r in xs))
    )
    alt = st.lists(children, min_size=2, max_size=3).map(
        lambda xs: ("(" + " | ".join(g for g, _ in xs) + ")", "(?:" + "|".join(r for _, r in xs) + ")")
    )
    rep = st.tuples(children, _REPS).map(lambda t: ("(" + t[0][0] + ")" + t[1], "(?:" + t[0][1] + ")" + _py_rep(t[1])))
    return st.one_of(seq, alt, rep)


_REGULAR = st.recursive(_LEAVES, _combine, max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=_REGULAR, use_rule=st.booleans())
def test_random_regular_grammars_match_re(node: tuple[str, str], use_rule: bool) -> None:
    gbnf, regex = node
    grammar = f"root ::= sub\nsub ::= {gbnf}\n" if use_rule else f"root ::= {gbnf}\n"
    ir = gbnf_to_ir(grammar)
    for text in strings("ab-\n", 3):
        assert accepts(ir, text) == (re.fullmatch(regex, text) is not None), (grammar, regex, text)


# --- fuzzing ----------------------------------------------------------------------------------

GBNF_PIECES = st.sampled_from(
    'root ::= "ab" [^a-z] . | ( ) * + ? {2} {1,} {,3} {3,1} # \\ \\n \\x4 \\u00e9 - _ < > ! : = é 😀'.split()
    + [" ", "\n", "\t", "root ::= ", "x ::= ", "\nx ::= ", '"', "[", "]", "{", "}", ",", "x", "\\]", "{99999}"]
    + ["\\U0010FFFF", "\\uD800", "<[12]>"]
)


def _check(text: str) -> None:
    try:
        ir = gbnf_to_ir(text)
    except (GrammarError, CompileLimitError) as e:
        assert str(e)
    else:
        assert ir.start in ir.rules
        for alternatives in ir.rules.values():
            for alt in alternatives:
                assert all(sym in ir.rules or sym in ir.terminals for sym in alt)
        assert not set(ir.rules) & set(ir.terminals)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(GBNF_PIECES, max_size=30).map("".join))
def test_fuzz_gbnf_pieces_never_crash(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_fuzz_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)
    _check("root ::= " + text)
