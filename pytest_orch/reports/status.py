"""--orch-status: each phase, group and task with its last outcome and whether it is up to date."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_orch.dag import topological

if TYPE_CHECKING:
    from pytest_orch.history import History
    from pytest_orch.session import OrchSession


def status_lines(session: OrchSession, state: History) -> list[str]:
    """Read-only: what earlier runs left, and what a run now would do with each task."""
    plan, graph = session.plan, session.graph
    verdict: dict[str, str] = {}
    for task_id in topological(graph):
        task = plan.tasks[task_id]
        stale_deps = [d for d in sorted(graph.requires.get(task_id, ())) if verdict.get(d) != "up to date"]
        fresh = state.freshness(task)
        if state.previous_outcome(task_id) is None:
            verdict[task_id] = "never ran"
        elif stale_deps:
            verdict[task_id] = f"stale: dependency {stale_deps[0]} is not up to date"
        elif not fresh.up_to_date:
            verdict[task_id] = f"stale: {fresh.reason}"
        else:
            verdict[task_id] = "up to date"
    lines = []
    for phase in plan.phases:
        lines.append(f"phase {phase.id}: {phase.name}")
        groups = [(g.id, g.name, g.tasks) for g in phase.groups]
        if phase.checkpoints:
            groups.append(("checkpoints", "checkpoints", phase.checkpoints))
        for group_id, name, tasks in groups:
            lines.append(f"  group {group_id}: {name}")
            for task in tasks:
                record = state.last.get(task.id)
                last = (f"{record.outcome:<10} {record.finished or '':<20} {record.duration:>7.2f}s"
                        if record else f"{'-':<10} {'':<20} {'':>8}")
                lines.append(f"    {task.id:<12} {last}  {verdict[task.id]}")
    return lines


def write_status(tr: Any, session: OrchSession, state: History) -> None:
    tr.write_sep("=", "pytest-orch status")
    for line in status_lines(session, state):
        tr.write_line(line)
