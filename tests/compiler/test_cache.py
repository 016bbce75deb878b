"""The on-disk cache of compiled grammars."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import corral
from corral import Vocabulary, compile_regex
from corral.compiler import cache
from corral.compiler import compiled as compiled_mod
from corral.errors import CorralWarning
from corral.runtime.engine import dfa_engine
from corral.runtime.maskstore import DFAMaskStore

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
    with pytest.warns(CorralWarning, match="cannot be read"):
        g2 = compile_regex(r"b+", VOCAB, cache=tmp_path)
    assert np.array_equal(g1.matcher().next_token_mask(), g2.matcher().next_token_mask())
    assert f.stat().st_size > 100  # rewritten


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path / "c"))
    compile_regex(r"ab", VOCAB, cache=True)
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1


# --- Tampering: an entry that does not check out is recompiled, never trusted ---------------------

PATTERN = r"(ab)+1?"


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _arrays(members: dict[str, bytes]) -> dict[str, np.ndarray]:
    return {k: np.lib.format.read_array(io.BytesIO(v)) for k, v in members.items() if k != "mac"}


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _write(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as z:
        for k, v in members.items():
            z.writestr(k, v)


def _sign(members: dict[str, bytes], how: str, secret: bytes) -> dict[str, bytes]:
    """Re-digest a tampered entry: keep the old HMAC, recompute a plain SHA-256 (what anyone who can
    write the folder can do), or re-sign with the real secret (someone who can read the user's files)."""
    body = {k: v for k, v in members.items() if k != "mac"}
    if how == "keep":
        return members
    if how == "sha256":
        h = hashlib.sha256()
        for k in sorted(body):
            h.update(k.encode() + b"\0" + len(body[k]).to_bytes(8, "little") + body[k])
        return {**body, "mac": h.digest()}
    return {**body, "mac": cache._mac(secret, body)}


def _store(g: corral.CompiledGrammar) -> DFAMaskStore:
    return dfa_engine(g).store


def _state_masks(g: corral.CompiledGrammar) -> list[np.ndarray]:
    assert g.dfa is not None
    return [_store(g).mask(s).copy() for s in range(g.dfa.n_states)]


def _same_as_fresh(g: corral.CompiledGrammar, fresh: corral.CompiledGrammar) -> None:
    assert g.dfa is not None and fresh.dfa is not None
    assert np.array_equal(g.dfa.trans, fresh.dfa.trans) and np.array_equal(g.dfa.accepting, fresh.dfa.accepting)
    assert g.dfa.start == fresh.dfa.start
    assert all(np.array_equal(a, b) for a, b in zip(_state_masks(g), _state_masks(fresh)))
    assert all(np.array_equal(a, b) for a, b in zip(_masks(g), _masks(fresh)))
    assert g.matcher().forced_tokens() == fresh.matcher().forced_tokens()
    assert [_store(g).count(s) for s in range(g.dfa.n_states)] == [_store(fresh).count(s) for s in range(fresh.dfa.n_states)]
    assert [_store(g).single_token(s) for s in range(g.dfa.n_states)] == [
        _store(fresh).single_token(s) for s in range(fresh.dfa.n_states)
    ]


def _meta(**changes: object) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(a: dict[str, np.ndarray]) -> None:
        meta = json.loads(a["meta"].tobytes())
        for k, v in changes.items():
            if v is _DROP:
                del meta[k]
            else:
                meta[k] = v
        a["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    return edit


_DROP = object()


def _set(name: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(a: dict[str, np.ndarray]) -> None:
        a[name] = value(a[name])

    return edit


def _poke(name: str, index: tuple[int, ...] | int, value: int) -> Callable[[dict[str, np.ndarray]], None]:
    def change(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[index] = value
        return x

    return _set(name, change)


def _drop(name: str) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(a: dict[str, np.ndarray]) -> None:
        del a[name]

    return edit


TAMPERS: dict[str, Callable[[dict[str, np.ndarray]], None]] = {
    "trans target == n_states": lambda a: a.__setitem__("trans", np.where(a["trans"] >= 0, a["trans"].shape[0], -1).astype(np.int32)),
    "trans target huge": _poke("trans", (0, ord("a")), 10**9),
    "trans target -5": _poke("trans", (0, ord("a")), -5),
    "trans all dead": _set("trans", lambda x: np.full_like(x, -1)),
    "trans int64": _set("trans", lambda x: x.astype(np.int64)),
    "trans float": _set("trans", lambda x: x.astype(np.float64)),
    "trans 255 columns": _set("trans", lambda x: x[:, :255].copy()),
    "trans one state less": _set("trans", lambda x: x[:-1].copy()),
    "trans flat": _set("trans", lambda x: x.ravel().copy()),
    "trans fortran": _set("trans", lambda x: np.asfortranarray(x)),
    "trans big-endian": _set("trans", lambda x: x.astype(">i4")),
    "trans empty": _set("trans", lambda x: np.zeros((0, 256), np.int32)),
    "accepting none": _set("accepting", lambda x: np.zeros_like(x)),
    "accepting all": _set("accepting", lambda x: np.ones_like(x)),
    "accepting uint8": _set("accepting", lambda x: x.astype(np.uint8)),
    "accepting short": _set("accepting", lambda x: x[:-1].copy()),
    "start -1": _set("start", lambda x: np.array(-1, np.int64)),
    "start n_states": lambda a: a.__setitem__("start", np.array(a["trans"].shape[0], np.int64)),
    "start huge": _set("start", lambda x: np.array(2**62, np.int64)),
    "start other state": _set("start", lambda x: np.array(int(x) + 1, np.int64)),
    "start as vector": _set("start", lambda x: x.reshape(1)),
    "start float": _set("start", lambda x: x.astype(np.float64)),
    "classes out of range": _poke("classes", 0, 10**6),
    "classes negative": _poke("classes", 0, -1),
    "classes all zero": _set("classes", lambda x: np.zeros_like(x)),
    "classes shifted": _set("classes", lambda x: (x + 1) % (int(x.max()) + 1)),
    "classes int32": _set("classes", lambda x: x.astype(np.int32)),
    "classes short": _set("classes", lambda x: x[:-1].copy()),
    "masks zeroed": _set("masks", lambda x: np.zeros_like(x)),
    "masks all ones": _set("masks", lambda x: np.full_like(x, 0xFFFFFFFF)),
    "masks one row zeroed": _poke("masks", 0, 0),
    "masks rows swapped": _set("masks", lambda x: x[::-1].copy()),
    "masks too wide": _set("masks", lambda x: np.concatenate([x, x[:, :1]], axis=1)),
    "masks one row less": _set("masks", lambda x: x[:-1].copy()),
    "masks int32": _set("masks", lambda x: x.astype(np.int32)),
    "masks uint64": _set("masks", lambda x: x.astype(np.uint64)),
    "masks 3-d": _set("masks", lambda x: x[None]),
    "counts off by one": _set("counts", lambda x: x + 1),
    "counts negative": _set("counts", lambda x: -np.ones_like(x)),
    "single out of range": _set("single", lambda x: np.where(x >= 0, 10**6, x)),
    "single everywhere": _set("single", lambda x: np.zeros_like(x)),
    "masks, counts and single zeroed": lambda a: a.update(
        masks=np.zeros_like(a["masks"]), counts=np.zeros_like(a["counts"]), single=np.full_like(a["single"], -1)
    ),
    "no masks": _drop("masks"),
    "lazy entry": lambda a: [a.pop(k) for k in ("classes", "masks", "counts", "single")],
    "no trans": _drop("trans"),
    "no key": _drop("key"),
    "extra array": lambda a: a.__setitem__("extra", np.zeros(3)),
    "meta not json": _set("meta", lambda x: np.frombuffer(b"{nope", np.uint8)),
    "meta not utf-8": _set("meta", lambda x: np.frombuffer(b"\xff\xfe", np.uint8)),
    "meta a list": _set("meta", lambda x: np.frombuffer(b"[1, 2]", np.uint8)),
    "meta missing field": _meta(states=_DROP),
    "meta extra field": _meta(evil=1),
    "meta states string": _meta(states="3"),
    "meta states mismatch": _meta(states=10**6),
    "meta eager int": _meta(eager=1),
    "meta seconds negative": _meta(mask_seconds=-1.0),
    "meta seconds nan": lambda a: a.__setitem__("meta", np.frombuffer(re.sub(rb'"mask_seconds": [^,}]+', b'"mask_seconds": NaN', a["meta"].tobytes()), np.uint8)),
    "meta int64 array": _set("meta", lambda x: x.astype(np.int64)),
    "key of another pattern": _set("key", lambda x: np.frombuffer(x.tobytes().replace(b"(ab)+1?", b"(ab)+2?"), np.uint8)),
}


CONSISTENT_FORGERIES = {"trans all dead", "start other state", "lazy entry"}


@pytest.mark.parametrize("how", ["keep", "sha256", "resign"])
def test_tampered_entry_never_changes_a_mask(tmp_path: Path, how: str) -> None:
    fresh = compile_regex(PATTERN, VOCAB)
    compile_regex(PATTERN, VOCAB, cache=tmp_path)
    [entry] = tmp_path.glob("*.npz")
    original = _members(entry)
    secret = (tmp_path / "cache.key").read_bytes()
    assert fresh.stats.eager and fresh.stats.mask_classes > 1
    for name, tamper in TAMPERS.items():
        arrays = _arrays(original)
        tamper(arrays)
        members = {k: _npy(v) for k, v in arrays.items()}
        members["mac"] = original["mac"]
        _write(entry, _sign(members, how, secret))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = compile_regex(PATTERN, VOCAB, cache=tmp_path)
        rejected = [w for w in caught if issubclass(w.category, CorralWarning)]
        # Only an entry signed with the user's own secret *and* consistent is used: then the masks
        # are whatever it says (see corral.compiler.cache), but nothing may crash.
        assert bool(rejected) == (how != "resign" or name not in CONSISTENT_FORGERIES), name
        if rejected:
            assert "recompiling" in str(rejected[0].message), name
            _same_as_fresh(g, fresh)
            assert _members(entry) != members, name  # overwritten
        else:  # signed with the user's own secret and consistent: may differ, must not crash
            _masks(g)
        _write(entry, original)
        _same_as_fresh(compile_regex(PATTERN, VOCAB, cache=tmp_path), fresh)


@pytest.mark.parametrize(
    "damage",
    ["truncated", "empty", "compressed", "mac missing", "mac flipped", "directory", "symlink", "fifo"],
)
def test_damaged_entry_file_is_recompiled(tmp_path: Path, damage: str) -> None:
    fresh = compile_regex(PATTERN, VOCAB)
    compile_regex(PATTERN, VOCAB, cache=tmp_path)
    compile_regex(r"a+", VOCAB, cache=tmp_path)
    entry = next(p for p in tmp_path.glob("*.npz") if cache.cache_key("regex", PATTERN, {"max_states": 100_000}, VOCAB).hex in p.name)
    members = _members(entry)
    raw = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "compressed":
        _write(entry, members, zipfile.ZIP_DEFLATED)
    elif damage == "mac missing":
        _write(entry, {k: v for k, v in members.items() if k != "mac"})
    elif damage == "mac flipped":
        _write(entry, {**members, "mac": bytes([members["mac"][0] ^ 1]) + members["mac"][1:]})
    elif damage == "directory":
        entry.unlink()
        entry.mkdir()
    elif damage == "symlink":
        other = next(p for p in tmp_path.glob("*.npz") if p != entry)
        entry.unlink()
        entry.symlink_to(other)
    elif damage == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        entry.unlink()
        os.mkfifo(entry)
    with pytest.warns(CorralWarning, match="recompiling"):
        g = compile_regex(PATTERN, VOCAB, cache=tmp_path)
    _same_as_fresh(g, fresh)


def test_entries_swapped_between_keys_are_recompiled(tmp_path: Path) -> None:
    patterns = [PATTERN, r"a+", r"(ab|b)*1"]
    fresh = {p: compile_regex(p, VOCAB) for p in patterns}
    for p in patterns:
        compile_regex(p, VOCAB, cache=tmp_path)
    compile_regex(PATTERN, OTHER, cache=tmp_path)
    files = {p: tmp_path / f"{cache.cache_key('regex', p, {'max_states': 100_000}, VOCAB).hex}.npz" for p in patterns}
    other_vocab = tmp_path / f"{cache.cache_key('regex', PATTERN, {'max_states': 100_000}, OTHER).hex}.npz"
    contents = {p: f.read_bytes() for p, f in files.items()}
    for target in patterns:
        for source in [*patterns, "other vocabulary"]:
            if source == target:
                continue
            files[target].write_bytes(other_vocab.read_bytes() if source == "other vocabulary" else contents[source])
            with pytest.warns(CorralWarning, match="another constraint"):
                g = compile_regex(target, VOCAB, cache=tmp_path)
            _same_as_fresh(g, fresh[target])


def test_entry_signed_with_another_secret_is_recompiled(tmp_path: Path) -> None:
    fresh = compile_regex(PATTERN, VOCAB)
    compile_regex(PATTERN, VOCAB, cache=tmp_path / "a")
    compile_regex(PATTERN, VOCAB, cache=tmp_path / "b")
    [a] = (tmp_path / "a").glob("*.npz")
    [b] = (tmp_path / "b").glob("*.npz")
    b.write_bytes(a.read_bytes())  # same key, another folder's secret
    with pytest.warns(CorralWarning, match="HMAC"):
        g = compile_regex(PATTERN, VOCAB, cache=tmp_path / "b")
    _same_as_fresh(g, fresh)


def test_secret_key_file_is_private(tmp_path: Path) -> None:
    compile_regex(PATTERN, VOCAB, cache=tmp_path)
    key = tmp_path / "cache.key"
    assert len(key.read_bytes()) == 32
    if hasattr(os, "getuid"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in tmp_path.glob("*.npz"))


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership")
@pytest.mark.parametrize("problem", ["readable by others", "symlink", "short", "directory"])
def test_untrusted_key_file_disables_the_cache(tmp_path: Path, problem: str) -> None:
    fresh = compile_regex(PATTERN, VOCAB)
    key = tmp_path / "cache.key"
    tmp_path.mkdir(exist_ok=True)
    if problem == "readable by others":
        key.write_bytes(b"k" * 32)
        key.chmod(0o644)
    elif problem == "symlink":
        (tmp_path / "elsewhere").write_bytes(b"k" * 32)
        (tmp_path / "elsewhere").chmod(0o600)
        key.symlink_to(tmp_path / "elsewhere")
    elif problem == "short":
        key.write_bytes(b"k")
        key.chmod(0o600)
    else:
        key.mkdir()
    with pytest.warns(CorralWarning, match="not using the disk cache"):
        g = compile_regex(PATTERN, VOCAB, cache=tmp_path)
    _same_as_fresh(g, fresh)
    assert list(tmp_path.glob("*.npz")) == []


def test_entries_of_a_lost_key_file_are_recompiled_and_rewritten(tmp_path: Path) -> None:
    fresh = compile_regex(PATTERN, VOCAB)
    compile_regex(PATTERN, VOCAB, cache=tmp_path)
    (tmp_path / "cache.key").unlink()
    with pytest.warns(CorralWarning, match="key file .* is missing"):
        g = compile_regex(PATTERN, VOCAB, cache=tmp_path)
    _same_as_fresh(g, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same_as_fresh(compile_regex(PATTERN, VOCAB, cache=tmp_path), fresh)  # a valid entry again
