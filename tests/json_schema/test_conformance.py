"""The JSON Schema Test Suite as a ratchet (see :mod:`tests.json_schema.conformance`).

Never allowed: a false positive (an invalid instance accepted) or a crash. The ratchet: every test
that passes in ``tests/data/json-schema-baseline.json`` still passes. When corral gets better,
rewrite the baseline with ``python -m tests.json_schema.conformance --write-baseline``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.json_schema.conformance import (
    DRAFTS,
    Result,
    headline,
    iter_cases,
    load_baseline,
    pass_rate,
    run_all,
    summary,
)


@pytest.fixture(scope="module")
def results() -> list[Result]:
    return run_all(tokens=True)


def _listing(rs: list[Result], limit: int = 40) -> str:
    lines = [f"  {r.test_id}: {r.verdict}: {(r.detail or r.instance)[:200]}" for r in rs[:limit]]
    if len(rs) > limit:
        lines.append(f"  ... and {len(rs) - limit} more")
    return "\n".join(lines)


def test_suite_ids_are_unique_and_match_baseline() -> None:
    ids = [tid for d in DRAFTS for _, _, _, tests in iter_cases(d) for tid, _ in tests]
    assert len(ids) == len(set(ids))
    baseline = load_baseline()
    assert baseline, "tests/data/json-schema-baseline.json is missing; run --write-baseline"
    assert set(baseline) == set(ids), "the baseline names other tests than the suite holds; rewrite it"


def test_no_false_positives(results: list[Result]) -> None:
    fp = [r for r in results if r.verdict == "fail-fp"]
    if fp:
        pytest.fail(f"{len(fp)} invalid instances accepted (false positives):\n{_listing(fp)}", pytrace=False)


def test_no_crashes(results: list[Result]) -> None:
    crashes = [r for r in results if r.verdict == "crash"]
    if crashes:
        pytest.fail(f"{len(crashes)} crashes:\n{_listing(crashes)}", pytrace=False)


def test_token_level_agrees_with_byte_level(results: list[Result]) -> None:
    sampled = [r for r in results if r.token_check is not None]
    assert len(sampled) > 100, "the token-level sample is unexpectedly small"
    bad = [r for r in results if r.token_check is False or r.mask_check is False]
    if bad:
        pytest.fail(f"{len(bad)} tests decided differently token by token:\n{_listing(bad)}", pytrace=False)


def test_ratchet_baseline_passes_still_pass(results: list[Result]) -> None:
    baseline = load_baseline()
    now = {r.test_id: r for r in results}
    regressed = [now[t] for t, v in baseline.items() if v == "pass" and t in now and now[t].verdict != "pass"]
    if regressed:
        pytest.fail(f"{len(regressed)} tests that pass in the baseline no longer pass:\n{_listing(regressed)}",
                    pytrace=False)


def test_conformance_summary(results: list[Result], capsys: pytest.CaptureFixture[str]) -> None:
    baseline = load_baseline()
    improved = [r.test_id for r in results if r.verdict == "pass" and baseline.get(r.test_id) != "pass"]
    p, n = pass_rate(results, "draft2020-12", exclude=("uniqueItems",))
    assert n > 0
    with capsys.disabled():
        print("\n" + summary(results))
        print(f"draft 2020-12 pass rate without uniqueItems (optional files included): {p}/{n} = {100 * p / n:.1f}%")
        if improved:
            print(f"{len(improved)} tests pass that the baseline does not record as passing: "
                  "rewrite it with `python -m tests.json_schema.conformance --write-baseline`")
    counts = Counter(r.verdict for r in results)
    assert sum(counts.values()) == len(results)
    assert headline(results)
