"""``Compiler.warm_up`` loads the numba kernels a process's first requests would load.

Checked in fresh processes (a test process has loaded most kernels already): after ``warm_up``,
compiling and walking other constraints of every kind loads no kernel; without it they load
some (so the check can fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, sys
import corral
from numba.core.registry import CPUDispatcher

def loaded():
    seen = {}
    for name, mod in list(sys.modules.items()):
        if name.startswith("corral"):
            for attr, v in list(vars(mod).items()):
                if isinstance(v, CPUDispatcher):
                    seen[id(v)] = (f"{v.py_func.__module__}.{v.py_func.__name__}", len(v.overloads))
    return seen

tokens = [bytes([b]) for b in range(256)] + [b'{"', b'":', b'", "', b"name", b"select", b" from", b"  ",
                                             b"\n  ", b"ada", b"1815", b'"}', b"12", None]
vocab = corral.Vocabulary(tokens, eos_token_ids=[len(tokens) - 1])
if sys.argv[1] == "warm":
    corral.Compiler(vocab).warm_up()
before = loaded()
schema = {"type": "object", "properties": {
    "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3,5}$"}, "title": {"type": "string", "maxLength": 40},
    "n": {"type": "integer", "minimum": -5, "maximum": 500}, "w": {"type": "number"},
    "day": {"type": "string", "format": "date"}, "notes": {"type": "string", "maxLength": 5000},
    "sizes": {"type": "array", "items": {"enum": ["s", "m", "l"]}, "uniqueItems": True},
    "shape": {"oneOf": [{"type": "object", "properties": {"t": {"const": "sq"}, "side": {"type": "number"}},
                         "required": ["t"], "additionalProperties": False},
                        {"type": "object", "properties": {"t": {"const": "ci"}, "r": {"type": "number"}},
                         "required": ["t"], "additionalProperties": False}]},
    "meta": {"type": "object", "properties": {"by": {"type": "string"}}, "additionalProperties": {"type": "integer"}}},
    "required": ["code", "n"], "additionalProperties": False}
doc = {"n": 12, "code": "AB1234", "title": "x\u00fc and a title of thirty-odd characters", "w": -0.5, "day": "2024-02-29", "notes": "long text",
       "sizes": ["m", "s"], "shape": {"t": "ci", "r": 2}, "meta": {"by": "ada lovelace", "revision": 3}}
for g, text in ((corral.compile_json_schema(schema, vocab), json.dumps(doc).encode()),
                (corral.compile_regex(r"(https?)://[a-z0-9.-]+(/[a-z]*)*", vocab), b"https://ex-1.org/a/b"),
                (corral.compile_grammar('start: expr\nexpr: NUM ("+" NUM)*\nNUM: /[0-9]+/\n%ignore " "', vocab),
                 b"12 + 7+300")):
    m = g.matcher()
    for i in range(0, len(text), 2):
        m.next_token_mask()
        assert m.accept_bytes(text[i:i + 2]), (text, i)
    m.next_token_mask()
after = loaded()
print(json.dumps(sorted(name for k, (name, n) in after.items() if n > before.get(k, ("", 0))[1])))
'''


def _newly_loaded(mode: str) -> list[str]:
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_after_warm_up_other_constraints_load_no_kernel() -> None:
    assert _newly_loaded("warm") == []


def test_without_warm_up_they_do() -> None:
    assert len(_newly_loaded("cold")) >= 10
