"""corral.Compiler: memory LRU, disk cache for all three kinds, to_bytes/from_bytes and pickling."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import corral
from corral import CompiledGrammar, Compiler, CorralError, Vocabulary
from corral.compiler import cache as disk
from corral.compiler.compiler import estimate_bytes
from corral.errors import CorralWarning

TOKENS = [b"{", b"}", b'"', b"a", b"b", b"ab", b":", b",", b" ", b"1", b"2", b"12", b'{"', b'":', b"\n", b"x", None]
VOCAB = Vocabulary(TOKENS, eos_token_ids=[len(TOKENS) - 1])

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 3}},
          "required": ["a"]}
LARK = 'start: "{" pair ("," pair)* "}"\npair: NAME ":" NUMBER\nNAME: /[ab]+/\nNUMBER: /[12]+/\n'
REGEX = r'\{"(ab|ba)":[12]{1,3}\}'
REGISTRY = {"https://example.com/item.json": {"type": "object", "properties": {"ab": {"type": "integer"}},
                                              "required": ["ab"]}}
REF_SCHEMA = {"type": "array", "items": {"$ref": "https://example.com/item.json"}, "maxItems": 2}


def _compile(compiler: Compiler, kind: str) -> CompiledGrammar:
    if kind == "regex":
        return compiler.regex(REGEX)
    if kind == "grammar":
        return compiler.grammar(LARK)
    return compiler.json_schema(SCHEMA)


def _walk_masks(a: CompiledGrammar, b: CompiledGrammar, seed: int, steps: int = 30) -> int:
    """Walk both grammars with the same random allowed tokens; assert their masks agree at each step."""
    rng = np.random.default_rng(seed)
    ma, mb = a.matcher(), b.matcher()
    eos = set(a.vocab.eos_token_ids)
    n = 0
    for _ in range(steps):
        mask_a, mask_b = ma.next_token_mask(), mb.next_token_mask()
        assert np.array_equal(mask_a, mask_b)
        allowed = [t for t in np.flatnonzero(corral.bitmask_to_bool(mask_a, a.vocab.size)) if t not in eos]
        if not allowed:
            break
        t = int(rng.choice(allowed))
        assert ma.accept_token(t) and mb.accept_token(t)
        n += 1
    return n


# --- memory cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["regex", "grammar", "json_schema"])
def test_memory_hit_returns_the_same_object(kind: str) -> None:
    c = Compiler(VOCAB)
    first = _compile(c, kind)
    assert _compile(c, kind) is first
    info = c.cache_info()
    assert (info.hits, info.misses, info.compiles, info.entries) == (1, 1, 1, 1)
    assert info.bytes == estimate_bytes(first)


def test_memory_key_includes_options() -> None:
    c = Compiler(VOCAB)
    assert c.json_schema(SCHEMA) is not c.json_schema(SCHEMA, whitespace="compact")
    assert c.grammar(LARK) is not c.grammar(LARK.replace("start:", "top:"), start="top")
    assert c.cache_info().compiles == 4


def test_eviction_by_bytes() -> None:
    sizes = [estimate_bytes(_compile(Compiler(VOCAB), k)) for k in ("regex", "grammar")]
    c = Compiler(VOCAB, memory_cache_bytes=sum(sizes) - 1)
    r = c.regex(REGEX)
    g = c.grammar(LARK)  # pushes the regex out
    info = c.cache_info()
    assert info.entries == 1 and info.bytes == sizes[1] <= c.memory_cache_bytes
    assert c.grammar(LARK) is g
    assert c.regex(REGEX) is not r  # compiled again
    assert c.cache_info().compiles == 3
    nothing = Compiler(VOCAB, memory_cache_bytes=0)
    assert nothing.regex(REGEX) is not nothing.regex(REGEX)
    assert nothing.cache_info().entries == 0


def test_concurrent_calls_compile_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import corral.compiler.cfg as cfg

    original = cfg.compile_grammar
    calls = []

    def slow(*args: Any, **kwargs: Any) -> CompiledGrammar:
        calls.append(1)
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(cfg, "compile_grammar", slow)
    c = Compiler(VOCAB)
    barrier = threading.Barrier(4)
    results: list[CompiledGrammar] = []

    def work() -> None:
        barrier.wait()
        results.append(c.grammar(LARK))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 4
    assert all(r is results[0] for r in results)
    assert c.cache_info().compiles == 1


def test_concurrent_callers_all_get_the_error() -> None:
    c = Compiler(VOCAB)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            c.grammar('start: "a" undefined_rule')
        except corral.GrammarError as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 3 and c.cache_info().entries == 0


def test_error_when_arguments_are_wrong() -> None:
    with pytest.raises(CorralError, match="vocab must be a corral.Vocabulary, not list"):
        Compiler([b"a"])  # type: ignore[arg-type]
    with pytest.raises(CorralError, match="memory_cache_bytes must be a non-negative integer, not -1"):
        Compiler(VOCAB, memory_cache_bytes=-1)
    with pytest.raises(CorralError, match="limits must be a corral.Limits, not dict"):
        Compiler(VOCAB, limits={"timeout": 1})  # type: ignore[arg-type]


# --- disk cache -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["regex", "grammar", "json_schema"])
def test_disk_round_trip_gives_the_masks_of_a_fresh_compile(kind: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = _compile(Compiler(VOCAB), kind)
    _compile(Compiler(VOCAB, cache_dir=tmp_path), kind)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    if kind != "regex":
        _forbid_compiling(monkeypatch)
    second = Compiler(VOCAB, cache_dir=tmp_path)
    loaded = _compile(second, kind)
    if kind != "regex":
        assert second.cache_info().disk_hits == 1 and second.cache_info().compiles == 0
    assert loaded.kind == fresh.kind and loaded.source == fresh.source and loaded.stats.states == fresh.stats.states
    for seed in range(5):
        _walk_masks(fresh, loaded, seed)


def test_disk_round_trip_with_a_real_tokenizer(llama3: tuple[Any, Vocabulary], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, vocab = llama3
    fresh = Compiler(vocab).json_schema(SCHEMA)
    Compiler(vocab, cache_dir=tmp_path).json_schema(SCHEMA)
    _forbid_compiling(monkeypatch)
    loaded = Compiler(vocab, cache_dir=tmp_path).json_schema(SCHEMA)
    assert sum(_walk_masks(fresh, loaded, seed, steps=12) for seed in range(3)) > 10


def test_cache_dir_true_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path / "c"))
    Compiler(VOCAB, cache_dir=True).grammar(LARK)
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1


def _forbid_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    import corral.compiler.cfg as cfg
    import corral.compiler.json_schema.compiler as js

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled although the disk cache holds the entry")

    for mod, name in ((cfg, "compile_grammar"), (cfg, "compile_ir"), (cfg, "build_tables"), (js, "compile_json_schema")):
        monkeypatch.setattr(mod, name, refuse)


_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import corral
import corral.compiler.cfg as cfg
import corral.compiler.json_schema.compiler as js

def refuse(*args, **kwargs):
    raise SystemExit("compiled in the second process")

cfg.compile_ir = cfg.build_tables = cfg.compile_grammar = js.compile_json_schema = refuse
tokens = [None if t is None else t.encode("latin-1") for t in json.loads(sys.argv[2])]
vocab = corral.Vocabulary(tokens, eos_token_ids=[len(tokens) - 1])
c = corral.Compiler(vocab, cache_dir=sys.argv[1])
mask = c.json_schema(json.loads(sys.argv[3])).matcher().next_token_mask()
print(json.dumps({"mask": mask.tolist(), "disk_hits": c.cache_info().disk_hits, "compiles": c.cache_info().compiles}))
"""


def test_second_process_reads_a_schema_from_disk_without_compiling(tmp_path: Path) -> None:
    g = Compiler(VOCAB, cache_dir=tmp_path).json_schema(SCHEMA)
    expected = g.matcher().next_token_mask().tolist()
    tokens = json.dumps([None if t is None else t.decode("latin-1") for t in TOKENS])
    res = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), tokens, json.dumps(SCHEMA)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got == {"mask": expected, "disk_hits": 1, "compiles": 0}


# --- registry, pickling, bytes ----------------------------------------------------------------


def test_schema_with_registry_round_trips_through_pickle_and_disk(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = corral.compile_json_schema(REF_SCHEMA, VOCAB, registry=REGISTRY)
    again = pickle.loads(pickle.dumps(fresh))
    assert again.kind == "json_schema" and again.warnings == fresh.warnings
    assert pickle.dumps(again) == pickle.dumps(fresh)
    Compiler(VOCAB, cache_dir=tmp_path).json_schema(REF_SCHEMA, registry=REGISTRY)
    other = {"https://example.com/item.json": {"type": "object", "properties": {"ba": {"type": "integer"}}}}
    c = Compiler(VOCAB, cache_dir=tmp_path)
    c.json_schema(REF_SCHEMA, registry=other)  # other registry documents: another key, compiled
    assert c.cache_info().compiles == 1 and c.cache_info().disk_hits == 0
    _forbid_compiling(monkeypatch)
    loaded = Compiler(VOCAB, cache_dir=tmp_path).json_schema(REF_SCHEMA, registry=REGISTRY)
    for seed in range(5):
        _walk_masks(fresh, again, seed)
        _walk_masks(fresh, loaded, seed)


@pytest.mark.parametrize("kind", ["regex", "grammar", "json_schema"])
def test_to_bytes_is_identical_on_repeat_and_never_recompiles(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    g = _compile(Compiler(VOCAB), kind)
    data = g.to_bytes()
    assert g.to_bytes() == data
    if kind != "regex":
        _forbid_compiling(monkeypatch)
    back = CompiledGrammar.from_bytes(data, VOCAB)
    assert back.to_bytes() == data
    assert pickle.loads(pickle.dumps(g)).to_bytes() == data
    for seed in range(3):
        _walk_masks(g, back, seed)


def test_error_when_from_bytes_gets_another_vocabulary() -> None:
    data = Compiler(VOCAB).grammar(LARK).to_bytes()
    other = Vocabulary(TOKENS[:-2] + [None], eos_token_ids=[len(TOKENS) - 2])
    with pytest.raises(CorralError, match="compiled for another vocabulary"):
        CompiledGrammar.from_bytes(data, other)
    with pytest.raises(CorralError, match="cannot load the compiled grammar"):
        CompiledGrammar.from_bytes(data[:-40], VOCAB)


# --- tampered entries -------------------------------------------------------------------------


def _rewrite_entry(path: Path, change: dict[str, np.ndarray], *, sign: bool) -> None:
    """Replace arrays of an entry, re-signing it with the folder's secret when ``sign``."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members.pop("mac")
    for name, arr in change.items():
        members[name] = disk._npy(arr)
    secret = disk._secret(path.parent, create=False)
    assert secret is not None
    members["mac"] = disk._mac(secret, members) if sign else b"\0" * 32
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for n, raw in members.items():
            z.writestr(n, raw)
    path.write_bytes(buf.getvalue())


def _load_array(path: Path, name: str) -> np.ndarray:
    with zipfile.ZipFile(path) as z:
        return np.lib.format.read_array(io.BytesIO(z.read(name)), allow_pickle=False)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "edit", "sign", "why"), [
    ("trans", lambda a: np.where(a == a.max(), a.shape[0], a), True, "transitions to states that do not exist"),
    ("rhs", lambda a: a - 10_000, True, "production bodies name symbols that do not exist"),
    ("follow", lambda a: a + 1000, True, "FOLLOW sets name terminals that do not exist"),
    ("term_of_state", lambda a: a[::-1].copy(), True, "not stacked block by block"),
    ("lhs", lambda a: np.zeros_like(a), False, "HMAC does not match"),
])
def test_tampered_grammar_entries_are_recompiled(name: str, edit: Any, sign: bool, why: str, tmp_path: Path) -> None:
    fresh = Compiler(VOCAB).grammar(LARK)
    Compiler(VOCAB, cache_dir=tmp_path).grammar(LARK)
    (path,) = tmp_path.glob("*.npz")
    _rewrite_entry(path, {name: edit(_load_array(path, name))}, sign=sign)
    c = Compiler(VOCAB, cache_dir=tmp_path)
    with pytest.warns(CorralWarning, match=why):
        g = c.grammar(LARK)
    assert c.cache_info().compiles == 1 and c.cache_info().disk_hits == 0
    for seed in range(3):
        _walk_masks(fresh, g, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Compiler(VOCAB, cache_dir=tmp_path)
        again.grammar(LARK)  # overwritten with a good entry
    assert again.cache_info().disk_hits == 1


def test_entry_of_another_key_is_not_used(tmp_path: Path) -> None:
    Compiler(VOCAB, cache_dir=tmp_path).grammar(LARK)
    (path,) = tmp_path.glob("*.npz")
    key = disk.cache_key("grammar", 'start: "x"', {"syntax": "lark", "start": None,
                                                    "limits": json.loads(Compiler(VOCAB)._limits_json)}, VOCAB)
    path.rename(tmp_path / f"{key.hex}.npz")
    c = Compiler(VOCAB, cache_dir=tmp_path)
    with pytest.warns(CorralWarning, match="written for another constraint"):
        g = c.grammar('start: "x"')
    assert g.matcher().accept_token(TOKENS.index(b"x"))


# --- corral compile ---------------------------------------------------------------------------


def test_cli_compile_warms_the_cache_for_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.cli import main
    from tests.conftest import tokenizer_and_vocab

    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "s.json"
    f.write_text(json.dumps(SCHEMA))
    out = io.StringIO()
    assert main(["compile", str(f), "--tokenizer", "smollm2"], out) == 0, out.getvalue()
    assert out.getvalue().endswith(f"cache: {tmp_path / 'cache'}\n")
    _, vocab = tokenizer_and_vocab("smollm2")
    _forbid_compiling(monkeypatch)
    c = Compiler(vocab, cache_dir=True)
    c.json_schema(f.read_text()).matcher().next_token_mask()
    assert c.cache_info().disk_hits == 1
