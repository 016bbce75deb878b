"""The automata of the JSON Schema ``format`` keywords, built once and shipped with corral.

Building a format's automaton (the JSON string literals whose value has that format: every
spelling, escapes included) takes from 2 ms (``json-pointer``) to 2.7 s (``iri-reference``):
large Unicode classes are determinised, then spelled as UTF-8 and JSON escapes. A process paid
that on the first schema that used the format, which made that schema's compile a stall. The
tables are stored in ``format_tables.npz`` beside this module (about 0.2 MB, one column per byte
class), made by::

    python -m corral.compiler.json_schema.format_tables

Each table is stored with the digest of what it was built from (:func:`source_key`: the format's
pattern, and :data:`TABLES_VERSION`, raised when the way string automata are built changes). A
table whose digest does not match is not used: the automaton is built as before. A test builds
every format again and compares it with the stored table, state for state.
"""

from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import numpy as np

from corral.compiler.automaton import ByteDFA, byte_columns
from corral.compiler.json_schema.formats import FORMATS, format_pattern

__all__ = ["PATH", "TABLES_VERSION", "load", "source_key", "write"]

PATH = Path(__file__).with_name("format_tables.npz")
"""Where the tables are shipped."""

TABLES_VERSION = 2
"""Raised whenever a change to the automaton construction (or to how tables are stored) changes
a format's table. 2: stored by byte class (``hostname``'s 24k states read 5 classes)."""

_lock = threading.Lock()


def source_key(name: str) -> str:
    """The digest a stored table of format ``name`` must carry to be used."""
    pattern = format_pattern(name) or ""
    return hashlib.sha256(f"{TABLES_VERSION}\0{name}\0{pattern}".encode()).hexdigest()


def load(name: str) -> ByteDFA | None:
    """Format ``name``'s stored automaton, or ``None`` when none is stored for its current
    source (then the caller builds it). Only that format's arrays are read. Tables are stored
    one column per byte class and widened here: ``hostname``'s 24k states unpacked to 24 MB
    from the archive (75 ms on its first use in a process); by class it is 0.5 MB. The arrays
    are read-only: the automaton is shared."""
    with _lock:
        try:
            with np.load(PATH, allow_pickle=False) as z:
                if f"{name}/key" not in z.files or str(z[f"{name}/key"]) != source_key(name):
                    return None
                compact, byte_class = z[f"{name}/trans"], z[f"{name}/byte_class"]
                accepting, start = z[f"{name}/accepting"], int(z[f"{name}/start"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # not shipped, or damaged: the format is built
            return None
    if byte_class.shape != (256,) or compact.ndim != 2 or compact.shape[0] != accepting.shape[0] or \
            int(byte_class.min()) < 0 or int(byte_class.max()) >= compact.shape[1]:
        return None  # damaged
    trans = np.take(compact.astype(np.int32, copy=False), byte_class.astype(np.intp), axis=1)  # (fancy indexing: 3x slower)
    trans.setflags(write=False)
    accepting.setflags(write=False)
    return ByteDFA(trans, accepting, start)


def write(path: Path = PATH) -> dict[str, int]:
    """Build every supported format's automaton and store them at ``path``; returns the
    states of each."""
    from corral.compiler.json_schema.scalars import build_format_dfa
    from corral.compiler.limits import Limits, budget_scope

    arrays: dict[str, np.ndarray] = {}
    states: dict[str, int] = {}
    with budget_scope(Limits(timeout=600.0)):
        for name in sorted(FORMATS):
            d = build_format_dfa(name)
            arrays[f"{name}/key"] = np.array(source_key(name))
            compact, byte_class = byte_columns(d)
            arrays[f"{name}/trans"] = np.ascontiguousarray(compact, dtype=np.int32)
            arrays[f"{name}/byte_class"] = byte_class.astype(np.int16)
            arrays[f"{name}/accepting"] = np.ascontiguousarray(d.accepting, dtype=np.bool_)
            arrays[f"{name}/start"] = np.array(d.start, dtype=np.int64)
            states[name] = d.n_states
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return states


if __name__ == "__main__":
    for fmt, n in write().items():
        print(f"{fmt:24s} {n:7d} states")
    print(f"wrote {PATH} ({PATH.stat().st_size / 1024:.0f} KiB)")
