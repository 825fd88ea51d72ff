import re

import pytest

pytest_plugins = ["pytester"]


def assert_tasks(result: pytest.RunResult, *, up_to_date: int = 0, **outcomes: int) -> None:
    """pytest's closing counts, with up-to-date tasks in their own category ("3 up to date").

    ``assert_outcomes`` cannot see that category (its parser reads one word per count), so it is
    checked from the closing line here, and everything else by ``assert_outcomes``.
    """
    result.assert_outcomes(**outcomes)
    closing = next(line for line in reversed(result.outlines) if re.search(r" in [\d.]+s", line))
    found = re.search(r"(\d+) up to date", closing)
    assert (int(found.group(1)) if found else 0) == up_to_date, closing


@pytest.fixture(autouse=True)
def _no_outer_xdist_environment(monkeypatch):
    """The suite itself runs on xdist workers (pyproject addopts); the pytest sessions a test starts
    must not inherit the outer worker's identity, or they would take themselves for a worker."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
