"""The end of the terminal summary: what blocked, what a dry run would change, one line per phase."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_orch.results import TaskResult

if TYPE_CHECKING:
    from pytest_orch.runtime import Runtime


def _phase_line(phase_id: str, name: str, results: list[TaskResult]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    starts = [r.started for r in results if r.started is not None]
    ends = [r.finished for r in results if r.finished is not None]
    duration = (max(ends) - min(starts)) if starts and ends else 0.0
    parts = [f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in ("passed", "failed", "skipped", "up_to_date")
             if counts.get(k) or k in ("passed", "failed", "skipped")]
    return f"phase {phase_id} ({name}): {', '.join(parts)} in {duration:.2f}s"


def write_summary(tr: Any, runtime: Runtime, results: list[TaskResult], report_paths: list[Path]) -> None:
    coordinator = runtime.coordinator
    plan = runtime.plan
    tasks = [r for r in results if r.task_id is not None]
    if runtime.settings.dry_run:
        diffs = [r for r in tasks if r.diff]
        tr.write_sep("=", "dry run: what would change")
        for result in tasks:
            if result.changed or result.message:
                tr.write_line(f"{result.task_id}: {result.message or 'would change ' + ', '.join(result.changed)}")
        for result in diffs:
            tr.write_line(result.diff.rstrip("\n"))
    if coordinator is not None:
        blocked = coordinator.blocked_critical()
        if blocked:
            tr.write_sep("=", "tasks that could not run")
            for task_id, decision in blocked:
                hint = f"  -> {decision.hint}" if decision.hint else ""
                tr.write_line(f"{task_id}: {decision.reason}{hint}")
        failed = coordinator.failed_critical()
        noncritical = [t for t, o in coordinator.outcomes.items() if o == "failed" and t not in failed]
        if noncritical:
            tr.write_line(f"non-critical tasks failed (the run does not fail for them): {', '.join(noncritical)}")
    state = getattr(tr.config.pluginmanager.get_plugin("orch-controller"), "state", None)
    if state is not None and state.git_note:
        tr.write_line(f"note: {state.git_note}")
    tr.write_line("reports: " + ", ".join(str(p) for p in report_paths))
    tr.write_sep("=", "pytest-orch phases")
    for phase in plan.phases:
        phase_results = [r for r in tasks if plan.tasks[r.task_id].phase == phase.id]
        if phase_results:
            tr.write_line(_phase_line(phase.id, phase.name, phase_results))
