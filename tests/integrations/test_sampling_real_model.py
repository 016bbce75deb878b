"""``corral.generate``'s samplers and ``corral generate --method`` with the real SmolLM2 model."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import jsonschema
import pytest

import corral
from corral.cli import main
from corral.integrations.transformers import HFLanguageModel

SCHEMA = {
    "type": "object",
    "properties": {"colour": {"enum": ["red", "green", "blue", "chartreuse"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["colour", "n"],
    "additionalProperties": False,
}
PROMPT = "Pick a colour and a digit, as JSON."


def test_generate_with_each_sampler_gives_valid_outputs(smollm2: tuple[Any, Any]) -> None:
    model, tok = smollm2
    for method in ("asap", "awrs"):
        results = corral.generate(model, tok, PROMPT, schema=SCHEMA, method=method, num_samples=3, seed=0, max_new_tokens=40)
        assert isinstance(results, list) and len(results) == 3
        for r in results:
            if r.complete:
                jsonschema.validate(json.loads(r.text), SCHEMA)
                assert r.value == json.loads(r.text)
            assert r.stats is not None and r.stats.forward_passes > 0
            assert r.samples is not None and r.samples.method == method
    one = corral.generate(model, tok, PROMPT, schema=SCHEMA, method="smc", num_samples=4, seed=1, max_new_tokens=40)
    assert not isinstance(one, list) and one.samples is not None and len(one.samples) == 4
    assert one.text in {s.text for s in one.samples if s.complete}
    jsonschema.validate(one.value, SCHEMA)


def test_sample_with_the_hf_adapter_batches_masked_rows(smollm2: tuple[Any, Any]) -> None:
    model, tok = smollm2
    lm = HFLanguageModel(model, tok)
    grammar = corral.compile_regex(r"(yes|no|maybe)", lm.vocabulary)
    out = corral.sample(lm, grammar, 6, prompt_ids=lm.encode("Is water wet?"), seed=0, max_tokens=4)
    assert all(re.fullmatch("yes|no|maybe", s.text) and s.complete for s in out)
    # Six rows advance together: one model call per step, not per row.
    assert out.stats.forward_passes <= 4
    assert lm.forward_passes == out.stats.forward_passes


def test_cli_generate_method_and_samples(smollm2: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import corral.integrations.packaged as packaged

    monkeypatch.setattr(packaged, "load_smollm2", lambda: smollm2)  # the session's real model, not a second load
    buf = io.StringIO()
    code = main(["generate", "--regex", "[0-9]{3}", "--method", "asap", "-n", "2", "--seed", "0", "--max-new-tokens", "8", "Three digits:"], out=buf)
    lines = buf.getvalue().splitlines()
    assert code == 0 and len(lines) == 2
    assert all(re.fullmatch("[0-9]{3}", line) for line in lines)
