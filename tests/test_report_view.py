"""index.html's data on its own: cutting outputs, the size budget, the verdict, the critical path."""

import json
import re
import time
from pathlib import Path

import pytest
from browser import dump_dom
from pytest_orch.handlers.command import CommandHandler
from pytest_orch.handlers.manual import ManualHandler

from pytest_orch.outcomes import Decision, NotRun, RunOutcome, Status
from pytest_orch.plan.validate import load_plan_and_graph
from pytest_orch.reports.html import render_html, script_json
from pytest_orch.reports.pictures import blocked_of
from pytest_orch.reports.verdict import Blocked, Cause, verdict
from pytest_orch.reports.view import DIFF_HEAD, OUTPUT_TAIL, RunInfo, build_view, critical_path
from pytest_orch.results import TaskResult

HANDLERS = {"command": CommandHandler(), "manual": ManualHandler()}


def big_plan(tmp_path: Path, phases: int = 5, groups: int = 4, per_group: int = 50):
    """A plan of phases x groups x per_group tasks, each depending on the one before it in its group."""
    lines = ["phases:"]
    for p in range(1, phases + 1):
        lines += [f"  - phase: {p}", f"    name: Phase number {p}"] + ([f"    depends_on: [{p - 1}]"] if p > 1 else [])
        lines.append("    groups:")
        for g in range(groups):
            lines += [f"      - id: g{g}", f"        name: Group {g} of phase {p}", "        tasks:"]
            for t in range(per_group):
                dep = f', depends_on: ["{p}.{g}.{t - 1}"]' if t else ""
                lines.append(f'          - {{id: "{p}.{g}.{t}", name: "Task {t} of group {g}", type: command, '
                             f'run: "true", tags: [t{t % 3}]{dep}}}')
    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "plan.yaml").write_text("\n".join(lines) + "\n")
    return load_plan_and_graph(tmp_path / "phases", tmp_path, HANDLERS)


def results_for(plan, output: str = "", diff: str = "") -> list[TaskResult]:
    now = time.time()
    out = []
    for i, task_id in enumerate(plan.tasks):
        out.append(TaskResult(nodeid=f"phases/plan.yaml::{task_id}", task_id=task_id, status=Status.PASSED,
                              started=now + i * 0.01, finished=now + i * 0.01 + 0.008, worker=f"gw{i % 4}",
                              output=output, diff=diff, changed=["file.txt"] if diff else []))
    return out


def run_info(outcome="passed", cause=Cause.NONE) -> RunInfo:
    from pytest_orch.reports.verdict import Verdict

    now = time.time()
    return RunInfo("r1", now, now + 12, Verdict(outcome, cause), True, "pytest -n 4")


def test_a_50_mb_output_is_cut_to_its_tail_not_embedded(tmp_path):
    plan, graph = big_plan(tmp_path, 1, 1, 2)
    huge = "x" * (50 * 1024 * 1024 - 4) + "END\n"
    results = results_for(plan, output=huge, diff="+" * (30 * 1024))
    view = build_view(results, plan, graph, run_info())
    task = view["tasks"][0]
    assert task["output"].endswith("END\n") and len(task["output"]) < OUTPUT_TAIL + 200
    assert "earlier characters cut" in task["output"]
    assert len(task["diff"]) < DIFF_HEAD + 200 and "more characters cut" in task["diff"]
    assert len(render_html(view)) < 200_000


def test_a_1000_task_plan_with_full_outputs_and_diffs_stays_under_2_mb_and_opens_in_the_browser(tmp_path):
    plan, graph = big_plan(tmp_path)
    assert len(plan.tasks) == 1000
    # every task at the per-task limits: the page's budget cuts them further
    results = results_for(plan, output="o" * OUTPUT_TAIL * 2, diff="+d\n" * DIFF_HEAD)
    html = render_html(build_view(results, plan, graph, run_info()))
    size = len(html.encode())
    assert size < 2 * 1024 * 1024, size
    page = tmp_path / "index.html"
    page.write_text(html)
    dom = dump_dom(page, budget_ms=20000)
    assert len(re.findall(r'<tr data-task="', dom)) == 1000
    assert 'data-ready="1"' in dom
    # the graph starts folded: group boxes with counts, no thousand nodes
    assert dom.count('class="groupbox"') == 20 and 'class="node"' not in dom


def test_script_json_cannot_close_the_script_element():
    text = script_json({"name": "</script><script>alert(1)</script>", "sep": "\u2028", "amp": "&lt;"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text)["name"] == "</script><script>alert(1)</script>"


def test_the_critical_path_follows_the_longest_chain_of_durations(tmp_path):
    plan, graph = big_plan(tmp_path, 2, 2, 3)
    weights = dict.fromkeys(plan.tasks, 1.0)
    weights["1.1.1"] = 50.0  # group g1 of phase 1 is the long one
    path = critical_path(graph, plan.tasks, weights)
    assert path[:3] == ["1.1.0", "1.1.1", "1.1.2"]
    assert path[-1].startswith("2.") and len(path) == 6


def test_the_verdict_names_the_real_cause(tmp_path):
    plan, _ = big_plan(tmp_path, 1, 1, 3)
    results = results_for(plan)
    assert verdict("passed", results, plan, []).headline == "passed: every selected critical task is done"
    results[1].status = Status.FAILED
    failed = verdict("failed", results, plan, [])
    assert (failed.outcome, failed.cause, failed.tasks) == ("failed", Cause.FAILED_TASK, ("1.0.1",))
    results[1].status = Status.SKIPPED
    blocked = verdict("failed", results, plan, [Blocked("1.0.2", "1.0.1", "pytest --phase 1")])
    assert (blocked.outcome, blocked.cause) == ("blocked", Cause.DEPENDENCY_NOT_DONE)
    assert blocked.headline == "blocked: dependency 1.0.1 is not done"
    assert verdict("interrupted", results, plan, []).outcome == "interrupted"
    assert verdict("blocked", results, plan, []).headline == "blocked"  # the controller's word is kept


def test_a_manual_step_blocks_rather_than_fails(tmp_path):
    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "p.yaml").write_text(
        'phase: 1\ngroups:\n  - id: a\n    tasks:\n'
        '      - {id: "1.1", type: manual, instructions: "Flip the switch"}\n'
        '      - {id: "1.2", type: command, run: "true", depends_on: ["1.1"]}\n')
    plan, _ = load_plan_and_graph(tmp_path / "phases", tmp_path, HANDLERS)
    results = results_for(plan)
    for r in results:
        r.status = Status.SKIPPED
    found = verdict("failed", results, plan, [Blocked("1.2", "1.1", "pytest --confirm 1.1"),
                                              Blocked("1.1", "1.1", "pytest --confirm 1.1", Cause.MANUAL_STEP)])
    assert (found.outcome, found.cause, found.tasks, found.hints) == (
        "blocked", Cause.MANUAL_STEP, ("1.1",), ("pytest --confirm 1.1",))


@pytest.mark.parametrize("name", ["<b>x</b>", "a\x00b\x1bc", "quote\"'s"])
def test_names_with_markup_and_control_characters_never_reach_the_html_raw(tmp_path, name):
    plan, graph = big_plan(tmp_path, 1, 1, 1)
    results = results_for(plan)
    results[0].message = name
    results[0].output = name
    html = render_html(build_view(results, plan, graph, run_info()))
    assert name not in html


def test_the_coordinators_typed_decisions_give_the_cause(tmp_path):
    plan, graph = big_plan(tmp_path, 1, 1, 3)
    results = results_for(plan)
    for r in results:
        r.status = Status.SKIPPED
    view = build_view(results, plan, graph, run_info())
    assert view["run"]["counts"] == {"skipped": 3} and view["tasks"][0]["spans"][0][2] == "skipped"
    quota = verdict(RunOutcome.BLOCKED, results, plan,
                    blocked_of([("1.0.0", Decision(NotRun.NOT_READY, "quota spent", "1.0.0"))]))
    assert (quota.outcome, quota.cause) == ("blocked", Cause.NOT_READY)
    manual = verdict(RunOutcome.BLOCKED, results, plan, blocked_of(
        [("1.0.2", Decision(NotRun.UNCONFIRMED, "manual step", "1.0.1", "pytest --confirm 1.0.1"))]))
    assert (manual.cause, manual.tasks, manual.hints) == (Cause.MANUAL_STEP, ("1.0.1",), ("pytest --confirm 1.0.1",))
    refused = [("1.0.0", Decision(NotRun.REFUSED_DIRTY, "", "1.0.0"))]
    dirty = verdict(RunOutcome.BLOCKED, results, plan, blocked_of(refused))
    assert dirty.cause is Cause.REFUSED
