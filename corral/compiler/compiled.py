"""`CompiledGrammar`: the immutable product of compiling a constraint against a vocabulary."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.compiler import cache as disk
from corral.compiler.automaton import ByteDFA
from corral.compiler.limits import Limits, budget_scope, entry_limits
from corral.compiler.maskstore import DEFAULT_MASK_CACHE_BYTES, DFAMaskStore
from corral.compiler.regex import RegexLimits, regex_to_dfa
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError

if TYPE_CHECKING:
    from corral.compiler.cfg import CFGProgram
    from corral.runtime.matcher import Matcher

__all__ = ["CompiledGrammar", "CompileStats", "compile_regex"]


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


class CompiledGrammar:
    """A constraint compiled against one vocabulary; immutable and shareable across threads.

    Create matchers (one per sequence) with :meth:`matcher`. Obtain one from
    :func:`corral.compile_regex`.

    Attributes
    ----------
    kind:
        ``"regex"`` or ``"grammar"``.
    source:
        The constraint as given.
    vocab:
        The vocabulary the masks are over.
    dfa:
        The byte automaton (regexes; ``None`` for grammars).
    cfg:
        The grammar's parser tables, recognizer and mask store (grammars; ``None`` for regexes).
    stats:
        :class:`CompileStats`.
    """

    def __init__(
        self,
        *,
        kind: str,
        source: str,
        vocab: Vocabulary,
        dfa: ByteDFA | None = None,
        store: DFAMaskStore | None = None,
        cfg: CFGProgram | None = None,
        stats: CompileStats,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.source = source
        self.vocab = vocab
        self.dfa = dfa
        self.store: Any = store if store is not None else (cfg.store if cfg is not None else None)
        self.cfg = cfg
        self.stats = stats
        self.options = options or {}
        self.warnings: list[str] = []

    def matcher(self) -> Matcher:
        """A fresh :class:`~corral.Matcher` at the start of the constraint."""
        if self.kind == "regex":
            from corral.runtime.matcher import RegexMatcher

            return RegexMatcher(self)
        from corral.runtime.cfg_matcher import CFGMatcher

        return CFGMatcher(self)

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
        if self.cfg is not None:
            return (_from_bytes, (self.to_bytes(), self.vocab))
        return super().__reduce_ex__(protocol)

    def __getstate__(self) -> dict[str, Any]:
        if self.kind != "regex":
            return {"kind": self.kind, "source": self.source, "vocab": self.vocab, "options": self.options}
        return {"kind": self.kind, "source": self.source, "vocab": self.vocab, "dfa": self.dfa, "stats": self.stats,
                "max_bytes": self.store.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["kind"] == "json_schema":
            from corral.compiler.json_schema.compiler import compile_json_schema

            other = compile_json_schema(state["source"], state["vocab"], **state["options"])
            self.__dict__.update(other.__dict__)
            return
        if state["kind"] != "regex":
            from corral.compiler.cfg import compile_grammar

            other = compile_grammar(state["source"], state["vocab"], **state["options"])
            self.__dict__.update(other.__dict__)
            return
        self.cfg = None
        self.options = {}
        self.warnings = []
        self.kind = state["kind"]
        self.source = state["source"]
        self.vocab = state["vocab"]
        self.dfa = state["dfa"]
        self.stats = state["stats"]
        self.store = DFAMaskStore(self.dfa, self.vocab, max_bytes=state["max_bytes"])


def _from_bytes(data: bytes, vocab: Vocabulary) -> CompiledGrammar:
    """Unpickle a grammar-kind :class:`CompiledGrammar` (see :meth:`CompiledGrammar.to_bytes`)."""
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
            dfa, store, meta = hit
            return CompiledGrammar(kind="regex", source=pattern, vocab=vocab, dfa=dfa, store=store, stats=CompileStats(**meta))
    t0 = time.perf_counter()
    dfa = regex_to_dfa(pattern, RegexLimits(max_states=max_states))
    t1 = time.perf_counter()
    store = DFAMaskStore(dfa, vocab, max_bytes=mask_cache_bytes)
    t2 = time.perf_counter()
    stats = CompileStats(
        states=dfa.n_states,
        mask_classes=store.n_classes,
        cached_states=store.cached_states,
        eager=store.eager,
        mask_bytes=store.memory_bytes,
        automaton_seconds=t1 - t0,
        mask_seconds=t2 - t1,
    )
    if directory is not None:
        disk.store(directory, key, dfa, store, asdict(stats))
    return CompiledGrammar(kind="regex", source=pattern, vocab=vocab, dfa=dfa, store=store, stats=stats)
