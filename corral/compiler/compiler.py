"""``corral.Compiler``: the front door for compiling constraints against one vocabulary.

One options object (:class:`~corral.Limits`), one in-memory LRU of compiled grammars bounded by
estimated bytes, and one disk cache for regexes, grammars and JSON Schemas
(:mod:`corral.compiler.cache`; grammars and schemas are stored as their parser tables, see
:mod:`corral.compiler.artifact`, so a disk hit never recompiles).

What the caches guarantee
-------------------------
- **Memory.** An entry is keyed by the constraint's kind, its text (a schema's JSON with its key
  order, which is the output order), every option that changes the result and the limits. A hit
  returns the same :class:`~corral.CompiledGrammar` object (immutable and thread-safe). Concurrent
  calls for one key compile once: the others wait for that compile and get its result (or its
  error). The bound is on *estimated* sizes at insertion (automata, parser tables, stored masks):
  grammars' lazily filled mask stores grow after that, up to their own ``mask_cache_bytes``.
- **Disk.** An entry is used only when it is authenticated by the folder's HMAC secret, was written
  for exactly this key (corral version, kind, text, options, ``registry`` documents, vocabulary
  hash) and passes every shape and range check before any kernel sees it; otherwise it is
  recompiled and overwritten, with a :class:`~corral.errors.CorralWarning`.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from corral.compiler import cache as disk
from corral.compiler.compiled import CompiledGrammar, compile_regex
from corral.compiler.limits import DEFAULT_LIMITS, Limits
from corral.compiler.program import DFAProgram
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError

__all__ = ["Compiler", "CacheInfo", "DEFAULT_MEMORY_CACHE_BYTES", "estimate_bytes"]

DEFAULT_MEMORY_CACHE_BYTES = 1024 * 1024 * 1024
"""Default bound of a :class:`Compiler`'s memory cache (estimated bytes of its compiled grammars)."""

_Key = tuple[str, str, str]


# What Compiler.warm_up compiles and walks: objects (any order, required keys, a closed one),
# arrays with uniqueItems, strings with a pattern, a length counter, a long bound and a format,
# numbers with bounds, an enum, a discriminated oneOf; a regex; a small grammar with ignored
# whitespace. Between them they reach the kernels of every constraint kind. The name is long enough
# for its counter to group its states (cfg_maskstore.GROUP_AFTER new positions).
_WARM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{2,15}$"},
        "name": {"type": "string", "maxLength": 64},
        "bio": {"type": "string", "maxLength": 2000},
        "born": {"type": "string", "format": "date"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "score": {"type": "number", "exclusiveMinimum": 0},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["red", "green", "blue"]}, "uniqueItems": True},
        "pet": {"oneOf": [
            {"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}},
             "required": ["kind"], "additionalProperties": False},
            {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}},
             "required": ["kind"], "additionalProperties": False},
        ]},
        "extra": {"type": ["object", "null"], "properties": {"unit": {"type": "string"}},
                  "additionalProperties": {"type": "number"}},
    },
    "required": ["id", "name", "age"],
    "additionalProperties": False,
}
_WARM_DOCUMENT: dict[str, Any] = {
    "name": "Ada \u00e9 Lovelace, Countess of Lovelace", "id": "ada_1815", "age": 36, "score": 9.5e1, "bio": "Wrote the first program.",
    "born": "1815-12-10", "tags": ["blue", "red"], "pet": {"kind": "cat", "lives": 9}, "extra": {"unit": "cm", "offset_x": -1.5},
}
_WARM_REGEX = r"[a-z]+(\.[a-z]+)*@[a-z]+\.(com|org|net)"
_WARM_GRAMMAR = r"""
start: "select" cols "from" NAME ("where" cond)? ";"
cols: NAME ("," NAME)*
cond: cmp ("and" cmp)*
cmp: NAME OP (NAME | NUMBER)
OP: "=" | "<" | ">"
NAME: /[a-z][a-z0-9]*/
NUMBER: /[0-9]+/
%ignore /[ \t\n]+/
"""


@dataclass(frozen=True)
class CacheInfo:
    """Counters of a :class:`Compiler`'s caches.

    Attributes
    ----------
    hits, misses:
        Calls answered from memory, and calls that were not.
    compiles:
        Constraints actually compiled (misses not answered from disk).
    disk_hits:
        Grammars and schemas loaded from the disk cache (regex disk hits count as compiles here).
    entries, bytes:
        What the memory cache holds now, and its estimated size.
    """

    hits: int
    misses: int
    compiles: int
    disk_hits: int
    entries: int
    bytes: int


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: CompiledGrammar | None = None
        self.error: BaseException | None = None


def estimate_bytes(grammar: CompiledGrammar) -> int:
    """Estimated memory held by a compiled grammar now (automata, tables, stored masks).

    Parameters
    ----------
    grammar:
        A compiled grammar.

    Returns
    -------
    int
        Bytes; a grammar's parser tables count three times the stacked table (the array and its
        row lists), plus its productions; a regex counts its automaton and its eager mask table
        (runtime caches are not counted: the runtime keeps them, outside the grammar).
    """
    size = 4096 + len(grammar.source)
    program = grammar.program
    if isinstance(program, DFAProgram):
        size += int(program.dfa.trans.nbytes + program.dfa.accepting.nbytes + program.classes.nbytes)
        if program.table is not None:
            size += int(program.table.masks.nbytes)
    else:
        tb = program.tables
        size += 3 * int(tb.trans.nbytes) + 2 * 1024 * len(tb.term_dfas) + 96 * len(tb.rhs)
        size += 16 * grammar.vocab.size  # the runtime mask store's per-token buffers
    return size


def _canonical_json(value: Any) -> str:
    """JSON text of a schema: key order kept (it is the output order), no insignificant spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Compiler:
    """Compiles regexes, grammars and JSON Schemas against one vocabulary, with caches.

    Parameters
    ----------
    vocab:
        The tokenizer's :class:`~corral.Vocabulary`.
    limits:
        Every limit of each compile (time, estimated memory, states); see :class:`~corral.Limits`.
    cache_dir:
        Disk cache: ``None`` or ``False`` (default) keeps nothing on disk; ``True`` uses
        ``$CORRAL_CACHE_DIR`` or ``~/.cache/corral``; a path uses that folder. All three kinds are
        cached there.
    memory_cache_bytes:
        Bound on the estimated size (:func:`estimate_bytes`) of the compiled grammars kept in
        memory; the least recently used go first. ``0`` keeps none.

    Raises
    ------
    CorralError
        When ``vocab`` is not a :class:`~corral.Vocabulary`, ``limits`` not a
        :class:`~corral.Limits`, or ``memory_cache_bytes`` negative.

    Examples
    --------
    >>> from corral import Vocabulary
    >>> vocab = Vocabulary([b"1", b"2", b"-", b"12", None], eos_token_ids=[4])
    >>> compiler = Compiler(vocab)
    >>> compiler.regex(r"\\d+") is compiler.regex(r"\\d+")
    True
    """

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        limits: Limits | None = None,
        cache_dir: bool | str | os.PathLike[str] | None = None,
        memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES,
    ) -> None:
        if not isinstance(vocab, Vocabulary):
            raise CorralError(
                f"vocab must be a corral.Vocabulary, not {type(vocab).__name__}; "
                "build one with corral.Vocabulary.from_hf(tokenizer)"
            )
        if limits is not None and not isinstance(limits, Limits):
            raise CorralError(f"limits must be a corral.Limits, not {type(limits).__name__}")
        if isinstance(memory_cache_bytes, bool) or not isinstance(memory_cache_bytes, int) or memory_cache_bytes < 0:
            raise CorralError(f"memory_cache_bytes must be a non-negative integer, not {memory_cache_bytes!r}")
        self.vocab = vocab
        self.limits = limits or DEFAULT_LIMITS
        self.cache_dir: Path | None = (
            None if cache_dir is None or cache_dir is False
            else disk.default_cache_dir() if cache_dir is True else Path(cache_dir)
        )
        self.memory_cache_bytes = memory_cache_bytes
        self._lock = threading.Lock()
        self._lru: OrderedDict[_Key, tuple[CompiledGrammar, int]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[_Key, _Pending] = {}
        self._hits = self._misses = self._compiles = self._disk_hits = 0
        # the disk key holds every limit but the timeout (which decides whether a compile finishes,
        # never what it produces)
        self._limits_json = json.dumps({k: v for k, v in asdict(self.limits).items() if k != "timeout"}, sort_keys=True)

    def __repr__(self) -> str:
        return f"Compiler(vocab={self.vocab.name!r}, cache_dir={self.cache_dir!r}, entries={len(self._lru)})"

    # -- the three kinds ----------------------------------------------------------------------------
    def regex(self, pattern: str) -> CompiledGrammar:
        """Compile a regular expression (see :func:`corral.compile_regex`), cached.

        Parameters
        ----------
        pattern:
            The regular expression (``re.fullmatch`` semantics).

        Returns
        -------
        CompiledGrammar

        Raises
        ------
        GrammarError
            Malformed or non-regular pattern, or one matching no string.
        CompileLimitError
            When a limit of :attr:`limits` is exceeded.
        """
        if not isinstance(pattern, str):
            raise CorralError(f"a regex must be a str, not {type(pattern).__name__}")

        def build() -> CompiledGrammar:
            with self._lock:
                self._compiles += 1
            return compile_regex(pattern, self.vocab, limits=self.limits,
                                 cache=self.cache_dir if self.cache_dir is not None else False)

        return self._get(("regex", pattern, ""), build)

    def grammar(self, text: str, *, syntax: str = "lark", start: str | None = None) -> CompiledGrammar:
        """Compile a Lark or GBNF grammar (see :func:`corral.compile_grammar`), cached.

        Parameters
        ----------
        text:
            The grammar.
        syntax:
            ``"lark"`` or ``"gbnf"``.
        start:
            The start rule (default ``"start"`` for Lark, ``"root"`` for GBNF).

        Returns
        -------
        CompiledGrammar

        Raises
        ------
        GrammarError
            Syntax errors, undefined symbols, invalid terminals, an empty language.
        CompileLimitError
            When a limit of :attr:`limits` is exceeded.
        """
        from corral.compiler.cfg import compile_grammar

        if not isinstance(text, str):
            raise CorralError(f"a grammar must be a str, not {type(text).__name__}")
        options = {"syntax": syntax, "start": start}

        def build() -> CompiledGrammar:
            return compile_grammar(text, self.vocab, syntax=syntax, start=start, limits=self.limits)

        return self._get(("grammar", text, json.dumps(options, sort_keys=True)),
                         lambda: self._disk_cached("grammar", text, options, build))

    def json_schema(
        self,
        schema: Any,
        *,
        whitespace: str | None = None,
        max_whitespace: int = 64,
        lenient: bool = False,
        property_order: str = "any",
        registry: Mapping[str, Any] | None = None,
        indent: int = 2,
    ) -> CompiledGrammar:
        """Compile a JSON Schema (see :func:`corral.compile_json_schema`), cached.

        Parameters
        ----------
        schema:
            A dict, a JSON string, or a Pydantic model class.
        whitespace, max_whitespace, lenient, property_order, indent:
            As for :func:`corral.compile_json_schema` (``whitespace`` ``None``: its default).
        registry:
            Documents ``$ref`` may point at, by URI; they are part of the cache keys.

        Returns
        -------
        CompiledGrammar

        Raises
        ------
        UnsupportedSchemaError
            Every keyword that cannot be enforced exactly.
        GrammarError
            A malformed schema, or one that accepts no value.
        CompileLimitError
            When a limit of :attr:`limits` is exceeded.
        """
        from corral.compiler.json_schema.compiler import DEFAULT_WHITESPACE, compile_json_schema

        ws = DEFAULT_WHITESPACE if whitespace is None else whitespace
        options: dict[str, Any] = {"whitespace": ws, "max_whitespace": max_whitespace, "lenient": lenient,
                                   "property_order": property_order, "indent": indent}

        def build() -> CompiledGrammar:
            return compile_json_schema(schema, self.vocab, whitespace=ws, max_whitespace=max_whitespace,
                                       lenient=lenient, property_order=property_order, registry=registry,
                                       indent=indent, limits=self.limits)  # type: ignore[no-any-return]

        try:
            if isinstance(schema, str):
                text = "str:" + schema
            elif isinstance(schema, type) and hasattr(schema, "model_json_schema"):
                text = _canonical_json(schema.model_json_schema())
            else:
                text = _canonical_json(schema)
            if registry is not None:
                options["registry"] = _canonical_json(dict(sorted(registry.items())))
            opts = json.dumps(options, sort_keys=True)
        except (TypeError, ValueError, AttributeError):
            return build()  # not JSON (a Decimal, a non-string URI, ...): compiled, not cached
        return self._get(("json_schema", text, opts), lambda: self._disk_cached("json_schema", text, options, build))

    def warm_up(self) -> float:
        """Load the numba kernels a process's first requests would load, now.

        A process's first use of each kernel loads its machine code from numba's cache (17-19 ms
        apiece; about 30 s in all on a machine with no cache yet), and the first request of a
        server pays those loads. This compiles a few small constraints of every kind against
        :attr:`vocab` (so the kernels see the arrays real requests give them) and walks each
        along a document, feeding its text a few bytes at a time and asking for a mask at each
        step. Nothing is cached or kept; the default limits apply, not :attr:`limits`.

        Returns
        -------
        float
            The seconds it took.
        """
        import time

        from corral.compiler.cfg import compile_grammar
        from corral.compiler.json_schema.compiler import compile_json_schema

        t0 = time.perf_counter()
        for compiled, text in (
            (compile_json_schema(_WARM_SCHEMA, self.vocab), json.dumps(_WARM_DOCUMENT, indent=2).encode()),
            (compile_regex(_WARM_REGEX, self.vocab), b"ada.lovelace@example.org"),
            (compile_grammar(_WARM_GRAMMAR, self.vocab), b"select a, b2 from t where a = 12 and b2 < 7;"),
        ):
            m = compiled.matcher()
            for i in range(0, len(text), 3):
                m.next_token_mask()
                if not m.accept_bytes(text[i:i + 3]):  # pragma: no cover - the documents are valid
                    raise CorralError(f"warm_up: its own document was refused at byte {i}")
            m.next_token_mask()
        return time.perf_counter() - t0

    # -- caches -------------------------------------------------------------------------------------
    def cache_info(self) -> CacheInfo:
        """The caches' counters.

        Returns
        -------
        CacheInfo
        """
        with self._lock:
            return CacheInfo(self._hits, self._misses, self._compiles, self._disk_hits, len(self._lru), self._bytes)

    def clear(self) -> None:
        """Empty the memory cache (the disk cache is kept)."""
        with self._lock:
            self._lru.clear()
            self._bytes = 0

    def _get(self, key: _Key, build: Callable[[], CompiledGrammar]) -> CompiledGrammar:
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                self._hits += 1
                return hit[0]
            self._misses += 1
            pending = self._pending.get(key)
            owner = pending is None
            if pending is None:
                pending = self._pending[key] = _Pending()
        if not owner:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            assert pending.result is not None
            return pending.result
        try:
            result = build()
        except BaseException as e:
            pending.error = e
            with self._lock:
                del self._pending[key]
            pending.done.set()
            raise
        pending.result = result
        size = estimate_bytes(result)
        with self._lock:
            del self._pending[key]
            if size <= self.memory_cache_bytes:
                self._lru[key] = (result, size)
                self._bytes += size
                while self._bytes > self.memory_cache_bytes and self._lru:
                    _, (_, old) = self._lru.popitem(last=False)
                    self._bytes -= old
        pending.done.set()
        return result

    def _disk_cached(self, kind: str, text: str, options: dict[str, Any],
                     build: Callable[[], CompiledGrammar]) -> CompiledGrammar:
        """``build()``, or its result from the disk cache (then stored there)."""
        from corral.compiler import artifact

        if self.cache_dir is None:
            with self._lock:
                self._compiles += 1
            return build()
        key = disk.cache_key(kind, text, {**options, "limits": json.loads(self._limits_json)}, self.vocab)
        arrays = disk.load_arrays(self.cache_dir, key, artifact.PROGRAM_ARRAYS, self.limits.max_memory_bytes)
        if arrays is not None:
            try:
                grammar = artifact.program_from_members(arrays, self.vocab)
                if grammar.kind != kind:
                    raise artifact.BadArtifact(f"it holds a {grammar.kind}, not a {kind}")
            except artifact.BadArtifact as e:
                disk.reject(self.cache_dir / f"{key.hex}.npz", str(e))
            else:
                with self._lock:
                    self._disk_hits += 1
                return grammar
        with self._lock:
            self._compiles += 1
        grammar = build()
        disk.store_arrays(self.cache_dir, key, artifact.program_members(grammar, key.payload))
        return grammar
