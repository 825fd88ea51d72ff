"""The task graph on its own: edges from phases and groups, cycles, priorities."""

from pathlib import Path

import pytest
from pytest_orch.handlers.command import CommandHandler

from pytest_orch import dag
from pytest_orch.plan.validate import load_plan


def build(tmp_path: Path, text: str):
    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "plan.yaml").write_text(text)
    plan = load_plan(tmp_path / "phases", tmp_path, {"command": CommandHandler()})
    return plan, dag.build_graph(plan)


PLAN = """
phases:
  - phase: 1
    groups:
      - id: a
        execution: sequential
        tasks:
          - {id: a1, type: command, run: "true"}
          - {id: a2, type: command, run: "true"}
      - id: b
        depends_on: [a]
        tasks:
          - {id: b1, type: command, run: "true"}
    checkpoints:
      - {id: c1, type: command, run: "true"}
  - phase: 2
    depends_on: [1]
    groups:
      - id: x
        tasks:
          - {id: x1, type: command, run: "true", depends_on: [b1]}
"""


def test_group_phase_and_sequential_edges(tmp_path):
    _, graph = build(tmp_path, PLAN)
    assert graph.after["a2"] == {"a1"}  # sequential: ordering only
    assert graph.requires["a2"] == set()
    assert graph.requires["b1"] == {"a1", "a2"}  # group depends_on
    assert graph.after["c1"] == {"a1", "a2", "b1"}  # checkpoint after its phase
    assert graph.requires["x1"] == {"a1", "a2", "b1", "c1"}  # phase depends_on, plus its own


def test_topological_order_puts_prerequisites_first(tmp_path):
    _, graph = build(tmp_path, PLAN)
    order = dag.topological(graph)
    for node in graph.nodes:
        for pre in graph.prerequisites(node):
            assert order.index(pre) < order.index(node)


def test_remaining_path_and_critical_path(tmp_path):
    _, graph = build(tmp_path, PLAN)
    weights = {"a1": 1, "a2": 2, "b1": 3, "c1": 0.5, "x1": 4}
    remaining = dag.remaining_path(graph, weights)
    assert remaining["x1"] == 4
    assert remaining["a1"] == 1 + 2 + 3 + 0.5 + 4
    assert dag.critical_path_length(graph, weights) == pytest.approx(10.5)


def test_find_cycle_returns_the_path(tmp_path):
    graph = dag.Graph(nodes=["p", "q", "r", "s"], requires={"p": {"r"}, "q": {"p"}, "r": {"q"}, "s": {"p"}})
    cycle = dag.find_cycle(graph)
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["p", "q", "r"]
    for before, after in zip(cycle, cycle[1:], strict=False):
        assert before in graph.prerequisites(after)  # the path follows the edges in run order


def test_acyclic_graph_has_no_cycle(tmp_path):
    _, graph = build(tmp_path, PLAN)
    assert dag.find_cycle(graph) is None


def test_priority_order_ignores_edges_to_unselected_tasks(tmp_path):
    _, graph = build(tmp_path, PLAN)
    assert dag.priority_order(graph, ["x1"], {}) == ["x1"]
