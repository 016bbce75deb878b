"""One budget for compiling: named limits, a deadline and an account of memory.

Every compile entry point (:func:`corral.compile_regex`, :func:`corral.compile_grammar`,
:func:`corral.compile_json_schema`, ``corral check``) runs under a :class:`Budget` built from a
:class:`Limits`. The budget is *ambient*: :func:`budget_scope` makes it the current one (a
:mod:`contextvars` variable, so threads and asyncio tasks each see their own) and the stages below
find it with :func:`current_budget` instead of taking a ``timeout`` each. An entry point called
while a budget is active (a schema compiling its grammar, a grammar compiling its terminals)
spends the same budget: the clock is not restarted.

Work is counted before it is done. A stage that allocates a table sized by the input (a
transition table of ``n`` states is ``n * 256 * 4`` bytes) first calls :meth:`Budget.charge` with
the estimate; a loop whose trip count the input controls calls :meth:`Budget.check` (cheap: one
clock read) as it goes. Exceeding either raises :class:`~corral.errors.CompileLimitError` naming
the limit, its value, where the work was (a JSON pointer, a terminal, a line and column, when
known) and the parameter that raises it.

Memory is an account of *estimated allocations* (transition tables, NFA states, layers of length
counters, tries), never released during one compile: a conservative stand-in for the peak that
keeps the process far below ``max_memory_bytes`` of real memory.

The clock (:func:`compile_clock`) leaves out the time numba spends compiling corral's own kernels:
that is paid once per machine (the kernels are cached on disk after) and is no property of the
constraint, so a small schema compiled first in a fresh environment does not time out while its
kernels build (about 30 s on two cores).

While any compile runs, Python's automatic garbage collection is held off (:class:`_GcPause`): a
compile allocates tens of thousands of short-lived containers, and every collection during it
promoted the live ones to the oldest generation, so that every few compiles Python ran a full
collection of the whole process (a serving process's heap: 200-300 ms, the slowest compiles' tail).
Held off, they die by reference counting when the compile returns; what a compile leaves in cycles
is collected as usual afterwards.
"""

from __future__ import annotations

import contextvars
import gc
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

import numba.core.event as numba_event

from corral.errors import CompileLimitError, CorralError

__all__ = [
    "Limits",
    "Budget",
    "budget_scope",
    "current_budget",
    "compile_clock",
    "entry_limits",
    "ends_compile",
    "DEFAULT_LIMITS",
    "BUDGET_LIMITS",
    "TABLE_ROW_BYTES",
    "NFA_STATE_BYTES",
]

TABLE_ROW_BYTES = 256 * 4
"""Bytes of one row of a byte transition table (``int32[256]``)."""

NFA_STATE_BYTES = 256
"""Estimated bytes of one NFA state (two Python lists and their first entries)."""

_GIB = 1 << 30


class _JitTime(numba_event.Listener):
    """A numba event listener that totals the seconds spent in just-in-time compilation.

    numba reports each function's compilation as a ``numba:compile`` event, nested when compiling
    one function compiles its callees; only the outermost event of a thread is timed, so nothing
    is counted twice.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()

    def on_start(self, event: Any) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.start = time.monotonic()
        self._local.depth = depth + 1

    def on_end(self, event: Any) -> None:
        depth = getattr(self._local, "depth", 0) - 1
        self._local.depth = max(depth, 0)
        if depth == 0:
            spent = time.monotonic() - self._local.start
            with self._lock:
                self.total += spent


_JIT = _JitTime()
numba_event.register("numba:compile", _JIT)


class _GcPause:
    """Holds off automatic garbage collection while at least one compile runs (in any thread),
    restoring it only where it was on (a caller's own ``gc.disable()`` stands)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()


_GC_PAUSE = _GcPause()


def compile_clock() -> float:
    """Seconds on the clock compile budgets run on: :func:`time.monotonic` less the time this
    process has spent compiling numba kernels (see the module's docstring)."""
    return time.monotonic() - _JIT.total


@dataclass(frozen=True)
class Limits:
    """The named limits a compile runs under (one object for every entry point).

    Parameters
    ----------
    timeout:
        Seconds one compile may take, from the entry point's call to its return, not counting the
        one-time compilation of corral's numba kernels in a fresh environment.
    max_memory_bytes:
        Bytes of estimated allocations (transition tables, NFA states, tries) one compile may
        make; checked before each allocation.
    max_states:
        States of one deterministic automaton (a regex, a grammar terminal, a string's length
        counter, a product of two automata).
    max_nfa_states:
        States of one NFA (bounded repetitions such as ``x{1,100000}`` are expanded copy by copy).
    max_grammar_states:
        Automaton states of all of a grammar's terminals together.
    max_rules:
        Grammar rules (nonterminals) one JSON Schema compiles to.

    Raises
    ------
    CorralError
        When a limit is not a positive number (``timeout``) or a positive integer (the others).

    Examples
    --------
    >>> Limits(timeout=5).timeout
    5
    >>> Limits().max_memory_bytes == 2 * 1024**3
    True
    """

    timeout: float = 30.0
    max_memory_bytes: int = 2 * _GIB
    max_states: int = 100_000
    max_nfa_states: int = 2_000_000
    max_grammar_states: int = 400_000
    max_rules: int = 200_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "timeout":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
                what = "a positive number of seconds"
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
                what = "a positive integer"
            if not ok:
                raise CorralError(f"Limits.{f.name} must be {what}, not {value!r}")

    def updated(self, **overrides: Any) -> Limits:
        """These limits with the given ones replaced (``None`` values are ignored).

        Parameters
        ----------
        **overrides:
            Limit names and values, e.g. ``timeout=5``.

        Returns
        -------
        Limits

        Raises
        ------
        CorralError
            For a name that is not a limit, or an invalid value.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise CorralError(f"unknown limit(s) {', '.join(unknown)}: expected some of {', '.join(sorted(known))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self


DEFAULT_LIMITS = Limits()
"""The limits an entry point uses when it is given none."""

BUDGET_LIMITS = frozenset({"timeout", "max_memory_bytes"})
"""The limits of the whole compile: a :class:`~corral.errors.CompileLimitError` naming one of them
ends the compile (stages that relax a constraint past a local limit must let these through)."""


def _python_parameter(limit: str) -> str:
    return f"limits=corral.Limits({limit}=...)"


class Budget:
    """The time and memory one compile may still spend, under :class:`Limits`.

    Parameters
    ----------
    limits:
        The limits; the clock starts now.
    parameter:
        How a caller raises a limit, given its name (the text error messages advise); the
        default suggests ``limits=corral.Limits(<name>=...)``. The CLI passes its flags.

    Attributes
    ----------
    limits:
        The limits.
    deadline:
        :func:`compile_clock` value past which :meth:`check` raises.
    used_bytes:
        Estimated bytes charged so far.
    where:
        What is being compiled right now (a JSON pointer, a terminal), for error messages;
        maintained by the stages through :meth:`at`.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, parameter: Any = None) -> None:
        self.limits = limits
        self.start = compile_clock()
        self.deadline = self.start + limits.timeout
        self.used_bytes = 0
        self.where: str | None = None
        self._parameter = parameter or _python_parameter

    def error(self, text: str, limit: str, value: float) -> CompileLimitError:
        """The error for passing the limit ``limit`` (of value ``value``), to raise.

        Parameters
        ----------
        text:
            What happened, naming the limit and its value (``"... needs more than
            max_states=100000 states"``).
        limit, value:
            The limit's name (a :class:`Limits` field) and value.

        Returns
        -------
        CompileLimitError
            Its message is ``text``, then where (``at /properties/a``), then how to raise the limit.
        """
        where = f" at {self.where}" if self.where else ""
        param = self._parameter(limit)
        return CompileLimitError(
            f"{text}{where}; simplify the constraint or raise the limit with {param}",
            limit=limit, value=value, where=self.where, parameter=param,
        )

    def check(self) -> None:
        """Raise when the deadline has passed.

        Raises
        ------
        CompileLimitError
            ``limit="timeout"``, with the limit's value in seconds.
        """
        if compile_clock() > self.deadline:
            t = self.limits.timeout
            raise self.error(f"compiling took longer than timeout={t:g} s", "timeout", t)

    def expect(self, seconds: float, what: str) -> None:
        """Raise now when work that cannot be interrupted would run past the deadline.

        For steps the budget cannot look inside (Python's own regex parser), estimated from
        their size before they start.

        Parameters
        ----------
        seconds:
            The work's estimated duration.
        what:
            The work, for the message ("parsing a regex of 1000000 characters").

        Raises
        ------
        CompileLimitError
            ``limit="timeout"`` when fewer than ``seconds`` are left.
        """
        left = self.remaining()
        if seconds > left:
            t = self.limits.timeout
            raise self.error(
                f"{what} would take about {seconds:.2g} s, more than the {left:.2g} s left of timeout={t:g} s",
                "timeout", t,
            )

    def remaining(self) -> float:
        """Seconds left before the deadline (at least 0)."""
        return max(0.0, self.deadline - compile_clock())

    def charge(self, nbytes: int, what: str = "the automata") -> None:
        """Account for an allocation of about ``nbytes`` *before* making it, and check the clock.

        Parameters
        ----------
        nbytes:
            The estimated size.
        what:
            What is being allocated, for the message ("a transition table of 5000 states").

        Raises
        ------
        CompileLimitError
            ``limit="max_memory_bytes"`` when the account would pass the limit (nothing is
            charged then), or ``limit="timeout"``.
        """
        total = self.used_bytes + max(0, int(nbytes))
        cap = self.limits.max_memory_bytes
        if total > cap:
            raise self.error(
                f"{what} would take the compile's estimated memory to {_size(total)}, past "
                f"max_memory_bytes={cap} ({_size(cap)})", "max_memory_bytes", cap,
            )
        self.used_bytes = total
        self.check()

    def require(self, count: int, limit: str, what: str) -> None:
        """Raise unless ``count`` stays within the count limit named ``limit``.

        Parameters
        ----------
        count:
            How many (states, rules) the work needs.
        limit:
            A :class:`Limits` field name, e.g. ``"max_states"``.
        what:
            What needs them, for the message ("the automaton").

        Raises
        ------
        CompileLimitError
            When ``count`` exceeds the limit.
        """
        cap = getattr(self.limits, limit)
        if count > cap:
            raise self.error(f"{what} needs more than {limit}={cap} {_noun(limit)}", limit, cap)

    @contextmanager
    def at(self, where: str | None) -> Iterator[None]:
        """Within the block, errors say the work was at ``where`` (``None`` keeps the outer one)."""
        if where is None:
            yield
            return
        outer = self.where
        self.where = where
        try:
            yield
        finally:
            self.where = outer


def ends_compile(err: CompileLimitError) -> bool:
    """Whether ``err`` ends the compile: it came from the budget (a :class:`Limits` field the
    caller sets: time, memory, states, rules), so no stage may relax the constraint and go on.

    Errors of a stage's own fixed limits (a module constant such as ``MAX_OBJECT_TERMS``) do not
    end it: the JSON Schema compiler reports them as unsupported, or relaxes them under
    ``lenient=True``.
    """
    return err.limit in BUDGET_LIMITS or err.parameter is not None


def entry_limits(limits: Limits | None, **overrides: Any) -> Limits | None:
    """The limits an entry point runs under, from its ``limits=`` and its older keywords.

    Parameters
    ----------
    limits:
        The caller's :class:`Limits`, or ``None``.
    **overrides:
        Keyword limits the entry point also accepts (``timeout=``, ``max_states=``); ``None``
        means not given. They override the matching fields of ``limits``.

    Returns
    -------
    Limits or None
        ``None`` when nothing was given: the entry point then spends the active budget, or the
        defaults (see :func:`budget_scope`).

    Raises
    ------
    CorralError
        When ``limits`` is not a :class:`Limits`, or a value is invalid.
    """
    if limits is not None and not isinstance(limits, Limits):
        raise CorralError(f"limits must be a corral.Limits, not {type(limits).__name__}")
    if limits is None and all(v is None for v in overrides.values()):
        return None
    return (limits or DEFAULT_LIMITS).updated(**overrides)


def _noun(limit: str) -> str:
    return {"max_nfa_states": "NFA states", "max_rules": "grammar rules"}.get(limit, "states")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("corral_budget", default=None)


def current_budget() -> Budget:
    """The active budget, or a fresh one under :data:`DEFAULT_LIMITS` when none is active.

    A fresh budget is not installed, so code run outside any entry point (tests calling a stage
    directly) gets the default limits, its clock started at the call.
    """
    b = _CURRENT.get()
    return b if b is not None else Budget(DEFAULT_LIMITS)


@contextmanager
def budget_scope(limits: Limits | None = None, *, parameter: Any = None) -> Iterator[Budget]:
    """Run the block under a budget: the active one, or a new one from ``limits``.

    Parameters
    ----------
    limits:
        The limits of a new budget. When a budget is already active and ``limits`` is ``None``
        the block spends the active one. When both exist, the block gets a new budget whose
        deadline is the earlier of the two and whose memory account starts from the active one's.
    parameter:
        See :class:`Budget`.

    Yields
    ------
    Budget
    """
    outer = _CURRENT.get()
    if limits is None and outer is not None:
        yield outer
        return
    b = Budget(limits or DEFAULT_LIMITS, parameter=parameter or (outer._parameter if outer else None))
    if outer is not None:
        b.used_bytes = outer.used_bytes
        b.where = outer.where
        if outer.deadline < b.deadline:  # the outer limit stays binding: report it
            b.deadline = outer.deadline
            b.limits = replace(b.limits, timeout=outer.limits.timeout)
    token = _CURRENT.set(b)
    if outer is None:
        _GC_PAUSE.enter()
    try:
        yield b
    finally:
        if outer is None:
            _GC_PAUSE.exit()
        _CURRENT.reset(token)
        if outer is not None:
            outer.used_bytes = max(outer.used_bytes, b.used_bytes)
