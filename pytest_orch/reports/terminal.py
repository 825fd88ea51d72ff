"""The end of the terminal summary: what blocked, what a dry run would change, one line per phase."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_orch.coordinator import Coordinator
from pytest_orch.outcomes import Status
from pytest_orch.results import TaskResult
from pytest_orch.session import OrchSession

SHOWN = (Status.PASSED, Status.FAILED, Status.SKIPPED, Status.UP_TO_DATE)


def _phase_line(phase_id: str, name: str, results: list[TaskResult]) -> str:
    counts: dict[Status, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    starts = [r.started for r in results if r.started is not None]
    ends = [r.finished for r in results if r.finished is not None]
    duration = (max(ends) - min(starts)) if starts and ends else 0.0
    parts = [f"{counts.get(s, 0)} {s.value.replace('_', ' ')}" for s in SHOWN
             if counts.get(s) or s is not Status.UP_TO_DATE]
    return f"phase {phase_id} ({name}): {', '.join(parts)} in {duration:.2f}s"


def write_summary(tr: Any, session: OrchSession, coordinator: Coordinator, results: list[TaskResult],
                  report_paths: list[Path], git_note: str = "", notified: Iterable[Any] = ()) -> None:
    plan = session.plan
    tasks = [r for r in results if r.task_id is not None]
    if session.settings.dry_run:
        _write_dry_run(tr, coordinator, tasks)
    blocked = coordinator.blocked_critical()
    if blocked:
        tr.write_sep("=", "tasks that could not run")
        for task_id, decision in blocked:
            hint = f"  -> {decision.hint}" if decision.hint else ""
            tr.write_line(f"{task_id}: {decision.reason}{hint}")
    noncritical = coordinator.failed_noncritical()
    if noncritical:
        tr.write_line(f"non-critical tasks failed (the run does not fail for them): {', '.join(noncritical)}")
    if git_note:
        tr.write_line(f"note: {git_note}")
    if report_paths:
        tr.write_line("reports: " + ", ".join(str(p) for p in report_paths))
    for sent in notified:
        tries = f" ({sent.attempts} attempts)" if sent.attempts > 1 else ""
        if sent.ok:
            tr.write_line(f"notify: {sent.notifier}: sent{tries}")
        else:
            tr.write_line(f"notify: {sent.notifier}: FAILED{tries}: {sent.error} (the exit status is unchanged)",
                          yellow=True)
    tr.write_sep("=", "pytest-orch phases")
    for phase in plan.phases:
        phase_results = [r for r in tasks if plan.tasks[r.task_id].phase == phase.id]
        if phase_results:
            tr.write_line(_phase_line(phase.id, phase.name, phase_results))


def _write_dry_run(tr: Any, coordinator: Coordinator, tasks: list[TaskResult]) -> None:
    """Each task's would-be change, its diff labelled with the task, in plan order."""
    tr.write_sep("=", "dry run: what would change")
    for result in tasks:
        if not (result.changed or result.message or result.diff):
            continue
        what = result.message or "would change " + ", ".join(result.changed)
        tr.write_line(f"[{result.task_id}] {what}")
        if result.diff:
            tr.write_line(result.diff.rstrip("\n"))
    for task_id, reason in coordinator.would_refuse.items():
        tr.write_line(f"[{task_id}] a real run would refuse it: {reason}")
