"""The on-disk cache of compiled grammars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import corral
from corral import Vocabulary, compile_regex
from corral.compiler import compiled as compiled_mod

VOCAB = Vocabulary([b"a", b"b", b"ab", b"1", None], eos_token_ids=[4])
OTHER = Vocabulary([b"a", b"b", b"ab", b"2", None], eos_token_ids=[4])


def _masks(g: corral.CompiledGrammar) -> list[np.ndarray]:
    out = []
    m = g.matcher()
    for t in [2, 0, 1]:
        out.append(m.next_token_mask().copy())
        m.accept_token(t)
    return out


def test_second_compile_loads_from_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g1 = compile_regex(r"(ab)+1?", VOCAB, cache=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("compiled again instead of loading the cache")

    monkeypatch.setattr(compiled_mod, "regex_to_dfa", boom)
    g2 = compile_regex(r"(ab)+1?", VOCAB, cache=tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(_masks(g1), _masks(g2)))
    assert g2.stats == g1.stats
    assert g2.matcher().forced_tokens() == g1.matcher().forced_tokens()


def test_cache_key_depends_on_vocabulary_and_pattern(tmp_path: Path) -> None:
    compile_regex(r"a+", VOCAB, cache=tmp_path)
    compile_regex(r"a+", OTHER, cache=tmp_path)
    compile_regex(r"a*", VOCAB, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_corrupt_cache_file_is_recompiled(tmp_path: Path) -> None:
    g1 = compile_regex(r"b+", VOCAB, cache=tmp_path)
    [f] = tmp_path.glob("*.npz")
    f.write_bytes(b"not a zip file")
    g2 = compile_regex(r"b+", VOCAB, cache=tmp_path)
    assert np.array_equal(g1.matcher().next_token_mask(), g2.matcher().next_token_mask())
    assert f.stat().st_size > 100  # rewritten


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path / "c"))
    compile_regex(r"ab", VOCAB, cache=True)
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1
