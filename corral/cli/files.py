"""What the commands read: constraint files and their kinds, example files, tokenizers; usage errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from corral._optional import require

__all__ = ["KINDS", "Progress", "UsageError", "example_items", "kind_of", "load_tokenizer", "read_pattern", "read_text"]

KINDS = {".regex": "regex", ".txt": "regex", ".lark": "lark", ".gbnf": "gbnf", ".json": "json"}


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


def kind_of(path: str, forced: str | None) -> str:
    if forced:
        return forced
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise UsageError(
            f"cannot tell what {path} holds from its extension; pass --kind regex|lark|gbnf|json"
        )
    return kind


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:  # permissions, a device, a name too long, ...
        raise UsageError(f"{path}: cannot be read ({e.strerror or e})") from None


def read_pattern(path: str) -> str:
    return read_text(path).rstrip("\r\n")


def load_tokenizer(spec: str) -> Any:
    _transformers = require("transformers", "corral (loading a tokenizer or model)")
    AutoTokenizer = _transformers.AutoTokenizer

    if spec == "smollm2":
        from corral import CorralError
        from corral.integrations.packaged import load_smollm2_tokenizer

        try:
            return load_smollm2_tokenizer()
        except CorralError as e:
            raise UsageError(str(e)) from None
    try:
        return AutoTokenizer.from_pretrained(spec)
    except Exception as e:  # transformers raises many types for a bad path or id
        raise UsageError(f"cannot load tokenizer {spec!r}: {e}") from None


def example_items(spec: str, *, instances: bool = False) -> list[tuple[str, str, bool]]:
    """(name, text, expected valid) from a JSONL file or a directory of files.

    With ``instances`` (JSON Schemas), a JSONL line may also be ``{"instance": <value>}``: the
    text is the value as :func:`json.dumps` writes it.
    """
    p = Path(spec)
    if p.is_dir():
        return [
            (str(f), read_text(str(f)), not f.name.startswith("invalid"))
            for f in sorted(p.iterdir())
            if f.is_file()
        ]
    if not p.exists():
        raise UsageError(f"{spec}: no such file or directory")
    items = []
    for i, line in enumerate(read_text(spec).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{spec}:{i}: not JSON ({e.msg})") from None
        if isinstance(obj, str):
            obj = {"text": obj}
        if instances and isinstance(obj, dict) and "instance" in obj and "text" not in obj:
            obj = {**obj, "text": json.dumps(obj["instance"], ensure_ascii=False)}
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            expected = '{"text": "...", "valid": true}' + (', {"instance": ..., "valid": true}' if instances else "")
            raise UsageError(f"{spec}:{i}: expected {expected} or a JSON string")
        items.append((f"{spec}:{i}", obj["text"], bool(obj.get("valid", True))))
    return items


class Progress:
    """A one-line progress bar on a terminal (``stream``, default stderr); silent when piped.

    Use as ``for x in Progress(items, "checking"):``. The bar is erased when the loop ends, so
    what the command prints stays plain.
    """

    def __init__(self, items: Any, label: str, *, stream: TextIO | None = None, total: int | None = None) -> None:
        self.items = list(items)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.total = total if total is not None else len(self.items)
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) and self.total > 1

    def _draw(self, done: int) -> None:
        width = 24
        filled = width * done // max(1, self.total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{' ' * (width - filled)}] {done}/{self.total}")
        self.stream.flush()

    def __iter__(self) -> Any:
        for i, x in enumerate(self.items):
            if self.enabled:
                self._draw(i)
            yield x
        if self.enabled:
            self._draw(self.total)
            self.stream.write("\r" + " " * (len(self.label) + 40) + "\r")
            self.stream.flush()
