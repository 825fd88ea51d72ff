"""The controlling process's plugin object: results, reports, summary and exit status."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_orch.collect import TaskItem
from pytest_orch.coordinator import Coordinator
from pytest_orch.reports.junit import default_classname, write_junit
from pytest_orch.reports.run_json import write_run_json
from pytest_orch.reports.timeline import write_timeline
from pytest_orch.results import ResultCollector, TaskResult
from pytest_orch.run_state import RunState
from pytest_orch.runlock import RunLocked
from pytest_orch.runtime import Runtime


class Controller:
    """Registered on the controller only (in-process runs, or xdist's controller)."""

    def __init__(self, runtime: Runtime, junit_path: Path) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.junit_path = junit_path
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self.started = time.time()
        self.state: RunState | None = None
        self.starts: dict[str, int] = {}
        self.status_shown = False
        self.collector = ResultCollector(self._task_id_of, self._task_final)

    # -- the coordinator ------------------------------------------------------------------------
    def start_coordinator(self, selected: set[str]) -> Coordinator:
        """Create the session's coordinator for the selected tasks (once per session).

        With no task selected (a session of plain tests in a project that has a plan) it is a
        bystander: no state, no lock, no reports, pytest's own junitxml left alone.
        """
        runtime = self.runtime
        settings = runtime.settings
        if runtime.coordinator is None:
            refuse = None
            if selected:
                try:
                    self.state = RunState(runtime, self.run_id, self.started, readonly=settings.dry_run)
                except RunLocked as exc:
                    raise pytest.UsageError(str(exc)) from None
                if not settings.dry_run:
                    self.state.check_git(settings.report_dir)
                    if self.state.dirty and not settings.allow_dirty:
                        refuse = dirty_reason(self.state.dirty)
                self.state.begin(self.started)
                self._take_over_junitxml()
            runtime.coordinator = Coordinator(
                runtime.plan, runtime.graph,
                confirmed=settings.confirm,
                history=self.state,
                force=settings.force,
                interactive=runtime.interactive(),
                refuse_writes=refuse,
                writes_files=runtime.task_writes_files(),
            )
        runtime.coordinator.select(selected)
        return runtime.coordinator

    @property
    def active(self) -> bool:
        """True once the session runs plan tasks: only then does it keep state and write reports."""
        return self.state is not None

    def _take_over_junitxml(self) -> None:
        """Write --junitxml ourselves: pytest's writer makes one testcase per rerun attempt."""
        from _pytest.junitxml import xml_key

        logxml = self.config.stash.get(xml_key, None)
        if logxml is not None:
            self.junit_path = Path(logxml.logfile)
            self.config.pluginmanager.unregister(logxml)
            del self.config.stash[xml_key]

    def _task_id_of(self, nodeid: str) -> str | None:
        return self.runtime.task_id_of(nodeid) if self.runtime.coordinator is not None else None

    def _task_final(self, result: TaskResult) -> None:
        coordinator = self.runtime.coordinator
        if result.task_id is None or coordinator is None:
            return
        decision = coordinator.decisions.get(result.task_id)
        if decision is not None and decision.action == "run" and not result.reason:
            result.reason = self.runtime.run_reason(result.task_id)
        coordinator.task_ended(result.task_id, result.outcome)
        if self.state is not None:
            self.state.task_ended(result, self.runtime.plan.tasks[result.task_id])
        self.config.hook.pytest_orch_task_finished(task=self.runtime.plan.tasks[result.task_id], result=result)

    # -- hooks ----------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        """--orch-status prints what earlier runs left and stops before collecting anything."""
        if not self.runtime.settings.status:
            return None
        from pytest_orch.reports.status import write_status

        if not self.runtime.ok:
            raise pytest.UsageError("\n".join(self.runtime.all_errors()))
        state = RunState(self.runtime, self.run_id, self.started, readonly=True)
        try:
            write_status(self.config.pluginmanager.get_plugin("terminalreporter"), self.runtime, state)
        finally:
            state.end(time.time(), "passed")
        self.status_shown = True
        return True

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """With -v, a task that ran says why: never ran, input X changed, forced."""
        if report.when != "call" or not report.passed or config.option.verbose < 1:
            return None
        task_id = self._task_id_of(report.nodeid)
        reason = self.runtime.run_reasons.get(task_id or "")
        if not reason:
            return None
        return "passed", ".", (f"PASSED ({reason})", {"green": True})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        task_id = self._task_id_of(nodeid)
        decision = self.runtime.coordinator.decisions.get(task_id) if task_id is not None else None
        if task_id is not None and self.state is not None and (decision is None or decision.action == "run"):
            self.starts[task_id] = self.starts.get(task_id, 0) + 1
            self.state.task_started(task_id, self.starts[task_id])

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add(report)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        selected = {item.task.id for item in session.items if isinstance(item, TaskItem)}
        if selected and not session.config.option.collectonly:
            self.start_coordinator(selected)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_orch.reports.terminal import write_summary

        if self.active and self.collector.results:
            write_summary(terminalreporter, self.runtime, list(self.collector.results.values()),
                          self.report_paths())

    def report_paths(self) -> list[Path]:
        folder = self.runtime.settings.report_dir
        return [self.junit_path, folder / "run.json", folder / "timeline.svg"]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.status_shown:
            session.exitstatus = pytest.ExitCode.OK
            return
        if session.config.option.collectonly or not self.runtime.ok or not self.active:
            return
        session.exitstatus = self._exit_status(session)
        try:
            self._write_reports(session)
        finally:
            if self.state is not None:
                self.state.end(time.time(), self.run_outcome(session))

    def _exit_status(self, session: pytest.Session) -> int:
        status = session.exitstatus
        if status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return status
        coordinator = self.runtime.coordinator
        assert coordinator is not None
        plain_failed = any(r.task_id is None and r.outcome == "failed" for r in self.collector.results.values())
        if coordinator.failed_critical() or coordinator.blocked_critical() or plain_failed:
            return pytest.ExitCode.TESTS_FAILED
        return pytest.ExitCode.OK

    def run_outcome(self, session: pytest.Session) -> str:
        if session.shouldstop or session.exitstatus == pytest.ExitCode.INTERRUPTED:
            return "interrupted"
        return "passed" if session.exitstatus == pytest.ExitCode.OK else "failed"

    def _write_reports(self, session: pytest.Session) -> None:
        runtime = self.runtime
        results = self._ordered_results()
        write_junit(self.junit_path, results, runtime.plan.name, self.started, self._classname)
        write_run_json(
            runtime.settings.report_dir / "run.json", run_id=self.run_id, started=self.started,
            finished=time.time(), outcome=self.run_outcome(session),
            git_clean=self.state.git_clean if self.state else None,
            dry_run=runtime.settings.dry_run, results=results, plan=runtime.plan,
        )
        write_timeline(runtime.settings.report_dir / "timeline.svg", results, self._label,
                       f"pytest-orch run {self.run_id} ({self.run_outcome(session)})")

    def _label(self, result: TaskResult) -> str:
        if result.task_id is None:
            return result.nodeid.rsplit("::", 1)[-1]
        task = self.runtime.plan.tasks[result.task_id]
        name = task.name if task.name != task.id else ""
        return f"{task.id} {name}"[:34].rstrip()

    def _ordered_results(self) -> list[TaskResult]:
        order = {task_id: i for i, task_id in enumerate(self.runtime.plan.tasks)}
        return sorted(self.collector.results.values(),
                      key=lambda r: (r.task_id is None, order.get(r.task_id or "", 0), r.nodeid))

    def _classname(self, result: TaskResult) -> str:
        if result.task_id is None:
            return default_classname(result.nodeid)
        task = self.runtime.plan.tasks[result.task_id]
        return f"{self.runtime.plan.name}.{task.phase}.{task.group}"

    # -- results the controller makes itself -------------------------------------------------
    def log_skip(self, nodeid: str, task_id: str, reason: str) -> None:
        """Report a task as skipped without running it, through the hooks reporters listen to.

        Used by the xdist scheduler for tasks it never sends to a worker.
        """
        task = self.runtime.plan.tasks[task_id]
        location = (task.loc.path, task.loc.line - 1, f"{task.id}: {task.name}")
        hook = self.config.hook
        now = time.time()
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for when, outcome, longrepr in (("setup", "skipped", (task.loc.path, task.loc.line, reason)),
                                        ("teardown", "passed", None)):
            report = pytest.TestReport(nodeid=nodeid, location=location, keywords={task.id: 1},
                                       outcome=outcome, longrepr=longrepr, when=when,
                                       start=now, stop=now, duration=0.0)
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def dirty_reason(paths: list[str], shown: int = 10) -> str:
    """One line: why tasks that change files refuse to run, and what to do."""
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return (f"refused: the git work tree has uncommitted changes the plan did not make: "
            f"{', '.join(paths[:shown])}{more} (commit or stash them, or pass --allow-dirty)")
