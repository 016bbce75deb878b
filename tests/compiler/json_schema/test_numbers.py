"""Numeric keywords as byte automata. Oracle: exact ``Fraction`` arithmetic on ``Decimal(text)``,
cross-checked against the ``jsonschema`` package on Decimal instances.

Measured compile times (2-core dev machine, numba kernels already cached; first call in a process
adds ~0.4 s of kernel loading): unbounded number 0.3 ms, unbounded integer 0.5 ms, integer 0..100
0.6 ms, number -1e9..1e9 0.9 ms, integer 0..2**63 1.5 ms, number 0.5..2.25 0.5 ms, 0..100 with
multipleOf 0.01 0.5 ms, integer -1e9..1e9 with multipleOf 7 5 ms, multipleOf 1e-400 10 ms,
+-1.7976931348623157e308 (309-digit bounds) 86 ms, multipleOf 9999 (10004 states) 0.8 s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import product as cartesian

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.compiler.automaton import ByteDFA
from corral.compiler.json_schema import errors, numbers
from corral.compiler.json_schema.numbers import Inexpressible, number_dfa
from corral.compiler.regex import regex_to_dfa
from corral.errors import CorralError

SYNTAX = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
D = Decimal


@dataclass(frozen=True)
class Spec:
    """One combination of numeric keywords."""

    integer: bool = False
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    exclusive_minimum: Decimal | None = None
    exclusive_maximum: Decimal | None = None
    multiple_of: Decimal | None = None
    extra_anchors: tuple[Decimal, ...] = field(default=())

    def kwargs(self) -> dict[str, object]:
        return {
            "integer": self.integer,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "exclusive_minimum": self.exclusive_minimum,
            "exclusive_maximum": self.exclusive_maximum,
            "multiple_of": self.multiple_of,
        }

    def keywords(self) -> list[Decimal]:
        vals = [self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum, self.multiple_of]
        return [v for v in vals if v is not None]

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {"type": "integer" if self.integer else "number"}
        names = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]
        vals = [self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum, self.multiple_of]
        out.update({k: v for k, v in zip(names, vals) if v is not None})
        return out


def satisfies(text: str, spec: Spec) -> bool:
    """The spec's answer for ``text``: valid JSON number syntax and a value meeting every keyword."""
    if not SYNTAX.fullmatch(text):
        return False
    v = Fraction(Decimal(text))
    if spec.integer and v.denominator != 1:
        return False
    if spec.minimum is not None and v < Fraction(spec.minimum):
        return False
    if spec.maximum is not None and v > Fraction(spec.maximum):
        return False
    if spec.exclusive_minimum is not None and v <= Fraction(spec.exclusive_minimum):
        return False
    if spec.exclusive_maximum is not None and v >= Fraction(spec.exclusive_maximum):
        return False
    return spec.multiple_of is None or (v / Fraction(spec.multiple_of)).denominator == 1


def departure(text: str, spec: Spec) -> bool:
    """Texts the automaton rejects on purpose (module docstring, departures 1 and 2)."""
    m = SYNTAX.fullmatch(text)
    if not m or m.group(3) is None:
        return False
    if spec.keywords():
        return True
    if not spec.integer:
        return False
    mantissa, exponent = re.split("[eE]", text)
    if Decimal(mantissa) == 0:
        return False
    fraction_zero = set(m.group(2) or ".0") <= {".", "0"}
    exponent_nonnegative = not exponent.startswith("-") or set(exponent) <= {"-", "0"}
    return not (fraction_zero and exponent_nonnegative)


def expected(text: str, spec: Spec) -> bool:
    return satisfies(text, spec) and not departure(text, spec)


def plain(n: int, places: int) -> str:
    """``n * 10**-places`` written with exactly ``places`` fraction digits."""
    sign = "-" if n < 0 else ""
    q, r = divmod(abs(n), 10**places)
    return f"{sign}{q}.{str(r).zfill(places)}" if places else f"{sign}{q}"


INVALID = [
    "", "-", "+1", "01", "-01", "00", "1.", ".5", "-.5", "1.e5", "1e", "1e+", "1E-", "--1", "0x1",
    "1.2.3", " 1", "1 ", "1_0", "١", "NaN", "Infinity", "-Infinity", "1e1.5", "+0", "0.5.", "e5",
    "1ee5", "1e+-5", "\u0661", "１",
]


def candidates(spec: Spec) -> list[str]:
    """Texts around every interesting value: integers and 1-3 digit decimals next to the bounds
    and multiples (with and without trailing zeros, both signs), exponent forms, invalid forms."""
    anchors = {D(0), D(1), D(-1), D(2), D(10), D(100), *spec.keywords(), *spec.extra_anchors}
    if spec.multiple_of is not None:
        anchors |= {spec.multiple_of * 2, spec.multiple_of * 3, -spec.multiple_of}
    out: set[str] = set(INVALID)
    for a in anchors:
        for places in range(4):
            base = Fraction(a) * 10**places
            for n0 in {base.numerator // base.denominator, -(-base.numerator // base.denominator)}:
                for k in range(-2, 3):
                    for n in (n0 + k, -(n0 + k)):
                        t = plain(n, places)
                        out.add(t)
                        out.add(t + "0" if places else t + ".0")
                        if places <= 1 and abs(k) <= 1:
                            for exp in ("e0", "E+1", "e-1", "e-0", "e2", "E-02", "e+00"):
                                out.add(t + exp)
    out |= {"-0", "-0.0", "0.000", "0e5", "-0.0E-3", "0e-0", "1e2", "1.0e2", "1.5e1", "100e-2", "7e-1"}
    return sorted(out)


def check(spec: Spec, texts: list[str] | None = None) -> None:
    dfa = number_dfa(**spec.kwargs())  # type: ignore[arg-type]
    bad = [t for t in (texts or candidates(spec)) if dfa.matches(t.encode()) != expected(t, spec)]
    assert not bad, (spec, [(t, dfa.matches(t.encode())) for t in bad[:20]])


def exhaustive(alphabet: str, max_len: int) -> list[str]:
    return ["".join(p) for n in range(max_len + 1) for p in cartesian(alphabet, repeat=n)]


SHORT = exhaustive("015.-e", 5)  # every string up to 5 bytes over the characters that matter

SPECS = [
    Spec(integer=True, minimum=D(0), maximum=D(100)),
    Spec(integer=False, minimum=D(0), maximum=D(100)),
    Spec(integer=False, exclusive_minimum=D(0), exclusive_maximum=D(100)),
    Spec(integer=True, exclusive_minimum=D(0), exclusive_maximum=D(100)),
    Spec(integer=False, minimum=D(-50), maximum=D(-10)),
    Spec(integer=False, exclusive_minimum=D("-10.5"), maximum=D("-0.25")),
    Spec(integer=False, minimum=D("0.5"), maximum=D("2.25")),
    Spec(integer=True, minimum=D("0.5"), maximum=D("2.25")),
    Spec(integer=False, minimum=D("0.500"), exclusive_maximum=D("2.250")),
    Spec(integer=False, minimum=D(0)),
    Spec(integer=False, exclusive_minimum=D(0)),
    Spec(integer=True, minimum=D(-3)),
    Spec(integer=False, maximum=D("1.5")),
    Spec(integer=False, exclusive_maximum=D("-0.001")),
    Spec(integer=True, maximum=D(0)),
    Spec(integer=False, minimum=D(5), exclusive_minimum=D(5)),
    Spec(integer=False, minimum=D(6), exclusive_minimum=D(5), maximum=D(9), exclusive_maximum=D(10)),
    Spec(integer=False, minimum=D(4), exclusive_minimum=D(5), maximum=D(11), exclusive_maximum=D(10)),
    Spec(integer=True, multiple_of=D(3)),
    Spec(integer=False, multiple_of=D(3)),
    Spec(integer=False, multiple_of=D("0.5")),
    Spec(integer=False, multiple_of=D("0.01"), minimum=D(0), maximum=D(100)),
    Spec(integer=True, multiple_of=D(7), minimum=D(-30), maximum=D(50)),
    Spec(integer=False, multiple_of=D("2.5"), exclusive_minimum=D(-10), maximum=D("12.5")),
    Spec(integer=True, multiple_of=D("2.0")),
    Spec(integer=False, multiple_of=D("0.1")),
    Spec(integer=False, multiple_of=D("1E+2")),
    Spec(integer=False, multiple_of=D("0.25"), minimum=D("-1"), maximum=D("1")),
    Spec(integer=True, multiple_of=D("0.5")),
    Spec(integer=True, minimum=D("-1e9"), maximum=D("1e9")),
    Spec(integer=True, minimum=D(0), maximum=D(2**63)),
    Spec(integer=False, minimum=D(-(2**63)), exclusive_maximum=D(2**63)),
    Spec(integer=False, minimum=D("0.001"), maximum=D("0.002")),
    Spec(integer=False, minimum=D(5), maximum=D(3)),  # empty
    Spec(integer=True, exclusive_minimum=D("0.2"), exclusive_maximum=D("0.8")),  # empty
    Spec(integer=False),
    Spec(integer=True),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: json.dumps(s.schema(), default=str))
def test_number_dfa_matches_oracle(spec: Spec) -> None:
    check(spec)
    check(spec, SHORT)


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.integer], ids=lambda s: json.dumps(s.schema(), default=str))
def test_oracle_agrees_with_jsonschema(spec: Spec) -> None:
    validator = jsonschema.Draft202012Validator(spec.schema())
    for text in candidates(spec):
        if SYNTAX.fullmatch(text) and "e" not in text.lower():
            value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
            assert validator.is_valid(value) == satisfies(text, spec), text


def test_integer_oracle_agrees_with_jsonschema_integer_rule() -> None:
    # jsonschema's own "integer" check refuses Decimal("1.0"); the spec counts 1.0 as an integer.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, Decimal) and x == x.to_integral_value()
    )
    validator_cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    for spec in [s for s in SPECS if s.integer]:
        validator = validator_cls(spec.schema())
        for text in candidates(spec):
            if SYNTAX.fullmatch(text) and "e" not in text.lower():
                assert validator.is_valid(Decimal(text)) == satisfies(text, spec), (spec, text)


def same_language(a: ByteDFA, b: ByteDFA) -> bool:
    """Language equality of two trimmed DFAs: every pair reached by the same prefix agrees on
    acceptance and on which bytes can continue."""
    seen = {(a.start, b.start)}
    stack = [(a.start, b.start)]
    while stack:
        x, y = stack.pop()
        if a.accepting[x] != b.accepting[y] or not np.array_equal(a.trans[x] >= 0, b.trans[y] >= 0):
            return False
        for byte in np.flatnonzero(a.trans[x] >= 0).tolist():
            pair = (int(a.trans[x, byte]), int(b.trans[y, byte]))
            if pair not in seen:
                seen.add(pair)
                stack.append(pair)
    return True


REGEX_CASES = [
    (Spec(), r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"),
    (Spec(integer=True), r"-?(0|[1-9][0-9]*)(\.0+)?([eE](\+?[0-9]+|-0+))?|-?0(\.0+)?[eE][+-]?[0-9]+"),
    (Spec(integer=True, minimum=D(0), maximum=D(100)), r"(-?0|[1-9][0-9]?|100)(\.0+)?"),
    (Spec(minimum=D(0), maximum=D(100)), r"-?0(\.0+)?|(0|[1-9][0-9]?)(\.[0-9]+)?|100(\.0+)?"),
    (Spec(exclusive_minimum=D(0), exclusive_maximum=D(1)), r"0\.[0-9]*[1-9][0-9]*"),
    (Spec(multiple_of=D("0.5")), r"-?(0|[1-9][0-9]*)(\.[05]0*)?"),
    (Spec(integer=True, multiple_of=D(2)), r"-?([02468]|[1-9][0-9]*[02468])(\.0+)?"),
    (Spec(multiple_of=D("0.01")), r"-?(0|[1-9][0-9]*)(\.[0-9]{1,2}0*)?"),
    (Spec(minimum=D("-2.5"), maximum=D("-2.5")), r"-2\.50*"),
]


@pytest.mark.parametrize("spec,pattern", REGEX_CASES, ids=[p for _, p in REGEX_CASES])
def test_number_dfa_equals_hand_written_regex(spec: Spec, pattern: str) -> None:
    assert same_language(number_dfa(**spec.kwargs()), regex_to_dfa(pattern))  # type: ignore[arg-type]


def test_unbounded_number_accepts_full_syntax() -> None:
    dfa = number_dfa(integer=False)
    for text in ["0", "-0", "1e400", "-1.5E-7", "12.3400e+0012", "0.0e-0", "9" * 500, "1" + "0" * 400 + ".5"]:
        assert dfa.matches(text.encode()), text
    for text in exhaustive("09.-+eE", 5):
        assert dfa.matches(text.encode()) == bool(SYNTAX.fullmatch(text)), text


def test_integer_exponent_forms() -> None:
    dfa = number_dfa(integer=True)
    accepted = ["1e2", "1.0E+2", "3e-0", "3E-000", "0e-5", "-0.0e7", "-7e1", "10e0", "1e400"]
    rejected = ["1e-2", "0.5e0", "1.5", "-2.01"]
    assert [t for t in accepted if not dfa.matches(t.encode())] == []
    assert [t for t in rejected if dfa.matches(t.encode())] == []


def test_documented_false_negatives() -> None:
    """Texts whose value satisfies the schema but that the automaton rejects (departures 1, 2)."""
    bounded = Spec(integer=False, minimum=D(0), maximum=D(100))
    dfa = number_dfa(**bounded.kwargs())  # type: ignore[arg-type]
    for text in ["1e2", "5E1", "0e0", "0.5e+1", "25e-1", "1E-300"]:
        assert satisfies(text, bounded) and not dfa.matches(text.encode()), text
    multiple = Spec(integer=False, multiple_of=D(5))
    dfa = number_dfa(**multiple.kwargs())  # type: ignore[arg-type]
    for text in ["1e1", "5e0", "0e3"]:
        assert satisfies(text, multiple) and not dfa.matches(text.encode()), text
    integer = Spec(integer=True)
    dfa = number_dfa(**integer.kwargs())  # type: ignore[arg-type]
    for text in ["1.5e1", "1.50E+1", "100e-2", "10E-1", "0.1e1"]:
        assert satisfies(text, integer) and not dfa.matches(text.encode()), text


def test_high_precision_bounds_are_exact() -> None:
    # JSON-Schema-Test-Suite bignum.json cases, decided on the exact decimal text.
    dfa = number_dfa(integer=False, maximum=D("18446744073709551615"))
    assert dfa.matches(b"18446744073709551600")
    assert dfa.matches(b"18446744073709551615.0")
    assert not dfa.matches(b"18446744073709551615.0000001")
    dfa = number_dfa(integer=False, exclusive_maximum=D("972783798187987123879878123.18878137"))
    assert not dfa.matches(b"972783798187987123879878123.188781371")
    assert not dfa.matches(b"972783798187987123879878123.18878137")
    assert dfa.matches(b"972783798187987123879878123.188781369999")
    dfa = number_dfa(integer=True)
    assert dfa.matches(b"12345678910111213141516171819202122232425262728293031")
    assert dfa.matches(b"-12345678910111213141516171819202122232425262728293031")


def test_multiple_of_tiny_decimal_is_exact() -> None:
    dfa = number_dfa(integer=False, multiple_of=D("1e-400"))
    assert dfa.matches(("0." + "0" * 399 + "1").encode())
    assert dfa.matches(("7." + "0" * 399 + "1000").encode())
    assert not dfa.matches(("0." + "0" * 400 + "1").encode())
    assert dfa.matches(b"1.5")
    assert not dfa.matches(b"1e-401")  # exponent forms are never accepted under multipleOf


def test_multiple_of_checks_decimal_not_float() -> None:
    # 0.3 / 0.1 is 2.9999999999999996 in floats; exactly 3 in decimals.
    dfa = number_dfa(integer=False, multiple_of=D("0.1"))
    assert dfa.matches(b"0.3")
    assert dfa.matches(b"-12.30")
    assert not dfa.matches(b"0.35")


def test_unsatisfiable_bounds_give_the_empty_language() -> None:
    dfa = number_dfa(integer=True, exclusive_minimum=D("0.2"), exclusive_maximum=D("0.8"))
    assert dfa.n_states == 1 and not dfa.accepting.any() and (dfa.trans == -1).all()


def test_int_arguments_are_accepted() -> None:
    dfa = number_dfa(integer=True, minimum=0, maximum=10)  # type: ignore[arg-type]
    assert dfa.matches(b"10") and not dfa.matches(b"11")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"multiple_of": D(10001)},
            ("multipleOf 10001 needs a divisibility automaton with 10001 remainder states; "
             "at most 10000 are supported"),
        ),
        (
            {"multiple_of": D("1.0001")},
            ("multipleOf 1.0001 needs a divisibility automaton with 10001 remainder states; "
             "at most 10000 are supported"),
        ),
        (
            {"multiple_of": D("1E+400")},
            ("multipleOf 1E+400 needs a divisibility automaton with more than 10000 remainder "
             "states; at most 10000 are supported"),
        ),
        (
            {"multiple_of": D("1E-100000")},
            ("multipleOf 1E-100000 needs a divisibility automaton with 100001 states (1 remainders "
             "times 100001 fraction positions); at most 50000 are supported"),
        ),
        (
            {"minimum": D("1E+5000")},
            ("minimum 1E+5000 has 5001 digits in plain notation; at most 1000 are supported "
             "(each digit costs automaton states)"),
        ),
        (
            {"exclusive_maximum": D("-1E-1000")},
            ("exclusiveMaximum -1E-1000 has 1001 digits in plain notation; at most 1000 are "
             "supported (each digit costs automaton states)"),
        ),
    ],
)
def test_error_when_inexpressible(kwargs: dict[str, Decimal], message: str) -> None:
    with pytest.raises(Inexpressible) as info:
        number_dfa(integer=False, **kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, CorralError)
    assert Inexpressible is errors.Inexpressible  # the class the schema compiler catches


def test_error_when_automaton_exceeds_max_states(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numbers, "MAX_STATES", 40)
    with pytest.raises(Inexpressible) as info:
        number_dfa(integer=True, minimum=D(0), maximum=D(10**12), multiple_of=D(97))
    assert str(info.value) == (
        "the number constraints (minimum 0, maximum 1000000000000, multipleOf 97) need an automaton "
        "with more than 40 states; use fewer digits in the bounds or a simpler multipleOf"
    )


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"multiple_of": D(0)}, ValueError, "multipleOf must be greater than 0, got 0"),
        ({"multiple_of": D("-0.5")}, ValueError, "multipleOf must be greater than 0, got -0.5"),
        ({"minimum": D("NaN")}, ValueError, "minimum must be a finite number, got NaN"),
        ({"maximum": D("-Infinity")}, ValueError, "maximum must be a finite number, got -Infinity"),
        ({"maximum": 1.5}, TypeError, "maximum must be a Decimal or an int, not float"),
        ({"exclusive_minimum": True}, TypeError, "exclusiveMinimum must be a Decimal or an int, not bool"),
    ],
)
def test_error_when_arguments_invalid(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        number_dfa(integer=False, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


# --- random constraint combinations -----------------------------------------------------------

decimals = st.builds(
    lambda n, places: D(n).scaleb(-places), st.integers(-100_000, 100_000), st.integers(0, 3)
)
multiples = st.one_of(
    st.none(),
    st.integers(1, 40).map(D),
    st.sampled_from([D("0.5"), D("0.25"), D("0.01"), D("2.5"), D("1.5"), D("0.3"), D("0.125"), D("12")]),
)


@settings(max_examples=60, deadline=None)
@given(
    integer=st.booleans(),
    bounds=st.tuples(*[st.one_of(st.none(), decimals) for _ in range(4)]),
    multiple_of=multiples,
)
def test_random_constraints_match_oracle(
    integer: bool, bounds: tuple[Decimal | None, ...], multiple_of: Decimal | None
) -> None:
    lo, hi, xlo, xhi = bounds
    check(Spec(integer, lo, hi, xlo, xhi, multiple_of))
