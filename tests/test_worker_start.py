"""How xdist workers start: each with the plan the controller has already validated."""

from __future__ import annotations

import pickle
from pathlib import Path

from pytest_orch.plan.validate import load_plan_and_graph
from pytest_orch.registry import HandlerTable

PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: a, type: command, run: "true"}
      - {id: b, type: command, run: "true", depends_on: [a]}
      - {id: c, type: command, run: "true", depends_on: [a]}
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
