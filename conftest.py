"""Repository-wide pytest hooks: they apply to tests/ and to the doctests of corral/ alike.

Under ``CI=true`` a skipped test is a failure (in CI a skipped oracle is an unchecked claim),
unless it is marked ``@pytest.mark.skip_everywhere(reason=...)`` for a reason that holds on every
machine.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "skip_everywhere(reason): the test may skip, for a reason that holds on every machine "
        "(CI included); any other skip fails the run under CI=true",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under ``CI=true`` a skipped test is a failure: in CI a skipped oracle is an unchecked claim.

    A test marked ``@pytest.mark.skip_everywhere(reason=...)`` may still skip.
    """
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") \
            and item.get_closest_marker("skip_everywhere") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"
