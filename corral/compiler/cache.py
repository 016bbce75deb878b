"""On-disk cache of compiled grammars, authenticated and validated before use.

An entry holds the automaton and, for eager mask stores, every mask, as a zip of ``.npy`` arrays
(no pickle: loading a cache file cannot run code). It is named by the SHA-256 of its key, and
carries that full key (format, corral version, constraint kind and source, options, vocabulary
hash) and an HMAC-SHA256 of everything in it.

What a loaded entry guarantees
------------------------------
An entry is used only when all of these hold; otherwise it is recompiled and overwritten, with a
:class:`~corral.errors.CorralWarning`:

1. **Authenticated.** Its HMAC, under a 32-byte random secret kept in the cache folder
   (``cache.key``, created with mode ``0600``), matches its bytes. The key file must be a regular
   file (not a symbolic link), owned by the current user and unreadable by anyone else; otherwise
   the disk cache is not used at all (a warning says why) and nothing is written. So only a
   process that can read this user's files can produce an entry corral accepts.
2. **For this compile.** The key stored inside equals this compile's key: an entry copied or
   renamed to another key's file name is rejected.
3. **Well-formed.** Every array has its exact dtype and shape; transition targets lie in
   ``[-1, n_states)``, ``start`` in ``[0, n_states)``, mask classes in ``[0, n_classes)`` with
   every class used; masks have the vocabulary's width with no bit past its last token; the
   stored counts equal the masks' popcounts, the single-token ids are in range and agree with
   the masks, the EOS bits agree with the accepting states; the stats have the right fields and
   types. This is checked before any numba kernel sees an array.

Hence: someone who can write the cache folder but cannot read this user's files (another user on
a shared or group-writable folder) can make corral recompile, but never use a mask that differs
from a fresh compile — they can neither forge the HMAC nor replace the key file with one corral
accepts. Someone who *can* read this user's files can sign a forged entry (as they could edit
corral itself); check 3 still guarantees that such an entry cannot crash the process or index
out of bounds, but its masks may then be wrong. On systems without POSIX ownership (Windows) the
owner and mode checks are skipped.

The directory is ``$CORRAL_CACHE_DIR`` when set, else ``~/.cache/corral``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import os
import secrets
import stat
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from corral.compiler.automaton import DEFAULT_MAX_STATES, ByteDFA
from corral.compiler.maskstore import n_words
from corral.compiler.program import DFAProgram, dfa_program
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralWarning

__all__ = ["CacheKey", "default_cache_dir", "cache_key", "load", "store", "load_arrays", "store_arrays"]

_FORMAT = 5  # 4: artifacts hold warnings as Diagnostic records; 5: and the IR's run-time checks (uniqueItems, any key order)
_KEY_FILE = "cache.key"
_SECRET_BYTES = 32
_MAC_DOMAIN = b"corral-cache-entry-v3\0"

# name -> (dtype, ndim); "masks" and the three arrays after it are present only for eager stores.
_ARRAYS: dict[str, tuple[np.dtype[Any], int]] = {
    "key": (np.dtype(np.uint8), 1),
    "meta": (np.dtype(np.uint8), 1),
    "trans": (np.dtype(np.int32), 2),
    "accepting": (np.dtype(np.bool_), 1),
    "start": (np.dtype(np.int64), 0),
    "classes": (np.dtype(np.int64), 1),
    "masks": (np.dtype(np.uint32), 2),
    "counts": (np.dtype(np.int64), 1),
    "single": (np.dtype(np.int64), 1),
}
_REQUIRED = {"key", "meta", "trans", "accepting", "start"}
_EAGER = {"classes", "masks", "counts", "single"}


class _Rejected(Exception):
    """An entry (or the key file) that does not check out; the message says why."""


@dataclass(frozen=True)
class CacheKey:
    """The full key of a cache entry.

    Attributes
    ----------
    payload:
        Canonical JSON of (format, corral version, kind, source, options, vocabulary hash); stored
        inside the entry and compared on load.
    hex:
        SHA-256 of ``payload``: the entry's file name.
    options:
        The compile options in the key (used to bound the size of an acceptable entry).
    """

    payload: str
    hex: str
    options: dict[str, Any]


def default_cache_dir() -> Path:
    """``$CORRAL_CACHE_DIR``, else ``~/.cache/corral``."""
    env = os.environ.get("CORRAL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "corral"


def cache_key(kind: str, source: str, options: dict[str, Any], vocab: Vocabulary) -> CacheKey:
    """The key of a compiled grammar.

    Parameters
    ----------
    kind:
        The constraint kind (``"regex"``).
    source:
        The constraint's source text.
    options:
        Every option that changes the compiled result (JSON-serialisable).
    vocab:
        The vocabulary (its hash is part of the key).

    Returns
    -------
    CacheKey
    """
    from corral import __version__

    payload = json.dumps(
        {"format": _FORMAT, "corral": __version__, "kind": kind, "source": source, "options": options, "vocab": vocab.hash},
        sort_keys=True,
    )
    return CacheKey(payload, hashlib.sha256(payload.encode()).hexdigest(), dict(options))


def _warn(message: str) -> None:
    """Warn, attributing the warning to the first caller outside corral."""
    level = 2  # stacklevel 2 is the frame below
    frame = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == "corral":
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    warnings.warn(message, CorralWarning, stacklevel=level)


def _secret(directory: Path, *, create: bool) -> bytes | None:
    """The directory's HMAC secret (created when absent and ``create``), or ``None`` when absent.

    Raises ``_Rejected`` when the key file exists but cannot be trusted.
    """
    path = directory / _KEY_FILE
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            return None
        _create_secret(directory, path)
        return _secret(directory, create=False)
    except OSError as e:  # a symbolic link (ELOOP), a folder, no permission, ...
        raise _Rejected(f"its key file {path} cannot be opened safely ({e.strerror or e})") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Rejected(f"its key file {path} is not a regular file")
        if hasattr(os, "getuid"):
            if st.st_uid != os.getuid():
                raise _Rejected(f"its key file {path} belongs to another user")
            if st.st_mode & 0o077:
                raise _Rejected(f"its key file {path} is readable or writable by others (mode {st.st_mode & 0o777:o})")
        data = os.read(fd, _SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != _SECRET_BYTES:
        raise _Rejected(f"its key file {path} is not {_SECRET_BYTES} bytes long")
    return data


def _create_secret(directory: Path, path: Path) -> None:
    """Create the key file atomically (the first of concurrent creators wins), mode 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".key-", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(_SECRET_BYTES))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        os.unlink(tmp)


def _mac(secret: bytes, members: dict[str, bytes]) -> bytes:
    h = hmac.new(secret, _MAC_DOMAIN, hashlib.sha256)
    for name in sorted(members):
        raw = members[name]
        h.update(name.encode() + b"\0" + len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.digest()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(array, order="C", copy=None), allow_pickle=False)
    return buf.getvalue()


def _parse_npy(name: str, raw: bytes, spec: dict[str, tuple[np.dtype[Any], int]] | None = None) -> np.ndarray:
    """The array in ``raw`` when its header has the dtype and rank expected for ``name`` (in ``spec``)."""
    dtype, ndim = (_ARRAYS if spec is None else spec)[name]
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dt = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dt = np.lib.format.read_array_header_2_0(f)
        else:
            raise _Rejected(f"array {name!r} has .npy version {version}")
    except ValueError as e:
        raise _Rejected(f"array {name!r} has a malformed header ({e})") from e
    if fortran or dt != dtype or len(shape) != ndim:
        order = " in Fortran order" if fortran else ""
        raise _Rejected(f"array {name!r} is {dt}{list(shape)}{order}, expected {dtype} of rank {ndim}")
    count = math.prod(shape)
    if f.tell() + count * dtype.itemsize != len(raw):
        raise _Rejected(f"array {name!r} is truncated or padded")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=f.tell()).reshape(shape).copy()


def _read_members(path: Path, size_limit: int, allowed: set[str] | None = None) -> dict[str, bytes]:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # not following links, not blocking on a FIFO
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _Rejected("it is not a regular file")
            if st.st_size > size_limit:
                raise _Rejected(f"it is larger than the {size_limit} bytes an entry with these options can take")
            with zipfile.ZipFile(fh) as z:
                infos = z.infolist()
                names = [i.filename for i in infos]
                if len(set(names)) != len(names) or not set(names) <= (set(_ARRAYS) if allowed is None else allowed) | {"mac"}:
                    raise _Rejected(f"it holds unexpected members {sorted(names)}")
                if any(i.compress_type != zipfile.ZIP_STORED for i in infos) or sum(i.file_size for i in infos) > st.st_size:
                    raise _Rejected("its members are compressed or larger than the file")
                return {i.filename: z.read(i) for i in infos}
    except _Rejected:
        raise
    except Exception as e:  # truncated, garbled or foreign: zipfile raises many kinds
        raise _Rejected(f"it cannot be read ({type(e).__name__}: {e})") from e


def _stats_fields() -> dict[str, type]:
    from corral.compiler.compiled import CompileStats

    return {f.name: (bool if f.type in ("bool", bool) else float if f.type in ("float", float) else int) for f in fields(CompileStats)}


def _check_meta(meta: Any, n_states: int) -> dict[str, Any]:
    expected = _stats_fields()
    if not isinstance(meta, dict) or set(meta) != set(expected):
        raise _Rejected("its stats do not have the fields of CompileStats")
    for name, typ in expected.items():
        v = meta[name]
        if typ is bool:
            ok = isinstance(v, bool)
        elif typ is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        else:
            ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
        if not ok:
            raise _Rejected(f"its stat {name!r} is {v!r}")
    if meta["states"] != n_states:
        raise _Rejected("its stats disagree with its automaton")
    return meta


def _popcount(rows: np.ndarray) -> np.ndarray:
    return np.unpackbits(rows.view(np.uint8), axis=1).sum(axis=1, dtype=np.int64)  # type: ignore[no-any-return]


def _check_arrays(a: dict[str, np.ndarray], vocab: Vocabulary) -> None:
    trans, accepting = a["trans"], a["accepting"]
    n = trans.shape[0]
    if n < 1 or trans.shape[1] != 256 or accepting.shape != (n,):
        raise _Rejected(f"its automaton has shape {list(trans.shape)} with {accepting.shape[0]} accepting flags")
    if int(trans.min()) < -1 or int(trans.max()) >= n:
        raise _Rejected("its automaton has transitions to states that do not exist")
    if not 0 <= int(a["start"]) < n:
        raise _Rejected(f"its start state {int(a['start'])} is not one of its {n} states")
    if not accepting.any():
        raise _Rejected("its automaton accepts nothing")
    if "masks" not in a:
        return
    classes, masks, counts, single = a["classes"], a["masks"], a["counts"], a["single"]
    if classes.shape != (n,):
        raise _Rejected("its mask classes do not cover its states")
    n_cls = masks.shape[0]
    if masks.shape != (n_cls, n_words(vocab.size)) or counts.shape != (n_cls,) or single.shape != (n_cls,):
        raise _Rejected(f"its masks are {list(masks.shape)}, not {n_words(vocab.size)} words wide for this vocabulary")
    if int(classes.min()) < 0 or int(classes.max()) >= n_cls or np.unique(classes).shape[0] != n_cls:
        raise _Rejected("its mask classes are out of range or unused")
    if vocab.size % 32 and (masks[:, -1] >> np.uint32(vocab.size % 32)).any():
        raise _Rejected("its masks allow ids beyond the vocabulary")
    if not np.array_equal(_popcount(masks), counts):
        raise _Rejected("its mask counts disagree with its masks")
    ones = counts == 1
    ids = single[ones]
    if (single[~ones] != -1).any() or (ids < 0).any() or (ids >= vocab.size).any():
        raise _Rejected("its single-token ids are out of range")
    if ones.any() and not ((masks[np.flatnonzero(ones), ids >> 5] >> (ids & 31).astype(np.uint32)) & 1).all():
        raise _Rejected("its single-token ids disagree with its masks")
    for e in vocab.eos_token_ids:
        eos = ((masks[:, e >> 5] >> np.uint32(e & 31)) & 1).astype(bool)
        if not np.array_equal(eos[classes], accepting):
            raise _Rejected("its masks' EOS bits disagree with its accepting states")


def _parse(members: dict[str, bytes], key: CacheKey, vocab: Vocabulary, secret: bytes) -> tuple[ByteDFA, dict[str, Any], dict[str, np.ndarray]]:
    mac = members.pop("mac", None)
    if mac is None or not hmac.compare_digest(mac, _mac(secret, members)):
        raise _Rejected("its HMAC does not match its contents (written with another key, or altered)")
    names = set(members)
    if not (_REQUIRED <= names and (names - _REQUIRED in (set(), _EAGER))):
        raise _Rejected(f"it holds the arrays {sorted(names)}")
    a = {name: _parse_npy(name, raw) for name, raw in members.items()}
    if a["key"].tobytes() != key.payload.encode():
        raise _Rejected("it was written for another constraint, options, vocabulary or corral version")
    _check_arrays(a, vocab)
    try:
        meta = json.loads(a["meta"].tobytes().decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise _Rejected("its stats are not JSON") from e
    _check_meta(meta, a["trans"].shape[0])
    dfa = ByteDFA(a["trans"], a["accepting"], int(a["start"]))
    return dfa, meta, a


def load(directory: Path, key: CacheKey, vocab: Vocabulary, max_bytes: int) -> tuple[DFAProgram, dict[str, Any]] | None:
    """The cached program (automaton and masks) and stats for ``key``, or ``None`` (compile afresh).

    Parameters
    ----------
    directory:
        The cache folder.
    key:
        From :func:`cache_key`.
    vocab:
        The vocabulary the entry must be for.
    max_bytes:
        Memory budget of the masks (``mask_cache_bytes``).

    Returns
    -------
    tuple or None
        ``(program, stats_dict)`` when the entry exists and passes every check in the module
        docstring; ``None`` when there is none or it is rejected (a :class:`~corral.errors.CorralWarning`
        then says why; :func:`store` overwrites it).
    """
    path = directory / f"{key.hex}.npz"
    if not path.exists():
        return None
    try:
        secret = _secret(directory, create=False)
        if secret is None:
            raise _Rejected(f"the cache folder's key file {directory / _KEY_FILE} is missing")
        max_states = key.options.get("max_states", DEFAULT_MAX_STATES)
        limit = 2 * int(max_bytes) + 1100 * int(max_states) + (1 << 20) + 4 * len(key.payload)
        dfa, meta, a = _parse(_read_members(path, limit), key, vocab, secret)
    except _Rejected as e:
        _warn(f"corral: ignoring cache entry {path}: {e}; recompiling and overwriting it")
        return None
    pre = (a["classes"], a["masks"], a["counts"], a["single"]) if "masks" in a else None
    return dfa_program(dfa, vocab, max_bytes=max_bytes, precomputed=pre), meta


def store(directory: Path, key: CacheKey, program: DFAProgram, meta: dict[str, Any]) -> None:
    """Write an entry atomically, signed with the folder's secret.

    Errors writing the cache are ignored (it is only a cache); a key file that cannot be trusted
    means nothing is written, with a :class:`~corral.errors.CorralWarning`.

    Parameters
    ----------
    directory:
        The cache folder (created when absent).
    key:
        From :func:`cache_key`.
    program:
        The compiled automaton and its masks (stored when compiling computed them all).
    meta:
        The compile stats, as a dict of :class:`~corral.CompileStats` fields.
    """
    dfa = program.dfa
    arrays: dict[str, np.ndarray] = {
        "key": np.frombuffer(key.payload.encode(), dtype=np.uint8),
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "trans": dfa.trans.astype(np.int32, copy=False),
        "accepting": dfa.accepting.astype(np.bool_, copy=False),
        "start": np.array(dfa.start, dtype=np.int64),
    }
    table = program.table
    if table is not None:
        arrays.update(
            classes=program.classes.astype(np.int64, copy=False), masks=table.masks.astype(np.uint32, copy=False),
            counts=table.counts.astype(np.int64, copy=False), single=table.single.astype(np.int64, copy=False),
        )
    store_arrays(directory, key, arrays)


def load_arrays(
    directory: Path, key: CacheKey, spec: dict[str, tuple[np.dtype[Any], int]], size_limit: int
) -> dict[str, np.ndarray] | None:
    """The arrays of the entry for ``key`` (any kind: grammars and schemas), or ``None``.

    Checks 1 and 2 of the module docstring (HMAC under the folder's secret, full key stored inside)
    and each array's exact dtype and rank from ``spec``; the caller checks shapes and ranges (for
    grammars, :func:`corral.compiler.artifact.program_from_members`) before any kernel sees them.

    Parameters
    ----------
    directory:
        The cache folder.
    key:
        From :func:`cache_key`.
    spec:
        Member name -> (dtype, rank); it must include ``"key"``.
    size_limit:
        Entries larger than this many bytes are rejected unread.

    Returns
    -------
    dict or None
        Member name -> array; ``None`` when there is no entry or it is rejected (a
        :class:`~corral.errors.CorralWarning` then says why).
    """
    path = directory / f"{key.hex}.npz"
    if not path.exists():
        return None
    try:
        a = _load_arrays(path, directory, key, spec, size_limit)
    except _Rejected as e:
        reject(path, str(e))
        return None
    return a


def _load_arrays(
    path: Path, directory: Path, key: CacheKey, spec: dict[str, tuple[np.dtype[Any], int]], size_limit: int
) -> dict[str, np.ndarray]:
    secret = _secret(directory, create=False)
    if secret is None:
        raise _Rejected(f"the cache folder's key file {directory / _KEY_FILE} is missing")
    members = _read_members(path, size_limit, set(spec))
    mac = members.pop("mac", None)
    if mac is None or not hmac.compare_digest(mac, _mac(secret, members)):
        raise _Rejected("its HMAC does not match its contents (written with another key, or altered)")
    if set(members) != set(spec):
        raise _Rejected(f"it holds the arrays {sorted(members)}")
    a = {name: _parse_npy(name, raw, spec) for name, raw in members.items()}
    if a["key"].tobytes() != key.payload.encode():
        raise _Rejected("it was written for another constraint, options, vocabulary or corral version")
    return a


def reject(path: Path, why: str) -> None:
    """Warn that the entry at ``path`` is ignored (it will be recompiled and overwritten).

    Parameters
    ----------
    path:
        The entry's file.
    why:
        What check it failed.
    """
    _warn(f"corral: ignoring cache entry {path}: {why}; recompiling and overwriting it")


def store_arrays(directory: Path, key: CacheKey, arrays: dict[str, np.ndarray]) -> None:
    """Write an entry of any kind atomically, signed with the folder's secret (see :func:`store`).

    Parameters
    ----------
    directory:
        The cache folder (created when absent).
    key:
        From :func:`cache_key`; its payload must already be ``arrays["key"]``.
    arrays:
        Member name -> array (``allow_pickle=False`` dtypes only).
    """
    try:
        secret = _secret(directory, create=True)
    except _Rejected as e:
        _warn(f"corral: not using the disk cache in {directory}: {e}")
        return
    except OSError:
        return
    if secret is None:  # created and removed again by someone else in between: skip this time
        return
    members = {name: _npy(arr) for name, arr in arrays.items()}
    members["mac"] = _mac(secret, members)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
                for name, raw in members.items():
                    z.writestr(name, raw)
            os.replace(tmp, directory / f"{key.hex}.npz")
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
