"""The controlling process's plugin object: results in, reports out, exit status.

Registered on the controller only (in-process runs, or xdist's controller). It asks the
coordinator what to do with each due item and reports an item that is not run through
``report_not_run``, the one function both the in-process path and the xdist scheduler use.
"""

from __future__ import annotations

import gc
import json
import shlex
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_orch import compat
from pytest_orch.collect import TaskItem
from pytest_orch.coordinator import Capabilities, Coordinator, NoHistory, RunFlags
from pytest_orch.errors import HandlerError
from pytest_orch.execution import TaskRunner
from pytest_orch.gitstate import dirty_excluding, git_status
from pytest_orch.history import History, open_history
from pytest_orch.notify import Sent, notify_run
from pytest_orch.outcomes import Decision, PlainNeeds, RunOutcome, Status
from pytest_orch.reports.junit import default_classname, write_junit
from pytest_orch.reports.pictures import write_pictures
from pytest_orch.reports.run_json import iso, write_run_json
from pytest_orch.results import ORCH_PROPERTY, ResultCollector, TaskResult, status_of
from pytest_orch.runlock import RunLock, RunLocked
from pytest_orch.secrets import mask_result
from pytest_orch.session import OrchSession
from pytest_orch.xdist.worker import mark_resolved_done, needs_of

UP_TO_DATE_CATEGORY = "up to date"


class Controller:
    """Owns the run: the coordinator, the history, the results and the reports."""

    def __init__(self, session: OrchSession, runner: TaskRunner) -> None:
        self.session = session
        self.config = session.config
        self.runner = runner
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self.started = time.time()
        self.coordinator: Coordinator | None = None
        self.history: History | None = None
        self.lock: RunLock | None = None
        self.git_clean: bool | None = None
        self.git_note = ""
        self.junit_paths: list[Path] = []
        self.suite: compat.SuiteRecorder | None = None
        self.starts: dict[str, int] = {}
        self.status_shown = False
        self.frozen = False  # gc.freeze() while the run's tasks run in this process
        self.notes: list[str] = []
        """One line each for the run's header (why -n started fewer workers than asked)."""
        self.notified: list[Sent] = []
        self.collector = ResultCollector(self._task_id_of, self._final)
        runner.confirmed = self._confirmed
        runner.live_written = lambda: self.history.harness_written if self.history is not None else None

    # -- the run's start --------------------------------------------------------------------------
    def start(self, selected: set[str]) -> Coordinator:
        """Open the run for the selected tasks (once per session) and return its coordinator.

        With no task selected (a session of plain tests in a project that has a plan) the run is
        a bystander: no state, no lock, no reports, pytest's own junitxml left alone.
        """
        if self.coordinator is not None:
            return self.coordinator
        settings = self.session.settings
        dirty: list[str] = []
        if selected:
            readonly = settings.dry_run
            problems = [] if readonly else self._preflight(selected)
            if problems:  # before the lock and the state: a missing API key changes nothing
                raise pytest.UsageError("\n".join(problems))
            if not readonly:
                self.lock = RunLock(settings.root)
                try:
                    self.lock.acquire(started=iso(self.started))
                except RunLocked as exc:
                    self.lock = None
                    raise pytest.UsageError(str(exc)) from None
            self.history = open_history(self.session, self.run_id, readonly=readonly,
                                        context_of=self.runner.context)
            dirty = self._check_git()
            self.history.begin(self.started, self.git_clean)
            if not settings.dry_run or self._reports_named():
                junit_path, self.suite = compat.take_over_junitxml(self.config)
                self.junit_paths = [settings.report_dir / "junit.xml"]
                if junit_path is not None and Path(junit_path).resolve() not in \
                        [p.resolve() for p in self.junit_paths]:
                    self.junit_paths.append(Path(junit_path))
        self.coordinator = Coordinator(
            self.session.plan, self.session.graph,
            history=self.history or NoHistory(),
            flags=RunFlags(force=settings.force, dry_run=settings.dry_run, interactive=self.runner.interactive,
                           confirmed=settings.confirm, dirty=tuple(dirty), allow_dirty=settings.allow_dirty),
            capabilities=Capabilities(
                needs_confirmation=self.session.needs_confirmation,
                writes_files=self.session.writes_files,
                files_written=self._files_written,
                not_ready=self._not_ready,
            ),
        )
        self.coordinator.select(selected)
        return self.coordinator

    def _reports_named(self) -> bool:
        """A dry run writes reports only where the user asked for them by name."""
        return self.session.settings.report_named or bool(getattr(self.config.option, "xmlpath", None))

    def _check_git(self) -> list[str]:
        """Uncommitted changes the plan did not make; the plan, the reports and .orch/ never count."""
        settings = self.session.settings
        assert self.history is not None
        status = git_status(settings.root)
        if not status.is_repo:
            self.git_note = status.note or "not a git work tree: changes cannot be checked"
            return []
        root = settings.root.resolve()
        ignore_dirs = [".orch", *_inside(root, [settings.report_dir])]
        ignore_files = _inside(root, [*self.session.plan_file_paths, *self._junitxml_option()])
        if settings.plan_path.is_dir():
            ignore_dirs += _inside(root, [settings.plan_path])
        dirty = dirty_excluding(status, self.history.harness_written, settings.root, ignore_dirs=ignore_dirs,
                                ignore_files=ignore_files, sha=self.history.hasher.sha)
        self.git_clean = not status.dirty
        return dirty

    def _junitxml_option(self) -> list[Path]:
        path = getattr(self.config.option, "xmlpath", None)
        return [Path(path)] if path else []

    def _files_written(self, task: Any) -> list[str] | None:
        writes = getattr(self.session.handlers[task.type], "writes", None)
        if writes is None:
            return None
        ctx = self.runner.context(task)
        try:
            return [ctx.relative(path) for path in writes(task, ctx)]
        except HandlerError:  # a path the task may not write fails the task when it runs; guard the whole tree
            return None

    def _not_ready(self, task: Any) -> str | None:
        check = getattr(self.session.handlers[task.type], "not_ready", None)
        if check is None:
            return None
        ctx = self.runner.context(task)
        if self.coordinator is not None:
            ctx.in_flight = tuple(self.session.plan.tasks[t] for t in self.coordinator.running())
        return check(task, ctx)

    def _preflight(self, selected: set[str]) -> list[str]:
        """Handlers' ``preflight``: what stops a real run before any task (a missing API key)."""
        tasks = [self.session.plan.tasks[t] for t in sorted(selected)]
        problems: list[str] = []
        for name in sorted({t.type for t in tasks}):
            check = getattr(self.session.handlers[name], "preflight", None)
            if check is not None:
                mine = [t for t in tasks if t.type == name]
                problems += check(mine, self.runner.context(mine[0]))
        return problems

    def _confirmed(self, task_id: str) -> bool:
        return self.coordinator is not None and self.coordinator.is_confirmed(task_id)

    @property
    def active(self) -> bool:
        """True once the session runs plan tasks: only then does it keep state and write reports."""
        return self.coordinator is not None and bool(self.coordinator.selected)

    # -- deciding and reporting items ---------------------------------------------------------------
    def decide(self, nodeid: str, needs: PlainNeeds | None = None) -> Decision:
        """The coordinator's decision for a due item: a task by its id, a plain test by its needs."""
        assert self.coordinator is not None
        task_id = self._task_id_of(nodeid)
        if task_id is not None:
            return self.coordinator.decide(task_id)
        return self.coordinator.decide_plain(nodeid, needs or PlainNeeds())

    def report_not_run(self, nodeid: str, decision: Decision,
                       location: tuple[str, int | None, str] | None = None) -> None:
        """Report an item that is not run, through the hooks every reporter listens to."""
        assert decision.not_run is not None
        task_id = self._task_id_of(nodeid)
        if task_id is not None:
            task = self.session.plan.tasks[task_id]
            location = (task.loc.path, task.loc.line - 1, f"{task.id}: {task.name}")
            skip_at: tuple[str, int, str] = (task.loc.path, task.loc.line, decision.reason)
            keywords: dict[str, Any] = {task.id: 1}
        else:
            path = nodeid.split("::")[0]
            location = location or (path, None, nodeid.split("::", 1)[-1])
            skip_at = (location[0], (location[1] or 0) + 1, f"Skipped: {decision.reason}")
            keywords = {}
        data = json.dumps({"status": decision.not_run.status.value, "message": decision.reason,
                           "not_run": decision.not_run.value})
        hook = self.config.hook
        now = time.time()
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for when, outcome, longrepr in (("setup", "skipped", skip_at), ("teardown", "passed", None)):
            report = pytest.TestReport(nodeid=nodeid, location=location, keywords=keywords, outcome=outcome,
                                       longrepr=longrepr, when=when, start=now, stop=now, duration=0.0,
                                       user_properties=[(ORCH_PROPERTY, data)])
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    # -- in process: decide each item when it is due -------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        """Report an item that will not run without pytest's setup machinery; hold a rate-limited task.

        A rerun where most tasks are up to date is then about as cheap as collecting the plan.
        """
        if not self.active or compat.dsession(self.config) is not None:
            return None
        needs = needs_of(item)
        if not isinstance(item, TaskItem) and needs is None:
            return None
        decision = self.decide(item.nodeid, needs)
        if decision.runs:
            if isinstance(item, TaskItem):
                self.runner.wait_for_rate_limit(item.task)  # every attempt is a call against the limit
                compat.mark_dependencies_done(item, sorted(self.session.graph.direct.get(item.task.id, ())))
            else:
                mark_resolved_done(item)
            return None
        self.report_not_run(item.nodeid, decision, item.location)
        compat.teardown_to(item, nextitem)
        return True

    # -- results -------------------------------------------------------------------------------------
    def _task_id_of(self, nodeid: str) -> str | None:
        return self.session.task_id_of(nodeid)

    def _final(self, result: TaskResult) -> None:
        coordinator = self.coordinator
        if coordinator is None:
            return
        mask_result(result, self.runner.masker)  # before the state, the events and every report see it
        if result.task_id is None:
            coordinator.plain_ended(result.nodeid, result.status)
            return
        decision = coordinator.decisions.get(result.task_id)
        if decision is not None and decision.runs:
            result.reason = decision.reason
        coordinator.task_ended(result.task_id, result.status)
        task = self.session.plan.tasks[result.task_id]
        if self.history is not None:
            self.history.task_ended(result, task)
        self.config.hook.pytest_orch_task_finished(task=task, result=result)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        task_id = self._task_id_of(nodeid)
        if task_id is None or self.history is None or self.coordinator is None:
            return
        decision = self.coordinator.decisions.get(task_id)
        if decision is None or decision.runs:
            self.starts[task_id] = self.starts.get(task_id, 0) + 1
            self.history.task_started(task_id, self.starts[task_id])

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.active:
            self.collector.add(report)

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """Up to date in its own words ("12 passed, 55 up to date"); with -v, why a task ran."""
        if report.skipped and status_of(report) is Status.UP_TO_DATE:
            return UP_TO_DATE_CATEGORY, "u", ("UP TO DATE", {"green": True})
        if report.when != "call" or not report.passed or config.option.verbose < 1 or self.coordinator is None:
            return None
        task_id = self._task_id_of(report.nodeid)
        decision = self.coordinator.decisions.get(task_id or "")
        if decision is None or not decision.reason:
            return None
        return "passed", ".", (f"PASSED ({decision.reason})", {"green": True})

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"pytest-orch: {note}" for note in self.notes if note]

    # -- collection: start the run, or show the status ----------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        """--orch-status prints what earlier runs left and stops before collecting anything."""
        if not self.session.settings.status:
            return None
        from pytest_orch.reports.status import write_status

        if not self.session.ok:
            return None  # collecting reports the plan's errors, exit 2 as for any run
        history = open_history(self.session, self.run_id, readonly=True, context_of=self.runner.context)
        try:
            write_status(self.config.pluginmanager.get_plugin("terminalreporter"), self.session, history)
        finally:
            history.end(time.time(), RunOutcome.PASSED.value)
        self.status_shown = True
        return True

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly or compat.dsession(self.config) is not None:
            return  # under xdist the scheduler starts the run when the first worker has collected
        selected = {item.task.id for item in session.items if isinstance(item, TaskItem)}
        if selected:
            self.start(selected)
            # The plan, its graph and the items live as long as the run: the collector need not scan
            # them again at every full collection while tasks run (0.04 ms a task at 1000). Thawed at the
            # end; left alone when the process froze objects of its own.
            self.frozen = gc.get_freeze_count() == 0
            if self.frozen:
                gc.freeze()

    # -- the end ---------------------------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_orch.reports.terminal import write_summary

        if self.active and self.collector.results and self.coordinator is not None:
            write_summary(terminalreporter, self.session, self.coordinator, self._ordered_results(),
                          self.report_paths(), self.git_note, self.notified)

    def report_paths(self) -> list[Path]:
        if not self.junit_paths:
            return []
        folder = self.session.settings.report_dir
        return [*self.junit_paths, folder / "run.json", folder / "timeline.svg", folder / "index.html"]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        if self.status_shown:
            session.exitstatus = pytest.ExitCode.OK
            return
        if session.config.option.collectonly or not self.session.ok or not self.active:
            return
        outcome = self.run_outcome(session)
        session.exitstatus = self._exit_status(session, outcome)
        try:
            if self.junit_paths:
                self._write_reports(outcome)
        finally:
            if self.history is not None:
                self.history.end(time.time(), outcome.value)
            if self.lock is not None:
                self.lock.release()

    def run_outcome(self, session: pytest.Session) -> RunOutcome:
        assert self.coordinator is not None
        interrupted = bool(session.shouldstop) or session.exitstatus == pytest.ExitCode.INTERRUPTED
        plain_failed = any(r.task_id is None and r.status is Status.FAILED for r in self.collector.results.values())
        return self.coordinator.run_outcome(interrupted=interrupted, plain_failed=plain_failed)

    @staticmethod
    def _exit_status(session: pytest.Session, outcome: RunOutcome) -> int:
        status = session.exitstatus
        if status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return status
        if outcome in (RunOutcome.FAILED, RunOutcome.BLOCKED):
            return pytest.ExitCode.TESTS_FAILED
        return pytest.ExitCode.OK

    def _write_reports(self, outcome: RunOutcome) -> None:
        session = self.session
        results = self._ordered_results()
        suite = self.suite or compat.SuiteRecorder(session.plan.name)
        for path in self.junit_paths:
            write_junit(path, results, suite.suite_name, self.started, self._classname, suite.global_properties)
        write_run_json(
            session.settings.report_dir / "run.json", run_id=self.run_id, started=self.started,
            finished=time.time(), outcome=outcome.value, git_clean=self.git_clean,
            dry_run=session.settings.dry_run, results=results, plan=session.plan,
        )
        verdict = write_pictures(
            session.settings.report_dir, results, session.plan, session.graph, run_id=self.run_id,
            started=self.started, outcome=outcome, git_clean=self.git_clean, dry_run=session.settings.dry_run,
            command=shlex.join(["pytest", *self.config.invocation_params.args]),
            blocked=self.coordinator.blocked_critical() if self.coordinator else (),
            store=self.history.store if self.history else None)
        if not session.settings.dry_run:  # sent after the reports are written; never changes the exit status
            self.notified = notify_run(
                session.plan.notify + session.settings.notify, verdict, session.settings.report_dir / "run.json",
                session.settings.root, run_id=self.run_id, counts=Counter(r.status.value for r in results),
                duration=time.time() - self.started)

    def _ordered_results(self) -> list[TaskResult]:
        order = {task_id: i for i, task_id in enumerate(self.session.plan.tasks)}
        return sorted(self.collector.results.values(),
                      key=lambda r: (r.task_id is None, order.get(r.task_id or "", 0), r.nodeid))

    def _classname(self, result: TaskResult) -> str:
        if result.task_id is None:
            return default_classname(result.nodeid)
        task = self.session.plan.tasks[result.task_id]
        return f"{self.session.plan.name}.{task.phase}.{task.group}"


def _inside(root: Path, paths: list[Path]) -> list[str]:
    """``paths`` relative to ``root`` (posix), leaving out those outside it."""
    found = []
    for path in paths:
        try:
            found.append(Path(path).resolve().relative_to(root).as_posix())
        except ValueError:
            continue
    return found
