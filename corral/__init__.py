"""corral: exact structured output for language models.

Compile a constraint against a tokenizer's vocabulary, then enforce it token by token::

    from transformers import AutoTokenizer
    import corral

    vocab = corral.Vocabulary.from_hf(AutoTokenizer.from_pretrained(path))
    grammar = corral.compile_regex(r"\\d{4}-\\d{2}-\\d{2}", vocab)
    matcher = grammar.matcher()
    mask = matcher.next_token_mask()      # packed uint32 bitset over the vocabulary
    corral.apply_token_bitmask_(logits, mask)
    matcher.accept_token(chosen_id)

Importing corral does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from typing import Literal as _Literal
from typing import overload as _overload

from corral import grammars as grammars  # the bundled grammars: corral.grammars.load(name)
from corral.compiler.cfg import compile_grammar
from corral.compiler.compiled import CompiledGrammar, CompileStats, compile_regex
from corral.compiler.compiler import Compiler
from corral.compiler.json_schema.compiler import compile_json_schema
from corral.compiler.limits import Limits
from corral.compiler.vocabulary import Vocabulary
from corral.errors import (
    CompileLimitError,
    CorralError,
    CorralWarning,
    GrammarError,
    IncompleteGenerationError,
    MissingDependencyError,
    UnsupportedSchemaError,
    VocabularyError,
)
from corral.runtime.asap import ASAp
from corral.runtime.batch import fill_next_token_bitmask
from corral.runtime.bitmask import allocate_token_bitmask, apply_token_bitmask_, bitmask_to_bool
from corral.runtime.lm import LanguageModel
from corral.runtime.matcher import Matcher
from corral.runtime.sampling import Sample, Samples, sample

if TYPE_CHECKING:
    from corral.integrations.generate import GenerationResult

__version__ = "0.1.0"


@_overload
def generate(model: Any, tokenizer: Any, prompt: str, *, num_samples: _Literal[1] = 1, **kwargs: Any) -> GenerationResult: ...
@_overload
def generate(
    model: Any, tokenizer: Any, prompt: str, *, num_samples: int, **kwargs: Any
) -> GenerationResult | list[GenerationResult]: ...
def generate(
    model: Any, tokenizer: Any, prompt: str, *, num_samples: int = 1, **kwargs: Any
) -> GenerationResult | list[GenerationResult]:
    """Generate constrained text with a transformers model; see :func:`corral.integrations.generate.generate`.

    Keyword arguments: ``regex=``, ``grammar=`` (Lark text or a compiled grammar) or ``schema=``
    (one constraint), ``max_new_tokens``, ``temperature``, ``seed``, ``chat``, ``method``
    (``"masked"``, ``"asap"``, ``"awrs"``, ``"smc"``), ``num_samples``, ``draft``
    (``"forced"``, ``"lookup"``, ``"auto"``), ``num_draft_tokens``.

    Returns
    -------
    GenerationResult or list of GenerationResult
        ``text``, ``token_ids`` (EOS excluded), ``value``, ``stats``; a list when
        ``num_samples > 1`` (except for ``"smc"``).

    Raises
    ------
    IncompleteGenerationError
        When the token budget ran out first (the partial text is attached).
    """
    from corral.integrations.generate import generate as _generate

    return _generate(model, tokenizer, prompt, num_samples=num_samples, **kwargs)

__all__ = [
    "ASAp",
    "CompileLimitError",
    "CompileStats",
    "CompiledGrammar",
    "Compiler",
    "CorralError",
    "CorralWarning",
    "GrammarError",
    "IncompleteGenerationError",
    "LanguageModel",
    "Limits",
    "Matcher",
    "MissingDependencyError",
    "Sample",
    "Samples",
    "UnsupportedSchemaError",
    "Vocabulary",
    "VocabularyError",
    "__version__",
    "allocate_token_bitmask",
    "apply_token_bitmask_",
    "bitmask_to_bool",
    "compile_grammar",
    "compile_json_schema",
    "compile_regex",
    "fill_next_token_bitmask",
    "generate",
    "sample",
]
