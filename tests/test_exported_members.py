"""The public surface: ``__all__`` is explicit, complete, documented; imports stay light."""

from __future__ import annotations

import inspect
import subprocess
import sys

import corral

EXPECTED = {
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
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(corral.__all__) == EXPECTED
    public = {
        n for n in dir(corral)
        if not n.startswith("_") and not inspect.ismodule(getattr(corral, n)) and n not in ("annotations", "TYPE_CHECKING", "Any")
    }
    assert public <= EXPECTED


def test_public_names_have_docstrings() -> None:
    for name in EXPECTED - {"__version__"}:
        obj = getattr(corral, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                    assert inspect.getdoc(member), f"{name}.{attr}"


def test_error_hierarchy() -> None:
    assert issubclass(corral.GrammarError, corral.CorralError)
    assert issubclass(corral.GrammarError, ValueError)
    assert issubclass(corral.CompileLimitError, corral.CorralError)
    assert issubclass(corral.VocabularyError, corral.CorralError)


def test_import_does_not_pull_torch_or_transformers() -> None:
    code = "import sys, corral; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
