"""A project's own handler types arrive through the pytest_orch_handler_types hook."""

import pytest

from conftest import assert_tasks

# The README shows this same handler: keep the two in step.
PROJECT_HANDLER = '''
from pathlib import Path

from pytest_orch.errors import PlanError
from pytest_orch.handler import Outcome
from pytest_orch.fileio import atomic_write, unified_diff


class ChangelogHandler:
    """Adds a line to CHANGELOG.md unless it is there already."""

    keys = frozenset({"entry"})
    version = "1"
    writes_files = True

    def validate(self, task):
        if not isinstance(task.params.get("entry"), str):
            raise PlanError(task.loc_of("entry"), f"task {task.id!r}: entry must be a string")

    def inputs(self, task, ctx):
        path = ctx.resolve("CHANGELOG.md")
        return [path] if path.exists() else []

    def run(self, task, ctx):
        path = ctx.resolve("CHANGELOG.md")
        old = path.read_text() if path.exists() else ""
        line = f"- {task.params['entry']}\\n"
        if line in old:
            return Outcome("up_to_date", message="CHANGELOG.md already has the entry")
        new = old + line
        if not ctx.dry_run:
            atomic_write(path, new)
        return Outcome("passed", changed=["CHANGELOG.md"], diff=unified_diff("CHANGELOG.md", old, new))


def pytest_orch_handler_types():
    return {"changelog": ChangelogHandler}
'''

PLAN = """
phase: 1
groups:
  - id: docs
    tasks:
      - {id: "1.1", type: changelog, entry: "Coverage thresholds enforced"}
"""


def test_project_handler_from_conftest_runs_like_a_builtin(pytester):
    pytester.makeconftest(PROJECT_HANDLER)
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    pytester.runpytest().assert_outcomes(passed=1)
    assert (pytester.path / "CHANGELOG.md").read_text() == "- Coverage thresholds enforced\n"
    assert_tasks(pytester.runpytest(), up_to_date=1)  # nothing left to change
    assert (pytester.path / "CHANGELOG.md").read_text() == "- Coverage thresholds enforced\n"


def test_project_handler_keys_are_validated(pytester):
    pytester.makeconftest(PROJECT_HANDLER)
    pytester.makefile(".yaml", **{"phases/p1": PLAN.replace("entry:", "entri:")})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*phases/p1.yaml:5: unknown key 'entri' in task '1.1'; did you mean 'entry'?*"])


def test_a_type_claimed_twice_names_both_sources(pytester):
    pytester.makeconftest("""
        from pytest_orch.handlers.command import CommandHandler

        def pytest_orch_handler_types():
            return {"command": CommandHandler}
        """)
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*handler type 'command' is provided twice: "
                                 "by the pytest_orch.handlers entry points and by *conftest.py*"])
