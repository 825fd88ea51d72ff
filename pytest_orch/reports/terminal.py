"""The end of the terminal summary: what blocked, what a dry run would change, one line per phase."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_orch.compat import terminal_width
from pytest_orch.coordinator import Coordinator
from pytest_orch.outcomes import NotRun, Status
from pytest_orch.reports.calls import provider_lines
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
    for line in provider_lines(tasks):
        tr.write_line(line)
    explain_blocked_in_stats(tr, session, coordinator)


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


def explain_blocked_in_stats(tr: Any, session: OrchSession, coordinator: Coordinator) -> None:
    """Make pytest's closing line say why a run without failures exits 1.

    "20 passed, 1 skipped" and exit status 1 leave a reader guessing; the line becomes "20 passed,
    1 skipped, 1 manual step awaits: pytest --confirm 3.5". The closing line counts every category
    in ``terminalreporter.stats`` (as pytest-rerunfailures' "rerun" does), so each reason is one.
    """
    plan = session.plan
    blocked = coordinator.blocked_critical()
    order = {task_id: i for i, task_id in enumerate(plan.tasks)}
    awaiting = sorted({d.blocked_by for _, d in blocked if _awaits_confirmation(coordinator, d.blocked_by)},
                      key=order.__getitem__)
    if awaiting:
        key = (f"manual step awaits: pytest --confirm {awaiting[0]}" if len(awaiting) == 1 else
               f"manual steps await: pytest --confirm {','.join(awaiting)}")
        tr.stats.setdefault(key, []).extend(awaiting)
    others = [t for t, d in blocked if not _awaits_confirmation(coordinator, d.blocked_by)]
    if others:
        key = "task could not run (see above)" if len(others) == 1 else "tasks could not run (see above)"
        tr.stats.setdefault(key, []).extend(others)


def _awaits_confirmation(coordinator: Coordinator, task_id: str | None) -> bool:
    """True when ``task_id`` is a manual step the coordinator did not run for want of --confirm."""
    decision = coordinator.decisions.get(task_id) if task_id is not None else None
    return decision is not None and decision.not_run is NotRun.UNCONFIRMED


class FullReasons:
    """With -v, the reason a plan task was skipped stays readable: in full on a second line.

    pytest cuts the reason to the terminal width ("SKIPPED (up to date (run ...") and, under xdist,
    does not show it at all; a plan task's reason is what a reader wants ("up to date (run 3 at
    ...)", "manual step not confirmed: ...", "dependency 1.2 failed"). Registered on the controller.
    """

    def __init__(self, config: pytest.Config, task_id_of: Any) -> None:
        self.config = config
        self.task_id_of = task_id_of

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport):
        reason = self._cut_reason(report)
        result = yield
        if reason:
            # no newline after it: the next line's start writes one (a trailing one would leave a blank)
            self.config.pluginmanager.get_plugin("terminalreporter").write(f"\n    {reason}", yellow=True)
        return result

    def _cut_reason(self, report: pytest.TestReport) -> str | None:
        """The full reason when the terminal line will not show all of it, else None."""
        if self.config.get_verbosity() != 1 or not report.skipped or not isinstance(report.longrepr, tuple):
            return None
        if self.task_id_of(report.nodeid) is None:
            return None
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if hasattr(report, "node"):  # xdist: the line shows no reason at all
            return reason
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return None
        word = self.config.hook.pytest_report_teststatus(report=report, config=self.config)[2]
        word = word[0] if isinstance(word, tuple) else word
        line = f"{self.config.cwd_relative_nodeid(report.nodeid)} {word}"
        # as pytest's terminal reporter measures: room for " (reason)" and " [100%]"
        room = terminal_width(tr) - len(line) - 1 - len(" [100%]") - 1
        return reason if len(f" ({reason})") > room else None
