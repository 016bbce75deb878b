"""The ``corral`` command line: check constraints before they reach a model, sample, generate.

::

    corral check FILE... [--kind K] [--format text|json] [--tokenizer PATH] [--examples PATH]
    corral sample FILE [-n N] [--seed S] [--max-bytes L]
    corral compile FILE --tokenizer PATH
    corral generate --regex PATTERN [--model ID] [--max-new-tokens N] PROMPT

Exit status: 0 when nothing is wrong, 1 when errors were found, 2 for a usage error.

A ``.regex`` or ``.txt`` file holds one pattern; its trailing newlines are not part of it (write
``\\n`` for a newline the output must end with). Context-free grammars (``.lark``, ``.gbnf``) and
JSON Schemas (``.json``) are recognised but cannot be compiled by this version of corral: checking
them reports exactly that, as an error.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["main", "Diagnostic"]

KINDS = {".regex": "regex", ".txt": "regex", ".lark": "lark", ".gbnf": "gbnf", ".json": "json"}


@dataclass
class Diagnostic:
    """One finding: where, how bad, what."""

    path: str
    line: int
    column: int
    severity: str  # "error", "warning" or "info"
    message: str
    source_line: str = ""
    length: int = 1

    def render(self) -> str:
        """``path:line:column: severity: message``, then the source line and a caret marker."""
        head = f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if not self.source_line:
            return head
        width = max(1, min(self.length, len(self.source_line) - self.column + 1))
        marker = " " * (self.column - 1) + "^" + "~" * (width - 1)
        return f"{head}\n  {self.source_line}\n  {marker}"


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


def _kind_of(path: str, forced: str | None) -> str:
    if forced:
        return forced
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise UsageError(
            f"cannot tell what {path} holds from its extension; pass --kind regex|lark|gbnf|json"
        )
    return kind


def _read_pattern(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return text.rstrip("\r\n")


def _load_tokenizer(spec: str) -> Any:
    from transformers import AutoTokenizer

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


def _shortest_prefixes(dfa: Any) -> dict[int, bytes]:
    """A shortest byte string reaching each DFA state (BFS)."""
    seen = {dfa.start: b""}
    queue = deque([dfa.start])
    while queue:
        s = queue.popleft()
        row = dfa.trans[s]
        for b in np.flatnonzero(row >= 0):
            t = int(row[b])
            if t not in seen:
                seen[t] = seen[s] + bytes([int(b)])
                queue.append(t)
    return seen


def _example_items(spec: str) -> list[tuple[str, str, bool]]:
    """(name, text, expected valid) from a JSONL file or a directory of files."""
    p = Path(spec)
    if p.is_dir():
        return [
            (str(f), f.read_text(encoding="utf-8"), not f.name.startswith("invalid"))
            for f in sorted(p.iterdir())
            if f.is_file()
        ]
    if not p.exists():
        raise UsageError(f"{spec}: no such file or directory")
    items = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{spec}:{i}: not JSON ({e.msg})") from None
        if isinstance(obj, str):
            obj = {"text": obj}
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise UsageError(f'{spec}:{i}: expected {{"text": "...", "valid": true}} or a JSON string')
        items.append((f"{spec}:{i}", obj["text"], bool(obj.get("valid", True))))
    return items


def _line_col(text: str, char_index: int) -> tuple[int, int, str]:
    line = text.count("\n", 0, char_index) + 1
    start = text.rfind("\n", 0, char_index) + 1
    end = text.find("\n", char_index)
    return line, char_index - start + 1, text[start : end if end >= 0 else len(text)]


def check_file(
    path: str, kind: str, *, tokenizer: Any = None, examples: str | None = None
) -> tuple[list[Diagnostic], dict[str, Any]]:
    """Check one constraint file; return its diagnostics and statistics."""
    from corral import CorralError, GrammarError, Vocabulary, compile_regex
    from corral.compiler.regex import regex_to_dfa

    diags: list[Diagnostic] = []
    stats: dict[str, Any] = {"path": path, "kind": kind}
    if kind != "regex":
        what = {"lark": "Lark grammars", "gbnf": "GBNF grammars", "json": "JSON Schemas"}[kind]
        diags.append(Diagnostic(path, 1, 1, "error", f"{what} are not supported by this version of corral (only regexes)"))
        return diags, stats
    pattern = _read_pattern(path)
    try:
        dfa = regex_to_dfa(pattern)
    except GrammarError as e:
        line, col = e.line or 1, e.column or 1
        src = pattern.split("\n")[line - 1] if pattern else ""
        diags.append(Diagnostic(path, line, col, "error", e.message, src, e.length))
        return diags, stats
    except CorralError as e:
        diags.append(Diagnostic(path, 1, 1, "error", str(e)))
        return diags, stats
    stats["states"] = dfa.n_states
    if tokenizer is not None:
        from corral.compiler.maskstore import token_trie

        vocab = Vocabulary.from_hf(tokenizer)
        t0 = time.perf_counter()
        token_trie(vocab)  # per-vocabulary work, shared by every grammar: timed apart
        t1 = time.perf_counter()
        grammar = compile_regex(pattern, vocab)
        stats.update(
            vocabulary_trie_ms=round((t1 - t0) * 1000, 2),
            compile_ms=round((time.perf_counter() - t1) * 1000, 2),
            cached_states=grammar.stats.cached_states,
            eager=grammar.stats.eager,
            mask_store_bytes=grammar.stats.mask_bytes,
            vocabulary=vocab.name,
        )
        prefixes = _shortest_prefixes(dfa)
        stuck = [s for s in sorted(prefixes) if grammar.store.count(s) == 0]
        for s in stuck[:5]:
            example = prefixes[s].decode("utf-8", errors="backslashreplace")
            diags.append(
                Diagnostic(
                    path, 1, 1, "warning",
                    f"after {example!r} no token of the vocabulary can continue: the model can never "
                    "complete such text",
                )
            )
        if len(stuck) > 5:
            diags.append(Diagnostic(path, 1, 1, "warning", f"{len(stuck) - 5} more such dead ends"))
    if examples is not None:
        for name, text, valid in _example_items(examples):
            data = text.encode("utf-8")
            s = dfa.start
            bad_at = None
            for i, b in enumerate(data):
                s = int(dfa.trans[s, b])
                if s < 0:
                    bad_at = i
                    break
            accepted = bad_at is None and bool(dfa.accepting[s])
            if accepted == valid:
                continue
            if valid:
                if bad_at is None:
                    msg = "example is incomplete: the text ends before the pattern is satisfied"
                    char_index = len(text)
                else:
                    char_index = len(data[:bad_at].decode("utf-8", errors="ignore"))
                    msg = f"example is rejected at {text[char_index:char_index + 1]!r}"
                line, col, src = _line_col(text, char_index)
                diags.append(Diagnostic(name, line, col, "error", msg, src))
            else:
                diags.append(Diagnostic(name, 1, 1, "error", "example marked invalid is accepted"))
    return diags, stats


def _random_string(dfa: Any, rng: random.Random, max_bytes: int) -> bytes:
    """A random walk: uniform over stopping and each distinct next state; heads home past max_bytes."""
    dist = _distance_to_accept(dfa)
    out = bytearray()
    s = dfa.start
    while True:
        row = dfa.trans[s]
        targets = sorted({int(t) for t in row if t >= 0})
        if len(out) >= max_bytes:
            if dfa.accepting[s]:
                return bytes(out)
            targets = [t for t in targets if dist[t] < dist[s]]
        choices: list[int | None] = list(targets)
        if dfa.accepting[s]:
            choices.append(None)
        pick = rng.choice(choices)
        if pick is None:
            return bytes(out)
        b = rng.choice([int(x) for x in np.flatnonzero(row == pick)])
        out.append(b)
        s = pick


def _distance_to_accept(dfa: Any) -> list[int]:
    n = dfa.n_states
    dist = [10**9] * n
    rev: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        for t in set(int(x) for x in dfa.trans[s] if x >= 0):
            rev[t].append(s)
    queue = deque(s for s in range(n) if dfa.accepting[s])
    for s in queue:
        dist[s] = 0
    while queue:
        t = queue.popleft()
        for s in rev[t]:
            if dist[s] > dist[t] + 1:
                dist[s] = dist[t] + 1
                queue.append(s)
    return dist


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    tokenizer = _load_tokenizer(args.tokenizer) if args.tokenizer else None
    all_diags: list[Diagnostic] = []
    all_stats = []
    for path in args.files:
        diags, stats = check_file(path, _kind_of(path, args.kind), tokenizer=tokenizer, examples=args.examples)
        all_diags += diags
        all_stats.append(stats)
    errors = sum(d.severity == "error" for d in all_diags)
    if args.format == "json":
        json.dump({"diagnostics": [asdict(d) for d in all_diags], "stats": all_stats, "errors": errors}, out, indent=2)
        out.write("\n")
    else:
        for d in all_diags:
            out.write(d.render() + "\n")
        for st in all_stats:
            if len(st) > 2:
                items = ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("path", "kind"))
                out.write(f"{st['path']}: {st['kind']}: {items}\n")
        warnings = sum(d.severity == "warning" for d in all_diags)
        out.write(f"{len(args.files)} file(s) checked: {errors} error(s), {warnings} warning(s)\n")
    return 1 if errors else 0


def _cmd_sample(args: argparse.Namespace, out: TextIO) -> int:
    from corral import CorralError
    from corral.compiler.regex import regex_to_dfa

    kind = _kind_of(args.file, args.kind)
    if kind != "regex":
        raise UsageError(f"sampling {kind} files is not supported by this version (only regexes)")
    try:
        dfa = regex_to_dfa(_read_pattern(args.file))
    except CorralError as e:
        out.write(f"{args.file}: error: {e}\n")
        return 1
    rng = random.Random(args.seed)
    for _ in range(args.n):
        out.write(json.dumps(_random_string(dfa, rng, args.max_bytes).decode("utf-8"), ensure_ascii=False) + "\n")
    return 0


def _cmd_compile(args: argparse.Namespace, out: TextIO) -> int:
    from corral import CorralError, Vocabulary, compile_regex
    from corral.compiler.cache import default_cache_dir

    kind = _kind_of(args.file, args.kind)
    if kind != "regex":
        raise UsageError(f"compiling {kind} files is not supported by this version (only regexes)")
    vocab = Vocabulary.from_hf(_load_tokenizer(args.tokenizer))
    t0 = time.perf_counter()
    try:
        grammar = compile_regex(_read_pattern(args.file), vocab, cache=True)
    except CorralError as e:
        out.write(f"{args.file}: error: {e}\n")
        return 1
    st = grammar.stats
    out.write(
        f"{args.file}: {st.states} states, {st.cached_states} masks stored ({st.mask_bytes} bytes), "
        f"ready in {(time.perf_counter() - t0) * 1000:.1f} ms; cache: {default_cache_dir()}\n"
    )
    return 0


def _cmd_generate(args: argparse.Namespace, out: TextIO) -> int:
    import corral

    if args.model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(args.model)
        tok = AutoTokenizer.from_pretrained(args.model)
    else:
        from corral.integrations.packaged import load_smollm2

        try:
            model, tok = load_smollm2()
        except corral.CorralError as e:
            raise UsageError(str(e)) from None
    try:
        result = corral.generate(model, tok, args.prompt, regex=args.regex, max_new_tokens=args.max_new_tokens)
    except corral.CorralError as e:
        out.write(f"error: {e}\n")
        return 1
    out.write(result.text + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="corral", description="Check, sample and run corral constraints.")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="validate constraint files and report every problem")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--kind", choices=sorted(set(KINDS.values())))
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument("--tokenizer", help="compile against this tokenizer (path, hub id, or 'smollm2') and print statistics")
    c.add_argument("--examples", help="JSONL of {\"text\", \"valid\"} or a directory of example files")
    s = sub.add_parser("sample", help="print random strings of the constraint's language")
    s.add_argument("file", metavar="FILE")
    s.add_argument("-n", type=int, default=5)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--max-bytes", type=int, default=40, help="after this many bytes, head for the shortest completion")
    s.add_argument("--kind", choices=sorted(set(KINDS.values())))
    k = sub.add_parser("compile", help="compile against a tokenizer and store the result in the disk cache")
    k.add_argument("file", metavar="FILE")
    k.add_argument("--tokenizer", required=True, help="path, hub id, or 'smollm2'")
    k.add_argument("--kind", choices=sorted(set(KINDS.values())))
    g = sub.add_parser("generate", help="run a constrained generation")
    g.add_argument("prompt")
    g.add_argument("--regex", required=True)
    g.add_argument("--model", default=None, help="hub id or path (default: the packaged SmolLM2-135M-Instruct)")
    g.add_argument("--max-new-tokens", type=int, default=64)
    return ap


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status (0 clean, 1 errors found, 2 usage error)."""
    out = sys.stdout if out is None else out
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage message
        return 0 if e.code == 0 else 2
    try:
        if args.command == "check":
            return _cmd_check(args, out)
        if args.command == "sample":
            return _cmd_sample(args, out)
        if args.command == "compile":
            return _cmd_compile(args, out)
        return _cmd_generate(args, out)
    except UsageError as e:
        sys.stderr.write(f"corral: error: {e}\n")
        return 2


def console_main() -> None:
    """Entry point of the ``corral`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
