"""``corral.generate``: constrained generation with a transformers model in one call."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from corral.compiler.compiled import CompiledGrammar
from corral.compiler.compiler import Compiler
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError, IncompleteGenerationError
from corral.runtime.sampling import METHODS, Samples

__all__ = ["GenerationResult", "GenerationStats", "generate"]

_COMPILERS = 8  # vocabularies whose default Compiler is kept
_compilers: OrderedDict[str, Compiler] = OrderedDict()
_compilers_lock = threading.Lock()


def default_compiler(vocab: Vocabulary) -> Compiler:
    """The module's :class:`~corral.Compiler` for ``vocab`` (memory and disk cache), created once.

    Parameters
    ----------
    vocab:
        The vocabulary.

    Returns
    -------
    Compiler
        One per vocabulary hash (the last few vocabularies are kept).
    """
    with _compilers_lock:
        got = _compilers.get(vocab.hash)
        if got is None:
            got = _compilers[vocab.hash] = Compiler(vocab, cache_dir=True)
            while len(_compilers) > _COMPILERS:
                _compilers.popitem(last=False)
        else:
            _compilers.move_to_end(vocab.hash)
        return got


@dataclass(frozen=True)
class GenerationStats:
    """What one :func:`generate` call cost.

    Attributes
    ----------
    forward_passes:
        Calls of the model (one batched call counts once).
    tokens:
        Tokens generated, EOS included, summed over the outputs.
    seconds:
        Wall time of the generation (compilation excluded).
    draft_proposed:
        Drafted tokens verified (``draft=``).
    draft_accepted:
        Drafted tokens kept.
    """

    forward_passes: int
    tokens: int
    seconds: float
    draft_proposed: int = 0
    draft_accepted: int = 0


@dataclass(frozen=True)
class GenerationResult:
    """What :func:`generate` returns.

    Attributes
    ----------
    text:
        The generated text (EOS excluded), exactly the bytes of the tokens, decoded as UTF-8.
    token_ids:
        The generated token ids (EOS excluded).
    value:
        The parsed value for schema constraints; ``None`` otherwise (and for incomplete outputs).
    complete:
        ``False`` only for an output of ``num_samples > 1`` whose budget ran out (a single
        output raises :class:`~corral.IncompleteGenerationError` instead).
    stats:
        :class:`GenerationStats` of the call that produced it.
    samples:
        For ``method="smc"``: every particle, with its weight (:class:`~corral.Samples`); this
        result is one of them, drawn by weight. For the other sampling methods the call's
        samples; ``None`` for the plain transformers path.
    """

    text: str
    token_ids: list[int]
    value: Any = None
    complete: bool = True
    stats: GenerationStats | None = None
    samples: Samples | None = None


@overload
def generate(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    regex: str | None = None,
    grammar: CompiledGrammar | str | None = None,
    schema: Any = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    seed: int | None = None,
    chat: bool = True,
    compiler: Compiler | None = None,
    method: str = "masked",
    num_samples: Literal[1] = 1,
    draft: Any = "auto",
    num_draft_tokens: int = 8,
) -> GenerationResult: ...
@overload
def generate(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    regex: str | None = None,
    grammar: CompiledGrammar | str | None = None,
    schema: Any = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    seed: int | None = None,
    chat: bool = True,
    compiler: Compiler | None = None,
    method: str = "masked",
    num_samples: int,
    draft: Any = "auto",
    num_draft_tokens: int = 8,
) -> GenerationResult | list[GenerationResult]: ...
def generate(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    regex: str | None = None,
    grammar: CompiledGrammar | str | None = None,
    schema: Any = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    seed: int | None = None,
    chat: bool = True,
    compiler: Compiler | None = None,
    method: str = "masked",
    num_samples: int = 1,
    draft: Any = "auto",
    num_draft_tokens: int = 8,
) -> GenerationResult | list[GenerationResult]:
    """Generate text from ``model`` that satisfies one constraint.

    Compiled constraints are cached in memory and on disk (``$CORRAL_CACHE_DIR`` or
    ``~/.cache/corral``), so a second call with the same constraint compiles nothing.

    Parameters
    ----------
    model, tokenizer:
        A transformers causal LM and its tokenizer.
    prompt:
        The user's message (with ``chat=True`` and a chat template) or the raw prompt text.
    regex:
        The output must fully match this regular expression.
    grammar:
        A Lark grammar's text (e.g. ``corral.grammars.load("sql")``), or an already compiled
        :class:`~corral.CompiledGrammar` for this tokenizer (regex or grammar).
    schema:
        A JSON Schema (dict or JSON string) or a Pydantic model class; the result's ``value`` is the
        parsed output (validated with ``jsonschema``; a model instance for a Pydantic class).
    max_new_tokens:
        Token budget (EOS included).
    temperature:
        0 for greedy decoding, else sampling at this temperature.
    seed:
        Seed for sampling.
    chat:
        Apply the tokenizer's chat template when it has one.
    compiler:
        The :class:`~corral.Compiler` to compile ``regex``, ``grammar`` text or ``schema`` with
        (default: one per vocabulary, caching in memory and in the default disk cache).
    method:
        ``"masked"`` (each token from the allowed tokens' renormalised distribution), or a
        sampler that targets the model conditioned on the constraint: ``"asap"``, ``"awrs"``,
        ``"smc"`` (see :func:`corral.sample` and ``docs/sampling.md``; they need
        ``temperature > 0``, default 1 for them).
    num_samples:
        How many outputs (a list is returned when more than 1). For ``"smc"``, the number of
        particles: one output is drawn from them by weight, all on ``result.samples``.
    draft:
        Speculative drafting for ``method="masked"`` with one output: ``"auto"`` (the default:
        the text the constraint forces, spelled as the tokenizer spells it, then n-grams of the
        prompt and output), ``"forced"``, ``"lookup"`` or a
        :class:`corral.runtime.speculative.Draft`. The output is the same as without drafting
        (token for token when greedy, in distribution when sampling), with fewer forward passes
        (about half on schema outputs; ``benchmarks/bench_speculative.py``). ``None`` runs
        transformers' own ``model.generate`` with corral's ``LogitsProcessor``. ``"auto"`` is
        ignored by the other methods.
    num_draft_tokens:
        The most tokens drafted per forward pass.

    Returns
    -------
    GenerationResult or list of GenerationResult
        One result, or ``num_samples`` of them (``"smc"``: one).

    Raises
    ------
    CorralError
        If not exactly one constraint is given.
    UnsupportedSchemaError
        If the schema uses keywords corral cannot enforce exactly.
    IncompleteGenerationError
        If the budget ran out before the output was complete; carries the partial text.
    MissingDependencyError
        If torch or transformers is not installed (``pip install 'corral[transformers]'``).
    GrammarError
        If the regex or grammar is malformed or unsupported.
    """
    from corral._optional import require

    torch = require("torch", "corral.generate")
    from corral.integrations.transformers import LogitsProcessor

    given = [k for k, v in (("regex", regex), ("grammar", grammar), ("schema", schema)) if v is not None]
    if len(given) != 1:
        raise CorralError(f"pass exactly one of regex=, grammar=, schema= (got {given or 'none'})")
    width = getattr(getattr(model, "config", None), "vocab_size", None)
    vocab = Vocabulary.from_hf(tokenizer, vocab_size=width if width and width >= len(tokenizer) else None)
    model_class = schema if isinstance(schema, type) else None
    if compiler is not None and compiler.vocab.hash != vocab.hash:
        raise CorralError("the compiler= was made for another vocabulary than this tokenizer's")
    front = compiler if compiler is not None else default_compiler(vocab)
    if schema is not None:
        schema_dict = _schema_dict(schema)
        grammar = front.json_schema(schema_dict)  # key order kept: the order of property_order="schema"
    elif grammar is None:
        assert regex is not None
        grammar = front.regex(regex)
    elif isinstance(grammar, str):
        grammar = front.grammar(grammar)
    elif grammar.vocab.hash != vocab.hash and len(grammar.vocab) != len(tokenizer):
        raise CorralError("the grammar was compiled for another vocabulary than this tokenizer's")

    if method not in METHODS:
        raise CorralError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise CorralError(f"num_samples must be a positive int, not {num_samples!r}")
    if draft not in (None, "auto") and (method != "masked" or num_samples != 1):
        raise CorralError("draft= works with method='masked' and num_samples=1 (draft='auto' is ignored otherwise)")
    if method != "masked" or num_samples > 1 or draft is not None:
        return _generate_lm(
            model, tokenizer, prompt, grammar, schema_dict if schema is not None else None, model_class,
            method=method, num_samples=num_samples, draft=draft, num_draft_tokens=num_draft_tokens,
            temperature=temperature, seed=seed, chat=chat, max_new_tokens=max_new_tokens,
        )
    if chat and getattr(tokenizer, "chat_template", None):
        enc = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        input_ids = enc["input_ids"]
    else:
        input_ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=True)["input_ids"]
    device = next(model.parameters()).device
    input_ids = input_ids.to(device)
    proc = LogitsProcessor(grammar)
    eos = sorted(grammar.vocab.eos_token_ids)
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "logits_processor": [proc],
        "eos_token_id": eos,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0],
        "attention_mask": torch.ones_like(input_ids),
    }
    if temperature > 0:
        if seed is not None:
            torch.manual_seed(seed)
        kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids, **kwargs)
    seconds = time.perf_counter() - started
    new_ids = out[0, input_ids.shape[1] :].tolist()
    stats = GenerationStats(forward_passes=len(new_ids), tokens=len(new_ids), seconds=seconds)
    while new_ids and new_ids[-1] in grammar.vocab.eos_token_ids:
        new_ids.pop()
    matcher = grammar.matcher()
    if not matcher.accept_tokens(new_ids):  # pragma: no cover - the processor guarantees it
        raise CorralError("internal error: the generated tokens do not satisfy the constraint")
    text = grammar.vocab.decode_bytes(new_ids).decode("utf-8", errors="replace")
    if not matcher.is_accepting():
        raise IncompleteGenerationError(
            f"the token budget (max_new_tokens={max_new_tokens}) ran out before the output was "
            f"complete; partial output: {text!r}",
            text=text,
            token_ids=new_ids,
        )
    value = None
    if schema is not None:
        value = _validated(text, schema_dict, model_class)
    return GenerationResult(text=text, token_ids=new_ids, value=value, stats=stats)


def _generate_lm(
    model: Any, tokenizer: Any, prompt: str, grammar: CompiledGrammar, schema: Any, model_class: type | None, *,
    method: str, num_samples: int, draft: Any, num_draft_tokens: int, temperature: float, seed: int | None,
    chat: bool, max_new_tokens: int,
) -> GenerationResult | list[GenerationResult]:
    """The paths through :class:`~corral.integrations.transformers.HFLanguageModel`: drafting and the samplers."""
    from corral.integrations.transformers import HFLanguageModel
    from corral.runtime.sampling import sample
    from corral.runtime.speculative import make_draft, speculative_generate

    lm = HFLanguageModel(model, tokenizer, vocab_size=grammar.vocab.size)
    prompt_ids = lm.encode(prompt, chat=bool(chat and getattr(tokenizer, "chat_template", None)))
    if method == "masked" and num_samples == 1:
        encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
        got = speculative_generate(
            lm, grammar, prompt_ids, draft=make_draft(draft, encode, grammar.vocab), num_draft_tokens=num_draft_tokens,
            temperature=temperature, max_tokens=max_new_tokens, seed=seed, encode=encode,
        )
        spec = got.stats
        stats = GenerationStats(spec.forward_passes, len(got.token_ids) + int(got.complete), spec.seconds,
                                spec.draft_proposed, spec.draft_accepted)
        text = got.data.decode("utf-8", errors="replace")
        check = grammar.matcher()
        if not got.complete and not (check.accept_tokens(list(got.token_ids)) and check.is_accepting()):
            raise IncompleteGenerationError(
                f"the token budget (max_new_tokens={max_new_tokens}) ran out before the output was "
                f"complete; partial output: {text!r}",
                text=text,
                token_ids=list(got.token_ids),
            )
        value = _validated(text, schema, model_class) if schema is not None else None
        return GenerationResult(text=text, token_ids=list(got.token_ids), value=value, stats=stats)
    if temperature == 0:
        if method != "masked":
            temperature = 1.0  # the samplers sample; greedy has no conditional distribution to target
        else:
            raise CorralError("num_samples > 1 needs temperature > 0 (greedy decoding gives one output)")
    # EOS does not count against sample()'s max_tokens; against max_new_tokens it does.
    samples = sample(
        lm, grammar, num_samples, prompt_ids=prompt_ids, method=method, temperature=temperature,
        max_tokens=max(0, max_new_tokens - 1), seed=seed,
    )
    st = samples.stats
    stats = GenerationStats(st.forward_passes, st.tokens, st.seconds)

    def result(s: Any) -> GenerationResult:
        value = _validated(s.text, schema, model_class) if schema is not None and s.complete else None
        return GenerationResult(text=s.text, token_ids=list(s.token_ids), value=value, complete=s.complete,
                                stats=stats, samples=samples)

    if method == "smc":
        try:
            w = samples.weights()
        except CorralError:
            raise IncompleteGenerationError(
                f"no particle completed within max_new_tokens={max_new_tokens}",
                text=samples[0].text, token_ids=list(samples[0].token_ids),
            ) from None
        pick = int(np.random.default_rng(seed).choice(len(samples), p=w))
        return result(samples[pick])
    results = [result(s) for s in samples]
    if num_samples == 1:
        only = results[0]
        if not only.complete:
            raise IncompleteGenerationError(
                f"the token budget (max_new_tokens={max_new_tokens}) ran out before the output was "
                f"complete; partial output: {only.text!r}",
                text=only.text,
                token_ids=only.token_ids,
            )
        return only
    return results


def _schema_dict(schema: Any) -> Any:
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, str):
        try:
            return json.loads(schema)
        except json.JSONDecodeError as e:
            raise CorralError(f"schema= is not valid JSON: {e}") from None
    return schema


def _validated(text: str, schema: Any, model_class: type | None) -> Any:
    """Parse the output, check it with ``jsonschema``, and build the Pydantic model if given one."""
    import jsonschema

    value = json.loads(text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value), key=str)
    if errors:  # pragma: no cover - the masks guarantee validity; this is the belt to their braces
        raise CorralError(f"internal error: the output does not validate: {errors[0].message}")
    if model_class is not None:
        return model_class.model_validate(value)  # type: ignore[attr-defined]
    return value
