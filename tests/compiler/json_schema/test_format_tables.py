"""The format automata shipped with corral (``format_tables.npz``) are exactly the ones corral
builds today; a stale table is never used."""

from __future__ import annotations

import pytest

from corral.compiler.json_schema import format_tables
from corral.compiler.json_schema.formats import FORMATS
from corral.compiler.json_schema.scalars import build_format_dfa

REGENERATE = "run `python -m corral.compiler.json_schema.format_tables` and commit format_tables.npz"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_shipped_table_is_the_built_automaton(name: str) -> None:
    shipped = format_tables.load(name)
    assert shipped is not None, f"no current table for format {name!r}: {REGENERATE}"
    built = build_format_dfa(name)
    assert shipped.start == built.start, REGENERATE
    assert shipped.trans.shape == built.trans.shape and (shipped.trans == built.trans).all(), REGENERATE
    assert (shipped.accepting == built.accepting).all(), REGENERATE
    assert not shipped.trans.flags.writeable  # shared by every schema of the process


def test_a_table_from_another_source_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    assert format_tables.load("date") is not None
    monkeypatch.setattr(format_tables, "TABLES_VERSION", format_tables.TABLES_VERSION + 1)
    assert format_tables.load("date") is None  # the caller builds it instead
    monkeypatch.setattr(format_tables, "TABLES_VERSION", format_tables.TABLES_VERSION - 1)
    monkeypatch.setattr(format_tables, "format_pattern", lambda name: "[0-9]+")  # another pattern
    assert format_tables.load("date") is None


def test_a_missing_or_damaged_archive_means_building(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    damaged = Path(str(tmp_path)) / "format_tables.npz"
    damaged.write_bytes(b"not a zip archive")
    for path in (damaged, Path(str(tmp_path)) / "absent.npz"):
        monkeypatch.setattr(format_tables, "PATH", path)
        assert format_tables.load("date") is None


def test_tables_are_stored_by_byte_class_and_a_bad_class_map_means_building(
        monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import numpy as np
    from pathlib import Path

    with np.load(format_tables.PATH, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert arrays["hostname/trans"].shape[1] < 16  # 24k states over a few byte classes, not 256 columns
    arrays["date/byte_class"] = np.full(256, arrays["date/trans"].shape[1], dtype=np.int16)  # past the columns
    bad = Path(str(tmp_path)) / "format_tables.npz"
    np.savez_compressed(bad, **arrays)  # type: ignore[arg-type]
    monkeypatch.setattr(format_tables, "PATH", bad)
    assert format_tables.load("date") is None
    assert format_tables.load("time") is not None
