"""The bundled grammars (``corral.grammars``) against corpora of real sentences and real parsers.

Corpora live in ``tests/data/grammars/<name>/``: ``valid.txt`` holds sentences the grammar must
accept, ``invalid.txt`` near misses it must reject. Sentences are separated by a line holding
exactly ``----``; a sentence is the lines between two separators joined with ``\\n``. The
``python`` and ``golike`` grammars describe whole files whose every line ends with a newline, so
their sentences get a final ``\\n`` appended.

Two oracles:

* the grammar's own language, under corral's scannerless reading of Lark grammars: Lark's Earley
  parser with ``lexer="dynamic_complete"``;
* the real language: ``json.loads`` (JSON), ``compile`` (Python, and arithmetic as Python
  expressions), SQLite (SQL; ``gofmt -e`` for golike when a Go toolchain is installed).

Besides the corpora, sentences sampled at random from each grammar (seeded, so every run tests the
same ones) must be accepted by the real language's parser: that is what catches a grammar that
lets two words run together or accepts a construct the real language forbids.
"""

from __future__ import annotations

import functools
import json
import keyword
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lark
import pytest

from corral import grammars
from corral.errors import CorralError

try:  # Python 3.11+
    import re._parser as sre_parse  # type: ignore[import-not-found]
    from re import _constants as sre_constants  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

DATA = Path(__file__).resolve().parents[1] / "data" / "grammars"
REPO = Path(__file__).resolve().parents[2]
NAMES = ["arith", "golike", "json", "python", "sql"]
NEWLINE_TERMINATED = {"golike", "python"}
SEPARATOR = "----"


# --- corpora and the Lark oracle ------------------------------------------------------------------


def corpus(name: str, kind: str) -> list[str]:
    """The sentences of ``tests/data/grammars/<name>/<kind>.txt``."""
    text = (DATA / name / f"{kind}.txt").read_text(encoding="utf-8")
    sentences: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line == SEPARATOR:
            sentences.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current and current[-1] == "":  # the file's final newline
        current.pop()
    if current:
        sentences.append("\n".join(current))
    if name in NEWLINE_TERMINATED:
        sentences = [s + "\n" for s in sentences]
    return sentences


@functools.lru_cache(maxsize=None)
def lark_parser(name: str) -> lark.Lark:
    return lark.Lark(grammars.load(name), parser="earley", lexer="dynamic_complete", start="start")


def accepts(name: str, text: str) -> bool:
    try:
        lark_parser(name).parse(text)
    except lark.exceptions.LarkError:
        return False
    return True


def short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- the real languages ---------------------------------------------------------------------------

# Tables the SQL corpus queries; every valid query must compile against them (names resolved).
SQL_SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, country TEXT, city TEXT,
    created_at TEXT, segment TEXT, referrer_id INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, order_date TEXT, status TEXT,
    total REAL, shipped_at TEXT, discount REAL);
CREATE TABLE order_items (order_id INTEGER, product_id INTEGER, quantity INTEGER, unit_price REAL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL, stock INTEGER,
    supplier_id INTEGER, discontinued INTEGER);
CREATE TABLE suppliers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);
CREATE TABLE employees (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, department_id INTEGER,
    manager_id INTEGER, salary REAL, hire_date TEXT, title TEXT);
CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT, budget REAL, location TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER, event_type TEXT, occurred_at TEXT,
    properties TEXT, session_id TEXT);
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, signup_date TEXT, plan_name TEXT,
    is_active INTEGER, last_login TEXT);
CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER, amount REAL, method TEXT,
    paid_at TEXT);
"""

_SQL_SYNTAX_ERRORS = ("syntax error", "unrecognized token", "incomplete input")


def sqlite_error(query: str, schema: bool) -> str | None:
    """SQLite's error preparing ``query`` (None when it prepares), with or without the schema."""
    conn = sqlite3.connect(":memory:")
    try:
        if schema:
            conn.executescript(SQL_SCHEMA)
        conn.execute("EXPLAIN " + query)
    except sqlite3.ProgrammingError as e:
        if "bindings" not in str(e):  # `?` parameters: raised after a successful prepare
            return str(e)
    except sqlite3.Error as e:
        return str(e)
    finally:
        conn.close()
    return None


def python_error(source: str, mode: str = "exec", *, strict: bool = True) -> str | None:
    """CPython's error compiling ``source`` (None when it compiles).

    Invalid escape sequences are errors (CPython warns now and will reject them). ``strict`` also
    turns CPython's other compile-time warnings into errors ("'tuple' object is not callable",
    "is" with a literal): the corpora avoid them; random samples may hit them legitimately.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            compile(source, "<corpus>", mode)
        except (SyntaxError, ValueError) as e:
            return f"{type(e).__name__}: {e}"
    for warning in caught:
        message = str(warning.message)
        if strict or "escape" in message:
            return f"{warning.category.__name__}: {message}"
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def json_error(text: str) -> str | None:
    """``json.loads``'s error (strict: no control characters in strings, no NaN or Infinity)."""
    try:
        json.loads(text, strict=True, parse_constant=_reject_constant)
    except ValueError as e:
        return str(e)
    return None


def gofmt_error(source: str) -> str | None:
    """``gofmt -e``'s syntax errors for a golike sentence (None when Go's parser accepts it); a
    ``package`` clause is added when the sentence has none (golike makes it optional)."""
    gofmt = shutil.which("gofmt")
    assert gofmt is not None
    code = re.sub(r"//[^\n]*", "", source)
    if not re.match(r"\s*package\s", code):
        source = "package p\n" + source
    res = subprocess.run([gofmt, "-e"], input=source, capture_output=True, text=True, timeout=60)
    return (res.stderr.strip() or "gofmt failed") if res.returncode else None


# --- loader -----------------------------------------------------------------------------------------


def test_names_lists_the_bundled_grammars() -> None:
    assert grammars.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_load_returns_a_lark_grammar_with_a_start_rule(name: str) -> None:
    source = grammars.load(name)
    assert re.search(r"^start\s*:", source, re.M)
    assert source == (REPO / "corral" / "grammars" / f"{name}.lark").read_text(encoding="utf-8")


def test_error_when_grammar_name_is_unknown() -> None:
    with pytest.raises(CorralError) as info:
        grammars.load("yaml")
    assert str(info.value) == (
        "no bundled grammar named 'yaml'; available grammars: arith, golike, json, python, sql"
    )


def test_pyproject_ships_the_lark_files_as_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "grammars/*.lark" in config["tool"]["setuptools"]["package-data"]["corral"]


def test_python_grammar_is_up_to_date_with_its_generator() -> None:
    from corral.grammars import _make_python

    assert grammars.load("python") == _make_python.generate(), (
        "python.lark is stale: run `python corral/grammars/_make_python.py`"
    )


# --- corpora ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_corpus_has_enough_sentences(name: str) -> None:
    assert len(corpus(name, "valid")) >= 30
    assert len(corpus(name, "invalid")) >= 15


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("python", "golike", "sql") else n
                                  for n in NAMES])
def test_valid_corpus_is_accepted(name: str) -> None:
    rejected = [s for s in corpus(name, "valid") if not accepts(name, s)]
    assert not rejected, "\n----\n".join(short(s) for s in rejected)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_corpus_is_rejected(name: str) -> None:
    accepted = [s for s in corpus(name, "invalid") if accepts(name, s)]
    assert not accepted, "\n----\n".join(short(s) for s in accepted)


def _real_errors(name: str, kind: str) -> list[tuple[str, str | None]]:
    sentences = corpus(name, kind)
    if name == "json":
        return [(s, json_error(s)) for s in sentences]
    if name == "python":
        return [(s, python_error(s)) for s in sentences]
    if name == "arith":
        return [(s, python_error(s.strip(), "eval")) for s in sentences]
    if name == "sql":
        return [(s, sqlite_error(s, schema=True)) for s in sentences]
    if name == "golike":
        if shutil.which("gofmt") is None:
            pytest.skip("no Go toolchain (gofmt) installed")
        return [(s, gofmt_error(s)) for s in sentences]
    raise AssertionError(name)


@pytest.mark.parametrize("name", NAMES)
def test_valid_corpus_is_valid_in_the_real_language(name: str) -> None:
    bad = [f"{short(s)}\n  -> {err}" for s, err in _real_errors(name, "valid") if err is not None]
    assert not bad, "\n----\n".join(bad)


# (No such check for arith: its near misses are judged by the grammar alone; f(a,) is Python.)
@pytest.mark.parametrize("name", ["json", "python", "sql", "golike"])
def test_invalid_corpus_is_invalid_in_the_real_language(name: str) -> None:
    good = [short(s) for s, err in _real_errors(name, "invalid") if err is None]
    assert not good, "\n----\n".join(good)


# --- terminals ---------------------------------------------------------------------------------------


def _terminal_sources(name: str) -> dict[str, str]:
    """Each `NAME: /regex/` terminal of the grammar file, as written."""
    found = re.findall(r"^([A-Z_][A-Z_0-9]*)\s*:\s*/(.*)/\s*$", grammars.load(name), re.M)
    return {term: regex.replace("\\/", "/") for term, regex in found}


@pytest.mark.parametrize("name", NAMES)
def test_terminal_regexes_mean_what_the_file_says(name: str) -> None:
    # Lark rewrites escapes in /regex/ literals before compiling them (`\\"` loses its backslash);
    # corral takes the regex from Lark, so the file must survive that rewriting.
    lark_regex = {t.name: t.pattern.to_regexp() for t in lark_parser(name).terminals}
    sampler = RegexSampler(random.Random(name))
    for term, written in _terminal_sources(name).items():
        loaded = lark_regex[term]
        for _ in range(200):
            for text, other in ((sampler.sample(written), loaded), (sampler.sample(loaded), written)):
                assert re.fullmatch(other, text), (term, text)


@pytest.mark.parametrize("name", NAMES)
def test_terminals_have_no_lookarounds_lazy_quantifiers_or_case_folding(name: str) -> None:
    for t in lark_parser(name).terminals:
        regex = t.pattern.to_regexp()
        for bad in ("(?=", "(?!", "(?<=", "(?<!", "*?", "+?", "??", "(?i"):
            assert bad not in regex, (t.name, bad)
        assert not re.fullmatch(regex, ""), t.name


def test_sql_keywords_are_case_insensitive_without_unicode_folding() -> None:
    terminals = _terminal_sources("sql")
    keywords = [k for k in _reserved_words("sql") if k in terminals]
    assert {"SELECT", "FROM", "WHERE", "JOIN", "NULL"} <= set(keywords)
    for k in keywords:
        for v in _variants(k.lower()):
            assert re.fullmatch(terminals[k], v), (k, v)
        assert not re.fullmatch(terminals[k], k.replace("S", "\u017f").replace("K", "\u212a") + "x")


# --- python: bounded indentation ----------------------------------------------------------------------


def _nested(depth: int, indent: str = "    ") -> str:
    lines = [f"{indent * d}if x{d}:" for d in range(depth)]
    return "\n".join(lines + [f"{indent * depth}pass"]) + "\n"


def test_python_accepts_nesting_up_to_depth_eight() -> None:
    source = _nested(8)
    assert python_error(source) is None
    assert accepts("python", source)


def test_python_rejects_nesting_deeper_than_eight() -> None:
    assert not accepts("python", _nested(9))


@pytest.mark.parametrize(
    "source",
    [
        "if x:\n  y = 1\n",  # two-space indentation (valid Python, outside the subset)
        "if x:\n\ty = 1\n",  # tab indentation
        "if x:\n        y = 1\n",  # a block indented two levels at once
        "x = 1",  # no final newline
        "\n",  # no statement
    ],
)
def test_python_rejects_other_layouts(source: str) -> None:
    assert not accepts("python", source)


def test_python_allows_nonlocal_only_in_nested_functions() -> None:
    nested = "def f():\n    y = 0\n\n    def g():\n        nonlocal y\n        y += 1\n    return g\n"
    assert python_error(nested) is None and accepts("python", nested)
    assert not accepts("python", "def f():\n    nonlocal y\n")


# --- reserved words ----------------------------------------------------------------------------------


def _terminal(name: str, terminal: str) -> str:
    for t in lark_parser(name).terminals:
        if t.name == terminal:
            return t.pattern.to_regexp()
    raise AssertionError(f"{name}.lark has no terminal {terminal}")


def _reserved_words(name: str) -> list[str]:
    """The words listed in the grammar's ``// RESERVED:`` comment lines."""
    words: list[str] = []
    for line in grammars.load(name).splitlines():
        m = re.match(r"\s*//\s*RESERVED:(.*)", line)
        if m:
            words += m.group(1).split()
    assert words
    return words


def _variants(word: str) -> list[str]:
    return [word, word.upper(), word.capitalize(), word.swapcase()]


@pytest.mark.parametrize(
    ("name", "terminal", "case_insensitive"),
    [("sql", "NAME", True), ("golike", "NAME", False), ("python", "NAME", False)],
)
def test_name_terminal_excludes_exactly_the_reserved_words(
    name: str, terminal: str, case_insensitive: bool
) -> None:
    from corral.grammars._make_python import name_regex

    reserved = _reserved_words(name)
    pattern = _terminal(name, terminal)
    assert pattern == name_regex(reserved, case_insensitive=case_insensitive), (
        f"{name}.lark's {terminal} is out of date with its RESERVED list"
    )
    rx = re.compile(pattern)
    lowered = {w.lower() for w in reserved} if case_insensitive else set(reserved)
    probes = {"x", "_", "a1", "_private", "Value_2"}
    for w in reserved:
        for v in _variants(w) if case_insensitive else [w]:
            probes |= {v, v[:-1], v + "x", v + "_", v + "1", "x" + v, v[1:]}
    for probe in sorted(probes):
        if not probe or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", probe):
            continue
        key = probe.lower() if case_insensitive else probe
        assert bool(rx.fullmatch(probe)) == (key not in lowered), probe


# --- sampling sentences from a grammar ---------------------------------------------------------------

# Characters a negated class or `.` may produce: mostly ASCII, a few that real parsers treat
# specially (controls, NUL, CR, non-ASCII, astral).
_POOL = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
    " !\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~\t\n\r\x00\x01\x1f\x7féß€中😀\u2028"
)
_CATEGORY = {
    sre_constants.CATEGORY_DIGIT: lambda c: c.isdigit(),
    sre_constants.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre_constants.CATEGORY_SPACE: lambda c: c.isspace(),
    sre_constants.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre_constants.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre_constants.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


def _class_member(items: Any, ch: str) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            hit |= ord(ch) == av
        elif op is sre_constants.RANGE:
            hit |= av[0] <= ord(ch) <= av[1]
        elif op is sre_constants.CATEGORY:
            hit |= _CATEGORY[av](ch)
        else:  # pragma: no cover
            raise NotImplementedError(op)
    return hit != negate


class RegexSampler:
    """Random strings that fully match a regex (the subset of syntax the bundled grammars use)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cache: dict[str, Any] = {}

    def sample(self, pattern: str) -> str:
        parsed = self.cache.get(pattern)
        if parsed is None:
            parsed = self.cache[pattern] = sre_parse.parse(pattern)
        for _ in range(100):
            out = self._seq(parsed)
            if re.fullmatch(pattern, out):
                return out
        raise AssertionError(f"could not sample {pattern!r}")  # pragma: no cover

    def _seq(self, seq: Any) -> str:
        return "".join(self._item(op, av) for op, av in seq)

    def _item(self, op: Any, av: Any) -> str:
        rng = self.rng
        if op is sre_constants.LITERAL:
            return chr(av)
        if op is sre_constants.NOT_LITERAL:
            return rng.choice([c for c in _POOL if ord(c) != av])
        if op is sre_constants.ANY:
            return rng.choice([c for c in _POOL if c != "\n"])
        if op is sre_constants.IN:
            members = [c for c in _POOL if _class_member(av, c)]
            ascii_members = [c for c in members if c.isalnum() or c in " _"]
            if ascii_members and rng.random() < 0.7:
                return rng.choice(ascii_members)
            return rng.choice(members)
        if op is sre_constants.BRANCH:
            return self._seq(rng.choice(av[1]))
        if op is sre_constants.SUBPATTERN:
            return self._seq(av[-1])
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            lo, hi, item = av
            hi = min(hi, lo + 3)
            return "".join(self._seq(item) for _ in range(rng.randint(lo, hi)))
        if op is sre_constants.AT:
            return ""
        raise NotImplementedError(op)  # pragma: no cover


class GrammarSampler:
    """Random sentences of a Lark grammar: random expansions while a size budget lasts, then the
    shortest ones; ignored terminals are sprinkled between terminals."""

    def __init__(self, parser: lark.Lark, rng: random.Random, budget: int) -> None:
        self.rng = rng
        self.budget = budget
        self.regex = RegexSampler(rng)
        self.terminals = {t.name: t.pattern.to_regexp() for t in parser.terminals}
        self.ignore = list(parser.ignore_tokens)
        self.rules: dict[str, list[list[Any]]] = {}
        for r in parser.rules:
            self.rules.setdefault(r.origin.name, []).append(list(r.expansion))
        self.height = self._heights()

    def _heights(self) -> dict[str, int]:
        inf = 10**9
        height = {name: inf for name in self.rules}
        changed = True
        while changed:
            changed = False
            for name, expansions in self.rules.items():
                for exp in expansions:
                    h = 1 + max(
                        (0 if s.is_term else height[s.name] for s in exp), default=0
                    )
                    if h < height[name]:
                        height[name] = h
                        changed = True
        return height

    def sentence(self, start: str = "start") -> str:
        self.spent = 0
        out: list[str] = []
        self._ignored(out)
        self._expand(start, out)
        self._ignored(out)
        return "".join(out)

    def _ignored(self, out: list[str]) -> None:
        if self.ignore and self.rng.random() < 0.3:
            out.append(self.regex.sample(self.terminals[self.rng.choice(self.ignore)]))

    def _expand(self, name: str, out: list[str]) -> None:
        expansions = self.rules[name]
        self.spent += 1
        if self.spent < self.budget:
            exp = self.rng.choice(expansions)
        else:
            best = min(self._exp_height(e) for e in expansions)
            exp = self.rng.choice([e for e in expansions if self._exp_height(e) == best])
        for sym in exp:
            if sym.is_term:
                out.append(self.regex.sample(self.terminals[sym.name]))
                self._ignored(out)
            else:
                self._expand(sym.name, out)

    def _exp_height(self, exp: list[Any]) -> int:
        return max((0 if s.is_term else self.height[s.name] for s in exp), default=0)


def samples(name: str, count: int, budget: int, seed: int = 0) -> list[str]:
    sampler = GrammarSampler(lark_parser(name), random.Random(f"{name}-{seed}"), budget)
    return [sampler.sentence() for _ in range(count)]


def _python_keywords_as_names(text: str) -> bool:
    return any(keyword.iskeyword(w) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


# Compile errors that depend on which names a program uses, beyond what a context-free grammar
# can track; python.lark documents them as the gap between its language and Python's.
_PYTHON_NAME_DEPENDENT = (
    "keyword argument repeated",
    "duplicate argument",
    "no binding for nonlocal",
    "is parameter and global",
    "is parameter and nonlocal",
    "is nonlocal and global",
    "is assigned to before global declaration",
    "is used prior to global declaration",
    "is assigned to before nonlocal declaration",
    "is used prior to nonlocal declaration",
    "annotated name",
)


@pytest.mark.parametrize(
    ("name", "count", "budget"),
    [("json", 150, 40), ("arith", 150, 30), ("sql", 120, 60), ("python", 60, 150), ("golike", 60, 120)],
)
def test_sampled_sentences_are_valid_in_the_real_language(name: str, count: int, budget: int) -> None:
    bad: list[str] = []
    for s in samples(name, count, budget):
        if name == "json":
            err = json_error(s)
        elif name == "arith":
            # Leading blanks are an IndentationError in Python, not an arithmetic matter.
            err = None if _python_keywords_as_names(s) else python_error(s.strip(), "eval", strict=False)
        elif name == "python":
            err = python_error(s, strict=False)
            if err is not None and any(m in err for m in _PYTHON_NAME_DEPENDENT):
                err = None
        elif name == "sql":
            err = sqlite_error(s, schema=False)
            if err is not None and not any(m in err for m in _SQL_SYNTAX_ERRORS):
                err = None  # parsed; failed on names (no such table) or semantics
        else:
            if shutil.which("gofmt") is None:
                pytest.skip("no Go toolchain (gofmt) installed")
            err = gofmt_error(s)
        if err is not None:
            bad.append(f"{short(s, 600)!r}\n  -> {err}")
    assert not bad, f"{len(bad)} of {count}:\n" + "\n----\n".join(bad[:10])


@pytest.mark.parametrize("name", NAMES)
def test_sampled_sentences_are_accepted_by_lark(name: str) -> None:
    # Keeps the sampler honest (and checks Lark's leftmost-first regex matching finds every token).
    rejected = [s for s in samples(name, 10, 30, seed=1) if not accepts(name, s)]
    assert not rejected, "\n----\n".join(repr(short(s)) for s in rejected)


if __name__ == "__main__":  # pragma: no cover - manual exploration: print samples of a grammar
    for s in samples(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5, 60, seed=7):
        print(s)
        print(SEPARATOR)
