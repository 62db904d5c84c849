"""Test options: `--slow` runs the robustness suite at nightly size (>= 1,000 generated graphs per pass).

Without `--slow` the generated cases are derandomized (Hypothesis draws the same examples every run), so
`make test` is reproducible and a red CI means a change broke something; `--slow` draws fresh examples
each run, which is where new bugs are found (then pinned as regression tests).

The robustness tests count the cases they try in `robustness.CASES`; the terminal summary reports
them, so a CI log shows how much was actually checked (failures fail the run: the count is of cases
that passed).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="nightly-size robustness runs (>= 1,000 graphs per pass)")


def pytest_configure(config: pytest.Config) -> None:
    import robustness

    robustness.SLOW = bool(config.getoption("--slow"))
    if not robustness.SLOW:
        from hypothesis import settings

        settings.register_profile("reproducible", derandomize=True, database=None)
        settings.load_profile("reproducible")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    import robustness

    if robustness.CASES:
        terminalreporter.section("robustness")
        for name, count in sorted(robustness.CASES.items()):
            terminalreporter.write_line(f"{name:<40} {count:>6} cases checked against the interpreter, 0 mismatches")
