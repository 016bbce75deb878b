"""On-disk cache of compiled grammars.

Entries are keyed by (corral version, constraint kind, source, options, vocabulary hash) and hold
the automaton and, for eager mask stores, every mask, as a ``.npz`` file (no pickle: loading a
cache file cannot run code). A file that cannot be read is ignored and rewritten.

The directory is ``$CORRAL_CACHE_DIR`` when set, else ``~/.cache/corral``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from corral.compiler.automaton import ByteDFA
from corral.compiler.maskstore import DFAMaskStore
from corral.compiler.vocabulary import Vocabulary

__all__ = ["default_cache_dir", "cache_key", "load", "store"]

_FORMAT = 2


def default_cache_dir() -> Path:
    """``$CORRAL_CACHE_DIR``, else ``~/.cache/corral``."""
    env = os.environ.get("CORRAL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "corral"


def cache_key(kind: str, source: str, options: dict[str, Any], vocab: Vocabulary) -> str:
    """The hex key of a compiled grammar."""
    from corral import __version__

    payload = json.dumps(
        {"format": _FORMAT, "corral": __version__, "kind": kind, "source": source, "options": options, "vocab": vocab.hash},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def load(directory: Path, key: str, vocab: Vocabulary, max_bytes: int) -> tuple[ByteDFA, DFAMaskStore, dict[str, Any]] | None:
    """The cached automaton, mask store and stats for ``key``, or ``None``."""
    path = directory / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            dfa = ByteDFA(z["trans"].astype(np.int32), z["accepting"].astype(bool), int(z["start"]))
            meta = json.loads(str(z["meta"]))
            pre = (z["classes"], z["masks"], z["counts"], z["single"]) if "masks" in z.files else None
    except Exception:  # a truncated or foreign file: recompile
        return None
    store_ = DFAMaskStore(dfa, vocab, max_bytes=max_bytes, precomputed=pre)
    return dfa, store_, meta


def store(directory: Path, key: str, dfa: ByteDFA, mask_store: DFAMaskStore, meta: dict[str, Any]) -> None:
    """Write an entry atomically (errors writing the cache are ignored: it is only a cache)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "trans": dfa.trans,
            "accepting": dfa.accepting,
            "start": np.array(dfa.start),
            "meta": np.array(json.dumps(meta)),
        }
        exported = mask_store.export()
        if exported is not None:
            arrays.update(classes=exported[0], masks=exported[1], counts=exported[2], single=exported[3])
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, directory / f"{key}.npz")
    except OSError:
        pass
