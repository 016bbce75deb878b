"""JSON Schema numeric keywords as exact byte automata.

:func:`number_dfa` returns the :class:`~corral.compiler.automaton.ByteDFA` of the JSON number
texts (RFC 8259: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``) whose *value* satisfies
``type`` (``integer`` or ``number``), ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum`` and ``multipleOf`` with the semantics of JSON Schema draft 2020-12.

Semantics
---------
* Everything is judged by the exact decimal value of the text, never by a float: bounds and
  ``multipleOf`` are :class:`~decimal.Decimal` and every comparison is done on digit strings.
  ``1.50`` is ``1.5``; ``-0`` and ``-0.0`` are ``0`` (so ``-0`` satisfies ``minimum: 0`` and
  fails ``exclusiveMinimum: 0``).
* ``integer`` means "the value is a mathematical integer", as the spec says: ``1.0``, ``-0``,
  ``7.000`` and ``1e2`` are integers (the official suite has "a float with zero fractional part
  is an integer").
* ``multipleOf`` is exact decimal divisibility (the spec's definition; implementations that divide
  floats disagree on cases such as ``0.3`` being a multiple of ``0.1``, which it is here).
  Writing the multiple as ``a * 10**-d`` (``a`` a positive integer), a text with integer digits
  ``I`` and fraction digits ``F`` is a multiple exactly when ``F`` has no nonzero digit after
  position ``d`` and the digit string ``I F[:d]`` (``F`` padded with zeros to ``d`` digits) is
  divisible by ``a``: a nonzero fraction digit past position ``d`` leaves a factor of 10 in the
  quotient's denominator that ``a * 10**(f - d)`` cannot cancel.
* When both ``minimum`` and ``exclusiveMinimum`` are given, the stricter one applies (on a tie the
  exclusive one); likewise for the maxima. Unsatisfiable bounds (``minimum > maximum``) give the
  empty language: a one-state automaton that accepts nothing (``not dfa.accepting.any()``); the
  caller decides what that means for the schema.

How it is built
---------------
A single breadth-first construction walks the syntax of a number and, in step, a few small
components (one comparator per bound, a remainder counter for ``multipleOf``, a fraction check for
``integer``); the product of their states is the DFA, which is then trimmed and minimised. A
comparator tracks how the digits read so far compare with the bound's digits (integer parts by
length then lexicographically, fractions digit by digit with zero padding) and settles, or
rejects, as soon as the outcome cannot change, so the automaton stays small (minimised: 8 states
for integers in ``0..100``, 22 for ``-1e9..1e9``, 41 for ``0..2**63``; a bound with *n* digits
costs O(*n*) states, ``multipleOf`` ``a * 10**-d`` (see below) O(``a * d``)).

Departures (all stricter: a text outside the constraints is never accepted)
---------------------------------------------------------------------------
1. **Exponent forms under bounds or multipleOf.** When any bound or ``multipleOf`` is present,
   texts with an exponent (``1e2``, ``5E+1``, ``0e0``) are rejected even when their value
   satisfies the constraints. Such sets are not regular in general: ``0.0...01e<m>`` with *n*
   zeros after the point is at most 100 exactly when *m* <= *n* + 3, and an automaton cannot
   compare an unbounded run of zeros with a decimal exponent read later. Every value remains
   writable in plain notation, so no value is lost, only a spelling.
2. **Exponent forms of integers.** With ``integer`` and no bound or ``multipleOf``, an exponent
   form is accepted exactly when its fraction is all zeros and its exponent is non-negative
   (``1e2``, ``1.0E+2``, ``3e-0``), or its mantissa is zero (``0e-5``, ``-0.0e7``). Other integer
   values written with an exponent (``1.5e1``, ``100e-2``) are rejected, for the same reason as
   above (an unbounded count of fraction digits or trailing zeros against an exponent).
3. **Limits** (raise :class:`Inexpressible`): ``multipleOf`` whose significant digits form an
   integer ``a`` above :data:`MAX_MULTIPLE_OF` (10000), or whose divisibility automaton
   ``a * (d + 1)`` exceeds :data:`MAX_MULTIPLE_OF_STATES`; a bound with more than
   :data:`MAX_BOUND_DIGITS` digits in plain notation (``1e5000``); and any combination whose
   automaton exceeds :data:`MAX_STATES` states.

Unbounded numbers (``number`` with no numeric keyword) accept the full RFC 8259 syntax, exponents
included.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np

from corral.compiler.automaton import ByteDFA, minimize
from corral.compiler.json_schema.errors import Inexpressible
from corral.errors import CompileLimitError, GrammarError

__all__ = [
    "number_dfa",
    "Inexpressible",
    "MAX_MULTIPLE_OF",
    "MAX_MULTIPLE_OF_STATES",
    "MAX_BOUND_DIGITS",
    "MAX_STATES",
]

MAX_MULTIPLE_OF = 10_000
"""Largest ``a`` in ``multipleOf = a * 10**-d`` (``a`` states track the remainder)."""

MAX_MULTIPLE_OF_STATES = 50_000
"""Largest ``a * (d + 1)``: remainders times fraction positions of the divisibility automaton."""

MAX_BOUND_DIGITS = 1_000
"""Most digits a bound may have in plain notation (a comparator needs a few states per digit)."""

MAX_STATES = 100_000
"""Most states the combined automaton may have before minimisation."""

# ``Inexpressible`` (re-exported here) is shared with the string compilers, so the schema compiler
# catches one class for every keyword.


# --- events ---------------------------------------------------------------------------------------
# The syntax walker turns bytes into events; components see only events.
# ("-", 0) sign, ("i", d) integer digit, (".", 0) decimal point, ("f", d) fraction digit,
# ("e", 0) exponent marker, ("+", 0) / ("m", 0) exponent sign, ("x", d) exponent digit.
Event = tuple[str, int]

_DIGITS = [(ord("0") + d, d) for d in range(10)]

# Syntax states of RFC 8259 numbers.
_START, _NEG, _INT0, _INT, _POINT, _FRAC, _EXP, _EXPSIGN, _EXPDIG = range(9)
_SYNTAX_ACCEPTING = frozenset({_INT0, _INT, _FRAC, _EXPDIG})


def _syntax_moves(allow_exponent: bool) -> dict[int, list[tuple[int, int, Event]]]:
    """``moves[s]``: the ``(byte, next syntax state, event)`` triples leaving syntax state ``s``."""
    moves: dict[int, list[tuple[int, int, Event]]] = {s: [] for s in range(9)}
    for s in (_START, _NEG):
        moves[s].append((ord("0"), _INT0, ("i", 0)))
        moves[s] += [(b, _INT, ("i", d)) for b, d in _DIGITS[1:]]
    moves[_START].append((ord("-"), _NEG, ("-", 0)))
    moves[_INT] += [(b, _INT, ("i", d)) for b, d in _DIGITS]
    for s in (_INT0, _INT):
        moves[s].append((ord("."), _POINT, (".", 0)))
    for s in (_POINT, _FRAC):
        moves[s] += [(b, _FRAC, ("f", d)) for b, d in _DIGITS]
    if allow_exponent:
        for s in (_INT0, _INT, _FRAC):
            moves[s] += [(ord("e"), _EXP, ("e", 0)), (ord("E"), _EXP, ("e", 0))]
        moves[_EXP] += [(ord("+"), _EXPSIGN, ("+", 0)), (ord("-"), _EXPSIGN, ("m", 0))]
        for s in (_EXP, _EXPSIGN, _EXPDIG):
            moves[s] += [(b, _EXPDIG, ("x", d)) for b, d in _DIGITS]
    return moves


class _Component(Protocol):
    """One constraint followed in step with the syntax: a finite machine over events."""

    start: Hashable

    def step(self, state: Hashable, event: Event) -> Hashable | None:
        """The state after ``event``, or ``None`` when no continuation can satisfy the constraint."""

    def accepts(self, state: Hashable) -> bool:
        """Whether a complete number ending in ``state`` satisfies the constraint."""


_OK = "ok"
"""Component state meaning "satisfied whatever follows"."""


@dataclass(frozen=True)
class _Plain:
    """A nonzero-or-zero decimal in plain notation: sign in {-1, 0, 1}, canonical digits."""

    sign: int
    int_digits: str  # no leading zeros; "0" when the magnitude is below 1
    frac_digits: str  # no trailing zeros; may be empty


def _finite(keyword: str, value: object) -> Decimal:
    """``value`` as a finite Decimal, or ``TypeError`` / :class:`GrammarError` (a ``ValueError``)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"{keyword} must be a Decimal or an int, not {type(value).__name__}")
    dec = Decimal(value)
    if not dec.is_finite():
        raise GrammarError(f"{keyword} must be a finite number, got {dec}")
    return dec


def _strip(dec: Decimal) -> tuple[int, str, int]:
    """``(sign, digits, exponent)`` of a finite Decimal with trailing zeros of ``digits`` moved into
    the exponent (exact: no context rounding, unlike ``Decimal.normalize``). Zero is ``(0, "0", 0)``.
    """
    neg, digit_tuple, exp = dec.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return 0, "0", 0
    stripped = digits.rstrip("0")
    return (-1 if neg else 1), stripped, exp + len(digits) - len(stripped)


def _plain(keyword: str, dec: Decimal) -> _Plain:
    """The plain-notation digits of a bound; ``Inexpressible`` when it has too many."""
    sign, digits, exp = _strip(dec)
    if sign == 0:
        return _Plain(0, "0", "")
    n_int = len(digits) + exp if len(digits) + exp > 0 else 1
    n_frac = -exp if exp < 0 else 0
    if n_int + n_frac > MAX_BOUND_DIGITS:
        raise Inexpressible(
            f"{keyword} {dec} has {n_int + n_frac} digits in plain notation; at most "
            f"{MAX_BOUND_DIGITS} are supported (each digit costs automaton states)"
        )
    if exp >= 0:
        return _Plain(sign, digits + "0" * exp, "")
    if len(digits) > -exp:
        return _Plain(sign, digits[:exp], digits[exp:])
    return _Plain(sign, "0", "0" * (-exp - len(digits)) + digits)


class _Compare:
    """Compares the text's value with a constant ``c``; accepts when the outcome is in ``allowed``.

    State ``(negative_text, magnitude)`` where ``magnitude`` follows ``|value|`` against ``|c|``:
    ``None`` before any digit; ``("I", k, rel)`` after ``k`` integer digits whose comparison with
    the first ``k`` digits of ``|c|``'s integer part is ``rel`` (-1, 0, 1); ``("F", j)`` after
    ``j`` fraction digits, integer parts and fractions equal so far. As soon as the outcome is
    known the state becomes :data:`_OK` or the step returns ``None``.
    """

    def __init__(self, bound: _Plain, allowed: frozenset[int]) -> None:
        self.bound = bound
        self.allowed = allowed
        self.start: Hashable = (False, None)

    def _final(self, negative: bool, rel: int) -> int:
        """``cmp(value, c)`` from the text's sign and ``cmp(|value|, |c|)``."""
        if not negative:
            return rel if self.bound.sign >= 0 else 1
        return -1 if self.bound.sign > 0 else -rel

    def _settle(self, negative: bool, rel: int) -> Hashable | None:
        return _OK if self._final(negative, rel) in self.allowed else None

    def step(self, state: Hashable, event: Event) -> Hashable | None:
        if state == _OK:
            return _OK
        assert isinstance(state, tuple)
        negative, mag = state
        kind, d = event
        if kind == "-":
            # A negative text against a positive bound: below it whatever the digits.
            return self._settle(True, 0) if self.bound.sign > 0 else (True, None)
        ints, fracs = self.bound.int_digits, self.bound.frac_digits
        if kind == "i":
            if mag is None:
                if not negative and self.bound.sign < 0:
                    return self._settle(False, 1)
                k, rel = 0, 0
            else:
                _, k, rel = mag
            if k + 1 > len(ints):  # longer integer part (no leading zeros): larger magnitude
                return self._settle(negative, 1)
            if rel == 0:
                rel = (d > int(ints[k])) - (d < int(ints[k]))
            return (negative, ("I", k + 1, rel))
        if kind == ".":
            _, k, rel = mag
            int_rel = -1 if k < len(ints) else rel
            return (negative, ("F", 0)) if int_rel == 0 else self._settle(negative, int_rel)
        if kind == "f":
            _, j = mag
            target = int(fracs[j]) if j < len(fracs) else 0
            if d == target:
                return (negative, ("F", min(j + 1, len(fracs))))
            return self._settle(negative, 1 if d > target else -1)
        raise AssertionError(f"comparator got event {event!r}")  # exponents are not walked

    def accepts(self, state: Hashable) -> bool:
        if state == _OK:
            return True
        assert isinstance(state, tuple)
        negative, mag = state
        fracs = self.bound.frac_digits
        if mag[0] == "I":
            _, k, rel = mag
            int_rel = -1 if k < len(self.bound.int_digits) else rel
            rel = int_rel if int_rel != 0 else (-1 if fracs else 0)
        else:
            # Fraction equal so far: equal if |c|'s fraction is used up, else |c| has a nonzero
            # digit left (its trailing zeros were stripped), so the text is smaller.
            rel = 0 if mag[1] == len(fracs) else -1
        return self._final(negative, rel) in self.allowed


class _Multiple:
    """Divisibility by ``a * 10**-d``: state ``(r, p)``, ``r`` the remainder modulo ``a`` of the
    digits read (integer digits, then at most ``d`` fraction digits), ``p`` the fraction digits
    counted so far. A complete text is a multiple when ``r * 10**(d - p)`` is divisible by ``a``
    and no nonzero fraction digit came after the ``d``-th.
    """

    def __init__(self, a: int, d: int) -> None:
        self.a = a
        self.d = d
        self.start: Hashable = (0, 0)

    def step(self, state: Hashable, event: Event) -> Hashable | None:
        assert isinstance(state, tuple)
        r, p = state
        kind, digit = event
        if kind == "i":
            return ((r * 10 + digit) % self.a, 0)
        if kind == "f":
            if p < self.d:
                return ((r * 10 + digit) % self.a, p + 1)
            # Past d digits only zeros keep a multiple, and only if it already is one.
            return state if digit == 0 and r == 0 else None
        if kind in "-.":
            return state
        raise AssertionError(f"multipleOf got event {event!r}")  # exponents are not walked

    def accepts(self, state: Hashable) -> bool:
        assert isinstance(state, tuple)
        r, p = state
        return r * pow(10, self.d - p, self.a) % self.a == 0


class _Integer:
    """The value is an integer.

    State ``(mantissa_zero, in_exponent, exponent_negative, exponent_zero)``. A nonzero fraction
    digit rejects (exact without an exponent; see departure 2 for exponent forms). With an
    exponent, accept when the mantissa is zero or the exponent is not negative.
    """

    start: Hashable = (True, False, False, True)

    def step(self, state: Hashable, event: Event) -> Hashable | None:
        assert isinstance(state, tuple)
        zero, in_exp, exp_neg, exp_zero = state
        kind, d = event
        if kind == "i":
            return (zero and d == 0, in_exp, exp_neg, exp_zero)
        if kind == "f":
            return state if d == 0 else None
        if kind == "e":
            return (zero, True, exp_neg, exp_zero)
        if kind == "m":
            return (zero, in_exp, True, exp_zero)
        if kind == "x":
            return (zero, in_exp, exp_neg, exp_zero and d == 0)
        return state  # "-", ".", "+"

    def accepts(self, state: Hashable) -> bool:
        assert isinstance(state, tuple)
        zero, in_exp, exp_neg, exp_zero = state
        return bool(zero or not in_exp or not exp_neg or exp_zero)


def _explore(components: list[_Component], allow_exponent: bool, max_states: int) -> ByteDFA:
    """The product of the number syntax and ``components``, built breadth-first, then trimmed and
    minimised.

    Raises
    ------
    CompileLimitError
        When more than ``max_states`` product states are reachable.
    """
    moves = _syntax_moves(allow_exponent)
    memos: list[dict[tuple[Hashable, Event], Hashable | None]] = [{} for _ in components]
    start = (_START, *(c.start for c in components))
    index: dict[tuple[Hashable, ...], int] = {start: 0}
    states: list[tuple[Hashable, ...]] = [start]
    src: list[int] = []
    byte: list[int] = []
    dst: list[int] = []
    i = 0
    while i < len(states):
        state = states[i]
        for b, syn, event in moves[state[0]]:  # type: ignore[index]
            new: list[Hashable] = [syn]
            for comp, memo, cur in zip(components, memos, state[1:]):
                key = (cur, event)
                if key in memo:
                    nxt = memo[key]
                else:
                    nxt = memo[key] = comp.step(cur, event)
                if nxt is None:
                    break
                new.append(nxt)
            else:
                target = tuple(new)
                j = index.get(target)
                if j is None:
                    j = len(states)
                    if j >= max_states:
                        raise CompileLimitError(
                            f"the number automaton needs more than max_states={max_states} states",
                            limit="max_states",
                            value=max_states,
                        )
                    index[target] = j
                    states.append(target)
                src.append(i)
                byte.append(b)
                dst.append(j)
        i += 1
    trans = np.full((len(states), 256), -1, dtype=np.int32)
    trans[np.array(src, dtype=np.int64), np.array(byte, dtype=np.int64)] = np.array(dst, dtype=np.int32)
    accepting = np.array(
        [s[0] in _SYNTAX_ACCEPTING and all(c.accepts(x) for c, x in zip(components, s[1:])) for s in states],
        dtype=bool,
    )
    return minimize(ByteDFA(trans, accepting, 0), trimmed=False)


def _tightest(
    inclusive: Decimal | None, exclusive: Decimal | None, *, lower: bool
) -> tuple[Decimal, bool] | None:
    """The stricter of an inclusive and an exclusive bound on one side: ``(value, exclusive)``."""
    if inclusive is None and exclusive is None:
        return None
    if inclusive is None:
        assert exclusive is not None
        return exclusive, True
    if exclusive is None:
        return inclusive, False
    if inclusive == exclusive:
        return exclusive, True
    stricter_inclusive = inclusive > exclusive if lower else inclusive < exclusive
    return (inclusive, False) if stricter_inclusive else (exclusive, True)


def _multiple_parts(multiple_of: Decimal) -> tuple[int, int]:
    """``(a, d)`` with ``multiple_of == a * 10**-d``, ``a`` a positive integer, ``d >= 0``.

    Raises
    ------
    Inexpressible
        When ``a`` exceeds :data:`MAX_MULTIPLE_OF` or ``a * (d + 1)`` exceeds
        :data:`MAX_MULTIPLE_OF_STATES`.
    """
    _, digits, exp = _strip(multiple_of)
    if exp >= 0:
        if len(digits) + exp > len(str(MAX_MULTIPLE_OF)):
            raise Inexpressible(
                f"multipleOf {multiple_of} needs a divisibility automaton with more than "
                f"{MAX_MULTIPLE_OF} remainder states; at most {MAX_MULTIPLE_OF} are supported"
            )
        a, d = int(digits) * 10**exp, 0
    else:
        a, d = int(digits), -exp
    if a > MAX_MULTIPLE_OF:
        raise Inexpressible(
            f"multipleOf {multiple_of} needs a divisibility automaton with {a} remainder states; "
            f"at most {MAX_MULTIPLE_OF} are supported"
        )
    if a * (d + 1) > MAX_MULTIPLE_OF_STATES:
        raise Inexpressible(
            f"multipleOf {multiple_of} needs a divisibility automaton with {a * (d + 1)} states "
            f"({a} remainders times {d + 1} fraction positions); at most {MAX_MULTIPLE_OF_STATES} "
            "are supported"
        )
    return a, d


def number_dfa(
    *,
    integer: bool,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    exclusive_minimum: Decimal | None = None,
    exclusive_maximum: Decimal | None = None,
    multiple_of: Decimal | None = None,
) -> ByteDFA:
    """The automaton of the JSON number texts whose value satisfies the numeric keywords.

    Parameters
    ----------
    integer:
        ``True`` for ``"type": "integer"`` (the value is a mathematical integer, ``1.0``
        included), ``False`` for ``"type": "number"``.
    minimum, maximum, exclusive_minimum, exclusive_maximum:
        Bounds (draft 2020-12 style: the exclusive ones are numbers). ``Decimal`` or ``int``;
        compared exactly.
    multiple_of:
        ``multipleOf``, a positive ``Decimal`` or ``int``; exact decimal divisibility.

    Returns
    -------
    ByteDFA
        Trimmed and minimal. Exponent forms are accepted only without bounds and ``multipleOf``
        (and for ``integer``, only those described in departure 2 of the module docstring). An
        unsatisfiable combination gives one non-accepting state with no transitions.

    Raises
    ------
    Inexpressible
        When ``multiple_of`` or a bound is too large for the limits (see the module docstring), or
        when the combined automaton would exceed :data:`MAX_STATES` states.
    TypeError
        When a bound or ``multiple_of`` is neither a ``Decimal`` nor an ``int`` (floats are refused:
        parse JSON with ``parse_float=Decimal``).
    GrammarError
        When a value is not finite, or ``multiple_of`` is not positive (a ``ValueError`` too).

    Examples
    --------
    >>> from decimal import Decimal
    >>> dfa = number_dfa(integer=False, minimum=Decimal(0), exclusive_maximum=Decimal("2.5"))
    >>> [dfa.matches(t) for t in (b"0", b"-0.0", b"2.49", b"2.50", b"1e0")]
    [True, True, True, False, False]
    >>> number_dfa(integer=True).matches(b"1.0e2")
    True
    """
    named = {
        "minimum": minimum,
        "maximum": maximum,
        "exclusiveMinimum": exclusive_minimum,
        "exclusiveMaximum": exclusive_maximum,
        "multipleOf": multiple_of,
    }
    values = {k: _finite(k, v) for k, v in named.items() if v is not None}
    components: list[_Component] = []
    sides = (
        ("minimum", "exclusiveMinimum", True, frozenset({0, 1}), frozenset({1})),
        ("maximum", "exclusiveMaximum", False, frozenset({-1, 0}), frozenset({-1})),
    )
    for inc_kw, exc_kw, lower, inclusive_ok, exclusive_ok in sides:
        bound = _tightest(values.get(inc_kw), values.get(exc_kw), lower=lower)
        if bound is not None:
            value, exclusive = bound
            plain = _plain(exc_kw if exclusive else inc_kw, value)
            components.append(_Compare(plain, exclusive_ok if exclusive else inclusive_ok))
    if "multipleOf" in values:
        if values["multipleOf"] <= 0:
            raise GrammarError(f"multipleOf must be greater than 0, got {values['multipleOf']}")
        a, d = _multiple_parts(values["multipleOf"])
        if a > 1 or not integer:  # every integer is a multiple of 10**-d
            components.append(_Multiple(a, d))
    if integer:
        components.append(_Integer())
    allow_exponent = not values
    try:
        return _explore(components, allow_exponent, MAX_STATES)
    except CompileLimitError as e:
        given = ", ".join(f"{k} {v}" for k, v in values.items())
        raise Inexpressible(
            f"the number constraints ({given}) need an automaton with more than {MAX_STATES} states; "
            "use fewer digits in the bounds or a simpler multipleOf"
        ) from e
