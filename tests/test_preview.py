"""The --collect-only preview reads like the plan (issue 10, item 10), and the graph stays linear."""

import re

import pytest
from pytest_orch.handlers.command import CommandHandler

from pytest_orch import dag
from pytest_orch.plan.validate import load_plan

PLAN = {
    "phases/p1": """
        phase: 1
        name: Baseline
        groups:
          - id: tools
            tasks:
              - {id: "1.7", name: Install the tools, type: command, run: "true"}
              - {id: "1.10", name: "A name long enough to be cut before it pushes the next columns away", type: command,
                 run: "true"}
          - id: lint
            execution: sequential
            tasks:
              - {id: "1.11", type: command, run: "true"}
              - {id: "1.12", type: command, run: "true"}
        checkpoints:
          - {id: "1.check", type: command, run: "true"}
        """,
    "phases/p2": """
        phase: 2
        depends_on: [1]
        groups:
          - id: svc
            tasks:
              - {id: "2.1", name: Uses two tools, type: command, run: "true", depends_on: ["1.7", "1.10"]}
              - {id: "2.2", type: command, run: "true", depends_on: ["2.1"]}
              - {id: "2.3", type: command, run: "true", depends_on: ["2.2"]}
              - {id: "2.4", type: command, run: "true", depends_on: ["2.3"]}
        """,
}


@pytest.fixture
def plan(pytester):
    pytester.makefile(".yaml", **PLAN)
    return pytester


def preview(result):
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "plan preview" in line)
    end = next(i for i in range(start, len(lines)) if "tests collected" in lines[i])
    return lines[start + 1:end]


def test_preview_lists_tasks_in_plan_order_with_declared_dependencies(plan):
    result = plan.runpytest("--collect-only")
    assert result.ret == 0
    rows = [line.split()[0] for line in preview(result) if line.startswith("    ") and "command" in line]
    assert rows == ["1.7", "1.10", "1.11", "1.12", "1.check", "2.1", "2.2", "2.3", "2.4"]
    result.stdout.fnmatch_lines([
        "phase 1: Baseline",
        "  group tools: tools (parallel)",
        "  group lint: lint (sequential)",
        "    1.12 *  1.11  *-",  # a sequential group: after the task before it
        "  checkpoints (after every task of the phase)",
        "    1.check *the tasks of phase 1  *-",
        "phase 2: Phase 2 (after phase 1)",
        # declared even though phase 1 implies them
        "    2.1 *Uses two tools *-  *phase 1, 1.7, 1.10",
    ])


def test_pytest_tree_is_not_fragmented(plan):
    # by the graph, phase 2's chain would run in between: the tree named p1.yaml again after p2.yaml
    result = plan.runpytest("--collect-only")
    assert result.stdout.str().count("<PlanFile p1.yaml>") == 1
    assert result.stdout.str().count("<PlanFile p2.yaml>") == 1
    assert result.stdout.str().index("<PlanFile p1.yaml>") < result.stdout.str().index("<PlanFile p2.yaml>")


def assert_aligned(lines, rows):
    """Every row has a value starting exactly under each column title of the header."""
    header = next(line for line in lines if line.lstrip().startswith("task "))
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", header)] + [4]
    for row in rows:
        for col in starts:
            assert row[col - 2:col] == "  " and row[col] != " ", (row, col)


def test_preview_columns_are_aligned_and_long_names_cut(plan):
    lines = preview(plan.runpytest("--collect-only"))
    rows = [line for line in lines if line.startswith("    ") and "command" in line]
    assert_aligned(lines, rows)
    assert any("A name long enough to be cut before it pushes...  " in row for row in rows)
    assert max(len(row) for row in rows) < 140


def test_footer_gives_count_critical_path_and_an_estimate_after_a_run(plan):
    before = plan.runpytest("--collect-only")
    before.stdout.fnmatch_lines([
        "9 tasks in 2 phases (1 checkpoint among them)",
        "critical path: 7 tasks, 1.11 -> 1.12 -> 1.check -> 2.1 -> 2.2 -> 2.3 -> 2.4",
        "critical path duration: no estimate yet (no earlier run recorded a duration)",
    ])
    assert not (plan.path / ".orch").exists(), "the preview wrote state"
    plan.runpytest().assert_outcomes(passed=9)
    after = plan.runpytest("--collect-only")
    after.stdout.fnmatch_lines(["critical path duration: estimated * s from earlier runs"])


def test_orch_status_reads_like_the_preview(plan):
    plan.runpytest("--phase", "1").assert_outcomes(passed=5)
    result = plan.runpytest("--orch-status")
    assert result.ret == 0
    lines = result.stdout.lines
    lines = lines[next(i for i, line in enumerate(lines) if "pytest-orch status" in line) + 1:]
    rows = [line for line in lines if line.startswith("    ") and not line.lstrip().startswith("task ")]
    assert [row.split()[0] for row in rows] == ["1.7", "1.10", "1.11", "1.12", "1.check", "2.1", "2.2", "2.3", "2.4"]
    assert_aligned(lines, rows)
    result.stdout.fnmatch_lines([
        "    task *last outcome *finished *took *now",
        "phase 1: Baseline", "  group tools: tools (parallel)",
        "    1.7 *passed *20*Z *s  up to date",
        "phase 2: Phase 2 (after phase 1)",
        "    2.1 *-  *-  *-  *never ran",
    ])


def test_preview_follows_the_selection(plan):
    result = plan.runpytest("--collect-only", "--phase", "2")
    lines = preview(result)
    assert not any(line.startswith("phase 1") for line in lines)
    result.stdout.fnmatch_lines(["4 tasks in 1 phase", "critical path: 4 tasks, 2.1 -> 2.2 -> 2.3 -> 2.4"])


def test_quiet_collect_only_shows_no_preview(plan):
    result = plan.runpytest("--collect-only", "-q")
    result.stdout.no_fnmatch_line("*plan preview*")


def big_plan(tmp_path, phases=10, groups=10, per_group=50):
    (tmp_path / "phases").mkdir()
    for p in range(phases):
        lines = [f"phase: {p}", f"depends_on: [{p - 1}]" if p else "", "groups:"]
        for g in range(groups):
            lines += [f"  - id: g{g}", f"    depends_on: [g{g - 1}]" if g else "", "    tasks:"]
            for i in range(per_group):
                dep = f', depends_on: ["t{p}.{g}.{i - 1}"]' if i else ""
                lines.append(f'      - {{id: "t{p}.{g}.{i}", type: command, run: "true"{dep}}}')
        (tmp_path / "phases" / f"p{p:02d}.yaml").write_text("\n".join(lines) + "\n")
    return load_plan(tmp_path / "phases", tmp_path, {"command": CommandHandler()})


def test_graph_edges_grow_linearly_with_the_plan(tmp_path):
    plan = big_plan(tmp_path)
    graph = dag.build_graph(plan)
    tasks = len(plan.tasks)
    stored = sum(len(v) for v in graph.direct.values()) + sum(len(v) for v in graph.via.values()) + \
        sum(len(v) for v in graph.after.values()) + sum(len(v) for v in graph.barriers.values())
    assert stored < 5 * tasks  # expanded, phase 9 alone would need 500 x 4500 edges
    # the expanded view still answers as before
    assert len(graph.requires["t9.0.0"]) == 500
    assert graph.requires["t1.3.1"] == {"t1.3.0"} | {f"t0.{g}.{i}" for g in range(10) for i in range(50)} | \
        {f"t1.2.{i}" for i in range(50)}
    order = dag.topological(graph)
    position = {t: i for i, t in enumerate(order)}
    assert all(position[p] < position["t5.5.5"] for p in graph.prerequisites("t5.5.5"))
    path, length = dag.critical_path(graph, {})
    assert length == len(path) == 10 * 10 * 50  # groups chain within a phase, phases chain


def test_cycle_through_a_phase_dependency_is_named_by_its_tasks(tmp_path):
    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "p.yaml").write_text("""
phases:
  - phase: 1
    groups:
      - id: a
        tasks:
          - {id: "1.1", type: command, run: "true", depends_on: ["2.1"]}
  - phase: 2
    depends_on: [1]
    groups:
      - id: a
        tasks:
          - {id: "2.1", type: command, run: "true"}
""")
    from pytest_orch.errors import PlanErrors

    with pytest.raises(PlanErrors) as info:
        load_plan(tmp_path / "phases", tmp_path, {"command": CommandHandler()})
    assert "dependency cycle: " in str(info.value)
    cycle = str(info.value).split("dependency cycle: ")[1].split(" (")[0].split(" -> ")
    assert sorted(cycle[:-1]) == ["1.1", "2.1"] and cycle[0] == cycle[-1]
    assert "\x1e" not in str(info.value)
