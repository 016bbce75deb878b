"""torch and transformers are optional: compiling needs neither, and helpers that do name the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

import corral
from corral._optional import require

# Runs in a child process where importing torch or transformers fails, as on a machine without them.
BLOCKED = """
import sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
sys.modules["vllm"] = None
import corral
vocab = corral.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
m = corral.compile_json_schema({"type": "string", "maxLength": 2}, vocab).matcher()
assert corral.compile_regex("a+b", vocab).matcher().accept_token(0)
print("compiled")
try:
    {call}
except corral.MissingDependencyError as e:
    print(type(e).__name__, e)
"""


@pytest.mark.parametrize(("call", "message"), [
    ("from corral.integrations.transformers import LogitsProcessor",
     "corral.integrations.transformers needs torch, which is not installed; install it with: "
     "pip install 'corral[transformers]'"),
    ("corral.generate(None, None, 'hi', regex='a')",
     "corral.generate needs torch, which is not installed; install it with: pip install 'corral[transformers]'"),
    ("from corral.integrations.vllm import CorralLogitsProcessor; CorralLogitsProcessor(None, None, False)",
     "corral.integrations.vllm needs vllm, which is not installed; install it with: pip install 'corral[vllm]'"),
])
def test_compiling_needs_no_torch_and_helpers_name_the_extra(call: str, message: str) -> None:
    res = subprocess.run([sys.executable, "-c", BLOCKED.replace("{call}", call)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["compiled", f"MissingDependencyError {message}"]


def test_error_when_a_module_is_missing_is_also_an_import_error() -> None:
    with pytest.raises(ImportError) as err:
        require("corral_no_such_module", "a test")
    assert isinstance(err.value, corral.CorralError)
    assert str(err.value) == ("a test needs corral_no_such_module, which is not installed; install it with: "
                              "pip install corral_no_such_module")
