"""`CompiledGrammar`: the immutable product of compiling a constraint against a vocabulary."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import FrozenInstanceError, asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from corral.compiler import cache as disk
from corral.compiler.automaton import ByteDFA
from corral.compiler.diagnostics import Diagnostic
from corral.compiler.limits import Limits, budget_scope, entry_limits
from corral.compiler.maskstore import DEFAULT_MASK_CACHE_BYTES
from corral.compiler.program import DFAProgram, Program, dfa_program
from corral.compiler.regex import RegexLimits, regex_to_dfa
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError

if TYPE_CHECKING:
    from corral import Matcher

__all__ = ["CompiledGrammar", "CompileStats", "compile_regex", "register_matcher_factory"]


@dataclass(frozen=True)
class CompileStats:
    """What compiling cost.

    Attributes
    ----------
    states:
        Automaton states.
    mask_classes:
        Distinct masks: states that must have equal masks share one (regexes; 0 for grammars,
        whose masks are computed and cached as generation visits them).
    cached_states:
        Masks stored at compile time (every class when ``eager``).
    eager:
        Whether every mask was computed up front.
    mask_bytes:
        Memory held by stored masks right after compiling.
    automaton_seconds, mask_seconds:
        Time spent building the automata (and parser tables) and the mask store.
    productions, terminals:
        Grammar size after lowering (grammars only).
    """

    states: int
    mask_classes: int
    cached_states: int
    eager: bool
    mask_bytes: int
    automaton_seconds: float
    mask_seconds: float
    productions: int = 0
    terminals: int = 0

    @property
    def total_seconds(self) -> float:
        """Total compile time."""
        return self.automaton_seconds + self.mask_seconds


_MatcherFactory = Callable[["CompiledGrammar"], "Matcher"]
_matcher_factory: _MatcherFactory | None = None


def register_matcher_factory(factory: _MatcherFactory) -> None:
    """Set what :meth:`CompiledGrammar.matcher` calls (the runtime registers itself when imported,
    so that this package never imports the runtime).

    Parameters
    ----------
    factory:
        Builds a fresh matcher at the start of a compiled grammar.
    """
    global _matcher_factory
    _matcher_factory = factory


class CompiledGrammar:
    """A constraint compiled against one vocabulary; frozen and shareable across threads.

    Create matchers (one per sequence) with :meth:`matcher`. Obtain one from
    :func:`corral.compile_regex`, :func:`corral.compile_grammar`,
    :func:`corral.compile_json_schema` or a :class:`corral.Compiler`. Setting an attribute raises
    :class:`dataclasses.FrozenInstanceError` (an ``AttributeError``); what the runtime builds while
    generating (mask caches, the recognizer) is kept by the runtime, not here.

    Parameters
    ----------
    kind:
        ``"regex"``, ``"grammar"`` or ``"json_schema"``.
    source:
        The constraint as given.
    vocab:
        The vocabulary the masks are over.
    program:
        The compiled artifact: a :class:`~corral.compiler.program.DFAProgram` (regexes) or an
        :class:`~corral.compiler.program.EarleyProgram` (grammars, JSON Schemas).
    stats:
        :class:`CompileStats`.
    options:
        The options it was compiled with (what a cache key or a recompile needs).
    warnings:
        What compiling found worth saying (relaxed keywords, ignored unknown keywords and formats),
        one :class:`~corral.compiler.diagnostics.Diagnostic` each (``str()`` words it).
    """

    __slots__ = ("_kind", "_source", "_vocab", "_program", "_stats", "_options", "_warnings", "__weakref__")
    _kind: str
    _source: str
    _vocab: Vocabulary
    _program: Program
    _stats: CompileStats
    _options: Mapping[str, Any]
    _warnings: tuple[Diagnostic, ...]

    def __init__(
        self,
        *,
        kind: str,
        source: str,
        vocab: Vocabulary,
        program: Program,
        stats: CompileStats,
        options: Mapping[str, Any] | None = None,
        warnings: Iterable[Diagnostic] = (),
    ) -> None:
        if isinstance(program, DFAProgram) != (kind == "regex"):
            raise CorralError(f"a {kind} cannot hold a {type(program).__name__}")
        init = object.__setattr__
        init(self, "_kind", kind)
        init(self, "_source", source)
        init(self, "_vocab", vocab)
        init(self, "_program", program)
        init(self, "_stats", stats)
        init(self, "_options", MappingProxyType(dict(options or {})))
        init(self, "_warnings", tuple(warnings))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"CompiledGrammar is immutable: cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"CompiledGrammar is immutable: cannot delete {name!r}")

    @property
    def kind(self) -> str:
        """``"regex"``, ``"grammar"`` or ``"json_schema"``."""
        return self._kind

    @property
    def source(self) -> str:
        """The constraint as given."""
        return self._source

    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary the masks are over."""
        return self._vocab

    @property
    def program(self) -> Program:
        """The compiled artifact: :class:`~corral.compiler.program.DFAProgram` or
        :class:`~corral.compiler.program.EarleyProgram`."""
        return self._program

    @property
    def stats(self) -> CompileStats:
        """What compiling cost."""
        return self._stats

    @property
    def options(self) -> Mapping[str, Any]:
        """The options it was compiled with (read-only)."""
        return self._options

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """What compiling found worth saying: relaxed keywords (``lenient``), ignored unknown keywords
        and formats, one :class:`~corral.compiler.diagnostics.Diagnostic` each."""
        return self._warnings

    @property
    def dfa(self) -> ByteDFA | None:
        """The byte automaton of a regular constraint; ``None`` for grammars and JSON Schemas."""
        program = self._program
        return program.dfa if isinstance(program, DFAProgram) else None

    def matcher(self) -> Matcher:
        """A fresh :class:`~corral.Matcher` at the start of the constraint.

        Raises
        ------
        CorralError
            When the runtime was never imported (``import corral`` imports it).
        """
        if _matcher_factory is None:
            raise CorralError("grammar.matcher() needs corral's runtime: import corral first")
        return _matcher_factory(self)

    def __repr__(self) -> str:
        src = self.source if len(self.source) <= 40 else self.source[:37] + "..."
        return f"CompiledGrammar(kind={self.kind!r}, source={src!r}, states={self.stats.states}, vocab={self.vocab.name!r})"

    def to_bytes(self) -> bytes:
        """The compiled grammar as bytes (arrays and JSON; no pickle), for :meth:`from_bytes`.

        Grammars and JSON Schemas keep their parser tables and terminal automata, so loading
        never recompiles (their masks, computed lazily, start empty); regexes keep their automaton
        and rebuild their mask store from it. The bytes of one compiled grammar are the same on
        every call. Pickling goes through these bytes.

        Returns
        -------
        bytes

        Examples
        --------
        >>> from corral import Vocabulary, compile_grammar
        >>> vocab = Vocabulary([b"a", b"b", None], eos_token_ids=[2])
        >>> g = compile_grammar('start: "a"+ "b"', vocab)
        >>> CompiledGrammar.from_bytes(g.to_bytes(), vocab).to_bytes() == g.to_bytes()
        True
        """
        from corral.compiler.artifact import to_bytes

        return to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes, vocab: Vocabulary) -> CompiledGrammar:
        """Rebuild a compiled grammar from :meth:`to_bytes`, without compiling.

        Every array is checked (dtypes, shapes, index ranges) before any kernel sees it.

        Parameters
        ----------
        data:
            What :meth:`to_bytes` returned.
        vocab:
            The vocabulary it was compiled against (checked by its hash).

        Returns
        -------
        CompiledGrammar

        Raises
        ------
        CorralError
            When ``vocab`` is not the vocabulary the bytes were compiled for, or the bytes are not
            a compiled grammar of this corral version (truncated, altered, another format).
        """
        from corral.compiler.artifact import from_bytes

        return from_bytes(data, vocab)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_from_bytes, (self.to_bytes(), self.vocab))


def _from_bytes(data: bytes, vocab: Vocabulary) -> CompiledGrammar:
    """Unpickle a :class:`CompiledGrammar` (see :meth:`CompiledGrammar.to_bytes`)."""
    return CompiledGrammar.from_bytes(data, vocab)


def compile_regex(
    pattern: str,
    vocab: Vocabulary,
    *,
    max_states: int | None = None,
    timeout: float | None = None,
    mask_cache_bytes: int = DEFAULT_MASK_CACHE_BYTES,
    cache: bool | str | os.PathLike[str] = False,
    limits: Limits | None = None,
) -> CompiledGrammar:
    """Compile a regular expression into token masks over ``vocab``.

    The whole generated text must match ``pattern`` (``re.fullmatch`` semantics, ASCII classes;
    see :mod:`corral.compiler.regex` for the dialect).

    Parameters
    ----------
    pattern:
        The regular expression.
    vocab:
        The tokenizer's :class:`~corral.Vocabulary`.
    max_states:
        Limit on automaton states (a :class:`~corral.CompileLimitError` beyond it); overrides
        ``limits.max_states`` (default 100,000).
    timeout:
        Limit, in seconds, on compiling; overrides ``limits.timeout`` (default 30).
    mask_cache_bytes:
        Memory budget of the mask store; masks are computed eagerly when all fit, else lazily.
    cache:
        Disk cache: ``False`` (default) compiles afresh; ``True`` uses ``$CORRAL_CACHE_DIR`` or
        ``~/.cache/corral``; a path uses that directory. Entries are keyed by corral's version,
        the pattern, the limits and the vocabulary's hash.
    limits:
        Every limit of the compile (time, estimated memory, states); see :class:`~corral.Limits`.

    Returns
    -------
    CompiledGrammar

    Raises
    ------
    GrammarError
        Malformed pattern, non-regular feature (backreference, lookaround, ...), or a pattern
        matching no string; the message names the feature and its line and column.
    CompileLimitError
        When a limit (``max_states``, ``timeout``, ``max_memory_bytes``, ...) is exceeded.

    Examples
    --------
    >>> vocab = Vocabulary([b"1", b"2", b"-", b"12", None], eos_token_ids=[4])
    >>> m = compile_regex(r"\\d+-\\d", vocab).matcher()
    >>> m.accept_token(3), m.accept_token(2), m.is_accepting()
    (True, True, False)
    """
    if not isinstance(vocab, Vocabulary):
        raise CorralError(
            f"vocab must be a corral.Vocabulary, not {type(vocab).__name__}; "
            "build one with corral.Vocabulary.from_hf(tokenizer)"
        )
    run_limits = entry_limits(limits, max_states=max_states, timeout=timeout)
    with budget_scope(run_limits) as budget:
        return _compile_regex(pattern, vocab, budget.limits.max_states, mask_cache_bytes, cache)


def _compile_regex(
    pattern: str, vocab: Vocabulary, max_states: int, mask_cache_bytes: int, cache: bool | str | os.PathLike[str]
) -> CompiledGrammar:
    directory: Path | None = None
    key = disk.CacheKey("", "", {})
    if cache:
        directory = disk.default_cache_dir() if cache is True else Path(cache)
        key = disk.cache_key("regex", pattern, {"max_states": max_states}, vocab)
        hit = disk.load(directory, key, vocab, mask_cache_bytes)
        if hit is not None:
            program, meta = hit
            return CompiledGrammar(kind="regex", source=pattern, vocab=vocab, program=program, stats=CompileStats(**meta))
    t0 = time.perf_counter()
    dfa = regex_to_dfa(pattern, RegexLimits(max_states=max_states))
    t1 = time.perf_counter()
    program = dfa_program(dfa, vocab, max_bytes=mask_cache_bytes)
    t2 = time.perf_counter()
    table = program.table
    stats = CompileStats(
        states=dfa.n_states,
        mask_classes=program.n_classes,
        cached_states=0 if table is None else int(table.masks.shape[0]),
        eager=table is not None,
        mask_bytes=0 if table is None else int(table.masks.nbytes),
        automaton_seconds=t1 - t0,
        mask_seconds=t2 - t1,
    )
    if directory is not None:
        disk.store(directory, key, program, asdict(stats))
    return CompiledGrammar(kind="regex", source=pattern, vocab=vocab, program=program, stats=stats)
