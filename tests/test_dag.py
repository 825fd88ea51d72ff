"""The task graph on its own: edges from phases and groups, cycles, priorities."""

import itertools
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
    assert dag.critical_path(graph, weights)[1] == pytest.approx(10.5)


def test_critical_path_among_nodes_given_once_as_a_generator():
    """``nodes`` is read once, whatever iterable it is (a report passes a generator over its results)."""
    graph = dag.Graph(nodes=["a", "b", "c", "d"], requires={"b": {"a"}, "c": {"b"}, "d": {"a"}})
    weights = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 5.0}
    among = (n for n in ["a", "b", "c"])
    assert dag.critical_path(graph, weights, among) == (["a", "b", "c"], pytest.approx(3.0))


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


def _assert_is_cycle_of(graph: dag.Graph, cycle: list[str] | None, members: list[str]) -> None:
    assert cycle is not None, "the cycle was not found"
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == sorted(members)
    for before, after in itertools.pairwise(cycle):
        assert before in graph.prerequisites(after)


def test_find_cycle_entered_from_a_task_that_is_not_on_it():
    # 1.0 comes first in file order and only leads into the cycle 1.1 -> 1.3 -> 1.2 -> 1.1
    graph = dag.Graph(nodes=["1.0", "1.1", "1.2", "1.3"],
                      requires={"1.0": {"1.1"}, "1.1": {"1.2"}, "1.2": {"1.3"}, "1.3": {"1.1"}})
    _assert_is_cycle_of(graph, dag.find_cycle(graph), ["1.1", "1.2", "1.3"])


def test_find_cycle_reached_through_a_chain_and_a_finished_branch():
    # the search first finishes the branch a -> b, then walks c -> d into the cycle e -> f -> e
    graph = dag.Graph(nodes=["a", "b", "c", "d", "e", "f"],
                      requires={"a": {"b", "c"}, "c": {"d"}, "d": {"e"}, "e": {"f"}, "f": {"e"}})
    _assert_is_cycle_of(graph, dag.find_cycle(graph), ["e", "f"])


def test_find_cycle_through_an_ordering_edge_reached_from_outside():
    # a sequential group's "after" edge closes the loop; x only leads into it
    graph = dag.Graph(nodes=["x", "p", "q"], requires={"x": {"p"}, "q": {"p"}}, after={"p": {"q"}})
    _assert_is_cycle_of(graph, dag.find_cycle(graph), ["p", "q"])
