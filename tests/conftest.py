import re

import pytest

# pytester's in-process runs drop the modules a run imported when it ends; PyYAML's C extension cannot
# be imported twice, so a second run would mix its cached classes with freshly imported ones ("could not
# determine a constructor for the tag None"). Importing it here keeps it in every snapshot. (An xdist
# worker of this suite never imports it itself: it gets the controller's plan already parsed.)
import yaml.cyaml  # noqa: F401

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


def handler_conftest(type_name: str, run_body: str, *, imports: str = "", keys: tuple[str, ...] = ()) -> str:
    """A conftest.py that adds one project handler type whose ``run`` is ``run_body`` (one line or more,
    indented by 8 spaces), for tests of how the core treats what a handler does."""
    return f'''{imports}
from pytest_orch.handler import Outcome


class ProjectHandler:
    keys = frozenset({list(keys)!r})
    version = "1"
    writes_files = False

    def validate(self, task):
        pass

    def inputs(self, task, ctx):
        return []

    def run(self, task, ctx):
{run_body}


def pytest_orch_handler_types():
    return {{{type_name!r}: ProjectHandler}}
'''
