"""Run the JSON Schema Test Suite against :func:`corral.compile_json_schema`.

The suite (a copy in ``tests/data/json-schema-test-suite``) is a list of files; each file holds
cases (a schema and a description), each case holds tests (an instance and whether it is
``valid``). For a constrained decoder a test asks: may the model write this instance? So every
schema is compiled once per case (``whitespace="flexible"``; ``property_order="any"``, since the
suite lists an instance's keys in no particular order; the suite's ``remotes/`` as ``registry``,
under the ``http://localhost:1234/`` URIs its tests use; the Llama-3 vocabulary), each instance
is serialised with ``json.dumps(instance)`` (default separators, ``ensure_ascii=True``) and fed to
the grammar's byte-level recognizer, and the answer is compared with ``valid``. Each test gets one
verdict:

``pass``
    corral accepts exactly when the suite says the instance is valid.
``fail-fp``
    corral accepts an invalid instance: a false positive, the worst outcome (the model could write
    output the schema forbids). Never allowed.
``fail-fn``
    corral rejects a valid instance (the model could not write it).
``unsupported``
    compiling raised :class:`corral.UnsupportedSchemaError` (also for ``$ref`` s to documents that
    are neither in the schema nor in ``remotes/``, such as the official metaschemas).
``error``
    compiling raised another :class:`corral.CorralError` (the message is recorded).
``crash``
    anything else raised: a bug. Never allowed.

For a deterministic ~10% sample of the tests (chosen by a hash of the test id) the instance is
also decided token by token under the real Llama-3 tokenizer (``Matcher.accept_token`` over the
tokenizer's own encoding, then ``is_accepting``), and for a ~2% sample every step is also checked
against ``Matcher.next_token_mask`` (an accepted token's bit is set, a refused token's bit is
clear). Disagreements are recorded on the result.

Each draft-7 schema gets ``"$schema": "http://json-schema.org/draft-07/schema#"`` at its root
(corral reads the draft from ``$schema``; the suite leaves it out); 2020-12 schemas are compiled as
written.

Tests are named ``draft/file/case description/test description`` (the file relative to the draft
folder, without ``.json``), e.g. ``draft7/optional/format/date/a valid date string/...``.

Usage::

    python -m tests.json_schema.conformance                  # per-file summary, both drafts
    python -m tests.json_schema.conformance --write-baseline # rewrite tests/data/json-schema-baseline.json
    python -m tests.json_schema.conformance --markdown       # the coverage table for docs/json_schema.md
    python -m tests.json_schema.conformance --details        # every failing test with its reason

``tests/json_schema/test_conformance.py`` runs the same thing as a ratchet against the baseline:
a test that passes in the baseline must keep passing; when corral improves, rewrite the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corral

SUITE = Path(__file__).resolve().parents[1] / "data" / "json-schema-test-suite"
BASELINE = Path(__file__).resolve().parents[1] / "data" / "json-schema-baseline.json"
DRAFTS = ("draft2020-12", "draft7")
SCHEMA_URI = {"draft7": "http://json-schema.org/draft-07/schema#"}
VERDICTS = ("pass", "fail-fp", "fail-fn", "unsupported", "error", "crash", "departure")
# Documented departures (docs/json_schema.md): tests where corral accepts what the suite's
# optional tests reject, on purpose. Each is listed in the summary; nothing else may be a false
# positive.
DEPARTURES = {
    "draft7/optional/content/": "draft 7 contentMediaType/contentEncoding are read as annotations, as in 2020-12",
}
TOKEN_SAMPLE = 10  # one test in TOKEN_SAMPLE is also decided token by token
MASK_SAMPLE = 50  # one test in MASK_SAMPLE also checks every step against the token mask
TOKENIZER = "llama3"
REMOTES_URI = "http://localhost:1234/"  # where the suite's tests expect remotes/ to be served


def remotes() -> dict[str, Any]:
    """The suite's ``remotes/`` documents by the URI its tests use (nothing is fetched)."""
    root = SUITE / "remotes"
    return {REMOTES_URI + p.relative_to(root).as_posix(): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(root.rglob("*.json"))}


@dataclass
class Result:
    """The verdict on one test of the suite."""

    test_id: str
    draft: str
    file: str  # relative to the draft folder, without .json (e.g. "optional/format/date")
    valid: bool
    verdict: str
    detail: str = ""  # the reason for unsupported / error / crash, or the instance for failures
    token_check: bool | None = None  # token-level decision agreed (None: not sampled)
    mask_check: bool | None = None  # every step agreed with the token mask (None: not sampled)
    instance: str = ""


@dataclass
class CaseTiming:
    """How long one case took (compile, then all its tests)."""

    case_id: str
    compile_seconds: float
    test_seconds: float


def suite_files(draft: str) -> list[Path]:
    """The draft's test files, sorted (core files, then optional/, then optional/format/)."""
    root = SUITE / draft
    return sorted(root.rglob("*.json"), key=lambda p: (len(p.relative_to(root).parts), str(p)))


def iter_cases(draft: str) -> Iterator[tuple[str, str, dict[str, Any], list[tuple[str, dict[str, Any]]]]]:
    """``(file, case_id, case, [(test_id, test), ...])`` for every case of ``draft``; ids unique."""
    seen: set[str] = set()

    def unique(name: str) -> str:
        out, n = name, 2
        while out in seen:
            out = f"{name} [{n}]"
            n += 1
        seen.add(out)
        return out

    root = SUITE / draft
    for path in suite_files(draft):
        rel = path.relative_to(root).with_suffix("").as_posix()
        for case in json.loads(path.read_text(encoding="utf-8")):
            case_id = unique(f"{draft}/{rel}/{case['description']}")
            tests = [(unique(f"{case_id}/{t['description']}"), t) for t in case["tests"]]
            yield rel, case_id, case, tests


def _sampled(test_id: str, every: int) -> bool:
    return zlib.crc32(test_id.encode("utf-8")) % every == 0


def _with_draft(schema: Any, draft: str) -> Any:
    uri = SCHEMA_URI.get(draft)
    if uri is None or not isinstance(schema, dict) or "$schema" in schema:
        return schema
    return {"$schema": uri, **schema}


def _crash_summary(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno} in {tb[-1].name}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _unsupported_detail(e: corral.UnsupportedSchemaError) -> str:
    problems = getattr(e, "problems", None)
    if problems:
        return "; ".join(f"{ptr or '/'}: {kw}: {why}" for ptr, kw, why in sorted(problems))
    return str(e)


def _mask_allows(mask: Any, token: int) -> bool:
    return bool((int(mask[token >> 5]) >> (token & 31)) & 1)


def _token_decision(grammar: Any, tokenizer: Any, text: str, check_mask: bool) -> tuple[bool, bool | None]:
    """Accept ``text`` token by token; returns (accepted, every step agreed with the mask)."""
    from tests.conftest import encode

    matcher = grammar.matcher()
    mask_ok: bool | None = True if check_mask else None
    accepted = True
    for t in encode(tokenizer, text):
        allowed = _mask_allows(matcher.next_token_mask(), t) if check_mask else None
        ok = matcher.accept_token(t)
        if check_mask and allowed != ok:
            mask_ok = False
        if not ok:
            accepted = False
            break
    return accepted and matcher.is_accepting(), mask_ok


def run_draft(
    draft: str,
    vocab: corral.Vocabulary,
    tokenizer: Any = None,
    timings: list[CaseTiming] | None = None,
) -> list[Result]:
    """Every test of ``draft`` with its verdict (token-level checks only when ``tokenizer`` is given)."""
    results: list[Result] = []
    registry = remotes()
    for rel, case_id, case, tests in iter_cases(draft):
        t0 = time.perf_counter()
        grammar = None
        verdict, detail = "", ""
        try:
            grammar = corral.compile_json_schema(_with_draft(case["schema"], draft), vocab, whitespace="flexible",
                                                 property_order="any", registry=registry)
        except corral.UnsupportedSchemaError as e:
            verdict, detail = "unsupported", _unsupported_detail(e)
        except corral.GrammarError as e:
            if "accepts no value" in str(e):
                verdict, detail = "empty", ""  # a schema nothing satisfies: every instance rejected
            else:
                verdict, detail = "error", f"{type(e).__name__}: {e}"
        except corral.CorralError as e:
            verdict, detail = "error", f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - a crash is a verdict, not an abort
            verdict, detail = "crash", _crash_summary(e)
        t1 = time.perf_counter()
        for test_id, test in tests:
            text = json.dumps(test["data"])
            valid = bool(test["valid"])
            r = Result(test_id, draft, rel, valid, verdict, detail, instance=text)
            results.append(r)
            if verdict == "empty":
                r.verdict, r.detail = ("fail-fn", "compile said the schema accepts nothing") if valid else ("pass", "")
                continue
            if grammar is None:
                continue
            try:
                m = grammar.matcher()  # the recogniser plus the run-time checks (uniqueItems)
                accepted = m.accept_bytes(text.encode("utf-8")) and m.is_accepting()
                if tokenizer is not None and _sampled(test_id, TOKEN_SAMPLE):
                    by_token, mask_ok = _token_decision(grammar, tokenizer, text, _sampled(test_id, MASK_SAMPLE))
                    r.token_check = by_token == accepted
                    r.mask_check = mask_ok
            except Exception as e:  # noqa: BLE001
                r.verdict, r.detail = "crash", _crash_summary(e)
                continue
            if accepted == valid:
                r.verdict = "pass"
            else:
                r.verdict = "fail-fp" if accepted else "fail-fn"
                if r.verdict == "fail-fp" and any(test_id.startswith(d) for d in DEPARTURES):
                    r.verdict, r.detail = "departure", DEPARTURES[next(d for d in DEPARTURES if test_id.startswith(d))]
        if timings is not None:
            timings.append(CaseTiming(case_id, t1 - t0, time.perf_counter() - t1))
    return results


def run_all(tokens: bool = True, timings: list[CaseTiming] | None = None) -> list[Result]:
    """Both drafts with the Llama-3 vocabulary (and token-level sampling when ``tokens``)."""
    from tests.conftest import tokenizer_and_vocab

    tokenizer, vocab = tokenizer_and_vocab(TOKENIZER)
    out: list[Result] = []
    for draft in DRAFTS:
        out += run_draft(draft, vocab, tokenizer if tokens else None, timings)
    return out


# -- reports ------------------------------------------------------------------------------------------
def baseline_of(results: list[Result]) -> dict[str, str]:
    """``{test_id: verdict}``, sorted by id."""
    return {r.test_id: r.verdict for r in sorted(results, key=lambda r: r.test_id)}


def load_baseline() -> dict[str, str]:
    """The checked-in baseline (empty when there is none yet)."""
    if not BASELINE.exists():
        return {}
    data: dict[str, str] = json.loads(BASELINE.read_text(encoding="utf-8"))
    return data


def write_baseline(results: list[Result]) -> None:
    """Rewrite ``tests/data/json-schema-baseline.json`` from ``results``."""
    BASELINE.write_text(json.dumps(baseline_of(results), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")


def per_file(results: list[Result], draft: str) -> dict[str, Counter[str]]:
    """Verdict counts per file of ``draft``, in suite order."""
    out: dict[str, Counter[str]] = {}
    for r in results:
        if r.draft == draft:
            out.setdefault(r.file, Counter())[r.verdict] += 1
    return out


def pass_rate(results: list[Result], draft: str, *, core_only: bool = False,
              exclude: tuple[str, ...] = ()) -> tuple[int, int]:
    """(passed, total) over ``draft``, optionally core files only and without the files ``exclude``."""
    sel = [r for r in results if r.draft == draft and r.file not in exclude
           and (not core_only or not r.file.startswith("optional/"))]
    return sum(r.verdict == "pass" for r in sel), len(sel)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "-"


def headline(results: list[Result]) -> list[str]:
    """The overall pass rates, one line each."""
    lines = []
    for draft in DRAFTS:
        for label, core in (("core", True), ("core+optional", False)):
            p, n = pass_rate(results, draft, core_only=core)
            q, m = pass_rate(results, draft, core_only=core, exclude=("uniqueItems",))
            lines.append(f"{draft} {label}: {p}/{n} pass ({_pct(p, n)}); "
                         f"without uniqueItems: {q}/{m} ({_pct(q, m)})")
    counts = Counter(r.verdict for r in results)
    lines.append("verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS))
    sampled = [r for r in results if r.token_check is not None]
    masked = [r for r in results if r.mask_check is not None]
    lines.append(f"token-level checks: {sum(bool(r.token_check) for r in sampled)}/{len(sampled)} agree; "
                 f"mask checks: {sum(bool(r.mask_check) for r in masked)}/{len(masked)} agree")
    return lines


def summary(results: list[Result]) -> str:
    """A plain-text table per draft: file, pass/total, and the other verdicts."""
    lines = []
    for draft in DRAFTS:
        lines.append(f"{draft}: {'file':<34} {'pass':>9} {'unsup':>6} {'fn':>4} {'fp':>4} {'err':>4} {'crash':>5}")
        for f, c in per_file(results, draft).items():
            n = sum(c.values())
            lines.append(f"  {f:<42} {c['pass']:>4}/{n:<4} {c['unsupported']:>6} {c['fail-fn']:>4} "
                         f"{c['fail-fp']:>4} {c['error']:>4} {c['crash']:>5}")
    return "\n".join(lines + headline(results))


def markdown(results: list[Result]) -> str:
    """The coverage table pasted into ``docs/json_schema.md``: per file, both drafts side by side."""
    tables = {d: per_file(results, d) for d in DRAFTS}
    files = list(tables["draft2020-12"])
    files += [f for f in tables["draft7"] if f not in files]
    core = sorted(f for f in files if not f.startswith("optional/"))
    optional = sorted(f for f in files if f.startswith("optional/"))

    def cell(draft: str, f: str) -> str:
        c = tables[draft].get(f)
        if c is None:
            return "n/a"
        n = sum(c.values())
        extra = []
        if c["unsupported"]:
            extra.append(f"{c['unsupported']} unsupp.")
        if c["fail-fn"]:
            extra.append(f"{c['fail-fn']} fn")
        if c["error"]:
            extra.append(f"{c['error']} err")
        if c["fail-fp"]:
            extra.append(f"**{c['fail-fp']} fp**")
        if c["crash"]:
            extra.append(f"**{c['crash']} crash**")
        return f"{c['pass']}/{n} ({_pct(c['pass'], n)})" + (f", {', '.join(extra)}" if extra else "")

    out = ["| test file | draft 2020-12 | draft 7 |", "| --- | --- | --- |"]
    for f in core + optional:
        out.append(f"| `{f}` | {cell('draft2020-12', f)} | {cell('draft7', f)} |")
    totals = []
    for label, core_only, excl in (("**all files**", False, ()), ("**core files**", True, ()),
                                   ("**all files except uniqueItems**", False, ("uniqueItems",)),
                                   ("**core files except uniqueItems**", True, ("uniqueItems",))):
        cells = []
        for d in DRAFTS:
            p, n = pass_rate(results, d, core_only=core_only, exclude=excl)
            cells.append(f"{p}/{n} ({_pct(p, n)})")
        totals.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(out + totals)


def details(results: list[Result]) -> str:
    """Every test that is not a pass, grouped by verdict, with its reason."""
    lines = []
    for v in VERDICTS[1:]:
        sel = [r for r in results if r.verdict == v]
        lines.append(f"== {v} ({len(sel)})")
        for r in sel:
            why = r.detail if v in ("unsupported", "error", "crash") else f"instance {r.instance[:120]}"
            lines.append(f"  {r.test_id}\n      {why}")
    bad = [r for r in results if r.token_check is False or r.mask_check is False]
    lines.append(f"== token-level disagreements ({len(bad)})")
    lines += [f"  {r.test_id} token={r.token_check} mask={r.mask_check}" for r in bad]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.json_schema.conformance", description=__doc__.split("\n")[0])
    parser.add_argument("--write-baseline", action="store_true", help=f"rewrite {BASELINE.name}")
    parser.add_argument("--markdown", action="store_true", help="print the coverage table for docs/json_schema.md")
    parser.add_argument("--details", action="store_true", help="print every non-passing test with its reason")
    parser.add_argument("--no-tokens", action="store_true", help="skip the token-level sample")
    parser.add_argument("--slowest", type=int, default=0, metavar="N", help="print the N slowest cases")
    args = parser.parse_args(argv)
    timings: list[CaseTiming] = []
    t0 = time.perf_counter()
    results = run_all(tokens=not args.no_tokens, timings=timings)
    elapsed = time.perf_counter() - t0
    if args.markdown:
        print(markdown(results))
    elif args.details:
        print(details(results))
    else:
        print(summary(results))
    if args.slowest:
        print(f"slowest cases (compile s, tests s), of {elapsed:.1f} s in all:")
        for t in sorted(timings, key=lambda t: -(t.compile_seconds + t.test_seconds))[: args.slowest]:
            print(f"  {t.compile_seconds:7.2f} {t.test_seconds:7.2f}  {t.case_id}")
    if args.write_baseline:
        write_baseline(results)
        print(f"wrote {BASELINE} ({len(results)} tests)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
