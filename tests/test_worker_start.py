"""How xdist workers start: each with the plan the controller has already validated."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from pytest_orch.plan.validate import load_plan_and_graph
from pytest_orch.registry import HandlerTable

pytest.importorskip("xdist")

PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: a, type: command, run: "true"}
      - {id: b, type: command, run: "true", depends_on: [a]}
      - {id: c, type: command, run: "true", depends_on: [a]}
"""

# records, on each worker, whether the plan's validation (and its YAML parser) was ever imported
WORKER_PROBE = """
import json, os, sys

def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        seen = {"validate": "pytest_orch.plan.validate" in sys.modules, "yaml": "yaml" in sys.modules}
        with open(f"probe-{worker}.json", "w") as f:
            json.dump(seen, f)
"""


def test_the_plan_survives_pickling(tmp_path: Path) -> None:
    from pytest_orch.handlers.command import CommandHandler

    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "p1.yaml").write_text(PLAN)
    handlers = HandlerTable()
    handlers.add("command", CommandHandler, "test")
    plan, graph = load_plan_and_graph(tmp_path / "phases", tmp_path, handlers)
    copy, graph_copy = pickle.loads(pickle.dumps((plan, graph)))
    assert copy == plan
    assert list(copy.tasks) == ["a", "b", "c"]  # the derived index is rebuilt
    assert graph_copy.prerequisites("b") == graph.prerequisites("b")


def test_workers_take_the_controllers_plan_instead_of_parsing_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    pytester.makeconftest(WORKER_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--force", "-n", "3")
    result.assert_outcomes(passed=3)
    probes = sorted(pytester.path.glob("probe-gw*.json"))
    assert len(probes) == 3
    for probe in probes:
        assert json.loads(probe.read_text()) == {"validate": False, "yaml": False}, probe.name


def test_a_bad_plan_under_n_exits_as_it_does_without(pytester: pytest.Pytester) -> None:
    # plain xdist turns a collection error into exit 1; the plan contract says 2, with or without -n
    pytester.makefile(".yaml", **{"phases/p1": PLAN.replace("depends_on: [a]}", "depends_on: [zz]}", 1)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*phases/p1.yaml:6: task 'b' depends on unknown task 'zz'*"])
    assert "Traceback" not in result.stdout.str()

